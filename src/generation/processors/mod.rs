//! Logit processors: small rules that adjust one hypothesis' next-token scores before a token is
//! chosen, composed in the order transformers' `generate` applies them. Greedy search hands them
//! the raw logits, beam search the log-probabilities (as transformers does).
//!
//! Adding a processor is one file here (a type implementing [`LogitsProcessor`] and a
//! `from_config` that builds it when the [`GenerationConfig`] asks for it) and one line in
//! [`PROCESSORS`].

mod bad_words;
mod forced_tokens;
mod normalize;
mod suppress_tokens;
mod suppress_tokens_at_begin;
mod timestamp_rules;

pub use bad_words::BadWords;
pub use forced_tokens::ForcedTokens;
pub use normalize::Normalize;
pub use suppress_tokens::SuppressTokens;
pub use suppress_tokens_at_begin::SuppressTokensAtBegin;
pub use timestamp_rules::TimestampRules;

use super::GenerationConfig;

/// The sequence a score row continues: the prompt (decoder start token, or Whisper's
/// `<|startoftranscript|>`… prompt) followed by the tokens generated so far.
#[derive(Debug, Clone, Copy)]
pub struct Hypothesis<'a> {
    pub tokens: &'a [u32],
    pub prompt_len: usize,
}

impl<'a> Hypothesis<'a> {
    /// The tokens generated after the prompt.
    pub fn generated(&self) -> &'a [u32] {
        self.tokens.get(self.prompt_len..).unwrap_or(&[])
    }

    /// Whether the next token is the first one generated.
    pub fn at_first_step(&self) -> bool {
        self.tokens.len() == self.prompt_len
    }
}

/// One rule applied to the next-token scores (one entry per vocabulary id) of `hypothesis`.
/// Ids outside the vocabulary are ignored, never a panic.
pub trait LogitsProcessor {
    fn process(&self, hypothesis: Hypothesis, scores: &mut [f32]);
}

/// Builds a processor when the config asks for it.
type FromConfig = fn(&GenerationConfig) -> Option<Box<dyn LogitsProcessor>>;

/// Every processor, in transformers' order (`_get_logits_processor`: bad words, suppression,
/// suppression at begin, forced tokens; Whisper's timestamp rules after those, as its `generate`
/// appends them; normalisation last).
const PROCESSORS: &[FromConfig] = &[
    bad_words::from_config,
    suppress_tokens::from_config,
    suppress_tokens_at_begin::from_config,
    forced_tokens::from_config,
    timestamp_rules::from_config,
    normalize::from_config,
];

/// The processors `config` asks for, in the order they run.
pub fn from_config(config: &GenerationConfig) -> Vec<Box<dyn LogitsProcessor>> {
    PROCESSORS.iter().filter_map(|build| build(config)).collect()
}

/// Run `processors` in order on one hypothesis' scores.
pub fn apply(processors: &[Box<dyn LogitsProcessor>], hypothesis: Hypothesis, scores: &mut [f32]) {
    for processor in processors {
        processor.process(hypothesis, scores);
    }
}

/// Set `-inf` at each of `ids` the vocabulary has.
fn ban(scores: &mut [f32], ids: &[u32]) {
    for &id in ids {
        if let Some(score) = scores.get_mut(id as usize) {
            *score = f32::NEG_INFINITY;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_builds_what_the_config_asks_for() {
        assert!(from_config(&GenerationConfig::default()).is_empty());
        let config = GenerationConfig {
            suppress_tokens: vec![1],
            begin_suppress_tokens: vec![2],
            bad_words_ids: vec![vec![3]],
            forced_decoder_ids: vec![(1, 4)],
            renormalize_logits: true,
            ..Default::default()
        };
        assert_eq!(from_config(&config).len(), 5);
    }

    #[test]
    fn processors_compose_in_order() {
        // Suppression then normalisation: the remaining tokens' probabilities sum to 1.
        let config = GenerationConfig { suppress_tokens: vec![0], renormalize_logits: true, ..Default::default() };
        let processors = from_config(&config);
        let mut scores = vec![0.0f32; 4];
        apply(&processors, Hypothesis { tokens: &[9], prompt_len: 1 }, &mut scores);
        assert_eq!(scores[0], f32::NEG_INFINITY);
        let total: f32 = scores.iter().map(|s| s.exp()).sum();
        assert!((total - 1.0).abs() < 1e-6, "{scores:?}");
    }
}
