//! The JavaScript surface, in transformers.js style:
//!
//! ```js
//! import init, { pipeline, supportedTasks } from './pkg/hubside.js';
//! await init();
//! const clf = await pipeline('sentiment-analysis', 'org/name', { endpoint, revision, progress_callback, cache, dtype, max_memory });
//! await modelInfo('org/name', { endpoint, revision }); // { files, download_bytes, parameters, memory: { fp32, fp16, q8, q4 } }
//! await clf('text');                  // [{ label, score }]
//! await clf(['a', 'b'], { top_k: 2 }); // [[{ label, score }, ...], [...]]
//! clf.dispose();
//!
//! const tr = await pipeline('translation', 'Helsinki-NLP/opus-mt-en-de');
//! await tr('Hello', { max_new_tokens, num_beams, length_penalty, early_stopping, on_token: (textSoFar) => {} });
//! // [{ translation_text }]
//!
//! const asr = await pipeline('automatic-speech-recognition', 'openai/whisper-tiny.en');
//! asr.multilingual; // false
//! await asr(float32Array, { sampling_rate: 44100, channels: 1, return_timestamps: true, language, task, on_partial });
//! // return_timestamps: 'word' gives one chunk per word: { text: ' word', timestamp: [start, end] }
//! // { text, chunks: [{ timestamp: [start, end], text }], language }
//! subtitles(output, 'srt'); // or 'vtt', { max_line_width }: the subtitle file's text
//! const live = asr.live({ language, task });   // live transcription (wasm/live.rs)
//! live.push(float32Array, 48000);             // { committed, tentative, received, decoded }
//! live.finish();                              // { text, chunks, language }
//! ```
//!
//! Options are deserialized straight into the tasks' option structs; callbacks are taken out
//! first. An unknown option or a value of the wrong type is an `input` error naming the option.
//! Errors reject with a JS `Error` whose `message` says what went wrong and whose `kind` is a
//! stable code (`not_found`, `network`, `unsupported_model`, ...). Nothing here panics on bad input.

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Array, Function, Object, Promise, Reflect};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;

use crate::audio::Pcm;
use crate::error::Error;
use crate::hub::{Progress, Repo};
use crate::tasks::speech_recognition::{SpeechRecognizer, TranscribeOptions};
use crate::tasks::LoadOptions;
use crate::weights::WeightDType;
use crate::tasks::text_classification::{ClassifyOptions, TextClassifier};
use crate::tasks::translation::{TranslateOptions, Translator};
use crate::tasks::{field_names, Task, TASKS};
use crate::weights::fit;

mod live;

#[wasm_bindgen(start)]
fn start() {
    // A Rust panic would otherwise die silently as "unreachable executed".
    console_error_panic_hook::set_once();
}

/// A JS `Error` carrying our message and a machine-readable `kind`.
fn js_error(error: &Error) -> JsValue {
    let kind = match error {
        Error::NotFound { .. } => "not_found",
        Error::Http { .. } => "http",
        Error::Network { .. } => "network",
        Error::UnsupportedModel { .. } => "unsupported_model",
        Error::UnsupportedTask(_) => "unsupported_task",
        Error::Config(_) => "config",
        Error::Weights { .. } => "weights",
        Error::Tokenizer(_) => "tokenizer",
        Error::Input(_) => "input",
        Error::TooLarge { .. } => "too_large",
        Error::Compute(_) => "compute",
        Error::Io(_) => "io",
    };
    let js = js_sys::Error::new(&error.to_string());
    js.set_name("HubsideError");
    let _ = Reflect::set(&js, &"kind".into(), &kind.into());
    js.into()
}

fn input_error(message: impl Into<String>) -> JsValue {
    js_error(&Error::Input(message.into()))
}

/// An options object being taken apart: a shallow copy (entries set to `undefined` left out, as
/// if absent) from which callbacks and option structs are removed; anything left is unknown.
struct JsOptions(Object);

impl JsOptions {
    /// `undefined` and `null` are no options.
    fn new(options: &JsValue) -> Result<Self, JsValue> {
        let copy = Object::new();
        if options.is_undefined() || options.is_null() {
            return Ok(JsOptions(copy));
        }
        if !options.is_object() || Array::is_array(options) || options.is_function() {
            return Err(input_error("options must be an object"));
        }
        for entry in Object::entries(options.unchecked_ref()).iter() {
            let entry: Array = entry.unchecked_into();
            if !entry.get(1).is_undefined() {
                Reflect::set(&copy, &entry.get(0), &entry.get(1))?;
            }
        }
        Ok(JsOptions(copy))
    }

    fn take(&self, key: &str) -> Result<Option<JsValue>, JsValue> {
        let key = JsValue::from_str(key);
        if !Reflect::has(&self.0, &key)? {
            return Ok(None);
        }
        let value = Reflect::get(&self.0, &key)?;
        Reflect::delete_property(&self.0, &key)?;
        Ok(Some(value))
    }

    /// The callback under `key` (`null`: none).
    fn take_function(&self, key: &str) -> Result<Option<Function>, JsValue> {
        match self.take(key)? {
            Some(value) if !value.is_null() => value
                .dyn_into::<Function>()
                .map(Some)
                .map_err(|_| input_error(format!("option '{key}' must be a function"))),
            _ => Ok(None),
        }
    }

    /// The fields of `T`, to deserialize with `into_struct` once every option was taken.
    fn take_fields<T: DeserializeOwned>(&self) -> Result<Fields<T>, JsValue> {
        let fields = Object::new();
        for name in field_names::<T>() {
            if let Some(value) = self.take(name)? {
                Reflect::set(&fields, &(*name).into(), &value)?;
            }
        }
        Ok(Fields(fields, std::marker::PhantomData))
    }

    /// Fails on the first option nothing took; `accepted` lists the options for the message.
    fn finish(self, accepted: &[&str]) -> Result<(), JsValue> {
        match Object::keys(&self.0).iter().next() {
            Some(key) => Err(input_error(format!(
                "unknown option '{}'; options: {}",
                key.as_string().unwrap_or_default(),
                accepted.join(", ")
            ))),
            None => Ok(()),
        }
    }
}

/// The options of one struct, taken out of a `JsOptions`.
struct Fields<T>(Object, std::marker::PhantomData<T>);

impl<T: DeserializeOwned> Fields<T> {
    /// A wrong type or value is an input error naming the option.
    fn into_struct(self) -> Result<T, JsValue> {
        let deserializer = serde_wasm_bindgen::Deserializer::from(JsValue::from(self.0));
        serde_path_to_error::deserialize(deserializer)
            .map_err(|e| input_error(format!("option '{}': {}", e.path(), e.inner())))
    }
}

fn to_js<T: Serialize + ?Sized>(value: &T) -> Result<JsValue, JsValue> {
    value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| input_error(format!("cannot convert the result to JavaScript: {e}")))
}

/// Progress events as transformers.js sends them: `{ status, name, file, loaded, total, progress }`.
fn progress_forwarder(callback: Function) -> Box<dyn Fn(&Progress)> {
    Box::new(move |p: &Progress| {
        let event = Object::new();
        let set = |k: &str, v: JsValue| {
            let _ = Reflect::set(&event, &k.into(), &v);
        };
        set("status", p.status.as_str().into());
        set("name", p.name.into());
        set("file", p.file.into());
        set("loaded", (p.loaded as f64).into());
        if let Some(total) = p.total {
            set("total", (total as f64).into());
            if total > 0 {
                set("progress", (p.loaded as f64 * 100.0 / total as f64).into());
            }
        }
        // A throwing callback must not abort the download.
        let _ = callback.call1(&JsValue::NULL, &event);
    })
}

// Boxed: the variants differ a lot in size and a pipeline holds exactly one.
enum Loaded {
    TextClassification(Box<TextClassifier>),
    /// With the languages a `translation_xx_to_yy` task name asked for.
    Translation(Box<Translator>, TranslateOptions),
    SpeechRecognition(Box<SpeechRecognizer>),
}

impl Loaded {
    fn run(&self, input: &JsValue, options: &JsValue) -> Result<JsValue, JsValue> {
        match self {
            Loaded::TextClassification(classifier) => classify(classifier, input, options),
            Loaded::Translation(translator, defaults) => translate(translator, defaults, input, options),
            Loaded::SpeechRecognition(recognizer) => transcribe(recognizer, input, options),
        }
    }
}

/// Strings from a string or an array of strings, and whether it was an array.
fn texts_of(input: &JsValue) -> Result<(Vec<String>, bool), JsValue> {
    if Array::is_array(input) {
        let texts = Array::from(input)
            .iter()
            .map(|t| t.as_string().ok_or_else(|| input_error("every input must be a string")))
            .collect::<Result<_, _>>()?;
        Ok((texts, true))
    } else {
        let text = input.as_string().ok_or_else(|| input_error("input must be a string or an array of strings"))?;
        Ok((vec![text], false))
    }
}

fn translate(translator: &Translator, defaults: &TranslateOptions, input: &JsValue, options: &JsValue) -> Result<JsValue, JsValue> {
    let (texts, _) = texts_of(input)?;
    let options = JsOptions::new(options)?;
    let on_token = options.take_function("on_token")?;
    let fields = options.take_fields::<TranslateOptions>()?;
    options.finish(Task::Translation.info().options)?;
    let mut opts = fields.into_struct()?;
    opts.src_lang = opts.src_lang.or_else(|| defaults.src_lang.clone());
    opts.tgt_lang = opts.tgt_lang.or_else(|| defaults.tgt_lang.clone());
    #[derive(Serialize)]
    struct Output {
        translation_text: String,
    }
    let mut outputs = Vec::with_capacity(texts.len());
    for (index, text) in texts.iter().enumerate() {
        // The callback sees the text so far, and which input it belongs to.
        let mut stream = |so_far: &str| {
            if let Some(f) = &on_token {
                let _ = f.call2(&JsValue::NULL, &so_far.into(), &(index as f64).into());
            }
        };
        let sink: Option<&mut dyn FnMut(&str)> = on_token.as_ref().map(|_| &mut stream as &mut dyn FnMut(&str));
        let result = translator.translate(text, &opts, sink).map_err(|e| js_error(&e))?;
        outputs.push(Output { translation_text: result.translation_text });
    }
    to_js(&outputs)
}

/// How bare samples from JS are laid out (a file's header says this; a Float32Array does not).
#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct SampleLayout {
    sampling_rate: u32,
    /// Channels interleaved in a Float32Array.
    channels: usize,
}

impl Default for SampleLayout {
    fn default() -> Self {
        SampleLayout { sampling_rate: 16_000, channels: 1 }
    }
}

/// Interleaved samples from a Float32Array (with `channels`), or planar channels from an array of
/// Float32Arrays (as AudioBuffer.getChannelData gives them); and the channel count.
fn samples_of(input: &JsValue, channels: usize) -> Result<(Vec<f32>, usize), JsValue> {
    if let Some(array) = input.dyn_ref::<js_sys::Float32Array>() {
        return Ok((array.to_vec(), channels));
    }
    if Array::is_array(input) {
        let planes: Vec<Vec<f32>> = Array::from(input)
            .iter()
            .map(|p| {
                p.dyn_into::<js_sys::Float32Array>()
                    .map(|p| p.to_vec())
                    .map_err(|_| input_error("each channel must be a Float32Array"))
            })
            .collect::<Result<_, _>>()?;
        let frames = planes.first().map_or(0, Vec::len);
        if planes.iter().any(|p| p.len() != frames) {
            return Err(input_error("all channels must have the same length"));
        }
        let mut interleaved = Vec::with_capacity(frames * planes.len());
        for i in 0..frames {
            interleaved.extend(planes.iter().map(|p| p[i]));
        }
        return Ok((interleaved, planes.len().max(1)));
    }
    Err(input_error("audio must be a Float32Array (or an array of Float32Array channels)"))
}

fn transcribe(recognizer: &SpeechRecognizer, input: &JsValue, options: &JsValue) -> Result<JsValue, JsValue> {
    let options = JsOptions::new(options)?;
    let on_partial = options.take_function("on_partial")?;
    let layout = options.take_fields::<SampleLayout>()?;
    let fields = options.take_fields::<TranscribeOptions>()?;
    options.finish(Task::SpeechRecognition.info().options)?;
    let (layout, opts) = (layout.into_struct()?, fields.into_struct()?);
    let (samples, channels) = samples_of(input, layout.channels)?;
    let mut partial = |p: &crate::tasks::speech_recognition::Partial| {
        if let (Some(f), Ok(value)) = (&on_partial, to_js(p)) {
            let _ = f.call1(&JsValue::NULL, &value);
        }
    };
    let pcm = Pcm { samples: &samples, sample_rate: layout.sampling_rate, channels };
    let result = recognizer.transcribe(pcm, &opts, &mut partial).map_err(|e| js_error(&e))?;
    let output = Object::new();
    let _ = Reflect::set(&output, &"text".into(), &result.text.as_str().into());
    if opts.return_timestamps.any() {
        let _ = Reflect::set(&output, &"chunks".into(), &to_js(&result.chunks)?);
    }
    // null when nothing could be detected (e.g. digital silence).
    let language = result.language.as_deref().map_or(JsValue::NULL, JsValue::from_str);
    let _ = Reflect::set(&output, &"language".into(), &language);
    Ok(output.into())
}

fn classify(classifier: &TextClassifier, input: &JsValue, options: &JsValue) -> Result<JsValue, JsValue> {
    let (texts, batched) = texts_of(input)?;
    let options = JsOptions::new(options)?;
    let fields = options.take_fields::<ClassifyOptions>()?;
    options.finish(Task::TextClassification.info().options)?;
    let top_k = fields.into_struct()?.top_k;
    let results = classifier.classify(&texts).map_err(|e| js_error(&e))?;
    let ranked: Vec<_> = results.iter().map(|r| classifier.top_k(r, top_k)).collect();
    // Same nesting as transformers.js: flat when top_k is 1, one list per text otherwise.
    match (batched, top_k == Some(1)) {
        (_, true) => to_js(&ranked.into_iter().flatten().collect::<Vec<_>>()),
        (true, false) => to_js(&ranked),
        (false, false) => to_js(&ranked[0]),
    }
}

/// Load options besides `progress_callback` (or `progress`), as JS gives them.
#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct JsLoadOptions {
    endpoint: Option<String>,
    revision: Option<String>,
    /// Seconds a download may wait for an answer, and the window in which its body must keep
    /// arriving (hub::NetOptions); default 30.
    timeout: Option<f64>,
    /// Keep files in the browser's Cache API and load them from there next time.
    cache: Option<bool>,
    /// How weight matrices are stored: "fp32", "fp16", "q8" or "q4" (transformers.js's names).
    dtype: Option<String>,
    /// Speech recognition: a whisper.cpp ggml model file in the repo (`ggml-tiny.en-q5_1.bin`).
    file: Option<String>,
    /// Bytes the model may need (`Infinity`: no limit); default `DEFAULT_MAX_MEMORY`.
    max_memory: Option<f64>,
    /// Threads of the pool the threaded build starts with its first pipeline (crate::threads).
    #[serde(rename = "numThreads")]
    num_threads: Option<usize>,
}

/// How downloads treat the network with the `timeout` option (seconds, positive and finite).
fn net_options(timeout: Option<f64>) -> Result<crate::hub::NetOptions, JsValue> {
    let mut net = crate::hub::NetOptions::default();
    match timeout {
        None => {}
        Some(seconds) if seconds.is_finite() && seconds > 0.0 && seconds <= 86400.0 => {
            net.timeout = std::time::Duration::from_secs_f64(seconds);
        }
        Some(seconds) => return Err(input_error(format!("option 'timeout' must be a number of seconds in (0, 86400], not {seconds}"))),
    }
    Ok(net)
}

/// The memory budget `pipeline()` checks a model against unless `max_memory` says otherwise:
/// wasm32 memory ends at 4 GiB, and besides the weights it holds the activations, the tokenizer
/// and, while loading, each weight file's bytes; browsers also often refuse to grow it that far.
pub const DEFAULT_MAX_MEMORY: u64 = 2 << 30;

impl JsLoadOptions {
    /// The budget in bytes; a negative or NaN `max_memory` is an input error.
    fn budget(&self) -> Result<u64, JsValue> {
        match self.max_memory {
            None => Ok(DEFAULT_MAX_MEMORY),
            Some(bytes) if bytes.is_nan() || bytes < 0.0 => {
                Err(input_error(format!("option 'max_memory' must be a number of bytes, not {bytes}")))
            }
            // `as` saturates: Infinity is no limit.
            Some(bytes) => Ok(bytes as u64),
        }
    }
}

/// Load `model` (the task's default model when omitted) for `task` (a name or alias from
/// `supportedTasks()`, or `translation_xx_to_yy`) and return a function
/// `(input, options) => Promise<output>` with `task`, `model` and `dispose()` properties (and
/// `multilingual` for speech recognition). Options: `endpoint` (default https://huggingface.co),
/// `revision` (default main), `timeout` (seconds, default 30: a download that gets no answer, or
/// less than 1 KiB of its body, within it fails; failed downloads are retried and resumed),
/// `progress_callback` (or `progress`) receiving download events,
/// `cache` (default true: keep files in the browser's Cache API and load them from there next time),
/// `file` (speech recognition: a whisper.cpp `ggml-*.bin` in the repo, e.g. ggerganov/whisper.cpp).
/// `dtype` and `max_memory` (bytes, default 2 GiB): a model whose weights would need more than
/// `max_memory` as `dtype` is refused before its weights are downloaded (`kind` `too_large`).
/// `numThreads` (threaded build: the pool's size, default the cores the browser reports, at most
/// 8; the pool starts with the first pipeline, and the function's `threads` says how many compute).
#[wasm_bindgen]
pub async fn pipeline(task: String, model: Option<String>, options: JsValue) -> Result<Function, JsValue> {
    let name = Task::parse(&task).map_err(|e| js_error(&e))?;
    let model = model.unwrap_or_else(|| name.task.info().default_model.to_string());
    let options = JsOptions::new(&options)?;
    let progress_callback = options.take_function("progress_callback")?;
    let progress = progress_callback.or(options.take_function("progress")?);
    let fields = options.take_fields::<JsLoadOptions>()?;
    options.finish(&[field_names::<JsLoadOptions>(), &["progress_callback", "progress"]].concat())?;
    let load = fields.into_struct()?;
    let threads = crate::threads::ensure_pool(load.num_threads).await.map_err(|e| js_error(&e))?;
    let dtype = WeightDType::parse(load.dtype.as_deref().unwrap_or("fp32")).map_err(|e| js_error(&e))?;
    let budget = load.budget()?;
    // Holding: the look at the weights' headers begins their download, which the load finishes.
    let mut repo = Repo::remote(&model, load.endpoint.as_deref(), load.revision.as_deref())
        .map_err(|e| js_error(&e))?
        .with_net(net_options(load.timeout)?)
        .holding_downloads();
    if let Some(cache) = load.cache {
        repo = repo.with_cache(cache);
    }
    if let Some(callback) = progress {
        repo = repo.with_progress(progress_forwarder(callback));
    }
    // Refuse, before the weights are downloaded, a model that would not fit. No estimate (no
    // such model, offline, ...) is no refusal: the load then says what is wrong.
    if let Ok(info) = fit::model_info(&repo, load.file.as_deref()).await {
        fit::check_budget(&info, &model, dtype, budget).map_err(|e| js_error(&e))?;
    }
    if load.file.is_some() && name.task != Task::SpeechRecognition {
        return Err(input_error("option 'file' (a whisper.cpp model file) applies to automatic-speech-recognition only"));
    }
    let load_options = LoadOptions {
        dtype,
        file: load.file.clone(),
    };
    let loaded = match name.task {
        Task::TextClassification => Loaded::TextClassification(Box::new(
            TextClassifier::load_with(&repo, &load_options).await.map_err(|e| js_error(&e))?,
        )),
        Task::Translation => {
            let (src_lang, tgt_lang) = name.languages.unzip();
            let defaults = TranslateOptions { src_lang, tgt_lang, ..Default::default() };
            Loaded::Translation(Box::new(Translator::load_with(&repo, &load_options).await.map_err(|e| js_error(&e))?), defaults)
        }
        Task::SpeechRecognition => {
            Loaded::SpeechRecognition(Box::new(SpeechRecognizer::load_with(&repo, &load_options).await.map_err(|e| js_error(&e))?))
        }
    };
    let function = into_function(loaded, name.task, &model);
    let _ = Reflect::set(&function, &"threads".into(), &(threads as f64).into());
    Ok(function)
}

/// Wrap a loaded model as a callable with `dispose()`, `task`, `model` (and, for speech
/// recognition, `multilingual`) properties.
fn into_function(loaded: Loaded, task: Task, model: &str) -> Function {
    let multilingual = match &loaded {
        Loaded::SpeechRecognition(recognizer) => Some(recognizer.is_multilingual()),
        _ => None,
    };
    let slot = Rc::new(RefCell::new(Some(loaded)));
    let runner = slot.clone();
    let live_slot = slot.clone();
    let run = Closure::<dyn Fn(JsValue, JsValue) -> Promise>::new(move |input: JsValue, options: JsValue| {
        let result = match runner.borrow().as_ref() {
            Some(loaded) => loaded.run(&input, &options),
            None => Err(input_error("this pipeline was disposed")),
        };
        match result {
            Ok(value) => Promise::resolve(&value),
            Err(error) => Promise::reject(&error),
        }
    });
    let function: Function = run.into_js_value().unchecked_into();
    let dispose = Closure::<dyn Fn()>::new(move || {
        slot.borrow_mut().take();
    });
    let _ = Reflect::set(&function, &"dispose".into(), &dispose.into_js_value());
    let _ = Reflect::set(&function, &"task".into(), &task.name().into());
    let _ = Reflect::set(&function, &"model".into(), &model.into());
    if let Some(multilingual) = multilingual {
        let _ = Reflect::set(&function, &"multilingual".into(), &multilingual.into());
        let _ = Reflect::set(&function, &"live".into(), &live::live_method(live_slot).into());
    }
    function
}

/// `modelInfo()` options.
#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct InfoOptions {
    endpoint: Option<String>,
    revision: Option<String>,
    /// As `pipeline()`'s `timeout`.
    timeout: Option<f64>,
    /// Read a copy in the browser's cache instead of the network (nothing is added to it).
    cache: Option<bool>,
    /// The one weights file to look at, for repos of several single-file models (ggml).
    file: Option<String>,
}

/// What loading `model` would download and the memory it would need, found before downloading
/// (safetensors headers by HTTP Range requests; other formats by their size):
/// `{ files: [{ file, size }], download_bytes, parameters, memory: { fp32, fp16, q8, q4 }, exact,
/// note }`. Options: `endpoint`, `revision`, `timeout`, `cache` (default true), `file`.
#[wasm_bindgen(js_name = modelInfo)]
pub async fn model_info(model: String, options: JsValue) -> Result<JsValue, JsValue> {
    let options = JsOptions::new(&options)?;
    let fields = options.take_fields::<InfoOptions>()?;
    options.finish(field_names::<InfoOptions>())?;
    let opts = fields.into_struct()?;
    let mut repo = Repo::remote(&model, opts.endpoint.as_deref(), opts.revision.as_deref())
        .map_err(|e| js_error(&e))?
        .with_net(net_options(opts.timeout)?);
    if let Some(cache) = opts.cache {
        repo = repo.with_cache(cache);
    }
    let info = fit::model_info(&repo, opts.file.as_deref()).await.map_err(|e| js_error(&e))?;
    to_js(&info)
}

/// The memory budget in bytes `pipeline()` uses when `max_memory` is not given.
#[wasm_bindgen(js_name = defaultMaxMemory)]
pub fn default_max_memory() -> f64 {
    DEFAULT_MAX_MEMORY as f64
}

/// Bytes of linear memory the wasm instance holds (it only grows).
#[wasm_bindgen(js_name = wasmMemoryBytes)]
pub fn wasm_memory_bytes() -> f64 {
    wasm_bindgen::memory()
        .dyn_into::<js_sys::WebAssembly::Memory>()
        .map(|m| m.buffer().unchecked_into::<js_sys::ArrayBuffer>().byte_length() as f64)
        .unwrap_or(0.0)
}

/// What runs: `{ build: 'threads' | 'single', threads, simd, relaxed_simd }`; `threads` is how
/// many threads compute (null until the threaded build's pool starts); `relaxed_simd`: a build
/// with relaxed SIMD's 8-bit dot products (pkg/relaxed, pkg/threads-relaxed).
#[wasm_bindgen(js_name = runtimeInfo)]
pub fn runtime_info() -> Result<JsValue, JsValue> {
    #[derive(Serialize)]
    struct RuntimeInfo {
        build: &'static str,
        threads: Option<usize>,
        simd: bool,
        relaxed_simd: bool,
    }
    to_js(&RuntimeInfo {
        build: crate::threads::BUILD,
        threads: crate::threads::threads(),
        simd: cfg!(target_feature = "simd128"),
        relaxed_simd: cfg!(target_feature = "relaxed-simd"),
    })
}

/// rayon's pool on Web Workers (threaded build): `initThreadPool(n)` starts it by hand, before
/// any pipeline, instead of the first pipeline's `numThreads`.
#[cfg(all(feature = "threads", target_feature = "atomics"))]
pub use wasm_bindgen_rayon::init_thread_pool;

#[derive(Serialize)]
struct CachedModel {
    model: String,
    bytes: u64,
    files: Vec<CachedFile>,
}

#[derive(Serialize)]
struct CachedFile {
    url: String,
    bytes: u64,
    /// `original` (a file as the repo serves it) or `compact` (a model kept in fp16/q8/q4).
    kind: &'static str,
    /// For compact entries, their dtype.
    #[serde(skip_serializing_if = "Option::is_none")]
    dtype: Option<String>,
}

/// The models in the browser cache: `[{ model, bytes, files: [{ url, bytes, kind, dtype? }] }]`.
#[wasm_bindgen(js_name = cachedModels)]
pub async fn cached_models() -> Result<JsValue, JsValue> {
    let mut models: Vec<CachedModel> = Vec::new();
    for entry in crate::hub::browser_cache::entries().await {
        let dtype = crate::hub::compact_dtype_of(&entry.url);
        let kind = if dtype.is_some() { "compact" } else { "original" };
        let file = CachedFile { url: entry.url, bytes: entry.bytes, kind, dtype };
        match models.iter_mut().find(|m| m.model == entry.model) {
            Some(model) => {
                model.bytes += file.bytes;
                model.files.push(file);
            }
            None => models.push(CachedModel { model: entry.model, bytes: file.bytes, files: vec![file] }),
        }
    }
    models.sort_by(|a, b| a.model.cmp(&b.model));
    to_js(&models)
}

/// Delete one model's cached files (or every cached file when `model` is omitted); returns how
/// many files were deleted.
#[wasm_bindgen(js_name = clearCache)]
pub async fn clear_cache(model: Option<String>) -> usize {
    crate::hub::browser_cache::delete_where(|entry| model.as_deref().is_none_or(|m| m == entry.model)).await
}

/// One task as `supportedTasks()` describes it.
#[derive(Serialize)]
struct SupportedTask {
    task: &'static str,
    aliases: &'static [&'static str],
    model_types: Vec<&'static str>,
    default_model: &'static str,
    options: &'static [&'static str],
    suggested_models: Vec<crate::tasks::suggestions::SuggestionInfo>,
}

/// The task table: `[{ task, aliases, model_types, default_model, options, suggested_models }]`.
#[wasm_bindgen(js_name = supportedTasks)]
pub fn supported_tasks() -> Result<JsValue, JsValue> {
    let tasks: Vec<SupportedTask> = TASKS
        .iter()
        .map(|info| SupportedTask {
            task: info.name,
            aliases: info.aliases,
            model_types: info.model_types(),
            default_model: info.default_model,
            options: info.options,
            suggested_models: info.suggested.iter().map(|s| s.info()).collect(),
        })
        .collect();
    to_js(&tasks)
}

/// A transcription's chunks, as `subtitles()` reads them: transformers.js' shape, other fields
/// of the output ignored.
#[derive(Deserialize)]
struct TimedOutput {
    chunks: Option<Vec<crate::tasks::speech_recognition::Chunk>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct SubtitleOptions {
    max_line_width: Option<usize>,
}

/// A speech pipeline's output (with `return_timestamps`) as a subtitle file: `format` `'srt'` or
/// `'vtt'`; option `max_line_width` gathers chunks (words) into cues of at most that many
/// characters. Returns the file's text; an output without chunks, a bad time or an unknown format is an `input` error.
#[wasm_bindgen]
pub fn subtitles(output: JsValue, format: &str, options: JsValue) -> Result<String, JsValue> {
    use crate::tasks::subtitles::{self, SubtitleFormat};
    let format = SubtitleFormat::parse(format).map_err(|e| js_error(&e))?;
    let output: TimedOutput = serde_wasm_bindgen::from_value(output)
        .map_err(|e| input_error(format!("subtitles() takes a transcription's output {{ text, chunks: [{{ timestamp: [start, end], text }}] }}: {e}")))?;
    let options: SubtitleOptions = if options.is_undefined() || options.is_null() {
        SubtitleOptions::default()
    } else {
        serde_wasm_bindgen::from_value(options).map_err(|e| input_error(format!("subtitles() options: {e}")))?
    };
    subtitles::write(&output.chunks.unwrap_or_default(), format, options.max_line_width).map_err(|e| js_error(&e))
}

/// The Hub endpoint models come from unless `endpoint` says otherwise.
#[wasm_bindgen(js_name = defaultEndpoint)]
pub fn default_endpoint() -> String {
    crate::hub::DEFAULT_ENDPOINT.to_string()
}

/// Benchmark (wasm builds with `--features bench`): DistilBERT-base sized random model, loaded
/// from memory and timed; see BENCHMARKS.md. `tokenizer_json` is a BERT uncased tokenizer.json.
#[cfg(feature = "bench")]
#[wasm_bindgen(js_name = benchSentiment)]
pub async fn bench_sentiment(tokenizer_json: Vec<u8>, runs: usize) -> Result<JsValue, JsValue> {
    let result = crate::bench::sentiment(tokenizer_json, runs).await.map_err(|e| js_error(&e))?;
    let value = to_js(&result)?;
    let _ = Reflect::set(&value, &"wasm_memory_bytes".into(), &wasm_memory_bytes().into());
    Ok(value)
}

/// Benchmark (`--features bench`): the matrix-product kernels against candle's (see
/// `bench::kernels`), in this build's threads.
#[cfg(feature = "bench")]
#[wasm_bindgen(js_name = benchKernels)]
pub fn bench_kernels(runs: usize) -> Result<JsValue, JsValue> {
    to_js(&crate::bench::kernels(runs).map_err(|e| js_error(&e))?)
}

/// Benchmark (`--features bench`): greedy decoding of an opus-mt-en-de sized random Marian.
#[cfg(feature = "bench")]
#[wasm_bindgen(js_name = benchTranslation)]
pub fn bench_translation(input_tokens: usize, new_tokens: usize, runs: usize) -> Result<JsValue, JsValue> {
    to_js(&crate::bench::translation(input_tokens, new_tokens, runs).map_err(|e| js_error(&e))?)
}

/// Benchmark (`--features bench`): Whisper load time and real-time factor on mono 16 kHz audio.
#[cfg(feature = "bench")]
#[wasm_bindgen(js_name = benchTranscription)]
pub async fn bench_transcription(model: String, endpoint: String, samples: Vec<f32>, sample_rate: u32, runs: usize) -> Result<JsValue, JsValue> {
    let repo = Repo::remote(&model, Some(&endpoint), None).map_err(|e| js_error(&e))?.with_cache(false);
    let result = crate::bench::transcription(&repo, &samples, sample_rate, runs).await.map_err(|e| js_error(&e))?;
    let value = to_js(&result)?;
    let _ = Reflect::set(&value, &"wasm_memory_bytes".into(), &wasm_memory_bytes().into());
    Ok(value)
}
