//! `hubside serve`: a static server for the page (`www/`, `pkg/`) plus a local Hub mirror under
//! `/hub` with the Hub's URL layout (`/hub/{org}/{name}/resolve/{revision}/{file}`), so the
//! browser loads models through the same fetch path it uses against huggingface.co.
//! Sends CORS headers like the Hub and CORP, so pages of any origin may use what it serves; and,
//! when asked, COOP/COEP, which make its pages cross-origin isolated (SharedArrayBuffer), so
//! www/worker.js runs the threaded wasm build.
//! With a mirror, every HTML page it serves carries the mirror's address and models (see
//! `site_config`), so the page and widgets use it; a static host serves the same pages without
//! it and they fall back to the package defaults, with no extra request that could fail.
//! It never serves anything outside its roots (see `file_in`), and each request is answered on
//! its own thread, up to `MAX_ACTIVE` at once (503 beyond), so clients that never read a large
//! response do not hold up the others.

use std::net::SocketAddr;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use tiny_http::{Header, Method, Request, Response, Server};

use crate::error::{Error, Result};
use crate::tasks::Task;

#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// Directories served at `/`, first match wins (e.g. `www`).
    pub roots: Vec<PathBuf>,
    /// The wasm-pack output, served at `/pkg/`.
    pub pkg: Option<PathBuf>,
    /// Directories laid out as `{org}/{name}/{file}`, served together as a Hub mirror at `/hub`.
    pub hub: Vec<PathBuf>,
    /// Print one line per request.
    pub log: bool,
    /// Send `Cross-Origin-Opener-Policy: same-origin` and `Cross-Origin-Embedder-Policy:
    /// require-corp` (as the static Space's `custom_headers` do).
    pub cross_origin_isolation: bool,
}

/// Requests answered at once; more get 503 with `Retry-After: 1`. A response to a client that
/// stops reading holds its thread until the client goes away.
pub const MAX_ACTIVE: usize = 64;

/// A running server; it stops when dropped.
pub struct Running {
    pub addr: SocketAddr,
    server: Arc<Server>,
    workers: Vec<std::thread::JoinHandle<()>>,
}

impl Running {
    /// The base URL, e.g. `http://127.0.0.1:8080`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The Hub endpoint of the mirror, to pass as `endpoint`.
    pub fn hub_endpoint(&self) -> String {
        format!("{}/hub", self.url())
    }

    /// Serve until the process ends.
    pub fn wait(mut self) {
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.server.unblock();
    }
}

/// Start serving on `addr` (port 0 picks a free port) in background threads.
pub fn start(addr: &str, options: ServeOptions) -> Result<Running> {
    let server = Server::http(addr).map_err(|e| Error::Io(format!("cannot listen on {addr}: {e}")))?;
    let local = server
        .server_addr()
        .to_ip()
        .ok_or_else(|| Error::Io("server has no IP address".into()))?;
    let server = Arc::new(server);
    let options = Arc::new(options);
    let active = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let acceptor = {
        let server = server.clone();
        std::thread::spawn(move || {
            use std::sync::atomic::Ordering::SeqCst;
            while let Ok(request) = server.recv() {
                if active.fetch_add(1, SeqCst) >= MAX_ACTIVE {
                    active.fetch_sub(1, SeqCst);
                    let busy = Response::from_string("too many requests at once; try again").with_status_code(503);
                    let _ = request.respond(busy.with_header(header("Retry-After", "1")));
                    continue;
                }
                let (options, active) = (options.clone(), active.clone());
                // A thread that cannot be started drops its request (the client sees the
                // connection close) and frees its slot.
                let slot = active.clone();
                if std::thread::Builder::new()
                    .name("hubside-serve".into())
                    .spawn(move || {
                        handle(request, &options);
                        active.fetch_sub(1, SeqCst);
                    })
                    .is_err()
                {
                    slot.fetch_sub(1, SeqCst);
                }
            }
        })
    };
    Ok(Running { addr: local, server, workers: vec![acceptor] })
}

fn header(name: &str, value: &str) -> Header {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("static header")
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "wasm" => "application/wasm",
        "json" => "application/json",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "wav" => "audio/wav",
        "md" | "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// The file `rel` names under `root`, if it is a file and really inside `root`: `rel` must be
/// plain components, and the file's canonical path (every symlink resolved) must lie under the
/// root's canonical path, so a symlink in the root cannot lead out of it.
fn file_in(root: &Path, rel: &str) -> Option<PathBuf> {
    let rel = Path::new(rel);
    if !rel.components().all(|c| matches!(c, Component::Normal(_))) {
        return None;
    }
    let path = root.join(rel);
    let canonical = path.canonicalize().ok()?;
    (canonical.is_file() && canonical.starts_with(root.canonicalize().ok()?)).then_some(path)
}

/// The file a request path names, if any. Paths are percent-decoded once split (clients encode
/// file names and revisions, a revision such as `refs%2Fpr%2F1` being one segment); what they
/// decode to is checked like any path (`file_in`).
fn resolve(path: &str, options: &ServeOptions) -> Option<PathBuf> {
    use crate::hub::decode_path;
    if let Some(rest) = path.strip_prefix("/hub/") {
        // {org}/{name}/resolve/{revision}/{file...}; the mirror holds one revision.
        let parts: Vec<&str> = rest.splitn(5, '/').collect();
        let rel = match parts.as_slice() {
            [org, name, "resolve", _revision, file] => format!("{}/{}/{}", decode_path(org)?, decode_path(name)?, decode_path(file)?),
            [name, "resolve", _revision, file] => format!("{}/{}", decode_path(name)?, decode_path(file)?),
            _ => return None,
        };
        return options.hub.iter().find_map(|hub| file_in(hub, &rel));
    }
    let path = decode_path(path)?;
    if let (Some(rest), Some(pkg)) = (path.strip_prefix("/pkg/"), &options.pkg) {
        return file_in(pkg, rest);
    }
    let rel = path.trim_start_matches('/');
    let rel = if rel.is_empty() || rel.ends_with('/') { format!("{rel}index.html") } else { rel.to_string() };
    options.roots.iter().find_map(|root| file_in(root, &rel))
}

/// Which task (its canonical name in the JS API) a mirrored model is for: the task whose loader
/// registry holds its config.json's `model_type`. CTranslate2 converts name no `model_type`;
/// theirs is Whisper's when it has `suppress_ids`.
fn task_of(config: &serde_json::Value) -> Option<&'static str> {
    let model_type = match config.get("model_type").and_then(|v| v.as_str()) {
        Some(model_type) => model_type,
        None if config.get("suppress_ids").is_some() => "whisper",
        None => return None,
    };
    Task::for_model_type(model_type).map(Task::name)
}

/// Where the mirror is and which models it holds, per task: `{"endpoint": "http://HOST/hub",
/// "models": {"translation": ["org/name", ...], ...}}`, as JSON. None without a mirror.
fn site_config(host: &str, options: &ServeOptions) -> Option<String> {
    if options.hub.is_empty() {
        return None;
    }
    let mut models: std::collections::BTreeMap<&str, Vec<String>> = Default::default();
    let orgs = options.hub.iter().flat_map(|hub| std::fs::read_dir(hub).into_iter().flatten().flatten());
    for org in orgs {
        for repo in std::fs::read_dir(org.path()).into_iter().flatten().flatten() {
            let Ok(bytes) = std::fs::read(repo.path().join("config.json")) else { continue };
            let Ok(config) = serde_json::from_slice::<serde_json::Value>(&bytes) else { continue };
            if let Some(task) = task_of(&config) {
                let id = format!("{}/{}", org.file_name().to_string_lossy(), repo.file_name().to_string_lossy());
                models.entry(task).or_default().push(id);
            }
        }
    }
    models.values_mut().for_each(|list| {
        list.sort();
        list.dedup();
    });
    Some(serde_json::json!({ "endpoint": format!("http://{host}/hub"), "models": models }).to_string())
}

/// The HTML page in `file` with the site config injected before `</head>` as
/// `<script type="application/json" id="hubside-site">` (read by www/ui.js `siteConfig`).
/// None when `file` is not HTML or there is no mirror: it is then served as it is.
fn page_with_site_config(file: &Path, request: &Request, options: &ServeOptions) -> Option<String> {
    if !content_type(file).starts_with("text/html") {
        return None;
    }
    // The mirror's address as the browser reached this server.
    let host = request.headers().iter().find(|h| h.field.equiv("Host")).map(|h| h.value.to_string())?;
    // `<` only occurs inside JSON strings, where `\u003c` means the same and cannot end the script.
    let config = site_config(&host, options)?.replace('<', "\\u003c");
    let page = std::fs::read_to_string(file).ok()?;
    let script = format!("<script type=\"application/json\" id=\"hubside-site\">{config}</script>\n");
    let at = page.find("</head>").unwrap_or(0);
    Some(format!("{}{script}{}", &page[..at], &page[at..]))
}

fn handle(request: Request, options: &ServeOptions) {
    let path = request.url().split(['?', '#']).next().unwrap_or("/").to_string();
    let isolation = [
        header("Cross-Origin-Opener-Policy", "same-origin"),
        header("Cross-Origin-Embedder-Policy", "require-corp"),
    ];
    let common: Vec<Header> = [
        header("Cross-Origin-Resource-Policy", "cross-origin"),
        header("Access-Control-Allow-Origin", "*"),
        header("Access-Control-Expose-Headers", "Content-Length, Content-Range, Accept-Ranges, ETag"),
        header("Cache-Control", "no-cache"),
    ]
    .into_iter()
    .chain(isolation.into_iter().filter(|_| options.cross_origin_isolation))
    .collect();
    let method = request.method().clone();
    let status;
    let result = if !matches!(method, Method::Get | Method::Head | Method::Options) {
        status = 405;
        request.respond(with_headers(Response::from_string("method not allowed").with_status_code(405), common))
    } else if method == Method::Options {
        status = 204;
        let response = Response::empty(204)
            .with_header(header("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS"))
            .with_header(header("Access-Control-Allow-Headers", "*"));
        request.respond(with_headers(response, common))
    } else if let Some(page) = resolve(&path, options).and_then(|file| page_with_site_config(&file, &request, options)) {
        status = 200;
        let response = Response::from_string(page).with_header(header("Content-Type", "text/html; charset=utf-8"));
        request.respond(with_headers(response, common))
    } else if let Some(file) = resolve(&path, options) {
        let range = request.headers().iter().find(|h| h.field.equiv("Range")).map(|h| h.value.to_string());
        match serve_file(&file, range.as_deref()) {
            Ok(response) => {
                status = response.status_code().0;
                request.respond(with_headers(response, common))
            }
            Err(_) => {
                status = 500;
                request.respond(with_headers(Response::from_string("cannot read file").with_status_code(500), common))
            }
        }
    } else {
        status = 404;
        let body = if path.starts_with("/hub/") { "Entry not found" } else { "not found" };
        request.respond(with_headers(Response::from_string(body).with_status_code(404), common))
    };
    if options.log {
        eprintln!("{method} {path} {status}");
    }
    if let Err(e) = result {
        if options.log {
            eprintln!("  (client went away: {e})");
        }
    }
}

/// What a `Range` header asks of a file of `size` bytes.
#[derive(Debug, PartialEq, Eq)]
enum RangeAsked {
    /// No Range, or one this server does not serve (several ranges, other units): the whole file.
    Whole,
    /// Bytes [start, end].
    Part { start: u64, end: u64 },
    /// Starts past the end of the file (416).
    Unsatisfiable,
}

/// `bytes=a-b`, `bytes=a-` and `bytes=-n` (the last n bytes), as RFC 9110 reads them.
fn parse_range(value: Option<&str>, size: u64) -> RangeAsked {
    let Some(spec) = value.and_then(|v| v.trim().strip_prefix("bytes=")) else { return RangeAsked::Whole };
    if spec.contains(',') {
        return RangeAsked::Whole;
    }
    let Some((first, last)) = spec.split_once('-') else { return RangeAsked::Whole };
    let (first, last) = (first.trim(), last.trim());
    let number = |s: &str| s.parse::<u64>().ok();
    let (start, end) = match (first.is_empty(), last.is_empty()) {
        (false, _) => match (number(first), if last.is_empty() { Some(u64::MAX) } else { number(last) }) {
            (Some(start), Some(end)) if start <= end => (start, end.min(size.saturating_sub(1))),
            _ => return RangeAsked::Whole,
        },
        (true, false) => match number(last) {
            Some(0) => return RangeAsked::Unsatisfiable,
            Some(n) => (size.saturating_sub(n), size.saturating_sub(1)),
            None => return RangeAsked::Whole,
        },
        (true, true) => return RangeAsked::Whole,
    };
    if start >= size {
        RangeAsked::Unsatisfiable
    } else {
        RangeAsked::Part { start, end }
    }
}

/// A file, whole (200) or the part a `Range` header asks for (206 with Content-Range; 416 past
/// its end), always with Content-Length (not chunked), so clients can show download progress.
fn file_modified(path: &Path) -> std::io::Result<u128> {
    let modified = std::fs::metadata(path)?.modified()?;
    Ok(modified.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0))
}

fn serve_file(path: &Path, range: Option<&str>) -> std::io::Result<Response<Box<dyn std::io::Read + Send>>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(path)?;
    let size = file.metadata()?.len();
    let kind = header("Content-Type", content_type(path));
    let ranges = header("Accept-Ranges", "bytes");
    let (code, body, length, content_range): (u16, Box<dyn Read + Send>, u64, Option<String>) = match parse_range(range, size) {
        RangeAsked::Whole => (200, Box::new(file), size, None),
        RangeAsked::Part { start, end } => {
            file.seek(SeekFrom::Start(start))?;
            let length = end - start + 1;
            (206, Box::new(file.take(length)), length, Some(format!("bytes {start}-{end}/{size}")))
        }
        RangeAsked::Unsatisfiable => (416, Box::new(std::io::empty()), 0, Some(format!("bytes */{size}"))),
    };
    let mut headers = vec![kind, ranges];
    headers.extend(content_range.map(|value| header("Content-Range", &value)));
    // An ETag from size and modification time, so caches can tell when a file changed.
    if let Ok(modified) = file_modified(path) {
        headers.push(header("ETag", &format!("\"{size:x}-{modified:x}\"")));
    }
    Ok(Response::new(code.into(), headers, body, Some(length as usize), None).with_chunked_threshold(usize::MAX))
}

fn with_headers<R: std::io::Read>(mut response: Response<R>, headers: impl IntoIterator<Item = Header>) -> Response<R> {
    for h in headers {
        response.add_header(h);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(url: &str) -> (u16, String) {
        match ureq::get(url).call() {
            Ok(mut response) => (response.status().as_u16(), response.body_mut().read_to_string().unwrap()),
            Err(ureq::Error::StatusCode(status)) => (status, String::new()),
            Err(e) => panic!("{url}: {e}"),
        }
    }

    #[test]
    fn pages_carry_the_mirror_config_only_when_there_is_a_mirror() {
        let dir = std::env::temp_dir().join(format!("hubside-serve-test-{}", std::process::id()));
        let (www, hub) = (dir.join("www"), dir.join("hub"));
        std::fs::create_dir_all(hub.join("org/whisper-tiny")).unwrap();
        std::fs::create_dir_all(&www).unwrap();
        std::fs::write(www.join("index.html"), "<html><head><title>t</title></head><body></body></html>").unwrap();
        std::fs::write(www.join("app.js"), "// </head>").unwrap();
        std::fs::write(hub.join("org/whisper-tiny/config.json"), r#"{"model_type": "whisper"}"#).unwrap();

        let with_mirror = start("127.0.0.1:0", ServeOptions { roots: vec![www.clone()], hub: vec![hub], ..Default::default() }).unwrap();
        let (status, page) = get(&format!("{}/", with_mirror.url()));
        assert_eq!(status, 200);
        let config = format!(
            r#"<script type="application/json" id="hubside-site">{{"endpoint":"{}","models":{{"automatic-speech-recognition":["org/whisper-tiny"]}}}}</script>"#,
            with_mirror.hub_endpoint()
        );
        assert_eq!(page, format!("<html><head><title>t</title>{config}\n</head><body></body></html>"));
        assert_eq!(get(&format!("{}/app.js", with_mirror.url())), (200, "// </head>".to_string()), "only HTML is changed");
        assert_eq!(get(&format!("{}/hubside.json", with_mirror.url())).0, 404, "no separate config file");

        let without = start("127.0.0.1:0", ServeOptions { roots: vec![www], ..Default::default() }).unwrap();
        let (_, page) = get(&format!("{}/index.html", without.url()));
        assert_eq!(page, "<html><head><title>t</title></head><body></body></html>");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn ranges_read_as_rfc_9110_says() {
        use RangeAsked::*;
        let parse = |value: &str| parse_range(Some(value), 100);
        assert_eq!(parse("bytes=0-7"), Part { start: 0, end: 7 });
        assert_eq!(parse("bytes=90-200"), Part { start: 90, end: 99 });
        assert_eq!(parse("bytes=95-"), Part { start: 95, end: 99 });
        assert_eq!(parse("bytes=-10"), Part { start: 90, end: 99 });
        assert_eq!(parse("bytes=-500"), Part { start: 0, end: 99 });
        assert_eq!(parse("bytes=100-"), Unsatisfiable);
        assert_eq!(parse("bytes=-0"), Unsatisfiable);
        for whole in ["bytes=0-1,5-6", "items=0-1", "bytes=7-3", "bytes=x-1", "bytes=-", "bytes"] {
            assert_eq!(parse(whole), Whole, "{whole}");
        }
        assert_eq!(parse_range(None, 100), Whole);
        assert_eq!(parse_range(Some("bytes=0-0"), 0), Unsatisfiable);
    }

    #[test]
    fn hub_files_are_served_in_ranges() {
        let dir = std::env::temp_dir().join(format!("hubside-serve-range-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("org/m")).unwrap();
        std::fs::write(dir.join("org/m/f.bin"), (0u8..100).collect::<Vec<_>>()).unwrap();
        let server = start("127.0.0.1:0", ServeOptions { hub: vec![dir.clone()], ..Default::default() }).unwrap();
        let url = format!("{}/org/m/resolve/main/f.bin", server.hub_endpoint());
        let mut response = ureq::get(&url).header("Range", "bytes=10-12").call().unwrap();
        assert_eq!(response.status().as_u16(), 206);
        assert_eq!(response.headers()["content-range"], "bytes 10-12/100");
        assert_eq!(response.body_mut().read_to_vec().unwrap(), vec![10, 11, 12]);
        let mut whole = ureq::get(&url).call().unwrap();
        assert_eq!((whole.status().as_u16(), whole.headers()["accept-ranges"].to_str().unwrap()), (200, "bytes"));
        assert_eq!(whole.body().content_length(), Some(100), "Content-Length, not chunked");
        assert_eq!(whole.body_mut().read_to_vec().unwrap().len(), 100);
        match ureq::get(&url).header("Range", "bytes=200-").call() {
            Err(ureq::Error::StatusCode(416)) => {}
            other => panic!("expected 416, got {other:?}"),
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn cross_origin_isolation_headers_only_when_asked() {
        let www = std::env::temp_dir().join(format!("hubside-serve-isolation-{}", std::process::id()));
        std::fs::create_dir_all(&www).unwrap();
        std::fs::write(www.join("index.html"), "<html></html>").unwrap();
        for isolated in [true, false] {
            let options = ServeOptions { roots: vec![www.clone()], cross_origin_isolation: isolated, ..Default::default() };
            let server = start("127.0.0.1:0", options).unwrap();
            let response = ureq::get(&format!("{}/", server.url())).call().unwrap();
            let header = |name: &str| response.headers().get(name).map(|v| v.to_str().unwrap().to_string());
            assert_eq!(header("cross-origin-opener-policy"), isolated.then(|| "same-origin".to_string()));
            assert_eq!(header("cross-origin-embedder-policy"), isolated.then(|| "require-corp".to_string()));
            // Other origins' isolated pages may embed what it serves either way.
            assert_eq!(header("cross-origin-resource-policy").as_deref(), Some("cross-origin"));
        }
        std::fs::remove_dir_all(&www).unwrap();
    }

    #[test]
    #[cfg(unix)]
    fn symlinks_out_of_a_root_are_refused() {
        let dir = std::env::temp_dir().join(format!("hubside-serve-symlinks-{}", std::process::id()));
        let (hub, www, outside) = (dir.join("hub"), dir.join("www"), dir.join("outside"));
        for d in [hub.join("org/m"), www.clone(), outside.clone()] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(outside.join("secret.txt"), "secret").unwrap();
        std::fs::write(hub.join("org/m/real.json"), "{}").unwrap();
        std::os::unix::fs::symlink(outside.join("secret.txt"), hub.join("org/m/secret-link")).unwrap();
        std::os::unix::fs::symlink(&outside, hub.join("org/m/dir-link")).unwrap();
        std::os::unix::fs::symlink(&outside, hub.join("etc-link")).unwrap();
        std::os::unix::fs::symlink(outside.join("secret.txt"), www.join("page.html")).unwrap();
        // A symlink that stays inside its root is fine.
        std::os::unix::fs::symlink(hub.join("org/m/real.json"), hub.join("org/m/inside-link.json")).unwrap();
        let server = start("127.0.0.1:0", ServeOptions { roots: vec![www], hub: vec![hub], ..Default::default() }).unwrap();
        let hub = server.hub_endpoint();
        for url in [
            format!("{hub}/org/m/resolve/main/secret-link"),
            format!("{hub}/org/m/resolve/main/dir-link/secret.txt"),
            format!("{hub}/etc-link/resolve/main/secret.txt"),
            format!("{hub}/org/m/resolve/main/..%2F..%2F..%2Foutside%2Fsecret.txt"),
            format!("{hub}/org/m/resolve/main/%2E%2E/%2E%2E/outside/secret.txt"),
            format!("{}/page.html", server.url()),
            format!("{}/%2E%2E/outside/secret.txt", server.url()),
        ] {
            let (status, body) = get(&url);
            assert_eq!(status, 404, "{url}: {body}");
        }
        assert_eq!(get(&format!("{hub}/org/m/resolve/main/inside-link.json")), (200, "{}".to_string()));
        assert_eq!(get(&format!("{hub}/org/m/resolve/refs%2Fpr%2F1/real.json")), (200, "{}".to_string()));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Clients that ask for a large file and never read it.
    fn stalled_clients(addr: SocketAddr, path: &str, n: usize) -> Vec<std::net::TcpStream> {
        use std::io::Write;
        (0..n)
            .map(|_| {
                let mut stream = std::net::TcpStream::connect(addr).unwrap();
                write!(stream, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
                stream
            })
            .collect()
    }

    fn agent() -> ureq::Agent {
        ureq::Agent::config_builder().timeout_global(Some(std::time::Duration::from_secs(30))).http_status_as_error(false).build().into()
    }

    #[test]
    fn clients_that_never_read_do_not_block_others() {
        let dir = std::env::temp_dir().join(format!("hubside-serve-slow-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("org/m")).unwrap();
        // 64 MiB (sparse): far more than the socket buffers hold, so each response blocks.
        std::fs::File::create(dir.join("org/m/big.bin")).unwrap().set_len(64 << 20).unwrap();
        std::fs::write(dir.join("org/m/small.json"), "{}").unwrap();
        let server = start("127.0.0.1:0", ServeOptions { hub: vec![dir.clone()], ..Default::default() }).unwrap();
        let _stalled = stalled_clients(server.addr, "/hub/org/m/resolve/main/big.bin", 8);
        std::thread::sleep(std::time::Duration::from_millis(500));
        let started = std::time::Instant::now();
        let mut response = agent().get(&format!("{}/org/m/resolve/main/small.json", server.hub_endpoint())).call().unwrap();
        assert_eq!((response.status().as_u16(), response.body_mut().read_to_string().unwrap()), (200, "{}".to_string()));
        assert!(started.elapsed() < std::time::Duration::from_secs(20), "{:?}", started.elapsed());

        // Past MAX_ACTIVE stalled responses, a request is told to come back (503), not left waiting.
        let _more = stalled_clients(server.addr, "/hub/org/m/resolve/main/big.bin", MAX_ACTIVE);
        let small = format!("{}/org/m/resolve/main/small.json", server.hub_endpoint());
        let busy = (0..100).any(|_| {
            std::thread::sleep(std::time::Duration::from_millis(100));
            agent().get(&small).call().unwrap().status().as_u16() == 503
        });
        assert!(busy, "no 503 with {} requests stalled", MAX_ACTIVE + 8);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn task_of_reads_model_type_through_the_task_table() {
        let task = |config: serde_json::Value| task_of(&config);
        assert_eq!(task(serde_json::json!({ "model_type": "distilbert" })), Some("text-classification"));
        assert_eq!(task(serde_json::json!({ "model_type": "t5", "architectures": ["T5ForConditionalGeneration"] })), Some("translation"));
        assert_eq!(task(serde_json::json!({ "model_type": "whisper" })), Some("automatic-speech-recognition"));
        // faster-whisper (CTranslate2) config.json.
        assert_eq!(task(serde_json::json!({ "suppress_ids": [1, 2] })), Some("automatic-speech-recognition"));
        assert_eq!(task(serde_json::json!({ "model_type": "gpt2" })), None);
        assert_eq!(task(serde_json::json!({})), None);
    }
}
