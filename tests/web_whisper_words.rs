//! In headless Chromium, in a worker as the page runs hubside: word timestamps through the
//! JS-facing `pipeline()` (`return_timestamps: 'word'`) with the real tiny.en and base weights,
//! against openai-whisper's `transcribe(..., word_timestamps=True)`
//! (tests/fixtures/whisper/words.reference.json, tests/models/make_whisper_words.py): the same
//! words, each start and end within 0.1 s. Started by scripts/test.sh with the Hub mirror.
#![cfg(target_arch = "wasm32")]

use hubside::wasm::pipeline;
use js_sys::Reflect;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_dedicated_worker);

mod browser;
use browser::{call, message, options, ENDPOINT};

mod references;
use references::{WhisperWords, WhisperWordsCase};

const REFERENCE: &str = include_str!("fixtures/whisper/words.reference.json");
const JFK: &[u8] = include_bytes!("fixtures/audio/jfk16.wav");
const DE: &[u8] = include_bytes!("fixtures/audio/de16.wav");

#[derive(serde::Deserialize)]
struct Chunk {
    text: String,
    timestamp: [f64; 2],
}

async fn check(model: &str, audio: &str, task: &str) {
    let reference: WhisperWords = serde_json::from_str(REFERENCE).unwrap();
    let case = WhisperWordsCase::find(&reference, model, audio, task, 1);
    let (samples, rate, channels) = hubside::audio::read_wav(if audio == "jfk16.wav" { JFK } else { DE }).unwrap();
    assert_eq!((rate, channels), (16_000, 1));
    let asr = pipeline("automatic-speech-recognition".into(), Some(case.model.clone()), options(&[("endpoint", ENDPOINT.into())]))
        .await
        .unwrap();
    // As the reference ran openai's transcribe(): temperature 0 only, windows not conditioned.
    let opts = options(&[
        ("return_timestamps", "word".into()),
        ("language", case.language.clone().into()),
        ("task", task.into()),
        ("temperature", 0.0.into()),
        ("condition_on_previous_text", false.into()),
    ]);
    let out = call(&asr, js_sys::Float32Array::from(samples.as_slice()).into(), opts).await.unwrap();
    assert_eq!(Reflect::get(&out, &"text".into()).unwrap().as_string().unwrap(), case.text);
    let chunks: Vec<Chunk> = serde_wasm_bindgen::from_value(Reflect::get(&out, &"chunks".into()).unwrap()).unwrap();
    let got: Vec<(String, f64, f64)> = chunks.into_iter().map(|c| (c.text, c.timestamp[0], c.timestamp[1])).collect();
    case.check_words(&format!("{model} on {audio} ({task})"), &got);

    // Anything but true, false or 'word' is refused, naming the option.
    let err = call(&asr, js_sys::Float32Array::from(samples.as_slice()).into(), options(&[("return_timestamps", "words".into())]))
        .await
        .unwrap_err();
    assert!(message(&err).contains("return_timestamps"), "{}", message(&err));
}

#[wasm_bindgen_test]
async fn tiny_en_words_match_openai() {
    check("tiny.en", "jfk16.wav", "transcribe").await;
}

#[wasm_bindgen_test]
async fn base_german_words_match_openai_transcribed_and_translated() {
    check("base", "de16.wav", "transcribe").await;
    check("base", "de16.wav", "translate").await;
}
