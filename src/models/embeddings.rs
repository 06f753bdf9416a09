//! BERT-style input embeddings: word + learned position (+ token type 0), then LayerNorm.

use candle_core::{Module, Tensor};
use candle_nn::{Embedding, VarBuilder};

use super::norm::LayerNorm;
use crate::error::{Error, Result};

pub struct Embeddings {
    word: Embedding,
    position: Embedding,
    token_type: Option<Embedding>,
    norm: LayerNorm,
    max_positions: usize,
}

impl Embeddings {
    pub fn load(
        vb: VarBuilder,
        vocab: usize,
        hidden: usize,
        max_positions: usize,
        token_types: Option<usize>,
        eps: f64,
    ) -> Result<Self> {
        Ok(Embeddings {
            word: candle_nn::embedding(vocab, hidden, vb.pp("word_embeddings"))?,
            position: candle_nn::embedding(max_positions, hidden, vb.pp("position_embeddings"))?,
            token_type: token_types
                .map(|n| candle_nn::embedding(n, hidden, vb.pp("token_type_embeddings")))
                .transpose()?,
            norm: LayerNorm::load(hidden, eps, vb.pp("LayerNorm"))?,
            max_positions,
        })
    }

    /// `input_ids`: (batch, seq) u32.
    pub fn forward(&self, input_ids: &Tensor) -> Result<Tensor> {
        let seq = input_ids.dim(1)?;
        if seq > self.max_positions {
            return Err(Error::Input(format!(
                "{seq} tokens exceed the model's {} positions",
                self.max_positions
            )));
        }
        let positions = Tensor::arange(0u32, seq as u32, input_ids.device())?;
        let mut xs = self.word.forward(input_ids)?.broadcast_add(&self.position.forward(&positions)?)?;
        if let Some(token_type) = &self.token_type {
            // Single-sentence classification: every token is segment 0.
            let type0 = token_type.embeddings().narrow(0, 0, 1)?;
            xs = xs.broadcast_add(&type0)?;
        }
        self.norm.forward(&xs)
    }
}
