// The served page, as a person uses it: each task shows the reference output, loads report
// progress to 100%, a reload loads from the browser cache without model requests, clearing the
// cache works, cancel works, errors are readable, the main thread stays responsive, and every
// request goes to 127.0.0.1.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { root, outputDir, startServer, launchBrowser, recordRequests, assertOnlyLocal } from './harness.js';

const read = (p) => JSON.parse(readFileSync(path.join(root, p)));
const marian = read('tests/fixtures/hub/tiny-random/marian-en-de/reference.json');
const tinyEn = read('tests/fixtures/whisper/tiny.en.reference.json');
const sst2 = read('tests/fixtures/hub/tiny-random/distilbert-sst2/reference.json');
const jfk = path.join(root, 'tests/fixtures/audio/jfk16.wav');

let server, context, requests, page;

before(async () => {
  server = await startServer();
  // A fake microphone (a steady tone) that is granted without a prompt.
  context = await launchBrowser(['--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream']);
  requests = recordRequests(context);
  page = await context.newPage();
  await open();
});

after(async () => {
  await context?.close();
  server?.stop();
});

async function open() {
  await page.goto(server.url);
  await page.waitForFunction(() => document.getElementById('endpoint').value.startsWith('http://127.0.0.1'));
}

async function sentiment(model, text) {
  await page.fill('#sentiment-model', model);
  await page.fill('#sentiment-text', text);
  await page.$eval('#sentiment-status', (e) => { e.textContent = ''; });
  await page.click('#sentiment-run');
  await page.waitForFunction(() => !document.getElementById('sentiment-run').disabled
    && !/^(Loading|Running)/.test(document.getElementById('sentiment-status').textContent));
  return page.textContent('#sentiment-status');
}

/** Click a section's run button and wait until its status says it finished. */
async function runAndWait(section, timeout = 300_000) {
  await page.$eval(`#${section}-status`, (e) => { e.textContent = ''; });
  await page.click(`#${section}-run`);
  await page.waitForFunction((s) => /^(Done|Error|Cancelled)/.test(document.getElementById(`${s}-status`).textContent),
    section, { timeout });
  return page.textContent(`#${section}-status`);
}

const progressValue = (section) => page.$eval(`#${section}-progress progress`, (p) => p.value);

test("each model field lists the mirror's models, then the suggested models with their sizes", async () => {
  // The suggestions arrive after the mirror's models (they come from the worker's package).
  await page.waitForFunction(() => [...document.querySelectorAll('#sentiment-models option')]
    .some((o) => o.value === 'distilbert/distilbert-base-uncased-finetuned-sst-2-english'));
  const lists = await page.$$eval('datalist', (lists) => Object.fromEntries(lists.map((l) =>
    [l.id, [...l.options].map((o) => ({ value: o.value, label: o.label }))])));
  const suggested = (id, model) => lists[id].find((o) => o.value === model);
  assert.ok(lists['sentiment-models'].some((o) => o.value === 'tiny-random/distilbert-sst2' && o.label === 'on this mirror'));
  assert.match(suggested('sentiment-models', 'distilbert/distilbert-base-uncased-finetuned-sst-2-english').label,
    /^English sentiment.* · 67M parameters · about 255\.6 MB \(fp32\), 67\.9 MB \(q8\)$/);
  assert.ok(suggested('translation-models', 'Helsinki-NLP/opus-mt-en-de'));
  assert.match(suggested('transcription-models', 'openai/whisper-tiny.en').label, /39M parameters/);
  // The mirror's models come first; the field keeps the mirror's model.
  assert.equal(lists['sentiment-models'][0].label, 'on this mirror');
  assert.match(await page.inputValue('#sentiment-model'), /^tiny-random\//);
});

test('translation shows the reference text as it streams', async () => {
  const reference = marian.cases.find((c) => c.text === 'The house is small.');
  await page.fill('#translation-model', 'tiny-random/marian-en-de');
  await page.fill('#translation-text', reference.text);
  await page.fill('#translation-max', '16'); // the reference decodes at most 16 new tokens
  // Record every text the output shows while it streams.
  await page.evaluate(() => {
    window.shown = [];
    new MutationObserver(() => window.shown.push(document.getElementById('translation-result').textContent))
      .observe(document.getElementById('translation-result'), { childList: true, characterData: true, subtree: true });
  });
  assert.match(await runAndWait('translation'), /^Done/);
  assert.equal(await page.textContent('#translation-result'), reference.translation);
  const shown = await page.evaluate(() => window.shown.filter(Boolean));
  assert.ok(new Set(shown).size >= 4, `text grew token by token: ${JSON.stringify(shown)}`);
  assert.equal(await progressValue('translation'), 100);
  await page.screenshot({ path: path.join(outputDir, 'translation.png'), fullPage: true });
});

test('transcription of a chosen file shows the reference transcript, and timestamps', async () => {
  const reference = tinyEn.cases.find((c) => c.audio === 'jfk16.wav');
  await page.fill('#transcription-model', 'Systran/faster-whisper-tiny.en');
  await page.dispatchEvent('#transcription-model', 'input');
  await page.setInputFiles('#transcription-file', jfk);
  // The reference decodes without timestamps.
  await page.uncheck('#transcription-timestamps');
  assert.match(await runAndWait('transcription'), /^Done/);
  assert.equal(await page.textContent('#transcription-result'), reference.text.trim());
  // The loaded pipeline says whether the model is multilingual.
  assert.equal(await page.isDisabled('#transcription-task'), true, 'English-only model: no task choice');

  await page.check('#transcription-timestamps');
  assert.match(await runAndWait('transcription'), /^Done/);
  assert.match((await page.textContent('#transcription-result')).toLowerCase(), /my fellow americans.*your country.*do for you/);
  const times = await page.$$eval('#transcription-chunks time', (els) => els.map((e) => e.textContent));
  assert.ok(times.length >= 1 && times.every((t) => /\d:\d\d\.\d → \d:\d\d\.\d/.test(t)), JSON.stringify(times));
  assert.equal(await progressValue('transcription'), 100);
  await page.screenshot({ path: path.join(outputDir, 'transcription.png'), fullPage: true });

  // The timed transcript downloads as subtitles: one cue per segment shown.
  assert.equal(await page.isVisible('#transcription-subtitles'), true);
  const downloaded = async (button) => {
    const [download] = await Promise.all([page.waitForEvent('download'), page.click(button)]);
    assert.match(download.suggestedFilename(), /^jfk16\.(srt|vtt)$/);
    return readFileSync(await download.path(), 'utf8');
  };
  const srt = await downloaded('#transcription-srt');
  const blocks = srt.trim().split('\n\n');
  assert.equal(blocks.length, times.length, srt);
  blocks.forEach((block, i) => assert.match(block, new RegExp(`^${i + 1}\n\\d\\d:\\d\\d:\\d\\d,\\d{3} --> \\d\\d:\\d\\d:\\d\\d,\\d{3}\n\\S`)));
  // The WebVTT file is read back by Chromium's own WebVTT parser (a <track> of a <video>).
  const vtt = await downloaded('#transcription-vtt');
  const cues = await page.evaluate(async (text) => {
    const video = document.createElement('video');
    const track = document.createElement('track');
    track.kind = 'subtitles';
    track.src = URL.createObjectURL(new Blob([text], { type: 'text/vtt' }));
    video.append(track);
    document.body.append(video);
    track.track.mode = 'hidden';
    await new Promise((resolve, reject) => { track.onload = resolve; track.onerror = () => reject(new Error('track did not load')); });
    const cues = [...track.track.cues].map((c) => ({ start: c.startTime, end: c.endTime, text: c.text }));
    video.remove();
    return cues;
  }, vtt);
  const shown = await page.$$eval('#transcription-chunks li', (els) => els.map((e) => e.lastChild.textContent));
  assert.deepEqual(cues.map((c) => c.text), shown);
  assert.ok(cues.every((c, i) => c.start <= c.end && (i === 0 || cues[i - 1].end <= c.start + 1e-6)), JSON.stringify(cues));

  // Word timestamps: one timed item per word, and subtitles gather the words into short lines.
  await page.check('#transcription-words');
  assert.match(await runAndWait('transcription'), /^Done/);
  const words = await page.$$eval('#transcription-chunks li', (els) => els.map((e) => e.lastChild.textContent));
  assert.ok(words.length >= 20 && words.every((w) => !/\s/.test(w)), JSON.stringify(words));
  const wordSrt = await downloaded('#transcription-srt');
  const lines = wordSrt.trim().split('\n\n').map((block) => block.split('\n').slice(2).join(' '));
  assert.ok(lines.length > 1 && lines.length < words.length && lines.every((l) => l.length <= 42), wordSrt);
  assert.equal(lines.join(' '), words.join(' '));
  await page.uncheck('#transcription-words');
});

test('the main thread keeps answering while a model runs', async () => {
  await page.fill('#transcription-model', 'Systran/faster-whisper-base');
  await page.dispatchEvent('#transcription-model', 'input');
  await page.selectOption('#transcription-language', 'en');
  await page.setInputFiles('#transcription-file', jfk);
  // Longest gap between 20 ms timer ticks while the worker loads and runs the model.
  await page.evaluate(() => {
    window.gaps = [];
    let last = performance.now();
    window.ticker = setInterval(() => { const now = performance.now(); window.gaps.push(now - last); last = now; }, 20);
  });
  assert.match(await runAndWait('transcription'), /^Done/);
  const gaps = await page.evaluate(() => { clearInterval(window.ticker); return window.gaps; });
  assert.ok(gaps.length > 20, `ticks: ${gaps.length}`);
  assert.ok(Math.max(...gaps) < 250, `main thread blocked for ${Math.max(...gaps).toFixed(0)} ms`);
  assert.match((await page.textContent('#transcription-result')).toLowerCase(), /my fellow americans/);
});

test('cancel stops a running transcription and the page stays usable', async () => {
  await page.fill('#transcription-model', 'Systran/faster-whisper-base');
  await page.setInputFiles('#transcription-file', jfk);
  await page.click('#transcription-run');
  await page.waitForFunction(() => /Transcribing/.test(document.getElementById('transcription-status').textContent), null, { timeout: 120_000 });
  await page.click('#transcription-cancel');
  await page.waitForFunction(() => document.getElementById('transcription-status').textContent === 'Cancelled.');
  assert.equal(await page.isDisabled('#transcription-run'), false);
  const reference = sst2.cases[0];
  assert.match(await sentiment('tiny-random/distilbert-sst2', reference.text), new RegExp(reference.label));
});

test('errors are readable and the page keeps working', async () => {
  const missing = await sentiment('tiny-random/does-not-exist', 'hello');
  assert.match(missing, /file not found: http:\/\/127\.0\.0\.1:\d+\/hub\/tiny-random\/does-not-exist\/resolve\/main\/config\.json/);
  assert.equal(await page.$eval('#sentiment-status', (e) => e.classList.contains('error')), true);

  const unsupported = await sentiment('tiny-random/marian-en-de', 'hello');
  assert.match(unsupported, /unsupported model_type 'marian'.*bert, distilbert/);

  await page.evaluate(() => { document.getElementById('settings').open = true; });
  await page.fill('#endpoint', 'http://127.0.0.1:9/hub'); // nothing listens there: like being offline
  const offline = await sentiment('tiny-random/bert-sentiment-3class', 'hello');
  assert.match(offline, /Cannot reach the Hub/);
  await page.screenshot({ path: path.join(outputDir, 'error-offline.png'), fullPage: true });
  await open();
  assert.match(await sentiment('tiny-random/bert-sentiment-3class', 'It was okay.'), /neutral/);
});

test('a reload loads models from the cache without model requests; clearing empties it', async () => {
  const reference = sst2.cases[0];
  await sentiment('tiny-random/distilbert-sst2', reference.text);
  await page.click('#settings summary');
  await page.waitForSelector('#cache-list li button');
  const listed = await page.$$eval('#cache-list li span', (els) => els.map((e) => e.textContent));
  assert.ok(listed.some((t) => t.startsWith('tiny-random/distilbert-sst2 — ')), JSON.stringify(listed));
  await page.screenshot({ path: path.join(outputDir, 'cache.png'), fullPage: true });

  await open();
  const before = requests.length;
  assert.match(await sentiment('tiny-random/distilbert-sst2', reference.text), new RegExp(`^${reference.label}`));
  const modelRequests = requests.slice(before).filter((u) => u.includes('/hub/'));
  assert.deepEqual(modelRequests, [], 'second visit: no model downloads');

  await page.click('#settings summary');
  await page.click('#cache-clear-all');
  await page.waitForFunction(() => document.getElementById('cache-list').textContent.includes('No models cached'));
  await open();
  const beforeClear = requests.length;
  await sentiment('tiny-random/distilbert-sst2', reference.text);
  assert.ok(requests.slice(beforeClear).some((u) => u.endsWith('/tiny-random/distilbert-sst2/resolve/main/model.safetensors')),
    'after clearing, the weights are downloaded again');
});

test('recording from the microphone is transcribed', async () => {
  await page.fill('#transcription-model', 'Systran/faster-whisper-tiny.en');
  await page.dispatchEvent('#transcription-model', 'input');
  await page.$eval('#transcription-status', (e) => { e.textContent = ''; });
  await page.click('#transcription-record');
  await page.waitForFunction(() => document.getElementById('transcription-record').getAttribute('aria-pressed') === 'true');
  await page.waitForTimeout(2000);
  await page.click('#transcription-record'); // stop: the recording is decoded and transcribed
  await page.waitForFunction(() => /^(Done|Error)/.test(document.getElementById('transcription-status').textContent), null, { timeout: 120_000 });
  assert.match(await page.textContent('#transcription-status'), /^Done .*language: en/);
  assert.equal(await page.getAttribute('#transcription-record', 'aria-pressed'), 'false');
});

test('the page is usable on a phone-sized screen', async () => {
  await page.setViewportSize({ width: 375, height: 740 });
  await open();
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `no horizontal scrolling (${overflow}px too wide)`);
  // Every control has an accessible name, and the tasks run from the keyboard.
  const unnamed = await page.$$eval('input, textarea, select, button', (els) => els
    .filter((e) => !(e.labels?.length || e.getAttribute('aria-label') || e.textContent.trim())).map((e) => e.id));
  assert.deepEqual(unnamed, []);
  await page.fill('#sentiment-model', 'tiny-random/distilbert-sst2');
  await page.focus('#sentiment-text');
  await page.keyboard.press('Control+Enter');
  await page.waitForSelector('#sentiment-result li.top');
  await page.screenshot({ path: path.join(outputDir, 'phone.png'), fullPage: true });
  await page.setViewportSize({ width: 1280, height: 720 });
});

test('every request went to 127.0.0.1', () => {
  assert.ok(requests.some((u) => u.includes('/hub/')), 'model requests were recorded (worker fetches included)');
  assertOnlyLocal(assert, requests);
});
