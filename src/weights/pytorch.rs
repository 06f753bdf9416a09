//! `pytorch_model.bin` read from memory: the zip archive torch.save writes since PyTorch 1.6,
//! its `data.pkl` unpickled with candle's pickle VM, each tensor sliced out of its storage entry.
//! (candle's own loader only reads from files, which the browser does not have.)

use std::io::{Cursor, Read};

use candle_core::pickle::{Object, Stack};
use candle_core::{Device, Tensor};

use super::Tensors;
use crate::error::{Error, Result};

pub fn from_bytes(bytes: &[u8], file: &str) -> Result<Tensors> {
    let bad = |e: &dyn std::fmt::Display| Error::weights(file, e);
    if !bytes.starts_with(b"PK") {
        return Err(bad(&"not a zip archive (legacy pre-1.6 PyTorch files are not supported)"));
    }
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| bad(&e))?;
    let pickle_name = zip
        .file_names()
        .flatten()
        .find(|name| name.ends_with("data.pkl"))
        .map(|name| name.into_owned())
        .ok_or_else(|| bad(&"no data.pkl in the archive"))?;
    let dir = std::path::PathBuf::from(pickle_name.trim_end_matches(".pkl"));

    let mut pickle = Vec::new();
    zip.by_name(&pickle_name).and_then(|mut f| Ok(f.read_to_end(&mut pickle)?)).map_err(|e| bad(&e))?;
    let mut stack = Stack::empty();
    stack.read_loop(&mut Cursor::new(&pickle)).map_err(|e| bad(&e))?;
    let state_dict = match stack.finalize().map_err(|e| bad(&e))? {
        Object::Dict(entries) => entries,
        _ => return Err(bad(&"data.pkl does not hold a state dict")),
    };

    let mut tensors = Tensors::new();
    for (name, value) in state_dict {
        let info = match value.into_tensor_info(name, &dir) {
            Ok(Some(info)) => info,
            Ok(None) => continue, // not a tensor (e.g. metadata)
            Err(e) => return Err(bad(&e)),
        };
        let mut storage = Vec::new();
        zip.by_name(&info.path)
            .and_then(|mut f| Ok(f.read_to_end(&mut storage)?))
            .map_err(|e| bad(&format!("{}: {e}", info.path)))?;
        let layout = &info.layout;
        let dims = layout.shape().dims().to_vec();
        let elem = info.dtype.size_in_bytes();
        let start = layout.start_offset();
        let end = start + layout.shape().elem_count() * elem;
        let data = storage
            .get(start..end)
            .ok_or_else(|| bad(&format!("tensor {} runs past its storage", info.name)))?;
        let tensor = if layout.is_contiguous() {
            Tensor::from_raw_buffer(data, info.dtype, &dims, &Device::Cpu)?
        } else if layout.is_fortran_contiguous() {
            // Stored transposed: read with reversed dims, then permute back.
            let reversed: Vec<usize> = dims.iter().rev().copied().collect();
            let order: Vec<usize> = (0..dims.len()).rev().collect();
            Tensor::from_raw_buffer(data, info.dtype, reversed.as_slice(), &Device::Cpu)?
                .permute(order)?
                .contiguous()?
        } else {
            return Err(bad(&format!("tensor {} has an unsupported strided layout", info.name)));
        };
        tensors.insert(info.name, tensor);
    }
    if tensors.is_empty() {
        return Err(bad(&"no tensors in the state dict"));
    }
    Ok(tensors)
}
