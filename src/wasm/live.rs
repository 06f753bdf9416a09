//! Live transcription from JS (`crate::whisper::live`): a speech pipeline's `live(options)` gives
//! a session object; `push(samples, sampleRate)` → `{ committed, tentative, received, decoded }`,
//! `finish()` → `{ text, chunks, language }`.
//!
//! ```js
//! const asr = await pipeline('automatic-speech-recognition', 'Systran/faster-whisper-tiny.en');
//! const live = asr.live({ language, task, condition_on_previous_text });
//! live.push(float32Array, 48000);   // { committed, tentative, received, decoded }
//! live.finish();                    // { text, chunks: [{ timestamp: [start, end], text }], language }
//! ```

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::Function;
use wasm_bindgen::prelude::*;

use super::{input_error, js_error, to_js, JsOptions, Loaded};
use crate::tasks::field_names;
use crate::whisper::live::{LiveOptions, LiveSession};

/// A live transcription session over a speech pipeline's model.
#[wasm_bindgen]
pub struct LiveTranscription {
    slot: Rc<RefCell<Option<Loaded>>>,
    session: LiveSession,
}

/// Run `f` with the pipeline's recognizer (an error once the pipeline is disposed).
fn with_recognizer<T>(
    slot: &Rc<RefCell<Option<Loaded>>>,
    f: impl FnOnce(&crate::tasks::speech_recognition::SpeechRecognizer) -> Result<T, JsValue>,
) -> Result<T, JsValue> {
    match slot.borrow().as_ref() {
        Some(Loaded::SpeechRecognition(recognizer)) => f(recognizer),
        Some(_) => Err(input_error("live transcription needs an automatic-speech-recognition pipeline")),
        None => Err(input_error("this pipeline was disposed")),
    }
}

#[wasm_bindgen]
impl LiveTranscription {
    /// Take mono samples at `sample_rate` Hz (default 16000; the same for the whole session) and
    /// return the text so far: `{ committed, tentative, received, decoded }`.
    pub fn push(&mut self, samples: &js_sys::Float32Array, sample_rate: Option<u32>) -> Result<JsValue, JsValue> {
        let samples = samples.to_vec();
        let session = &mut self.session;
        let update = with_recognizer(&self.slot, |r| session.push(r, &samples, sample_rate.unwrap_or(16_000)).map_err(|e| js_error(&e)))?;
        to_js(&update)
    }

    /// Decode what is left and end the session: `{ text, chunks, language }`.
    pub fn finish(&mut self) -> Result<JsValue, JsValue> {
        let session = &mut self.session;
        let result = with_recognizer(&self.slot, |r| session.finish(r).map_err(|e| js_error(&e)))?;
        to_js(&result)
    }
}

/// The pipeline function's `live(options)` method.
pub(super) fn live_method(slot: Rc<RefCell<Option<Loaded>>>) -> Function {
    let start = Closure::<dyn Fn(JsValue) -> Result<JsValue, JsValue>>::new(move |options: JsValue| {
        let options = JsOptions::new(&options)?;
        let fields = options.take_fields::<LiveOptions>()?;
        options.finish(field_names::<LiveOptions>())?;
        let options = fields.into_struct()?;
        let session = with_recognizer(&slot, |r| LiveSession::new(r, options).map_err(|e| js_error(&e)))?;
        Ok(LiveTranscription { slot: slot.clone(), session }.into())
    });
    start.into_js_value().unchecked_into()
}
