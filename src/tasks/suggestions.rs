//! The models a new user most likely wants per task: the page's and the widgets' model pickers
//! and `hubside models` list them. Any other repo id of a supported architecture works as well;
//! these are the ones people type first (most downloaded on the Hub for the task, small enough for
//! a browser tab in some dtype). Sizes are estimates from the parameter count: the exact figures
//! for a chosen model come from its weights' headers (`modelInfo()` / `hubside info`).

use serde::Serialize;

use crate::weights::WeightDType;

/// One suggested model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Suggestion {
    /// Hub repo id.
    pub model: &'static str,
    /// Its config.json `model_type` (a test checks it is one the task loads).
    pub model_type: &'static str,
    /// Parameters, rounded as the model card gives them.
    pub parameters: u64,
    /// What it does, in a few words.
    pub about: &'static str,
}

const M: u64 = 1_000_000;

pub const TEXT_CLASSIFICATION: &[Suggestion] = &[
    Suggestion { model: "distilbert/distilbert-base-uncased-finetuned-sst-2-english", model_type: "distilbert", parameters: 67 * M, about: "English sentiment: POSITIVE / NEGATIVE" },
    Suggestion { model: "cardiffnlp/twitter-roberta-base-sentiment-latest", model_type: "roberta", parameters: 125 * M, about: "English tweets: negative / neutral / positive" },
    Suggestion { model: "j-hartmann/emotion-english-distilroberta-base", model_type: "roberta", parameters: 82 * M, about: "English: 7 emotions" },
    Suggestion { model: "SamLowe/roberta-base-go_emotions", model_type: "roberta", parameters: 125 * M, about: "English: 28 emotions, several at once" },
    Suggestion { model: "cardiffnlp/twitter-xlm-roberta-base-sentiment", model_type: "xlm-roberta", parameters: 278 * M, about: "sentiment in 8 languages" },
    Suggestion { model: "papluca/xlm-roberta-base-language-detection", model_type: "xlm-roberta", parameters: 278 * M, about: "which of 20 languages a text is in" },
    Suggestion { model: "nlptown/bert-base-multilingual-uncased-sentiment", model_type: "bert", parameters: 167 * M, about: "reviews in 6 languages: 1 to 5 stars" },
];

pub const TRANSLATION: &[Suggestion] = &[
    Suggestion { model: "Helsinki-NLP/opus-mt-en-de", model_type: "marian", parameters: 74 * M, about: "English → German" },
    Suggestion { model: "Helsinki-NLP/opus-mt-de-en", model_type: "marian", parameters: 74 * M, about: "German → English" },
    Suggestion { model: "Helsinki-NLP/opus-mt-en-fr", model_type: "marian", parameters: 75 * M, about: "English → French" },
    Suggestion { model: "google-t5/t5-small", model_type: "t5", parameters: 61 * M, about: "English → German, French, Romanian" },
    Suggestion { model: "facebook/m2m100_418M", model_type: "m2m_100", parameters: 484 * M, about: "between any of 100 languages (src_lang, tgt_lang: en, de, …)" },
    Suggestion { model: "facebook/nllb-200-distilled-600M", model_type: "m2m_100", parameters: 615 * M, about: "between any of 200 languages (src_lang, tgt_lang: eng_Latn, deu_Latn, …)" },
];

pub const SPEECH_RECOGNITION: &[Suggestion] = &[
    Suggestion { model: "openai/whisper-tiny.en", model_type: "whisper", parameters: 39 * M, about: "English speech, fastest" },
    Suggestion { model: "openai/whisper-tiny", model_type: "whisper", parameters: 39 * M, about: "99 languages, translation to English" },
    Suggestion { model: "openai/whisper-base", model_type: "whisper", parameters: 74 * M, about: "99 languages, more accurate than tiny" },
    Suggestion { model: "distil-whisper/distil-small.en", model_type: "whisper", parameters: 166 * M, about: "English speech, near small's accuracy at a fraction of its decoding time" },
    Suggestion { model: "openai/whisper-small", model_type: "whisper", parameters: 244 * M, about: "99 languages, accurate; q8 or fp16 in a browser" },
    Suggestion { model: "openai/whisper-large-v3-turbo", model_type: "whisper", parameters: 809 * M, about: "the most accurate that fits a browser tab (as q8 or fp16)" },
];

/// A suggestion as `supportedTasks()` and `hubside models --json` give it.
#[derive(Debug, Clone, Serialize)]
pub struct SuggestionInfo {
    pub model: &'static str,
    pub model_type: &'static str,
    pub parameters: u64,
    pub about: &'static str,
    /// Estimated bytes of the weights per dtype (fp32, fp16, q8, q4): the download of the
    /// original f32 checkpoint is about `fp32`, the memory of a model loaded as `q8` about `q8`.
    pub bytes: std::collections::BTreeMap<&'static str, u64>,
}

impl Suggestion {
    /// Weights' bytes in `dtype`, estimated as if every parameter sat in a weight matrix.
    pub fn estimated_bytes(&self, dtype: WeightDType) -> u64 {
        (self.parameters as f64 * dtype.bytes_per_weight()).round() as u64
    }

    pub fn info(&self) -> SuggestionInfo {
        SuggestionInfo {
            model: self.model,
            model_type: self.model_type,
            parameters: self.parameters,
            about: self.about,
            bytes: WeightDType::ALL.iter().map(|&dtype| (dtype.name(), self.estimated_bytes(dtype))).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::tasks::TASKS;

    #[test]
    fn every_suggestion_is_an_architecture_its_task_loads_and_the_default_comes_first() {
        for info in &TASKS {
            assert!(!info.suggested.is_empty(), "{}: no suggestions", info.name);
            assert_eq!(info.suggested[0].model, info.default_model, "{}: the default model is suggested first", info.name);
            for suggestion in info.suggested {
                assert!(
                    info.model_types().contains(&suggestion.model_type),
                    "{}: {} is a {}, which the task does not load ({:?})",
                    info.name, suggestion.model, suggestion.model_type, info.model_types()
                );
                assert!(crate::hub::Repo::remote(suggestion.model, None, None).is_ok(), "{} is a valid repo id", suggestion.model);
            }
        }
    }

    #[test]
    fn estimates_follow_the_dtype_rule() {
        let tiny = super::SPEECH_RECOGNITION[0];
        let bytes = tiny.info().bytes;
        assert_eq!(bytes["fp32"], 156_000_000);
        assert_eq!(bytes["fp16"], 78_000_000);
        assert_eq!(bytes["q8"], 41_437_500);
        assert_eq!(bytes["q4"], 24_375_000);
    }
}
