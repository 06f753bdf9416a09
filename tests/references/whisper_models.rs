//! The shape of `hub/tiny-random/{whisper-*,distil-*}/reference.json` (tests/models/make_whisper.py),
//! shared by tests/whisper_models.rs and tests/web_whisper_models.rs. Fields a test does not need
//! are ignored.
#![allow(dead_code)] // each test file uses its own subset

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Deserialize)]
pub struct WhisperModel {
    pub n_mels: usize,
    pub vocab_size: usize,
    pub multilingual: bool,
    pub cases: Vec<Case>,
    pub tokenizer: Vec<TokenizerCase>,
}

#[derive(Deserialize)]
pub struct Case {
    pub audio: String,
    pub task: String,
    /// The language decoded with: forced, or detected when `language_detected`.
    pub language: String,
    pub language_detected: bool,
    pub prompt_ids: Vec<u32>,
    pub generated_ids: Vec<u32>,
    pub text: String,
    pub min_margin: f64,
    pub log_mel: LogMel,
}

/// WhisperFeatureExtractor(feature_size = n_mels) of the clip: statistics and whole frames
/// (n_mels values each), keyed by frame index.
#[derive(Deserialize)]
pub struct LogMel {
    pub shape: Vec<usize>,
    pub mean: f64,
    pub std: f64,
    pub frames: BTreeMap<String, Vec<f32>>,
}

#[derive(Deserialize)]
pub struct TokenizerCase {
    pub text: String,
    /// BPE ids without special tokens.
    pub ids: Vec<u32>,
    pub decoded: String,
}
