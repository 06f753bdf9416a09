//! Downloads against a misbehaving server: a fault-injecting HTTP server on 127.0.0.1, written
//! here with one behaviour per test, shows that every stalled, dropped, endless, oversized or
//! corrupt download ends with a clear error (or the right bytes) within a generous bound, in
//! bounded memory (`max_file_bytes` is 1 MiB here).
#![cfg(not(target_arch = "wasm32"))]

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hubside::hub::{NetOptions, Repo};
use hubside::Error;

#[path = "common/network.rs"]
mod network;
use network::network_message;

/// How long a stalling server holds its connection: far past every timeout used here.
const STALL: Duration = Duration::from_secs(120);
/// "Does not hang": every case must end well within this.
const BOUND: Duration = Duration::from_secs(30);

/// The requests a server saw, each its head (request line and headers, lowercased).
type Seen = Arc<Mutex<Vec<String>>>;

/// A server answering each connection with `behave(index of the request, its head, stream)`;
/// its Hub endpoint and the requests it saw.
fn server(behave: impl Fn(usize, &str, &mut TcpStream) + Send + Sync + 'static) -> (String, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let seen: Seen = Default::default();
    let (behave, requests) = (Arc::new(behave), seen.clone());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let (behave, requests) = (behave.clone(), requests.clone());
            std::thread::spawn(move || {
                let mut head = String::new();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    head.push_str(&line.to_ascii_lowercase());
                }
                let index = {
                    let mut requests = requests.lock().unwrap();
                    requests.push(head.clone());
                    requests.len() - 1
                };
                behave(index, &head, &mut stream);
                let _ = stream.flush();
            });
        }
    });
    (endpoint, seen)
}

fn net(timeout_secs: u64) -> NetOptions {
    NetOptions { timeout: Duration::from_secs(timeout_secs), attempts: 4, max_file_bytes: 1 << 20 }
}

/// GET org/m's f.bin from `endpoint` with `net`; the result and how long it took.
fn download(endpoint: &str, net: NetOptions) -> (hubside::Result<Vec<u8>>, Duration) {
    let repo = Repo::remote("org/m", Some(endpoint), None).unwrap().with_net(net);
    let started = Instant::now();
    let result = pollster::block_on(repo.get("f.bin"));
    let took = started.elapsed();
    assert!(took < BOUND, "took {took:?}");
    (result, took)
}

fn file(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 251) as u8).collect()
}

fn sha256(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, bytes).as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

fn respond(stream: &mut TcpStream, status: &str, headers: &[String], body: &[u8]) {
    let mut out = format!("HTTP/1.1 {status}\r\nConnection: close\r\n");
    for header in headers {
        out.push_str(header);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    let _ = stream.write_all(out.as_bytes());
    let _ = stream.write_all(body);
}

#[test]
fn a_server_that_stalls_before_the_headers_times_out() {
    let (endpoint, _) = server(|_, _, _| std::thread::sleep(STALL));
    let (result, took) = download(&endpoint, net(2));
    let message = network_message(result, &endpoint);
    assert!(message.contains("timed out"), "{message}");
    assert!(took >= Duration::from_secs(2), "not before the timeout: {took:?}");
}

#[test]
fn a_server_that_stalls_mid_body_times_out() {
    let (endpoint, _) = server(|_, _, stream| {
        respond(stream, "200 OK", &["Content-Length: 100000".into()], &file(1000));
        std::thread::sleep(STALL);
    });
    let (result, _) = download(&endpoint, net(2));
    let message = network_message(result, &endpoint);
    assert!(message.contains("timed out"), "{message}");
}

#[test]
fn a_server_that_drips_bytes_fails_as_stalled() {
    let (endpoint, _) = server(|_, _, stream| {
        respond(stream, "200 OK", &["Content-Length: 100000".into()], &[]);
        // A byte every 100 ms: never silent for a whole timeout, far below 1 KiB per window.
        for byte in file(100000) {
            if stream.write_all(&[byte]).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    let (result, _) = download(&endpoint, net(2));
    let message = network_message(result, &endpoint);
    assert!(message.contains("stalled"), "{message}");
}

#[test]
fn a_connection_dropped_halfway_is_resumed_with_range() {
    let body = file(300_000);
    let (endpoint, seen) = {
        let body = body.clone();
        server(move |index, head, stream| {
            let etag = "ETag: \"v1\"".to_string();
            let length = format!("Content-Length: {}", body.len());
            match index {
                // Half the file, then the connection drops.
                0 => respond(stream, "200 OK", &[length, etag, "Accept-Ranges: bytes".into()], &body[..body.len() / 2]),
                _ => {
                    let from: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("range: bytes="))
                        .and_then(|r| r.trim().trim_end_matches('-').parse().ok())
                        .unwrap_or(0);
                    let part = &body[from..];
                    let range = format!("Content-Range: bytes {from}-{}/{}", body.len() - 1, body.len());
                    respond(stream, "206 Partial Content", &[format!("Content-Length: {}", part.len()), etag, range], part);
                }
            }
        })
    };
    let (result, _) = download(&endpoint, net(5));
    assert!(result.unwrap() == body, "the exact bytes");
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(seen[1].contains(&format!("range: bytes={}-", body.len() / 2)), "{}", seen[1]);
    assert!(seen[1].contains("if-range: \"v1\""), "{}", seen[1]);
}

#[test]
fn a_file_that_changed_before_the_resume_is_fetched_again_whole() {
    let (old, new) = (file(200_000), file(250_000).into_iter().rev().collect::<Vec<u8>>());
    let (endpoint, seen) = {
        let (old, new) = (old.clone(), new.clone());
        server(move |index, _, stream| match index {
            0 => respond(stream, "200 OK", &[format!("Content-Length: {}", old.len()), "ETag: \"old\"".into()], &old[..1000]),
            // If-Range did not match: the whole new file.
            _ => respond(stream, "200 OK", &[format!("Content-Length: {}", new.len()), "ETag: \"new\"".into()], &new),
        })
    };
    let (result, _) = download(&endpoint, net(5));
    assert!(result.unwrap() == new, "the new file, not old bytes spliced onto new ones");
    assert_eq!(seen.lock().unwrap().len(), 2);
}

#[test]
fn a_503_is_retried() {
    let body = file(5000);
    let (endpoint, seen) = {
        let body = body.clone();
        server(move |index, _, stream| match index {
            0 => respond(stream, "503 Service Unavailable", &["Content-Length: 0".into()], &[]),
            _ => respond(stream, "200 OK", &[format!("Content-Length: {}", body.len())], &body),
        })
    };
    let (result, _) = download(&endpoint, net(5));
    assert!(result.unwrap() == body);
    assert_eq!(seen.lock().unwrap().len(), 2);
}

#[test]
fn a_connection_closed_before_the_headers_is_retried() {
    let body = file(5000);
    let (endpoint, seen) = {
        let body = body.clone();
        server(move |index, _, stream| match index {
            0 => {
                let _ = stream.shutdown(std::net::Shutdown::Both);
            }
            _ => respond(stream, "200 OK", &[format!("Content-Length: {}", body.len())], &body),
        })
    };
    let (result, _) = download(&endpoint, net(5));
    assert!(result.unwrap() == body);
    assert_eq!(seen.lock().unwrap().len(), 2);
}

#[test]
fn a_429_is_retried_after_its_retry_after() {
    let body = file(5000);
    let (endpoint, seen) = {
        let body = body.clone();
        server(move |index, _, stream| match index {
            0 => respond(stream, "429 Too Many Requests", &["Retry-After: 1".into(), "Content-Length: 0".into()], &[]),
            _ => respond(stream, "200 OK", &[format!("Content-Length: {}", body.len())], &body),
        })
    };
    let (result, took) = download(&endpoint, net(5));
    assert!(result.unwrap() == body);
    assert_eq!(seen.lock().unwrap().len(), 2);
    assert!(took >= Duration::from_millis(900), "waited as asked: {took:?}");
}

#[test]
fn a_server_that_keeps_failing_is_given_up_on() {
    let (endpoint, seen) = server(|_, _, stream| respond(stream, "500 Internal Server Error", &["Content-Length: 0".into()], &[]));
    let (result, _) = download(&endpoint, net(5));
    assert!(matches!(result, Err(Error::Http { status: 500, .. })), "{:?}", result.map(|b| b.len()));
    assert_eq!(seen.lock().unwrap().len(), 4, "the attempts NetOptions allows");
}

/// Writes `piece` until the client hangs up (or far more than any limit here).
fn endless(stream: &mut TcpStream, piece: &[u8]) {
    for _ in 0..1_000_000 {
        if stream.write_all(piece).is_err() {
            return;
        }
    }
}

#[test]
fn an_endless_body_without_a_length_stops_at_the_maximum_file_size() {
    let (endpoint, _) = server(|_, _, stream| {
        respond(stream, "200 OK", &[], &[]);
        endless(stream, &[7u8; 16 * 1024]);
    });
    let (result, _) = download(&endpoint, net(5));
    let message = network_message(result, &endpoint);
    assert!(message.contains("maximum file size of 1048576 bytes"), "{message}");
}

#[test]
fn an_endless_chunked_body_stops_at_the_maximum_file_size() {
    let (endpoint, _) = server(|_, _, stream| {
        respond(stream, "200 OK", &["Transfer-Encoding: chunked".into()], &[]);
        let mut chunk = b"4000\r\n".to_vec();
        chunk.extend([7u8; 0x4000]);
        chunk.extend(b"\r\n");
        endless(stream, &chunk);
    });
    let (result, _) = download(&endpoint, net(5));
    let message = network_message(result, &endpoint);
    assert!(message.contains("maximum file size"), "{message}");
}

#[test]
fn a_gzip_bomb_is_not_expanded() {
    // 256 MiB of zeros in about 256 kB.
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    for _ in 0..256 {
        encoder.write_all(&[0u8; 1 << 20]).unwrap();
    }
    let bomb = encoder.finish().unwrap();
    let (endpoint, _) = server(move |_, _, stream| {
        let headers = [format!("Content-Length: {}", bomb.len()), "Content-Encoding: gzip".into()];
        respond(stream, "200 OK", &headers, &bomb);
    });
    let (result, _) = download(&endpoint, net(5));
    let message = network_message(result, &endpoint);
    assert!(message.contains("gzip"), "{message}");
}

#[test]
fn a_wrong_sha256_in_x_linked_etag_is_refused() {
    let body = file(5000);
    let (endpoint, _) = {
        let body = body.clone();
        server(move |_, _, stream| {
            let wrong = format!("X-Linked-Etag: \"{}\"", sha256(b"something else"));
            respond(stream, "200 OK", &[format!("Content-Length: {}", body.len()), wrong], &body);
        })
    };
    let (result, _) = download(&endpoint, net(5));
    let message = network_message(result, &endpoint);
    assert!(message.contains("sha256") && message.contains(&sha256(&body)), "{message}");
}

#[test]
fn the_hubs_redirect_gives_the_sha256_the_download_is_checked_against() {
    // As the Hub does for LFS files: /resolve/ redirects to the CDN with the sha256 and size in
    // X-Linked-Etag / X-Linked-Size; the CDN's own ETag is something else.
    for corrupt in [false, true] {
        let body = file(70_000);
        let (endpoint, seen) = {
            let body = body.clone();
            server(move |_, head, stream| {
                if head.starts_with("get /org/m/resolve/") {
                    let headers = [
                        "Location: /cdn/blob?signed=1".to_string(),
                        format!("X-Linked-Etag: W/\"{}\"", sha256(&body).to_uppercase()),
                        format!("X-Linked-Size: {}", body.len()),
                        "Content-Length: 0".into(),
                    ];
                    respond(stream, "302 Found", &headers, &[]);
                } else {
                    let mut sent = body.clone();
                    if corrupt {
                        sent[1234] ^= 1;
                    }
                    respond(stream, "200 OK", &[format!("Content-Length: {}", sent.len()), "ETag: \"cdn-1\"".into()], &sent);
                }
            })
        };
        let (result, _) = download(&endpoint, net(5));
        if corrupt {
            let message = network_message(result, &endpoint);
            assert!(message.contains("corrupt"), "{message}");
        } else {
            assert!(result.unwrap() == body);
        }
        assert!(seen.lock().unwrap()[1].starts_with("get /cdn/blob?signed=1 "));
    }
}

#[test]
fn a_body_longer_than_its_content_length_is_cut_at_it() {
    let body = file(5000);
    let (endpoint, _) = {
        let body = body.clone();
        server(move |_, _, stream| {
            respond(stream, "200 OK", &["Content-Length: 100".into()], &body);
            endless(stream, &[1u8; 4096]);
        })
    };
    let (result, _) = download(&endpoint, net(5));
    assert_eq!(result.unwrap(), body[..100], "never more than announced");
}

#[test]
fn a_content_length_above_the_maximum_file_size_is_refused_before_reading() {
    let (endpoint, _) = server(|_, _, stream| {
        respond(stream, "200 OK", &[format!("Content-Length: {}", 1u64 << 40)], &[]);
        endless(stream, &[0u8; 4096]);
    });
    let (result, _) = download(&endpoint, net(5));
    let message = network_message(result, &endpoint);
    assert!(message.contains("announces 1099511627776 bytes"), "{message}");
}

#[test]
fn a_range_read_from_a_stalled_server_times_out() {
    let (endpoint, _) = server(|_, _, stream| {
        respond(stream, "206 Partial Content", &["Content-Length: 8".into(), "Content-Range: bytes 0-7/100".into()], &[1, 2]);
        std::thread::sleep(STALL);
    });
    let repo = Repo::remote("org/m", Some(&endpoint), None).unwrap().with_net(net(2));
    let started = Instant::now();
    let result = pollster::block_on(repo.read_range("f.bin", 0, 8));
    assert!(started.elapsed() < BOUND);
    assert!(matches!(result, Err(Error::Network { .. })), "{result:?}");
}

#[test]
fn an_etag_that_is_a_sha256_is_checked_but_a_redirects_own_is_not() {
    let body = file(5000);
    // The final response's ETag is a sha256, not the body's.
    let (endpoint, _) = {
        let body = body.clone();
        server(move |_, _, stream| {
            let etag = format!("ETag: \"{}\"", sha256(b"other"));
            respond(stream, "200 OK", &[format!("Content-Length: {}", body.len()), etag], &body);
        })
    };
    let message = network_message(download(&endpoint, net(5)).0, &endpoint);
    assert!(message.contains("corrupt"), "{message}");
    // A redirect's own ETag says nothing about the file it leads to.
    let (endpoint, _) = {
        let body = body.clone();
        server(move |_, head, stream| {
            if head.starts_with("get /org/") {
                let etag = format!("ETag: \"{}\"", sha256(b"the redirect"));
                respond(stream, "307 Temporary Redirect", &["Location: /elsewhere".into(), etag, "Content-Length: 0".into()], &[]);
            } else {
                respond(stream, "200 OK", &[format!("Content-Length: {}", body.len())], &body);
            }
        })
    };
    assert!(download(&endpoint, net(5)).0.unwrap() == body);
}
