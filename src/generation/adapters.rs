//! The loop's [`Decoder`] over any model's decoder (`models::attention::Decoder`: Marian, T5,
//! Whisper): one encoded input and the key/value caches of its hypotheses.

use candle_core::Tensor;

use super::{generate, Decoder, GenerationConfig, Generated, Hooks, OnToken, StepLogits};
use crate::error::{Error, Result};
use crate::models::attention::{self, DecoderState};
use crate::models::kernels::on_pool;
use crate::models::seq2seq::Seq2SeqModel;

pub struct CachedDecoder<'a> {
    model: &'a dyn attention::Decoder,
    encoded: &'a Tensor,
    state: Option<DecoderState>,
    max_positions: Option<usize>,
}

impl<'a> CachedDecoder<'a> {
    /// Over `encoded` (1, source, d); `max_positions` is the decoder's position limit, if any.
    pub fn new(model: &'a dyn attention::Decoder, encoded: &'a Tensor, max_positions: Option<usize>) -> Self {
        CachedDecoder { model, encoded, state: None, max_positions }
    }

    /// Reuse a state already started over `encoded` (its cross-attention keys/values).
    pub fn with_state(mut self, state: DecoderState) -> Self {
        self.state = Some(state);
        self
    }

    fn state(&mut self) -> Result<&mut DecoderState> {
        self.state.as_mut().ok_or_else(|| Error::Input("decoder used before start".into()))
    }
}

impl Decoder for CachedDecoder<'_> {
    fn max_positions(&self) -> Option<usize> {
        self.max_positions
    }

    fn start(&mut self, beams: usize) -> Result<()> {
        match &mut self.state {
            Some(state) if state.beams == beams => state.reset(),
            _ => {
                let (model, encoded) = (self.model, self.encoded);
                self.state = Some(on_pool(|| model.start(encoded, beams))?);
            }
        }
        Ok(())
    }

    fn step(&mut self, tokens: &[&[u32]]) -> Result<StepLogits> {
        let positions = tokens.first().map_or(0, |t| t.len());
        if tokens.iter().any(|t| t.len() != positions) {
            return Err(Error::Input("every beam must be fed the same number of tokens".into()));
        }
        let model = self.model;
        let state = self.state()?;
        let flat: Vec<u32> = tokens.iter().flat_map(|t| t.iter().copied()).collect();
        let logits = on_pool(|| -> Result<Vec<f32>> { Ok(model.decode(state, &flat)?.flatten_all()?.to_vec1::<f32>()?) })?;
        StepLogits::new(logits, tokens.len(), positions)
    }

    fn reorder(&mut self, parents: &[u32]) -> Result<()> {
        self.state()?.reorder(parents)
    }
}

/// Generate from an encoder-decoder model after its decoder start token, with the model's eos
/// ids (when `config` names none) and never-generated ids (Marian's pad) added to `config`.
pub fn generate_seq2seq(model: &dyn Seq2SeqModel, input_ids: &[u32], config: &GenerationConfig, on_token: OnToken) -> Result<Generated> {
    let spec = model.spec();
    if input_ids.is_empty() {
        return Err(crate::error::Error::Input("the text encodes to no tokens at all (the tokenizer adds none)".into()));
    }
    let mut config = config.clone();
    if config.eos_token_ids.is_empty() {
        config.eos_token_ids = spec.eos_ids.clone();
    }
    config.suppress_tokens.extend(&spec.suppress_ids);
    let encoded = on_pool(|| model.encode(input_ids))?;
    let mut decoder = CachedDecoder::new(model, &encoded, spec.max_target_positions);
    generate(&mut decoder, &[spec.decoder_start_id], &config, Hooks { on_token, ..Default::default() })
}
