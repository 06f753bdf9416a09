//! M2M100 (facebook/m2m100_*) and NLLB-200 (facebook/nllb-200-*, the same class and
//! `model_type`): a pre-LayerNorm transformer encoder-decoder (BART-family layers shared with
//! Marian, LayerNorm before each block), a final LayerNorm after each stack, embeddings scaled by
//! sqrt(d_model) (`scale_embedding`) and shared by encoder, decoder and output projection, ReLU
//! feed-forwards, and fairseq's sinusoidal positions (`M2M100SinusoidalPositionalEmbedding`): not
//! stored in checkpoints, sines in the first half of a row and cosines in the second, rows
//! numbered from `pad_token_id + 1` over the non-pad tokens, and a pad token's row zero.

use candle_core::{DType, Device, Tensor};

use serde::Deserialize;

use super::attention::{causal_mask, Decoder, DecoderState};
use super::embeddings::EmbeddingTable;
use super::linear::Linear;
use super::marian::{first_of, DecoderLayer, EncoderLayer, NormPlacement};
use super::norm::{Activation, LayerNorm};
use super::seq2seq::{Seq2SeqModel, Seq2SeqSpec};
use crate::error::{Error, Result};
use crate::weights::Weights;

fn default_activation() -> String {
    "relu".into()
}
fn default_true() -> bool {
    true
}
fn default_pad() -> u32 {
    1
}
fn default_eos() -> u32 {
    2
}

/// `M2M100Config`, the fields hubside reads (defaults as transformers').
#[derive(Debug, Clone, Deserialize)]
pub struct M2M100Config {
    pub vocab_size: usize,
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
    #[serde(default = "default_pad")]
    pub pad_token_id: u32,
    #[serde(default = "default_eos")]
    pub eos_token_id: u32,
    #[serde(default)]
    pub decoder_start_token_id: Option<u32>,
    #[serde(default = "default_true")]
    pub scale_embedding: bool,
    #[serde(default = "default_true")]
    pub tie_word_embeddings: bool,
}

/// nn.LayerNorm's default: M2M100 does not configure it.
const LAYER_NORM_EPS: f64 = 1e-5;

pub struct M2M100 {
    spec: Seq2SeqSpec,
    embed: EmbeddingTable,
    embed_scale: f64,
    /// `pad_token_id`: positions count from it, and its own row is zero.
    padding_idx: u32,
    max_positions: usize,
    d_model: usize,
    encoder: Vec<EncoderLayer>,
    encoder_norm: LayerNorm,
    decoder: Vec<DecoderLayer>,
    decoder_norm: LayerNorm,
    /// (vocab, d_model), no bias.
    lm_head: Linear,
    activation: Activation,
}

/// `M2M100SinusoidalPositionalEmbedding.get_embedding`'s rows `rows` (a pad row is zero),
/// computed as torch does it, in f32: frequencies exp(-i·ln(10000)/(half − 1)), angles
/// row · frequency, then sin and cos.
pub fn sinusoidal_rows(rows: &[u32], dim: usize, padding_idx: u32) -> Result<Tensor> {
    let half = dim / 2;
    if half < 2 {
        return Err(Error::Config(format!("d_model {dim} is too small for sinusoidal positions (at least 4)")));
    }
    let step = -(10000f64.ln() / (half - 1) as f64) as f32;
    let frequencies: Vec<f32> = (0..half).map(|i| (i as f32 * step).exp()).collect();
    let mut table = vec![0f32; rows.len() * dim];
    for (out, &row) in table.chunks_exact_mut(dim).zip(rows) {
        if row == padding_idx {
            continue;
        }
        for (i, &frequency) in frequencies.iter().enumerate() {
            let angle = row as f32 * frequency;
            out[i] = angle.sin();
            out[half + i] = angle.cos();
        }
    }
    Ok(Tensor::from_vec(table, (rows.len(), dim), &Device::Cpu)?)
}

/// `create_position_ids_from_input_ids`: after `past` earlier tokens, each non-pad token's row is
/// `padding_idx` + its 1-based count among the non-pad tokens (the earlier ones counted as
/// non-pad, as transformers counts the cache), a pad token's row is `padding_idx`.
pub fn position_rows(ids: &[u32], past: usize, padding_idx: u32) -> Vec<u32> {
    let mut count = past as u32;
    ids.iter()
        .map(|&id| {
            if id == padding_idx {
                padding_idx
            } else {
                count += 1;
                padding_idx + count
            }
        })
        .collect()
}

impl M2M100 {
    pub fn load(config: &serde_json::Value, vb: Weights) -> Result<Self> {
        let cfg: M2M100Config = super::parse_config(config)?;
        let d = cfg.d_model;
        let decoder_start_id = cfg.decoder_start_token_id.unwrap_or(cfg.eos_token_id);
        for (field, id) in [("pad_token_id", cfg.pad_token_id), ("eos_token_id", cfg.eos_token_id), ("decoder_start_token_id", decoder_start_id)] {
            if id as usize >= cfg.vocab_size {
                return Err(Error::Config(format!("config.json: {field} {id} is not below vocab_size {}", cfg.vocab_size)));
            }
        }
        // One table for encoder, decoder and (tied) output: checkpoints store it as
        // `model.shared.weight`, some also under the other names.
        let shared_name = first_of(
            &vb,
            &["model.shared.weight", "model.encoder.embed_tokens.weight", "model.decoder.embed_tokens.weight", "lm_head.weight"],
        )?;
        let (embed, lm_head) = if cfg.tie_word_embeddings || vb.same_data("lm_head.weight", shared_name) {
            let shared = vb.output_matrix((cfg.vocab_size, d), shared_name)?;
            (shared.clone(), shared)
        } else {
            (vb.matrix((cfg.vocab_size, d), shared_name)?, vb.output_matrix((cfg.vocab_size, d), "lm_head.weight")?)
        };
        let encoder = (0..cfg.encoder_layers)
            .map(|i| {
                let vb = vb.pp(format!("model.encoder.layers.{i}"));
                EncoderLayer::load(d, cfg.encoder_attention_heads, cfg.encoder_ffn_dim, LAYER_NORM_EPS, vb)
            })
            .collect::<Result<Vec<_>>>()?;
        let decoder = (0..cfg.decoder_layers)
            .map(|i| {
                let vb = vb.pp(format!("model.decoder.layers.{i}"));
                DecoderLayer::load(d, cfg.decoder_attention_heads, cfg.decoder_ffn_dim, LAYER_NORM_EPS, vb)
            })
            .collect::<Result<Vec<_>>>()?;
        // Positions run from padding_idx + 1 to max_position_embeddings + padding_idx.
        let spec = Seq2SeqSpec {
            model_type: "m2m_100".into(),
            decoder_start_id,
            eos_ids: vec![cfg.eos_token_id],
            pad_id: Some(cfg.pad_token_id),
            suppress_ids: Vec::new(),
            vocab_size: cfg.vocab_size,
            max_input_positions: Some(cfg.max_position_embeddings),
            max_target_positions: Some(cfg.max_position_embeddings),
        };
        sinusoidal_rows(&[], d, cfg.pad_token_id)?;
        Ok(M2M100 {
            spec,
            embed: EmbeddingTable::new(embed),
            embed_scale: if cfg.scale_embedding { (d as f64).sqrt() } else { 1.0 },
            padding_idx: cfg.pad_token_id,
            max_positions: cfg.max_position_embeddings,
            d_model: d,
            encoder,
            encoder_norm: LayerNorm::load(d, LAYER_NORM_EPS, vb.pp("model.encoder.layer_norm"))?,
            decoder,
            decoder_norm: LayerNorm::load(d, LAYER_NORM_EPS, vb.pp("model.decoder.layer_norm"))?,
            lm_head: Linear::from_matrix(lm_head, None)?,
            activation: Activation::parse(&cfg.activation_function)?,
        })
    }

    /// Scaled token embeddings plus positions for `ids` (beams, len) after `past` tokens.
    fn embed(&self, ids: &Tensor, past: usize) -> Result<Tensor> {
        let (beams, len) = ids.dims2()?;
        if past.saturating_add(len) > self.max_positions {
            return Err(Error::Input(format!(
                "sequence of {} tokens exceeds the model's {} positions",
                past + len,
                self.max_positions
            )));
        }
        let tokens = (self.embed.forward(ids)? * self.embed_scale)?;
        let flat = ids.flatten_all()?.to_vec1::<u32>()?;
        let rows: Vec<u32> = flat.chunks(len.max(1)).flat_map(|beam| position_rows(beam, past, self.padding_idx)).collect();
        let positions = sinusoidal_rows(&rows, self.d_model, self.padding_idx)?.reshape((beams, len, self.d_model))?;
        Ok((tokens + positions)?)
    }
}

impl Seq2SeqModel for M2M100 {
    fn spec(&self) -> &Seq2SeqSpec {
        &self.spec
    }

    fn encode(&self, input_ids: &[u32]) -> Result<Tensor> {
        if input_ids.is_empty() {
            return Err(Error::Input("no input tokens".into()));
        }
        let ids = Tensor::new(input_ids, &Device::Cpu)?.unsqueeze(0)?;
        let mut x = self.embed(&ids, 0)?;
        for layer in &self.encoder {
            x = layer.forward(x, self.activation, NormPlacement::Before)?;
        }
        self.encoder_norm.forward(&x)
    }
}

impl Decoder for M2M100 {
    fn start(&self, encoded: &Tensor, beams: usize) -> Result<DecoderState> {
        DecoderState::start(self.decoder.iter().map(DecoderLayer::encoder_attention), encoded, beams)
    }

    fn decode(&self, state: &mut DecoderState, tokens: &[u32]) -> Result<Tensor> {
        let ids = state.token_ids(tokens)?;
        let new = ids.dim(1)?;
        let mask = causal_mask(state.position, new)?;
        let mut x = self.embed(&ids, state.position)?;
        for (layer, cache) in self.decoder.iter().zip(&mut state.layers) {
            x = layer.forward(x, mask.as_ref(), cache, self.activation, NormPlacement::Before)?;
        }
        state.position += new;
        Ok(self.lm_head.forward(&self.decoder_norm.forward(&x)?)?.to_dtype(DType::F32)?)
    }
}

/// Registry entry: a boxed M2M100 / NLLB model.
pub fn load_seq2seq(config: &serde_json::Value, vb: Weights) -> Result<Box<dyn Seq2SeqModel>> {
    Ok(Box::new(M2M100::load(config, vb)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_skip_pads_and_continue_after_the_cache() {
        assert_eq!(position_rows(&[5, 6, 7], 0, 1), [2, 3, 4]);
        assert_eq!(position_rows(&[5, 1, 7], 0, 1), [2, 1, 3]);
        assert_eq!(position_rows(&[9], 4, 1), [6]);
        assert_eq!(position_rows(&[1], 4, 1), [1]);
    }

    #[test]
    fn sinusoids_are_fairseqs() {
        let rows = sinusoidal_rows(&[1, 2], 8, 1).unwrap().to_vec2::<f32>().unwrap();
        assert_eq!(rows[0], [0.0; 8], "the pad row is zero");
        // Row 2, frequency i: exp(-i ln(10000) / 3).
        for i in 0..4 {
            let angle = 2.0 * (-(i as f64) * 10000f64.ln() / 3.0).exp();
            assert!((rows[1][i] as f64 - angle.sin()).abs() < 1e-6);
            assert!((rows[1][4 + i] as f64 - angle.cos()).abs() < 1e-6);
        }
        assert!(matches!(sinusoidal_rows(&[2], 2, 1), Err(Error::Config(_))));
    }
}
