//! One decoding loop for every generative model, as transformers' `generate` runs it: greedy
//! (argmax) and beam search (`_beam_search`: 2 × num_beams candidates per step, a finished
//! hypothesis scored sum(log p) / generated_len^length_penalty, `early_stopping` true / false
//! (heuristic) / "never"). Before a token is chosen, the [`processors`] the
//! [`GenerationConfig`] asks for adjust each hypothesis' scores (suppressed tokens, bad words,
//! forced tokens, Whisper's timestamp rules, renormalisation).
//!
//! The loop drives a model through [`Decoder`]: start some hypotheses, feed the prompt once (all
//! its positions' logits come back, for Whisper's no-speech probability), then one token per
//! hypothesis per step over the decoder's key/value cache, which beam search reorders as
//! hypotheses move between beams. [`CachedDecoder`] implements it over every model's decoder.

pub mod adapters;
pub mod math;
pub mod processors;
pub mod sampling;

use serde::{Deserialize, Serialize};

pub use adapters::{generate_seq2seq, CachedDecoder};
pub use processors::TimestampRules;
pub use sampling::Sampling;

use crate::error::{Error, Result};
use processors::{Hypothesis, LogitsProcessor};

/// transformers' `early_stopping`: `true` stops once `num_beams` hypotheses are finished; `false`
/// (the default) stops when the best running beam, at its current length, cannot beat the worst
/// finished one; `"never"` only stops when no running beam can, whatever its final length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EarlyStopping {
    #[default]
    Heuristic,
    Always,
    Never,
}

impl EarlyStopping {
    /// From generation_config's JSON value (`true`, `false` or `"never"`).
    pub fn from_json(value: &serde_json::Value) -> Option<Self> {
        match value {
            serde_json::Value::Bool(true) => Some(EarlyStopping::Always),
            serde_json::Value::Bool(false) => Some(EarlyStopping::Heuristic),
            serde_json::Value::String(s) if s == "never" => Some(EarlyStopping::Never),
            _ => None,
        }
    }
}

/// How to generate: transformers' `GenerationConfig`, the fields hubside uses.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerationConfig {
    pub max_new_tokens: usize,
    /// 1 = greedy.
    pub num_beams: usize,
    pub length_penalty: f64,
    pub early_stopping: EarlyStopping,
    /// Tokens that end a hypothesis (kept as its last token).
    pub eos_token_ids: Vec<u32>,
    /// Token sequences never generated: the last id is banned where the others precede it.
    pub bad_words_ids: Vec<Vec<u32>>,
    /// Ids never generated.
    pub suppress_tokens: Vec<u32>,
    /// Ids not allowed as the first generated token.
    pub begin_suppress_tokens: Vec<u32>,
    /// (position in the sequence, decoder start token = 0; token) pairs: the only token allowed
    /// there. `forced_bos_token_id` is position 1.
    pub forced_decoder_ids: Vec<(usize, u32)>,
    /// Whisper's timestamp rules, when decoding with timestamps.
    pub timestamp_rules: Option<TimestampRules>,
    /// Re-normalise log-probabilities after the other processors (`renormalize_logits`).
    pub renormalize_logits: bool,
    /// Greedy: also sum the chosen tokens' log-probabilities ([`Generated::sum_logprob`]). Off by
    /// default: it costs a log-sum-exp over the vocabulary per step, and only Whisper's silence
    /// test uses it.
    pub sum_logprobs: bool,
    /// Greedy: draw each token at a temperature instead of taking the argmax (openai/whisper's
    /// temperature fallback); `None` = argmax. Beam search ignores it.
    pub sampling: Option<Sampling>,
}

impl Default for GenerationConfig {
    fn default() -> Self {
        GenerationConfig {
            max_new_tokens: 19,
            num_beams: 1,
            length_penalty: 1.0,
            early_stopping: EarlyStopping::Heuristic,
            eos_token_ids: Vec::new(),
            bad_words_ids: Vec::new(),
            suppress_tokens: Vec::new(),
            begin_suppress_tokens: Vec::new(),
            forced_decoder_ids: Vec::new(),
            timestamp_rules: None,
            renormalize_logits: false,
            sum_logprobs: false,
            sampling: None,
        }
    }
}

impl GenerationConfig {
    /// Take the settings `params` names (generation_config.json, config.json of older repos, or
    /// a `task_specific_params` entry); the others keep their values.
    pub fn apply_json(&mut self, params: &serde_json::Value) {
        let usize_of = |key: &str| params.get(key).and_then(|v| v.as_u64()).map(|v| v as usize);
        let ids_of = |value: &serde_json::Value| -> Option<Vec<u32>> {
            value.as_array().map(|ids| ids.iter().filter_map(|id| id.as_u64()).map(|id| id as u32).collect())
        };
        if let Some(n) = usize_of("num_beams") {
            self.num_beams = n.max(1);
        }
        if let Some(n) = usize_of("max_new_tokens") {
            self.max_new_tokens = n;
        } else if let Some(n) = usize_of("max_length") {
            // max_length counts the decoder start token.
            self.max_new_tokens = n.saturating_sub(1);
        }
        if let Some(lp) = params.get("length_penalty").and_then(|v| v.as_f64()) {
            self.length_penalty = lp;
        }
        if let Some(es) = params.get("early_stopping").and_then(EarlyStopping::from_json) {
            self.early_stopping = es;
        }
        if let Some(words) = params.get("bad_words_ids").and_then(|v| v.as_array()) {
            self.bad_words_ids = words.iter().filter_map(ids_of).filter(|w| !w.is_empty()).collect();
        }
        if let Some(ids) = params.get("suppress_tokens").and_then(ids_of) {
            self.suppress_tokens = ids;
        }
        if let Some(ids) = params.get("begin_suppress_tokens").and_then(ids_of) {
            self.begin_suppress_tokens = ids;
        }
        if let Some(pairs) = params.get("forced_decoder_ids").and_then(|v| v.as_array()) {
            self.forced_decoder_ids = pairs
                .iter()
                .filter_map(ids_of)
                .filter_map(|pair| match pair.as_slice() {
                    &[position, token] => Some((position as usize, token)),
                    _ => None,
                })
                .collect();
        }
        if let Some(bos) = params.get("forced_bos_token_id").and_then(|v| v.as_u64()) {
            self.forced_decoder_ids.retain(|&(position, _)| position != 1);
            self.forced_decoder_ids.push((1, bos as u32));
        }
        if let Some(b) = params.get("renormalize_logits").and_then(|v| v.as_bool()) {
            self.renormalize_logits = b;
        }
    }
}

/// A generated sequence: the prompt, the new tokens, and the eos token if one ended it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Generated {
    pub ids: Vec<u32>,
    /// Beam search: the hypothesis' score (sum of log-probabilities / new_len^length_penalty).
    pub score: Option<f32>,
    /// Greedy with `sum_logprobs`: the sum of the chosen tokens' log-probabilities after the
    /// processors, in f64 (openai/whisper's `sum_logprobs`, eos included).
    pub sum_logprob: Option<f64>,
}

/// Logits of the positions one [`Decoder::step`] fed, `[beam][position][vocab]`.
#[derive(Debug, Clone)]
pub struct StepLogits {
    values: Vec<f32>,
    beams: usize,
    positions: usize,
}

impl StepLogits {
    /// From row-major values for `beams` × `positions` rows.
    pub fn new(values: Vec<f32>, beams: usize, positions: usize) -> Result<Self> {
        let rows = beams * positions;
        if rows == 0 || values.is_empty() || !values.len().is_multiple_of(rows) {
            return Err(Error::Input(format!("{} logits do not split into {beams} x {positions} rows", values.len())));
        }
        crate::models::check_finite(&values, "logit")?;
        Ok(StepLogits { values, beams, positions })
    }

    pub fn vocab(&self) -> usize {
        self.values.len() / (self.beams * self.positions)
    }

    /// The logits after `position` of `beam`'s fed tokens.
    pub fn row(&self, beam: usize, position: usize) -> Option<&[f32]> {
        if beam >= self.beams || position >= self.positions {
            return None;
        }
        let vocab = self.vocab();
        let start = (beam * self.positions + position) * vocab;
        Some(&self.values[start..start + vocab])
    }

    /// Each beam's logits after its last fed token: the next-token scores.
    pub fn into_last_rows(self) -> Vec<Vec<f32>> {
        let vocab = self.vocab();
        self.values.chunks(vocab * self.positions).map(|beam| beam[beam.len() - vocab..].to_vec()).collect()
    }
}

/// A model's decoder as the loop drives it.
pub trait Decoder {
    /// Longest sequence (prompt included) the decoder can hold, if limited.
    fn max_positions(&self) -> Option<usize>;
    /// Begin `beams` empty hypotheses, forgetting anything fed before.
    fn start(&mut self, beams: usize) -> Result<()>;
    /// Feed `tokens[b]` after beam `b`'s earlier tokens (every beam the same number); the logits
    /// of every fed position.
    fn step(&mut self, tokens: &[&[u32]]) -> Result<StepLogits>;
    /// New beam `i` continues old beam `parents[i]`.
    fn reorder(&mut self, parents: &[u32]) -> Result<()>;
}

/// Called with the sequence so far (prompt first) after each greedy step.
pub type OnToken<'a> = Option<&'a mut dyn FnMut(&[u32])>;

/// Observers of one generation.
#[derive(Default)]
pub struct Hooks<'a> {
    /// Sees the logits of every prompt position, once, before any processor (Whisper's
    /// no-speech probability is read at `<|startoftranscript|>`).
    pub on_prompt: Option<&'a mut dyn FnMut(&StepLogits)>,
    /// Sees the sequence after every greedy step (streaming; beam search has no running best).
    pub on_token: OnToken<'a>,
}

/// Generate after `prompt`: greedy when `num_beams <= 1` (as transformers chooses), beam search
/// otherwise.
pub fn generate(decoder: &mut dyn Decoder, prompt: &[u32], config: &GenerationConfig, hooks: Hooks) -> Result<Generated> {
    if prompt.is_empty() {
        return Err(Error::Input("generation needs a prompt (at least the decoder start token)".into()));
    }
    let processors = processors::from_config(config);
    // New tokens allowed: the request, capped by the decoder's positions.
    let limit = match decoder.max_positions() {
        Some(max) => config.max_new_tokens.min(max.saturating_sub(prompt.len())),
        None => config.max_new_tokens,
    };
    if limit == 0 {
        return Ok(Generated { ids: prompt.to_vec(), score: None, sum_logprob: None });
    }
    let search = Search { decoder, prompt, config, processors: &processors, limit, hooks };
    if config.num_beams <= 1 {
        greedy(search)
    } else {
        beam_search(search)
    }
}

/// One search's inputs: the decoder, the prompt, the settings and processors, how many new
/// tokens are allowed, and the observers.
struct Search<'a, 'h> {
    decoder: &'a mut dyn Decoder,
    prompt: &'a [u32],
    config: &'a GenerationConfig,
    processors: &'a [Box<dyn LogitsProcessor>],
    limit: usize,
    hooks: Hooks<'h>,
}

/// Feed the prompt to every beam and show its logits to `hooks`; the next-token scores per beam.
fn start(decoder: &mut dyn Decoder, prompt: &[u32], beams: usize, hooks: &mut Hooks) -> Result<Vec<Vec<f32>>> {
    decoder.start(beams)?;
    let logits = decoder.step(&vec![prompt; beams])?;
    if let Some(on_prompt) = hooks.on_prompt.as_deref_mut() {
        on_prompt(&logits);
    }
    Ok(logits.into_last_rows())
}

fn greedy(search: Search) -> Result<Generated> {
    let Search { decoder, prompt, config, processors, limit, mut hooks } = search;
    let prompt_len = prompt.len();
    let mut ids = prompt.to_vec();
    let mut sum_logprob = 0.0;
    let mut sampler = config.sampling.map(sampling::Sampler::new).transpose()?;
    let mut scores = start(decoder, prompt, 1, &mut hooks)?.swap_remove(0);
    loop {
        processors::apply(processors, Hypothesis { tokens: &ids, prompt_len }, &mut scores);
        let next = match sampler.as_mut() {
            Some(sampler) => sampler.pick(&scores)?,
            None => math::argmax(&scores)?,
        };
        if config.sum_logprobs {
            sum_logprob += math::log_softmax_at(&scores, next as usize);
        }
        ids.push(next);
        if let Some(on_token) = hooks.on_token.as_deref_mut() {
            on_token(&ids);
        }
        if config.eos_token_ids.contains(&next) || ids.len() - prompt_len == limit {
            break;
        }
        scores = decoder.step(&[&[next]])?.into_last_rows().swap_remove(0);
    }
    Ok(Generated { ids, score: None, sum_logprob: config.sum_logprobs.then_some(sum_logprob) })
}

/// transformers' vectorised beam search for one input (batch of 1).
fn beam_search(search: Search) -> Result<Generated> {
    let Search { decoder, prompt, config, processors, limit, mut hooks } = search;
    let num_beams = config.num_beams;
    let prompt_len = prompt.len();
    let max_length = prompt_len + limit;
    let keep = 2.max(1 + config.eos_token_ids.len()) * num_beams;
    let lp = config.length_penalty;
    let normalizer = |len: usize| (len as f64).powf(lp) as f32;

    let mut logits = start(decoder, prompt, num_beams, &mut hooks)?;
    let mut running: Vec<Vec<u32>> = vec![prompt.to_vec(); num_beams];
    // Only the first beam is live at the start; the copies can never win.
    let mut running_scores = vec![-1.0e9f32; num_beams];
    running_scores[0] = 0.0;
    // Finished hypotheses, best first, at most num_beams.
    let mut finished: Vec<(Vec<u32>, f32)> = Vec::with_capacity(num_beams + keep);
    let mut improvable = true;
    let mut cur_len = prompt_len;
    loop {
        let vocab = logits.first().map_or(0, Vec::len);
        let mut flat: Vec<f32> = Vec::with_capacity(num_beams * vocab);
        for (beam, mut row) in logits.into_iter().enumerate() {
            math::log_softmax(&mut row);
            processors::apply(processors, Hypothesis { tokens: &running[beam], prompt_len }, &mut row);
            flat.extend(row.into_iter().map(|lp| lp + running_scores[beam]));
        }
        // The `keep` best (beam, token) continuations, best first (lower index on ties).
        let mut order: Vec<usize> = (0..flat.len()).collect();
        let by_score = |a: &usize, b: &usize| flat[*b].total_cmp(&flat[*a]).then(a.cmp(b));
        if order.len() > keep {
            order.select_nth_unstable_by(keep - 1, by_score);
            order.truncate(keep);
        }
        order.sort_by(by_score);
        let candidates: Vec<(usize, u32, f32)> =
            order.iter().map(|&i| (i / vocab, (i % vocab) as u32, flat[i])).collect();
        let hits: Vec<bool> = candidates
            .iter()
            .map(|&(_, token, _)| config.eos_token_ids.contains(&token) || cur_len + 1 >= max_length)
            .collect();

        // Finished: candidates that stop and rank among the first num_beams.
        let full = finished.len() >= num_beams;
        if improvable && !(full && config.early_stopping == EarlyStopping::Always) {
            for (rank, &(beam, token, score)) in candidates.iter().enumerate().take(num_beams) {
                if hits[rank] {
                    let mut sequence = running[beam].clone();
                    sequence.push(token);
                    finished.push((sequence, score / normalizer(cur_len + 1 - prompt_len)));
                }
            }
            finished.sort_by(|a, b| b.1.total_cmp(&a.1)); // stable: earlier ones win ties
            finished.truncate(num_beams);
        }

        // Running: the best num_beams candidates that do not stop.
        let mut next: Vec<usize> = (0..candidates.len()).collect();
        let penalized = |i: usize| candidates[i].2 + if hits[i] { -1.0e9 } else { 0.0 };
        next.sort_by(|&a, &b| penalized(b).total_cmp(&penalized(a)).then(a.cmp(&b)));
        next.truncate(num_beams);
        let parents: Vec<u32> = next.iter().map(|&i| candidates[i].0 as u32).collect();
        running = next
            .iter()
            .map(|&i| {
                let mut sequence = running[candidates[i].0].clone();
                sequence.push(candidates[i].1);
                sequence
            })
            .collect();
        running_scores = next.iter().map(|&i| penalized(i)).collect();
        decoder.reorder(&parents)?;
        cur_len += 1;

        let best_len = if config.early_stopping == EarlyStopping::Never && lp > 0.0 {
            max_length - prompt_len
        } else {
            cur_len - prompt_len
        };
        let best_possible = running_scores[0] / normalizer(best_len);
        let full = finished.len() >= num_beams;
        let worst = finished.iter().map(|f| f.1).fold(f32::INFINITY, f32::min);
        improvable = improvable && (!full || best_possible > worst);
        let open = !(full && config.early_stopping == EarlyStopping::Always);
        let continuable = !hits.iter().all(|&h| h);
        if !(improvable && open && continuable) {
            break;
        }
        let last: Vec<&[u32]> = running.iter().map(|s| &s[s.len() - 1..]).collect();
        logits = decoder.step(&last)?.into_last_rows();
    }
    let (ids, score) = finished
        .into_iter()
        .next()
        .unwrap_or_else(|| (running.swap_remove(0), running_scores[0]));
    Ok(Generated { ids, score: Some(score), sum_logprob: None })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A decoder whose next-token logits depend only on the last token, from a fixed table; it
    /// records what it was fed.
    struct TableDecoder {
        /// logits[last token] over a vocabulary of logits.len() tokens.
        logits: Vec<Vec<f32>>,
        beams: usize,
        fed: Vec<Vec<u32>>,
    }

    impl Decoder for TableDecoder {
        fn max_positions(&self) -> Option<usize> {
            Some(8)
        }
        fn start(&mut self, beams: usize) -> Result<()> {
            self.beams = beams;
            self.fed.clear();
            Ok(())
        }
        fn step(&mut self, tokens: &[&[u32]]) -> Result<StepLogits> {
            assert_eq!(tokens.len(), self.beams);
            self.fed.push(tokens.concat());
            let positions = tokens[0].len();
            let values = tokens.iter().flat_map(|t| t.iter().flat_map(|&id| self.logits[id as usize].clone())).collect();
            StepLogits::new(values, self.beams, positions)
        }
        fn reorder(&mut self, _: &[u32]) -> Result<()> {
            Ok(())
        }
    }

    /// Vocabulary 0..5, 0 = eos, 4 = the start. Greedy goes 4 → 1 (the likeliest first step) →
    /// 2 → eos; the likelier whole sequence is 4 → 3 → eos.
    fn table() -> TableDecoder {
        let logits = vec![
            vec![0.0; 5],
            vec![0.0, 0.0, 1.0, 0.0, 0.0],
            vec![4.0, 1.0, 0.0, 0.0, 0.0],
            vec![5.0, 0.0, 0.0, 0.0, 0.0],
            vec![0.0, 2.0, 0.0, 1.5, 0.0],
        ];
        TableDecoder { logits, beams: 0, fed: Vec::new() }
    }

    fn logp(row: usize, token: usize) -> f64 {
        math::log_softmax_at(&table().logits[row], token)
    }

    #[test]
    fn greedy_follows_the_processors_and_stops_at_eos() {
        let config = GenerationConfig { eos_token_ids: vec![0], max_new_tokens: 10, sum_logprobs: true, ..Default::default() };
        let mut decoder = table();
        let mut seen = Vec::new();
        let mut on_token = |ids: &[u32]| seen.push(ids.to_vec());
        let mut prompt_rows = 0;
        let mut on_prompt = |logits: &StepLogits| prompt_rows = (0..).take_while(|&p| logits.row(0, p).is_some()).count();
        let hooks = Hooks { on_prompt: Some(&mut on_prompt), on_token: Some(&mut on_token) };
        let out = generate(&mut decoder, &[4, 4], &config, hooks).unwrap();
        assert_eq!(out.ids, [4, 4, 1, 2, 0]);
        assert_eq!(prompt_rows, 2, "the hook sees every prompt position");
        assert_eq!(seen, [vec![4, 4, 1], vec![4, 4, 1, 2], vec![4, 4, 1, 2, 0]]);
        assert_eq!(decoder.fed, [vec![4, 4], vec![1], vec![2]], "the prompt once, then one token per step");
        assert_eq!(out.sum_logprob, Some(logp(4, 1) + logp(1, 2) + logp(2, 0)));
        assert_eq!(out.score, None);

        // Forcing token 2 first and suppressing eos: 4 2 1 2 1, up to the limit.
        let config = GenerationConfig { forced_decoder_ids: vec![(1, 2)], suppress_tokens: vec![0], max_new_tokens: 4, sum_logprobs: false, ..config };
        let out = generate(&mut table(), &[4], &config, Hooks::default()).unwrap();
        assert_eq!((out.ids.as_slice(), out.sum_logprob), (&[4, 2, 1, 2, 1][..], None));
        // The decoder's positions cap the length: 8 positions, a 6-token prompt → 2 new tokens.
        let config = GenerationConfig { max_new_tokens: 10, ..config };
        assert_eq!(generate(&mut table(), &[4; 6], &config, Hooks::default()).unwrap().ids, [4, 4, 4, 4, 4, 4, 1, 2]);
        let none = generate(&mut table(), &[4; 8], &config, Hooks::default()).unwrap();
        assert_eq!((none.ids.len(), none.sum_logprob), (8, None));
        assert!(generate(&mut table(), &[], &config, Hooks::default()).is_err());
    }

    #[test]
    fn sampling_draws_reproducibly_and_sums_the_untempered_logprobs() {
        let sample = |seed| {
            let sampling = Some(Sampling { temperature: 1.0, seed });
            let config = GenerationConfig { eos_token_ids: vec![0], max_new_tokens: 6, sum_logprobs: true, sampling, ..Default::default() };
            generate(&mut table(), &[4], &config, Hooks::default()).unwrap()
        };
        let runs: Vec<Generated> = (0..16).map(sample).collect();
        assert_eq!(runs[3], sample(3), "a seed gives the same tokens");
        assert!(runs.iter().any(|r| r.ids[1] == 3) && runs.iter().any(|r| r.ids[1] == 1), "both first tokens drawn");
        for run in &runs {
            // openai sums log_softmax of the logits themselves, not of logits / temperature.
            let expected: f64 = run.ids.windows(2).map(|w| logp(w[0] as usize, w[1] as usize)).sum();
            assert!((run.sum_logprob.unwrap() - expected).abs() < 1e-9);
        }
    }

    #[test]
    fn beam_search_finds_the_likelier_sequence() {
        let via_1 = logp(4, 1) + logp(1, 2) + logp(2, 0);
        let via_3 = logp(4, 3) + logp(3, 0);
        assert!(via_3 > via_1 && logp(4, 1) > logp(4, 3));
        let config = GenerationConfig { eos_token_ids: vec![0], num_beams: 2, max_new_tokens: 5, length_penalty: 0.0, ..Default::default() };
        let mut decoder = table();
        let out = generate(&mut decoder, &[4], &config, Hooks::default()).unwrap();
        assert_eq!(out.ids, [4, 3, 0]);
        assert!((out.score.unwrap() as f64 - via_3).abs() < 1e-5);
        assert_eq!(decoder.fed[0], [4, 4], "every beam is fed the prompt");
    }

    #[test]
    fn generation_config_from_json() {
        let mut config = GenerationConfig::default();
        config.apply_json(&serde_json::json!({
            "num_beams": 4, "max_length": 512, "length_penalty": 0.6, "early_stopping": "never",
            "bad_words_ids": [[58100], []], "suppress_tokens": [1, 2], "begin_suppress_tokens": [3],
            "forced_decoder_ids": [[1, 7], [2]], "forced_bos_token_id": 9, "renormalize_logits": true
        }));
        assert_eq!((config.num_beams, config.max_new_tokens, config.length_penalty), (4, 511, 0.6));
        assert_eq!(config.early_stopping, EarlyStopping::Never);
        assert_eq!(config.bad_words_ids, [vec![58100]]);
        assert_eq!((config.suppress_tokens.as_slice(), config.begin_suppress_tokens.as_slice()), (&[1, 2][..], &[3][..]));
        assert_eq!(config.forced_decoder_ids, [(1, 9)], "forced_bos_token_id is position 1");
        assert!(config.renormalize_logits);
    }
}
