//! [`Decoder`] over today's two model-side decoder states: encoder-decoder translation models
//! (`Seq2SeqModel`: Marian, T5; one token per beam per call) and Whisper (one hypothesis, any
//! number of tokens per call). Thin on purpose: they only translate calls.

use candle_core::Tensor;

use super::{generate, Decoder, GenerationConfig, Generated, Hooks, OnToken, StepLogits};
use crate::error::{Error, Result};
use crate::models::seq2seq::{self, Seq2SeqModel};
use crate::models::whisper::{self, Whisper};

/// A `Seq2SeqModel` over one input: encoded once, at the first `start`.
pub struct Seq2SeqDecoder<'a> {
    model: &'a dyn Seq2SeqModel,
    input_ids: &'a [u32],
    encoded: Option<Tensor>,
    state: Option<seq2seq::DecoderState>,
}

impl<'a> Seq2SeqDecoder<'a> {
    pub fn new(model: &'a dyn Seq2SeqModel, input_ids: &'a [u32]) -> Self {
        Seq2SeqDecoder { model, input_ids, encoded: None, state: None }
    }

    fn state(&mut self) -> Result<&mut seq2seq::DecoderState> {
        self.state.as_mut().ok_or_else(|| Error::Input("decoder used before start".into()))
    }
}

impl Decoder for Seq2SeqDecoder<'_> {
    fn max_positions(&self) -> Option<usize> {
        self.model.spec().max_target_positions
    }

    fn start(&mut self, beams: usize) -> Result<()> {
        let encoded = match self.encoded.take() {
            Some(encoded) => encoded,
            None => self.model.encode(self.input_ids)?,
        };
        self.state = Some(self.model.start(&encoded, beams)?);
        self.encoded = Some(encoded);
        Ok(())
    }

    /// The model takes one token per beam per call: several are fed one position at a time.
    fn step(&mut self, tokens: &[&[u32]]) -> Result<StepLogits> {
        let positions = tokens.first().map_or(0, |t| t.len());
        if tokens.iter().any(|t| t.len() != positions) {
            return Err(Error::Input("every beam must be fed the same number of tokens".into()));
        }
        let model = self.model;
        let state = self.state()?;
        // rows[position][beam]
        let mut rows = Vec::with_capacity(positions);
        for position in 0..positions {
            let column: Vec<u32> = tokens.iter().map(|t| t[position]).collect();
            rows.push(model.step(&column, state)?.to_vec2::<f32>()?);
        }
        let values = (0..tokens.len()).flat_map(|beam| rows.iter().flat_map(move |r| r[beam].iter().copied())).collect();
        StepLogits::new(values, tokens.len(), positions)
    }

    fn reorder(&mut self, parents: &[u32]) -> Result<()> {
        self.state()?.reorder(parents)
    }
}

/// Generate from an encoder-decoder model after its decoder start token, with the model's eos
/// ids (when `config` names none) and never-generated ids (Marian's pad) added to `config`.
pub fn generate_seq2seq(model: &dyn Seq2SeqModel, input_ids: &[u32], config: &GenerationConfig, on_token: OnToken) -> Result<Generated> {
    let spec = model.spec();
    let mut config = config.clone();
    if config.eos_token_ids.is_empty() {
        config.eos_token_ids = spec.eos_ids.clone();
    }
    config.suppress_tokens.extend(&spec.suppress_ids);
    let mut decoder = Seq2SeqDecoder::new(model, input_ids);
    generate(&mut decoder, &[spec.decoder_start_id], &config, Hooks { on_token, ..Default::default() })
}

/// Whisper over one encoded window's decoder state (greedy only: one hypothesis).
pub struct WhisperDecoder<'a> {
    model: &'a Whisper,
    state: &'a mut whisper::DecoderState,
}

impl<'a> WhisperDecoder<'a> {
    pub fn new(model: &'a Whisper, state: &'a mut whisper::DecoderState) -> Self {
        WhisperDecoder { model, state }
    }
}

impl Decoder for WhisperDecoder<'_> {
    fn max_positions(&self) -> Option<usize> {
        Some(self.model.config().n_text_ctx)
    }

    fn start(&mut self, beams: usize) -> Result<()> {
        if beams != 1 {
            return Err(Error::Input(format!("Whisper decodes one hypothesis at a time, not {beams} beams")));
        }
        self.state.reset();
        Ok(())
    }

    fn step(&mut self, tokens: &[&[u32]]) -> Result<StepLogits> {
        let [tokens] = tokens else {
            return Err(Error::Input(format!("Whisper decodes one hypothesis at a time, not {}", tokens.len())));
        };
        let logits = self.model.decode(self.state, tokens)?;
        StepLogits::new(logits.flatten_all()?.to_vec1::<f32>()?, 1, tokens.len())
    }

    fn reorder(&mut self, parents: &[u32]) -> Result<()> {
        match parents {
            [0] => Ok(()),
            _ => Err(Error::Input("Whisper decodes one hypothesis at a time: nothing to reorder".into())),
        }
    }
}
