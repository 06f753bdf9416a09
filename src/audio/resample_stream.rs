//! `resample` for audio that arrives in pieces (a microphone): each piece is resampled with the
//! same filter as the whole signal would be, so the joined output equals `resample` of the joined
//! input (up to the end, which waits for `LOOKAHEAD` of input, the filter's reach).
//!
//! Blocks are whole multiples of `down` input samples (the reduced ratio's input side), so every
//! block starts on the same filter phase as it would in the whole signal; each is resampled with
//! `CONTEXT` input samples on both sides, which cover the filter's half-width (at most
//! 35 · from / to input samples, under 20 ms for any supported rate pair), and only the block's
//! own output is kept.

use super::resample::{gcd, resample};

/// Input kept on each side of a block: 20 ms, rounded up to whole multiples of `down`.
const CONTEXT_SECONDS_DIVISOR: u64 = 50;

pub struct StreamResampler {
    from: u32,
    to: u32,
    up: u64,
    down: u64,
    context: usize,
    /// `context` samples already resampled, then the input not yet resampled.
    input: Vec<f32>,
    /// Input samples taken in, output samples given out.
    consumed: u64,
    produced: u64,
}

impl StreamResampler {
    /// From `from` Hz to `to` Hz (both non-zero; callers check the supported range).
    pub fn new(from: u32, to: u32) -> Self {
        let g = gcd(from as u64, to as u64).max(1);
        let (up, down) = (to as u64 / g, from as u64 / g);
        let context = (from as u64).div_ceil(CONTEXT_SECONDS_DIVISOR).div_ceil(down) * down;
        StreamResampler { from, to, up, down, context: context as usize, input: vec![0.0; context as usize], consumed: 0, produced: 0 }
    }

    pub fn input_rate(&self) -> u32 {
        self.from
    }

    /// The output `samples` make available now.
    pub fn push(&mut self, samples: &[f32]) -> Vec<f32> {
        if self.from == self.to {
            return samples.to_vec();
        }
        self.input.extend_from_slice(samples);
        let ready = self.input.len().saturating_sub(2 * self.context) as u64;
        let block = (ready / self.down * self.down) as usize;
        self.resample_block(block, self.context)
    }

    /// The rest: the input still held back, resampled as the end of the signal.
    pub fn finish(&mut self) -> Vec<f32> {
        if self.from == self.to {
            return Vec::new();
        }
        let rest = self.input.len() - self.context;
        let total = ((self.consumed + rest as u64) * self.up).div_ceil(self.down);
        let block = (rest as u64).div_ceil(self.down) * self.down;
        self.input.resize(self.context + block as usize + self.context, 0.0);
        let mut out = self.resample_block(block as usize, self.context);
        out.truncate(total.saturating_sub(self.produced - out.len() as u64) as usize);
        self.produced = total;
        out
    }

    /// Resample `block` input samples after the held context, with `lookahead` after them, and
    /// drop what no later block needs.
    fn resample_block(&mut self, block: usize, lookahead: usize) -> Vec<f32> {
        if block == 0 {
            return Vec::new();
        }
        let span = &self.input[..self.context + block + lookahead];
        let all = resample(span, self.from, self.to);
        let first = (self.context as u64 * self.up / self.down) as usize;
        let count = (block as u64 * self.up / self.down) as usize;
        let out = all[first.min(all.len())..(first + count).min(all.len())].to_vec();
        self.input.drain(..block);
        self.consumed += block as u64;
        self.produced += out.len() as u64;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chirp(n: usize, rate: f64) -> Vec<f32> {
        (0..n).map(|i| (i as f64 / rate * (200.0 + 3000.0 * i as f64 / n as f64) * std::f64::consts::TAU).sin() as f32 * 0.5).collect()
    }

    #[test]
    fn pieces_resample_as_the_whole_signal() {
        for (from, to) in [(48_000, 16_000), (44_100, 16_000), (8_000, 16_000), (22_050, 16_000)] {
            let input = chirp(from as usize, from as f64);
            let whole = resample(&input, from, to);
            let mut stream = StreamResampler::new(from, to);
            let mut joined: Vec<f32> = input.chunks(128).flat_map(|c| stream.push(c)).collect();
            joined.extend(stream.finish());
            assert_eq!(joined.len(), whole.len(), "{from} → {to}");
            let worst = joined.iter().zip(&whole).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
            assert!(worst < 1e-5, "{from} → {to}: {worst}");
        }
    }

    #[test]
    fn the_same_rate_passes_through() {
        let mut stream = StreamResampler::new(16_000, 16_000);
        assert_eq!(stream.push(&[0.5, -0.5]), vec![0.5, -0.5]);
        assert!(stream.finish().is_empty());
    }
}
