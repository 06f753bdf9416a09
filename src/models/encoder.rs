//! The post-LayerNorm transformer encoder that BERT and DistilBERT share; each model file only
//! says where its weights live (`EncoderNames`). Q, K and V are fused into one matmul at load.

use candle_core::{DType, Module, Tensor};
use candle_nn::{LayerNorm, Linear, VarBuilder};

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    Gelu,
    GeluTanh,
    Relu,
    Silu,
}

impl Activation {
    pub fn parse(name: &str) -> Result<Self> {
        Ok(match name {
            "gelu" => Activation::Gelu,
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Activation::GeluTanh,
            "relu" => Activation::Relu,
            "silu" | "swish" => Activation::Silu,
            other => return Err(Error::Config(format!("unsupported activation '{other}'"))),
        })
    }

    pub fn apply(self, xs: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Activation::Gelu => xs.gelu_erf(),
            Activation::GeluTanh => xs.gelu(),
            Activation::Relu => xs.relu(),
            Activation::Silu => xs.silu(),
        }
    }
}

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

/// LayerNorm under `weight`/`bias`, or `gamma`/`beta` as older checkpoints name it.
pub fn layer_norm(size: usize, eps: f64, vb: VarBuilder) -> Result<LayerNorm> {
    let (weight, bias) = match (vb.get(size, "weight"), vb.get(size, "bias")) {
        (Ok(w), Ok(b)) => (w, b),
        _ => (vb.get(size, "gamma")?, vb.get(size, "beta")?),
    };
    Ok(LayerNorm::new(weight, bias, eps))
}

pub fn linear(input: usize, output: usize, vb: VarBuilder) -> Result<Linear> {
    Ok(candle_nn::linear(input, output, vb)?)
}

struct Layer {
    qkv: Linear,
    attention_out: Linear,
    attention_norm: LayerNorm,
    ffn_in: Linear,
    ffn_out: Linear,
    output_norm: LayerNorm,
}

pub struct Encoder {
    layers: Vec<Layer>,
    heads: usize,
    activation: Activation,
}

impl Encoder {
    pub fn load(vb: VarBuilder, config: &EncoderConfig, names: &EncoderNames) -> Result<Self> {
        let (d, eps) = (config.hidden, config.layer_norm_eps);
        if config.heads == 0 || d % config.heads != 0 {
            return Err(Error::Config(format!("hidden size {d} is not divisible by {} heads", config.heads)));
        }
        let layers = (0..config.layers)
            .map(|i| {
                let vb = vb.pp(format!("{}.{i}", names.layer_prefix));
                let q = linear(d, d, vb.pp(names.query))?;
                let k = linear(d, d, vb.pp(names.key))?;
                let v = linear(d, d, vb.pp(names.value))?;
                let weight = Tensor::cat(&[q.weight(), k.weight(), v.weight()], 0)?;
                let bias = match (q.bias(), k.bias(), v.bias()) {
                    (Some(qb), Some(kb), Some(vb)) => Some(Tensor::cat(&[qb, kb, vb], 0)?),
                    _ => None,
                };
                Ok(Layer {
                    qkv: Linear::new(weight, bias),
                    attention_out: linear(d, d, vb.pp(names.attention_out))?,
                    attention_norm: layer_norm(d, eps, vb.pp(names.attention_norm))?,
                    ffn_in: linear(d, config.intermediate, vb.pp(names.ffn_in))?,
                    ffn_out: linear(config.intermediate, d, vb.pp(names.ffn_out))?,
                    output_norm: layer_norm(d, eps, vb.pp(names.output_norm))?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Encoder { layers, heads: config.heads, activation: config.activation })
    }

    /// `hidden`: (batch, seq, d); `attention_mask`: (batch, seq) of 1 (token) / 0 (padding).
    pub fn forward(&self, hidden: &Tensor, attention_mask: &Tensor) -> Result<Tensor> {
        let (b, s, d) = hidden.dims3()?;
        let (h, hd) = (self.heads, d / self.heads);
        let scale = 1.0 / (hd as f64).sqrt();
        // Additive mask (batch, 1, 1, seq): 0 for tokens, a huge negative for padding.
        let bias = ((attention_mask.to_dtype(DType::F32)? - 1.0)? * 1e30)?.reshape((b, 1, 1, s))?;
        let mut xs = hidden.clone();
        for layer in &self.layers {
            let qkv = layer.qkv.forward(&xs)?.reshape((b, s, 3, h, hd))?.permute((2, 0, 3, 1, 4))?;
            let q = (qkv.get(0)?.contiguous()? * scale)?;
            let k = qkv.get(1)?.contiguous()?;
            let v = qkv.get(2)?.contiguous()?;
            let scores = q.matmul(&k.t()?)?.broadcast_add(&bias)?;
            let probs = candle_nn::ops::softmax_last_dim(&scores)?;
            let context = probs.matmul(&v)?.transpose(1, 2)?.reshape((b, s, d))?;
            let attended = layer.attention_out.forward(&context)?;
            xs = layer.attention_norm.forward(&(attended + &xs)?)?;
            let ff = self.activation.apply(&layer.ffn_in.forward(&xs)?)?;
            let ff = layer.ffn_out.forward(&ff)?;
            xs = layer.output_norm.forward(&(ff + &xs)?)?;
        }
        Ok(xs)
    }
}

/// Hidden state of the first token ([CLS]) of every sequence: (batch, d).
pub fn first_token(hidden: &Tensor) -> Result<Tensor> {
    Ok(hidden.narrow(1, 0, 1)?.squeeze(1)?)
}
