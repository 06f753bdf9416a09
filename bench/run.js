// Runs bench/index.html in headless Chromium against a `--features bench` wasm build and prints
// one JSON line per benchmark. Usage: node bench/run.js RUNS BENCH [BENCH...]
// (BENCH_PKG=DIR: another build of the package, e.g. target/pkg-bench-relaxed.)
// BENCH: sentiment | translation | kernels | transcription:<model repo id>
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { chromium } = createRequire(path.join(root, 'tests/page/package.json'))('playwright-core');
const [runs = '5', ...benches] = process.argv.slice(2);
const cacheHub = path.join(process.env.HUBSIDE_CACHE || path.join(homedir(), '.cache', 'hubside'), 'hub');

const server = spawn(path.join(root, 'target/release/hubside'), ['serve', '--addr', '127.0.0.1:0',
  '--hub', path.join(root, 'tests/fixtures/hub'), ...(existsSync(cacheHub) ? ['--hub', cacheHub] : []),
  '--root', path.join(root, 'bench'), '--root', path.join(root, 'tests/fixtures'), '--pkg', path.resolve(root, process.env.BENCH_PKG || 'target/pkg-bench')],
  { stdio: ['ignore', 'ignore', 'pipe'] });
// The server's stderr may arrive in pieces: match the line on everything read so far.
let stderr = '';
const url = await new Promise((resolve) => server.stderr.on('data', (d) => {
  stderr += String(d);
  const m = stderr.match(/serving on (http:\/\/\S+)\n/);
  if (m) resolve(m[1]);
}));
const context = await chromium.launchPersistentContext(mkdtempSync(path.join(tmpdir(), 'hubside-bench-')), {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1'],
});
try {
  for (const bench of benches.length ? benches : ['sentiment']) {
    const [name, model] = bench.split(':');
    const query = new URLSearchParams({ bench: name, runs,
      tokenizer: '/hub/tiny-random/distilbert-sst2/resolve/main/tokenizer.json', audio: '/audio/jfk16.wav', model: model || '' });
    const page = await context.newPage();
    await page.goto(`${url}/?${query}`);
    await page.waitForFunction(() => window.benchResult, null, { timeout: 900_000 });
    const result = await page.evaluate(() => window.benchResult);
    console.log(JSON.stringify({ bench: name, browser: `Chromium ${context.browser()?.version() ?? ''}`.trim(), ...result }));
    await page.close();
  }
} finally {
  await context.close();
  server.kill();
}
