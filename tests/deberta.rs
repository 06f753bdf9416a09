//! DeBERTa-v2/v3 sequence classification against the PyTorch + transformers references, natively,
//! loading through the local Hub mirror over HTTP: the v3 layout (spm.model, no tokenizer.json;
//! log-bucketed relative positions, shared attention keys) and a v2-style config (absolute
//! positions, separate position projections, embedding projection, grouped convolution,
//! lower-casing punctuation-splitting tokenizer).
#![cfg(not(target_arch = "wasm32"))]

mod common;

use common::{mirror, HUB};
use hubside::hub::Repo;
use hubside::tasks::text_classification::TextClassifier;
use hubside::tasks::LoadOptions;
use hubside::weights::WeightDType;
use hubside::Error;

mod references;
type Reference = references::Classification;

/// v3 as microsoft/deberta-v3-base ships its tokenizer (spm.model only), the same model as
/// save_pretrained writes it (tokenizer.json too), and the v2-style config.
const MODELS: [&str; 3] = ["tiny-random/deberta-v3-sentiment", "tiny-random/deberta-v3-sentiment-saved", "tiny-random/deberta-v2-style"];

fn load(repo: &Repo) -> hubside::Result<TextClassifier> {
    pollster::block_on(TextClassifier::load(repo))
}

fn assert_close(actual: &[f32], expected: &[f32], tolerance: f32, what: &str) {
    assert_eq!(actual.len(), expected.len(), "{what}: length");
    for (a, e) in actual.iter().zip(expected) {
        assert!((a - e).abs() <= tolerance, "{what}: {actual:?} vs {expected:?}");
    }
}

#[test]
fn matches_reference_over_http() {
    let server = mirror();
    for model in MODELS {
        let repo = Repo::remote(model, Some(&server.hub_endpoint()), None).unwrap();
        let classifier = load(&repo).unwrap();
        let reference: Reference = common::reference(model);
        for case in &reference.cases {
            let result = &classifier.classify(&[&case.text]).unwrap()[0];
            assert_eq!(result.input_ids, case.input_ids, "{model}: input_ids of {:?}", case.text);
            assert_close(&result.logits, &case.logits, 1e-4, &format!("{model}: logits of {:?}", case.text));
            assert_close(&result.scores, &case.scores, 1e-4, &format!("{model}: scores of {:?}", case.text));
            assert_eq!(classifier.top_k(result, Some(1))[0].label, case.label, "{model}: label of {:?}", case.text);
        }
    }
}

#[test]
fn batch_equals_single() {
    // Texts of very different lengths in one padded batch: the relative positions and the
    // padding mask must leave each text's logits as they are alone.
    for model in MODELS {
        let classifier = load(&Repo::local(format!("{HUB}/{model}"))).unwrap();
        let reference: Reference = common::reference(model);
        let texts: Vec<&str> = reference.cases.iter().map(|c| c.text.as_str()).collect();
        let batch = classifier.classify(&texts).unwrap();
        for (case, batched) in reference.cases.iter().zip(&batch) {
            assert_eq!(batched.input_ids, case.input_ids);
            assert_close(&batched.logits, &case.logits, 1e-4, &format!("{model}: batched logits of {:?}", case.text));
        }
    }
}

#[test]
fn special_tokens_and_truncation() {
    let classifier = load(&Repo::local(format!("{HUB}/tiny-random/deberta-v3-sentiment"))).unwrap();
    // [CLS]=1 … [SEP]=2 from the spm; [MASK] is added after the 800 pieces.
    assert_eq!(classifier.encode("").unwrap(), [1, 2]);
    let ids = classifier.encode("[MASK]").unwrap();
    assert_eq!(ids, [1, 800, 2]);
    let long = classifier.encode(&"word ".repeat(2000)).unwrap();
    assert_eq!((long.len(), long[0], long[511]), (512, 1, 2));
}

#[test]
fn q8_gives_the_reference_labels() {
    for model in MODELS {
        let repo = Repo::local(format!("{HUB}/{model}"));
        let options = LoadOptions { dtype: WeightDType::Q8, ..Default::default() };
        let classifier = pollster::block_on(TextClassifier::load_with(&repo, &options)).unwrap();
        let reference: Reference = common::reference(model);
        for case in &reference.cases {
            let result = &classifier.classify(&[&case.text]).unwrap()[0];
            assert_eq!(result.input_ids, case.input_ids);
            assert_close(&result.scores, &case.scores, 0.05, &format!("{model} q8: scores of {:?}", case.text));
            let mut sorted = case.scores.clone();
            sorted.sort_by(|a, b| b.total_cmp(a));
            if sorted[0] - sorted[1] > 0.1 {
                assert_eq!(classifier.top_k(result, Some(1))[0].label, case.label, "{model} q8: label of {:?}", case.text);
            }
        }
    }
}

/// A copy of the v3 fixture with `edit` applied to its config.json, in a temporary directory.
fn with_config(name: &str, edit: impl FnOnce(&mut serde_json::Value)) -> std::path::PathBuf {
    let source = std::path::Path::new(HUB).join("tiny-random/deberta-v3-sentiment");
    let dir = std::env::temp_dir().join(format!("hubside-deberta-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for file in ["model.safetensors", "spm.model", "tokenizer_config.json"] {
        std::fs::copy(source.join(file), dir.join(file)).unwrap();
    }
    let mut config: serde_json::Value = serde_json::from_slice(&std::fs::read(source.join("config.json")).unwrap()).unwrap();
    edit(&mut config);
    std::fs::write(dir.join("config.json"), serde_json::to_vec(&config).unwrap()).unwrap();
    dir
}

#[test]
fn unsupported_and_broken_configs_are_config_errors() {
    for (name, field, value) in [
        ("conv", "conv_kernel_size", serde_json::json!(2)),
        ("buckets", "position_buckets", serde_json::json!(1)),
        ("pooler", "pooler_hidden_size", serde_json::json!(16)),
        ("span", "max_relative_positions", serde_json::json!(1u64 << 40)),
        ("att", "pos_att_type", serde_json::json!(7)),
    ] {
        let dir = with_config(name, |config| config[field] = value.clone());
        let result = load(&Repo::local(dir.to_str().unwrap()));
        std::fs::remove_dir_all(&dir).unwrap();
        match result {
            Err(Error::Config(message)) => assert!(message.contains(field), "{field}: {message}"),
            other => panic!("{field} = {value}: expected a config error, got {:?}", other.err()),
        }
    }
}
