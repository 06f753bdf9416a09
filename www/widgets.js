// Embeddable widgets: <hubside-sentiment>, <hubside-translate>, <hubside-transcribe>.
//
//   <script type="module" src="https://example.org/hubside/widgets.js"></script>
//   <hubside-sentiment model="distilbert/distilbert-base-uncased-finetuned-sst-2-english">
//     What a lovely day!
//   </hubside-sentiment>
//   <hubside-translate model="Helsinki-NLP/opus-mt-en-de" max-new-tokens="128"></hubside-translate>
//   <hubside-transcribe model="openai/whisper-tiny.en"></hubside-transcribe>
//
// Attributes: `model` (Hub repo id; default: the package's model for the task), `endpoint`
// (default: the package's, https://huggingface.co), `revision` (default main), `dtype` (how the
// weights are kept: fp32 (default), fp16, q8, q4), `label` (the title), `choose-model` (a model
// field whose list suggests models for the task, with their sizes; any repo id can be typed). Translate also takes `max-new-tokens` (default: the
// model's), `num-beams` (default 1: greedy, which streams), `src-lang`, `tgt-lang`; transcribe
// takes `language`, `task` (transcribe | translate), `timestamps` (show timed segments) and
// `live` (a "Live (microphone)" button: text while recording, tentative text greyed).
// The element's text content is the initial input. Every widget on a page shares one worker (so
// one loaded copy of each model) and the browser cache the wasm layer keeps models in. Results
// and errors are also dispatched as `hubside-result` / `hubside-error` events (bubbling,
// composed; `detail` has task, model, endpoint and output or message + kind) for the host page.
import { HubsideClient } from './client.js';
import { renderLive, startLive } from './live.js';
import {
  decodeAudio, describeError, fillModelList, formatBytes, formatTime, loadWithProgress, renderChunks, renderScores,
  runOnCtrlEnter, setStatus,
} from './ui.js';

// One client per page, even if this module is loaded twice under different URLs. Created on the
// first run, so a page with widgets costs nothing until someone uses one.
const CLIENT = Symbol.for('hubside.client');
function sharedClient() {
  if (!globalThis[CLIENT]) globalThis[CLIENT] = new HubsideClient(workerUrl());
  return globalThis[CLIENT];
}

// The worker sits next to this script. Browsers refuse `new Worker()` across origins, so when
// this script is included from another origin, a tiny same-origin (blob:) module worker imports
// the real one; its own imports (the wasm package) still resolve next to it.
function workerUrl() {
  const url = new URL('./worker.js', import.meta.url);
  if (url.origin === location.origin) return url;
  const shim = new Blob([`import ${JSON.stringify(url.href)};\n`], { type: 'text/javascript' });
  return URL.createObjectURL(shim);
}

const STYLE = `
:host { display: block; margin: 1rem 0; font: inherit; color: inherit;
  --hs-accent: #ff9d00; --hs-border: #d0d7de; --hs-muted: #59636e; --hs-panel: #f6f8fa; --hs-error: #b42318; --hs-focus: #0969da; }
:host([hidden]), [hidden] { display: none !important; }
.box { background: var(--hs-panel); border: 1px solid var(--hs-border); border-radius: 10px; padding: .75rem; }
.head { display: flex; flex-wrap: wrap; align-items: baseline; justify-content: space-between; gap: .25rem .75rem; margin-bottom: .4rem; }
.title { font-weight: 700; }
.model { font-size: .8rem; color: var(--hs-muted); overflow-wrap: anywhere; }
label { display: block; font-weight: 600; font-size: .9rem; margin: 0 0 .25rem; }
textarea, input[type=file] { display: block; width: 100%; box-sizing: border-box; font: inherit; padding: .45rem;
  border: 1px solid var(--hs-border); border-radius: 6px; background: #fff; color: #1f2328; }
textarea { resize: vertical; min-height: 2.6rem; }
.actions { display: flex; flex-wrap: wrap; align-items: center; gap: .5rem; margin-top: .5rem; }
button { font: inherit; font-weight: 600; padding: .4rem .9rem; border-radius: 6px; border: 1px solid var(--hs-accent);
  background: var(--hs-accent); color: #1f2328; cursor: pointer; }
button:disabled { opacity: .55; cursor: progress; }
button:focus-visible, textarea:focus-visible, input:focus-visible { outline: 3px solid var(--hs-focus); outline-offset: 1px; }
.hint { font-size: .8rem; color: var(--hs-muted); }
.choose { margin-bottom: .5rem; }
.choose input { display: block; width: 100%; box-sizing: border-box; font: inherit; padding: .35rem .45rem;
  border: 1px solid var(--hs-border); border-radius: 6px; background: #fff; color: #1f2328; }
.progress { display: flex; flex-wrap: wrap; align-items: center; gap: .25rem .5rem; margin-top: .5rem; }
.progress progress { flex: 1 1 8rem; height: .8rem; accent-color: var(--hs-accent); }
.progress span { font-size: .8rem; color: var(--hs-muted); overflow-wrap: anywhere; }
.status { margin: .4rem 0 0; min-height: 1.2em; font-size: .9rem; color: var(--hs-muted); }
.status:empty { display: none; }
.status.error { color: var(--hs-error); font-weight: 600; }
.scores { list-style: none; padding: 0; margin: .5rem 0 0; }
.scores:empty { display: none; }
.scores li { display: grid; grid-template-columns: minmax(4rem, 9rem) 1fr 3.8rem; align-items: center; gap: .5rem; margin: .2rem 0; }
.scores .label { overflow-wrap: anywhere; }
.scores li.top .label { font-weight: 700; }
.scores .bar { background: var(--hs-border); border-radius: 4px; height: .8rem; overflow: hidden; }
.scores .bar span { display: block; height: 100%; background: var(--hs-accent); }
.scores .score { text-align: right; font-variant-numeric: tabular-nums; }
.text { display: block; white-space: pre-wrap; overflow-wrap: anywhere; background: #fff; color: #1f2328;
  border: 1px solid var(--hs-border); border-radius: 6px; padding: .5rem; margin-top: .5rem; min-height: 1.4em; }
.text:empty { display: none; }
.text.growing::after { content: '▍'; color: var(--hs-muted); }
.tentative { color: var(--hs-muted); }
.chunks { list-style: none; padding: 0; margin: .4rem 0 0; font-size: .9rem; }
.chunks:empty { display: none; }
.chunks li { display: grid; grid-template-columns: 8.5rem 1fr; gap: .5rem; padding: .15rem 0; border-bottom: 1px solid #eaeef2; }
.chunks time { color: var(--hs-muted); font-variant-numeric: tabular-nums; }
@media (max-width: 420px) {
  .scores li { grid-template-columns: 1fr 3.8rem; }
  .scores .bar { grid-column: 1 / -1; grid-row: 2; }
  .chunks li { grid-template-columns: 1fr; }
}
`;

let instances = 0;

/** What the widgets have in common: attributes, the shadow DOM frame, loading with progress. */
class HubsideWidget extends HTMLElement {
  static observedAttributes = ['model', 'endpoint', 'revision'];
  static task = '';
  static title = '';

  constructor() {
    super();
    this.uid = `hs${++instances}`;
    this.busy = false;
    this.attachShadow({ mode: 'open' });
  }

  // Empty model or endpoint: the package's defaults, filled in by the worker.
  get model() { return (this.getAttribute('model') || '').trim(); }
  get endpoint() { return (this.getAttribute('endpoint') || '').trim(); }
  get revision() { return (this.getAttribute('revision') || '').trim() || undefined; }
  // fp32 | fp16 | q8 | q4; empty: the package's default. A wrong name is the package's input error.
  get dtype() { return (this.getAttribute('dtype') || '').trim() || undefined; }
  get spec() {
    return { task: this.constructor.task, model: this.model, endpoint: this.endpoint, revision: this.revision, dtype: this.dtype };
  }

  connectedCallback() {
    if (this.shadowRoot.childElementCount) return; // moved in the DOM: keep state
    const titleId = `${this.uid}-title`;
    this.shadowRoot.innerHTML = `<style>${STYLE}</style>
      <div class="box" role="group" aria-labelledby="${titleId}">
        <div class="head"><span class="title" id="${titleId}"></span><span class="model"></span></div>
        <div class="body"></div>
        <div class="progress loading" hidden>
          <progress max="100" aria-label="Model download"></progress><span class="progress-text"></span>
        </div>
        <p class="status" role="status" aria-live="polite"></p>
        <div class="result"></div>
      </div>`;
    this.$('.title').textContent = this.getAttribute('label') || this.constructor.title;
    this.showModel();
    if (this.hasAttribute('choose-model')) this.renderModelChoice(this.$('.body'));
    this.render(this.$('.body'), this.$('.result'));
  }

  /** `choose-model`: a model field above the input. Its suggestions come from the package the
   * first time it gets focus (so the worker starts only when someone looks); a change sets the
   * `model` attribute, which the next run loads. */
  renderModelChoice(body) {
    const id = `${this.uid}-model`;
    const box = Object.assign(document.createElement('div'), { className: 'choose' });
    box.innerHTML = `<label for="${id}">Model (Hub repo id)</label>
      <input id="${id}" list="${id}-list" spellcheck="false" placeholder="org/name"><datalist id="${id}-list"></datalist>`;
    body.before(box);
    const input = box.querySelector('input');
    input.value = this.model;
    let filled = false;
    input.addEventListener('focus', async () => {
      if (filled) return;
      filled = true;
      try {
        const { tasks } = await sharedClient().info();
        const entry = tasks.find((t) => t.task === this.constructor.task);
        fillModelList(box.querySelector('datalist'), entry?.suggested_models || []);
        if (!input.value) input.placeholder = entry?.default_model || input.placeholder;
      } catch {
        filled = false; // the worker could not start; the next focus tries again
      }
    });
    input.addEventListener('change', () => {
      const model = input.value.trim();
      if (model) this.setAttribute('model', model);
      else this.removeAttribute('model');
    });
  }

  attributeChangedCallback() {
    if (this.shadowRoot.childElementCount) this.showModel();
  }

  $(selector) {
    return this.shadowRoot.querySelector(selector);
  }

  /** The model (once loaded, the default one too) and the endpoint when it is not the default. */
  showModel() {
    this.$('.model').textContent = [this.model || this.defaultModel, this.endpoint].filter(Boolean).join(' · ');
  }

  /** The text between the tags, as the initial input. */
  initialText(fallback) {
    return this.textContent.trim().replace(/\s+/g, ' ') || fallback;
  }

  setStatus(text, isError = false) {
    setStatus(this.$('.status'), text, isError);
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail, bubbles: true, composed: true }));
  }

  /** Load the model (or reuse it: the worker keeps it), with one byte-based progress bar. */
  async load(client, spec) {
    const box = this.$('.progress.loading');
    box.querySelector('progress').removeAttribute('value'); // indeterminate until byte counts arrive
    box.querySelector('.progress-text').textContent = 'starting…';
    const shown = setTimeout(() => { box.hidden = false; }, 150); // no flash when already loaded
    this.setStatus(`Loading ${spec.model || 'the default model'}…`);
    try {
      return await loadWithProgress(client, spec, box, (event, tracker) => {
        this.emit('hubside-progress', { ...spec, ...event, loaded_bytes: tracker.loaded, total_bytes: tracker.total });
      });
    } finally {
      clearTimeout(shown);
      box.hidden = true; // the status line says what was downloaded
    }
  }

  /** `prepare()` (checks the input before any download), load, `work(client, spec, prepared)`,
   * report; one run at a time per widget. */
  async execute(work, prepare) {
    if (this.busy) return;
    this.busy = true;
    const button = this.$('button.run');
    button.disabled = true;
    this.setAttribute('aria-busy', 'true');
    const spec = this.spec;
    try {
      const prepared = prepare ? await prepare() : undefined;
      const client = sharedClient();
      const { bytes, model } = await this.load(client, spec);
      spec.model = model;
      if (!this.model) {
        this.defaultModel = model;
        this.showModel();
      }
      const size = bytes ? ` · model ${formatBytes(bytes)}` : '';
      this.setStatus(`Running…${size}`);
      const { value, seconds } = await work(client, spec, prepared);
      const took = seconds < 1 ? `${Math.round(seconds * 1000)} ms` : `${seconds.toFixed(1)} s`;
      this.setStatus(`Done in ${took} on this device${size}`);
      this.emit('hubside-result', { ...spec, output: value, seconds });
    } catch (error) {
      const message = describeError(error);
      this.setStatus(message.charAt(0).toUpperCase() + message.slice(1), true);
      this.emit('hubside-error', { ...spec, message: error.message, kind: error.kind || 'error' });
    } finally {
      this.busy = false;
      button.disabled = false;
      this.removeAttribute('aria-busy');
    }
  }
}

/** A widget whose input is text: a labelled textarea (the element's text content, else
 * `static input.initial`) and a run button, Ctrl/Cmd+Enter running too; `static output` is the
 * result's markup, and `run(text)` does the work. */
class TextWidget extends HubsideWidget {
  static input = { label: '', initial: '', button: '' };
  static output = '';

  render(body, result) {
    const { input: { label, initial, button }, output } = this.constructor;
    result.innerHTML = output;
    const id = `${this.uid}-input`;
    body.innerHTML = `<label for="${id}"></label><textarea id="${id}" rows="2"></textarea>
      <div class="actions"><button class="run" type="button"></button><span class="hint">or Ctrl+Enter</span></div>`;
    body.querySelector('label').textContent = label;
    const textarea = body.querySelector('textarea');
    textarea.value = this.initialText(initial);
    body.querySelector('button').textContent = button;
    body.querySelector('button').addEventListener('click', () => this.run(textarea.value));
    runOnCtrlEnter(textarea, () => this.run(textarea.value));
  }
}

function numberAttribute(element, name) {
  const value = element.getAttribute(name);
  if (value === null || value.trim() === '') return undefined;
  const n = Number(value);
  return Number.isFinite(n) ? n : undefined;
}

class SentimentWidget extends TextWidget {
  static task = 'text-classification';
  static title = 'Sentiment';
  static input = { label: 'Text to classify', initial: 'I love this movie, it was wonderful!', button: 'Analyze' };
  static output = '<ol class="scores" aria-label="Score per label"></ol>';

  run(text) {
    const list = this.$('.scores');
    list.replaceChildren();
    return this.execute(async (client, spec) => {
      const answer = await client.run(spec, text, { top_k: null });
      renderScores(list, answer.value);
      return answer;
    });
  }
}

class TranslateWidget extends TextWidget {
  static task = 'translation';
  static title = 'Translate';
  static input = { label: 'Text to translate', initial: 'The house is small.', button: 'Translate' };
  static output = '<output class="text" aria-live="polite" aria-label="Translation"></output>';

  run(text) {
    const out = this.$('output.text');
    out.textContent = '';
    // Greedy decoding unless `num-beams` says otherwise: it is faster and streams token by
    // token (beam search only knows its text at the end).
    const options = {
      max_new_tokens: numberAttribute(this, 'max-new-tokens'),
      num_beams: numberAttribute(this, 'num-beams') ?? 1,
      src_lang: this.getAttribute('src-lang') || undefined,
      tgt_lang: this.getAttribute('tgt-lang') || undefined,
    };
    return this.execute(async (client, spec) => {
      out.classList.add('growing');
      try {
        const answer = await client.run(spec, text, options, ({ text: soFar }) => {
          out.textContent = soFar;
        });
        out.textContent = answer.value[0]?.translation_text ?? '';
        return answer;
      } finally {
        out.classList.remove('growing');
      }
    });
  }
}

class TranscribeWidget extends HubsideWidget {
  static task = 'automatic-speech-recognition';
  static title = 'Transcribe';

  render(body, result) {
    const id = `${this.uid}-file`;
    const live = this.hasAttribute('live') ? '<button class="live" type="button" aria-pressed="false">Live (microphone)</button>' : '';
    body.innerHTML = `<label for="${id}">Audio file</label><input id="${id}" type="file" accept="audio/*,video/*">
      <div class="actions"><button class="run" type="button">Transcribe</button>${live}<span class="hint"></span></div>`;
    result.innerHTML = `<div class="progress transcribing" hidden>
        <progress max="100" aria-label="Transcription progress"></progress><span></span></div>
      <p class="text" aria-live="polite" aria-label="Transcript"></p>
      <ol class="chunks" aria-label="Timed segments"></ol>`;
    const input = body.querySelector('input');
    const hint = body.querySelector('.hint');
    input.addEventListener('change', () => {
      const file = input.files[0];
      hint.textContent = file ? `${file.name} (${formatBytes(file.size)})` : '';
    });
    body.querySelector('button.run').addEventListener('click', () => this.transcribe(input.files[0]));
    body.querySelector('button.live')?.addEventListener('click', () => this.toggleLive());
  }

  /** `live`: transcribe the microphone while it records (live.js) until "Stop live"; committed
   * text plain, tentative text greyed; the result event carries the final {text, chunks}. */
  toggleLive() {
    const button = this.$('button.live');
    if (this.stopLive) {
      button.disabled = true;
      this.stopLive();
      return undefined;
    }
    const text = this.$('p.text');
    const chunks = this.$('.chunks');
    let stopRequested;
    const stopped = new Promise((resolve) => { stopRequested = resolve; });
    this.stopLive = stopRequested;
    button.setAttribute('aria-pressed', 'true');
    button.textContent = 'Stop live';
    text.hidden = false;
    renderLive(text, {});
    chunks.replaceChildren();
    return this.execute(async (client, spec) => {
      const started = performance.now();
      const options = { language: this.getAttribute('language') || undefined, task: this.getAttribute('task') || undefined };
      const handle = await startLive(client, spec, options, (update) => {
        if (update.decoded) text.dataset.received = update.received;
        renderLive(text, update);
      });
      this.setStatus('Listening… speak; press "Stop live" to end.');
      await stopped;
      const value = await handle.stop();
      renderLive(text, { committed: value.text });
      if (this.hasAttribute('timestamps')) renderChunks(chunks, value.chunks);
      return { value, seconds: (performance.now() - started) / 1000 };
    }).finally(() => {
      this.stopLive = null;
      button.disabled = false;
      button.setAttribute('aria-pressed', 'false');
      button.textContent = 'Live (microphone)';
    });
  }

  transcribe(file) {
    if (!file) {
      this.setStatus('Choose an audio file first.', true);
      this.$('input[type=file]').focus();
      return;
    }
    const text = this.$('p.text');
    const chunks = this.$('.chunks');
    const box = this.$('.transcribing');
    const bar = box.querySelector('progress');
    const label = box.querySelector('span');
    text.textContent = '';
    chunks.replaceChildren();
    box.hidden = true;
    const timestamps = this.hasAttribute('timestamps');
    // With timestamps the timed segments are the transcript; otherwise the plain text is.
    text.hidden = timestamps;
    chunks.setAttribute('aria-live', timestamps ? 'polite' : 'off');
    const decode = async () => {
      this.setStatus(`Decoding ${file.name}…`);
      return decodeAudio(file);
    };
    return this.execute(async (client, spec, audio) => {
      this.setStatus(`Transcribing ${formatTime(audio.duration)} of audio…`);
      const options = {
        sampling_rate: audio.sampling_rate,
        return_timestamps: timestamps,
        language: this.getAttribute('language') || undefined,
        task: this.getAttribute('task') || undefined,
      };
      bar.value = 0;
      label.textContent = `0 / ${formatTime(audio.duration)}`;
      box.hidden = false;
      text.classList.add('growing');
      try {
        const answer = await client.run(spec, audio.channels, options, (partial) => {
          text.textContent = partial.text.trim();
          if (timestamps) renderChunks(chunks, partial.chunks);
          bar.value = 100 * (partial.progress ?? 0);
          if (partial.processed !== undefined) label.textContent = `${formatTime(partial.processed)} / ${formatTime(audio.duration)}`;
        });
        text.textContent = answer.value.text.trim();
        if (timestamps) renderChunks(chunks, answer.value.chunks);
        bar.value = 100;
        label.textContent = `${formatTime(audio.duration)} / ${formatTime(audio.duration)}`;
        return answer;
      } finally {
        text.classList.remove('growing');
      }
    }, decode);
  }
}

for (const [name, widget] of [
  ['hubside-sentiment', SentimentWidget],
  ['hubside-translate', TranslateWidget],
  ['hubside-transcribe', TranscribeWidget],
]) {
  if (!customElements.get(name)) customElements.define(name, widget);
}

export { SentimentWidget, TranslateWidget, TranscribeWidget, sharedClient };
