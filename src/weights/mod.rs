//! Weights as Hub repositories ship them, turned into one `VarBuilder`:
//! `model.safetensors`, sharded safetensors (`model.safetensors.index.json`), or `pytorch_model.bin`.
//! Tensors stored in f16/bf16 are converted to f32 (the CPU/wasm kernels are fastest in f32).

pub mod ctranslate2;
pub mod fit;
pub mod pytorch;
pub mod safetensors;

use std::collections::{BTreeSet, HashMap};

use candle_core::{DType, Device, Tensor};

use candle_nn::VarBuilder;

use crate::error::{Error, Result};
use crate::hub::Repo;

pub type Tensors = HashMap<String, Tensor>;

/// Every tensor of the repo's model weights, in the order transformers prefers them.
pub async fn load_tensors(repo: &Repo) -> Result<Tensors> {
    const SINGLE: &str = "model.safetensors";
    const INDEX: &str = "model.safetensors.index.json";
    const PYTORCH: &str = "pytorch_model.bin";

    // Big files are read as blobs: in the browser they are parsed straight from JS memory.
    if let Some(blob) = repo.get_blob_optional(SINGLE).await? {
        return safetensors::from_source(&blob, SINGLE);
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
            let blob = repo.get_blob(shard).await?;
            tensors.extend(safetensors::from_source(&blob, shard)?);
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
