//! Translation against the PyTorch + transformers references in tests/fixtures (Marian from
//! model.safetensors and from pytorch_model.bin with tokenizers built from the .spm files, T5
//! from tokenizer.json), loading through the local Hub mirror over HTTP; long inputs, options,
//! errors, and beam search against an independent brute-force search.
#![cfg(not(target_arch = "wasm32"))]

use std::collections::HashMap;

use candle_core::{Device, Tensor};
use hubside::hub::Repo;
use hubside::models::marian::Marian;
use hubside::models::seq2seq::Seq2SeqModel;
use hubside::serve::{self, ServeOptions};
use hubside::tasks::generation::{self, EarlyStopping, GenerationConfig};
use hubside::tasks::translation::{TranslateOptions, Translator};
use hubside::Error;
use serde::Deserialize;

const HUB: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/hub");
const MARIAN: &str = "tiny-random/marian-en-de";
const T5: &str = "tiny-random/t5";

#[derive(Deserialize)]
struct Reference {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    text: String,
    input_ids: Vec<u32>,
    generated_ids: Vec<u32>,
    translation: String,
}

fn reference(model: &str) -> Reference {
    let path = format!("{HUB}/{model}/reference.json");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn mirror() -> serve::Running {
    serve::start("127.0.0.1:0", ServeOptions { hub: vec![HUB.into()], ..Default::default() }).unwrap()
}

fn load(repo: &Repo) -> hubside::Result<Translator> {
    pollster::block_on(Translator::load(repo))
}

/// The references: greedy, 16 new tokens.
fn reference_options() -> TranslateOptions {
    TranslateOptions { max_new_tokens: Some(16), num_beams: Some(1), ..Default::default() }
}

fn check_against_reference(translator: &Translator, model: &str) {
    for case in &reference(model).cases {
        let result = translator.translate(&case.text, &reference_options(), None).unwrap();
        assert_eq!(result.input_ids, case.input_ids, "{model}: input_ids of {:?}", case.text);
        assert_eq!(result.generated_ids, case.generated_ids, "{model}: generated ids of {:?}", case.text);
        assert_eq!(result.translation_text, case.translation, "{model}: text of {:?}", case.text);
        assert!(result.chunks.is_empty());
    }
}

#[test]
fn marian_matches_reference_over_http() {
    let server = mirror();
    let repo = Repo::remote(MARIAN, Some(&server.hub_endpoint()), None).unwrap();
    let translator = load(&repo).unwrap();
    assert_eq!(translator.model_type(), "marian");
    check_against_reference(&translator, MARIAN);
}

/// A copy of the Marian repo without model.safetensors, so pytorch_model.bin is what loads.
fn marian_without_safetensors() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("hubside-marian-pt-{}", std::process::id()));
    let target = dir.join(MARIAN);
    std::fs::create_dir_all(&target).unwrap();
    for entry in std::fs::read_dir(format!("{HUB}/{MARIAN}")).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() != "model.safetensors" {
            std::fs::copy(entry.path(), target.join(entry.file_name())).unwrap();
        }
    }
    dir
}

#[test]
fn marian_from_pytorch_bin_matches_reference() {
    let hub = marian_without_safetensors();
    let server = serve::start("127.0.0.1:0", ServeOptions { hub: vec![hub.clone()], ..Default::default() }).unwrap();
    let repo = Repo::remote(MARIAN, Some(&server.hub_endpoint()), None).unwrap();
    let translator = load(&repo).unwrap();
    check_against_reference(&translator, MARIAN);
    // And from a local directory.
    let translator = load(&Repo::local(hub.join(MARIAN))).unwrap();
    check_against_reference(&translator, MARIAN);
    std::fs::remove_dir_all(hub).ok();
}

#[test]
fn t5_matches_reference_over_http() {
    let server = mirror();
    let repo = Repo::remote(T5, Some(&server.hub_endpoint()), None).unwrap();
    let translator = load(&repo).unwrap();
    assert_eq!(translator.model_type(), "t5");
    assert_eq!(translator.tasks(), ["translation_en_to_de"]);
    check_against_reference(&translator, T5);
    // The prefix is chosen by language too.
    let options = TranslateOptions { src_lang: Some("en".into()), tgt_lang: Some("de".into()), ..reference_options() };
    let case = &reference(T5).cases[1];
    assert_eq!(translator.translate(&case.text, &options, None).unwrap().input_ids, case.input_ids);
}
