//! Whisper's vocabulary: token ids → text, from the repo's tokenizer.json, or from the token bytes
//! of a whisper.cpp ggml file (ggerganov/whisper.cpp ships no tokenizer.json).
//!
//! A ggml file stores only the ordinary tokens, as raw bytes; the special tokens follow from the
//! model's `n_vocab` exactly as whisper.cpp's `whisper_vocab` numbers them, and decoding is the
//! concatenation of the tokens' bytes, read as UTF-8 once at the end (a character may span tokens).

use std::collections::HashMap;

use tokenizers::Tokenizer;

use super::tokens::{SpecialTokens, LANGUAGES};
use crate::error::{Error, Result};

/// How the transcriber turns token ids into text.
pub enum Vocabulary {
    Tokenizer(Box<Tokenizer>),
    Ggml(GgmlVocab),
}

impl Vocabulary {
    /// Text of ordinary token ids (the caller leaves out special and timestamp tokens).
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        match self {
            Vocabulary::Tokenizer(tokenizer) => tokenizer.decode(ids, true).map_err(|e| Error::Tokenizer(e.to_string())),
            Vocabulary::Ggml(vocab) => Ok(vocab.decode(ids)),
        }
    }

    /// Token ids of `text`, no special tokens added (prompts such as `initial_prompt`).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        match self {
            Vocabulary::Tokenizer(tokenizer) => Ok(tokenizer
                .encode(text, false)
                .map_err(|e| Error::Tokenizer(e.to_string()))?
                .get_ids()
                .to_vec()),
            Vocabulary::Ggml(_) => Err(Error::Input(
                "a whisper.cpp ggml file has no tokenizer to encode a prompt with: initial_prompt needs a repo with tokenizer.json".into(),
            )),
        }
    }
}

/// English-only Whisper models have 51864 tokens; multilingual ones one more (51865), large-v3
/// another language (51866).
const ENGLISH_ONLY_VOCAB: usize = 51864;
/// whisper.cpp's `num_languages()`: n_vocab − 51765 (− 1 for multilingual models).
const LANGUAGE_OFFSET: usize = 51765;
/// `<|endoftext|>` of English-only models; multilingual ones have one more ordinary token.
const ENGLISH_ONLY_EOT: u32 = 50256;

/// The ordinary tokens of a ggml file and the model's vocabulary size.
#[derive(Debug, Clone)]
pub struct GgmlVocab {
    tokens: Vec<Vec<u8>>,
    ids: HashMap<Vec<u8>, u32>,
    n_vocab: usize,
}

impl GgmlVocab {
    /// `tokens`: bytes by id, as the file stores them; `n_vocab`: the model's vocabulary size.
    pub fn new(tokens: Vec<Vec<u8>>, n_vocab: usize) -> Self {
        // Later ids win for repeated bytes, as in whisper.cpp's `token_to_id`.
        let ids = tokens.iter().enumerate().map(|(id, bytes)| (bytes.clone(), id as u32)).collect();
        GgmlVocab { tokens, ids, n_vocab }
    }

    pub fn token_id(&self, bytes: &[u8]) -> Option<u32> {
        self.ids.get(bytes).copied()
    }

    /// The tokens' bytes concatenated, as UTF-8 (invalid sequences replaced, only after joining).
    /// Ids without bytes (special tokens) contribute nothing.
    pub fn decode(&self, ids: &[u32]) -> String {
        let bytes: Vec<u8> =
            ids.iter().filter_map(|&id| self.tokens.get(id as usize)).flatten().copied().collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Special token ids as whisper.cpp's `whisper_vocab` derives them from `n_vocab`: after
    /// `<|endoftext|>` and `<|startoftranscript|>` come `num_languages` language tokens, then
    /// translate, transcribe, start-of-LM, start-of-prev, no-speech, no-timestamps and the first
    /// timestamp.
    pub fn special_tokens(&self) -> Result<SpecialTokens> {
        let n = self.n_vocab;
        let multilingual = n > ENGLISH_ONLY_VOCAB;
        let num_languages = n.checked_sub(LANGUAGE_OFFSET + multilingual as usize).filter(|&l| l <= LANGUAGES.len());
        let num_languages = match num_languages {
            Some(l) if n >= ENGLISH_ONLY_VOCAB => l,
            _ => {
                return Err(Error::Tokenizer(format!(
                    "a vocabulary of {n} tokens is not Whisper's ({ENGLISH_ONLY_VOCAB} to {})",
                    LANGUAGE_OFFSET + 1 + LANGUAGES.len()
                )))
            }
        };
        let eot = ENGLISH_ONLY_EOT + multilingual as u32;
        let sot = eot + 1;
        let translate = sot + num_languages as u32 + 1;
        Ok(SpecialTokens {
            eot,
            sot,
            translate,
            transcribe: translate + 1,
            sot_lm: Some(translate + 2),
            sot_prev: Some(translate + 3),
            no_speech: Some(translate + 4),
            no_timestamps: translate + 5,
            timestamp_begin: translate + 6,
            languages: LANGUAGES[..num_languages]
                .iter()
                .zip(sot + 1..)
                .map(|((code, _), id)| (code.to_string(), id))
                .collect(),
        })
    }

    /// openai/whisper's `non_speech_tokens()` (what `suppress_tokens: [-1]` stands for, and what
    /// CTranslate2's `suppress_ids` and transformers' `suppress_tokens` hold): symbols that are
    /// one token, alone or after a space; for the music symbols the first token of their bytes;
    /// and " -", " '" (allowed only inside words).
    pub fn non_speech_tokens(&self) -> Vec<u32> {
        const SYMBOLS: &str = "\"#()*+/:;<=>@[\\]^_`{|}~「」『』";
        const SEQUENCES: [&str; 20] = [
            "<<", ">>", "<<<", ">>>", "--", "---", "-(", "-[", "('", "(\"", "((", "))", "(((", ")))", "[[", "]]",
            "{{", "}}", "♪♪", "♪♪♪",
        ];
        const MUSIC: &str = "♩♪♫♬♭♮♯";
        let mut ids = Vec::new();
        let symbols = SYMBOLS.chars().map(String::from).chain(SEQUENCES.iter().map(|s| s.to_string()));
        for symbol in symbols {
            for text in [symbol.clone(), format!(" {symbol}")] {
                ids.extend(self.token_id(text.as_bytes()));
            }
        }
        for symbol in MUSIC.chars() {
            for text in [symbol.to_string(), format!(" {symbol}")] {
                ids.extend(self.first_token(text.as_bytes()));
            }
        }
        ids.extend([" -", " '"].iter().filter_map(|t| self.token_id(t.as_bytes())));
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// openai's `SuppressBlank`: a blank (" ") or `<|endoftext|>` cannot start the text.
    pub fn begin_suppress_tokens(&self, eot: u32) -> Vec<u32> {
        self.token_id(b" ").into_iter().chain([eot]).collect()
    }

    /// The token byte-pair encoding starts `bytes` with: its longest prefix in the vocabulary
    /// (what BPE gives for the short strings asked here).
    fn first_token(&self, bytes: &[u8]) -> Option<u32> {
        (1..=bytes.len()).rev().find_map(|len| self.token_id(&bytes[..len]))
    }
}

/// GPT-2's byte-level alphabet (`bytes_to_unicode`): printable bytes stand for themselves, the
/// others for U+0100 onwards, in byte order.
fn byte_level_alphabet() -> HashMap<char, u8> {
    let printable = |b: u8| (b'!'..=b'~').contains(&b) || (0xA1..=0xAC).contains(&b) || (0xAE..=0xFF).contains(&b);
    let mut next = 0x100u32;
    (0..=255u8)
        .map(|b| {
            let c = if printable(b) {
                char::from(b)
            } else {
                next += 1;
                char::from_u32(next - 1).unwrap_or(char::REPLACEMENT_CHARACTER)
            };
            (c, b)
        })
        .collect()
}

/// A Whisper tokenizer.json's tokens 0..=50256 as raw bytes: what the published
/// ggerganov/whisper.cpp files hold (converted from openai's vocab.json files, whose 50257 entries
/// end in `<|endoftext|>` for English-only models and in an empty token for multilingual ones;
/// today's converter drops `<|endoftext|>`). Ids the tokenizer lacks are empty.
pub fn ggml_vocab_from_tokenizer(tokenizer: &Tokenizer) -> Result<Vec<Vec<u8>>> {
    if tokenizer.token_to_id("<|endoftext|>").is_none() {
        return Err(Error::Tokenizer("tokenizer.json has no <|endoftext|>: not a Whisper tokenizer".into()));
    }
    let alphabet = byte_level_alphabet();
    (0..=ENGLISH_ONLY_EOT)
        .map(|id| match tokenizer.id_to_token(id) {
            None => Ok(Vec::new()),
            Some(token) => token.chars().map(|c| alphabet.get(&c).copied()).collect::<Option<Vec<u8>>>().ok_or_else(|| {
                Error::Tokenizer(format!("token {id} ({token:?}) is not in GPT-2's byte-level alphabet"))
            }),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vocab(n_vocab: usize) -> GgmlVocab {
        GgmlVocab::new(vec![b"a".to_vec(), b" b".to_vec(), vec![0xE2], vec![0x99, 0xAA]], n_vocab)
    }

    #[test]
    fn special_ids_follow_n_vocab_as_in_whisper_cpp() {
        // (n_vocab, eot, sot, translate, no_timestamps, timestamp_begin, languages)
        for (n, eot, sot, translate, not, beg, langs) in [
            (51864, 50256, 50257, 50357, 50362, 50363, 99),
            (51865, 50257, 50258, 50358, 50363, 50364, 99),
            (51866, 50257, 50258, 50359, 50364, 50365, 100),
        ] {
            let s = vocab(n).special_tokens().unwrap();
            assert_eq!((s.eot, s.sot, s.translate, s.no_timestamps, s.timestamp_begin), (eot, sot, translate, not, beg), "{n}");
            assert_eq!((s.transcribe, s.sot_lm, s.sot_prev, s.no_speech), (translate + 1, Some(translate + 2), Some(translate + 3), Some(translate + 4)));
            assert_eq!(s.languages.len(), langs);
            assert_eq!(s.languages[0], ("en".to_string(), sot + 1));
            assert_eq!(s.languages.last().unwrap().1, translate - 1);
        }
        assert_eq!(vocab(51866).special_tokens().unwrap().languages[99].0, "yue");
        for bad in [0, 100, 51863, 51867, 1 << 20] {
            assert!(matches!(vocab(bad).special_tokens(), Err(Error::Tokenizer(_))), "{bad}");
        }
    }

    #[test]
    fn decoding_joins_bytes_before_utf8() {
        let v = vocab(51864);
        assert_eq!(v.decode(&[0, 1]), "a b");
        // U+266A (♪) split over two tokens.
        assert_eq!(v.decode(&[2, 3]), "♪");
        assert_eq!(v.decode(&[2]), "\u{FFFD}");
        assert_eq!(v.decode(&[0, 50256, 99999]), "a");
        assert_eq!(v.first_token("♪".as_bytes()), Some(2));
    }

    #[test]
    fn byte_level_alphabet_is_gpt2s() {
        let alphabet = byte_level_alphabet();
        assert_eq!(alphabet.len(), 256);
        assert_eq!(alphabet[&'Ġ'], b' ');
        assert_eq!(alphabet[&'Ċ'], b'\n');
        assert_eq!(alphabet[&'a'], b'a');
        assert_eq!(alphabet[&'\u{100}'], 0);
    }
}
