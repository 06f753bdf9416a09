#![no_main]
#[path = "../../tests/hostile/harness.rs"]
mod harness;
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // An error is the right answer to most inputs; a panic, hang or runaway allocation is the bug.
    let _ = harness::run("pytorch", data);
});
