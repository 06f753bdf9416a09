//! Decoding loops for encoder-decoder models, as transformers' `generate` runs them: greedy
//! (argmax) and beam search (`_beam_search`: 2 × num_beams candidates per step, a finished
//! hypothesis scored sum(log p) / generated_len^length_penalty, `early_stopping` true / false
//! (heuristic) / "never"). Tokens a model never emits (Marian's pad) and `bad_words_ids` are
//! masked before choosing. The encoder runs once; each step feeds one token per beam through the
//! decoder's key/value cache, which beam search reorders as hypotheses move between beams.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::models::seq2seq::Seq2SeqModel;

/// Called with the sequence so far (decoder start token first) after each greedy step.
pub type OnToken<'a> = Option<&'a mut dyn FnMut(&[u32])>;

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

#[derive(Debug, Clone, PartialEq)]
pub struct GenerationConfig {
    pub max_new_tokens: usize,
    /// 1 = greedy.
    pub num_beams: usize,
    pub length_penalty: f64,
    pub early_stopping: EarlyStopping,
    /// Token sequences never generated: the last id is banned where the others precede it.
    pub bad_words_ids: Vec<Vec<u32>>,
    /// Re-normalise log-probabilities after masking (generation_config `renormalize_logits`).
    pub renormalize_logits: bool,
}

impl Default for GenerationConfig {
    fn default() -> Self {
        GenerationConfig {
            max_new_tokens: 19,
            num_beams: 1,
            length_penalty: 1.0,
            early_stopping: EarlyStopping::Heuristic,
            bad_words_ids: Vec::new(),
            renormalize_logits: false,
        }
    }
}

/// A generated sequence: the decoder start token, the new tokens, and the eos token if one
/// ended it; `score` is the beam score (sum of log-probabilities / length^length_penalty).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Generated {
    pub ids: Vec<u32>,
    pub score: Option<f32>,
}

/// Greedy when `num_beams <= 1` (as transformers chooses), beam search otherwise. `on_token`
/// sees the sequence after every greedy step.
pub fn generate(
    model: &dyn Seq2SeqModel,
    input_ids: &[u32],
    config: &GenerationConfig,
    on_token: OnToken,
) -> Result<Generated> {
    if config.num_beams <= 1 {
        greedy(model, input_ids, config, on_token)
    } else {
        beam_search(model, input_ids, config)
    }
}

/// New tokens allowed: the request, capped by the decoder's positions.
fn max_new_tokens(model: &dyn Seq2SeqModel, config: &GenerationConfig) -> usize {
    match model.spec().max_target_positions {
        Some(max) => config.max_new_tokens.min(max.saturating_sub(1)),
        None => config.max_new_tokens,
    }
}

/// Set `-inf` on the ids `sequence` may not continue with.
fn mask_banned(model: &dyn Seq2SeqModel, config: &GenerationConfig, sequence: &[u32], scores: &mut [f32]) {
    let mut ban = |id: u32| {
        if let Some(s) = scores.get_mut(id as usize) {
            *s = f32::NEG_INFINITY;
        }
    };
    for &id in &model.spec().suppress_ids {
        ban(id);
    }
    for word in &config.bad_words_ids {
        if let Some((&last, prefix)) = word.split_last() {
            if sequence.ends_with(prefix) {
                ban(last);
            }
        }
    }
}

/// The index of the largest value (the first one on ties, as torch.argmax).
fn argmax(values: &[f32]) -> Result<u32> {
    let mut best: Option<(usize, f32)> = None;
    for (i, &v) in values.iter().enumerate() {
        if v.is_nan() {
            return Err(Error::Input("the model produced NaN logits".into()));
        }
        if best.is_none_or(|(_, b)| v > b) {
            best = Some((i, v));
        }
    }
    best.map(|(i, _)| i as u32).ok_or_else(|| Error::Input("empty vocabulary".into()))
}

/// torch's `log_softmax` in f32: x - max - log(sum(exp(x - max))).
pub fn log_softmax(values: &mut [f32]) {
    let max = values.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if !max.is_finite() {
        return;
    }
    let sum: f32 = values.iter().map(|&v| (v - max).exp()).sum();
    let log_sum = sum.ln();
    for v in values.iter_mut() {
        *v = *v - max - log_sum;
    }
}

pub fn greedy(
    model: &dyn Seq2SeqModel,
    input_ids: &[u32],
    config: &GenerationConfig,
    mut on_token: OnToken,
) -> Result<Generated> {
    let spec = model.spec();
    let mut ids = vec![spec.decoder_start_id];
    let limit = max_new_tokens(model, config);
    if limit == 0 {
        return Ok(Generated { ids, score: None });
    }
    let encoded = model.encode(input_ids)?;
    let mut state = model.start(&encoded, 1)?;
    for _ in 0..limit {
        let mut logits = model.step(&ids[ids.len() - 1..], &mut state)?.squeeze(0)?.to_vec1::<f32>()?;
        mask_banned(model, config, &ids, &mut logits);
        let next = argmax(&logits)?;
        ids.push(next);
        if let Some(callback) = on_token.as_deref_mut() {
            callback(&ids);
        }
        if spec.eos_ids.contains(&next) {
            break;
        }
    }
    Ok(Generated { ids, score: None })
}

/// transformers' vectorised beam search for one input (batch of 1).
pub fn beam_search(model: &dyn Seq2SeqModel, input_ids: &[u32], config: &GenerationConfig) -> Result<Generated> {
    let spec = model.spec();
    let num_beams = config.num_beams.max(1);
    let limit = max_new_tokens(model, config);
    if limit == 0 {
        return Ok(Generated { ids: vec![spec.decoder_start_id], score: None });
    }
    const PROMPT_LEN: usize = 1; // the decoder start token
    let max_length = PROMPT_LEN + limit;
    let keep = 2.max(1 + spec.eos_ids.len()) * num_beams;
    let lp = config.length_penalty;
    let normalizer = |len: usize| (len as f64).powf(lp) as f32;

    let encoded = model.encode(input_ids)?;
    let mut state = model.start(&encoded, num_beams)?;
    let mut running: Vec<Vec<u32>> = vec![vec![spec.decoder_start_id]; num_beams];
    // Only the first beam is live at the start; the copies can never win.
    let mut running_scores = vec![-1.0e9f32; num_beams];
    running_scores[0] = 0.0;
    // Finished hypotheses, best first, at most num_beams.
    let mut finished: Vec<(Vec<u32>, f32)> = Vec::with_capacity(num_beams + keep);
    let mut improvable = true;
    let mut cur_len = PROMPT_LEN;
    loop {
        let last: Vec<u32> = running.iter().map(|s| *s.last().unwrap()).collect();
        let logits = model.step(&last, &mut state)?.to_vec2::<f32>()?;
        let vocab = logits.first().map_or(0, Vec::len);
        let mut flat: Vec<f32> = Vec::with_capacity(num_beams * vocab);
        for (beam, mut row) in logits.into_iter().enumerate() {
            log_softmax(&mut row);
            mask_banned(model, config, &running[beam], &mut row);
            if config.renormalize_logits {
                log_softmax(&mut row);
            }
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
        let hits: Vec<bool> =
            candidates.iter().map(|&(_, token, _)| spec.eos_ids.contains(&token) || cur_len + 1 >= max_length).collect();

        // Finished: candidates that stop and rank among the first num_beams.
        let full = finished.len() >= num_beams;
        if improvable && !(full && config.early_stopping == EarlyStopping::Always) {
            for (rank, &(beam, token, score)) in candidates.iter().enumerate().take(num_beams) {
                if hits[rank] {
                    let mut sequence = running[beam].clone();
                    sequence.push(token);
                    finished.push((sequence, score / normalizer(cur_len + 1 - PROMPT_LEN)));
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
        state.reorder(&parents)?;
        cur_len += 1;

        let best_len = if config.early_stopping == EarlyStopping::Never && lp > 0.0 {
            max_length - PROMPT_LEN
        } else {
            cur_len - PROMPT_LEN
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
    }
    let (ids, score) = finished
        .into_iter()
        .next()
        .unwrap_or_else(|| (running.swap_remove(0), running_scores[0]));
    Ok(Generated { ids, score: Some(score) })
}
