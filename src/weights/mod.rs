//! Weights as Hub repositories ship them, turned into one `VarBuilder`:
//! `model.safetensors`, sharded safetensors (`model.safetensors.index.json`), or `pytorch_model.bin`.
//! Tensors stored in f16/bf16 are converted to f32 (the CPU/wasm kernels are fastest in f32).

pub mod ctranslate2;
pub mod pytorch;

use std::collections::{BTreeSet, HashMap};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;

use crate::error::{Error, Result};
use crate::hub::Repo;

pub type Tensors = HashMap<String, Tensor>;

/// Parse a safetensors file held in memory.
pub fn from_safetensors(bytes: &[u8], file: &str) -> Result<Tensors> {
    candle_core::safetensors::load_buffer(bytes, &Device::Cpu).map_err(|e| Error::weights(file, e))
}

/// Every tensor of the repo's model weights, in the order transformers prefers them.
pub async fn load_tensors(repo: &Repo) -> Result<Tensors> {
    const SINGLE: &str = "model.safetensors";
    const INDEX: &str = "model.safetensors.index.json";
    const PYTORCH: &str = "pytorch_model.bin";

    if let Some(bytes) = repo.get_optional(SINGLE).await? {
        return from_safetensors(&bytes, SINGLE);
    }
    if let Some(index) = repo.get_json_optional::<serde_json::Value>(INDEX).await? {
        let shards: BTreeSet<String> = index
            .get("weight_map")
            .and_then(|m| m.as_object())
            .ok_or_else(|| Error::weights(INDEX, "no weight_map"))?
            .values()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect();
        let mut tensors = Tensors::new();
        for shard in &shards {
            let bytes = repo.get(shard).await?;
            tensors.extend(from_safetensors(&bytes, shard)?);
        }
        return Ok(tensors);
    }
    if let Some(bytes) = repo.get_optional(PYTORCH).await? {
        return pytorch::from_bytes(&bytes, PYTORCH);
    }
    Err(Error::NotFound {
        url: format!("{} (nor {INDEX} or {PYTORCH})", repo.url(SINGLE)),
    })
}

/// A `VarBuilder` in f32 over the given tensors.
pub fn var_builder(tensors: Tensors) -> VarBuilder<'static> {
    VarBuilder::from_tensors(tensors, DType::F32, &Device::Cpu)
}
