// A small promise API over the inference worker, used by the page and the widgets.
export class HubsideClient {
  constructor(workerUrl = new URL('./worker.js', import.meta.url)) {
    this.workerUrl = workerUrl;
    this.pending = new Map();
    this.nextId = 1;
    this.start();
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
          if (error.kind === 'crash') this.restart(error);
        } else call.resolve(data);
      }
    };
    this.worker.onerror = (event) => {
      const error = new Error(event.message || 'the inference worker crashed');
      error.kind = 'worker';
      this.restart(error);
    };
  }

  /** Stop whatever is running (the worker is replaced; loaded models are dropped). */
  restart(reason) {
    this.worker.terminate();
    for (const call of this.pending.values()) call.reject(reason);
    this.pending.clear();
    this.start();
  }

  cancel() {
    const error = new Error('cancelled');
    error.kind = 'cancelled';
    this.restart(error);
  }

  request(message, { onProgress, onPartial } = {}) {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, onProgress, onPartial });
      this.worker.postMessage({ id, ...message });
    });
  }

  /** Load (or reuse) a model; resolves to {key, seconds, memory}. */
  async load(spec, onProgress) {
    return (await this.request({ type: 'load', ...spec }, { onProgress })).value;
  }

  /** Run a loaded model on `input`; resolves to {value, seconds}. With `onPartial`, streams
   * translation text ({text, index}) and transcription windows ({text, chunks, progress, ...}). */
  run(spec, input, options, onPartial) {
    return this.request({ type: 'run', ...spec, input, options, stream: Boolean(onPartial) }, { onPartial });
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

/** Tracks one progress bar across all files of a model, in bytes. */
export class LoadProgress {
  constructor() {
    this.files = new Map();
  }
  update(event) {
    if (!event.file) return;
    const entry = this.files.get(event.file) || { loaded: 0, total: 0, done: false };
    if (event.status === 'progress') {
      entry.loaded = event.loaded;
      entry.total = event.total || Math.max(entry.total, event.loaded);
    } else if (event.status === 'done') {
      entry.loaded = entry.total = event.loaded;
      entry.done = true;
    }
    this.files.set(event.file, entry);
  }
  get loaded() {
    return [...this.files.values()].reduce((sum, f) => sum + f.loaded, 0);
  }
  get total() {
    return [...this.files.values()].reduce((sum, f) => sum + f.total, 0);
  }
  get current() {
    return [...this.files.entries()].filter(([, f]) => !f.done && f.loaded > 0).map(([name]) => name).pop() || '';
  }
  /** Every file the model needs has arrived (files a repo lacks never report "done"). */
  finish() {
    for (const f of this.files.values()) f.done = true;
  }
}

export function formatBytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MB`;
  return `${(n / 1024 ** 3).toFixed(2)} GB`;
}

/** Fill `list` (an <ol>) with one row per label: name, a bar, and the score; best first. */
export function renderScores(list, scores) {
  list.replaceChildren(...scores.map(({ label, score }, i) => {
    const li = document.createElement('li');
    if (i === 0) li.className = 'top';
    li.innerHTML = '<span class="label"></span><span class="bar" aria-hidden="true"><span></span></span><span class="score"></span>';
    li.querySelector('.label').textContent = label;
    li.querySelector('.bar span').style.width = `${(score * 100).toFixed(1)}%`;
    li.querySelector('.score').textContent = score.toFixed(4);
    li.setAttribute('aria-label', `${label}: ${(score * 100).toFixed(1)}%`);
    return li;
  }));
}
