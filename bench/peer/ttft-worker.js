// The hubside side of ttft.html, in a dedicated worker as www/worker.js runs it: loads Marian
// (peer/marian-en-de-random) from one package dir and times greedy translations of the peer
// input with 1, 2 and 64 new tokens. In: {pkg, dtype, threads, runs}; out: medians in ms.
const now = () => performance.now();
self.onmessage = async ({ data: { pkg, dtype, threads, runs } }) => {
  try {
    const mod = await import(`/pkg/${pkg ? pkg + '/' : ''}hubside.js`);
    await mod.default();
    const { translation: text } = await (await fetch('/inputs.json')).json();
    const pipe = await mod.pipeline('translation', 'peer/marian-en-de-random', {
      endpoint: self.location.origin + '/hub', cache: false, dtype, ...(+threads > 1 ? { numThreads: +threads } : {}),
    });
    const info = mod.runtimeInfo();
    const median = (a) => a.slice().sort((x, y) => x - y)[a.length >> 1];
    const time = async (tokens, n) => {
      const totals = [], firsts = [];
      for (let i = 0; i < n; i++) {
        let first = null; const t = now();
        await pipe(text, { max_new_tokens: tokens, num_beams: 1, on_token: () => { first ??= now() - t; } });
        totals.push(now() - t); firsts.push(first);
      }
      return { total: median(totals), first: median(firsts) };
    };
    await time(2, 2); // warm-up
    const one = await time(1, runs), two = await time(2, runs), long = await time(64, 3);
    self.postMessage({ build: info.build, threads: info.threads, relaxed_simd: info.relaxed_simd,
      first_token_ms: one.first, second_token_ms: two.total - one.total, tokens_per_s_64: 63 / ((long.total - long.first) / 1000) });
  } catch (e) { self.postMessage({ error: String(e && (e.stack || e.message) || e) }); }
};
