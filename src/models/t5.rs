//! T5 (google-t5/t5-small and the like): pre-RMSNorm transformer encoder-decoder without biases
//! or score scaling, relative position buckets (a learned bias per bucket and head in each
//! stack's first layer, shared by the stack's layers), ReLU or gated-GELU feed-forwards, and a
//! head that is the shared embedding (unless the checkpoint has `lm_head.weight`), optionally
//! preceded by scaling the decoder output by d_model^-0.5 (`scale_decoder_outputs`, which older
//! configs imply through `tie_word_embeddings`).

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::Embedding;

use serde::Deserialize;

use super::attention::{causal_mask, Attention, AttentionKind, Decoder, DecoderState};
use super::embeddings::EmbeddingTable;
use super::linear::Linear;
use super::norm::{Activation, RmsNorm};
use super::seq2seq::{Seq2SeqModel, Seq2SeqSpec};
use crate::error::{Error, Result};
use crate::weights::Weights;

/// `T5Config.n_positions`' default in transformers: the longest input and output hubside runs.
pub const DEFAULT_POSITIONS: usize = 512;

fn default_buckets() -> usize {
    32
}
fn default_max_distance() -> usize {
    128
}
fn default_eps() -> f64 {
    1e-6
}
fn default_ff() -> String {
    "relu".into()
}
fn default_true() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
pub struct T5Config {
    pub vocab_size: usize,
    pub d_model: usize,
    pub d_kv: usize,
    pub d_ff: usize,
    pub num_layers: usize,
    #[serde(default)]
    pub num_decoder_layers: Option<usize>,
    pub num_heads: usize,
    #[serde(default = "default_buckets")]
    pub relative_attention_num_buckets: usize,
    #[serde(default = "default_max_distance")]
    pub relative_attention_max_distance: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_epsilon: f64,
    #[serde(default = "default_ff")]
    pub feed_forward_proj: String,
    #[serde(default)]
    pub dense_act_fn: Option<String>,
    #[serde(default = "default_true")]
    pub tie_word_embeddings: bool,
    #[serde(default)]
    pub scale_decoder_outputs: Option<bool>,
    #[serde(default)]
    pub pad_token_id: Option<u32>,
    #[serde(default)]
    pub eos_token_id: Option<serde_json::Value>,
    #[serde(default)]
    pub decoder_start_token_id: Option<u32>,
    #[serde(default)]
    pub n_positions: Option<usize>,
}

enum FeedForward {
    Plain { wi: Linear, wo: Linear },
    Gated { wi_0: Linear, wi_1: Linear, wo: Linear },
}

struct Block {
    self_attn: Attention,
    self_norm: RmsNorm,
    /// Decoder blocks only.
    cross: Option<(Attention, RmsNorm)>,
    ff: FeedForward,
    ff_norm: RmsNorm,
}

struct Stack {
    blocks: Vec<Block>,
    /// (buckets, heads)
    relative_bias: Embedding,
    final_norm: RmsNorm,
}

pub struct T5 {
    spec: Seq2SeqSpec,
    shared: EmbeddingTable,
    encoder: Stack,
    decoder: Stack,
    /// (vocab, d_model)
    lm_head: Linear,
    output_scale: Option<f64>,
    activation: Activation,
    num_buckets: usize,
    max_distance: usize,
}

fn no_bias(input: usize, output: usize, vb: Weights) -> Result<Linear> {
    Linear::load_no_bias(input, output, vb)
}

/// `T5Attention._relative_position_bucket` (relative position = key − query), with the large
/// distances bucketed logarithmically in f32 as torch computes them.
pub fn relative_position_bucket(relative: i64, bidirectional: bool, num_buckets: usize, max_distance: usize) -> usize {
    let mut buckets = num_buckets as i64;
    let mut bucket = 0i64;
    let distance = if bidirectional {
        buckets /= 2;
        if relative > 0 {
            bucket += buckets;
        }
        relative.abs()
    } else {
        (-relative).max(0)
    };
    let max_exact = buckets / 2;
    if distance < max_exact {
        return (bucket + distance) as usize;
    }
    let log_ratio = ((distance as f32) / (max_exact as f32)).ln();
    let log_max = ((max_distance as f64) / (max_exact as f64)).ln() as f32;
    let large = max_exact + (log_ratio / log_max * (buckets - max_exact) as f32) as i64;
    (bucket + large.min(buckets - 1)) as usize
}

impl T5 {
    pub fn load(config: &serde_json::Value, vb: Weights) -> Result<Self> {
        let cfg: T5Config = super::parse_config(config)?;
        // Bidirectional buckets are halved and halved again (`relative_position_bucket`): fewer
        // than 4 leave no exact bucket and index outside the bias table.
        if cfg.relative_attention_num_buckets < 4 {
            return Err(Error::Config(format!("relative_attention_num_buckets is {}; T5 needs at least 4", cfg.relative_attention_num_buckets)));
        }
        // Distances past the exact buckets are bucketed by log(distance / exact) / log(max_distance
        // / exact), which is negative (a bucket below 0) unless max_distance exceeds them.
        if cfg.relative_attention_max_distance <= cfg.relative_attention_num_buckets / 2 {
            return Err(Error::Config(format!(
                "relative_attention_max_distance is {}; it must exceed half of relative_attention_num_buckets ({})",
                cfg.relative_attention_max_distance, cfg.relative_attention_num_buckets
            )));
        }
        let (d, heads, d_kv) = (cfg.d_model, cfg.num_heads, cfg.d_kv);
        let inner = heads * d_kv;
        let gated = cfg.feed_forward_proj.starts_with("gated-");
        let act_name = cfg.feed_forward_proj.rsplit('-').next().unwrap_or("relu");
        let act_name = cfg.dense_act_fn.clone().unwrap_or_else(|| {
            if gated && act_name == "gelu" { "gelu_new".to_string() } else { act_name.to_string() }
        });
        let activation = Activation::parse(&act_name)?;

        let shared_name = ["shared.weight", "encoder.embed_tokens.weight", "decoder.embed_tokens.weight"]
            .into_iter()
            .find(|n| vb.contains_tensor(n))
            .ok_or_else(|| Error::Config("T5 weights have no shared.weight".into()))?;
        // Without an lm_head the shared embedding is the output projection (Weights::output_matrix).
        let (shared, lm_head) = if vb.contains_tensor("lm_head.weight") && !vb.same_data("lm_head.weight", shared_name) {
            (vb.matrix((cfg.vocab_size, d), shared_name)?, vb.output_matrix((cfg.vocab_size, d), "lm_head.weight")?)
        } else {
            let shared = vb.output_matrix((cfg.vocab_size, d), shared_name)?;
            (shared.clone(), shared)
        };

        // No score scaling: T5 folds it into the weights' initialisation.
        let attention = |vb: Weights, kind: AttentionKind| -> Result<Attention> {
            let (q, k, v) = (no_bias(d, inner, vb.pp("q"))?, no_bias(d, inner, vb.pp("k"))?, no_bias(d, inner, vb.pp("v"))?);
            Attention::new(&vb, kind, q, k, v, no_bias(inner, d, vb.pp("o"))?, heads, 1.0)
        };
        let feed_forward = |vb: Weights| -> Result<FeedForward> {
            Ok(if gated {
                FeedForward::Gated {
                    wi_0: no_bias(d, cfg.d_ff, vb.pp("wi_0"))?,
                    wi_1: no_bias(d, cfg.d_ff, vb.pp("wi_1"))?,
                    wo: no_bias(cfg.d_ff, d, vb.pp("wo"))?,
                }
            } else {
                FeedForward::Plain { wi: no_bias(d, cfg.d_ff, vb.pp("wi"))?, wo: no_bias(cfg.d_ff, d, vb.pp("wo"))? }
            })
        };
        let eps = cfg.layer_norm_epsilon;
        let stack = |name: &str, layers: usize, decoder: bool| -> Result<Stack> {
            let vb = vb.pp(name);
            let blocks = (0..layers)
                .map(|i| {
                    let vb = vb.pp(format!("block.{i}.layer"));
                    let ff_index = if decoder { 2 } else { 1 };
                    Ok(Block {
                        self_attn: attention(vb.pp("0.SelfAttention"), AttentionKind::SelfAttention)?,
                        self_norm: RmsNorm::load(d, eps, vb.pp("0.layer_norm"))?,
                        cross: if decoder {
                            Some((attention(vb.pp("1.EncDecAttention"), AttentionKind::CrossAttention)?, RmsNorm::load(d, eps, vb.pp("1.layer_norm"))?))
                        } else {
                            None
                        },
                        ff: feed_forward(vb.pp(format!("{ff_index}.DenseReluDense")))?,
                        ff_norm: RmsNorm::load(d, eps, vb.pp(format!("{ff_index}.layer_norm")))?,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            let relative_bias = vb.get(
                (cfg.relative_attention_num_buckets, heads),
                "block.0.layer.0.SelfAttention.relative_attention_bias.weight",
            )?;
            Ok(Stack {
                blocks,
                relative_bias: Embedding::new(relative_bias, heads),
                final_norm: RmsNorm::load(d, eps, vb.pp("final_layer_norm"))?,
            })
        };
        let encoder = stack("encoder", cfg.num_layers, false)?;
        let decoder = stack("decoder", cfg.num_decoder_layers.unwrap_or(cfg.num_layers), true)?;

        let pad = cfg.pad_token_id.unwrap_or(0);
        let eos_ids = match &cfg.eos_token_id {
            Some(serde_json::Value::Array(ids)) => ids.iter().filter_map(|v| v.as_u64()).filter_map(|v| u32::try_from(v).ok()).collect(),
            Some(v) => v.as_u64().and_then(|v| u32::try_from(v).ok()).map(|v| vec![v]).unwrap_or_else(|| vec![1]),
            None => vec![1],
        };
        let spec = Seq2SeqSpec {
            model_type: "t5".into(),
            decoder_start_id: cfg.decoder_start_token_id.unwrap_or(pad),
            eos_ids,
            pad_id: Some(pad),
            suppress_ids: Vec::new(),
            vocab_size: cfg.vocab_size,
            // Relative positions set no hard limit, but attention grows with the square of the
            // length: inputs are split and outputs capped at `n_positions` (transformers' T5Config
            // default, 512, when the config has none), so neither a long text nor an unreachable
            // eos can make the model allocate or loop without bound.
            max_input_positions: Some(cfg.n_positions.unwrap_or(DEFAULT_POSITIONS)),
            max_target_positions: Some(cfg.n_positions.unwrap_or(DEFAULT_POSITIONS)),
        };
        let scale = cfg.scale_decoder_outputs.unwrap_or(cfg.tie_word_embeddings);
        Ok(T5 {
            spec,
            shared: EmbeddingTable::new(shared),
            encoder,
            decoder,
            lm_head: Linear::from_matrix(lm_head, None)?,
            output_scale: scale.then(|| (d as f64).powf(-0.5)),
            activation,
            num_buckets: cfg.relative_attention_num_buckets,
            max_distance: cfg.relative_attention_max_distance,
        })
    }

    /// Position bias (1, heads, queries, keys) for query positions `q_start..q_start + q_len`
    /// over key positions `0..k_len`.
    fn position_bias(&self, table: &Embedding, q_start: usize, q_len: usize, k_len: usize, bidirectional: bool) -> Result<Tensor> {
        let mut buckets = Vec::with_capacity(q_len * k_len);
        for q in q_start..q_start + q_len {
            for k in 0..k_len {
                let bucket = relative_position_bucket(k as i64 - q as i64, bidirectional, self.num_buckets, self.max_distance);
                buckets.push(bucket as u32);
            }
        }
        let buckets = Tensor::from_vec(buckets, (q_len, k_len), &Device::Cpu)?;
        // (q, k, heads) → (1, heads, q, k)
        Ok(table.forward(&buckets)?.permute((2, 0, 1))?.unsqueeze(0)?.contiguous()?)
    }

    fn feed_forward(&self, ff: &FeedForward, x: &Tensor) -> Result<Tensor> {
        match ff {
            FeedForward::Plain { wi, wo } => wo.forward(&wi.forward_then(x, self.activation)?),
            FeedForward::Gated { wi_0, wi_1, wo } => {
                let gate = wi_0.forward_then(x, self.activation)?;
                wo.forward(&(gate * wi_1.forward(x)?)?)
            }
        }
    }
}

impl Seq2SeqModel for T5 {
    fn spec(&self) -> &Seq2SeqSpec {
        &self.spec
    }

    fn encode(&self, input_ids: &[u32]) -> Result<Tensor> {
        if input_ids.is_empty() {
            return Err(Error::Input("no input tokens".into()));
        }
        let n = input_ids.len();
        let ids = Tensor::new(input_ids, &Device::Cpu)?.unsqueeze(0)?;
        let mut x = self.shared.forward(&ids)?;
        let bias = self.position_bias(&self.encoder.relative_bias, 0, n, n, true)?;
        for block in &self.encoder.blocks {
            let normed = block.self_norm.forward(&x)?;
            x = (x + block.self_attn.forward_self(&normed, Some(&bias), None)?)?;
            let ff = self.feed_forward(&block.ff, &block.ff_norm.forward(&x)?)?;
            x = (x + ff)?;
        }
        self.encoder.final_norm.forward(&x)
    }
}

impl Decoder for T5 {
    fn start(&self, encoded: &Tensor, beams: usize) -> Result<DecoderState> {
        // Every decoder block is built with cross-attention.
        let cross = self.decoder.blocks.iter().filter_map(|block| block.cross.as_ref().map(|(attention, _)| attention));
        DecoderState::start(cross, encoded, beams)
    }

    fn decode(&self, state: &mut DecoderState, tokens: &[u32]) -> Result<Tensor> {
        let ids = state.token_ids(tokens)?;
        let (pos, new) = (state.position, ids.dim(1)?);
        let mut x = self.shared.forward(&ids)?;
        let mut bias = self.position_bias(&self.decoder.relative_bias, pos, new, pos + new, false)?;
        if let Some(mask) = causal_mask(pos, new)? {
            bias = bias.broadcast_add(&mask)?;
        }
        for (block, cache) in self.decoder.blocks.iter().zip(&mut state.layers) {
            let normed = block.self_norm.forward(&x)?;
            x = (&x + block.self_attn.forward_self(&normed, Some(&bias), Some(&mut cache.self_kv))?)?;
            let (attn, norm) = block.cross.as_ref().ok_or_else(|| Error::Config("a T5 decoder block without cross-attention".into()))?;
            x = (&x + attn.forward_cross(&norm.forward(&x)?, &cache.cross_kv)?)?;
            let ff = self.feed_forward(&block.ff, &block.ff_norm.forward(&x)?)?;
            x = (x + ff)?;
        }
        state.position += new;
        let mut hidden = self.decoder.final_norm.forward(&x)?;
        if let Some(scale) = self.output_scale {
            hidden = (hidden * scale)?;
        }
        Ok(self.lm_head.forward(&hidden)?.to_dtype(DType::F32)?)
    }
}

/// Registry entry: a boxed T5 model.
pub fn load_seq2seq(config: &serde_json::Value, vb: Weights) -> Result<Box<dyn Seq2SeqModel>> {
    Ok(Box::new(T5::load(config, vb)?))
}

#[cfg(test)]
mod tests {
    use super::relative_position_bucket;

    #[test]
    fn buckets_match_transformers() {
        // transformers' T5Attention._relative_position_bucket evaluated in f32 (32 buckets, 128).
        let bi: Vec<usize> = [-200, -128, -64, -20, -8, -7, -1, 0, 1, 7, 8, 20, 64, 128, 200]
            .iter()
            .map(|&r| relative_position_bucket(r, true, 32, 128))
            .collect();
        assert_eq!(bi, [15, 15, 14, 10, 8, 7, 1, 0, 17, 23, 24, 26, 30, 31, 31]);
        let causal: Vec<usize> =
            [-200, -64, -20, -16, -15, -1, 0, 5].iter().map(|&r| relative_position_bucket(r, false, 32, 128)).collect();
        assert_eq!(causal, [31, 26, 17, 16, 15, 1, 0, 0]);
        // Exactly on a bucket boundary: ln(8) / ln(64) * 2 must come out as 1.0.
        let small: Vec<usize> = [-16, -15, 15, 16].iter().map(|&r| relative_position_bucket(r, true, 8, 128)).collect();
        assert_eq!(small, [3, 2, 6, 7]);
    }
}
