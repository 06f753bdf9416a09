//! Matrix products y = x·Wᵀ for every way a weight matrix is stored: f32, f16, and ggml's
//! quantised blocks. x is (m×k) row-major activations, W is (n×k) row-major ("out, in", as
//! checkpoints store linear layers), y is (m×n) row-major.
//!
//! Two shapes of work dominate: a decoder step multiplies one row (or one per beam) against every
//! weight matrix, where a general gemm spends its time packing and the product is bound by reading
//! W once; an encoder multiplies many rows, where gemm's blocking pays. Small m therefore takes
//! matrix-vector kernels that stream W; large m takes gemm, compact weights widened to f32 one run
//! of rows at a time.
//!
//! Every kernel splits its work over rayon's global pool: natively that is the machine's cores,
//! and in a threaded wasm build it is the only pool there is (wasm-bindgen-rayon; candle's own
//! pool is single-threaded in wasm). With one thread the same code runs serially, without handing
//! tasks to the pool.

use candle_core::quantized::k_quants::{BlockQ8_0, BlockQ8_1, GgmlType};
use candle_core::quantized::GgmlDType;
use half::{bf16, f16};
use rayon::prelude::*;
use std::cell::RefCell;

use super::activations;
use super::int8_gemm;
use crate::error::{Error, Result};

/// Up to this many x rows (one decode step, or one row per beam) take the matrix-vector kernels:
/// each W row is read from memory once and dotted with every x row while it sits in L1.
pub const MATVEC_MAX_ROWS: usize = 8;

/// y = x·Wᵀ with f32 weights.
///
/// Small m: matrix-vector dots over runs of W rows, one rayon task per run. Large m: gemm, which
/// splits its blocks over rayon's pool itself; in the relaxed-SIMD build, fused multiply-add
/// tiles over runs of W rows, one rayon task per run (`f32_tiles`).
pub fn matmul_f32(x: &[f32], m: usize, k: usize, w: &[f32], n: usize, out: &mut [f32]) -> Result<()> {
    check_lengths(GgmlDType::F32, x.len(), m, k, w.len(), n, k, out.len())?;
    if is_trivial(m, k, n, out) {
        return Ok(());
    }
    if m <= MATVEC_MAX_ROWS {
        for_each_weight_run(out, m, n, k, weight_rows_per_task(n), |first_row, out_t| {
            let rows = out_t.len() / m;
            matvec_f32(x, k, &w[first_row * k..(first_row + rows) * k], out_t);
        });
    } else {
        #[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
        for_each_weight_columns(out, m, n, weight_rows_per_task(n), |first_row, mut columns| {
            let rows = columns.len();
            f32_tiles_run(x, m, k, &w[first_row * k..(first_row + rows) * k], &mut columns);
        });
        // SAFETY: check_lengths made out exactly m×n, and it is borrowed mutably for the call.
        #[cfg(not(all(target_arch = "wasm32", target_feature = "relaxed-simd")))]
        unsafe {
            gemm_x_wt(x, m, k, w, n, out.as_mut_ptr(), n, pool_parallelism())
        };
    }
    Ok(())
}

/// A 16-bit float format weights are kept in, widened to f32 inside the kernels: f16 (the fp16
/// dtype) or bf16 (vocabulary matrices under q8/q4: f32's exponent, so widening is one shift).
pub trait HalfFloat: Copy + Send + Sync {
    const DTYPE: GgmlDType;
    /// x rows (of k values) as `dot` reads them: as they are, or reordered once per product where
    /// that lets the kernel widen W with fewer operations.
    fn prepare(x: &[f32], _k: usize) -> std::borrow::Cow<'_, [f32]> {
        std::borrow::Cow::Borrowed(x)
    }
    /// Σ x[i]·w[i] over one prepared x row, w widened on the way.
    fn dot(x: &[f32], w: &[Self]) -> f32;
    /// [`dot`](Self::dot) of one prepared x row with R W rows, each row's value bit for bit what
    /// `dot` gives. In the browser the R rows' sums are independent chains, so no addition waits
    /// for the one before (with one row, the kernel ran at the adds' latency, not at memory speed),
    /// and x is loaded once for all R.
    fn dot_rows<const R: usize>(x: &[f32], w: [&[Self]; R]) -> [f32; R] {
        w.map(|w| Self::dot(x, w))
    }
    /// `dst` = `src` widened to f32.
    fn widen(src: &[Self], dst: &mut [f32]);
    /// One value widened.
    fn to_f32(self) -> f32;
    /// The 16 bits as stored (ggml writes them little-endian).
    fn to_bits(self) -> u16;
}

impl HalfFloat for f16 {
    const DTYPE: GgmlDType = GgmlDType::F16;
    fn dot(x: &[f32], w: &[Self]) -> f32 {
        dot_f16(x, w)
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    fn dot_rows<const R: usize>(x: &[f32], w: [&[Self]; R]) -> [f32; R] {
        dot_f16_simd128(x, w)
    }
    fn widen(src: &[Self], dst: &mut [f32]) {
        widen_f16(src, dst)
    }
    fn to_f32(self) -> f32 {
        f16_bits_to_f32(f16::to_bits(self))
    }
    fn to_bits(self) -> u16 {
        f16::to_bits(self)
    }
}

impl HalfFloat for bf16 {
    const DTYPE: GgmlDType = GgmlDType::BF16;
    /// In the browser: each run of 8 values as its even-indexed then its odd-indexed ones, the
    /// order in which `dot_bf16_simd128` widens W (see there).
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    fn prepare(x: &[f32], k: usize) -> std::borrow::Cow<'_, [f32]> {
        let mut out = x.to_vec();
        for row in out.chunks_exact_mut(k) {
            for run in row.as_chunks_mut::<8>().0 {
                let r = *run;
                *run = [r[0], r[2], r[4], r[6], r[1], r[3], r[5], r[7]];
            }
        }
        std::borrow::Cow::Owned(out)
    }
    fn dot(x: &[f32], w: &[Self]) -> f32 {
        dot_bf16(x, w)
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    fn dot_rows<const R: usize>(x: &[f32], w: [&[Self]; R]) -> [f32; R] {
        dot_bf16_simd128(x, w)
    }
    fn widen(src: &[Self], dst: &mut [f32]) {
        for (wide, &narrow) in dst.iter_mut().zip(src) {
            *wide = HalfFloat::to_f32(narrow);
        }
    }
    /// A shift: no NaN quieting (half's `bf16::to_f32` has a branch for it), so loops vectorise.
    fn to_f32(self) -> f32 {
        f32::from_bits(u32::from(bf16::to_bits(self)) << 16)
    }
    fn to_bits(self) -> u16 {
        bf16::to_bits(self)
    }
}

/// y = x·Wᵀ with f16 or bf16 weights, widened to f32 inside the kernel: activations and sums stay
/// f32, so the result is as accurate as f32 arithmetic on the rounded weights, at half the memory
/// traffic of f32 weights.
///
/// Small m: each x row is dotted with each W row, widened on the fly (in registers). Large m: see
/// [`gemm_widened_run`].
pub fn matmul_half<H: HalfFloat>(x: &[f32], m: usize, k: usize, w: &[H], n: usize, out: &mut [f32]) -> Result<()> {
    check_lengths(H::DTYPE, x.len(), m, k, w.len(), n, k, out.len())?;
    if is_trivial(m, k, n, out) {
        return Ok(());
    }
    if m > MATVEC_MAX_ROWS {
        for_each_weight_columns(out, m, n, weight_rows_per_task(n), |first_row, mut columns| {
            let w_run = &w[first_row * k..(first_row + columns.len()) * k];
            gemm_widened_run(x, m, k, |w_f32| H::widen(w_run, w_f32), &mut columns);
        });
        return Ok(());
    }
    let prepared = H::prepare(x, k);
    for_each_weight_run(out, m, n, k, weight_rows_per_task(n), |first_row, out_t| {
        let rows = out_t.len() / m;
        let w_row = |j: usize| &w[(first_row + j) * k..(first_row + j + 1) * k];
        // W rows four at a time (each quad read from memory once, for every x row), then the last
        // 0–3 one by one; each output is the same either way.
        let quads = rows / 4 * 4;
        for j in (0..quads).step_by(4) {
            for (i, x_row) in prepared.chunks_exact(k).enumerate() {
                let dots = H::dot_rows(x_row, [w_row(j), w_row(j + 1), w_row(j + 2), w_row(j + 3)]);
                for (r, dot) in dots.into_iter().enumerate() {
                    out_t[(j + r) * m + i] = dot;
                }
            }
        }
        for j in quads..rows {
            for (i, x_row) in prepared.chunks_exact(k).enumerate() {
                out_t[j * m + i] = H::dot_rows(x_row, [w_row(j)])[0];
            }
        }
    });
    Ok(())
}

/// Up to this many x rows [`matmul_quant`] takes integer dot products straight from the blocks.
/// Their cost grows with every row (each one decodes W's blocks again), while dequantising a run of
/// W rows for gemm costs the same for any m: measured, the two cross over at about 4 rows.
pub const QUANT_DOT_MAX_ROWS: usize = 4;

/// Whether many-row quantised products run as integer arithmetic ([`int8_gemm`]) instead of
/// widening W to f32 for gemm. In the browser, where f32 has no fused multiply-add, the integer
/// kernel is faster (BENCHMARKS.md, "int8 products"); natively gemm's AVX2/FMA kernels are.
const INT8_GEMM: bool = cfg!(target_arch = "wasm32");

/// y = x·Wᵀ with W stored as ggml blocks of type `T` (`w` holds n rows of k / block-size blocks).
///
/// m ≤ [`QUANT_DOT_MAX_ROWS`], as llama.cpp and candle's `k_quants::matmul` do: each x row is
/// quantised once to `T::VecDotType`, and every output is `T`'s integer dot product of two block
/// rows, read straight from the compact weights. Rayon tasks take runs of W rows (a multiple of 4, so the four-row
/// `vec_dot_4` kernels apply). Each output is computed by the same calls candle makes, so results
/// equal candle's exactly.
///
/// More rows: see [`gemm_widened_run`]; x is not quantised there, so results are those of f32
/// arithmetic on the dequantised weights.
///
/// `k` must be a multiple of `T`'s block size, else [`Error::Config`].
pub fn matmul_quant<T: GgmlType>(x: &[f32], m: usize, k: usize, w: &[T], n: usize, out: &mut [f32]) -> Result<()> {
    if T::BLCK_SIZE != T::VecDotType::BLCK_SIZE {
        return Err(Error::Config(format!(
            "{:?} weights cannot be multiplied: their block size {} differs from that of their dot partner {:?} ({})",
            T::DTYPE,
            T::BLCK_SIZE,
            T::VecDotType::DTYPE,
            T::VecDotType::BLCK_SIZE
        )));
    }
    let blocks_per_row = blocks_per_row::<T>(k)?;
    check_lengths(T::DTYPE, x.len(), m, k, w.len(), n, blocks_per_row, out.len())?;
    if is_trivial(m, k, n, out) {
        return Ok(());
    }
    let w_run = |first_row: usize, rows: usize| &w[first_row * blocks_per_row..(first_row + rows) * blocks_per_row];
    if m > QUANT_DOT_MAX_ROWS && INT8_GEMM && int8_gemm::supports(T::DTYPE) {
        let x_rows = int8_gemm::QuantizedRows::new(x, m, k);
        for_each_weight_columns(out, m, n, weight_rows_per_task(n), |first_row, mut columns| {
            thread_local! {
                static UNPACKED: RefCell<int8_gemm::UnpackedRun> = RefCell::new(Default::default());
            }
            let rows = columns.len();
            let blocks = w_run(first_row, rows);
            let bytes = block_bytes(blocks);
            UNPACKED.with(|run| {
                let mut run = run.borrow_mut();
                run.fill(T::DTYPE, bytes, rows, k);
                int8_gemm::gemm_run(&x_rows, &run, &mut columns);
            });
        });
        return Ok(());
    }
    if m > QUANT_DOT_MAX_ROWS {
        for_each_weight_columns(out, m, n, weight_rows_per_task(n), |first_row, mut columns| {
            let rows = columns.len();
            gemm_widened_run(x, m, k, |w_f32| T::to_float(w_run(first_row, rows), w_f32), &mut columns);
        });
        return Ok(());
    }
    let mut x_blocks = vec![T::VecDotType::zeros(); m * blocks_per_row];
    for (row, blocks) in x.chunks_exact(k).zip(x_blocks.chunks_exact_mut(blocks_per_row)) {
        quantize_blocks(row, blocks);
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    if nibble_dots(T::DTYPE) {
        for_each_weight_run(out, m, n, k, weight_rows_per_task(n), |first_row, out_t| {
            let rows = out_t.len() / m;
            dot_nibbles_run::<T>(&x_blocks, m, blocks_per_row, w_run(first_row, rows), out_t);
        });
        return Ok(());
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    if let (Some(w), Some(x_blocks)) = (q8_0_fields(w), q8_0_fields(&x_blocks)) {
        let x_rows = WideQ8Rows::new(x_blocks, m, blocks_per_row);
        for_each_weight_run(out, m, n, k, weight_rows_per_task(n), |first_row, out_t| {
            let rows = out_t.len() / m;
            dot_q8_0_run(&x_rows, &w[first_row * blocks_per_row..(first_row + rows) * blocks_per_row], out_t);
        });
        return Ok(());
    }
    for_each_weight_run(out, m, n, k, weight_rows_per_task(n), |first_row, out_t| {
        let rows = out_t.len() / m;
        dot_quant_run::<T>(&x_blocks, m, k, blocks_per_row, w_run(first_row, rows), out_t);
    });
    Ok(())
}

/// W (n×k f32, row-major) as ggml blocks of type `T`, row by row (rows in parallel): the layout
/// [`matmul_quant`] takes. `k` must be a multiple of `T`'s block size, else [`Error::Config`].
pub fn quantize_rows<T: GgmlType>(w: &[f32], n: usize, k: usize) -> Result<Vec<T>> {
    let blocks_per_row = blocks_per_row::<T>(k)?;
    if Some(w.len()) != n.checked_mul(k) {
        return Err(Error::Config(format!("cannot quantise {} values as {n}×{k} rows", w.len())));
    }
    let mut blocks = vec![T::zeros(); n * blocks_per_row];
    if blocks_per_row > 0 {
        blocks
            .par_chunks_exact_mut(blocks_per_row)
            .zip(w.par_chunks_exact(k))
            .for_each(|(row_blocks, row)| quantize_blocks(row, row_blocks));
    }
    Ok(blocks)
}

/// `xs` as ggml blocks of type `T` (`ys` holds xs.len() / block size of them), bit for bit what
/// candle's `T::from_float` writes. Q8_0 and Q8_1 (what x rows are quantised to for the integer
/// dot products, every decoder step) are computed here: candle rounds with `f32::round`, which in
/// wasm is a libm call per value, and takes the block maximum with `f32::max`, another call; these
/// loops have neither and vectorise. Other types are candle's.
pub fn quantize_blocks<T: GgmlType>(xs: &[f32], ys: &mut [T]) {
    // SAFETY (both casts): candle has exactly one block type per ggml type, so a `T` whose DTYPE
    // is Q8_0 is BlockQ8_0, whose fields (private to candle) `Q8_0Fields` repeats in the same
    // repr(C) order (sizes checked here, and the fields' types fix the alignment); the slice covers
    // the same `ys.len()` blocks. Likewise Q8_1.
    if T::DTYPE == GgmlDType::Q8_0 && std::mem::size_of::<T>() == std::mem::size_of::<Q8_0Fields>() {
        let ys = unsafe { std::slice::from_raw_parts_mut(ys.as_mut_ptr().cast::<Q8_0Fields>(), ys.len()) };
        quantize_q8_0(xs, ys);
    } else if T::DTYPE == GgmlDType::Q8_1 && std::mem::size_of::<T>() == std::mem::size_of::<Q8_1Fields>() {
        let ys = unsafe { std::slice::from_raw_parts_mut(ys.as_mut_ptr().cast::<Q8_1Fields>(), ys.len()) };
        quantize_q8_1(xs, ys);
    } else {
        T::from_float(xs, ys);
    }
}

/// candle's `BlockQ8_0`, field for field (`#[repr(C)] { d: f16, qs: [i8; 32] }`).
#[repr(C)]
struct Q8_0Fields {
    d: f16,
    qs: [i8; 32],
}

/// candle's `BlockQ8_1`, field for field (`#[repr(C)] { d: f16, s: f16, qs: [i8; 32] }`).
#[repr(C)]
struct Q8_1Fields {
    d: f16,
    s: f16,
    qs: [i8; 32],
}

const _: () = assert!(std::mem::size_of::<Q8_0Fields>() == std::mem::size_of::<BlockQ8_0>());
const _: () = assert!(std::mem::size_of::<Q8_1Fields>() == std::mem::size_of::<BlockQ8_1>());
const _: () = assert!(std::mem::align_of::<Q8_0Fields>() == std::mem::align_of::<BlockQ8_0>());
const _: () = assert!(std::mem::align_of::<Q8_1Fields>() == std::mem::align_of::<BlockQ8_1>());

/// ggml's `quantize_row_q8_0`: per 32 values, d = max |x| / 127 and q = round(x / d).
fn quantize_q8_0(xs: &[f32], ys: &mut [Q8_0Fields]) {
    for (block, xs) in ys.iter_mut().zip(xs.as_chunks::<32>().0) {
        let d = block_max_abs(xs) / 127.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        block.d = f16::from_f32(d);
        for (q, &x) in block.qs.iter_mut().zip(xs) {
            *q = round_half_away_from_zero(x * id) as i8;
        }
    }
}

/// ggml's `quantize_row_q8_1`: Q8_0's values, plus s = d · Σq (rounded as candle does: the sum in
/// f16, times d in f16).
fn quantize_q8_1(xs: &[f32], ys: &mut [Q8_1Fields]) {
    for (block, xs) in ys.iter_mut().zip(xs.as_chunks::<32>().0) {
        let d = block_max_abs(xs) / 127.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        block.d = f16::from_f32(d);
        let mut sum = 0i32;
        for (q, &x) in block.qs.iter_mut().zip(xs) {
            *q = round_half_away_from_zero(x * id) as i8;
            sum += i32::from(*q);
        }
        block.s = f16::from_f32(sum as f32) * block.d;
    }
}

/// max |x| over a block, NaNs skipped (as `f32::max` does), in eight lanes so it vectorises: the
/// maximum does not depend on the order values are compared in.
#[inline(always)]
fn block_max_abs(xs: &[f32; 32]) -> f32 {
    let mut lanes = [0f32; 8];
    for chunk in xs.as_chunks::<8>().0 {
        for (lane, &x) in lanes.iter_mut().zip(chunk) {
            let a = x.abs();
            *lane = if a > *lane { a } else { *lane };
        }
    }
    lanes.into_iter().fold(0.0, |m, a| if a > m { a } else { m })
}

/// `f32::round` (halves away from zero) without libm: truncation by an integer conversion, then
/// one step away from zero if the part cut off is at least a half. Exact for every f32: below
/// 2^24 the cut-off part is computed exactly, above it values are integers already; infinities
/// saturate and NaN gives 0 when converted to an integer, as `f32::round(x) as i8` does.
#[inline(always)]
fn round_half_away_from_zero(v: f32) -> f32 {
    let t = v as i32 as f32;
    let cut = v - t;
    if cut >= 0.5 {
        t + 1.0
    } else if cut <= -0.5 {
        t - 1.0
    } else {
        t
    }
}

fn blocks_per_row<T: GgmlType>(k: usize) -> Result<usize> {
    if !k.is_multiple_of(T::BLCK_SIZE) {
        return Err(Error::Config(format!(
            "a row of {k} values cannot be stored as {:?}: it needs a multiple of {}",
            T::DTYPE,
            T::BLCK_SIZE
        )));
    }
    Ok(k / T::BLCK_SIZE)
}

/// An empty product needs no kernel (and the kernels' row chunking needs k > 0): y is empty, or
/// all zeros when k = 0.
fn is_trivial(m: usize, k: usize, n: usize, out: &mut [f32]) -> bool {
    if k == 0 {
        out.fill(0.0);
    }
    m == 0 || n == 0 || k == 0
}

/// Checks that x is m×k, W holds n rows of `w_row_len` elements and y is m×n.
#[allow(clippy::too_many_arguments)]
fn check_lengths(
    weights: GgmlDType,
    x_len: usize,
    m: usize,
    k: usize,
    w_len: usize,
    n: usize,
    w_row_len: usize,
    out_len: usize,
) -> Result<()> {
    let mismatch = |what: &str, len: usize, rows: usize, cols: usize| {
        Error::Config(format!("{weights:?} matmul: {what} has {len} values, not {rows}×{cols}"))
    };
    if Some(x_len) != m.checked_mul(k) {
        return Err(mismatch("the input", x_len, m, k));
    }
    if Some(w_len) != n.checked_mul(w_row_len) {
        return Err(mismatch("the weight matrix", w_len, n, w_row_len));
    }
    if Some(out_len) != m.checked_mul(n) {
        return Err(mismatch("the output", out_len, m, n));
    }
    Ok(())
}

/// Runs `f` (one model pass: an encoder, a decoder step) on a thread of rayon's pool, the calling
/// thread waiting, when the pool has several threads and this thread is not one of them. The
/// products inside then split their work from a pool thread, which runs a part itself: the caller
/// hands the work over once per pass instead of once per product. (In the browser a hand-over
/// wakes a Web Worker and then the caller through `Atomics.wait`/`notify`: with a pool of one thread,
/// a Marian first token took 42 ms against the single-thread build's 38.)
pub fn on_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    if rayon::current_thread_index().is_none() && pool_threads() > 1 {
        rayon::scope(|_| f())
    } else {
        f()
    }
}

/// The threads of rayon's pool; in the browser without asking rayon (which would build a pool of
/// its own) before the threaded build's pool has started.
fn pool_threads() -> usize {
    #[cfg(target_arch = "wasm32")]
    return crate::threads::threads().unwrap_or(1);
    #[cfg(not(target_arch = "wasm32"))]
    rayon::current_num_threads()
}

/// W rows per rayon task: about four tasks per thread so uneven threads still balance, each task
/// a contiguous run of 16–64 rows; a multiple of 4 so the quantised kernel's row quads never
/// straddle two tasks (which keeps its results identical to candle's).
fn weight_rows_per_task(n: usize) -> usize {
    let tasks = rayon::current_num_threads() * 4;
    n.div_ceil(tasks).clamp(16, 64).next_multiple_of(4)
}

/// Products up to this many multiply-adds run on the calling thread: a decoder step's small
/// matrices (512 × 512 in Whisper base, tens of microseconds) take about as long as waking the
/// pool's workers, which in the browser are Web Workers woken through `Atomics.notify`.
const SERIAL_MAX_MACS: usize = 1 << 19;

/// Runs `run(first_w_row, out_t)` over consecutive runs of `rows_per_task` W rows, in parallel
/// when rayon has more than one thread. `out_t` is the run's part of yᵀ (rows × m, row-major):
/// transposed, each task's outputs are one contiguous slice it can own. For m = 1 yᵀ is y itself;
/// otherwise it is gathered into y afterwards (m·n copies against m·n·k multiply-adds). Used for
/// the few-row products; many-row ones write in place ([`for_each_weight_columns`]).
fn for_each_weight_run(
    out: &mut [f32],
    m: usize,
    n: usize,
    k: usize,
    rows_per_task: usize,
    run: impl Fn(usize, &mut [f32]) + Sync,
) {
    let run_all = |out_t: &mut [f32]| {
        let values_per_task = rows_per_task * m;
        if rayon::current_num_threads() == 1 || m * n * k <= SERIAL_MAX_MACS {
            out_t.chunks_mut(values_per_task).enumerate().for_each(|(task, o)| run(task * rows_per_task, o));
        } else {
            out_t.par_chunks_mut(values_per_task).enumerate().for_each(|(task, o)| run(task * rows_per_task, o));
        }
    };
    if m == 1 {
        run_all(out);
        return;
    }
    let mut out_t = vec![0.0; n * m];
    run_all(&mut out_t);
    transpose_into(&out_t, m, n, out);
}

/// The columns `first..first + len` of y (m×n, row-major) that one [`for_each_weight_columns`]
/// task computes: outputs (i, first + j), written in place, row by row.
pub struct OutColumns<'a> {
    y: *mut f32,
    m: usize,
    n: usize,
    first: usize,
    len: usize,
    _y: std::marker::PhantomData<&'a mut [f32]>,
}

impl<'a> OutColumns<'a> {
    /// Every column of y (m×n): one task's view of a whole product.
    pub fn all(y: &'a mut [f32], m: usize, n: usize) -> Self {
        assert_eq!(y.len(), m * n, "OutColumns: y is not m×n");
        OutColumns { y: y.as_mut_ptr(), m, n, first: 0, len: n, _y: std::marker::PhantomData }
    }

    /// How many columns (W rows) this task owns.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// This task's part of y's row `i`.
    pub fn row(&mut self, i: usize) -> &mut [f32] {
        assert!(i < self.m, "OutColumns: row {i} of {}", self.m);
        // SAFETY: y holds m·n values and first + len ≤ n, so the slice lies inside row i. Tasks own
        // disjoint column ranges and `&mut self` allows one slice at a time, so no two live slices
        // overlap while y is exclusively borrowed for 'a.
        unsafe { std::slice::from_raw_parts_mut(self.y.add(i * self.n + self.first), self.len) }
    }
}

/// An output buffer shared by the pool's tasks, each writing only its own elements (columns of y
/// here, a block's rows × head columns in `fused_attention`): whoever creates it holds the buffer's
/// `&mut` for as long as the tasks run and answers for the disjointness.
#[derive(Clone, Copy)]
pub(crate) struct SharedOut(pub(crate) *mut f32);
// SAFETY: tasks write disjoint elements through it while the creator's `&mut [f32]` is held.
unsafe impl Sync for SharedOut {}
unsafe impl Send for SharedOut {}

impl SharedOut {
    /// The element `offset` past the start. Through a method, so closures capture the Sync
    /// wrapper rather than its raw field.
    pub(crate) fn at(self, offset: usize) -> *mut f32 {
        self.0.wrapping_add(offset)
    }
}

/// Like [`for_each_weight_run`], for many-row products: each task writes its outputs straight into
/// y's columns (an [`OutColumns`]) instead of a transposed slice gathered afterwards. With an
/// encoder's 1500 rows the gather was an m·n pass through memory after every product.
fn for_each_weight_columns(out: &mut [f32], m: usize, n: usize, rows_per_task: usize, run: impl Fn(usize, OutColumns) + Sync) {
    assert!(out.len() == m * n && rows_per_task > 0, "for_each_weight_columns: y is not m×n");
    let y = SharedOut(out.as_mut_ptr());
    let task = |index: usize| {
        let first = index * rows_per_task;
        let len = rows_per_task.min(n - first);
        run(first, OutColumns { y: y.at(0), m, n, first, len, _y: std::marker::PhantomData });
    };
    let tasks = n.div_ceil(rows_per_task);
    if rayon::current_num_threads() == 1 {
        (0..tasks).for_each(task);
    } else {
        (0..tasks).into_par_iter().for_each(task);
    }
}

/// Columns per tile of [`transpose_into`]: 16 reads streams, and 64 bytes written per row.
const TRANSPOSE_TILE: usize = 16;

/// `out` (m×n) = `out_t` (n×m)ᵀ. Tile by tile of [`TRANSPOSE_TILE`] columns, so that both sides
/// move through whole cache lines (column by column, every write of an encoder's 1500 rows would
/// touch another line); rows of `out` split over rayon's pool when large, as an elementwise pass.
fn transpose_into(out_t: &[f32], m: usize, n: usize, out: &mut [f32]) {
    if n == 0 || out_t.len() != m * n || out.len() != m * n {
        return;
    }
    activations::for_each_part(out, n, |first_row, part| {
        for first_column in (0..n).step_by(TRANSPOSE_TILE) {
            let columns = TRANSPOSE_TILE.min(n - first_column);
            let tile_t = &out_t[first_column * m..(first_column + columns) * m];
            for (row, out_row) in part.chunks_exact_mut(n).enumerate() {
                let i = first_row + row;
                let out_tile = &mut out_row[first_column..first_column + columns];
                for (column, value) in out_tile.iter_mut().enumerate() {
                    *value = tile_t[column * m + i];
                }
            }
        }
    });
}

/// One run of W rows (f32) against every x row: `out_t[j·m + i] = x_i · w_j`.
fn matvec_f32(x: &[f32], k: usize, w_run: &[f32], out_t: &mut [f32]) {
    let m = x.len() / k;
    for (w_row, out_row) in w_run.chunks_exact(k).zip(out_t.chunks_exact_mut(m)) {
        for (x_row, o) in x.chunks_exact(k).zip(out_row) {
            *o = dot(x_row, w_row);
        }
    }
}

/// One run of W block rows against every quantised x row, as candle's `k_quants::matmul` computes
/// each output: `vec_dot_4` over row quads, then `vec_dot_2` and `vec_dot` for the last 1–3 rows.
fn dot_quant_run<T: GgmlType>(
    x_blocks: &[T::VecDotType],
    m: usize,
    k: usize,
    blocks_per_row: usize,
    w_run: &[T],
    out_t: &mut [f32],
) {
    let w_row = |j: usize| &w_run[j * blocks_per_row..(j + 1) * blocks_per_row];
    let x_row = |i: usize| &x_blocks[i * blocks_per_row..(i + 1) * blocks_per_row];
    let rows = w_run.len() / blocks_per_row;
    let quad_rows = rows & !3;
    for j in (0..quad_rows).step_by(4) {
        for i in 0..m {
            let (d0, d1, d2, d3) = T::vec_dot_4(k, w_row(j), w_row(j + 1), w_row(j + 2), w_row(j + 3), x_row(i));
            out_t[j * m + i] = d0;
            out_t[(j + 1) * m + i] = d1;
            out_t[(j + 2) * m + i] = d2;
            out_t[(j + 3) * m + i] = d3;
        }
    }
    for i in 0..m {
        if rows - quad_rows >= 2 {
            let (d0, d1) = T::vec_dot_2(k, w_row(quad_rows), w_row(quad_rows + 1), x_row(i));
            out_t[quad_rows * m + i] = d0;
            out_t[(quad_rows + 1) * m + i] = d1;
        }
        if (rows - quad_rows) % 2 == 1 {
            out_t[(rows - 1) * m + i] = T::vec_dot(k, w_row(rows - 1), x_row(i));
        }
    }
}

/// Whether [`dot_nibbles_run`] multiplies `dtype` with 1–4 rows: the block types candle 0.11.1
/// has no simd128 dot for (it has Q4_0's and Q8_0's), whose scalar dots took 3.5–4.6x as long as
/// Q4_0's for a decoder's vocabulary projection (BENCHMARKS.md, issue 10's fifth session).
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
fn nibble_dots(dtype: GgmlDType) -> bool {
    matches!(dtype, GgmlDType::Q4_1 | GgmlDType::Q5_0 | GgmlDType::Q5_1)
}

/// Q4_1, Q5_0 or Q5_1 W rows against 1–4 x rows quantised to `T::VecDotType` (Q8_1: f16 scale,
/// f16 sum, 32 × i8; Q5_0's Q8_0: f16 scale, 32 × i8), `out_t[j·m + i]`, with the browser's SIMD:
/// each block's values unpacked as for the int8 tiles, its integer dot product in `dot_i16x8`
/// (exact, so its order does not matter), then candle's float steps for the block in candle's
/// order (`vec_dot_unopt`: sumi·d_w·d_x, plus m_w·s_x where W has a minimum), block after block:
/// every output equals candle's bit for bit.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
fn dot_nibbles_run<T: GgmlType>(x_blocks: &[T::VecDotType], m: usize, blocks_per_row: usize, w_run: &[T], out_t: &mut [f32]) {
    use core::arch::wasm32::*;
    use int8_gemm::simd_block::{bytes16, values};
    let has_min = matches!(T::DTYPE, GgmlDType::Q4_1 | GgmlDType::Q5_1);
    // Q8_1 holds its sum after the scale; both are candle's repr(C) layouts (sizes checked).
    let (x_size, x_values_at) = if has_min { (36, 4) } else { (34, 2) };
    let w_size = T::DTYPE.type_size();
    assert!(
        m <= QUANT_DOT_MAX_ROWS && std::mem::size_of::<T::VecDotType>() == x_size && std::mem::size_of::<T>() == w_size,
        "dot_nibbles_run: block layouts"
    );
    let w_row_bytes = blocks_per_row * w_size;
    if w_row_bytes == 0 {
        out_t.fill(0.0);
        return;
    }
    // x's blocks widened to i16 once per run, with their scale and sum as f32 (read per W row
    // otherwise): block b of row i at [i·blocks_per_row + b].
    let x_blocks: Vec<([v128; 4], f32, f32)> = block_bytes(x_blocks)
        .chunks_exact(x_size)
        .map(|x| {
            let (low, high) = (bytes16(x, x_values_at), bytes16(x, x_values_at + 16));
            let wide = [i16x8_extend_low_i8x16(low), i16x8_extend_high_i8x16(low), i16x8_extend_low_i8x16(high), i16x8_extend_high_i8x16(high)];
            (wide, int8_gemm::half_at(x, 0), if has_min { int8_gemm::half_at(x, 2) } else { 0.0 })
        })
        .collect();
    for (w_row, out) in block_bytes(w_run).chunks_exact(w_row_bytes).zip(out_t.chunks_exact_mut(m)) {
        let mut sums = [0f32; QUANT_DOT_MAX_ROWS];
        for (b, w) in w_row.chunks_exact(w_size).enumerate() {
            let ([low, high], w_scale, w_min) = values(T::DTYPE, w);
            let w16 = [i16x8_extend_low_i8x16(low), i16x8_extend_high_i8x16(low), i16x8_extend_low_i8x16(high), i16x8_extend_high_i8x16(high)];
            for (i, sum) in sums[..m].iter_mut().enumerate() {
                let (x16, x_scale, x_sum) = &x_blocks[i * blocks_per_row + b];
                let dots = i32x4_add(
                    i32x4_add(i32x4_dot_i16x8(w16[0], x16[0]), i32x4_dot_i16x8(w16[1], x16[1])),
                    i32x4_add(i32x4_dot_i16x8(w16[2], x16[2]), i32x4_dot_i16x8(w16[3], x16[3])),
                );
                let sumi = int8_gemm::lane_sum(dots) as f32;
                *sum += if has_min { sumi * w_scale * x_scale + w_min * x_sum } else { sumi * w_scale * x_scale };
            }
        }
        out.copy_from_slice(&sums[..m]);
    }
}

/// The bytes of ggml blocks (plain repr(C) structs of f16s and bytes).
fn block_bytes<T: GgmlType>(blocks: &[T]) -> &[u8] {
    // SAFETY: candle's block types are repr(C) structs of f16 and integer fields with no padding
    // that is read as a value here (the layouts are ggml's); the slice covers exactly `blocks`.
    unsafe { std::slice::from_raw_parts(blocks.as_ptr() as *const u8, std::mem::size_of_val(blocks)) }
}

/// `blocks` as candle's Q8_0 fields, if they are Q8_0 blocks (see [`quantize_blocks`] for the cast).
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
fn q8_0_fields<T: GgmlType>(blocks: &[T]) -> Option<&[Q8_0Fields]> {
    // SAFETY: as in quantize_blocks: a `T` whose DTYPE is Q8_0 is BlockQ8_0, laid out as Q8_0Fields.
    (T::DTYPE == GgmlDType::Q8_0 && std::mem::size_of::<T>() == std::mem::size_of::<Q8_0Fields>())
        .then(|| unsafe { std::slice::from_raw_parts(blocks.as_ptr().cast::<Q8_0Fields>(), blocks.len()) })
}

/// Up to 4 x rows of Q8_0 blocks, widened once per product for [`dot_q8_0_run`]: each block's 32
/// values as i16 and its scale as f32.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
struct WideQ8Rows {
    values: Vec<i16>,
    scales: Vec<f32>,
    m: usize,
    blocks: usize,
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
impl WideQ8Rows {
    fn new(x_blocks: &[Q8_0Fields], m: usize, blocks: usize) -> Self {
        let values = x_blocks.iter().flat_map(|block| block.qs.map(i16::from)).collect();
        let scales = x_blocks.iter().map(|block| f16_bits_to_f32(block.d.to_bits())).collect();
        WideQ8Rows { values, scales, m, blocks }
    }
}

/// One run of Q8_0 W rows against 1–4 Q8_0 x rows (decoder steps): `out_t[j·m + i] = x_i · w_j`,
/// bit for bit what candle's simd128 `vec_dot_q8_0_q8_0` returns (the same per-lane integer sums,
/// the same f32 scale `dw·dx` times each lane, the lanes added in the same order).
///
/// Why not candle's: it widens the x block from i8 again for every W row, converts both block
/// scales from f16 with the `half` crate's branching software conversion, and takes one W row per
/// call. Here x is widened once per product, the W block is widened once for every x row, and its
/// scale is converted without branches (`f16_bits_to_f32`).
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
fn dot_q8_0_run(x: &WideQ8Rows, w_run: &[Q8_0Fields], out_t: &mut [f32]) {
    // G W rows at a time: G·R independent sums in flight, where one row's chain of block additions
    // alone leaves the processor waiting on each addition's latency (measured: 1×768×3072 took as
    // long as candle's). Each output's own arithmetic is unchanged by the grouping.
    match x.m {
        1 => dot_q8_0_rows::<1, 4>(x, w_run, out_t),
        2 => dot_q8_0_rows::<2, 2>(x, w_run, out_t),
        3 => dot_q8_0_rows::<3, 2>(x, w_run, out_t),
        _ => dot_q8_0_rows::<4, 2>(x, w_run, out_t),
    }
}

/// R x rows against the run's W rows, G at a time (the last few one by one).
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
fn dot_q8_0_rows<const R: usize, const G: usize>(x: &WideQ8Rows, w_run: &[Q8_0Fields], out_t: &mut [f32]) {
    let blocks = x.blocks;
    assert!(x.m == R && x.values.len() == R * blocks * 32 && out_t.len() * blocks == w_run.len() * R, "dot_q8_0_run: operand sizes");
    let grouped = w_run.len() / (G * blocks) * G * blocks;
    for (w_rows, out) in w_run[..grouped].chunks_exact(G * blocks).zip(out_t.chunks_exact_mut(G * R)) {
        dot_q8_0_group::<R, G>(x, w_rows, out);
    }
    for (w_row, out) in w_run[grouped..].chunks_exact(blocks).zip(out_t[grouped / blocks * R..].chunks_exact_mut(R)) {
        dot_q8_0_group::<R, 1>(x, w_row, out);
    }
}

/// G W rows (`w_rows`, G·blocks blocks) against R x rows: `out[g·R + r]`.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[inline(always)]
fn dot_q8_0_group<const R: usize, const G: usize>(x: &WideQ8Rows, w_rows: &[Q8_0Fields], out: &mut [f32]) {
    use core::arch::wasm32::*;
    let blocks = x.blocks;
    let mut acc = [[f32x4_splat(0.0); R]; G];
    for b in 0..blocks {
        for (g, acc) in acc.iter_mut().enumerate() {
            let block = &w_rows[g * blocks + b];
            // SAFETY: `qs` holds 32 bytes: two 16-byte loads (wasm loads need no alignment).
            let (low, high) = unsafe { (v128_load(block.qs.as_ptr().cast()), v128_load(block.qs[16..].as_ptr().cast())) };
            let w = [i16x8_extend_low_i8x16(low), i16x8_extend_high_i8x16(low), i16x8_extend_low_i8x16(high), i16x8_extend_high_i8x16(high)];
            let w_scale = f16_bits_to_f32(block.d.to_bits());
            for (r, acc) in acc.iter_mut().enumerate() {
                let values = &x.values[(r * blocks + b) * 32..][..32];
                // SAFETY: `values` holds 32 i16: four 16-byte loads.
                let xs: [v128; 4] = std::array::from_fn(|part| unsafe { v128_load(values[part * 8..].as_ptr().cast()) });
                let sum = i32x4_add(
                    i32x4_add(i32x4_add(i32x4_dot_i16x8(w[0], xs[0]), i32x4_dot_i16x8(w[1], xs[1])), i32x4_dot_i16x8(w[2], xs[2])),
                    i32x4_dot_i16x8(w[3], xs[3]),
                );
                let scale = f32x4_splat(w_scale * x.scales[r * blocks + b]);
                *acc = f32x4_add(*acc, f32x4_mul(f32x4_convert_i32x4(sum), scale));
            }
        }
    }
    for (out, acc) in out.chunks_exact_mut(R).zip(acc) {
        for (o, acc) in out.iter_mut().zip(acc) {
            *o = f32x4_extract_lane::<0>(acc) + f32x4_extract_lane::<1>(acc) + f32x4_extract_lane::<2>(acc) + f32x4_extract_lane::<3>(acc);
        }
    }
}

/// Large m with compact (f16 or quantised) weights: `widen` fills a per-thread scratch buffer with
/// one run of W rows in f32, and every x row is multiplied against it. Widening costs k per W row
/// against m·k multiply-adds; the scratch holds one run (at most 64 rows), never the matrix.
fn gemm_widened_run(x: &[f32], m: usize, k: usize, widen: impl FnOnce(&mut [f32]), columns: &mut OutColumns) {
    thread_local! {
        static WIDENED: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    }
    let rows = columns.len();
    assert!(columns.m == m && x.len() >= m * k, "gemm_widened_run: x and y disagree");
    if rows == 0 || m == 0 {
        return;
    }
    WIDENED.with(|scratch| {
        let mut scratch = scratch.borrow_mut();
        scratch.resize(rows * k, 0.0);
        widen(&mut scratch);
        #[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
        f32_tiles_run(x, m, k, &scratch, columns);
        // gemm's register blocking beats per-output dot products several times over here.
        // SAFETY: outputs (i, j), i < m, j < rows, land at y + i·n + first + j: this task's own
        // columns of y (see OutColumns::row). Single-threaded: this already runs as a pool task.
        #[cfg(not(all(target_arch = "wasm32", target_feature = "relaxed-simd")))]
        unsafe {
            gemm_x_wt(x, m, k, &scratch, rows, columns.y.add(columns.first), columns.n, gemm::Parallelism::None)
        }
    })
}

/// The relaxed-SIMD build's many-row f32 product for one task's run of W rows (`w`, rows × k):
/// packed into a per-thread buffer and multiplied in fused multiply-add tiles (`f32_tiles`).
#[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
fn f32_tiles_run(x: &[f32], m: usize, k: usize, w: &[f32], columns: &mut OutColumns) {
    thread_local! {
        static PACKED: RefCell<super::f32_tiles::PackedRun> = RefCell::new(Default::default());
    }
    PACKED.with(|packed| {
        let mut packed = packed.borrow_mut();
        packed.fill(w, columns.len(), k);
        super::f32_tiles::gemm_run(x, m, k, &packed, columns);
    });
}

/// `dst(i, j) = x_i · w_j` for the m rows of x and the `rows` rows of w, written at
/// `dst + i·dst_row_stride + j`, through gemm (the crate candle's matmul uses), with W read
/// transposed in place.
///
/// # Safety
/// Every `dst + i·dst_row_stride + j` (i < m, j < rows) must be valid for writes, and nothing
/// else may access those values during the call.
#[allow(clippy::too_many_arguments)]
#[cfg(not(all(target_arch = "wasm32", target_feature = "relaxed-simd")))]
unsafe fn gemm_x_wt(x: &[f32], m: usize, k: usize, w: &[f32], rows: usize, dst: *mut f32, dst_row_stride: usize, parallelism: gemm::Parallelism) {
    // gemm reads through raw pointers: these bounds are what makes that sound. Callers have
    // checked every length against m, n and k, so a failure here is a bug in this file.
    assert!(x.len() >= m * k && w.len() >= rows * k, "gemm_x_wt operands too short");
    if m == 0 || rows == 0 {
        return;
    }
    // SAFETY: the assert keeps every read inside x and w; the caller vouches for dst.
    unsafe {
        gemm::gemm(
            m,
            rows,
            k,
            dst,
            1,
            dst_row_stride as isize,
            false,
            x.as_ptr(),
            1,
            k as isize,
            w.as_ptr(),
            k as isize,
            1,
            0.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        )
    }
}

/// gemm's threads come from rayon's global pool too; with one thread it should not ask for it.
#[cfg(not(all(target_arch = "wasm32", target_feature = "relaxed-simd")))]
fn pool_parallelism() -> gemm::Parallelism {
    match rayon::current_num_threads() {
        1 => gemm::Parallelism::None,
        threads => gemm::Parallelism::Rayon(threads),
    }
}

/// Σ a[i]·b[i] over the shorter of the two.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        // SAFETY: the CPU has just been checked for the features the function is compiled with.
        return unsafe { dot_avx2_fma(a, b) };
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    return dot_simd128(a, b);
    #[allow(unreachable_code)]
    dot_portable(a, b)
}

/// Σ x[i]·w[i] for f16 w, widened on the way: the x86 kernel converts 8 lanes per instruction
/// (F16C); elsewhere w is widened 64 values at a time into a buffer on the stack.
fn dot_f16(x: &[f32], w: &[f16]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() && std::arch::is_x86_feature_detected!("f16c") {
        // SAFETY: the CPU has just been checked for the features the function is compiled with.
        return unsafe { dot_f16_avx2_fma(x, w) };
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    return dot_f16_simd128(x, [w])[0];
    #[allow(unreachable_code)]
    let mut widened = [0.0; 64];
    let mut sum = 0.0;
    for (x_block, w_block) in x.chunks(64).zip(w.chunks(64)) {
        let widened = &mut widened[..w_block.len()];
        widen_f16(w_block, widened);
        sum += dot(x_block, widened);
    }
    sum
}

/// The browser's f16 dot product, widening eight weights per step in three vector operations:
/// sign-extended to 32 bits and shifted left by 13, an f16's sign lands on f32's sign bit and its
/// exponent and mantissa on f32's fields (masked out of the sign copies between them), where it
/// reads as its value times 2^-112 for normals and subnormals alike; one multiply by 2^112
/// restores it, sign included. Infinities and NaNs would come out finite, so `Matrix` refuses f16
/// weights holding them when it is built (`linear::check_finite_f16`).
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
fn dot_f16_simd128<const R: usize>(x: &[f32], w: [&[f16]; R]) -> [f32; R] {
    use core::arch::wasm32::*;
    let fields = i32x4_splat(0x8fff_e000u32 as i32);
    let scale = f32x4_splat(f32::from_bits(0x7780_0000));
    let widen = |h: v128| f32x4_mul(v128_and(i32x4_shl(h, 13), fields), scale);
    dot_half_simd128(x, w, |halves| (widen(i32x4_extend_low_i16x8(halves)), widen(i32x4_extend_high_i16x8(halves))))
}

/// Σ x[i]·w_r[i] in the browser for R rows of 16-bit weights: eight at a time, `widen` turning
/// one v128 of 8 weights into the two f32x4 that meet x's two halves of the same 8 values (as
/// `prepare` laid them out); two accumulators per row, fused multiply-adds in the relaxed-SIMD
/// build; the last k mod 8 values one by one. A row's value does not depend on R.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
fn dot_half_simd128<H: HalfFloat, const R: usize>(
    x: &[f32],
    w: [&[H]; R],
    widen: impl Fn(core::arch::wasm32::v128) -> (core::arch::wasm32::v128, core::arch::wasm32::v128),
) -> [f32; R] {
    use core::arch::wasm32::*;
    let len = w.iter().fold(x.len(), |len, w| len.min(w.len()));
    let (x_chunks, x_tail) = x[..len].as_chunks::<8>();
    let mut sums = [[f32x4_splat(0.0); 2]; R];
    for (c, x_chunk) in x_chunks.iter().enumerate() {
        // SAFETY: each load reads 4 f32 of the chunk, or 8 16-bit weights of row r at c·8 .. c·8 + 8
        // ≤ len ≤ its length (wasm loads need no alignment).
        let (x_lo, x_hi) = unsafe { (v128_load(x_chunk.as_ptr().cast()), v128_load(x_chunk.as_ptr().add(4).cast())) };
        for (sums, w) in sums.iter_mut().zip(&w) {
            let (w_lo, w_hi) = widen(unsafe { v128_load(w.as_ptr().add(c * 8).cast()) });
            sums[0] = mul_add_f32x4(x_lo, w_lo, sums[0]);
            sums[1] = mul_add_f32x4(x_hi, w_hi, sums[1]);
        }
    }
    let tail_start = len - x_tail.len();
    std::array::from_fn(|r| {
        let sum = f32x4_add(sums[r][0], sums[r][1]);
        let lanes = f32x4_extract_lane::<0>(sum) + f32x4_extract_lane::<1>(sum) + f32x4_extract_lane::<2>(sum) + f32x4_extract_lane::<3>(sum);
        lanes + x_tail.iter().zip(&w[r][tail_start..len]).map(|(&a, &b)| a * b.to_f32()).sum::<f32>()
    })
}

/// a·b + c on four lanes: one fused multiply-add in the relaxed-SIMD build (where the engine has
/// it; `f32x4.relaxed_madd` may also round twice), else a multiply and an add.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[inline(always)]
fn mul_add_f32x4(a: core::arch::wasm32::v128, b: core::arch::wasm32::v128, c: core::arch::wasm32::v128) -> core::arch::wasm32::v128 {
    #[cfg(target_feature = "relaxed-simd")]
    return core::arch::wasm32::f32x4_relaxed_madd(a, b, c);
    #[cfg(not(target_feature = "relaxed-simd"))]
    core::arch::wasm32::f32x4_add(c, core::arch::wasm32::f32x4_mul(a, b))
}

/// Σ x[i]·w[i] for bf16 w: a bf16 is the top half of an f32, so widening is a shift (in the
/// browser a shift and a mask, `dot_bf16_simd128`); elsewhere a loop the compiler vectorises.
fn dot_bf16(x: &[f32], w: &[bf16]) -> f32 {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    return dot_bf16_simd128(x, [w])[0];
    #[allow(unreachable_code)]
    let mut sums = [0.0f32; 8];
    let (x_chunks, x_tail) = x.as_chunks::<8>();
    let (w_chunks, w_tail) = w[..x.len().min(w.len())].as_chunks::<8>();
    for (x_chunk, w_chunk) in x_chunks.iter().zip(w_chunks) {
        for lane in 0..8 {
            sums[lane] += x_chunk[lane] * HalfFloat::to_f32(w_chunk[lane]);
        }
    }
    sums.iter().sum::<f32>() + x_tail.iter().zip(w_tail).map(|(&a, &b)| a * HalfFloat::to_f32(b)).sum::<f32>()
}

/// The browser's bf16 dot product over an x row `prepare`d as even-then-odd runs of 8: a v128 of
/// 8 bf16 holds, read as four 32-bit lanes, the odd-indexed weights already in f32 position (the
/// high halves: mask the low ones off) and the even-indexed ones in the low halves (shift them
/// up). Two operations widen 8 weights; no shuffle (a shuffle-based widening ran at f16's speed).
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
fn dot_bf16_simd128<const R: usize>(x: &[f32], w: [&[bf16]; R]) -> [f32; R] {
    use core::arch::wasm32::*;
    let high = i32x4_splat(0xffff_0000u32 as i32);
    dot_half_simd128(x, w, |halves| (i32x4_shl(halves, 16), v128_and(halves, high)))
}

#[cfg(target_arch = "x86_64")]
fn has_avx2_fma() -> bool {
    std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
}

/// The x86-64 baseline is SSE2; nearly every CPU running this has 8-wide fused multiply-adds.
/// Four independent accumulators (32 lanes) hide the FMA latency, so a W row sitting in L1 is
/// consumed at two FMAs per cycle when several x rows share it.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn dot_avx2_fma(a: &[f32], b: &[f32]) -> f32 {
    use std::arch::x86_64::*;
    let len = a.len().min(b.len());
    let (a_chunks, a_tail) = a[..len].as_chunks::<32>();
    let (b_chunks, b_tail) = b[..len].as_chunks::<32>();
    let mut sums = [_mm256_setzero_ps(); 4];
    for (a_chunk, b_chunk) in a_chunks.iter().zip(b_chunks) {
        for (lane, sum) in sums.iter_mut().enumerate() {
            // SAFETY: each load reads 8 of the chunk's 32 values.
            let (a8, b8) = unsafe { (_mm256_loadu_ps(a_chunk.as_ptr().add(lane * 8)), _mm256_loadu_ps(b_chunk.as_ptr().add(lane * 8))) };
            *sum = _mm256_fmadd_ps(a8, b8, *sum);
        }
    }
    sum_lanes_avx(sums) + a_tail.iter().zip(b_tail).map(|(a, b)| a * b).sum::<f32>()
}

/// [`dot_avx2_fma`] reading W as f16, converted 8 lanes at a time in registers: half the memory
/// traffic of f32 weights, which is what bounds a one-row product.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
fn dot_f16_avx2_fma(x: &[f32], w: &[f16]) -> f32 {
    use std::arch::x86_64::*;
    let len = x.len().min(w.len());
    let (x_chunks, x_tail) = x[..len].as_chunks::<32>();
    let (w_chunks, w_tail) = w[..len].as_chunks::<32>();
    let mut sums = [_mm256_setzero_ps(); 4];
    for (x_chunk, w_chunk) in x_chunks.iter().zip(w_chunks) {
        for (lane, sum) in sums.iter_mut().enumerate() {
            // SAFETY: each load reads 8 of the chunk's 32 values (f16 is 16 bits, 8 make 128).
            let (x8, w8) = unsafe {
                (
                    _mm256_loadu_ps(x_chunk.as_ptr().add(lane * 8)),
                    _mm256_cvtph_ps(_mm_loadu_si128(w_chunk.as_ptr().add(lane * 8).cast())),
                )
            };
            *sum = _mm256_fmadd_ps(x8, w8, *sum);
        }
    }
    sum_lanes_avx(sums) + x_tail.iter().zip(w_tail).map(|(x, w)| x * w.to_f32()).sum::<f32>()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
fn sum_lanes_avx(sums: [std::arch::x86_64::__m256; 4]) -> f32 {
    use std::arch::x86_64::*;
    let sum = _mm256_add_ps(_mm256_add_ps(sums[0], sums[1]), _mm256_add_ps(sums[2], sums[3]));
    let mut lanes = [0.0f32; 8];
    // SAFETY: `lanes` holds the 8 values stored.
    unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), sum) };
    lanes.iter().sum()
}

/// The browser's SIMD: four f32x4 accumulators (16 lanes) so no add waits on the one before.
/// (wasm has no fused multiply-add without relaxed-simd.)
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
fn dot_simd128(a: &[f32], b: &[f32]) -> f32 {
    use core::arch::wasm32::*;
    let len = a.len().min(b.len());
    let (a_chunks, a_tail) = a[..len].as_chunks::<16>();
    let (b_chunks, b_tail) = b[..len].as_chunks::<16>();
    let mut sums = [f32x4_splat(0.0); 4];
    for (a_chunk, b_chunk) in a_chunks.iter().zip(b_chunks) {
        for (lane, sum) in sums.iter_mut().enumerate() {
            // SAFETY: each load reads 4 of the chunk's 16 values (wasm loads need no alignment).
            let (a4, b4) = unsafe { (v128_load(a_chunk.as_ptr().add(lane * 4).cast()), v128_load(b_chunk.as_ptr().add(lane * 4).cast())) };
            *sum = f32x4_add(*sum, f32x4_mul(a4, b4));
        }
    }
    let sum = f32x4_add(f32x4_add(sums[0], sums[1]), f32x4_add(sums[2], sums[3]));
    let lanes = [f32x4_extract_lane::<0>(sum), f32x4_extract_lane::<1>(sum), f32x4_extract_lane::<2>(sum), f32x4_extract_lane::<3>(sum)];
    lanes.iter().sum::<f32>() + a_tail.iter().zip(b_tail).map(|(a, b)| a * b).sum::<f32>()
}

/// Any other target: eight independent partial sums, which LLVM may or may not vectorise.
#[cfg_attr(all(target_arch = "wasm32", target_feature = "simd128"), allow(dead_code))]
fn dot_portable(a: &[f32], b: &[f32]) -> f32 {
    let len = a.len().min(b.len());
    let (a_chunks, a_tail) = a[..len].as_chunks::<8>();
    let (b_chunks, b_tail) = b[..len].as_chunks::<8>();
    let mut sums = [0.0f32; 8];
    for (a_chunk, b_chunk) in a_chunks.iter().zip(b_chunks) {
        for lane in 0..8 {
            sums[lane] += a_chunk[lane] * b_chunk[lane];
        }
    }
    sums.iter().sum::<f32>() + a_tail.iter().zip(b_tail).map(|(a, b)| a * b).sum::<f32>()
}

/// f16 → f32 for a run of weights, branch-free so that LLVM vectorises it (SSE2, simd128). half's
/// slice conversion, which dispatches to F16C per 8 values, measured several times slower here.
fn widen_f16(src: &[f16], dst: &mut [f32]) {
    for (wide, &narrow) in dst.iter_mut().zip(src) {
        *wide = f16_bits_to_f32(narrow.to_bits());
    }
}

/// One f16 (as bits) as f32, without branches (exactly `half`'s value; a NaN stays a NaN).
#[inline(always)]
pub(crate) fn f16_bits_to_f32(bits: u16) -> f32 {
    let sign = u32::from(bits & 0x8000) << 16;
    let magnitude = u32::from(bits & 0x7fff);
    // Moved into f32's exponent and mantissa fields, a finite f16 reads as its value times 2^-112,
    // normals and subnormals alike and exactly; one multiply by 2^112 restores it. Infinities and
    // NaNs (all-ones exponent) keep an all-ones exponent and their payload instead.
    let finite = (f32::from_bits(magnitude << 13) * f32::from_bits(0x7780_0000)).to_bits();
    let non_finite = 0x7f80_0000 | (magnitude << 13);
    f32::from_bits(sign | if magnitude >= 0x7c00 { non_finite } else { finite })
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::quantized::k_quants::{self, BlockQ4_0, BlockQ4_1, BlockQ5_0, BlockQ5_1, BlockQ8_0};

    const ROW_COUNTS: [usize; 5] = [1, 2, 3, 8, 33];
    /// Odd output sizes ending in 1, 2 and 3 rows past a multiple of 4, and spanning several tasks.
    const OUTPUT_COUNTS: [usize; 3] = [77, 130, 331];

    fn random(rng: &mut fastrand::Rng, len: usize) -> Vec<f32> {
        (0..len).map(|_| rng.f32() * 2.0 - 1.0).collect()
    }

    /// A pass goes to a thread of a pool of several, from outside it; from inside a pool (or with
    /// one thread) it runs where it is called. The products inside give the same values either way.
    #[test]
    fn passes_run_on_the_pool_and_give_the_same_products() {
        let mut rng = fastrand::Rng::with_seed(11);
        let (m, k, n) = (3, 256, 4099);
        let (x, w) = (random(&mut rng, m * k), random(&mut rng, n * k));
        let product = || {
            let mut out = vec![0.0; m * n];
            matmul_f32(&x, m, k, &w, n, &mut out).unwrap();
            (rayon::current_thread_index(), out)
        };
        let (here, direct) = product();
        assert_eq!(here, None, "the test thread is not a pool thread");
        let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
        let pooled = pool.install(|| {
            let (on, out) = on_pool(product);
            assert_eq!(on, rayon::current_thread_index(), "inside a pool: run in place");
            out
        });
        assert!(direct.iter().zip(&pooled).all(|(a, b)| a.to_bits() == b.to_bits()));
        if rayon::current_num_threads() > 1 {
            let (on, global) = on_pool(product);
            assert!(on.is_some(), "outside the global pool of {} threads: handed to it", rayon::current_num_threads());
            assert!(direct.iter().zip(&global).all(|(a, b)| a.to_bits() == b.to_bits()));
        }
    }

    /// The exact product in f64, and per output the scale Σ|x·w| its rounding error is relative to.
    fn reference(x: &[f32], m: usize, k: usize, w: &[f32], n: usize) -> (Vec<f64>, Vec<f64>) {
        let mut exact = vec![0.0; m * n];
        let mut scale = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                for p in 0..k {
                    let product = f64::from(x[i * k + p]) * f64::from(w[j * k + p]);
                    exact[i * n + j] += product;
                    scale[i * n + j] += product.abs();
                }
            }
        }
        (exact, scale)
    }

    fn assert_close(what: &str, got: &[f32], exact: &[f64], scale: &[f64], relative: f64) {
        assert_eq!(got.len(), exact.len());
        for (index, ((&g, &e), &s)) in got.iter().zip(exact).zip(scale).enumerate() {
            let error = (f64::from(g) - e).abs();
            assert!(error <= relative * s + 1e-30, "{what}: output {index} is {g}, expected {e} (error {error}, scale {s})");
        }
    }

    /// Runs `f` on a pool of `threads` threads: 1 takes the serial paths, 3 splits the work into
    /// uneven tasks.
    fn with_threads<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
        rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("a thread pool").install(f)
    }

    #[test]
    fn f32_matches_the_exact_product() {
        let mut rng = fastrand::Rng::with_seed(1);
        for threads in [1, 3] {
            for k in [96, 100] {
                for n in OUTPUT_COUNTS {
                    let w = random(&mut rng, n * k);
                    for m in ROW_COUNTS {
                        let x = random(&mut rng, m * k);
                        let mut got = vec![f32::NAN; m * n];
                        with_threads(threads, || matmul_f32(&x, m, k, &w, n, &mut got)).unwrap();
                        let (exact, scale) = reference(&x, m, k, &w, n);
                        assert_close(&format!("f32 m={m} k={k} n={n} threads={threads}"), &got, &exact, &scale, 1e-5);
                    }
                }
            }
        }
    }

    /// `H` weights: as accurate as f32 arithmetic on the rounded weights, and within half a unit
    /// of `H`'s last place (`half_ulp`, relative) of the unrounded product.
    fn check_half<H: HalfFloat>(round: fn(f32) -> H, widen: fn(H) -> f32, half_ulp: f64) {
        let mut rng = fastrand::Rng::with_seed(2);
        for threads in [1, 3] {
            for (n, k) in OUTPUT_COUNTS.into_iter().flat_map(|n| [(n, 96), (n, 100)]) {
                let w = random(&mut rng, n * k);
                let w_half: Vec<H> = w.iter().map(|&v| round(v)).collect();
                let w_rounded: Vec<f32> = w_half.iter().map(|&v| widen(v)).collect();
                for m in ROW_COUNTS {
                    let x = random(&mut rng, m * k);
                    let mut got = vec![f32::NAN; m * n];
                    with_threads(threads, || matmul_half(&x, m, k, &w_half, n, &mut got)).unwrap();
                    let what = format!("{:?} m={m} k={k} n={n} threads={threads}", H::DTYPE);
                    let (exact_rounded, scale) = reference(&x, m, k, &w_rounded, n);
                    assert_close(&what, &got, &exact_rounded, &scale, 1e-5);
                    let (exact, scale) = reference(&x, m, k, &w, n);
                    assert_close(&what, &got, &exact, &scale, half_ulp + 1e-5);
                }
            }
        }
    }

    #[test]
    fn f16_is_as_accurate_as_f32_on_the_rounded_weights() {
        check_half(f16::from_f32, f16::to_f32, 1.0 / 2048.0);
    }

    #[test]
    fn bf16_is_as_accurate_as_f32_on_the_rounded_weights() {
        check_half(bf16::from_f32, bf16::to_f32, 1.0 / 256.0);
        // Every bf16, infinities and NaNs included, widens exactly.
        let all: Vec<bf16> = (0..=u16::MAX).map(bf16::from_bits).collect();
        let mut wide = vec![0.0; all.len()];
        bf16::widen(&all, &mut wide);
        for (narrow, wide) in all.iter().zip(&wide) {
            // (half quiets signalling NaNs on the way; a NaN stays a NaN here too.)
            let expected = narrow.to_f32();
            assert!(expected.to_bits() == wide.to_bits() || (expected.is_nan() && wide.is_nan()), "{narrow:?}");
        }
    }

    /// Few rows: equal to candle's own quantised matmul for the same blocks, bit for bit; many rows:
    /// as accurate as f32 on the dequantised weights. Either way within `relative` (root mean
    /// square, relative to the exact product's) of the unquantised product.
    fn check_quant<T: GgmlType>(seed: u64, relative: f64) {
        let mut rng = fastrand::Rng::with_seed(seed);
        let k = 128;
        for threads in [1, 3] {
            for n in OUTPUT_COUNTS {
                let w = random(&mut rng, n * k);
                let blocks = quantize_rows::<T>(&w, n, k).unwrap();
                for m in ROW_COUNTS {
                    let x = random(&mut rng, m * k);
                    let mut got = vec![f32::NAN; m * n];
                    with_threads(threads, || matmul_quant(&x, m, k, &blocks, n, &mut got)).unwrap();
                    let what = format!("{:?} m={m} n={n} threads={threads}", T::DTYPE);

                    if m <= QUANT_DOT_MAX_ROWS {
                        let mut candle = vec![f32::NAN; m * n];
                        k_quants::matmul((m, k, n), &x, &blocks, &mut candle).unwrap();
                        assert!(got.iter().zip(&candle).all(|(a, b)| a.to_bits() == b.to_bits()), "{what}: differs from candle");
                    } else {
                        let mut dequantised = vec![0.0; n * k];
                        T::to_float(&blocks, &mut dequantised);
                        let (exact, scale) = reference(&x, m, k, &dequantised, n);
                        assert_close(&what, &got, &exact, &scale, 1e-5);
                    }

                    let (exact, _) = reference(&x, m, k, &w, n);
                    let error: f64 = got.iter().zip(&exact).map(|(&g, &e)| (f64::from(g) - e).powi(2)).sum();
                    let size: f64 = exact.iter().map(|e| e * e).sum();
                    assert!((error / size).sqrt() < relative, "{what}: relative error {}", (error / size).sqrt());
                }
            }
        }
    }

    #[test]
    fn q8_0_matches_candle_and_the_exact_product() {
        check_quant::<BlockQ8_0>(3, 0.01);
    }

    #[test]
    fn q4_0_matches_candle_and_the_exact_product() {
        check_quant::<BlockQ4_0>(4, 0.15);
    }

    #[test]
    fn q4_1_matches_candle_and_the_exact_product() {
        check_quant::<BlockQ4_1>(5, 0.15);
    }

    #[test]
    fn q5_0_matches_candle_and_the_exact_product() {
        check_quant::<BlockQ5_0>(6, 0.08);
    }

    #[test]
    fn q5_1_matches_candle_and_the_exact_product() {
        check_quant::<BlockQ5_1>(7, 0.08);
    }

    #[test]
    fn quantize_rows_quantises_each_row_on_its_own() {
        let mut rng = fastrand::Rng::with_seed(8);
        let (n, k) = (5, 64);
        let w = random(&mut rng, n * k);
        let blocks = quantize_rows::<BlockQ8_0>(&w, n, k).unwrap();
        let mut row_blocks = vec![BlockQ8_0::zeros(); 2];
        for (row, got) in w.chunks(k).zip(blocks.chunks(2)) {
            BlockQ8_0::from_float(row, &mut row_blocks);
            assert_eq!(got, &row_blocks[..]);
        }
    }

    /// Blocks exactly as candle's `from_float` writes them (compared as bytes), for ordinary values
    /// at many scales, exact halves (both roundings), zeros, subnormals, infinities and NaN.
    fn check_quantize_blocks<T: GgmlType + std::fmt::Debug>() {
        let mut rng = fastrand::Rng::with_seed(9);
        let mut xs: Vec<f32> = Vec::new();
        for scale in [1e-30f32, 1e-6, 0.01, 1.0, 37.5, 1e4, 1e30] {
            xs.extend((0..32 * 64).map(|_| (rng.f32() * 2.0 - 1.0) * scale));
        }
        // max |x| = 127 makes d = 1, so x itself is rounded: every half from -127.5 up.
        for start in [-127.5f32, -63.5, 0.5, 64.5] {
            let mut block: Vec<f32> = (0..31).map(|i| start + i as f32).collect();
            block.push(127.0);
            xs.extend(block);
        }
        let specials = [0.0, -0.0, f32::MIN_POSITIVE / 8.0, 1e-45, f32::INFINITY, f32::NEG_INFINITY, f32::NAN, f32::MAX, -f32::MAX];
        for &special in &specials {
            xs.extend((0..32).map(|i| if i % 3 == 0 { special } else { (i as f32 - 16.0) * 0.37 }));
            xs.extend([special; 32]);
        }
        let blocks = xs.len() / 32;
        let (mut ours, mut candles) = (vec![T::zeros(); blocks], vec![T::zeros(); blocks]);
        quantize_blocks(&xs, &mut ours);
        T::from_float(&xs, &mut candles);
        let bytes = |b: &[T]| unsafe { std::slice::from_raw_parts(b.as_ptr() as *const u8, std::mem::size_of_val(b)) }.to_vec();
        let (ours, candles) = (bytes(&ours), bytes(&candles));
        let size = std::mem::size_of::<T>();
        for (i, (a, b)) in ours.chunks(size).zip(candles.chunks(size)).enumerate() {
            assert_eq!(a, b, "{:?} block {i} of {:?}", T::DTYPE, &xs[i * 32..(i + 1) * 32]);
        }
    }

    #[test]
    fn q8_blocks_are_candles_bit_for_bit() {
        check_quantize_blocks::<BlockQ8_0>();
        check_quantize_blocks::<k_quants::BlockQ8_1>();
        // Other types are candle's own code.
        check_quantize_blocks::<BlockQ4_1>();
    }

    #[test]
    fn rounding_is_f32_round() {
        let mut rng = fastrand::Rng::with_seed(10);
        let halves = (-300..300).map(|i| i as f32 * 0.5);
        let nearly_halves = (-300..300).flat_map(|i| {
            let h = i as f32 * 0.5 + 0.25;
            [f32::from_bits(h.to_bits() + 1), f32::from_bits(h.to_bits() - 1)]
        });
        let randoms = (0..100_000).map(|_| (rng.f32() - 0.5) * 300.0);
        let specials = [0.49999997f32, -0.49999997, 0.5, -0.5, 8388607.5, -8388607.5, 16777217.0, 3e9, -3e9, f32::INFINITY, f32::NEG_INFINITY, f32::NAN, -0.0];
        for v in halves.chain(nearly_halves).chain(randoms).chain(specials) {
            let (ours, std) = (round_half_away_from_zero(v), v.round());
            assert!(ours as i8 == std as i8, "{v}: {ours} vs {std}");
            if v.abs() < 2e9 {
                assert!(ours == std || ours.is_nan() && std.is_nan(), "{v}: {ours} vs {std}");
            }
        }
    }

    #[test]
    fn transposes_are_exact_on_any_pool() {
        let mut rng = fastrand::Rng::with_seed(11);
        for threads in [1, 3] {
            for (m, n) in [(1, 5), (3, 17), (33, 16), (300, 131), (1500, 40)] {
                let out_t = random(&mut rng, n * m);
                let mut out = vec![f32::NAN; m * n];
                with_threads(threads, || transpose_into(&out_t, m, n, &mut out));
                for i in 0..m {
                    for j in 0..n {
                        assert_eq!(out[i * n + j].to_bits(), out_t[j * m + i].to_bits(), "m={m} n={n} ({i}, {j}) threads={threads}");
                    }
                }
            }
        }
    }

    #[test]
    fn few_row_products_above_the_serial_size_split_over_the_pool_with_the_same_results() {
        let mut rng = fastrand::Rng::with_seed(5);
        let (k, n) = (2048, 301);
        let w = random(&mut rng, n * k);
        let blocks = quantize_rows::<BlockQ8_0>(&w, n, k).unwrap();
        for m in [1, 3] {
            assert!(m * n * k > SERIAL_MAX_MACS);
            let x = random(&mut rng, m * k);
            let run = |threads| {
                let (mut f32_out, mut q8_out) = (vec![f32::NAN; m * n], vec![f32::NAN; m * n]);
                with_threads(threads, || {
                    matmul_f32(&x, m, k, &w, n, &mut f32_out).unwrap();
                    matmul_quant(&x, m, k, &blocks, n, &mut q8_out).unwrap();
                });
                (f32_out, q8_out)
            };
            let (one, three) = (run(1), run(3));
            assert!(one.0.iter().zip(&three.0).all(|(a, b)| a.to_bits() == b.to_bits()), "f32 m={m}");
            assert!(one.1.iter().zip(&three.1).all(|(a, b)| a.to_bits() == b.to_bits()), "q8 m={m}");
            let (exact, scale) = reference(&x, m, k, &w, n);
            assert_close(&format!("f32 m={m}"), &three.0, &exact, &scale, 1e-5);
        }
    }

    #[test]
    fn bad_shapes_are_errors_not_panics() {
        let x = vec![0.0; 2 * 40];
        let mut out = vec![0.0; 2 * 3];
        let err = quantize_rows::<BlockQ8_0>(&vec![0.0; 3 * 40], 3, 40).unwrap_err();
        assert!(matches!(err, Error::Config(ref message) if message.contains("multiple of 32")), "{err}");
        let blocks = vec![BlockQ8_0::zeros(); 3];
        assert!(matches!(matmul_quant(&x, 2, 40, &blocks, 3, &mut out), Err(Error::Config(_))));

        let x = vec![0.0; 2 * 32];
        assert!(matches!(matmul_quant(&x, 2, 32, &blocks[..2], 3, &mut out), Err(Error::Config(_))));
        assert!(matches!(quantize_rows::<BlockQ8_0>(&x, 3, 32), Err(Error::Config(_))));
        assert!(matches!(matmul_f32(&x, 2, 32, &vec![0.0; 3 * 32], 3, &mut out[..5]), Err(Error::Config(_))));
        assert!(matches!(matmul_f32(&x[..63], 2, 32, &vec![0.0; 3 * 32], 3, &mut out), Err(Error::Config(_))));
        assert!(matches!(matmul_half(&x, 2, 32, &[f16::ZERO; 3 * 31], 3, &mut out), Err(Error::Config(_))));
        assert!(matches!(matmul_f32(&x, usize::MAX, 2, &[], 0, &mut []), Err(Error::Config(_))));
    }

    #[test]
    fn empty_products() {
        let mut out = vec![f32::NAN; 6];
        matmul_f32(&[], 2, 0, &[], 3, &mut out).unwrap();
        assert_eq!(out, [0.0; 6]);
        out.fill(f32::NAN);
        matmul_quant::<BlockQ8_0>(&[], 2, 0, &[], 3, &mut out).unwrap();
        assert_eq!(out, [0.0; 6]);
        matmul_half(&[], 0, 5, &[f16::ONE; 15], 3, &mut []).unwrap();
        matmul_quant::<BlockQ4_0>(&[1.0; 32], 1, 32, &[], 0, &mut []).unwrap();
        assert!(quantize_rows::<BlockQ4_0>(&[], 0, 32).unwrap().is_empty());
        assert_eq!(quantize_rows::<BlockQ4_0>(&[], 4, 0).unwrap().len(), 0);
    }

    #[test]
    fn every_f16_widens_like_half() {
        for bits in 0..=u16::MAX {
            let (got, expected) = (f16_bits_to_f32(bits), f16::from_bits(bits).to_f32());
            assert!(got.to_bits() == expected.to_bits() || got.is_nan() && expected.is_nan(), "{bits:#06x}: {got} vs {expected}");
        }
    }
}
