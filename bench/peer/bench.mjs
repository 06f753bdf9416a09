// hubside's copy of ../shared/peer-bench/bench.mjs: --hubside takes dtype:threads variants like --tjs
// (threads 1 = the single-thread build; n or default = pkg/threads), and --visits measures each
// hubside variant twice with the browser cache on: emptied first (first visit), then as left (second).
// Drives bench.html in ONE headless Chromium: every measurement is a fresh page (fresh renderer process,
// cache off), systems alternated within each round and the order reversed every other round.
// usage: node bench.mjs [--rounds 3] [--runs 5] [--tasks sentiment,translation,asr-tiny,asr-base]
//                       [--tjs fp32:1,q8:1,fp32:2,q8:2|none] [--hubside fp32:1,q8:1,q8:2|no] [--visits] [--out FILE.jsonl] [--profile] [--smoke]
// Needs: python3 serve.py (started here), /tmp/peer/www (layout.sh), playwright-core in /tmp/peer.
import { createRequire } from 'node:module';
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
const here = path.dirname(fileURLToPath(import.meta.url));
const peer = process.env.PEER_BENCH || path.resolve(here, '../../../shared/peer-bench'); // serve.py, the shared set-up
const { chromium } = createRequire('/tmp/peer/package.json')('playwright-core');

const arg = (k, d) => { const i = process.argv.indexOf(`--${k}`); return i > 0 ? process.argv[i + 1] : d; };
const rounds = +arg('rounds', 3), runs = +arg('runs', 5), profile = process.argv.includes('--profile');
const smoke = process.argv.includes('--smoke'); // functional check only: does not wait for cargo/rustc; never a timing
const tasks = arg('tasks', 'sentiment,translation,asr-tiny,asr-base').split(',');
const tjsArg = arg('tjs', 'fp32:1,q8:1,fp32:2,q8:2');
const tjsVariants = tjsArg === 'none' ? [] : tjsArg.split(',').map((s) => s.split(':'));
const hubsideArg = arg('hubside', 'fp32:1');
const hubsideVariants = hubsideArg === 'no' ? [] : hubsideArg.split(',').map((s) => s.split(':'));
const visits = process.argv.includes('--visits');
const out = arg('out', `/tmp/peer/results/${new Date().toISOString().replace(/[:.]/g, '-')}.jsonl`);
fs.mkdirSync(path.dirname(out), { recursive: true });

const TASKS = {
  sentiment: [['sentiment', 'peer/distilbert-base-random', 'peer/distilbert-base-random', { input: 'short' }],
              ['sentiment', 'peer/distilbert-base-random', 'peer/distilbert-base-random', { input: 'long' }]],
  translation: [['translation', 'peer/marian-en-de-random', 'peer/marian-en-de-random', {}]],
  'asr-tiny': [['asr', 'Systran/faster-whisper-tiny.en', 'peer/whisper-tiny.en', {}]],
  'asr-base': [['asr', 'Systran/faster-whisper-base', 'peer/whisper-base', { lang: 'en' }]],
  // Issue 11's architectures, hubside only (bench/peer/make_issue11_models.py; no ONNX exports): run with --tjs none.
  roberta: [['sentiment', 'peer/roberta-base-random', null, { input: 'short' }], ['sentiment', 'peer/roberta-base-random', null, { input: 'long' }]],
  nllb: [['translation', 'peer/nllb-600m-random', null, { lang: 'eng_Latn:deu_Latn' }]],
  'asr-turbo': [['asr', 'peer/whisper-large-v3-turbo-random', null, { lang: 'en' }]],
};

function busy() {
  for (const name of ['cargo', 'rustc']) {
    try { execFileSync('pgrep', ['-x', name]); return name; } catch { /* not running */ }
  }
  return null;
}
function renderers() { // pid -> {hwm, rss} (kB) for Chromium renderer processes
  const m = new Map();
  for (const pid of fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      if (!fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('--type=renderer')) continue;
      const st = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
      m.set(pid, { hwm: +/VmHWM:\s+(\d+)/.exec(st)[1], rss: +/VmRSS:\s+(\d+)/.exec(st)[1] });
    } catch { /* gone */ }
  }
  return m;
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const cpuStat = () => fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
const ncpu = fs.readFileSync('/proc/cpuinfo', 'utf8').split('\n').filter((l) => l.startsWith('processor')).length;

const port = 8700 + Math.floor(Math.random() * 200);
const server = spawn('python3', [path.join(peer, 'serve.py'), String(port), '/tmp/peer/www'], { stdio: 'ignore' });
await sleep(800);
const udd = fs.mkdtempSync('/tmp/peer-udd-');
const ctx = await chromium.launchPersistentContext(udd, {
  executablePath: '/usr/bin/chromium', headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--disable-features=SpareRendererForSitePerProcess',
    '--enable-blink-features=ForceEagerMeasureMemory',
    '--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1'],
});
const offenders = [];
ctx.on('request', (r) => {
  const u = new URL(r.url());
  if (!(u.protocol === 'data:' || u.protocol === 'blob:' || u.hostname === '127.0.0.1')) offenders.push(r.url());
});
const browserVersion = ctx.browser()?.version() ?? (await (await ctx.newCDPSession(ctx.pages()[0])).send('Browser.getVersion')).product;
for (const p of ctx.pages()) await p.close().catch(() => {});

async function measure(cfg) {
  while (!smoke && busy()) { console.error(`[wait] ${busy()} is running; not timing`); await sleep(30000); }
  for (let i = 0; i < 50 && renderers().size; i++) await sleep(100); // previous page's renderer gone
  // ... and the machine idle again (under a quarter of a core busy; at most 10 s): a page's
  // teardown can occupy a core after its renderer is gone, which is suspected of slowing the next
  // page's 2-thread load (BENCHMARKS.md, issue 10, fourth session).
  for (let i = 0; i < 40; i++) {
    const a = cpuStat(); await sleep(250); const d = cpuStat().map((v, j) => v - a[j]);
    if ((1 - d[3] / d.reduce((x, y) => x + y, 0)) * ncpu < 0.25) break;
  }
  const before = new Set(renderers().keys());
  const page = await ctx.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  const netBytes = {}; // bytes per requested URL path: size of the file served (every request is a full 200 GET)
  page.on('request', (req) => {
    const u = new URL(req.url());
    if (u.hostname !== '127.0.0.1') return;
    try { netBytes[u.pathname] = fs.statSync(path.join('/tmp/peer/www', decodeURIComponent(u.pathname))).size; } catch { netBytes[u.pathname] = 0; }
  });
  let cdp;
  if (profile) {
    cdp = await ctx.newCDPSession(page);
    await cdp.send('Profiler.enable'); await cdp.send('Profiler.setSamplingInterval', { interval: 1000 });
    await cdp.send('Profiler.start');
  }
  const q = new URLSearchParams({ sys: cfg.sys, task: cfg.task, repo: cfg.repo, dtype: cfg.dtype, threads: cfg.threads, runs, ...cfg.extra,
    ...(profile && cfg.threads === '1' ? { inpage: '1' } : {}) }); // the profile records the page's main thread
  const n0 = offenders.length;
  const stat0 = cpuStat();
  await page.goto(`http://127.0.0.1:${port}/bench.html?${q}`);
  let peak = 0, rssNow = 0;
  const poll = setInterval(() => { for (const [pid, s] of renderers()) if (!before.has(pid)) { peak = Math.max(peak, s.hwm); rssNow = s.rss; } }, 200);
  await page.waitForFunction(() => window.__result, null, { timeout: 900_000, polling: 500 });
  clearInterval(poll);
  for (const [pid, s] of renderers()) if (!before.has(pid)) { peak = Math.max(peak, s.hwm); rssNow = s.rss; }
  const result = await page.evaluate(() => window.__result);
  const stat1 = cpuStat(), d = stat1.map((v, i) => v - stat0[i]), tot = d.reduce((a, b) => a + b, 0);
  result.niced_cores = (d[1] / tot) * ncpu;       // other (nice > 0) work during this page, in cores
  result.busy_cores = ((tot - d[3]) / tot) * ncpu; // everything but idle
  if (cdp) {
    const { profile: prof } = await cdp.send('Profiler.stop');
    const f = out.replace(/\.jsonl$/, `-${cfg.sys}-${cfg.task}-${cfg.dtype}-${cfg.threads}.cpuprofile`);
    fs.writeFileSync(f, JSON.stringify(prof)); result.cpuprofile = f;
  }
  await sleep(300);
  await page.close();
  const sum = (pred) => Object.entries(netBytes).filter(([p]) => pred(p)).reduce((a, [, n]) => a + n, 0);
  result.net_bytes = { model: sum((p) => p.startsWith('/hub/')), runtime: sum((p) => p.startsWith('/pkg/') || p.startsWith('/node_modules/')),
    files: Object.fromEntries(Object.entries(netBytes).filter(([p]) => p.startsWith('/hub/')).map(([p, n]) => [p.split('/resolve/main/')[1], n])) };
  return { ...result, renderer_peak_rss_mb: peak / 1024, renderer_rss_after_mb: rssNow / 1024,
           non_local_requests: offenders.length - n0, page_errors: errors, browser: `Chromium ${browserVersion}` };
}

const fmt = (x) => (x == null ? '-' : typeof x === 'number' ? x.toFixed(x < 10 ? 2 : 0) : x);
try {
  for (let r = 0; r < rounds; r++) {
    for (const t of tasks) for (const [task, hsRepo, tjsRepo, extra] of TASKS[t]) {
      // A third field `plain`: the builds without relaxed SIMD (pkg/, pkg/threads/), else the page's choice.
      let cfgs = [...hubsideVariants.map(([dtype, threads, build]) => (build === 'plain'
        ? { sys: 'hubside', task, repo: hsRepo, dtype, threads, extra: { ...extra, plain: '1' }, plain: true }
        : { sys: 'hubside', task, repo: hsRepo, dtype, threads, extra })),
        ...tjsVariants.map(([dtype, threads]) => ({ sys: 'tjs', task, repo: tjsRepo, dtype, threads, extra }))];
      if (r % 2) cfgs = cfgs.reverse();
      // A first and a second visit, in that order, per hubside variant (the cache is the point).
      if (visits) cfgs = cfgs.filter((c) => c.sys === 'hubside').flatMap((c) => ['cold', 'warm'].map((cache) => ({ ...c, extra: { ...c.extra, cache } })));
      for (const cfg of cfgs) {
        const res = await measure(cfg);
        const line = { round: r, smoke, ...cfg, ...res, extra: undefined, input: res.input, cache: cfg.extra.cache ?? 'off' };
        fs.appendFileSync(out, JSON.stringify(line) + '\n');
        console.log(`r${r} ${cfg.sys.padEnd(7)} ${task}/${res.input} ${cfg.dtype}/t${res.threads ?? cfg.threads}${cfg.extra.cache ? '/' + cfg.extra.cache : ''}: ` +
          (res.error ? `ERROR ${res.error.slice(0, 300)}` :
            `load ${fmt(res.load_ms)} first ${fmt(res.first_ms)} med ${fmt(res.median_ms)} min ${fmt(res.min_ms)}` +
            (res.tokens_per_s_median ? ` tok/s ${fmt(res.tokens_per_s_median)} ttft ${fmt(res.ttft_median_ms)} n=${res.new_tokens}` : '') +
            ` peakRSS ${fmt(res.renderer_peak_rss_mb)}MB nonlocal ${res.non_local_requests} niced ${fmt(res.niced_cores)}`));
      }
    }
  }
} finally {
  await ctx.close(); server.kill(); fs.rmSync(udd, { recursive: true, force: true });
  console.log(`results: ${out}; non-127.0.0.1 requests: ${offenders.length}`);
}
