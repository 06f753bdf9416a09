//! Whisper speech recognition, one concept per file, each block that follows openai/whisper naming
//! the upstream function (links pinned to commit fdf63e5):
//! - `config`: the model's dimensions (`ModelDimensions`);
//! - `tokens`: special tokens and the language table (`tokenizer.py`);
//! - `vocabulary`: token ids → text, from tokenizer.json or a whisper.cpp ggml file's token bytes;
//! - `model`: the encoder–decoder network in both checkpoint layouts (`model.py`);
//! - `segmenter`: one window's tokens → timed segments and the next seek (`transcribe.py`);
//! - `alignment`: the cross-attention heads that word timing reads (`_ALIGNMENT_HEADS`);
//! - `timing`: word timestamps — alignment by DTW, word splitting, punctuation (`timing.py`);
//! - `live`: live transcription — audio as it is recorded → `{committed, tentative}` text
//!   (LocalAgreement-2, ufal/whisper_streaming's policy, over `transcriber`'s window decoding);
//! - `fallback`: the long-form rules — temperature fallback on compression ratio and average
//!   log-probability, the no-speech skip, when the prompt resets (`decode_with_fallback`);
//! - `prompt`: the previous text as each window's prompt (`condition_on_previous_text`,
//!   `initial_prompt`, `prompt_reset_since`);
//! - `transcriber`: the task — load a repo, audio → log-mel → windows → text (`transcribe()`,
//!   `DecodingTask`, `detect_language`);
//! - the generation loop's `TimestampRules` processor (`decoding.py` `ApplyTimestampRules`) lives with
//!   the other logit processors in `generation`.
//!
//! `tasks::speech_recognition` names the transcriber for the task table.

pub mod alignment;
pub mod config;
pub mod fallback;
pub mod live;
pub mod model;
pub mod prompt;
pub mod segmenter;
pub mod timing;
pub mod tokens;
pub mod transcriber;
pub mod vocabulary;

pub use config::Config;
pub use model::Whisper;
pub use tokens::{language_code, SpecialTokens, LANGUAGES};
