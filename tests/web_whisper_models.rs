//! In headless Chromium: the tiny random Whisper large-v3, large-v3-turbo, distil-small.en and
//! small (tests/models/make_whisper.py), each in the transformers and the CTranslate2 layout,
//! through the JS `pipeline('automatic-speech-recognition', …)` from the local Hub mirror, against
//! the PyTorch + transformers references (text and language; ids through the Rust API for
//! large-v3), and the 128-bin log-mel. Started by scripts/test.sh beside the mirror.
#![cfg(target_arch = "wasm32")]

use hubside::audio::Pcm;
use hubside::hub::Repo;
use hubside::tasks::speech_recognition::{SpeechRecognizer, SpeechTask, TranscribeOptions};
use hubside::wasm::pipeline;
use js_sys::Reflect;
use wasm_bindgen::JsValue;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_dedicated_worker);

mod browser;
use browser::{call, options, ENDPOINT};

#[path = "references/whisper_models.rs"]
mod reference;
use reference::WhisperModel as Reference;

/// (transformers-layout repo, its CTranslate2 twin, the reference both share).
const MODELS: [(&str, &str, &str); 4] = [
    (
        "tiny-random/whisper-large-v3",
        "tiny-random/faster-whisper-large-v3",
        include_str!("fixtures/hub/tiny-random/whisper-large-v3/reference.json"),
    ),
    (
        "tiny-random/whisper-large-v3-turbo",
        "tiny-random/faster-whisper-large-v3-turbo",
        include_str!("fixtures/hub/tiny-random/whisper-large-v3-turbo/reference.json"),
    ),
    (
        "tiny-random/distil-small.en",
        "tiny-random/faster-distil-whisper-small.en",
        include_str!("fixtures/hub/tiny-random/distil-small.en/reference.json"),
    ),
    (
        "tiny-random/whisper-small",
        "tiny-random/faster-whisper-small",
        include_str!("fixtures/hub/tiny-random/whisper-small/reference.json"),
    ),
];

const JFK: &[u8] = include_bytes!("fixtures/audio/jfk16.wav");
const DE: &[u8] = include_bytes!("fixtures/audio/de16.wav");

fn clip(name: &str) -> Vec<f32> {
    let (samples, rate, channels) = hubside::audio::read_wav(if name == "jfk16.wav" { JFK } else { DE }).unwrap();
    assert_eq!((rate, channels), (16_000, 1));
    samples
}

fn get(value: &JsValue, key: &str) -> JsValue {
    Reflect::get(value, &key.into()).unwrap()
}

#[wasm_bindgen_test]
async fn js_pipeline_matches_the_reference_in_both_layouts() {
    for (transformers, ctranslate2, json) in MODELS {
        let reference: Reference = serde_json::from_str(json).unwrap();
        for model in [transformers, ctranslate2] {
            let asr = pipeline("automatic-speech-recognition".into(), Some(model.into()), options(&[("endpoint", ENDPOINT.into())]))
                .await
                .unwrap();
            assert_eq!(get(&asr, "multilingual").as_bool(), Some(reference.multilingual), "{model}");
            for case in &reference.cases {
                let audio = js_sys::Float32Array::from(clip(&case.audio).as_slice());
                let mut pairs = vec![("sampling_rate", JsValue::from(16_000))];
                if reference.multilingual {
                    pairs.push(("task", case.task.as_str().into()));
                    if !case.language_detected {
                        pairs.push(("language", case.language.as_str().into()));
                    }
                }
                let out = call(&asr, audio.into(), options(&pairs)).await.unwrap();
                let what = format!("{model} {} {} {}", case.audio, case.language, case.task);
                assert_eq!(get(&out, "text").as_string().unwrap(), case.text, "{what}");
                assert_eq!(get(&out, "language").as_string().unwrap(), case.language, "{what}");
            }
        }
    }
}

#[wasm_bindgen_test]
async fn large_v3_ids_match_the_reference_in_both_layouts() {
    let (transformers, ctranslate2, json) = MODELS[0];
    let reference: Reference = serde_json::from_str(json).unwrap();
    for model in [transformers, ctranslate2] {
        let recognizer = SpeechRecognizer::load(&Repo::remote(model, Some(ENDPOINT), None).unwrap()).await.unwrap();
        assert_eq!(recognizer.model().config().n_mels, 128, "{model}");
        assert_eq!(recognizer.special_tokens().language_id("yue"), Some(50358), "{model}");
        for case in &reference.cases {
            let task = SpeechTask::parse(&case.task).unwrap();
            assert_eq!(recognizer.prompt(&case.language, task, false).unwrap(), case.prompt_ids, "{model}");
            let samples = clip(&case.audio);
            let opts = TranscribeOptions {
                language: (!case.language_detected).then(|| case.language.clone()),
                task,
                return_timestamps: false.into(),
                ..Default::default()
            };
            let result = recognizer.transcribe(Pcm { samples: &samples, sample_rate: 16_000, channels: 1 }, &opts, &mut |_| {}).unwrap();
            assert_eq!(result.tokens, case.generated_ids, "{model} {} {}", case.audio, case.task);
            assert_eq!(result.language_detected, case.language_detected, "{model} {}", case.audio);
        }
    }
}

#[wasm_bindgen_test]
fn log_mel_128_bins_match_the_feature_extractor() {
    let reference: Reference = serde_json::from_str(MODELS[0].2).unwrap();
    for case in &reference.cases {
        let stats = &case.log_mel;
        assert_eq!(stats.shape[0], 128);
        let mel = hubside::audio::whisper_features(&clip(&case.audio), 128);
        let (mean, std) = mel.mean_std();
        assert!((mean - stats.mean).abs() < 1e-3 && (std - stats.std).abs() < 1e-3, "{}: {mean} {std}", case.audio);
        for (frame, expected) in &stats.frames {
            let frame: usize = frame.parse().unwrap();
            for (m, e) in expected.iter().enumerate() {
                assert!((mel.get(m, frame) - e).abs() < 1e-3, "{}: mel[{m}][{frame}]", case.audio);
            }
        }
    }
}
