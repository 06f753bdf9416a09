// The widgets on www/example.html, served by `hubside serve`: the page points them at the local
// mirror, each shows the reference output, they share one worker (one download per model), they
// report errors readably and keep working, and nothing leaves 127.0.0.1.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { root, outputDir, startServer, launchBrowser, recordRequests, assertOnlyLocal } from './harness.js';

const fixture = (model) => JSON.parse(readFileSync(path.join(root, 'tests/fixtures/hub/tiny-random', model, 'reference.json')));
// Real Whisper weights, laid out as a Hub mirror by scripts/fetch-whisper.sh (test.sh runs it).
const cacheHub = path.join(process.env.HUBSIDE_CACHE || path.join(homedir(), '.cache', 'hubside'), 'hub');
const hasWhisper = existsSync(path.join(cacheHub, 'Systran', 'faster-whisper-tiny.en', '.complete'));

let server, context, requests, page;
const pageErrors = [];

before(async () => {
  server = await startServer(hasWhisper ? ['--hub', cacheHub] : []);
  context = await launchBrowser();
  requests = recordRequests(context);
  // Count the workers the page creates: every widget should use the same one.
  await context.addInitScript(() => {
    window.__workers = [];
    const Native = window.Worker;
    window.Worker = class extends Native {
      constructor(url, options) {
        super(url, options);
        window.__workers.push(String(url));
      }
    };
  });
  page = await context.newPage();
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.setViewportSize({ width: 1000, height: 900 });
  await page.goto(`${server.url}/example.html`);
  await page.waitForFunction(() => document.documentElement.dataset.hubside);
});

after(async () => {
  await context?.close();
  server?.stop();
});

const widget = (tag, n = 0) => page.locator(tag).nth(n);
// A run ends with "Done in …" or an error in the widget's status line.
const done = async (w, timeout = 120_000) => {
  const status = await w.evaluateHandle((el) => el.shadowRoot.querySelector('.status'));
  await page.waitForFunction((s) => s.classList.contains('error') || s.textContent.startsWith('Done'), status, { timeout });
};

test('the example page points every widget at the local mirror', async () => {
  assert.equal(await page.evaluate(() => document.documentElement.dataset.hubside), 'mirror');
  const attrs = await page.$$eval('hubside-sentiment, hubside-translate, hubside-transcribe',
    (els) => els.map((e) => ({ tag: e.localName, model: e.getAttribute('model'), endpoint: e.getAttribute('endpoint') })));
  const byTag = Object.fromEntries(attrs.map((a) => [a.tag, a]));
  assert.equal(byTag['hubside-sentiment'].model, 'tiny-random/distilbert-sst2');
  assert.equal(byTag['hubside-translate'].model, 'tiny-random/marian-en-de');
  if (hasWhisper) assert.equal(byTag['hubside-transcribe'].model, 'Systran/faster-whisper-tiny.en');
  for (const a of attrs) if (a.model.startsWith('tiny-random/') || hasWhisper) assert.match(a.endpoint, /^http:\/\/127\.0\.0\.1:\d+\/hub$/);
  // Nothing is downloaded (no worker either) until a widget is used.
  assert.deepEqual(await page.evaluate(() => window.__workers), []);
  // Every control has an accessible name.
  for (const tag of ['hubside-sentiment', 'hubside-translate', 'hubside-transcribe']) {
    const unnamed = await widget(tag).evaluate((el) => [...el.shadowRoot.querySelectorAll('textarea, input, button, progress')]
      .filter((c) => !(c.labels?.length || c.getAttribute('aria-label') || c.textContent.trim())).map((c) => c.outerHTML));
    assert.deepEqual(unnamed, [], tag);
  }
});

test('choose-model: a model field suggests models with sizes, and a choice is what the next run loads', async () => {
  await page.evaluate(() => {
    const el = document.createElement('hubside-sentiment');
    el.id = 'chooser';
    el.setAttribute('choose-model', '');
    el.setAttribute('endpoint', document.querySelector('hubside-sentiment').getAttribute('endpoint'));
    el.textContent = 'I love this movie, it was wonderful!';
    document.body.append(el);
  });
  const field = page.locator('#chooser input[list]');
  await field.focus();
  await page.waitForFunction(() => document.getElementById('chooser').shadowRoot.querySelectorAll('datalist option').length > 3);
  const options = await page.$$eval('#chooser', ([el]) => [...el.shadowRoot.querySelectorAll('datalist option')].map((o) => [o.value, o.label]));
  assert.deepEqual(options[0], ['distilbert/distilbert-base-uncased-finetuned-sst-2-english',
    'English sentiment: POSITIVE / NEGATIVE · 67M parameters · about 255.6 MB (fp32), 67.9 MB (q8)']);
  await field.fill('tiny-random/bert-sentiment-3class');
  await field.dispatchEvent('change');
  assert.equal(await page.getAttribute('#chooser', 'model'), 'tiny-random/bert-sentiment-3class');
  const chooser = widget('#chooser');
  await chooser.locator('button.run').click();
  await done(chooser);
  const expected = fixture('bert-sentiment-3class').cases.find((c) => c.text === 'I love this movie, it was wonderful!');
  const top = await chooser.evaluate((el) => el.shadowRoot.querySelector('.scores li.top .label')?.textContent);
  assert.equal(top, expected.label);
  await page.evaluate(() => document.getElementById('chooser').remove());
});

test('sentiment widgets show the reference labels and scores, and share one model download', async () => {
  const reference = fixture('distilbert-sst2').cases;
  // A second sentiment widget with the same model, added the way a host page would.
  await page.evaluate(() => {
    const first = document.querySelector('hubside-sentiment');
    const second = document.createElement('hubside-sentiment');
    second.setAttribute('model', first.getAttribute('model'));
    second.setAttribute('endpoint', first.getAttribute('endpoint'));
    second.setAttribute('label', 'Sentiment (second widget)');
    first.after(second);
  });
  const events = page.evaluate(() => new Promise((resolve) => {
    const seen = [];
    document.addEventListener('hubside-result', (e) => {
      seen.push({ tag: e.target.localName, model: e.detail.model, output: e.detail.output });
      if (seen.length === 2) resolve(seen);
    });
  }));

  const progress = page.evaluate(() => new Promise((resolve) => {
    const events = [];
    document.addEventListener('hubside-progress', (e) => events.push(e.detail));
    document.addEventListener('hubside-result', () => resolve(events), { once: true });
  }));
  // Both at once: the second waits for the model the first is loading instead of fetching it again.
  const first = widget('hubside-sentiment', 0);
  const second = widget('hubside-sentiment', 1);
  await first.locator('textarea').fill(reference[0].text);
  await second.locator('textarea').fill(reference[1].text);
  await first.locator('button.run').click();
  await second.locator('textarea').press('Control+Enter'); // keyboard works too
  await done(first);
  await done(second);

  for (const [w, ref] of [[first, reference[0]], [second, reference[1]]]) {
    assert.match(await w.locator('.status').textContent(), /^Done/);
    const top = w.locator('.scores li.top');
    assert.equal(await top.locator('.label').textContent(), ref.label);
    const score = Number(await top.locator('.score').textContent());
    assert.ok(Math.abs(score - Math.max(...ref.scores)) < 1e-4, `score ${score} vs ${ref.scores}`);
    assert.deepEqual((await w.locator('.scores .label').allTextContents()).sort(), ['NEGATIVE', 'POSITIVE']);
  }
  assert.equal(await first.locator('.progress.loading progress').evaluate((p) => p.value), 100);
  // Progress is reported in bytes across all files of the model, up to 100%.
  const loads = await progress;
  const last = loads.at(-1);
  assert.ok(last.total_bytes > 4_000_000 && last.loaded_bytes === last.total_bytes, JSON.stringify(last));
  assert.ok(loads.some((e) => e.file === 'model.safetensors'));
  const seen = await events;
  assert.deepEqual(seen.map((e) => e.output[0].label), [reference[0].label, reference[1].label]);
  assert.equal(seen[0].model, 'tiny-random/distilbert-sst2');

  const weights = requests.filter((u) => u.endsWith('/tiny-random/distilbert-sst2/resolve/main/model.safetensors'));
  assert.equal(weights.length, 1, `model.safetensors requested once: ${weights}`);
  assert.equal((await page.evaluate(() => window.__workers)).length, 1, 'one worker for every widget');
  assert.match(await page.textContent('#heard'), /<hubside-sentiment> answered in [\d.]+ s: POSITIVE/);
});

test('the translate widget streams the reference translation', async () => {
  const reference = fixture('marian-en-de').cases[1];
  const w = widget('hubside-translate');
  // The reference decodes greedily with at most 16 new tokens.
  await w.evaluate((el) => el.setAttribute('max-new-tokens', '16'));
  await w.locator('textarea').fill(reference.text);
  // Record every text the output shows while it grows.
  await w.evaluate((el) => {
    const out = el.shadowRoot.querySelector('output');
    window.__translationSeen = [];
    new MutationObserver(() => window.__translationSeen.push(out.textContent))
      .observe(out, { childList: true, characterData: true, subtree: true });
  });
  await w.locator('button.run').click();
  await done(w);
  assert.match(await w.locator('.status').textContent(), /^Done/);
  assert.equal(await w.locator('output').textContent(), reference.translation);
  const seen = (await page.evaluate(() => window.__translationSeen)).filter(Boolean);
  assert.ok(new Set(seen).size >= 4, `the text grows token by token: ${JSON.stringify(seen)}`);
  assert.ok(seen.every((t, i) => i === 0 || t.startsWith(seen[i - 1]) || t === reference.translation), JSON.stringify(seen));
  assert.equal((await page.evaluate(() => window.__workers)).length, 1);
});

test('the transcribe widget transcribes a chosen file', { skip: !hasWhisper && 'no Whisper weights (run scripts/fetch-whisper.sh)' }, async () => {
  const w = widget('hubside-transcribe');
  await w.locator('input[type=file]').setInputFiles(path.join(root, 'tests/fixtures/audio/jfk16.wav'));
  await w.locator('button.run').click();
  await done(w, 600_000);
  assert.match(await w.locator('.status').textContent(), /^Done/);
  const text = await w.locator('p.text').textContent();
  assert.match(text.toLowerCase(), /my fellow americans/);
  // The example asks for timestamps: timed segments inside the 11 s clip.
  const times = await w.locator('.chunks time').allTextContents();
  assert.ok(times.length >= 1, 'timed segments shown');
  assert.equal(await w.locator('.transcribing progress').evaluate((p) => p.value), 100);
  assert.equal((await page.evaluate(() => window.__workers)).length, 1);
});

test('a transcribe widget with dtype="q8" transcribes jfk16.wav exactly as in fp32', { skip: !hasWhisper && 'no Whisper weights (run scripts/fetch-whisper.sh)' }, async () => {
  // The same file through the same widget (the browser decodes and resamples it, so the samples
  // are not the WAV's own and the text may differ from the Python reference's by a comma).
  const w = widget('hubside-transcribe');
  const transcribe = async (dtype) => {
    const result = page.evaluate(() => new Promise((resolve) =>
      document.addEventListener('hubside-result', (e) => resolve(e.detail), { once: true })));
    await w.evaluate((el, d) => el.setAttribute('dtype', d), dtype);
    await w.locator('input[type=file]').setInputFiles(path.join(root, 'tests/fixtures/audio/jfk16.wav'));
    await w.locator('button.run').click();
    await done(w, 600_000);
    return result;
  };
  const fp32 = await transcribe('fp32');
  const q8 = await transcribe('q8');
  assert.equal(q8.dtype, 'q8');
  // The widget asks for timestamps, decoded as openai-whisper's transcribe() does (a short window's
  // mel frames padded with zeros): tiny.en then ends without the period, as openai's own output
  // (tests/fixtures/whisper/words.reference.json).
  assert.match(fp32.output.text, /And so my fellow Americans ask not what your country can do for you,? ask what you can do for your country\.?$/);
  assert.equal(q8.output.text, fp32.output.text);
  await w.evaluate((el) => el.removeAttribute('dtype'));
});

test('a missing model shows a readable error, and the widget works again afterwards', async () => {
  await page.screenshot({ path: path.join(outputDir, 'widgets.png'), fullPage: true });
  const w = widget('hubside-sentiment');
  const model = await w.getAttribute('model');
  const error = page.evaluate(() => new Promise((resolve) =>
    document.addEventListener('hubside-error', (e) => resolve(e.detail), { once: true })));
  await w.evaluate((el) => el.setAttribute('model', 'tiny-random/does-not-exist'));
  assert.match(await w.locator('.model').textContent(), /tiny-random\/does-not-exist/);
  await w.locator('button.run').click();
  await w.locator('.status.error').waitFor();
  const message = await w.locator('.status').textContent();
  assert.match(message, /^File not found: http:\/\/127\.0\.0\.1:\d+\/hub\/tiny-random\/does-not-exist\/resolve\/main\/config\.json/);
  assert.equal((await error).kind, 'not_found');
  await page.screenshot({ path: path.join(outputDir, 'widgets-error.png'), fullPage: false, clip: await w.boundingBox() });

  await w.evaluate((el, m) => el.setAttribute('model', m), model);
  await w.locator('button.run').click();
  await done(w);
  assert.match(await w.locator('.status').textContent(), /^Done/);
  assert.equal(await w.locator('.status.error').count(), 0);

  // A file that is not audio is refused before any model is downloaded.
  const t = widget('hubside-transcribe');
  await t.locator('input[type=file]').setInputFiles({ name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('not audio') });
  await t.locator('button.run').click();
  await t.locator('.status.error').waitFor();
  assert.match(await t.locator('.status').textContent(), /Cannot decode .notes\.txt. as audio/);
});

test('the page reads well on a phone-sized screen', async () => {
  await page.setViewportSize({ width: 360, height: 740 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  assert.ok(overflow <= 0, `no horizontal scrolling (${overflow}px too wide)`);
  for (const tag of ['hubside-sentiment', 'hubside-translate', 'hubside-transcribe']) {
    const box = await widget(tag).boundingBox();
    assert.ok(box.x >= 0 && box.x + box.width <= 360, `${tag} fits: ${JSON.stringify(box)}`);
    await widget(tag).screenshot({ path: path.join(outputDir, `widgets-narrow-${tag.slice(8)}.png`) });
  }
  await page.screenshot({ path: path.join(outputDir, 'widgets-narrow.png'), fullPage: true });
});

test('every request stayed on 127.0.0.1 and the page threw nothing', () => {
  assertOnlyLocal(assert, requests);
  assert.deepEqual(pageErrors, []);
});
