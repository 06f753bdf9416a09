// dist/ (scripts/build-dist.sh) on a plain static file server, with the models from a separate
// `hubside serve` mirror: the page works with nothing else (the package's defaults, until the
// endpoint is changed in the settings) and no request fails, the widgets work there and from
// another origin, and README.md carries the Space front matter.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { root, outputDir, startServer, staticServer, launchBrowser, recordRequests, recordFailures, assertOnlyLocal } from './harness.js';

const reference = JSON.parse(readFileSync(path.join(root, 'tests/fixtures/hub/tiny-random/distilbert-sst2/reference.json'))).cases;
const dist = path.join(mkdtempSync(path.join(tmpdir(), 'hubside-dist-')), 'dist');

let mirror, site, context, requests, failures;
const pageErrors = [];

before(async () => {
  // test.sh builds pkg/ just before the page tests; take it as it is.
  execFileSync(path.join(root, 'scripts/build-dist.sh'), [dist], { cwd: root, env: { ...process.env, HUBSIDE_USE_PKG: '1' }, stdio: ['ignore', 'ignore', 'inherit'] });
  mirror = await startServer();
  site = await staticServer(dist, { cors: true });
  context = await launchBrowser();
  requests = recordRequests(context);
  failures = recordFailures(context);
  context.on('page', (p) => p.on('pageerror', (e) => pageErrors.push(e.message)));
});

after(async () => {
  await context?.close();
  mirror?.stop();
  site?.stop();
  rmSync(path.dirname(dist), { recursive: true, force: true });
});

test('dist/ holds the page, the widgets, the wasm package and a Space README', () => {
  for (const f of ['index.html', 'app.js', 'client.js', 'ui.js', 'worker.js', 'widgets.js', 'style.css', 'example.html', 'pkg/index.js', 'pkg/hubside.js', 'pkg/hubside_bg.wasm', 'pkg/relaxed/hubside_bg.wasm', 'pkg/threads-relaxed/hubside_bg.wasm', 'README.md']) {
    assert.ok(statSync(path.join(dist, f)).size > 0, f);
  }
  // The copies are the www/ files as they were at build time.
  for (const f of ['index.html', 'worker.js', 'widgets.js', 'ui.js']) {
    assert.equal(readFileSync(path.join(dist, f), 'utf8'), readFileSync(path.join(root, 'www', f), 'utf8'), f);
  }
  const readme = readFileSync(path.join(dist, 'README.md'), 'utf8');
  const match = readme.match(/^---\n([\s\S]*?)\n---\n([\s\S]*)$/);
  assert.ok(match, 'README.md starts with YAML front matter');
  // The front matter is flat `key: value` lines plus one nested map; read it as such.
  const meta = {};
  let parent = null;
  for (const line of match[1].split('\n')) {
    const nested = line.match(/^ {2}([\w-]+): (.*)$/);
    const top = line.match(/^([\w-]+):(?: (.*))?$/);
    if (nested && parent) meta[parent][nested[1]] = nested[2];
    else if (top && top[2] === undefined) meta[parent = top[1]] = {};
    else if (top) { meta[top[1]] = top[2]; parent = null; } else assert.fail(`unexpected front matter line: ${line}`);
  }
  assert.equal(meta.sdk, 'static');
  assert.equal(meta.app_file, 'index.html');
  assert.equal(meta.pinned, 'false');
  for (const key of ['title', 'emoji', 'colorFrom', 'colorTo']) assert.ok(meta[key], key);
  const colors = ['red', 'yellow', 'green', 'blue', 'indigo', 'purple', 'pink', 'gray'];
  assert.ok(colors.includes(meta.colorFrom) && colors.includes(meta.colorTo), 'Space colors');
  assert.deepEqual(meta.custom_headers, {
    'cross-origin-embedder-policy': 'require-corp',
    'cross-origin-opener-policy': 'same-origin',
    'cross-origin-resource-policy': 'cross-origin',
  });
  assert.match(match[2], /static Space/);
});

test('the page from dist/ on a plain static server runs sentiment analysis against the mirror', async () => {
  const page = await context.newPage();
  await page.goto(`${site.url}/index.html`);
  // A static host injects no mirror: the endpoint and the models are the package's defaults.
  await page.waitForFunction(() => document.getElementById('endpoint').value && document.getElementById('sentiment-model').value);
  assert.equal(await page.inputValue('#endpoint'), 'https://huggingface.co');
  assert.equal(await page.inputValue('#sentiment-model'), 'distilbert/distilbert-base-uncased-finetuned-sst-2-english');
  await page.waitForFunction(() => document.getElementById('cache-list').childElementCount > 0); // the worker answered
  assert.deepEqual(failures, [], 'no request failed and nothing was logged as an error');

  await page.$eval('#settings', (d) => { d.open = true; });
  await page.fill('#endpoint', `${mirror.url}/hub`);
  await page.$eval('#endpoint', (e) => e.dispatchEvent(new Event('change', { bubbles: true })));
  const ref = reference[0];
  await page.fill('#sentiment-model', 'tiny-random/distilbert-sst2');
  await page.fill('#sentiment-text', ref.text);
  await page.click('#sentiment-run');
  await page.waitForSelector('#sentiment-result li.top', { timeout: 120_000 });
  const top = await page.$eval('#sentiment-result li.top', (li) => ({
    label: li.querySelector('.label').textContent,
    score: Number(li.querySelector('.score').textContent),
  }));
  assert.equal(top.label, ref.label);
  assert.ok(Math.abs(top.score - Math.max(...ref.scores)) < 1e-4, `score ${top.score}`);
  assert.ok(requests.some((u) => u.startsWith(`${mirror.url}/hub/tiny-random/distilbert-sst2/resolve/main/model.safetensors`)));
  assert.ok(site.seen.includes('200 /pkg/relaxed/hubside_bg.wasm'), 'Chromium runs the relaxed-SIMD build');
  await page.screenshot({ path: path.join(outputDir, 'dist-sentiment.png'), fullPage: true });
  await page.close();
});

test('the example page from dist/ keeps the widget defaults, and a widget runs once pointed at the mirror', async () => {
  const page = await context.newPage();
  await page.goto(`${site.url}/example.html`);
  await page.waitForFunction(() => document.documentElement.dataset.hubside);
  assert.equal(await page.evaluate(() => document.documentElement.dataset.hubside), 'default');
  const w = page.locator('hubside-sentiment');
  assert.equal(await w.getAttribute('endpoint'), null);
  assert.equal(await w.getAttribute('model'), 'distilbert/distilbert-base-uncased-finetuned-sst-2-english');
  assert.match(await w.locator('.model').textContent(), /^distilbert\/distilbert-base-uncased-finetuned-sst-2-english$/);

  await w.evaluate((el, endpoint) => {
    el.setAttribute('endpoint', endpoint);
    el.setAttribute('model', 'tiny-random/distilbert-sst2');
  }, `${mirror.url}/hub`);
  await w.locator('textarea').fill(reference[2].text);
  await w.locator('button.run').click();
  await w.locator('.scores li.top').waitFor({ timeout: 120_000 });
  assert.equal(await w.locator('.scores li.top .label').textContent(), reference[2].label);
  assert.ok(Math.abs(Number(await w.locator('.scores li.top .score').textContent()) - Math.max(...reference[2].scores)) < 1e-4);
  await page.screenshot({ path: path.join(outputDir, 'dist-example.png') });
  await page.close();
});

test('widgets.js included from another origin runs its worker and wasm from there', async (t) => {
  // Someone's blog on another origin (cross-origin isolated, the strictest case), embedding the
  // widgets straight from the static site.
  const blog = path.join(path.dirname(dist), 'blog');
  mkdirSync(blog, { recursive: true });
  writeFileSync(path.join(blog, 'post.html'), `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>A blog post</title>
    <link rel="icon" href="data:,"><script type="module" src="${site.url}/widgets.js"></script></head>
    <body><p>Some text before.</p>
    <hubside-sentiment model="tiny-random/distilbert-sst2" endpoint="${mirror.url}/hub">${reference[0].text}</hubside-sentiment>
    <p>Some text after.</p></body></html>`);
  const host = await staticServer(blog, { headers: { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' } });
  t.after(() => host.stop());
  const page = await context.newPage();
  const mark = requests.length;
  await page.goto(`${host.url}/post.html`);
  const w = page.locator('hubside-sentiment');
  await w.locator('button.run').click();
  await w.locator('.scores li.top').waitFor({ timeout: 120_000 });
  assert.equal(await w.locator('.scores li.top .label').textContent(), reference[0].label);
  assert.ok(await page.evaluate(() => crossOriginIsolated), 'the host page is cross-origin isolated');
  // The worker and the wasm came from the static site, not from the host's origin; the host is
  // cross-origin isolated, so the wasm is a threaded build (Chromium: the relaxed-SIMD one).
  const seen = requests.slice(mark);
  for (const file of ['widgets.js', 'client.js', 'worker.js', 'pkg/threads-relaxed/hubside.js', 'pkg/threads-relaxed/hubside_bg.wasm']) {
    assert.ok(seen.includes(`${site.url}/${file}`), `${file} from the static site: ${seen.join(' ')}`);
  }
  assert.ok(!seen.some((u) => u.startsWith(`${host.url}/worker.js`) || u.startsWith(`${host.url}/pkg/`)), seen.join(' '));
  await page.close();
});

test('every request stayed on 127.0.0.1, none failed, and no page threw', () => {
  assertOnlyLocal(assert, requests);
  assert.deepEqual(site.seen.filter((line) => !line.startsWith('200 ')), [], 'every file asked of the static site exists');
  assert.deepEqual(failures, []);
  assert.deepEqual(pageErrors, []);
});
