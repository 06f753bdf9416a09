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
    /// In the browser, keep downloads in the Cache API and reuse them (default on).
    cache: bool,
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
        })
    }

    /// A directory laid out like a Hub repository.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn local(dir: impl Into<std::path::PathBuf>) -> Self {
        Repo { location: Location::Local(dir.into()), progress: None, cache: false }
    }

    /// A repository whose files are already in memory, keyed by file name.
    pub fn memory(name: &str, files: std::collections::HashMap<String, Vec<u8>>) -> Self {
        Repo { location: Location::Memory { name: name.to_string(), files }, progress: None, cache: false }
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

    /// Whether browser downloads go through the Cache API (no effect natively).
    pub fn with_cache(mut self, cache: bool) -> Self {
        self.cache = cache;
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
