//! Compact models: a load in fp16/q8/q4 from a Hub repo keeps what the model holds, and the next
//! load reads that instead of downloading and quantising the original; a damaged entry is
//! rebuilt. Also the accuracy of q8 and fp16 on the real Whisper weights (identical transcripts).
#![cfg(not(target_arch = "wasm32"))]

mod common;

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use hubside::audio::{self, Pcm};
use hubside::hub::{Repo, Status};
use hubside::serve::{self, ServeOptions};
use hubside::tasks::speech_recognition::{SpeechRecognizer, SpeechTask, TranscribeOptions};
use hubside::tasks::text_classification::TextClassifier;
use hubside::tasks::LoadOptions;
use hubside::weights::WeightDType;

mod references;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

/// A fresh directory for this test's compact models.
fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hubside-compact-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

type Events = Rc<RefCell<Vec<(Status, String)>>>;

/// The repo over HTTP, recording which files finished downloading.
fn repo(endpoint: &str, model: &str, compact: &Path) -> (Repo, Events) {
    let events: Events = Rc::default();
    let sink = events.clone();
    let repo = Repo::remote(model, Some(endpoint), None)
        .unwrap()
        .with_compact_dir(compact)
        .with_progress(Box::new(move |p| sink.borrow_mut().push((p.status, p.file.to_string()))));
    (repo, events)
}

fn downloaded(events: &Events, file: &str) -> bool {
    events.borrow().iter().any(|(status, f)| *status == Status::Done && f == file)
}

fn the_entry(dir: &Path) -> PathBuf {
    fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, found)
            } else {
                found.push(path)
            }
        }
    }
    let mut found = Vec::new();
    walk(dir, &mut found);
    assert_eq!(found.len(), 1, "{found:?}");
    found.pop().unwrap()
}

#[test]
fn second_load_reads_the_compact_model_and_a_damaged_entry_is_rebuilt() {
    let server = common::mirror();
    let dir = temp_dir("classifier");
    let model = "tiny-random/distilbert-sst2";
    let options = LoadOptions { dtype: WeightDType::Q8, ..Default::default() };
    let texts = ["I love this movie!", "This was a waste of time."];
    let classify = |repo: &Repo| {
        let classifier = pollster::block_on(TextClassifier::load_with(repo, &options)).unwrap();
        classifier.classify(&texts).unwrap().into_iter().map(|r| r.logits).collect::<Vec<_>>()
    };

    let (first, events) = repo(&server.hub_endpoint(), model, &dir);
    let built = classify(&first);
    assert!(downloaded(&events, "model.safetensors"));
    let entry = the_entry(&dir);
    let written = std::fs::read(&entry).unwrap();
    let original = std::fs::metadata(format!("{}/{model}/model.safetensors", common::HUB)).unwrap().len();
    assert!((written.len() as u64) < original / 2, "q8 entry {} bytes vs original {original}", written.len());

    let (second, events) = repo(&server.hub_endpoint(), model, &dir);
    assert_eq!(classify(&second), built, "the compact model computes exactly what the fresh one did");
    assert!(!downloaded(&events, "model.safetensors"), "the original weights were downloaded again");

    // One flipped byte in the tensor data: detected, rebuilt from the original, same results.
    let mut damaged = written.clone();
    let middle = damaged.len() / 2;
    damaged[middle] ^= 0x5a;
    std::fs::write(&entry, &damaged).unwrap();
    let (third, events) = repo(&server.hub_endpoint(), model, &dir);
    assert_eq!(classify(&third), built);
    assert!(downloaded(&events, "model.safetensors"));
    assert_eq!(std::fs::read(&entry).unwrap(), written, "the entry is rewritten intact");

    // Another dtype is another entry; fp32 is never cached.
    let (fp32, _) = repo(&server.hub_endpoint(), model, &dir);
    pollster::block_on(TextClassifier::load_with(&fp32, &LoadOptions { dtype: WeightDType::Fp32, ..Default::default() })).unwrap();
    assert_eq!(the_entry(&dir), entry);
    let _ = std::fs::remove_dir_all(&dir);
}

// ---- Whisper on the real weights ------------------------------------------------------------

fn clip(name: &str) -> Vec<f32> {
    let bytes = std::fs::read(format!("{FIXTURES}/audio/{name}")).unwrap();
    audio::read_wav(&bytes).unwrap().0
}

/// Every reference case of `model` transcribed in `dtype`, loaded twice: built from the original
/// (CTranslate2 f16 weights), then read from the compact cache without downloading model.bin.
fn whisper_matches_reference(model: &str, reference: &str, dtype: WeightDType) {
    let server = serve::start("127.0.0.1:0", ServeOptions { hub: vec![common::whisper_hub()], ..Default::default() }).unwrap();
    let dir = temp_dir(&format!("{reference}-{dtype}"));
    let cases = {
        let path = format!("{FIXTURES}/whisper/{reference}.reference.json");
        serde_json::from_slice::<references::Whisper>(&std::fs::read(path).unwrap()).unwrap().cases
    };
    for load in ["built", "cached"] {
        let (repo, events) = repo(&server.hub_endpoint(), model, &dir);
        let recognizer = pollster::block_on(SpeechRecognizer::load_with(&repo, &LoadOptions { dtype, ..Default::default() })).unwrap();
        assert_eq!(downloaded(&events, "model.bin"), load == "built", "{model} {dtype} {load}");
        // model.bin names the vocabulary matrix twice (the output projection is an alias of the
        // embedding): the model holds it once, so the compact entry has it once.
        let mut entry = std::fs::File::open(the_entry(&dir)).unwrap();
        let names = candle_core::quantized::gguf_file::Content::read(&mut entry).unwrap().tensor_infos.into_keys().collect::<Vec<_>>();
        assert!(names.iter().any(|n| n == "decoder/embeddings/weight") && !names.iter().any(|n| n == "decoder/projection/weight"), "{names:?}");
        for case in &cases {
            let task = SpeechTask::parse(&case.task).unwrap();
            let options = TranscribeOptions { language: Some(case.language.clone()), task, return_timestamps: false.into(), ..Default::default() };
            let samples = clip(&case.audio);
            let pcm = Pcm { samples: &samples, sample_rate: 16000, channels: 1 };
            let result = recognizer.transcribe(pcm, &options, &mut |_| {}).unwrap();
            assert_eq!(result.tokens, case.generated_ids, "{model} {dtype} ({load}): {}: {:?}", case.audio, result.text);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn whisper_tiny_en_q8_transcribes_exactly_like_fp32() {
    whisper_matches_reference("Systran/faster-whisper-tiny.en", "tiny.en", WeightDType::Q8);
}

#[test]
fn whisper_base_q8_transcribes_exactly_like_fp32() {
    whisper_matches_reference("Systran/faster-whisper-base", "base", WeightDType::Q8);
}

#[test]
fn whisper_tiny_en_fp16_transcribes_exactly_like_fp32() {
    whisper_matches_reference("Systran/faster-whisper-tiny.en", "tiny.en", WeightDType::Fp16);
}
