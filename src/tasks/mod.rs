//! One file per task: load what the task needs from a repo, run it, shape the output.

pub mod speech_recognition;
pub mod text_classification;

/// Task names as transformers.js spells them, mapped to the task that runs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    TextClassification,
}

impl Task {
    pub const NAMES: &'static [&'static str] = &["sentiment-analysis", "text-classification"];

    pub fn parse(name: &str) -> crate::error::Result<Self> {
        match name {
            "sentiment-analysis" | "text-classification" => Ok(Task::TextClassification),
            other => Err(crate::error::Error::UnsupportedTask(other.to_string())),
        }
    }
}
