//! The DeBERTa-v2/v3 tokenizer as microsoft/deberta-v3-* repos (and most of their fine-tunes) ship
//! it: `spm.model` and `tokenizer_config.json`, no tokenizer.json. Built the way transformers'
//! `DebertaV2Converter` turns `DebertaV2Tokenizer` into the fast tokenizer that `AutoTokenizer`
//! and `pipeline()` load: the SentencePiece pieces as a unigram model whose ids are the piece
//! indices ([PAD]=0, [CLS]=1, [SEP]=2, [UNK]=3 in the real file), normalised by lower-casing
//! (`do_lower_case`), stripping, the model's precompiled character map and collapsing space runs;
//! split on punctuation (`split_by_punct`) and on `▁`-prefixed words; `[CLS] … [SEP]` around the
//! text; the special tokens, `[MASK]` (added after the pieces) included, recognised in the text.

use tokenizers::decoders::metaspace::{Metaspace as MetaspaceDecoder, PrependScheme};
use tokenizers::models::unigram::Unigram;
use tokenizers::normalizers::replace::ReplacePattern;
use tokenizers::normalizers::{Lowercase, Precompiled, Replace, Sequence as Normalizers, Strip};
use tokenizers::pre_tokenizers::metaspace::Metaspace;
use tokenizers::pre_tokenizers::punctuation::Punctuation;
use tokenizers::pre_tokenizers::sequence::Sequence as PreTokenizers;
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::{AddedToken, NormalizerWrapper, PreTokenizerWrapper, SplitDelimiterBehavior, Tokenizer};

use super::sentencepiece::{ModelType, PieceType, SentencePiece, SPACE};
use super::TokenizerConfig;
use crate::error::{Error, Result};

fn bad(message: impl std::fmt::Display) -> Error {
    Error::Tokenizer(format!("spm.model: {message}"))
}

/// A tokenizer from `spm.model` bytes and the repo's tokenizer_config.json.
pub fn from_spm(spm_model: &[u8], config: &TokenizerConfig) -> Result<Tokenizer> {
    // Parsing checks the model first (pieces, scores, the character map the normaliser walks).
    let spm = SentencePiece::from_bytes(spm_model).map_err(bad)?;
    if spm.model_type != ModelType::Unigram {
        return Err(bad(format!("a {:?} SentencePiece model; DeBERTa's is a unigram model", spm.model_type)));
    }
    let vocab: Vec<(String, f64)> = spm.pieces.iter().map(|p| (p.piece.clone(), f64::from(p.score))).collect();
    let model = Unigram::from(vocab, Some(spm.unk_id as usize), false).map_err(bad)?;

    let mut normalizers: Vec<NormalizerWrapper> = Vec::new();
    if config.do_lower_case.unwrap_or(false) {
        normalizers.push(Lowercase.into());
    }
    normalizers.push(Strip::new(true, true).into());
    if !spm.normalizer.precompiled_charsmap.is_empty() {
        normalizers.push(Precompiled::from(&spm.normalizer.precompiled_charsmap).map_err(bad)?.into());
    }
    normalizers.push(Replace::new(ReplacePattern::Regex(" {2,}".into()), " ").map_err(bad)?.into());

    let mut pre_tokenizers: Vec<PreTokenizerWrapper> = Vec::new();
    if config.split_by_punct.unwrap_or(false) {
        pre_tokenizers.push(Punctuation::new(SplitDelimiterBehavior::Isolated).into());
    }
    pre_tokenizers.push(Metaspace::new(SPACE, PrependScheme::Always, true).into());

    let token = |value: &Option<serde_json::Value>, default: &str| TokenizerConfig::token(value, default);
    let (cls, sep) = (token(&config.cls_token, "[CLS]"), token(&config.sep_token, "[SEP]"));
    let id_of = |piece: &str| {
        spm.piece_to_id(piece).ok_or_else(|| bad(format!("the special token {piece} is not one of its pieces")))
    };
    let (cls_id, sep_id) = (id_of(&cls)?, id_of(&sep)?);
    let post_processor = TemplateProcessing::builder()
        .try_single(format!("{cls}:0 $A:0 {sep}:0"))
        .and_then(|b| b.try_pair(format!("{cls}:0 $A:0 {sep}:0 $B:1 {sep}:1")))
        .map_err(bad)?
        .special_tokens(vec![(cls.clone(), cls_id), (sep.clone(), sep_id)])
        .build()
        .map_err(bad)?;

    let mut tokenizer = Tokenizer::new(model);
    tokenizer
        .with_normalizer(Some(Normalizers::new(normalizers)))
        .map_err(|e| Error::Tokenizer(e.to_string()))?;
    tokenizer
        .with_pre_tokenizer(Some(PreTokenizers::new(pre_tokenizers)))
        .with_post_processor(Some(post_processor))
        .with_decoder(Some(MetaspaceDecoder::new(SPACE, PrependScheme::Always, true)));

    // As the converter: control pieces are special tokens (matched whole, never normalised), user
    // pieces plain added tokens; then transformers' own special tokens, of which [MASK] is not a
    // piece and so gets the next id after them (128000 in deberta-v3).
    let (control, user): (Vec<_>, Vec<_>) = spm
        .pieces
        .iter()
        .filter(|p| matches!(p.kind, PieceType::Control | PieceType::UserDefined))
        .partition(|p| p.kind == PieceType::Control);
    let added = |piece: &String, special: bool| AddedToken::from(piece.clone(), special).normalized(false);
    tokenizer.add_special_tokens(control.iter().map(|p| added(&p.piece, true))).map_err(bad)?;
    tokenizer.add_tokens(user.iter().map(|p| added(&p.piece, false))).map_err(bad)?;
    // DebertaV2Tokenizer makes [UNK] alone a normalised token: matched in the normalised text
    // (so "[unk]" is it too when lower-casing).
    let unk = AddedToken::from(token(&config.unk_token, "[UNK]"), true).normalized(true);
    let specials = [cls, sep, token(&config.pad_token, "[PAD]"), token(&config.mask_token, "[MASK]")].map(|t| added(&t, true));
    tokenizer.add_special_tokens([unk]).map_err(bad)?;
    tokenizer.add_special_tokens(specials).map_err(bad)?;
    Ok(tokenizer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spm() -> Vec<u8> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/hub/tiny-random/deberta-v3-sentiment/spm.model");
        std::fs::read(path).unwrap()
    }

    fn ids(config: &TokenizerConfig, text: &str) -> Vec<u32> {
        from_spm(&spm(), config).unwrap().encode(text, true).unwrap().get_ids().to_vec()
    }

    #[test]
    fn options_follow_tokenizer_config() {
        let cased = TokenizerConfig::default();
        let lower = TokenizerConfig { do_lower_case: Some(true), ..Default::default() };
        assert_ne!(ids(&cased, "HELLO World"), ids(&cased, "hello world"));
        assert_eq!(ids(&lower, "HELLO World"), ids(&lower, "hello world"));
        let punct = TokenizerConfig { split_by_punct: Some(true), ..Default::default() };
        assert_ne!(ids(&punct, "licence,copyright"), ids(&cased, "licence,copyright"));
        // [CLS] … [SEP] around, special tokens in the text kept whole, [MASK] after the pieces.
        assert_eq!(ids(&cased, "[SEP][MASK]"), [1, 2, 800, 2]);
    }

    #[test]
    fn bad_files_are_tokenizer_errors() {
        for bytes in [&b""[..], b"\x0a\xff\xff\xff\xff\x0f", b"not a model at all"] {
            assert!(matches!(from_spm(bytes, &TokenizerConfig::default()), Err(Error::Tokenizer(_))));
        }
        let config = TokenizerConfig { cls_token: Some(serde_json::json!("<s>")), ..Default::default() };
        match from_spm(&spm(), &config) {
            Err(Error::Tokenizer(message)) => assert!(message.contains("<s>"), "{message}"),
            other => panic!("expected a tokenizer error, got {:?}", other.map(|_| ())),
        }
    }
}
