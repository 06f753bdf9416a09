//! transformers' `SuppressTokensAtBeginLogitsProcessor` (openai's `SuppressBlank`): ids not
//! allowed as the first generated token (Whisper's `begin_suppress_tokens`: a blank and
//! end-of-text), and allowed afterwards.

use super::{ban, Hypothesis, LogitsProcessor};
use crate::generation::GenerationConfig;

pub struct SuppressTokensAtBegin {
    pub ids: Vec<u32>,
}

pub fn from_config(config: &GenerationConfig) -> Option<Box<dyn LogitsProcessor>> {
    let ids = config.begin_suppress_tokens.clone();
    (!ids.is_empty()).then(|| Box::new(SuppressTokensAtBegin { ids }) as Box<dyn LogitsProcessor>)
}

impl LogitsProcessor for SuppressTokensAtBegin {
    fn process(&self, hypothesis: Hypothesis, scores: &mut [f32]) {
        if hypothesis.at_first_step() {
            ban(scores, &self.ids);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NO: f32 = f32::NEG_INFINITY;

    #[test]
    fn only_the_first_generated_position_is_masked() {
        let processor = SuppressTokensAtBegin { ids: vec![0, 2] };
        // A three-token prompt (Whisper's sot, language, task): the first step follows it.
        let prompt = [50258, 50259, 50359];
        let mut scores = vec![1.0f32; 4];
        processor.process(Hypothesis { tokens: &prompt, prompt_len: 3 }, &mut scores);
        assert_eq!(scores, [NO, 1.0, NO, 1.0]);
        let mut scores = vec![1.0f32; 4];
        processor.process(Hypothesis { tokens: &[50258, 50259, 50359, 1], prompt_len: 3 }, &mut scores);
        assert_eq!(scores, [1.0; 4], "later positions are not masked");
        // Inside the prompt (never asked by the loop, but well defined): not the first step.
        let mut scores = vec![1.0f32; 4];
        processor.process(Hypothesis { tokens: &prompt[..1], prompt_len: 3 }, &mut scores);
        assert_eq!(scores, [1.0; 4]);
    }
}
