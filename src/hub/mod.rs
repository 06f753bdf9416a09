//! Where model files come from: a Hub repository (`{endpoint}/{repo}/resolve/{revision}/{file}`),
//! fetched over HTTP (ureq natively, the Fetch API in the browser), or a local directory natively.
//! Every download reports progress in bytes.

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
        })
    }

    /// A directory laid out like a Hub repository.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn local(dir: impl Into<std::path::PathBuf>) -> Self {
        Repo { location: Location::Local(dir.into()), progress: None, cache: false, compact_dir: None }
    }

    /// A repository whose files are already in memory, keyed by file name.
    pub fn memory(name: &str, files: std::collections::HashMap<String, Vec<u8>>) -> Self {
        Repo {
            location: Location::Memory { name: name.to_string(), files },
            progress: None,
            cache: false,
            #[cfg(not(target_arch = "wasm32"))]
            compact_dir: None,
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

    async fn fetch_remote(&self, url: &str, on_chunk: &mut dyn FnMut(u64, Option<u64>)) -> Result<Option<Blob>> {
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
            let bytes = platform::http_get(url, on_chunk).await?;
            match &bytes {
                Some(bytes) => browser_cache::store(url, &self.name(), bytes).await,
                None => browser_cache::store_missing(url, &self.name()).await,
            }
            return Ok(bytes);
        }
        platform::http_get(url, on_chunk).await
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

    /// Keep a compact model; failures (no space, no cache) only cost a rebuild next time.
    pub async fn compact_store(&self, dtype: crate::weights::WeightDType, bytes: Vec<u8>) {
        #[cfg(not(target_arch = "wasm32"))]
        if let Some(path) = self.compact_path(dtype) {
            // Written aside and renamed, so a crash never leaves half an entry under the real name.
            let partial = path.with_extension("gguf.partial");
            let written = path.parent().map(std::fs::create_dir_all).transpose().is_ok()
                && std::fs::write(&partial, &bytes).is_ok()
                && std::fs::rename(&partial, &path).is_ok();
            if !written {
                let _ = std::fs::remove_file(&partial);
            }
        }
        #[cfg(target_arch = "wasm32")]
        if let Some(url) = self.compact_key(dtype) {
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
