// The npm package as a user gets it: scripts/build-npm.sh assembles it, `npm pack` packs it,
// `npm install ./hubside-x.y.z.tgz` installs it into an empty folder, and a page in that folder
// imports `hubside` (through an import map) and runs a sentiment pipeline in headless Chromium
// against the test Hub mirror. The package's declarations compile against the same install.
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

let packed, mirror, site, context, requests, failures;

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
    <script type="importmap">{ "imports": { "hubside": "./node_modules/hubside/hubside.js" } }</script>
    <script type="module">
      import init, { pipeline, supportedTasks, defaultEndpoint } from 'hubside';
      window.classify = async (endpoint, model, text) => {
        await init();
        const classifier = await pipeline('sentiment-analysis', model, { endpoint });
        const [top] = await classifier(text);
        const facts = { model: classifier.model, task: classifier.task };
        classifier.dispose();
        return { top, facts, tasks: supportedTasks().map((t) => t.task), endpoint: defaultEndpoint() };
      };
    </script></head><body></body></html>`);
  mirror = await startServer();
  site = await staticServer(app);
  context = await launchBrowser();
  requests = recordRequests(context);
  failures = recordFailures(context);
});

after(async () => {
  await context?.close();
  mirror?.stop();
  site?.stop();
  rmSync(work, { recursive: true, force: true });
});

test('the tarball holds the module, the wasm, the declarations and the README, with a package.json to match', () => {
  assert.equal(packed.name, 'hubside');
  assert.equal(packed.version, version);
  assert.equal(packed.filename, `hubside-${version}.tgz`);
  const files = packed.files.map((f) => f.path).sort();
  assert.deepEqual(files, ['README.md', 'hubside.d.ts', 'hubside.js', 'hubside_bg.wasm', 'package.json']);

  const installed = path.join(app, 'node_modules/hubside');
  const manifest = JSON.parse(readFileSync(path.join(installed, 'package.json')));
  assert.equal(manifest.type, 'module');
  assert.equal(manifest.sideEffects, false);
  assert.deepEqual(manifest.exports['.'], { types: './hubside.d.ts', default: './hubside.js' });
  assert.equal(manifest.types, './hubside.d.ts');
  assert.equal(readFileSync(path.join(installed, 'hubside.d.ts'), 'utf8'), readFileSync(path.join(root, 'npm/hubside.d.ts'), 'utf8'));
  assert.deepEqual(readdirSync(path.join(app, 'node_modules')).filter((d) => !d.startsWith('.')), ['hubside'], 'no dependencies');
});

test('a page importing the installed package runs a sentiment pipeline and shows the reference label', async () => {
  const page = await context.newPage();
  await page.goto(`${site.url}/index.html`);
  await page.waitForFunction(() => window.classify);
  const ref = reference[0];
  const result = await page.evaluate(([endpoint, text]) => window.classify(endpoint, 'tiny-random/distilbert-sst2', text), [`${mirror.url}/hub`, ref.text]);
  assert.equal(result.top.label, ref.label);
  assert.ok(Math.abs(result.top.score - Math.max(...ref.scores)) < 1e-4, `score ${result.top.score}`);
  assert.equal(result.facts.model, 'tiny-random/distilbert-sst2');
  assert.equal(result.facts.task, 'text-classification');
  assert.equal(result.endpoint, 'https://huggingface.co');
  assert.ok(result.tasks.includes('text-classification'), JSON.stringify(result.tasks));
  assert.ok(requests.includes(`${site.url}/node_modules/hubside/hubside_bg.wasm`), 'the wasm next to the installed module');
  assert.ok(requests.some((u) => u.startsWith(`${mirror.url}/hub/tiny-random/distilbert-sst2/resolve/main/`)));
  await page.close();
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
  assert.deepEqual(failures, []);
});
