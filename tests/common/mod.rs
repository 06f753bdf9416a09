//! Helpers shared by the native test files: the fixtures mirror and their references.
#![allow(dead_code)] // each test file uses its own subset

use hubside::serve::{self, ServeOptions};

pub const HUB: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/hub");

/// `hubside serve` over tests/fixtures/hub on a free port; stops when dropped.
pub fn mirror() -> serve::Running {
    serve::start("127.0.0.1:0", ServeOptions { hub: vec![HUB.into()], ..Default::default() }).unwrap()
}

/// A fixture model's reference.json.
pub fn reference<T: serde::de::DeserializeOwned>(model: &str) -> T {
    let path = format!("{HUB}/{model}/reference.json");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// The Hub mirror directory scripts/fetch-whisper.sh fills (`$HUBSIDE_CACHE/hub`) with the real
/// Whisper test weights; missing weights fail the test with what to run.
pub fn whisper_hub() -> std::path::PathBuf {
    let hub = hubside::hub::cache_dir().expect("neither HUBSIDE_CACHE nor HOME is set").join("hub");
    for repo in ["Systran/faster-whisper-tiny.en", "Systran/faster-whisper-base"] {
        for file in ["model.bin", "config.json", "tokenizer.json"] {
            let path = hub.join(repo).join(file);
            assert!(
                path.is_file(),
                "Whisper test weights missing: {} not found. Run scripts/fetch-whisper.sh \
                 (downloads and verifies them into ${{HUBSIDE_CACHE:-$HOME/.cache/hubside}}/hub).",
                path.display()
            );
        }
    }
    hub
}
