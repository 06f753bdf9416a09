//! Tokenizers from what a repository ships: `tokenizer.json` when present, otherwise the older
//! files (`vocab.txt` + `tokenizer_config.json` for BERT-family WordPiece).

pub mod marian;
pub mod sentencepiece;
pub mod wordpiece;

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

pub fn from_json_bytes(bytes: &[u8]) -> Result<Tokenizer> {
    Tokenizer::from_bytes(bytes).map_err(|e| Error::Tokenizer(format!("tokenizer.json: {e}")))
}

/// The repo's tokenizer and its config: `tokenizer.json`, else a WordPiece built from `vocab.txt`.
pub async fn load(repo: &Repo) -> Result<(Tokenizer, TokenizerConfig)> {
    let config: TokenizerConfig =
        repo.get_json_optional("tokenizer_config.json").await?.unwrap_or_default();
    if let Some(bytes) = repo.get_optional("tokenizer.json").await? {
        return Ok((from_json_bytes(&bytes)?, config));
    }
    if let Some(vocab) = repo.get_optional("vocab.txt").await? {
        return Ok((wordpiece::from_vocab_txt(&vocab, &config)?, config));
    }
    Err(Error::NotFound { url: format!("{} (nor vocab.txt)", repo.url("tokenizer.json")) })
}
