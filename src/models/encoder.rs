//! The post-LayerNorm transformer encoder that BERT, DistilBERT and DeBERTa share; each model file
//! only says where its weights live (`EncoderNames`) and, for DeBERTa, adds its relative-position
//! terms to the attention scores and its convolution after the first layer (`forward_with`).

use candle_core::{DType, Tensor};
use crate::weights::Weights;

use super::attention::{Attention, AttentionKind};
use super::linear::Linear;
use super::norm::{Activation, LayerNorm};
use crate::error::Result;

pub struct EncoderConfig {
    pub hidden: usize,
    pub heads: usize,
    pub intermediate: usize,
    pub layers: usize,
    pub activation: Activation,
    pub layer_norm_eps: f64,
}

/// Weight names inside one layer, relative to the layer's prefix.
pub struct EncoderNames {
    pub layer_prefix: &'static str,
    pub query: &'static str,
    pub key: &'static str,
    pub value: &'static str,
    pub attention_out: &'static str,
    pub attention_norm: &'static str,
    pub ffn_in: &'static str,
    pub ffn_out: &'static str,
    pub output_norm: &'static str,
}

/// A score term for attention: (layer index, the layer's attention, q, k) → a term added to q kᵀ
/// (see `Attention::forward_self_with`).
pub type ScoreTerms<'a> = &'a dyn Fn(usize, &Attention, &Tensor, &Tensor) -> Result<Tensor>;
/// A layer's output rewritten: (layer index, the layer's output) → what the next layer gets.
pub type AfterLayer<'a> = &'a dyn Fn(usize, &Tensor) -> Result<Tensor>;

/// What a model adds to the shared layers.
#[derive(Default)]
pub struct LayerHooks<'a> {
    pub score_terms: Option<ScoreTerms<'a>>,
    pub after_layer: Option<AfterLayer<'a>>,
}

struct Layer {
    attention: Attention,
    attention_norm: LayerNorm,
    ffn_in: Linear,
    ffn_out: Linear,
    output_norm: LayerNorm,
}

pub struct Encoder {
    layers: Vec<Layer>,
    activation: Activation,
}

impl Encoder {
    pub fn load(vb: Weights, config: &EncoderConfig, names: &EncoderNames) -> Result<Self> {
        Encoder::load_scaled(vb, config, names, Attention::default_scale(config.hidden, config.heads))
    }

    /// `load` with attention scores multiplied by `scale` rather than 1/√head_dim (DeBERTa divides
    /// by √(head_dim · the number of score terms)).
    pub fn load_scaled(vb: Weights, config: &EncoderConfig, names: &EncoderNames, scale: f32) -> Result<Self> {
        let (d, eps) = (config.hidden, config.layer_norm_eps);
        let layers = (0..config.layers)
            .map(|i| {
                let vb = vb.pp(format!("{}.{i}", names.layer_prefix));
                let attention = Attention::new(
                    &vb,
                    AttentionKind::SelfAttention,
                    Linear::load(d, d, vb.pp(names.query))?,
                    Linear::load(d, d, vb.pp(names.key))?,
                    Linear::load(d, d, vb.pp(names.value))?,
                    Linear::load(d, d, vb.pp(names.attention_out))?,
                    config.heads,
                    scale,
                )?;
                Ok(Layer {
                    attention,
                    attention_norm: LayerNorm::load(d, eps, vb.pp(names.attention_norm))?,
                    ffn_in: Linear::load(d, config.intermediate, vb.pp(names.ffn_in))?,
                    ffn_out: Linear::load(config.intermediate, d, vb.pp(names.ffn_out))?,
                    output_norm: LayerNorm::load(d, eps, vb.pp(names.output_norm))?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Encoder { layers, activation: config.activation })
    }

    /// `hidden`: (batch, seq, d); `attention_mask`: (batch, seq) of 1 (token) / 0 (padding).
    pub fn forward(&self, hidden: &Tensor, attention_mask: &Tensor) -> Result<Tensor> {
        self.forward_with(hidden, attention_mask, &LayerHooks::default())
    }

    /// `forward` with what a model adds to the layers (DeBERTa's relative-position score terms
    /// and convolution).
    pub fn forward_with(&self, hidden: &Tensor, attention_mask: &Tensor, hooks: &LayerHooks) -> Result<Tensor> {
        let (b, s, _) = hidden.dims3()?;
        // Additive mask (batch, 1, 1, seq): 0 for tokens, a huge negative for padding.
        let bias = ((attention_mask.to_dtype(DType::F32)? - 1.0)? * 1e30)?.reshape((b, 1, 1, s))?;
        let mut xs = hidden.clone();
        for (i, layer) in self.layers.iter().enumerate() {
            let attended = match hooks.score_terms {
                None => layer.attention.forward_self(&xs, Some(&bias), None)?,
                Some(terms) => layer.attention.forward_self_with(&xs, Some(&bias), |q, k| terms(i, &layer.attention, q, k))?,
            };
            xs = layer.attention_norm.forward(&(attended + &xs)?)?;
            let ff = layer.ffn_in.forward_then(&xs, self.activation)?;
            xs = layer.output_norm.forward(&layer.ffn_out.forward_plus(&ff, &xs)?)?;
            if let Some(after_layer) = hooks.after_layer {
                xs = after_layer(i, &xs)?;
            }
        }
        Ok(xs)
    }
}

/// Hidden state of the first token ([CLS]) of every sequence: (batch, d).
pub fn first_token(hidden: &Tensor) -> Result<Tensor> {
    Ok(hidden.narrow(1, 0, 1)?.squeeze(1)?)
}
