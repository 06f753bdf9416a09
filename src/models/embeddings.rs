//! Token embedding tables (stored like every other weight matrix, so they shrink with the dtype)
//! and BERT-style input embeddings: word + learned position (+ token type 0), then LayerNorm.
//! Positions count from 0 (BERT, DistilBERT) or, as in fairseq's RoBERTa, from past the padding
//! index ([`PositionIds`]); DeBERTa has no position table (its positions are relative, in
//! attention) and may project narrower embeddings to the hidden size before the norm.

use candle_core::{Module, Tensor};
use candle_nn::Embedding;

use super::linear::{Linear, Matrix};
use super::norm::LayerNorm;
use crate::error::{Error, Result};
use crate::weights::Weights;

/// A (vocab, dim) table looked up by token id; it may also serve as a tied output projection.
#[derive(Debug, Clone)]
pub struct EmbeddingTable {
    table: Matrix,
}

impl EmbeddingTable {
    pub fn new(table: Matrix) -> Self {
        EmbeddingTable { table }
    }

    pub fn load(vocab: usize, dim: usize, name: &str, vb: &Weights) -> Result<Self> {
        Ok(EmbeddingTable { table: vb.matrix((vocab, dim), name)? })
    }

    pub fn matrix(&self) -> &Matrix {
        &self.table
    }

    /// ids (any shape, u32) → (ids' shape…, dim).
    pub fn forward(&self, ids: &Tensor) -> Result<Tensor> {
        let flat = ids.flatten_all()?.to_vec1::<u32>()?;
        let mut dims = ids.dims().to_vec();
        dims.push(self.table.cols());
        Ok(self.table.gather_rows(&flat)?.reshape(dims)?)
    }
}

/// How each token's position id is found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PositionIds {
    /// 0, 1, 2, … (BERT, DistilBERT).
    FromZero,
    /// RoBERTa / XLM-RoBERTa (transformers' `create_position_ids_from_input_ids`): tokens other
    /// than `padding_idx` count up from `padding_idx + 1`; `padding_idx` tokens (padding, and a
    /// `<pad>` written in the text) take position `padding_idx`, whose row the model never trained.
    AfterPadding { padding_idx: u32 },
}

pub struct Embeddings {
    word: EmbeddingTable,
    /// Learned absolute positions (DeBERTa-v3 has none: its positions are relative, in attention).
    position: Option<Embedding>,
    position_ids: PositionIds,
    token_type: Option<Embedding>,
    /// DeBERTa's `embed_proj`: embeddings narrower than the hidden size are widened before the norm.
    projection: Option<Linear>,
    norm: LayerNorm,
    max_positions: usize,
}

impl Embeddings {
    pub fn load(
        vb: Weights,
        vocab: usize,
        hidden: usize,
        max_positions: usize,
        token_types: Option<usize>,
        eps: f64,
    ) -> Result<Self> {
        Ok(Embeddings {
            word: EmbeddingTable::load(vocab, hidden, "word_embeddings.weight", &vb)?,
            position: Some(Embedding::new(vb.get((max_positions, hidden), "position_embeddings.weight")?, hidden)),
            position_ids: PositionIds::FromZero,
            token_type: token_types
                .map(|n| vb.get((n, hidden), "token_type_embeddings.weight").map(|t| Embedding::new(t, hidden)))
                .transpose()?,
            projection: None,
            norm: LayerNorm::load(hidden, eps, vb.pp("LayerNorm"))?,
            max_positions,
        })
    }

    /// Number positions as `position_ids` says (the default is [`PositionIds::FromZero`]).
    pub fn with_position_ids(mut self, position_ids: PositionIds) -> Result<Self> {
        if let PositionIds::AfterPadding { padding_idx } = position_ids {
            if padding_idx as usize + 1 >= self.max_positions {
                return Err(Error::Config(format!(
                    "pad_token_id {padding_idx} leaves no position for a token: positions start after it and \
                     max_position_embeddings is {}",
                    self.max_positions
                )));
            }
        }
        self.position_ids = position_ids;
        Ok(self)
    }

    /// Most tokens a sequence may hold.
    pub fn max_tokens(&self) -> usize {
        match self.position_ids {
            PositionIds::FromZero => self.max_positions,
            PositionIds::AfterPadding { padding_idx } => self.max_positions - padding_idx as usize - 1,
        }
    }

    /// From parts loaded by the model file; `max_positions` bounds the input only when there is a
    /// `position` table to index.
    pub fn new(
        word: EmbeddingTable,
        position: Option<Embedding>,
        token_type: Option<Embedding>,
        projection: Option<Linear>,
        norm: LayerNorm,
        max_positions: usize,
    ) -> Self {
        Embeddings { word, position, position_ids: PositionIds::FromZero, token_type, projection, norm, max_positions }
    }

    /// `input_ids`: (batch, seq) u32.
    pub fn forward(&self, input_ids: &Tensor) -> Result<Tensor> {
        let mut xs = self.word.forward(input_ids)?;
        if let Some(position) = &self.position {
            let seq = input_ids.dim(1)?;
            if seq > self.max_tokens() {
                return Err(Error::Input(format!("{seq} tokens exceed the model's {} positions", self.max_tokens())));
            }
            let positions = match self.position_ids {
                PositionIds::FromZero => Tensor::arange(0u32, seq as u32, input_ids.device())?,
                PositionIds::AfterPadding { padding_idx } => {
                    let ids = input_ids.to_vec2::<u32>()?;
                    let positions: Vec<u32> = ids
                        .iter()
                        .flat_map(|row| {
                            let mut count = padding_idx;
                            row.iter().map(move |&id| {
                                if id == padding_idx {
                                    padding_idx
                                } else {
                                    count += 1;
                                    count
                                }
                            })
                        })
                        .collect();
                    Tensor::from_vec(positions, input_ids.dims2()?, input_ids.device())?
                }
            };
            // (seq, d) broadcast over the batch, or (batch, seq, d).
            xs = xs.broadcast_add(&position.forward(&positions)?)?;
        }
        if let Some(token_type) = &self.token_type {
            // Single-sentence classification: every token is segment 0.
            let type0 = token_type.embeddings().narrow(0, 0, 1)?;
            xs = xs.broadcast_add(&type0)?;
        }
        if let Some(projection) = &self.projection {
            xs = projection.forward(&xs)?;
        }
        self.norm.forward(&xs)
    }
}
