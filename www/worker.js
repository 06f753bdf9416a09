// Runs every model off the main thread. Messages in: {id, type: 'load'|'run'|'dispose', ...};
// out: {id, type: 'progress'|'partial'|'result'|'error', ...}. Pipelines are kept per
// task + model + endpoint + revision, so widgets and the page share one loaded model.
import init, { pipeline, wasmMemoryBytes, cachedModels, clearCache } from './pkg/hubside.js';

const ready = init();
const pipelines = new Map();

const keyOf = ({ task, model, endpoint, revision }) => JSON.stringify([task, model, endpoint || '', revision || '']);

function errorOf(e) {
  // A trap (out of memory, a bug) leaves the wasm instance unusable: the client replaces us.
  const kind = e instanceof WebAssembly.RuntimeError ? 'crash' : (e && e.kind) || 'error';
  return { message: e && e.message ? e.message : String(e), kind };
}

async function load(msg, post) {
  const key = keyOf(msg);
  if (!pipelines.has(key)) {
    const started = performance.now();
    const loading = pipeline(msg.task, msg.model, {
      endpoint: msg.endpoint || undefined,
      revision: msg.revision || undefined,
      progress_callback: (event) => post({ type: 'progress', event }),
    }).then((run) => ({ run, seconds: (performance.now() - started) / 1000 }));
    pipelines.set(key, loading);
    loading.catch(() => pipelines.delete(key)); // a failed load can be retried
  }
  const { seconds } = await pipelines.get(key);
  return { key, seconds, memory: wasmMemoryBytes() };
}

self.onmessage = async ({ data: msg }) => {
  const post = (reply) => self.postMessage({ id: msg.id, ...reply });
  try {
    await ready;
    if (msg.type === 'load') {
      post({ type: 'result', value: await load(msg, post) });
    } else if (msg.type === 'run') {
      const { run } = await pipelines.get(keyOf(msg)) || {};
      if (!run) throw new Error('model not loaded');
      const options = { ...(msg.options || {}) };
      // Streaming: translation's growing text and transcription's per-window partials.
      if (msg.stream) {
        options.on_token = (text, index) => post({ type: 'partial', value: { text, index } });
        options.on_partial = (partial) => post({ type: 'partial', value: partial });
      }
      const started = performance.now();
      const value = await run(msg.input, options);
      post({ type: 'result', value, seconds: (performance.now() - started) / 1000 });
    } else if (msg.type === 'cached') {
      post({ type: 'result', value: await cachedModels() });
    } else if (msg.type === 'clear-cache') {
      post({ type: 'result', value: await clearCache(msg.model || undefined) });
    } else if (msg.type === 'dispose') {
      const entry = await pipelines.get(keyOf(msg));
      entry?.run.dispose();
      pipelines.delete(keyOf(msg));
      post({ type: 'result', value: true });
    }
  } catch (e) {
    post({ type: 'error', error: errorOf(e) });
  }
};
