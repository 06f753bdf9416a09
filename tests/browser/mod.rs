//! Helpers shared by the browser test files: the mirror endpoint and calling `pipeline()` results
//! the way JavaScript does.
#![allow(dead_code)] // each test file uses its own subset

use js_sys::{Array, Function, Object, Promise, Reflect};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

/// The local Hub mirror scripts/test.sh starts (`hubside serve --hub ...`).
pub const ENDPOINT: &str = match option_env!("HUBSIDE_TEST_ENDPOINT") {
    Some(endpoint) => endpoint,
    None => "http://127.0.0.1:8788/hub",
};

/// A JS options object.
pub fn options(pairs: &[(&str, JsValue)]) -> JsValue {
    let object = Object::new();
    for (key, value) in pairs {
        Reflect::set(&object, &(*key).into(), value).unwrap();
    }
    object.into()
}

/// `await pipelineFunction(input, opts)`.
pub async fn call(function: &Function, input: JsValue, opts: JsValue) -> Result<JsValue, JsValue> {
    let promise: Promise = function.call2(&JsValue::NULL, &input, &opts).unwrap().unchecked_into();
    JsFuture::from(promise).await
}

/// The `message` of a rejected `Error`.
pub fn message(error: &JsValue) -> String {
    error.dyn_ref::<js_sys::Error>().map(|e| String::from(e.message())).unwrap_or_else(|| format!("{error:?}"))
}

/// A JS callback that records every value it is called with, and the array it records into.
/// Keep the closure alive while JS may call it.
pub fn recorder() -> (Array, Closure<dyn Fn(JsValue)>) {
    let seen = Array::new();
    let sink = seen.clone();
    (seen, Closure::new(move |value: JsValue| {
        sink.push(&value);
    }))
}

/// The Cache API cache the package keeps model files in.
pub async fn model_cache() -> web_sys::Cache {
    // The tests run in a dedicated worker, but the same helper serves a page.
    let global = js_sys::global();
    let storage = match global.dyn_ref::<web_sys::Window>() {
        Some(window) => window.caches().unwrap(),
        None => global.unchecked_ref::<web_sys::WorkerGlobalScope>().caches().unwrap(),
    };
    JsFuture::from(storage.open(hubside::hub::browser_cache::CACHE_NAME)).await.unwrap().unchecked_into()
}

/// Replace the cached `url` by its first half (headers kept), as an interrupted write would.
pub async fn truncate_cached(url: &str) {
    let cache = model_cache().await;
    let response: web_sys::Response = JsFuture::from(cache.match_with_str(url)).await.unwrap().unchecked_into();
    let headers = response.headers();
    let body = js_sys::Uint8Array::new(&JsFuture::from(response.array_buffer().unwrap()).await.unwrap());
    let half = body.subarray(0, body.length() / 2);
    let init = web_sys::ResponseInit::new();
    init.set_headers(&headers);
    let damaged = web_sys::Response::new_with_opt_buffer_source_and_init(Some(&half), &init).unwrap();
    JsFuture::from(cache.put_with_str(url, &damaged)).await.unwrap();
}

/// The misbehaving server scripts/test.sh starts (tests/browser/hostile_server.py).
pub const HOSTILE: &str = match option_env!("HUBSIDE_TEST_HOSTILE") {
    Some(endpoint) => endpoint,
    None => "http://127.0.0.1:8789",
};
