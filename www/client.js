// A small promise API over the inference worker (worker.js), used by the page and the widgets.
// Errors reject with an Error whose `kind` is the package's (see hubside.d.ts), or 'crash' (the
// wasm instance trapped), 'worker' (the worker died) or 'cancelled' (cancel() was called).
export class HubsideClient {
  /** `numThreads`: the threaded build's pool size (it runs when the page is cross-origin
   * isolated); default: the cores the browser reports, at most 8. */
  constructor(workerUrl = new URL('./worker.js', import.meta.url), { numThreads } = {}) {
    this.workerUrl = workerUrl;
    this.numThreads = numThreads;
    this.pending = new Map();
    this.nextId = 1;
    this.worker = null; // started by the first request, and again after a stop
  }

  start() {
    this.worker = new Worker(this.workerUrl, { type: 'module' });
    this.worker.onmessage = ({ data }) => {
      const call = this.pending.get(data.id);
      if (!call) return;
      if (data.type === 'progress') call.onProgress?.(data.event);
      else if (data.type === 'partial') call.onPartial?.(data.value);
      else {
        this.pending.delete(data.id);
        if (data.type === 'error') {
          const error = new Error(data.error.message);
          error.kind = data.error.kind;
          call.reject(error);
          if (error.kind === 'crash') this.stop(error);
        } else call.resolve(data);
      }
    };
    this.worker.onerror = (event) => {
      const error = new Error(event.message || 'the inference worker crashed');
      error.kind = 'worker';
      this.stop(error);
    };
  }

  /** Stop whatever is running: the worker ends with its loaded models, and every pending call
   * rejects with `reason`. The next request starts a new worker (not this one: a worker that
   * cannot start would otherwise be replaced forever). */
  stop(reason) {
    this.worker?.terminate();
    this.worker = null;
    for (const call of this.pending.values()) call.reject(reason);
    this.pending.clear();
  }

  cancel() {
    const error = new Error('cancelled');
    error.kind = 'cancelled';
    this.stop(error);
  }

  request(message, { onProgress, onPartial } = {}) {
    const id = this.nextId++;
    if (!this.worker) this.start();
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, onProgress, onPartial });
      this.worker.postMessage({ id, ...message });
    });
  }

  /** The package's defaults: {endpoint, tasks: [{task, aliases, model_types, default_model,
   * options}], max_memory} (defaultEndpoint(), supportedTasks(), defaultMaxMemory()). Asked once; the answer never changes. */
  info() {
    if (!this.infoAnswer) {
      this.infoAnswer = this.request({ type: 'info' }).then(({ value }) => value);
      this.infoAnswer.catch(() => { this.infoAnswer = undefined; }); // cancelled: ask again next time
    }
    return this.infoAnswer;
  }

  /** Load (or reuse) a model; an empty `model` or `endpoint` means the package's default, a
   * `max_memory` (bytes) the budget it must fit (else it is refused before downloading).
   * Resolves to {key, seconds, memory, task, model, multilingual, build, threads}: the canonical
   * task name, the repo id loaded, for speech recognition whether the model knows other languages
   * than English, and which wasm build runs it ('threads' or 'single') on how many threads. */
  async load(spec, onProgress) {
    return (await this.request({ type: 'load', ...spec, numThreads: this.numThreads }, { onProgress })).value;
  }

  /** What runs in the worker: {build: 'threads' | 'single', threads, simd, relaxed_simd} (runtimeInfo());
   * `threads` is null until the threaded build's pool starts with the first load. */
  async runtimeInfo() {
    return (await this.request({ type: 'runtime' })).value;
  }

  /** What loading a model would download and the memory it needs, before downloading it:
   * {files: [{file, size}], download_bytes, parameters, memory: {fp32, fp16, q8, q4}, exact, note}. */
  async modelInfo(spec) {
    return (await this.request({ type: 'model-info', ...spec })).value;
  }

  /** Run a loaded model on `input`; resolves to {value, seconds}. With `onPartial`, streams
   * translation text ({text, index}) and transcription windows ({text, chunks, progress, ...}). */
  run(spec, input, options, onPartial) {
    return this.request({ type: 'run', ...spec, input, options, stream: Boolean(onPartial) }, { onPartial });
  }

  /** A transcription's output (with timed `chunks`) as the text of a subtitle file: `format`
   * 'srt' or 'vtt'; `options.max_line_width` gathers word chunks into cues (subtitles()). */
  async subtitles(output, format, options) {
    return (await this.request({ type: 'subtitles', output, format, options })).value;
  }

  /** A live transcription session of a loaded speech model (`live.js`): `push(samples,
   * sampleRate)` sends audio as it is recorded (no answer: audio that arrives while the worker
   * decodes is decoded together next), `onUpdate({committed, tentative, received, decoded})`
   * runs after each push the worker handled, `finish()` resolves to {text, chunks, language}. */
  live(spec, options, onUpdate) {
    const done = this.request({ type: 'live', ...spec, options }, { onPartial: onUpdate });
    const id = this.nextId - 1;
    const worker = this.worker;
    return {
      push: (samples, sampleRate) => {
        if (this.worker === worker) worker.postMessage({ type: 'live-push', live: id, samples, sampleRate }, [samples.buffer]);
      },
      finish: () => {
        if (this.worker === worker) worker.postMessage({ type: 'live-finish', live: id });
        return done.then(({ value }) => value);
      },
    };
  }

  /** Models in the browser cache: [{model, bytes, files: [{url, bytes}]}]. */
  async cachedModels() {
    return (await this.request({ type: 'cached' })).value;
  }

  /** Delete one model's cached files, or all when `model` is omitted. */
  async clearCache(model) {
    return (await this.request({ type: 'clear-cache', model })).value;
  }
}
