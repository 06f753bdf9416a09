//! `Linear`: the one layer type through which every weight matrix is applied (attention
//! projections, feed-forwards, classifier heads, tied output projections). Keeping this the single
//! place means the storage of weights (f32 today; f16/q8/q4 next) changes in one file.

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;

use crate::error::{Error, Result};

/// y = x Wᵀ + b for W (out, in), b (out).
#[derive(Debug, Clone)]
pub struct Linear {
    weight: Tensor,
    bias: Option<Tensor>,
}

impl Linear {
    /// From tensors already in memory; W must be (out, in) and b (out).
    pub fn new(weight: Tensor, bias: Option<Tensor>) -> Result<Self> {
        let (out, _) = weight.dims2().map_err(|_| Error::Config(format!("a weight matrix must have 2 dimensions, not shape {:?}", weight.dims())))?;
        if let Some(b) = &bias {
            if b.dims() != [out] {
                return Err(Error::Config(format!("bias of shape {:?} for {out} outputs", b.dims())));
            }
        }
        Ok(Linear { weight, bias })
    }

    /// `{prefix}.weight` (out, in) and `{prefix}.bias` (out).
    pub fn load(input: usize, output: usize, vb: VarBuilder) -> Result<Self> {
        let weight = vb.get((output, input), "weight")?;
        let bias = vb.get(output, "bias")?;
        Linear::new(weight, Some(bias))
    }

    /// `{prefix}.weight` only (T5).
    pub fn load_no_bias(input: usize, output: usize, vb: VarBuilder) -> Result<Self> {
        Linear::new(vb.get((output, input), "weight")?, None)
    }

    /// Several layers over the same input as one: outputs stacked in order (fused q/k/v); a
    /// missing bias is zero.
    pub fn fuse(parts: &[Linear]) -> Result<Self> {
        let weights: Vec<&Tensor> = parts.iter().map(|l| &l.weight).collect();
        let bias = if parts.iter().all(|l| l.bias.is_none()) {
            None
        } else {
            let biases = parts
                .iter()
                .map(|l| match &l.bias {
                    Some(b) => Ok(b.clone()),
                    None => Tensor::zeros(l.out_features(), DType::F32, &Device::Cpu),
                })
                .collect::<candle_core::Result<Vec<_>>>()?;
            Some(Tensor::cat(&biases, 0)?)
        };
        Linear::new(Tensor::cat(&weights, 0)?, bias)
    }

    pub fn out_features(&self) -> usize {
        self.weight.dim(0).unwrap_or(0)
    }

    pub fn in_features(&self) -> usize {
        self.weight.dim(1).unwrap_or(0)
    }

    /// (..., in) → (..., out): the leading dims are flattened into one matrix multiply.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let dims = x.dims();
        let (&last, lead) = dims.split_last().ok_or_else(|| Error::Input("a scalar is not a layer input".into()))?;
        if last != self.in_features() {
            return Err(Error::Input(format!("layer input has {last} features, the weights expect {}", self.in_features())));
        }
        let rows = lead.iter().product::<usize>();
        let mut y = x.reshape((rows, last))?.matmul(&self.weight.t()?)?;
        if let Some(bias) = &self.bias {
            y = y.broadcast_add(bias)?;
        }
        let mut out_dims = lead.to_vec();
        out_dims.push(self.out_features());
        Ok(y.reshape(out_dims)?)
    }
}
