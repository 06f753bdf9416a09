//! Live transcription: the voice activity detector on the labelled clip
//! tests/fixtures/audio/live16.wav (made by tests/references/make_live_clip.py), and the live session
//! (LocalAgreement-2) on the real tiny.en weights, replaying the clip in real-time-sized chunks.
//! The weights live outside the repository: run `scripts/fetch-whisper.sh` first.
#![cfg(not(target_arch = "wasm32"))]

use hubside::audio::{self, vad};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

#[derive(serde::Deserialize)]
struct Labels {
    frame_seconds: f64,
    labels: String,
    english_end: f64,
}

fn labelled_clip() -> (Vec<f32>, Labels) {
    let bytes = std::fs::read(format!("{FIXTURES}/audio/live16.wav")).unwrap();
    let (samples, rate, channels) = audio::read_wav(&bytes).unwrap();
    assert_eq!((rate, channels), (16000, 1));
    let labels: Labels = serde_json::from_slice(&std::fs::read(format!("{FIXTURES}/audio/live16.labels.json")).unwrap()).unwrap();
    assert_eq!(labels.frame_seconds, vad::FRAME as f64 / 16000.0);
    (samples, labels)
}

/// Frame-level precision and recall on the labelled clip, fed in 100 ms chunks as a microphone
/// would; the figures are in BENCHMARKS.md.
#[test]
fn vad_precision_and_recall_on_the_labelled_clip() {
    let (samples, labels) = labelled_clip();
    let truth: Vec<bool> = labels.labels.bytes().map(|b| b == b'1').collect();
    let mut detector = vad::Vad::new();
    let predicted: Vec<bool> = samples.chunks(1600).flat_map(|c| detector.push(c)).collect();
    assert_eq!(predicted.len(), truth.len());
    let (precision, recall) = vad::precision_recall(&predicted, &truth);
    let line: String = predicted.iter().map(|&p| if p { '1' } else { '0' }).collect();
    println!("truth     {}\npredicted {line}", labels.labels);
    println!("VAD on live16.wav: precision {precision:.3}, recall {recall:.3} ({} frames)", truth.len());
    assert!(precision >= 0.9 && recall >= 0.9, "precision {precision:.3}, recall {recall:.3}");
}

#[test]
#[ignore]
fn vad_features_dump() {
    let (samples, labels) = labelled_clip();
    let mut detector = vad::Vad::new();
    for (i, frame) in samples.chunks_exact(vad::FRAME).enumerate() {
        let (s, f) = detector.frame(frame);
        println!("{i} {} {} {:.1} {:.1} {:.2}", &labels.labels[i..i + 1], s as u8, f.level_db, f.floor_db, f.flatness);
    }
}
