//! The numeric helpers decoding needs, each once: argmax as torch picks it, log-softmax and
//! softmax in f32 as torch computes them, and openai/whisper's f64 log-sum-exp (its timestamp rule
//! and average log-probability are computed in f64, and results must match to the bit).

use crate::error::{Error, Result};

/// The index of the largest value (the first one on ties, as torch.argmax). NaN logits are an
/// error, not a silent choice.
pub fn argmax(values: &[f32]) -> Result<u32> {
    let mut best: Option<(usize, f32)> = None;
    for (i, &v) in values.iter().enumerate() {
        if v.is_nan() {
            return Err(Error::Input("the model produced NaN logits".into()));
        }
        if best.is_none_or(|(_, b)| v > b) {
            best = Some((i, v));
        }
    }
    best.map(|(i, _)| i as u32).ok_or_else(|| Error::Input("empty vocabulary".into()))
}

/// torch's `log_softmax` in f32, in place: x - max - log(sum(exp(x - max))). A row without any
/// finite value is left as it is.
pub fn log_softmax(values: &mut [f32]) {
    let max = max_f32(values);
    if !max.is_finite() {
        return;
    }
    let sum: f32 = values.iter().map(|&v| (v - max).exp()).sum();
    let log_sum = sum.ln();
    for v in values.iter_mut() {
        *v = *v - max - log_sum;
    }
}

/// torch's `softmax` in f32, in place: exp(x - max) / sum(exp(x - max)).
pub fn softmax(values: &mut [f32]) {
    let max = max_f32(values);
    for v in values.iter_mut() {
        *v = (*v - max).exp();
    }
    let sum: f32 = values.iter().sum();
    for v in values.iter_mut() {
        *v /= sum;
    }
}

/// log(sum(exp(x))) accumulated in f64 from the f32 maximum; `-inf` when every value is `-inf`.
pub fn log_sum_exp(values: &[f32]) -> f64 {
    let max = max_f32(values) as f64;
    if max == f64::NEG_INFINITY {
        return f64::NEG_INFINITY;
    }
    max + values.iter().map(|&x| (x as f64 - max).exp()).sum::<f64>().ln()
}

/// log_softmax(values)[index] in f64 (openai/whisper's per-token log-probability); `-inf` for an
/// index outside `values`.
pub fn log_softmax_at(values: &[f32], index: usize) -> f64 {
    match values.get(index) {
        Some(&x) => x as f64 - log_sum_exp(values),
        None => f64::NEG_INFINITY,
    }
}

/// softmax(values)[index] in f64; 0 for an index outside `values`.
pub fn softmax_at(values: &[f32], index: usize) -> f64 {
    log_softmax_at(values, index).exp()
}

/// The largest value; `-inf` for none.
pub fn max_f32(values: &[f32]) -> f32 {
    values.iter().copied().fold(f32::NEG_INFINITY, f32::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argmax_takes_first_of_ties() {
        assert_eq!(argmax(&[1.0, 3.0, 3.0, -1.0]).unwrap(), 1);
        assert_eq!(argmax(&[f32::NEG_INFINITY, f32::NEG_INFINITY]).unwrap(), 0);
        assert!(argmax(&[]).is_err());
        assert!(argmax(&[0.0, f32::NAN]).is_err());
    }

    #[test]
    fn log_softmax_and_softmax_agree() {
        let logits = [1.0f32, 2.0, 0.5, f32::NEG_INFINITY];
        let mut logp = logits;
        log_softmax(&mut logp);
        let mut p = logits;
        softmax(&mut p);
        for i in 0..logits.len() {
            assert!((logp[i].exp() - p[i]).abs() < 1e-6);
            let (a, b) = (log_softmax_at(&logits, i), logp[i] as f64);
            assert!(a == b || (a - b).abs() < 1e-6, "{a} vs {b}");
            assert!((softmax_at(&logits, i) - p[i] as f64).abs() < 1e-6);
        }
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert_eq!(p[3], 0.0);
        // A fully masked row stays as it is.
        let mut masked = [f32::NEG_INFINITY; 3];
        log_softmax(&mut masked);
        assert_eq!(masked, [f32::NEG_INFINITY; 3]);
        assert_eq!(log_sum_exp(&masked), f64::NEG_INFINITY);
        assert_eq!(softmax_at(&logits, 9), 0.0);
    }
}
