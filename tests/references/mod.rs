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
