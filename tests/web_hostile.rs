//! In headless Chromium: the kept hostile inputs (tests/hostile/) and the fixed sweep of truncated
//! and byte-flipped fixture files through the parsers, as tests/hostile_replay.rs does natively.
//! A panic in wasm aborts the instance, so here the parsers' own checks are all that protects a page.
#![cfg(target_arch = "wasm32")]

use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_dedicated_worker);

#[path = "hostile/harness.rs"]
mod harness;
#[path = "hostile/cases.rs"]
mod cases;

#[wasm_bindgen_test]
fn kept_hostile_inputs_end_cleanly() {
    for (target, _name, bytes) in cases::CASES {
        if harness::available(target) {
            let _ = harness::run(target, bytes);
        }
    }
}

#[wasm_bindgen_test]
fn truncated_and_flipped_fixture_files_end_cleanly() {
    for target in harness::TARGETS {
        let Some(seed) = harness::seed(target) else { continue };
        for bytes in harness::mutants(seed, 48) {
            let _ = harness::run(target, &bytes);
        }
    }
}

#[wasm_bindgen_test]
fn deeply_nested_json_ends_cleanly() {
    // wasm's stack is 1 MB, a fraction of a native main thread's.
    for (target, bytes) in harness::deeply_nested() {
        let _ = harness::run(target, &bytes);
    }
}
