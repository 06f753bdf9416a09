//! The Marian tokenizer as Helsinki-NLP/opus-mt-* repos ship it (`source.spm`, `target.spm`,
//! `vocab.json`, no tokenizer.json), behaving like transformers' `MarianTokenizer`:
//!
//! - encoding: the text is split on the added/special tokens it contains, a leading `>>xx<<`
//!   language code is kept as one token, the rest is segmented by the *source* SentencePiece
//!   model and each piece's text looked up in `vocab.json` (pieces missing there, such as unknown
//!   characters, become `<unk>`); `</s>` is appended;
//! - decoding: special ids are skipped, ids become tokens through `vocab.json` (or
//!   `target_vocab.json` with `separate_vocabs`), the *target* SentencePiece model joins them, `▁`
//!   becomes a space and the result is trimmed.

use std::collections::{HashMap, HashSet};

use super::sentencepiece::{SentencePiece, SPACE};
use super::{split_on_added, AddedToken, Segment, TokenizerConfig};
use crate::error::{Error, Result};
use crate::hub::Repo;

pub struct MarianTokenizer {
    source: SentencePiece,
    target: SentencePiece,
    encoder: HashMap<String, u32>,
    decoder: HashMap<u32, String>,
    /// Added tokens recognised in input text, longest first.
    added: Vec<AddedToken>,
    special_ids: HashSet<u32>,
    pub eos_id: u32,
    pub unk_id: u32,
    pub pad_id: u32,
    pub source_lang: Option<String>,
    pub target_lang: Option<String>,
    /// `model_max_length` from tokenizer_config.json.
    pub max_length: Option<usize>,
    language_codes: Vec<String>,
}

pub(super) fn parse_vocab(bytes: &[u8], file: &str) -> Result<HashMap<String, u32>> {
    let map: HashMap<String, u64> =
        serde_json::from_slice(bytes).map_err(|e| Error::Tokenizer(format!("{file}: {e}")))?;
    map.into_iter()
        .map(|(token, id)| {
            u32::try_from(id).map(|id| (token, id)).map_err(|_| Error::Tokenizer(format!("{file}: id {id} too large")))
        })
        .collect()
}

impl MarianTokenizer {
    /// `source.spm`, `target.spm`, `vocab.json` (+ `target_vocab.json` when the config says
    /// `separate_vocabs`) and `tokenizer_config.json` from the repo.
    pub async fn load(repo: &Repo) -> Result<Self> {
        let source = repo.get("source.spm").await?;
        Self::load_with_source(repo, &source).await
    }

    /// As `load`, with `source.spm` already fetched.
    pub async fn load_with_source(repo: &Repo, source: &[u8]) -> Result<Self> {
        let config: serde_json::Value =
            repo.get_json_optional("tokenizer_config.json").await?.unwrap_or(serde_json::Value::Null);
        let target = repo.get("target.spm").await?;
        let vocab = repo.get("vocab.json").await?;
        let separate = config.get("separate_vocabs").and_then(|v| v.as_bool()).unwrap_or(false);
        let target_vocab = if separate { Some(repo.get("target_vocab.json").await?) } else { None };
        Self::from_parts(source, &target, &vocab, target_vocab.as_deref(), &config)
    }

    pub fn from_parts(
        source_spm: &[u8],
        target_spm: &[u8],
        vocab_json: &[u8],
        target_vocab_json: Option<&[u8]>,
        config: &serde_json::Value,
    ) -> Result<Self> {
        let source = SentencePiece::from_bytes(source_spm).map_err(|e| Error::Tokenizer(format!("source.spm: {e}")))?;
        let target = SentencePiece::from_bytes(target_spm).map_err(|e| Error::Tokenizer(format!("target.spm: {e}")))?;
        let encoder = parse_vocab(vocab_json, "vocab.json")?;
        let decoder = match target_vocab_json {
            Some(bytes) => parse_vocab(bytes, "target_vocab.json")?,
            None => encoder.clone(),
        }
        .into_iter()
        .map(|(token, id)| (id, token))
        .collect();

        let token = |key: &str, default: &str| TokenizerConfig::token(&config.get(key).cloned(), default);
        let (eos, unk, pad) = (token("eos_token", "</s>"), token("unk_token", "<unk>"), token("pad_token", "<pad>"));
        let id_of = |t: &str| {
            encoder.get(t).copied().ok_or_else(|| Error::Tokenizer(format!("{t} is missing from vocab.json")))
        };
        let (eos_id, unk_id, pad_id) = (id_of(&eos)?, id_of(&unk)?, id_of(&pad)?);

        let mut added: Vec<(String, u32)> = vec![(eos, eos_id), (unk, unk_id), (pad, pad_id)];
        let mut special_ids: HashSet<u32> = [eos_id, unk_id, pad_id].into();
        if let Some(tokens) = config.get("added_tokens_decoder").and_then(|v| v.as_object()) {
            for (id, token) in tokens {
                let (Ok(id), Some(content)) = (id.parse::<u32>(), token.get("content").and_then(|c| c.as_str())) else {
                    continue;
                };
                if token.get("special").and_then(|s| s.as_bool()).unwrap_or(false) {
                    special_ids.insert(id);
                }
                if !added.iter().any(|(t, _)| t == content) {
                    added.push((content.to_string(), id));
                }
            }
        }
        added.retain(|(t, _)| !t.is_empty());
        added.sort_by_key(|(t, _)| std::cmp::Reverse(t.len()));
        let added = added.into_iter().map(|(content, id)| AddedToken { content, id, strip: false }).collect();

        let mut language_codes: Vec<String> =
            encoder.keys().filter(|k| k.starts_with(">>") && k.ends_with("<<")).cloned().collect();
        language_codes.sort();
        let string = |key: &str| config.get(key).and_then(|v| v.as_str()).map(str::to_string);
        let max_length = config
            .get("model_max_length")
            .and_then(|v| v.as_f64())
            .filter(|&n| n > 0.0 && n < 1e9)
            .map(|n| n as usize);
        Ok(MarianTokenizer {
            source,
            target,
            encoder,
            decoder,
            added,
            special_ids,
            eos_id,
            unk_id,
            pad_id,
            source_lang: string("source_lang"),
            target_lang: string("target_lang"),
            max_length,
            language_codes,
        })
    }

    /// Target language codes (`>>deu<<`) of multilingual models; empty for a single pair.
    pub fn language_codes(&self) -> &[String] {
        &self.language_codes
    }

    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.encoder.get(token).copied()
    }

    /// Input ids of `text`, `</s>` included.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let mut ids = Vec::new();
        for segment in split_on_added(text, &self.added) {
            match segment {
                Segment::Text(text) => self.encode_segment(text, &mut ids),
                Segment::Added(id) => ids.push(id),
            }
        }
        ids.push(self.eos_id);
        ids
    }

    fn encode_segment(&self, mut text: &str, ids: &mut Vec<u32>) {
        if text.starts_with(">>") {
            if let Some(end) = text.find("<<") {
                let code = &text[..end + 2];
                ids.push(self.encoder.get(code).copied().unwrap_or(self.unk_id));
                text = &text[end + 2..];
            }
        }
        for (piece, _) in self.source.encode(text) {
            ids.push(self.encoder.get(&piece).copied().unwrap_or(self.unk_id));
        }
    }

    /// Text of generated ids, special tokens skipped.
    pub fn decode(&self, ids: &[u32]) -> String {
        let tokens: Vec<&str> = ids
            .iter()
            .filter(|id| !self.special_ids.contains(id))
            .filter_map(|id| self.decoder.get(id).map(String::as_str).or_else(|| self.target.id_to_piece(*id)))
            .collect();
        let text = self.target.decode_pieces(&tokens);
        text.replace(SPACE, " ").trim().to_string()
    }
}
