//! Band-limited resampling between any two integer rates: a Kaiser-windowed sinc low-pass whose
//! cutoff sits below the lower Nyquist frequency, evaluated as a polyphase filter. The ratio is
//! reduced to `up / down`; output sample `n` sits at input position `n · down / up`, whose
//! fractional part is one of `up` phases. Phase tables are precomputed when they are small (the
//! usual rates: 44.1 k → 16 k has 160 phases, 48 k → 16 k one), otherwise the kernel is
//! evaluated per output sample. Each phase is normalised to unit DC gain.

/// Zero crossings of the sinc on each side, at the (lower) output rate.
const ZERO_CROSSINGS: f64 = 32.0;
/// Cutoff as a fraction of the lower Nyquist frequency: low enough that the transition band of
/// the 32-zero-crossing Kaiser kernel ends near Nyquist (≥ 70 dB attenuation of aliases).
const ROLLOFF: f64 = 0.92;
const KAISER_BETA: f64 = 8.6;
/// Largest precomputed table, in coefficients.
const MAX_TABLE: usize = 1 << 21;

pub(super) fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// Modified Bessel function of the first kind, order 0 (power series).
fn bessel_i0(x: f64) -> f64 {
    let (mut sum, mut term, half) = (1.0, 1.0, x / 2.0);
    for k in 1..64 {
        term *= (half / k as f64) * (half / k as f64);
        sum += term;
        if term < sum * 1e-17 {
            break;
        }
    }
    sum
}

struct Kernel {
    /// Cutoff in cycles per input sample × 2 (1.0 = input Nyquist).
    cutoff: f64,
    /// Half-width in input samples.
    half_width: f64,
    i0_beta: f64,
}

impl Kernel {
    fn at(&self, tau: f64) -> f64 {
        let x = tau / self.half_width;
        if x.abs() >= 1.0 {
            return 0.0;
        }
        let arg = std::f64::consts::PI * self.cutoff * tau;
        let sinc = if arg.abs() < 1e-12 { 1.0 } else { arg.sin() / arg };
        let window = bessel_i0(KAISER_BETA * (1.0 - x * x).sqrt()) / self.i0_beta;
        self.cutoff * sinc * window
    }
}

/// Resample mono `input` from `from` Hz to `to` Hz. Same rate: a copy. Output length is
/// `ceil(len · to / from)`.
pub fn resample(input: &[f32], from: u32, to: u32) -> Vec<f32> {
    if from == to || input.is_empty() || from == 0 || to == 0 {
        return input.to_vec();
    }
    let g = gcd(from as u64, to as u64);
    let (up, down) = (to as u64 / g, from as u64 / g);
    let cutoff = (to as f64 / from as f64).min(1.0) * ROLLOFF;
    let kernel = Kernel { cutoff, half_width: ZERO_CROSSINGS / cutoff, i0_beta: bessel_i0(KAISER_BETA) };
    // Taps j − i for j in i − reach + 1 ..= i + reach around the integer position i.
    let reach = kernel.half_width.ceil() as i64 + 1;
    let taps = (2 * reach) as usize;
    let out_len = ((input.len() as u64 * up).div_ceil(down)) as usize;
    let n_in = input.len() as i64;

    let weights_for = |frac: f64, out: &mut [f32]| {
        let mut sum = 0.0;
        let mut w = Vec::with_capacity(taps);
        for t in 0..taps as i64 {
            let d = t - reach + 1;
            let v = kernel.at(frac - d as f64);
            sum += v;
            w.push(v);
        }
        for (o, v) in out.iter_mut().zip(w) {
            *o = (v / sum) as f32;
        }
    };

    let table: Option<Vec<f32>> = (up as usize).checked_mul(taps).filter(|&n| n <= MAX_TABLE).map(|n| {
        let mut table = vec![0f32; n];
        for (p, row) in table.chunks_exact_mut(taps).enumerate() {
            weights_for(p as f64 / up as f64, row);
        }
        table
    });

    let mut scratch = vec![0f32; taps];
    let mut output = Vec::with_capacity(out_len);
    for n in 0..out_len as u64 {
        let pos = n * down;
        let i = (pos / up) as i64;
        let phase = (pos % up) as usize;
        let weights: &[f32] = match &table {
            Some(table) => &table[phase * taps..(phase + 1) * taps],
            None => {
                weights_for(phase as f64 / up as f64, &mut scratch);
                &scratch
            }
        };
        let first = i - reach + 1;
        let acc = if first >= 0 && first + taps as i64 <= n_in {
            let xs = &input[first as usize..first as usize + taps];
            xs.iter().zip(weights).map(|(x, w)| x * w).sum::<f32>()
        } else {
            let mut acc = 0f32;
            for (t, w) in weights.iter().enumerate() {
                let j = first + t as i64;
                if (0..n_in).contains(&j) {
                    acc += input[j as usize] * w;
                }
            }
            acc
        };
        output.push(acc);
    }
    output
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(freq: f64, rate: u32, seconds: f64) -> Vec<f32> {
        let n = (rate as f64 * seconds) as usize;
        (0..n).map(|i| (2.0 * std::f64::consts::PI * freq * i as f64 / rate as f64).sin() as f32).collect()
    }

    /// Amplitude of `freq` in `x` (single-bin DFT over the middle, away from edges).
    fn amplitude(x: &[f32], freq: f64, rate: u32) -> f64 {
        let x = &x[x.len() / 4..3 * x.len() / 4];
        let (mut re, mut im) = (0.0, 0.0);
        for (i, &v) in x.iter().enumerate() {
            let a = 2.0 * std::f64::consts::PI * freq * i as f64 / rate as f64;
            re += v as f64 * a.cos();
            im += v as f64 * a.sin();
        }
        2.0 * (re * re + im * im).sqrt() / x.len() as f64
    }

    #[test]
    fn same_rate_is_identity() {
        let x = tone(440.0, 16000, 0.1);
        assert_eq!(resample(&x, 16000, 16000), x);
    }

    #[test]
    fn lengths() {
        assert_eq!(resample(&vec![0.0; 44100], 44100, 16000).len(), 16000);
        assert_eq!(resample(&vec![0.0; 48000], 48000, 16000).len(), 16000);
        assert_eq!(resample(&vec![0.0; 8000], 8000, 16000).len(), 16000);
        assert_eq!(resample(&[0.0; 3], 44100, 16000).len(), 2);
        assert_eq!(resample(&[1.0], 44101, 16000).len(), 1);
    }

    #[test]
    fn passband_tones_keep_frequency_and_amplitude() {
        for (from, freq) in [(44100, 1000.0), (48000, 3000.0), (22050, 440.0), (8000, 1000.0), (44101, 2000.0), (96000, 6000.0)]
        {
            let y = resample(&tone(freq, from, 1.0), from, 16000);
            let a = amplitude(&y, freq, 16000);
            assert!((a - 1.0).abs() < 0.01, "{from} Hz, {freq} Hz tone: amplitude {a}");
        }
    }

    #[test]
    fn tones_above_nyquist_do_not_alias() {
        // 10 kHz at 44.1 kHz would fold onto 6 kHz at 16 kHz without the low-pass.
        for (from, freq, alias) in [(44100, 10000.0, 6000.0), (48000, 9000.0, 7000.0), (44100, 15000.0, 1000.0)] {
            let y = resample(&tone(freq, from, 1.0), from, 16000);
            let a = amplitude(&y, alias, 16000);
            assert!(a < 3e-4, "{from} Hz, {freq} Hz tone leaks {a} at {alias} Hz");
        }
    }

    #[test]
    fn dc_is_preserved() {
        let y = resample(&vec![0.5; 44100], 44100, 16000);
        for &v in &y[200..y.len() - 200] {
            assert!((v - 0.5).abs() < 1e-4, "{v}");
        }
    }
}
