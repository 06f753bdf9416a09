//! Where model files come from: a Hub repository (`{endpoint}/{repo}/resolve/{revision}/{file}`),
//! fetched over HTTP (ureq natively, the Fetch API in the browser), or a local directory natively.
//! Every download reports progress in bytes. Parts of a file can be read without downloading it
//! (`Repo::read_range`, HTTP Range requests), e.g. to size a model up before loading it.

mod blob;
#[cfg(not(target_arch = "wasm32"))]
mod native;
#[cfg(not(target_arch = "wasm32"))]
use native as platform;
#[cfg(target_arch = "wasm32")]
pub mod browser_cache;
#[cfg(target_arch = "wasm32")]
mod web;
#[cfg(target_arch = "wasm32")]
use web as platform;

pub use blob::{Blob, ByteSource};

use crate::error::{Error, Result};

pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";
pub const DEFAULT_REVISION: &str = "main";

/// GET `url` to the end (the body stays in JavaScript memory in the browser); `None` on 404.
async fn http_get(url: &str, on_chunk: &mut dyn FnMut(u64, Option<u64>)) -> Result<Option<Blob>> {
    match platform::Download::open(url).await? {
        Some(download) => Ok(Some(download.finish(on_chunk).await?)),
        None => Ok(None),
    }
}

/// What identifies a file's content from its response headers: the Hub's `X-Linked-Etag` for LFS
/// files (the content's sha256), else `ETag`, else its length and modification time.
fn identity_from_headers(header: impl Fn(&str) -> Option<String>) -> String {
    header("x-linked-etag").or_else(|| header("etag")).unwrap_or_else(|| {
        format!("{} {}", header("content-length").unwrap_or_default(), header("last-modified").unwrap_or_default())
    })
}

/// The dtype of a compact-model cache entry's URL (see `Repo::compact_key`), or None for a
/// repo's own file.
pub fn compact_dtype_of(url: &str) -> Option<String> {
    let name = url.rsplit('/').next()?;
    name.strip_prefix(".hubside-compact-")?.strip_suffix(".gguf").map(str::to_string)
}

/// hubside's cache directory natively: `$HUBSIDE_CACHE`, else `~/.cache/hubside`.
#[cfg(not(target_arch = "wasm32"))]
pub fn cache_dir() -> Option<std::path::PathBuf> {
    std::env::var_os("HUBSIDE_CACHE")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".cache/hubside")))
}

/// What a progress callback is told: transformers.js' `progress_callback` statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Initiate,
    Progress,
    Done,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Initiate => "initiate",
            Status::Progress => "progress",
            Status::Done => "done",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Progress<'a> {
    pub status: Status,
    /// The model (repo id or directory).
    pub name: &'a str,
    pub file: &'a str,
    pub loaded: u64,
    /// From Content-Length; unknown for chunked responses.
    pub total: Option<u64>,
}

pub type ProgressFn = Box<dyn Fn(&Progress)>;

/// What a ranged read got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RangeRead {
    /// The bytes asked for (fewer past the end of the file), and the file's size when known.
    Bytes { bytes: Vec<u8>, size: Option<u64> },
    /// The server ignores Range and began sending the whole file, which was not read; its size
    /// if the server said it (Content-Length).
    Ignored { size: Option<u64> },
}

/// The `Range` header for bytes [start, end) (HTTP ranges include their last byte).
fn range_header(start: u64, end: u64) -> String {
    format!("bytes={start}-{}", end.saturating_sub(1).max(start))
}

/// The file size in a `Content-Range: bytes a-b/size` header (`None` for `*`).
fn size_from_content_range(value: &str) -> Option<u64> {
    value.trim().rsplit_once('/')?.1.trim().parse().ok()
}

#[derive(Debug, Clone)]
enum Location {
    Remote { endpoint: String, repo: String, revision: String },
    #[cfg(not(target_arch = "wasm32"))]
    Local(std::path::PathBuf),
    /// Files already in memory (user-provided files, benchmarks).
    Memory { name: String, files: std::collections::HashMap<String, Vec<u8>> },
}

/// A model repository: names files, fetches them, reports progress.
pub struct Repo {
    location: Location,
    progress: Option<ProgressFn>,
    /// In the browser, keep downloads in the Cache API and reuse them (default on); everywhere,
    /// keep compact (fp16/q8/q4) models built from this repo.
    cache: bool,
    /// Natively, where compact models are kept (default: `cache_dir()/compact`).
    #[cfg(not(target_arch = "wasm32"))]
    compact_dir: Option<std::path::PathBuf>,
    /// See `holding_downloads`.
    hold: bool,
    /// The download a range read began in `hold` mode, with its URL, for `get_blob` to finish.
    held: std::cell::RefCell<Option<(String, platform::Download)>>,
}

impl Repo {
    /// A Hub repository. `endpoint` defaults to huggingface.co, `revision` to `main`.
    pub fn remote(repo: &str, endpoint: Option<&str>, revision: Option<&str>) -> Result<Self> {
        let repo = repo.trim().trim_matches('/');
        let valid = !repo.is_empty()
            && repo.split('/').count() <= 2
            && repo.split('/').all(|part| {
                !part.is_empty()
                    && part != "."
                    && part != ".."
                    && part.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            });
        if !valid {
            return Err(Error::Input(format!(
                "'{repo}' is not a Hub repository id (expected 'org/name')"
            )));
        }
        let endpoint = endpoint.filter(|e| !e.trim().is_empty()).unwrap_or(DEFAULT_ENDPOINT);
        let revision = revision.filter(|r| !r.trim().is_empty()).unwrap_or(DEFAULT_REVISION);
        Ok(Repo {
            location: Location::Remote {
                endpoint: endpoint.trim().trim_end_matches('/').to_string(),
                repo: repo.to_string(),
                revision: revision.trim().to_string(),
            },
            progress: None,
            cache: true,
            #[cfg(not(target_arch = "wasm32"))]
            compact_dir: None,
            hold: false,
            held: Default::default(),
        })
    }

    /// A directory laid out like a Hub repository.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn local(dir: impl Into<std::path::PathBuf>) -> Self {
        Repo {
            location: Location::Local(dir.into()),
            progress: None,
            cache: false,
            compact_dir: None,
            hold: false,
            held: Default::default(),
        }
    }

    /// A repository whose files are already in memory, keyed by file name.
    pub fn memory(name: &str, files: std::collections::HashMap<String, Vec<u8>>) -> Self {
        Repo {
            location: Location::Memory { name: name.to_string(), files },
            progress: None,
            cache: false,
            #[cfg(not(target_arch = "wasm32"))]
            compact_dir: None,
            hold: false,
            held: Default::default(),
        }
    }

    /// A local directory if `model` is one, otherwise a Hub repo id.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn open(model: &str, endpoint: Option<&str>, revision: Option<&str>) -> Result<Self> {
        let path = std::path::Path::new(model);
        if path.is_dir() {
            Ok(Repo::local(path))
        } else {
            Repo::remote(model, endpoint, revision)
        }
    }

    pub fn with_progress(mut self, progress: ProgressFn) -> Self {
        self.progress = Some(progress);
        self
    }

    /// Whether browser downloads go through the Cache API, and whether compact models are kept.
    pub fn with_cache(mut self, cache: bool) -> Self {
        self.cache = cache;
        self
    }

    /// Natively, keep compact models in `dir` instead of `cache_dir()/compact`.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn with_compact_dir(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
        self.compact_dir = Some(dir.into());
        self
    }

    /// For a look at a file's first bytes right before it is loaded: the first remote range read
    /// from the start of a file begins an ordinary download of the whole file instead of a Range
    /// request, reads only as far as asked, and keeps the download for `get_blob` to finish, so
    /// the file is requested once. Dropped unfinished (with the repo), the download stops.
    /// Only one download is kept (a stalled one holds a connection): later range reads use Range.
    pub fn holding_downloads(mut self) -> Self {
        self.hold = true;
        self
    }

    /// The repo id, or the directory for a local model.
    pub fn name(&self) -> String {
        match &self.location {
            Location::Remote { repo, .. } => repo.clone(),
            #[cfg(not(target_arch = "wasm32"))]
            Location::Local(dir) => dir.display().to_string(),
            Location::Memory { name, .. } => name.clone(),
        }
    }

    /// Where `file` lives: its URL, or its path for a local model.
    pub fn url(&self, file: &str) -> String {
        match &self.location {
            Location::Remote { endpoint, repo, revision } => {
                format!("{endpoint}/{repo}/resolve/{revision}/{file}")
            }
            #[cfg(not(target_arch = "wasm32"))]
            Location::Local(dir) => dir.join(file).display().to_string(),
            Location::Memory { name, .. } => format!("{name}/{file} (in memory)"),
        }
    }

    /// The file's bytes; `Error::NotFound` with its URL if the repo has no such file.
    pub async fn get(&self, file: &str) -> Result<Vec<u8>> {
        self.get_optional(file).await?.ok_or_else(|| Error::NotFound { url: self.url(file) })
    }

    /// The file's bytes, or `None` if the repo has no such file (other failures are errors).
    pub async fn get_optional(&self, file: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.get_blob_optional(file).await?.map(Blob::into_vec))
    }

    /// The file as a `Blob`, for big files read piece by piece (in the browser it stays in JS
    /// memory); `Error::NotFound` with its URL if the repo has no such file.
    pub async fn get_blob(&self, file: &str) -> Result<Blob> {
        self.get_blob_optional(file).await?.ok_or_else(|| Error::NotFound { url: self.url(file) })
    }

    /// The file as a `Blob`, or `None` if the repo has no such file.
    pub async fn get_blob_optional(&self, file: &str) -> Result<Option<Blob>> {
        let name = self.name();
        let report = |status, loaded, total| {
            if let Some(progress) = &self.progress {
                progress(&Progress { status, name: &name, file, loaded, total });
            }
        };
        report(Status::Initiate, 0, None);
        let mut on_chunk = |loaded: u64, total: Option<u64>| report(Status::Progress, loaded, total);
        let bytes = match &self.location {
            Location::Remote { .. } => self.fetch_remote(&self.url(file), &mut on_chunk).await?,
            #[cfg(not(target_arch = "wasm32"))]
            Location::Local(dir) => native::read_local(&dir.join(file), &mut on_chunk)?,
            Location::Memory { files, .. } => files.get(file).cloned().map(Blob::from),
        };
        if let Some(bytes) = &bytes {
            let len = bytes.len() as u64;
            report(Status::Done, len, Some(len));
        }
        Ok(bytes)
    }

    /// Bytes [start, end) of `file` (fewer past its end), or `None` if the repo has no such
    /// file. A server that ignores Range gets its download stopped unread (`RangeRead::Ignored`):
    /// a whole big file is never buffered for a few bytes of it. In the browser a cached copy is
    /// read instead of the network when the repo uses the cache; nothing is added to the cache.
    pub async fn read_range(&self, file: &str, start: u64, end: u64) -> Result<Option<RangeRead>> {
        let end = end.max(start);
        let url = self.url(file);
        match &self.location {
            Location::Remote { .. } => {
                #[cfg(target_arch = "wasm32")]
                if self.cache {
                    match browser_cache::lookup_range(&url, start, end).await {
                        Some(browser_cache::CachedRange::Missing) => return Ok(None),
                        Some(browser_cache::CachedRange::Bytes { bytes, size }) => {
                            return Ok(Some(RangeRead::Bytes { bytes, size: Some(size) }))
                        }
                        None => {}
                    }
                }
                if self.hold {
                    return self.read_held(url, start, end).await;
                }
                platform::http_get_range(&url, start, end).await
            }
            #[cfg(not(target_arch = "wasm32"))]
            Location::Local(dir) => native::read_local_range(&dir.join(file), start, end),
            Location::Memory { files, .. } => Ok(files.get(file).map(|bytes| {
                let len = bytes.len() as u64;
                let bytes = bytes[start.min(len) as usize..end.min(len) as usize].to_vec();
                RangeRead::Bytes { bytes, size: Some(len) }
            })),
        }
    }

    /// `read_range` in `hold` mode: from the kept download of `url`, or one begun for it.
    async fn read_held(&self, url: String, start: u64, end: u64) -> Result<Option<RangeRead>> {
        let held = self.held.borrow_mut().take();
        let mut download = match held {
            Some((held_url, download)) if held_url == url => download,
            Some(other) => {
                *self.held.borrow_mut() = Some(other);
                return platform::http_get_range(&url, start, end).await;
            }
            None if start > 0 => return platform::http_get_range(&url, start, end).await,
            None => match platform::Download::open(&url).await? {
                Some(download) => download,
                None => return Ok(None),
            },
        };
        download.buffer_to(end).await?;
        let read = RangeRead::Bytes { bytes: download.buffered(start, end), size: download.size() };
        *self.held.borrow_mut() = Some((url, download));
        Ok(Some(read))
    }

    async fn fetch_remote(&self, url: &str, on_chunk: &mut dyn FnMut(u64, Option<u64>)) -> Result<Option<Blob>> {
        let held = self.held.borrow_mut().take_if(|(held_url, _)| held_url == url);
        if let Some((_, download)) = held {
            let bytes = download.finish(on_chunk).await?;
            #[cfg(target_arch = "wasm32")]
            if self.cache {
                browser_cache::store(url, &self.name(), &bytes).await;
            }
            return Ok(Some(bytes));
        }
        #[cfg(target_arch = "wasm32")]
        if self.cache {
            match browser_cache::lookup(url).await {
                Some(browser_cache::Cached::Bytes(bytes)) => {
                    on_chunk(bytes.len() as u64, Some(bytes.len() as u64));
                    return Ok(Some(bytes));
                }
                Some(browser_cache::Cached::Missing) => return Ok(None),
                None => {}
            }
            let bytes = http_get(url, on_chunk).await?;
            match &bytes {
                Some(bytes) => browser_cache::store(url, &self.name(), bytes).await,
                None => browser_cache::store_missing(url, &self.name()).await,
            }
            return Ok(bytes);
        }
        http_get(url, on_chunk).await
    }

    /// Whether compact models built from this repo are cached (Hub repos, unless caching is off).
    pub fn caches_compact(&self) -> bool {
        matches!(self.location, Location::Remote { .. }) && self.cache
    }

    /// What identifies the repo's weights now: the first of `files` that exists, with its ETag
    /// (for LFS files on the Hub, the content's sha256). `None` when the server cannot say
    /// (offline) or does not send one.
    pub async fn weights_identity(&self, files: &[&str]) -> Option<String> {
        for file in files {
            match platform::http_etag(&self.url(file)).await {
                Ok(Some(etag)) => return Some(format!("{file} {etag}")),
                Ok(None) => continue,
                Err(_) => return None,
            }
        }
        None
    }

    /// Where the compact model of this repo in `dtype` is kept in the browser: a Cache API entry
    /// beside the original files (natively: `compact_path`).
    #[cfg(target_arch = "wasm32")]
    fn compact_key(&self, dtype: crate::weights::WeightDType) -> Option<String> {
        match &self.location {
            Location::Remote { endpoint, repo, revision } => {
                Some(format!("{endpoint}/{repo}/resolve/{revision}/.hubside-compact-{dtype}.gguf"))
            }
            _ => None,
        }
    }

    #[cfg(not(target_arch = "wasm32"))]
    fn compact_path(&self, dtype: crate::weights::WeightDType) -> Option<std::path::PathBuf> {
        let Location::Remote { endpoint, repo, revision } = &self.location else { return None };
        // The endpoint is part of the path: two mirrors may serve different weights under one name.
        let host: String = endpoint.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' { c } else { '_' }).collect();
        let revision: String = revision.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect();
        let root = match &self.compact_dir {
            Some(dir) => dir.clone(),
            None => cache_dir()?.join("compact"),
        };
        Some(root.join(host).join(repo).join(revision).join(format!("{dtype}.gguf")))
    }

    pub async fn compact_lookup(&self, dtype: crate::weights::WeightDType) -> Option<Blob> {
        #[cfg(not(target_arch = "wasm32"))]
        return std::fs::read(self.compact_path(dtype)?).ok().map(Blob::from);
        #[cfg(target_arch = "wasm32")]
        match browser_cache::lookup(&self.compact_key(dtype)?).await? {
            browser_cache::Cached::Bytes(blob) => Some(blob),
            browser_cache::Cached::Missing => None,
        }
    }

    /// Keep a compact model, written piece by piece (no copy of the whole entry in wasm memory);
    /// failures (no space, no cache) only cost a rebuild next time.
    pub async fn compact_store(&self, dtype: crate::weights::WeightDType, entry: &crate::weights::compact::EntryBytes<'_>) {
        #[cfg(not(target_arch = "wasm32"))]
        if let Some(path) = self.compact_path(dtype) {
            use std::io::Write;
            // Written aside and renamed, so a crash never leaves half an entry under the real name.
            let partial = path.with_extension("gguf.partial");
            let write = || -> std::io::Result<()> {
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                let mut file = std::io::BufWriter::new(std::fs::File::create(&partial)?);
                for piece in entry.pieces() {
                    file.write_all(piece)?;
                }
                file.into_inner().map_err(|e| e.into_error())?.sync_all()?;
                std::fs::rename(&partial, &path)
            };
            if write().is_err() {
                let _ = std::fs::remove_file(&partial);
            }
        }
        #[cfg(target_arch = "wasm32")]
        if let Some(url) = self.compact_key(dtype) {
            // Assembled in a JS buffer straight from wasm memory.
            let Ok(len) = u32::try_from(entry.len()) else { return };
            let bytes = js_sys::Uint8Array::new_with_length(len);
            let mut at = 0u32;
            for piece in entry.pieces() {
                // SAFETY: the view is used at once, before anything can allocate (and so move)
                // wasm memory.
                let view: wasm_bindgen::JsValue = unsafe { js_sys::Uint8Array::view(piece) }.into();
                bytes.set(&view, at);
                at += piece.len() as u32;
            }
            browser_cache::store(&url, &self.name(), &Blob::from(bytes)).await;
        }
    }

    pub async fn compact_delete(&self, dtype: crate::weights::WeightDType) {
        #[cfg(not(target_arch = "wasm32"))]
        if let Some(path) = self.compact_path(dtype) {
            let _ = std::fs::remove_file(path);
        }
        #[cfg(target_arch = "wasm32")]
        if let Some(url) = self.compact_key(dtype) {
            browser_cache::delete_where(|e| e.url == url).await;
        }
    }

    /// A JSON file parsed into `T`.
    pub async fn get_json<T: serde::de::DeserializeOwned>(&self, file: &str) -> Result<T> {
        let bytes = self.get(file).await?;
        serde_json::from_slice(&bytes)
            .map_err(|e| Error::Config(format!("{} is not valid JSON: {e}", self.url(file))))
    }

    /// A JSON file that the repo may not have.
    pub async fn get_json_optional<T: serde::de::DeserializeOwned>(&self, file: &str) -> Result<Option<T>> {
        match self.get_optional(file).await? {
            None => Ok(None),
            Some(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| Error::Config(format!("{} is not valid JSON: {e}", self.url(file)))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_headers_include_their_last_byte_and_content_range_gives_the_size() {
        assert_eq!(range_header(0, 8), "bytes=0-7");
        assert_eq!(range_header(5, 6), "bytes=5-5");
        assert_eq!(size_from_content_range("bytes 0-7/1234"), Some(1234));
        assert_eq!(size_from_content_range(" bytes */99 "), Some(99));
        assert_eq!(size_from_content_range("bytes 0-7/*"), None);
        assert_eq!(size_from_content_range("garbage"), None);
    }

    #[test]
    #[cfg(not(target_arch = "wasm32"))] // pollster is a native dev-dependency
    fn memory_repos_read_ranges_clamped_to_the_file() {
        let files = [("a".to_string(), vec![1u8, 2, 3, 4])].into_iter().collect();
        let repo = Repo::memory("m", files);
        let read = |start, end| pollster::block_on(repo.read_range("a", start, end)).unwrap();
        assert_eq!(read(1, 3), Some(RangeRead::Bytes { bytes: vec![2, 3], size: Some(4) }));
        assert_eq!(read(2, 99), Some(RangeRead::Bytes { bytes: vec![3, 4], size: Some(4) }));
        assert_eq!(read(9, 99), Some(RangeRead::Bytes { bytes: vec![], size: Some(4) }));
        assert_eq!(pollster::block_on(repo.read_range("b", 0, 1)).unwrap(), None);
    }
}
