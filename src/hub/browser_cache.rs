//! Model files cached in the browser's Cache API, so a second visit loads without the network.
//! Each entry carries its SHA-256 (computed with SubtleCrypto when stored) and length; an entry
//! that no longer matches them (truncated, corrupted) is deleted and the file fetched again.

use js_sys::{Array, ArrayBuffer, Uint8Array};
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{Cache, CacheStorage, Headers, Request, Response, ResponseInit, SubtleCrypto};

use super::{Blob, ByteSource};

pub const CACHE_NAME: &str = "hubside-models-v1";
const DIGEST_HEADER: &str = "x-hubside-sha256";
const LENGTH_HEADER: &str = "x-hubside-length";
const MODEL_HEADER: &str = "x-hubside-model";
/// Marks a file the repo does not have (404), so optional files are not asked for again and a
/// cached model loads offline.
const MISSING_HEADER: &str = "x-hubside-missing";

/// What the cache knows about a URL.
pub enum Cached {
    Bytes(Blob),
    Missing,
}

/// One cached file.
pub struct Entry {
    pub url: String,
    /// The repo id it belongs to.
    pub model: String,
    pub bytes: u64,
}

fn storage_and_crypto() -> Option<(CacheStorage, SubtleCrypto)> {
    let global = js_sys::global();
    if let Some(window) = global.dyn_ref::<web_sys::Window>() {
        Some((window.caches().ok()?, window.crypto().ok()?.subtle()))
    } else if let Some(worker) = global.dyn_ref::<web_sys::WorkerGlobalScope>() {
        Some((worker.caches().ok()?, worker.crypto().ok()?.subtle()))
    } else {
        None
    }
}

/// The cache, or `None` where there is none (insecure origins, some private modes).
async fn open() -> Option<(Cache, SubtleCrypto)> {
    let (storage, crypto) = storage_and_crypto()?;
    let cache = JsFuture::from(storage.open(CACHE_NAME)).await.ok()?;
    Some((cache.unchecked_into(), crypto))
}

/// The sha256 of `bytes` as lowercase hex; `None` where SubtleCrypto is unavailable (it only
/// exists in secure contexts: https or localhost).
pub(super) async fn sha256_of(bytes: &Uint8Array) -> Option<String> {
    let global = js_sys::global();
    let crypto = if let Some(window) = global.dyn_ref::<web_sys::Window>() {
        window.crypto().ok()?
    } else {
        global.dyn_ref::<web_sys::WorkerGlobalScope>()?.crypto().ok()?
    };
    sha256_hex(&crypto.subtle(), bytes).await
}

async fn sha256_hex(crypto: &SubtleCrypto, bytes: &Uint8Array) -> Option<String> {
    let digest = JsFuture::from(crypto.digest_with_str_and_buffer_source("SHA-256", bytes).ok()?).await.ok()?;
    let digest = Uint8Array::new(&digest.unchecked_into::<ArrayBuffer>()).to_vec();
    Some(digest.iter().map(|b| format!("{b:02x}")).collect())
}

/// The cached bytes of `url` if present and intact, or that the repo has no such file.
pub async fn lookup(url: &str) -> Option<Cached> {
    let (cache, crypto) = open().await?;
    let found = JsFuture::from(cache.match_with_str(url)).await.ok()?;
    let response: Response = found.dyn_into().ok()?;
    let headers = response.headers();
    if headers.get(MISSING_HEADER).ok().flatten().is_some() {
        return Some(Cached::Missing);
    }
    let expected_digest = headers.get(DIGEST_HEADER).ok().flatten();
    let expected_length = headers.get(LENGTH_HEADER).ok().flatten().and_then(|v| v.parse::<usize>().ok());
    let body = async { JsFuture::from(response.array_buffer().ok()?).await.ok() }.await;
    let bytes = body.map(|buffer| Uint8Array::new(&buffer));
    if let (Some(bytes), Some(length), Some(digest)) = (bytes, expected_length, expected_digest) {
        if bytes.length() as usize == length && sha256_hex(&crypto, &bytes).await.as_deref() == Some(digest.as_str()) {
            return Some(Cached::Bytes(Blob::from(bytes)));
        }
    }
    // Damaged or from an unknown writer: drop it so the caller fetches a fresh copy.
    let _ = JsFuture::from(cache.delete_with_str(url)).await;
    None
}

/// Bytes [start, end) of `url`'s cached copy (fewer past its end) and its length, or that the
/// repo has no such file; `None` if not cached. Only the range is read (the Cache API hands out
/// a Blob, sliced without loading it); the digest is checked when the whole file is loaded.
pub async fn lookup_range(url: &str, start: u64, end: u64) -> Option<CachedRange> {
    let (cache, _) = open().await?;
    let found = JsFuture::from(cache.match_with_str(url)).await.ok()?;
    let response: Response = found.dyn_into().ok()?;
    if response.headers().get(MISSING_HEADER).ok().flatten().is_some() {
        return Some(CachedRange::Missing);
    }
    let length = response.headers().get(LENGTH_HEADER).ok().flatten().and_then(|v| v.parse::<u64>().ok())?;
    let blob: web_sys::Blob = JsFuture::from(response.blob().ok()?).await.ok()?.dyn_into().ok()?;
    if blob.size() as u64 != length {
        return None;
    }
    let slice = blob.slice_with_f64_and_f64(start.min(length) as f64, end.min(length) as f64).ok()?;
    let buffer = JsFuture::from(slice.array_buffer()).await.ok()?;
    Some(CachedRange::Bytes { bytes: Uint8Array::new(&buffer).to_vec(), size: length })
}

/// What the cache knows about a range of a URL.
pub enum CachedRange {
    Bytes { bytes: Vec<u8>, size: u64 },
    Missing,
}

/// Keep `bytes` for `url` (a file of `model`). Failures (quota exceeded, no cache) only cost a
/// future download.
pub async fn store(url: &str, model: &str, blob: &Blob) {
    let Some((cache, crypto)) = open().await else { return };
    let body = blob.to_js();
    let Some(digest) = sha256_hex(&crypto, &body).await else { return };
    let Ok(headers) = Headers::new() else { return };
    let _ = headers.set(DIGEST_HEADER, &digest);
    let _ = headers.set(LENGTH_HEADER, &blob.len().to_string());
    let _ = headers.set(MODEL_HEADER, model);
    let _ = headers.set("content-type", "application/octet-stream");
    let init = ResponseInit::new();
    init.set_headers(&headers);
    let Ok(response) = Response::new_with_opt_buffer_source_and_init(Some(&body), &init) else { return };
    let _ = JsFuture::from(cache.put_with_str(url, &response)).await;
}

/// Remember that `url` (a file of `model`) does not exist.
pub async fn store_missing(url: &str, model: &str) {
    let Some((cache, _)) = open().await else { return };
    let Ok(headers) = Headers::new() else { return };
    let _ = headers.set(MISSING_HEADER, "1");
    let _ = headers.set(MODEL_HEADER, model);
    let init = ResponseInit::new();
    init.set_headers(&headers);
    let Ok(response) = Response::new_with_opt_buffer_source_and_init(None, &init) else { return };
    let _ = JsFuture::from(cache.put_with_str(url, &response)).await;
}

/// Every cached file (not the markers of missing files).
pub async fn entries() -> Vec<Entry> {
    let Some((cache, _)) = open().await else { return Vec::new() };
    let Ok(keys) = JsFuture::from(cache.keys()).await else { return Vec::new() };
    let mut entries = Vec::new();
    for request in Array::from(&keys).iter() {
        let url = request.unchecked_into::<Request>().url();
        let found = JsFuture::from(cache.match_with_str(&url)).await.ok();
        let Some(response) = found.and_then(|r| r.dyn_into::<Response>().ok()) else { continue };
        let header = |name: &str| response.headers().get(name).ok().flatten();
        let bytes = header(LENGTH_HEADER).and_then(|v| v.parse().ok()).unwrap_or(0);
        let model = header(MODEL_HEADER).unwrap_or_default();
        if header(MISSING_HEADER).is_none() {
            entries.push(Entry { url, model, bytes });
        }
    }
    entries
}

/// Delete the cached files for which `matches` holds; returns how many were deleted.
/// Markers of missing files go with their model.
pub async fn delete_where(matches: impl Fn(&Entry) -> bool) -> usize {
    let Some((cache, _)) = open().await else { return 0 };
    let Ok(keys) = JsFuture::from(cache.keys()).await else { return 0 };
    let mut deleted = 0;
    for request in Array::from(&keys).iter() {
        let url = request.unchecked_into::<Request>().url();
        let found = JsFuture::from(cache.match_with_str(&url)).await.ok();
        let Some(response) = found.and_then(|r| r.dyn_into::<Response>().ok()) else { continue };
        let header = |name: &str| response.headers().get(name).ok().flatten();
        let entry = Entry {
            url,
            model: header(MODEL_HEADER).unwrap_or_default(),
            bytes: header(LENGTH_HEADER).and_then(|v| v.parse().ok()).unwrap_or(0),
        };
        let is_file = header(MISSING_HEADER).is_none();
        if matches(&entry) && JsFuture::from(cache.delete_with_str(&entry.url)).await.map(|v| v.is_truthy()).unwrap_or(false) && is_file {
            deleted += 1;
        }
    }
    deleted
}
