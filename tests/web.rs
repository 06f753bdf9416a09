//! In headless Chromium (wasm-bindgen-test): sentiment parity with the references, loading the
//! models from the local Hub mirror over HTTP through the browser's Fetch API, both through the
//! Rust API and through the JS-facing `pipeline()`. The mirror is `hubside serve --hub
//! tests/fixtures/hub`, started by scripts/test.sh; its endpoint comes from HUBSIDE_TEST_ENDPOINT.
#![cfg(target_arch = "wasm32")]

use hubside::hub::Repo;
use hubside::tasks::text_classification::TextClassifier;
use hubside::wasm::pipeline;
use js_sys::{Array, Function, Reflect};
use serde::Deserialize;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_test::*;

// In a dedicated worker, as the page runs hubside: a model run that takes longer than 30 s on a
// busy machine would otherwise stall the test page's main thread until ChromeDriver kills it.
wasm_bindgen_test_configure!(run_in_dedicated_worker);

mod browser;
use browser::{call, message, options, recorder, truncate_cached, ENDPOINT};


mod references;
type Reference = references::Classification;

#[derive(Deserialize, Debug)]
struct LabelScore {
    label: String,
    score: f32,
}

const MODELS: [(&str, &str); 3] = [
    ("tiny-random/distilbert-sst2", include_str!("fixtures/hub/tiny-random/distilbert-sst2/reference.json")),
    ("tiny-random/distilbert-sst2-legacy", include_str!("fixtures/hub/tiny-random/distilbert-sst2-legacy/reference.json")),
    ("tiny-random/bert-sentiment-3class", include_str!("fixtures/hub/tiny-random/bert-sentiment-3class/reference.json")),
];

fn reference(json: &str) -> Reference {
    serde_json::from_str(json).unwrap()
}

#[wasm_bindgen_test]
async fn rust_api_matches_reference_through_fetch() {
    for (model, json) in MODELS {
        let repo = Repo::remote(model, Some(ENDPOINT), None).unwrap();
        let classifier = TextClassifier::load(&repo).await.unwrap();
        for case in reference(json).cases {
            let result = &classifier.classify(&[&case.text]).unwrap()[0];
            assert_eq!(result.input_ids, case.input_ids, "{model} {:?}", case.text);
            for (a, e) in result.logits.iter().zip(&case.logits) {
                assert!((a - e).abs() <= 1e-4, "{model} {:?}: {:?} vs {:?}", case.text, result.logits, case.logits);
            }
        }
    }
}

#[wasm_bindgen_test]
async fn js_pipeline_matches_reference() {
    for (model, json) in MODELS {
        let opts = options(&[("endpoint", ENDPOINT.into())]);
        let clf = pipeline("sentiment-analysis".into(), Some(model.into()), opts).await.unwrap();
        let reference = reference(json);
        for case in &reference.cases {
            // Default top_k = 1: [{ label, score }].
            let top: Vec<LabelScore> = serde_wasm_bindgen::from_value(call(&clf, case.text.clone().into(), JsValue::UNDEFINED).await.unwrap()).unwrap();
            assert_eq!(top.len(), 1);
            assert_eq!(top[0].label, case.label, "{model} {:?}", case.text);
            let best = case.scores.iter().copied().fold(f32::MIN, f32::max);
            assert!((top[0].score - best).abs() <= 1e-4, "{model} {:?}: {top:?}", case.text);
        }
        // All labels for a batch: one list per text, same scores as the reference.
        let texts = Array::new();
        reference.cases.iter().for_each(|c| {
            texts.push(&c.text.clone().into());
        });
        let all: Vec<Vec<LabelScore>> = serde_wasm_bindgen::from_value(
            call(&clf, texts.into(), options(&[("top_k", JsValue::NULL)])).await.unwrap(),
        )
        .unwrap();
        assert_eq!(all.len(), reference.cases.len());
        let config: serde_json::Value = serde_json::from_str(std::str::from_utf8(&fetch_config(model).await).unwrap()).unwrap();
        for (ranked, case) in all.iter().zip(&reference.cases) {
            assert_eq!(ranked.len(), case.scores.len());
            for (i, expected) in case.scores.iter().enumerate() {
                let label = config["id2label"][i.to_string()].as_str().unwrap();
                let got = ranked.iter().find(|r| r.label == label).unwrap().score;
                assert!((got - expected).abs() <= 1e-4, "{model} {:?} {label}: {got} vs {expected}", case.text);
            }
        }
    }
}

async fn fetch_config(model: &str) -> Vec<u8> {
    Repo::remote(model, Some(ENDPOINT), None).unwrap().get("config.json").await.unwrap()
}

#[wasm_bindgen_test]
async fn text_classification_alias_and_batch_equals_single() {
    let opts = options(&[("endpoint", ENDPOINT.into())]);
    let clf = pipeline("text-classification".into(), Some("tiny-random/bert-sentiment-3class".into()), opts).await.unwrap();
    let texts = ["It was okay.", "I love this movie, it was wonderful!", ""];
    let batch = Array::new();
    texts.iter().for_each(|t| {
        batch.push(&(*t).into());
    });
    let batched: Vec<LabelScore> = serde_wasm_bindgen::from_value(call(&clf, batch.into(), JsValue::UNDEFINED).await.unwrap()).unwrap();
    assert_eq!(batched.len(), texts.len());
    for (text, b) in texts.iter().zip(&batched) {
        let single: Vec<LabelScore> = serde_wasm_bindgen::from_value(call(&clf, (*text).into(), JsValue::UNDEFINED).await.unwrap()).unwrap();
        assert_eq!(single[0].label, b.label);
        assert!((single[0].score - b.score).abs() < 1e-5);
    }
}

#[wasm_bindgen_test]
async fn progress_events_reach_the_callback() {
    let (events, callback) = recorder();
    let opts = options(&[("endpoint", ENDPOINT.into()), ("progress_callback", callback.as_ref().clone())]);
    pipeline("sentiment-analysis".into(), Some("tiny-random/distilbert-sst2".into()), opts).await.unwrap();
    let done: Vec<(String, f64, f64)> = events
        .iter()
        .filter(|e| Reflect::get(e, &"status".into()).unwrap().as_string().as_deref() == Some("done"))
        .map(|e| {
            let field = |k: &str| Reflect::get(&e, &k.into()).unwrap();
            (field("file").as_string().unwrap(), field("loaded").as_f64().unwrap(), field("progress").as_f64().unwrap())
        })
        .collect();
    let weights = done.iter().find(|d| d.0 == "model.safetensors").expect("weights download reported");
    assert_eq!(weights.1, 4_049_952.0);
    assert_eq!(weights.2, 100.0);
    assert!(done.iter().any(|d| d.0 == "tokenizer.json"));
    let partial = events.iter().any(|e| {
        Reflect::get(&e, &"status".into()).unwrap().as_string().as_deref() == Some("progress")
            && Reflect::get(&e, &"total".into()).unwrap().as_f64() == Some(4_049_952.0)
    });
    assert!(partial, "progress events carry the total size");
}

#[wasm_bindgen_test]
async fn errors_reject_with_clear_messages() {
    let opts = || options(&[("endpoint", ENDPOINT.into())]);
    let missing = pipeline("sentiment-analysis".into(), Some("tiny-random/nope".into()), opts()).await.unwrap_err();
    let text = message(&missing);
    assert!(text.contains(&format!("{ENDPOINT}/tiny-random/nope/resolve/main/config.json")), "{text}");
    assert_eq!(Reflect::get(&missing, &"kind".into()).unwrap().as_string().unwrap(), "not_found");

    let unsupported = pipeline("sentiment-analysis".into(), Some("tiny-random/t5".into()), opts()).await.unwrap_err();
    let text = message(&unsupported);
    assert!(text.contains("'t5'") && text.contains("distilbert"), "{text}");

    let bad_task = pipeline("summarization".into(), Some("tiny-random/t5".into()), opts()).await.unwrap_err();
    assert!(message(&bad_task).contains("sentiment-analysis"));

    let offline = options(&[("endpoint", "http://127.0.0.1:9/hub".into())]);
    let unreachable = pipeline("sentiment-analysis".into(), Some("tiny-random/distilbert-sst2".into()), offline).await.unwrap_err();
    assert_eq!(Reflect::get(&unreachable, &"kind".into()).unwrap().as_string().unwrap(), "network");

    // After failures the module still works; bad inputs reject, they do not panic.
    let clf = pipeline("sentiment-analysis".into(), Some("tiny-random/distilbert-sst2".into()), opts()).await.unwrap();
    let bad = call(&clf, JsValue::from_f64(3.0), JsValue::UNDEFINED).await.unwrap_err();
    assert!(message(&bad).contains("input must be a string"), "{}", message(&bad));
    let ok: Vec<LabelScore> = serde_wasm_bindgen::from_value(call(&clf, "fine".into(), JsValue::UNDEFINED).await.unwrap()).unwrap();
    assert_eq!(ok.len(), 1);
    let dispose: Function = Reflect::get(&clf, &"dispose".into()).unwrap().unchecked_into();
    dispose.call0(&JsValue::NULL).unwrap();
    assert!(message(&call(&clf, "fine".into(), JsValue::UNDEFINED).await.unwrap_err()).contains("disposed"));
}

#[derive(Deserialize, Debug)]
struct CachedModel {
    model: String,
    bytes: u64,
    files: Vec<serde_json::Value>,
}

#[wasm_bindgen_test]
async fn browser_cache_reuses_files_and_refetches_damaged_ones() {
    let model = "tiny-random/distilbert-sst2-legacy";
    hubside::wasm::clear_cache(Some(model.into())).await;
    let load = || async {
        let repo = Repo::remote(model, Some(ENDPOINT), None).unwrap();
        TextClassifier::load(&repo).await.unwrap()
    };
    let expected = reference(MODELS[1].1).cases.remove(0);
    load().await;

    let cached: Vec<CachedModel> = serde_wasm_bindgen::from_value(hubside::wasm::cached_models().await.unwrap()).unwrap();
    let entry = cached.iter().find(|m| m.model == model).expect("model is cached");
    let weights = 4_061_503u64; // pytorch_model.bin
    assert!(entry.bytes > weights, "{entry:?}");
    assert!(entry.files.len() >= 4, "config, tokenizer_config, vocab.txt, pytorch_model.bin: {entry:?}");

    // A truncated cache entry is detected, fetched again, and the results are still right.
    let url = format!("{ENDPOINT}/{model}/resolve/main/pytorch_model.bin");
    truncate_cached(&url).await;
    let classifier = load().await;
    let result = &classifier.classify(&[&expected.text]).unwrap()[0];
    assert!((result.logits[0] - expected.logits[0]).abs() < 1e-4);
    let cached: Vec<CachedModel> = serde_wasm_bindgen::from_value(hubside::wasm::cached_models().await.unwrap()).unwrap();
    assert_eq!(cached.iter().find(|m| m.model == model).unwrap().bytes, entry.bytes, "the repaired entry is whole again");

    assert!(hubside::wasm::clear_cache(Some(model.into())).await >= 4);
    let cached: Vec<CachedModel> = serde_wasm_bindgen::from_value(hubside::wasm::cached_models().await.unwrap()).unwrap();
    assert!(cached.iter().all(|m| m.model != model));
}

fn kind(error: &JsValue) -> String {
    Reflect::get(error, &"kind".into()).unwrap().as_string().unwrap_or_default()
}

#[wasm_bindgen_test]
async fn unknown_and_wrong_typed_options_are_input_errors_naming_them() {
    let model = || Some("tiny-random/distilbert-sst2".to_string());
    // Load options.
    for (opts, named) in [
        (options(&[("endpoint", ENDPOINT.into()), ("revison", "main".into())]), "revison"),
        (options(&[("endpoint", 5.into())]), "endpoint"),
        (options(&[("endpoint", ENDPOINT.into()), ("cache", "yes".into())]), "cache"),
        (options(&[("endpoint", ENDPOINT.into()), ("progress_callback", 1.into())]), "progress_callback"),
        (options(&[("endpoint", ENDPOINT.into()), ("timeout", (-1).into())]), "timeout"),
        (options(&[("endpoint", ENDPOINT.into()), ("timeout", f64::INFINITY.into())]), "timeout"),
    ] {
        let error = pipeline("sentiment-analysis".into(), model(), opts).await.unwrap_err();
        assert_eq!(kind(&error), "input", "{}", message(&error));
        assert!(message(&error).contains(&format!("'{named}'")), "{}", message(&error));
    }
    // Per-call options.
    let clf = pipeline("sentiment-analysis".into(), model(), options(&[("endpoint", ENDPOINT.into())])).await.unwrap();
    for (opts, named) in [
        (options(&[("topk", 2.into())]), "topk"),
        (options(&[("top_k", "two".into())]), "top_k"),
        (options(&[("top_k", (-1).into())]), "top_k"),
    ] {
        let error = call(&clf, "fine".into(), opts).await.unwrap_err();
        assert_eq!(kind(&error), "input", "{}", message(&error));
        assert!(message(&error).contains(&format!("'{named}'")), "{}", message(&error));
    }
    let unknown = message(&call(&clf, "fine".into(), options(&[("topk", 2.into())])).await.unwrap_err());
    assert!(unknown.contains("top_k"), "the message lists the options: {unknown}");
    let not_an_object = call(&clf, "fine".into(), "top_k".into()).await.unwrap_err();
    assert_eq!(kind(&not_an_object), "input");
}

#[wasm_bindgen_test]
async fn top_k_defaults_to_one_and_null_or_zero_means_every_label() {
    let model = "tiny-random/bert-sentiment-3class";
    let clf = pipeline("text-classification".into(), Some(model.into()), options(&[("endpoint", ENDPOINT.into())])).await.unwrap();
    let count = |value: JsValue| Array::from(&value).length();
    assert_eq!(count(call(&clf, "fine".into(), options(&[("top_k", JsValue::UNDEFINED)])).await.unwrap()), 1);
    assert_eq!(count(call(&clf, "fine".into(), options(&[("top_k", 2.into())])).await.unwrap()), 2);
    assert_eq!(count(call(&clf, "fine".into(), options(&[("top_k", JsValue::NULL)])).await.unwrap()), 3);
    assert_eq!(count(call(&clf, "fine".into(), options(&[("top_k", 0.into())])).await.unwrap()), 3);
}

#[wasm_bindgen_test]
async fn pipeline_function_names_its_task_and_model() {
    let model = "tiny-random/distilbert-sst2";
    let clf = pipeline("sentiment-analysis".into(), Some(model.into()), options(&[("endpoint", ENDPOINT.into())])).await.unwrap();
    assert_eq!(Reflect::get(&clf, &"task".into()).unwrap().as_string().unwrap(), "text-classification");
    assert_eq!(Reflect::get(&clf, &"model".into()).unwrap().as_string().unwrap(), model);
    assert!(Reflect::get(&clf, &"multilingual".into()).unwrap().is_undefined());
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct SupportedTask {
    task: String,
    aliases: Vec<String>,
    model_types: Vec<String>,
    default_model: String,
    options: Vec<String>,
}

#[wasm_bindgen_test]
fn supported_tasks_is_the_task_table() {
    let tasks: Vec<SupportedTask> = serde_wasm_bindgen::from_value(hubside::wasm::supported_tasks().unwrap()).unwrap();
    let names: Vec<&str> = tasks.iter().map(|t| t.task.as_str()).collect();
    assert_eq!(names, ["text-classification", "translation", "automatic-speech-recognition"]);
    let [classification, translation, asr] = &tasks[..] else { unreachable!() };
    assert_eq!(classification.aliases, ["sentiment-analysis"]);
    assert_eq!(classification.model_types, ["bert", "distilbert", "roberta", "xlm-roberta", "deberta-v2"]);
    assert_eq!(classification.default_model, "distilbert/distilbert-base-uncased-finetuned-sst-2-english");
    assert_eq!(classification.options, ["top_k"]);
    assert_eq!(translation.model_types, ["marian", "m2m_100", "t5"]);
    assert_eq!(translation.default_model, "Helsinki-NLP/opus-mt-en-de");
    for option in ["max_new_tokens", "num_beams", "length_penalty", "early_stopping", "src_lang", "tgt_lang", "on_token"] {
        assert!(translation.options.iter().any(|o| o == option), "{option}: {translation:?}");
    }
    assert_eq!(asr.aliases, ["asr"]);
    assert_eq!(asr.model_types, ["whisper"]);
    assert_eq!(asr.default_model, "openai/whisper-tiny.en");
    for option in ["sampling_rate", "channels", "return_timestamps", "language", "task", "on_partial"] {
        assert!(asr.options.iter().any(|o| o == option), "{option}: {asr:?}");
    }
    assert_eq!(hubside::wasm::default_endpoint(), "https://huggingface.co");
}
