//! Elementwise math the model core applies to whole activations, each function once: e^x for
//! x ≤ 0 (softmax), erf and the erf-based GELU (Whisper's MLP and convolutions, BERT-family
//! feed-forwards), SiLU (Marian's feed-forwards).
//!
//! Written without branches or libm calls, so that loops over them vectorise (SSE2 natively,
//! simd128 in the browser, where every libm call is a function call per element and blocks
//! vectorisation), and split over rayon's pool when the activation is large: in the threaded wasm
//! build this work would otherwise run on one thread while the matrix products around it run on
//! all of them.

use candle_core::Tensor;
use rayon::prelude::*;

use crate::error::Result;

/// e^x for x ≤ 0 (−∞ included): range reduction by ln 2 and a degree-6 polynomial (Cephes), ~1 ulp.
#[inline(always)]
pub fn exp_nonpositive(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    const ROUND: f32 = 12_582_912.0; // 1.5 · 2^23: adding and subtracting it rounds to an integer
    // A compare, not f32::max: in wasm that is a call to fmaxf per element (NaN handling), which
    // also stops the loop from vectorising. (x NaN: −87 either way.)
    let xc = if x > -87.0 { x } else { -87.0 };
    let shifted = xc * LOG2E + ROUND;
    let n = shifted - ROUND;
    // n as an integer, read from `shifted`'s bits (it lies in [2^23, 2^24), where the ulp is 1, so
    // its bits are ROUND's plus n): no float → int conversion, which SSE2 cannot do four at a time
    // with Rust's saturating `as` (the loop would convert lane by lane).
    let n_int = (shifted.to_bits() as i32).wrapping_sub(ROUND.to_bits() as i32);
    let r = xc - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_1e-4f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let y = p * r * r + r + 1.0;
    let y = y * f32::from_bits((n_int.wrapping_add(127) << 23) as u32);
    if x < -87.0 {
        0.0
    } else {
        y
    }
}

/// erf(x) in f32 without libm: 1 − erfc(|x|) with the sign of x, erfc(z) = t·e^(P(t) − z²),
/// t = 1/(1 + z/2) (Numerical Recipes' `erfcc`, Chebyshev-fitted P, relative error of erfc below
/// 1.2e-7 for every z ≥ 0), e^ being [`exp_nonpositive`]. Within 2.5e-7 absolute of the true erf
/// (tested against f64); exactly ±1 where f32's erf is (|x| ≥ 3.92), NaN for NaN.
#[inline(always)]
pub fn erf(x: f32) -> f32 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let mut p = 0.170_872_77f32;
    p = p * t + -0.822_152_23;
    p = p * t + 1.488_515_9;
    p = p * t + -1.135_204;
    p = p * t + 0.278_868_07;
    p = p * t + -0.186_288_06;
    p = p * t + 0.096_784_18;
    p = p * t + 0.374_091_96;
    p = p * t + 1.000_023_7;
    p = p * t + -1.265_512_2;
    // At z = 0 the exponent is P(1) ≈ 1e-8, not quite ≤ 0: well within the polynomial's range.
    let erfc = t * exp_nonpositive(p - z * z);
    (1.0 - erfc).copysign(x)
}

/// GELU as transformers' `gelu` and openai's Whisper compute it: x/2 · (1 + erf(x/√2)), in the
/// operation order of candle's `gelu_erf` ((erf + 1) · 0.5 · x).
#[inline(always)]
pub fn gelu_erf(x: f32) -> f32 {
    (erf(x * std::f32::consts::FRAC_1_SQRT_2) + 1.0) * 0.5 * x
}

/// [`gelu_erf`] of every value, in place.
pub fn gelu_erf_in_place(values: &mut [f32]) {
    for_each_part(values, 1, |_, part| part.iter_mut().for_each(|v| *v = gelu_erf(*v)));
}

/// SiLU (swish), x·σ(x), as candle computes it, x / (1 + e^(−x)), with e^(−|x|) from
/// [`exp_nonpositive`]: for x < 0 the same value is x·e^x / (1 + e^x), so the exponential never
/// overflows. Within 4 ulp of the f64 value (tested); ±∞ and NaN give what candle's formula gives.
#[inline(always)]
pub fn silu(x: f32) -> f32 {
    let e = exp_nonpositive(-x.abs());
    let numerator = if x < 0.0 { x * e } else { x };
    numerator / (1.0 + e)
}

/// [`silu`] of every value, in place.
pub fn silu_in_place(values: &mut [f32]) {
    for_each_part(values, 1, |_, part| part.iter_mut().for_each(|v| *v = silu(*v)));
}

/// Below this many values an elementwise pass runs on the calling thread: handing work to the
/// pool costs microseconds, a decoder step's activations take less than that.
pub const PARALLEL_MIN_VALUES: usize = 1 << 15;

/// Runs `f(first_row, part)` over consecutive parts of `values`, each a whole number of rows of
/// `row_len` values starting at row `first_row`: on rayon's pool (about four parts per thread)
/// when it has more than one thread and there are at least [`PARALLEL_MIN_VALUES`] values, else
/// once over all of them on the calling thread.
pub fn for_each_part(values: &mut [f32], row_len: usize, f: impl Fn(usize, &mut [f32]) + Sync) {
    let threads = rayon::current_num_threads();
    let row_len = row_len.max(1);
    let rows = values.len() / row_len;
    if threads == 1 || values.len() < PARALLEL_MIN_VALUES || rows < 2 {
        f(0, values);
        return;
    }
    let rows_per_part = rows.div_ceil(threads * 4).max(1);
    values.par_chunks_mut(rows_per_part * row_len).enumerate().for_each(|(part, values)| f(part * rows_per_part, values));
}

/// Runs [`for_each_part`] over the values of `t` (contiguous f32 on the CPU), rows being its last
/// dimension, changing them in place. Only for a tensor the caller has just made (a product's or a
/// convolution's output): every tensor sharing its storage sees the change.
pub fn rows_in_place(t: &Tensor, f: impl Fn(usize, &mut [f32]) + Sync) -> Result<()> {
    Ok(t.inplace_op1(&RowsInPlace(f))?)
}

struct RowsInPlace<F>(F);

impl<F: Fn(usize, &mut [f32]) + Sync> candle_core::InplaceOp1 for RowsInPlace<F> {
    fn name(&self) -> &'static str {
        "rows-in-place"
    }

    fn cpu_fwd(&self, storage: &mut candle_core::CpuStorage, layout: &candle_core::Layout) -> candle_core::Result<()> {
        let candle_core::CpuStorage::F32(data) = storage else {
            candle_core::bail!("rows in place: f32 only");
        };
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("rows in place: the tensor must be contiguous");
        };
        let row_len = layout.dims().last().copied().unwrap_or(1);
        for_each_part(&mut data[start..end], row_len, &self.0);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::cpu::erf::erf_f64;

    #[test]
    fn fast_exp_is_accurate() {
        let mut worst = 0f64;
        let mut x = -90.0f32;
        while x <= 0.0 {
            let (got, want) = (exp_nonpositive(x) as f64, (x as f64).exp());
            if want > 1e-37 {
                worst = worst.max(((got - want) / want).abs());
            }
            x += 0.001;
        }
        assert!(worst < 3e-7, "relative error {worst}");
        assert_eq!(exp_nonpositive(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp_nonpositive(0.0), 1.0);
        // The exponent read from the bits is the rounded value itself, at every step of the range.
        let mut x = -87.0f32;
        while x <= 1.0 {
            let shifted = x * std::f32::consts::LOG2_E + 12_582_912.0;
            assert_eq!((shifted.to_bits() as i32) - (12_582_912f32.to_bits() as i32), (shifted - 12_582_912.0) as i32, "{x}");
            x += 1.0 / 64.0;
        }
    }

    /// Every f32 step of 1/1024 over [−12, 12], plus values near the saturation point and huge ones.
    fn dense_range() -> Vec<f32> {
        let mut xs: Vec<f32> = (-12 * 1024..=12 * 1024).map(|i| i as f32 / 1024.0).collect();
        xs.extend((0..2000).map(|i| 3.9 + i as f32 * 1e-5).flat_map(|x| [x, -x, x * std::f32::consts::SQRT_2, -x * std::f32::consts::SQRT_2]));
        xs.extend([1e-30, -1e-30, 1e-8, -1e-8, 30.0, -30.0, 1e6, -1e6, f32::MAX, f32::MIN, f32::MIN_POSITIVE]);
        xs
    }

    #[test]
    fn erf_is_within_2_5e7_of_f64_erf() {
        let mut worst = (0f64, 0f32);
        for x in dense_range() {
            let error = (f64::from(erf(x)) - erf_f64(f64::from(x))).abs();
            if error > worst.0 {
                worst = (error, x);
            }
            assert!(erf(x).abs() <= 1.0, "erf({x}) = {}", erf(x));
        }
        assert!(worst.0 < 2.5e-7, "erf: error {} at {}", worst.0, worst.1);
        assert_eq!(erf(0.0), 0.0);
        assert_eq!(erf(f32::INFINITY), 1.0);
        assert_eq!(erf(f32::NEG_INFINITY), -1.0);
        assert!(erf(f32::NAN).is_nan());
    }

    #[test]
    fn gelu_is_within_1e6_of_f64_and_of_libm_gelu() {
        let exact = |x: f32| {
            let x = f64::from(x);
            0.5 * x * (1.0 + erf_f64(x * std::f64::consts::FRAC_1_SQRT_2))
        };
        let libm = |x: f32| (candle_core::cpu::erf::erf_f32(x * std::f32::consts::FRAC_1_SQRT_2) + 1.0) * 0.5 * x;
        for x in dense_range().into_iter().filter(|x| x.abs() <= 1e6) {
            let got = gelu_erf(x);
            // Far out gelu(x) is x itself (or 0): there f32's own rounding of x·0.5·2 is the error.
            // (Measured worst within |x| ≤ 12: 4.4e-7 from the f64 value.)
            let (from_f64, from_libm) = if x.abs() > 12.0 { (f64::from(x.abs()) * 1e-7, f64::from(x.abs()) * 1e-7) } else { (5e-7, 1e-6) };
            assert!((f64::from(got) - exact(x)).abs() <= from_f64, "gelu({x}) = {got}, f64 {}", exact(x));
            assert!(f64::from((got - libm(x)).abs()) <= from_libm, "gelu({x}) = {got}, libm {}", libm(x));
        }
        // Saturated: exactly x, and exactly zero, as libm's.
        assert_eq!(gelu_erf(10.0), 10.0);
        assert_eq!(gelu_erf(-10.0), libm(-10.0));
        assert_eq!(gelu_erf(-10.0), 0.0);
        assert_eq!(gelu_erf(f32::INFINITY), f32::INFINITY);
        // 0·(−∞), as candle's gelu_erf and torch give.
        assert!(gelu_erf(f32::NEG_INFINITY).is_nan() && libm(f32::NEG_INFINITY).is_nan());
        assert!(gelu_erf(f32::NAN).is_nan());
    }

    #[test]
    fn silu_is_within_4_ulp_of_f64_and_matches_candle_at_the_edges() {
        for x in dense_range() {
            let exact = f64::from(x) / (1.0 + (-f64::from(x)).exp());
            let got = silu(x);
            // 4 ulp of the result (or of the smallest normal, where the result underflows).
            let ulp = (exact.abs().max(f64::from(f32::MIN_POSITIVE)) as f32).to_bits();
            let ulp = f64::from(f32::from_bits(ulp + 1) - f32::from_bits(ulp));
            assert!((f64::from(got) - exact).abs() <= 4.0 * ulp, "silu({x}) = {got}, f64 {exact}");
        }
        let candle = |x: f32| x / (1.0 + (-x).exp());
        assert_eq!(silu(0.0), 0.0);
        assert_eq!(silu(f32::INFINITY), candle(f32::INFINITY));
        assert_eq!(silu(-100.0), candle(-100.0));
        assert!(silu(f32::NEG_INFINITY).is_nan() && candle(f32::NEG_INFINITY).is_nan());
        assert!(silu(f32::NAN).is_nan());
    }

    #[test]
    fn in_place_gelu_is_the_same_on_any_pool() {
        let values: Vec<f32> = (0..PARALLEL_MIN_VALUES * 3 + 17).map(|i| (i % 2001) as f32 / 100.0 - 10.0).collect();
        let expected: Vec<f32> = values.iter().map(|&x| gelu_erf(x)).collect();
        for threads in [1, 3] {
            let mut got = values.clone();
            rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap().install(|| gelu_erf_in_place(&mut got));
            assert!(got.iter().zip(&expected).all(|(a, b)| a.to_bits() == b.to_bits()), "threads={threads}");
        }
        gelu_erf_in_place(&mut []);
    }

    #[test]
    fn parts_are_whole_rows_and_cover_everything() {
        let row_len = 7 * 13;
        let rows = PARALLEL_MIN_VALUES / row_len * 3 + 5;
        for threads in [1, 3] {
            let mut values = vec![0f32; rows * row_len];
            rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap().install(|| {
                for_each_part(&mut values, row_len, |first_row, part| {
                    assert_eq!(part.len() % row_len, 0, "threads={threads}");
                    // Each value becomes its row's number.
                    part.iter_mut().enumerate().for_each(|(i, v)| *v += (first_row + i / row_len) as f32);
                })
            });
            assert!(values.iter().enumerate().all(|(i, &v)| v == (i / row_len) as f32), "threads={threads}");
        }
    }
}
