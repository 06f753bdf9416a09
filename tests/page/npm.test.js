// The npm package as a user gets it: scripts/build-npm.sh assembles it, `npm pack` packs it,
// `npm install ./hubside-x.y.z.tgz` installs it into an empty folder, and a page in that folder
// imports `hubside` (through an import map) and runs a sentiment pipeline in headless Chromium
// against the test Hub mirror: served plainly it gets the relaxed-SIMD build, served cross-origin
// isolated the threaded one, and `init({ build })` any. The package's declarations compile
// against the same install.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { root, startServer, staticServer, launchBrowser, recordRequests, recordFailures, assertOnlyLocal } from './harness.js';

const reference = JSON.parse(readFileSync(path.join(root, 'tests/fixtures/hub/tiny-random/distilbert-sst2/reference.json'))).cases;
const version = readFileSync(path.join(root, 'Cargo.toml'), 'utf8').match(/^version = "(.+)"$/m)[1];
const work = mkdtempSync(path.join(tmpdir(), 'hubside-npm-'));
const app = path.join(work, 'app');
const tsc = path.join(root, 'tests/ts/node_modules/typescript/bin/tsc');

let packed, mirror, site, isolatedSite, context, requests, failures;

before(async () => {
  const packageDir = path.join(work, 'package');
  // test.sh builds pkg/ just before the page tests; take it as it is.
  execFileSync(path.join(root, 'scripts/build-npm.sh'), [packageDir], { cwd: root, env: { ...process.env, HUBSIDE_USE_PKG: '1' }, stdio: ['ignore', 'ignore', 'inherit'] });
  [packed] = JSON.parse(execFileSync('npm', ['pack', '--json', '--pack-destination', work], { cwd: packageDir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }));
  mkdirSync(app);
  // No dependencies, so nothing needs the registry.
  execFileSync('npm', ['install', '--offline', '--no-audit', '--no-fund', path.join(work, packed.filename)], { cwd: app, stdio: ['ignore', 'ignore', 'inherit'] });
  writeFileSync(path.join(app, 'index.html'), `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>app</title>
    <link rel="icon" href="data:,">
    <script type="importmap">{ "imports": { "hubside": "./node_modules/hubside/index.js" } }</script>
    <script type="module">
      import init, { pipeline, supportedTasks, defaultEndpoint, runtimeInfo, availableBuilds } from 'hubside';
      window.classify = async (endpoint, model, text, initOptions, numThreads) => {
        await init(initOptions);
        const classifier = await pipeline('sentiment-analysis', model, { endpoint, numThreads });
        const [top] = await classifier(text);
        const facts = { model: classifier.model, task: classifier.task };
        classifier.dispose();
        return {
          top, facts, tasks: supportedTasks().map((t) => t.task), endpoint: defaultEndpoint(),
          runtime: runtimeInfo(), builds: availableBuilds(),
        };
      };
    </script></head><body></body></html>`);
  mirror = await startServer();
  site = await staticServer(app);
  isolatedSite = await staticServer(app, { headers: { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' } });
  context = await launchBrowser();
  requests = recordRequests(context);
  failures = recordFailures(context);
});

after(async () => {
  await context?.close();
  mirror?.stop();
  site?.stop();
  isolatedSite?.stop();
  rmSync(work, { recursive: true, force: true });
});

test('the tarball holds the module, the wasm, the declarations and the README, with a package.json to match', () => {
  assert.equal(packed.name, 'hubside');
  assert.equal(packed.version, version);
  assert.equal(packed.filename, `hubside-${version}.tgz`);
  const files = packed.files.map((f) => f.path).sort();
  const builds = ['relaxed', 'threads', 'threads-relaxed'];
  const expected = ['README.md', 'hubside.d.ts', 'hubside.js', 'hubside_bg.wasm', 'index.js', 'package.json', ...builds.flatMap((b) => [`${b}/hubside.js`, `${b}/hubside_bg.wasm`])];
  assert.deepEqual(files.filter((f) => !f.includes('/snippets/')), expected.sort());
  // wasm-bindgen-rayon's worker script, next to each threaded build's module.
  for (const b of ['threads', 'threads-relaxed']) {
    assert.ok(files.some((f) => f.startsWith(`${b}/snippets/`) && f.endsWith('.js')), `${b}/snippets: ${files.join(' ')}`);
  }

  const installed = path.join(app, 'node_modules/hubside');
  const manifest = JSON.parse(readFileSync(path.join(installed, 'package.json')));
  assert.equal(manifest.type, 'module');
  // Only wasm-bindgen-rayon's worker scripts do something when imported.
  assert.deepEqual(manifest.sideEffects, ['./snippets/**', './*/snippets/**']);
  assert.deepEqual(manifest.exports['.'], { types: './hubside.d.ts', default: './index.js' });
  assert.equal(manifest.main, './index.js');
  assert.equal(readFileSync(path.join(installed, 'index.js'), 'utf8'), readFileSync(path.join(root, 'npm/index.js'), 'utf8'));
  assert.equal(manifest.types, './hubside.d.ts');
  assert.equal(readFileSync(path.join(installed, 'hubside.d.ts'), 'utf8'), readFileSync(path.join(root, 'npm/hubside.d.ts'), 'utf8'));
  assert.deepEqual(readdirSync(path.join(app, 'node_modules')).filter((d) => !d.startsWith('.')), ['hubside'], 'no dependencies');
});

/** Open the app page on `origin`, classify the first reference text, and return what the page
 * saw with the URLs of the .wasm files it fetched. */
async function classifyOn(origin, initOptions, numThreads) {
  const page = await context.newPage();
  const wasm = [];
  page.on('request', (r) => { if (r.url().endsWith('.wasm')) wasm.push(r.url().slice(origin.length)); });
  await page.goto(`${origin}/index.html`);
  await page.waitForFunction(() => window.classify);
  const ref = reference[0];
  const result = await page.evaluate(([endpoint, text, initOptions, numThreads]) => window.classify(endpoint, 'tiny-random/distilbert-sst2', text, initOptions, numThreads),
    [`${mirror.url}/hub`, ref.text, initOptions, numThreads]);
  await page.close();
  assert.equal(result.top.label, ref.label);
  assert.ok(Math.abs(result.top.score - Math.max(...ref.scores)) < 1e-4, `score ${result.top.score}`);
  return { ...result, wasm };
}

test('a page importing the installed package runs a sentiment pipeline and shows the reference label', async () => {
  const page = await context.newPage();
  await page.goto(`${site.url}/index.html`);
  await page.waitForFunction(() => window.classify);
  const ref = reference[0];
  const result = await page.evaluate(([endpoint, text]) => window.classify(endpoint, 'tiny-random/distilbert-sst2', text), [`${mirror.url}/hub`, ref.text]);
  // Chromium validates relaxed SIMD; the page is not cross-origin isolated: one thread, relaxed.
  assert.deepEqual(result.builds, ['relaxed', 'single']);
  assert.deepEqual(result.runtime, { build: 'single', threads: 1, simd: true, relaxed_simd: true });
  assert.ok(requests.includes(`${site.url}/node_modules/hubside/relaxed/hubside_bg.wasm`), requests.join(' '));
  assert.equal(result.top.label, ref.label);
  assert.ok(Math.abs(result.top.score - Math.max(...ref.scores)) < 1e-4, `score ${result.top.score}`);
  assert.equal(result.facts.model, 'tiny-random/distilbert-sst2');
  assert.equal(result.facts.task, 'text-classification');
  assert.equal(result.endpoint, 'https://huggingface.co');
  assert.ok(result.tasks.includes('text-classification'), JSON.stringify(result.tasks));
  assert.ok(requests.some((u) => u.startsWith(`${mirror.url}/hub/tiny-random/distilbert-sst2/resolve/main/`)));
  await page.close();
});

test('served cross-origin isolated, the same import runs the threaded relaxed-SIMD build on numThreads workers', async () => {
  const result = await classifyOn(isolatedSite.url, undefined, 2);
  assert.deepEqual(result.builds, ['threads-relaxed', 'threads', 'relaxed', 'single']);
  assert.deepEqual(result.runtime, { build: 'threads', threads: 2, simd: true, relaxed_simd: true });
  assert.deepEqual([...new Set(result.wasm)], ['/node_modules/hubside/threads-relaxed/hubside_bg.wasm']);
});

test('init({ build }) loads that build only, and a bare .wasm URL means the single-thread build', async () => {
  const single = await classifyOn(site.url, { build: 'single' });
  assert.deepEqual(single.runtime, { build: 'single', threads: 1, simd: true, relaxed_simd: false });
  assert.deepEqual(single.wasm, ['/node_modules/hubside/hubside_bg.wasm']);
  const threads = await classifyOn(isolatedSite.url, { build: 'threads' }, 1);
  assert.deepEqual(threads.runtime, { build: 'threads', threads: 1, simd: true, relaxed_simd: false });
  const bare = await classifyOn(site.url, `${site.url}/node_modules/hubside/hubside_bg.wasm`);
  assert.equal(bare.runtime.relaxed_simd, false);
  // Results agree across builds within the reference tolerance (checked in classifyOn).
  const page = await context.newPage();
  await page.goto(`${site.url}/index.html`);
  await page.waitForFunction(() => window.classify);
  const error = await page.evaluate(() => window.classify('', '', '', { build: 'gpu' }).then(() => null, (e) => ({ kind: e.kind, message: e.message })));
  await page.close();
  assert.equal(error.kind, 'input');
  assert.match(error.message, /unknown build 'gpu'.*threads-relaxed, threads, relaxed, single/);
});

test('the declarations compile (tsc --strict) against the installed package', { skip: !existsSync(tsc) && 'no TypeScript: npm ci in tests/ts' }, () => {
  copyFileSync(path.join(root, 'tests/ts/usage.ts'), path.join(app, 'usage.ts'));
  // Resolved the way bundlers do: node_modules/hubside, its `exports` and their `types`.
  writeFileSync(path.join(app, 'tsconfig.json'), JSON.stringify({
    compilerOptions: { strict: true, noEmit: true, target: 'es2022', module: 'es2022', moduleResolution: 'bundler', lib: ['es2022', 'dom'], types: [] },
    files: ['usage.ts'],
  }));
  execFileSync(process.execPath, [tsc, '-p', app], { stdio: ['ignore', 'inherit', 'inherit'] });
});

test('every request stayed on 127.0.0.1 and none failed', () => {
  assertOnlyLocal(assert, requests);
  assert.deepEqual(site.seen.filter((line) => !line.startsWith('200 ')), []);
  assert.deepEqual(isolatedSite.seen.filter((line) => !line.startsWith('200 ')), []);
  assert.deepEqual(failures, []);
});
