//! BERT WordPiece tokenizer built from `vocab.txt`, as transformers' BertTokenizerFast does it:
//! BERT normaliser (clean text, CJK spacing, lowercase + strip accents when `do_lower_case`),
//! BERT pre-tokenizer, `##` continuation, `[CLS] ... [SEP]` post-processing.

use tokenizers::decoders::wordpiece::WordPiece as WordPieceDecoder;
use tokenizers::models::wordpiece::WordPiece;
use tokenizers::normalizers::bert::BertNormalizer;
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::processors::bert::BertProcessing;
use tokenizers::{AddedToken, Tokenizer};

use super::TokenizerConfig;
use crate::error::{Error, Result};

pub fn from_vocab_txt(vocab_txt: &[u8], config: &TokenizerConfig) -> Result<Tokenizer> {
    let text = std::str::from_utf8(vocab_txt)
        .map_err(|e| Error::Tokenizer(format!("vocab.txt is not UTF-8: {e}")))?;
    // One token per line, id = line number (BertTokenizer's load_vocab keeps blank-looking lines).
    let vocab: ahash::AHashMap<String, u32> = text
        .lines()
        .enumerate()
        .map(|(id, token)| (token.trim_end_matches('\r').to_string(), id as u32))
        .collect();
    let id_of = |token: &str| {
        vocab.get(token).copied().ok_or_else(|| {
            Error::Tokenizer(format!("special token {token} is missing from vocab.txt"))
        })
    };
    let unk = TokenizerConfig::token(&config.unk_token, "[UNK]");
    let sep = TokenizerConfig::token(&config.sep_token, "[SEP]");
    let cls = TokenizerConfig::token(&config.cls_token, "[CLS]");
    let pad = TokenizerConfig::token(&config.pad_token, "[PAD]");
    let mask = TokenizerConfig::token(&config.mask_token, "[MASK]");
    let (sep_id, cls_id) = (id_of(&sep)?, id_of(&cls)?);
    id_of(&unk)?;

    let model = WordPiece::builder()
        .vocab(vocab.clone())
        .unk_token(unk.clone())
        .continuing_subword_prefix("##".to_string())
        .max_input_chars_per_word(100)
        .build()
        .map_err(|e| Error::Tokenizer(format!("vocab.txt: {e}")))?;
    let lowercase = config.do_lower_case.unwrap_or(true);
    let mut tokenizer = Tokenizer::new(model);
    tokenizer
        .with_normalizer(Some(BertNormalizer::new(
            true,
            config.tokenize_chinese_chars.unwrap_or(true),
            config.strip_accents,
            lowercase,
        )))
        .map_err(|e| Error::Tokenizer(e.to_string()))?;
    tokenizer
        .with_pre_tokenizer(Some(BertPreTokenizer))
        .with_post_processor(Some(BertProcessing::new((sep, sep_id), (cls, cls_id))))
        .with_decoder(Some(WordPieceDecoder::default()));
    let specials: Vec<AddedToken> = [unk, pad, mask]
        .into_iter()
        .chain([TokenizerConfig::token(&config.sep_token, "[SEP]"), TokenizerConfig::token(&config.cls_token, "[CLS]")])
        .filter(|t| vocab.contains_key(t))
        .map(|t| AddedToken::from(t, true))
        .collect();
    tokenizer.add_special_tokens(specials).map_err(|e| Error::Tokenizer(e.to_string()))?;
    Ok(tokenizer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vocab() -> Vec<u8> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/hub/tiny-random/distilbert-sst2-legacy/vocab.txt");
        std::fs::read(path).unwrap()
    }

    fn ids(config: &TokenizerConfig, text: &str) -> Vec<u32> {
        from_vocab_txt(&vocab(), config).unwrap().encode(text, true).unwrap().get_ids().to_vec()
    }

    #[test]
    fn normalisation_follows_tokenizer_config() {
        let lower = TokenizerConfig { do_lower_case: Some(true), ..Default::default() };
        // Lowercasing strips accents unless the config says otherwise (BertTokenizer's rule).
        assert_eq!(ids(&lower, "Café"), ids(&lower, "cafe"));
        let keep_accents = TokenizerConfig { do_lower_case: Some(true), strip_accents: Some(false), ..Default::default() };
        assert_ne!(ids(&keep_accents, "Café"), ids(&lower, "Café"));
        let cased = TokenizerConfig { do_lower_case: Some(false), ..Default::default() };
        assert_ne!(ids(&cased, "Hello"), ids(&lower, "Hello"));
        // CJK characters are split one per token unless disabled.
        let no_cjk = TokenizerConfig { tokenize_chinese_chars: Some(false), ..lower };
        assert_ne!(ids(&no_cjk, "東京"), ids(&TokenizerConfig::default(), "東京"));
    }

    #[test]
    fn missing_special_tokens_are_an_error() {
        let err = from_vocab_txt(b"hello\nworld\n", &TokenizerConfig::default()).unwrap_err();
        assert!(err.to_string().contains("[SEP]"), "{err}");
    }
}
