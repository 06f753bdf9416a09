// Runs bench/index.html in headless Chromium against a `--features bench` wasm build and prints
// the result as one JSON line. Usage: node bench/run.js [runs]
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { chromium } = createRequire(path.join(root, 'tests/page/package.json'))('playwright-core');
const runs = Number(process.argv[2] || 10);

const server = spawn(path.join(root, 'target/release/hubside'), ['serve', '--addr', '127.0.0.1:0',
  '--hub', path.join(root, 'tests/fixtures/hub'), '--root', path.join(root, 'bench'), '--pkg', path.join(root, 'target/pkg-bench')],
  { stdio: ['ignore', 'ignore', 'pipe'] });
const url = await new Promise((resolve) => server.stderr.on('data', (d) => {
  const m = String(d).match(/serving on (http:\/\/\S+)/);
  if (m) resolve(m[1]);
}));
const context = await chromium.launchPersistentContext(mkdtempSync(path.join(tmpdir(), 'hubside-bench-')), {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1'],
});
try {
  const page = await context.newPage();
  const tokenizer = '/hub/tiny-random/distilbert-sst2/resolve/main/tokenizer.json';
  await page.goto(`${url}/?runs=${runs}&tokenizer=${encodeURIComponent(tokenizer)}`);
  await page.waitForFunction(() => window.benchResult, null, { timeout: 600_000 });
  const result = await page.evaluate(() => window.benchResult);
  result.browser = context.browser()?.version() || (await page.evaluate(() => navigator.userAgent));
  console.log(JSON.stringify(result));
} finally {
  await context.close();
  server.kill();
}
