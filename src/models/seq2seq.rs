//! What encoder-decoder (translation) models share: the interface the generation loop drives
//! (encode once, then one decoder step per token over a key/value cache), the caches themselves
//! (self-attention keys/values appended per step, cross-attention keys/values computed once from
//! the encoder output) with beam reordering, and multi-head attention.

use candle_core::{Device, Module, Tensor};
use candle_nn::Linear;

use crate::error::{Error, Result};

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

/// One decoder layer's cache: self-attention keys/values (beams, heads, steps, head_dim), grown
/// per step, and cross-attention keys/values (beams, heads, source, head_dim), fixed.
#[derive(Debug, Clone)]
pub struct LayerCache {
    pub self_kv: Option<(Tensor, Tensor)>,
    pub cross_kv: (Tensor, Tensor),
}

/// The decoder's state during generation: the caches and how many tokens each beam has fed.
#[derive(Debug, Clone)]
pub struct DecoderState {
    pub layers: Vec<LayerCache>,
    /// Tokens already processed per beam (the next token's position).
    pub position: usize,
    pub beams: usize,
}

impl DecoderState {
    /// A fresh state for `beams` hypotheses: each decoder layer's cross-attention keys/values over
    /// `encoded`, computed once and repeated per beam.
    pub fn start<'a>(cross_attention: impl Iterator<Item = &'a Attention>, encoded: &Tensor, beams: usize) -> Result<Self> {
        let layers = cross_attention
            .map(|attention| {
                let (k, v) = attention.keys_values(encoded)?;
                Ok(LayerCache { self_kv: None, cross_kv: (repeat_rows(&k, beams)?, repeat_rows(&v, beams)?) })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(DecoderState { layers, position: 0, beams })
    }

    /// This step's tokens (one per beam) as a (beams, 1) tensor.
    pub fn step_ids(&self, tokens: &[u32]) -> Result<Tensor> {
        if tokens.len() != self.beams {
            return Err(Error::Input(format!("{} tokens for {} beams", tokens.len(), self.beams)));
        }
        Ok(Tensor::new(tokens, &Device::Cpu)?.unsqueeze(1)?)
    }

    /// Keep, for new beam `i`, the self-attention cache of old beam `parents[i]`. Cross-attention
    /// keys/values are the same for every beam and need no reordering.
    pub fn reorder(&mut self, parents: &[u32]) -> Result<()> {
        if parents.len() != self.beams {
            return Err(Error::Input(format!("reorder: {} parents for {} beams", parents.len(), self.beams)));
        }
        if parents.iter().enumerate().all(|(i, &p)| p as usize == i) {
            return Ok(());
        }
        let index = Tensor::new(parents, &Device::Cpu)?;
        for layer in &mut self.layers {
            if let Some((k, v)) = &layer.self_kv {
                layer.self_kv = Some((k.index_select(&index, 0)?, v.index_select(&index, 0)?));
            }
        }
        Ok(())
    }
}

/// An encoder-decoder model driven token by token.
pub trait Seq2SeqModel {
    fn spec(&self) -> &Seq2SeqSpec;
    /// Encoder output (1, source_len, d_model) for one input sequence.
    fn encode(&self, input_ids: &[u32]) -> Result<Tensor>;
    /// A fresh decoder state for `beams` hypotheses over the encoder output.
    fn start(&self, encoded: &Tensor, beams: usize) -> Result<DecoderState>;
    /// Feed one token per beam; returns next-token logits (beams, vocab) in f32.
    fn step(&self, tokens: &[u32], state: &mut DecoderState) -> Result<Tensor>;
}

/// Multi-head attention with separate q/k/v/o projections (biases optional).
#[derive(Debug, Clone)]
pub struct Attention {
    pub q: Linear,
    pub k: Linear,
    pub v: Linear,
    pub o: Linear,
    pub heads: usize,
    pub head_dim: usize,
    /// Multiplier of the queries (BART family: head_dim^-0.5; T5: none).
    pub scale: Option<f64>,
}

/// `x` (rows, in) through `linear`, keeping any leading dims: (..., in) → (..., out).
pub fn project(linear: &Linear, x: &Tensor) -> Result<Tensor> {
    let dims = x.dims().to_vec();
    let last = *dims.last().ok_or_else(|| Error::Input("empty tensor".into()))?;
    let rows = x.elem_count() / last.max(1);
    let y = linear.forward(&x.reshape((rows, last))?)?;
    let mut out_dims = dims;
    *out_dims.last_mut().unwrap() = y.dim(1)?;
    Ok(y.reshape(out_dims)?)
}

impl Attention {
    /// (batch, len, heads * head_dim) → (batch, heads, len, head_dim), contiguous.
    fn split_heads(&self, x: &Tensor) -> Result<Tensor> {
        let (b, t, _) = x.dims3()?;
        Ok(x.reshape((b, t, self.heads, self.head_dim))?.transpose(1, 2)?.contiguous()?)
    }

    /// Keys and values of `x` (batch, len, d), split into heads.
    pub fn keys_values(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        Ok((self.split_heads(&project(&self.k, x)?)?, self.split_heads(&project(&self.v, x)?)?))
    }

    /// Attention of `x`'s queries over the given keys/values; `bias` (broadcastable to
    /// (batch, heads, q_len, k_len)) is added to the scores (T5 positions, causal masks).
    pub fn attend(&self, x: &Tensor, k: &Tensor, v: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
        let (b, t, _) = x.dims3()?;
        let mut q = self.split_heads(&project(&self.q, x)?)?;
        if let Some(scale) = self.scale {
            q = (q * scale)?;
        }
        let mut scores = q.matmul(&k.t()?)?;
        if let Some(bias) = bias {
            scores = scores.broadcast_add(bias)?;
        }
        let probs = candle_nn::ops::softmax_last_dim(&scores)?;
        let context = probs.matmul(v)?.transpose(1, 2)?.reshape((b, t, self.heads * self.head_dim))?;
        project(&self.o, &context)
    }

    /// Self-attention of new positions `x` that also attend to the cached ones; the cache grows.
    pub fn attend_cached(
        &self,
        x: &Tensor,
        cache: &mut Option<(Tensor, Tensor)>,
        bias: Option<&Tensor>,
    ) -> Result<Tensor> {
        let (k_new, v_new) = self.keys_values(x)?;
        let (k, v) = match cache.take() {
            Some((k, v)) => (Tensor::cat(&[&k, &k_new], 2)?, Tensor::cat(&[&v, &v_new], 2)?),
            None => (k_new, v_new),
        };
        let out = self.attend(x, &k, &v, bias)?;
        *cache = Some((k, v));
        Ok(out)
    }
}

/// Repeat the batch-1 tensor `x` (1, ...) to `n` rows.
pub fn repeat_rows(x: &Tensor, n: usize) -> Result<Tensor> {
    if n == 1 {
        return Ok(x.clone());
    }
    let mut dims = x.dims().to_vec();
    dims[0] = n;
    Ok(x.broadcast_as(dims)?.contiguous()?)
}
