//! `hubside transcribe`'s flags for openai/whisper's long-form rules (`whisper::fallback`,
//! `whisper::prompt`), named as openai's `whisper` command names them (with dashes).

use clap::Args;
use hubside::tasks::speech_recognition::{Temperature, TranscribeOptions};

#[derive(Args, Debug, Clone, Default)]
pub struct LongFormArgs {
    /// Prompt each 30 s window with the text so far (true, the default) or not (false).
    #[arg(long, value_name = "BOOL")]
    condition_on_previous_text: Option<bool>,
    /// Text that prompts the first window (names, spelling, style); not part of the transcript.
    #[arg(long, value_name = "TEXT")]
    initial_prompt: Option<String>,
    /// Temperature, or comma-separated temperatures tried in turn when a window fails the
    /// thresholds (default 0,0.2,0.4,0.6,0.8,1).
    #[arg(long, value_name = "T[,T...]", value_delimiter = ',', num_args = 1)]
    temperature: Option<Vec<f64>>,
    /// Decode a window again when its text's zlib compression ratio is above this (default 2.4).
    #[arg(long, value_name = "RATIO")]
    compression_ratio_threshold: Option<f64>,
    /// Decode a window again when its average log-probability is below this (default -1).
    #[arg(long, value_name = "LOGPROB", allow_negative_numbers = true)]
    logprob_threshold: Option<f64>,
    /// A window is silence when its no-speech probability is above this (default 0.6).
    #[arg(long, value_name = "PROB")]
    no_speech_threshold: Option<f64>,
    /// Seed of the sampling at temperatures above 0 (default 0).
    #[arg(long)]
    seed: Option<u64>,
}

impl LongFormArgs {
    /// `options` with these flags set (the library checks their ranges).
    pub fn apply(self, options: TranscribeOptions) -> TranscribeOptions {
        TranscribeOptions {
            condition_on_previous_text: self.condition_on_previous_text,
            initial_prompt: self.initial_prompt,
            temperature: self.temperature.map(|t| match t.as_slice() {
                [one] => Temperature::One(*one),
                _ => Temperature::Many(t),
            }),
            compression_ratio_threshold: self.compression_ratio_threshold,
            logprob_threshold: self.logprob_threshold,
            no_speech_threshold: self.no_speech_threshold,
            seed: self.seed,
            ..options
        }
    }
}
