//! Browser file access through the Fetch API, streaming the body to report progress.
//! Works on the page and in Web Workers (whichever global scope has `fetch`).

use js_sys::{Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{ReadableStreamDefaultReader, Response};

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

/// GET `url`; `None` on 404.
pub async fn http_get(url: &str, on_chunk: &mut dyn FnMut(u64, Option<u64>)) -> Result<Option<Vec<u8>>> {
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
    let mut bytes = Vec::with_capacity(total.unwrap_or(0).min(1 << 31) as usize);
    let Some(body) = response.body() else {
        return Ok(Some(bytes));
    };
    let reader: ReadableStreamDefaultReader = body.get_reader().unchecked_into();
    loop {
        let chunk = JsFuture::from(reader.read()).await.map_err(network)?;
        if Reflect::get(&chunk, &"done".into()).map(|d| d.is_truthy()).unwrap_or(true) {
            break;
        }
        let value: Uint8Array = Reflect::get(&chunk, &"value".into()).map_err(network)?.unchecked_into();
        let start = bytes.len();
        bytes.resize(start + value.length() as usize, 0);
        value.copy_to(&mut bytes[start..]);
        on_chunk(bytes.len() as u64, total);
    }
    Ok(Some(bytes))
}
