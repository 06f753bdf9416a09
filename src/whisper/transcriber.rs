//! Automatic speech recognition with Whisper: PCM at any rate/channel count → 16 kHz mono →
//! log-mel → encoder → greedy decoder with key/value caches.
//!
//! Decoding follows openai/whisper: `suppress_tokens` masked at every step and
//! `begin_suppress_tokens` at the first; with timestamps, its timestamp rules (pairs, monotonic,
//! first timestamp ≤ 1 s, timestamps win when their total probability beats any text token).
//! Audio up to 30 s without timestamps is one window prompted with `<|notimestamps|>` (what
//! transformers' `generate` does). Longer audio, or any audio with timestamps, runs openai's
//! `transcribe` loop: 30 s windows over the spectrogram of the whole input, each decoded with
//! timestamps; the window then moves to the end of the last complete segment (or by the full
//! window when the last segment ends the window), so words cut by a window edge are decoded again
//! in the next one, once. openai's long-form rules apply there (`fallback`, `prompt`): each window
//! is prompted with the text kept so far (`condition_on_previous_text`, after an `initial_prompt`),
//! decoded again at rising temperatures when its text is too repetitive or improbable, and skipped
//! when judged silent (no-speech probability > 0.6 and average log-probability not above −1).
//! As in openai's loop, a window shorter than 30 s is its mel frames padded with zeros. With word
//! timestamps (`return_timestamps: "word"`), `timing` times each window's words and, as openai
//! does, the next window starts at the last word's end (unless the window ended on a lone
//! timestamp).
//!
//! Special tokens come from the tokenizer, suppress lists from the repo's config files (CTranslate2
//! `config.json`: `suppress_ids`, `suppress_ids_begin`; transformers: `generation_config.json` or
//! `config.json`: `suppress_tokens`, `begin_suppress_tokens`). A whisper.cpp ggml file has neither:
//! its special tokens follow from n_vocab and its suppress lists are openai's defaults, computed
//! from its vocabulary (`vocabulary::GgmlVocab`).
//!
//! `transcribe` follows openai/whisper's [`transcribe()`](https://github.com/openai/whisper/blob/fdf63e51dc3089e10d72fd25ac04ffe22f86543e/whisper/transcribe.py), `decode_window`
//! its [`DecodingTask.run`](https://github.com/openai/whisper/blob/fdf63e51dc3089e10d72fd25ac04ffe22f86543e/whisper/decoding.py) (greedy, temperature 0) and `detect_language` its
//! [`detect_language`](https://github.com/openai/whisper/blob/fdf63e51dc3089e10d72fd25ac04ffe22f86543e/whisper/decoding.py).

use candle_core::Tensor;
use serde::Serialize;

use crate::audio::{self, LogMel, MelExtractor, Pcm, HOP_LENGTH, N_FRAMES, SAMPLE_RATE};
use crate::error::{Error, Result};
use crate::generation::{self, math, CachedDecoder, GenerationConfig, Hooks, Sampling, StepLogits, TimestampRules};
pub use super::fallback::Temperature;
use super::fallback::{self, Attempt, Fallback, WindowTrace};
use super::prompt::PreviousText;
use super::alignment::{self, Heads};
use super::segmenter::{self, Segment};
use super::timing::{self, Aligner, SegmentWords};
pub use super::timing::ReturnTimestamps;
use super::vocabulary::{GgmlVocab, Vocabulary};
use super::{language_code, SpecialTokens, Whisper};
use crate::hub::Repo;
use crate::models::attention::{Decoder, DecoderState};
use crate::tasks::LoadOptions;
use crate::tokenizer;
use crate::weights;

/// Transcribe in the spoken language, or translate the speech to English.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SpeechTask {
    #[default]
    Transcribe,
    Translate,
}

impl SpeechTask {
    pub fn parse(name: &str) -> Result<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "transcribe" => Ok(SpeechTask::Transcribe),
            "translate" => Ok(SpeechTask::Translate),
            other => Err(Error::Input(format!("unknown task '{other}': expected transcribe or translate"))),
        }
    }
}

/// Per-call options (transformers' names).
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TranscribeOptions {
    /// Spoken language as a code ("de") or an English name ("german"); `None` = detect
    /// (multilingual models) or English (English-only models).
    #[serde(default)]
    pub language: Option<String>,
    #[serde(default)]
    pub task: SpeechTask,
    /// `true`: timed segments; `"word"`: timed words (`timing`), each `[start, end]` in seconds.
    #[serde(default)]
    pub return_timestamps: ReturnTimestamps,
    /// openai's long-form options (`whisper::fallback`, `whisper::prompt`); `None` = openai's
    /// default. Prompt each window with the text kept so far (default true).
    #[serde(default)]
    pub condition_on_previous_text: Option<bool>,
    /// Text that prompts the first window (names, spelling, style); not part of the transcript.
    #[serde(default)]
    pub initial_prompt: Option<String>,
    /// Temperature, or the temperatures tried in turn when a window fails the thresholds
    /// (default 0, 0.2, … 1.0). Audio of up to 30 s without timestamps is decoded at the first
    /// one only unless this is given.
    #[serde(default)]
    pub temperature: Option<Temperature>,
    /// Decode again when the text's zlib compression ratio is above this (default 2.4).
    #[serde(default)]
    pub compression_ratio_threshold: Option<f64>,
    /// Decode again when the average log-probability is below this (default −1.0).
    #[serde(default)]
    pub logprob_threshold: Option<f64>,
    /// A window is silence when its no-speech probability is above this (default 0.6) and its
    /// average log-probability is not above `logprob_threshold`.
    #[serde(default)]
    pub no_speech_threshold: Option<f64>,
    /// Seed of the sampling at temperatures above 0 (default 0): same seed, same transcript.
    #[serde(default)]
    pub seed: Option<u64>,
}

/// One timed segment (or word), as transformers.js shapes it: `{ timestamp: [start, end], text }`
/// (also read back from JS by `subtitles()`).
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Chunk {
    pub timestamp: [f64; 2],
    pub text: String,
}

/// The result: transformers.js' `{ text, chunks, language }` plus the generated token ids.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Transcription {
    pub text: String,
    /// Timed segments, or words with `return_timestamps: "word"`; empty unless timestamps were
    /// asked for.
    pub chunks: Vec<Chunk>,
    /// Language code used for decoding: given, detected, or "en" for English-only models; `None`
    /// only when a multilingual model was given no language and the input is all digital silence.
    pub language: Option<String>,
    /// Whether the language was detected from the audio rather than given.
    pub language_detected: bool,
    /// Generated token ids of every kept window (prompts and end-of-text excluded; timestamp
    /// tokens included when windows were decoded with timestamps).
    pub tokens: Vec<u32>,
    /// Duration of the input in seconds.
    pub duration: f64,
    /// Every window the model decoded: its prompt and decodes (temperature fallback), in order.
    #[serde(skip)]
    pub windows: Vec<WindowTrace>,
}

/// Reported after each 30 s window: how far decoding got and the transcript so far.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Partial {
    /// 0-based index of the window just decoded.
    pub window: usize,
    /// Seconds of audio transcribed so far, and in total.
    pub processed: f64,
    pub duration: f64,
    /// processed / duration, in [0, 1].
    pub progress: f64,
    pub text: String,
    pub chunks: Vec<Chunk>,
    /// Language code used for decoding (`None`: not detected yet, only silence so far).
    pub language: Option<String>,
}

/// Layout a repo ships its Whisper weights in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Layout {
    /// Systran/faster-whisper-*: model.bin + CTranslate2 config.json + tokenizer.json.
    CTranslate2,
    /// openai/whisper-*: config.json + model.safetensors (or pytorch_model.bin) + tokenizer.json.
    Transformers,
    /// ggerganov/whisper.cpp: one ggml-*.bin file holding weights, mel filters and vocabulary.
    Ggml,
}

use segmenter::TIME_PRECISION;

/// The `model_type` this task runs (CTranslate2 converts, which name none, are Whisper too).
pub const MODEL_TYPES: &[&str] = &["whisper"];
/// Most new tokens per window (openai: n_text_ctx / 2).
const MAX_NEW_TOKENS_FRACTION: usize = 2;
/// A live decode's token budget per second of audio, plus [`LIVE_TOKENS_BASE`]: fast speech is
/// about 4 words (≈ 6 tokens with timestamps) a second, scripts without spaces a few more, so a
/// decode that runs past this repeats itself — and a repetition loop in a short buffer would
/// otherwise cost the whole window's budget while the speaker waits for the text.
const LIVE_TOKENS_PER_SECOND: f64 = 20.0;
const LIVE_TOKENS_BASE: usize = 16;
/// openai's `max_initial_timestamp`.
const MAX_INITIAL_TIMESTAMP: f64 = 1.0;
/// Windows whose samples all stay below this (−80 dBFS) are silence.
const SILENCE_PEAK: f32 = 1e-4;

pub struct SpeechRecognizer {
    model: Whisper,
    vocabulary: Vocabulary,
    specials: SpecialTokens,
    suppress: Vec<u32>,
    suppress_begin: Vec<u32>,
    mel: MelExtractor,
    layout: Layout,
    /// Cross-attention heads read for word timestamps (`alignment`).
    alignment_heads: Heads,
}

fn id_list(value: Option<&serde_json::Value>) -> Option<Vec<u32>> {
    value?.as_array()?.iter().map(|v| v.as_u64().map(|v| v as u32)).collect()
}

impl SpeechRecognizer {
    /// Load tokenizer, suppress lists and weights from `repo`, in CTranslate2 layout (when its
    /// config.json is CTranslate2's or names no model_type and model.bin exists) or transformers
    /// layout (config.json with `"model_type": "whisper"`).
    pub async fn load(repo: &Repo) -> Result<Self> {
        Self::load_with(repo, &LoadOptions::default()).await
    }

    /// `load` with weights stored as `options` ask, or from `options.file` (a `.bin` starting with
    /// the ggml magic, e.g. ggerganov/whisper.cpp `ggml-tiny.en-q5_1.bin`), one whisper.cpp model file.
    pub async fn load_with(repo: &Repo, options: &LoadOptions) -> Result<Self> {
        if let Some(file) = &options.file {
            return Self::load_ggml(repo, file).await;
        }
        let config: serde_json::Value = repo.get_json("config.json").await?;
        let model_type = config.get("model_type").and_then(|v| v.as_str());
        if let Some(other) = model_type.filter(|t| !MODEL_TYPES.contains(t)) {
            return Err(crate::tasks::unsupported_model(crate::tasks::Task::SpeechRecognition, other));
        }
        crate::models::limits::validate_config(&config, "config.json")?;
        let (tokenizer, _) = tokenizer::load(repo).await?;
        let specials = SpecialTokens::from_tokenizer(&tokenizer)?;
        let vocabulary = Vocabulary::Tokenizer(Box::new(tokenizer));
        let (model, layout, suppress, suppress_begin, heads) = if model_type.is_none() {
            let open = || -> weights::compact::OpenSource {
                Box::pin(async {
                    // A blob: in the browser the file is parsed straight from JS memory.
                    let Some(bytes) = repo.get_blob_optional("model.bin").await? else {
                        return Err(Error::Config(format!(
                            "{} has no model_type and the repo has no CTranslate2 model.bin",
                            repo.url("config.json")
                        )));
                    };
                    Ok(Box::new(weights::ctranslate2::Ct2Source::open(bytes, "model.bin")?) as Box<dyn weights::TensorSource>)
                })
            };
            let model = weights::compact::load(repo, options.dtype, &["model.bin"], open, Whisper::from_ctranslate2).await?;
            let suppress = id_list(config.get("suppress_ids"));
            let begin = id_list(config.get("suppress_ids_begin"));
            let heads = alignment::from_json(config.get("alignment_heads"), "config.json", model.config())?;
            (model, Layout::CTranslate2, suppress, begin, heads)
        } else {
            let generation: Option<serde_json::Value> = repo.get_json_optional("generation_config.json").await?;
            let model = weights::compact::load(
                repo,
                options.dtype,
                weights::WEIGHT_FILES,
                || Box::pin(weights::open(repo)),
                |w| Whisper::from_transformers(&config, w),
            )
            .await?;
            let pick = |key: &str| {
                id_list(generation.as_ref().and_then(|g| g.get(key))).or_else(|| id_list(config.get(key)))
            };
            let heads = match alignment::from_json(generation.as_ref().and_then(|g| g.get("alignment_heads")), "generation_config.json", model.config())? {
                Some(heads) => Some(heads),
                None => alignment::from_json(config.get("alignment_heads"), "config.json", model.config())?,
            };
            (model, Layout::Transformers, pick("suppress_tokens"), pick("begin_suppress_tokens"), heads)
        };
        Self::assemble(model, vocabulary, specials, suppress, suppress_begin, layout, heads)
    }

    /// A whisper.cpp model: weights, vocabulary and hyper-parameters from the one file; the
    /// special tokens follow from n_vocab, the suppress lists are openai's defaults.
    async fn load_ggml(repo: &Repo, file: &str) -> Result<Self> {
        let not_ggml = || Error::weights(file, "the 'file' option takes a whisper.cpp ggml model (a .bin starting with 'ggml')");
        if !file.ends_with(".bin") {
            return Err(not_ggml());
        }
        let bytes = repo.get_blob(file).await?;
        if !weights::ggml::has_magic(&bytes) {
            return Err(not_ggml());
        }
        let parsed = weights::ggml::parse(&bytes, file)?;
        drop(bytes);
        let h = &parsed.hparams;
        let heads = serde_json::json!({ "encoder_attention_heads": h.n_audio_head, "decoder_attention_heads": h.n_text_head });
        // The blocks are used as the file stores them (f16, q5_1, …): no dtype conversion.
        let source = weights::ggml::Source::new(parsed.tensors, file);
        let model = Whisper::from_transformers(&heads, &weights::Weights::new(Box::new(source), weights::WeightDType::Fp32))?;
        let vocab = GgmlVocab::new(parsed.vocab, h.n_vocab);
        let specials = vocab.special_tokens()?;
        let (suppress, suppress_begin) = (vocab.non_speech_tokens(), vocab.begin_suppress_tokens(specials.eot));
        Self::assemble(model, Vocabulary::Ggml(vocab), specials, Some(suppress), Some(suppress_begin), Layout::Ggml, None)
    }

    /// What every layout shares: the special tokens must fit the model; control tokens are
    /// suppressed; `None` lists (and alignment heads) take openai's defaults.
    #[allow(clippy::too_many_arguments)]
    fn assemble(
        model: Whisper,
        vocabulary: Vocabulary,
        specials: SpecialTokens,
        suppress: Option<Vec<u32>>,
        suppress_begin: Option<Vec<u32>>,
        layout: Layout,
        alignment_heads: Option<Heads>,
    ) -> Result<Self> {
        let vocab = model.config().n_vocab as u32;
        let highest = [specials.eot, specials.sot, specials.translate, specials.transcribe, specials.no_timestamps]
            .into_iter()
            .chain(specials.languages.iter().map(|(_, id)| *id))
            .max()
            .unwrap_or(0);
        if highest >= vocab {
            return Err(Error::Tokenizer(format!(
                "tokenizer special token id {highest} does not fit the model's {vocab} tokens: tokenizer and weights do not match"
            )));
        }
        // Control tokens are never generated (openai adds them to suppress_tokens).
        let mut suppress = suppress.unwrap_or_default();
        suppress.extend([specials.sot, specials.translate, specials.transcribe]);
        suppress.extend([specials.sot_lm, specials.sot_prev, specials.no_speech].into_iter().flatten());
        suppress.retain(|&id| id < vocab);
        suppress.sort_unstable();
        suppress.dedup();
        let mut suppress_begin = suppress_begin.unwrap_or_else(|| vec![specials.eot]);
        suppress_begin.retain(|&id| id < vocab);
        let mel = MelExtractor::new(model.config().n_mels);
        let alignment_heads = alignment_heads.unwrap_or_else(|| alignment::defaults(model.config()));
        Ok(SpeechRecognizer { model, vocabulary, specials, suppress, suppress_begin, mel, layout, alignment_heads })
    }

    pub fn model(&self) -> &Whisper {
        &self.model
    }

    pub fn layout(&self) -> Layout {
        self.layout
    }

    pub fn is_multilingual(&self) -> bool {
        self.model.config().is_multilingual()
    }

    pub fn vocabulary(&self) -> &Vocabulary {
        &self.vocabulary
    }

    pub fn special_tokens(&self) -> &SpecialTokens {
        &self.specials
    }

    /// The (decoder layer, head)s word timestamps read.
    pub fn alignment_heads(&self) -> &[(usize, usize)] {
        &self.alignment_heads
    }

    /// WhisperFeatureExtractor's features of up to 30 s of 16 kHz mono audio: (n_mels, 3000).
    pub fn features(&self, samples_16k: &[f32]) -> LogMel {
        audio::whisper_features(samples_16k, self.mel.n_mels())
    }

    /// Text of the text tokens among `ids` (special and timestamp tokens dropped).
    pub fn decode_text(&self, ids: &[u32]) -> Result<String> {
        let text: Vec<u32> = ids.iter().copied().filter(|&id| id < self.specials.eot).collect();
        self.vocabulary.decode(&text)
    }

    /// The decoder prompt for `language` and `task`, with or without `<|notimestamps|>`.
    pub fn prompt(&self, language: &str, task: SpeechTask, timestamps: bool) -> Result<Vec<u32>> {
        let s = &self.specials;
        let mut prompt = vec![s.sot];
        if self.is_multilingual() {
            let lang = s
                .language_id(language)
                .ok_or_else(|| Error::Input(format!("the tokenizer has no language '{language}'")))?;
            prompt.push(lang);
            prompt.push(match task {
                SpeechTask::Transcribe => s.transcribe,
                SpeechTask::Translate => s.translate,
            });
        }
        if !timestamps {
            prompt.push(s.no_timestamps);
        }
        Ok(prompt)
    }

    /// Check the options against the model: the language code to use (`None`: detect).
    pub(crate) fn resolve_language(&self, options: &TranscribeOptions) -> Result<Option<String>> {
        let requested = match options.language.as_deref().map(str::trim).filter(|l| !l.is_empty()) {
            None => None,
            Some(l) => Some(language_code(l).ok_or_else(|| Error::Input(format!("unknown language '{l}'")))?),
        };
        if !self.is_multilingual() {
            if options.task == SpeechTask::Translate {
                return Err(Error::Input(
                    "this model is English-only: it cannot translate; use a multilingual Whisper model".into(),
                ));
            }
            if let Some(l) = requested.as_deref().filter(|l| *l != "en") {
                return Err(Error::Input(format!(
                    "this model is English-only: it cannot transcribe language '{l}'; use a multilingual Whisper model"
                )));
            }
            return Ok(Some("en".into()));
        }
        if let Some(l) = &requested {
            if self.specials.language_id(l).is_none() {
                return Err(Error::Input(format!("this model does not support language '{l}'")));
            }
        }
        Ok(requested)
    }

    /// One window's encoder output and a decoder state over it (its cross-attention keys and
    /// values), computed on rayon's pool (`kernels::on_pool`).
    fn encode_and_start(&self, window_mel: &[f32]) -> Result<(Tensor, DecoderState)> {
        let model = &self.model;
        crate::models::kernels::on_pool(|| {
            let features = model.encode(window_mel)?;
            let state = model.start(&features, 1)?;
            Ok((features, state))
        })
    }

    /// The most likely spoken language of an encoded window (multilingual models).
    pub fn detect_language(&self, state: &mut DecoderState) -> Result<(String, Vec<(String, f32)>)> {
        state.reset();
        let logits = self.model.decode(state, &[self.specials.sot])?.squeeze(0)?;
        let logits = logits.get(0)?.to_vec1::<f32>()?;
        state.reset();
        let langs = &self.specials.languages;
        let mut language_probs: Vec<f32> = langs.iter().map(|(_, id)| logits[*id as usize]).collect();
        math::softmax(&mut language_probs);
        let mut probs: Vec<(String, f32)> = langs.iter().map(|(code, _)| code.clone()).zip(language_probs).collect();
        probs.sort_by(|a, b| b.1.total_cmp(&a.1));
        let best = probs.first().map(|(c, _)| c.clone()).ok_or_else(|| Error::Tokenizer("no language tokens".into()))?;
        Ok((best, probs))
    }

    /// Transcribe (or translate) interleaved PCM at any rate. `on_partial` is called after each
    /// 30 s window with the transcript so far.
    pub fn transcribe(
        &self,
        pcm: Pcm,
        options: &TranscribeOptions,
        on_partial: &mut dyn FnMut(&Partial),
    ) -> Result<Transcription> {
        let language = self.resolve_language(options)?;
        let samples = audio::to_mono_16k(pcm)?;
        self.transcribe_16k(&samples, language, options, on_partial)
    }

    fn transcribe_16k(
        &self,
        samples: &[f32],
        language: Option<String>,
        options: &TranscribeOptions,
        on_partial: &mut dyn FnMut(&Partial),
    ) -> Result<Transcription> {
        // Options first: a bad one fails before the spectrogram is computed.
        let mut fallback = Fallback::from_options(options)?;
        let mut previous = PreviousText::new(self.initial_prompt(options)?);
        let duration = samples.len() as f64 / SAMPLE_RATE as f64;
        let mel = self.mel.prepare(samples);
        let content_frames = mel.content_frames();
        let single = content_frames <= N_FRAMES && !options.return_timestamps.any();
        let words = options.return_timestamps == ReturnTimestamps::Words;
        let mut last_speech_timestamp = 0.0;
        let input_stride = N_FRAMES / self.model.config().n_audio_ctx;
        let frame_seconds = HOP_LENGTH as f64 / SAMPLE_RATE as f64;
        if single && options.temperature.is_none() {
            // One short window without timestamps is transformers' short-form generate: no fallback.
            fallback.temperatures.truncate(1);
        }
        let mut windows = Vec::new();

        let mut language = language;
        let mut detected = false;
        let mut tokens_out: Vec<u32> = Vec::new();
        let mut text_tokens: Vec<u32> = Vec::new();
        let mut chunks: Vec<Chunk> = Vec::new();
        let mut seek = 0usize;
        let mut window = 0usize;
        // Even an empty (all-padding) input gets one window, so the result is always defined.
        while seek < content_frames.max(1) {
            let time_offset = seek as f64 * frame_seconds;
            let segment_size = N_FRAMES.min(content_frames.saturating_sub(seek)).max(1);
            let previous_seek = seek;
            // Digital silence (peak below −80 dBFS) is skipped without running the model, which
            // would otherwise hallucinate (" you") on a constant spectrogram.
            let from = (seek * HOP_LENGTH).min(samples.len());
            let to = ((seek + segment_size) * HOP_LENGTH).min(samples.len());
            let peak = samples[from..to].iter().fold(0f32, |m, &x| m.max(x.abs()));
            if peak < SILENCE_PEAK {
                seek += segment_size;
            } else {
                // One short window is transformers' (feature extractor padding); the loop's windows
                // are openai's, zero past the audio.
                let window_mel = if single { mel.window(seek) } else { mel.segment(seek, segment_size) };
                let (features, mut state) = self.encode_and_start(&window_mel)?;
                let lang = match &language {
                    Some(l) => l.clone(),
                    None => {
                        let (best, _) = self.detect_language(&mut state)?;
                        detected = true;
                        language = Some(best.clone());
                        best
                    }
                };
                let mut prompt = previous.prefix(self.specials.sot_prev, self.model.config().n_text_ctx);
                let conditioned = prompt.get(1..).unwrap_or_default().to_vec();
                prompt.extend(self.prompt(&lang, options.task, !single)?);
                let (_, attempts) = fallback.decode(window, |sampling| {
                    let attempt = self.decode_window(&features, state.clone(), &prompt, !single, sampling, self.max_new_tokens())?;
                    Ok(((), attempt))
                })?;
                let kept = attempts.last().ok_or_else(|| Error::Input("no temperature to decode at".into()))?;
                let tokens = kept.tokens.clone();
                let silent = fallback.is_silence(kept);
                // openai resets after the window's segments join the text (below).
                let reset = !silent && fallback.resets_prompt(kept.temperature);
                windows.push(WindowTrace { start: time_offset, prompt: conditioned, attempts, skipped: silent });
                if silent {
                    seek += segment_size;
                } else if single {
                    text_tokens.extend(&tokens);
                    tokens_out.extend(&tokens);
                    previous.extend(&tokens);
                    seek += segment_size;
                } else {
                    let window_result = segmenter::split_window(
                        &tokens,
                        self.specials.timestamp_begin,
                        self.specials.eot,
                        segment_size,
                        input_stride,
                    );
                    let mut window_segments = Vec::new();
                    for Segment { tokens: range, start, end } in window_result.segments {
                        let piece = &tokens[range];
                        let text = self.decode_text(piece)?;
                        // openai clears instantaneous and blank segments: no text, no prompt tokens.
                        if start == end || text.trim().is_empty() {
                            continue;
                        }
                        tokens_out.extend(piece);
                        text_tokens.extend(piece.iter().filter(|&&t| t < self.specials.eot));
                        previous.extend(piece);
                        let clamp = |t: f64| (time_offset + t).clamp(0.0, duration);
                        if words {
                            let text_tokens = piece.iter().copied().filter(|&t| t < self.specials.eot).collect();
                            window_segments.push(SegmentWords { text_tokens, start: time_offset + start, end: time_offset + end, words: Vec::new() });
                        } else {
                            chunks.push(Chunk { timestamp: [round2(clamp(start)), round2(clamp(end))], text });
                        }
                    }
                    seek += window_result.advance;
                    if words {
                        let decode = |ids: &[u32]| self.decode_text(ids);
                        let aligner = Aligner {
                            model: &self.model,
                            heads: &self.alignment_heads,
                            prompt: &self.prompt(&lang, options.task, false)?,
                            eot: self.specials.eot,
                            language: &lang,
                            decode: &decode,
                        };
                        last_speech_timestamp =
                            aligner.add_word_timestamps(&features, &mut window_segments, segment_size, time_offset, last_speech_timestamp)?;
                        let timed = window_segments.iter().flat_map(|s| &s.words);
                        chunks.extend(timed.map(|w| Chunk { timestamp: [w.start, w.end], text: w.word.clone() }));
                        // openai: unless the window ended on a lone timestamp, the next one starts
                        // at the end of its last word.
                        if !segmenter::single_timestamp_ending(&tokens, self.specials.timestamp_begin) {
                            if let Some(end) = timing::get_end(&window_segments).filter(|&end| end > time_offset) {
                                seek = (end * SAMPLE_RATE as f64 / HOP_LENGTH as f64).round() as usize;
                            }
                        }
                    }
                }
                if reset {
                    previous.reset();
                }
            }
            if seek <= previous_seek {
                seek = previous_seek + segment_size;
            }
            let text = self.decode_text(&text_tokens)?;
            let processed =
                if seek >= content_frames { duration } else { (seek as f64 * frame_seconds).min(duration) };
            on_partial(&Partial {
                window,
                processed,
                duration,
                progress: if duration > 0.0 { processed / duration } else { 1.0 },
                text,
                chunks: if options.return_timestamps.any() { chunks.clone() } else { Vec::new() },
                language: language.clone(),
            });
            window += 1;
        }
        Ok(Transcription {
            text: self.decode_text(&text_tokens)?,
            chunks: if options.return_timestamps.any() { chunks } else { Vec::new() },
            language,
            language_detected: detected,
            tokens: tokens_out,
            duration,
            windows,
        })
    }

    /// Live transcription's decode (`super::live`): up to 30 s of 16 kHz audio as one window with
    /// timestamps, after the `previous` text tokens as openai's prompt (`<|startofprev|>`).
    /// Returns the generated tokens and their segments, both empty when the window is judged
    /// silent; `language` `None` is detected (and returned).
    pub(crate) fn decode_buffer(
        &self,
        samples: &[f32],
        language: Option<&str>,
        task: SpeechTask,
        previous: &[u32],
    ) -> Result<(String, Vec<u32>, Vec<Segment>)> {
        let mel = self.mel.prepare(samples);
        let content_frames = mel.content_frames().clamp(1, N_FRAMES);
        let (features, mut state) = self.encode_and_start(&mel.window(0))?;
        let language = match language {
            Some(l) => l.to_string(),
            None => self.detect_language(&mut state)?.0,
        };
        // A quarter of the context: openai keeps half, but its windows are then cut short at
        // n_text_ctx; live buffers are short, so less context loses nothing.
        let keep = self.model.config().n_text_ctx / 4;
        let mut prompt = super::prompt::startofprev_prefix(self.specials.sot_prev, previous, keep);
        prompt.extend(self.prompt(&language, task, true)?);
        // Greedy at temperature 0, judged silent by openai's default thresholds.
        let budget = live_token_budget(samples.len() as f64 / SAMPLE_RATE as f64, self.max_new_tokens());
        let result = self.decode_window(&features, state, &prompt, true, None, budget)?;
        if Fallback::from_options(&TranscribeOptions::default())?.is_silence(&result) {
            return Ok((language, Vec::new(), Vec::new()));
        }
        let input_stride = N_FRAMES / self.model.config().n_audio_ctx;
        let window = segmenter::split_window(&result.tokens, self.specials.timestamp_begin, self.specials.eot, content_frames, input_stride);
        Ok((language, result.tokens, window.segments))
    }

    /// openai's `initial_prompt` tokens: `" " + initial_prompt.strip()`, encoded without special
    /// tokens (text that spells one, e.g. `<|endoftext|>`, is refused, as tiktoken refuses it).
    fn initial_prompt(&self, options: &TranscribeOptions) -> Result<Vec<u32>> {
        let Some(text) = &options.initial_prompt else { return Ok(Vec::new()) };
        let tokens = self.vocabulary.encode(&format!(" {}", text.trim()))?;
        if tokens.iter().any(|&t| t >= self.specials.eot) {
            return Err(Error::Input(format!(
                "initial_prompt {text:?} spells a special token such as <|endoftext|>: give plain text"
            )));
        }
        Ok(tokens)
    }

    /// Most new tokens per window (openai: n_text_ctx / 2).
    fn max_new_tokens(&self) -> usize {
        self.model.config().n_text_ctx / MAX_NEW_TOKENS_FRACTION
    }

    /// Decoding of one encoded window after `prompt` (greedy, or `sampling` at a temperature), with
    /// openai's suppression and (with `timestamps`) timestamp rules; what `DecodingTask.run`
    /// reports of it.
    fn decode_window(
        &self,
        features: &Tensor,
        state: DecoderState,
        prompt: &[u32],
        timestamps: bool,
        sampling: Option<Sampling>,
        max_new_tokens: usize,
    ) -> Result<Attempt> {
        let s = &self.specials;
        let config = GenerationConfig {
            max_new_tokens,
            eos_token_ids: vec![s.eot],
            sum_logprobs: true,
            suppress_tokens: self.suppress.clone(),
            begin_suppress_tokens: self.suppress_begin.clone(),
            timestamp_rules: timestamps.then(|| TimestampRules {
                timestamp_begin: s.timestamp_begin,
                no_timestamps: s.no_timestamps,
                eot: s.eot,
                max_initial_timestamp_index: Some((MAX_INITIAL_TIMESTAMP / TIME_PRECISION).round() as u32),
            }),
            sampling,
            ..Default::default()
        };
        // openai reads the no-speech probability at <|startoftranscript|>, before any suppression.
        let sot_index = prompt.iter().position(|&t| t == s.sot).unwrap_or(0);
        let mut no_speech_prob = 0.0;
        let mut on_prompt = |logits: &StepLogits| {
            if let (Some(no_speech), Some(row)) = (s.no_speech, logits.row(0, sot_index)) {
                no_speech_prob = math::softmax_at(row, no_speech as usize);
            }
        };
        let hooks = Hooks { on_prompt: Some(&mut on_prompt), ..Default::default() };
        let max_positions = Some(self.model.config().n_text_ctx);
        let mut decoder = CachedDecoder::new(&self.model, features, max_positions).with_state(state);
        let generated = generation::generate(&mut decoder, prompt, &config, hooks)?;
        let mut tokens = generated.ids;
        tokens.drain(..prompt.len().min(tokens.len()));
        if tokens.last() == Some(&s.eot) {
            tokens.pop();
        }
        let avg_logprob = generated.sum_logprob.unwrap_or(0.0) / (tokens.len() + 1) as f64;
        let compression_ratio = fallback::compression_ratio(self.decode_text(&tokens)?.trim());
        let temperature = sampling.map_or(0.0, |s| s.temperature);
        Ok(Attempt { temperature, tokens, avg_logprob, compression_ratio, no_speech_prob })
    }
}

/// Most new tokens a live decode of `seconds` of audio may generate, at most `window_budget`.
fn live_token_budget(seconds: f64, window_budget: usize) -> usize {
    let budget = LIVE_TOKENS_BASE + (seconds.max(0.0) * LIVE_TOKENS_PER_SECOND).ceil() as usize;
    budget.min(window_budget)
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_decodes_get_a_budget_that_grows_with_the_audio() {
        assert_eq!(live_token_budget(0.0, 224), 16);
        assert_eq!(live_token_budget(5.0, 224), 116);
        assert_eq!(live_token_budget(30.0, 224), 224);
        assert_eq!(live_token_budget(f64::NAN, 224), 16);
    }

    #[test]
    fn task_names() {
        assert_eq!(SpeechTask::parse("Translate").unwrap(), SpeechTask::Translate);
        assert!(SpeechTask::parse("summarize").is_err());
    }
}
