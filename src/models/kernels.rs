//! Matrix kernels: out (m, n) = x (m, k) · Wᵀ for W (n, k) row-major, in each storage dtype.
//! (Interim versions; the tuned, rayon-parallel kernels replace them.)

use candle_core::quantized::k_quants::{self, GgmlType};
use half::f16;

use crate::error::{Error, Result};

/// Up to this many rows, f32 products use the matrix-vector kernel instead of gemm.
pub const SMALL_M: usize = 8;

fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

pub fn matmul_f32(x: &[f32], m: usize, k: usize, w: &[f32], n: usize, out: &mut [f32]) -> Result<()> {
    for i in 0..m {
        let xr = &x[i * k..(i + 1) * k];
        for (j, o) in out[i * n..(i + 1) * n].iter_mut().enumerate() {
            *o = dot(xr, &w[j * k..(j + 1) * k]);
        }
    }
    Ok(())
}

pub fn matmul_f16(x: &[f32], m: usize, k: usize, w: &[f16], n: usize, out: &mut [f32]) -> Result<()> {
    let mut row = vec![0f32; k];
    for j in 0..n {
        for (r, v) in row.iter_mut().zip(&w[j * k..(j + 1) * k]) {
            *r = v.to_f32();
        }
        for i in 0..m {
            out[i * n + j] = dot(&x[i * k..(i + 1) * k], &row);
        }
    }
    Ok(())
}

pub fn matmul_quant<T: GgmlType>(x: &[f32], m: usize, k: usize, w: &[T], n: usize, out: &mut [f32]) -> Result<()> {
    if k % T::BLCK_SIZE != 0 {
        return Err(Error::Config(format!("{k} columns are not whole {:?} blocks", T::DTYPE)));
    }
    Ok(k_quants::matmul::<T>((m, k, n), x, w, out)?)
}
