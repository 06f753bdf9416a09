//! Word timestamps against openai-whisper's `transcribe(..., word_timestamps=True)` on the same
//! real weights (tests/fixtures/whisper/words.reference.json, made by
//! tests/models/make_whisper_words.py): the same words, each start and end within 0.1 s — for the
//! CTranslate2 repos, the transformers layout written from them, and long audio (several windows).
//! The weights live outside the repository: run `scripts/fetch-whisper.sh` first.
#![cfg(not(target_arch = "wasm32"))]

use std::sync::OnceLock;

use hubside::audio;
use hubside::hub::Repo;
use hubside::serve::{self, ServeOptions};
use hubside::tasks::speech_recognition::{Chunk, ReturnTimestamps, SpeechRecognizer, SpeechTask, Temperature, TranscribeOptions, Transcription};
use hubside::whisper::alignment;
use hubside::Error;

mod common;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

mod references;
type Reference = references::WhisperWords;
type Case = references::WhisperWordsCase;

fn reference() -> Reference {
    serde_json::from_slice(&std::fs::read(format!("{FIXTURES}/whisper/words.reference.json")).unwrap()).unwrap()
}

fn samples(case: &Case) -> Vec<f32> {
    let bytes = std::fs::read(format!("{FIXTURES}/audio/{}", case.audio)).unwrap();
    let (clip, rate, channels) = audio::read_wav(&bytes).unwrap();
    assert_eq!((rate, channels), (16000, 1));
    if case.repeat <= 1 {
        return clip;
    }
    let silence = (case.silence_after * 16000.0) as usize;
    (0..case.repeat).flat_map(|_| clip.iter().copied().chain(std::iter::repeat_n(0.0, silence))).collect()
}

fn load(repo: &str, hub: std::path::PathBuf) -> SpeechRecognizer {
    let server = serve::start("127.0.0.1:0", ServeOptions { hub: vec![hub], ..Default::default() }).unwrap();
    let repo = Repo::remote(repo, Some(&server.hub_endpoint()), None).unwrap();
    pollster::block_on(SpeechRecognizer::load(&repo)).unwrap()
}

fn model(repo: &str) -> &'static SpeechRecognizer {
    static TINY_EN: OnceLock<SpeechRecognizer> = OnceLock::new();
    static BASE: OnceLock<SpeechRecognizer> = OnceLock::new();
    let cell = if repo.ends_with("tiny.en") { &TINY_EN } else { &BASE };
    cell.get_or_init(|| load(repo, common::whisper_hub()))
}

fn words(model: &SpeechRecognizer, case: &Case) -> Transcription {
    let options = TranscribeOptions {
        language: Some(case.language.clone()),
        task: SpeechTask::parse(&case.task).unwrap(),
        return_timestamps: ReturnTimestamps::Words,
        // As the reference ran openai's transcribe(): greedy only (with the fallback, base's
        // German window samples), each window on its own.
        temperature: Some(Temperature::One(0.0)),
        condition_on_previous_text: Some(false),
        ..Default::default()
    };
    let samples = samples(case);
    model.transcribe(audio::Pcm { samples: &samples, sample_rate: 16000, channels: 1 }, &options, &mut |_| {}).unwrap()
}

/// The same tokens, text and words as openai, every time within the tolerance.
fn check(result: &Transcription, case: &Case) {
    let label = format!("{} on {} x{} ({})", case.model, case.audio, case.repeat, case.task);
    assert_eq!(result.tokens, case.tokens(), "{label}: tokens");
    assert_eq!(result.text, case.text, "{label}: text");
    let got: Vec<(String, f64, f64)> = result.chunks.iter().map(|Chunk { timestamp: [s, e], text }| (text.clone(), *s, *e)).collect();
    let worst = case.check_words(&label, &got);
    eprintln!("{label}: {} words, largest difference {worst:.3} s", got.len());
}

fn case<'a>(reference: &'a Reference, model: &str, audio: &str, repeat: usize) -> &'a Case {
    Case::find(reference, model, audio, "transcribe", repeat)
}

#[test]
fn tiny_en_words_match_openai() {
    let reference = reference();
    let case = case(&reference, "tiny.en", "jfk16.wav", 1);
    let tiny = model(&case.model);
    // The CTranslate2 config's heads, which are openai's for tiny.en.
    assert_eq!(tiny.alignment_heads(), alignment::openai_default(tiny.model().config()).unwrap().1.as_slice());
    check(&words(tiny, case), case);
}

#[test]
fn base_words_match_openai_in_english_and_german() {
    let reference = reference();
    for audio in ["jfk16.wav", "de16.wav"] {
        let case = case(&reference, "base", audio, 1);
        check(&words(model(&case.model), case), case);
    }
}

/// Translation's prompt (`<|translate|>`) in the alignment pass: German speech, English words.
#[test]
fn base_translation_words_match_openai() {
    let reference = reference();
    let case = Case::find(&reference, "base", "de16.wav", "translate", 1);
    check(&words(model(&case.model), case), case);
}

/// 4 × (11 s + 5 s silence): words of later windows are offset by their window's start, and each
/// window after the first starts where openai's does (at the last word's end).
#[test]
fn long_audio_words_match_openai() {
    let reference = reference();
    let case = case(&reference, "tiny.en", "jfk16.wav", 4);
    let result = words(model(&case.model), case);
    check(&result, case);
    assert!(result.chunks.last().unwrap().timestamp[0] > 50.0);
}

/// Segment timestamps are unchanged by the new option's other values.
#[test]
fn segments_and_no_timestamps_are_as_before() {
    let reference = reference();
    let case = case(&reference, "tiny.en", "jfk16.wav", 1);
    let samples = samples(case);
    let run = |return_timestamps: ReturnTimestamps| {
        let options = TranscribeOptions { return_timestamps, ..Default::default() };
        model(&case.model).transcribe(audio::Pcm { samples: &samples, sample_rate: 16000, channels: 1 }, &options, &mut |_| {}).unwrap()
    };
    let segments = run(true.into());
    assert_eq!(segments.chunks.len(), 2);
    let joined: String = segments.chunks.iter().map(|c| c.text.as_str()).collect();
    assert_eq!(joined, case.text);
    assert!(run(false.into()).chunks.is_empty());
}

#[test]
fn transformers_layout_words_match_openai() {
    let reference = reference();
    let dir = std::env::temp_dir().join(format!("hubside-whisper-words-hf-{}", std::process::id()));
    for (name, ct2) in [("openai/whisper-tiny.en", "tiny.en"), ("openai/whisper-base", "base")] {
        common::write_whisper_transformers(&common::whisper_hub().join(format!("Systran/faster-whisper-{ct2}")), &dir.join(name));
    }
    let tiny = load("openai/whisper-tiny.en", dir.clone());
    let base = load("openai/whisper-base", dir.clone());
    std::fs::remove_dir_all(&dir).unwrap();
    let case_tiny = case(&reference, "tiny.en", "jfk16.wav", 1);
    check(&words(&tiny, case_tiny), case_tiny);
    let case_de = case(&reference, "base", "de16.wav", 1);
    check(&words(&base, case_de), case_de);
}

/// Alignment heads that the model does not have are a config error when the repo is loaded.
#[test]
fn impossible_alignment_heads_are_config_errors() {
    let dir = std::env::temp_dir().join(format!("hubside-whisper-words-bad-{}", std::process::id()));
    let repo_dir = dir.join("openai/whisper-tiny.en");
    common::write_whisper_transformers(&common::whisper_hub().join("Systran/faster-whisper-tiny.en"), &repo_dir);
    let generation_path = repo_dir.join("generation_config.json");
    let generation: serde_json::Value = serde_json::from_slice(&std::fs::read(&generation_path).unwrap()).unwrap();
    let server = serve::start("127.0.0.1:0", ServeOptions { hub: vec![dir.clone()], ..Default::default() }).unwrap();
    let repo = Repo::remote("openai/whisper-tiny.en", Some(&server.hub_endpoint()), None).unwrap();
    for (heads, expected) in [
        (serde_json::json!([[4, 0]]), "alignment head [4, 0] does not exist: the decoder has 4 layers of 6 heads"),
        (serde_json::json!([[0, 6]]), "alignment head [0, 6] does not exist"),
        (serde_json::json!([]), "alignment_heads is empty"),
        (serde_json::json!([[1, 2, 3]]), "must be a list of [layer, head] pairs"),
    ] {
        let mut bad = generation.clone();
        bad["alignment_heads"] = heads;
        std::fs::write(&generation_path, bad.to_string()).unwrap();
        match pollster::block_on(SpeechRecognizer::load(&repo)) {
            Err(Error::Config(message)) => assert!(message.contains(expected) && message.contains("generation_config.json"), "{message}"),
            other => panic!("{expected}: {:?}", other.err()),
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
