// The wasm builds behind the page's worker (client.js → worker.js): a cross-origin isolated page
// (`hubside serve` sends COOP/COEP) runs pkg/threads-relaxed/ on a pool of `numThreads` Web
// Workers, a page that is not (`--no-isolation`, or a plain static host) runs pkg/relaxed/ on one
// thread (Chromium has relaxed SIMD), and where the relaxed builds do not load the worker falls
// back to pkg/threads/ and pkg/; all give the references' sentiment scores and translations
// (the two relaxed builds bit for bit the same, and pkg/ and pkg/threads/ too). dist/ built with --coi-serviceworker isolates itself on a plain static server and
// so runs a threaded build.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { root, startServer, staticServer, launchBrowser, recordRequests, recordFailures, assertOnlyLocal } from './harness.js';

const fixture = (model) => JSON.parse(readFileSync(path.join(root, 'tests/fixtures/hub/tiny-random', model, 'reference.json'))).cases;
const sentimentCases = fixture('distilbert-sst2');
const translationCases = fixture('marian-en-de');

// A blank page served next to client.js, so the test drives the client itself.
const work = mkdtempSync(path.join(tmpdir(), 'hubside-threads-'));
writeFileSync(path.join(work, 'blank.html'), '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>t</title><link rel="icon" href="data:,"></head><body></body></html>');
const dist = path.join(work, 'dist');

let isolated, plain, site, context, requests, failures;

before(async () => {
  // test.sh builds the packages just before the page tests; take them as they are.
  execFileSync(path.join(root, 'scripts/build-dist.sh'), ['--coi-serviceworker', dist], { cwd: root, env: { ...process.env, HUBSIDE_USE_PKG: '1' }, stdio: ['ignore', 'ignore', 'inherit'] });
  isolated = await startServer(['--root', work]);
  plain = await startServer(['--root', work, '--no-isolation']);
  site = await staticServer(dist);
  context = await launchBrowser();
  requests = recordRequests(context);
  failures = recordFailures(context);
});

after(async () => {
  await context?.close();
  isolated?.stop();
  plain?.stop();
  site?.stop();
  rmSync(work, { recursive: true, force: true });
});

/** In `page` (next to client.js): a HubsideClient with `clientOptions` loads the sentiment and
 * translation test models from `endpoint` and runs every reference case; with what the worker
 * said about its build and threads before and after. */
function runEverything(page, endpoint, clientOptions) {
  const sentimentTexts = sentimentCases.map((c) => c.text);
  const translationTexts = translationCases.map((c) => c.text);
  return page.evaluate(async ([endpoint, clientOptions, sentimentTexts, translationTexts]) => {
    const { HubsideClient } = await import('./client.js');
    const client = new HubsideClient(undefined, clientOptions);
    const before = await client.runtimeInfo();
    const sentiment = { task: 'sentiment-analysis', model: 'tiny-random/distilbert-sst2', endpoint };
    const translation = { task: 'translation', model: 'tiny-random/marian-en-de', endpoint };
    const loaded = [await client.load(sentiment), await client.load(translation)].map(({ build, threads }) => ({ build, threads }));
    const scores = [];
    for (const text of sentimentTexts) scores.push((await client.run(sentiment, text, { top_k: null })).value);
    const translations = [];
    for (const text of translationTexts) {
      translations.push((await client.run(translation, text, { max_new_tokens: 16, num_beams: 1 })).value[0].translation_text);
    }
    const after = await client.runtimeInfo();
    client.stop();
    return { crossOriginIsolated, cores: navigator.hardwareConcurrency, before, loaded, after, scores, translations };
  }, [endpoint, clientOptions, sentimentTexts, translationTexts]);
}

/** Same labels in the same order, scores within `tolerance`. */
function assertClose(scores, expected, tolerance) {
  assert.equal(scores.length, expected.length);
  scores.forEach((labels, i) => labels.forEach(({ label, score }, j) => {
    assert.equal(label, expected[i][j].label);
    assert.ok(Math.abs(score - expected[i][j].score) <= tolerance, `${label}: ${score} vs ${expected[i][j].score}`);
  }));
}

/** The results are the references': labels, scores within 1e-4, translations exactly. */
function assertReferences(result) {
  result.scores.forEach((labels, i) => {
    const ref = sentimentCases[i];
    assert.equal(labels[0].label, ref.label, ref.text);
    const best = Math.max(...ref.scores);
    assert.ok(Math.abs(labels[0].score - best) < 1e-4, `${ref.text}: ${labels[0].score} vs ${best}`);
  });
  assert.deepEqual(result.translations, translationCases.map((c) => c.translation));
}

let threaded;

test('a cross-origin isolated page runs the threaded build with numThreads threads', async () => {
  const page = await context.newPage();
  await page.goto(`${isolated.url}/blank.html`);
  threaded = await runEverything(page, `${isolated.url}/hub`, { numThreads: 3 });
  assert.equal(threaded.crossOriginIsolated, true);
  assert.deepEqual(threaded.before, { build: 'threads', threads: null, simd: true, relaxed_simd: true }, 'the pool starts with the first load');
  assert.deepEqual(threaded.loaded, [{ build: 'threads', threads: 3 }, { build: 'threads', threads: 3 }]);
  assert.deepEqual(threaded.after, { build: 'threads', threads: 3, simd: true, relaxed_simd: true });
  assertReferences(threaded);
  await page.close();
});

test('without numThreads the pool has as many threads as the browser reports cores (at most 8)', async () => {
  const page = await context.newPage();
  await page.goto(`${isolated.url}/blank.html`);
  const result = await runEverything(page, `${isolated.url}/hub`, {});
  assert.equal(result.after.build, 'threads');
  assert.equal(result.after.threads, Math.min(result.cores, 8));
  assert.deepEqual(result.scores, threaded.scores);
  assert.deepEqual(result.translations, threaded.translations);
  await page.close();
});

test('a page that is not isolated runs the single-thread build, with the same results', async () => {
  const page = await context.newPage();
  await page.goto(`${plain.url}/blank.html`);
  const single = await runEverything(page, `${plain.url}/hub`, { numThreads: 3 });
  assert.equal(single.crossOriginIsolated, false);
  assert.deepEqual(single.before, { build: 'single', threads: 1, simd: true, relaxed_simd: true });
  assert.deepEqual(single.loaded, [{ build: 'single', threads: 1 }, { build: 'single', threads: 1 }]);
  assertReferences(single);
  // Exactly, not only within the references' tolerance.
  assert.deepEqual(single.scores, threaded.scores);
  assert.deepEqual(single.translations, threaded.translations);
  await page.close();
});

test('where the relaxed-SIMD builds do not load, the worker falls back to pkg/threads/ and pkg/, with the same results', async () => {
  // Chromium always validates relaxed SIMD and has no switch to turn it off, so a browser without
  // it is played by refusing the relaxed builds' files: the worker takes the next build either way.
  const refused = await launchBrowser();
  const refusedRequests = [];
  await refused.route(/\/pkg\/(threads-)?relaxed\//, (route) => {
    refusedRequests.push(route.request().url());
    return route.fulfill({ status: 404, body: 'no relaxed SIMD here' });
  });
  try {
    const results = [];
    for (const [server, build, threads] of [[isolated, 'threads', 2], [plain, 'single', 1]]) {
      const page = await refused.newPage();
      await page.goto(`${server.url}/blank.html`);
      const result = await runEverything(page, `${server.url}/hub`, { numThreads: 2 });
      assert.deepEqual(result.after, { build, threads, simd: true, relaxed_simd: false });
      assertReferences(result);
      // Fused multiply-add (the relaxed builds' f32 tiles) rounds once where these round twice.
      assertClose(result.scores, threaded.scores, 1e-6);
      results.push(result);
      await page.close();
    }
    // Exactly, not only within the references' tolerance.
    assert.deepEqual(results[1].scores, results[0].scores);
    assert.deepEqual(results[1].translations, results[0].translations);
    assert.ok(refusedRequests.some((url) => url.includes('/pkg/threads-relaxed/')), refusedRequests.join(' '));
    assert.ok(refusedRequests.some((url) => url.includes('/pkg/relaxed/')), refusedRequests.join(' '));
  } finally {
    await refused.close();
  }
});

test('dist/ with the service worker isolates itself on a plain static server and runs the threaded build', async () => {
  const page = await context.newPage();
  await page.goto(`${site.url}/index.html`);
  // The first visit registers the service worker, which reloads the page through itself.
  let isolatedNow = false;
  for (let i = 0; i < 100 && !isolatedNow; i++) {
    isolatedNow = await page.evaluate(() => window.crossOriginIsolated).catch(() => false);
    if (!isolatedNow) await page.waitForTimeout(100);
  }
  assert.ok(isolatedNow, 'the page became cross-origin isolated');
  await page.waitForLoadState('load');
  const result = await runEverything(page, `${isolated.url}/hub`, { numThreads: 2 });
  assert.deepEqual(result.after, { build: 'threads', threads: 2, simd: true, relaxed_simd: true });
  assert.deepEqual(result.scores, threaded.scores);
  assert.deepEqual(result.translations, threaded.translations);
  assert.ok(site.seen.includes('200 /pkg/threads-relaxed/hubside_bg.wasm'), site.seen.join(' '));
  await page.close();
});

test('nothing failed and nothing left 127.0.0.1', () => {
  // Except what the service worker's reload cut short on dist/'s first visit.
  const cutShort = (line) => line.startsWith(`no answer: ${site.url}/`) && line.endsWith('(net::ERR_ABORTED)');
  assert.deepEqual(failures.filter((line) => !cutShort(line)), []);
  assertOnlyLocal(assert, requests);
});
