//! The T5 tokenizer of repos that ship only `spiece.model` (+ `tokenizer_config.json`), no
//! tokenizer.json, behaving like transformers' `T5Tokenizer`:
//!
//! - ids are the SentencePiece ids as they are; `</s>` is appended; `<extra_id_N>` (`extra_ids`,
//!   default 100) follow the vocabulary in reverse (`<extra_id_0>` is the last id) and swallow the
//!   whitespace around them;
//! - the text is split on those and the special tokens it contains; with `legacy` (the default
//!   when tokenizer_config.json does not say) each piece is segmented as it is; otherwise (`"legacy":
//!   false`) the text gets one leading `▁` and the model's own dummy prefix is off, so text right
//!   after a special token gets no extra space (transformers' `legacy=False` path);
//! - decoding skips special ids and trims.

use std::collections::HashSet;

use super::sentencepiece::{SentencePiece, SPACE};
use super::{split_on_added, AddedToken, Segment, TokenizerConfig};
use crate::error::{Error, Result};
use crate::hub::Repo;
use crate::models::limits::MAX_VOCAB;

pub struct T5Tokenizer {
    spm: SentencePiece,
    /// The same model without its dummy `▁` prefix (`legacy: false`).
    spm_without_prefix: SentencePiece,
    legacy: bool,
    unk_token: String,
    /// Special tokens and `<extra_id_N>`, longest first.
    added: Vec<AddedToken>,
    special_ids: HashSet<u32>,
    eos_id: u32,
    max_length: Option<usize>,
}

impl T5Tokenizer {
    /// `spiece.model` from the repo; `config` is its tokenizer_config.json (null without one).
    pub async fn load(repo: &Repo, config: &serde_json::Value) -> Result<Self> {
        Self::from_parts(&repo.get("spiece.model").await?, config)
    }

    pub fn from_parts(spiece: &[u8], config: &serde_json::Value) -> Result<Self> {
        let spm = SentencePiece::from_bytes(spiece).map_err(|e| Error::Tokenizer(format!("spiece.model: {e}")))?;
        let extra_ids = match config.get("extra_ids") {
            None | Some(serde_json::Value::Null) => 100,
            Some(value) => value
                .as_u64()
                .filter(|&n| n + (spm.len() as u64) < MAX_VOCAB)
                .ok_or_else(|| Error::Tokenizer(format!("tokenizer_config.json: extra_ids is {value}; it must be a whole number that keeps the vocabulary below {MAX_VOCAB}")))?
                as u32,
        };
        let token = |key: &str, default: &str| TokenizerConfig::token(&config.get(key).cloned(), default);
        let id_of = |t: &str| spm.piece_to_id(t).ok_or_else(|| Error::Tokenizer(format!("spiece.model has no {t}")));
        let mut added = Vec::new();
        let mut special_ids = HashSet::new();
        for (key, default) in [("eos_token", "</s>"), ("unk_token", "<unk>"), ("pad_token", "<pad>")] {
            let content = token(key, default);
            let id = id_of(&content)?;
            special_ids.insert(id);
            added.push(AddedToken { content, id, strip: false });
        }
        let last = spm.len() as u32 - 1 + extra_ids;
        for i in 0..extra_ids {
            special_ids.insert(last - i);
            added.push(AddedToken { content: format!("<extra_id_{i}>"), id: last - i, strip: true });
        }
        added.sort_by_key(|t| std::cmp::Reverse(t.content.len()));
        let mut spm_without_prefix = spm.clone();
        spm_without_prefix.normalizer.add_dummy_prefix = false;
        Ok(T5Tokenizer {
            eos_id: id_of(&token("eos_token", "</s>"))?,
            unk_token: token("unk_token", "<unk>"),
            legacy: config.get("legacy").and_then(|v| v.as_bool()).unwrap_or(true),
            spm,
            spm_without_prefix,
            added,
            special_ids,
            max_length: TokenizerConfig { model_max_length: config.get("model_max_length").and_then(|v| v.as_f64()), ..Default::default() }
                .max_length(),
        })
    }

    /// `model_max_length` from tokenizer_config.json.
    pub fn max_length(&self) -> Option<usize> {
        self.max_length
    }

    /// Input ids of `text`, `</s>` included.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let mut ids = Vec::new();
        if self.legacy || text.is_empty() {
            for segment in split_on_added(text, &self.added) {
                match segment {
                    Segment::Added(id) => ids.push(id),
                    Segment::Text(text) => ids.extend(self.spm.encode(text).into_iter().map(|(_, id)| id)),
                }
            }
        } else {
            let text = format!("{SPACE}{}", text.replace(SPACE, " "));
            let segments = split_on_added(&text, &self.added);
            for (i, segment) in segments.iter().enumerate() {
                match *segment {
                    Segment::Added(id) => ids.push(id),
                    // The lone `▁` before a special token that opens the text is dropped.
                    Segment::Text(t) if i == 0 && t == SPACE.to_string() && matches!(segments.get(1), Some(Segment::Added(_))) => {}
                    Segment::Text(t) => ids.extend(self.encode_without_prefix(t)),
                }
            }
        }
        ids.push(self.eos_id);
        ids
    }

    /// `T5Tokenizer._tokenize` without legacy: text that starts with a space is encoded after
    /// the unknown token's text, whose pieces are then dropped, so that the space survives the
    /// normaliser's trimming.
    fn encode_without_prefix(&self, text: &str) -> Vec<u32> {
        let ids = |text: &str| self.spm_without_prefix.encode(text).into_iter().map(|(_, id)| id).collect::<Vec<_>>();
        if !text.starts_with([SPACE, ' ']) {
            return ids(text);
        }
        let unk_len = ids(&self.unk_token).len();
        let mut all = ids(&format!("{}{text}", self.unk_token));
        if all.len() >= unk_len {
            all.drain(..unk_len);
        }
        all
    }

    /// Text of generated ids, special tokens skipped.
    pub fn decode(&self, ids: &[u32]) -> String {
        let pieces: Vec<&str> =
            ids.iter().filter(|id| !self.special_ids.contains(id)).filter_map(|&id| self.spm.id_to_piece(id)).collect();
        self.spm.decode_pieces(&pieces).trim().to_string()
    }
}
