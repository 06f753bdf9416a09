//! Tokenizers from what a repository ships: `tokenizer.json` when present, otherwise the older
//! files (`vocab.txt` + `tokenizer_config.json` for BERT-family WordPiece, `spm.model` for
//! DeBERTa-v2/v3, `vocab.json` + `merges.txt` for RoBERTa's byte-level BPE,
//! `sentencepiece.bpe.model` for XLM-RoBERTa; SentencePiece models with the vocabularies of Marian,
//! M2M100 and T5). NLLB's tokenizer.json is framed by language tokens as M2M100's files are
//! ([`LanguageTokenizer`]).

pub mod byte_level_bpe;
pub mod deberta;
pub mod m2m100;
pub mod marian;
pub mod nllb;
pub mod sentencepiece;
pub mod t5;
pub mod wordpiece;
pub mod xlm_roberta;

use serde::Deserialize;
use tokenizers::Tokenizer;

use crate::error::{Error, Result};
use crate::hub::Repo;

/// The parts of `tokenizer_config.json` we use. Special tokens may be strings or
/// `{"content": ...}` objects (AddedToken), so they are kept as JSON values.
#[derive(Debug, Default, Deserialize)]
pub struct TokenizerConfig {
    pub model_max_length: Option<f64>,
    pub do_lower_case: Option<bool>,
    /// BERT: `None` follows `do_lower_case`, as BertTokenizer does.
    pub strip_accents: Option<bool>,
    pub tokenize_chinese_chars: Option<bool>,
    /// DeBERTa: split punctuation from words before SentencePiece.
    pub split_by_punct: Option<bool>,
    pub unk_token: Option<serde_json::Value>,
    pub sep_token: Option<serde_json::Value>,
    pub pad_token: Option<serde_json::Value>,
    pub cls_token: Option<serde_json::Value>,
    pub mask_token: Option<serde_json::Value>,
}

impl TokenizerConfig {
    pub fn token(value: &Option<serde_json::Value>, default: &str) -> String {
        match value {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(serde_json::Value::Object(o)) => {
                o.get("content").and_then(|c| c.as_str()).unwrap_or(default).to_string()
            }
            _ => default.to_string(),
        }
    }

    /// `model_max_length`, ignoring the 1e30 transformers writes for "no limit".
    pub fn max_length(&self) -> Option<usize> {
        self.model_max_length.filter(|&n| n > 0.0 && n < 1e9).map(|n| n as usize)
    }
}

/// How much the normalisers of a tokenizer.json may grow a text at most (the product over its
/// `Replace` steps of how many bytes one matched byte can become). Real tokenizers stay below 4
/// (Llama's `Replace(" ", "▁")` is 3); chained replacements that double the text 40 times do not.
pub const MAX_NORMALIZER_GROWTH: f64 = 1024.0;
/// Most normalisers, pre-tokenisers or decoders one tokenizer.json may chain.
pub const MAX_PIPELINE_STEPS: usize = 256;

/// A tokenizer from `tokenizer.json` bytes: the JSON is parsed and checked here first, so that no
/// input reaches the tokenizers crate that makes it panic (a file cut inside `"decoder"` does),
/// grow a text exponentially, pad to a gigabyte or hold token ids no model can have.
///
/// The checks read a lean parse of the file ([`Checked`]: the model's vocabulary summarised as it
/// streams past), and the tokenizers crate then parses the bytes itself: holding the whole file
/// as a `serde_json::Value` while the crate builds its own copies raised wasm memory's high-water
/// mark (which never comes down) by several MB for a 50k-token vocabulary.
pub fn from_json_bytes(bytes: &[u8]) -> Result<Tokenizer> {
    let bad = |message: String| Error::Tokenizer(format!("tokenizer.json: {message}"));
    let checked: Checked =
        serde_json::from_slice(bytes).map_err(|e| bad(format!("not valid JSON (truncated download?): {e}")))?;
    check_tokenizer_json(&checked).map_err(bad)?;
    drop(checked);
    // Natively a panic inside the crate is also caught, as a last line of defence; in wasm a panic
    // aborts, which is why the checks above come first.
    #[cfg(not(target_arch = "wasm32"))]
    let parsed = std::panic::catch_unwind(|| serde_json::from_slice::<Tokenizer>(bytes))
        .map_err(|_| bad("the tokenizers crate could not read it (it panicked)".into()))?;
    #[cfg(target_arch = "wasm32")]
    let parsed = serde_json::from_slice::<Tokenizer>(bytes);
    let tokenizer = parsed.map_err(|e| bad(e.to_string()))?;
    // The crate asserts (panics) when a truncation's stride is not below its max_length less the
    // special tokens the post-processor adds; refuse such a file instead.
    if let Some(truncation) = tokenizer.get_truncation().filter(|t| t.stride > 0) {
        use tokenizers::PostProcessor;
        let added = tokenizer.get_post_processor().map_or(0, |p| p.added_tokens(false).max(p.added_tokens(true)));
        if truncation.stride >= truncation.max_length.saturating_sub(added) {
            return Err(bad(format!(
                "truncation.stride {} is not below truncation.max_length {} less {added} special tokens",
                truncation.stride, truncation.max_length
            )));
        }
    }
    Ok(tokenizer)
}

/// A tokenizer.json as the checks read it: every top-level field but `model` as JSON, and of the
/// model only its vocabulary, summarised while it is parsed (no copy of it is kept).
struct Checked {
    /// None when the file is not a JSON object.
    fields: Option<serde_json::Value>,
    /// `model.vocab`, when the model is an object that has one.
    vocab: Option<VocabSummary>,
}

/// What the checks need of `model.vocab`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum VocabSummary {
    /// A token → id object: whether every id is a whole number below `MAX_VOCAB`.
    Ids { all_valid: bool },
    /// Unigram's list of [piece, score] pairs (ids are positions): how many, and the longest
    /// piece's bytes.
    Pieces { count: usize, longest: usize },
    /// Neither an object nor a list.
    Other,
}

impl<'de> serde::Deserialize<'de> for Checked {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct Top;
        impl<'de> serde::de::Visitor<'de> for Top {
            type Value = Checked;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> std::result::Result<Checked, A::Error> {
                let mut fields = serde_json::Map::new();
                let mut vocab = None;
                while let Some(key) = map.next_key::<String>()? {
                    if key == "model" {
                        // A later duplicate key wins, as it does in a serde_json::Value.
                        vocab = map.next_value::<ModelVocab>()?.0;
                    } else {
                        fields.insert(key, map.next_value()?);
                    }
                }
                Ok(Checked { fields: Some(serde_json::Value::Object(fields)), vocab })
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Checked, A::Error> {
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(Checked { fields: None, vocab: None })
            }
            fn visit_bool<E>(self, _: bool) -> std::result::Result<Checked, E> {
                Ok(Checked { fields: None, vocab: None })
            }
            fn visit_i64<E>(self, _: i64) -> std::result::Result<Checked, E> {
                Ok(Checked { fields: None, vocab: None })
            }
            fn visit_u64<E>(self, _: u64) -> std::result::Result<Checked, E> {
                Ok(Checked { fields: None, vocab: None })
            }
            fn visit_f64<E>(self, _: f64) -> std::result::Result<Checked, E> {
                Ok(Checked { fields: None, vocab: None })
            }
            fn visit_str<E>(self, _: &str) -> std::result::Result<Checked, E> {
                Ok(Checked { fields: None, vocab: None })
            }
            fn visit_unit<E>(self) -> std::result::Result<Checked, E> {
                Ok(Checked { fields: None, vocab: None })
            }
        }
        deserializer.deserialize_any(Top)
    }
}

/// The `model` field: its `vocab` summarised, everything else skipped.
struct ModelVocab(Option<VocabSummary>);

impl<'de> serde::Deserialize<'de> for ModelVocab {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct Model;
        impl<'de> serde::de::Visitor<'de> for Model {
            type Value = ModelVocab;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> std::result::Result<ModelVocab, A::Error> {
                let mut vocab = None;
                while let Some(key) = map.next_key::<String>()? {
                    if key == "vocab" {
                        vocab = Some(map.next_value::<VocabSummary>()?);
                    } else {
                        map.next_value::<serde::de::IgnoredAny>()?;
                    }
                }
                Ok(ModelVocab(vocab))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<ModelVocab, A::Error> {
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(ModelVocab(None))
            }
            fn visit_bool<E>(self, _: bool) -> std::result::Result<ModelVocab, E> {
                Ok(ModelVocab(None))
            }
            fn visit_i64<E>(self, _: i64) -> std::result::Result<ModelVocab, E> {
                Ok(ModelVocab(None))
            }
            fn visit_u64<E>(self, _: u64) -> std::result::Result<ModelVocab, E> {
                Ok(ModelVocab(None))
            }
            fn visit_f64<E>(self, _: f64) -> std::result::Result<ModelVocab, E> {
                Ok(ModelVocab(None))
            }
            fn visit_str<E>(self, _: &str) -> std::result::Result<ModelVocab, E> {
                Ok(ModelVocab(None))
            }
            fn visit_unit<E>(self) -> std::result::Result<ModelVocab, E> {
                Ok(ModelVocab(None))
            }
        }
        deserializer.deserialize_any(Model)
    }
}

impl<'de> serde::Deserialize<'de> for VocabSummary {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        use crate::models::limits::MAX_VOCAB;
        use serde_json::Value;
        struct Vocab;
        impl<'de> serde::de::Visitor<'de> for Vocab {
            type Value = VocabSummary;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> std::result::Result<VocabSummary, A::Error> {
                let mut all_valid = true;
                while let Some((_, id)) = map.next_entry::<serde::de::IgnoredAny, Value>()? {
                    all_valid &= id.as_u64().is_some_and(|id| id < MAX_VOCAB);
                }
                Ok(VocabSummary::Ids { all_valid })
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<VocabSummary, A::Error> {
                let (mut count, mut longest) = (0usize, 0usize);
                while let Some(piece) = seq.next_element::<Value>()? {
                    count += 1;
                    if let Some(text) = piece.get(0).and_then(Value::as_str) {
                        longest = longest.max(text.len());
                    }
                }
                Ok(VocabSummary::Pieces { count, longest })
            }
            fn visit_bool<E>(self, _: bool) -> std::result::Result<VocabSummary, E> {
                Ok(VocabSummary::Other)
            }
            fn visit_i64<E>(self, _: i64) -> std::result::Result<VocabSummary, E> {
                Ok(VocabSummary::Other)
            }
            fn visit_u64<E>(self, _: u64) -> std::result::Result<VocabSummary, E> {
                Ok(VocabSummary::Other)
            }
            fn visit_f64<E>(self, _: f64) -> std::result::Result<VocabSummary, E> {
                Ok(VocabSummary::Other)
            }
            fn visit_str<E>(self, _: &str) -> std::result::Result<VocabSummary, E> {
                Ok(VocabSummary::Other)
            }
            fn visit_unit<E>(self) -> std::result::Result<VocabSummary, E> {
                Ok(VocabSummary::Other)
            }
        }
        deserializer.deserialize_any(Vocab)
    }
}

/// The checks of [`from_json_bytes`] on the lean parse of the file.
fn check_tokenizer_json(checked: &Checked) -> std::result::Result<(), String> {
    use crate::models::limits::{MAX_POSITIONS, MAX_VOCAB};
    use serde_json::Value;
    let Some(json) = &checked.fields else {
        return Err("not a JSON object".into());
    };
    // Normalisers: a bounded chain whose worst-case growth is bounded.
    let mut growth = 1.0f64;
    let mut steps = 0usize;
    let mut pending: Vec<&Value> = json.get("normalizer").into_iter().collect();
    while let Some(normalizer) = pending.pop() {
        steps += 1;
        if steps > MAX_PIPELINE_STEPS {
            return Err(format!("more than {MAX_PIPELINE_STEPS} normalizers"));
        }
        match normalizer.get("type").and_then(Value::as_str) {
            Some("Sequence") => pending.extend(normalizer.get("normalizers").and_then(Value::as_array).into_iter().flatten()),
            Some("Precompiled") => {
                let charsmap = normalizer.get("precompiled_charsmap").and_then(Value::as_str).unwrap_or_default();
                let bytes = base64(charsmap).ok_or("the Precompiled normalizer's charsmap is not base64")?;
                sentencepiece::check_charsmap(&bytes).map_err(|e| match e {
                    Error::Tokenizer(message) => format!("Precompiled normalizer: {message}"),
                    other => other.to_string(),
                })?;
            }
            Some("Replace") => {
                let content = normalizer.get("content").and_then(Value::as_str).unwrap_or_default().len() as f64;
                let pattern = normalizer.get("pattern");
                let factor = match pattern.and_then(|p| p.get("String")).and_then(Value::as_str) {
                    Some(s) if !s.is_empty() => (content / s.len() as f64).max(1.0),
                    // A regex (or an empty string) may match an empty span before every byte.
                    _ => content + 1.0,
                };
                growth *= factor;
                if growth > MAX_NORMALIZER_GROWTH {
                    return Err(format!(
                        "its Replace normalizers can grow a text more than {MAX_NORMALIZER_GROWTH}-fold"
                    ));
                }
            }
            _ => {}
        }
    }
    for (list, key) in [("pre_tokenizer", "pretokenizers"), ("decoder", "decoders"), ("post_processor", "processors")] {
        let count = json.get(list).and_then(|v| v.get(key)).and_then(Value::as_array).map_or(0, Vec::len);
        if count > MAX_PIPELINE_STEPS {
            return Err(format!("{list} chains {count} steps; at most {MAX_PIPELINE_STEPS}"));
        }
    }
    // Templates may only name special tokens they define (the crate indexes them unchecked).
    let mut processors: Vec<&Value> = json.get("post_processor").into_iter().collect();
    while let Some(processor) = processors.pop() {
        match processor.get("type").and_then(Value::as_str) {
            Some("Sequence") => processors.extend(processor.get("processors").and_then(Value::as_array).into_iter().flatten()),
            Some("TemplateProcessing") => {
                let defined = processor.get("special_tokens").and_then(Value::as_object);
                for template in ["single", "pair"] {
                    for piece in processor.get(template).and_then(Value::as_array).into_iter().flatten() {
                        let Some(id) = piece.pointer("/SpecialToken/id") else { continue };
                        let token = id.as_str().and_then(|id| defined?.get(id));
                        let ids = token.and_then(|t| t.get("ids")).and_then(Value::as_array);
                        let tokens = token.and_then(|t| t.get("tokens")).and_then(Value::as_array);
                        if ids.zip(tokens).is_none_or(|(ids, tokens)| ids.len() != tokens.len()) {
                            return Err(format!("post_processor template {template} uses special token {id}, which it does not define"));
                        }
                    }
                }
            }
            _ => {}
        }
    }
    // Padding and truncation lengths: at most as many tokens as a model may have positions.
    let lengths = [
        ("padding.strategy.Fixed", json.pointer("/padding/strategy/Fixed")),
        ("padding.pad_to_multiple_of", json.pointer("/padding/pad_to_multiple_of")),
        ("truncation.max_length", json.pointer("/truncation/max_length")),
    ];
    for (field, value) in lengths {
        if let Some(value) = value.filter(|v| !v.is_null()) {
            if value.as_u64().is_none_or(|n| n > MAX_POSITIONS) {
                return Err(format!("{field} is {value}; at most {MAX_POSITIONS}"));
            }
        }
    }
    // Token ids: each below the largest vocabulary a model may have, so none can be mistaken
    // for a valid row later (u32::MAX wrapped, or past any embedding table).
    let id_ok = |id: Option<u64>| id.is_some_and(|id| id < MAX_VOCAB);
    match checked.vocab {
        None => {}
        Some(VocabSummary::Other) => return Err("model.vocab is neither an object nor a list".into()),
        Some(VocabSummary::Ids { all_valid }) => {
            if !all_valid {
                return Err(format!("model.vocab holds a token id that is not below {MAX_VOCAB}"));
            }
        }
        Some(VocabSummary::Pieces { count, longest }) => {
            // Unigram: [piece, score] pairs, ids are positions.
            if !id_ok(Some(count.saturating_sub(1) as u64)) {
                return Err(format!("model.vocab holds a token id that is not below {MAX_VOCAB}"));
            }
            // Unigram keeps its pieces in a byte trie that the tokenizers crate drops recursively,
            // one stack frame per byte: a 100 kB piece overflows the stack (natively; in wasm's 1 MB
            // stack much less does). Pieces are as bounded as in a .spm file.
            if longest > sentencepiece::MAX_PIECE_BYTES {
                return Err(format!(
                    "model.vocab holds a piece of {longest} bytes; at most {}",
                    sentencepiece::MAX_PIECE_BYTES
                ));
            }
        }
    }
    for token in json.get("added_tokens").and_then(Value::as_array).into_iter().flatten() {
        if !id_ok(token.get("id").and_then(Value::as_u64)) {
            return Err(format!("added_tokens holds id {}, not below {MAX_VOCAB}", token.get("id").unwrap_or(&Value::Null)));
        }
    }
    Ok(())
}

/// A token recognised whole in input text (special tokens, language tokens, T5's
/// `<extra_id_N>`) before the text around it is segmented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddedToken {
    pub content: String,
    pub id: u32,
    /// Whitespace next to it is dropped (transformers' `lstrip` and `rstrip`).
    pub strip: bool,
}

/// A part of an input text: text to segment, or an added token's id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment<'a> {
    Text(&'a str),
    Added(u32),
}

/// `text` split at the added tokens it contains, as transformers' slow tokenizers split it: the
/// earliest match first, the longest of those starting there (`added` is sorted longest first);
/// empty text between tokens is left out.
pub fn split_on_added<'a>(text: &'a str, added: &[AddedToken]) -> Vec<Segment<'a>> {
    let mut out = Vec::new();
    let mut rest = text;
    let mut strip_next = false;
    while !rest.is_empty() {
        let found = rest
            .char_indices()
            .find_map(|(at, _)| added.iter().find(|token| rest[at..].starts_with(token.content.as_str())).map(|t| (at, t)));
        let (mut before, token) = match found {
            Some((at, token)) => {
                let before = &rest[..at];
                rest = &rest[at + token.content.len()..];
                (before, Some(token))
            }
            None => (std::mem::take(&mut rest), None),
        };
        if strip_next {
            before = before.trim_start();
        }
        if token.is_some_and(|t| t.strip) {
            before = before.trim_end();
        }
        if !before.is_empty() {
            out.push(Segment::Text(before));
        }
        if let Some(token) = token {
            out.push(Segment::Added(token.id));
            strip_next = token.strip;
        }
    }
    out
}

/// A tokenizer whose sequences are framed by language tokens (M2M100, NLLB): the source
/// language's token marks the input, and the target language's token is generated first (forced).
pub trait LanguageTokenizer {
    /// The language codes callers name (`en`, `eng_Latn`), in the tokenizer's order.
    fn language_codes(&self) -> Vec<String>;
    /// The token id of language `code`, if the tokenizer has it.
    fn language_id(&self, code: &str) -> Option<u32>;
    /// Model input ids of `text` in the language whose token is `source`, eos included.
    fn encode(&self, text: &str, source: u32) -> Result<Vec<u32>>;
    /// Text of generated ids, special and language tokens skipped.
    fn decode(&self, ids: &[u32]) -> Result<String>;
    /// tokenizer_config.json's `src_lang` and `tgt_lang`, used when a call names none.
    fn default_languages(&self) -> (Option<String>, Option<String>);
    /// `model_max_length` from tokenizer_config.json.
    fn max_length(&self) -> Option<usize>;
}

/// A repository's tokenizer: a `tokenizers` one (from tokenizer.json, or built from the older
/// files), or XLM-RoBERTa's SentencePiece one, which hubside runs itself.
pub enum AnyTokenizer {
    Tokenizers(Box<Tokenizer>),
    XlmRoberta(Box<xlm_roberta::XlmRobertaTokenizer>),
}

impl AnyTokenizer {
    /// Truncate every encoding to `max_length` ids, special tokens included.
    pub fn set_max_length(&mut self, max_length: usize) -> Result<()> {
        match self {
            AnyTokenizer::Tokenizers(t) => {
                t.with_truncation(Some(tokenizers::TruncationParams { max_length, ..Default::default() }))
                    .map_err(|e| Error::Tokenizer(e.to_string()))?;
            }
            AnyTokenizer::XlmRoberta(t) => t.set_max_length(max_length),
        }
        Ok(())
    }

    /// The ids of `text`, special tokens added.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        match self {
            AnyTokenizer::Tokenizers(t) => {
                Ok(t.encode(text, true).map_err(|e| Error::Tokenizer(e.to_string()))?.get_ids().to_vec())
            }
            AnyTokenizer::XlmRoberta(t) => Ok(t.encode(text)),
        }
    }

    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        match self {
            AnyTokenizer::Tokenizers(t) => t.token_to_id(token),
            AnyTokenizer::XlmRoberta(t) => t.token_to_id(token),
        }
    }
}

/// The repo's tokenizer and its config, from the first of: `tokenizer.json`; `vocab.txt`
/// (WordPiece); `spm.model` (DeBERTa-v2/v3); `vocab.json` + `merges.txt` (RoBERTa byte-level BPE); `sentencepiece.bpe.model`
/// (XLM-RoBERTa).
pub async fn load_any(repo: &Repo) -> Result<(AnyTokenizer, TokenizerConfig)> {
    let config: TokenizerConfig =
        repo.get_json_optional("tokenizer_config.json").await?.unwrap_or_default();
    if let Some(bytes) = repo.get_optional("tokenizer.json").await? {
        return Ok((AnyTokenizer::Tokenizers(Box::new(from_json_bytes(&bytes)?)), config));
    }
    if let Some(vocab) = repo.get_optional("vocab.txt").await? {
        return Ok((AnyTokenizer::Tokenizers(Box::new(wordpiece::from_vocab_txt(&vocab, &config)?)), config));
    }
    if let Some(spm) = repo.get_optional("spm.model").await? {
        return Ok((AnyTokenizer::Tokenizers(Box::new(deberta::from_spm(&spm, &config)?)), config));
    }
    if let Some(merges) = repo.get_optional("merges.txt").await? {
        let vocab = repo.get("vocab.json").await?;
        let tokenizer = byte_level_bpe::from_vocab_and_merges(&vocab, &merges, &config)?;
        return Ok((AnyTokenizer::Tokenizers(Box::new(tokenizer)), config));
    }
    if let Some(spm) = repo.get_optional("sentencepiece.bpe.model").await? {
        let tokenizer = xlm_roberta::XlmRobertaTokenizer::from_bytes(&spm, &config)?;
        return Ok((AnyTokenizer::XlmRoberta(Box::new(tokenizer)), config));
    }
    Err(Error::NotFound {
        url: format!("{} (nor vocab.txt, spm.model, merges.txt or sentencepiece.bpe.model)", repo.url("tokenizer.json")),
    })
}

/// [`load_any`] for the tasks that need a `tokenizers::Tokenizer` (decoding, Whisper's tokens).
pub async fn load(repo: &Repo) -> Result<(Tokenizer, TokenizerConfig)> {
    match load_any(repo).await? {
        (AnyTokenizer::Tokenizers(tokenizer), config) => Ok((*tokenizer, config)),
        (AnyTokenizer::XlmRoberta(_), _) => Err(Error::Tokenizer(format!(
            "{} (XLM-RoBERTa's tokenizer, with no tokenizer.json beside it) is read for text classification only",
            repo.url("sentencepiece.bpe.model")
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lean parse reads what the checks need of `model.vocab` (and of a file that is not an
    /// object) as a full parse would, however the vocabulary is written.
    #[test]
    fn the_checks_read_the_vocabulary_as_it_streams_past() {
        let verdict = |json: &str| check_tokenizer_json(&serde_json::from_str::<Checked>(json).unwrap());
        let big = crate::models::limits::MAX_VOCAB;
        assert_eq!(verdict(r#"{"model": {"type": "WordPiece", "vocab": {"a": 0, "b": 1}}, "x": [1]}"#), Ok(()));
        for bad_id in [format!("{big}"), "-1".into(), "1.5".into(), "\"7\"".into(), "null".into()] {
            let json = format!(r#"{{"model": {{"vocab": {{"a": 0, "b": {bad_id}, "c": 2}}}}}}"#);
            assert!(verdict(&json).unwrap_err().contains("token id that is not below"), "{json}");
        }
        let long = "x".repeat(sentencepiece::MAX_PIECE_BYTES + 1);
        assert_eq!(verdict(r#"{"model": {"vocab": [["a", -1.0], ["b", -2.0], 7]}}"#), Ok(()));
        assert!(verdict(&format!(r#"{{"model": {{"vocab": [["a", -1.0], ["{long}", -2.0]]}}}}"#)).unwrap_err().contains("a piece of"));
        for other in ["null", "3", "\"v\"", "true"] {
            assert!(verdict(&format!(r#"{{"model": {{"vocab": {other}}}}}"#)).unwrap_err().contains("neither"), "{other}");
        }
        // No vocabulary to check: a model without one, or a model that is not an object.
        for json in [r#"{"model": {"merges": []}}"#, r#"{"model": [1, {"vocab": 5}]}"#, r#"{"model": "m"}"#, "{}"] {
            assert_eq!(verdict(json), Ok(()), "{json}");
        }
        // The last of duplicate keys counts, as in a serde_json::Value.
        assert_eq!(verdict(r#"{"model": {"vocab": 1}, "model": {"vocab": {"a": 0}}}"#), Ok(()));
        for json in ["[1, 2]", "3", "\"s\"", "null", "false"] {
            assert_eq!(verdict(json).unwrap_err(), "not a JSON object", "{json}");
        }
        // The other checks still see the other fields.
        let padded = format!(r#"{{"padding": {{"strategy": {{"Fixed": {}}}}}, "model": {{"vocab": {{}}}}}}"#, u64::MAX);
        assert!(verdict(&padded).unwrap_err().contains("padding.strategy.Fixed"));
    }

    #[test]
    fn added_tokens_split_the_text_earliest_and_longest_first() {
        let token = |content: &str, id, strip| AddedToken { content: content.into(), id, strip };
        let added = [token("<extra_id_1>", 9, true), token("</s>", 1, false), token("<s>", 0, false)];
        let split = split_on_added("a</s><s>b  <extra_id_1>  c</s>", &added);
        use Segment::{Added, Text};
        assert_eq!(split, [Text("a"), Added(1), Added(0), Text("b"), Added(9), Text("c"), Added(1)]);
        assert_eq!(split_on_added("", &added), []);
        assert_eq!(split_on_added(" <s> ", &added), [Text(" "), Added(0), Text(" ")], "only stripping tokens take spaces");
    }
}

/// Standard base64 (padding optional); `None` on any other character.
fn base64(text: &str) -> Option<Vec<u8>> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let digits = text.trim_end_matches('=').as_bytes();
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    let (mut bits, mut count) = (0u32, 0);
    for &c in digits {
        bits = bits << 6 | u32::from(value(c)?);
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    Some(out)
}
