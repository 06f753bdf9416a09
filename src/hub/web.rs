//! Browser file access through the Fetch API, streaming the body to report progress.
//! Works on the page and in Web Workers (whichever global scope has `fetch`).
//! Downloads follow the rules of `NetOptions` as far as fetch allows: the timeout aborts a request
//! (AbortController) whose answer or next chunk does not come in time, a dripping body fails the
//! minimum-progress rule, 429/5xx answers and network errors are retried, a body that fails midway
//! is resumed with `Range` when the server answers 206 for the same ETag, bodies are cut at
//! their announced length, and the sha256 the server gives is checked with SubtleCrypto.
//! What fetch hides: redirects are followed by the browser, so the Hub's `X-Linked-Etag` and
//! `X-Linked-Size` (sent on its redirect to the CDN) are not seen for LFS files; then the final
//! response's `ETag` is used if it is a sha256. Cross-origin, only headers the server exposes
//! (`Access-Control-Expose-Headers`) can be read: the Hub exposes ETag, Content-Range,
//! X-Linked-Etag and X-Linked-Size, not Content-Encoding or Retry-After.

use std::cell::Cell;
use std::rc::Rc;

use js_sys::{Function, Promise, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortController, Headers, ReadableStreamDefaultReader, RequestInit, Response, ResponseType};

use super::{Blob, NetOptions, RangeRead, StallWatch};
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

fn failed(url: &str, message: impl std::fmt::Display) -> Error {
    Error::Network { url: url.to_string(), message: message.to_string() }
}

fn timed_out(url: &str, net: &NetOptions) -> Error {
    failed(url, format!("timed out: no answer within {} s (the timeout)", net.timeout.as_secs_f64()))
}

fn now_ms() -> f64 {
    js_sys::Date::now()
}

/// The global `setTimeout` / `clearTimeout` (on the page and in workers alike).
fn global_function(name: &str) -> Option<Function> {
    Reflect::get(&js_sys::global(), &name.into()).ok()?.dyn_into().ok()
}

/// A promise resolving to `value` after `ms`, and its timer's id (to clear it).
fn timer(ms: f64, value: JsValue) -> (Promise, JsValue) {
    let id = Rc::new(Cell::new(None::<f64>));
    let set = id.clone();
    let promise = Promise::new(&mut |resolve, _reject| {
        if let Some(set_timeout) = global_function("setTimeout") {
            let bound = resolve.bind1(&JsValue::NULL, &value);
            set.set(set_timeout.call2(&JsValue::NULL, &bound, &ms.into()).ok().and_then(|v| v.as_f64()));
        }
    });
    let id = id.get().map(JsValue::from).unwrap_or(JsValue::UNDEFINED);
    (promise, id)
}

async fn sleep(duration: std::time::Duration) {
    let _ = JsFuture::from(timer(duration.as_secs_f64() * 1000.0, JsValue::UNDEFINED).0).await;
}

/// What a promise raced against a timer gave.
enum Raced {
    Value(JsValue),
    Failed(JsValue),
    TimedOut,
}

/// `promise`, or `TimedOut` if it has not settled within `net.timeout`.
async fn within_timeout(promise: Promise, net: &NetOptions) -> Raced {
    let mark = JsValue::from(js_sys::Symbol::for_("hubside-timeout"));
    let (timeout, id) = timer(net.timeout.as_secs_f64() * 1000.0, mark.clone());
    let raced = JsFuture::from(Promise::race(&js_sys::Array::of2(&promise, &timeout))).await;
    if let Some(clear) = global_function("clearTimeout") {
        let _ = clear.call1(&JsValue::NULL, &id);
    }
    match raced {
        Ok(value) if value == mark => Raced::TimedOut,
        Ok(value) => Raced::Value(value),
        Err(e) => Raced::Failed(e),
    }
}

/// One `method` request for `url` with `range` (a `Range` header value), aborted through
/// `controller`.
fn start_fetch(method: &str, url: &str, range: Option<&str>, controller: &AbortController) -> std::result::Result<Promise, JsValue> {
    let init = RequestInit::new();
    init.set_method(method);
    init.set_signal(Some(&controller.signal()));
    if let Some(range) = range {
        let headers = Headers::new()?;
        headers.set("Range", range)?;
        init.set_headers(&headers);
    }
    let global = js_sys::global();
    if let Some(window) = global.dyn_ref::<web_sys::Window>() {
        Ok(window.fetch_with_str_and_init(url, &init))
    } else if let Some(worker) = global.dyn_ref::<web_sys::WorkerGlobalScope>() {
        Ok(worker.fetch_with_str_and_init(url, &init))
    } else {
        Err(JsValue::from_str("no fetch() in this JavaScript environment"))
    }
}

/// A request's response and the controller that aborts its body.
struct Answer {
    response: Response,
    controller: AbortController,
}

/// `method` `url` (with `range`), retrying network errors and 408/429/5xx answers while
/// `attempts` (requests made so far for this file) stays within `net.attempts`; an answer that
/// does not come within the timeout is aborted and not retried.
async fn fetch(method: &str, url: &str, range: Option<&str>, net: &NetOptions, attempts: &mut u32) -> Result<Answer> {
    loop {
        *attempts += 1;
        let controller = AbortController::new().map_err(|e| network(url, e))?;
        let promise = start_fetch(method, url, range, &controller).map_err(|e| network(url, e))?;
        let (error, retry_after) = match within_timeout(promise, net).await {
            Raced::TimedOut => {
                controller.abort();
                return Err(timed_out(url, net));
            }
            Raced::Failed(e) => (network(url, e), None),
            Raced::Value(response) => {
                let response: Response = response.unchecked_into();
                let status = response.status();
                if !super::is_retryable_status(status) {
                    return Ok(Answer { response, controller });
                }
                let retry_after = header(&response, "retry-after");
                if let Some(body) = response.body() {
                    let _ = body.cancel();
                }
                (Error::Http { url: url.to_string(), status }, retry_after)
            }
        };
        if *attempts >= net.attempts {
            return Err(match error {
                Error::Network { url, message } => failed(&url, format!("{message} (gave up after {attempts} attempts)")),
                other => other,
            });
        }
        sleep(super::retry_delay(*attempts, retry_after.as_deref())).await;
    }
}

fn header(response: &Response, name: &str) -> Option<String> {
    response.headers().get(name).ok().flatten()
}

/// HEAD `url`: what identifies the file's content (`identity_from_headers`); `None` on 404.
pub async fn http_etag(url: &str, net: &NetOptions) -> Result<Option<String>> {
    let answer = fetch("HEAD", url, None, net, &mut 0).await?;
    match answer.response.status() {
        404 => return Ok(None),
        200..=299 => {}
        status => return Err(Error::Http { url: url.to_string(), status }),
    }
    Ok(Some(super::identity_from_headers(|name| header(&answer.response, name))))
}

/// The length a response's body will have, when it can be known: `X-Linked-Size` (the Hub's
/// size of an LFS file), else `Content-Length` when the body is surely not compressed. The
/// browser decodes compressed bodies itself, and cross-origin it hides `Content-Encoding` unless
/// exposed, so a cross-origin Content-Length may be the compressed size: there the bound is
/// `max_file_bytes` instead.
fn announced_length(response: &Response) -> Option<u64> {
    let number = |name: &str| header(response, name).and_then(|v| v.trim().parse::<u64>().ok());
    if let Some(size) = number("x-linked-size") {
        return Some(size);
    }
    let identity = match header(response, "content-encoding") {
        Some(encoding) => encoding.trim().eq_ignore_ascii_case("identity"),
        // Same-origin every header is visible: no Content-Encoding means none.
        None => response.type_() == ResponseType::Basic,
    };
    number("content-length").filter(|_| identity)
}

/// A GET whose body is read on demand: the first bytes can be looked at before the rest is
/// read (or the download cancelled). The body stays in JavaScript memory (see `Blob`).
pub struct Download {
    url: String,
    net: NetOptions,
    reader: Option<ReadableStreamDefaultReader>,
    controller: Option<AbortController>,
    chunks: Vec<Uint8Array>,
    loaded: u64,
    /// The size for progress (Content-Length, which may be the compressed size).
    total: Option<u64>,
    /// The file's length when it is surely known (`announced_length`).
    length: Option<u64>,
    sha256: Option<String>,
    etag: Option<String>,
    attempts: u32,
    watch: StallWatch,
}

impl Download {
    /// GET `url`; `None` on 404.
    pub async fn open(url: &str, net: &NetOptions) -> Result<Option<Download>> {
        let mut attempts = 0;
        let answer = fetch("GET", url, None, net, &mut attempts).await?;
        match answer.response.status() {
            404 => return Ok(None),
            200..=299 => {}
            status => return Err(Error::Http { url: url.to_string(), status }),
        }
        let mut download = Download {
            url: url.to_string(),
            net: net.clone(),
            reader: None,
            controller: None,
            chunks: Vec::new(),
            loaded: 0,
            total: None,
            length: None,
            sha256: None,
            etag: None,
            attempts,
            watch: StallWatch::new(net, now_ms()),
        };
        download.take_whole(answer)?;
        Ok(Some(download))
    }

    /// Read `answer`, the whole file, from the start.
    fn take_whole(&mut self, answer: Answer) -> Result<()> {
        let response = &answer.response;
        self.length = announced_length(response);
        super::body_limit(&self.url, self.length, &self.net)?;
        self.total = header(response, "content-length").and_then(|v| v.parse::<u64>().ok()).or(self.length);
        self.sha256 = super::sha256_from_headers(|name| header(response, name));
        self.etag = header(response, "etag").filter(|tag| !tag.starts_with("W/"));
        self.chunks.clear();
        self.loaded = 0;
        self.take_body(answer);
        Ok(())
    }

    fn take_body(&mut self, answer: Answer) {
        self.reader = answer.response.body().map(|body| body.get_reader().unchecked_into());
        self.controller = Some(answer.controller);
    }

    /// The size the server announced (Content-Length).
    pub fn size(&self) -> Option<u64> {
        self.total
    }

    /// Stop the body being read (if any).
    fn stop(&mut self) {
        if let Some(reader) = self.reader.take() {
            let _ = reader.cancel();
        }
        if let Some(controller) = self.controller.take() {
            controller.abort();
        }
    }

    /// The next chunk, `None` at the end. A body that fails midway is resumed; a stall, a body
    /// past its limit or a server that keeps failing is an error.
    async fn next(&mut self) -> Result<Option<Uint8Array>> {
        loop {
            let Some(reader) = &self.reader else { return Ok(None) };
            let chunk = match within_timeout(reader.read(), &self.net).await {
                Raced::TimedOut => {
                    self.stop();
                    return Err(timed_out(&self.url, &self.net));
                }
                Raced::Failed(e) => {
                    self.resume(network(&self.url, e)).await?;
                    continue;
                }
                Raced::Value(chunk) => chunk,
            };
            if Reflect::get(&chunk, &"done".into()).map(|d| d.is_truthy()).unwrap_or(true) {
                self.reader = None;
                self.controller = None;
                return Ok(None);
            }
            let value: Uint8Array = Reflect::get(&chunk, &"value".into()).map_err(|e| network(&self.url, e))?.unchecked_into();
            let limit = self.length.unwrap_or(self.net.max_file_bytes).min(self.net.max_file_bytes);
            if self.loaded + value.length() as u64 > limit {
                self.stop();
                return Err(super::too_long(&self.url, limit, self.length.is_some()));
            }
            if let Err(message) = self.watch.record(now_ms(), value.length() as u64) {
                self.stop();
                return Err(failed(&self.url, message));
            }
            return Ok(Some(value));
        }
    }

    /// After the body failed (`error`): the rest by a Range request, accepted only as a 206 of
    /// the same ETag starting where the body stopped (If-Range is not sent: it is not a
    /// CORS-safelisted header and would cost a preflight the Hub may refuse); otherwise the
    /// whole file again.
    async fn resume(&mut self, error: Error) -> Result<()> {
        self.stop();
        if self.attempts >= self.net.attempts {
            return Err(match error {
                Error::Network { url, message } => failed(&url, format!("{message} (gave up after {} attempts)", self.attempts)),
                other => other,
            });
        }
        sleep(super::retry_delay(self.attempts, None)).await;
        let range = (self.loaded > 0 && self.etag.is_some()).then(|| format!("bytes={}-", self.loaded));
        let answer = fetch("GET", &self.url, range.as_deref(), &self.net, &mut self.attempts).await?;
        let response = &answer.response;
        let resumes = response.status() == 206
            && header(response, "etag") == self.etag
            && header(response, "content-range").as_deref().and_then(super::content_range_start_and_size).map(|(start, _)| start) == Some(self.loaded);
        match response.status() {
            206 if resumes => {
                self.take_body(answer);
                Ok(())
            }
            200 => self.take_whole(answer),
            206 => Err(failed(&self.url, "the server answered the resume with a different part or version of the file")),
            status => Err(Error::Http { url: self.url.clone(), status }),
        }
    }

    /// Read until at least `n` bytes are buffered, or the body ends.
    pub async fn buffer_to(&mut self, n: u64) -> Result<()> {
        self.watch.restart(now_ms());
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

    /// The whole body, reporting progress from what was already buffered on, checked against
    /// its announced length and the sha256 the server gave. With the length known, the chunks
    /// go into one array of that size as they arrive, so the file is held once (joining them at
    /// the end held it twice: 5 GB at the end of NLLB-600M's 2.5 GB download); otherwise they
    /// are kept in JS and joined once at the end.
    pub async fn finish(mut self, on_chunk: &mut dyn FnMut(u64, Option<u64>)) -> Result<Blob> {
        if self.loaded > 0 {
            on_chunk(self.loaded, self.total);
        }
        self.watch.restart(now_ms());
        let mut filled = 0u32;
        let mut into = self.length.map(|length| Self::array_of(&self.url, length)).transpose()?;
        if let Some(array) = &into {
            for chunk in std::mem::take(&mut self.chunks) {
                Self::place(&self.url, array, &chunk, &mut filled)?;
            }
        }
        while let Some(chunk) = self.next().await? {
            // A failed resume fetches the whole file again (`take_whole`: nothing loaded, the
            // length announced anew): start filling again, in an array of the new length.
            if into.is_some() && self.loaded != u64::from(filled) {
                filled = 0;
                into = self.length.map(|length| Self::array_of(&self.url, length)).transpose()?;
            }
            self.loaded += chunk.length() as u64;
            match &into {
                Some(array) => Self::place(&self.url, array, &chunk, &mut filled)?,
                None => self.chunks.push(chunk),
            }
            on_chunk(self.loaded, self.total);
        }
        if let Some(length) = self.length.filter(|&length| length != self.loaded) {
            return Err(failed(&self.url, format!("the body ended after {} of {length} bytes", self.loaded)));
        }
        let joined = match into {
            Some(array) => array,
            None => {
                let joined = Self::array_of(&self.url, self.loaded)?;
                let mut offset = 0;
                for chunk in std::mem::take(&mut self.chunks) {
                    Self::place(&self.url, &joined, &chunk, &mut offset)?;
                }
                joined
            }
        };
        // Without SubtleCrypto (insecure origins) the digest cannot be taken and is not checked.
        if let Some(expected) = &self.sha256 {
            if let Some(actual) = super::browser_cache::sha256_of(&joined).await {
                super::check_sha256(&self.url, expected, &actual)?;
            }
        }
        Ok(Blob::from(joined))
    }
}

impl Download {
    /// An array for a whole file of `length` bytes.
    fn array_of(url: &str, length: u64) -> Result<Uint8Array> {
        let length = u32::try_from(length).map_err(|_| failed(url, "a file of 4 GiB or more does not fit in one browser array"))?;
        Ok(Uint8Array::new_with_length(length))
    }

    /// Copy `chunk` into `array` at `*filled`, refusing (rather than letting JS throw) a body
    /// longer than the array.
    fn place(url: &str, array: &Uint8Array, chunk: &Uint8Array, filled: &mut u32) -> Result<()> {
        let end = filled.checked_add(chunk.length()).filter(|&end| end <= array.length());
        let end = end.ok_or_else(|| failed(url, format!("the body is longer than the {} bytes announced", array.length())))?;
        array.set(chunk, *filled);
        *filled = end;
        Ok(())
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
pub async fn http_get_range(url: &str, start: u64, end: u64, net: &NetOptions) -> Result<Option<RangeRead>> {
    if end <= start {
        return Ok(Some(RangeRead::Bytes { bytes: Vec::new(), size: None }));
    }
    let mut attempts = 0;
    let answer = fetch("GET", url, Some(&super::range_header(start, end)), net, &mut attempts).await?;
    // A second handle to the same JS object (Response's inherent `clone` would tee its body).
    let response = &Clone::clone(&answer.response);
    match response.status() {
        404 => Ok(None),
        // Starts at or past the end of the file.
        416 => Ok(Some(RangeRead::Bytes { bytes: Vec::new(), size: None })),
        206 => {
            let size = header(response, "content-range").as_deref().and_then(super::size_from_content_range);
            // The part asked for, and one chunk more at most (see below).
            let length = Some(announced_length(response).unwrap_or(u64::MAX).min(end - start + (1 << 20)));
            let mut download = Download {
                url: url.to_string(),
                // A range read is not resumed (no attempts left): a failed one is an error.
                net: NetOptions { attempts: 0, ..net.clone() },
                reader: None,
                controller: None,
                chunks: Vec::new(),
                loaded: 0,
                total: None,
                length,
                sha256: None,
                etag: None,
                attempts,
                watch: StallWatch::new(net, now_ms()),
            };
            download.take_body(answer);
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
            let size = header(response, "content-length").and_then(|v| v.parse::<u64>().ok());
            // The whole file is on its way: stop it unread.
            if let Some(body) = response.body() {
                let _ = body.cancel();
            }
            Ok(Some(RangeRead::Ignored { size }))
        }
        status => Err(Error::Http { url: url.to_string(), status }),
    }
}
