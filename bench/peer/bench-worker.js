// The hubside side of bench.html, in a dedicated worker as the page and widgets run it
// (www/worker.js): the threaded build's rayon pool needs a thread that may block, which a
// page's main thread may not. Timing is done here, with the worker's performance.now().
// In: {task, repo, dtype, threads, cache, runs, text, audio, lang (ASR: language; translation: SRC:TGT)}; out: the result fields.
const now = () => performance.now();
if (typeof window === 'undefined') self.onmessage = async ({ data: cfg }) => {
  try { self.postMessage(await run(cfg)); } catch (e) { self.postMessage({ error: String(e && (e.stack || e.message) || e) }); }
};
export async function run({ task, repo, dtype, threads, cache, runs, text, audio, lang, plain }) {
  const TASK = { sentiment: 'sentiment-analysis', translation: 'translation', asr: 'automatic-speech-recognition' }[task];
  const res = { coi_worker: self.crossOriginIsolated };
  const t0 = now();
  // threads=1: a single-thread build (what a page that is not isolated gets); else a threaded one
  // with numThreads (default: what the browser reports). Relaxed SIMD where the browser has it, as
  // www/worker.js chooses (the probe: a module using i32x4.relaxed_dot_i8x16_i7x16_add_s), unless `plain`.
  const relaxed = !plain && WebAssembly.validate(new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 61, 1, 59, 0,
    ...[0, 1, 2].flatMap(() => [0xfd, 0x0c, ...new Array(16).fill(0)]), 0xfd, 0x93, 0x02, 0x0b]));
  const build = (threads === '1' ? '' : 'threads') + (relaxed ? (threads === '1' ? 'relaxed' : '-relaxed') : '');
  const mod = await import(build ? `/pkg/${build}/hubside.js` : '/pkg/hubside.js');
  const exports = await mod.default();
  res.runtime_ms = now() - t0;
  res.build = mod.runtimeInfo().build;
  res.relaxed_simd = mod.runtimeInfo().relaxed_simd;
  // cache: off (every file fetched, nothing kept) | cold (the browser cache emptied first, then
  // filled: a first visit) | warm (whatever an earlier page of this browser profile left: a second visit)
  if (cache === 'cold') res.cleared = await mod.clearCache();
  const t1 = now();
  const pipe = await mod.pipeline(TASK, repo, {
    endpoint: self.location.origin + '/hub', cache: cache !== 'off', dtype,
    ...(threads === '1' || threads === 'default' ? {} : { numThreads: +threads }),
  });
  res.load_ms = now() - t1;
  res.wasm_memory_loaded = exports.memory.buffer.byteLength; // wasm memory never shrinks: the load's peak
  res.threads = mod.runtimeInfo().threads;
  if (cache !== 'off') res.cached = (await mod.cachedModels()).flatMap((m) => m.files.map((f) => ({ file: f.url.split('/resolve/')[1], kind: f.kind, dtype: f.dtype, bytes: f.bytes })));
  res.ready_ms = now() - t0;
  const call = async () => {
    if (task === 'sentiment') return { out: await pipe(text) };
    if (task === 'translation') {
      let first = null, n = 0; const ts = now();
      // lang SRC:TGT: the model's language codes (M2M100 / NLLB).
      const [src_lang, tgt_lang] = lang ? lang.split(':') : [];
      const out = await pipe(text, { max_new_tokens: 64, num_beams: 1, ...(lang ? { src_lang, tgt_lang } : {}),
        on_token: () => { if (first === null) first = now() - ts; n++; } });
      return { out, first_token_ms: first, new_tokens: n };
    }
    return { out: await pipe(audio, { sampling_rate: 16000, ...(lang ? { language: lang, task: 'transcribe' } : {}) }) };
  };
  let t = now(); const first = await call(); res.first_ms = now() - t;
  res.first_token_ms_first = first.first_token_ms ?? null;
  res.first_new_tokens = first.new_tokens;
  res.times = []; res.ttft = []; res.toks = []; res.outputs = [];
  for (let i = 0; i < runs; i++) {
    t = now(); const r = await call(); res.times.push(now() - t);
    if (r.first_token_ms != null) res.ttft.push(r.first_token_ms);
    if (r.new_tokens != null) res.toks.push(r.new_tokens);
    res.outputs.push(r.out);
  }
  res.wasm_memory = exports.memory.buffer.byteLength;
  return res;
}
