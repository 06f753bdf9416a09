//! RoBERTa's byte-level BPE tokenizer built from `vocab.json` + `merges.txt` (repos such as
//! cardiffnlp/twitter-roberta-base-sentiment-latest ship no tokenizer.json), the way transformers'
//! RobertaTokenizerFast converts RobertaTokenizer: GPT-2's byte-to-unicode mapping (a space is
//! `Ġ`) and word regex, no prefix space, `<s> … </s>` around the text, and the special tokens
//! matched in the text as whole tokens (`<mask>` taking the spaces before it, as RobertaTokenizer
//! declares it). Built in memory, so it works in the browser too.

use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::BPE;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::processors::roberta::RobertaProcessing;
use tokenizers::{AddedToken, Tokenizer};

use super::TokenizerConfig;
use crate::error::{Error, Result};

pub fn from_vocab_and_merges(vocab_json: &[u8], merges_txt: &[u8], config: &TokenizerConfig) -> Result<Tokenizer> {
    let bad = |file: &str, message: String| Error::Tokenizer(format!("{file}: {message}"));
    let vocab: ahash::AHashMap<String, u32> =
        serde_json::from_slice(vocab_json).map_err(|e| bad("vocab.json", format!("not a JSON object of token ids: {e}")))?;
    if let Some((token, id)) = vocab.iter().find(|(_, &id)| u64::from(id) >= crate::models::limits::MAX_VOCAB) {
        return Err(bad("vocab.json", format!("token {token:?} has id {id}, beyond any vocabulary")));
    }
    let text = std::str::from_utf8(merges_txt).map_err(|e| bad("merges.txt", format!("not UTF-8: {e}")))?;
    // RobertaTokenizer drops the first line (the `#version: 0.2` header) and reads one
    // whitespace-separated pair per line after it.
    let merges = text
        .split('\n')
        .skip(1)
        .filter(|line| !line.trim().is_empty())
        .enumerate()
        .map(|(i, line)| match line.split_whitespace().collect::<Vec<_>>()[..] {
            [a, b] => Ok((a.to_string(), b.to_string())),
            _ => Err(bad("merges.txt", format!("line {} is {line:?}, not two tokens", i + 2))),
        })
        .collect::<Result<Vec<_>>>()?;

    let special = |value: &Option<serde_json::Value>, default: &str| TokenizerConfig::token(value, default);
    let (cls, sep) = (special(&config.cls_token, "<s>"), special(&config.sep_token, "</s>"));
    let id_of = |token: &str| {
        vocab.get(token).copied().ok_or_else(|| bad("vocab.json", format!("special token {token} is missing")))
    };
    let (cls_id, sep_id) = (id_of(&cls)?, id_of(&sep)?);

    let model = BPE::builder()
        .vocab_and_merges(vocab.clone(), merges)
        .build()
        .map_err(|e| bad("merges.txt", e.to_string()))?;
    let mut tokenizer = Tokenizer::new(model);
    tokenizer
        .with_pre_tokenizer(Some(ByteLevel::new(false, true, true)))
        .with_post_processor(Some(RobertaProcessing::new((sep, sep_id), (cls, cls_id)).trim_offsets(true).add_prefix_space(false)))
        .with_decoder(Some(ByteLevelDecoder::default()));
    let mask = special(&config.mask_token, "<mask>");
    let specials: Vec<AddedToken> = [
        special(&config.cls_token, "<s>"),
        special(&config.pad_token, "<pad>"),
        special(&config.sep_token, "</s>"),
        special(&config.unk_token, "<unk>"),
    ]
    .into_iter()
    .map(|token| AddedToken::from(token, true))
    .chain([AddedToken::from(mask, true).lstrip(true).normalized(false)])
    .filter(|token| vocab.contains_key(&token.content))
    .collect();
    tokenizer.add_special_tokens(specials).map_err(|e| Error::Tokenizer(e.to_string()))?;
    Ok(tokenizer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokenizer(vocab: &str, merges: &str) -> Result<Tokenizer> {
        from_vocab_and_merges(vocab.as_bytes(), merges.as_bytes(), &TokenizerConfig::default())
    }

    #[test]
    fn bad_files_are_tokenizer_errors() {
        let vocab = r#"{"<s>": 0, "</s>": 2, "a": 3, "b": 4, "ab": 5}"#;
        assert!(tokenizer(vocab, "#version: 0.2\na b\n").is_ok());
        for (vocab, merges, says) in [
            ("[1, 2]", "#version: 0.2\n", "vocab.json"),
            (vocab, "#version: 0.2\na b c\n", "line 2"),
            (vocab, "#version: 0.2\na x\n", "merges.txt"),
            (r#"{"a": 3}"#, "#version: 0.2\n", "<s>"),
            (r#"{"<s>": 0, "</s>": 4294967295}"#, "#version: 0.2\n", "beyond"),
        ] {
            match tokenizer(vocab, merges) {
                Err(Error::Tokenizer(message)) => assert!(message.contains(says), "{message}"),
                other => panic!("{vocab} / {merges:?}: {:?}", other.map(|_| ())),
            }
        }
    }
}
