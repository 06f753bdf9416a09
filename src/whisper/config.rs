//! Whisper's dimensions (openai/whisper `ModelDimensions`), read from the weights' shapes.

use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Config {
    pub n_mels: usize,
    /// Encoder positions (1500: 3000 mel frames after the stride-2 convolution).
    pub n_audio_ctx: usize,
    pub n_audio_state: usize,
    pub n_audio_head: usize,
    pub n_audio_layer: usize,
    pub n_vocab: usize,
    /// Decoder positions (448).
    pub n_text_ctx: usize,
    pub n_text_state: usize,
    pub n_text_head: usize,
    pub n_text_layer: usize,
}

impl Config {
    /// Multilingual checkpoints have 51865+ tokens; English-only ones 51864.
    pub fn is_multilingual(&self) -> bool {
        self.n_vocab >= 51865
    }
}

/// Shapes that cannot run are refused before any tensor is built.
pub fn validate(c: &Config) -> Result<()> {
    let bad = |m: String| Err(Error::weights("model", m));
    if c.n_audio_layer == 0 || c.n_text_layer == 0 {
        return bad(format!("no encoder or decoder layers found ({} / {})", c.n_audio_layer, c.n_text_layer));
    }
    if c.n_audio_head == 0 || !c.n_audio_state.is_multiple_of(c.n_audio_head) || c.n_text_head == 0 || !c.n_text_state.is_multiple_of(c.n_text_head) {
        return bad(format!("hidden sizes {} / {} do not split into {} / {} heads", c.n_audio_state, c.n_text_state, c.n_audio_head, c.n_text_head));
    }
    if c.n_audio_ctx == 0 || c.n_text_ctx == 0 || c.n_vocab == 0 {
        return bad("empty position or token embeddings".into());
    }
    Ok(())
}
