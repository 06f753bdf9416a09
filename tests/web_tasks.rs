//! In headless Chromium: translation (tiny Marian and T5 fixtures) and speech recognition (real
//! Whisper tiny.en and base weights) through the JS-facing `pipeline()`, loading from the local
//! Hub mirror over HTTP, against the PyTorch + transformers references. Started by
//! scripts/test.sh, which serves tests/fixtures/hub and the Whisper cache as one mirror.
#![cfg(target_arch = "wasm32")]

use hubside::hub::Repo;
use hubside::tasks::speech_recognition::{SpeechRecognizer, TranscribeOptions};
use hubside::wasm::pipeline;
use js_sys::{Array, Reflect};
use serde::Deserialize;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_test::*;

// In a dedicated worker, as the page runs hubside: a model run that takes longer than 30 s on a
// busy machine would otherwise stall the test page's main thread until ChromeDriver kills it.
wasm_bindgen_test_configure!(run_in_dedicated_worker);

mod browser;
use browser::{call, message, options, recorder, ENDPOINT};


mod references;
use references::{Translation as TranslationReference, Whisper as WhisperReference};

#[derive(Deserialize, Debug)]
struct TranslationText {
    translation_text: String,
}

const TRANSLATION_MODELS: [(&str, &str); 2] = [
    ("tiny-random/marian-en-de", include_str!("fixtures/hub/tiny-random/marian-en-de/reference.json")),
    ("tiny-random/t5", include_str!("fixtures/hub/tiny-random/t5/reference.json")),
];

#[wasm_bindgen_test]
fn runs_in_a_dedicated_worker() {
    // What keeps a long Whisper run from stalling the test page (see the configure line above).
    assert!(js_sys::global().dyn_ref::<web_sys::Window>().is_none(), "the tests run on the page's main thread");
}

#[wasm_bindgen_test]
async fn translation_matches_reference() {
    for (model, json) in TRANSLATION_MODELS {
        let reference: TranslationReference = serde_json::from_str(json).unwrap();
        let tr = pipeline("translation".into(), Some(model.into()), options(&[("endpoint", ENDPOINT.into())])).await.unwrap();
        let texts = Array::new();
        for case in &reference.cases {
            texts.push(&case.text.clone().into());
        }
        // The references decode greedily with at most 16 new tokens.
        let opts = options(&[("max_new_tokens", 16.into()), ("num_beams", 1.into())]);
        let out: Vec<TranslationText> = serde_wasm_bindgen::from_value(call(&tr, texts.into(), opts).await.unwrap()).unwrap();
        assert_eq!(out.len(), reference.cases.len());
        for (got, case) in out.iter().zip(&reference.cases) {
            assert_eq!(got.translation_text, case.translation, "{model}: {:?}", case.text);
        }
    }
}

#[wasm_bindgen_test]
async fn translation_streams_the_growing_text() {
    let (model, json) = TRANSLATION_MODELS[0];
    let reference: TranslationReference = serde_json::from_str(json).unwrap();
    let case = &reference.cases[1];
    let tr = pipeline("translation".into(), Some(model.into()), options(&[("endpoint", ENDPOINT.into())])).await.unwrap();
    let (seen, on_token) = recorder();
    let opts = options(&[("max_new_tokens", 16.into()), ("on_token", on_token.as_ref().clone())]);
    let out: Vec<TranslationText> = serde_wasm_bindgen::from_value(call(&tr, case.text.clone().into(), opts).await.unwrap()).unwrap();
    let seen: Vec<String> = seen.iter().map(|v| v.as_string().unwrap()).collect();
    assert!(seen.len() >= 8, "one update per generated token: {seen:?}");
    assert!(seen.windows(2).all(|w| w[1].starts_with(&w[0])), "the text only grows: {seen:?}");
    assert_eq!(seen.last().unwrap(), &out[0].translation_text);
    assert_eq!(out[0].translation_text, case.translation);
}

#[wasm_bindgen_test]
async fn translation_errors_are_clear() {
    let err = pipeline("translation".into(), Some("tiny-random/distilbert-sst2".into()), options(&[("endpoint", ENDPOINT.into())]))
        .await
        .unwrap_err();
    let text = message(&err);
    assert!(text.contains("'distilbert'") && text.contains("marian") && text.contains("t5"), "{text}");
    let tr = pipeline("translation".into(), Some("tiny-random/marian-en-de".into()), options(&[("endpoint", ENDPOINT.into())])).await.unwrap();
    let bad = call(&tr, "hi".into(), options(&[("num_beams", (-1).into())])).await.unwrap_err();
    assert!(message(&bad).contains("num_beams"), "{}", message(&bad));
}

fn kind(error: &JsValue) -> String {
    Reflect::get(error, &"kind".into()).unwrap().as_string().unwrap_or_default()
}

#[wasm_bindgen_test]
async fn translation_options_are_typed() {
    let (model, json) = TRANSLATION_MODELS[0];
    let reference: TranslationReference = serde_json::from_str(json).unwrap();
    let case = &reference.cases[0];
    let tr = pipeline("translation".into(), Some(model.into()), options(&[("endpoint", ENDPOINT.into())])).await.unwrap();
    assert_eq!(Reflect::get(&tr, &"task".into()).unwrap().as_string().unwrap(), "translation");
    // early_stopping as transformers spells it; with one beam it cannot change the greedy result.
    for early_stopping in [JsValue::TRUE, JsValue::FALSE, "never".into()] {
        let opts = options(&[("max_new_tokens", 16.into()), ("num_beams", 1.into()), ("early_stopping", early_stopping)]);
        let out: Vec<TranslationText> = serde_wasm_bindgen::from_value(call(&tr, case.text.clone().into(), opts).await.unwrap()).unwrap();
        assert_eq!(out[0].translation_text, case.translation);
    }
    let opts = options(&[("num_beams", 2.into()), ("early_stopping", "never".into()), ("length_penalty", 1.5.into())]);
    call(&tr, case.text.clone().into(), opts).await.unwrap();
    for (opts, named) in [
        (options(&[("early_stopping", "sometimes".into())]), "early_stopping"),
        (options(&[("max_length", 5.into())]), "max_length"),
        (options(&[("max_new_tokens", "5".into())]), "max_new_tokens"),
        (options(&[("length_penalty", "long".into())]), "length_penalty"),
        (options(&[("tgt_lang", 3.into())]), "tgt_lang"),
        (options(&[("on_token", "print".into())]), "on_token"),
    ] {
        let error = call(&tr, case.text.clone().into(), opts).await.unwrap_err();
        assert_eq!(kind(&error), "input", "{}", message(&error));
        assert!(message(&error).contains(&format!("'{named}'")), "{}", message(&error));
    }
}


const TINY_EN_REFERENCE: &str = include_str!("fixtures/whisper/tiny.en.reference.json");
const BASE_REFERENCE: &str = include_str!("fixtures/whisper/base.reference.json");

fn clip(name: &str) -> Vec<f32> {
    let (samples, rate, channels) = wav(if name == "jfk16.wav" { JFK } else { DE });
    assert_eq!((rate, channels), (16_000, 1));
    samples
}

/// A fixture clip: samples, sample rate, channels (the crate's own WAV reader).
fn wav(bytes: &[u8]) -> (Vec<f32>, u32, usize) {
    hubside::audio::read_wav(bytes).unwrap()
}

const JFK: &[u8] = include_bytes!("fixtures/audio/jfk16.wav");
const DE: &[u8] = include_bytes!("fixtures/audio/de16.wav");

#[wasm_bindgen_test]
fn log_mel_matches_reference_statistics() {
    for json in [TINY_EN_REFERENCE, BASE_REFERENCE] {
        let reference: WhisperReference = serde_json::from_str(json).unwrap();
        for case in reference.cases {
            let stats = &case.log_mel;
            let mel = hubside::audio::whisper_features(&clip(&case.audio), stats.shape[0]);
            assert_eq!(vec![mel.n_mels, mel.n_frames], stats.shape);
            let (mean, std) = mel.mean_std();
            assert!((mean - stats.mean).abs() < 1e-3 && (std - stats.std).abs() < 1e-3, "{}: {mean} {std}", case.audio);
            for (frame, expected) in [(0, &stats.frame0_first8), (100, &stats.frame100_first8)] {
                for (m, e) in expected.iter().enumerate() {
                    assert!((mel.get(m, frame) - e).abs() < 1e-3, "{}: mel[{m}][{frame}]", case.audio);
                }
            }
        }
    }
}

/// A reference case's clip transcribed with its language and task, without timestamps.
fn transcribe_case(recognizer: &SpeechRecognizer, case: &references::WhisperCase) -> hubside::tasks::speech_recognition::Transcription {
    let samples = clip(&case.audio);
    let options = TranscribeOptions {
        language: Some(case.language.clone()),
        task: hubside::tasks::speech_recognition::SpeechTask::parse(&case.task).unwrap(),
        return_timestamps: false.into(),
        ..Default::default()
    };
    let pcm = hubside::audio::Pcm { samples: &samples, sample_rate: 16_000, channels: 1 };
    recognizer.transcribe(pcm, &options, &mut |_| {}).unwrap()
}

#[wasm_bindgen_test]
async fn whisper_base_token_ids_match_reference() {
    let reference: WhisperReference = serde_json::from_str(BASE_REFERENCE).unwrap();
    let repo = Repo::remote("Systran/faster-whisper-base", Some(ENDPOINT), None).unwrap();
    let recognizer = SpeechRecognizer::load(&repo).await.unwrap();
    for case in &reference.cases {
        let result = transcribe_case(&recognizer, case);
        assert_eq!(result.tokens, case.generated_ids, "{}", case.audio);
        assert_eq!(result.text, case.text, "{}", case.audio);
    }
}

/// q8 in the browser runs the encoders through the simd128 int8 tiles (natively, q8 products of
/// many rows are widened to f32 instead): every reference transcript, token for token, of the
/// real tiny.en and base weights, the German clip included.
#[wasm_bindgen_test]
async fn whisper_q8_token_ids_match_reference_in_the_browser() {
    use hubside::tasks::LoadOptions;
    use hubside::weights::WeightDType;
    for (model, json) in [("Systran/faster-whisper-tiny.en", TINY_EN_REFERENCE), ("Systran/faster-whisper-base", BASE_REFERENCE)] {
        let reference: WhisperReference = serde_json::from_str(json).unwrap();
        let repo = Repo::remote(model, Some(ENDPOINT), None).unwrap();
        let recognizer = SpeechRecognizer::load_with(&repo, &LoadOptions { dtype: WeightDType::Q8, ..Default::default() }).await.unwrap();
        for case in &reference.cases {
            let result = transcribe_case(&recognizer, case);
            assert_eq!(result.tokens, case.generated_ids, "{model} q8: {}: {:?}", case.audio, result.text);
        }
    }
}

#[wasm_bindgen_test]
async fn long_audio_yields_every_repetition_once() {
    // 3 × (clip + 5 s of silence) = 48 s: two windows or more, each phrase exactly 3 times.
    let clip = clip("jfk16.wav");
    let mut samples = Vec::new();
    for _ in 0..3 {
        samples.extend_from_slice(&clip);
        samples.extend(std::iter::repeat_n(0.0, 16_000 * 5));
    }
    let asr = pipeline("automatic-speech-recognition".into(), Some("Systran/faster-whisper-tiny.en".into()), options(&[("endpoint", ENDPOINT.into())]))
        .await
        .unwrap();
    let (windows, on_partial) = recorder();
    // Greedy: windows holding the speech twice are repetitive and openai's default fallback would
    // sample them (tests/web_whisper_longform.rs).
    let opts = options(&[("on_partial", on_partial.as_ref().clone()), ("return_timestamps", true.into()), ("temperature", 0.into())]);
    let out = call(&asr, js_sys::Float32Array::from(samples.as_slice()).into(), opts).await.unwrap();
    let text = Reflect::get(&out, &"text".into()).unwrap().as_string().unwrap().to_lowercase();
    for phrase in ["my fellow americans", "what you can do for your country"] {
        assert_eq!(text.matches(phrase).count(), 3, "{phrase:?} in {text:?}");
    }
    assert!(windows.length() >= 2, "progress per window");
    let chunks = assert_chunks_in_order(&out, 48.0);

    // The same output as subtitles: one WebVTT cue per chunk, times to the millisecond.
    let vtt = hubside::wasm::subtitles(out.clone(), "vtt", JsValue::UNDEFINED).unwrap();
    let body = vtt.strip_prefix("WEBVTT\n\n").expect("WebVTT header");
    let cues: Vec<&str> = body.trim_end().split("\n\n").collect();
    assert_eq!(cues.len(), chunks.len(), "{vtt}");
    for (cue, chunk) in cues.iter().zip(&chunks) {
        let (timing, text) = cue.split_once('\n').unwrap();
        let ms = |t: f64| {
            let ms = (t * 1000.0).round() as u64;
            format!("{:02}:{:02}:{:02}.{:03}", ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000)
        };
        let (start, end) = (chunk["timestamp"][0].as_f64().unwrap(), chunk["timestamp"][1].as_f64().unwrap());
        assert_eq!(timing, format!("{} --> {}", ms(start), ms(end)));
        assert_eq!(text, chunk["text"].as_str().unwrap().trim());
    }
    let srt = hubside::wasm::subtitles(out.clone(), "srt", JsValue::UNDEFINED).unwrap();
    assert!(srt.starts_with("1\n00:00:0") && srt.matches(" --> ").count() == chunks.len(), "{srt}");
    // Without chunks (timestamps not asked for) there is nothing to time: an input error.
    let untimed = options(&[("text", "hello".into())]);
    let error = hubside::wasm::subtitles(untimed, "srt", JsValue::UNDEFINED).unwrap_err();
    assert_eq!(Reflect::get(&error, &"kind".into()).unwrap().as_string().unwrap(), "input");
    assert!(hubside::wasm::subtitles(out, "ass", JsValue::UNDEFINED).is_err());
}

/// The result's `chunks`: increasing, non-overlapping `[start, end]` within `duration` seconds.
fn assert_chunks_in_order(out: &JsValue, duration: f64) -> Vec<serde_json::Value> {
    let chunks: Vec<serde_json::Value> = serde_wasm_bindgen::from_value(Reflect::get(out, &"chunks".into()).unwrap()).unwrap();
    assert!(!chunks.is_empty());
    let mut last_end = 0.0;
    for chunk in &chunks {
        let (start, end) = (chunk["timestamp"][0].as_f64().unwrap(), chunk["timestamp"][1].as_f64().unwrap());
        assert!(start >= last_end && end > start && end <= duration + 1e-6, "{chunks:?}");
        last_end = end;
    }
    chunks
}

#[wasm_bindgen_test]
async fn whisper_tiny_en_token_ids_match_reference() {
    let reference: WhisperReference = serde_json::from_str(TINY_EN_REFERENCE).unwrap();
    let case = reference.cases.iter().find(|c| c.audio == "jfk16.wav").unwrap();
    let repo = Repo::remote("Systran/faster-whisper-tiny.en", Some(ENDPOINT), None).unwrap();
    let recognizer = SpeechRecognizer::load(&repo).await.unwrap();
    let (samples, rate, channels) = wav(JFK);
    let pcm = hubside::audio::Pcm { samples: &samples, sample_rate: rate, channels };
    let result = recognizer.transcribe(pcm, &TranscribeOptions::default(), &mut |_| {}).unwrap();
    assert_eq!(result.tokens, case.generated_ids);
    assert_eq!(result.text, case.text);
}

#[wasm_bindgen_test]
async fn js_asr_pipeline_matches_reference() {
    let (samples, rate, _) = wav(JFK);
    let audio = js_sys::Float32Array::from(samples.as_slice());
    let tiny: WhisperReference = serde_json::from_str(TINY_EN_REFERENCE).unwrap();
    let asr = pipeline("automatic-speech-recognition".into(), Some("Systran/faster-whisper-tiny.en".into()), options(&[("endpoint", ENDPOINT.into())]))
        .await
        .unwrap();
    let (partials, on_partial) = recorder();
    let opts = options(&[("sampling_rate", rate.into()), ("on_partial", on_partial.as_ref().clone())]);
    let out = call(&asr, audio.clone().into(), opts).await.unwrap();
    let text = Reflect::get(&out, &"text".into()).unwrap().as_string().unwrap();
    assert_eq!(text, tiny.cases.iter().find(|c| c.audio == "jfk16.wav").unwrap().text);
    assert_eq!(Reflect::get(&out, &"language".into()).unwrap().as_string().unwrap(), "en");
    assert!(partials.length() >= 1);
    let last = partials.get(partials.length() - 1);
    assert_eq!(Reflect::get(&last, &"text".into()).unwrap().as_string().unwrap(), text);

    // Timestamps: increasing segments inside the 11 s clip, in transformers.js' shape.
    let out = call(&asr, audio.clone().into(), options(&[("sampling_rate", rate.into()), ("return_timestamps", true.into())])).await.unwrap();
    let chunks = assert_chunks_in_order(&out, 11.0);
    let joined: String = chunks.iter().map(|c| c["text"].as_str().unwrap()).collect();
    assert!(joined.to_lowercase().contains("my fellow americans"), "{joined}");

    // 44.1 kHz stereo made from the clip still gives the phrases (planar channels, like AudioBuffer).
    let resampled = linear_resample(&samples, 16_000, 44_100);
    let planar = Array::of2(&js_sys::Float32Array::from(resampled.as_slice()), &js_sys::Float32Array::from(resampled.as_slice()));
    let out = call(&asr, planar.into(), options(&[("sampling_rate", 44_100.into())])).await.unwrap();
    let text = Reflect::get(&out, &"text".into()).unwrap().as_string().unwrap().to_lowercase();
    for phrase in ["my fellow americans", "your country", "do for you"] {
        assert!(text.contains(phrase), "{text}");
    }

    // Asking an English-only model for German is a clear error, and the pipeline still works after.
    assert_eq!(Reflect::get(&asr, &"multilingual".into()).unwrap().as_bool(), Some(false));
    let err = call(&asr, audio.clone().into(), options(&[("language", "de".into())])).await.unwrap_err();
    assert!(message(&err).to_lowercase().contains("english"), "{}", message(&err));
    let bad = call(&asr, "not audio".into(), JsValue::UNDEFINED).await.unwrap_err();
    assert!(message(&bad).contains("Float32Array"), "{}", message(&bad));
}

/// Test-side upsampling (linear interpolation) to fabricate a 44.1 kHz input; the crate's own
/// resampler then has to bring it back to 16 kHz.
fn linear_resample(samples: &[f32], from: u32, to: u32) -> Vec<f32> {
    let n = (samples.len() as u64 * to as u64 / from as u64) as usize;
    (0..n)
        .map(|i| {
            let x = i as f64 * from as f64 / to as f64;
            let j = x.floor() as usize;
            let frac = (x - j as f64) as f32;
            let a = samples[j.min(samples.len() - 1)];
            let b = samples[(j + 1).min(samples.len() - 1)];
            a + (b - a) * frac
        })
        .collect()
}

#[wasm_bindgen_test]
async fn whisper_base_translates_german_to_english() {
    let reference: WhisperReference = serde_json::from_str(BASE_REFERENCE).unwrap();
    let case = reference.cases.iter().find(|c| c.audio == "de16.wav").unwrap();
    assert_eq!((case.task.as_str(), case.language.as_str()), ("translate", "de"));
    let (samples, rate, _) = wav(DE);
    let asr = pipeline("automatic-speech-recognition".into(), Some("Systran/faster-whisper-base".into()), options(&[("endpoint", ENDPOINT.into())]))
        .await
        .unwrap();
    assert_eq!(Reflect::get(&asr, &"multilingual".into()).unwrap().as_bool(), Some(true));
    let opts = options(&[("sampling_rate", rate.into()), ("task", "translate".into()), ("language", "de".into())]);
    let out = call(&asr, js_sys::Float32Array::from(samples.as_slice()).into(), opts).await.unwrap();
    assert_eq!(Reflect::get(&out, &"text".into()).unwrap().as_string().unwrap(), case.text);
}

#[wasm_bindgen_test]
async fn asr_alias_and_typed_options() {
    let asr = pipeline("asr".into(), Some("Systran/faster-whisper-tiny.en".into()), options(&[("endpoint", ENDPOINT.into())]))
        .await
        .unwrap();
    assert_eq!(Reflect::get(&asr, &"task".into()).unwrap().as_string().unwrap(), "automatic-speech-recognition");
    assert_eq!(Reflect::get(&asr, &"multilingual".into()).unwrap().as_bool(), Some(false));
    let audio: JsValue = js_sys::Float32Array::from(&clip("jfk16.wav")[..16_000]).into();
    for (opts, named) in [
        (options(&[("return_timestamp", true.into())]), "return_timestamp"),
        (options(&[("sampling_rate", "16k".into())]), "sampling_rate"),
        (options(&[("channels", 1.5.into())]), "channels"),
        (options(&[("return_timestamps", "yes".into())]), "return_timestamps"),
        (options(&[("task", "summarize".into())]), "task"),
        (options(&[("language", 7.into())]), "language"),
        (options(&[("on_partial", true.into())]), "on_partial"),
    ] {
        let error = call(&asr, audio.clone(), opts).await.unwrap_err();
        assert_eq!(kind(&error), "input", "{}", message(&error));
        assert!(message(&error).contains(&format!("'{named}'")), "{}", message(&error));
    }
}
