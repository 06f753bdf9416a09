// Shared set-up for the page tests: start `hubside serve` on a free port with the fixtures
// mirror, and launch Debian's Chromium locked to 127.0.0.1.
import { spawn } from 'node:child_process';
import { createReadStream, existsSync, mkdtempSync, mkdirSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { homedir, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const outputDir = path.join(root, 'test-output', 'page');
mkdirSync(outputDir, { recursive: true });

/** Real Whisper weights fetched by scripts/fetch-whisper.sh, mirrored next to the fixtures. */
export const cacheHub = path.join(process.env.HUBSIDE_CACHE || path.join(homedir(), '.cache', 'hubside'), 'hub');

export async function startServer(args = []) {
  const exe = process.env.HUBSIDE_BIN || path.join(root, 'target', 'release', 'hubside');
  const hubs = existsSync(cacheHub) ? ['--hub', cacheHub] : [];
  const child = spawn(exe, ['serve', '--addr', '127.0.0.1:0', '--hub', path.join(root, 'tests/fixtures/hub'), ...hubs,
    '--root', path.join(root, 'www'), '--pkg', path.join(root, 'pkg'), ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  const url = await new Promise((resolve, reject) => {
    let seen = '';
    child.stderr.on('data', (chunk) => {
      seen += chunk;
      const match = seen.match(/serving on (http:\/\/\S+)/);
      if (match) resolve(match[1]);
    });
    child.on('exit', (code) => reject(new Error(`hubside serve exited (${code}): ${seen}`)));
  });
  return { url, stop: () => child.kill() };
}

export async function launchBrowser(extraArgs = []) {
  const userDataDir = mkdtempSync(path.join(tmpdir(), 'hubside-chromium-'));
  return chromium.launchPersistentContext(userDataDir, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1', ...extraArgs],
  });
}

/** Record every request URL so tests can assert nothing leaves 127.0.0.1. */
export function recordRequests(context) {
  const urls = [];
  context.on('request', (request) => urls.push(request.url()));
  return urls;
}

export function assertOnlyLocal(assert, urls) {
  const foreign = urls.filter((u) => !/^(http:\/\/127\.0\.0\.1[:/]|blob:|data:)/.test(u));
  assert.deepEqual(foreign, [], 'every request goes to 127.0.0.1');
}

const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.css': 'text/css', '.wasm': 'application/wasm', '.md': 'text/markdown', '.json': 'application/json' };

/** The plainest static server: files and content types; `cors` adds Access-Control-Allow-Origin
 * (as GitHub Pages or a CDN sends) so another origin can import the widgets; `headers` go on
 * every response. */
export function staticServer(dir, { cors = false, headers: extra = {} } = {}) {
  const seen = [];
  const server = createServer((req, res) => {
    let rel = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    if (rel.endsWith('/')) rel += 'index.html';
    const file = path.join(dir, path.normalize(rel));
    let ok = file.startsWith(dir + path.sep);
    try { ok = ok && statSync(file).isFile(); } catch { ok = false; }
    seen.push(`${ok ? 200 : 404} ${rel}`);
    const headers = { ...extra, ...(cors ? { 'Access-Control-Allow-Origin': '*' } : {}) };
    if (!ok) {
      res.writeHead(404, { 'Content-Type': 'text/plain', ...headers }).end('not found');
      return;
    }
    res.writeHead(200, { 'Content-Type': TYPES[path.extname(file)] || 'application/octet-stream', 'Content-Length': statSync(file).size, ...headers });
    createReadStream(file).pipe(res);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({
    url: `http://127.0.0.1:${server.address().port}`, seen, stop: () => { server.close(); server.closeAllConnections(); },
  })));
}

/** Every response with a 4xx/5xx status, every request that got no answer, and every console
 * error, as lines, so tests can assert that nothing failed. */
export function recordFailures(context) {
  const failures = [];
  context.on('response', (r) => { if (r.status() >= 400) failures.push(`${r.status()} ${r.url()}`); });
  context.on('requestfailed', (r) => failures.push(`no answer: ${r.url()} (${r.failure()?.errorText})`));
  context.on('console', (m) => { if (m.type() === 'error') failures.push(`console error: ${m.text()}`); });
  return failures;
}
