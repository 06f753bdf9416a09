//! The shape of tests/fixtures/whisper/longform.reference.json (tests/models/make_longform_reference.py:
//! openai-whisper's transcribe() with every model.decode call recorded) and the comparison shared by
//! tests/whisper_longform.rs (native) and tests/web_whisper_longform.rs (Chromium).
#![allow(dead_code)] // each test file uses its own subset

use std::collections::BTreeMap;

use hubside::tasks::speech_recognition::{TranscribeOptions, Transcription};
use hubside::whisper::fallback::{Attempt, Fallback, WindowTrace};
use serde::Deserialize;

pub const JSON: &str = include_str!("../fixtures/whisper/longform.reference.json");

#[derive(Deserialize)]
pub struct Reference {
    pub seed: u64,
    pub clips: BTreeMap<String, Vec<Piece>>,
    pub runs: Vec<Run>,
}

/// `{"clip", "from", "to", "repeat"}` (samples of a fixture clip, repeated) or `{"silence"}`.
#[derive(Deserialize)]
pub struct Piece {
    pub clip: Option<String>,
    #[serde(default)]
    pub from: usize,
    #[serde(default)]
    pub to: usize,
    #[serde(default)]
    pub repeat: usize,
    pub silence: Option<usize>,
}

#[derive(Deserialize)]
pub struct Run {
    pub clip: String,
    pub model: String,
    /// transcribe()'s keyword arguments: the same names as hubside's options.
    pub options: serde_json::Value,
    pub text: String,
    pub segments: Vec<Segment>,
    pub decodes: Vec<Decode>,
}

#[derive(Deserialize)]
pub struct Segment {
    pub seek: usize,
    pub start: f64,
    pub end: f64,
    pub text: String,
    pub tokens: Vec<u32>,
    pub temperature: f64,
}

/// One model.decode call: a window at one temperature.
#[derive(Deserialize, Clone)]
pub struct Decode {
    pub prompt: Vec<u32>,
    pub temperature: f64,
    pub tokens: Vec<u32>,
    pub avg_logprob: f64,
    pub compression_ratio: f64,
    pub no_speech_prob: f64,
}

pub fn reference() -> Reference {
    serde_json::from_str(JSON).unwrap()
}

/// The clip as the script builds it, from the fixture clips' 16 kHz samples.
pub fn build(pieces: &[Piece], wav: impl Fn(&str) -> Vec<f32>) -> Vec<f32> {
    let mut out = Vec::new();
    for piece in pieces {
        match (&piece.clip, piece.silence) {
            (_, Some(n)) => out.extend(std::iter::repeat_n(0.0f32, n)),
            (Some(name), None) => {
                let samples = wav(name);
                for _ in 0..piece.repeat {
                    out.extend_from_slice(&samples[piece.from..piece.to]);
                }
            }
            (None, None) => panic!("a piece is a clip or a silence"),
        }
    }
    out
}

/// The run's options as hubside reads them (openai's names), with timed segments.
pub fn options(run: &Run) -> TranscribeOptions {
    let options: TranscribeOptions = serde_json::from_value(run.options.clone()).unwrap();
    TranscribeOptions { return_timestamps: true.into(), ..options }
}

/// openai's decodes grouped by window: a window starts with each decode at the first temperature.
pub fn windows(decodes: &[Decode], first_temperature: f64) -> Vec<Vec<Decode>> {
    let mut windows: Vec<Vec<Decode>> = Vec::new();
    for d in decodes {
        if d.temperature == first_temperature || windows.is_empty() {
            windows.push(Vec::new());
        }
        windows.last_mut().unwrap().push(d.clone());
    }
    windows
}

/// One decode at temperature 0 is openai's: same prompt and tokens, statistics equal up to f32
/// rounding (over the reference's 25 greedy decodes the largest differences are 4e-5 in
/// avg_logprob and 1e-5 in no_speech_prob), and so the same decisions.
fn same_decode(ours: &Attempt, prompt: &[u32], theirs: &Decode, fallback: &Fallback, label: &str) {
    assert_eq!(prompt, theirs.prompt.as_slice(), "{label}: prompt");
    assert_eq!(ours.tokens, theirs.tokens, "{label}: tokens");
    let openai = Attempt {
        temperature: theirs.temperature,
        tokens: theirs.tokens.clone(),
        avg_logprob: theirs.avg_logprob,
        compression_ratio: theirs.compression_ratio,
        no_speech_prob: theirs.no_speech_prob,
    };
    let stats = format!("{ours:?} vs openai {openai:?}");
    assert!((ours.avg_logprob - theirs.avg_logprob).abs() < 1e-3, "{label}: avg_logprob: {stats}");
    assert!((ours.no_speech_prob - theirs.no_speech_prob).abs() < 1e-3, "{label}: no_speech_prob: {stats}");
    // The same text compresses to zlib's size (whisper::fallback::compression_ratio), except text
    // too short to compress (ratio below 1 either way).
    if theirs.compression_ratio < 1.0 {
        assert!(ours.compression_ratio < 1.0, "{label}: compression_ratio: {stats}");
    } else {
        // (serde_json reads floats to within an ulp.)
        assert!((ours.compression_ratio / theirs.compression_ratio - 1.0).abs() < 1e-12, "{label}: compression_ratio: {stats}");
    }
    assert_eq!(fallback.needs_fallback(ours), fallback.needs_fallback(&openai), "{label}: fallback decision: {stats}");
    assert_eq!(fallback.is_silence(ours), fallback.is_silence(&openai), "{label}: silence decision: {stats}");
}

/// Compare a transcription's windows with openai's run, as far as both are deterministic: every
/// decode at temperature 0 identical, and the same decision after it (keep, skip as silence, or
/// fall back to the same next temperature). Once a sampled decode is kept, torch's draws and
/// hubside's differ and so does everything after. Returns whether the whole run was compared
/// (no sampled decode kept on either side); then the text and segments are openai's too.
pub fn check_run(run: &Run, result: &Transcription, label: &str) -> bool {
    let fallback = Fallback::from_options(&options(run)).unwrap();
    let theirs = windows(&run.decodes, fallback.temperatures[0]);
    let ours = &result.windows;
    for (i, (mine, theirs)) in ours.iter().zip(&theirs).enumerate() {
        let label = format!("{label} window {i} ({} s)", mine.start);
        same_decode(&mine.attempts[0], &mine.prompt, &theirs[0], &fallback, &label);
        if theirs.len() > 1 || mine.attempts.len() > 1 {
            assert!(mine.attempts.len() > 1 && theirs.len() > 1, "{label}: fell back on one side only");
            assert_eq!(mine.attempts[1].temperature, theirs[1].temperature, "{label}: next temperature");
            return false;
        }
    }
    assert_eq!(ours.len(), theirs.len(), "{label}: windows decoded: {:?}", ours.iter().map(|w| w.start).collect::<Vec<_>>());
    assert_eq!(result.text, run.text, "{label}: text");
    let segments: Vec<&Segment> = run.segments.iter().filter(|s| !s.text.is_empty()).collect();
    assert_eq!(result.chunks.len(), segments.len(), "{label}: segments {:?}", result.chunks);
    for (chunk, segment) in result.chunks.iter().zip(segments) {
        assert_eq!(chunk.text, segment.text, "{label}: segment text");
        let [start, end] = chunk.timestamp;
        let duration = result.duration;
        assert!((start - segment.start.min(duration)).abs() < 0.011, "{label}: start {start} vs {}", segment.start);
        assert!((end - segment.end.min(duration)).abs() < 0.011, "{label}: end {end} vs {}", segment.end);
    }
    true
}

/// openai's rules hold over a trace (hubside's, or openai's split into windows): a window is
/// decoded again exactly while it needs a fallback and temperatures remain, and a window that
/// follows one kept above temperature 0.5 (or any, without conditioning) has no previous text.
pub fn check_rules(windows: &[WindowTrace], fallback: &Fallback, initial_prompt_len: usize, label: &str) {
    let mut reset = false;
    for (i, window) in windows.iter().enumerate() {
        let label = format!("{label} window {i} ({} s)", window.start);
        let temperatures: Vec<f64> = window.attempts.iter().map(|a| a.temperature).collect();
        assert_eq!(temperatures, fallback.temperatures[..temperatures.len()], "{label}");
        for (j, attempt) in window.attempts.iter().enumerate() {
            let last = j + 1 == window.attempts.len();
            if !last {
                assert!(fallback.needs_fallback(attempt), "{label}: decoded again after a good decode");
            } else if temperatures.len() < fallback.temperatures.len() {
                assert!(!fallback.needs_fallback(attempt), "{label}: kept a decode that needs a fallback");
            }
        }
        if reset {
            assert!(window.prompt.is_empty(), "{label}: prompted after a reset: {:?}", window.prompt);
        } else if i == 0 {
            assert_eq!(window.prompt.len(), initial_prompt_len, "{label}: the first prompt is the initial prompt");
        }
        if !window.skipped {
            reset = fallback.resets_prompt(window.attempts.last().unwrap().temperature);
        }
    }
}

/// openai's decodes as a trace `check_rules` reads (start times unknown: 0; a window is skipped
/// when its kept decode is silence).
pub fn openai_trace(run: &Run, fallback: &Fallback) -> Vec<WindowTrace> {
    windows(&run.decodes, fallback.temperatures[0])
        .into_iter()
        .map(|decodes| {
            let prompt = decodes[0].prompt.clone();
            let attempts: Vec<Attempt> = decodes
                .iter()
                .map(|d| Attempt {
                    temperature: d.temperature,
                    tokens: d.tokens.clone(),
                    avg_logprob: d.avg_logprob,
                    compression_ratio: d.compression_ratio,
                    no_speech_prob: d.no_speech_prob,
                })
                .collect();
            let skipped = fallback.is_silence(attempts.last().unwrap());
            WindowTrace { start: 0.0, prompt, attempts, skipped }
        })
        .collect()
}
