//! CTranslate2 `model.bin` (as Systran/faster-whisper-* ship it): indexed without reading the
//! data, then read a tensor (or a few rows of one) at a time (`Ct2Source`), or whole (`parse`).
//!
//! Layout, little-endian: u32 binary version; spec name (u16 length counting a trailing NUL,
//! then the bytes); u32 spec revision; u32 variable count; per variable: name (u16 length incl.
//! NUL + bytes), u8 rank, rank × u32 dims, u8 dtype (0 f32, 1 i8, 2 i16, 3 i32, 4 f16, 5 bf16),
//! u32 byte count, raw data; then u32 alias count and (alias, target) name pairs.
//! Floating-point variables keep their precision (f32, f16, bf16); integer ones (scalars such as
//! `encoder/num_heads`) become i64 tensors. Aliases are resolved to copies of their target.
//! Any truncation or inconsistency is an `Error::Weights`, never a panic.


use std::collections::HashMap;

use candle_core::{Device, Tensor};

use super::byte_reader::Reader;
use super::{Stored, TensorSource, Tensors};
use crate::error::{Error, Result};
use crate::hub::ByteSource;

/// What the file header says, besides the variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub binary_version: u32,
    pub spec: String,
    pub spec_revision: u32,
}

/// Oldest and newest binary versions whose layout is the one above.
const MIN_VERSION: u32 = 5;
const MAX_VERSION: u32 = 6;
/// Sanity bounds so garbage cannot ask for absurd allocations before the byte count is checked.
const MAX_RANK: u8 = 8;

impl<S: ByteSource + ?Sized> Reader<'_, S> {
    /// A u16-length-prefixed string whose length counts a trailing NUL.
    fn string(&mut self, what: &str) -> Result<String> {
        let len = self.u16(what)? as usize;
        let raw = self.take(len, what)?;
        let raw = raw.strip_suffix(&[0]).unwrap_or(&raw);
        String::from_utf8(raw.to_vec()).map_err(|_| self.err(format!("{what} is not UTF-8")))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DType {
    F32,
    I8,
    I16,
    I32,
    F16,
    BF16,
}

impl DType {
    fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0 => DType::F32,
            1 => DType::I8,
            2 => DType::I16,
            3 => DType::I32,
            4 => DType::F16,
            5 => DType::BF16,
            _ => return None,
        })
    }

    fn size(self) -> usize {
        match self {
            DType::I8 => 1,
            DType::I16 | DType::F16 | DType::BF16 => 2,
            DType::F32 | DType::I32 => 4,
        }
    }
}

/// Parse a whole `model.bin` (bytes in memory, or a downloaded `Blob`). `file` names it in errors.
pub fn from_bytes<S: ByteSource + ?Sized>(bytes: &S, file: &str) -> Result<Tensors> {
    Ok(parse(bytes, file)?.1)
}

/// Where a variable's data is in the file.
#[derive(Debug, Clone)]
struct Variable {
    dtype: DType,
    dims: Vec<usize>,
    start: usize,
    len: usize,
}

/// The header and where every variable (and alias) is, checked front to back without reading
/// any variable's data.
fn index<S: ByteSource + ?Sized>(bytes: &S, file: &str) -> Result<(Header, HashMap<String, Variable>)> {
    let mut r = Reader::new(bytes, file);
    let binary_version = r.u32("binary version")?;
    if !(MIN_VERSION..=MAX_VERSION).contains(&binary_version) {
        return Err(r.err(format!(
            "not a CTranslate2 model or unsupported binary version {binary_version} (supported {MIN_VERSION}..={MAX_VERSION})"
        )));
    }
    let spec = r.string("spec name")?;
    let spec_revision = r.u32("spec revision")?;
    let count = r.u32("variable count")? as usize;
    // Each variable takes at least 9 bytes; a count beyond that is garbage.
    if count > bytes.len() / 9 {
        return Err(r.err(format!("variable count {count} is larger than the file can hold")));
    }
    let mut variables = HashMap::with_capacity(count);
    for _ in 0..count {
        let name = r.string("variable name")?;
        let rank = r.u8("rank")?;
        if rank > MAX_RANK {
            return Err(r.err(format!("variable '{name}' has rank {rank}")));
        }
        let dims = (0..rank).map(|_| r.u32("dimension").map(|d| d as usize)).collect::<Result<Vec<_>>>()?;
        let code = r.u8("dtype")?;
        let dtype = DType::from_code(code).ok_or_else(|| r.err(format!("variable '{name}' has unknown dtype {code}")))?;
        let byte_count = r.u32("byte count")? as usize;
        if super::tensor_bytes(&dims, dtype.size()) != Some(byte_count) {
            return Err(r.err(format!(
                "variable '{name}': shape {dims:?} of {dtype:?} does not match its {byte_count} bytes"
            )));
        }
        let start = r.skip(byte_count, &format!("data of '{name}'"))?;
        if variables.insert(name.clone(), Variable { dtype, dims, start, len: byte_count }).is_some() {
            return Err(r.err(format!("variable '{name}' appears twice")));
        }
    }
    let aliases = r.u32("alias count")? as usize;
    if aliases > bytes.len() / 4 {
        return Err(r.err(format!("alias count {aliases} is larger than the file can hold")));
    }
    for _ in 0..aliases {
        let alias = r.string("alias name")?;
        let target = r.string("alias target")?;
        let variable = variables
            .get(&target)
            .cloned()
            .ok_or_else(|| r.err(format!("alias '{alias}' points to missing variable '{target}'")))?;
        variables.insert(alias, variable);
    }
    if r.pos != bytes.len() {
        return Err(r.err(format!("{} unexpected bytes after the alias table", bytes.len() - r.pos)));
    }
    Ok((Header { binary_version, spec, spec_revision }, variables))
}

/// Variable `name`'s rows first..first + count (the whole variable: 0, its first dimension or 1).
fn read<S: ByteSource + ?Sized>(bytes: &S, file: &str, name: &str, v: &Variable, first: usize, count: usize) -> Result<Tensor> {
    let rows = v.dims.first().copied().unwrap_or(1);
    let row_bytes = if rows == 0 { 0 } else { v.len / rows };
    let mut dims = v.dims.clone();
    if let Some(d) = dims.first_mut() {
        *d = count;
    }
    let bad = |what: String| Error::weights(file, format!("variable '{name}': {what}"));
    if first.checked_add(count).is_none_or(|end| end > rows) {
        return Err(bad(format!("rows {first}..{} are outside it", first.saturating_add(count))));
    }
    let data = bytes.read(v.start + first * row_bytes, count * row_bytes).ok_or_else(|| bad("runs past the end of the file".into()))?;
    to_tensor(&data, v.dtype, &dims).map_err(|e| bad(e.to_string()))
}

/// The header and the tensors of a `model.bin`, all read.
pub fn parse<S: ByteSource + ?Sized>(bytes: &S, file: &str) -> Result<(Header, Tensors)> {
    let (header, variables) = index(bytes, file)?;
    let mut tensors = Tensors::with_capacity(variables.len());
    for (name, v) in &variables {
        let rows = v.dims.first().copied().unwrap_or(1);
        tensors.insert(name.clone(), read(bytes, file, name, v, 0, rows)?);
    }
    Ok((header, tensors))
}

/// A `model.bin` as a `TensorSource`: indexed when opened, each tensor read when the model asks
/// for it, and weight matrices a few rows at a time (`Weights::matrix`), so a load never holds
/// the file's tensors and the model at once (in the browser the file itself stays in JS memory).
pub struct Ct2Source<S: ByteSource> {
    bytes: S,
    file: String,
    variables: HashMap<String, Variable>,
}

impl<S: ByteSource> Ct2Source<S> {
    pub fn open(bytes: S, file: &str) -> Result<Self> {
        let (_, variables) = index(&bytes, file)?;
        Ok(Ct2Source { bytes, file: file.to_string(), variables })
    }
}

impl<S: ByteSource> TensorSource for Ct2Source<S> {
    fn names(&self) -> Vec<String> {
        self.variables.keys().cloned().collect()
    }

    fn contains(&self, name: &str) -> bool {
        self.variables.contains_key(name)
    }

    fn load(&self, name: &str) -> Result<Option<Stored>> {
        let Some(v) = self.variables.get(name) else { return Ok(None) };
        let rows = v.dims.first().copied().unwrap_or(1);
        Ok(Some(Stored::Dense(read(&self.bytes, &self.file, name, v, 0, rows)?)))
    }

    fn file(&self) -> &str {
        &self.file
    }

    fn dims(&self, name: &str) -> Result<Option<Vec<usize>>> {
        Ok(self.variables.get(name).map(|v| v.dims.clone()))
    }

    fn loads_rows(&self, name: &str) -> bool {
        self.variables.get(name).is_some_and(|v| v.dims.len() == 2 && matches!(v.dtype, DType::F32 | DType::F16 | DType::BF16))
    }

    fn load_rows(&self, name: &str, first: usize, count: usize, out: &mut [f32]) -> Option<Result<()>> {
        let v = self.variables.get(name).filter(|_| self.loads_rows(name))?;
        let dtype = match v.dtype {
            DType::F16 => candle_core::DType::F16,
            DType::BF16 => candle_core::DType::BF16,
            DType::F32 => candle_core::DType::F32,
            DType::I8 | DType::I16 | DType::I32 => return None,
        };
        let matrix = super::safetensors::RowMajor { start: v.start, dtype, rows: v.dims[0], cols: v.dims[1] };
        let read = matrix.read_rows_f32(&self.bytes, first, count, out);
        Some(read.then_some(()).ok_or_else(|| Error::weights(&self.file, format!("variable '{name}': rows {first}..{} are outside it", first.saturating_add(count)))))
    }

    // An alias is its target's bytes (Whisper's `decoder/projection/weight` is the embedding).
    fn same_data(&self, a: &str, b: &str) -> bool {
        match (self.variables.get(a), self.variables.get(b)) {
            (Some(a), Some(b)) => (a.start, a.len, &a.dims, a.dtype) == (b.start, b.len, &b.dims, b.dtype),
            _ => false,
        }
    }
}

fn to_tensor(data: &[u8], dtype: DType, dims: &[usize]) -> candle_core::Result<Tensor> {
    let dev = &Device::Cpu;
    let shape = dims.to_vec();
    match dtype {
        DType::F32 => {
            let v: Vec<f32> = data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
            Tensor::from_vec(v, shape, dev)
        }
        // Half precision stays half: a weight matrix stored as fp16 is never widened, and the
        // rest is widened one tensor at a time as the model reads it.
        DType::F16 => {
            let v: Vec<half::f16> = data.chunks_exact(2).map(|b| half::f16::from_le_bytes([b[0], b[1]])).collect();
            Tensor::from_vec(v, shape, dev)
        }
        DType::BF16 => {
            let v: Vec<half::bf16> = data.chunks_exact(2).map(|b| half::bf16::from_le_bytes([b[0], b[1]])).collect();
            Tensor::from_vec(v, shape, dev)
        }
        DType::I8 => Tensor::from_vec(data.iter().map(|&b| b as i8 as i64).collect::<Vec<_>>(), shape, dev),
        DType::I16 => Tensor::from_vec(
            data.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]]) as i64).collect::<Vec<_>>(),
            shape,
            dev,
        ),
        DType::I32 => Tensor::from_vec(
            data.chunks_exact(4).map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64).collect::<Vec<_>>(),
            shape,
            dev,
        ),
    }
}

/// An integer scalar variable such as `encoder/num_heads`.
pub fn scalar_i64(tensors: &Tensors, name: &str) -> Option<i64> {
    let t = tensors.get(name)?;
    if t.elem_count() != 1 {
        return None;
    }
    let t = t.flatten_all().ok()?;
    match t.dtype() {
        candle_core::DType::I64 => t.to_vec1::<i64>().ok()?.first().copied(),
        candle_core::DType::F32 => t.to_vec1::<f32>().ok()?.first().map(|&v| v as i64),
        _ => None,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::error::Error;

    /// Serialize variables in the format above (for tests). `data` is raw little-endian bytes.
    pub fn write(spec: &str, vars: &[(&str, &[u32], u8, Vec<u8>)], aliases: &[(&str, &str)]) -> Vec<u8> {
        fn string(out: &mut Vec<u8>, s: &str) {
            out.extend_from_slice(&((s.len() + 1) as u16).to_le_bytes());
            out.extend_from_slice(s.as_bytes());
            out.push(0);
        }
        let mut out = Vec::new();
        out.extend_from_slice(&6u32.to_le_bytes());
        string(&mut out, spec);
        out.extend_from_slice(&3u32.to_le_bytes());
        out.extend_from_slice(&(vars.len() as u32).to_le_bytes());
        for (name, dims, dtype, data) in vars {
            string(&mut out, name);
            out.push(dims.len() as u8);
            for d in *dims {
                out.extend_from_slice(&d.to_le_bytes());
            }
            out.push(*dtype);
            out.extend_from_slice(&(data.len() as u32).to_le_bytes());
            out.extend_from_slice(data);
        }
        out.extend_from_slice(&(aliases.len() as u32).to_le_bytes());
        for (a, t) in aliases {
            string(&mut out, a);
            string(&mut out, t);
        }
        out
    }

    fn sample() -> Vec<u8> {
        let f16: Vec<u8> = [1.0f32, -2.5, 0.5, 65504.0, 0.0, 3.0]
            .iter()
            .flat_map(|&x| half::f16::from_f32(x).to_le_bytes())
            .collect();
        let f32b: Vec<u8> = [0.25f32, 7.0].iter().flat_map(|x| x.to_le_bytes()).collect();
        let bf16: Vec<u8> = [1.5f32, -4.0].iter().flat_map(|&x| half::bf16::from_f32(x).to_le_bytes()).collect();
        write(
            "WhisperSpec",
            &[
                ("a/weight", &[2, 3], 4, f16),
                ("b/bias", &[2], 0, f32b),
                ("c", &[2], 5, bf16),
                ("num_heads", &[], 2, 6i16.to_le_bytes().to_vec()),
                ("flag", &[], 1, vec![1]),
                ("big", &[1], 3, (-7i32).to_le_bytes().to_vec()),
            ],
            &[("alias/weight", "a/weight")],
        )
    }

    #[test]
    fn parses_all_dtypes_and_aliases() {
        let (header, t) = parse(&sample(), "model.bin").unwrap();
        // Half precision is kept as stored; compared here in f32.
        assert_eq!(t["a/weight"].dtype(), candle_core::DType::F16);
        let t: Tensors = t.into_iter().map(|(k, v)| (k, if v.dtype().is_float() { v.to_dtype(candle_core::DType::F32).unwrap() } else { v })).collect();
        assert_eq!(header, Header { binary_version: 6, spec: "WhisperSpec".into(), spec_revision: 3 });
        assert_eq!(t["a/weight"].dims(), &[2, 3]);
        assert_eq!(t["a/weight"].to_vec2::<f32>().unwrap(), vec![vec![1.0, -2.5, 0.5], vec![65504.0, 0.0, 3.0]]);
        assert_eq!(t["alias/weight"].to_vec2::<f32>().unwrap(), t["a/weight"].to_vec2::<f32>().unwrap());
        assert_eq!(t["b/bias"].to_vec1::<f32>().unwrap(), vec![0.25, 7.0]);
        assert_eq!(t["c"].to_vec1::<f32>().unwrap(), vec![1.5, -4.0]);
        assert_eq!(scalar_i64(&t, "num_heads"), Some(6));
        assert_eq!(scalar_i64(&t, "flag"), Some(1));
        assert_eq!(scalar_i64(&t, "big"), Some(-7));
        assert_eq!(scalar_i64(&t, "missing"), None);
    }

    #[test]
    fn the_source_reads_what_parse_reads_and_rows_of_matrices() {
        let bytes = sample();
        let (_, all) = parse(&bytes, "model.bin").unwrap();
        let source = Ct2Source::open(bytes.clone(), "model.bin").unwrap();
        let mut names = source.names();
        names.sort();
        let mut expected: Vec<String> = all.keys().cloned().collect();
        expected.sort();
        assert_eq!(names, expected);
        for name in &names {
            let Some(Stored::Dense(t)) = source.load(name).unwrap() else { panic!("{name}") };
            assert_eq!(t.dims(), all[name].dims(), "{name}");
            let f = |t: &Tensor| t.to_dtype(candle_core::DType::F64).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap();
            assert_eq!(f(&t), f(&all[name]), "{name}");
        }
        assert!(source.loads_rows("a/weight") && !source.loads_rows("b/bias") && !source.loads_rows("num_heads"));
        let mut row = [0f32; 3];
        source.load_rows("a/weight", 1, 1, &mut row).unwrap().unwrap();
        assert_eq!(row, [65504.0, 0.0, 3.0]);
        assert!(source.load_rows("a/weight", 1, 2, &mut [0f32; 6]).unwrap().is_err());
        // An alias is its target's data, so a model loads it once; distinct variables are not.
        assert!(source.same_data("alias/weight", "a/weight") && source.same_data("a/weight", "alias/weight"));
        assert!(!source.same_data("a/weight", "c") && !source.same_data("a/weight", "missing"));
    }

    #[test]
    fn every_truncation_is_an_error() {
        let bytes = sample();
        for len in 0..bytes.len() {
            let err = parse(&bytes[..len], "model.bin").unwrap_err();
            assert!(matches!(err, Error::Weights { .. }), "len {len}: {err}");
        }
    }

    #[test]
    fn garbage_is_an_error() {
        for bytes in [
            b"not a model at all".to_vec(),
            vec![0u8; 64],
            vec![0xff; 64],
            b"PK\x03\x04 looks like a zip".to_vec(),
        ] {
            assert!(matches!(parse(&bytes, "model.bin"), Err(Error::Weights { .. })));
        }
        // Pseudo-random corruption of a valid file: errors or parses, never panics.
        let good = sample();
        let mut state = 0x1234_5678u32;
        for _ in 0..2000 {
            let mut bytes = good.clone();
            for _ in 0..3 {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                let i = (state >> 8) as usize % bytes.len();
                bytes[i] = (state >> 3) as u8;
            }
            let _ = parse(&bytes, "model.bin");
        }
    }

    #[test]
    fn inconsistent_sizes_and_trailing_bytes_are_errors() {
        let bad = write("X", &[("w", &[4], 0, vec![0; 12])], &[]);
        assert!(parse(&bad, "m").unwrap_err().to_string().contains("does not match"));
        let bad = write("X", &[("w", &[1], 9, vec![0; 4])], &[]);
        assert!(parse(&bad, "m").unwrap_err().to_string().contains("unknown dtype"));
        let bad = write("X", &[("w", &[1], 0, vec![0; 4])], &[("v", "nope")]);
        assert!(parse(&bad, "m").unwrap_err().to_string().contains("missing variable"));
        let mut bad = write("X", &[("w", &[1], 0, vec![0; 4])], &[]);
        bad.extend_from_slice(b"junk");
        assert!(parse(&bad, "m").unwrap_err().to_string().contains("unexpected bytes"));
        // Dimensions whose product overflows.
        let bad = write("X", &[("w", &[u32::MAX, u32::MAX, u32::MAX], 0, vec![0; 4])], &[]);
        assert!(parse(&bad, "m").is_err());
    }
}
