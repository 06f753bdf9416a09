//! One entry point per parser for hostile input, shared by the cargo-fuzz targets (fuzz/) and the
//! replay tests (tests/hostile_replay.rs natively, tests/web_hostile.rs in Chromium), so a crash
//! found by fuzzing is replayed through exactly the code that found it.
//!
//! `run(target, bytes)` feeds `bytes` to one parser the way a downloaded file reaches it: as the
//! whole file of a tiny fixture repo (tests/fixtures/hub) where that is how the file is used, so
//! config validation and shape checks run too, else straight into the parser. It returns the
//! parser's error as text; it must never panic, hang or allocate without bound, on any input.
#![allow(dead_code)] // each includer uses its own part

use std::collections::HashMap;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use hubside::hub::Repo;
use hubside::tasks::text_classification::TextClassifier;
use hubside::tasks::translation::{TranslateOptions, Translator};

/// Every target, by the file it stands for.
pub const TARGETS: [&str; 9] =
    ["safetensors", "pytorch", "ctranslate2", "ggml", "sentencepiece", "wordpiece", "tokenizer_json", "config", "audio"];

/// Whether `target` runs on this platform (audio decoding is native only).
pub fn available(target: &str) -> bool {
    target != "audio" || cfg!(not(target_arch = "wasm32"))
}

/// Text that reaches every tokenizer: accents, CJK, emoji, whitespace runs, control characters.
const TEXT: &str = "Héllo  wörld!\t\u{4f60}\u{597d} \u{1f600}\u{200d}\u{1f680} naïve café\r\n  ,,, x\u{0}y";

macro_rules! fixture {
    ($model:literal, $file:literal) => {
        ($file, include_bytes!(concat!("../fixtures/hub/tiny-random/", $model, "/", $file)).as_slice())
    };
}

const DISTILBERT: [(&str, &[u8]); 4] = [
    fixture!("distilbert-sst2", "config.json"),
    fixture!("distilbert-sst2", "model.safetensors"),
    fixture!("distilbert-sst2", "tokenizer.json"),
    fixture!("distilbert-sst2", "tokenizer_config.json"),
];
const DISTILBERT_LEGACY: [(&str, &[u8]); 4] = [
    fixture!("distilbert-sst2-legacy", "config.json"),
    fixture!("distilbert-sst2-legacy", "pytorch_model.bin"),
    fixture!("distilbert-sst2-legacy", "vocab.txt"),
    fixture!("distilbert-sst2-legacy", "tokenizer_config.json"),
];
const MARIAN: [(&str, &[u8]); 7] = [
    fixture!("marian-en-de", "config.json"),
    fixture!("marian-en-de", "generation_config.json"),
    fixture!("marian-en-de", "model.safetensors"),
    fixture!("marian-en-de", "source.spm"),
    fixture!("marian-en-de", "target.spm"),
    fixture!("marian-en-de", "tokenizer_config.json"),
    fixture!("marian-en-de", "vocab.json"),
];
const T5: [(&str, &[u8]); 5] = [
    fixture!("t5", "config.json"),
    fixture!("t5", "generation_config.json"),
    fixture!("t5", "model.safetensors"),
    fixture!("t5", "tokenizer.json"),
    fixture!("t5", "tokenizer_config.json"),
];

/// The fixture file `target` stands for, where there is one (the start of the mutant sweeps).
pub fn seed(target: &str) -> Option<&'static [u8]> {
    let find = |files: &[(&str, &'static [u8])], name: &str| files.iter().find(|(n, _)| *n == name).map(|(_, b)| *b);
    match target {
        "safetensors" => find(&DISTILBERT, "model.safetensors"),
        "pytorch" => find(&DISTILBERT_LEGACY, "pytorch_model.bin"),
        "wordpiece" => find(&DISTILBERT_LEGACY, "vocab.txt"),
        "sentencepiece" => find(&MARIAN, "source.spm"),
        "tokenizer_json" => find(&T5, "tokenizer.json"),
        _ => None,
    }
}

/// `count` truncations of `seed` at evenly spaced lengths, then `count` copies with one byte
/// replaced at a pseudo-random place (a fixed sequence, so every run tries the same inputs).
pub fn mutants(seed: &[u8], count: usize) -> impl Iterator<Item = Vec<u8>> + '_ {
    let truncations = (0..count).map(move |i| seed[..seed.len() * i / count].to_vec());
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let flips = (0..count).map(move |_| {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let mut bytes = seed.to_vec();
        let at = (state >> 33) as usize % bytes.len().max(1);
        if let Some(b) = bytes.get_mut(at) {
            *b = [0x00, 0xff, 0x7f, 0x80, b'"', b'9'][(state >> 20) as usize % 6];
        }
        bytes
    });
    truncations.chain(flips)
}

/// Inputs nested about as deep as the JSON reader allows (it stops at 128 levels): whatever
/// recurses over them must fit the stack, wasm's 1 MB included.
pub fn deeply_nested() -> Vec<(&'static str, Vec<u8>)> {
    use serde_json::{json, Value};
    const DEPTH: usize = 120;
    let mut out = Vec::new();
    let tokenizer: Value = serde_json::from_slice(seed("tokenizer_json").unwrap()).unwrap();
    for (field, list, leaf) in [
        ("normalizer", "normalizers", json!({ "type": "Lowercase" })),
        ("pre_tokenizer", "pretokenizers", json!({ "type": "Whitespace" })),
        ("decoder", "decoders", json!({ "type": "Fuse" })),
    ] {
        let nested = (0..DEPTH).fold(leaf, |inner, _| json!({ "type": "Sequence", list: [inner] }));
        let mut edited = tokenizer.clone();
        edited[field] = nested;
        out.push(("tokenizer_json", serde_json::to_vec(&edited).unwrap()));
    }
    // The first byte picks the architecture (`run`).
    for (which, files) in [(0u8, &DISTILBERT[..]), (1, &MARIAN[..]), (2, &T5[..])] {
        let config = files.iter().find(|(name, _)| *name == "config.json").unwrap().1;
        let mut edited: Value = serde_json::from_slice(config).unwrap();
        edited["id2label"] = (0..DEPTH).fold(json!("x"), |inner, _| json!([inner]));
        out.push(("config", [vec![which], serde_json::to_vec(&edited).unwrap()].concat()));
    }
    out
}

/// A fixture repo in memory with `file` replaced by `bytes`.
fn repo_with(files: &[(&str, &[u8])], file: &str, bytes: &[u8]) -> Repo {
    let mut map: HashMap<String, Vec<u8>> = files.iter().map(|(name, data)| (name.to_string(), data.to_vec())).collect();
    map.insert(file.to_string(), bytes.to_vec());
    Repo::memory("hostile/fixture", map)
}

/// The special tokens and a few words: building the fixtures' 30k-entry vocabularies took most
/// of each run of the weights targets, which are about the weights.
const TINY_VOCAB: &[u8] = b"[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nh\n##ello\nworld\ncafe\n";

/// A DistilBERT fixture without its tokenizer.json, with a tiny vocab.txt, and `file` (its
/// weights, or vocab.txt itself) replaced by `bytes`: safetensors weights load fastest, so the
/// wordpiece target spends its time on the vocabulary.
fn weights_repo(files: &[(&str, &[u8])], file: &str, bytes: &[u8]) -> Repo {
    let mut map: HashMap<String, Vec<u8>> = files
        .iter()
        .filter(|(name, _)| !matches!(*name, "tokenizer.json" | "vocab.txt"))
        .map(|(name, data)| (name.to_string(), data.to_vec()))
        .collect();
    map.insert("vocab.txt".into(), TINY_VOCAB.to_vec());
    map.insert(file.to_string(), bytes.to_vec());
    Repo::memory("hostile/fixture", map)
}

/// Loads from a memory repo never wait on anything, so one poll finishes them; a future that
/// does wait is reported instead of blocking (no executor needed, in wasm as natively).
fn now<F: Future>(future: F) -> F::Output {
    match pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("a load from memory waited for something"),
    }
}

fn classify(repo: Repo) -> Result<(), String> {
    let classifier = now(TextClassifier::load(&repo)).map_err(|e| e.to_string())?;
    classifier.classify(&[TEXT, ""]).map_err(|e| e.to_string())?;
    Ok(())
}

fn translate(repo: Repo) -> Result<(), String> {
    let translator = now(Translator::load(&repo)).map_err(|e| e.to_string())?;
    let options = TranslateOptions { max_new_tokens: Some(4), num_beams: Some(2), ..Default::default() };
    translator.translate(TEXT, &options, None).map_err(|e| e.to_string())?;
    Ok(())
}

/// Feed `bytes` to `target`'s parser; the error it gives, as text.
pub fn run(target: &str, bytes: &[u8]) -> Result<(), String> {
    match target {
        "safetensors" => classify(weights_repo(&DISTILBERT, "model.safetensors", bytes)),
        "pytorch" => classify(weights_repo(&DISTILBERT_LEGACY, "pytorch_model.bin", bytes)),
        "wordpiece" => classify(weights_repo(&DISTILBERT, "vocab.txt", bytes)),
        "sentencepiece" => translate(repo_with(&MARIAN, "source.spm", bytes)),
        "tokenizer_json" => translate(repo_with(&T5, "tokenizer.json", bytes)),
        // The first byte picks the architecture whose config.json the rest replaces.
        "config" => match bytes.split_first() {
            None => Ok(()),
            Some((which, rest)) => match which % 3 {
                0 => classify(repo_with(&DISTILBERT, "config.json", rest)),
                1 => translate(repo_with(&MARIAN, "config.json", rest)),
                _ => translate(repo_with(&T5, "config.json", rest)),
            },
        },
        "ctranslate2" => hubside::weights::ctranslate2::from_bytes(bytes, "model.bin").map(drop).map_err(|e| e.to_string()),
        "ggml" => hubside::weights::ggml::parse(bytes, "ggml-model.bin").map(drop).map_err(|e| e.to_string()),
        // The browser decodes audio itself (Web Audio); symphonia is the native decoder.
        #[cfg(not(target_arch = "wasm32"))]
        "audio" => audio(bytes),
        other => panic!("no fuzz target {other}; targets: {TARGETS:?}"),
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn audio(bytes: &[u8]) -> Result<(), String> {
    let decoded = hubside::audio::decode::decode(bytes, "").map_err(|e| e.to_string())?;
    let pcm = hubside::audio::Pcm { samples: &decoded.samples, sample_rate: decoded.sample_rate, channels: decoded.channels };
    hubside::audio::to_mono_16k(pcm).map(drop).map_err(|e| e.to_string())
}
