// The demo page: every model runs in the worker (client.js); this file only drives the page's
// UI, with what it shares with the widgets in ui.js.
import { HubsideClient } from './client.js';
import { renderLive, startLive } from './live.js';
import {
  decodeAudio, describeError, describeFit, fillModelList, formatBytes, loadWithProgress, mirrorModel, renderChunks, renderScores,
  runOnCtrlEnter, setStatus, siteConfig,
} from './ui.js';

const $ = (id) => document.getElementById(id);
const client = new HubsideClient();

// The page's sections and the package's (canonical) task names.
const TASKS = { sentiment: 'text-classification', translation: 'translation', transcription: 'automatic-speech-recognition' };

/** Fill the endpoint and the models: from the mirror `hubside serve` injected, else the
 * package's defaults. Fields the user already filled are kept. */
async function applyDefaults() {
  const config = siteConfig();
  if (config?.endpoint) $('endpoint').value = config.endpoint;
  for (const [section, task] of Object.entries(TASKS)) {
    const models = config?.models?.[task] || [];
    if (!models.length) continue;
    fillModelList($(`${section}-models`), [], models);
    $(`${section}-model`).value = mirrorModel(config, task);
  }
  try {
    const info = await client.info();
    $('max-memory').placeholder = String(Math.round(info.max_memory / 2 ** 20));
    if (!$('endpoint').value) $('endpoint').value = info.endpoint;
    for (const [section, task] of Object.entries(TASKS)) {
      const entry = info.tasks.find((t) => t.task === task);
      if (!entry) continue;
      // The suggestions after a mirror's own models: on huggingface.co they are what people type first.
      fillModelList($(`${section}-models`), entry.suggested_models, config?.models?.[task] || []);
      if (!$(`${section}-model`).value) $(`${section}-model`).value = entry.default_model;
    }
  } catch {
    // The fields stay empty (an empty endpoint is the default one); a run says what is wrong.
  }
  updateTaskOptions();
}

// ---- shared by the sections -----------------------------------------------------------------

const status = (prefix, text, isError) => setStatus($(`${prefix}-status`), text, isError);

/** The memory budget in the settings, in bytes; undefined: the package's default. */
function memoryBudget() {
  const megabytes = Number($('max-memory').value);
  return megabytes > 0 ? megabytes * 2 ** 20 : undefined;
}

/** The weights dtype chosen in the settings; undefined: the package's default (fp32). */
const chosenDtype = () => $('dtype').value || undefined;

async function loadModel(prefix, task) {
  const spec = { task, model: $(`${prefix}-model`).value.trim(), endpoint: $('endpoint').value.trim(), dtype: chosenDtype() };
  if (!spec.model) throw Object.assign(new Error('Enter a model (a Hub repo id such as org/name).'), { kind: 'input' });
  status(prefix, `Loading ${spec.model}…`);
  const loaded = await loadWithProgress(client, { ...spec, max_memory: memoryBudget() }, $(`${prefix}-progress`));
  showRuntime(loaded);
  refreshCache();
  return { spec, loaded };
}

// The model (and endpoint) each section's size line was asked for, so it is asked once and a
// late answer for an earlier model is dropped.
const fitAsked = {};

/** When a model is chosen: its download size and memory per dtype under the model field. */
async function showFit(prefix, task) {
  const spec = { task, model: $(`${prefix}-model`).value.trim(), endpoint: $('endpoint').value.trim() };
  const key = JSON.stringify({ ...spec, dtype: chosenDtype() });
  if (!spec.model || fitAsked[prefix] === key) return;
  fitAsked[prefix] = key;
  const line = $(`${prefix}-fit`);
  line.textContent = 'Checking its size…';
  try {
    const info = await client.modelInfo(spec);
    if (fitAsked[prefix] !== key) return;
    const budget = memoryBudget() ?? (await client.info()).max_memory;
    const dtype = chosenDtype() || 'fp32';
    const over = info.memory && info.memory[dtype] > budget ? ` (over the ${formatBytes(budget)} memory budget in ${dtype})` : '';
    line.textContent = describeFit(info, chosenDtype()) + over;
  } catch (e) {
    if (fitAsked[prefix] !== key) return;
    // Cancelled with a run: ask again next time.
    if (e.kind === 'cancelled' || e.kind === 'worker') delete fitAsked[prefix];
    line.textContent = e.kind === 'cancelled' ? '' : `Size unknown: ${e.message}`;
  }
}

/** Which wasm build runs the models, on how many threads (in the settings). */
function showRuntime({ build, threads, relaxed_simd }) {
  $('runtime-status').textContent = (build === 'threads'
    ? `Models run on ${threads} threads (the page is cross-origin isolated)`
    : 'Models run on one thread (the page is not cross-origin isolated)')
    + (relaxed_simd ? ', with relaxed SIMD.' : '.');
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
    if (e.kind === 'cancelled') status(prefix, 'Cancelled.');
    else status(prefix, `Error: ${describeError(e)}`, true);
  } finally {
    run.disabled = false;
    cancel.disabled = true;
  }
}

// ---- sentiment ------------------------------------------------------------------------------

const runSentiment = () => guarded('sentiment', async () => {
  $('sentiment-result').replaceChildren();
  $('sentiment-progress').hidden = true;
  const { spec, loaded } = await loadModel('sentiment', TASKS.sentiment);
  status('sentiment', `Running (model ready in ${loaded.seconds.toFixed(2)} s)…`);
  const { value, seconds } = await client.run(spec, $('sentiment-text').value, { top_k: null });
  renderScores($('sentiment-result'), value);
  status('sentiment', `${value[0].label} — ${(seconds * 1000).toFixed(0)} ms`);
});

// ---- translation ----------------------------------------------------------------------------

const runTranslation = () => guarded('translation', async () => {
  $('translation-progress').hidden = true;
  const output = $('translation-result');
  output.textContent = '';
  const { spec } = await loadModel('translation', TASKS.translation);
  status('translation', 'Translating…');
  const options = {
    num_beams: Math.max(1, Number($('translation-beams').value) || 1),
    max_new_tokens: Math.max(1, Number($('translation-max').value) || 128),
  };
  // Multilingual models (M2M100, NLLB) need both languages; single-pair models need neither.
  const [src, tgt] = [$('translation-src').value.trim(), $('translation-tgt').value.trim()];
  if (src) options.src_lang = src;
  if (tgt) options.tgt_lang = tgt;
  const texts = [$('translation-text').value];
  const { value, seconds } = await client.run(spec, texts, options, ({ text }) => { output.textContent = text; });
  output.textContent = value.map((v) => v.translation_text).join('\n');
  status('translation', `Done in ${(seconds * 1000).toFixed(0)} ms.`);
});

// ---- transcription --------------------------------------------------------------------------

// Whether each loaded Whisper model knows more than English (the pipeline says so on load).
const multilingual = new Map();

/** Language and task only mean something for a multilingual model; until a model has been
 * loaded once, the choice stays open. */
function updateTaskOptions() {
  const englishOnly = multilingual.get($('transcription-model').value.trim()) === false;
  $('transcription-language').disabled = englishOnly;
  $('transcription-task').disabled = englishOnly;
  if (englishOnly) {
    $('transcription-language').value = 'en';
    $('transcription-task').value = 'transcribe';
  }
}

// The last finished transcription with timed chunks, and the name of its audio, for subtitles.
let timedTranscript = null;

function renderTranscript({ text, chunks }) {
  $('transcription-result').textContent = text.trim();
  renderChunks($('transcription-chunks'), chunks);
}

/** Offer the finished transcript as subtitles when it has timed chunks. */
function offerSubtitles(value, name, words = false) {
  timedTranscript = value.chunks?.length ? { value, name, words } : null;
  $('transcription-subtitles').hidden = !timedTranscript;
}

async function downloadSubtitles(format) {
  if (!timedTranscript) return;
  try {
    // A cue per word would flash by: words are gathered into lines as subtitles usually have them.
    const text = await client.subtitles(timedTranscript.value, format, timedTranscript.words ? { max_line_width: 42 } : undefined);
    const link = document.createElement('a');
    link.href = URL.createObjectURL(new Blob([text], { type: format === 'vtt' ? 'text/vtt' : 'application/x-subrip' }));
    link.download = `${timedTranscript.name}.${format}`;
    link.click();
    setTimeout(() => URL.revokeObjectURL(link.href), 0);
  } catch (e) {
    status('transcription', `Cannot make subtitles: ${e.message}`, true);
  }
}

const transcribe = (blob) => guarded('transcription', async () => {
  $('transcription-progress').hidden = true;
  renderTranscript({ text: '' });
  offerSubtitles({});
  const audio = await decodeAudio(blob);
  const { spec, loaded } = await loadModel('transcription', TASKS.transcription);
  multilingual.set(spec.model, loaded.multilingual);
  updateTaskOptions();
  status('transcription', `Transcribing ${audio.duration.toFixed(1)} s of audio…`);
  const words = $('transcription-words').checked;
  const options = { sampling_rate: audio.sampling_rate, return_timestamps: words ? 'word' : $('transcription-timestamps').checked };
  if (loaded.multilingual) {
    if ($('transcription-language').value) options.language = $('transcription-language').value;
    options.task = $('transcription-task').value;
  }
  const { value, seconds } = await client.run(spec, audio.channels, options, (partial) => {
    renderTranscript(partial);
    status('transcription', `Transcribing… ${Math.round(100 * partial.progress)}%`);
  });
  renderTranscript(value);
  offerSubtitles(value, (blob.name || 'recording').replace(/\.[^.]*$/, '') || 'recording', words);
  status('transcription', `Done in ${seconds.toFixed(1)} s (language: ${value.language}).`);
});

function transcribeFile() {
  const file = $('transcription-file').files[0];
  if (!file) {
    status('transcription', 'Choose an audio file first.', true);
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
    status('transcription', 'Recording… press "Stop recording" when done.');
  } catch (e) {
    status('transcription', `Cannot record: ${e.message}`, true);
  }
}

// Live: the microphone transcribed while recording (live.js); committed text plain, tentative
// text greyed. The result's data-received: the seconds of audio the latest decode heard (tests and
// benchmarks time the text against the audio with it).
let liveRun = null;
async function toggleLive() {
  const button = $('transcription-live');
  const result = $('transcription-result');
  if (liveRun) {
    const running = liveRun;
    liveRun = null;
    button.disabled = true;
    try {
      const value = await (await running).stop();
      renderLive(result, { committed: value.text });
      renderChunks($('transcription-chunks'), $('transcription-timestamps').checked ? value.chunks : []);
      offerSubtitles(value, 'live');
      status('transcription', 'Live transcription stopped.');
    } catch (e) {
      status('transcription', `Error: ${describeError(e)}`, true);
    } finally {
      button.disabled = false;
      button.setAttribute('aria-pressed', 'false');
      button.textContent = 'Live (microphone)';
    }
    return;
  }
  renderLive(result, {});
  renderChunks($('transcription-chunks'), []);
  offerSubtitles({});
  button.setAttribute('aria-pressed', 'true');
  button.textContent = 'Stop live';
  liveRun = (async () => {
    const { spec, loaded } = await loadModel('transcription', TASKS.transcription);
    multilingual.set(spec.model, loaded.multilingual);
    updateTaskOptions();
    const options = {};
    if (loaded.multilingual) {
      if ($('transcription-language').value) options.language = $('transcription-language').value;
      options.task = $('transcription-task').value;
    }
    const handle = await startLive(client, spec, options, (update) => {
      if (update.decoded) result.dataset.received = update.received;
      renderLive(result, update);
    });
    status('transcription', 'Listening… speak; press "Stop live" to end.');
    return handle;
  })();
  try {
    await liveRun;
  } catch (e) {
    liveRun = null;
    button.setAttribute('aria-pressed', 'false');
    button.textContent = 'Live (microphone)';
    status('transcription', `Error: ${describeError(e)}`, true);
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
      const compact = files.filter((f) => f.kind === 'compact').map((f) => f.dtype);
      label.textContent = `${model} — ${formatBytes(bytes)} in ${files.length} files` +
        (compact.length ? ` (with compact ${compact.join(', ')} weights)` : '');
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
  const storage = $('storage-status');
  if (!navigator.storage?.persist) {
    storage.textContent = 'This browser may evict cached models when storage runs low.';
    return;
  }
  const persisted = (await navigator.storage.persisted()) || (await navigator.storage.persist());
  const { usage = 0, quota = 0 } = (await navigator.storage.estimate?.()) || {};
  storage.textContent = `${persisted ? 'Persistent storage granted' : 'Storage may be evicted by the browser'}; ` +
    `${formatBytes(usage)} used of ${formatBytes(quota)}.`;
}

// ---- wiring ---------------------------------------------------------------------------------

$('sentiment-run').addEventListener('click', runSentiment);
$('translation-run').addEventListener('click', runTranslation);
$('transcription-run').addEventListener('click', transcribeFile);
$('transcription-record').addEventListener('click', toggleRecording);
$('transcription-srt').addEventListener('click', () => downloadSubtitles('srt'));
$('transcription-vtt').addEventListener('click', () => downloadSubtitles('vtt'));
$('transcription-live').addEventListener('click', toggleLive);
$('transcription-model').addEventListener('input', updateTaskOptions);
for (const [prefix, task] of Object.entries(TASKS)) {
  $(`${prefix}-cancel`).addEventListener('click', () => client.cancel());
  $(`${prefix}-model`).addEventListener('change', () => showFit(prefix, task));
}
runOnCtrlEnter($('sentiment-text'), runSentiment);
runOnCtrlEnter($('translation-text'), runTranslation);
// A new dtype changes which memory the size lines compare with the budget.
$('dtype').addEventListener('change', () => { for (const [prefix, task] of Object.entries(TASKS)) showFit(prefix, task); });
$('cache-clear-all').addEventListener('click', async () => { await client.clearCache(); refreshCache(); });
$('settings').addEventListener('toggle', () => { if ($('settings').open) { refreshCache(); requestPersistence(); } });

applyDefaults();
requestPersistence();
refreshCache();
