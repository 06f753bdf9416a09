//! The previous text as a prompt (`condition_on_previous_text`, `initial_prompt`), as openai/whisper's
//! [`transcribe()`](https://github.com/openai/whisper/blob/fdf63e51dc3089e10d72fd25ac04ffe22f86543e/whisper/transcribe.py)
//! keeps `all_tokens` and `prompt_reset_since`, and as its
//! [`DecodingTask._get_initial_tokens`](https://github.com/openai/whisper/blob/fdf63e51dc3089e10d72fd25ac04ffe22f86543e/whisper/decoding.py)
//! puts them before `<|startoftranscript|>`: `<|startofprev|>` and the last n_text_ctx / 2 − 1
//! tokens (timestamps included) of what was kept since the last reset. The initial prompt's tokens
//! come first and are never part of the transcript.

/// Every kept token so far, the initial prompt first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PreviousText {
    tokens: Vec<u32>,
    reset_since: usize,
}

impl PreviousText {
    /// Start from `initial_prompt`'s tokens (openai encodes `" " + initial_prompt.strip()`).
    pub fn new(initial_prompt: Vec<u32>) -> Self {
        PreviousText { tokens: initial_prompt, reset_since: 0 }
    }

    /// The tokens the next window is conditioned on (`all_tokens[prompt_reset_since:]`).
    pub fn prompt(&self) -> &[u32] {
        &self.tokens[self.reset_since..]
    }

    /// What goes before the start-of-transcript sequence: `<|startofprev|>` and the prompt's last
    /// n_text_ctx / 2 − 1 tokens; nothing when the prompt is empty or the vocabulary has no
    /// `<|startofprev|>`.
    pub fn prefix(&self, sot_prev: Option<u32>, n_text_ctx: usize) -> Vec<u32> {
        startofprev_prefix(sot_prev, self.prompt(), (n_text_ctx / 2).saturating_sub(1))
    }

    /// A kept segment's tokens.
    pub fn extend(&mut self, segment: &[u32]) {
        self.tokens.extend_from_slice(segment);
    }

    /// Later windows are not conditioned on anything kept so far.
    pub fn reset(&mut self) {
        self.reset_since = self.tokens.len();
    }
}

/// `<|startofprev|>` and the last `keep` of `tokens`, the prompt before the start-of-transcript
/// sequence; nothing when `tokens` is empty or the vocabulary has no `<|startofprev|>`.
pub fn startofprev_prefix(sot_prev: Option<u32>, tokens: &[u32], keep: usize) -> Vec<u32> {
    match sot_prev {
        Some(sot_prev) if !tokens.is_empty() => {
            let keep = keep.min(tokens.len());
            std::iter::once(sot_prev).chain(tokens[tokens.len() - keep..].iter().copied()).collect()
        }
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOT_PREV: u32 = 9;

    #[test]
    fn the_prefix_is_startofprev_and_the_last_half_context() {
        let mut text = PreviousText::new(vec![1, 2]);
        assert_eq!(text.prefix(Some(SOT_PREV), 448), [SOT_PREV, 1, 2], "the initial prompt conditions the first window");
        text.extend(&[3, 4, 5]);
        assert_eq!(text.prompt(), [1, 2, 3, 4, 5]);
        // n_text_ctx 8: the last 8 / 2 − 1 = 3 tokens.
        assert_eq!(text.prefix(Some(SOT_PREV), 8), [SOT_PREV, 3, 4, 5]);
        assert!(text.prefix(None, 448).is_empty());
    }

    #[test]
    fn a_reset_forgets_everything_kept_before_it() {
        let mut text = PreviousText::new(vec![1]);
        text.extend(&[2]);
        text.reset();
        assert!(text.prompt().is_empty() && text.prefix(Some(SOT_PREV), 448).is_empty());
        text.extend(&[3]);
        assert_eq!(text.prefix(Some(SOT_PREV), 448), [SOT_PREV, 3]);
        assert!(PreviousText::default().prefix(Some(SOT_PREV), 448).is_empty());
    }
}
