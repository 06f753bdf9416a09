//! rayon's global pool in the browser. The kernels parallelise with rayon's global pool; in the
//! threaded wasm build (`--features threads` with atomics and shared memory, pkg/threads) its
//! threads are Web Workers sharing the module's memory, started by wasm-bindgen-rayon's
//! `initThreadPool(n)` or by the first `pipeline()` (its `numThreads` option). The single-thread
//! build (pkg/) has no pool: rayon runs everything on the calling thread.
//!
//! rayon's global pool can be built once per instance, and asking rayon anything about it before
//! builds a one-thread pool in its place; so nothing here touches rayon until the pool started.

use js_sys::Reflect;
use wasm_bindgen::JsValue;

use crate::error::{Error, Result};

/// Which build this is, for `runtimeInfo()` and the benchmarks: `"threads"` or `"single"`.
pub const BUILD: &str = if THREADED { "threads" } else { "single" };

const THREADED: bool = cfg!(all(feature = "threads", target_feature = "atomics"));

/// `numThreads` defaults to the cores the browser reports, at most this many: beyond it the
/// models here gain little and every thread is one more Web Worker holding a wasm instance.
pub const MAX_DEFAULT_THREADS: usize = 8;

/// The cores the browser reports (`navigator.hardwareConcurrency`), at most
/// `MAX_DEFAULT_THREADS`; 1 when it does not say.
pub fn default_threads() -> usize {
    let navigator = Reflect::get(&js_sys::global(), &"navigator".into()).unwrap_or(JsValue::UNDEFINED);
    let cores = Reflect::get(&navigator, &"hardwareConcurrency".into()).ok().and_then(|v| v.as_f64());
    cores.map_or(1, |n| (n as usize).clamp(1, MAX_DEFAULT_THREADS))
}

/// How many threads compute: the pool's size once it runs, 1 in the single-thread build, None
/// while the threaded build's pool has not started.
pub fn threads() -> Option<usize> {
    pool::size()
}

/// Starts the pool with `requested` threads (default `default_threads()`) unless it runs, and
/// returns how many threads compute. A different `requested` than the running pool's is an input
/// error: the pool cannot be resized. The single-thread build computes on one thread whatever is
/// asked.
pub async fn ensure_pool(requested: Option<usize>) -> Result<usize> {
    if requested == Some(0) {
        return Err(Error::Input("numThreads must be at least 1".into()));
    }
    let size = pool::start(requested.unwrap_or_else(default_threads)).await;
    match requested {
        Some(n) if THREADED && n != size => Err(Error::Input(format!(
            "numThreads: {n}, but the thread pool already runs {size} threads (it starts once, with the first pipeline's numThreads)"
        ))),
        _ => Ok(size),
    }
}

#[cfg(all(feature = "threads", target_feature = "atomics"))]
mod pool {
    use std::cell::{Cell, RefCell};

    use wasm_bindgen::JsValue;
    use wasm_bindgen_futures::JsFuture;

    thread_local! {
        /// The pool's start, awaited by every pipeline() that comes before it ends. Pipelines are
        /// created on one thread (the page's or a worker's), so its thread-locals are the instance's.
        static STARTING: RefCell<Option<js_sys::Promise>> = const { RefCell::new(None) };
        static SIZE: Cell<Option<usize>> = const { Cell::new(None) };
    }

    pub fn size() -> Option<usize> {
        SIZE.with(Cell::get)
    }

    /// The pool's size once it runs, starting it with `threads` Web Workers if nothing did.
    pub async fn start(threads: usize) -> usize {
        if let Some(size) = size() {
            return size;
        }
        let starting = STARTING.with(|s| s.borrow_mut().get_or_insert_with(|| wasm_bindgen_rayon::init_thread_pool(threads)).clone());
        if let Err(error) = JsFuture::from(starting).await {
            // `initThreadPool` was called from JS before (rayon's pool exists), or the workers
            // could not start (then rayon computes on this thread alone): either way, go on.
            let message = format!("hubside: no new thread pool ({error:?}); using the one that exists, or this thread alone");
            web_sys::console::warn_1(&JsValue::from_str(&message));
        }
        // Only now: the pool was built, or will never be and rayon may build its own.
        let size = rayon::current_num_threads();
        SIZE.with(|s| s.set(Some(size)));
        size
    }
}

#[cfg(not(all(feature = "threads", target_feature = "atomics")))]
mod pool {
    pub fn size() -> Option<usize> {
        Some(1)
    }

    pub async fn start(_threads: usize) -> usize {
        1
    }
}
