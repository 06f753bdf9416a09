//! transformers' `SuppressTokensLogitsProcessor`: ids never generated, at any step (Whisper's
//! `suppress_tokens`, Marian's pad).

use super::{ban, Hypothesis, LogitsProcessor};
use crate::generation::GenerationConfig;

pub struct SuppressTokens {
    pub ids: Vec<u32>,
}

pub fn from_config(config: &GenerationConfig) -> Option<Box<dyn LogitsProcessor>> {
    let ids = config.suppress_tokens.clone();
    (!ids.is_empty()).then(|| Box::new(SuppressTokens { ids }) as Box<dyn LogitsProcessor>)
}

impl LogitsProcessor for SuppressTokens {
    fn process(&self, _: Hypothesis, scores: &mut [f32]) {
        ban(scores, &self.ids);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NO: f32 = f32::NEG_INFINITY;

    #[test]
    fn suppressed_ids_are_banned_at_every_step() {
        let processor = SuppressTokens { ids: vec![1, 3, 99] };
        for tokens in [&[7][..], &[7, 2], &[7, 2, 2, 0]] {
            let mut scores = vec![0.5f32, 1.0, 2.0, 3.0];
            processor.process(Hypothesis { tokens, prompt_len: 1 }, &mut scores);
            assert_eq!(scores, [0.5, NO, 2.0, NO], "after {tokens:?}; 99 is outside the vocabulary and ignored");
        }
    }
}
