//! transformers' `NoBadWordsLogitsProcessor` (`bad_words_ids`): a token sequence is never
//! generated. A one-token word is banned everywhere; a longer word bans its last token where the
//! hypothesis ends with the rest of it. As in transformers, a word only counts once the
//! hypothesis (prompt included) is at least as long as the word, and a word that is just an eos
//! token is dropped (ending is always allowed; use `suppress_tokens` to forbid it).

use super::{ban, Hypothesis, LogitsProcessor};
use crate::generation::GenerationConfig;

pub struct BadWords {
    words: Vec<Vec<u32>>,
}

impl BadWords {
    pub fn new(words: &[Vec<u32>], eos_token_ids: &[u32]) -> Self {
        let words = words
            .iter()
            .filter(|word| !word.is_empty() && !matches!(word.as_slice(), [only] if eos_token_ids.contains(only)))
            .cloned()
            .collect();
        BadWords { words }
    }
}

pub fn from_config(config: &GenerationConfig) -> Option<Box<dyn LogitsProcessor>> {
    let processor = BadWords::new(&config.bad_words_ids, &config.eos_token_ids);
    (!processor.words.is_empty()).then(|| Box::new(processor) as Box<dyn LogitsProcessor>)
}

impl LogitsProcessor for BadWords {
    fn process(&self, hypothesis: Hypothesis, scores: &mut [f32]) {
        let tokens = hypothesis.tokens;
        for word in &self.words {
            let Some((&last, prefix)) = word.split_last() else { continue };
            if word.len() <= tokens.len() && tokens.ends_with(prefix) {
                ban(scores, &[last]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NO: f32 = f32::NEG_INFINITY;

    fn scores_after(processor: &BadWords, tokens: &[u32]) -> Vec<f32> {
        let mut scores = vec![0.0f32; 6];
        processor.process(Hypothesis { tokens, prompt_len: 1 }, &mut scores);
        scores
    }

    #[test]
    fn a_single_token_is_banned_everywhere() {
        let processor = BadWords::new(&[vec![4]], &[0]);
        assert_eq!(scores_after(&processor, &[5]), [0.0, 0.0, 0.0, 0.0, NO, 0.0]);
        assert_eq!(scores_after(&processor, &[5, 1, 2]), [0.0, 0.0, 0.0, 0.0, NO, 0.0]);
    }

    #[test]
    fn a_two_token_prefix_only_bans_after_the_prefix() {
        // [2, 3, 4]: 4 is banned right after "2 3", nowhere else.
        let processor = BadWords::new(&[vec![2, 3, 4]], &[0]);
        assert_eq!(scores_after(&processor, &[5, 2, 3]), [0.0, 0.0, 0.0, 0.0, NO, 0.0]);
        assert_eq!(scores_after(&processor, &[5, 1, 2, 3]), [0.0, 0.0, 0.0, 0.0, NO, 0.0]);
        assert_eq!(scores_after(&processor, &[5, 3, 3]), [0.0; 6], "only half the prefix");
        assert_eq!(scores_after(&processor, &[5, 2]), [0.0; 6], "prefix not complete");
        assert_eq!(scores_after(&processor, &[5, 2, 3, 1]), [0.0; 6], "the prefix is not at the end");
        // The hypothesis must be at least as long as the word (transformers skips shorter ones).
        assert_eq!(scores_after(&processor, &[2, 3]), [0.0; 6]);
    }

    #[test]
    fn eos_alone_is_not_a_bad_word_but_inside_a_word_it_is() {
        let processor = BadWords::new(&[vec![0], vec![3, 0], vec![]], &[0]);
        assert_eq!(scores_after(&processor, &[5, 1]), [0.0; 6]);
        assert_eq!(scores_after(&processor, &[5, 3]), [NO, 0.0, 0.0, 0.0, 0.0, 0.0]);
        assert!(from_config(&GenerationConfig { bad_words_ids: vec![vec![0]], eos_token_ids: vec![0], ..Default::default() }).is_none());
    }
}
