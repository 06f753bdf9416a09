// Uses the whole API of the `hubside` package the way an application would; `tsc --strict`
// must accept it, and reject each line marked @ts-expect-error (misuse the types must catch).
import init, {
  availableBuilds, initThreadPool, type Build,
  cachedModels, clearCache, defaultEndpoint, defaultMaxMemory, initSync, modelInfo, pipeline, runtimeInfo, subtitles, supportedTasks, wasmMemoryBytes,
  type AutomaticSpeechRecognitionPipeline, type RuntimeInfo, type ErrorKind, type HubsideError, type ProgressInfo,
  type TaskInfo, type TextClassificationPipeline, type TranscriptionOutput, type TranslationOutput,
  type LiveTranscription, type LiveTranscriptionUpdate, type LiveTranscriptionResult,
} from 'hubside';

export async function useEverything(wasmBytes: ArrayBuffer): Promise<void> {
  await init();
  await init({ module_or_path: new URL('./hubside_bg.wasm', import.meta.url) });
  initSync({ module: wasmBytes });
  const builds: Build[] = availableBuilds();
  await init({ build: builds[0] });
  await init({ build: 'threads-relaxed', module_or_path: new URL('./threads-relaxed/hubside_bg.wasm', import.meta.url) });
  await initThreadPool(2);

  const endpoint: string = defaultEndpoint();
  const tasks: TaskInfo[] = supportedTasks();
  const defaults: Record<string, string> = Object.fromEntries(tasks.map((t) => [t.task, t.default_model]));
  const names: string[] = tasks.flatMap((t) => [t.task, ...t.aliases, ...t.model_types, ...t.options]);
  const suggested: string[] = tasks.flatMap((t) => t.suggested_models.map((m) => `${m.model} (${m.model_type}, ${m.parameters} parameters, ${m.bytes.q8} bytes as q8): ${m.about}`));
  console.log(endpoint, defaults, names, suggested);

  const options = {
    endpoint,
    revision: 'main',
    cache: true,
    numThreads: 2,
    progress_callback: (e: ProgressInfo) => console.log(e.status, e.name, e.file, e.loaded, e.total ?? 0, e.progress?.toFixed(1)),
  };

  // Text classification, under both names.
  const classifier: TextClassificationPipeline = await pipeline('sentiment-analysis', 'distilbert/distilbert-base-uncased-finetuned-sst-2-english', options);
  const same = await pipeline('text-classification', classifier.model);
  const task: 'text-classification' = same.task;
  // No model (undefined or null): the task's default_model.
  const byDefault = await pipeline('sentiment-analysis');
  const defaultModel: string = byDefault.model;
  await pipeline('text-classification', null, { progress: (e) => console.log(e.file) });
  const [best] = await classifier('I love this!');
  const score: number = best.score;
  const label: string = best.label;
  const perText = await classifier(['good', 'bad']); // the best label of each text
  const allLabels = await classifier('okay', { top_k: null });
  const nested = await classifier(['good', 'bad'], { top_k: 2 }); // two labels per text
  const firstOfSecond: string = nested[1][0].label;
  console.log(task, defaultModel, score, label, perText.length, allLabels.length, firstOfSecond);

  // Translation: Marian, and T5 with the languages in the task name or per call.
  const translator = await pipeline('translation', 'Helsinki-NLP/opus-mt-en-de', options);
  const translated: TranslationOutput = await translator('The house is small.', {
    max_new_tokens: 128,
    num_beams: 4,
    length_penalty: 1.0,
    early_stopping: 'never',
    on_token: (textSoFar: string, index: number) => console.log(index, textSoFar),
  });
  const t5 = await pipeline('translation_en_to_de', 'google-t5/t5-small');
  const t5Task: 'translation' = t5.task; // the canonical name, whatever name loaded it
  const [{ translation_text }] = await t5(['Hello', 'Goodbye'], { src_lang: 'en', tgt_lang: 'fr', early_stopping: true });
  // M2M100 and NLLB: the source and target language in the model's own codes.
  const nllb = await pipeline('translation', 'facebook/nllb-200-distilled-600M', options);
  const [{ translation_text: german }] = await nllb('The house is small.', { src_lang: 'eng_Latn', tgt_lang: 'deu_Latn' });
  const m2m = await pipeline('translation', 'facebook/m2m100_418M');
  await m2m('The house is small.', { src_lang: 'en', tgt_lang: 'fr', num_beams: 1 });
  console.log(translated[0].translation_text, translation_text, t5Task, german);

  // Speech recognition: mono samples, or channels as an AudioBuffer gives them.
  const asr: AutomaticSpeechRecognitionPipeline = await pipeline('automatic-speech-recognition', 'openai/whisper-tiny.en', options);
  const alias = await pipeline('asr', undefined, options);
  const multilingual: boolean = asr.multilingual && alias.multilingual;
  const mono = new Float32Array(16_000);
  const plain: TranscriptionOutput = await asr(mono);
  const language: string | null = plain.language;
  const timed = await asr([mono, mono], {
    sampling_rate: 44_100,
    return_timestamps: true,
    language: 'de',
    task: 'translate',
    on_partial: (p) => console.log(p.window, p.processed, p.duration, p.progress, p.text, p.chunks.length, p.language),
  });
  const [start, end] = timed.chunks[0].timestamp; // chunks are there with return_timestamps
  const words = await asr(mono, { return_timestamps: 'word' });
  for (const { text, timestamp: [from, to] } of words.chunks) console.log(text, from, to); // one chunk per word
  await asr(mono, { channels: 1, language: null });
  await asr(mono, {
    condition_on_previous_text: false,
    initial_prompt: 'Kennedy',
    temperature: [0, 0.5, 1],
    compression_ratio_threshold: 2.4,
    logprob_threshold: -1,
    no_speech_threshold: 0.6,
    seed: 7,
  });
  await asr(mono, { temperature: 0 });
  // @ts-expect-error: temperature is a number or a list of numbers
  await asr(mono, { temperature: 'hot' });
  console.log(multilingual, language, start + end, plain.chunks?.length);
  const srt: string = subtitles(timed, 'srt') + subtitles(timed, 'vtt', { max_line_width: 42 });
  console.log(srt);

  // Live transcription: audio pushed as it is recorded, committed text that never changes.
  const live: LiveTranscription = asr.live({ language: 'en', condition_on_previous_text: false });
  const update: LiveTranscriptionUpdate = live.push(new Float32Array(4800), 48_000);
  console.log(update.committed, update.tentative, update.received, update.decoded);
  const final: LiveTranscriptionResult = live.finish();
  console.log(final.text, final.chunks.length, final.language);
  live.free();
  asr.live();

  // The browser cache, memory, and disposing.
  for (const { model, bytes, files } of await cachedModels()) console.log(model, bytes, files.map((f) => `${f.url} ${f.bytes}`));
  const deleted: number = (await clearCache('openai/whisper-tiny.en')) + (await clearCache());
  const memory: number = wasmMemoryBytes();
  const runtime: RuntimeInfo = runtimeInfo();
  const threads: number = classifier.threads;
  console.log(deleted, memory, runtime.build === 'threads' ? runtime.threads ?? 0 : 1, runtime.simd, runtime.relaxed_simd, threads);
  for (const p of [classifier, translator, asr]) p.dispose();

  // Will it fit? Sizes and memory per dtype before downloading; a budget for pipeline().
  const info = await modelInfo('Helsinki-NLP/opus-mt-en-de', { endpoint, revision: 'main', timeout: 60, cache: false });
  const files: string[] = info.files.map((f) => `${f.file} ${f.size ?? 'size unknown'}`);
  const q8: number | undefined = info.memory?.q8;
  console.log(files, info.download_bytes, info.parameters, q8, info.exact, info.note, defaultMaxMemory());
  await pipeline('translation', 'Helsinki-NLP/opus-mt-en-de', { dtype: 'q8', max_memory: 512 * 2 ** 20, timeout: 60 });

  // Errors carry a kind.
  try {
    await pipeline('sentiment-analysis', 'no/such-model');
  } catch (e) {
    const error = e as HubsideError;
    const kind: ErrorKind = error.kind;
    if (kind === 'not_found' || kind === 'network' || kind === 'input' || kind === 'too_large') console.log(error.name, error.message);
  }
}

export async function misuse(): Promise<void> {
  const classifier = await pipeline('text-classification', 'm');
  const translator = await pipeline('translation', 'm');
  const asr = await pipeline('automatic-speech-recognition', 'm');
  // @ts-expect-error: an unknown task name
  await pipeline('summarization', 'm');
  // @ts-expect-error: a misspelt load option
  await pipeline('translation', 'm', { endpiont: 'https://example.org' });
  // @ts-expect-error: numThreads is a number
  await pipeline('translation', 'm', { numThreads: 'all' });
  // @ts-expect-error: options where the model goes (no model: undefined or null first)
  await pipeline('translation', { endpoint: 'https://example.org' });
  // @ts-expect-error: a misspelt option (topk instead of top_k)
  await classifier('text', { topk: 2 });
  // @ts-expect-error: another task's option
  await translator('text', { return_timestamps: true });
  // @ts-expect-error: text where audio is expected
  await asr('speech.wav');
  // @ts-expect-error: numbers where text is expected
  await classifier([1, 2]);
  // @ts-expect-error: early_stopping is a boolean or 'never'
  await translator('text', { early_stopping: 'always' });
  // @ts-expect-error: the Whisper task is transcribe or translate
  await asr(new Float32Array(1), { task: 'summarize' });
  // @ts-expect-error: word timestamps are asked for with 'word'
  await asr(new Float32Array(1), { return_timestamps: 'words' });
  // @ts-expect-error: live sessions take no return_timestamps (their result always has chunks)
  asr.live({ return_timestamps: true });
  // @ts-expect-error: live audio is mono samples, not channels
  asr.live().push([new Float32Array(1)], 16_000);
  // @ts-expect-error: without return_timestamps, chunks may be missing
  (await asr(new Float32Array(1))).chunks.length;
  // @ts-expect-error: not a dtype
  await pipeline('translation', 'm', { dtype: 'int4' });
  // @ts-expect-error: modelInfo takes no progress callback
  await modelInfo('m', { progress: () => {} });
  // @ts-expect-error: not an error kind
  const kind: ErrorKind = 'timeout';
  console.log(kind);
}
