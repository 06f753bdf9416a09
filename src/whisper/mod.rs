//! Whisper speech recognition, one concept per file, each block that follows openai/whisper naming
//! the upstream function (links pinned to commit fdf63e5):
//! - `config`: the model's dimensions (`ModelDimensions`);
//! - `tokens`: special tokens and the language table (`tokenizer.py`);
//! - `model`: the encoder–decoder network in both checkpoint layouts (`model.py`);
//! - the generation loop's `TimestampRules` processor (`decoding.py` `ApplyTimestampRules`) lives with
//!   the other logit processors in `generation`.
//!
//! `tasks::speech_recognition` is the task built from these: audio in, text and timed chunks out.

pub mod config;
pub mod model;
pub mod tokens;

pub use config::Config;
pub use model::Whisper;
pub use tokens::{language_code, SpecialTokens, LANGUAGES};
