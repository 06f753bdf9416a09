//! In headless Chromium: RoBERTa and XLM-RoBERTa classification (tests/models/make_roberta.py's
//! fixtures) through the Rust API and the JS-facing `pipeline('sentiment-analysis', …)`, loading
//! from the local Hub mirror over HTTP, against the PyTorch + transformers references: token ids
//! from vocab.json + merges.txt, tokenizer.json and sentencepiece.bpe.model, logits, the
//! `[{ label, score }]` shape and multi-label `top_k`. Started by scripts/test.sh.
#![cfg(target_arch = "wasm32")]

use hubside::hub::Repo;
use hubside::tasks::text_classification::TextClassifier;
use hubside::wasm::pipeline;
use js_sys::Array;
use serde::Deserialize;
use wasm_bindgen::JsValue;
use wasm_bindgen_test::*;

// In a dedicated worker, as the page runs hubside (see tests/web_tasks.rs).
wasm_bindgen_test_configure!(run_in_dedicated_worker);

mod browser;
use browser::{call, options, ENDPOINT};

mod references;
type Reference = references::Classification;

#[derive(Deserialize, Debug)]
struct LabelScore {
    label: String,
    score: f32,
}

const TOLERANCE: f32 = 1e-4;

const MODELS: [(&str, &str); 3] = [
    ("tiny-random/roberta-sentiment", include_str!("fixtures/hub/tiny-random/roberta-sentiment/reference.json")),
    ("tiny-random/roberta-go-emotions", include_str!("fixtures/hub/tiny-random/roberta-go-emotions/reference.json")),
    ("tiny-random/xlm-roberta-sentiment", include_str!("fixtures/hub/tiny-random/xlm-roberta-sentiment/reference.json")),
];

fn reference(json: &str) -> Reference {
    serde_json::from_str(json).unwrap()
}

fn texts(reference: &Reference) -> Array {
    reference.cases.iter().map(|c| JsValue::from(c.text.as_str())).collect()
}

#[wasm_bindgen_test]
async fn rust_api_matches_reference_through_fetch() {
    for (model, json) in MODELS {
        let classifier = TextClassifier::load(&Repo::remote(model, Some(ENDPOINT), None).unwrap()).await.unwrap();
        let reference = reference(json);
        let batch: Vec<&str> = reference.cases.iter().map(|c| c.text.as_str()).collect();
        for (result, case) in classifier.classify(&batch).unwrap().iter().zip(&reference.cases) {
            assert_eq!(result.input_ids, case.input_ids, "{model} {:?}", case.text);
            for (a, e) in result.logits.iter().zip(&case.logits) {
                assert!((a - e).abs() <= TOLERANCE, "{model} {:?}: {:?} vs {:?}", case.text, result.logits, case.logits);
            }
        }
    }
}

#[wasm_bindgen_test]
async fn js_pipeline_gives_the_best_label_and_score() {
    for (model, json) in MODELS {
        let clf = pipeline("sentiment-analysis".into(), Some(model.into()), options(&[("endpoint", ENDPOINT.into())])).await.unwrap();
        let reference = reference(json);
        // A batch with the default top_k of 1: one { label, score } per text (transformers.js).
        let out: Vec<LabelScore> =
            serde_wasm_bindgen::from_value(call(&clf, texts(&reference).into(), JsValue::UNDEFINED).await.unwrap()).unwrap();
        assert_eq!(out.len(), reference.cases.len());
        for (top, case) in out.iter().zip(&reference.cases) {
            let best = case.scores.iter().copied().fold(f32::MIN, f32::max);
            assert!((top.score - best).abs() <= TOLERANCE, "{model} {:?}: {top:?}", case.text);
            if case.top_margin.unwrap() > TOLERANCE {
                assert_eq!(top.label, case.label, "{model} {:?}", case.text);
            }
        }
        // One text in, a list of { label, score } out.
        let single: Vec<LabelScore> =
            serde_wasm_bindgen::from_value(call(&clf, reference.cases[0].text.clone().into(), JsValue::UNDEFINED).await.unwrap()).unwrap();
        assert_eq!(single.len(), 1);
    }
}

#[wasm_bindgen_test]
async fn multi_label_top_k_ranks_sigmoid_scores() {
    let (model, json) = MODELS[1];
    let reference = reference(json);
    let clf = pipeline("text-classification".into(), Some(model.into()), options(&[("endpoint", ENDPOINT.into())])).await.unwrap();
    for case in &reference.cases {
        let ranked: Vec<LabelScore> =
            serde_wasm_bindgen::from_value(call(&clf, case.text.clone().into(), options(&[("top_k", 5.into())])).await.unwrap()).unwrap();
        // Sigmoid scores, each in its own right: transformers.js's multi-label output.
        let mut expected = case.scores.clone();
        expected.sort_by(|a, b| b.total_cmp(a));
        assert_eq!(ranked.len(), 5);
        for (got, want) in ranked.iter().zip(&expected) {
            assert!((got.score - want).abs() <= TOLERANCE, "{:?}: {ranked:?} vs {expected:?}", case.text);
        }
        assert!(ranked.windows(2).all(|w| w[0].score >= w[1].score));
    }
    let all: Vec<LabelScore> =
        serde_wasm_bindgen::from_value(call(&clf, "fine".into(), options(&[("top_k", JsValue::NULL)])).await.unwrap()).unwrap();
    assert_eq!(all.len(), 28);
    assert!(all.iter().map(|l| l.score).sum::<f32>() > 1.5, "sigmoid scores do not sum to 1: {all:?}");
}
