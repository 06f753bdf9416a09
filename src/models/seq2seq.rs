//! What encoder-decoder (translation) models share with the generation loop: the token ids and
//! limits it needs from a model's config, and the interface it drives (encode once, then decode
//! through the key/value caches of `attention::DecoderState`).

use candle_core::Tensor;

pub use super::attention::{Decoder, DecoderState};
use crate::error::Result;

/// Token ids and limits the generation loop needs from a model's config.
#[derive(Debug, Clone)]
pub struct Seq2SeqSpec {
    /// `model_type` from config.json.
    pub model_type: String,
    pub decoder_start_id: u32,
    pub eos_ids: Vec<u32>,
    pub pad_id: Option<u32>,
    /// Ids never generated (Marian: pad).
    pub suppress_ids: Vec<u32>,
    /// Size of the decoder's output vocabulary.
    pub vocab_size: usize,
    /// Longest encoder input (absolute position embeddings), if limited.
    pub max_input_positions: Option<usize>,
    /// Longest decoder sequence, start token included, if limited.
    pub max_target_positions: Option<usize>,
}

/// A text-to-text encoder-decoder driven token by token.
pub trait Seq2SeqModel: Decoder {
    fn spec(&self) -> &Seq2SeqSpec;
    /// Encoder output (1, source_len, d_model) for one input sequence.
    fn encode(&self, input_ids: &[u32]) -> Result<Tensor>;
    /// Feed one token per beam; returns next-token logits (beams, vocab) in f32.
    fn step(&self, tokens: &[u32], state: &mut DecoderState) -> Result<Tensor> {
        Ok(self.decode(state, tokens)?.squeeze(1)?)
    }
}
