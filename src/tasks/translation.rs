//! Translation: load an encoder-decoder model and its tokenizer from a repo, pick the task prefix
//! (T5), the target language token (multilingual Marian) or the source and forced target language
//! tokens (M2M100, NLLB), split text longer than the model's input
//! limit at sentence boundaries, generate (greedy or beam search) and decode each piece, and join
//! the pieces. An optional callback sees the translation grow token by token.

use serde::{Deserialize, Serialize};
use tokenizers::Tokenizer;

use crate::error::{Error, Result};
use crate::generation::{self, EarlyStopping, GenerationConfig};
use crate::models::limits;
use crate::hub::Repo;
use crate::models::seq2seq::Seq2SeqModel;
use crate::models::{m2m100, marian, t5};
use crate::tokenizer::m2m100::M2M100Tokenizer;
use crate::tokenizer::marian::MarianTokenizer;
use crate::tokenizer::nllb::NllbTokenizer;
use crate::tokenizer::t5::T5Tokenizer;
use crate::tokenizer::LanguageTokenizer;
use crate::weights::{self, Weights};
use crate::tokenizer;
use super::LoadOptions;

type Loader = fn(&serde_json::Value, Weights) -> Result<Box<dyn Seq2SeqModel>>;

/// `model_type` → loader. Adding an architecture is one model file and one line here.
pub(super) const REGISTRY: &[(&str, Loader)] =
    &[("marian", marian::load_seq2seq), ("m2m_100", m2m100::load_seq2seq), ("t5", t5::load_seq2seq)];

/// Per-call options (transformers' names); `None` keeps the model's generation_config (or
/// transformers' default).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TranslateOptions {
    pub max_new_tokens: Option<usize>,
    pub num_beams: Option<usize>,
    pub length_penalty: Option<f64>,
    /// `true`, `false` or `"never"`, as in generation_config.
    #[serde(deserialize_with = "early_stopping_as_in_generation_config")]
    pub early_stopping: Option<EarlyStopping>,
    /// Source language (T5: selects `translation_{src}_to_{tgt}`; Marian: checked against the
    /// tokenizer's `source_lang`; M2M100 `en`, NLLB `eng_Latn`: the token that starts the input).
    pub src_lang: Option<String>,
    /// Target language (T5: as above; multilingual Marian: the `>>tgt<<` token; M2M100, NLLB:
    /// the token forced first in the output).
    pub tgt_lang: Option<String>,
}

fn early_stopping_as_in_generation_config<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<Option<EarlyStopping>, D::Error> {
    let Some(value) = Option::<serde_json::Value>::deserialize(deserializer)? else { return Ok(None) };
    EarlyStopping::from_json(&value)
        .map(Some)
        .ok_or_else(|| serde::de::Error::custom(format!("expected true, false or \"never\", got {value}")))
}

/// One translated piece of a text split to fit the model's input.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TranslatedChunk {
    pub text: String,
    pub translation_text: String,
    pub input_ids: Vec<u32>,
    pub generated_ids: Vec<u32>,
}

/// The translation of one text. `input_ids` and `generated_ids` (decoder start token first, eos
/// last when generation stopped there) are those of the single piece, or the concatenation over
/// `chunks` when the text had to be split.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Translation {
    pub translation_text: String,
    pub input_ids: Vec<u32>,
    pub generated_ids: Vec<u32>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub chunks: Vec<TranslatedChunk>,
}

enum TextTokenizer {
    Marian(Box<MarianTokenizer>),
    Json(Box<Tokenizer>),
    /// T5 from `spiece.model` alone.
    T5(Box<T5Tokenizer>),
    /// M2M100 (`vocab.json` + `sentencepiece.bpe.model`), NLLB (`tokenizer.json`).
    Languages(Box<dyn LanguageTokenizer>),
}

/// What goes around a text to make the model's input.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InputFraming {
    /// Text before it: T5's task prefix, multilingual Marian's `>>tgt<< `.
    pub prefix: String,
    /// The source language's token (M2M100, NLLB).
    pub source_language: Option<u32>,
}

impl TextTokenizer {
    fn encode(&self, text: &str, framing: &InputFraming) -> Result<Vec<u32>> {
        let prefixed = || format!("{}{text}", framing.prefix);
        match self {
            TextTokenizer::Marian(t) => Ok(t.encode(&prefixed())),
            TextTokenizer::Json(t) => Ok(t
                .encode(prefixed(), true)
                .map_err(|e| Error::Tokenizer(e.to_string()))?
                .get_ids()
                .to_vec()),
            TextTokenizer::T5(t) => Ok(t.encode(&prefixed())),
            TextTokenizer::Languages(t) => {
                let source = framing.source_language.ok_or_else(|| Error::Input("no source language token".into()))?;
                t.encode(text, source)
            }
        }
    }

    fn decode(&self, ids: &[u32]) -> Result<String> {
        match self {
            TextTokenizer::Marian(t) => Ok(t.decode(ids)),
            TextTokenizer::Json(t) => t.decode(ids, true).map_err(|e| Error::Tokenizer(e.to_string())),
            TextTokenizer::T5(t) => Ok(t.decode(ids)),
            TextTokenizer::Languages(t) => t.decode(ids),
        }
    }

    /// Whether languages are chosen through `task_specific_params` (T5's `translation_*` tasks).
    fn has_task_prefixes(&self) -> bool {
        matches!(self, TextTokenizer::Json(_) | TextTokenizer::T5(_))
    }
}

pub struct Translator {
    model: Box<dyn Seq2SeqModel>,
    tokenizer: TextTokenizer,
    model_type: String,
    defaults: GenerationConfig,
    /// `task_specific_params` entries named `translation_*`, in file order.
    tasks: Vec<(String, serde_json::Value)>,
    max_input_tokens: Option<usize>,
}

/// `task_specific_params` with its keys in file order (the first translation task is the default,
/// as in transformers' pipeline).
#[derive(Deserialize)]
struct OrderedParams {
    #[serde(default)]
    task_specific_params: Option<OrderedMap>,
}

struct OrderedMap(Vec<(String, serde_json::Value)>);

impl<'de> Deserialize<'de> for OrderedMap {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = OrderedMap;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> std::result::Result<OrderedMap, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry::<String, serde_json::Value>()? {
                    entries.push(entry);
                }
                Ok(OrderedMap(entries))
            }
            fn visit_unit<E>(self) -> std::result::Result<OrderedMap, E> {
                Ok(OrderedMap(Vec::new()))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// Generation settings from generation_config.json (or, for old repos, config.json).
fn generation_defaults(source: &serde_json::Value) -> GenerationConfig {
    let mut config = GenerationConfig::default();
    config.apply_json(source);
    config
}

/// Language codes match case-insensitively, a 2-letter code matching its 3-letter form's start
/// ("en" ~ "eng").
fn same_language(a: &str, b: &str) -> bool {
    let (a, b) = (a.to_ascii_lowercase(), b.to_ascii_lowercase());
    a == b || (a.len() >= 2 && b.len() >= 2 && (a.starts_with(&b) || b.starts_with(&a)))
}

impl Translator {
    /// Load config, tokenizer and weights from `repo`. The architecture is checked first, so an
    /// unsupported model fails before any weights are downloaded.
    pub async fn load(repo: &Repo) -> Result<Self> {
        Self::load_with(repo, &LoadOptions::default()).await
    }

    /// `load` with weights stored as `options` ask.
    pub async fn load_with(repo: &Repo, options: &LoadOptions) -> Result<Self> {
        let config_bytes = repo.get("config.json").await?;
        let bad_json = |e: serde_json::Error| Error::Config(format!("{} is not valid JSON: {e}", repo.url("config.json")));
        let config: serde_json::Value = serde_json::from_slice(&config_bytes).map_err(bad_json)?;
        let loader = super::find_loader(REGISTRY, &config, super::Task::Translation)?;
        limits::validate_config(&config, "config.json")?;
        let model_type = config.get("model_type").and_then(|v| v.as_str()).unwrap_or_default().to_string();
        let ordered: OrderedParams = serde_json::from_slice(&config_bytes).map_err(bad_json)?;
        let tasks: Vec<(String, serde_json::Value)> = ordered
            .task_specific_params
            .map(|m| m.0)
            .unwrap_or_default()
            .into_iter()
            .filter(|(key, _)| key.starts_with("translation"))
            .collect();
        for (key, params) in &tasks {
            limits::validate_config(params, &format!("config.json task_specific_params.{key}"))?;
        }

        let (tokenizer, tokenizer_max) = load_tokenizer(repo, &model_type).await?;

        let generation_config: Option<serde_json::Value> = repo.get_json_optional("generation_config.json").await?;
        if let Some(generation_config) = &generation_config {
            limits::validate_config(generation_config, "generation_config.json")?;
        }
        let defaults = generation_defaults(generation_config.as_ref().unwrap_or(&config));

        let model = weights::compact::load(
            repo,
            options.dtype,
            weights::WEIGHT_FILES,
            || Box::pin(weights::open(repo)),
            |w| loader(&config, w.clone()),
        )
        .await?;
        let max_input_tokens = match (model.spec().max_input_positions, tokenizer_max) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Ok(Translator { model, tokenizer, model_type, defaults, tasks, max_input_tokens })
    }

    pub fn model_type(&self) -> &str {
        &self.model_type
    }

    /// Longest input in tokens (special tokens included) before text is split.
    pub fn max_input_tokens(&self) -> Option<usize> {
        self.max_input_tokens
    }

    /// Tasks the model's config names (`translation_en_to_de`, ...), in file order.
    pub fn tasks(&self) -> Vec<String> {
        self.tasks.iter().map(|(k, _)| k.clone()).collect()
    }

    pub fn model(&self) -> &dyn Seq2SeqModel {
        self.model.as_ref()
    }

    /// Generation settings for `options`, and what goes around the input text.
    pub fn resolve(&self, options: &TranslateOptions) -> Result<(GenerationConfig, InputFraming)> {
        let mut config = self.defaults.clone();
        let mut framing = InputFraming::default();
        if let Some((_, params)) = self.task(options)? {
            framing.prefix = params.get("prefix").and_then(|p| p.as_str()).unwrap_or_default().to_string();
            config.apply_json(params);
        }
        match &self.tokenizer {
            TextTokenizer::Marian(tokenizer) => framing.prefix = marian_prefix(tokenizer, options)?,
            TextTokenizer::Languages(tokenizer) => {
                let (source, target) = language_ids(tokenizer.as_ref(), options, &self.model_type)?;
                framing.source_language = Some(source);
                // transformers' `generate(..., forced_bos_token_id=target)`.
                config.forced_decoder_ids.retain(|&(position, _)| position != 1);
                config.forced_decoder_ids.push((1, target));
            }
            TextTokenizer::Json(_) | TextTokenizer::T5(_) => {}
        }
        if let Some(n) = options.max_new_tokens {
            config.max_new_tokens = n;
        }
        if let Some(n) = options.num_beams {
            limits::check_beams(n)?;
            config.num_beams = n;
        }
        if let Some(lp) = options.length_penalty {
            config.length_penalty = lp;
        }
        if let Some(es) = options.early_stopping {
            config.early_stopping = es;
        }
        Ok((config, framing))
    }

    /// The `translation_*` task for the requested languages; the first one when none are given.
    fn task(&self, options: &TranslateOptions) -> Result<Option<&(String, serde_json::Value)>> {
        if !self.tokenizer.has_task_prefixes() || self.tasks.is_empty() {
            if self.tasks.is_empty() && self.tokenizer.has_task_prefixes() && (options.src_lang.is_some() || options.tgt_lang.is_some()) {
                return Err(Error::Input(format!(
                    "this {} model has no translation_* task_specific_params to choose languages from",
                    self.model_type
                )));
            }
            return Ok(None);
        }
        if options.src_lang.is_none() && options.tgt_lang.is_none() {
            return Ok(self.tasks.first());
        }
        let found = self.tasks.iter().find(|(key, _)| {
            let Some((src, tgt)) = key.strip_prefix("translation_").and_then(|k| k.split_once("_to_")) else {
                return false;
            };
            options.src_lang.as_deref().is_none_or(|s| same_language(s, src))
                && options.tgt_lang.as_deref().is_none_or(|t| same_language(t, tgt))
        });
        found.map(Some).ok_or_else(|| {
            Error::Input(format!(
                "no task for {} → {} in this model; it has: {}",
                options.src_lang.as_deref().unwrap_or("any"),
                options.tgt_lang.as_deref().unwrap_or("any"),
                self.tasks().join(", ")
            ))
        })
    }

    /// Model input ids for `text` under `options` (prefix, language and special tokens included).
    pub fn encode(&self, text: &str, options: &TranslateOptions) -> Result<Vec<u32>> {
        let (_, framing) = self.resolve(options)?;
        self.tokenizer.encode(text, &framing)
    }

    /// Text of generated ids (special tokens skipped).
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.tokenizer.decode(ids)
    }

    /// Translate `text`. `on_text`, if given, receives the whole translation so far each time it
    /// grows: after every generated token with greedy decoding, after each piece with beam search.
    pub fn translate(
        &self,
        text: &str,
        options: &TranslateOptions,
        mut on_text: Option<&mut dyn FnMut(&str)>,
    ) -> Result<Translation> {
        let (config, framing) = self.resolve(options)?;
        let encode = |piece: &str| self.tokenizer.encode(piece, &framing);
        let whole = encode(text)?;
        let pieces = match self.max_input_tokens {
            Some(max) if whole.len() > max => split_to_fit(text, |piece| Ok(encode(piece)?.len() <= max))?,
            _ => vec![(text.to_string(), String::new())],
        };

        let mut done = String::new();
        let mut chunks = Vec::with_capacity(pieces.len());
        for (piece, separator) in pieces {
            let input_ids = if chunks.is_empty() && piece == text { whole.clone() } else { encode(&piece)? };
            let head = if done.is_empty() { String::new() } else { format!("{done}{separator}") };
            let streaming_wanted = on_text.is_some();
            let generated = {
                let mut on_token = |ids: &[u32]| {
                    if let (Some(callback), Ok(so_far)) = (on_text.as_deref_mut(), self.tokenizer.decode(ids)) {
                        callback(&format!("{head}{so_far}"));
                    }
                };
                let streaming: generation::OnToken = if streaming_wanted { Some(&mut on_token) } else { None };
                generation::generate_seq2seq(self.model.as_ref(), &input_ids, &config, streaming)?
            };
            let translation_text = self.tokenizer.decode(&generated.ids)?;
            done = format!("{head}{translation_text}");
            if config.num_beams > 1 {
                if let Some(callback) = on_text.as_deref_mut() {
                    callback(&done);
                }
            }
            chunks.push(TranslatedChunk { text: piece, translation_text, input_ids, generated_ids: generated.ids });
        }
        let input_ids = chunks.iter().flat_map(|c| c.input_ids.iter().copied()).collect();
        let generated_ids = chunks.iter().flat_map(|c| c.generated_ids.iter().copied()).collect();
        if chunks.len() == 1 {
            chunks.clear();
        }
        Ok(Translation { translation_text: done, input_ids, generated_ids, chunks })
    }
}

/// The tokenizer a translation repo ships, and its `model_max_length`: Marian's `source.spm`
/// and `target.spm`; for M2M100 (and NLLB) `tokenizer.json` with language tokens, else
/// `sentencepiece.bpe.model` + `vocab.json`; otherwise `tokenizer.json`, or for T5 `spiece.model`.
async fn load_tokenizer(repo: &Repo, model_type: &str) -> Result<(TextTokenizer, Option<usize>)> {
    if model_type == "marian" {
        if let Some(source_spm) = repo.get_optional("source.spm").await? {
            let marian = MarianTokenizer::load_with_source(repo, &source_spm).await?;
            let max = marian.max_length;
            return Ok((TextTokenizer::Marian(Box::new(marian)), max));
        }
    }
    if model_type == "m2m_100" || model_type == "t5" {
        let json = repo.get_optional("tokenizer.json").await?;
        let config: serde_json::Value =
            repo.get_json_optional("tokenizer_config.json").await?.unwrap_or(serde_json::Value::Null);
        let languages: Box<dyn LanguageTokenizer> = match (model_type, json) {
            ("m2m_100", Some(json)) => Box::new(NllbTokenizer::from_parts(&json, &config)?),
            ("m2m_100", None) => Box::new(M2M100Tokenizer::load(repo, &config).await?),
            ("t5", None) => {
                let t5 = T5Tokenizer::load(repo, &config).await?;
                let max = t5.max_length();
                return Ok((TextTokenizer::T5(Box::new(t5)), max));
            }
            (_, Some(json)) => {
                let max = tokenizer::TokenizerConfig::deserialize(&config).unwrap_or_default().max_length();
                return Ok((TextTokenizer::Json(Box::new(tokenizer::from_json_bytes(&json)?)), max));
            }
            (_, None) => return Err(Error::Input(format!("no tokenizer for model_type {model_type}"))),
        };
        let max = languages.max_length();
        return Ok((TextTokenizer::Languages(languages), max));
    }
    let (json, tokenizer_config) = tokenizer::load(repo).await?;
    Ok((TextTokenizer::Json(Box::new(json)), tokenizer_config.max_length()))
}

/// The source and target language token ids for `options` (or tokenizer_config.json's
/// `src_lang` / `tgt_lang`); a missing or unknown code is an input error listing the valid ones.
fn language_ids(tokenizer: &dyn LanguageTokenizer, options: &TranslateOptions, model_type: &str) -> Result<(u32, u32)> {
    let (default_src, default_tgt) = tokenizer.default_languages();
    let id = |given: &Option<String>, default: Option<String>, option: &str| {
        let codes = || tokenizer.language_codes().join(", ");
        let code = given.clone().or(default).ok_or_else(|| {
            Error::Input(format!("this {model_type} model needs the option {option}, one of its languages: {}", codes()))
        })?;
        tokenizer
            .language_id(&code)
            .ok_or_else(|| Error::Input(format!("{option} '{code}' is not one of this model's languages: {}", codes())))
    };
    Ok((id(&options.src_lang, default_src, "src_lang")?, id(&options.tgt_lang, default_tgt, "tgt_lang")?))
}

fn marian_prefix(tokenizer: &MarianTokenizer, options: &TranslateOptions) -> Result<String> {
    let codes = tokenizer.language_codes();
    if let (Some(src), Some(model_src)) = (&options.src_lang, &tokenizer.source_lang) {
        if !same_language(src, model_src) {
            return Err(Error::Input(format!("this model translates from '{model_src}', not '{src}'")));
        }
    }
    let Some(tgt) = &options.tgt_lang else { return Ok(String::new()) };
    let code = format!(">>{tgt}<<");
    if tokenizer.token_to_id(&code).is_some() {
        return Ok(format!("{code} "));
    }
    if !codes.is_empty() {
        return Err(Error::Input(format!("target language '{tgt}' is not one of this model's: {}", codes.join(" "))));
    }
    match &tokenizer.target_lang {
        Some(model_tgt) if !same_language(tgt, model_tgt) => {
            Err(Error::Input(format!("this model translates into '{model_tgt}', not '{tgt}'")))
        }
        _ => Ok(String::new()),
    }
}

/// Split `text` into pieces that `fits`, at sentence ends (then at spaces, then between
/// characters for a sentence or word that is still too long), packing as much as fits into each
/// piece. Returns (piece, separator before it): "\n" where the text had a line break, else " ".
/// Nothing is dropped except whitespace at the split points.
pub fn split_to_fit(text: &str, fits: impl Fn(&str) -> Result<bool>) -> Result<Vec<(String, String)>> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut current: Option<(String, String)> = None;
    for (sentence, separator) in sentences(text) {
        pack(&sentence, &separator, &fits, &mut current, &mut out, Level::Sentence)?;
    }
    out.extend(current);
    Ok(out)
}

#[derive(Clone, Copy)]
enum Level {
    Sentence,
    Word,
    Char,
}

fn pack(
    unit: &str,
    separator: &str,
    fits: &impl Fn(&str) -> Result<bool>,
    current: &mut Option<(String, String)>,
    out: &mut Vec<(String, String)>,
    level: Level,
) -> Result<()> {
    if let Some((text, sep)) = current.as_ref() {
        let joined = format!("{text}{separator}{unit}");
        if fits(&joined)? {
            *current = Some((joined, sep.clone()));
            return Ok(());
        }
        out.push(current.take().unwrap());
    }
    if fits(unit)? {
        *current = Some((unit.to_string(), separator.to_string()));
        return Ok(());
    }
    // Too long on its own: split it finer.
    match level {
        Level::Sentence | Level::Word => {
            let (parts, next): (Vec<String>, Level) = match level {
                Level::Sentence if unit.split_whitespace().nth(1).is_some() => {
                    (unit.split_whitespace().map(str::to_string).collect(), Level::Word)
                }
                _ => (unit.chars().map(String::from).collect(), Level::Char),
            };
            let inner_separator = if matches!(next, Level::Char) { "" } else { " " };
            for (i, part) in parts.iter().enumerate() {
                let sep = if i == 0 { separator } else { inner_separator };
                pack(part, sep, fits, current, out, next)?;
            }
            Ok(())
        }
        Level::Char => Err(Error::Input(format!(
            "'{unit}' alone is longer than the model's maximum input"
        ))),
    }
}

/// Sentences of `text` with the separator before each ("\n" across a line break, else " ").
fn sentences(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut pending_separator = String::new();
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut i = 0;
    let push = |out: &mut Vec<(String, String)>, piece: &str, sep: &mut String| {
        let piece = piece.trim();
        if !piece.is_empty() {
            out.push((piece.to_string(), if out.is_empty() { String::new() } else { sep.clone() }));
            sep.clear();
        }
    };
    while i < chars.len() {
        let (at, c) = chars[i];
        let ends_sentence = matches!(c, '.' | '!' | '?' | '。' | '！' | '？' | '…' | ';' | '؟' | '।');
        if c == '\n' {
            push(&mut out, &text[start..at], &mut pending_separator);
            pending_separator = "\n".into();
            start = at + 1;
        } else if ends_sentence {
            // Include closing punctuation/quotes, then require whitespace (or the end) after.
            let mut j = i + 1;
            while j < chars.len() && matches!(chars[j].1, '.' | '!' | '?' | '"' | '\'' | ')' | ']' | '”' | '’' | '»' | '」') {
                j += 1;
            }
            let end = chars.get(j).map_or(text.len(), |&(at, _)| at);
            if j == chars.len() || chars[j].1.is_whitespace() || matches!(c, '。' | '！' | '？') {
                push(&mut out, &text[start..end], &mut pending_separator);
                if pending_separator.is_empty() {
                    pending_separator = " ".into();
                }
                start = end;
            }
            i = j;
            continue;
        }
        i += 1;
    }
    push(&mut out, &text[start..], &mut pending_separator);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_split_at_ends_and_lines() {
        let s = sentences("Hello there. How are you?  Fine!\nNext line \"quoted.\" 3.5 is a number");
        let texts: Vec<&str> = s.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(texts, ["Hello there.", "How are you?", "Fine!", "Next line \"quoted.\"", "3.5 is a number"]);
        let seps: Vec<&str> = s.iter().map(|(_, s)| s.as_str()).collect();
        assert_eq!(seps, ["", " ", " ", "\n", " "]);
    }

    #[test]
    fn split_packs_and_keeps_everything() {
        let text = "One two three. Four five six seven eight nine ten eleven. Twelve.";
        let fits = |s: &str| Ok(s.split_whitespace().count() <= 4);
        let pieces = split_to_fit(text, fits).unwrap();
        let texts: Vec<&str> = pieces.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(texts, ["One two three.", "Four five six seven", "eight nine ten eleven.", "Twelve."]);
        let rejoined: Vec<String> = text.split_whitespace().map(str::to_string).collect();
        let words: Vec<String> = texts.iter().flat_map(|t| t.split_whitespace().map(str::to_string)).collect();
        assert_eq!(words, rejoined);
        // A word too long on its own is split between characters.
        let pieces = split_to_fit("abcdefgh", |s: &str| Ok(s.len() <= 3)).unwrap();
        let texts: Vec<&str> = pieces.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(texts, ["abc", "def", "gh"]);
        assert!(split_to_fit("x", |_: &str| Ok(false)).is_err());
    }
}
