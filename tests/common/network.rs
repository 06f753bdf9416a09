//! What the native (tests/downloads.rs) and browser (tests/web_downloads.rs) download tests
//! both check of a failed download.

/// The network error's message, after checking it names the file's URL.
pub fn network_message(result: hubside::Result<Vec<u8>>, endpoint: &str) -> String {
    match result {
        Err(hubside::Error::Network { url, message }) => {
            assert_eq!(url, format!("{endpoint}/org/m/resolve/main/f.bin"));
            message
        }
        other => panic!("expected a network error, got {:?}", other.map(|b| b.len())),
    }
}
