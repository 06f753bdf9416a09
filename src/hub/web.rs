//! Browser file access through the Fetch API, streaming the body to report progress.
//! Works on the page and in Web Workers (whichever global scope has `fetch`).

use js_sys::{Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{Headers, ReadableStreamDefaultReader, RequestInit, Response};

use super::{Blob, RangeRead};
use crate::error::{Error, Result};

fn describe(value: &JsValue) -> String {
    value
        .dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| value.as_string())
        .unwrap_or_else(|| format!("{value:?}"))
}

fn network(url: &str, e: JsValue) -> Error {
    Error::Network {
        url: url.to_string(),
        message: format!("{} (offline, blocked by CORS, or the server is down)", describe(&e)),
    }
}

/// GET `url`, with a `Range` header when `range` is given.
async fn fetch(url: &str, range: Option<&str>) -> std::result::Result<Response, JsValue> {
    let init = RequestInit::new();
    if let Some(range) = range {
        let headers = Headers::new()?;
        headers.set("Range", range)?;
        init.set_headers(&headers);
    }
    let global = js_sys::global();
    let promise = if let Some(window) = global.dyn_ref::<web_sys::Window>() {
        window.fetch_with_str_and_init(url, &init)
    } else if let Some(worker) = global.dyn_ref::<web_sys::WorkerGlobalScope>() {
        worker.fetch_with_str_and_init(url, &init)
    } else {
        return Err(JsValue::from_str("no fetch() in this JavaScript environment"));
    };
    Ok(JsFuture::from(promise).await?.unchecked_into())
}

fn header(response: &Response, name: &str) -> Option<String> {
    response.headers().get(name).ok().flatten()
}

/// HEAD `url`: what identifies the file's content (`identity_from_headers`); `None` on 404.
pub async fn http_etag(url: &str, _net: &super::NetOptions) -> Result<Option<String>> {
    let init = RequestInit::new();
    init.set_method("HEAD");
    let request = web_sys::Request::new_with_str_and_init(url, &init).map_err(|e| network(url, e))?;
    let global = js_sys::global();
    let promise = if let Some(window) = global.dyn_ref::<web_sys::Window>() {
        window.fetch_with_request(&request)
    } else if let Some(worker) = global.dyn_ref::<web_sys::WorkerGlobalScope>() {
        worker.fetch_with_request(&request)
    } else {
        return Err(Error::Network { url: url.to_string(), message: "no fetch()".into() });
    };
    let response: Response = JsFuture::from(promise).await.map_err(|e| network(url, e))?.unchecked_into();
    match response.status() {
        404 => return Ok(None),
        200..=299 => {}
        status => return Err(Error::Http { url: url.to_string(), status }),
    }
    Ok(Some(super::identity_from_headers(|name| header(&response, name))))
}

/// A GET whose body is read on demand: the first bytes can be looked at before the rest is
/// read (or the download cancelled). The body stays in JavaScript memory (see `Blob`).
pub struct Download {
    url: String,
    reader: Option<ReadableStreamDefaultReader>,
    chunks: Vec<Uint8Array>,
    loaded: u64,
    total: Option<u64>,
}

impl Download {
    /// GET `url`; `None` on 404.
    pub async fn open(url: &str, _net: &super::NetOptions) -> Result<Option<Download>> {
        let response = fetch(url, None).await.map_err(|e| network(url, e))?;
        match response.status() {
            404 => return Ok(None),
            200..=299 => {}
            status => return Err(Error::Http { url: url.to_string(), status }),
        }
        let total = header(&response, "content-length").and_then(|v| v.parse::<u64>().ok());
        let reader = response.body().map(|body| body.get_reader().unchecked_into());
        Ok(Some(Download { url: url.to_string(), reader, chunks: Vec::new(), loaded: 0, total }))
    }

    /// The size the server announced (Content-Length).
    pub fn size(&self) -> Option<u64> {
        self.total
    }

    /// The next chunk, `None` at the end.
    async fn next(&mut self) -> Result<Option<Uint8Array>> {
        let Some(reader) = &self.reader else { return Ok(None) };
        let chunk = JsFuture::from(reader.read()).await.map_err(|e| network(&self.url, e))?;
        if Reflect::get(&chunk, &"done".into()).map(|d| d.is_truthy()).unwrap_or(true) {
            self.reader = None;
            return Ok(None);
        }
        let value = Reflect::get(&chunk, &"value".into()).map_err(|e| network(&self.url, e))?;
        Ok(Some(value.unchecked_into()))
    }

    /// Read until at least `n` bytes are buffered, or the body ends.
    pub async fn buffer_to(&mut self, n: u64) -> Result<()> {
        while self.loaded < n {
            let Some(chunk) = self.next().await? else { break };
            self.loaded += chunk.length() as u64;
            self.chunks.push(chunk);
        }
        Ok(())
    }

    /// Buffered bytes [start, end), fewer if fewer were buffered.
    pub fn buffered(&self, start: u64, end: u64) -> Vec<u8> {
        let (start, end) = (start.min(self.loaded), end.min(self.loaded).max(start.min(self.loaded)));
        let mut out = Vec::with_capacity((end - start) as usize);
        let mut offset = 0u64;
        for chunk in &self.chunks {
            let len = chunk.length() as u64;
            let (from, to) = (start.max(offset), end.min(offset + len));
            if from < to {
                out.extend(chunk.subarray((from - offset) as u32, (to - offset) as u32).to_vec());
            }
            offset += len;
        }
        out
    }

    /// The whole body, reporting progress from what was already buffered on. Stream for
    /// progress, keeping the chunks in JS; join them once at the end.
    pub async fn finish(mut self, on_chunk: &mut dyn FnMut(u64, Option<u64>)) -> Result<Blob> {
        if self.loaded > 0 {
            on_chunk(self.loaded, self.total);
        }
        while let Some(chunk) = self.next().await? {
            self.loaded += chunk.length() as u64;
            self.chunks.push(chunk);
            on_chunk(self.loaded, self.total);
        }
        let joined = Uint8Array::new_with_length(self.loaded as u32);
        let mut offset = 0;
        for chunk in std::mem::take(&mut self.chunks) {
            joined.set(&chunk, offset);
            offset += chunk.length();
        }
        Ok(Blob::from(joined))
    }
}

impl Drop for Download {
    /// A download nobody finished stops, rather than arriving unread in the background.
    fn drop(&mut self) {
        if let Some(reader) = self.reader.take() {
            let _ = reader.cancel();
        }
    }
}

/// Bytes [start, end) of `url` by a Range request; `None` on 404.
pub async fn http_get_range(url: &str, start: u64, end: u64, _net: &super::NetOptions) -> Result<Option<RangeRead>> {
    if end <= start {
        return Ok(Some(RangeRead::Bytes { bytes: Vec::new(), size: None }));
    }
    let response = fetch(url, Some(&super::range_header(start, end))).await.map_err(|e| network(url, e))?;
    match response.status() {
        404 => Ok(None),
        // Starts at or past the end of the file.
        416 => Ok(Some(RangeRead::Bytes { bytes: Vec::new(), size: None })),
        206 => {
            let size = header(&response, "content-range").as_deref().and_then(super::size_from_content_range);
            let mut download = Download {
                url: url.to_string(),
                reader: response.body().map(|body| body.get_reader().unchecked_into()),
                chunks: Vec::new(),
                loaded: 0,
                total: None,
            };
            download.buffer_to(end - start).await?;
            // Read on to the end of the body when the server sent just the range: cancelling a
            // response whose last bytes arrived but whose end was not yet read aborts a request
            // that was about to complete (seen as net::ERR_ABORTED). A server that sends more
            // than asked for has the rest cancelled when the download is dropped.
            if download.loaded == end - start {
                if let Some(extra) = download.next().await? {
                    download.loaded += extra.length() as u64;
                }
            }
            Ok(Some(RangeRead::Bytes { bytes: download.buffered(0, end - start), size }))
        }
        200..=299 => {
            let size = header(&response, "content-length").and_then(|v| v.parse::<u64>().ok());
            // The whole file is on its way: stop it unread.
            if let Some(body) = response.body() {
                let _ = body.cancel();
            }
            Ok(Some(RangeRead::Ignored { size }))
        }
        status => Err(Error::Http { url: url.to_string(), status }),
    }
}
