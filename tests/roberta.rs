//! RoBERTa and XLM-RoBERTa sequence classification against the PyTorch + transformers references
//! of tests/models/make_roberta.py, natively, loading through the local Hub mirror over HTTP: the
//! byte-level BPE built from vocab.json + merges.txt, tokenizer.json, and XLM-R's
//! sentencepiece.bpe.model with fairseq's ids; softmax and multi-label sigmoid scores.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use common::{mirror, HUB};
use hubside::hub::Repo;
use hubside::tasks::text_classification::TextClassifier;
use hubside::tasks::LoadOptions;
use hubside::weights::WeightDType;

mod references;
type Reference = references::Classification;

const MODELS: [&str; 3] = ["tiny-random/roberta-sentiment", "tiny-random/roberta-go-emotions", "tiny-random/xlm-roberta-sentiment"];
const TOLERANCE: f32 = 1e-4;

fn load(repo: &Repo) -> TextClassifier {
    pollster::block_on(TextClassifier::load(repo)).unwrap()
}

fn local(model: &str) -> TextClassifier {
    load(&Repo::local(format!("{HUB}/{model}")))
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
        let classifier = load(&Repo::remote(model, Some(&server.hub_endpoint()), None).unwrap());
        let reference: Reference = common::reference(model);
        let texts: Vec<&str> = reference.cases.iter().map(|c| c.text.as_str()).collect();
        // All texts in one call: padded batches, so padding's position ids are exercised too.
        let results = classifier.classify(&texts).unwrap();
        for (result, case) in results.iter().zip(&reference.cases) {
            assert_eq!(result.input_ids, case.input_ids, "{model}: input_ids of {:?}", case.text);
            assert_close(&result.logits, &case.logits, TOLERANCE, &format!("{model}: logits of {:?}", case.text));
            assert_close(&result.scores, &case.scores, TOLERANCE, &format!("{model}: scores of {:?}", case.text));
            if case.top_margin.unwrap() > TOLERANCE {
                assert_eq!(classifier.top_k(result, Some(1))[0].label, case.label, "{model}: label of {:?}", case.text);
            }
        }
        assert_eq!(results.len(), reference.cases.len());
    }
}

#[test]
fn batch_equals_single() {
    for model in MODELS {
        let classifier = local(model);
        let reference: Reference = common::reference(model);
        let texts: Vec<&str> = reference.cases.iter().map(|c| c.text.as_str()).collect();
        for (text, batched) in texts.iter().zip(classifier.classify(&texts).unwrap()) {
            let single = classifier.classify(&[text]).unwrap().remove(0);
            assert_eq!(batched.input_ids, single.input_ids);
            assert_close(&batched.logits, &single.logits, TOLERANCE, &format!("{model}: batch vs single for {text:?}"));
        }
    }
}

#[test]
fn long_input_is_truncated_to_512_tokens() {
    for model in MODELS {
        let classifier = local(model);
        let result = classifier.classify(&["words and more words, ".repeat(600)]).unwrap().remove(0);
        // max_position_embeddings 514 less padding_idx 1 and the row before it.
        assert_eq!(result.input_ids.len(), 512, "{model}");
        assert_eq!((result.input_ids[0], result.input_ids[511]), (0, 2), "{model}: <s> … </s>");
    }
}

#[test]
fn multi_label_scores_are_sigmoids_ranked_by_top_k() {
    let model = "tiny-random/roberta-go-emotions";
    let classifier = local(model);
    assert_eq!(classifier.labels().len(), 28);
    let result = classifier.classify(&["It was okay."]).unwrap().remove(0);
    for (score, logit) in result.scores.iter().zip(&result.logits) {
        assert!((score - 1.0 / (1.0 + (-logit).exp())).abs() < 1e-6);
    }
    let ranked = classifier.top_k(&result, None);
    assert_eq!(ranked.len(), 28);
    assert!(ranked.windows(2).all(|w| w[0].score >= w[1].score));
    assert_eq!(classifier.top_k(&result, Some(3))[..], ranked[..3]);
}

#[test]
fn vocab_and_merges_give_the_ids_of_tokenizer_json() {
    // roberta-go-emotions ships both; a copy without tokenizer.json builds the byte-level BPE.
    let model = "tiny-random/roberta-go-emotions";
    let dir = std::env::temp_dir().join(format!("hubside-roberta-files-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for file in ["config.json", "model.safetensors", "vocab.json", "merges.txt", "special_tokens_map.json"] {
        std::fs::copy(format!("{HUB}/{model}/{file}"), dir.join(file)).unwrap();
    }
    let classifier = load(&Repo::local(&dir));
    let reference: Reference = common::reference(model);
    for case in &reference.cases {
        assert_eq!(classifier.encode(&case.text).unwrap(), case.input_ids, "{:?}", case.text);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn q8_weights_load_and_keep_clear_labels() {
    for model in MODELS {
        let repo = Repo::local(format!("{HUB}/{model}"));
        let options = LoadOptions { dtype: WeightDType::Q8, ..Default::default() };
        let classifier = pollster::block_on(TextClassifier::load_with(&repo, &options)).unwrap();
        let reference: Reference = common::reference(model);
        // Rounding these random weights (spread 0.5, rows of one 32-weight block) to 8 bits moves
        // the logits by up to ~0.95 of their spread of several units: the same network, not the
        // same numbers. The label must hold where the best score leads by more than 0.1.
        for case in &reference.cases {
            let result = classifier.classify(&[&case.text]).unwrap().remove(0);
            assert_eq!(result.input_ids, case.input_ids);
            assert_close(&result.logits, &case.logits, 1.0, &format!("{model} q8: {:?}", case.text));
            if case.top_margin.unwrap() > 0.1 {
                assert_eq!(classifier.top_k(&result, Some(1))[0].label, case.label, "{model} q8: {:?}", case.text);
            }
        }
    }
}

#[test]
fn cli_classifies_with_the_sentencepiece_tokenizer() {
    let server = mirror();
    let model = "tiny-random/xlm-roberta-sentiment";
    let reference: Reference = common::reference(model);
    let case = &reference.cases[5];
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_hubside"))
        .args(["sentiment", "--model", model, "--endpoint", &server.hub_endpoint(), "--json", "--", &case.text])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let line: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(line["label"], case.label);
    assert_eq!(serde_json::from_value::<Vec<u32>>(line["input_ids"].clone()).unwrap(), case.input_ids);
}

#[test]
fn bad_configs_are_config_errors() {
    let model = "tiny-random/roberta-sentiment";
    let dir = std::env::temp_dir().join(format!("hubside-roberta-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for file in ["pytorch_model.bin", "vocab.json", "merges.txt"] {
        std::fs::copy(format!("{HUB}/{model}/{file}"), dir.join(file)).unwrap();
    }
    let config: serde_json::Value = serde_json::from_slice(&std::fs::read(format!("{HUB}/{model}/config.json")).unwrap()).unwrap();
    for (field, value) in [
        ("pad_token_id", serde_json::json!(513)),
        ("pad_token_id", serde_json::json!(-1)),
        ("position_embedding_type", serde_json::json!("relative_key")),
    ] {
        let mut bad = config.clone();
        bad[field] = value.clone();
        std::fs::write(dir.join("config.json"), bad.to_string()).unwrap();
        match pollster::block_on(TextClassifier::load(&Repo::local(&dir))) {
            Err(hubside::Error::Config(message)) => assert!(message.contains(field), "{field}: {message}"),
            other => panic!("{field} = {value}: {:?}", other.err()),
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn broken_tokenizer_files_are_tokenizer_errors() {
    let dir = std::env::temp_dir().join(format!("hubside-roberta-tokenizer-{}", std::process::id()));
    for (model, file, bytes, says) in [
        ("tiny-random/roberta-sentiment", "merges.txt", &b"#version: 0.2\n\xc4\xa0 t h\n"[..], "merges.txt: line 2"),
        ("tiny-random/roberta-sentiment", "vocab.json", &b"[\"<s>\"]"[..], "vocab.json"),
        ("tiny-random/xlm-roberta-sentiment", "sentencepiece.bpe.model", &b"\x0a\xff\xff\xff\xff\x0f"[..], "sentencepiece.bpe.model"),
    ] {
        std::fs::create_dir_all(&dir).unwrap();
        for entry in std::fs::read_dir(format!("{HUB}/{model}")).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
        }
        std::fs::write(dir.join(file), bytes).unwrap();
        match pollster::block_on(TextClassifier::load(&Repo::local(&dir))) {
            Err(hubside::Error::Tokenizer(message)) => assert!(message.contains(says), "{file}: {message}"),
            other => panic!("{file}: {:?}", other.err()),
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
