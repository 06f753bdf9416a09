//! In headless Chromium (wasm-bindgen-test): browser downloads against a misbehaving server
//! (tests/browser/hostile_server.py, started by scripts/test.sh; its address comes from
//! HUBSIDE_TEST_HOSTILE). Each stalled, dripping, endless or corrupt download ends with a clear
//! network error within a generous bound; a dropped one is resumed with Range; a 503 is retried.
#![cfg(target_arch = "wasm32")]

use hubside::hub::{NetOptions, Repo};
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

mod browser;
use browser::HOSTILE;
#[path = "common/network.rs"]
mod network;
use network::network_message;

/// "Does not hang": every case must end well within this.
const BOUND_MS: f64 = 30_000.0;

fn file() -> Vec<u8> {
    (0..300_000usize).map(|i| (i * 7 % 251) as u8).collect()
}

/// A fresh endpoint for `case` (its own request count on the server).
fn endpoint(case: &str) -> String {
    format!("{HOSTILE}/{case}/{}", (js_sys::Math::random() * 1e12) as u64)
}

/// GET org/m's f.bin from `endpoint` (timeout 2 s, at most 1 MiB), checking it ends in time.
async fn download(endpoint: &str) -> hubside::Result<Vec<u8>> {
    let net = NetOptions { timeout: std::time::Duration::from_secs(2), attempts: 4, max_file_bytes: 1 << 20 };
    let repo = Repo::remote("org/m", Some(endpoint), None).unwrap().with_net(net).with_cache(false);
    let started = js_sys::Date::now();
    let result = repo.get("f.bin").await;
    let took = js_sys::Date::now() - started;
    assert!(took < BOUND_MS, "took {took} ms");
    result
}

/// The request heads the server saw for `endpoint`.
async fn requests(endpoint: &str) -> Vec<String> {
    let window = web_sys::window().unwrap();
    let response: web_sys::Response = JsFuture::from(window.fetch_with_str(&format!("{endpoint}/log"))).await.unwrap().into();
    let text = JsFuture::from(response.text().unwrap()).await.unwrap().as_string().unwrap();
    serde_json::from_str(&text).unwrap()
}

#[wasm_bindgen_test]
async fn a_server_that_stalls_before_the_headers_times_out() {
    let endpoint = endpoint("stall");
    let message = network_message(download(&endpoint).await, &endpoint);
    assert!(message.contains("timed out"), "{message}");
}

#[wasm_bindgen_test]
async fn a_server_that_stalls_mid_body_times_out() {
    let endpoint = endpoint("stall-body");
    let message = network_message(download(&endpoint).await, &endpoint);
    assert!(message.contains("timed out"), "{message}");
}

#[wasm_bindgen_test]
async fn a_server_that_drips_bytes_fails_as_stalled() {
    let endpoint = endpoint("drip");
    let message = network_message(download(&endpoint).await, &endpoint);
    assert!(message.contains("stalled"), "{message}");
}

#[wasm_bindgen_test]
async fn a_connection_dropped_halfway_is_resumed_with_range() {
    let endpoint = endpoint("drop");
    assert!(download(&endpoint).await.unwrap() == file(), "the exact bytes");
    let seen = requests(&endpoint).await;
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(seen[1].contains("range: bytes=150000-"), "{}", seen[1]);
}

#[wasm_bindgen_test]
async fn a_503_is_retried() {
    let endpoint = endpoint("503");
    assert!(download(&endpoint).await.unwrap() == file());
    assert_eq!(requests(&endpoint).await.len(), 2);
}

#[wasm_bindgen_test]
async fn a_wrong_sha256_in_x_linked_etag_is_refused() {
    let endpoint = endpoint("bad-sha");
    let message = network_message(download(&endpoint).await, &endpoint);
    assert!(message.contains("corrupt"), "{message}");
}

#[wasm_bindgen_test]
async fn an_endless_body_without_a_length_stops_at_the_maximum_file_size() {
    let endpoint = endpoint("endless");
    let message = network_message(download(&endpoint).await, &endpoint);
    assert!(message.contains("maximum file size"), "{message}");
}
