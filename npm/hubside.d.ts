// Types of the `hubside` npm package: its entry (index.js, which loads one of the four wasm-bindgen
// builds of src/wasm.rs and exposes its API). They replace the declarations wasm-bindgen generates, which only know
// `pipeline(task: string, model: string | null | undefined, options: any): Promise<Function>`.
// Every option name below is one src/wasm.rs takes (its option structs and callbacks); anything
// else is rejected at run time with kind 'input', and here at compile time.
//
//   import init, { pipeline } from 'hubside';
//   await init();
//   const classifier = await pipeline('sentiment-analysis', 'distilbert/distilbert-base-uncased-finetuned-sst-2-english');
//   const [{ label, score }] = await classifier('I love this!');

// ---- loading the wasm module ----------------------------------------------------------------

/** Where to get the .wasm file: by default `hubside_bg.wasm` next to hubside.js. */
export type InitInput = RequestInfo | URL | Response | BufferSource | WebAssembly.Module;
export type SyncInitInput = BufferSource | WebAssembly.Module;

/** The instantiated module; its exports are internal to the bindings. */
export interface InitOutput {
  readonly memory: WebAssembly.Memory;
}

/**
 * The four wasm builds, fastest first: 'threads-relaxed' and 'threads' compute on a pool of Web
 * Workers (cross-origin isolated pages only: COOP `same-origin` + COEP `require-corp`),
 * 'threads-relaxed' and 'relaxed' use relaxed SIMD's 8-bit dot products (Chromium 114 and later),
 * 'single' runs everywhere on one thread.
 */
export type Build = 'threads-relaxed' | 'threads' | 'relaxed' | 'single';

/** The builds this page or worker can run, fastest first ('single' always last). */
export function availableBuilds(): Build[];

/**
 * Load the fastest build that starts (a build that fails is skipped with a console warning), or
 * only `build`; call (and await) once before anything else: later calls return the first one's
 * promise. `module_or_path` is handed to that build's instantiation; given alone (or as the bare
 * argument) it is taken for the single-thread build's `hubside_bg.wasm`.
 */
export default function init(
  options?: { build?: Build; module_or_path?: InitInput | Promise<InitInput> } | InitInput | Promise<InitInput>,
): Promise<InitOutput>;

/** Instantiate the single-thread build synchronously from bytes or a compiled module (e.g. in a worker). */
export function initSync(module: { module: SyncInitInput } | SyncInitInput): InitOutput;

/**
 * Start the threaded builds' pool of `threads` Web Workers by hand, before any pipeline (else the
 * first pipeline's `numThreads` starts it). The single-thread builds resolve at once.
 */
export function initThreadPool(threads: number): Promise<void>;

// ---- errors ---------------------------------------------------------------------------------

/** What went wrong, as a stable code. */
export type ErrorKind =
  | 'not_found' // a file the model needs is not in the repo (the message names its URL)
  | 'http' // the endpoint answered with another error status (gated, private, rate limit, ...)
  | 'network' // the endpoint could not be reached (offline, DNS, CORS)
  | 'unsupported_model' // the repo's model_type or architecture is not supported for the task
  | 'unsupported_task' // the task name is not one of supportedTasks()
  | 'config' // config.json is missing a field or is not valid
  | 'weights' // the weights file is damaged or lacks a tensor
  | 'tokenizer' // the tokenizer files could not be read
  | 'input' // the input or an option is not valid (an unknown option too)
  | 'too_large' // the model needs more memory than max_memory allows (refused before downloading weights)
  | 'compute' // the model failed while running
  | 'io'; // reading a file failed

/** Every promise of the package rejects with this: an Error with a `kind`. */
export interface HubsideError extends Error {
  readonly name: 'HubsideError';
  readonly kind: ErrorKind;
}

// ---- tasks ----------------------------------------------------------------------------------

/** The canonical task names; `pipeline()` also takes their aliases. */
export type TaskName = 'text-classification' | 'translation' | 'automatic-speech-recognition';

/** One entry of supportedTasks(). */
export interface TaskInfo {
  task: TaskName;
  /** Other names `pipeline()` accepts for the task, e.g. 'sentiment-analysis', 'asr'. */
  aliases: string[];
  /** The config.json `model_type`s the task can load. */
  model_types: string[];
  /** The Hub repo id the page and widgets use when none is given. */
  default_model: string;
  /** The per-call option names the task's pipeline accepts. */
  options: string[];
  /** The models offered first for the task (the default first); any other repo id works too. */
  suggested_models: SuggestedModel[];
}

/** A model supportedTasks() suggests for a task. */
export interface SuggestedModel {
  /** Hub repo id. */
  model: string;
  /** Its config.json `model_type`. */
  model_type: string;
  /** Parameters, rounded as the model card gives them. */
  parameters: number;
  /** What it does, in a few words. */
  about: string;
  /** Estimated bytes of its weights per dtype: the f32 original's download is about `fp32`, the
   * memory of the model loaded as `q8` about `q8`. modelInfo() gives exact figures. */
  bytes: Record<WeightDType, number>;
}

/** The tasks `pipeline()` knows, with their aliases, architectures, default models and options. */
export function supportedTasks(): TaskInfo[];

/** The Hub endpoint models load from unless `endpoint` says otherwise: https://huggingface.co. */
export function defaultEndpoint(): string;

// ---- loading a pipeline ---------------------------------------------------------------------

/** A download event, as transformers.js sends them. */
export interface ProgressInfo {
  status: 'initiate' | 'progress' | 'done';
  /** The model (repo id). */
  name: string;
  /** The file within the repo, e.g. 'model.safetensors'. */
  file: string;
  /** Bytes so far. */
  loaded: number;
  /** Bytes in all, when the server says. */
  total?: number;
  /** loaded / total in percent, when total is known. */
  progress?: number;
}

export interface PipelineOptions {
  /** Any server with the Hub's URL layout; default defaultEndpoint(). */
  endpoint?: string;
  /** Branch, tag or commit; default 'main'. */
  revision?: string;
  /** Seconds a download may wait for an answer, and the window in which its body must keep
   * arriving (at least 1 KiB); default 30. Failed downloads are retried and resumed. */
  timeout?: number;
  /** Called for every download event. */
  progress_callback?: (event: ProgressInfo) => void;
  /** Another name for progress_callback (used when progress_callback is not given). */
  progress?: (event: ProgressInfo) => void;
  /**
   * Keep files in the browser's Cache API and load them from there next time; default true. With a
   * compact dtype the model is also kept in that dtype, so the next visit neither downloads nor
   * quantises the original weights.
   */
  cache?: boolean;
  /**
   * How weight matrices (and embedding tables) are stored and multiplied: 'fp32' (default), 'fp16',
   * 'q8' (8-bit blocks, about 1/4 of fp32) or 'q4' (4-bit blocks, about 1/6). 'int8'/'uint8' mean 'q8'.
   */
  dtype?: 'fp32' | 'fp16' | 'q8' | 'q4' | 'int8' | 'uint8';
  /** automatic-speech-recognition: a whisper.cpp model file in the repo, e.g. 'ggml-tiny.en-q5_1.bin' in 'ggerganov/whisper.cpp'. */
  file?: string;
  /** Bytes the model may need (Infinity: no limit); default defaultMaxMemory() (2 GiB). A model
   * whose estimate (see modelInfo()) is larger is refused before its weights are downloaded,
   * with kind 'too_large' and a message naming the estimate, the dtype and the budget. */
  max_memory?: number;
  /** The threaded build's pool size (Web Workers), fixed by the first pipeline: later ones may
   * leave it out or repeat it. Default: the cores the browser reports, at most 8. The
   * single-thread build takes it and computes on one thread. */
  numThreads?: number;
}

/** What every pipeline has besides being callable. */
export interface PipelineBase<T extends TaskName> {
  /** Free the model's memory; calling the pipeline afterwards rejects. */
  dispose(): void;
  /** The repo id it was loaded from. */
  readonly model: string;
  /** The canonical task name. */
  readonly task: T;
  /** How many threads compute (1 in the single-thread build). */
  readonly threads: number;
}

// ---- text classification --------------------------------------------------------------------

export interface TextClassificationOptions {
  /** How many labels per text, best first; null (or 0) for all. Default 1. */
  top_k?: number | null;
}

export interface TextClassificationSingle {
  label: string;
  score: number;
}

/** The labels of one text (best first), or with the default top_k of 1 and several texts, the
 * best label of each text. */
export type TextClassificationOutput = TextClassificationSingle[];

export interface TextClassificationPipeline extends PipelineBase<'text-classification'> {
  (text: string, options?: TextClassificationOptions): Promise<TextClassificationOutput>;
  /** Several texts, one best label each. */
  (texts: string[], options?: { top_k?: 1 }): Promise<TextClassificationOutput>;
  /** Several texts with top_k other than 1: one list of labels per text. */
  (texts: string[], options: { top_k: number | null }): Promise<TextClassificationOutput[]>;
}

// ---- translation ----------------------------------------------------------------------------

export interface TranslationOptions {
  /** Most tokens to generate per text; default the model's max_length. */
  max_new_tokens?: number;
  /** Beam search with this many beams; default the model's (1: greedy). */
  num_beams?: number;
  /** Exponent of the length normalisation of beam scores; default the model's. */
  length_penalty?: number;
  /** Beam search stops when num_beams hypotheses are done (true), on a heuristic (false), or
   * only when no better one can appear ('never'). */
  early_stopping?: boolean | 'never';
  /** The languages. T5: as in the 'translate English to German: ' prefix ('en', 'de', ...);
   * M2M100: its codes ('en', 'de', ...); NLLB: its codes ('eng_Latn', 'deu_Latn', ...). M2M100
   * and NLLB need both (an unknown or missing code is an 'input' error listing the model's). */
  src_lang?: string;
  tgt_lang?: string;
  /** Streaming: the text generated so far for input number `index`, after every token. */
  on_token?: (textSoFar: string, index: number) => void;
}

export interface TranslationSingle {
  translation_text: string;
}

/** One entry per input text. */
export type TranslationOutput = TranslationSingle[];

export interface TranslationPipeline extends PipelineBase<'translation'> {
  (texts: string | string[], options?: TranslationOptions): Promise<TranslationOutput>;
}

// ---- speech recognition ---------------------------------------------------------------------

/** Mono or interleaved samples (see `channels`), or one Float32Array per channel as
 * AudioBuffer.getChannelData() gives them. Any rate, any channel count: mixed down and
 * resampled to 16 kHz in wasm. */
export type AudioInput = Float32Array | Float32Array[];

export interface AutomaticSpeechRecognitionOptions {
  /** Samples per second of the input; default 16000. */
  sampling_rate?: number;
  /** Channels interleaved in a single Float32Array; default 1. */
  channels?: number;
  /** Also return `chunks`: `true` timed segments, `'word'` timed words (openai/whisper's word
   * timestamps: cross-attention alignment, each word with its leading space and punctuation). */
  return_timestamps?: boolean | 'word';
  /** Spoken language as a code ('de') or an English name ('german'); detected when omitted or
   * null (multilingual models), English for English-only ones. */
  language?: string | null;
  /** 'translate' writes an English translation (multilingual models); default 'transcribe'. */
  task?: 'transcribe' | 'translate';
  /** Called after every 30 s window with the transcript so far. */
  on_partial?: (partial: TranscriptionPartial) => void;
  // openai/whisper's long-form rules (its transcribe() names and defaults):
  /** Prompt each 30 s window with the text so far; default true. */
  condition_on_previous_text?: boolean;
  /** Text that prompts the first window (names, spelling, style); not part of the transcript. */
  initial_prompt?: string;
  /** Temperature, or the temperatures tried in turn when a window's text is too repetitive or
   * improbable; default [0, 0.2, 0.4, 0.6, 0.8, 1] (each 0 to 10, at most 16). Audio up to 30 s
   * without timestamps uses only the first one unless this is given. */
  temperature?: number | number[];
  /** Decode again when the text's zlib compression ratio is above this; default 2.4. */
  compression_ratio_threshold?: number;
  /** Decode again when the average log-probability is below this (at most 0); default -1. */
  logprob_threshold?: number;
  /** A window is silence when its no-speech probability is above this (0 to 1) and its average
   * log-probability is not above logprob_threshold; default 0.6. */
  no_speech_threshold?: number;
  /** Seed of the sampling at temperatures above 0 (a non-negative integer); default 0: the same
   * seed gives the same transcript. */
  seed?: number;
}

export interface Chunk {
  /** Start and end in seconds (of the segment, or of the word with return_timestamps: 'word'). */
  timestamp: [number, number];
  text: string;
}

export interface TranscriptionOutput {
  text: string;
  /** With return_timestamps. */
  chunks?: Chunk[];
  /** The language decoded in; null when none could be detected (silence). */
  language: string | null;
}

export interface TranscriptionPartial {
  /** 0-based index of the window just decoded. */
  window: number;
  /** Seconds of audio transcribed so far, and in total. */
  processed: number;
  duration: number;
  /** processed / duration, from 0 to 1. */
  progress: number;
  text: string;
  chunks: Chunk[];
  language: string | null;
}

export interface AutomaticSpeechRecognitionPipeline extends PipelineBase<'automatic-speech-recognition'> {
  (audio: AudioInput, options: AutomaticSpeechRecognitionOptions & { return_timestamps: true | 'word' }): Promise<TranscriptionOutput & { chunks: Chunk[] }>;
  (audio: AudioInput, options?: AutomaticSpeechRecognitionOptions): Promise<TranscriptionOutput>;
  /** Whether the model knows other languages than English (so `language` and `task` apply). */
  readonly multilingual: boolean;
  /** A live transcription session: push audio as it is recorded, get text as it is spoken. */
  live(options?: LiveTranscriptionOptions): LiveTranscription;
}

export interface LiveTranscriptionOptions {
  /** As AutomaticSpeechRecognitionOptions' `language`: detected from the first phrase when omitted. */
  language?: string | null;
  task?: 'transcribe' | 'translate';
  /** Prompt each decode with the text committed before it (openai's option); default true. */
  condition_on_previous_text?: boolean;
}

/** Text so far: `committed` never changes (it only grows); `tentative` is the latest guess at
 * what follows, to show greyed. */
export interface LiveTranscriptionUpdate {
  committed: string;
  tentative: string;
  /** Seconds of audio pushed so far. */
  received: number;
  /** Whether this push decoded the audio (else the text is as before). */
  decoded: boolean;
}

export interface LiveTranscriptionResult {
  text: string;
  /** One chunk per stretch of speech between the session's cuts. */
  chunks: Chunk[];
  language: string | null;
}

/** Live transcription (LocalAgreement-2 over Whisper decodes, a voice activity detector skipping
 * silence and cutting at pauses). Decoding runs inside `push` (synchronously): call it from a
 * worker, with the audio gathered since the previous call. */
export interface LiveTranscription {
  /** Mono samples at `sampleRate` Hz (default 16000; the same for the whole session). */
  push(samples: Float32Array, sampleRate?: number): LiveTranscriptionUpdate;
  /** Decode what is left and end: all text committed. */
  finish(): LiveTranscriptionResult;
  /** Release the session's memory (the pipeline stays). */
  free(): void;
}

export interface SubtitleOptions {
  /** Gather consecutive chunks (words) into cues of at most this many characters; a pause of
   * more than 3 s starts a new cue. Default: one cue per chunk. */
  max_line_width?: number;
}

/** A transcription's output (with `return_timestamps`) as the text of a subtitle file: SubRip
 * ('srt') or WebVTT ('vtt'). Throws a HubsideError of kind 'input' when the output has no chunks. */
export function subtitles(output: { chunks?: Chunk[] }, format: 'srt' | 'vtt', options?: SubtitleOptions): string;

// ---- pipeline() -----------------------------------------------------------------------------

/** The pipeline each task name (or alias) loads. */
export interface Pipelines {
  'text-classification': TextClassificationPipeline;
  'sentiment-analysis': TextClassificationPipeline;
  translation: TranslationPipeline;
  /** transformers' T5 task names: the languages become the default src_lang and tgt_lang. */
  [name: `translation_${string}_to_${string}`]: TranslationPipeline;
  'automatic-speech-recognition': AutomaticSpeechRecognitionPipeline;
  asr: AutomaticSpeechRecognitionPipeline;
}

/** Download `model` (a Hub repo id; omitted or null: the task's `default_model` from
 * supportedTasks()) for `task` and load it; rejects with a HubsideError. */
export function pipeline<T extends keyof Pipelines>(task: T, model?: string | null, options?: PipelineOptions): Promise<Pipelines[T]>;

// ---- will it fit? ---------------------------------------------------------------------------

/** transformers.js' dtype names: f32, f16, ggml Q8_0 (34 bytes per 32 weights), ggml Q4_1 (20). */
export type WeightDType = 'fp32' | 'fp16' | 'q8' | 'q4';

export interface ModelInfoOptions {
  endpoint?: string;
  revision?: string;
  /** As PipelineOptions.timeout. */
  timeout?: number;
  /** Read a copy in the browser cache instead of the network (nothing is added to it); default true. */
  cache?: boolean;
  /** The one weights file to look at, for repos of several single-file models (ggml). */
  file?: string;
}

export interface ModelInfo {
  /** The weight files pipeline() would download; size null when the server did not say. */
  files: { file: string; size: number | null }[];
  /** Their total size in bytes; null if a size is unknown. */
  download_bytes: number | null;
  /** Weights in float tensors; null when unknown. */
  parameters: number | null;
  /** Bytes the model needs per dtype; null when unknown (a server that ignores Range). */
  memory: Record<WeightDType, number> | null;
  /** true: from the safetensors headers; false: estimated from file sizes (pytorch_model.bin,
   * CTranslate2 model.bin, ggml), or unknown. */
  exact: boolean;
  /** What was estimated or unknown, in words; null when everything is exact. */
  note: string | null;
}

/** What loading `model` would download and the memory it would need, found before downloading:
 * the safetensors headers are read with HTTP Range requests (a few KB per file). */
export function modelInfo(model: string, options?: ModelInfoOptions): Promise<ModelInfo>;

/** The memory budget pipeline() uses when max_memory is not given: 2 GiB (wasm32 memory ends at
 * 4 GiB and also holds activations, the tokenizer and each weight file while it loads). */
export function defaultMaxMemory(): number;

// ---- the browser cache ----------------------------------------------------------------------

export interface CachedModel {
  /** The repo id. */
  model: string;
  bytes: number;
  /** `original`: a file as the repo serves it; `compact`: the model kept in `dtype`. */
  files: { url: string; bytes: number; kind: 'original' | 'compact'; dtype?: 'fp16' | 'q8' | 'q4' }[];
}

/** The models whose files the browser cache holds. */
export function cachedModels(): Promise<CachedModel[]>;

/** Delete one model's cached files, or every cached file; resolves to how many were deleted. */
export function clearCache(model?: string | null): Promise<number>;

/** Bytes of memory the wasm instance holds (it only grows). */
export function wasmMemoryBytes(): number;

/** Which build runs and on how many threads. */
export interface RuntimeInfo {
  /** 'threads': atomics and shared memory, rayon's pool on Web Workers (needs a cross-origin
   * isolated page); 'single': one thread, runs everywhere. */
  build: 'threads' | 'single';
  /** How many threads compute; null until the threaded build's pool starts (first pipeline). */
  threads: number | null;
  /** Built with WebAssembly SIMD128. */
  simd: boolean;
  /** Built with relaxed SIMD (its 8-bit dot products run the q8/q4 encoders): pkg/relaxed and
   * pkg/threads-relaxed, loaded by the page's worker where the browser validates them. */
  relaxed_simd: boolean;
}

/** Which build runs and on how many threads. */
export function runtimeInfo(): RuntimeInfo;
