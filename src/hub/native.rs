//! Native file access: blocking HTTP with ureq, and local directories.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use super::{Blob, RangeRead};
use crate::error::{Error, Result};

const CHUNK: usize = 256 * 1024;

fn network(url: &str, e: &dyn std::fmt::Display) -> Error {
    Error::Network { url: url.to_string(), message: e.to_string() }
}

/// A GET whose body is read on demand: the first bytes can be looked at before the rest is
/// read (or the download dropped).
pub struct Download {
    url: String,
    reader: Box<dyn Read + Send>,
    buffer: Vec<u8>,
    total: Option<u64>,
    ended: bool,
}

impl Download {
    /// GET `url`; `None` on 404. Async only so that loaders share one code path with the browser.
    pub async fn open(url: &str) -> Result<Option<Download>> {
        let response = match ureq::get(url).call() {
            Ok(response) => response,
            Err(ureq::Error::StatusCode(404)) => return Ok(None),
            Err(ureq::Error::StatusCode(status)) => return Err(Error::Http { url: url.to_string(), status }),
            Err(e) => return Err(network(url, &e)),
        };
        let total = response.body().content_length();
        let reader = Box::new(response.into_body().into_with_config().limit(u64::MAX).reader());
        Ok(Some(Download { url: url.to_string(), reader, buffer: Vec::new(), total, ended: false }))
    }

    /// The size the server announced (Content-Length).
    pub fn size(&self) -> Option<u64> {
        self.total
    }

    /// Read until at least `n` bytes are buffered, or the body ends.
    pub async fn buffer_to(&mut self, n: u64) -> Result<()> {
        let mut chunk = vec![0u8; CHUNK];
        while !self.ended && (self.buffer.len() as u64) < n {
            let read = self.reader.read(&mut chunk).map_err(|e| network(&self.url, &e))?;
            self.ended = read == 0;
            self.buffer.extend_from_slice(&chunk[..read]);
        }
        Ok(())
    }

    /// Buffered bytes [start, end), fewer if fewer were buffered.
    pub fn buffered(&self, start: u64, end: u64) -> Vec<u8> {
        let len = self.buffer.len() as u64;
        self.buffer[start.min(len) as usize..end.min(len) as usize].to_vec()
    }

    /// The whole body, reporting progress from what was already buffered on.
    pub async fn finish(mut self, on_chunk: &mut dyn FnMut(u64, Option<u64>)) -> Result<Blob> {
        if !self.buffer.is_empty() {
            on_chunk(self.buffer.len() as u64, self.total);
        }
        if self.buffer.capacity() == 0 {
            self.buffer.reserve(self.total.unwrap_or(0).min(1 << 32) as usize);
        }
        let bytes = read_all(self.reader, self.buffer, self.total, on_chunk).map_err(|e| network(&self.url, &e))?;
        Ok(Blob::from(bytes))
    }
}

/// Bytes [start, end) of `url` by a Range request; `None` on 404.
pub async fn http_get_range(url: &str, start: u64, end: u64) -> Result<Option<RangeRead>> {
    if end <= start {
        return Ok(Some(RangeRead::Bytes { bytes: Vec::new(), size: None }));
    }
    let response = match ureq::get(url).header("Range", &super::range_header(start, end)).call() {
        Ok(response) => response,
        Err(ureq::Error::StatusCode(404)) => return Ok(None),
        // Starts at or past the end of the file.
        Err(ureq::Error::StatusCode(416)) => return Ok(Some(RangeRead::Bytes { bytes: Vec::new(), size: None })),
        Err(ureq::Error::StatusCode(status)) => return Err(Error::Http { url: url.to_string(), status }),
        Err(e) => return Err(network(url, &e)),
    };
    if response.status().as_u16() != 206 {
        // The whole file is on its way: dropping the response closes the connection unread.
        return Ok(Some(RangeRead::Ignored { size: response.body().content_length() }));
    }
    let size = response
        .headers()
        .get("content-range")
        .and_then(|v| v.to_str().ok())
        .and_then(super::size_from_content_range);
    let mut bytes = Vec::new();
    // A server that sends more than asked for is cut off at what was asked for.
    response
        .into_body()
        .into_with_config()
        .limit(u64::MAX)
        .reader()
        .take(end - start)
        .read_to_end(&mut bytes)
        .map_err(|e| network(url, &e))?;
    Ok(Some(RangeRead::Bytes { bytes, size }))
}

/// HEAD `url`: what identifies the file's content (`identity_from_headers`); `None` on 404.
pub async fn http_etag(url: &str) -> Result<Option<String>> {
    let response = match ureq::head(url).call() {
        Ok(response) => response,
        Err(ureq::Error::StatusCode(404)) => return Ok(None),
        Err(ureq::Error::StatusCode(status)) => return Err(Error::Http { url: url.to_string(), status }),
        Err(e) => return Err(Error::Network { url: url.to_string(), message: e.to_string() }),
    };
    Ok(Some(super::identity_from_headers(|name| {
        response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
    })))
}

pub fn read_local(path: &Path, on_chunk: &mut dyn FnMut(u64, Option<u64>)) -> Result<Option<Blob>> {
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::Io(format!("{}: {e}", path.display()))),
    };
    let total = file.metadata().ok().map(|m| m.len());
    let bytes = Vec::with_capacity(total.unwrap_or(0).min(1 << 32) as usize);
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
