//! Sampling at a temperature, as openai/whisper's
//! [`GreedyDecoder.update`](https://github.com/openai/whisper/blob/fdf63e51dc3089e10d72fd25ac04ffe22f86543e/whisper/decoding.py)
//! does when `temperature > 0`: one token drawn from `Categorical(logits=logits / temperature)`
//! after the logit processors. The random numbers come from a seeded SplitMix64 generator (no
//! operating-system entropy, no getrandom), so a seed gives the same tokens natively and in wasm.
//! torch's generator draws other numbers: sampled tokens are reproducible, not torch's.

use crate::error::{Error, Result};

/// Sample instead of taking the argmax: a temperature above 0 and the seed of the draws.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sampling {
    pub temperature: f64,
    pub seed: u64,
}

/// SplitMix64 (Steele, Lea and Flood 2014): 64 bits of state, full period, passes BigCrush.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1), 53 bits.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

/// Draws tokens for one generation.
pub struct Sampler {
    temperature: f64,
    rng: SplitMix64,
}

impl Sampler {
    pub fn new(sampling: Sampling) -> Result<Self> {
        if !(sampling.temperature > 0.0 && sampling.temperature.is_finite()) {
            return Err(Error::Input(format!("sampling temperature {} must be a finite number above 0", sampling.temperature)));
        }
        Ok(Sampler { temperature: sampling.temperature, rng: SplitMix64::new(sampling.seed) })
    }

    /// A token drawn with probability softmax(scores / temperature); banned (`-inf`) tokens are
    /// never drawn. Weights are computed in f64 from the largest score, so no temperature
    /// overflows them.
    pub fn pick(&mut self, scores: &[f32]) -> Result<u32> {
        let mut max = f64::NEG_INFINITY;
        for &s in scores {
            if s.is_nan() {
                return Err(Error::Input("the model produced NaN logits".into()));
            }
            max = max.max(s as f64);
        }
        if max == f64::NEG_INFINITY {
            return Err(Error::Input("every token is banned: nothing to sample".into()));
        }
        let weight = |s: f32| ((s as f64 - max) / self.temperature).exp();
        let total: f64 = scores.iter().map(|&s| weight(s)).sum();
        let target = self.rng.next_f64() * total;
        let mut cumulative = 0.0;
        let mut last_allowed = 0;
        for (i, &s) in scores.iter().enumerate() {
            let w = weight(s);
            if w > 0.0 {
                cumulative += w;
                last_allowed = i;
                if cumulative > target {
                    return Ok(i as u32);
                }
            }
        }
        // Rounding can leave `target` just above the last partial sum.
        Ok(last_allowed as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_matches_its_published_sequence() {
        // Reference values of SplitMix64 seeded with 1234567 (Vigna's splitmix64.c).
        let mut rng = SplitMix64::new(1234567);
        assert_eq!(
            [rng.next_u64(), rng.next_u64(), rng.next_u64()],
            [6457827717110365317, 3203168211198807973, 9817491932198370423]
        );
    }

    #[test]
    fn draws_follow_the_tempered_distribution_and_never_banned_tokens() {
        let scores = [0.0f32, 1.0, f32::NEG_INFINITY, 2.0];
        let draws = 20_000;
        for temperature in [0.5, 1.0] {
            let mut sampler = Sampler::new(Sampling { temperature, seed: 7 }).unwrap();
            let mut counts = [0usize; 4];
            for _ in 0..draws {
                counts[sampler.pick(&scores).unwrap() as usize] += 1;
            }
            assert_eq!(counts[2], 0, "a banned token was drawn");
            let weights: Vec<f64> = scores.iter().map(|&s| (s as f64 / temperature).exp()).collect();
            let total: f64 = weights.iter().sum();
            for i in [0, 1, 3] {
                let expected = weights[i] / total;
                let seen = counts[i] as f64 / draws as f64;
                // 5 standard deviations of a binomial proportion.
                let tolerance = 5.0 * (expected * (1.0 - expected) / draws as f64).sqrt();
                assert!((seen - expected).abs() < tolerance, "T={temperature} token {i}: {seen} vs {expected}");
            }
        }
    }

    #[test]
    fn the_seed_fixes_the_draws() {
        let scores: Vec<f32> = (0..50).map(|i| (i % 7) as f32 * 0.3).collect();
        let draw = |seed| {
            let mut sampler = Sampler::new(Sampling { temperature: 1.0, seed }).unwrap();
            (0..30).map(|_| sampler.pick(&scores).unwrap()).collect::<Vec<_>>()
        };
        assert_eq!(draw(3), draw(3));
        assert_ne!(draw(3), draw(4));
    }

    #[test]
    fn bad_temperatures_and_rows_are_errors() {
        for temperature in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(Sampler::new(Sampling { temperature, seed: 0 }).is_err(), "{temperature}");
        }
        let mut sampler = Sampler::new(Sampling { temperature: 1.0, seed: 0 }).unwrap();
        assert!(sampler.pick(&[f32::NEG_INFINITY; 3]).is_err());
        assert!(sampler.pick(&[0.0, f32::NAN]).is_err());
        // A huge score gap at a tiny temperature: no overflow, the best token.
        assert_eq!(Sampler::new(Sampling { temperature: 1e-6, seed: 0 }).unwrap().pick(&[0.0, 80.0]).unwrap(), 1);
    }
}
