//! Model architectures, one file each, built from one core: `linear` (every weight matrix goes
//! through `Linear`), `norm` (LayerNorm, RMSNorm, activations), `activations` (exp, erf, GELU:
//! vectorisable, no libm), `attention` (self/cross attention, key/value caches, the decoder state
//! and the `Decoder` trait the generation loop drives) and `softmax`. Whisper (network, tokens,
//! language table) has its own folder, `crate::whisper`, built on the same core. Each task keeps a
//! registry of which `model_type` loads how.

pub mod activations;
pub mod attention;
#[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
pub mod f32_tiles;
pub mod fused_attention;
pub mod int8_gemm;
pub mod kernels;
pub mod limits;
pub mod linear;
pub mod norm;
pub mod softmax;

pub mod bert;
pub mod deberta_v2;
pub mod distilbert;
pub mod embeddings;
pub mod encoder;
pub mod m2m100;
pub mod marian;
pub mod roberta;
pub mod seq2seq;
pub mod t5;

use candle_core::Tensor;

use crate::error::{Error, Result};

/// A model that maps token ids to one logit per label. Shared across threads: a pass runs on
/// rayon's pool (`kernels::on_pool`).
pub trait SequenceClassifier: Send + Sync {
    /// Longest input the position embeddings allow.
    fn max_positions(&self) -> usize;
    /// `input_ids`, `attention_mask`: (batch, seq) u32 → logits (batch, labels).
    fn logits(&self, input_ids: &Tensor, attention_mask: &Tensor) -> Result<Tensor>;
}

/// Deserialize a model's own config fields from config.json, once [`limits::validate_config`]
/// has checked every size in it.
pub fn parse_config<T: serde::de::DeserializeOwned>(config: &serde_json::Value) -> Result<T> {
    limits::validate_config(config, "config.json")?;
    T::deserialize(config).map_err(|e| Error::Config(e.to_string()))
}

/// Model outputs must be numbers: a NaN or infinite logit means the weights hold NaN/inf (or
/// values that overflow f32), and is an error rather than a label or a token. `what` names the
/// output in the message.
pub fn check_finite(values: &[f32], what: &str) -> Result<()> {
    match values.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(i) => Err(Error::weights(
            "model",
            format!("the model computed {} as {what} {i}: its weights hold NaN/infinite or overflowing values", values[i]),
        )),
    }
}
