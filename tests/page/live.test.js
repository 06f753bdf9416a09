// Live transcription in Chromium with a fake microphone playing a recording
// (--use-file-for-fake-audio-capture, "%noloop": played once, then silence): the page's "Live
// (microphone)" mode and <hubside-transcribe live> show text while the recording plays; committed
// text only ever grows; the final transcript has the words of the offline transcript of the same
// recording (WER ≤ 0.05). The recording is jfk16.wav between 1 s of silence; the page test also
// times the text against the audio (the delay from the end of each phrase to its committed text,
// written to test-output/page/live-delays.json for BENCHMARKS.md).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { root, outputDir, cacheHub, startServer, launchBrowser, recordRequests, assertOnlyLocal } from './harness.js';

const hasWhisper = existsSync(path.join(cacheHub, 'Systran', 'faster-whisper-tiny.en', '.complete'));
const skip = !hasWhisper && 'no Whisper weights (run scripts/fetch-whisper.sh)';

/** jfk16.wav (16-bit mono 16 kHz) between `lead` and `tail` seconds of silence, as a WAV file. */
function paddedJfk(file, lead = 1, tail = 1) {
  const wav = readFileSync(path.join(root, 'tests/fixtures/audio/jfk16.wav'));
  const dataAt = wav.indexOf('data') + 8;
  const pcm = wav.subarray(dataAt, dataAt + wav.readUInt32LE(dataAt - 4));
  const silence = (s) => Buffer.alloc(Math.round(s * 16000) * 2);
  const body = Buffer.concat([silence(lead), pcm, silence(tail)]);
  const header = Buffer.alloc(44);
  header.write('RIFF', 0); header.writeUInt32LE(36 + body.length, 4); header.write('WAVE', 8);
  header.write('fmt ', 12); header.writeUInt32LE(16, 16); header.writeUInt16LE(1, 20); header.writeUInt16LE(1, 22);
  header.writeUInt32LE(16000, 24); header.writeUInt32LE(32000, 28); header.writeUInt16LE(2, 32); header.writeUInt16LE(16, 34);
  header.write('data', 36); header.writeUInt32LE(body.length, 40);
  writeFileSync(file, Buffer.concat([header, body]));
  const ends = jfkPhraseEnds();
  return { file, seconds: lead + pcm.length / 32000 + tail, lead, speechEnd: lead + ends[ends.length - 1] };
}

const words = (text) => text.split(/\s+/).map((w) => w.toLowerCase().replace(/[^\p{L}\p{N}']/gu, '')).filter(Boolean);

/** Word error rate of `hypothesis` against `reference`. */
function wer(reference, hypothesis) {
  const [r, h] = [words(reference), words(hypothesis)];
  let row = Array.from({ length: h.length + 1 }, (_, j) => j);
  for (let i = 1; i <= r.length; i++) {
    const next = [i];
    for (let j = 1; j <= h.length; j++) next[j] = Math.min(row[j] + 1, next[j - 1] + 1, row[j - 1] + (r[i - 1] === h[j - 1] ? 0 : 1));
    row = next;
  }
  return row[h.length] / Math.max(1, r.length);
}

/** Watch `element` (a live transcript): every change as {at, committed, tentative, received}. */
async function watch(page, handle) {
  await page.evaluate((el) => {
    window.__live = [];
    const record = () => window.__live.push({
      at: performance.now(),
      committed: el.querySelector('.committed')?.textContent ?? '',
      tentative: el.querySelector('.tentative')?.textContent ?? '',
      received: Number(el.dataset.received || 0),
    });
    new MutationObserver(record).observe(el, { childList: true, subtree: true, characterData: true, attributes: true });
  }, handle);
}

/** The recorded history: committed text only grows; returns it. */
async function checkGrowth(page) {
  const history = await page.evaluate(() => window.__live);
  let committed = '';
  for (const entry of history) {
    if (!entry.committed && !entry.tentative) continue; // cleared at the start
    assert.ok(entry.committed.startsWith(committed), `committed text changed: ${JSON.stringify(committed)} → ${JSON.stringify(entry.committed)}`);
    committed = entry.committed;
  }
  return history;
}

/** Ends (s) of jfk16.wav's phrases followed by at least 1 s of silence (or the clip's end), from
 * the VAD labels of tests/fixtures/audio/live16.wav, whose first speech piece is jfk16.wav. */
function jfkPhraseEnds() {
  const { labels, frame_seconds: frame, layout } = JSON.parse(readFileSync(path.join(root, 'tests/fixtures/audio/live16.labels.json')));
  const piece = layout.find((p) => p.kind === 'speech');
  const [first, last] = [Math.round(piece.start / frame), Math.round(piece.end / frame)];
  const gap = Math.round(1 / frame);
  const ends = [];
  for (let i = first + 1; i <= last; i++) {
    if (labels[i - 1] === '1' && labels[i] !== '1' && (i === last || !labels.slice(i, Math.min(i + gap, last)).includes('1'))) ends.push(+((i - first) * frame).toFixed(2));
  }
  return ends;
}

let server;
const recording = hasWhisper ? paddedJfk(path.join(outputDir, 'live-jfk.wav')) : null;

before(async () => {
  server = await startServer();
});

after(() => server?.stop());

async function browser() {
  return launchBrowser(['--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream',
    `--use-file-for-fake-audio-capture=${recording.file}%noloop`, '--autoplay-policy=no-user-gesture-required']);
}

test("the page's live mode shows the recording's words as they are spoken", { skip }, async () => {
  const context = await browser();
  const requests = recordRequests(context);
  try {
    const page = await context.newPage();
    await page.goto(server.url);
    await page.waitForFunction(() => document.getElementById('endpoint').value.startsWith('http://127.0.0.1'));
    await page.fill('#transcription-model', 'Systran/faster-whisper-tiny.en');
    await page.dispatchEvent('#transcription-model', 'input');
    await page.uncheck('#transcription-timestamps');
    // The offline transcript of the same recording, from the same page.
    await page.setInputFiles('#transcription-file', recording.file);
    await page.click('#transcription-run');
    await page.waitForFunction(() => /^(Done|Error)/.test(document.getElementById('transcription-status').textContent), null, { timeout: 300_000 });
    const offline = await page.textContent('#transcription-result');

    await watch(page, await page.$('#transcription-result'));
    await page.click('#transcription-live');
    await page.waitForFunction(() => /^Listening/.test(document.getElementById('transcription-status').textContent), null, { timeout: 120_000 });
    // Until a decode that heard the end of the speech left nothing tentative (silence follows).
    await page.waitForFunction((s) => {
      const result = document.getElementById('transcription-result');
      return Number(result.dataset.received || 0) >= s && !result.querySelector('.tentative')?.textContent;
    }, recording.speechEnd, { timeout: 120_000 });
    await page.click('#transcription-live');
    await page.waitForFunction(() => /stopped|Error/.test(document.getElementById('transcription-status').textContent), null, { timeout: 120_000 });
    assert.equal(await page.textContent('#transcription-status'), 'Live transcription stopped.');
    const history = await checkGrowth(page);
    const final = await page.textContent('#transcription-result');
    const error = wer(offline, final);
    console.log(`offline: ${offline}\nlive:    ${final}\nWER ${error.toFixed(3)}`);
    assert.ok(error <= 0.05, `WER ${error.toFixed(3)}`);
    assert.ok(history.some((e) => e.tentative), 'tentative text was shown while speaking');
    assert.equal(await page.$eval('#transcription-result .tentative', (e) => getComputedStyle(e).color), 'rgb(110, 119, 129)');

    // Delays: when the capture started (the earliest update's time minus the audio it heard),
    // then per phrase end the first update that heard it with nothing left tentative.
    const decoded = history.filter((e) => e.received > 0);
    const start = Math.min(...decoded.map((e) => e.at - 1000 * e.received));
    const ends = jfkPhraseEnds().map((t) => t + recording.lead);
    const delays = ends.map((end) => {
      const hit = decoded.find((e) => e.received >= end && !e.tentative.trim() && e.at >= start + 1000 * end);
      return hit ? (hit.at - start) / 1000 - end : null;
    });
    // The measure: when each phrase's own words are committed (later phrases may still be
    // tentative). jfk16's phrases between pauses of at least 1 s (the label ends above) are "And so
    // my fellow Americans" | "ask not" | "what your country … for your country": 5, 7 and 22 words
    // of the transcript so far.
    const phraseWords = [5, 7, 22];
    const committedDelays = ends.map((end, i) => {
      const hit = decoded.find((e) => words(e.committed).length >= phraseWords[i] && e.at >= start + 1000 * end);
      return hit ? (hit.at - start) / 1000 - end : null;
    });
    console.log(`phrase ends ${JSON.stringify(ends)}; delays (s) until nothing is tentative ${JSON.stringify(delays.map((d) => d && +d.toFixed(2)))}, until the phrase's words are committed ${JSON.stringify(committedDelays.map((d) => d && +d.toFixed(2)))}`);
    writeFileSync(path.join(outputDir, 'live-delays.json'), JSON.stringify({ offline, live: final, wer: error, ends, delays, committedDelays, start, history }, null, 1));
    await page.screenshot({ path: path.join(outputDir, 'live.png'), fullPage: true });
    assertOnlyLocal(assert, requests);
  } finally {
    await context.close();
  }
});

test('<hubside-transcribe live> transcribes the microphone with the same words', { skip }, async () => {
  const context = await browser();
  try {
    const page = await context.newPage();
    await page.goto(`${server.url}/example.html`);
    await page.waitForFunction(() => document.documentElement.dataset.hubside);
    const widget = page.locator('hubside-transcribe[live]').first();
    const text = await widget.evaluateHandle((el) => el.shadowRoot.querySelector('p.text'));
    await watch(page, text);
    await widget.locator('button.live').click();
    await page.waitForFunction((t) => Number(t.dataset.received || 0) >= 0.1, text, { timeout: 300_000 });
    await page.waitForFunction(([t, s]) => Number(t.dataset.received || 0) >= s && !t.querySelector('.tentative')?.textContent,
      [text, recording.speechEnd], { timeout: 120_000 });
    await widget.locator('button.live').click();
    const status = await widget.evaluateHandle((el) => el.shadowRoot.querySelector('.status'));
    await page.waitForFunction((s) => s.classList.contains('error') || s.textContent.startsWith('Done'), status, { timeout: 120_000 });
    assert.match(await status.evaluate((s) => s.textContent), /^Done/);
    await checkGrowth(page);
    const final = await text.evaluate((t) => t.textContent);
    const offline = JSON.parse(readFileSync(path.join(outputDir, 'live-delays.json'))).offline;
    const error = wer(offline, final);
    console.log(`widget live: ${final}\nWER ${error.toFixed(3)}`);
    assert.ok(error <= 0.05, `WER ${error.toFixed(3)}`);
    assert.ok((await widget.evaluate((el) => el.shadowRoot.querySelectorAll('.chunks li').length)) >= 1, 'timestamps: the phrases as chunks');
  } finally {
    await context.close();
  }
});

test('a denied microphone gives a readable message', async () => {
  const context = await launchBrowser(['--use-fake-device-for-media-stream', '--deny-permission-prompts']);
  try {
    const page = await context.newPage();
    await page.goto(`${server.url}/example.html`);
    await page.waitForFunction(() => document.documentElement.dataset.hubside);
    const message = await page.evaluate(async () => {
      const { startLive } = await import('./live.js');
      try {
        await startLive({ live: () => { throw new Error('a session without a microphone'); } }, {}, {}, () => {});
        return 'started';
      } catch (e) {
        return e.message;
      }
    });
    assert.match(message, /Microphone access was denied/);
  } finally {
    await context.close();
  }
});
