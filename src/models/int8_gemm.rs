//! Many-row products with block-quantised weights, in integer arithmetic: y = x·Wᵀ where x (m×k)
//! is quantised per 32-value block to 8 bits and W keeps its own ggml blocks (Q8_0, Q4_0, Q4_1,
//! Q5_0, Q5_1), both unpacked to i16 so that one `i32x4.dot_i16x8_s` does eight multiply-adds.
//!
//! Why: an encoder multiplies hundreds of rows by every weight matrix. Widening the weights to
//! f32 for gemm (kernels::gemm_widened_run) leaves the browser doing f32 arithmetic without fused
//! multiply-add, four products per instruction pair; ONNX Runtime's q8 models run the same layers
//! as 8-bit integer products and were twice as fast (BENCHMARKS.md, issue 10). Here each output is
//!
//!   y[i][j] = Σ_b ( dx[i][b]·dw[j][b]·Σ_t xq[i][t]·wq[j][t]  +  mw[j][b]·dx[i][b]·Σ_t xq[i][t] )
//!
//! over the 32-value blocks b (mw: the block minimum of Q4_1/Q5_1, else 0), the formula of ggml's
//! `vec_dot` for these types (x quantised like `Q8_0::from_float`), summed in a different order.
//! The kernel takes 2 x rows × 4 W rows at a time; the four W rows' block scales sit side by side
//! so one vector multiply scales four outputs.

use candle_core::quantized::GgmlDType;
use half::f16;

/// Values per block; every type this file reads has 32.
const BLOCK: usize = 32;

/// Whether [`gemm_run`] reads blocks of `dtype`.
pub fn supports(dtype: GgmlDType) -> bool {
    matches!(dtype, GgmlDType::Q8_0 | GgmlDType::Q4_0 | GgmlDType::Q4_1 | GgmlDType::Q5_0 | GgmlDType::Q5_1)
}

/// x rows quantised per block: x ≈ scale·q with |q| ≤ 127 (kept as i16, ready to multiply).
pub struct QuantizedRows {
    q: Vec<i16>,
    /// (m, blocks): each block's scale.
    scale: Vec<f32>,
    /// (m, blocks): scale·Σq, what a block minimum of W is multiplied by.
    scaled_sum: Vec<f32>,
    m: usize,
    k: usize,
}

impl QuantizedRows {
    /// `x`: m rows of k values (k a multiple of 32). A block holding a NaN or infinity gets a NaN
    /// scale, so what it touches is NaN, as in f32 arithmetic (and is refused downstream).
    pub fn new(x: &[f32], m: usize, k: usize) -> Self {
        debug_assert!(k % BLOCK == 0 && x.len() == m * k);
        let blocks = m * (k / BLOCK);
        let mut rows = QuantizedRows { q: vec![0; m * k], scale: vec![0.0; blocks], scaled_sum: vec![0.0; blocks], m, k };
        // An encoder's activations (1500 rows of a Whisper window) on rayon's pool: in the
        // threaded build this pass would otherwise be one thread's work before every product.
        let rows_per_task = (1 << 14) / k.max(1) + 1;
        if rayon::current_num_threads() > 1 && m > rows_per_task {
            use rayon::prelude::*;
            let (values, blocks) = (rows_per_task * k, rows_per_task * k / BLOCK);
            x.par_chunks(values)
                .zip(rows.q.par_chunks_mut(values))
                .zip(rows.scale.par_chunks_mut(blocks))
                .zip(rows.scaled_sum.par_chunks_mut(blocks))
                .for_each(|(((x, q), scale), scaled_sum)| quantize_blocks(x, q, scale, scaled_sum));
        } else {
            quantize_blocks(x, &mut rows.q, &mut rows.scale, &mut rows.scaled_sum);
        }
        rows
    }
}

/// Each 32-value block of `x` as integers `q` with its `scale` and `scaled_sum` (see
/// `QuantizedRows`).
fn quantize_blocks(x: &[f32], q: &mut [i16], scales: &mut [f32], scaled_sums: &mut [f32]) {
    for (b, (values, q)) in x.chunks_exact(BLOCK).zip(q.chunks_exact_mut(BLOCK)).enumerate() {
        // Compare-select and round-half-even (wasm's f32.nearest): f32::max and f32::round
        // are libm calls in wasm, and this runs over every activation of every encoder product.
        let amax = values.iter().fold(0f32, |a, v| if v.abs() > a { v.abs() } else { a });
        if !values.iter().all(|v| v.is_finite()) {
            scales[b] = f32::NAN;
            scaled_sums[b] = f32::NAN;
            continue;
        }
        let scale = amax / 127.0;
        let inverse = if scale > 0.0 { 1.0 / scale } else { 0.0 };
        let mut sum = 0i32;
        for (q, v) in q.iter_mut().zip(values) {
            *q = ((v * inverse).round_ties_even() as i16).clamp(-127, 127);
            sum += *q as i32;
        }
        scales[b] = scale;
        scaled_sums[b] = scale * sum as f32;
    }
}

/// A run of W rows unpacked from their blocks: `q` (rows rounded up to 4) × k, and per block the
/// scale and minimum of the four-row groups laid out [block][row] (padding rows are zero).
#[derive(Default)]
pub struct UnpackedRun {
    q: Vec<i16>,
    scale: Vec<f32>,
    min: Vec<f32>,
    has_min: bool,
    rows: usize,
    padded: usize,
}

impl UnpackedRun {
    /// Unpack `rows` rows of k values stored as `dtype` blocks in `bytes`, reusing this buffer.
    /// Panics if `dtype` is not [`supports`]ed or `bytes` is not rows × k values of it (callers
    /// check both).
    pub fn fill(&mut self, dtype: GgmlDType, bytes: &[u8], rows: usize, k: usize) {
        let blocks = k / BLOCK;
        let type_size = dtype.type_size();
        assert!(supports(dtype) && k % BLOCK == 0 && bytes.len() == rows * blocks * type_size, "int8_gemm: bad run");
        let padded = rows.next_multiple_of(4);
        self.q.clear();
        self.q.resize(padded * k, 0);
        self.scale.clear();
        self.scale.resize(blocks * padded, 0.0);
        self.min.clear();
        self.min.resize(blocks * padded, 0.0);
        self.has_min = matches!(dtype, GgmlDType::Q4_1 | GgmlDType::Q5_1);
        self.rows = rows;
        self.padded = padded;
        for (index, block) in bytes.chunks_exact(type_size).enumerate() {
            let (row, b) = (index / blocks, index % blocks);
            let q: &mut [i16; BLOCK] = (&mut self.q[row * k + b * BLOCK..][..BLOCK]).try_into().unwrap();
            let (scale, min) = unpack_block(dtype, block, q);
            self.scale[b * padded + row] = scale;
            self.min[b * padded + row] = min;
        }
    }
}

fn half_at(bytes: &[u8], at: usize) -> f32 {
    f16::from_le_bytes([bytes[at], bytes[at + 1]]).to_f32()
}

/// One ggml block (little-endian bytes, the layout of ggml's `block_q*` structs) as its 32
/// integers, scale and minimum: value t = scale·q[t] + min.
fn unpack_block(dtype: GgmlDType, block: &[u8], q: &mut [i16; BLOCK]) -> (f32, f32) {
    // Q4/Q5: byte t of `qs` holds value t in its low nibble and value t + 16 in its high one; Q5
    // adds each value's fifth bit from the 32-bit `qh` (bit t for value t).
    let nibbles = |qs: &[u8], qh: u32, offset: i16, q: &mut [i16; BLOCK]| {
        for t in 0..BLOCK / 2 {
            let high = |bit: usize| (((qh >> bit) & 1) << 4) as i16;
            q[t] = (qs[t] & 0x0f) as i16 + high(t) - offset;
            q[t + 16] = (qs[t] >> 4) as i16 + high(t + 16) - offset;
        }
    };
    let qh_at = |at: usize| u32::from_le_bytes([block[at], block[at + 1], block[at + 2], block[at + 3]]);
    match dtype {
        GgmlDType::Q8_0 => {
            for (q, &byte) in q.iter_mut().zip(&block[2..2 + BLOCK]) {
                *q = byte as i8 as i16;
            }
            (half_at(block, 0), 0.0)
        }
        GgmlDType::Q4_0 => {
            nibbles(&block[2..18], 0, 8, q);
            (half_at(block, 0), 0.0)
        }
        GgmlDType::Q4_1 => {
            nibbles(&block[4..20], 0, 0, q);
            (half_at(block, 0), half_at(block, 2))
        }
        GgmlDType::Q5_0 => {
            nibbles(&block[6..22], qh_at(2), 16, q);
            (half_at(block, 0), 0.0)
        }
        GgmlDType::Q5_1 => {
            nibbles(&block[8..24], qh_at(4), 0, q);
            (half_at(block, 0), half_at(block, 2))
        }
        other => unreachable!("int8_gemm cannot unpack {other:?}"),
    }
}

/// `out_t[j·m + i] = x_i · w_j` for every x row i and run row j (`out_t`: run rows × m).
pub fn gemm_run(x: &QuantizedRows, w: &UnpackedRun, out_t: &mut [f32]) {
    assert!(x.k * w.padded == w.q.len() && out_t.len() == w.rows * x.m, "int8_gemm: operand sizes");
    let pairs = x.m / 2;
    for pair in 0..pairs {
        for group in 0..w.padded / 4 {
            let sums = tile::<2>(x, 2 * pair, w, group);
            store(&sums, 2 * pair, x.m, w.rows, group, out_t);
        }
    }
    if x.m % 2 == 1 {
        for group in 0..w.padded / 4 {
            let sums = tile::<1>(x, x.m - 1, w, group);
            store(&sums, x.m - 1, x.m, w.rows, group, out_t);
        }
    }
}

/// Write the outputs of x rows first_row.. against the four W rows of `group` (not padding).
fn store<const R: usize>(sums: &[[f32; 4]; R], first_row: usize, m: usize, rows: usize, group: usize, out_t: &mut [f32]) {
    for (r, four) in sums.iter().enumerate() {
        for (jj, &value) in four.iter().enumerate() {
            let j = group * 4 + jj;
            if j < rows {
                out_t[j * m + first_row + r] = value;
            }
        }
    }
}

/// R x rows from `first_row` against the four W rows of `group`: [row][W row] outputs.
#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
fn tile<const R: usize>(x: &QuantizedRows, first_row: usize, w: &UnpackedRun, group: usize) -> [[f32; 4]; R] {
    let (k, blocks) = (x.k, x.k / BLOCK);
    let mut acc = [[0f32; 4]; R];
    for (r, acc) in acc.iter_mut().enumerate() {
        let i = first_row + r;
        let x_row = &x.q[i * k..(i + 1) * k];
        for (jj, acc) in acc.iter_mut().enumerate() {
            let j = group * 4 + jj;
            let w_row = &w.q[j * k..(j + 1) * k];
            for b in 0..blocks {
                let span = b * BLOCK..(b + 1) * BLOCK;
                let dot: i32 = x_row[span.clone()].iter().zip(&w_row[span]).map(|(&a, &c)| a as i32 * c as i32).sum();
                let (dx, dw) = (x.scale[i * blocks + b], w.scale[b * w.padded + j]);
                *acc += dot as f32 * (dx * dw) + w.min[b * w.padded + j] * x.scaled_sum[i * blocks + b];
            }
        }
    }
    acc
}

/// The browser's SIMD: per block, eight-value chunks of the R x rows and four W rows meet in
/// `i32x4.dot_i16x8_s`; the four rows' sums are gathered into one vector by a transposing add,
/// converted to f32 and scaled with the four rows' scales at once.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
fn tile<const R: usize>(x: &QuantizedRows, first_row: usize, w: &UnpackedRun, group: usize) -> [[f32; 4]; R] {
    use core::arch::wasm32::*;
    let (k, blocks, padded) = (x.k, x.k / BLOCK, w.padded);
    let x_rows: [&[i16]; R] = std::array::from_fn(|r| &x.q[(first_row + r) * k..(first_row + r + 1) * k]);
    let w_rows: [&[i16]; 4] = std::array::from_fn(|jj| &w.q[(group * 4 + jj) * k..(group * 4 + jj + 1) * k]);
    let mut acc = [f32x4_splat(0.0); R];
    for b in 0..blocks {
        let mut dots = [[i32x4_splat(0); 4]; R];
        for chunk in 0..BLOCK / 8 {
            let at = b * BLOCK + chunk * 8;
            // SAFETY: `at + 8 ≤ k` and every row slice holds k values (wasm loads need no alignment).
            let xs: [v128; R] = std::array::from_fn(|r| unsafe { v128_load(x_rows[r][at..at + 8].as_ptr().cast()) });
            for (jj, w_row) in w_rows.iter().enumerate() {
                // SAFETY: as above.
                let wv = unsafe { v128_load(w_row[at..at + 8].as_ptr().cast()) };
                for r in 0..R {
                    dots[r][jj] = i32x4_add(dots[r][jj], i32x4_dot_i16x8(xs[r], wv));
                }
            }
        }
        // SAFETY: group·4 + 4 ≤ padded, so the four values are inside this block's scales/minimums.
        let (w_scale, w_min) = unsafe {
            (v128_load(w.scale[b * padded + group * 4..][..4].as_ptr().cast()), v128_load(w.min[b * padded + group * 4..][..4].as_ptr().cast()))
        };
        for r in 0..R {
            let i = first_row + r;
            let [a, bb, c, d] = dots[r];
            // Transposing add: [Σa, Σb, Σc, Σd] from four vectors of partial sums.
            let ab = i32x4_add(i32x4_shuffle::<0, 4, 1, 5>(a, bb), i32x4_shuffle::<2, 6, 3, 7>(a, bb));
            let cd = i32x4_add(i32x4_shuffle::<0, 4, 1, 5>(c, d), i32x4_shuffle::<2, 6, 3, 7>(c, d));
            let sums = i32x4_add(i32x4_shuffle::<0, 1, 4, 5>(ab, cd), i32x4_shuffle::<2, 3, 6, 7>(ab, cd));
            let scale = f32x4_mul(w_scale, f32x4_splat(x.scale[i * blocks + b]));
            acc[r] = f32x4_add(acc[r], f32x4_mul(f32x4_convert_i32x4(sums), scale));
            if w.has_min {
                acc[r] = f32x4_add(acc[r], f32x4_mul(w_min, f32x4_splat(x.scaled_sum[i * blocks + b])));
            }
        }
    }
    std::array::from_fn(|r| {
        [f32x4_extract_lane::<0>(acc[r]), f32x4_extract_lane::<1>(acc[r]), f32x4_extract_lane::<2>(acc[r]), f32x4_extract_lane::<3>(acc[r])]
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::quantized::k_quants::{BlockQ4_0, BlockQ4_1, BlockQ5_0, BlockQ5_1, BlockQ8_0, GgmlType};

    fn bytes_of<T: GgmlType>(blocks: &[T]) -> &[u8] {
        // SAFETY: ggml block types are plain repr(C) structs; the slice covers exactly the blocks.
        unsafe { std::slice::from_raw_parts(blocks.as_ptr() as *const u8, std::mem::size_of_val(blocks)) }
    }

    fn random(rng: &mut fastrand::Rng, len: usize) -> Vec<f32> {
        (0..len).map(|_| rng.f32() * 2.0 - 1.0).collect()
    }

    /// Unpacked blocks are exactly what candle dequantises: scale·q + min, value for value.
    fn check_unpack<T: GgmlType>() {
        let mut rng = fastrand::Rng::with_seed(7);
        let (rows, k) = (6, 96);
        let values = random(&mut rng, rows * k);
        let mut blocks = vec![T::zeros(); rows * k / BLOCK];
        T::from_float(&values, &mut blocks);
        let mut expected = vec![0.0; rows * k];
        T::to_float(&blocks, &mut expected);
        let mut run = UnpackedRun::default();
        run.fill(T::DTYPE, bytes_of(&blocks), rows, k);
        assert_eq!(run.padded, 8);
        for j in 0..rows {
            for t in 0..k {
                let b = t / BLOCK;
                let got = run.scale[b * run.padded + j] * run.q[j * k + t] as f32 + run.min[b * run.padded + j];
                assert_eq!(got, expected[j * k + t], "{:?} row {j} value {t}", T::DTYPE);
            }
        }
    }

    #[test]
    fn unpacks_every_block_type_like_candle() {
        check_unpack::<BlockQ8_0>();
        check_unpack::<BlockQ4_0>();
        check_unpack::<BlockQ4_1>();
        check_unpack::<BlockQ5_0>();
        check_unpack::<BlockQ5_1>();
    }

    /// Products against the exact product of x with the dequantised weights: the only error left
    /// is x's 8-bit rounding (relative to Σ|x·w|, at most half a step of 1/127 per value).
    fn check_product<T: GgmlType>() {
        let mut rng = fastrand::Rng::with_seed(11);
        for (m, n) in [(1, 5), (2, 4), (5, 7), (9, 13)] {
            let k = 64;
            let x = random(&mut rng, m * k);
            let mut blocks = vec![T::zeros(); n * k / BLOCK];
            T::from_float(&random(&mut rng, n * k), &mut blocks);
            let mut w = vec![0.0; n * k];
            T::to_float(&blocks, &mut w);
            let mut run = UnpackedRun::default();
            run.fill(T::DTYPE, bytes_of(&blocks), n, k);
            let mut out_t = vec![f32::NAN; n * m];
            gemm_run(&QuantizedRows::new(&x, m, k), &run, &mut out_t);
            for i in 0..m {
                for j in 0..n {
                    let pairs = (0..k).map(|t| x[i * k + t] as f64 * w[j * k + t] as f64);
                    let exact: f64 = pairs.clone().sum();
                    let scale: f64 = pairs.map(f64::abs).sum();
                    let error = (out_t[j * m + i] as f64 - exact).abs();
                    assert!(error <= scale / 127.0, "{:?} {m}×{n} ({i},{j}): {} vs {exact}", T::DTYPE, out_t[j * m + i]);
                }
            }
        }
    }

    #[test]
    fn products_match_the_dequantised_weights() {
        check_product::<BlockQ8_0>();
        check_product::<BlockQ4_0>();
        check_product::<BlockQ4_1>();
        check_product::<BlockQ5_0>();
        check_product::<BlockQ5_1>();
    }

    #[test]
    fn rows_quantise_alike_on_one_thread_and_on_many() {
        let mut rng = fastrand::Rng::with_seed(3);
        let (m, k) = (700, 64);
        let x = random(&mut rng, m * k);
        let on = |threads| rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap().install(|| QuantizedRows::new(&x, m, k));
        let (one, many) = (on(1), on(3));
        assert_eq!((one.q, one.scale, one.scaled_sum), (many.q, many.scale, many.scaled_sum));
    }

    #[test]
    fn non_finite_activations_give_non_finite_outputs() {
        let mut blocks = vec![BlockQ8_0::zeros(); 2];
        BlockQ8_0::from_float(&[0.25; 64], &mut blocks);
        let mut run = UnpackedRun::default();
        run.fill(GgmlDType::Q8_0, bytes_of(&blocks), 1, 64);
        for bad in [f32::NAN, f32::INFINITY] {
            let mut x = vec![0.5f32; 128];
            x[3] = bad;
            let mut out_t = vec![0.0; 2];
            gemm_run(&QuantizedRows::new(&x, 2, 64), &run, &mut out_t);
            assert!(out_t[0].is_nan() && (out_t[1] - 8.0).abs() < 1e-3, "{bad}: {out_t:?}");
        }
    }
}
