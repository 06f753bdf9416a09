//! In headless Chromium (a dedicated worker): openai/whisper's long-form rules against
//! openai-whisper's transcribe() (tests/fixtures/whisper/longform.reference.json, see
//! tests/whisper_longform.rs) on the real tiny.en and base weights from the local Hub mirror —
//! through the Rust API for the per-window decodes and through the JS `pipeline()` for the option
//! names and the text. Started by scripts/test.sh beside the mirror.
#![cfg(target_arch = "wasm32")]

use hubside::audio::Pcm;
use hubside::hub::Repo;
use hubside::tasks::speech_recognition::{SpeechRecognizer, Transcription};
use hubside::wasm::pipeline;
use hubside::whisper::fallback::Fallback;
use js_sys::Reflect;
use serde::Serialize;
use wasm_bindgen::JsValue;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_dedicated_worker);

mod browser;
use browser::{call, message, options, ENDPOINT};

#[path = "references/longform.rs"]
mod longform;
use longform::Run;

const JFK: &[u8] = include_bytes!("fixtures/audio/jfk16.wav");
const DE: &[u8] = include_bytes!("fixtures/audio/de16.wav");

fn wav(name: &str) -> Vec<f32> {
    let bytes = match name {
        "jfk16.wav" => JFK,
        "de16.wav" => DE,
        other => panic!("no clip {other}"),
    };
    let (samples, rate, channels) = hubside::audio::read_wav(bytes).unwrap();
    assert_eq!((rate, channels), (16_000, 1));
    samples
}

fn repo_of(model: &str) -> String {
    format!("Systran/faster-whisper-{model}")
}

async fn load(model: &str) -> SpeechRecognizer {
    let repo = Repo::remote(&repo_of(model), Some(ENDPOINT), None).unwrap();
    SpeechRecognizer::load(&repo).await.unwrap()
}

/// Every reference run on `clip` with `model`, through the Rust API: openai's decodes and
/// decisions, the rules over both traces, and (when no sampled decode was kept) its text and
/// segments.
async fn check_runs(clip: &str, model: &str) -> Vec<(Transcription, bool)> {
    let reference = longform::reference();
    let samples = longform::build(&reference.clips[clip], wav);
    let recognizer = load(model).await;
    let mut out = Vec::new();
    for run in reference.runs.iter().filter(|r| r.clip == clip && r.model == model) {
        let options = longform::options(run);
        let pcm = Pcm { samples: &samples, sample_rate: 16_000, channels: 1 };
        let result = recognizer.transcribe(pcm, &options, &mut |_| {}).unwrap();
        let label = format!("{clip} {model} {}", run.options);
        let whole = longform::check_run(run, &result, &label);
        let fallback = Fallback::from_options(&options).unwrap();
        let initial = run.decodes[0].prompt.len();
        longform::check_rules(&result.windows, &fallback, initial, &format!("{label} (hubside)"));
        longform::check_rules(&longform::openai_trace(run, &fallback), &fallback, initial, &format!("{label} (openai)"));
        out.push((result, whole));
    }
    out
}

/// The runs with openai's default thresholds keep every window at temperature 0 (so their text and
/// segments were compared); the one with `logprob_threshold` -0.05 falls back in every window.
fn long_runs(results: &[(Transcription, bool)]) {
    assert_eq!(results.len(), 4);
    for (result, whole) in results {
        let sampled = result.windows.iter().any(|w| w.attempts.len() > 1);
        assert_eq!(*whole, !sampled, "every window at temperature 0: text and segments compared");
        assert!(result.windows.len() >= 3);
    }
    assert_eq!(results.iter().filter(|(_, whole)| *whole).count(), 3);
}

#[wasm_bindgen_test]
async fn long_clip_matches_openai_tiny_en() {
    long_runs(&check_runs("long", "tiny.en").await);
}

#[wasm_bindgen_test]
async fn long_clip_matches_openai_base() {
    let results = check_runs("long", "base").await;
    assert_eq!(results.len(), 3);
    assert!(results.iter().all(|(result, whole)| *whole && result.windows.len() >= 3));
}

#[wasm_bindgen_test]
async fn repetitive_window_falls_back_and_noise_is_skipped() {
    for model in ["tiny.en", "base"] {
        for (result, _) in check_runs("repeat", model).await {
            let first = &result.windows[0];
            assert!(first.attempts[0].compression_ratio > 2.4 && first.attempts.len() > 1, "{model}: {first:?}");
        }
        for (result, _) in check_runs("noise", model).await {
            assert!(result.windows.iter().any(|w| w.skipped), "{model}: no window skipped");
        }
    }
}

fn audio_of(run: &Run) -> js_sys::Float32Array {
    let samples = longform::build(&longform::reference().clips[&run.clip], wav);
    js_sys::Float32Array::from(samples.as_slice())
}

/// The run's transcribe() keyword arguments as a JS options object.
fn js_options(run: &Run) -> JsValue {
    let object = js_sys::Object::new();
    for (key, value) in run.options.as_object().unwrap() {
        let value = value.serialize(&serde_wasm_bindgen::Serializer::json_compatible()).unwrap();
        Reflect::set(&object, &key.as_str().into(), &value).unwrap();
    }
    object.into()
}

/// The JS pipeline takes openai's option names and gives openai's text; sampling is reproducible.
#[wasm_bindgen_test]
async fn js_pipeline_takes_the_long_form_options() {
    let reference = longform::reference();
    let asr = pipeline("automatic-speech-recognition".into(), Some(repo_of("tiny.en").into()), options(&[("endpoint", ENDPOINT.into())]))
        .await
        .unwrap();
    for run in reference.runs.iter().filter(|r| r.clip == "long" && r.model == "tiny.en" && r.options.get("logprob_threshold").is_none()) {
        let out = call(&asr, audio_of(run).into(), js_options(run)).await.unwrap();
        let text = Reflect::get(&out, &"text".into()).unwrap().as_string().unwrap();
        assert_eq!(text, run.text, "{}", run.options);
    }
    // The repetitive clip samples: the same seed gives the same text, twice.
    let run = reference.runs.iter().find(|r| r.clip == "repeat" && r.model == "tiny.en").unwrap();
    let audio = audio_of(run);
    let seeded = options(&[("seed", 3.into()), ("temperature", js_sys::Array::of3(&0.into(), &0.4.into(), &1.into()).into())]);
    let first = call(&asr, audio.clone().into(), seeded.clone()).await.unwrap();
    let again = call(&asr, audio.clone().into(), seeded).await.unwrap();
    let text = |v: &JsValue| Reflect::get(v, &"text".into()).unwrap().as_string().unwrap();
    assert_eq!(text(&first), text(&again));
    // Out-of-range values are input errors naming the option.
    for (name, value) in [
        ("temperature", JsValue::from(-1)),
        ("no_speech_threshold", JsValue::from(2)),
        ("logprob_threshold", JsValue::from(1)),
        ("compression_ratio_threshold", JsValue::from(0)),
        ("seed", JsValue::from(-1)),
        ("temperature", JsValue::from("hot")),
        ("initial_prompt", JsValue::from(5)),
        ("condition_on_previous_text", JsValue::from("yes")),
    ] {
        let err = call(&asr, audio.clone().into(), options(&[(name, value)])).await.unwrap_err();
        assert!(message(&err).contains(name), "{name}: {}", message(&err));
    }
}
