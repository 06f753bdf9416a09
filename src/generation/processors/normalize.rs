//! transformers' `LogitNormalization` (`renormalize_logits`): the scores become log-probabilities
//! again after the other processors masked some of them. Runs last.

use super::{Hypothesis, LogitsProcessor};
use crate::generation::{math, GenerationConfig};

pub struct Normalize;

pub fn from_config(config: &GenerationConfig) -> Option<Box<dyn LogitsProcessor>> {
    config.renormalize_logits.then(|| Box::new(Normalize) as Box<dyn LogitsProcessor>)
}

impl LogitsProcessor for Normalize {
    fn process(&self, _: Hypothesis, scores: &mut [f32]) {
        math::log_softmax(scores);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masked_log_probabilities_sum_to_one_again() {
        let mut scores = vec![(0.25f32).ln(), f32::NEG_INFINITY, (0.25f32).ln(), f32::NEG_INFINITY];
        Normalize.process(Hypothesis { tokens: &[0], prompt_len: 1 }, &mut scores);
        assert!((scores[0] - 0.5f32.ln()).abs() < 1e-6 && (scores[2] - 0.5f32.ln()).abs() < 1e-6, "{scores:?}");
        assert_eq!(scores[1], f32::NEG_INFINITY);
    }
}
