//! hubside: Hugging Face Hub models (sentiment, translation, speech) run client-side in the
//! browser through WebAssembly, and natively. Data flows: `hub` (repo → bytes) → `weights` and
//! `tokenizer` → `models` → `tasks` (translation and speech decode through `generation`); `wasm`
//! adapts the tasks to JavaScript, `serve` (native) is the local Hub mirror and page server.

pub mod audio;
#[cfg(feature = "bench")]
pub mod bench;
pub mod error;
pub mod generation;
pub mod hub;
pub mod models;
pub mod tasks;
pub mod tokenizer;
pub mod weights;
pub mod whisper;

#[cfg(not(target_arch = "wasm32"))]
pub mod serve;
#[cfg(target_arch = "wasm32")]
pub mod threads;
#[cfg(target_arch = "wasm32")]
pub mod wasm;

pub use error::{Error, Result};
