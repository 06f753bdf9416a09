//! MarianMT (Helsinki-NLP/opus-mt-*): a post-LayerNorm transformer encoder-decoder with
//! embeddings scaled by sqrt(d_model), sinusoidal positions (not stored in checkpoints; computed
//! as transformers' `MarianSinusoidalPositionalEmbedding` does: sines in the first half of each
//! row, cosines in the second), swish activations, embeddings shared between encoder, decoder
//! and output projection, and `final_logits_bias` added to the logits.

use candle_core::{DType, Device, Tensor};

use serde::Deserialize;

use super::attention::{causal_mask, Attention, AttentionKind, Decoder, DecoderState, LayerCache};
use super::embeddings::EmbeddingTable;
use super::linear::Linear;
use super::norm::{Activation, LayerNorm};
use super::seq2seq::{Seq2SeqModel, Seq2SeqSpec};
use crate::error::{Error, Result};
use crate::weights::Weights;

fn default_activation() -> String {
    "swish".into()
}
fn default_true() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
pub struct MarianConfig {
    pub vocab_size: usize,
    #[serde(default)]
    pub decoder_vocab_size: Option<usize>,
    pub d_model: usize,
    pub encoder_layers: usize,
    pub decoder_layers: usize,
    pub encoder_attention_heads: usize,
    pub decoder_attention_heads: usize,
    pub encoder_ffn_dim: usize,
    pub decoder_ffn_dim: usize,
    #[serde(default = "default_activation")]
    pub activation_function: String,
    pub max_position_embeddings: usize,
    pub pad_token_id: u32,
    pub eos_token_id: u32,
    #[serde(default)]
    pub decoder_start_token_id: Option<u32>,
    #[serde(default = "default_true")]
    pub scale_embedding: bool,
}

/// A BART-family encoder layer (Marian, M2M100): self-attention and a feed-forward, each a
/// residual block with its own LayerNorm, applied after the residual sum (Marian) or to the
/// block's input (M2M100's pre-LayerNorm).
pub(super) struct EncoderLayer {
    self_attn: Attention,
    self_attn_layer_norm: LayerNorm,
    fc1: Linear,
    fc2: Linear,
    final_layer_norm: LayerNorm,
}

/// A BART-family decoder layer: causal self-attention, cross-attention over the encoder output
/// and a feed-forward, wired as [`EncoderLayer`]'s blocks are.
pub(super) struct DecoderLayer {
    self_attn: Attention,
    self_attn_layer_norm: LayerNorm,
    encoder_attn: Attention,
    encoder_attn_layer_norm: LayerNorm,
    fc1: Linear,
    fc2: Linear,
    final_layer_norm: LayerNorm,
}

/// Where a residual block's LayerNorm sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum NormPlacement {
    /// `norm(x + block(x))` (Marian, BART).
    After,
    /// `x + block(norm(x))` (M2M100, NLLB).
    Before,
}

/// One residual block around `block`, its LayerNorm placed as `placement` says.
fn residual(x: Tensor, norm: &LayerNorm, placement: NormPlacement, block: impl FnOnce(&Tensor) -> Result<Tensor>) -> Result<Tensor> {
    match placement {
        NormPlacement::After => {
            let out = block(&x)?;
            norm.forward(&(x + out)?)
        }
        NormPlacement::Before => {
            let out = block(&norm.forward(&x)?)?;
            Ok((x + out)?)
        }
    }
}

fn ffn(fc1: &Linear, fc2: &Linear, activation: Activation, x: &Tensor) -> Result<Tensor> {
    fc2.forward(&fc1.forward_then(x, activation)?)
}

impl EncoderLayer {
    /// `model.encoder.layers.{i}` weights.
    pub(super) fn load(d: usize, heads: usize, ffn_dim: usize, eps: f64, vb: Weights) -> Result<Self> {
        Ok(EncoderLayer {
            self_attn: attention(d, heads, AttentionKind::SelfAttention, vb.pp("self_attn"))?,
            self_attn_layer_norm: LayerNorm::load(d, eps, vb.pp("self_attn_layer_norm"))?,
            fc1: Linear::load(d, ffn_dim, vb.pp("fc1"))?,
            fc2: Linear::load(ffn_dim, d, vb.pp("fc2"))?,
            final_layer_norm: LayerNorm::load(d, eps, vb.pp("final_layer_norm"))?,
        })
    }

    pub(super) fn forward(&self, x: Tensor, activation: Activation, placement: NormPlacement) -> Result<Tensor> {
        let x = residual(x, &self.self_attn_layer_norm, placement, |x| self.self_attn.forward_self(x, None, None))?;
        residual(x, &self.final_layer_norm, placement, |x| ffn(&self.fc1, &self.fc2, activation, x))
    }
}

impl DecoderLayer {
    /// `model.decoder.layers.{i}` weights.
    pub(super) fn load(d: usize, heads: usize, ffn_dim: usize, eps: f64, vb: Weights) -> Result<Self> {
        Ok(DecoderLayer {
            self_attn: attention(d, heads, AttentionKind::SelfAttention, vb.pp("self_attn"))?,
            self_attn_layer_norm: LayerNorm::load(d, eps, vb.pp("self_attn_layer_norm"))?,
            encoder_attn: attention(d, heads, AttentionKind::CrossAttention, vb.pp("encoder_attn"))?,
            encoder_attn_layer_norm: LayerNorm::load(d, eps, vb.pp("encoder_attn_layer_norm"))?,
            fc1: Linear::load(d, ffn_dim, vb.pp("fc1"))?,
            fc2: Linear::load(ffn_dim, d, vb.pp("fc2"))?,
            final_layer_norm: LayerNorm::load(d, eps, vb.pp("final_layer_norm"))?,
        })
    }

    /// The cross-attention whose keys/values [`DecoderState::start`] computes.
    pub(super) fn encoder_attention(&self) -> &Attention {
        &self.encoder_attn
    }

    /// New positions `x` after those `cache` holds; `mask` is their causal mask.
    pub(super) fn forward(
        &self,
        x: Tensor,
        mask: Option<&Tensor>,
        cache: &mut LayerCache,
        activation: Activation,
        placement: NormPlacement,
    ) -> Result<Tensor> {
        let x = residual(x, &self.self_attn_layer_norm, placement, |x| {
            self.self_attn.forward_self(x, mask, Some(&mut cache.self_kv))
        })?;
        let x = residual(x, &self.encoder_attn_layer_norm, placement, |x| self.encoder_attn.forward_cross(x, &cache.cross_kv))?;
        residual(x, &self.final_layer_norm, placement, |x| ffn(&self.fc1, &self.fc2, activation, x))
    }
}

pub struct Marian {
    spec: Seq2SeqSpec,
    encoder_embed: EmbeddingTable,
    decoder_embed: EmbeddingTable,
    embed_scale: f64,
    /// `max_position_embeddings`: the sinusoidal rows are computed as needed, up to it.
    max_positions: usize,
    d_model: usize,
    encoder: Vec<EncoderLayer>,
    decoder: Vec<DecoderLayer>,
    /// (vocab, d_model) with `final_logits_bias`.
    lm_head: Linear,
    activation: Activation,
}

const LAYER_NORM_EPS: f64 = 1e-5;

/// BART-family attention: q/k/v/out projections with biases, scores scaled by head_dim^-0.5.
fn attention(d: usize, heads: usize, kind: AttentionKind, vb: Weights) -> Result<Attention> {
    let (q, k, v) = (Linear::load(d, d, vb.pp("q_proj"))?, Linear::load(d, d, vb.pp("k_proj"))?, Linear::load(d, d, vb.pp("v_proj"))?);
    Attention::new(&vb, kind, q, k, v, Linear::load(d, d, vb.pp("out_proj"))?, heads, Attention::default_scale(d, heads))
}

/// Rows `start..start + count` of `MarianSinusoidalPositionalEmbedding._init_weight`'s table,
/// computed in f64 and stored as f32. Only the rows a call needs are computed: a config may declare
/// up to `limits::MAX_POSITIONS` positions, and a whole table that size would be gigabytes.
pub fn sinusoidal_positions(start: usize, count: usize, dim: usize) -> Result<Tensor> {
    let sentinel = dim.div_ceil(2);
    // Each column's divisor once, not once per row (a pow per value was 1% of a translation).
    let divisors: Vec<f64> = (0..dim).map(|j| 10000f64.powf((2 * (j / 2)) as f64 / dim as f64)).collect();
    let mut table = vec![0f32; count * dim];
    for (row, pos) in table.chunks_exact_mut(dim.max(1)).zip(start..) {
        for (j, divisor) in divisors.iter().enumerate() {
            let angle = pos as f64 / divisor;
            if j % 2 == 0 {
                row[j / 2] = angle.sin() as f32;
            } else {
                row[sentinel + j / 2] = angle.cos() as f32;
            }
        }
    }
    Ok(Tensor::from_vec(table, (count, dim), &Device::Cpu)?)
}

/// The first name among `names` that the checkpoint has.
pub(super) fn first_of<'a>(vb: &Weights, names: &[&'a str]) -> Result<&'a str> {
    names.iter().copied().find(|name| vb.contains_tensor(name)).ok_or_else(|| Error::Config(format!("weights have none of {}", names.join(", "))))
}

impl Marian {
    pub fn load(config: &serde_json::Value, vb: Weights) -> Result<Self> {
        let cfg: MarianConfig = super::parse_config(config)?;
        let d = cfg.d_model;
        let target_vocab = cfg.decoder_vocab_size.unwrap_or(cfg.vocab_size);
        let encoder_name = first_of(&vb, &["model.shared.weight", "model.encoder.embed_tokens.weight"])?;
        let decoder_name = if vb.contains_tensor("model.decoder.embed_tokens.weight") && target_vocab != cfg.vocab_size {
            "model.decoder.embed_tokens.weight"
        } else {
            first_of(&vb, &["model.shared.weight", "model.decoder.embed_tokens.weight"])?
        };
        // Without an lm_head the decoder's embedding is the output projection (see
        // Weights::output_matrix); a table both sides share is loaded once.
        let tied = !vb.contains_tensor("lm_head.weight") || vb.same_data("lm_head.weight", decoder_name);
        let decoder_embed =
            if tied { vb.output_matrix((target_vocab, d), decoder_name)? } else { vb.matrix((target_vocab, d), decoder_name)? };
        let encoder_embed =
            if encoder_name == decoder_name { decoder_embed.clone() } else { vb.matrix((cfg.vocab_size, d), encoder_name)? };
        let lm_head = if tied { decoder_embed.clone() } else { vb.output_matrix((target_vocab, d), "lm_head.weight")? };
        let final_logits_bias = if vb.contains_tensor("final_logits_bias") {
            Some(vb.get((1, target_vocab), "final_logits_bias")?.reshape(target_vocab)?)
        } else {
            None
        };
        let lm_head = Linear::from_matrix(lm_head, final_logits_bias)?;
        let encoder = (0..cfg.encoder_layers)
            .map(|i| EncoderLayer::load(d, cfg.encoder_attention_heads, cfg.encoder_ffn_dim, LAYER_NORM_EPS, vb.pp(format!("model.encoder.layers.{i}"))))
            .collect::<Result<Vec<_>>>()?;
        let decoder = (0..cfg.decoder_layers)
            .map(|i| DecoderLayer::load(d, cfg.decoder_attention_heads, cfg.decoder_ffn_dim, LAYER_NORM_EPS, vb.pp(format!("model.decoder.layers.{i}"))))
            .collect::<Result<Vec<_>>>()?;
        let spec = Seq2SeqSpec {
            model_type: "marian".into(),
            decoder_start_id: cfg.decoder_start_token_id.unwrap_or(cfg.pad_token_id),
            eos_ids: vec![cfg.eos_token_id],
            pad_id: Some(cfg.pad_token_id),
            suppress_ids: vec![cfg.pad_token_id],
            vocab_size: target_vocab,
            max_input_positions: Some(cfg.max_position_embeddings),
            max_target_positions: Some(cfg.max_position_embeddings),
        };
        Ok(Marian {
            spec,
            encoder_embed: EmbeddingTable::new(encoder_embed),
            decoder_embed: EmbeddingTable::new(decoder_embed),
            embed_scale: if cfg.scale_embedding { (d as f64).sqrt() } else { 1.0 },
            max_positions: cfg.max_position_embeddings,
            d_model: d,
            encoder,
            decoder,
            lm_head,
            activation: Activation::parse(&cfg.activation_function)?,
        })
    }

    /// Scaled token embeddings plus the positions `start..start + len`.
    fn embed(&self, embedding: &EmbeddingTable, ids: &Tensor, start: usize) -> Result<Tensor> {
        let (_, len) = ids.dims2()?;
        let max = self.max_positions;
        if start.saturating_add(len) > max {
            return Err(Error::Input(format!("sequence of {} tokens exceeds the model's {max} positions", start + len)));
        }
        let tokens = (embedding.forward(ids)? * self.embed_scale)?;
        let positions = sinusoidal_positions(start, len, self.d_model)?.unsqueeze(0)?;
        Ok(tokens.broadcast_add(&positions)?)
    }
}

impl Seq2SeqModel for Marian {
    fn spec(&self) -> &Seq2SeqSpec {
        &self.spec
    }

    fn encode(&self, input_ids: &[u32]) -> Result<Tensor> {
        if input_ids.is_empty() {
            return Err(Error::Input("no input tokens".into()));
        }
        let ids = Tensor::new(input_ids, &Device::Cpu)?.unsqueeze(0)?;
        let mut x = self.embed(&self.encoder_embed, &ids, 0)?;
        for layer in &self.encoder {
            x = layer.forward(x, self.activation, NormPlacement::After)?;
        }
        Ok(x)
    }
}

impl Decoder for Marian {
    fn start(&self, encoded: &Tensor, beams: usize) -> Result<DecoderState> {
        DecoderState::start(self.decoder.iter().map(DecoderLayer::encoder_attention), encoded, beams)
    }

    fn decode(&self, state: &mut DecoderState, tokens: &[u32]) -> Result<Tensor> {
        let ids = state.token_ids(tokens)?;
        let new = ids.dim(1)?;
        let mask = causal_mask(state.position, new)?;
        let mut x = self.embed(&self.decoder_embed, &ids, state.position)?;
        for (layer, cache) in self.decoder.iter().zip(&mut state.layers) {
            x = layer.forward(x, mask.as_ref(), cache, self.activation, NormPlacement::After)?;
        }
        state.position += new;
        Ok(self.lm_head.forward(&x)?.to_dtype(DType::F32)?)
    }
}

/// Registry entry: a boxed Marian model.
pub fn load_seq2seq(config: &serde_json::Value, vb: Weights) -> Result<Box<dyn Seq2SeqModel>> {
    Ok(Box::new(Marian::load(config, vb)?))
}
