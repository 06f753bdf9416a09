// The demo page: every model runs in the worker (client.js); this file only drives the UI.
import { HubsideClient, LoadProgress, formatBytes } from './client.js';

const $ = (id) => document.getElementById(id);
const client = new HubsideClient();

// `hubside serve --hub DIR` publishes its mirror here; on static hosting this 404s and the
// defaults (huggingface.co) stay.
async function applySiteConfig() {
  try {
    const response = await fetch('./hubside.json');
    if (!response.ok) return;
    const config = await response.json();
    if (config.endpoint) $('endpoint').value = config.endpoint;
    const models = config.models?.sentiment || [];
    $('sentiment-models').replaceChildren(...models.map((m) => Object.assign(document.createElement('option'), { value: m })));
    if (models.length) $('sentiment-model').value = models[0];
  } catch { /* static hosting: keep defaults */ }
}

function showProgress(prefix, tracker) {
  const box = $(`${prefix}-progress`);
  box.hidden = false;
  const percent = tracker.total ? (100 * tracker.loaded) / tracker.total : 0;
  box.querySelector('progress').value = percent;
  box.querySelector('.progress-text').textContent =
    `${tracker.current || 'all files'} — ${formatBytes(tracker.loaded)} / ${formatBytes(tracker.total)}`;
}

function setStatus(prefix, text, isError = false) {
  const status = $(`${prefix}-status`);
  status.textContent = text;
  status.classList.toggle('error', isError);
}

function spec(prefix, task) {
  return { task, model: $(`${prefix}-model`).value.trim(), endpoint: $('endpoint').value.trim() };
}

async function loadModel(prefix, task) {
  const tracker = new LoadProgress();
  const s = spec(prefix, task);
  setStatus(prefix, `Loading ${s.model}…`);
  const loaded = await client.load(s, (event) => {
    tracker.update(event);
    showProgress(prefix, tracker);
  });
  if (tracker.total) showProgress(prefix, tracker);
  return { spec: s, loaded };
}

function renderScores(list, scores) {
  list.replaceChildren(...scores.map(({ label, score }, i) => {
    const li = document.createElement('li');
    li.className = i === 0 ? 'top' : '';
    li.innerHTML = '<span class="label"></span><span class="bar"><span></span></span><span class="score"></span>';
    li.querySelector('.label').textContent = label;
    li.querySelector('.bar span').style.width = `${(score * 100).toFixed(1)}%`;
    li.querySelector('.score').textContent = score.toFixed(4);
    return li;
  }));
}

async function runSentiment() {
  const run = $('sentiment-run');
  run.disabled = true;
  $('sentiment-cancel').disabled = false;
  $('sentiment-result').replaceChildren();
  try {
    const { spec: s, loaded } = await loadModel('sentiment', 'sentiment-analysis');
    setStatus('sentiment', `Running (model loaded in ${loaded.seconds.toFixed(2)} s)…`);
    const { value, seconds } = await client.run(s, $('sentiment-text').value, { top_k: null });
    renderScores($('sentiment-result'), value);
    setStatus('sentiment', `${value[0].label} — ${(seconds * 1000).toFixed(0)} ms`);
  } catch (e) {
    setStatus('sentiment', e.kind === 'cancelled' ? 'Cancelled.' : `Error: ${e.message}`, e.kind !== 'cancelled');
  } finally {
    run.disabled = false;
    $('sentiment-cancel').disabled = true;
  }
}

$('sentiment-run').addEventListener('click', runSentiment);
$('sentiment-cancel').addEventListener('click', () => client.cancel());
$('sentiment-text').addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) runSentiment();
});
applySiteConfig();
