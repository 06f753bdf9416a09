//! The M2M100 tokenizer as facebook/m2m100_* repos ship it (`sentencepiece.bpe.model`,
//! `vocab.json`, `tokenizer_config.json`, no tokenizer.json), behaving like transformers'
//! `M2M100Tokenizer`:
//!
//! - the language tokens `__xx__` of fairseq's fixed list (`language_codes`: `m2m100`, 100
//!   languages, or `wmt21`) take the ids right after `vocab.json`'s, in the list's order;
//! - encoding: the text is split on the special and language tokens it contains, the rest is
//!   segmented by the SentencePiece model and each piece looked up in `vocab.json` (fairseq's
//!   dictionary, not the spm ids; a piece missing there is `<unk>`); the input is
//!   `__src__ tokens </s>`;
//! - decoding: special and language tokens are skipped, ids become pieces through `vocab.json`
//!   and SentencePiece joins them; the text is trimmed.

use std::collections::{HashMap, HashSet};

use super::sentencepiece::SentencePiece;
use super::{split_on_added, AddedToken, LanguageTokenizer, Segment, TokenizerConfig};
use crate::error::{Error, Result};
use crate::hub::Repo;

/// `FAIRSEQ_LANGUAGE_CODES` of transformers' tokenization_m2m_100.py.
const M2M100_CODES: &[&str] = &[
    "af", "am", "ar", "ast", "az", "ba", "be", "bg", "bn", "br", "bs", "ca", "ceb", "cs", "cy", "da", "de", "el", "en",
    "es", "et", "fa", "ff", "fi", "fr", "fy", "ga", "gd", "gl", "gu", "ha", "he", "hi", "hr", "ht", "hu", "hy", "id", "ig",
    "ilo", "is", "it", "ja", "jv", "ka", "kk", "km", "kn", "ko", "lb", "lg", "ln", "lo", "lt", "lv", "mg", "mk", "ml",
    "mn", "mr", "ms", "my", "ne", "nl", "no", "ns", "oc", "or", "pa", "pl", "ps", "pt", "ro", "ru", "sd", "si", "sk",
    "sl", "so", "sq", "sr", "ss", "su", "sv", "sw", "ta", "th", "tl", "tn", "tr", "uk", "ur", "uz", "vi", "wo", "xh",
    "yi", "yo", "zh", "zu",
];
const WMT21_CODES: &[&str] = &["en", "ha", "is", "ja", "cs", "ru", "zh", "de"];

pub struct M2M100Tokenizer {
    spm: SentencePiece,
    encoder: HashMap<String, u32>,
    decoder: HashMap<u32, String>,
    /// Language codes (`en`) in id order: code i is `__code__`, id `encoder.len() + i`.
    codes: Vec<String>,
    first_language_id: u32,
    /// Special and language tokens, longest first.
    added: Vec<AddedToken>,
    special_ids: HashSet<u32>,
    eos_id: u32,
    unk_id: u32,
    src_lang: Option<String>,
    tgt_lang: Option<String>,
    max_length: Option<usize>,
}

impl M2M100Tokenizer {
    /// `sentencepiece.bpe.model` and `vocab.json` from the repo; `config` is its
    /// tokenizer_config.json (null without one).
    pub async fn load(repo: &Repo, config: &serde_json::Value) -> Result<Self> {
        let spm = repo.get("sentencepiece.bpe.model").await?;
        let vocab = repo.get("vocab.json").await?;
        Self::from_parts(&spm, &vocab, config)
    }

    pub fn from_parts(spm: &[u8], vocab_json: &[u8], config: &serde_json::Value) -> Result<Self> {
        let spm = SentencePiece::from_bytes(spm).map_err(|e| Error::Tokenizer(format!("sentencepiece.bpe.model: {e}")))?;
        let encoder = super::marian::parse_vocab(vocab_json, "vocab.json")?;
        let size = u32::try_from(encoder.len()).map_err(|_| Error::Tokenizer("vocab.json is too large".into()))?;
        if let Some((token, id)) = encoder.iter().find(|(_, &id)| id >= size) {
            // The language tokens follow the vocabulary: an id beyond it would collide with them.
            return Err(Error::Tokenizer(format!("vocab.json: {token} has id {id}, beyond its {size} entries")));
        }
        let decoder: HashMap<u32, String> = encoder.iter().map(|(token, &id)| (id, token.clone())).collect();
        let codes = match config.get("language_codes").and_then(|v| v.as_str()).unwrap_or("m2m100") {
            "m2m100" => M2M100_CODES,
            "wmt21" => WMT21_CODES,
            other => {
                return Err(Error::Tokenizer(format!(
                    "tokenizer_config.json: language_codes '{other}' is not one of m2m100, wmt21"
                )))
            }
        };
        let codes: Vec<String> = codes.iter().map(|c| c.to_string()).collect();

        let token = |key: &str, default: &str| TokenizerConfig::token(&config.get(key).cloned(), default);
        let id_of = |t: &str| encoder.get(t).copied().ok_or_else(|| Error::Tokenizer(format!("{t} is missing from vocab.json")));
        let mut added = Vec::new();
        let mut special_ids = HashSet::new();
        for (key, default) in [("bos_token", "<s>"), ("eos_token", "</s>"), ("pad_token", "<pad>"), ("unk_token", "<unk>")] {
            let content = token(key, default);
            let id = id_of(&content)?;
            special_ids.insert(id);
            added.push(AddedToken { content, id, strip: false });
        }
        for (i, code) in codes.iter().enumerate() {
            let id = size + i as u32;
            special_ids.insert(id);
            added.push(AddedToken { content: format!("__{code}__"), id, strip: false });
        }
        added.sort_by_key(|t| std::cmp::Reverse(t.content.len()));
        let string = |key: &str| config.get(key).and_then(|v| v.as_str()).map(str::to_string);
        Ok(M2M100Tokenizer {
            spm,
            eos_id: id_of(&token("eos_token", "</s>"))?,
            unk_id: id_of(&token("unk_token", "<unk>"))?,
            encoder,
            decoder,
            codes,
            first_language_id: size,
            added,
            special_ids,
            src_lang: string("src_lang"),
            tgt_lang: string("tgt_lang"),
            max_length: TokenizerConfig { model_max_length: config.get("model_max_length").and_then(|v| v.as_f64()), ..Default::default() }
                .max_length(),
        })
    }
}

impl LanguageTokenizer for M2M100Tokenizer {
    fn language_codes(&self) -> Vec<String> {
        self.codes.clone()
    }

    /// `en` or its token `__en__`.
    fn language_id(&self, code: &str) -> Option<u32> {
        let code = code.strip_prefix("__").and_then(|c| c.strip_suffix("__")).unwrap_or(code);
        self.codes.iter().position(|c| c == code).map(|i| self.first_language_id + i as u32)
    }

    fn encode(&self, text: &str, source: u32) -> Result<Vec<u32>> {
        let mut ids = vec![source];
        for segment in split_on_added(text, &self.added) {
            match segment {
                Segment::Added(id) => ids.push(id),
                Segment::Text(text) => {
                    ids.extend(self.spm.encode(text).into_iter().map(|(piece, _)| self.encoder.get(&piece).copied().unwrap_or(self.unk_id)))
                }
            }
        }
        ids.push(self.eos_id);
        Ok(ids)
    }

    fn decode(&self, ids: &[u32]) -> Result<String> {
        // Ids outside vocab.json (beyond the language tokens: fairseq's made-up words) are
        // `<unk>`, which is special and skipped too.
        let pieces: Vec<&str> = ids
            .iter()
            .filter(|id| !self.special_ids.contains(id))
            .filter_map(|id| self.decoder.get(id).map(String::as_str))
            .collect();
        Ok(self.spm.decode_pieces(&pieces).trim().to_string())
    }

    fn default_languages(&self) -> (Option<String>, Option<String>) {
        (self.src_lang.clone(), self.tgt_lang.clone())
    }

    fn max_length(&self) -> Option<usize> {
        self.max_length
    }
}
