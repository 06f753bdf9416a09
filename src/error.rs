//! One error type for the whole crate: each variant says what went wrong in words a user can act on.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum Error {
    /// The repository has no such file (HTTP 404, or missing in a local directory).
    #[error("file not found: {url}")]
    NotFound { url: String },

    /// The server answered, but not with the file.
    #[error("HTTP {status} fetching {url}{}", http_hint(*status))]
    Http { url: String, status: u16 },

    /// The request never got an answer (offline, refused, CORS).
    #[error("network error fetching {url}: {message}")]
    Network { url: String, message: String },

    /// `config.json` names an architecture this task cannot run.
    #[error("unsupported model_type '{model_type}' for {task}; supported: {}", supported.join(", "))]
    UnsupportedModel { task: String, model_type: String, supported: Vec<String> },

    #[error("unsupported task '{0}'; supported: {names}", names = crate::tasks::task_names())]
    UnsupportedTask(String),

    #[error("invalid config.json: {0}")]
    Config(String),

    #[error("corrupt or unreadable weights in {file}: {message}")]
    Weights { file: String, message: String },

    #[error("tokenizer: {0}")]
    Tokenizer(String),

    /// The caller's input (text, audio, options) cannot be used.
    #[error("invalid input: {0}")]
    Input(String),

    /// The model would need more memory than the caller's budget (`max_memory`) allows.
    #[error(
        "{model} needs about {} of memory as {dtype} weights, more than the {} budget (max_memory); {advice}",
        crate::weights::fit::format_bytes(*needed),
        crate::weights::fit::format_bytes(*budget)
    )]
    TooLarge { model: String, dtype: String, needed: u64, budget: u64, advice: String },

    #[error("model computation failed: {0}")]
    Compute(#[from] candle_core::Error),

    #[error("{0}")]
    Io(String),
}

pub type Result<T> = std::result::Result<T, Error>;

/// What an HTTP status usually means on the Hub.
fn http_hint(status: u16) -> &'static str {
    match status {
        401 | 403 => " (the model is gated or private: it needs a Hugging Face login, which hubside does not send)",
        429 => " (rate limited: try again later)",
        500..=599 => " (the server failed: try again later)",
        _ => "",
    }
}

impl Error {
    pub fn weights(file: &str, message: impl std::fmt::Display) -> Self {
        Error::Weights { file: file.to_string(), message: message.to_string() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_errors_name_the_url_and_explain_common_statuses() {
        let url = "https://huggingface.co/org/gated/resolve/main/config.json".to_string();
        let gated = Error::Http { url: url.clone(), status: 401 }.to_string();
        assert!(gated.starts_with(&format!("HTTP 401 fetching {url}")) && gated.contains("gated or private"), "{gated}");
        assert_eq!(Error::Http { url: url.clone(), status: 418 }.to_string(), format!("HTTP 418 fetching {url}"));
    }
}
