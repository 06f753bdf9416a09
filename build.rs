//! The threaded wasm build (`--features threads`, atomics; scripts/wasm-pack-threads.sh): link one
//! shared, imported memory and export the thread-local storage symbols that wasm-bindgen's thread
//! start-up calls. Current nightlies no longer add these for `+atomics` by themselves, and here,
//! unlike in RUSTFLAGS, they reach only this crate's links, so std and the dependencies keep
//! their build.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let wasm = std::env::var("CARGO_CFG_TARGET_ARCH").is_ok_and(|arch| arch == "wasm32");
    let atomics = std::env::var("CARGO_CFG_TARGET_FEATURE").is_ok_and(|f| f.split(',').any(|f| f == "atomics"));
    let threads = std::env::var_os("CARGO_FEATURE_THREADS").is_some();
    if wasm && atomics && threads {
        for arg in ["--shared-memory", "--import-memory", "--export=__wasm_init_tls", "--export=__tls_size", "--export=__tls_align", "--export=__tls_base"] {
            println!("cargo:rustc-link-arg={arg}");
        }
    }
}
