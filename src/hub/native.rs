//! Native file access: blocking HTTP with ureq, and local directories. Downloads follow the rules
//! of `NetOptions` (timeouts, retries, resume, size limit, sha256).

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::time::Instant;

use super::{Blob, NetOptions, RangeRead, StallWatch};
use crate::error::{Error, Result};

const CHUNK: usize = 256 * 1024;
/// What `finish` reserves at most up front: a server's Content-Length is a claim, not memory to
/// hand over before any byte arrived.
const MAX_RESERVE: u64 = 256 << 20;

fn network(url: &str, e: &dyn std::fmt::Display) -> Error {
    Error::Network { url: url.to_string(), message: e.to_string() }
}

/// The agent for one download. Redirects are followed by hand (`send`), so the Hub's headers on
/// a redirect are seen; statuses are read rather than turned into errors; only identity bodies
/// are asked for (a compressed body's length says nothing about what it expands to).
fn agent(net: &NetOptions) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_resolve(Some(net.timeout))
        .timeout_connect(Some(net.timeout))
        .timeout_recv_response(Some(net.timeout))
        .timeout_per_read(Some(net.timeout))
        .max_redirects(0)
        .http_status_as_error(false)
        .accept_encoding("identity")
        .build()
        .into()
}

type Response = ureq::http::Response<ureq::Body>;

fn header(response: &Response, name: &str) -> Option<String> {
    response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
}

/// What the first response of a redirect chain said about the file (the Hub answers
/// `/resolve/` for an LFS file with a redirect carrying the file's sha256 and size).
#[derive(Debug, Clone, Default, PartialEq)]
struct Vouched {
    sha256: Option<String>,
    size: Option<u64>,
    /// The raw `X-Linked-Etag`, for `http_etag`.
    linked_etag: Option<String>,
}

impl Vouched {
    /// What `response` says; a redirect's own `ETag` describes the redirect, not the file, so
    /// only the final response's is read (when no `X-Linked-Etag` came before it).
    fn learn(&mut self, response: &Response, is_final: bool) {
        let get = |name: &str| header(response, name);
        if self.linked_etag.is_none() {
            self.linked_etag = get("x-linked-etag");
            self.sha256 = match (&self.linked_etag, is_final) {
                (Some(linked), _) => super::sha256_from_etag(linked),
                (None, true) => super::sha256_from_headers(get),
                (None, false) => None,
            };
        }
        if self.size.is_none() {
            self.size = get("x-linked-size").and_then(|v| v.trim().parse().ok());
        }
    }
}

/// Why one request failed.
enum Failure {
    /// Worth another attempt (after the delay the `Retry-After` value asks for, if any).
    Retry { error: Error, retry_after: Option<String> },
    Fatal(Error),
}

/// Whether a transport error means the connection was dropped (retry, resume), rather than a
/// stall (a timeout: not retried) or an answer that will not change.
fn dropped(e: &ureq::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(e, ureq::Error::Io(io) if matches!(io.kind(), UnexpectedEof | ConnectionReset | ConnectionAborted | BrokenPipe))
}

/// The error for a failed transport operation on `url`, and whether it is worth a retry.
fn transport_failure(url: &str, e: ureq::Error, limit: Option<(u64, bool)>) -> Failure {
    match e {
        ureq::Error::Timeout(kind) => Failure::Fatal(network(
            url,
            &format!("timed out ({kind}): no answer within the timeout (see --timeout)"),
        )),
        ureq::Error::BodyExceedsLimit(_) if limit.is_some() => {
            let (limit, announced) = limit.unwrap_or_default();
            Failure::Fatal(super::too_long(url, limit, announced))
        }
        e if dropped(&e) => Failure::Retry { error: network(url, &format!("the connection dropped: {e}")), retry_after: None },
        e => Failure::Fatal(network(url, &e)),
    }
}

/// `location` (a redirect's `Location`) resolved against `base`.
fn resolve_location(base: &str, location: &str) -> String {
    if location.contains("://") {
        return location.to_string();
    }
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let authority_end = base[scheme_end..].find('/').map(|i| scheme_end + i).unwrap_or(base.len());
    if let Some(rest) = location.strip_prefix("//") {
        return format!("{}{rest}", &base[..scheme_end]);
    }
    if location.starts_with('/') {
        return format!("{}{location}", &base[..authority_end]);
    }
    let path = base.split(['?', '#']).next().unwrap_or(base);
    let dir_end = path.rfind('/').filter(|&i| i >= authority_end).map(|i| i + 1).unwrap_or(path.len());
    let dir = if dir_end == path.len() && !path.ends_with('/') { format!("{path}/") } else { path[..dir_end].to_string() };
    format!("{dir}{location}")
}

/// One request for `url`, following redirects: the final response, whatever its status, unless
/// that status is worth a retry.
fn send_once(agent: &ureq::Agent, method: &str, url: &str, headers: &[(&str, String)]) -> std::result::Result<(Response, Vouched), Failure> {
    let mut vouched = Vouched::default();
    let mut current = url.to_string();
    for _ in 0..=super::MAX_REDIRECTS {
        let mut request = ureq::http::Request::builder().method(method).uri(&current);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let request = request.body(()).map_err(|e| Failure::Fatal(network(url, &e)))?;
        let response = agent.run(request).map_err(|e| transport_failure(url, e, None))?;
        let status = response.status().as_u16();
        let redirect = matches!(status, 301 | 302 | 303 | 307 | 308);
        vouched.learn(&response, !redirect);
        if redirect {
            let Some(location) = header(&response, "location") else {
                return Err(Failure::Fatal(network(url, &format!("HTTP {status} redirect without a Location"))));
            };
            current = resolve_location(&current, &location);
            continue;
        }
        if super::is_retryable_status(status) {
            let retry_after = header(&response, "retry-after");
            return Err(Failure::Retry { error: Error::Http { url: url.to_string(), status }, retry_after });
        }
        if let Some(encoding) = header(&response, "content-encoding").filter(|e| !e.trim().eq_ignore_ascii_case("identity")) {
            return Err(Failure::Fatal(network(url, &format!("the server sent a '{encoding}'-encoded body, which was not asked for"))));
        }
        return Ok((response, vouched));
    }
    Err(Failure::Fatal(network(url, &format!("more than {} redirects", super::MAX_REDIRECTS))))
}

/// `send_once`, tried again after retryable failures while `attempts` (the requests made so far
/// for this file) stays within `net.attempts`.
fn send(agent: &ureq::Agent, net: &NetOptions, method: &str, url: &str, headers: &[(&str, String)], attempts: &mut u32) -> Result<(Response, Vouched)> {
    loop {
        *attempts += 1;
        match send_once(agent, method, url, headers) {
            Ok(found) => return Ok(found),
            Err(Failure::Fatal(error)) => return Err(error),
            Err(Failure::Retry { error, retry_after }) => {
                if *attempts >= net.attempts {
                    return Err(gave_up(error, *attempts));
                }
                std::thread::sleep(super::retry_delay(*attempts, retry_after.as_deref()));
            }
        }
    }
}

/// The last error of a file that failed `attempts` times.
fn gave_up(error: Error, attempts: u32) -> Error {
    match error {
        Error::Network { url, message } => Error::Network { url, message: format!("{message} (gave up after {attempts} attempts)") },
        other => other,
    }
}

/// A GET whose body is read on demand: the first bytes can be looked at before the rest is
/// read (or the download dropped).
pub struct Download {
    url: String,
    net: NetOptions,
    agent: ureq::Agent,
    /// The body being read, from byte `buffer.len()` of the file on; `None` once it ended.
    reader: Option<Box<dyn Read + Send>>,
    buffer: Vec<u8>,
    /// The file's size, if announced.
    total: Option<u64>,
    /// What the file may hold at most (its announced length, or `max_file_bytes`), and whether
    /// it was announced.
    limit: (u64, bool),
    vouched: Vouched,
    /// The response's strong ETag, which a resumed request must match.
    etag: Option<String>,
    /// Requests made so far.
    attempts: u32,
    started: Instant,
    watch: StallWatch,
}

impl Download {
    /// GET `url`; `None` on 404. Async only so that loaders share one code path with the browser.
    pub async fn open(url: &str, net: &NetOptions) -> Result<Option<Download>> {
        let agent = agent(net);
        let mut attempts = 0;
        let (response, vouched) = send(&agent, net, "GET", url, &[], &mut attempts)?;
        let started = Instant::now();
        let mut download = Download {
            url: url.to_string(),
            net: net.clone(),
            agent,
            reader: None,
            buffer: Vec::new(),
            total: None,
            limit: (0, false),
            vouched,
            etag: None,
            attempts,
            started,
            watch: StallWatch::new(net, 0.0),
        };
        match response.status().as_u16() {
            404 => Ok(None),
            200..=299 => {
                download.take_body(response, 0)?;
                Ok(Some(download))
            }
            status => Err(Error::Http { url: url.to_string(), status }),
        }
    }

    fn now_ms(&self) -> f64 {
        self.started.elapsed().as_secs_f64() * 1000.0
    }

    /// Read `response`'s body from here on; it holds the file from byte `offset`.
    fn take_body(&mut self, response: Response, offset: u64) -> Result<()> {
        let announced = response.body().content_length();
        let total = match offset {
            0 => announced.or(self.vouched.size),
            _ => self.total,
        };
        if let (Some(size), Some(announced)) = (self.vouched.size, announced.filter(|_| offset == 0)) {
            if size != announced {
                let message = format!("the server announces {announced} bytes, the Hub's listing says the file has {size}");
                return Err(network(&self.url, &message));
            }
        }
        let limit = super::body_limit(&self.url, total, &self.net)?;
        self.total = total;
        self.limit = (limit, total.is_some());
        self.etag = header(&response, "etag").filter(|tag| !tag.starts_with("W/"));
        // The rest of the file at most; ureq reads one byte more to tell "ended at the limit"
        // from "went on".
        let body = response.into_body().into_with_config().limit(limit.saturating_sub(offset)).reader();
        self.reader = Some(Box::new(body));
        Ok(())
    }

    /// The size the server announced (Content-Length).
    pub fn size(&self) -> Option<u64> {
        self.total
    }

    /// Up to `chunk.len()` more bytes appended to the buffer; false at the end of the file.
    /// A dropped connection is resumed; a stall, an overlong body or a server that keeps
    /// failing is an error.
    fn read_more(&mut self, chunk: &mut [u8]) -> Result<bool> {
        loop {
            let Some(reader) = self.reader.as_mut() else { return Ok(false) };
            let read = reader.read(chunk);
            let now = self.now_ms();
            match read {
                Ok(0) => {
                    self.reader = None;
                    return Ok(false);
                }
                Ok(n) => {
                    if self.buffer.len() as u64 + n as u64 > self.net.max_file_bytes {
                        return Err(super::too_long(&self.url, self.net.max_file_bytes, false));
                    }
                    self.buffer.extend_from_slice(&chunk[..n]);
                    self.watch.record(now, n as u64).map_err(|message| network(&self.url, &message))?;
                    return Ok(true);
                }
                Err(e) => match transport_failure(&self.url, ureq::Error::from(e), Some(self.limit)) {
                    Failure::Fatal(error) => return Err(error),
                    Failure::Retry { error, .. } => self.resume(error)?,
                },
            }
        }
    }

    /// After the body dropped (`error`): ask for the rest with `Range` (`If-Range` its ETag), or
    /// for the whole file again when the server cannot resume it or it changed.
    fn resume(&mut self, error: Error) -> Result<()> {
        self.reader = None;
        if self.attempts >= self.net.attempts {
            return Err(gave_up(error, self.attempts));
        }
        std::thread::sleep(super::retry_delay(self.attempts, None));
        let offset = self.buffer.len() as u64;
        let mut headers = Vec::new();
        if let (Some(etag), true) = (&self.etag, offset > 0) {
            headers.push(("Range", format!("bytes={offset}-")));
            headers.push(("If-Range", etag.clone()));
        }
        let (response, vouched) = send(&self.agent, &self.net, "GET", &self.url, &headers, &mut self.attempts)?;
        let status = response.status().as_u16();
        let resumes = status == 206
            && vouched.sha256 == self.vouched.sha256
            && header(&response, "etag") == self.etag
            && header(&response, "content-range").as_deref().and_then(super::content_range_start_and_size)
                == Some((offset, self.total));
        if resumes {
            return self.take_body(response, offset);
        }
        match status {
            200 => {
                // The whole file again (no validator to resume with, or it changed).
                self.buffer.clear();
                self.total = None;
                self.vouched = vouched;
                self.take_body(response, 0)
            }
            206 => Err(network(&self.url, &"the server answered the resume with a different part or version of the file")),
            status => Err(Error::Http { url: self.url.clone(), status }),
        }
    }

    /// Read until at least `n` bytes are buffered, or the body ends.
    pub async fn buffer_to(&mut self, n: u64) -> Result<()> {
        let mut chunk = vec![0u8; CHUNK];
        let now = self.now_ms();
        self.watch.restart(now);
        while (self.buffer.len() as u64) < n && self.read_more(&mut chunk)? {}
        Ok(())
    }

    /// Buffered bytes [start, end), fewer if fewer were buffered.
    pub fn buffered(&self, start: u64, end: u64) -> Vec<u8> {
        let len = self.buffer.len() as u64;
        self.buffer[start.min(len) as usize..end.min(len) as usize].to_vec()
    }

    /// The whole body, reporting progress from what was already buffered on, checked against
    /// the size and sha256 the server vouched for.
    pub async fn finish(mut self, on_chunk: &mut dyn FnMut(u64, Option<u64>)) -> Result<Blob> {
        if !self.buffer.is_empty() {
            on_chunk(self.buffer.len() as u64, self.total);
        }
        if self.buffer.capacity() == 0 {
            self.buffer.reserve(self.total.unwrap_or(0).min(MAX_RESERVE) as usize);
        }
        let mut chunk = vec![0u8; CHUNK];
        let now = self.now_ms();
        self.watch.restart(now);
        while self.read_more(&mut chunk)? {
            on_chunk(self.buffer.len() as u64, self.total);
        }
        let len = self.buffer.len() as u64;
        if let Some(total) = self.total.filter(|&total| total != len) {
            return Err(network(&self.url, &format!("the body ended after {len} of {total} bytes")));
        }
        if let Some(expected) = &self.vouched.sha256 {
            super::check_sha256(&self.url, expected, &sha256_hex(&self.buffer))?;
        }
        Ok(Blob::from(self.buffer))
    }
}

/// Lowercase hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, bytes).as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Bytes [start, end) of `url` by a Range request; `None` on 404.
pub async fn http_get_range(url: &str, start: u64, end: u64, net: &NetOptions) -> Result<Option<RangeRead>> {
    if end <= start {
        return Ok(Some(RangeRead::Bytes { bytes: Vec::new(), size: None }));
    }
    let agent = agent(net);
    let headers = [("Range", super::range_header(start, end))];
    let (response, _) = send(&agent, net, "GET", url, &headers, &mut 0)?;
    match response.status().as_u16() {
        206 => {}
        404 => return Ok(None),
        // Starts at or past the end of the file.
        416 => return Ok(Some(RangeRead::Bytes { bytes: Vec::new(), size: None })),
        // The whole file is on its way: dropping the response closes the connection unread.
        200..=299 => return Ok(Some(RangeRead::Ignored { size: response.body().content_length() })),
        status => return Err(Error::Http { url: url.to_string(), status }),
    }
    let size = header(&response, "content-range").as_deref().and_then(super::size_from_content_range);
    let mut bytes = Vec::new();
    let started = Instant::now();
    let mut watch = StallWatch::new(net, 0.0);
    // A server that sends more than asked for is cut off at what was asked for.
    let mut body = response.into_body().into_with_config().reader().take(end - start);
    let mut chunk = vec![0u8; CHUNK.min((end - start) as usize)];
    loop {
        let n = body.read(&mut chunk).map_err(|e| match transport_failure(url, ureq::Error::from(e), None) {
            Failure::Fatal(error) | Failure::Retry { error, .. } => error,
        })?;
        if n == 0 {
            break;
        }
        bytes.extend_from_slice(&chunk[..n]);
        watch.record(started.elapsed().as_secs_f64() * 1000.0, n as u64).map_err(|message| network(url, &message))?;
    }
    Ok(Some(RangeRead::Bytes { bytes, size }))
}

/// HEAD `url`: what identifies the file's content (`identity_from_headers`); `None` on 404.
pub async fn http_etag(url: &str, net: &NetOptions) -> Result<Option<String>> {
    let (response, vouched) = send(&agent(net), net, "HEAD", url, &[], &mut 0)?;
    match response.status().as_u16() {
        404 => return Ok(None),
        200..=299 => {}
        status => return Err(Error::Http { url: url.to_string(), status }),
    }
    Ok(Some(super::identity_from_headers(|name| match name {
        "x-linked-etag" => vouched.linked_etag.clone(),
        _ => header(&response, name),
    })))
}

pub fn read_local(path: &Path, on_chunk: &mut dyn FnMut(u64, Option<u64>)) -> Result<Option<Blob>> {
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::Io(format!("{}: {e}", path.display()))),
    };
    let total = file.metadata().ok().map(|m| m.len());
    let bytes = Vec::with_capacity(total.unwrap_or(0).min(MAX_RESERVE) as usize);
    let bytes = read_all(file, bytes, total, on_chunk).map_err(|e| Error::Io(format!("{}: {e}", path.display())))?;
    Ok(Some(Blob::from(bytes)))
}

/// Bytes [start, end) of a local file; `None` if there is no such file.
pub fn read_local_range(path: &Path, start: u64, end: u64) -> Result<Option<RangeRead>> {
    let io = |e: std::io::Error| Error::Io(format!("{}: {e}", path.display()));
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(e)),
    };
    let size = file.metadata().map_err(io)?.len();
    let mut bytes = Vec::new();
    file.seek(SeekFrom::Start(start.min(size))).map_err(io)?;
    file.take(end.saturating_sub(start)).read_to_end(&mut bytes).map_err(io)?;
    Ok(Some(RangeRead::Bytes { bytes, size: Some(size) }))
}

/// Append the rest of `reader` to `bytes`, reporting the running total.
fn read_all(
    mut reader: impl Read,
    mut bytes: Vec<u8>,
    total: Option<u64>,
    on_chunk: &mut dyn FnMut(u64, Option<u64>),
) -> std::io::Result<Vec<u8>> {
    let mut chunk = vec![0u8; CHUNK];
    loop {
        let n = reader.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        bytes.extend_from_slice(&chunk[..n]);
        on_chunk(bytes.len() as u64, total);
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_locations_resolve_against_the_request() {
        let base = "http://h:1/org/m/resolve/main/f.bin?x=1";
        assert_eq!(resolve_location(base, "https://cdn/x"), "https://cdn/x");
        assert_eq!(resolve_location(base, "/a/b"), "http://h:1/a/b");
        assert_eq!(resolve_location(base, "//other/p"), "http://other/p");
        assert_eq!(resolve_location(base, "g.bin"), "http://h:1/org/m/resolve/main/g.bin");
        assert_eq!(resolve_location("http://h", "p"), "http://h/p");
    }

    #[test]
    fn sha256_is_the_standard_one() {
        assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
