//! Browser file access through the Fetch API, streaming the body to report progress.
//! Works on the page and in Web Workers (whichever global scope has `fetch`).

use js_sys::{Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{ReadableStreamDefaultReader, Response};

use super::Blob;
use crate::error::{Error, Result};

fn describe(value: &JsValue) -> String {
    value
        .dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| value.as_string())
        .unwrap_or_else(|| format!("{value:?}"))
}

async fn fetch(url: &str) -> std::result::Result<Response, JsValue> {
    let global = js_sys::global();
    let promise = if let Some(window) = global.dyn_ref::<web_sys::Window>() {
        window.fetch_with_str(url)
    } else if let Some(worker) = global.dyn_ref::<web_sys::WorkerGlobalScope>() {
        worker.fetch_with_str(url)
    } else {
        return Err(JsValue::from_str("no fetch() in this JavaScript environment"));
    };
    Ok(JsFuture::from(promise).await?.unchecked_into())
}

/// HEAD `url`: the file's ETag (or length and modification time), `None` on 404.
pub async fn http_etag(url: &str) -> Result<Option<String>> {
    let init = web_sys::RequestInit::new();
    init.set_method("HEAD");
    let network = |e: JsValue| Error::Network { url: url.to_string(), message: describe(&e) };
    let request = web_sys::Request::new_with_str_and_init(url, &init).map_err(network)?;
    let global = js_sys::global();
    let promise = if let Some(window) = global.dyn_ref::<web_sys::Window>() {
        window.fetch_with_request(&request)
    } else if let Some(worker) = global.dyn_ref::<web_sys::WorkerGlobalScope>() {
        worker.fetch_with_request(&request)
    } else {
        return Err(Error::Network { url: url.to_string(), message: "no fetch()".into() });
    };
    let response: Response = JsFuture::from(promise).await.map_err(network)?.unchecked_into();
    match response.status() {
        404 => return Ok(None),
        200..=299 => {}
        status => return Err(Error::Http { url: url.to_string(), status }),
    }
    let header = |name: &str| response.headers().get(name).ok().flatten();
    Ok(Some(header("x-linked-etag").or_else(|| header("etag")).unwrap_or_else(|| {
        format!("{} {}", header("content-length").unwrap_or_default(), header("last-modified").unwrap_or_default())
    })))
}

/// GET `url`; `None` on 404. The body stays in JavaScript memory (see `Blob`).
pub async fn http_get(url: &str, on_chunk: &mut dyn FnMut(u64, Option<u64>)) -> Result<Option<Blob>> {
    let network = |e: JsValue| Error::Network {
        url: url.to_string(),
        message: format!("{} (offline, blocked by CORS, or the server is down)", describe(&e)),
    };
    let response = fetch(url).await.map_err(network)?;
    match response.status() {
        404 => return Ok(None),
        200..=299 => {}
        status => return Err(Error::Http { url: url.to_string(), status }),
    }
    let total = response
        .headers()
        .get("content-length")
        .ok()
        .flatten()
        .and_then(|v| v.parse::<u64>().ok());
    let Some(body) = response.body() else {
        return Ok(Some(Blob::from(Uint8Array::new_with_length(0))));
    };
    // Stream for progress, keeping the chunks in JS; join them once at the end.
    let reader: ReadableStreamDefaultReader = body.get_reader().unchecked_into();
    let mut chunks = Vec::new();
    let mut loaded = 0u64;
    loop {
        let chunk = JsFuture::from(reader.read()).await.map_err(network)?;
        if Reflect::get(&chunk, &"done".into()).map(|d| d.is_truthy()).unwrap_or(true) {
            break;
        }
        let value: Uint8Array = Reflect::get(&chunk, &"value".into()).map_err(network)?.unchecked_into();
        loaded += value.length() as u64;
        chunks.push(value);
        on_chunk(loaded, total);
    }
    let joined = Uint8Array::new_with_length(loaded as u32);
    let mut offset = 0;
    for chunk in chunks {
        joined.set(&chunk, offset);
        offset += chunk.length();
    }
    Ok(Some(Blob::from(joined)))
}
