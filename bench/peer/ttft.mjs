// Marian's time to first token, A/B between hubside package builds, in one headless Chromium (a
// fresh page per measurement, builds alternated, order reversed every other round). Finer than
// bench.mjs for this one figure: 20 one-token translations per page, plus the cost of the second
// token and the decode rate over 64.
// usage: node bench/peer/ttft.mjs --pkgs NAME=DIR,NAME=DIR [--dtype q8] [--threads 1] [--rounds 3] [--runs 20]
//   DIR: a build's output (pkg/relaxed, pkg/threads-relaxed, or another checkout's); each is
//   copied to /tmp/peer/www/pkg/NAME (lay out /tmp/peer/www with layout.sh first).
import { createRequire } from 'node:module';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
const here = path.dirname(fileURLToPath(import.meta.url));
const peer = process.env.PEER_BENCH || path.resolve(here, '../../../shared/peer-bench');
const { chromium } = createRequire('/tmp/peer/package.json')('playwright-core');
const arg = (k, d) => { const i = process.argv.indexOf(`--${k}`); return i > 0 ? process.argv[i + 1] : d; };
const pkgs = arg('pkgs', '').split(',').filter(Boolean).map((p) => p.split('='));
if (!pkgs.length) { console.error('usage: node bench/peer/ttft.mjs --pkgs NAME=DIR[,NAME=DIR...] [--dtype q8] [--threads 1] [--rounds 3] [--runs 20]'); process.exit(2); }
const [dtype, threads, rounds, runs] = [arg('dtype', 'q8'), arg('threads', '1'), +arg('rounds', 3), +arg('runs', 20)];
const www = '/tmp/peer/www';
for (const f of ['ttft.html', 'ttft-worker.js']) { fs.rmSync(path.join(www, f), { force: true }); fs.symlinkSync(path.join(here, f), path.join(www, f)); }
for (const [name, dir] of pkgs) { fs.rmSync(path.join(www, 'pkg', name), { recursive: true, force: true }); fs.cpSync(dir, path.join(www, 'pkg', name), { recursive: true }); }
const port = 8900 + Math.floor(Math.random() * 90);
const server = spawn('python3', [path.join(peer, 'serve.py'), String(port), www], { stdio: 'ignore' });
await new Promise((r) => setTimeout(r, 800));
const udd = fs.mkdtempSync('/tmp/peer-udd-');
const ctx = await chromium.launchPersistentContext(udd, { executablePath: '/usr/bin/chromium', headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1'] });
const results = Object.fromEntries(pkgs.map(([name]) => [name, []]));
try {
  for (let r = 0; r < rounds; r++) {
    for (const [name] of r % 2 ? [...pkgs].reverse() : pkgs) {
      const page = await ctx.newPage();
      await page.goto(`http://127.0.0.1:${port}/ttft.html?${new URLSearchParams({ pkg: name, dtype, threads, runs })}`);
      await page.waitForFunction(() => window.__result, null, { timeout: 600_000, polling: 200 });
      const res = await page.evaluate(() => window.__result);
      await page.close();
      if (res.error) throw new Error(`${name}: ${res.error}`);
      results[name].push(res);
      console.log(JSON.stringify({ round: r, pkg: name, dtype, threads, ...res }));
    }
  }
} finally {
  await ctx.close(); server.kill(); fs.rmSync(udd, { recursive: true, force: true });
}
const median = (a) => a.slice().sort((x, y) => x - y)[a.length >> 1];
for (const [name, rs] of Object.entries(results)) {
  console.log(`${name} ${dtype} t${threads}: first token ${median(rs.map((r) => r.first_token_ms)).toFixed(1)} ms, ` +
    `second ${median(rs.map((r) => r.second_token_ms)).toFixed(1)} ms, ${median(rs.map((r) => r.tokens_per_s_64)).toFixed(1)} tokens/s over 64 (medians of ${rs.length} pages)`);
}
