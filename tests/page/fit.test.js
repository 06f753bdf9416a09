// "Will it fit?" in Chromium: modelInfo() reads the fixtures' safetensors headers through Range
// requests and its figures equal the sums over the full headers; the page shows them when a model
// is chosen; a memory budget too small refuses the load with a readable message before the
// weights are downloaded (nothing is cached), and the page keeps working after.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { root, outputDir, startServer, launchBrowser, recordRequests, assertOnlyLocal } from './harness.js';

const HUB = path.join(root, 'tests/fixtures/hub');
const sst2 = JSON.parse(readFileSync(path.join(HUB, 'tiny-random/distilbert-sst2/reference.json')));

/** Parameters and memory per dtype from a whole safetensors file, by the rule of
 * weights::fit::stored_bytes (2-D with rows of 32k: the dtype; other 2-D: fp16 unless fp32). */
function fromFullHeader(model) {
  const bytes = readFileSync(path.join(HUB, model, 'model.safetensors'));
  const length = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + length).toString());
  delete header.__metadata__;
  const memory = { fp32: 0, fp16: 0, q8: 0, q4: 0 };
  let parameters = 0;
  let tensorBytes = 0;
  for (const { shape, data_offsets: [start, end] } of Object.values(header)) {
    const n = shape.reduce((a, b) => a * b, 1);
    parameters += n;
    tensorBytes += end - start;
    const matrix = shape.length === 2;
    const blocks = matrix && shape[1] % 32 === 0;
    memory.fp32 += 4 * n;
    memory.fp16 += matrix ? 2 * n : 4 * n;
    memory.q8 += blocks ? (n / 32) * 34 : matrix ? 2 * n : 4 * n;
    memory.q4 += blocks ? (n / 32) * 20 : matrix ? 2 * n : 4 * n;
  }
  assert.equal(memory.fp32, tensorBytes, `${model}: f32 tensors`);
  return { parameters, memory, size: bytes.length };
}

let server, context, requests, page;

before(async () => {
  server = await startServer();
  context = await launchBrowser();
  requests = recordRequests(context);
  page = await context.newPage();
  await page.goto(server.url);
  await page.waitForFunction(() => document.getElementById('endpoint').value.startsWith('http://127.0.0.1'));
});

after(async () => {
  await context?.close();
  server?.stop();
});

/** Call the package from the page: `name(...args)` of pkg/hubside.js, or the error's kind and message. */
const callPackage = (name, ...args) => page.evaluate(async ([name, args]) => {
  const hubside = await import('/pkg/hubside.js');
  await hubside.default();
  try {
    const value = await hubside[name](...args);
    return { value: typeof value === 'function' ? { task: value.task } : value };
  } catch (e) {
    return { error: { kind: e.kind, message: e.message } };
  }
}, [name, args]);

test('modelInfo reads the safetensors headers by Range requests and matches the full headers', async () => {
  const endpoint = `${server.url}/hub`;
  for (const model of ['tiny-random/distilbert-sst2', 'tiny-random/marian-en-de', 'tiny-random/t5']) {
    const mark = requests.length;
    const { value, error } = await callPackage('modelInfo', model, { endpoint, cache: false });
    assert.equal(error, undefined, model);
    const expected = fromFullHeader(model);
    assert.deepEqual(value.files, [{ file: 'model.safetensors', size: expected.size }], model);
    assert.equal(value.download_bytes, expected.size, model);
    assert.equal(value.parameters, expected.parameters, model);
    assert.deepEqual(value.memory, expected.memory, model);
    assert.equal(value.exact, true);
    const asked = requests.slice(mark).filter((u) => u.includes(`/hub/${model}/`));
    assert.deepEqual(asked, [`${endpoint}/${model}/resolve/main/model.safetensors`], 'one (Range) request for the header');
  }
  const legacy = await callPackage('modelInfo', 'tiny-random/distilbert-sst2-legacy', { endpoint });
  assert.equal(legacy.value.files[0].file, 'pytorch_model.bin');
  assert.equal(legacy.value.exact, false);
  assert.match(legacy.value.note, /only its size is known/);
  const missing = await callPackage('modelInfo', 'tiny-random/does-not-exist', { endpoint });
  assert.equal(missing.error.kind, 'not_found');
  const unknown = await callPackage('modelInfo', 'tiny-random/t5', { endpoint, dtype: 'q8' });
  assert.equal(unknown.error.kind, 'input');
});

test('pipeline() refuses a model over max_memory with a message naming estimate, dtype and budget', async () => {
  const endpoint = `${server.url}/hub`;
  const refused = await callPackage('pipeline', 'sentiment-analysis', 'tiny-random/distilbert-sst2', { endpoint, max_memory: 1_000_000, cache: false });
  assert.equal(refused.error.kind, 'too_large');
  assert.match(refused.error.message, /^tiny-random\/distilbert-sst2 needs about 3\.\d MB of memory as fp32 weights, more than the 976\.6 KB budget \(max_memory\); /);
  const q4 = await callPackage('pipeline', 'sentiment-analysis', 'tiny-random/distilbert-sst2', { endpoint, dtype: 'q4', max_memory: 1_000_000, cache: false });
  assert.deepEqual(q4.value, { task: 'text-classification' }, 'fits as q4');
  const bad = await callPackage('pipeline', 'sentiment-analysis', 'tiny-random/distilbert-sst2', { endpoint, max_memory: -1 });
  assert.equal(bad.error.kind, 'input');
  assert.equal((await callPackage('defaultMaxMemory')).value, 2 ** 31);
});

test('the page shows the size when a model is chosen, refuses one over the budget readably, and keeps working', async () => {
  const fit = fromFullHeader('tiny-random/distilbert-sst2');
  await page.fill('#sentiment-model', 'tiny-random/distilbert-sst2');
  await page.dispatchEvent('#sentiment-model', 'change');
  await page.waitForFunction(() => /^download/.test(document.getElementById('sentiment-fit').textContent));
  const mb = (n) => `${(n / 2 ** 20).toFixed(1)} MB`;
  assert.equal(await page.textContent('#sentiment-fit'),
    `download ${mb(fit.size)}; memory fp32 ${mb(fit.memory.fp32)} · fp16 ${mb(fit.memory.fp16)} · q8 ${mb(fit.memory.q8)} · q4 ${(fit.memory.q4 / 1024).toFixed(1)} KB`);

  await page.evaluate(() => { document.getElementById('settings').open = true; });
  await page.fill('#max-memory', '1');
  await page.fill('#sentiment-text', sst2.cases[0].text);
  await page.click('#sentiment-run');
  await page.waitForFunction(() => /^Error/.test(document.getElementById('sentiment-status').textContent));
  const status = await page.textContent('#sentiment-status');
  assert.match(status, /needs about 3\.\d MB of memory as fp32 weights, more than the 1\.0 MB budget.*raise the memory budget in the settings/);
  assert.equal(await page.$eval('#sentiment-status', (e) => e.classList.contains('error')), true);
  await page.screenshot({ path: path.join(outputDir, 'fit-refused.png'), fullPage: true });
  const cached = await callPackage('cachedModels');
  assert.ok(!cached.value.some((m) => m.model === 'tiny-random/distilbert-sst2' && m.files.some((f) => f.url.endsWith('model.safetensors'))),
    `the weights were not kept: ${JSON.stringify(cached.value)}`);

  await page.fill('#max-memory', '');
  await page.click('#sentiment-run');
  await page.waitForSelector('#sentiment-result li.top');
  assert.equal(await page.textContent('#sentiment-result li.top .label'), sst2.cases[0].label);
  assert.match(await page.textContent('#sentiment-status'), new RegExp(`^${sst2.cases[0].label}`));
});

test('choosing q8 in the settings marks it in the size line, fits a budget fp32 does not, and caches the compact weights', async () => {
  const fit = fromFullHeader('tiny-random/distilbert-sst2');
  await callPackage('clearCache', 'tiny-random/distilbert-sst2');
  await page.evaluate(() => { document.getElementById('settings').open = true; });
  await page.selectOption('#dtype', 'q8');
  await page.waitForFunction(() => /\(chosen\)/.test(document.getElementById('sentiment-fit').textContent));
  assert.match(await page.textContent('#sentiment-fit'), /· q8 [\d.]+ (MB|KB) \(chosen\) ·/);
  // A budget between the q8 and the fp32 estimates: refused in fp32 (above), fine in q8.
  const budget = Math.ceil((fit.memory.q8 + fit.memory.fp32) / 2 / 2 ** 20);
  assert.ok(fit.memory.q8 < budget * 2 ** 20 && budget * 2 ** 20 < fit.memory.fp32, `${budget} MB`);
  await page.fill('#max-memory', String(budget));
  await page.fill('#sentiment-text', sst2.cases[0].text);
  await page.click('#sentiment-run');
  await page.waitForSelector('#sentiment-result li.top');
  assert.equal(await page.textContent('#sentiment-result li.top .label'), sst2.cases[0].label);
  await page.waitForFunction(() => /compact q8 weights/.test(document.getElementById('cache-list').textContent));
  const cached = (await callPackage('cachedModels')).value.find((m) => m.model === 'tiny-random/distilbert-sst2');
  assert.deepEqual(cached.files.filter((f) => f.kind === 'compact').map((f) => f.dtype), ['q8']);
  await page.fill('#max-memory', '');
  await page.selectOption('#dtype', '');
});

test('every request went to 127.0.0.1', () => {
  assertOnlyLocal(assert, requests);
});
