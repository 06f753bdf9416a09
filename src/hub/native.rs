//! Native file access: blocking HTTP with ureq, and local directories.

use std::io::Read;
use std::path::Path;

use super::Blob;
use crate::error::{Error, Result};

const CHUNK: usize = 256 * 1024;

/// GET `url`; `None` on 404. Async only so that loaders share one code path with the browser.
pub async fn http_get(url: &str, on_chunk: &mut dyn FnMut(u64, Option<u64>)) -> Result<Option<Blob>> {
    let network = |e: &dyn std::fmt::Display| Error::Network { url: url.to_string(), message: e.to_string() };
    let mut response = match ureq::get(url).call() {
        Ok(response) => response,
        Err(ureq::Error::StatusCode(404)) => return Ok(None),
        Err(ureq::Error::StatusCode(status)) => return Err(Error::Http { url: url.to_string(), status }),
        Err(e) => return Err(network(&e)),
    };
    let total = response.body().content_length();
    let reader = response.body_mut().with_config().limit(u64::MAX).reader();
    read_all(reader, total, on_chunk).map_err(|e| network(&e))
}

/// HEAD `url`: the file's ETag (the Hub's `X-Linked-Etag` for LFS files, else `ETag`), or its
/// length and modification time when there is none; `None` on 404.
pub async fn http_etag(url: &str) -> Result<Option<String>> {
    let response = match ureq::head(url).call() {
        Ok(response) => response,
        Err(ureq::Error::StatusCode(404)) => return Ok(None),
        Err(ureq::Error::StatusCode(status)) => return Err(Error::Http { url: url.to_string(), status }),
        Err(e) => return Err(Error::Network { url: url.to_string(), message: e.to_string() }),
    };
    let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    Ok(Some(header("x-linked-etag").or_else(|| header("etag")).unwrap_or_else(|| {
        format!("{} {}", header("content-length").unwrap_or_default(), header("last-modified").unwrap_or_default())
    })))
}

pub fn read_local(path: &Path, on_chunk: &mut dyn FnMut(u64, Option<u64>)) -> Result<Option<Blob>> {
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::Io(format!("{}: {e}", path.display()))),
    };
    let total = file.metadata().ok().map(|m| m.len());
    read_all(file, total, on_chunk).map_err(|e| Error::Io(format!("{}: {e}", path.display())))
}

fn read_all(
    mut reader: impl Read,
    total: Option<u64>,
    on_chunk: &mut dyn FnMut(u64, Option<u64>),
) -> std::io::Result<Option<Blob>> {
    let mut bytes = Vec::with_capacity(total.unwrap_or(0).min(1 << 32) as usize);
    let mut chunk = vec![0u8; CHUNK];
    loop {
        let n = reader.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        bytes.extend_from_slice(&chunk[..n]);
        on_chunk(bytes.len() as u64, total);
    }
    Ok(Some(Blob::from(bytes)))
}
