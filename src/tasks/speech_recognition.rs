//! Automatic speech recognition: Whisper's transcriber (`crate::whisper`) is the task; this module
//! names it for the task table and keeps the task's types where the other tasks keep theirs.

pub use crate::whisper::transcriber::{
    Chunk, Layout, Partial, ReturnTimestamps, SpeechRecognizer, SpeechTask, Temperature, TranscribeOptions, Transcription, MODEL_TYPES,
};
