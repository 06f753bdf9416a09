//! The shapes of the reference files in tests/fixtures (made with PyTorch + transformers),
//! shared by the native and the browser tests. Fields a test does not need are ignored.
#![allow(dead_code)] // each test file uses its own subset

use serde::Deserialize;

/// `hub/tiny-random/{classifier}/reference.json`.
#[derive(Deserialize)]
pub struct Classification {
    pub cases: Vec<ClassificationCase>,
}

#[derive(Deserialize)]
pub struct ClassificationCase {
    pub text: String,
    pub input_ids: Vec<u32>,
    pub logits: Vec<f32>,
    pub scores: Vec<f32>,
    pub label: String,
    /// Best score less the second best, where the reference records it (tests/models/make_*.py):
    /// below the tolerance the label may differ by rounding alone.
    #[serde(default)]
    pub top_margin: Option<f32>,
}

/// `hub/tiny-random/{marian-en-de,t5}/reference.json`.
#[derive(Deserialize)]
pub struct Translation {
    pub cases: Vec<TranslationCase>,
}

#[derive(Deserialize)]
pub struct TranslationCase {
    pub text: String,
    pub input_ids: Vec<u32>,
    pub generated_ids: Vec<u32>,
    pub translation: String,
}

/// `whisper/{tiny.en,base}.reference.json`.
#[derive(Deserialize)]
pub struct Whisper {
    pub cases: Vec<WhisperCase>,
}

#[derive(Deserialize)]
pub struct WhisperCase {
    pub audio: String,
    pub language: String,
    pub task: String,
    pub prompt_ids: Vec<u32>,
    pub generated_ids: Vec<u32>,
    pub text: String,
    pub log_mel: MelStats,
}

/// Statistics of the 80 × 3000 log-mel input.
#[derive(Deserialize)]
pub struct MelStats {
    pub shape: Vec<usize>,
    pub mean: f64,
    pub std: f64,
    pub frame0_first8: Vec<f32>,
    pub frame100_first8: Vec<f32>,
}

/// `hub/tiny-random/{m2m100,nllb}/reference.json`: translations between language codes.
#[derive(Deserialize)]
pub struct MultilingualTranslation {
    pub cases: Vec<MultilingualCase>,
    pub beam_cases: Vec<MultilingualBeamCase>,
    pub tokenizer_cases: Vec<LanguageTokenizerCase>,
}

#[derive(Deserialize)]
pub struct MultilingualCase {
    pub text: String,
    pub src_lang: String,
    pub tgt_lang: String,
    pub input_ids: Vec<u32>,
    pub generated_ids: Vec<u32>,
    pub translation: String,
    /// Logits of ids 0..16 at the first step after the forced language token.
    pub step1_logits_first16: Vec<f32>,
    pub step1_top5_ids: Vec<u32>,
    pub step1_top5_logits: Vec<f32>,
    /// Smallest gap between the best and second-best logit along the greedy path.
    pub min_margin: Option<f32>,
}

#[derive(Deserialize)]
pub struct MultilingualBeamCase {
    pub text: String,
    pub src_lang: String,
    pub tgt_lang: String,
    pub num_beams: usize,
    pub max_new_tokens: usize,
    pub length_penalty: f64,
    pub early_stopping: bool,
    pub generated_ids: Vec<u32>,
    pub translation: String,
}

#[derive(Deserialize)]
pub struct LanguageTokenizerCase {
    pub text: String,
    pub src_lang: String,
    pub input_ids: Vec<u32>,
    /// Truncated at the tokenizer's model_max_length, special tokens included.
    pub truncated_input_ids: Vec<u32>,
    pub decoded: String,
}

/// `hub/tiny-random/t5-spiece-only/reference.json`: T5Tokenizer on spiece.model alone.
#[derive(Deserialize)]
pub struct SpieceTokenizer {
    pub tokenizer_cases: Vec<SpieceTokenizerCase>,
}

#[derive(Deserialize)]
pub struct SpieceTokenizerCase {
    pub text: String,
    pub input_ids: Vec<u32>,
    /// The same text with `"legacy": true`.
    pub legacy_input_ids: Vec<u32>,
    pub decoded: String,
}

/// `whisper/words.reference.json`: openai-whisper's `transcribe(word_timestamps=True)` on the real
/// weights (tests/models/make_whisper_words.py).
#[derive(Deserialize)]
pub struct WhisperWords {
    pub cases: Vec<WhisperWordsCase>,
}

#[derive(Deserialize)]
pub struct WhisperWordsCase {
    /// The CTranslate2 repo, e.g. "Systran/faster-whisper-tiny.en".
    pub model: String,
    pub audio: String,
    pub language: String,
    /// "transcribe" or "translate".
    pub task: String,
    /// The clip this many times, each followed by `silence_after` seconds of zeros (when > 1).
    pub repeat: usize,
    pub silence_after: f64,
    pub text: String,
    pub segments: Vec<WhisperWordsSegment>,
}

#[derive(Deserialize)]
pub struct WhisperWordsSegment {
    /// The window's generated tokens of this segment, timestamps included.
    pub tokens: Vec<u32>,
    pub words: Vec<TimedWord>,
}

#[derive(Deserialize)]
pub struct TimedWord {
    pub word: String,
    pub start: f64,
    pub end: f64,
}

/// The bound on each word's start and end against the reference.
pub const WORD_TOLERANCE: f64 = 0.1;

impl WhisperWordsCase {
    pub fn find<'a>(all: &'a WhisperWords, model: &str, audio: &str, task: &str, repeat: usize) -> &'a WhisperWordsCase {
        let found = all.cases.iter().find(|c| c.model.ends_with(model) && c.audio == audio && c.task == task && c.repeat == repeat);
        found.unwrap()
    }

    pub fn tokens(&self) -> Vec<u32> {
        self.segments.iter().flat_map(|s| s.tokens.iter().copied()).collect()
    }

    /// The same words as the reference, every start and end within `WORD_TOLERANCE`; returns the
    /// largest difference in seconds.
    pub fn check_words(&self, label: &str, got: &[(String, f64, f64)]) -> f64 {
        let expected: Vec<&TimedWord> = self.segments.iter().flat_map(|s| &s.words).collect();
        let words: Vec<&str> = got.iter().map(|(w, _, _)| w.as_str()).collect();
        assert_eq!(words, expected.iter().map(|w| w.word.as_str()).collect::<Vec<_>>(), "{label}: words");
        let mut worst: f64 = 0.0;
        for ((text, start, end), w) in got.iter().zip(&expected) {
            let off = (start - w.start).abs().max((end - w.end).abs());
            assert!(off <= WORD_TOLERANCE, "{label}: {text:?} at [{start}, {end}], reference [{}, {}]", w.start, w.end);
            worst = worst.max(off);
        }
        worst
    }
}
