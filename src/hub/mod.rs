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

/// How downloads treat a bad network or a hostile server. One rule set for both platforms:
///
/// - **Timeouts.** Connecting, and receiving the response headers, may each take at most
///   `timeout`. A body is not given an overall deadline (big files take as long as they take)
///   but must keep moving: a connection that delivers fewer than [`MIN_PROGRESS_BYTES`] within any
///   window of `timeout` while it is being read fails (this catches a stall before the headers,
///   a stall mid-body, and a server that drips bytes slower than that). A stalled download is not
///   retried: it has already cost the timeout.
/// - **Retries.** 408, 429 and 5xx answers and dropped connections are tried again, at most
///   `attempts` requests per file, after an exponential backoff (see [`retry_delay`]), or the
///   server's `Retry-After` up to [`MAX_RETRY_AFTER`].
/// - **Resume.** A body cut off midway is resumed with `Range` from where it stopped, checked
///   against the file's ETag (natively also with `If-Range`), so a file that changed meanwhile is
///   fetched again from the start rather than spliced.
/// - **Size.** Never more than the length the server announced (Content-Length, or the Hub's
///   X-Linked-Size) is read; a length above `max_file_bytes` is refused before reading, and a
///   body without a length is cut off with an error at `max_file_bytes`.
/// - **Integrity.** When the server gives the file's sha256 (the Hub's `X-Linked-Etag` for LFS
///   files, or an `ETag` that is 64 hex digits), the bytes must hash to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetOptions {
    pub timeout: std::time::Duration,
    pub attempts: u32,
    pub max_file_bytes: u64,
}

/// The default `NetOptions::timeout`.
pub const DEFAULT_TIMEOUT_SECS: u64 = 30;
/// The most bytes one file may have by default (the largest safetensors files on the Hub are
/// shards of 5-10 GB). In the browser a file is also limited to what one `Uint8Array` holds.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 16 << 30;
/// Below this many bytes per `timeout` window a body counts as stalled.
pub const MIN_PROGRESS_BYTES: u64 = 1024;
/// The longest `Retry-After` honoured; a longer one is waited for this long.
pub const MAX_RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(60);
/// Redirects followed per request (the Hub redirects LFS files to its CDN once).
pub const MAX_REDIRECTS: u32 = 10;

impl Default for NetOptions {
    fn default() -> Self {
        NetOptions {
            timeout: std::time::Duration::from_secs(DEFAULT_TIMEOUT_SECS),
            attempts: 4,
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
        }
    }
}

/// Whether an HTTP status is worth asking again for (the server is busy or failed for now).
pub fn is_retryable_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
}

/// How long to wait before attempt `attempt + 1` (`attempt` >= 1 requests were made): the
/// server's `Retry-After` in seconds if it sent one (capped at `MAX_RETRY_AFTER`; the HTTP-date
/// form is not read and falls back to the backoff), else 0.5 s doubling per attempt, at most 8 s.
pub fn retry_delay(attempt: u32, retry_after: Option<&str>) -> std::time::Duration {
    if let Some(seconds) = retry_after.and_then(|v| v.trim().parse::<u64>().ok()) {
        return std::time::Duration::from_secs(seconds).min(MAX_RETRY_AFTER);
    }
    std::time::Duration::from_millis(500u64 << attempt.saturating_sub(1).min(4))
}

/// The sha256 an `X-Linked-Etag` or `ETag` value gives, as lowercase hex: the value with any `W/`
/// prefix and quotes removed, if that is exactly 64 hex digits (other ETags, such as git's sha1 of
/// small files or a server's size-and-date tag, say nothing about the content's sha256).
pub fn sha256_from_etag(value: &str) -> Option<String> {
    let value = value.trim();
    let value = value.strip_prefix("W/").unwrap_or(value).trim_matches('"');
    (value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit())).then(|| value.to_ascii_lowercase())
}

/// The sha256 a response vouches for: `X-Linked-Etag` (the Hub, for LFS files), else `ETag`.
fn sha256_from_headers(header: impl Fn(&str) -> Option<String>) -> Option<String> {
    match header("x-linked-etag") {
        Some(linked) => sha256_from_etag(&linked),
        None => header("etag").as_deref().and_then(sha256_from_etag),
    }
}

/// The bytes' sha256 against the one the server gave.
fn check_sha256(url: &str, expected: &str, actual: &str) -> Result<()> {
    if expected == actual {
        return Ok(());
    }
    Err(Error::Network {
        url: url.to_string(),
        message: format!("the download is corrupt: its sha256 is {actual}, the server says the file's is {expected}"),
    })
}

/// The most bytes a body may have: the length the server announced, refused if it is above
/// `max_file_bytes`; without one, `max_file_bytes`.
fn body_limit(url: &str, announced: Option<u64>, net: &NetOptions) -> Result<u64> {
    match announced {
        Some(length) if length > net.max_file_bytes => Err(Error::Network {
            url: url.to_string(),
            message: format!("the server announces {length} bytes, more than the maximum file size of {} bytes", net.max_file_bytes),
        }),
        Some(length) => Ok(length),
        None => Ok(net.max_file_bytes),
    }
}

/// The error for a body that went on past its limit.
fn too_long(url: &str, limit: u64, announced: bool) -> Error {
    let message = if announced {
        format!("the server sent more than the {limit} bytes it announced")
    } else {
        format!("the body (sent without a length) went on past the maximum file size of {limit} bytes")
    };
    Error::Network { url: url.to_string(), message }
}

/// Watches a body being read for stalls (see `NetOptions`): at least `MIN_PROGRESS_BYTES` must
/// arrive in each window of `timeout`. Times are milliseconds on any monotonic clock; the watch
/// restarts whenever reading resumes after a pause of the caller's own.
struct StallWatch {
    window_ms: f64,
    started_ms: f64,
    bytes: u64,
}

impl StallWatch {
    fn new(net: &NetOptions, now_ms: f64) -> Self {
        StallWatch { window_ms: net.timeout.as_secs_f64() * 1000.0, started_ms: now_ms, bytes: 0 }
    }

    fn restart(&mut self, now_ms: f64) {
        self.started_ms = now_ms;
        self.bytes = 0;
    }

    /// `n` more bytes arrived at `now_ms`: an error message when the window closed with too few.
    fn record(&mut self, now_ms: f64, n: u64) -> std::result::Result<(), String> {
        self.bytes += n;
        if now_ms - self.started_ms < self.window_ms {
            return Ok(());
        }
        if self.bytes < MIN_PROGRESS_BYTES {
            return Err(stalled_message(self.bytes, self.window_ms));
        }
        self.restart(now_ms);
        Ok(())
    }
}

fn stalled_message(bytes: u64, window_ms: f64) -> String {
    format!(
        "the connection stalled: {bytes} bytes in {:.1} s (at least {MIN_PROGRESS_BYTES} bytes are expected per timeout window; see --timeout)",
        window_ms / 1000.0
    )
}

/// Why a name cannot be a file in a repo, if it cannot: it must be a relative path of plain
/// components (`a/b.bin`), with no empty, `.` or `..` component, no backslash, no control
/// character, and at most 1024 bytes, so it names nothing outside the repo on any server or disk.
pub fn file_name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("it is empty")
    } else if name.len() > 1024 {
        Some("it is longer than 1024 bytes")
    } else if name.starts_with('/') {
        Some("it is an absolute path")
    } else if name.contains('\\') {
        Some("it contains a backslash")
    } else if name.chars().any(char::is_control) {
        Some("it contains a control character")
    } else if name.split('/').any(|part| part.is_empty() || part == "." || part == "..") {
        Some("it has an empty, '.' or '..' component")
    } else {
        None
    }
}

/// A file name checked with `file_name_problem`, as `Error::Input`.
fn check_file_name(name: &str) -> Result<()> {
    match file_name_problem(name) {
        Some(problem) => Err(Error::Input(format!("'{}' is not a file name inside a repo: {problem}", name.escape_debug()))),
        None => Ok(()),
    }
}

/// Checks a Hub repo id (`name` or `org/name`): each part 1-96 characters of ASCII letters,
/// digits, `-`, `_` and `.`, not `.` or `..`, with no `--` or `..`.
pub fn check_repo_id(repo: &str) -> Result<()> {
    let valid = !repo.is_empty()
        && repo.split('/').count() <= 2
        && repo.split('/').all(|part| {
            !part.is_empty()
                && part.len() <= 96
                && !part.contains("--")
                && !part.contains("..")
                && part != "."
                && part.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        });
    if valid {
        Ok(())
    } else {
        Err(Error::Input(format!("'{}' is not a Hub repository id (expected 'org/name')", repo.escape_debug())))
    }
}

/// Checks a revision (branch, tag or commit; branches such as `refs/pr/1` contain `/`): at most
/// 256 bytes, no control characters, spaces or backslashes, no empty, `.` or `..` part. It is
/// sent percent-encoded as one path segment (see `encode_path`), as the Hub's clients do.
pub fn check_revision(revision: &str) -> Result<()> {
    let problem = if revision.is_empty() || revision.len() > 256 {
        Some("it must be 1-256 bytes")
    } else if revision.chars().any(|c| c.is_control() || c.is_whitespace() || c == '\\') {
        Some("it contains a space, control character or backslash")
    } else if revision.split('/').any(|part| part.is_empty() || part == "." || part == "..") {
        Some("it has an empty, '.' or '..' part")
    } else {
        None
    };
    match problem {
        Some(problem) => Err(Error::Input(format!("'{}' is not a revision: {problem}", revision.escape_debug()))),
        None => Ok(()),
    }
}

/// `text` percent-encoded for a URL path: everything but RFC 3986's unreserved characters
/// (and `/` when `keep_slashes`) is escaped, so a name can never add a path segment, a query or
/// a `%2F` the server would decode.
pub fn encode_path(text: &str, keep_slashes: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) || (keep_slashes && byte == b'/') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// `encode_path` undone: `%XX` escapes decoded; `None` for a malformed escape or text that is not
/// UTF-8 once decoded.
pub fn decode_path(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// GET `url` to the end (the body stays in JavaScript memory in the browser); `None` on 404.
async fn http_get(url: &str, net: &NetOptions, on_chunk: &mut dyn FnMut(u64, Option<u64>)) -> Result<Option<Blob>> {
    match platform::Download::open(url, net).await? {
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

/// The first byte and the file size of a `Content-Range: bytes a-b/size` header (size `None`
/// for `*`): what a resumed download checks before it appends the body.
fn content_range_start_and_size(value: &str) -> Option<(u64, Option<u64>)> {
    let range = value.trim().strip_prefix("bytes ")?;
    let (span, _) = range.split_once('/')?;
    let start = span.split_once('-')?.0.trim().parse().ok()?;
    Some((start, size_from_content_range(value)))
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
    /// Timeouts, retries and limits of downloads.
    net: NetOptions,
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
        check_repo_id(repo)?;
        let endpoint = endpoint.filter(|e| !e.trim().is_empty()).unwrap_or(DEFAULT_ENDPOINT);
        let revision = revision.filter(|r| !r.trim().is_empty()).unwrap_or(DEFAULT_REVISION);
        check_revision(revision.trim())?;
        Ok(Repo {
            location: Location::Remote {
                endpoint: endpoint.trim().trim_end_matches('/').to_string(),
                repo: repo.to_string(),
                revision: revision.trim().to_string(),
            },
            progress: None,
            net: NetOptions::default(),
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
            net: NetOptions::default(),
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
            net: NetOptions::default(),
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

    /// How downloads treat a bad network (timeouts, retries, size limit).
    pub fn with_net(mut self, net: NetOptions) -> Self {
        self.net = net;
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

    /// Where `file` lives: its URL (revision and file name percent-encoded), or its path for a
    /// local model. Only names that pass `file_name_problem` are ever fetched.
    pub fn url(&self, file: &str) -> String {
        match &self.location {
            Location::Remote { endpoint, repo, revision } => {
                format!("{endpoint}/{repo}/resolve/{}/{}", encode_path(revision, false), encode_path(file, true))
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
        check_file_name(file)?;
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
        check_file_name(file)?;
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
                platform::http_get_range(&url, start, end, &self.net).await
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
                return platform::http_get_range(&url, start, end, &self.net).await;
            }
            None if start > 0 => return platform::http_get_range(&url, start, end, &self.net).await,
            None => match platform::Download::open(&url, &self.net).await? {
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
            let bytes = http_get(url, &self.net, on_chunk).await?;
            match &bytes {
                Some(bytes) => browser_cache::store(url, &self.name(), bytes).await,
                None => browser_cache::store_missing(url, &self.name()).await,
            }
            return Ok(bytes);
        }
        http_get(url, &self.net, on_chunk).await
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
            if file_name_problem(file).is_some() {
                return None;
            }
            match platform::http_etag(&self.url(file), &self.net).await {
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
        assert_eq!(content_range_start_and_size("bytes 10-99/100"), Some((10, Some(100))));
        assert_eq!(content_range_start_and_size("bytes 0-9/*"), Some((0, None)));
        assert_eq!(content_range_start_and_size("bytes */100"), None);
    }

    #[test]
    fn file_names_outside_the_repo_are_refused() {
        for bad in ["", "../../x", "a/../../x", "/abs/path", "a\\b", "..\\x", "a//b", "./a", "a/.", "a\0b", "a\nb"] {
            assert!(file_name_problem(bad).is_some(), "{bad:?}");
        }
        assert!(file_name_problem(&"a".repeat(1025)).is_some());
        for good in ["config.json", "onnx/model.onnx", "a..b", ".hubside-compact-q8.gguf", "ggml tiny.bin"] {
            assert_eq!(file_name_problem(good), None, "{good:?}");
        }
    }

    #[test]
    fn repo_ids_and_revisions_are_checked() {
        for good in ["org/name", "name", "Helsinki-NLP/opus-mt-en-de", "a.b_c/d-e.1"] {
            assert!(check_repo_id(good).is_ok(), "{good}");
        }
        for bad in ["", "a/b/c", "../x", "org/..", "org/.", "a b/c", "org/na%2Fme", "a--b/c", "a..b/c", "org/", &"x".repeat(97)] {
            assert!(matches!(check_repo_id(bad), Err(Error::Input(_))), "{bad}");
        }
        for good in ["main", "v1.0", "refs/pr/1", "..%2F..%2Fx", "0123abcd"] {
            assert!(check_revision(good).is_ok(), "{good}");
        }
        for bad in ["", "..", "../x", "a/../b", "a//b", "a b", "a\\b", "a\nb"] {
            assert!(matches!(check_revision(bad), Err(Error::Input(_))), "{bad:?}");
        }
        assert!(Repo::remote("org/m", None, Some("../../x")).is_err());
    }

    #[test]
    fn urls_percent_encode_revisions_and_file_names() {
        let repo = Repo::remote("org/m", Some("http://h/"), Some("..%2F..%2Fx")).unwrap();
        // The revision is one segment with its '%' escaped: the server sees the literal name.
        assert_eq!(repo.url("a b/c?.json"), "http://h/org/m/resolve/..%252F..%252Fx/a%20b/c%3F.json");
        let repo = Repo::remote("org/m", None, Some("refs/pr/1")).unwrap();
        assert_eq!(repo.url("model.safetensors"), "https://huggingface.co/org/m/resolve/refs%2Fpr%2F1/model.safetensors");
        assert_eq!(encode_path("a#b%/c~", true), "a%23b%25/c~");
        for text in ["a b/c?.json", "..%2F", "ünï/cödé", ""] {
            assert_eq!(decode_path(&encode_path(text, true)).as_deref(), Some(text));
        }
        assert_eq!(decode_path("%2e%2E%2f"), Some("../".into()));
        assert_eq!(decode_path("%"), None);
        assert_eq!(decode_path("%zz"), None);
        assert_eq!(decode_path("%ff"), None);
    }

    #[test]
    #[cfg(not(target_arch = "wasm32"))] // pollster is a native dev-dependency
    fn repos_refuse_to_fetch_names_outside_them() {
        let dir = std::env::temp_dir().join(format!("hubside-names-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let repo = Repo::local(&dir);
        for bad in ["../../etc/passwd", "/etc/passwd"] {
            assert!(matches!(pollster::block_on(repo.get(bad)), Err(Error::Input(_))), "{bad}");
            assert!(matches!(pollster::block_on(repo.read_range(bad, 0, 4)), Err(Error::Input(_))), "{bad}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn etags_give_a_sha256_only_when_they_are_one() {
        let sha = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(sha256_from_etag(&format!("\"{sha}\"")).as_deref(), Some(sha));
        assert_eq!(sha256_from_etag(&format!("W/\"{}\"", sha.to_uppercase())).as_deref(), Some(sha));
        assert_eq!(sha256_from_etag(sha).as_deref(), Some(sha));
        // git's sha1 of a small file, hubside serve's size-and-date tag, garbage.
        for other in ["\"9a0364b9e99bb480dd25e1f0284c8555d1c4f7a1\"", "\"64-18a3b\"", "", "\"zz\"", &format!("{sha}0")] {
            assert_eq!(sha256_from_etag(other), None, "{other}");
        }
        let headers = |linked: Option<&str>, etag: Option<&str>| {
            let (linked, etag) = (linked.map(str::to_string), etag.map(str::to_string));
            sha256_from_headers(move |name| if name == "x-linked-etag" { linked.clone() } else { etag.clone() })
        };
        assert_eq!(headers(Some(sha), Some("\"x\"")).as_deref(), Some(sha));
        assert_eq!(headers(None, Some(sha)).as_deref(), Some(sha));
        assert_eq!(headers(Some("\"not-a-sha\""), Some(sha)), None, "X-Linked-Etag decides when present");
    }

    #[test]
    fn retries_back_off_and_honour_retry_after_up_to_a_cap() {
        use std::time::Duration;
        assert_eq!(retry_delay(1, None), Duration::from_millis(500));
        assert_eq!(retry_delay(2, None), Duration::from_millis(1000));
        assert_eq!(retry_delay(30, None), Duration::from_secs(8));
        assert_eq!(retry_delay(1, Some(" 3 ")), Duration::from_secs(3));
        assert_eq!(retry_delay(1, Some("99999")), MAX_RETRY_AFTER);
        assert_eq!(retry_delay(1, Some("Wed, 21 Oct 2015 07:28:00 GMT")), Duration::from_millis(500));
        assert!(is_retryable_status(429) && is_retryable_status(503) && !is_retryable_status(404) && !is_retryable_status(403));
    }

    #[test]
    fn a_body_must_keep_moving() {
        let net = NetOptions { timeout: std::time::Duration::from_secs(2), ..Default::default() };
        let mut watch = StallWatch::new(&net, 0.0);
        // A trickle: fine until the window closes with too few bytes.
        assert!(watch.record(1000.0, 10).is_ok());
        assert!(watch.record(2100.0, 10).unwrap_err().contains("stalled: 20 bytes in 2.0 s"));
        // Enough per window, for as long as it takes.
        let mut watch = StallWatch::new(&net, 0.0);
        for second in 1..100 {
            assert!(watch.record(second as f64 * 1000.0, 600).is_ok());
        }
        assert_eq!(body_limit("u", Some(10), &net).unwrap(), 10);
        assert_eq!(body_limit("u", None, &net).unwrap(), DEFAULT_MAX_FILE_BYTES);
        assert!(body_limit("u", Some(DEFAULT_MAX_FILE_BYTES + 1), &net).is_err());
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
