//! `Matrix` and `Linear`: the one place weight matrices live and are applied (attention
//! projections, feed-forwards, classifier heads, tied output projections, token embedding tables).
//! A matrix is stored in the load's `WeightDType`: f32, f16 (widened to f32 inside the kernel, so
//! activations keep full precision), or ggml's block formats (q8 = Q8_0, q4 = Q4_1; whisper.cpp
//! files also bring Q4_0, Q5_0 and Q5_1), whose dot products candle implements with SIMD
//! (simd128 in wasm).

use std::sync::Arc;

use candle_core::quantized::k_quants::{BlockQ4_0, BlockQ4_1, BlockQ5_0, BlockQ5_1, BlockQ8_0, GgmlType};
use candle_core::quantized::{GgmlDType, QStorage, QTensor};
use candle_core::{DType, Device, Tensor};
use half::{bf16, f16};

use super::activations;
use super::kernels::HalfFloat;
use super::norm::Activation;
use crate::error::{Error, Result};
use crate::weights::{WeightDType, Weights};

/// A (rows, cols) weight matrix, row-major: row r is output feature r (or token r of an embedding
/// table).
#[derive(Clone)]
pub struct Matrix {
    storage: Storage,
    rows: usize,
    cols: usize,
}

#[derive(Clone)]
enum Storage {
    F32(Tensor),
    F16(Arc<Vec<f16>>),
    /// Vocabulary matrices under q8/q4 (`Precision::Bf16`).
    BF16(Arc<Vec<bf16>>),
    Blocks(Arc<dyn BlockRows>),
}

/// How a matrix is stored: as the load's dtype says, or in bf16, which `Weights::output_matrix`
/// asks for under q8/q4 (f32's range and 8 bits of precision per weight, widened by one shift).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    Dtype(WeightDType),
    Bf16,
}

impl From<WeightDType> for Precision {
    fn from(dtype: WeightDType) -> Self {
        Precision::Dtype(dtype)
    }
}

impl std::fmt::Debug for Matrix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Matrix({}x{} {:?})", self.rows, self.cols, self.ggml_dtype())
    }
}

/// Rows of ggml blocks of one type, behind one interface so `Matrix` needs no per-type match.
trait BlockRows: Send + Sync {
    fn dtype(&self) -> GgmlDType;
    fn bytes(&self) -> &[u8];
    /// out (m, rows) = x (m, cols) · selfᵀ.
    fn matmul(&self, x: &[f32], m: usize, cols: usize, rows: usize, out: &mut [f32]) -> Result<()>;
    /// Row `row` widened to f32 into `out` (cols values).
    fn row_to_f32(&self, row: usize, cols: usize, out: &mut [f32]);
    fn concat(&self, others: &[&dyn BlockRows]) -> Result<Arc<dyn BlockRows>>;
}

struct Typed<T: GgmlType>(Vec<T>);

impl<T: GgmlType + 'static> Typed<T> {
    fn quantize(values: &[f32]) -> Self {
        let mut blocks = vec![T::zeros(); values.len() / T::BLCK_SIZE];
        super::kernels::quantize_blocks(values, &mut blocks);
        Typed(blocks)
    }
}

/// Appends the blocks that raw little-endian block `bytes` hold to `blocks` (which must have room
/// reserved for them if the caller wants one allocation).
fn extend_blocks<T: GgmlType>(blocks: &mut Vec<T>, bytes: &[u8]) -> Result<()> {
    let size = std::mem::size_of::<T>();
    if !bytes.len().is_multiple_of(size) {
        return Err(Error::weights("matrix", format!("{} bytes are not whole {:?} blocks", bytes.len(), T::DTYPE)));
    }
    let start = blocks.len();
    blocks.resize(start + bytes.len() / size, T::zeros());
    // SAFETY: the block types are plain `repr(C)` structs of f16 and integer arrays (every bit
    // pattern is a value), and the destination holds exactly `bytes.len()` bytes from `start`.
    unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), blocks[start..].as_mut_ptr() as *mut u8, bytes.len()) };
    Ok(())
}

impl<T: GgmlType + 'static> BlockRows for Typed<T> {
    fn dtype(&self) -> GgmlDType {
        T::DTYPE
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: see `from_bytes`; the slice covers exactly the vector's initialised elements.
        unsafe { std::slice::from_raw_parts(self.0.as_ptr() as *const u8, std::mem::size_of_val(self.0.as_slice())) }
    }

    fn matmul(&self, x: &[f32], m: usize, cols: usize, rows: usize, out: &mut [f32]) -> Result<()> {
        super::kernels::matmul_quant::<T>(x, m, cols, &self.0, rows, out)
    }

    fn row_to_f32(&self, row: usize, cols: usize, out: &mut [f32]) {
        let per_row = cols / T::BLCK_SIZE;
        T::to_float(&self.0[row * per_row..(row + 1) * per_row], out);
    }

    fn concat(&self, others: &[&dyn BlockRows]) -> Result<Arc<dyn BlockRows>> {
        // One allocation of the final size: a growing buffer and a copy of it would leave holes
        // above the model in (wasm) memory, which never shrinks.
        let mut blocks = Vec::with_capacity(self.0.len() + others.iter().map(|o| o.bytes().len() / std::mem::size_of::<T>()).sum::<usize>());
        blocks.extend_from_slice(&self.0);
        for other in others {
            if other.dtype() != T::DTYPE {
                return Err(Error::Config(format!("cannot fuse {:?} and {:?} matrices", T::DTYPE, other.dtype())));
            }
            extend_blocks(&mut blocks, other.bytes())?;
        }
        Ok(Arc::new(Typed(blocks)))
    }
}

/// f16/bf16 values as ggml lays them out, little-endian: borrowed where memory already is (wasm and
/// x86), else converted.
fn half_bytes<H: HalfFloat>(values: &[H]) -> std::borrow::Cow<'_, [u8]> {
    #[cfg(target_endian = "little")]
    // SAFETY: both formats are 2 plain bytes, little-endian here; the slice covers exactly `values`.
    return std::borrow::Cow::Borrowed(unsafe { std::slice::from_raw_parts(values.as_ptr() as *const u8, std::mem::size_of_val(values)) });
    #[cfg(not(target_endian = "little"))]
    std::borrow::Cow::Owned(values.iter().flat_map(|x| x.to_bits().to_le_bytes()).collect())
}

/// `first`'s values followed by those of every matrix in `rest`, which `pick` must find stored the
/// same way.
fn concat_halves<H: Clone>(first: &[H], rest: &[&Matrix], pick: impl Fn(&Storage) -> Option<&Arc<Vec<H>>>) -> Result<Arc<Vec<H>>> {
    let mut all = Vec::with_capacity(first.len() + rest.iter().map(|p| p.rows * p.cols).sum::<usize>());
    all.extend_from_slice(first);
    for p in rest {
        all.extend_from_slice(pick(&p.storage).ok_or_else(|| Error::Config("cannot fuse matrices stored differently".into()))?);
    }
    Ok(Arc::new(all))
}

/// Rows `ids` of a (·, cols) f16/bf16 table widened into `out`.
fn widen_rows<H: HalfFloat>(table: &[H], ids: &[u32], cols: usize, out: &mut [f32]) {
    for (row, &id) in out.chunks_exact_mut(cols).zip(ids) {
        H::widen(&table[id as usize * cols..(id as usize + 1) * cols], row);
    }
}

/// f16 weights must be finite: the kernels widen them assuming so (kernels::dot_f16_simd128), and
/// an infinity or NaN in a weight matrix (or an f32 weight beyond f16's ±65504) is a broken or
/// unsuitable checkpoint, not a model to run.
fn check_finite_f16(values: Vec<f16>) -> Result<Arc<Vec<f16>>> {
    match values.iter().position(|h| h.to_bits() & 0x7c00 == 0x7c00) {
        None => Ok(Arc::new(values)),
        Some(at) => Err(Error::weights(
            "matrix",
            format!("value {at} is {} in fp16 (infinite, NaN, or beyond fp16's ±65504): load this model in fp32", values[at]),
        )),
    }
}

/// At most this many values (256 KB in f32) are read at a time by [`Matrix::from_row_pieces`]:
/// small enough that the piece buffer fits in the gaps the load leaves in (wasm) memory instead
/// of raising its high-water mark, which wasm memory never comes down from.
pub const LOAD_PIECE_VALUES: usize = 1 << 16;

/// The ggml block type a matrix of `cols` columns gets in `dtype`, or None for f32/f16. Block
/// types need whole 32-value blocks per row; other widths fall back to f16.
pub fn block_type(dtype: WeightDType, cols: usize) -> Option<GgmlDType> {
    let ggml = match dtype {
        WeightDType::Fp32 | WeightDType::Fp16 => return None,
        WeightDType::Q8 => GgmlDType::Q8_0,
        WeightDType::Q4 => GgmlDType::Q4_1,
    };
    cols.is_multiple_of(ggml.block_size()).then_some(ggml)
}

/// Bytes a (rows, cols) matrix takes in `dtype` (the rule the loader follows).
pub fn stored_bytes(rows: usize, cols: usize, dtype: WeightDType) -> usize {
    let n = rows.saturating_mul(cols);
    match (dtype, block_type(dtype, cols)) {
        (WeightDType::Fp32, _) => n.saturating_mul(4),
        (_, Some(ggml)) => (n / ggml.block_size()).saturating_mul(ggml.type_size()),
        (_, None) => n.saturating_mul(2),
    }
}

/// `each` of the pieces of a (rows, cols) matrix, `piece_rows` rows at a time (the last piece may
/// be shorter), read by `read` into one buffer that every piece reuses.
fn for_each_piece(
    rows: usize,
    cols: usize,
    piece_rows: usize,
    read: &impl Fn(usize, usize, &mut [f32]) -> Result<()>,
    mut each: impl FnMut(&[f32]),
) -> Result<()> {
    let mut buffer = vec![0f32; piece_rows.min(rows) * cols];
    for first in (0..rows).step_by(piece_rows) {
        let count = piece_rows.min(rows - first);
        let piece = &mut buffer[..count * cols];
        read(first, count, piece)?;
        each(piece);
    }
    Ok(())
}

impl Matrix {
    /// From a dense tensor of any float dtype, stored in `dtype`. An f16 tensor stored as fp16 is
    /// never widened; for block formats one row-major f32 copy of this tensor exists while it is
    /// quantised (the loader's peak: the model so far plus the largest single tensor).
    pub fn from_tensor(t: &Tensor, precision: impl Into<Precision>) -> Result<Self> {
        let (rows, cols) = t.dims2().map_err(|_| Error::Config(format!("a weight matrix must have 2 dimensions, not shape {:?}", t.dims())))?;
        let dtype = match precision.into() {
            Precision::Bf16 => {
                let values = t.to_dtype(DType::BF16)?.flatten_all()?.to_vec1::<bf16>()?;
                return Ok(Matrix { storage: Storage::BF16(Arc::new(values)), rows, cols });
            }
            Precision::Dtype(dtype) => dtype,
        };
        let storage = match (dtype, block_type(dtype, cols)) {
            (WeightDType::Fp32, _) => Storage::F32(t.to_dtype(DType::F32)?.contiguous()?),
            (_, Some(ggml)) => {
                let values = t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
                Storage::Blocks(match ggml {
                    GgmlDType::Q8_0 => Arc::new(Typed::<BlockQ8_0>::quantize(&values)),
                    _ => Arc::new(Typed::<BlockQ4_1>::quantize(&values)),
                })
            }
            (_, None) => Storage::F16(check_finite_f16(t.to_dtype(DType::F16)?.flatten_all()?.to_vec1::<f16>()?)?),
        };
        Ok(Matrix { storage, rows, cols })
    }

    /// A (rows, cols) matrix in `dtype`, read `read(first_row, count, out)` a few rows at a time
    /// (each piece at most [`LOAD_PIECE_VALUES`] values, as f32 into `out`) and converted piece by
    /// piece: while loading, only the final storage and one piece buffer exist, never the whole
    /// matrix in f32 (a 30k-token embedding table is 94 MB in f32 and 25 MB in q8). f32 storage
    /// is read straight into place; other dtypes reuse one piece buffer for the whole matrix.
    pub fn from_row_pieces(
        rows: usize,
        cols: usize,
        precision: impl Into<Precision>,
        read: impl Fn(usize, usize, &mut [f32]) -> Result<()>,
    ) -> Result<Self> {
        let piece_rows = (LOAD_PIECE_VALUES / cols.max(1)).max(1);
        let total = rows.checked_mul(cols).ok_or_else(|| Error::Config(format!("matrix ({rows}, {cols}) is too large")))?;
        let dtype = match precision.into() {
            Precision::Bf16 => {
                let mut values = Vec::with_capacity(total);
                for_each_piece(rows, cols, piece_rows, &read, |piece| values.extend(piece.iter().map(|&v| bf16::from_f32(v))))?;
                return Ok(Matrix { storage: Storage::BF16(Arc::new(values)), rows, cols });
            }
            Precision::Dtype(dtype) => dtype,
        };
        let storage = match (dtype, block_type(dtype, cols)) {
            (WeightDType::Fp32, _) => {
                let mut values = Vec::with_capacity(total);
                for first in (0..rows).step_by(piece_rows) {
                    let count = piece_rows.min(rows - first);
                    let start = values.len();
                    values.resize(start + count * cols, 0f32);
                    read(first, count, &mut values[start..])?;
                }
                Storage::F32(Tensor::from_vec(values, (rows, cols), &Device::Cpu)?)
            }
            (_, Some(ggml)) => {
                fn quantize<T: GgmlType + 'static>(
                    (rows, cols, piece_rows): (usize, usize, usize),
                    read: &impl Fn(usize, usize, &mut [f32]) -> Result<()>,
                ) -> Result<Arc<dyn BlockRows>> {
                    let mut blocks = Vec::with_capacity(rows * cols / T::BLCK_SIZE);
                    for_each_piece(rows, cols, piece_rows, read, |piece| {
                        let start = blocks.len();
                        blocks.resize(start + piece.len() / T::BLCK_SIZE, T::zeros());
                        super::kernels::quantize_blocks(piece, &mut blocks[start..]);
                    })?;
                    Ok(Arc::new(Typed(blocks)))
                }
                Storage::Blocks(match ggml {
                    GgmlDType::Q8_0 => quantize::<BlockQ8_0>((rows, cols, piece_rows), &read)?,
                    _ => quantize::<BlockQ4_1>((rows, cols, piece_rows), &read)?,
                })
            }
            (_, None) => {
                let mut values = Vec::with_capacity(total);
                for_each_piece(rows, cols, piece_rows, &read, |piece| values.extend(piece.iter().map(|&v| f16::from_f32(v))))?;
                Storage::F16(check_finite_f16(values)?)
            }
        };
        Ok(Matrix { storage, rows, cols })
    }

    /// A (rows, cols) matrix of ggml type `dtype` whose bytes, as ggml lays them out
    /// (little-endian), `read` copies straight into the storage: one allocation of the final size
    /// and no copy in between, so reading a compact cache entry leaves no matrix-sized holes in
    /// (wasm) memory.
    pub fn from_ggml_bytes_with(dtype: GgmlDType, rows: usize, cols: usize, read: impl FnOnce(&mut [u8]) -> Result<()>) -> Result<Self> {
        let values = rows.checked_mul(cols).filter(|n| n.is_multiple_of(dtype.block_size()));
        let Some(values) = values else {
            return Err(Error::weights("matrix", format!("shape ({rows}, {cols}) is not whole {dtype:?} blocks")));
        };
        /// `values` as their bytes, to be written.
        fn bytes_of<T>(values: &mut [T]) -> &mut [u8] {
            // SAFETY: used for f32, f16, bf16 and ggml block types only: plain data for which every
            // bit pattern is a value; the slice covers exactly `values`.
            unsafe { std::slice::from_raw_parts_mut(values.as_mut_ptr() as *mut u8, std::mem::size_of_val(values)) }
        }
        fn blocks<T: GgmlType + 'static>(values: usize, read: impl FnOnce(&mut [u8]) -> Result<()>) -> Result<Arc<dyn BlockRows>> {
            let mut blocks = vec![T::zeros(); values / T::BLCK_SIZE];
            read(bytes_of(&mut blocks))?;
            Ok(Arc::new(Typed(blocks)))
        }
        let storage = match dtype {
            GgmlDType::F32 => {
                let mut v = vec![0f32; values];
                read(bytes_of(&mut v))?;
                #[cfg(target_endian = "big")]
                v.iter_mut().for_each(|x| *x = f32::from_bits(u32::from_le(x.to_bits())));
                Storage::F32(Tensor::from_vec(v, (rows, cols), &Device::Cpu)?)
            }
            GgmlDType::F16 => {
                let mut v = vec![f16::ZERO; values];
                read(bytes_of(&mut v))?;
                #[cfg(target_endian = "big")]
                v.iter_mut().for_each(|x| *x = f16::from_bits(u16::from_le(x.to_bits())));
                Storage::F16(check_finite_f16(v)?)
            }
            GgmlDType::BF16 => {
                let mut v = vec![bf16::ZERO; values];
                read(bytes_of(&mut v))?;
                #[cfg(target_endian = "big")]
                v.iter_mut().for_each(|x| *x = bf16::from_bits(u16::from_le(x.to_bits())));
                Storage::BF16(Arc::new(v))
            }
            GgmlDType::Q8_0 => Storage::Blocks(blocks::<BlockQ8_0>(values, read)?),
            GgmlDType::Q4_0 => Storage::Blocks(blocks::<BlockQ4_0>(values, read)?),
            GgmlDType::Q4_1 => Storage::Blocks(blocks::<BlockQ4_1>(values, read)?),
            GgmlDType::Q5_0 => Storage::Blocks(blocks::<BlockQ5_0>(values, read)?),
            GgmlDType::Q5_1 => Storage::Blocks(blocks::<BlockQ5_1>(values, read)?),
            other => return Err(Error::weights("matrix", format!("unsupported ggml type {other:?}"))),
        };
        Ok(Matrix { storage, rows, cols })
    }

    /// From a ggml/gguf tensor (whisper.cpp files, the compact cache) as it is stored.
    pub fn from_qtensor(q: &QTensor) -> Result<Self> {
        let (rows, cols) = q.shape().dims2().map_err(|_| Error::weights("matrix", format!("shape {:?} is not 2-D", q.shape())))?;
        let bytes = q.data()?;
        Matrix::from_ggml_bytes_with(q.dtype(), rows, cols, |out| {
            if out.len() != bytes.len() {
                return Err(Error::weights("matrix", format!("{:?} data does not fill shape ({rows}, {cols})", q.dtype())));
            }
            out.copy_from_slice(&bytes);
            Ok(())
        })
    }

    /// The stored bytes as ggml lays them out (little-endian), borrowed where the storage already
    /// is that layout (blocks; f16 on little-endian targets, which wasm and x86 are): the compact
    /// cache writes them without a copy.
    pub fn ggml_data(&self) -> Result<(GgmlDType, std::borrow::Cow<'_, [u8]>)> {
        use std::borrow::Cow;
        Ok(match &self.storage {
            Storage::F32(t) => {
                let values = t.flatten_all()?.to_vec1::<f32>()?;
                (GgmlDType::F32, Cow::Owned(values.iter().flat_map(|v| v.to_le_bytes()).collect()))
            }
            Storage::F16(v) => (GgmlDType::F16, half_bytes(v)),
            Storage::BF16(v) => (GgmlDType::BF16, half_bytes(v)),
            Storage::Blocks(b) => (b.dtype(), Cow::Borrowed(b.bytes())),
        })
    }

    /// Rows `first..first + count` of [`ggml_data`](Self::ggml_data): what those rows would be as
    /// a matrix of their own (ggml rows are whole blocks, so they split at row boundaries).
    pub fn ggml_rows(&self, first: usize, count: usize) -> Result<(GgmlDType, std::borrow::Cow<'_, [u8]>)> {
        use std::borrow::Cow;
        if first + count > self.rows {
            return Err(Error::Config(format!("rows {first}..{} of a {}-row matrix", first + count, self.rows)));
        }
        let (dtype, data) = self.ggml_data()?;
        let row = data.len() / self.rows.max(1);
        let range = first * row..(first + count) * row;
        Ok((dtype, match data {
            Cow::Borrowed(bytes) => Cow::Borrowed(&bytes[range]),
            Cow::Owned(bytes) => Cow::Owned(bytes[range].to_vec()),
        }))
    }

    /// Whether both hold the very same stored values (clones of one matrix).
    pub fn shares_storage(&self, other: &Matrix) -> bool {
        match (&self.storage, &other.storage) {
            (Storage::F32(a), Storage::F32(b)) => a.id() == b.id(),
            (Storage::F16(a), Storage::F16(b)) => Arc::ptr_eq(a, b),
            (Storage::BF16(a), Storage::BF16(b)) => Arc::ptr_eq(a, b),
            (Storage::Blocks(a), Storage::Blocks(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }

    /// As a ggml tensor (`ggml_data` in candle's type).
    pub fn to_qtensor(&self) -> Result<QTensor> {
        let (dtype, bytes) = self.ggml_data()?;
        Ok(QTensor::new(QStorage::from_data(bytes, &Device::Cpu, dtype)?, (self.rows, self.cols))?)
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    /// How the matrix is stored, in ggml's names.
    pub fn ggml_dtype(&self) -> GgmlDType {
        match &self.storage {
            Storage::F32(_) => GgmlDType::F32,
            Storage::F16(_) => GgmlDType::F16,
            Storage::BF16(_) => GgmlDType::BF16,
            Storage::Blocks(b) => b.dtype(),
        }
    }

    /// Bytes of weight data held.
    pub fn byte_len(&self) -> usize {
        match &self.storage {
            Storage::F32(_) => self.rows * self.cols * 4,
            Storage::F16(v) => v.len() * 2,
            Storage::BF16(v) => v.len() * 2,
            Storage::Blocks(b) => b.bytes().len(),
        }
    }

    /// Rows stacked in order (fused q/k/v projections). All parts must be stored alike.
    pub fn concat_rows(parts: &[&Matrix]) -> Result<Self> {
        let (first, rest) = parts.split_first().ok_or_else(|| Error::Config("nothing to fuse".into()))?;
        if rest.iter().any(|p| p.cols != first.cols) {
            return Err(Error::Config("fused matrices must have the same number of columns".into()));
        }
        let rows = parts.iter().map(|p| p.rows).sum();
        let storage = match &first.storage {
            Storage::F32(_) => {
                let tensors = parts.iter().map(|p| p.dense()).collect::<Result<Vec<_>>>()?;
                Storage::F32(Tensor::cat(&tensors, 0)?)
            }
            Storage::F16(v) => Storage::F16(concat_halves(v, rest, |s| if let Storage::F16(w) = s { Some(w) } else { None })?),
            Storage::BF16(v) => Storage::BF16(concat_halves(v, rest, |s| if let Storage::BF16(w) = s { Some(w) } else { None })?),
            Storage::Blocks(b) => {
                let others = rest
                    .iter()
                    .map(|p| match &p.storage {
                        Storage::Blocks(o) => Ok(o.as_ref()),
                        _ => Err(Error::Config("cannot fuse matrices stored differently".into())),
                    })
                    .collect::<Result<Vec<_>>>()?;
                Storage::Blocks(b.concat(&others)?)
            }
        };
        Ok(Matrix { storage, rows, cols: first.cols })
    }

    /// The whole matrix in f32 (tests, and the few places that need it dense).
    pub fn dense(&self) -> Result<Tensor> {
        if let Storage::F32(t) = &self.storage {
            return Ok(t.clone());
        }
        let ids: Vec<u32> = (0..self.rows as u32).collect();
        self.gather_rows(&ids)
    }

    /// Rows `ids` widened to f32, (ids.len(), cols): an embedding lookup.
    pub fn gather_rows(&self, ids: &[u32]) -> Result<Tensor> {
        if let Some(&bad) = ids.iter().find(|&&id| id as usize >= self.rows) {
            return Err(Error::Input(format!("token id {bad} is outside the {} rows of the embedding table", self.rows)));
        }
        let cols = self.cols;
        let mut out = vec![0f32; ids.len() * cols];
        match &self.storage {
            Storage::F32(t) => {
                let index = Tensor::from_slice(ids, ids.len(), &Device::Cpu)?;
                return Ok(t.index_select(&index, 0)?);
            }
            Storage::F16(v) => widen_rows(v, ids, cols, &mut out),
            Storage::BF16(v) => widen_rows(v, ids, cols, &mut out),
            Storage::Blocks(b) => {
                for (row, &id) in out.chunks_exact_mut(cols).zip(ids) {
                    b.row_to_f32(id as usize, cols, row);
                }
            }
        }
        Ok(Tensor::from_vec(out, (ids.len(), cols), &Device::Cpu)?)
    }

    /// x (m, cols) → x · selfᵀ (m, rows).
    pub fn matmul_t(&self, x: &Tensor) -> Result<Tensor> {
        let (m, k) = x.dims2()?;
        if k != self.cols {
            return Err(Error::Input(format!("layer input has {k} features, the weights expect {}", self.cols)));
        }
        let n = self.rows;
        if let Storage::F32(w) = &self.storage {
            // Natively candle's gemm already uses every core for many rows; in wasm only the
            // kernels reach rayon's pool (the threaded builds) and fused multiply-add (the relaxed
            // builds), and few rows (decoding) need the matrix-vector kernel everywhere.
            if m > super::kernels::MATVEC_MAX_ROWS && !cfg!(any(target_feature = "atomics", target_feature = "relaxed-simd")) {
                return Ok(x.matmul(&w.t()?)?);
            }
        }
        // The kernels read the input as one row-major slice: borrowed from x's storage where it
        // already is one (the usual case), else copied.
        with_values(x, |xs| self.matmul_t_values(xs, m, k, n))
    }

    fn matmul_t_values(&self, xs: &[f32], m: usize, k: usize, n: usize) -> Result<Tensor> {
        let mut out = vec![0f32; m * n];
        match &self.storage {
            Storage::F32(w) => {
                let (storage, layout) = w.storage_and_layout();
                let candle_core::Storage::Cpu(cpu) = &*storage else {
                    return Err(Error::Config("weights must be in CPU memory".into()));
                };
                let start = layout.start_offset();
                let data = cpu.as_slice::<f32>()?.get(start..start + n * k).ok_or_else(|| Error::Config("weight storage is shorter than its shape".into()))?;
                super::kernels::matmul_f32(xs, m, k, data, n, &mut out)?;
            }
            Storage::F16(w) => super::kernels::matmul_half(xs, m, k, w, n, &mut out)?,
            Storage::BF16(w) => super::kernels::matmul_half(xs, m, k, w, n, &mut out)?,
            Storage::Blocks(b) => b.matmul(xs, m, k, n, &mut out)?,
        }
        Ok(Tensor::from_vec(out, (m, n), &Device::Cpu)?)
    }
}

/// `f` of `t`'s values as one row-major f32 slice: borrowed from its storage when `t` is
/// contiguous f32 in CPU memory (no copy), else a copy.
pub fn with_values<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> Result<R>) -> Result<R> {
    if t.dtype() == DType::F32 {
        let (storage, layout) = t.storage_and_layout();
        if let (candle_core::Storage::Cpu(cpu), Some((start, end))) = (&*storage, layout.contiguous_offsets()) {
            if let Some(values) = cpu.as_slice::<f32>().ok().and_then(|all| all.get(start..end)) {
                return f(values);
            }
        }
    }
    f(&t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?)
}

/// y = x Wᵀ + b for W (out, in), b (out).
#[derive(Debug, Clone)]
pub struct Linear {
    weight: Matrix,
    /// Added to each output row in place, in the same pass as an activation that follows.
    bias: Option<Arc<[f32]>>,
}

impl Linear {
    /// From f32 tensors already in memory (tests, computed weights); W must be (out, in) and b (out).
    pub fn new(weight: Tensor, bias: Option<Tensor>) -> Result<Self> {
        Linear::from_matrix(Matrix::from_tensor(&weight, WeightDType::Fp32)?, bias)
    }

    pub fn from_matrix(weight: Matrix, bias: Option<Tensor>) -> Result<Self> {
        let bias = match bias {
            None => None,
            Some(b) if b.dims() == [weight.rows()] => Some(Arc::from(b.to_dtype(DType::F32)?.to_vec1::<f32>()?)),
            Some(b) => return Err(Error::Config(format!("bias of shape {:?} for {} outputs", b.dims(), weight.rows()))),
        };
        Ok(Linear { weight, bias })
    }

    /// `{prefix}.weight` (out, in) and `{prefix}.bias` (out).
    pub fn load(input: usize, output: usize, w: Weights) -> Result<Self> {
        Linear::from_matrix(w.matrix((output, input), "weight")?, Some(w.get(output, "bias")?))
    }

    /// `{prefix}.weight` only (T5).
    pub fn load_no_bias(input: usize, output: usize, w: Weights) -> Result<Self> {
        Linear::from_matrix(w.matrix((output, input), "weight")?, None)
    }

    /// Several layers over the same input as one: outputs stacked in order (fused q/k/v); a
    /// missing bias is zero.
    pub fn fuse(parts: &[Linear]) -> Result<Self> {
        let weights: Vec<&Matrix> = parts.iter().map(|l| &l.weight).collect();
        let bias = if parts.iter().all(|l| l.bias.is_none()) {
            None
        } else {
            let mut values = Vec::with_capacity(parts.iter().map(Linear::out_features).sum());
            for part in parts {
                match &part.bias {
                    Some(b) => values.extend_from_slice(b),
                    None => values.resize(values.len() + part.out_features(), 0.0),
                }
            }
            Some(Tensor::from_vec(values, weights.iter().map(|w| w.rows()).sum::<usize>(), &Device::Cpu)?)
        };
        Linear::from_matrix(Matrix::concat_rows(&weights)?, bias)
    }

    pub fn out_features(&self) -> usize {
        self.weight.rows()
    }

    pub fn in_features(&self) -> usize {
        self.weight.cols()
    }

    pub fn weight(&self) -> &Matrix {
        &self.weight
    }

    /// (..., in) → (..., out): the leading dims are flattened into one matrix multiply.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_with(x, None, None)
    }

    /// `activation(forward(x))`, the bias and an activation the crate computes itself
    /// ([`Activation::in_place`]) applied in one pass over the product, in place.
    pub fn forward_then(&self, x: &Tensor, activation: Activation) -> Result<Tensor> {
        self.forward_with(x, Some(activation), None)
    }

    /// `residual + forward(x)` (a residual connection; `residual` has the output's shape), added
    /// in the same pass as the bias, in place: no separate sum tensor.
    pub fn forward_plus(&self, x: &Tensor, residual: &Tensor) -> Result<Tensor> {
        self.forward_with(x, None, Some(residual))
    }

    fn forward_with(&self, x: &Tensor, activation: Option<Activation>, residual: Option<&Tensor>) -> Result<Tensor> {
        let dims = x.dims();
        let (&last, lead) = dims.split_last().ok_or_else(|| Error::Input("a scalar is not a layer input".into()))?;
        if last != self.in_features() {
            return Err(Error::Input(format!("layer input has {last} features, the weights expect {}", self.in_features())));
        }
        let rows = lead.iter().product::<usize>();
        let n = self.out_features();
        let mut out_dims = lead.to_vec();
        out_dims.push(n);
        if let Some(r) = residual {
            if r.dims() != out_dims {
                return Err(Error::Input(format!("a residual of shape {:?} for {rows} rows of {n} outputs", r.dims())));
            }
        }
        // A new tensor of its own (the kernels' output, or candle's gemm's), so changing it in
        // place changes nothing else.
        let y = self.weight.matmul_t(&x.reshape((rows, last))?)?;
        let pass = activation.and_then(Activation::in_place);
        let add_in_place = |residual: Option<&[f32]>| -> Result<()> {
            if self.bias.is_none() && pass.is_none() && residual.is_none() {
                return Ok(());
            }
            let bias = self.bias.as_deref().filter(|b| b.len() == n && !b.is_empty());
            activations::rows_in_place(&y, |first_row, part| {
                if let Some(bias) = bias {
                    for row in part.chunks_exact_mut(bias.len()) {
                        row.iter_mut().zip(bias).for_each(|(y, b)| *y += b);
                    }
                }
                if let Some(residual) = residual.and_then(|r| r.get(first_row * n..)) {
                    part.iter_mut().zip(residual).for_each(|(y, r)| *y += r);
                }
                if let Some(pass) = pass {
                    pass(part);
                }
            })
        };
        match residual {
            Some(r) => with_values(r, |values| add_in_place(Some(values)))?,
            None => add_in_place(None)?,
        }
        let y = match activation {
            Some(activation) if pass.is_none() => activation.apply(&y)?,
            _ => y,
        };
        Ok(y.reshape(out_dims)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random(rows: usize, cols: usize, seed: u64) -> Tensor {
        let mut rng = fastrand::Rng::with_seed(seed);
        let v: Vec<f32> = (0..rows * cols).map(|_| rng.f32() * 2.0 - 1.0).collect();
        Tensor::from_vec(v, (rows, cols), &Device::Cpu).unwrap()
    }

    /// Converting piece by piece (more rows than one piece holds, and a last short piece) stores
    /// exactly what converting the whole tensor does, in every dtype; a failed read is an error.
    #[test]
    fn row_pieces_store_what_the_whole_tensor_does() {
        let (rows, cols) = (LOAD_PIECE_VALUES / 64 + 3, 64);
        let whole = random(rows, cols, 5);
        let bytes = |m: &Matrix| m.to_qtensor().unwrap().data().unwrap().into_owned();
        let rounded = whole.to_dtype(DType::F16).unwrap().to_dtype(DType::F32).unwrap();
        for precision in [WeightDType::Fp32, WeightDType::Fp16, WeightDType::Q8, WeightDType::Q4].map(Precision::from).into_iter().chain([Precision::Bf16]) {
            let calls = std::cell::Cell::new(0);
            let read = |first, count, out: &mut [f32]| {
                calls.set(calls.get() + 1);
                assert!(count * cols <= LOAD_PIECE_VALUES && out.len() == count * cols);
                out.copy_from_slice(&rounded.narrow(0, first, count)?.flatten_all()?.to_vec1::<f32>()?);
                Ok(())
            };
            let pieces = Matrix::from_row_pieces(rows, cols, precision, read).unwrap();
            assert_eq!(calls.get(), 2, "{precision:?}");
            assert_eq!(bytes(&pieces), bytes(&Matrix::from_tensor(&rounded, precision).unwrap()), "{precision:?}");
        }
        let failing = Matrix::from_row_pieces(4, 64, WeightDType::Q8, |first, _, _| Err(Error::Config(format!("no rows from {first}"))));
        assert!(matches!(failing, Err(Error::Config(m)) if m == "no rows from 0"));
    }

    #[test]
    fn non_finite_or_out_of_range_fp16_weights_are_refused() {
        for bad in [f32::NAN, f32::INFINITY, 1e6] {
            let mut values = vec![0.5f32; 64];
            values[9] = bad;
            let t = Tensor::from_vec(values, (2, 32), &Device::Cpu).unwrap();
            let err = Matrix::from_tensor(&t, WeightDType::Fp16).unwrap_err().to_string();
            assert!(err.contains("value 9") && err.contains("fp32"), "{bad}: {err}");
        }
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
    }

    #[test]
    fn every_dtype_multiplies_close_to_f32() {
        let w = random(70, 64, 1);
        for m in [1, 3, 40] {
            let x = random(m, 64, 2);
            let exact = x.matmul(&w.t().unwrap()).unwrap();
            for (dtype, tolerance) in [(WeightDType::Fp32, 1e-5), (WeightDType::Fp16, 2e-2), (WeightDType::Q8, 0.15), (WeightDType::Q4, 1.0)] {
                let y = Matrix::from_tensor(&w, dtype).unwrap().matmul_t(&x).unwrap();
                let d = max_diff(&y, &exact);
                assert!(d < tolerance, "{dtype:?} m={m}: {d}");
            }
        }
    }

    /// Bias, GELU and residual applied in place are what the separate candle ops give: bias and
    /// residual to the bit, GELU within 1e-6; on one thread and split over three.
    #[test]
    fn bias_activation_and_residual_in_place_match_candle_ops() {
        let (k, n) = (64, 128);
        let w = random(n, k, 6);
        let b = random(1, n, 7).flatten_all().unwrap();
        for dtype in [WeightDType::Fp32, WeightDType::Q8] {
            let linear = Linear::from_matrix(Matrix::from_tensor(&w, dtype).unwrap(), Some(b.clone())).unwrap();
            for rows in [1, 3, 300] {
                let x = random(rows, k, 8).reshape((1, rows, k)).unwrap();
                let residual = random(rows, n, 9).reshape((1, rows, n)).unwrap();
                for threads in [1, 3] {
                    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
                    let product = linear.weight().matmul_t(&x.reshape((rows, k)).unwrap()).unwrap().reshape((1, rows, n)).unwrap();
                    let biased = product.broadcast_add(&b).unwrap();
                    let what = format!("{dtype} rows={rows} threads={threads}");

                    let plain = pool.install(|| linear.forward(&x)).unwrap();
                    assert_eq!(max_diff(&plain, &biased), 0.0, "{what}");
                    let plus = pool.install(|| linear.forward_plus(&x, &residual)).unwrap();
                    assert_eq!(max_diff(&plus, &(&residual + &biased).unwrap()), 0.0, "{what}");
                    let gelu = pool.install(|| linear.forward_then(&x, Activation::Gelu)).unwrap();
                    assert!(max_diff(&gelu, &biased.gelu_erf().unwrap()) < 1e-6, "{what}");
                    let tanh = pool.install(|| linear.forward_then(&x, Activation::Tanh)).unwrap();
                    assert_eq!(max_diff(&tanh, &biased.tanh().unwrap()), 0.0, "{what}");
                    assert_eq!(gelu.dims(), [1, rows, n]);
                }
                assert!(linear.forward_plus(&x, &residual.reshape((rows, n)).unwrap()).is_err());
            }
        }
        // Without a bias, and a non-contiguous input (copied on the way).
        let linear = Linear::new(w.clone(), None).unwrap();
        let x = random(k, 5, 10).t().unwrap();
        let want = x.contiguous().unwrap().matmul(&w.t().unwrap()).unwrap();
        assert!(max_diff(&linear.forward(&x).unwrap(), &want) < 1e-5);
    }

    #[test]
    fn rows_gather_fuse_and_round_trip_through_ggml() {
        let w = random(6, 32, 3);
        for dtype in [WeightDType::Fp32, WeightDType::Fp16, WeightDType::Q8, WeightDType::Q4] {
            let m = Matrix::from_tensor(&w, dtype).unwrap();
            assert_eq!(m.byte_len(), stored_bytes(6, 32, dtype));
            let back = Matrix::from_qtensor(&m.to_qtensor().unwrap()).unwrap();
            assert_eq!(max_diff(&m.dense().unwrap(), &back.dense().unwrap()), 0.0);
            let (ggml, stored) = m.ggml_data().unwrap();
            let read = Matrix::from_ggml_bytes_with(ggml, 6, 32, |out| {
                out.copy_from_slice(&stored);
                Ok(())
            }).unwrap();
            assert_eq!((read.ggml_dtype(), read.ggml_data().unwrap().1), (ggml, stored.clone()));
            assert!(Matrix::from_ggml_bytes_with(ggml, 6, 32, |_| Err(Error::Config("short".into()))).is_err());
            let rows = m.gather_rows(&[4, 1]).unwrap();
            let dense = m.dense().unwrap();
            assert_eq!(max_diff(&rows.get(0).unwrap(), &dense.get(4).unwrap()), 0.0);
            let fused = Matrix::concat_rows(&[&m, &m]).unwrap();
            assert_eq!(fused.rows(), 12);
            assert_eq!(fused.byte_len(), 2 * m.byte_len());
            assert_eq!(max_diff(&fused.dense().unwrap().narrow(0, 6, 6).unwrap(), &dense), 0.0);
            assert!(m.gather_rows(&[6]).is_err());
        }
        // Widths that are not whole blocks fall back to f16.
        assert_eq!(Matrix::from_tensor(&random(2, 20, 4), WeightDType::Q8).unwrap().ggml_dtype(), GgmlDType::F16);
    }
}
