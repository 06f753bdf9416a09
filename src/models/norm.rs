//! Normalisation layers and activations the architectures share.

use candle_core::{DType, Module, Tensor};
use crate::weights::Weights;

use crate::error::{Error, Result};

/// LayerNorm under `weight`/`bias`, or `gamma`/`beta` as older checkpoints (and CTranslate2) name it.
#[derive(Debug, Clone)]
pub struct LayerNorm(candle_nn::LayerNorm);

impl LayerNorm {
    pub fn new(weight: Tensor, bias: Tensor, eps: f64) -> Self {
        LayerNorm(candle_nn::LayerNorm::new(weight, bias, eps))
    }

    pub fn load(size: usize, eps: f64, vb: Weights) -> Result<Self> {
        let (weight, bias) = match (vb.get(size, "weight"), vb.get(size, "bias")) {
            (Ok(w), Ok(b)) => (w, b),
            _ => (vb.get(size, "gamma")?, vb.get(size, "beta")?),
        };
        Ok(LayerNorm::new(weight, bias, eps))
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(self.0.forward(x)?)
    }
}

/// T5's RMSNorm: scale only, no mean subtraction, no bias.
#[derive(Debug, Clone)]
pub struct RmsNorm {
    weight: Tensor,
    eps: f32,
}

impl RmsNorm {
    pub fn load(size: usize, eps: f64, vb: Weights) -> Result<Self> {
        Ok(RmsNorm { weight: vb.get(size, "weight")?, eps: eps as f32 })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(candle_nn::ops::rms_norm(x, &self.weight, self.eps)?)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    Gelu,
    GeluTanh,
    Relu,
    Silu,
    Tanh,
}

impl Activation {
    /// transformers' `ACT2FN` names.
    pub fn parse(name: &str) -> Result<Self> {
        Ok(match name {
            "gelu" => Activation::Gelu,
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Activation::GeluTanh,
            "relu" => Activation::Relu,
            "silu" | "swish" => Activation::Silu,
            "tanh" => Activation::Tanh,
            other => return Err(Error::Config(format!("unsupported activation '{other}'"))),
        })
    }

    /// The activation as a pass over values in place, where the crate has its own (vectorised,
    /// libm-free: [`super::activations`]); None where candle's op is used.
    pub fn in_place(self) -> Option<fn(&mut [f32])> {
        match self {
            Activation::Gelu => Some(super::activations::gelu_erf_in_place),
            Activation::Silu => Some(super::activations::silu_in_place),
            Activation::GeluTanh | Activation::Relu | Activation::Tanh => None,
        }
    }

    pub fn apply(self, xs: &Tensor) -> Result<Tensor> {
        Ok(match (self, self.in_place()) {
            (_, Some(pass)) => {
                let mut values = xs.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
                pass(&mut values);
                Tensor::from_vec(values, xs.shape(), xs.device())?.to_dtype(xs.dtype())?
            }
            (Activation::GeluTanh, None) => xs.gelu()?,
            (Activation::Relu, None) => xs.relu()?,
            (Activation::Tanh, None) => xs.tanh()?,
            // These two have passes (above); the match just names candle's equivalents.
            (Activation::Gelu, None) => xs.gelu_erf()?,
            (Activation::Silu, None) => xs.silu()?,
        })
    }
}
