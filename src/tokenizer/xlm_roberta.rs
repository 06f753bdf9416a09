//! XLM-RoBERTa's tokenizer from `sentencepiece.bpe.model` alone (repos such as
//! cardiffnlp/twitter-xlm-roberta-base-sentiment ship no tokenizer.json), behaving like
//! transformers' XLMRobertaTokenizer:
//!
//! - ids follow fairseq's dictionary, not the SentencePiece model's: `<s>` 0, `<pad>` 1, `</s>` 2,
//!   `<unk>` 3, every other piece its SentencePiece id + 1, and `<mask>` after the last piece
//!   (the file, despite its name, holds a unigram model; both kinds segment alike here);
//! - the special tokens written in a text are matched as whole tokens (the longest at the earliest
//!   position), `<mask>` taking the whitespace before it; the text between them is segmented by
//!   SentencePiece, and a piece SentencePiece does not know becomes `<unk>`;
//! - `<s> … </s>` around the ids, the pieces truncated first so that the whole fits the limit.

use super::sentencepiece::SentencePiece;
use super::TokenizerConfig;
use crate::error::{Error, Result};

/// fairseq's dictionary puts these four first; SentencePiece ids are shifted past them by one
/// (its own `<unk>`, `<s>`, `</s>` at 0..=2 take the places of fairseq's 1..=3).
const FAIRSEQ_OFFSET: u32 = 1;
const BOS_ID: u32 = 0;
const PAD_ID: u32 = 1;
const EOS_ID: u32 = 2;
const UNK_ID: u32 = 3;

pub struct XlmRobertaTokenizer {
    spm: SentencePiece,
    /// Special tokens recognised in text, longest first: (token, id, takes the whitespace before it).
    specials: Vec<(String, u32, bool)>,
    /// Most ids an encoding may have, `<s>` and `</s>` included.
    max_length: Option<usize>,
}

impl XlmRobertaTokenizer {
    pub fn from_bytes(spm: &[u8], config: &TokenizerConfig) -> Result<Self> {
        let spm = SentencePiece::from_bytes(spm).map_err(|e| Error::Tokenizer(format!("sentencepiece.bpe.model: {e}")))?;
        let mask_id = u32::try_from(spm.len())
            .ok()
            .and_then(|n| n.checked_add(FAIRSEQ_OFFSET))
            .ok_or_else(|| Error::Tokenizer("sentencepiece.bpe.model has too many pieces".into()))?;
        let token = |value: &Option<serde_json::Value>, default: &str| TokenizerConfig::token(value, default);
        let mut specials = vec![
            (token(&config.cls_token, "<s>"), BOS_ID, false),
            (token(&config.pad_token, "<pad>"), PAD_ID, false),
            (token(&config.sep_token, "</s>"), EOS_ID, false),
            (token(&config.unk_token, "<unk>"), UNK_ID, false),
            (token(&config.mask_token, "<mask>"), mask_id, true),
        ];
        specials.retain(|(token, _, _)| !token.is_empty());
        specials.sort_by_key(|(token, _, _)| std::cmp::Reverse(token.len()));
        Ok(XlmRobertaTokenizer { spm, specials, max_length: None })
    }

    /// Truncate encodings to `max_length` ids, `<s>` and `</s>` included.
    pub fn set_max_length(&mut self, max_length: usize) {
        self.max_length = Some(max_length);
    }

    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.specials.iter().find(|(t, _, _)| t == token).map(|&(_, id, _)| id).or_else(|| self.piece_id(token))
    }

    /// XLMRobertaTokenizer's `_convert_token_to_id` for a piece: SentencePiece's `PieceToId` + 1,
    /// or `<unk>` for what SentencePiece maps to its id 0 (its own `<unk>`).
    fn piece_id(&self, piece: &str) -> Option<u32> {
        match self.spm.piece_to_id(piece).unwrap_or(self.spm.unk_id) {
            0 => None,
            id => Some(id + FAIRSEQ_OFFSET),
        }
    }

    /// Ids of `text` with `<s>` and `</s>`, truncated to the maximum length.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let mut ids = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            let found = rest.char_indices().find_map(|(at, _)| {
                self.specials.iter().find(|(token, _, _)| rest[at..].starts_with(token.as_str())).map(|s| (at, s))
            });
            let segment = match found {
                Some((at, (token, _, lstrip))) => {
                    let segment = if *lstrip { rest[..at].trim_end() } else { &rest[..at] };
                    rest = &rest[at + token.len()..];
                    segment
                }
                None => std::mem::take(&mut rest),
            };
            ids.extend(self.spm.encode(segment).iter().map(|(piece, _)| self.piece_id(piece).unwrap_or(UNK_ID)));
            if let Some((_, (_, id, _))) = found {
                ids.push(*id);
            }
        }
        if let Some(max_length) = self.max_length {
            ids.truncate(max_length.saturating_sub(2));
        }
        ids.insert(0, BOS_ID);
        ids.push(EOS_ID);
        ids
    }
}
