//! safetensors read tensor by tensor from any `ByteSource` (8-byte header length, JSON header of
//! `{name: {dtype, shape, data_offsets}}`, then the data), so a file kept in JavaScript memory is
//! copied into wasm one tensor at a time, when the model asks for it.

use candle_core::{DType, Device, Tensor};
use serde::Deserialize;

use std::collections::HashMap;

use super::{Stored, TensorSource, Tensors};
use crate::error::{Error, Result};
use crate::hub::ByteSource;

#[derive(Deserialize)]
struct Entry {
    dtype: String,
    shape: Vec<usize>,
    data_offsets: [usize; 2],
}

/// The largest header the safetensors format allows.
const MAX_HEADER_BYTES: usize = 100_000_000;

/// Where one tensor's bytes are.
struct Located {
    dtype: DType,
    shape: Vec<usize>,
    start: usize,
    len: usize,
}

/// A safetensors file whose header has been read; tensors are read from `source` when asked for.
pub struct Safetensors<S: ByteSource> {
    source: S,
    file: String,
    tensors: HashMap<String, Located>,
}

impl<S: ByteSource> Safetensors<S> {
    /// Read and check the header: every tensor's shape must match its byte range, which must lie
    /// inside the file.
    pub fn open(source: S, file: &str) -> Result<Self> {
        let bad = |message: String| Error::weights(file, message);
        let header_len = source.read(0, 8).ok_or_else(|| bad("shorter than its 8-byte header length".into()))?;
        let header_len = u64::from_le_bytes(header_len.as_ref().try_into().expect("8 bytes")) as usize;
        let header = source
            .read(8, header_len)
            .ok_or_else(|| bad(format!("header of {header_len} bytes runs past the end of the file")))?;
        let mut entries: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(&header).map_err(|e| bad(format!("header is not valid JSON: {e}")))?;
        entries.remove("__metadata__");
        // The format caps headers at 100 MB; a larger one is garbage, not a model.
        if header_len > MAX_HEADER_BYTES {
            return Err(bad(format!("header of {header_len} bytes is larger than the format's {MAX_HEADER_BYTES}")));
        }
        let data_start = 8 + header_len;
        let mut tensors = HashMap::with_capacity(entries.len());
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
            if end < start || super::tensor_bytes(&shape, dtype.size_in_bytes()) != Some(end - start) {
                return Err(bad(format!("tensor {name}: shape {shape:?} of {dtype:?} does not match bytes {start}..{end}")));
            }
            let in_file = data_start.checked_add(end).is_some_and(|e| e <= source.len());
            if !in_file {
                return Err(bad(format!("tensor {name} runs past the end of the file (truncated download?)")));
            }
            tensors.insert(name, Located { dtype, shape, start: data_start + start, len: end - start });
        }
        // Each tensor owns its bytes: ranges that overlap would alias one weight as another.
        let mut ranges: Vec<(usize, usize, &str)> = tensors.iter().map(|(name, t)| (t.start, t.start + t.len, name.as_str())).collect();
        ranges.sort_unstable();
        if let Some(pair) = ranges.windows(2).find(|pair| pair[1].0 < pair[0].1) {
            return Err(bad(format!("tensors {} and {} share bytes {}..{}", pair[0].2, pair[1].2, pair[1].0 - data_start, pair[0].1 - data_start)));
        }
        Ok(Safetensors { source, file: file.to_string(), tensors })
    }
}

impl<S: ByteSource> TensorSource for Safetensors<S> {
    fn names(&self) -> Vec<String> {
        self.tensors.keys().cloned().collect()
    }

    fn contains(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    /// The tensor in its stored dtype (f16/bf16 are not widened here).
    fn load(&self, name: &str) -> Result<Option<Stored>> {
        let Some(t) = self.tensors.get(name) else { return Ok(None) };
        let data = self
            .source
            .read(t.start, t.len)
            .ok_or_else(|| Error::weights(&self.file, format!("tensor {name} runs past the end of the file")))?;
        Ok(Some(Stored::Dense(Tensor::from_raw_buffer(&data, t.dtype, &t.shape, &Device::Cpu)?)))
    }

    fn file(&self) -> &str {
        &self.file
    }

    fn dims(&self, name: &str) -> Result<Option<Vec<usize>>> {
        Ok(self.tensors.get(name).map(|t| t.shape.clone()))
    }

    fn loads_rows(&self, name: &str) -> bool {
        self.tensors.get(name).is_some_and(|t| t.shape.len() == 2 && t.dtype.is_float())
    }

    fn load_rows(&self, name: &str, first: usize, count: usize, out: &mut [f32]) -> Option<Result<()>> {
        let t = self.tensors.get(name).filter(|_| self.loads_rows(name))?;
        let matrix = RowMajor { start: t.start, dtype: t.dtype, rows: t.shape[0], cols: t.shape[1] };
        Some(matrix.read_rows_f32(&self.source, first, count, out).then_some(()).ok_or_else(|| matrix.outside(&self.file, name, first, count)))
    }
}

/// A row-major matrix at byte `start` of a file: what `TensorSource::load_rows` reads from
/// (safetensors, pytorch_model.bin).
pub(super) struct RowMajor {
    pub start: usize,
    pub dtype: DType,
    pub rows: usize,
    pub cols: usize,
}

impl RowMajor {
    /// Rows first..first + count as f32 into `out` (`count * cols` values): f32 data is copied
    /// from the source straight into `out`, f16/bf16 through one buffer of their own size, so a
    /// load's pieces leave no further copies behind (in wasm, freed buffers are holes in memory
    /// that never shrinks). False when the rows are not all inside the matrix and the file, or
    /// `out` is not their size.
    pub fn read_rows_f32<S: ByteSource + ?Sized>(&self, source: &S, first: usize, count: usize, out: &mut [f32]) -> bool {
        let Some(values) = first.checked_add(count).filter(|&end| end <= self.rows).and_then(|_| count.checked_mul(self.cols)) else {
            return false;
        };
        if out.len() != values {
            return false;
        }
        let element = self.dtype.size_in_bytes();
        let start = self.start + first * self.cols * element;
        match self.dtype {
            DType::F32 => {
                if !source.read_into(start, bytemuck::cast_slice_mut(out)) {
                    return false;
                }
                #[cfg(target_endian = "big")]
                out.iter_mut().for_each(|v| *v = f32::from_bits(u32::from_le(v.to_bits())));
                true
            }
            DType::F16 | DType::BF16 => {
                let mut halves = vec![0u16; values];
                if !source.read_into(start, bytemuck::cast_slice_mut(&mut halves)) {
                    return false;
                }
                let widen: fn(u16) -> f32 = if self.dtype == DType::F16 {
                    // Branch-free (half's conversion branches per value, in software in wasm).
                    |bits| crate::models::kernels::f16_bits_to_f32(u16::from_le(bits))
                } else {
                    |bits| half::bf16::from_bits(u16::from_le(bits)).to_f32()
                };
                out.iter_mut().zip(&halves).for_each(|(v, &bits)| *v = widen(bits));
                true
            }
            // Other float formats (f64, f8, ...) go through candle's conversion.
            _ => {
                let Some(piece) = self.read_rows(source, first, count) else { return false };
                match piece.to_dtype(DType::F32).and_then(|t| t.flatten_all()).and_then(|t| t.to_vec1::<f32>()) {
                    Ok(converted) if converted.len() == values => {
                        out.copy_from_slice(&converted);
                        true
                    }
                    _ => false,
                }
            }
        }
    }

    /// Rows first..first + count as stored; `None` when they are not all inside the matrix and
    /// the file.
    pub fn read_rows<S: ByteSource + ?Sized>(&self, source: &S, first: usize, count: usize) -> Option<Tensor> {
        let row_bytes = self.cols * self.dtype.size_in_bytes();
        first.checked_add(count).filter(|&end| end <= self.rows)?;
        let data = source.read(self.start + first * row_bytes, count * row_bytes)?;
        Tensor::from_raw_buffer(&data, self.dtype, &[count, self.cols], &Device::Cpu).ok()
    }

    pub fn outside(&self, file: &str, name: &str, first: usize, count: usize) -> Error {
        Error::weights(file, format!("rows {first}..{} of tensor {name} are outside it", first.saturating_add(count)))
    }
}

/// Every tensor of a safetensors file, half precision widened to f32.
pub fn from_source<S: ByteSource>(source: S, file: &str) -> Result<Tensors> {
    let file = Safetensors::open(source, file)?;
    let mut tensors = Tensors::with_capacity(file.tensors.len());
    for name in file.names() {
        if let Some(Stored::Dense(t)) = file.load(&name)? {
            let t = if matches!(t.dtype(), DType::F16 | DType::BF16) { t.to_dtype(DType::F32)? } else { t };
            tensors.insert(name, t);
        }
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
        let tensors = from_source(sample(), "m").unwrap();
        assert_eq!(tensors["a"].to_vec2::<f32>().unwrap(), vec![vec![0.0, 1.0, 2.0], vec![3.0, 4.0, 5.0]]);
        assert_eq!(tensors["b"].to_vec1::<f32>().unwrap(), vec![7.0]);
    }

    /// Rows read as f32 straight from the file are what candle's conversion of the same rows
    /// gives, for f32, f16, bf16 and f64 data; rows outside the matrix or the file, or a buffer of
    /// the wrong size, are refused.
    #[test]
    fn rows_read_as_f32_are_candles_conversion() {
        let values: Vec<f32> = (0..24).map(|i| (i as f32 - 11.5) * 0.37).collect();
        let whole = Tensor::from_vec(values, (6, 4), &Device::Cpu).unwrap();
        for dtype in [DType::F32, DType::F16, DType::BF16, DType::F64] {
            let stored = whole.to_dtype(dtype).unwrap();
            let mut file = vec![7u8; 3]; // the matrix starts at an odd offset
            let data = stored.flatten_all().unwrap();
            let bytes: Vec<u8> = match dtype {
                DType::F32 => data.to_vec1::<f32>().unwrap().iter().flat_map(|v| v.to_le_bytes()).collect(),
                DType::F16 => data.to_vec1::<half::f16>().unwrap().iter().flat_map(|v| v.to_le_bytes()).collect(),
                DType::BF16 => data.to_vec1::<half::bf16>().unwrap().iter().flat_map(|v| v.to_le_bytes()).collect(),
                _ => data.to_vec1::<f64>().unwrap().iter().flat_map(|v| v.to_le_bytes()).collect(),
            };
            file.extend_from_slice(&bytes);
            let matrix = RowMajor { start: 3, dtype, rows: 6, cols: 4 };
            let mut out = [0f32; 12];
            assert!(matrix.read_rows_f32(&file, 2, 3, &mut out), "{dtype:?}");
            let want = stored.narrow(0, 2, 3).unwrap().to_dtype(DType::F32).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
            assert_eq!(out.to_vec(), want, "{dtype:?}");
            assert!(!matrix.read_rows_f32(&file, 4, 3, &mut out), "past the matrix");
            assert!(!matrix.read_rows_f32(&file, 2, 2, &mut out), "buffer of another size");
            assert!(!matrix.read_rows_f32(&file[..file.len() - 1], 3, 3, &mut out), "past the file");
            assert!(!matrix.read_rows_f32(&file, usize::MAX, 2, &mut out[..8]));
        }
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
        let err = from_source(wrong_shape, "m").unwrap_err().to_string();
        assert!(err.contains("does not match"), "{err}");
    }
}
