//! `pytorch_model.bin` read from memory: the zip archive torch.save writes since PyTorch 1.6,
//! its `data.pkl` unpickled with candle's pickle VM, each tensor sliced out of its storage entry.
//! (candle's own loader only reads from files, which the browser does not have.)

use std::io::{Cursor, Read};

use candle_core::pickle::{Object, Stack};
use candle_core::{Device, Tensor};

use super::Tensors;
use crate::error::{Error, Result};

/// How many times its compressed size a zip entry may inflate to (deflate's limit is about 1032).
const MAX_COMPRESSION: u64 = 1100;

/// Every tensor of a `pytorch_model.bin` held in memory. The pickle is checked by
/// [`super::pickle::check`] before it is run, and each tensor's shape, offset and storage by
/// checked arithmetic before it is sliced.
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

    let entry = zip.by_name(&pickle_name).map_err(|e| bad(&e))?;
    // The pickle is read whole before it is checked; its size bounds everything built from it.
    if entry.size() > bytes.len() as u64 * MAX_COMPRESSION {
        return Err(bad(&format!("data.pkl claims {} bytes, more than the archive can hold", entry.size())));
    }
    let mut pickle = Vec::new();
    entry.take(bytes.len() as u64 * MAX_COMPRESSION).read_to_end(&mut pickle).map_err(|e| bad(&e))?;
    super::pickle::check(&pickle).map_err(|e| bad(&format!("data.pkl refused: {e}")))?;
    let mut stack = Stack::empty();
    stack.read_loop(&mut Cursor::new(&pickle)).map_err(|e| bad(&e))?;
    let state_dict = match stack.finalize().map_err(|e| bad(&e))? {
        Object::Dict(entries) => entries,
        _ => return Err(bad(&"data.pkl does not hold a state dict")),
    };

    let mut tensors = Tensors::new();
    for (name, value) in state_dict {
        let Object::Unicode(name) = name else { return Err(bad(&"a state dict key is not a string")) };
        let info = match super::pickle::tensor_entry(value) {
            Ok(Some(info)) => info,
            Ok(None) => continue, // plain data (e.g. a version number)
            Err(e) => return Err(bad(&format!("entry {name}: {e}"))),
        };
        let path = format!("{}/{}", dir.to_string_lossy(), info.storage);
        let mut storage = Vec::new();
        let entry = zip.by_name(&path).map_err(|e| bad(&format!("{path}: {e}")))?;
        entry.take(bytes.len() as u64 * MAX_COMPRESSION).read_to_end(&mut storage).map_err(|e| bad(&format!("{path}: {e}")))?;
        let elem = info.dtype.size_in_bytes();
        let len = super::tensor_bytes(&info.dims, elem).ok_or_else(|| bad(&format!("tensor {name}: size {:?} overflows", info.dims)))?;
        let data = info
            .offset_bytes
            .checked_add(len)
            .and_then(|end| storage.get(info.offset_bytes..end))
            .ok_or_else(|| bad(&format!("tensor {name} runs past its storage")))?;
        let dims = &info.dims;
        let strides = |order: &mut dyn Iterator<Item = usize>| {
            let mut expected = vec![0; dims.len()];
            let mut step = 1;
            for i in order {
                expected[i] = step;
                step *= dims[i];
            }
            expected
        };
        let row_major = strides(&mut (0..dims.len()).rev());
        let column_major = strides(&mut (0..dims.len()));
        let significant = |a: &[usize], b: &[usize]| a.iter().zip(b).zip(dims).all(|((x, y), &d)| d <= 1 || x == y);
        let tensor = if significant(&info.stride, &row_major) {
            Tensor::from_raw_buffer(data, info.dtype, dims, &Device::Cpu)?
        } else if significant(&info.stride, &column_major) {
            // Stored transposed: read with reversed dims, then permute back.
            let reversed: Vec<usize> = dims.iter().rev().copied().collect();
            let order: Vec<usize> = (0..dims.len()).rev().collect();
            Tensor::from_raw_buffer(data, info.dtype, reversed.as_slice(), &Device::Cpu)?
                .permute(order)?
                .contiguous()?
        } else {
            return Err(bad(&format!("tensor {name} has an unsupported strided layout")));
        };
        tensors.insert(name, tensor);
    }
    if tensors.is_empty() {
        return Err(bad(&"no tensors in the state dict"));
    }
    Ok(tensors)
}
