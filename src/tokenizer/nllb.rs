//! The NLLB-200 tokenizer as facebook/nllb-200-* repos ship it: `tokenizer.json` (what
//! transformers' `NllbTokenizerFast` loads; `sentencepiece.bpe.model` beside it is what it was
//! converted from) with the language codes (`eng_Latn`, ...) as added special tokens, and
//! `tokenizer_config.json`. The text is tokenized without the file's post-processor, whose
//! template names the source language it was saved with; the input is framed as
//! `set_src_lang_special_tokens` frames it: `src_lang tokens </s>`, or with `legacy_behaviour`
//! `tokens </s> src_lang`.

use tokenizers::Tokenizer;

use super::{LanguageTokenizer, TokenizerConfig};
use crate::error::{Error, Result};

pub struct NllbTokenizer {
    tokenizer: Tokenizer,
    /// Language codes and their ids, in id order.
    languages: Vec<(String, u32)>,
    eos_id: u32,
    legacy_behaviour: bool,
    src_lang: Option<String>,
    tgt_lang: Option<String>,
    max_length: Option<usize>,
}

impl NllbTokenizer {
    /// From `tokenizer.json`'s bytes and tokenizer_config.json (null without one).
    pub fn from_parts(tokenizer_json: &[u8], config: &serde_json::Value) -> Result<Self> {
        let tokenizer = super::from_json_bytes(tokenizer_json)?;
        let token = |key: &str, default: &str| TokenizerConfig::token(&config.get(key).cloned(), default);
        let eos = token("eos_token", "</s>");
        let eos_id =
            tokenizer.token_to_id(&eos).ok_or_else(|| Error::Tokenizer(format!("tokenizer.json has no {eos} (eos_token)")))?;
        // The language codes are the additional special tokens (NllbTokenizerFast's default is
        // its list of 202 codes, which tokenizer_config.json repeats); without that list, every
        // special added token that is not one of the named ones.
        let named: Vec<String> = ["bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"]
            .iter()
            .zip(["<s>", "</s>", "<unk>", "</s>", "<pad>", "<s>", "<mask>"])
            .map(|(key, default)| token(key, default))
            .collect();
        let listed: Vec<String> = config
            .get("additional_special_tokens")
            .and_then(|v| v.as_array())
            .map(|tokens| tokens.iter().map(|t| TokenizerConfig::token(&Some(t.clone()), "")).filter(|t| !t.is_empty()).collect())
            .unwrap_or_default();
        let mut languages: Vec<(String, u32)> = if listed.is_empty() {
            tokenizer
                .get_added_tokens_decoder()
                .into_iter()
                .filter(|(_, token)| token.special && !named.contains(&token.content))
                .map(|(id, token)| (token.content, id))
                .collect()
        } else {
            listed.into_iter().filter_map(|code| tokenizer.token_to_id(&code).map(|id| (code, id))).collect()
        };
        languages.sort_by_key(|&(_, id)| id);
        if languages.is_empty() {
            return Err(Error::Tokenizer("tokenizer.json has no language tokens (such as eng_Latn)".into()));
        }
        let string = |key: &str| config.get(key).and_then(|v| v.as_str()).map(str::to_string);
        Ok(NllbTokenizer {
            tokenizer,
            languages,
            eos_id,
            legacy_behaviour: config.get("legacy_behaviour").and_then(|v| v.as_bool()).unwrap_or(false),
            src_lang: string("src_lang"),
            tgt_lang: string("tgt_lang"),
            max_length: TokenizerConfig { model_max_length: config.get("model_max_length").and_then(|v| v.as_f64()), ..Default::default() }
                .max_length(),
        })
    }
}

impl LanguageTokenizer for NllbTokenizer {
    fn language_codes(&self) -> Vec<String> {
        self.languages.iter().map(|(code, _)| code.clone()).collect()
    }

    fn language_id(&self, code: &str) -> Option<u32> {
        self.languages.iter().find(|(c, _)| c == code).map(|&(_, id)| id)
    }

    fn encode(&self, text: &str, source: u32) -> Result<Vec<u32>> {
        let encoding = self.tokenizer.encode(text, false).map_err(|e| Error::Tokenizer(e.to_string()))?;
        let tokens = encoding.get_ids();
        let mut ids = Vec::with_capacity(tokens.len() + 2);
        if self.legacy_behaviour {
            ids.extend_from_slice(tokens);
            ids.extend([self.eos_id, source]);
        } else {
            ids.push(source);
            ids.extend_from_slice(tokens);
            ids.push(self.eos_id);
        }
        Ok(ids)
    }

    fn decode(&self, ids: &[u32]) -> Result<String> {
        self.tokenizer.decode(ids, true).map_err(|e| Error::Tokenizer(e.to_string()))
    }

    fn default_languages(&self) -> (Option<String>, Option<String>) {
        (self.src_lang.clone(), self.tgt_lang.clone())
    }

    fn max_length(&self) -> Option<usize> {
        self.max_length
    }
}
