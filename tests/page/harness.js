// Shared set-up for the page tests: start `hubside serve` on a free port with the fixtures
// mirror, and launch Debian's Chromium locked to 127.0.0.1.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, mkdirSync } from 'node:fs';
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
