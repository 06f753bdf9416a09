//! safetensors read tensor by tensor from any `ByteSource` (8-byte header length, JSON header of
//! `{name: {dtype, shape, data_offsets}}`, then the data), so a file kept in JavaScript memory is
//! copied into wasm one tensor at a time. Half precision is widened to f32 here.

use candle_core::{DType, Device, Tensor};
use serde::Deserialize;

use super::Tensors;
use crate::error::{Error, Result};
use crate::hub::ByteSource;

#[derive(Deserialize)]
struct Entry {
    dtype: String,
    shape: Vec<usize>,
    data_offsets: [usize; 2],
}

pub fn from_source<S: ByteSource + ?Sized>(source: &S, file: &str) -> Result<Tensors> {
    let bad = |message: String| Error::weights(file, message);
    let header_len = source.read(0, 8).ok_or_else(|| bad("shorter than its 8-byte header length".into()))?;
    let header_len = u64::from_le_bytes(header_len.as_ref().try_into().expect("8 bytes")) as usize;
    let header = source
        .read(8, header_len)
        .ok_or_else(|| bad(format!("header of {header_len} bytes runs past the end of the file")))?;
    let mut entries: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&header).map_err(|e| bad(format!("header is not valid JSON: {e}")))?;
    entries.remove("__metadata__");
    let data_start = 8 + header_len;
    let mut tensors = Tensors::with_capacity(entries.len());
    for (name, entry) in entries {
        let Entry { dtype, shape, data_offsets: [start, end] } =
            serde_json::from_value(entry).map_err(|e| bad(format!("tensor {name}: {e}")))?;
        let dtype = match dtype.as_str() {
            "F32" => DType::F32,
            "F16" => DType::F16,
            "BF16" => DType::BF16,
            "F64" => DType::F64,
            "I64" => DType::I64,
            "U32" => DType::U32,
            "U8" | "BOOL" => DType::U8,
            other => return Err(bad(format!("tensor {name} has unsupported dtype {other}"))),
        };
        let elements = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
        if end < start || elements.and_then(|n| n.checked_mul(dtype.size_in_bytes())) != Some(end - start) {
            return Err(bad(format!("tensor {name}: shape {shape:?} of {dtype:?} does not match bytes {start}..{end}")));
        }
        let data = source
            .read(data_start + start, end - start)
            .ok_or_else(|| bad(format!("tensor {name} runs past the end of the file (truncated download?)")))?;
        let tensor = Tensor::from_raw_buffer(&data, dtype, &shape, &Device::Cpu)?;
        let tensor = if matches!(dtype, DType::F16 | DType::BF16) { tensor.to_dtype(DType::F32)? } else { tensor };
        tensors.insert(name, tensor);
    }
    Ok(tensors)
}

/// A safetensors file (f32) from named tensors: 8-byte header length, JSON header, raw data.
/// For benchmarks and tests, which make their models.
#[cfg(any(test, feature = "bench"))]
pub fn to_bytes(tensors: &[(String, Vec<usize>, Vec<f32>)]) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    let mut offset = 0usize;
    for (name, shape, data) in tensors {
        let end = offset + data.len() * 4;
        header.insert(name.clone(), serde_json::json!({ "dtype": "F32", "shape": shape, "data_offsets": [offset, end] }));
        offset = end;
    }
    let mut header = serde_json::Value::Object(header).to_string().into_bytes();
    header.resize(header.len().div_ceil(8) * 8, b' ');
    let mut bytes = Vec::with_capacity(8 + header.len() + offset);
    bytes.extend_from_slice(&(header.len() as u64).to_le_bytes());
    bytes.extend_from_slice(&header);
    for (_, _, data) in tensors {
        for v in data {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        to_bytes(&[("a".into(), vec![2, 3], (0..6).map(|x| x as f32).collect()), ("b".into(), vec![1], vec![7.0])])
    }

    #[test]
    fn reads_every_tensor() {
        let tensors = from_source(&sample(), "m").unwrap();
        assert_eq!(tensors["a"].to_vec2::<f32>().unwrap(), vec![vec![0.0, 1.0, 2.0], vec![3.0, 4.0, 5.0]]);
        assert_eq!(tensors["b"].to_vec1::<f32>().unwrap(), vec![7.0]);
    }

    #[test]
    fn every_truncation_and_garbage_is_an_error() {
        let bytes = sample();
        for len in 0..bytes.len() {
            let err = from_source(&bytes[..len], "m").unwrap_err();
            assert!(matches!(err, Error::Weights { .. }), "{len}: {err}");
        }
        assert!(from_source(&b"\xff\xff\xff\xff\xff\xff\xff\xffjunk"[..], "m").is_err());
        // A shape that does not match its byte range.
        let header = br#"{"a":{"dtype":"F32","shape":[3,3],"data_offsets":[0,24]}}"#;
        let mut wrong_shape = (header.len() as u64).to_le_bytes().to_vec();
        wrong_shape.extend_from_slice(header);
        wrong_shape.extend_from_slice(&[0u8; 24]);
        let err = from_source(&wrong_shape, "m").unwrap_err().to_string();
        assert!(err.contains("does not match"), "{err}");
    }
}
