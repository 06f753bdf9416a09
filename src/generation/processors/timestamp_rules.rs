//! openai/whisper's `ApplyTimestampRules` (transformers' `WhisperTimeStampLogitsProcessor`):
//! with timestamps, the generated tokens are `<|t0|> text <|t1|><|t1'|> text <|t2|> … <|eot|>`.
//! - `<|notimestamps|>` is never generated;
//! - timestamps come in pairs: after a lone timestamp only another timestamp or end-of-text may
//!   follow (text may not), after a pair only text (or end-of-text);
//! - timestamps never go back, and a segment cannot be empty: the next timestamp is above the last
//!   one (equal is allowed only to close the pair it opened);
//! - the first token is a timestamp no later than `max_initial_timestamp_index` steps;
//! - when the timestamps together are likelier than any single text token, a timestamp is chosen
//!   (compared in f64 as openai does: log-sum-exp of the timestamps against the best text token).

use super::{Hypothesis, LogitsProcessor};
use crate::generation::{math, GenerationConfig};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimestampRules {
    /// `<|0.00|>`: this id and every id above it are timestamps.
    pub timestamp_begin: u32,
    pub no_timestamps: u32,
    /// End-of-text: the ids below it are text tokens.
    pub eot: u32,
    /// Latest first timestamp, in timestamp steps (openai: max_initial_timestamp / 0.02 s).
    pub max_initial_timestamp_index: Option<u32>,
}

pub fn from_config(config: &GenerationConfig) -> Option<Box<dyn LogitsProcessor>> {
    config.timestamp_rules.clone().map(|rules| Box::new(rules) as Box<dyn LogitsProcessor>)
}

impl LogitsProcessor for TimestampRules {
    fn process(&self, hypothesis: Hypothesis, logits: &mut [f32]) {
        let vocab = logits.len();
        let ts_begin = (self.timestamp_begin as usize).min(vocab);
        let text_end = (self.eot as usize).min(vocab);
        let mask = |logits: &mut [f32], from: usize, to: usize| {
            if from < to.min(vocab) {
                logits[from..to.min(vocab)].fill(f32::NEG_INFINITY);
            }
        };
        mask(logits, self.no_timestamps as usize, self.no_timestamps as usize + 1);

        let tokens = hypothesis.generated();
        let is_timestamp = |t: u32| t >= self.timestamp_begin;
        let n = tokens.len();
        let last_was_timestamp = n >= 1 && is_timestamp(tokens[n - 1]);
        let penultimate_was_timestamp = n < 2 || is_timestamp(tokens[n - 2]);
        if last_was_timestamp {
            if penultimate_was_timestamp {
                mask(logits, ts_begin, vocab);
            } else {
                mask(logits, 0, text_end);
            }
        }
        if let Some(&last_timestamp) = tokens.iter().rev().find(|&&t| is_timestamp(t)) {
            // Closing a pair may repeat the opening timestamp; anything else must move forward.
            let first_allowed = if last_was_timestamp && !penultimate_was_timestamp { last_timestamp } else { last_timestamp + 1 };
            mask(logits, ts_begin, first_allowed as usize);
        }
        if n == 0 {
            mask(logits, 0, ts_begin);
            if let Some(index) = self.max_initial_timestamp_index {
                mask(logits, ts_begin + index as usize + 1, vocab);
            }
        }

        if math::max_f32(logits) == f32::NEG_INFINITY {
            return;
        }
        // log-softmax shifts every logit by the same amount, so comparing the raw logits' log-sum-exp
        // with the best raw text logit is openai's comparison of log-probabilities.
        let timestamp_logprob = math::log_sum_exp(&logits[ts_begin..]);
        let max_text = math::max_f32(&logits[..ts_begin]) as f64;
        if timestamp_logprob > max_text {
            mask(logits, 0, ts_begin);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NO: f32 = f32::NEG_INFINITY;
    // A toy vocabulary: text 0..=3, eot 4, notimestamps 5, timestamps 6..=11 (<|0.00|>..<|0.10|>).
    const EOT: u32 = 4;
    const NO_TS: u32 = 5;
    const TS: u32 = 6;
    const VOCAB: usize = 12;
    const PROMPT: [u32; 1] = [99];

    fn rules(max_initial: Option<u32>) -> TimestampRules {
        TimestampRules { timestamp_begin: TS, no_timestamps: NO_TS, eot: EOT, max_initial_timestamp_index: max_initial }
    }

    /// Scores after the rules for `generated` tokens, from logits where text is likelier than
    /// any single timestamp but not than all of them together (unless `text_logit` says otherwise).
    fn allowed(rules: &TimestampRules, generated: &[u32], text_logit: f32) -> Vec<bool> {
        let tokens: Vec<u32> = PROMPT.iter().chain(generated).copied().collect();
        let mut logits: Vec<f32> = (0..VOCAB).map(|i| if i < TS as usize { text_logit } else { 0.0 }).collect();
        rules.process(Hypothesis { tokens: &tokens, prompt_len: PROMPT.len() }, &mut logits);
        logits.iter().map(|&l| l != NO).collect()
    }

    fn ids(mask: &[bool]) -> Vec<u32> {
        mask.iter().enumerate().filter(|(_, &a)| a).map(|(i, _)| i as u32).collect()
    }

    #[test]
    fn the_first_token_is_an_early_timestamp() {
        // Only timestamps, never <|notimestamps|>, and with max_initial_timestamp_index 2 only <|0.00|>..<|0.04|>.
        assert_eq!(ids(&allowed(&rules(Some(2)), &[], 5.0)), [6, 7, 8]);
        assert_eq!(ids(&allowed(&rules(None), &[], 5.0)), [6, 7, 8, 9, 10, 11]);
    }

    #[test]
    fn timestamps_pair_up() {
        let r = rules(None);
        // After the opening timestamp (the start counts as a timestamp before it): text or eot.
        assert_eq!(ids(&allowed(&r, &[7], 5.0)), [0, 1, 2, 3, 4]);
        // After "<|t|> text <|t'|>" (a lone timestamp after text): no text, only a timestamp
        // ≥ t' (closing the pair) or eot.
        assert_eq!(ids(&allowed(&r, &[7, 1, 9], 5.0)), [4, 9, 10, 11]);
        // After a pair of timestamps: text only (or eot).
        assert_eq!(ids(&allowed(&r, &[7, 1, 9, 9], 5.0)), [0, 1, 2, 3, 4]);
    }

    #[test]
    fn timestamps_never_go_back() {
        let r = rules(None);
        // After "<|t7|> text": the closing timestamp must be above 7 (no empty segment).
        assert_eq!(ids(&allowed(&r, &[7, 1, 2], 5.0)), [0, 1, 2, 3, 4, 8, 9, 10, 11]);
        // After a pair ending at 9 and more text: the next timestamp is above 9.
        assert_eq!(ids(&allowed(&r, &[7, 1, 9, 9, 2], 5.0)), [0, 1, 2, 3, 4, 10, 11]);
    }

    #[test]
    fn timestamps_win_when_together_likelier_than_any_text_token() {
        let r = rules(None);
        // Four allowed timestamps at logit 0: log-sum-exp = ln 4 ≈ 1.386.
        assert_eq!(ids(&allowed(&r, &[7, 1, 2], 1.3)), [8, 9, 10, 11], "ln 4 > 1.3: text is masked");
        assert_eq!(ids(&allowed(&r, &[7, 1, 2], 1.4)), [0, 1, 2, 3, 4, 8, 9, 10, 11], "ln 4 < 1.4: text stays");
    }

    #[test]
    fn nothing_allowed_stays_nothing_allowed() {
        // A vocabulary cut short (ids beyond it) and a fully masked row are handled, not a panic.
        let mut logits = vec![NO; 8];
        rules(Some(50)).process(Hypothesis { tokens: &[99, 7], prompt_len: 1 }, &mut logits);
        assert!(logits.iter().all(|&l| l == NO));
    }
}
