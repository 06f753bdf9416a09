//! Whisper's special tokens (read from the repo's tokenizer, so English-only, multilingual and
//! large-v3 vocabularies all work) and openai/whisper's language table
//! ([`LANGUAGES`, `TO_LANGUAGE_CODE`](https://github.com/openai/whisper/blob/fdf63e51dc3089e10d72fd25ac04ffe22f86543e/whisper/tokenizer.py)).

use serde::Serialize;
use tokenizers::Tokenizer;

use crate::error::{Error, Result};

/// Special token ids, read from the tokenizer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SpecialTokens {
    pub eot: u32,
    pub sot: u32,
    pub translate: u32,
    pub transcribe: u32,
    pub sot_lm: Option<u32>,
    pub sot_prev: Option<u32>,
    pub no_speech: Option<u32>,
    pub no_timestamps: u32,
    pub timestamp_begin: u32,
    /// (language code, token id), in vocabulary order.
    pub languages: Vec<(String, u32)>,
}

impl SpecialTokens {
    pub fn from_tokenizer(tokenizer: &Tokenizer) -> Result<Self> {
        let id = |token: &str| tokenizer.token_to_id(token);
        let need = |token: &str| {
            id(token).ok_or_else(|| Error::Tokenizer(format!("tokenizer.json has no {token}: not a Whisper tokenizer")))
        };
        let eot = need("<|endoftext|>")?;
        let sot = need("<|startoftranscript|>")?;
        let translate = need("<|translate|>")?;
        let transcribe = need("<|transcribe|>")?;
        let no_timestamps = need("<|notimestamps|>")?;
        let timestamp_begin = id("<|0.00|>").unwrap_or(no_timestamps + 1);
        let languages = (sot + 1..translate.min(transcribe))
            .filter_map(|i| {
                let token = tokenizer.id_to_token(i)?;
                let code = token.strip_prefix("<|")?.strip_suffix("|>")?;
                (!code.is_empty() && code.chars().all(|c| c.is_ascii_lowercase())).then(|| (code.to_string(), i))
            })
            .collect();
        Ok(SpecialTokens {
            eot,
            sot,
            translate,
            transcribe,
            sot_lm: id("<|startoflm|>"),
            sot_prev: id("<|startofprev|>"),
            no_speech: id("<|nospeech|>").or_else(|| id("<|nocaptions|>")),
            no_timestamps,
            timestamp_begin,
            languages,
        })
    }

    pub fn language_id(&self, code: &str) -> Option<u32> {
        self.languages.iter().find(|(c, _)| c == code).map(|(_, id)| *id)
    }
}

/// openai/whisper's language table (code, English name), for names as well as codes.
pub const LANGUAGES: &[(&str, &str)] = &[
    ("en", "english"), ("zh", "chinese"), ("de", "german"), ("es", "spanish"), ("ru", "russian"),
    ("ko", "korean"), ("fr", "french"), ("ja", "japanese"), ("pt", "portuguese"), ("tr", "turkish"),
    ("pl", "polish"), ("ca", "catalan"), ("nl", "dutch"), ("ar", "arabic"), ("sv", "swedish"),
    ("it", "italian"), ("id", "indonesian"), ("hi", "hindi"), ("fi", "finnish"), ("vi", "vietnamese"),
    ("he", "hebrew"), ("uk", "ukrainian"), ("el", "greek"), ("ms", "malay"), ("cs", "czech"),
    ("ro", "romanian"), ("da", "danish"), ("hu", "hungarian"), ("ta", "tamil"), ("no", "norwegian"),
    ("th", "thai"), ("ur", "urdu"), ("hr", "croatian"), ("bg", "bulgarian"), ("lt", "lithuanian"),
    ("la", "latin"), ("mi", "maori"), ("ml", "malayalam"), ("cy", "welsh"), ("sk", "slovak"),
    ("te", "telugu"), ("fa", "persian"), ("lv", "latvian"), ("bn", "bengali"), ("sr", "serbian"),
    ("az", "azerbaijani"), ("sl", "slovenian"), ("kn", "kannada"), ("et", "estonian"), ("mk", "macedonian"),
    ("br", "breton"), ("eu", "basque"), ("is", "icelandic"), ("hy", "armenian"), ("ne", "nepali"),
    ("mn", "mongolian"), ("bs", "bosnian"), ("kk", "kazakh"), ("sq", "albanian"), ("sw", "swahili"),
    ("gl", "galician"), ("mr", "marathi"), ("pa", "punjabi"), ("si", "sinhala"), ("km", "khmer"),
    ("sn", "shona"), ("yo", "yoruba"), ("so", "somali"), ("af", "afrikaans"), ("oc", "occitan"),
    ("ka", "georgian"), ("be", "belarusian"), ("tg", "tajik"), ("sd", "sindhi"), ("gu", "gujarati"),
    ("am", "amharic"), ("yi", "yiddish"), ("lo", "lao"), ("uz", "uzbek"), ("fo", "faroese"),
    ("ht", "haitian creole"), ("ps", "pashto"), ("tk", "turkmen"), ("nn", "nynorsk"), ("mt", "maltese"),
    ("sa", "sanskrit"), ("lb", "luxembourgish"), ("my", "myanmar"), ("bo", "tibetan"), ("tl", "tagalog"),
    ("mg", "malagasy"), ("as", "assamese"), ("tt", "tatar"), ("haw", "hawaiian"), ("ln", "lingala"),
    ("ha", "hausa"), ("ba", "bashkir"), ("jw", "javanese"), ("su", "sundanese"), ("yue", "cantonese"),
];

const LANGUAGE_ALIASES: &[(&str, &str)] = &[
    ("burmese", "my"), ("valencian", "ca"), ("flemish", "nl"), ("haitian", "ht"),
    ("letzeburgesch", "lb"), ("pushto", "ps"), ("panjabi", "pa"), ("moldavian", "ro"),
    ("moldovan", "ro"), ("sinhalese", "si"), ("castilian", "es"), ("mandarin", "zh"),
];

/// A language code from a code, a `<|code|>` token or an English name (any case).
pub fn language_code(language: &str) -> Option<String> {
    let l = language.trim().to_lowercase();
    let l = l.strip_prefix("<|").and_then(|s| s.strip_suffix("|>")).unwrap_or(&l).to_string();
    LANGUAGES
        .iter()
        .find(|(code, name)| *code == l || *name == l)
        .map(|(code, _)| code.to_string())
        .or_else(|| LANGUAGE_ALIASES.iter().find(|(name, _)| *name == l).map(|(_, code)| code.to_string()))
        .or_else(|| (l.len() <= 3 && !l.is_empty() && l.chars().all(|c| c.is_ascii_lowercase())).then_some(l))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_names_and_codes() {
        assert_eq!(language_code("de").as_deref(), Some("de"));
        assert_eq!(language_code("German").as_deref(), Some("de"));
        assert_eq!(language_code("<|fr|>").as_deref(), Some("fr"));
        assert_eq!(language_code("mandarin").as_deref(), Some("zh"));
        assert_eq!(language_code("klingon"), None);
        assert_eq!(LANGUAGES.len(), 100);
    }
}
