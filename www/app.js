// The demo page: every model runs in the worker (client.js); this file only drives the UI.
import { HubsideClient, LoadProgress, formatBytes, renderScores } from './client.js';

const $ = (id) => document.getElementById(id);
const client = new HubsideClient();

// `hubside serve --hub DIR` publishes its mirror here; on static hosting this 404s and the
// defaults (huggingface.co) stay.
async function applySiteConfig() {
  try {
    const response = await fetch('./hubside.json');
    if (!response.ok) return;
    const config = await response.json();
    if (config.endpoint) $('endpoint').value = config.endpoint;
    for (const [section, models] of Object.entries(config.models || {})) {
      const list = $(`${section}-models`);
      if (!list || !models.length) continue;
      list.replaceChildren(...models.map((m) => Object.assign(document.createElement('option'), { value: m })));
      // Prefer the smallest model of the mirror as the default.
      $(`${section}-model`).value = models.find((m) => /tiny|sst2/.test(m)) || models[0];
    }
  } catch { /* static hosting: keep defaults */ }
  updateTaskOptions();
}

// ---- shared helpers -------------------------------------------------------------------------

function showProgress(prefix, tracker) {
  const box = $(`${prefix}-progress`);
  box.hidden = false;
  const percent = tracker.total ? (100 * tracker.loaded) / tracker.total : 0;
  box.querySelector('progress').value = percent;
  const files = [...tracker.files.values()].filter((f) => f.total > 0).length;
  box.querySelector('.progress-text').textContent = tracker.current
    ? `${tracker.current} — ${formatBytes(tracker.loaded)} / ${formatBytes(tracker.total)}`
    : `${files} files — ${formatBytes(tracker.loaded)} / ${formatBytes(tracker.total)}`;
}

function setStatus(prefix, text, isError = false) {
  const status = $(`${prefix}-status`);
  status.textContent = text;
  status.classList.toggle('error', isError);
}

function describeError(e) {
  switch (e.kind) {
    case 'network': return `Cannot reach the Hub (${e.message}). Check the connection or the endpoint in Settings.`;
    case 'crash': return `The model crashed, possibly out of memory: ${e.message}. The page is still usable.`;
    default: return e.message;
  }
}

function spec(prefix, task) {
  return { task, model: $(`${prefix}-model`).value.trim(), endpoint: $('endpoint').value.trim() };
}

async function loadModel(prefix, task) {
  const tracker = new LoadProgress();
  const s = spec(prefix, task);
  if (!s.model) throw Object.assign(new Error('Enter a model (a Hub repo id such as org/name).'), { kind: 'input' });
  setStatus(prefix, `Loading ${s.model}…`);
  const loaded = await client.load(s, (event) => {
    tracker.update(event);
    showProgress(prefix, tracker);
  });
  tracker.finish();
  if (tracker.total) showProgress(prefix, tracker);
  refreshCache();
  return { spec: s, loaded };
}

/** Run `work` with the section's buttons locked and errors shown in its status line. */
async function guarded(prefix, work) {
  const run = $(`${prefix}-run`);
  const cancel = $(`${prefix}-cancel`);
  run.disabled = true;
  cancel.disabled = false;
  try {
    await work();
  } catch (e) {
    const progress = $(`${prefix}-progress`);
    if (progress.querySelector('progress').value < 100) progress.hidden = true;
    if (e.kind === 'cancelled') setStatus(prefix, 'Cancelled.');
    else setStatus(prefix, `Error: ${describeError(e)}`, true);
  } finally {
    run.disabled = false;
    cancel.disabled = true;
  }
}

// ---- sentiment ------------------------------------------------------------------------------

const runSentiment = () => guarded('sentiment', async () => {
  $('sentiment-result').replaceChildren();
  $('sentiment-progress').hidden = true;
  const { spec: s, loaded } = await loadModel('sentiment', 'sentiment-analysis');
  setStatus('sentiment', `Running (model ready in ${loaded.seconds.toFixed(2)} s)…`);
  const { value, seconds } = await client.run(s, $('sentiment-text').value, { top_k: null });
  renderScores($('sentiment-result'), value);
  setStatus('sentiment', `${value[0].label} — ${(seconds * 1000).toFixed(0)} ms`);
});

// ---- translation ----------------------------------------------------------------------------

const runTranslation = () => guarded('translation', async () => {
  $('translation-progress').hidden = true;
  const output = $('translation-result');
  output.textContent = '';
  const { spec: s } = await loadModel('translation', 'translation');
  setStatus('translation', 'Translating…');
  const options = {
    num_beams: Math.max(1, Number($('translation-beams').value) || 1),
    max_new_tokens: Math.max(1, Number($('translation-max').value) || 128),
  };
  const texts = [$('translation-text').value];
  const { value, seconds } = await client.run(s, texts, options, ({ text }) => { output.textContent = text; });
  output.textContent = value.map((v) => v.translation_text).join('\n');
  setStatus('translation', `Done in ${(seconds * 1000).toFixed(0)} ms.`);
});

// ---- transcription --------------------------------------------------------------------------

const englishOnly = () => /\.en$/.test($('transcription-model').value.trim());

function updateTaskOptions() {
  const disabled = englishOnly();
  $('transcription-language').disabled = disabled;
  $('transcription-task').disabled = disabled;
  if (disabled) {
    $('transcription-language').value = 'en';
    $('transcription-task').value = 'transcribe';
  }
}

const formatTime = (s) => `${Math.floor(s / 60)}:${(s % 60).toFixed(1).padStart(4, '0')}`;

function renderTranscript({ text, chunks = [] }) {
  $('transcription-result').textContent = text.trim();
  $('transcription-chunks').replaceChildren(...chunks.map(({ timestamp: [start, end], text: t }) => {
    const li = document.createElement('li');
    const time = document.createElement('time');
    time.textContent = `${formatTime(start)} → ${formatTime(end ?? start)}`;
    li.append(time, document.createTextNode(t.trim()));
    return li;
  }));
}

/** Decode any audio the browser understands into planar channels. */
async function decodeAudio(blob) {
  const context = new AudioContext();
  try {
    const buffer = await context.decodeAudioData(await blob.arrayBuffer());
    const channels = Array.from({ length: buffer.numberOfChannels }, (_, i) => buffer.getChannelData(i));
    return { channels, sampleRate: buffer.sampleRate, duration: buffer.duration };
  } catch {
    throw Object.assign(new Error(`"${blob.name || 'the recording'}" is not audio this browser can decode.`), { kind: 'input' });
  } finally {
    context.close();
  }
}

const transcribe = (blob) => guarded('transcription', async () => {
  $('transcription-progress').hidden = true;
  renderTranscript({ text: '' });
  const audio = await decodeAudio(blob);
  const { spec: s } = await loadModel('transcription', 'automatic-speech-recognition');
  setStatus('transcription', `Transcribing ${audio.duration.toFixed(1)} s of audio…`);
  const options = { sampling_rate: audio.sampleRate, return_timestamps: $('transcription-timestamps').checked };
  if (!englishOnly()) {
    if ($('transcription-language').value) options.language = $('transcription-language').value;
    options.task = $('transcription-task').value;
  }
  const { value, seconds } = await client.run(s, audio.channels, options, (partial) => {
    renderTranscript(partial);
    setStatus('transcription', `Transcribing… ${Math.round(100 * partial.progress)}%`);
  });
  renderTranscript(value);
  setStatus('transcription', `Done in ${seconds.toFixed(1)} s (language: ${value.language}).`);
});

function transcribeFile() {
  const file = $('transcription-file').files[0];
  if (!file) {
    setStatus('transcription', 'Choose an audio file first.', true);
    return;
  }
  transcribe(file);
}

let recorder = null;
async function toggleRecording() {
  const button = $('transcription-record');
  if (recorder) {
    recorder.stop();
    return;
  }
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    const parts = [];
    recorder = new MediaRecorder(stream);
    recorder.ondataavailable = (e) => parts.push(e.data);
    recorder.onstop = () => {
      stream.getTracks().forEach((t) => t.stop());
      recorder = null;
      button.setAttribute('aria-pressed', 'false');
      button.textContent = 'Record from microphone';
      transcribe(new Blob(parts, { type: parts[0]?.type || 'audio/webm' }));
    };
    recorder.start();
    button.setAttribute('aria-pressed', 'true');
    button.textContent = 'Stop recording';
    setStatus('transcription', 'Recording… press "Stop recording" when done.');
  } catch (e) {
    setStatus('transcription', `Cannot record: ${e.message}`, true);
  }
}

// ---- cache ----------------------------------------------------------------------------------

async function refreshCache() {
  const list = $('cache-list');
  try {
    const models = await client.cachedModels();
    list.replaceChildren(...models.map(({ model, bytes, files }) => {
      const li = document.createElement('li');
      const label = document.createElement('span');
      label.textContent = `${model} — ${formatBytes(bytes)} in ${files.length} files`;
      const clear = Object.assign(document.createElement('button'), { type: 'button', textContent: 'Clear' });
      clear.setAttribute('aria-label', `Clear ${model} from the cache`);
      clear.addEventListener('click', async () => { await client.clearCache(model); refreshCache(); });
      li.append(label, clear);
      return li;
    }));
    if (!models.length) list.replaceChildren(Object.assign(document.createElement('li'), { textContent: 'No models cached yet.' }));
  } catch (e) {
    list.replaceChildren(Object.assign(document.createElement('li'), { textContent: `Cache unavailable: ${e.message}` }));
  }
}

async function requestPersistence() {
  const status = $('storage-status');
  if (!navigator.storage?.persist) {
    status.textContent = 'This browser may evict cached models when storage runs low.';
    return;
  }
  const persisted = (await navigator.storage.persisted()) || (await navigator.storage.persist());
  const { usage = 0, quota = 0 } = (await navigator.storage.estimate?.()) || {};
  status.textContent = `${persisted ? 'Persistent storage granted' : 'Storage may be evicted by the browser'}; ` +
    `${formatBytes(usage)} used of ${formatBytes(quota)}.`;
}

// ---- wiring ---------------------------------------------------------------------------------

$('sentiment-run').addEventListener('click', runSentiment);
$('translation-run').addEventListener('click', runTranslation);
$('transcription-run').addEventListener('click', transcribeFile);
$('transcription-record').addEventListener('click', toggleRecording);
$('transcription-model').addEventListener('input', updateTaskOptions);
for (const prefix of ['sentiment', 'translation', 'transcription']) {
  $(`${prefix}-cancel`).addEventListener('click', () => client.cancel());
}
for (const [area, run] of [['sentiment-text', runSentiment], ['translation-text', runTranslation]]) {
  $(area).addEventListener('keydown', (e) => { if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) run(); });
}
$('cache-clear-all').addEventListener('click', async () => { await client.clearCache(); refreshCache(); });
$('settings').addEventListener('toggle', () => { if ($('settings').open) { refreshCache(); requestPersistence(); } });

applySiteConfig();
requestPersistence();
refreshCache();
