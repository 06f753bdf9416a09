// Runs every model off the main thread, for the page and the widgets (through client.js).
// Messages in, each with a numeric `id`:
//   {type: 'info'}                                         the package's defaults
//   {type: 'runtime'}                                      the build and threads (runtimeInfo())
//   {type: 'load', task, model, endpoint, revision, dtype, file, max_memory, numThreads}  load a model, or reuse it
//   {type: 'model-info', task, model, endpoint, revision}  its download size and memory (modelInfo)
//   {type: 'run', task, model, endpoint, revision, input, options, stream}
//   {type: 'cached'} | {type: 'clear-cache', model}        the browser cache
//   {type: 'subtitles', output, format, options}           a transcription as .srt/.vtt text
//   {type: 'live', task, model, endpoint, revision, options}  start a live transcription session;
//     then {type: 'live-push', live: id, samples, sampleRate} (no reply) and {type: 'live-finish',
//     live: id}; updates {committed, tentative, ...} come as partials of the 'live' request, its
//     result ({text, chunks, language}) after live-finish
// Out, with the same `id`: {type: 'progress', event} and {type: 'partial', value} while it
// works, then {type: 'result', value, seconds?} or {type: 'error', error: {message, kind}}.
// Pipelines are kept per task + model + endpoint + revision (empty ones mean the package's
// defaults), so widgets and the page share one loaded model.
// The package's entry (pkg/index.js) picks the fastest build this browser runs: pkg/threads*/
// compute on a pool of Web Workers sharing the wasm memory, which needs SharedArrayBuffer, which
// only a cross-origin isolated page has; pkg/*relaxed/ use relaxed SIMD's 8-bit dot products
// where the engine has them; pkg/ runs everywhere (one thread: this one, so the page's main
// thread stays free either way). Its exports are bound to that build once init() resolved.
import * as hubside from './pkg/index.js';

// Started before anything else: messages that come while the package loads wait for it.
const ready = hubside.default();
const pipelines = new Map();

// The package's defaults; they never change, so they are read once.
let info;
const packageInfo = () => (info ??= {
  endpoint: hubside.defaultEndpoint(), tasks: hubside.supportedTasks(), max_memory: hubside.defaultMaxMemory(),
});

/** What the page and widgets are told about a loaded pipeline: its canonical task name, the
 * model loaded, (speech recognition only) whether the model knows more than English, and how
 * many threads compute. */
const pipelineFacts = (run) => ({ task: run.task, model: run.model, multilingual: run.multilingual, threads: run.threads });

/** `msg`'s pipeline with the defaults filled in: canonical task name, model, endpoint, revision. */
function specOf(msg) {
  const { endpoint, tasks } = packageInfo();
  const entry = tasks.find((t) => t.task === msg.task || t.aliases.includes(msg.task));
  return {
    // Other names (translation_en_to_de: a T5 model's languages) stay as they are.
    task: entry?.task ?? msg.task,
    // None for a name outside the table: pipeline() then takes the task's default itself.
    model: msg.model || entry?.default_model || undefined,
    endpoint: msg.endpoint || endpoint,
    revision: msg.revision || 'main',
    // The package's default when not chosen: fp32, or the file's own blocks for a ggml file.
    dtype: msg.dtype || undefined,
    file: msg.file || undefined,
  };
}

const keyOf = (spec) => JSON.stringify([spec.task, spec.model, spec.endpoint, spec.revision, spec.dtype, spec.file]);

function errorOf(e) {
  // A trap (out of memory, a bug) leaves the wasm instance unusable: the client replaces us.
  const kind = e instanceof WebAssembly.RuntimeError ? 'crash' : (e && e.kind) || 'error';
  return { message: e && e.message ? e.message : String(e), kind };
}

async function load(msg, post) {
  const spec = specOf(msg);
  const key = keyOf(spec);
  if (!pipelines.has(key)) {
    const started = performance.now();
    const loading = hubside.pipeline(spec.task, spec.model, {
      endpoint: spec.endpoint,
      revision: spec.revision,
      dtype: spec.dtype,
      file: spec.file,
      // A budget only for this load: a model loaded once stays usable whatever it is set to later.
      max_memory: msg.max_memory || undefined,
      progress_callback: (event) => post({ type: 'progress', event }),
      // The threaded build's pool starts with the first pipeline; one client sends one count.
      numThreads: msg.numThreads,
    }).then((run) => ({ run, facts: pipelineFacts(run), seconds: (performance.now() - started) / 1000 }));
    pipelines.set(key, loading);
    loading.catch(() => pipelines.delete(key)); // a failed load can be retried
  }
  const { facts, seconds } = await pipelines.get(key);
  const { build, relaxed_simd } = hubside.runtimeInfo();
  return { key, seconds, memory: hubside.wasmMemoryBytes(), build, relaxed_simd, ...facts };
}

async function runModel(msg, post) {
  const { run, facts } = await pipelines.get(keyOf(specOf(msg))) || {};
  if (!run) throw Object.assign(new Error('load the model before running it'), { kind: 'input' });
  const options = { ...(msg.options || {}) };
  // Streaming: translation's growing text, transcription's per-window partials (each task
  // refuses the other's option).
  if (msg.stream && facts.task === 'translation') {
    options.on_token = (text, index) => post({ type: 'partial', value: { text, index } });
  } else if (msg.stream && facts.task === 'automatic-speech-recognition') {
    options.on_partial = (partial) => post({ type: 'partial', value: partial });
  }
  const started = performance.now();
  const value = await run(msg.input, options);
  return { value, seconds: (performance.now() - started) / 1000 };
}

// Live sessions by the id of their 'live' request. Pushed audio waits in `pending` until the
// worker is free: everything that arrived during a decode goes into the next push together, so
// decoding never falls behind the microphone by more than one decode.
const live = new Map();

// Registered before any await, so audio pushed while the session starts waits in `pending`.
function startLive(msg, post) {
  const entry = { session: null, pending: [], sampleRate: 16000, post, scheduled: false, finishing: false };
  live.set(msg.id, entry);
  return (async () => {
    const { run } = await pipelines.get(keyOf(specOf(msg))) || {};
    if (!run) throw Object.assign(new Error('load the model before running it'), { kind: 'input' });
    if (typeof run.live !== 'function') throw Object.assign(new Error('live transcription needs a speech recognition model'), { kind: 'input' });
    entry.session = run.live(msg.options || {});
    if (entry.finishing) finishLive({ live: msg.id });
    else drainLive(msg.id);
  })().catch((e) => {
    live.delete(msg.id);
    throw e;
  });
}

function drainLive(id) {
  const entry = live.get(id);
  if (!entry) return;
  entry.scheduled = false;
  if (!entry.session || !entry.pending.length) return;
  const length = entry.pending.reduce((n, p) => n + p.length, 0);
  const samples = new Float32Array(length);
  let offset = 0;
  for (const piece of entry.pending) {
    samples.set(piece, offset);
    offset += piece.length;
  }
  entry.pending = [];
  try {
    entry.post({ type: 'partial', value: entry.session.push(samples, entry.sampleRate) });
  } catch (e) {
    live.delete(id);
    entry.post({ type: 'error', error: errorOf(e) });
  }
}

function pushLive(msg) {
  const entry = live.get(msg.live);
  if (!entry) return;
  entry.sampleRate = msg.sampleRate;
  entry.pending.push(msg.samples);
  if (!entry.scheduled) {
    entry.scheduled = true;
    setTimeout(() => drainLive(msg.live), 0);
  }
}

function finishLive(msg) {
  const entry = live.get(msg.live);
  if (!entry) return;
  if (!entry.session) {
    entry.finishing = true; // finished once the session has started
    return;
  }
  drainLive(msg.live);
  if (!live.has(msg.live)) return; // the last push failed and said so
  live.delete(msg.live);
  try {
    entry.post({ type: 'result', value: entry.session.finish() });
  } catch (e) {
    entry.post({ type: 'error', error: errorOf(e) });
  } finally {
    entry.session.free();
  }
}

self.onmessage = async ({ data: msg }) => {
  const post = (reply) => self.postMessage({ id: msg.id, ...reply });
  // Live audio has no reply of its own and must keep its order: handled before any await.
  if (msg.type === 'live-push' && hubside) return pushLive(msg);
  if (msg.type === 'live-finish' && hubside) return finishLive(msg);
  if (msg.type === 'live' && hubside) return startLive(msg, post).catch((e) => post({ type: 'error', error: errorOf(e) }));
  try {
    await ready;
    if (msg.type === 'info') post({ type: 'result', value: packageInfo() });
    else if (msg.type === 'runtime') post({ type: 'result', value: hubside.runtimeInfo() });
    else if (msg.type === 'load') post({ type: 'result', value: await load(msg, post) });
    else if (msg.type === 'model-info') {
      const spec = specOf(msg);
      post({ type: 'result', value: await hubside.modelInfo(spec.model, { endpoint: spec.endpoint, revision: spec.revision }) });
    }
    else if (msg.type === 'run') post({ type: 'result', ...await runModel(msg, post) });
    else if (msg.type === 'subtitles') post({ type: 'result', value: hubside.subtitles(msg.output, msg.format, msg.options) });
    else if (msg.type === 'live') await startLive(msg, post);
    else if (msg.type === 'live-push') pushLive(msg);
    else if (msg.type === 'live-finish') finishLive(msg);
    else if (msg.type === 'cached') post({ type: 'result', value: await hubside.cachedModels() });
    else if (msg.type === 'clear-cache') post({ type: 'result', value: await hubside.clearCache(msg.model || undefined) });
    else throw Object.assign(new Error(`unknown message type '${msg.type}'`), { kind: 'input' });
  } catch (e) {
    post({ type: 'error', error: errorOf(e) });
  }
};
