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
//!
//! Layout: W rows are unpacked in panels of 8; within a panel and block, each pair of values t,
//! t+1 of the 8 rows sits side by side ([row 0: t, t+1][row 1: t, t+1]…). One x pair, broadcast
//! to all four lanes, meets four rows' pairs in one `dot_i16x8`, and the lanes of the running sums
//! are already the four rows' outputs: no horizontal additions per block, only one scale multiply
//! per four outputs. The kernel takes 6 x rows × 8 W rows at a time.
//!
//! The relaxed-SIMD build (pkg/relaxed, for browsers that validate it) keeps values as bytes and
//! multiplies with `i32x4.relaxed_dot_i8x16_i7x16_add_s`: sixteen multiply-adds per instruction
//! (one `vpdpbusd` where the CPU has VNNI), 1.8x the i16 kernel's rate measured in Chromium. Its
//! second operand must lie in 0..=127 for the result to be defined, so x is quantised to 7 bits
//! with a zero point per block (x ≈ scale·(q − zero), q in 0..=127): as fine as the 8-bit
//! symmetric steps where a block is one-signed (after GELU), half as fine where it is symmetric.

use candle_core::quantized::GgmlDType;

use super::kernels::OutColumns;

/// Values per block; every type this file reads has 32.
const BLOCK: usize = 32;

/// How this build holds and multiplies the integers (see the module comment).
#[cfg(not(all(target_arch = "wasm32", target_feature = "relaxed-simd")))]
mod scheme {
    /// An x value: −127..=127.
    pub type X = i16;
    /// A W value.
    pub type W = i16;
    /// Values of one row that sit side by side in a panel (one lane of a dot product).
    pub const GROUP: usize = 2;
    /// Whether x has zero points, so the kernel needs each W block's Σq.
    pub const ZERO_POINTS: bool = false;
}
#[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
mod scheme {
    /// An x value: 0..=127, around the block's zero point.
    pub type X = u8;
    /// A W value.
    pub type W = i8;
    /// Values of one row that sit side by side in a panel (one lane of a dot product).
    pub const GROUP: usize = 4;
    /// Whether x has zero points, so the kernel needs each W block's Σq.
    pub const ZERO_POINTS: bool = true;
}
use scheme::GROUP;

/// Whether [`gemm_run`] reads blocks of `dtype`.
pub fn supports(dtype: GgmlDType) -> bool {
    matches!(dtype, GgmlDType::Q8_0 | GgmlDType::Q4_0 | GgmlDType::Q4_1 | GgmlDType::Q5_0 | GgmlDType::Q5_1)
}

/// x rows quantised per block: x ≈ scale·(q − zero), with |q| ≤ 127 and zero = 0, or in the
/// relaxed-SIMD build q in 0..=127 (see the module comment).
pub struct QuantizedRows {
    q: Vec<scheme::X>,
    /// (m, blocks): each block's scale.
    scale: Vec<f32>,
    /// (m, blocks): each block's zero point.
    zero: Vec<i32>,
    /// (m, blocks): scale·Σ(q − zero) ≈ Σx, what a block minimum of W is multiplied by.
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
        let mut rows = QuantizedRows { q: vec![0; m * k], scale: vec![0.0; blocks], zero: vec![0; blocks], scaled_sum: vec![0.0; blocks], m, k };
        // An encoder's activations (1500 rows of a Whisper window) on rayon's pool: in the
        // threaded build this pass would otherwise be one thread's work before every product.
        let rows_per_task = (1 << 14) / k.max(1) + 1;
        if rayon::current_num_threads() > 1 && m > rows_per_task {
            use rayon::prelude::*;
            let (values, blocks) = (rows_per_task * k, rows_per_task * k / BLOCK);
            x.par_chunks(values)
                .zip(rows.q.par_chunks_mut(values))
                .zip(rows.scale.par_chunks_mut(blocks))
                .zip(rows.zero.par_chunks_mut(blocks))
                .zip(rows.scaled_sum.par_chunks_mut(blocks))
                .for_each(|((((x, q), scale), zero), scaled_sum)| quantize_blocks(x, q, scale, zero, scaled_sum));
        } else {
            quantize_blocks(x, &mut rows.q, &mut rows.scale, &mut rows.zero, &mut rows.scaled_sum);
        }
        rows
    }
}

/// The four i32 lanes of `v` added.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub(super) fn lane_sum(v: core::arch::wasm32::v128) -> i32 {
    use core::arch::wasm32::i32x4_extract_lane;
    i32x4_extract_lane::<0>(v) + i32x4_extract_lane::<1>(v) + i32x4_extract_lane::<2>(v) + i32x4_extract_lane::<3>(v)
}

/// The four f32 lanes of `v` folded with `op` (a lane-wise min or max) in two shuffle steps.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
fn fold_lanes(v: core::arch::wasm32::v128, op: impl Fn(core::arch::wasm32::v128, core::arch::wasm32::v128) -> core::arch::wasm32::v128) -> f32 {
    use core::arch::wasm32::*;
    let half = op(v, i32x4_shuffle::<2, 3, 0, 1>(v, v));
    f32x4_extract_lane::<0>(op(half, i32x4_shuffle::<1, 0, 3, 2>(half, half)))
}

/// Each 32-value block of `x` as integers `q` with its `scale` and `scaled_sum` (see
/// `QuantizedRows`): the browser's SIMD, eight vectors per block, the same values as the scalar
/// loop below (maximum of |x| — NaN-propagating, so a NaN or infinity makes it non-finite —,
/// the same division, multiply, round-half-even and clamp).
#[cfg(all(target_arch = "wasm32", target_feature = "simd128", not(target_feature = "relaxed-simd")))]
fn quantize_blocks(x: &[f32], q: &mut [i16], scales: &mut [f32], _zeros: &mut [i32], scaled_sums: &mut [f32]) {
    use core::arch::wasm32::*;
    for (b, (values, q)) in x.chunks_exact(BLOCK).zip(q.chunks_exact_mut(BLOCK)).enumerate() {
        // SAFETY: `values` holds 32 f32: eight 16-byte loads (wasm loads need no alignment).
        let v: [v128; 8] = std::array::from_fn(|i| unsafe { v128_load(values[i * 4..].as_ptr().cast()) });
        let amax4 = v.iter().fold(f32x4_splat(0.0), |a, &v| f32x4_max(a, f32x4_abs(v)));
        // f32x4.max propagates NaN and |±∞| = ∞, so one comparison finds any non-finite value.
        if !u32x4_all_true(f32x4_lt(amax4, f32x4_splat(f32::INFINITY))) {
            scales[b] = f32::NAN;
            scaled_sums[b] = f32::NAN;
            continue;
        }
        let amax = fold_lanes(amax4, |a, b| f32x4_pmax(a, b));
        let scale = amax / 127.0;
        let inverse = f32x4_splat(if scale > 0.0 { 1.0 / scale } else { 0.0 });
        let (low, high) = (i32x4_splat(-127), i32x4_splat(127));
        let ints: [v128; 8] = std::array::from_fn(|i| {
            let n = i32x4_trunc_sat_f32x4(f32x4_nearest(f32x4_mul(v[i], inverse)));
            i32x4_min(i32x4_max(n, low), high)
        });
        let sum4 = ints.iter().fold(i32x4_splat(0), |s, &n| i32x4_add(s, n));
        let sum = lane_sum(sum4);
        for i in 0..4 {
            // SAFETY: `q` holds 32 i16: four 16-byte stores.
            unsafe { v128_store(q[i * 8..].as_mut_ptr().cast(), i16x8_narrow_i32x4(ints[2 * i], ints[2 * i + 1])) };
        }
        scales[b] = scale;
        scaled_sums[b] = scale * sum as f32;
    }
}

/// Each 32-value block of `x` as 7-bit integers `q` around a zero point, with its `scale` and
/// `scaled_sum` (see `QuantizedRows`), for the relaxed-SIMD kernel: the block's range, widened
/// to include 0, is split into 127 steps; zero = round(−min/scale), q = clamp(round(x/scale) +
/// zero, 0, 127). A block holding a NaN or infinity gets a NaN scale, as in the 8-bit scheme.
#[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
fn quantize_blocks(x: &[f32], q: &mut [u8], scales: &mut [f32], zeros: &mut [i32], scaled_sums: &mut [f32]) {
    use core::arch::wasm32::*;
    for (b, (values, q)) in x.chunks_exact(BLOCK).zip(q.chunks_exact_mut(BLOCK)).enumerate() {
        // SAFETY: `values` holds 32 f32: eight 16-byte loads (wasm loads need no alignment).
        let v: [v128; 8] = std::array::from_fn(|i| unsafe { v128_load(values[i * 4..].as_ptr().cast()) });
        // f32x4.min/max propagate NaN, so a NaN or infinity makes the range non-finite.
        let low4 = v.iter().fold(f32x4_splat(0.0), |a, &v| f32x4_min(a, v));
        let high4 = v.iter().fold(f32x4_splat(0.0), |a, &v| f32x4_max(a, v));
        let (low, high) = (fold_lanes(low4, |a, b| f32x4_min(a, b)), fold_lanes(high4, |a, b| f32x4_max(a, b)));
        let range = high - low;
        if !(range < f32::INFINITY) {
            scales[b] = f32::NAN;
            zeros[b] = 0;
            scaled_sums[b] = f32::NAN;
            continue;
        }
        let scale = range / 127.0;
        let inverse = if scale > 0.0 { 1.0 / scale } else { 0.0 };
        let zero = ((-low * inverse).round_ties_even() as i32).clamp(0, 127);
        let (zero4, top) = (i32x4_splat(zero), i32x4_splat(127));
        let ints: [v128; 8] = std::array::from_fn(|i| {
            let n = i32x4_add(i32x4_trunc_sat_f32x4(f32x4_nearest(f32x4_mul(v[i], f32x4_splat(inverse)))), zero4);
            i32x4_min(i32x4_max(n, i32x4_splat(0)), top)
        });
        let sum4 = ints.iter().fold(i32x4_splat(0), |s, &n| i32x4_add(s, n));
        let sum = lane_sum(sum4);
        for i in 0..2 {
            let bytes = u8x16_narrow_i16x8(i16x8_narrow_i32x4(ints[4 * i], ints[4 * i + 1]), i16x8_narrow_i32x4(ints[4 * i + 2], ints[4 * i + 3]));
            // SAFETY: `q` holds 32 bytes: two 16-byte stores.
            unsafe { v128_store(q[i * 16..].as_mut_ptr().cast(), bytes) };
        }
        scales[b] = scale;
        zeros[b] = zero;
        scaled_sums[b] = scale * (sum - BLOCK as i32 * zero) as f32;
    }
}

/// Each 32-value block of `x` as integers `q` with its `scale` and `scaled_sum` (see
/// `QuantizedRows`).
#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
fn quantize_blocks(x: &[f32], q: &mut [i16], scales: &mut [f32], _zeros: &mut [i32], scaled_sums: &mut [f32]) {
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

/// W rows per panel of an [`UnpackedRun`].
const PANEL: usize = 8;

/// A run of W rows unpacked from their blocks, in panels of [`PANEL`] rows (rows rounded up; the
/// padding rows are zero): `q` holds, per panel, block and group of [`GROUP`] values, the 8 rows'
/// groups side by side; `scale`, `min` and `sum` hold per panel and block the 8 rows' block scale,
/// minimum and Σq (which the relaxed kernel's zero points are multiplied by).
#[derive(Default)]
pub struct UnpackedRun {
    q: Vec<scheme::W>,
    scale: Vec<f32>,
    min: Vec<f32>,
    sum: Vec<i32>,
    has_min: bool,
    rows: usize,
    blocks: usize,
}

impl UnpackedRun {
    /// Unpack `rows` rows of k values stored as `dtype` blocks in `bytes`, reusing this buffer.
    /// Panics if `dtype` is not [`supports`]ed or `bytes` is not rows × k values of it (callers
    /// check both).
    pub fn fill(&mut self, dtype: GgmlDType, bytes: &[u8], rows: usize, k: usize) {
        let blocks = k / BLOCK;
        let type_size = dtype.type_size();
        assert!(supports(dtype) && k % BLOCK == 0 && bytes.len() == rows * blocks * type_size, "int8_gemm: bad run");
        let panels = rows.div_ceil(PANEL);
        self.q.clear();
        self.q.resize(panels * PANEL * k, 0);
        self.scale.clear();
        self.scale.resize(panels * blocks * PANEL, 0.0);
        self.min.clear();
        self.min.resize(panels * blocks * PANEL, 0.0);
        self.sum.clear();
        if scheme::ZERO_POINTS {
            self.sum.resize(panels * blocks * PANEL, 0);
        }
        self.has_min = matches!(dtype, GgmlDType::Q4_1 | GgmlDType::Q5_1);
        self.rows = rows;
        self.blocks = blocks;
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        // (The allocator returns 8-byte aligned buffers; the check keeps the u32 stores sound anyway.)
        if self.q.as_ptr().cast::<u32>().is_aligned() {
            self.fill_simd(dtype, bytes);
            return;
        }
        let mut values = [0i16; BLOCK];
        for_each_block(bytes, type_size, blocks, |at, lane, block| {
            let (scale, min) = unpack_block(dtype, block, &mut values);
            self.scale[at + lane] = scale;
            self.min[at + lane] = min;
            if scheme::ZERO_POINTS {
                self.sum[at + lane] = values.iter().map(|&v| v as i32).sum();
            }
            // Group g of this block: q[(at + g·8 + lane)·GROUP ..][..GROUP], i.e. the panel-block's
            // 32 values of 8 rows as 32 / GROUP rows of [8 lanes × GROUP].
            let panel_block = &mut self.q[at * BLOCK..(at + PANEL) * BLOCK];
            for (g, group) in values.chunks_exact(GROUP).enumerate() {
                let to = (g * PANEL + lane) * GROUP;
                // Every block type's values fit the scheme's integers (Q8_0: −128..=127).
                for (to, &v) in panel_block[to..to + GROUP].iter_mut().zip(group) {
                    *to = v as scheme::W;
                }
            }
        });
    }

    /// [`fill`](Self::fill) with the browser's SIMD: each block's 32 values are unpacked into two
    /// vectors of i8 (values 0..16 and 16..32, see [`simd_block`]) and stored to their places in
    /// the panel by [`store_block`](Self::store_block).
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    fn fill_simd(&mut self, dtype: GgmlDType, bytes: &[u8]) {
        use simd_block::values;
        let size = dtype.type_size();
        // A literal type in each arm: `values`' match folds away, one loop per type.
        match dtype {
            GgmlDType::Q8_0 => self.fill_with(bytes, size, |b| values(GgmlDType::Q8_0, b)),
            GgmlDType::Q4_0 => self.fill_with(bytes, size, |b| values(GgmlDType::Q4_0, b)),
            GgmlDType::Q4_1 => self.fill_with(bytes, size, |b| values(GgmlDType::Q4_1, b)),
            GgmlDType::Q5_0 => self.fill_with(bytes, size, |b| values(GgmlDType::Q5_0, b)),
            GgmlDType::Q5_1 => self.fill_with(bytes, size, |b| values(GgmlDType::Q5_1, b)),
            other => unreachable!("int8_gemm cannot unpack {other:?}"),
        }
    }

    /// Every block through `unpack` (its values as two i8 vectors, its scale and minimum): generic,
    /// so each block type's loop is compiled with its own unpacking inlined.
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    fn fill_with(&mut self, bytes: &[u8], type_size: usize, unpack: impl Fn(&[u8]) -> ([core::arch::wasm32::v128; 2], f32, f32)) {
        for_each_block(bytes, type_size, self.blocks, |at, lane, block| {
            let (values, scale, min) = unpack(block);
            self.scale[at + lane] = scale;
            self.min[at + lane] = min;
            self.store_block(at, lane, values);
        });
    }

    /// One block's 32 values (i8, in order) into the panel for the i16 kernel: widened to i16 in
    /// four vectors, whose 32-bit lanes (pairs of values) are stored straight to their places.
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128", not(target_feature = "relaxed-simd")))]
    #[inline(always)]
    fn store_block(&mut self, at: usize, lane: usize, [low, high]: [core::arch::wasm32::v128; 2]) {
        use core::arch::wasm32::*;
        let wide = [i16x8_extend_low_i8x16(low), i16x8_extend_high_i8x16(low), i16x8_extend_low_i8x16(high), i16x8_extend_high_i8x16(high)];
        let base = self.q[at * BLOCK..(at + PANEL) * BLOCK].as_mut_ptr().cast::<u32>();
        // SAFETY: pair p (0..16) of this row goes to u32 index p·8 + lane < 128, inside the
        // panel-block's 256 i16 (`fill` checked the buffer's u32 alignment); wide[p / 4] holds
        // pairs 4·(p / 4) .. +4 in its lanes.
        unsafe {
            for (v, &w) in wide.iter().enumerate() {
                let p = v * 4;
                v128_store32_lane::<0>(w, base.add(p * PANEL + lane));
                v128_store32_lane::<1>(w, base.add((p + 1) * PANEL + lane));
                v128_store32_lane::<2>(w, base.add((p + 2) * PANEL + lane));
                v128_store32_lane::<3>(w, base.add((p + 3) * PANEL + lane));
            }
        }
    }

    /// One block's 32 values (i8, in order) into the panel for the relaxed-SIMD kernel: the bytes
    /// are already the values, so the eight 32-bit lanes (groups of four) are stored straight to
    /// their places, and Σq is summed in two pairwise widenings.
    #[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
    #[inline(always)]
    fn store_block(&mut self, at: usize, lane: usize, [low, high]: [core::arch::wasm32::v128; 2]) {
        use core::arch::wasm32::*;
        let sum4 = i32x4_extadd_pairwise_i16x8(i16x8_add(i16x8_extadd_pairwise_i8x16(low), i16x8_extadd_pairwise_i8x16(high)));
        self.sum[at + lane] = lane_sum(sum4);
        let base = self.q[at * BLOCK..(at + PANEL) * BLOCK].as_mut_ptr().cast::<u32>();
        // SAFETY: group g (0..8) of this row goes to u32 index g·8 + lane < 64, inside the
        // panel-block's 256 bytes (`fill` checked the buffer's u32 alignment); `low` holds groups
        // 0..4, `high` groups 4..8.
        unsafe {
            for (v, &w) in [low, high].iter().enumerate() {
                let g = v * 4;
                v128_store32_lane::<0>(w, base.add(g * PANEL + lane));
                v128_store32_lane::<1>(w, base.add((g + 1) * PANEL + lane));
                v128_store32_lane::<2>(w, base.add((g + 2) * PANEL + lane));
                v128_store32_lane::<3>(w, base.add((g + 3) * PANEL + lane));
            }
        }
    }

    fn panels(&self) -> usize {
        self.rows.div_ceil(PANEL)
    }

    /// The unpacked values of `panel` in `block` (32 / GROUP groups × 8 rows × GROUP).
    fn panel_block(&self, panel: usize, block: usize) -> &[scheme::W] {
        let at = (panel * self.blocks + block) * PANEL;
        &self.q[at * BLOCK..(at + PANEL) * BLOCK]
    }

    /// `panel`'s 8 rows' scales (or minimums, or sums) in `block`.
    fn panel_scales<'a, T>(&self, of: &'a [T], panel: usize, block: usize) -> &'a [T] {
        let at = (panel * self.blocks + block) * PANEL;
        &of[at..at + PANEL]
    }
}

/// Calls `f(at, lane, block)` for every block of a run (`bytes`: rows of `blocks` blocks of
/// `type_size` bytes), row by row: `at` is the start of the block's panel-block in units of 8-row
/// slots (its values at ·32, its scale at ·1) and `lane` its row's place in the panel: computed
/// once per row, not by dividing every block's index.
fn for_each_block(bytes: &[u8], type_size: usize, blocks: usize, mut f: impl FnMut(usize, usize, &[u8])) {
    // Rows of no blocks (k = 0) hold nothing; `chunks_exact` would refuse a chunk size of 0.
    if blocks * type_size == 0 {
        return;
    }
    for (row, row_bytes) in bytes.chunks_exact(blocks * type_size).enumerate() {
        let (first, lane) = (row / PANEL * blocks * PANEL, row % PANEL);
        for (b, block) in row_bytes.chunks_exact(type_size).enumerate() {
            f(first + b * PANEL, lane, block);
        }
    }
}

/// The f16 at byte `at` of `bytes` (little-endian), widened without branches.
pub(super) fn half_at(bytes: &[u8], at: usize) -> f32 {
    super::kernels::f16_bits_to_f32(u16::from_le_bytes([bytes[at], bytes[at + 1]]))
}

/// The block types' values with the browser's SIMD, as two vectors of i8 (values 0..16, 16..32):
/// the same values as [`unpack_block`] (the layouts are described there).
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub(super) mod simd_block {
    use core::arch::wasm32::*;
    use candle_core::quantized::GgmlDType;

    use super::half_at;

    /// One block of `dtype` (a type [`super::supports`]) as its 32 values (two vectors of i8,
    /// values 0..16 and 16..32), scale and minimum (0 where the type has none): value t =
    /// scale·q[t] + min. Inlined, so a constant `dtype` leaves only its own arm.
    #[inline(always)]
    pub fn values(dtype: GgmlDType, b: &[u8]) -> ([v128; 2], f32, f32) {
        match dtype {
            GgmlDType::Q8_0 => ([bytes16(b, 2), bytes16(b, 18)], half_at(b, 0), 0.0),
            GgmlDType::Q4_0 => (offset(nibbles(bytes16(b, 2)), 8), half_at(b, 0), 0.0),
            GgmlDType::Q4_1 => (nibbles(bytes16(b, 4)), half_at(b, 0), half_at(b, 2)),
            GgmlDType::Q5_0 => (offset(with_fifth_bits(nibbles(bytes16(b, 6)), b, 2), 16), half_at(b, 0), 0.0),
            GgmlDType::Q5_1 => (with_fifth_bits(nibbles(bytes16(b, 8)), b, 4), half_at(b, 0), half_at(b, 2)),
            other => unreachable!("int8_gemm cannot unpack {other:?}"),
        }
    }

    /// The 16 bytes of `block` from `at`.
    #[inline(always)]
    pub fn bytes16(block: &[u8], at: usize) -> v128 {
        let bytes = &block[at..at + 16];
        // SAFETY: `bytes` holds 16 bytes (wasm loads need no alignment).
        unsafe { v128_load(bytes.as_ptr().cast()) }
    }

    /// Q4/Q5's 16 bytes of nibbles as values 0..16 (low nibbles) and 16..32 (high nibbles).
    #[inline(always)]
    pub fn nibbles(qs: v128) -> [v128; 2] {
        [v128_and(qs, u8x16_splat(0x0f)), u8x16_shr(qs, 4)]
    }

    /// `values` less `by` (Q4_0: 8, Q5_0: 16), which makes them signed.
    #[inline(always)]
    pub fn offset([low, high]: [v128; 2], by: i8) -> [v128; 2] {
        [i8x16_sub(low, i8x16_splat(by)), i8x16_sub(high, i8x16_splat(by))]
    }

    /// Q5's fifth bits added: bit t of the little-endian u32 at `block[at..]` is 16 in value t.
    #[inline(always)]
    pub fn with_fifth_bits([low, high]: [v128; 2], block: &[u8], at: usize) -> [v128; 2] {
        let qh = u32x4_splat(u32::from_le_bytes([block[at], block[at + 1], block[at + 2], block[at + 3]]));
        // Byte t / 8 of qh in lane t, then each lane's own bit of it (t mod 8) as 16 or 0.
        let bits = u8x16(1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128);
        let fifth = |bytes: v128| v128_and(i8x16_eq(v128_and(bytes, bits), bits), u8x16_splat(16));
        let low_bytes = i8x16_swizzle(qh, u8x16(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1));
        let high_bytes = i8x16_swizzle(qh, u8x16(2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3));
        [v128_or(low, fifth(low_bytes)), v128_or(high, fifth(high_bytes))]
    }
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

/// Rows of x per tile: measured in Chromium (128×768×3072, q8_0), 6 rows beat 4 by 13% and 8 (which
/// spills) by 17%.
const TILE_ROWS: usize = 6;

/// `y[i][first + j] = x_i · w_j` for every x row i and run row j, written into the run's columns.
pub fn gemm_run(x: &QuantizedRows, w: &UnpackedRun, y: &mut OutColumns) {
    assert!(x.k == w.blocks * BLOCK && y.len() == w.rows, "int8_gemm: operand sizes");
    let full = x.m / TILE_ROWS * TILE_ROWS;
    for first_row in (0..full).step_by(TILE_ROWS) {
        for panel in 0..w.panels() {
            store(&tile::<TILE_ROWS>(x, first_row, w, panel), first_row, panel, w.rows, y);
        }
    }
    // The last 1–5 rows: tiles of 3, 2 and 1 (one row at a time reads each W panel per row).
    let mut first_row = full;
    while first_row < x.m {
        let left = x.m - first_row;
        for panel in 0..w.panels() {
            match left {
                3.. => store(&tile::<3>(x, first_row, w, panel), first_row, panel, w.rows, y),
                2 => store(&tile::<2>(x, first_row, w, panel), first_row, panel, w.rows, y),
                _ => store(&tile::<1>(x, first_row, w, panel), first_row, panel, w.rows, y),
            }
        }
        first_row += left.min(3);
    }
}

/// Write the outputs of x rows first_row.. against the 8 W rows of `panel` (not padding).
fn store<const R: usize>(sums: &[[f32; PANEL]; R], first_row: usize, panel: usize, rows: usize, y: &mut OutColumns) {
    let first = panel * PANEL;
    let valid = PANEL.min(rows - first);
    for (r, sums) in sums.iter().enumerate() {
        y.row(first_row + r)[first..first + valid].copy_from_slice(&sums[..valid]);
    }
}

/// R x rows from `first_row` against the 8 W rows of `panel`: [x row][W row] outputs.
#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
fn tile<const R: usize>(x: &QuantizedRows, first_row: usize, w: &UnpackedRun, panel: usize) -> [[f32; PANEL]; R] {
    let (k, blocks) = (x.k, x.k / BLOCK);
    let mut acc = [[0f32; PANEL]; R];
    for b in 0..blocks {
        let values = w.panel_block(panel, b);
        let (w_scale, w_min) = (w.panel_scales(&w.scale, panel, b), w.panel_scales(&w.min, panel, b));
        for (r, acc) in acc.iter_mut().enumerate() {
            let i = first_row + r;
            let x_block = &x.q[i * k + b * BLOCK..][..BLOCK];
            let x_scale = x.scale[i * blocks + b];
            for (lane, acc) in acc.iter_mut().enumerate() {
                let dot: i32 = (0..BLOCK).map(|t| x_block[t] as i32 * values[((t / GROUP) * PANEL + lane) * GROUP + t % GROUP] as i32).sum();
                // The order of the SIMD kernel: scale product first, then the minimum's term.
                *acc += dot as f32 * (w_scale[lane] * x_scale);
                if w.has_min {
                    *acc += w_min[lane] * x.scaled_sum[i * blocks + b];
                }
            }
        }
    }
    acc
}

/// The browser's SIMD: per pair of values, the R x rows' pairs are broadcast and meet the panel's
/// two vectors of four rows' pairs in `i32x4.dot_i16x8_s`; after each block the integer sums are
/// converted and scaled with four rows' scales at once.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128", not(target_feature = "relaxed-simd")))]
fn tile<const R: usize>(x: &QuantizedRows, first_row: usize, w: &UnpackedRun, panel: usize) -> [[f32; PANEL]; R] {
    use core::arch::wasm32::*;
    let (k, blocks) = (x.k, x.k / BLOCK);
    let x_rows: [&[i16]; R] = std::array::from_fn(|r| &x.q[(first_row + r) * k..(first_row + r + 1) * k]);
    let mut acc = [[f32x4_splat(0.0); 2]; R];
    for b in 0..blocks {
        let values = w.panel_block(panel, b);
        let mut dots = [[i32x4_splat(0); 2]; R];
        for p in 0..BLOCK / 2 {
            // SAFETY: `values` holds 16 pairs × 8 rows × 2 = 256 values, so p·16 + 16 ≤ 256; each x
            // row holds k values and b·32 + 2p + 2 ≤ k (wasm loads need no alignment).
            let (low, high) = unsafe { (v128_load(values[p * 16..].as_ptr().cast()), v128_load(values[p * 16 + 8..].as_ptr().cast())) };
            for r in 0..R {
                let pair = unsafe { v128_load32_splat(x_rows[r][b * BLOCK + 2 * p..][..2].as_ptr().cast()) };
                dots[r][0] = i32x4_add(dots[r][0], i32x4_dot_i16x8(pair, low));
                dots[r][1] = i32x4_add(dots[r][1], i32x4_dot_i16x8(pair, high));
            }
        }
        scale_block(x, first_row, w, panel, b, &dots, &mut acc);
    }
    acc_to_rows(&acc)
}

/// The relaxed-SIMD kernel: per group of four values, the R x rows' groups are broadcast and meet
/// the panel's two vectors of four rows' groups in `i32x4.relaxed_dot_i8x16_i7x16_add_s`. The
/// sums start at −zero·Σq of each row, so after a block they are Σ q_w·(q_x − zero) exactly, and
/// are scaled as in the 8-bit kernel.
#[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
fn tile<const R: usize>(x: &QuantizedRows, first_row: usize, w: &UnpackedRun, panel: usize) -> [[f32; PANEL]; R] {
    use core::arch::wasm32::*;
    let (k, blocks) = (x.k, x.k / BLOCK);
    let x_rows: [&[u8]; R] = std::array::from_fn(|r| &x.q[(first_row + r) * k..(first_row + r + 1) * k]);
    let mut acc = [[f32x4_splat(0.0); 2]; R];
    for b in 0..blocks {
        let values = w.panel_block(panel, b);
        let sum = w.panel_scales(&w.sum, panel, b);
        // SAFETY: `panel_scales` returns 8 values.
        let w_sum = unsafe { [v128_load(sum.as_ptr().cast()), v128_load(sum[4..].as_ptr().cast())] };
        let mut dots: [[v128; 2]; R] = std::array::from_fn(|r| {
            let zero = i32x4_splat(-x.zero[(first_row + r) * blocks + b]);
            [i32x4_mul(zero, w_sum[0]), i32x4_mul(zero, w_sum[1])]
        });
        for g in 0..BLOCK / GROUP {
            // SAFETY: `values` holds 8 groups × 8 rows × 4 = 256 bytes, so g·32 + 32 ≤ 256; each x
            // row holds k values and b·32 + 4g + 4 ≤ k (wasm loads need no alignment).
            let (low, high) = unsafe { (v128_load(values[g * 32..].as_ptr().cast()), v128_load(values[g * 32 + 16..].as_ptr().cast())) };
            for r in 0..R {
                // x's values are 0..=127, so the relaxed dot product is exact on every engine.
                let group = unsafe { v128_load32_splat(x_rows[r][b * BLOCK + GROUP * g..][..GROUP].as_ptr().cast()) };
                dots[r][0] = i32x4_relaxed_dot_i8x16_i7x16_add(low, group, dots[r][0]);
                dots[r][1] = i32x4_relaxed_dot_i8x16_i7x16_add(high, group, dots[r][1]);
            }
        }
        scale_block(x, first_row, w, panel, b, &dots, &mut acc);
    }
    acc_to_rows(&acc)
}

/// Add block `b`'s integer sums of R x rows × the panel's 8 rows, converted and scaled with four
/// rows' scales at once (and the minimum's term of Q4_1/Q5_1), to the running f32 sums.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
fn scale_block<const R: usize>(
    x: &QuantizedRows,
    first_row: usize,
    w: &UnpackedRun,
    panel: usize,
    b: usize,
    dots: &[[core::arch::wasm32::v128; 2]; R],
    acc: &mut [[core::arch::wasm32::v128; 2]; R],
) {
    use core::arch::wasm32::*;
    let blocks = x.k / BLOCK;
    let (scale, min) = (w.panel_scales(&w.scale, panel, b), w.panel_scales(&w.min, panel, b));
    // SAFETY: `panel_scales` returns 8 values.
    let w_scale = unsafe { [v128_load(scale.as_ptr().cast()), v128_load(scale[4..].as_ptr().cast())] };
    let w_min = unsafe { [v128_load(min.as_ptr().cast()), v128_load(min[4..].as_ptr().cast())] };
    for r in 0..R {
        let i = first_row + r;
        let x_scale = f32x4_splat(x.scale[i * blocks + b]);
        for half in 0..2 {
            let scaled = f32x4_mul(f32x4_convert_i32x4(dots[r][half]), f32x4_mul(w_scale[half], x_scale));
            acc[r][half] = f32x4_add(acc[r][half], scaled);
            if w.has_min {
                acc[r][half] = f32x4_add(acc[r][half], f32x4_mul(w_min[half], f32x4_splat(x.scaled_sum[i * blocks + b])));
            }
        }
    }
}

/// The running sums of a tile as [x row][W row] outputs.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
fn acc_to_rows<const R: usize>(acc: &[[core::arch::wasm32::v128; 2]; R]) -> [[f32; PANEL]; R] {
    use core::arch::wasm32::*;
    std::array::from_fn(|r| {
        let mut sums = [0f32; PANEL];
        // SAFETY: sums holds 8 f32, two unaligned 16-byte stores.
        unsafe {
            v128_store(sums.as_mut_ptr().cast(), acc[r][0]);
            v128_store(sums[4..].as_mut_ptr().cast(), acc[r][1]);
        }
        sums
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
        assert_eq!(run.panels(), 1);
        for j in 0..rows {
            for t in 0..k {
                let (b, within) = (t / BLOCK, t % BLOCK);
                let q = run.panel_block(0, b)[((within / GROUP) * PANEL + j) * GROUP + within % GROUP];
                let got = run.panel_scales(&run.scale, 0, b)[j] * q as f32 + run.panel_scales(&run.min, 0, b)[j];
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
        for (m, n) in [(1, 5), (2, 4), (4, 8), (5, 7), (6, 9), (9, 13), (8, 17), (17, 3)] {
            let k = 64;
            let x = random(&mut rng, m * k);
            let mut blocks = vec![T::zeros(); n * k / BLOCK];
            T::from_float(&random(&mut rng, n * k), &mut blocks);
            let mut w = vec![0.0; n * k];
            T::to_float(&blocks, &mut w);
            let mut run = UnpackedRun::default();
            run.fill(T::DTYPE, bytes_of(&blocks), n, k);
            let mut y = vec![f32::NAN; m * n];
            gemm_run(&QuantizedRows::new(&x, m, k), &run, &mut OutColumns::all(&mut y, m, n));
            for i in 0..m {
                for j in 0..n {
                    let pairs = (0..k).map(|t| x[i * k + t] as f64 * w[j * k + t] as f64);
                    let exact: f64 = pairs.clone().sum();
                    let scale: f64 = pairs.map(f64::abs).sum();
                    let error = (y[i * n + j] as f64 - exact).abs();
                    assert!(error <= scale / 127.0, "{:?} {m}×{n} ({i},{j}): {} vs {exact}", T::DTYPE, y[i * n + j]);
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
            let mut y = vec![0.0; 2];
            gemm_run(&QuantizedRows::new(&x, 2, 64), &run, &mut OutColumns::all(&mut y, 2, 1));
            assert!(y[0].is_nan() && (y[1] - 8.0).abs() < 1e-3, "{bad}: {y:?}");
        }
    }
}
