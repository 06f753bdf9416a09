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
