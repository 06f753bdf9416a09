// What the page (app.js) and the widgets (widgets.js) show and do the same way: download
// progress, scores, timed segments, error messages, decoding audio files, Ctrl+Enter, and the
// configuration `hubside serve` injects. Plain DOM helpers; neither caller's layout lives here.

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
  /** The model loaded, so every file it needs has arrived (files a repo lacks never report
   * "done", and stay at 0 bytes). */
  finish() {
    for (const f of this.files.values()) {
      f.loaded = f.total;
      f.done = true;
    }
  }
}

export function formatBytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MB`;
  return `${(n / 1024 ** 3).toFixed(2)} GB`;
}

/** One line about a suggested model (supportedTasks()' `suggested_models`): what it does, its
 * parameters and the estimated size of its weights as fp32 (the original's download) and as q8. */
export function describeSuggestion({ about, parameters, bytes }) {
  return `${about} · ${Math.round(parameters / 1e6)}M parameters · about ${formatBytes(bytes.fp32)} (fp32), ${formatBytes(bytes.q8)} (q8)`;
}

/** Fill a <datalist> with repo ids: `extra` first (e.g. a local mirror's models), then the task's
 * suggested models with a line about each. Any other repo id can still be typed. */
export function fillModelList(datalist, suggestions, extra = []) {
  const option = (value, label) => Object.assign(document.createElement('option'), { value, label });
  const suggested = new Set(suggestions.map((s) => s.model));
  datalist.replaceChildren(
    ...extra.filter((m) => !suggested.has(m)).map((m) => option(m, 'on this mirror')),
    ...suggestions.map((s) => option(s.model, describeSuggestion(s))),
  );
}

/** Seconds as m:ss.s. */
export function formatTime(seconds) {
  const minutes = Math.floor(seconds / 60);
  return `${minutes}:${(seconds - minutes * 60).toFixed(1).padStart(4, '0')}`;
}

/** Show `tracker` in `box`, an element holding a <progress> and a `.progress-text`. */
export function showLoadProgress(box, tracker) {
  if (!tracker.total) return;
  box.hidden = false;
  box.querySelector('progress').value = (100 * tracker.loaded) / tracker.total;
  const file = tracker.current;
  const files = [...tracker.files.values()].filter((f) => f.total > 0).length;
  box.querySelector('.progress-text').textContent =
    `${file || `${files} files`} — ${formatBytes(tracker.loaded)} / ${formatBytes(tracker.total)}`;
}

/** Load a model through `client` with one byte-based bar in `box` (see showLoadProgress);
 * `onEvent(event, tracker)` sees every download event. Resolves to the worker's load result
 * ({key, seconds, memory, task, model, multilingual}) plus the bytes downloaded or cached. */
export async function loadWithProgress(client, spec, box, onEvent) {
  const tracker = new LoadProgress();
  const loaded = await client.load(spec, (event) => {
    tracker.update(event);
    showLoadProgress(box, tracker);
    onEvent?.(event, tracker);
  });
  tracker.finish();
  showLoadProgress(box, tracker);
  return { ...loaded, bytes: tracker.total };
}

/** A modelInfo() report in one line: "download 268.0 MB; memory fp32 255.6 MB · fp16 … · q8 … ·
 * q4 …", marked "about" when estimated from file sizes, with what is unknown said as such. */
export function describeFit(info, chosen) {
  const download = info.download_bytes == null ? 'download size unknown' : `download ${formatBytes(info.download_bytes)}`;
  if (!info.memory) return `${download}; memory unknown until downloaded`;
  const about = info.exact ? '' : 'about ';
  const memory = ['fp32', 'fp16', 'q8', 'q4']
    .map((dtype) => `${dtype} ${formatBytes(info.memory[dtype])}${dtype === chosen ? ' (chosen)' : ''}`).join(' · ');
  return `${download}; memory ${about}${memory}`;
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

/** Fill `list` (an <ol>) with a transcript's timed segments: "0:00.0 → 0:05.2" and the text. */
export function renderChunks(list, chunks = []) {
  list.replaceChildren(...chunks.map(({ timestamp: [start, end], text }) => {
    const li = document.createElement('li');
    const time = document.createElement('time');
    time.textContent = `${formatTime(start)} → ${formatTime(end ?? start)}`;
    li.append(time, document.createTextNode(text.trim()));
    return li;
  }));
}

export function setStatus(element, text, isError = false) {
  element.textContent = text;
  element.classList.toggle('error', isError);
}

// What to try, per error kind; the message itself already names the URL, model type, ...
const HINTS = {
  not_found: 'Check the model id and the endpoint.',
  http: 'The endpoint refused the request; check it, or try again later.',
  network: 'Check the connection and the endpoint.',
  unsupported_model: 'Try another model for this task.',
  too_large: 'Choose a smaller model, or raise the memory budget in the settings.',
  crash: 'The model crashed, possibly out of memory; try again, or a smaller model.',
  worker: 'The model worker stopped, perhaps out of memory; try again, or a smaller model.',
};

/** The error's own message plus what to try. */
export function describeError(error) {
  const message = error?.message || String(error);
  if (error?.kind === 'network') return `Cannot reach the Hub (${message}). ${HINTS.network}`;
  const hint = HINTS[error?.kind];
  return hint ? `${message.replace(/\.$/, '')}. ${hint}` : message;
}

/** Run `run()` when Ctrl+Enter (Cmd+Enter) is pressed in `element`. */
export function runOnCtrlEnter(element, run) {
  element.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      run();
    }
  });
}

/** Decode any file or recording the browser can play into planar channels (AudioBuffer
 * layout): {channels, sampling_rate, duration}. */
export async function decodeAudio(blob) {
  const bytes = await blob.arrayBuffer();
  // An offline context never needs a user gesture or an audio device; decoding resamples to
  // its rate, 16 kHz being what Whisper wants. Channels are kept and mixed down in wasm.
  const context = new OfflineAudioContext({ numberOfChannels: 1, length: 1, sampleRate: 16000 });
  let buffer;
  try {
    buffer = await context.decodeAudioData(bytes);
  } catch {
    const name = blob.name || 'the recording';
    throw Object.assign(new Error(`Cannot decode “${name}” as audio. Try a WAV, MP3, OGG, FLAC or M4A file.`), { kind: 'input' });
  }
  const channels = Array.from({ length: buffer.numberOfChannels }, (_, c) => buffer.getChannelData(c));
  return { channels, sampling_rate: buffer.sampleRate, duration: buffer.duration };
}

/** What `hubside serve` injects into every page it serves: `{endpoint, models: {task: [repo
 * ids]}}` for its local Hub mirror. null on a static host, where nothing is injected (and no
 * request is made for it). */
export function siteConfig() {
  const element = document.getElementById('hubside-site');
  if (!element) return null;
  try {
    return JSON.parse(element.textContent);
  } catch {
    return null;
  }
}

// The test mirror's models most like the package defaults (small, English, en→de).
const MIRROR_PREFERENCE = {
  'text-classification': /sst-?2/i,
  translation: /en-de/i,
  'automatic-speech-recognition': /tiny/i,
};

/** The mirror's model for `task` (a canonical task name) to start with, or undefined. */
export function mirrorModel(config, task) {
  const models = config?.models?.[task] || [];
  return models.find((m) => MIRROR_PREFERENCE[task]?.test(m)) || models[0];
}
