//! Many-row f32 products in the relaxed-SIMD build (pkg/relaxed, pkg/threads-relaxed): y = x·Wᵀ
//! with `f32x4.relaxed_madd`, which the engine runs as one fused multiply-add where the CPU has
//! it. gemm (the crate candle uses, and what the other builds call) has only SIMD128's separate
//! multiply and add, two instructions per four multiply-adds.
//!
//! Layout: a task's W rows are packed per call in panels of 8, value k of the 8 rows side by
//! side, so one broadcast x value meets two vectors of four rows and the lanes are already the
//! outputs. The kernel takes 4 x rows × 8 W rows at a time: 8 running sums, which hide the fused
//! multiply-add's latency at two per cycle. Measured in Chromium on this machine (L1-resident
//! register tiles): 4×8 with fused multiply-add 24–26 GMAC/s, 6×8 (12 sums, which spill in V8's
//! 15 vector registers) 19–21, and 6×8 with SIMD128's separate multiply and add 17.5. It runs over
//! k in blocks of [`K_BLOCK`], so a panel's block stays in L1 while every x row passes it.

use core::arch::wasm32::*;

use super::kernels::OutColumns;

/// W rows per panel.
const PANEL: usize = 8;
/// Values of k per pass over the x rows: a panel's block is 8 KB.
const K_BLOCK: usize = 256;

/// A run of W rows packed for [`gemm_run`]: panel p holds, for each of the k values, the 8 rows'
/// values side by side (rows rounded up to whole panels; the padding rows are zero).
#[derive(Default)]
pub struct PackedRun {
    values: Vec<f32>,
    rows: usize,
    k: usize,
}

impl PackedRun {
    /// Pack `rows` rows of k values (`w`, row-major), reusing this buffer.
    pub fn fill(&mut self, w: &[f32], rows: usize, k: usize) {
        assert_eq!(w.len(), rows * k, "f32_tiles: W is not rows × k");
        self.values.clear();
        self.values.resize(rows.div_ceil(PANEL) * PANEL * k, 0.0);
        for (w, packed) in w.chunks(PANEL * k).zip(self.values.chunks_exact_mut(PANEL * k)) {
            if w.len() == PANEL * k {
                pack_panel(w, k, packed);
            } else {
                for (lane, row) in w.chunks_exact(k).enumerate() {
                    for (value, &v) in packed[lane..].iter_mut().step_by(PANEL).zip(row) {
                        *value = v;
                    }
                }
            }
        }
        self.rows = rows;
        self.k = k;
    }
}

/// One whole panel (8 rows of k values) into its packed layout, four rows × four values at a
/// time through a 4×4 transpose in registers: packing runs once per product over all of W, and
/// value by value it took a tenth of a 128-row product's time.
fn pack_panel(w: &[f32], k: usize, packed: &mut [f32]) {
    let quads = k / 4 * 4;
    for half in 0..2 {
        let rows: [&[f32]; 4] = std::array::from_fn(|r| &w[(half * 4 + r) * k..(half * 4 + r + 1) * k]);
        for t in (0..quads).step_by(4) {
            // SAFETY: t + 4 ≤ k, so each row's four values are inside it (wasm loads need no
            // alignment).
            let [r0, r1, r2, r3] = rows.map(|row| unsafe { v128_load(row.as_ptr().add(t).cast()) });
            let (a, b) = (i32x4_shuffle::<0, 4, 1, 5>(r0, r1), i32x4_shuffle::<2, 6, 3, 7>(r0, r1));
            let (c, d) = (i32x4_shuffle::<0, 4, 1, 5>(r2, r3), i32x4_shuffle::<2, 6, 3, 7>(r2, r3));
            let columns = [
                i32x4_shuffle::<0, 1, 4, 5>(a, c),
                i32x4_shuffle::<2, 3, 6, 7>(a, c),
                i32x4_shuffle::<0, 1, 4, 5>(b, d),
                i32x4_shuffle::<2, 3, 6, 7>(b, d),
            ];
            for (i, column) in columns.into_iter().enumerate() {
                let at = (t + i) * PANEL + half * 4;
                // SAFETY: (t + i)·8 + half·4 + 4 ≤ k·8 = packed.len().
                unsafe { v128_store(packed[at..at + 4].as_mut_ptr().cast(), column) };
            }
        }
        for t in quads..k {
            for (r, row) in rows.iter().enumerate() {
                packed[t * PANEL + half * 4 + r] = row[t];
            }
        }
    }
}

/// `y[i][first + j] = x_i · w_j` for the m rows of x (m×k, row-major) and every run row j,
/// written into the run's columns.
pub fn gemm_run(x: &[f32], m: usize, k: usize, w: &PackedRun, y: &mut OutColumns) {
    assert!(x.len() >= m * k && w.k == k && y.len() == w.rows, "f32_tiles: operand sizes");
    for k0 in (0..k).step_by(K_BLOCK) {
        let k_len = K_BLOCK.min(k - k0);
        for panel in 0..w.rows.div_ceil(PANEL) {
            let block = &w.values[(panel * k + k0) * PANEL..(panel * k + k0 + k_len) * PANEL];
            let mut row = 0;
            while row < m {
                let tile = Tile { x, k, k0, k_len, first_row: row, panel, rows: w.rows };
                row += match m - row {
                    4.. => tile.run::<4>(block, y),
                    3 => tile.run::<3>(block, y),
                    2 => tile.run::<2>(block, y),
                    _ => tile.run::<1>(block, y),
                };
            }
        }
    }
}

/// Where one tile works: x rows `first_row..`, values `k0..k0 + k_len`, the 8 W rows of `panel`.
struct Tile<'a> {
    x: &'a [f32],
    k: usize,
    k0: usize,
    k_len: usize,
    first_row: usize,
    panel: usize,
    rows: usize,
}

impl Tile<'_> {
    /// Add this k block's products of R x rows × the panel's rows to y (the first block stores
    /// them); returns R.
    fn run<const R: usize>(&self, block: &[f32], y: &mut OutColumns) -> usize {
        let first = self.panel * PANEL;
        let valid = PANEL.min(self.rows - first);
        let mut acc = [[f32x4_splat(0.0); 2]; R];
        if self.k0 > 0 {
            for (r, acc) in acc.iter_mut().enumerate() {
                let mut sums = [0f32; PANEL];
                sums[..valid].copy_from_slice(&y.row(self.first_row + r)[first..first + valid]);
                // SAFETY: sums holds 8 f32: two 16-byte loads.
                *acc = unsafe { [v128_load(sums.as_ptr().cast()), v128_load(sums[4..].as_ptr().cast())] };
            }
        }
        let x_rows: [&[f32]; R] = std::array::from_fn(|r| {
            let start = (self.first_row + r) * self.k + self.k0;
            &self.x[start..start + self.k_len]
        });
        assert!(block.len() == self.k_len * PANEL, "f32_tiles: panel block");
        for t in 0..self.k_len {
            // SAFETY: `block` holds k_len × 8 values and each x row k_len (asserted above and by
            // construction): loads at t·8, t·8 + 4 and t are inside (wasm loads need no alignment).
            let (low, high) = unsafe { (v128_load(block.as_ptr().add(t * PANEL).cast()), v128_load(block.as_ptr().add(t * PANEL + 4).cast())) };
            for r in 0..R {
                let value = unsafe { v128_load32_splat(x_rows[r].as_ptr().add(t).cast()) };
                acc[r][0] = f32x4_relaxed_madd(low, value, acc[r][0]);
                acc[r][1] = f32x4_relaxed_madd(high, value, acc[r][1]);
            }
        }
        for (r, acc) in acc.iter().enumerate() {
            let mut sums = [0f32; PANEL];
            // SAFETY: sums holds 8 f32: two 16-byte stores.
            unsafe {
                v128_store(sums.as_mut_ptr().cast(), acc[0]);
                v128_store(sums[4..].as_mut_ptr().cast(), acc[1]);
            }
            y.row(self.first_row + r)[first..first + valid].copy_from_slice(&sums[..valid]);
        }
        R
    }
}
