// The entry of the `hubside` package (`import init, { pipeline } from 'hubside'`): it picks the
// fastest of the four wasm builds that this browser runs and exposes that build's API under the
// names of npm/hubside.d.ts. It is copied next to the builds (pkg/index.js, the npm package's
// root), and www/worker.js uses it the same way.
//
// The builds (scripts/build-wasm.sh), fastest first:
//   threads-relaxed/  rayon's pool on Web Workers + relaxed SIMD's 8-bit dot products
//   threads/          the pool only
//   relaxed/          one thread + relaxed SIMD
//   hubside.js        one thread, SIMD128: runs everywhere
// The threaded ones need SharedArrayBuffer, which only a cross-origin isolated page has (COOP
// `same-origin` + COEP `require-corp`); the relaxed ones need an engine that validates relaxed
// SIMD (Chromium 114 and later). A build that fails to start is skipped for the next, with a
// warning. `init({ build })` takes one build and no other.
import * as single from './hubside.js';

/** The builds by name (runtimeInfo().build says 'threads' or 'single', relaxed_simd the rest).
 * Literal import() calls, so that bundlers see and emit every build. */
const BUILDS = {
  'threads-relaxed': () => import('./threads-relaxed/hubside.js'),
  threads: () => import('./threads/hubside.js'),
  relaxed: () => import('./relaxed/hubside.js'),
  single: async () => single,
};

// The API, bound to the build that loaded (ES modules' exports are live bindings: importers see
// the values assigned here). Until init() has resolved they are the single-thread build's, which
// throw as wasm-bindgen's functions do before their module is instantiated.
export let pipeline = single.pipeline;
export let modelInfo = single.modelInfo;
export let supportedTasks = single.supportedTasks;
export let defaultEndpoint = single.defaultEndpoint;
export let defaultMaxMemory = single.defaultMaxMemory;
export let cachedModels = single.cachedModels;
export let clearCache = single.clearCache;
export let wasmMemoryBytes = single.wasmMemoryBytes;
export let runtimeInfo = single.runtimeInfo;
export let subtitles = single.subtitles;
export let LiveTranscription = single.LiveTranscription;
/** Starts rayon's pool by hand (threaded builds); the other builds compute on one thread, so it
 * resolves at once there. */
export let initThreadPool = async () => {};

/** The build the API is bound to, once one loaded. */
let loaded;

function bind(build) {
  loaded = build;
  ({ pipeline, modelInfo, supportedTasks, defaultEndpoint, defaultMaxMemory, cachedModels, clearCache, wasmMemoryBytes, runtimeInfo, subtitles, LiveTranscription } = build);
  initThreadPool = build.initThreadPool ?? (async () => {});
}

/** The names of the builds this environment can run, fastest first. */
export function availableBuilds() {
  const relaxed = typeof WebAssembly === 'object' && WebAssembly.validate(RELAXED_SIMD_PROBE);
  const isolated = globalThis.crossOriginIsolated === true;
  return [isolated && relaxed && 'threads-relaxed', isolated && 'threads', relaxed && 'relaxed', 'single'].filter(Boolean);
}

let loading;

/**
 * Loads the fastest build that starts (or `options.build`) and binds the API to it. Later calls
 * return the first call's promise. `options.module_or_path` (or a bare URL, Response, bytes or
 * WebAssembly.Module) is handed to that build's wasm-bindgen init; without `build` it is taken
 * for the single-thread build's .wasm (hubside_bg.wasm), the package's only one before there were
 * four.
 */
export default function init(options) {
  return (loading ??= load(options));
}

async function load(options) {
  const named = options !== null && typeof options === 'object' && ('build' in options || 'module_or_path' in options);
  let { build, module_or_path } = named ? options : { module_or_path: options };
  // A .wasm file belongs to one build: without a name, the one it always was.
  if (build === undefined && module_or_path !== undefined) build = 'single';
  if (build !== undefined && !(build in BUILDS)) {
    loading = undefined; // a mistyped build can be corrected with another call
    throw Object.assign(new Error(`init: unknown build '${build}' (known: ${Object.keys(BUILDS).join(', ')})`), { kind: 'input' });
  }
  const order = build === undefined ? availableBuilds() : [build];
  for (const [i, name] of order.entries()) {
    try {
      const module = await BUILDS[name]();
      const output = await module.default(module_or_path === undefined ? undefined : { module_or_path });
      bind(module);
      return output;
    } catch (e) {
      if (i === order.length - 1) {
        loading = undefined; // e.g. a failed download: a later call tries again
        throw e;
      }
      console.warn(`hubside: the ${name} build did not load (${e && e.message}); trying the next`);
    }
  }
}

/** Instantiates the single-thread build synchronously from its .wasm bytes or module. */
export function initSync(module) {
  if (loaded !== undefined && loaded !== single) {
    throw Object.assign(new Error('initSync: init() already loaded another build'), { kind: 'input' });
  }
  const output = single.initSync(module);
  bind(single);
  loading ??= Promise.resolve(output);
  return output;
}

// A module whose one function returns i32x4.relaxed_dot_i8x16_i7x16_add_s of three zero vectors:
// valid only where the engine has relaxed SIMD.
const RELAXED_SIMD_PROBE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version
  0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7b, // types: () -> v128
  0x03, 0x02, 0x01, 0x00, // functions: one of type 0
  0x0a, 0x3d, 0x01, 0x3b, 0x00, // code: one body of 59 bytes, no locals
  ...[0, 1, 2].flatMap(() => [0xfd, 0x0c, ...new Array(16).fill(0)]), // 3 × v128.const 0
  0xfd, 0x93, 0x02, 0x0b, // i32x4.relaxed_dot_i8x16_i7x16_add_s, end
]);
