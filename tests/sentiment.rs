//! Sentiment analysis against the PyTorch + transformers references in tests/fixtures, loading
//! the models through the local Hub mirror over HTTP (and from a directory), natively.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use std::collections::HashMap;
use std::path::PathBuf;

use candle_core::{DType, Device, Tensor};
use common::{mirror, HUB};
use hubside::hub::{Repo, Status};
use hubside::tasks::text_classification::TextClassifier;
use hubside::Error;

const MODELS: [&str; 3] = ["tiny-random/distilbert-sst2", "tiny-random/distilbert-sst2-legacy", "tiny-random/bert-sentiment-3class"];

mod references;
type Reference = references::Classification;

fn reference(model: &str) -> Reference {
    common::reference(model)
}

fn load(repo: &Repo) -> hubside::Result<TextClassifier> {
    pollster::block_on(TextClassifier::load(repo))
}

fn assert_close(actual: &[f32], expected: &[f32], tolerance: f32, what: &str) {
    assert_eq!(actual.len(), expected.len(), "{what}: length");
    for (a, e) in actual.iter().zip(expected) {
        assert!((a - e).abs() <= tolerance, "{what}: {actual:?} vs {expected:?}");
    }
}

fn check_against_reference(classifier: &TextClassifier, model: &str) {
    let reference = reference(model);
    for case in &reference.cases {
        let result = &classifier.classify(&[&case.text]).unwrap()[0];
        assert_eq!(result.input_ids, case.input_ids, "{model}: input_ids of {:?}", case.text);
        assert_close(&result.logits, &case.logits, 1e-4, &format!("{model}: logits of {:?}", case.text));
        assert_close(&result.scores, &case.scores, 1e-4, &format!("{model}: scores of {:?}", case.text));
        assert_eq!(classifier.top_k(result, Some(1))[0].label, case.label, "{model}: label of {:?}", case.text);
    }
}

#[test]
fn matches_reference_over_http() {
    let server = mirror();
    for model in MODELS {
        let repo = Repo::remote(model, Some(&server.hub_endpoint()), None).unwrap();
        check_against_reference(&load(&repo).unwrap(), model);
    }
}

#[test]
fn matches_reference_from_directory() {
    for model in MODELS {
        check_against_reference(&load(&Repo::local(format!("{HUB}/{model}"))).unwrap(), model);
    }
}

#[test]
fn batch_equals_single() {
    let model = "tiny-random/bert-sentiment-3class";
    let classifier = load(&Repo::local(format!("{HUB}/{model}"))).unwrap();
    let texts: Vec<String> = reference(model).cases.into_iter().map(|c| c.text).collect();
    let batch = classifier.classify(&texts).unwrap();
    assert_eq!(batch.len(), texts.len());
    for (text, batched) in texts.iter().zip(&batch) {
        let single = &classifier.classify(&[text]).unwrap()[0];
        assert_eq!(batched.input_ids, single.input_ids);
        assert_close(&batched.logits, &single.logits, 1e-5, &format!("batch vs single for {text:?}"));
    }
}

#[test]
fn long_input_is_truncated_to_the_model_maximum() {
    let model = "tiny-random/distilbert-sst2";
    let classifier = load(&Repo::local(format!("{HUB}/{model}"))).unwrap();
    let long = "the movie was good and ".repeat(400);
    let result = &classifier.classify(&[&long]).unwrap()[0];
    assert_eq!(result.input_ids.len(), 512);
    assert_eq!(result.input_ids[0], 101);
    assert_eq!(*result.input_ids.last().unwrap(), 102);
    // Truncation keeps the start: the same as classifying the text cut to its first 510 word pieces.
    let words: Vec<&str> = long.split_whitespace().take(510).collect();
    let cut = &classifier.classify(&[words.join(" ")]).unwrap()[0];
    assert_eq!(cut.input_ids, result.input_ids);
    assert_close(&cut.logits, &result.logits, 1e-5, "truncated vs cut");
    let total: f32 = result.scores.iter().sum();
    assert!((total - 1.0).abs() < 1e-5);
}

#[test]
fn any_unicode_gives_defined_scores() {
    let classifier = load(&Repo::local(format!("{HUB}/tiny-random/distilbert-sst2"))).unwrap();
    let texts = ["\u{0}\u{1}\u{7f}", "   \n\t ", "🙂".repeat(1000).as_str(), "\u{202e}rtl \u{fffd} \u{10ffff}", "ａｂｃ"]
        .map(String::from);
    for result in classifier.classify(&texts).unwrap() {
        assert!(result.scores.iter().all(|s| s.is_finite() && (0.0..=1.0).contains(s)));
        assert!(result.input_ids.len() <= 512);
    }
}

#[test]
fn top_k_ranks_all_labels() {
    let classifier = load(&Repo::local(format!("{HUB}/tiny-random/bert-sentiment-3class"))).unwrap();
    let result = &classifier.classify(&["It was okay."]).unwrap()[0];
    let ranked = classifier.top_k(result, None);
    let labels: Vec<&str> = ranked.iter().map(|r| r.label.as_str()).collect();
    assert_eq!(labels, ["neutral", "positive", "negative"]); // reference scores 0.869, 0.076, 0.055
    assert_eq!(classifier.top_k(result, Some(2)).len(), 2);
}

#[test]
fn progress_reports_every_file_in_bytes() {
    let server = mirror();
    let events = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let sink = events.clone();
    let repo = Repo::remote("tiny-random/distilbert-sst2", Some(&server.hub_endpoint()), None)
        .unwrap()
        .with_progress(Box::new(move |p| sink.borrow_mut().push((p.status, p.file.to_string(), p.loaded, p.total))));
    load(&repo).unwrap();
    let events = events.borrow();
    let weights_size = std::fs::metadata(format!("{HUB}/tiny-random/distilbert-sst2/model.safetensors")).unwrap().len();
    assert!(events.contains(&(Status::Done, "model.safetensors".into(), weights_size, Some(weights_size))));
    assert!(events.iter().any(|e| e.0 == Status::Progress && e.1 == "model.safetensors" && e.3 == Some(weights_size)));
    assert!(events.iter().any(|e| e.0 == Status::Done && e.1 == "tokenizer.json"));
    assert!(events.iter().any(|e| e.0 == Status::Done && e.1 == "config.json"));
}

#[test]
fn missing_repo_names_the_url() {
    let server = mirror();
    let repo = Repo::remote("tiny-random/no-such-model", Some(&server.hub_endpoint()), None).unwrap();
    match load(&repo) {
        Err(Error::NotFound { url }) => {
            assert_eq!(url, format!("{}/tiny-random/no-such-model/resolve/main/config.json", server.hub_endpoint()))
        }
        other => panic!("expected NotFound, got {:?}", other.err()),
    }
}

#[test]
fn unsupported_model_type_lists_supported() {
    let server = mirror();
    let repo = Repo::remote("tiny-random/marian-en-de", Some(&server.hub_endpoint()), None).unwrap();
    let err = load(&repo).err().expect("marian is not a classifier");
    assert!(matches!(&err, Error::UnsupportedModel { model_type, .. } if model_type == "marian"), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("'marian'") && message.contains("bert") && message.contains("distilbert"), "{message}");
}

#[test]
fn corrupt_weights_are_a_clear_error() {
    let dir = std::env::temp_dir().join(format!("hubside-corrupt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let source = format!("{HUB}/tiny-random/distilbert-sst2");
    for file in ["config.json", "tokenizer.json", "tokenizer_config.json"] {
        std::fs::copy(format!("{source}/{file}"), dir.join(file)).unwrap();
    }
    let weights = std::fs::read(format!("{source}/model.safetensors")).unwrap();
    std::fs::write(dir.join("model.safetensors"), &weights[..weights.len() / 2]).unwrap();
    let err = load(&Repo::local(&dir)).err().expect("truncated weights must fail");
    assert!(matches!(&err, Error::Weights { file, .. } if file == "model.safetensors"), "{err:?}");

    std::fs::remove_file(dir.join("model.safetensors")).unwrap();
    std::fs::write(dir.join("pytorch_model.bin"), b"PK\x03\x04 not really a zip").unwrap();
    let err = load(&Repo::local(&dir)).err().expect("garbage pytorch_model.bin must fail");
    assert!(matches!(&err, Error::Weights { file, .. } if file == "pytorch_model.bin"), "{err:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn invalid_repo_ids_are_rejected() {
    for bad in ["", "a/b/c", "../etc", "org/na me"] {
        assert!(matches!(Repo::remote(bad, None, None), Err(Error::Input(_))), "{bad:?}");
    }
}

#[test]
fn cli_prints_json_per_text() {
    let exe = env!("CARGO_BIN_EXE_hubside");
    let server = mirror();
    let reference = reference("tiny-random/distilbert-sst2");
    let texts: Vec<&str> = reference.cases.iter().map(|c| c.text.as_str()).collect();
    let output = std::process::Command::new(exe)
        .args(["sentiment", "--model", "tiny-random/distilbert-sst2", "--endpoint", &server.hub_endpoint(), "--json", "--"])
        .args(&texts)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let lines: Vec<serde_json::Value> =
        String::from_utf8(output.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), reference.cases.len());
    for (line, case) in lines.iter().zip(&reference.cases) {
        assert_eq!(line["label"], case.label);
        let ids: Vec<u32> = serde_json::from_value(line["input_ids"].clone()).unwrap();
        assert_eq!(ids, case.input_ids);
        let score = line["scores"][&case.label].as_f64().unwrap() as f32;
        assert!((line["score"].as_f64().unwrap() as f32 - score).abs() < 1e-6);
    }

    let failed = std::process::Command::new(exe)
        .args(["sentiment", "--model", "tiny-random/missing", "--endpoint", &server.hub_endpoint(), "hi"])
        .output()
        .unwrap();
    assert!(!failed.status.success());
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(stderr.contains("file not found") && stderr.contains("/tiny-random/missing/resolve/main/config.json"), "{stderr}");
}

/// A copy of a fixture repo with its weights replaced by `tensors`.
fn repo_with_tensors(model: &str, tensors: &HashMap<String, Tensor>, tag: &str) -> PathBuf {
    let source = format!("{HUB}/{model}");
    let dir = std::env::temp_dir().join(format!("hubside-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for file in ["config.json", "tokenizer.json", "tokenizer_config.json"] {
        std::fs::copy(format!("{source}/{file}"), dir.join(file)).unwrap();
    }
    candle_core::safetensors::save(tensors, dir.join("model.safetensors")).unwrap();
    dir
}

#[test]
fn f16_and_bf16_weights_load_exactly() {
    let model = "tiny-random/distilbert-sst2";
    let text = ["I love this movie, it was wonderful!"];
    let weights = candle_core::safetensors::load(format!("{HUB}/{model}/model.safetensors"), &Device::Cpu).unwrap();
    let convert = |dtype: DType| -> HashMap<String, Tensor> {
        weights.iter().map(|(name, t)| (name.clone(), t.to_dtype(dtype).unwrap())).collect()
    };
    for (dtype, tag) in [(DType::F16, "f16"), (DType::BF16, "bf16")] {
        // The same values stored in half precision and widened to f32 give identical logits: the
        // loader converts f16/bf16 to f32 without further rounding.
        let half = convert(dtype);
        let widened: HashMap<String, Tensor> = half.iter().map(|(n, t)| (n.clone(), t.to_dtype(DType::F32).unwrap())).collect();
        let half_dir = repo_with_tensors(model, &half, tag);
        let widened_dir = repo_with_tensors(model, &widened, &format!("{tag}-widened"));
        let from_half = load(&Repo::local(&half_dir)).unwrap().classify(&text).unwrap().remove(0);
        let from_f32 = load(&Repo::local(&widened_dir)).unwrap().classify(&text).unwrap().remove(0);
        assert_eq!(from_half.logits, from_f32.logits, "{tag}");
        // Rounding the weights to half precision moves the logits only slightly.
        assert_close(&from_half.logits, &reference(model).cases[0].logits, 0.05, tag);
        std::fs::remove_dir_all(&half_dir).unwrap();
        std::fs::remove_dir_all(&widened_dir).unwrap();
    }
}
