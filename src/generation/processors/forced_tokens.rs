//! transformers' `ForceTokensLogitsProcessor` / `ForcedBOSTokenLogitsProcessor`
//! (`forced_decoder_ids`, `forced_bos_token_id`): at a given position the only possible token is
//! the forced one (NLLB and M2M100 force their target language right after the decoder start).
//! Positions count the whole sequence, decoder start token = 0, so `forced_bos_token_id` is
//! position 1.

use super::{Hypothesis, LogitsProcessor};
use crate::generation::GenerationConfig;

pub struct ForcedTokens {
    /// (position in the sequence, token).
    pub at: Vec<(usize, u32)>,
}

pub fn from_config(config: &GenerationConfig) -> Option<Box<dyn LogitsProcessor>> {
    let at = config.forced_decoder_ids.clone();
    (!at.is_empty()).then(|| Box::new(ForcedTokens { at }) as Box<dyn LogitsProcessor>)
}

impl LogitsProcessor for ForcedTokens {
    fn process(&self, hypothesis: Hypothesis, scores: &mut [f32]) {
        let position = hypothesis.tokens.len();
        let Some(&(_, token)) = self.at.iter().find(|(at, _)| *at == position) else { return };
        // A token outside the vocabulary cannot be forced; leave the scores alone rather than
        // leave nothing possible.
        if (token as usize) < scores.len() {
            scores.fill(f32::NEG_INFINITY);
            scores[token as usize] = 0.0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NO: f32 = f32::NEG_INFINITY;

    #[test]
    fn the_forced_token_is_the_only_one_possible_at_its_step() {
        let processor = ForcedTokens { at: vec![(1, 2), (3, 0)] };
        let run = |tokens: &[u32]| {
            let mut scores = vec![0.5f32, -1.0, -3.0, 2.0];
            processor.process(Hypothesis { tokens, prompt_len: 1 }, &mut scores);
            scores
        };
        // Right after the decoder start token (forced BOS): only token 2, scored 0 (log 1).
        assert_eq!(run(&[9]), [NO, NO, 0.0, NO]);
        assert_eq!(run(&[9, 2]), [0.5, -1.0, -3.0, 2.0], "no token forced at position 2");
        assert_eq!(run(&[9, 2, 3]), [0.0, NO, NO, NO]);
        assert_eq!(run(&[9, 2, 3, 1]), [0.5, -1.0, -3.0, 2.0]);
        // Out of the vocabulary: nothing forced.
        let processor = ForcedTokens { at: vec![(1, 40)] };
        let mut scores = vec![1.0f32; 4];
        processor.process(Hypothesis { tokens: &[9], prompt_len: 1 }, &mut scores);
        assert_eq!(scores, [1.0; 4]);
    }
}
