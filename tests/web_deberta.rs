//! In headless Chromium: DeBERTa-v3 and DeBERTa-v2-style sequence classification through the
//! JS-facing `pipeline('sentiment-analysis', ...)`, loading spm.model-only repos from the local
//! Hub mirror over HTTP, against the PyTorch + transformers references. Started by
//! scripts/test.sh, which serves tests/fixtures/hub as the mirror.
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

const MODELS: [(&str, &str); 3] = [
    ("tiny-random/deberta-v3-sentiment", include_str!("fixtures/hub/tiny-random/deberta-v3-sentiment/reference.json")),
    ("tiny-random/deberta-v3-sentiment-saved", include_str!("fixtures/hub/tiny-random/deberta-v3-sentiment-saved/reference.json")),
    ("tiny-random/deberta-v2-style", include_str!("fixtures/hub/tiny-random/deberta-v2-style/reference.json")),
];

#[wasm_bindgen_test]
async fn rust_api_matches_reference_through_fetch() {
    for (model, json) in MODELS {
        let reference: Reference = serde_json::from_str(json).unwrap();
        let classifier = TextClassifier::load(&Repo::remote(model, Some(ENDPOINT), None).unwrap()).await.unwrap();
        for case in &reference.cases {
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
        let reference: Reference = serde_json::from_str(json).unwrap();
        let clf = pipeline("sentiment-analysis".into(), Some(model.into()), options(&[("endpoint", ENDPOINT.into())])).await.unwrap();
        for case in &reference.cases {
            let top: Vec<LabelScore> =
                serde_wasm_bindgen::from_value(call(&clf, case.text.clone().into(), JsValue::UNDEFINED).await.unwrap()).unwrap();
            assert_eq!(top.len(), 1);
            assert_eq!(top[0].label, case.label, "{model} {:?}", case.text);
            let best = case.scores.iter().copied().fold(f32::MIN, f32::max);
            assert!((top[0].score - best).abs() <= 1e-4, "{model} {:?}: {top:?}", case.text);
        }
        // Every label for the whole batch at once (padded together): the reference scores.
        let texts = Array::new();
        for case in &reference.cases {
            texts.push(&case.text.clone().into());
        }
        let all: Vec<Vec<LabelScore>> =
            serde_wasm_bindgen::from_value(call(&clf, texts.into(), options(&[("top_k", JsValue::NULL)])).await.unwrap()).unwrap();
        assert_eq!(all.len(), reference.cases.len());
        for (ranked, case) in all.iter().zip(&reference.cases) {
            let mut expected = case.scores.clone();
            expected.sort_by(|a, b| b.total_cmp(a));
            let got: Vec<f32> = ranked.iter().map(|r| r.score).collect();
            assert_eq!(got.len(), expected.len());
            for (g, e) in got.iter().zip(&expected) {
                assert!((g - e).abs() <= 1e-4, "{model} {:?}: {got:?} vs {expected:?}", case.text);
            }
            assert_eq!(ranked[0].label, case.label, "{model} {:?}", case.text);
        }
    }
}
