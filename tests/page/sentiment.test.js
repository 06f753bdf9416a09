// The served page runs sentiment analysis with the tiny model from the local mirror and shows
// the reference label and score.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { root, outputDir, startServer, launchBrowser, recordRequests, assertOnlyLocal } from './harness.js';

const fixture = (model) => JSON.parse(readFileSync(path.join(root, 'tests/fixtures/hub/tiny-random', model, 'reference.json')));
let server, context, requests;

before(async () => {
  server = await startServer();
  context = await launchBrowser();
  requests = recordRequests(context);
});

after(async () => {
  await context?.close();
  server?.stop();
});

test('sentiment analysis shows the reference label and score', async () => {
  const page = await context.newPage();
  const consoleErrors = [];
  page.on('console', (m) => m.type() === 'error' && consoleErrors.push(m.text()));
  await page.goto(server.url);
  await page.waitForFunction(() => document.getElementById('endpoint').value.startsWith('http://127.0.0.1'));
  const reference = fixture('distilbert-sst2').cases[0];
  await page.fill('#sentiment-model', 'tiny-random/distilbert-sst2');
  await page.fill('#sentiment-text', reference.text);
  await page.click('#sentiment-run');
  await page.waitForSelector('#sentiment-result li.top', { timeout: 120_000 });
  const top = await page.$eval('#sentiment-result li.top', (li) => ({
    label: li.querySelector('.label').textContent,
    score: Number(li.querySelector('.score').textContent),
  }));
  assert.equal(top.label, reference.label);
  assert.ok(Math.abs(top.score - Math.max(...reference.scores)) < 1e-4, `score ${top.score}`);
  const labels = await page.$$eval('#sentiment-result .label', (els) => els.map((e) => e.textContent));
  assert.deepEqual(labels.sort(), ['NEGATIVE', 'POSITIVE']);
  const progress = await page.$eval('#sentiment-progress progress', (p) => p.value);
  assert.equal(progress, 100);
  await page.screenshot({ path: path.join(outputDir, 'sentiment.png'), fullPage: true });
  assert.deepEqual(consoleErrors, []);
  await page.close();
});

test('a missing model shows an error and the page keeps working', async () => {
  const page = await context.newPage();
  await page.goto(server.url);
  await page.waitForFunction(() => document.getElementById('endpoint').value.startsWith('http://127.0.0.1'));
  await page.fill('#sentiment-model', 'tiny-random/does-not-exist');
  await page.click('#sentiment-run');
  await page.waitForSelector('#sentiment-status.error');
  const message = await page.textContent('#sentiment-status');
  assert.match(message, /file not found: http:\/\/127\.0\.0\.1:\d+\/hub\/tiny-random\/does-not-exist\/resolve\/main\/config\.json/);
  await page.screenshot({ path: path.join(outputDir, 'sentiment-error.png'), fullPage: true });

  await page.fill('#sentiment-model', 'tiny-random/bert-sentiment-3class');
  await page.fill('#sentiment-text', 'It was okay.');
  await page.click('#sentiment-run');
  await page.waitForSelector('#sentiment-result li.top');
  assert.equal(await page.textContent('#sentiment-result li.top .label'), 'neutral');
  assertOnlyLocal(assert, requests);
  await page.close();
});
