//! Multi-head attention for every architecture (BERT, DistilBERT, Marian, T5, Whisper): self-
//! attention with an optional key/value cache (decoders feed one step at a time) and cross-
//! attention over keys/values computed once from the encoder output; plus the decoder state that
//! holds those caches per layer and reorders them when beam search moves hypotheses.
//!
//! Scores are softmax(scale · (q kᵀ + bias)): `bias` (broadcastable to (batch, heads, queries,
//! keys)) carries padding and causal masks (0 / −∞, unaffected by the scale) and T5's relative
//! positions (T5 does not scale). Scaling inside the softmax pass saves a pass over the scores.

use candle_core::{Device, Tensor, D};

use super::fused_attention;
use super::linear::{with_values, Linear};
use super::softmax::scaled_softmax_in_place;
use crate::error::{Error, Result};
use crate::weights::Weights;

/// Keys and values, each (batch, heads, len, head_dim).
pub type KeyValues = (Tensor, Tensor);

#[derive(Debug, Clone)]
pub struct Attention {
    /// Self-attention: q, k and v fused into one (3·inner, d) projection. Cross-attention: q only.
    q_or_qkv: Linear,
    /// Cross-attention only: k and v fused, (2·inner, d_source).
    kv: Option<Linear>,
    out: Linear,
    heads: usize,
    head_dim: usize,
    /// Multiplier of the scores (head_dim^-0.5; T5: 1).
    scale: f32,
}

/// What the queries attend to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttentionKind {
    /// The same sequence (encoders, decoders' causal self-attention).
    SelfAttention,
    /// The encoder output (decoders' cross-attention).
    CrossAttention,
}

/// The head size, or a `config` error when `inner` features do not split into `heads` heads.
fn head_dim(inner: usize, heads: usize) -> Result<usize> {
    if heads == 0 || inner == 0 || !inner.is_multiple_of(heads) {
        return Err(Error::Config(format!("{inner} attention features do not split into {heads} heads")));
    }
    Ok(inner / heads)
}

impl Attention {
    /// From separate q/k/v projections loaded from `w`, fused here into one matmul (k/v only, for
    /// cross-attention) by [`Weights::fuse`].
    #[allow(clippy::too_many_arguments)]
    pub fn new(w: &Weights, kind: AttentionKind, q: Linear, k: Linear, v: Linear, out: Linear, heads: usize, scale: f32) -> Result<Self> {
        match kind {
            AttentionKind::SelfAttention => Attention::self_attention_fused(w.fuse(&[q, k, v])?, out, heads, scale),
            AttentionKind::CrossAttention => Attention::cross_attention_fused(q, w.fuse(&[k, v])?, out, heads, scale),
        }
    }

    /// Self-attention whose q/k/v come fused, (3·inner, d) (CTranslate2 stores them so).
    pub fn self_attention_fused(qkv: Linear, out: Linear, heads: usize, scale: f32) -> Result<Self> {
        let fused = qkv.out_features();
        if !fused.is_multiple_of(3) {
            return Err(Error::Config(format!("fused q/k/v projection has {fused} features, not a multiple of 3")));
        }
        let head_dim = head_dim(fused / 3, heads)?;
        Ok(Attention { q_or_qkv: qkv, kv: None, out, heads, head_dim, scale })
    }

    /// Cross-attention whose k/v come fused, (2·inner, d_source).
    pub fn cross_attention_fused(q: Linear, kv: Linear, out: Linear, heads: usize, scale: f32) -> Result<Self> {
        let inner = q.out_features();
        let head_dim = head_dim(inner, heads)?;
        if kv.out_features() != 2 * inner {
            return Err(Error::Config(format!("cross-attention keys/values have {} features for {inner} queries", kv.out_features())));
        }
        Ok(Attention { q_or_qkv: q, kv: Some(kv), out, heads, head_dim, scale })
    }

    /// The usual score scale, 1/√head_dim, for `inner` features in `heads` heads (1 when they do
    /// not split: the constructors then refuse the shapes).
    pub fn default_scale(inner: usize, heads: usize) -> f32 {
        head_dim(inner, heads).map_or(1.0, |head_dim| 1.0 / (head_dim as f32).sqrt())
    }

    fn inner(&self) -> usize {
        self.heads * self.head_dim
    }

    /// (batch, len, heads·head_dim) → (batch, heads, len, head_dim), contiguous.
    pub fn split_heads(&self, x: &Tensor) -> Result<Tensor> {
        let (b, t, _) = x.dims3()?;
        Ok(x.reshape((b, t, self.heads, self.head_dim))?.transpose(1, 2)?.contiguous()?)
    }

    /// Attention of queries q over keys/values, then the output projection.
    fn attend(&self, q: &Tensor, k: &Tensor, v: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
        if let Some(context) = self.attend_in_blocks(q, k, v, bias)? {
            return self.out.forward(&context);
        }
        let mut scores = q.matmul(&k.t()?)?;
        if let Some(bias) = bias {
            scores = scores.broadcast_add(bias)?;
        }
        self.attend_scores(scores.contiguous()?, v)
    }

    /// Long sequences (an encoder over a Whisper window, a 128-token sentence): the context
    /// (batch, queries, inner) from `fused_attention`, block by block on rayon's pool. None for
    /// short ones (a decoder step's single query), where the batched products are cheaper than
    /// splitting, and for a bias whose keys are not contiguous.
    fn attend_in_blocks(&self, q: &Tensor, k: &Tensor, v: &Tensor, bias: Option<&Tensor>) -> Result<Option<Tensor>> {
        let (batch, heads, queries, head_dim) = q.dims4()?;
        let keys = k.dim(2)?;
        if batch * heads * queries * keys < BLOCKED_ATTENTION_MIN_SCORES || queries < 2 {
            return Ok(None);
        }
        let bias = match bias {
            Some(bias) => match bias.broadcast_as((batch, heads, queries, keys)) {
                Ok(b) if b.stride()[3] == 1 => Some(b),
                _ => return Ok(None),
            },
            None => None,
        };
        let shape = fused_attention::Shape { batch, heads, queries, keys, head_dim };
        let context = with_values(q, |q| {
            with_values(k, |k| {
                with_values(v, |v| match &bias {
                    None => Ok(fused_attention::attend(q, k, v, shape, None, self.scale)),
                    Some(b) => {
                        let stride = b.stride();
                        let (b_storage, b_layout) = b.storage_and_layout();
                        let data = cpu_f32(&b_storage)?;
                        let view = fused_attention::Bias {
                            data: &data[b_layout.start_offset()..],
                            batch: stride[0],
                            head: stride[1],
                            query: stride[2],
                        };
                        Ok(fused_attention::attend(q, k, v, shape, Some(view), self.scale))
                    }
                })
            })
        })?;
        Ok(Some(Tensor::from_vec(context, (batch, queries, self.inner()), &Device::Cpu)?))
    }

    /// The attention output for raw (unscaled, biased) scores q kᵀ + bias, contiguous.
    fn attend_scores(&self, scores: Tensor, v: &Tensor) -> Result<Tensor> {
        scaled_softmax_in_place(&scores, self.scale)?;
        let context = scores.matmul(v)?;
        let (b, _, t, _) = context.dims4()?;
        self.out.forward(&context.transpose(1, 2)?.reshape((b, t, self.inner()))?)
    }

    /// Self-attention's queries, keys and values of `x` (batch, len, d), each split into heads:
    /// (batch, heads, len, head_dim).
    pub fn heads(&self, x: &Tensor) -> Result<(Tensor, Tensor, Tensor)> {
        if self.kv.is_some() {
            return Err(Error::Input("cross-attention used as self-attention".into()));
        }
        let d = self.inner();
        let qkv = self.q_or_qkv.forward(x)?;
        let q = self.split_heads(&qkv.narrow(D::Minus1, 0, d)?)?;
        let k = self.split_heads(&qkv.narrow(D::Minus1, d, d)?)?;
        let v = self.split_heads(&qkv.narrow(D::Minus1, 2 * d, d)?)?;
        Ok((q, k, v))
    }

    /// Self-attention over `x` (batch, len, d) whose scores get, besides `bias`, a term computed
    /// from the heads' queries and keys: `score_terms(q, k)`, broadcastable to (batch, heads,
    /// queries, keys) and scaled with q kᵀ (DeBERTa's disentangled content-to-position and
    /// position-to-content scores).
    pub fn forward_self_with(
        &self,
        x: &Tensor,
        bias: Option<&Tensor>,
        score_terms: impl FnOnce(&Tensor, &Tensor) -> Result<Tensor>,
    ) -> Result<Tensor> {
        let (q, k, v) = self.heads(x)?;
        let mut terms = score_terms(&q, &k)?;
        if let Some(bias) = bias {
            terms = terms.broadcast_add(bias)?;
        }
        self.attend(&q, &k, &v, Some(&terms))
    }

    /// Self-attention over `x` (batch, len, d). With a cache, `x` holds the new positions only:
    /// they attend to the cached ones too, and the cache grows by them.
    pub fn forward_self(&self, x: &Tensor, bias: Option<&Tensor>, cache: Option<&mut Option<KeyValues>>) -> Result<Tensor> {
        let (q, k, v) = self.heads(x)?;
        match cache {
            None => self.attend(&q, &k, &v, bias),
            Some(cache) => {
                let (k, v) = match cache.take() {
                    Some((pk, pv)) => (Tensor::cat(&[&pk, &k], 2)?, Tensor::cat(&[&pv, &v], 2)?),
                    None => (k, v),
                };
                let out = self.attend(&q, &k, &v, bias);
                *cache = Some((k, v));
                out
            }
        }
    }

    /// Cross-attention keys and values of the encoder output (batch, source, d_source).
    pub fn keys_values(&self, source: &Tensor) -> Result<KeyValues> {
        let kv = self.kv.as_ref().ok_or_else(|| Error::Input("self-attention has no cross keys/values".into()))?;
        let d = self.inner();
        let kv = kv.forward(source)?;
        Ok((self.split_heads(&kv.narrow(D::Minus1, 0, d)?)?, self.split_heads(&kv.narrow(D::Minus1, d, d)?)?))
    }

    /// Cross-attention of `x` (batch, len, d) over keys/values from `keys_values`.
    pub fn forward_cross(&self, x: &Tensor, (k, v): &KeyValues) -> Result<Tensor> {
        let q = self.split_heads(&self.q_or_qkv.forward(x)?)?;
        self.attend(&q, k, v, None)
    }

    /// `forward_cross` that also returns the scaled scores before the softmax, scale · q kᵀ,
    /// (batch, heads, queries, source): what openai/whisper's `qkv_attention` hands back as `qk`,
    /// which word timestamps read. A copy of the scores, so only asked for when needed.
    pub fn forward_cross_with_scores(&self, x: &Tensor, (k, v): &KeyValues) -> Result<(Tensor, Tensor)> {
        let q = self.split_heads(&self.q_or_qkv.forward(x)?)?;
        let scores = q.matmul(&k.t()?)?.contiguous()?;
        let scaled = scores.affine(self.scale as f64, 0.0)?;
        Ok((self.attend_scores(scores, v)?, scaled))
    }
}

/// Scores (batch · heads · queries · keys) from which attention goes block by block
/// (`fused_attention`): DistilBERT at 128 tokens has 196 608, a Whisper window 13.5 million.
const BLOCKED_ATTENTION_MIN_SCORES: usize = 1 << 15;

/// The f32 values of a CPU storage (a broadcast bias, read through its strides).
fn cpu_f32(storage: &candle_core::Storage) -> Result<&[f32]> {
    match storage {
        candle_core::Storage::Cpu(cpu) => Ok(cpu.as_slice::<f32>()?),
        _ => Err(Error::Config("attention runs on CPU tensors".into())),
    }
}

/// Additive causal mask (new, past + new) for `new` positions after `past` cached ones: 0 where a
/// query may look, −∞ ahead of it. `None` for one new position, which may see everything.
pub fn causal_mask(past: usize, new: usize) -> Result<Option<Tensor>> {
    if new <= 1 {
        return Ok(None);
    }
    let total = past + new;
    let values: Vec<f32> =
        (0..new).flat_map(|i| (0..total).map(move |j| if j > past + i { f32::NEG_INFINITY } else { 0.0 })).collect();
    Ok(Some(Tensor::from_vec(values, (new, total), &Device::Cpu)?))
}

/// One decoder layer's caches: self-attention keys/values (beams, heads, steps, head_dim), grown
/// per step, and cross-attention keys/values (beams, heads, source, head_dim), fixed.
#[derive(Debug, Clone)]
pub struct LayerCache {
    pub self_kv: Option<KeyValues>,
    pub cross_kv: KeyValues,
}

/// A decoder's state during generation: per-layer caches and how many tokens each beam has fed.
#[derive(Debug, Clone)]
pub struct DecoderState {
    pub layers: Vec<LayerCache>,
    /// Tokens already fed per beam (the next token's position).
    pub position: usize,
    pub beams: usize,
}

impl DecoderState {
    /// A fresh state for `beams` hypotheses: each layer's cross-attention keys/values over
    /// `encoded` (batch 1), computed once and repeated per beam.
    pub fn start<'a>(cross_attention: impl Iterator<Item = &'a Attention>, encoded: &Tensor, beams: usize) -> Result<Self> {
        let layers = cross_attention
            .map(|attention| {
                let (k, v) = attention.keys_values(encoded)?;
                Ok(LayerCache { self_kv: None, cross_kv: (repeat_rows(&k, beams)?, repeat_rows(&v, beams)?) })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(DecoderState { layers, position: 0, beams })
    }

    /// Forget the fed tokens, keep the encoder's keys/values.
    pub fn reset(&mut self) {
        self.layers.iter_mut().for_each(|layer| layer.self_kv = None);
        self.position = 0;
    }

    /// `tokens` (beams × new, row-major) as a (beams, new) u32 tensor.
    pub fn token_ids(&self, tokens: &[u32]) -> Result<Tensor> {
        if tokens.is_empty() || !tokens.len().is_multiple_of(self.beams) {
            return Err(Error::Input(format!("{} tokens do not split over {} beams", tokens.len(), self.beams)));
        }
        Ok(Tensor::from_slice(tokens, (self.beams, tokens.len() / self.beams), &Device::Cpu)?)
    }

    /// Keep, for new beam `i`, the self-attention cache of old beam `parents[i]`. Cross-attention
    /// keys/values are the same for every beam and need no reordering.
    pub fn reorder(&mut self, parents: &[u32]) -> Result<()> {
        if parents.len() != self.beams || parents.iter().any(|&p| p as usize >= self.beams) {
            return Err(Error::Input(format!("reorder: parents {parents:?} for {} beams", self.beams)));
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

/// Repeat the batch-1 tensor `x` (1, ...) to `n` rows.
fn repeat_rows(x: &Tensor, n: usize) -> Result<Tensor> {
    if n == 1 {
        return Ok(x.clone());
    }
    let mut dims = x.dims().to_vec();
    dims[0] = n;
    Ok(x.broadcast_as(dims)?.contiguous()?)
}

/// An encoder-decoder's decoder, driven token by token by the generate loop. Marian, T5 and
/// Whisper implement it; their encoders differ in input (token ids or log-mel frames). Shared
/// across threads: a pass runs on rayon's pool (`kernels::on_pool`).
pub trait Decoder: Send + Sync {
    /// A fresh state for `beams` hypotheses over the encoder output (1, source, d).
    fn start(&self, encoded: &Tensor, beams: usize) -> Result<DecoderState>;
    /// Feed `tokens` (beams × new, row-major: each beam's next `new` tokens) after what `state`
    /// holds; returns the logits of every new position, (beams, new, vocab) in f32.
    fn decode(&self, state: &mut DecoderState, tokens: &[u32]) -> Result<Tensor>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn linear(out: usize, inp: usize) -> Linear {
        Linear::new(Tensor::zeros((out, inp), candle_core::DType::F32, &Device::Cpu).unwrap(), None).unwrap()
    }

    #[test]
    fn shapes_that_do_not_split_into_heads_are_config_errors() {
        let w = Weights::from_tensors(Default::default());
        let new = |kind, heads| Attention::new(&w, kind, linear(6, 6), linear(6, 6), linear(6, 6), linear(6, 6), heads, 1.0);
        assert!(new(AttentionKind::SelfAttention, 3).is_ok());
        assert!(new(AttentionKind::CrossAttention, 2).is_ok());
        for heads in [0, 4, 7] {
            assert!(matches!(new(AttentionKind::SelfAttention, heads), Err(Error::Config(_))), "{heads} heads");
            assert!(matches!(new(AttentionKind::CrossAttention, heads), Err(Error::Config(_))), "{heads} heads");
        }
        // A fused q/k/v whose rows are not three equal parts.
        assert!(matches!(Attention::self_attention_fused(linear(7, 6), linear(6, 2), 1, 1.0), Err(Error::Config(_))));
        assert_eq!(Attention::default_scale(64 * 6, 6), 0.125);
        assert_eq!(Attention::default_scale(6, 0), 1.0);
    }
}
