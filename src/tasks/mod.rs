//! One file per task: load what the task needs from a repo, run it, shape the output.

pub mod generation;
pub mod speech_recognition;
pub mod text_classification;
pub mod translation;

/// Task names as transformers.js spells them, mapped to the task that runs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    TextClassification,
    Translation,
    SpeechRecognition,
}

impl Task {
    pub const NAMES: &'static [&'static str] = &["sentiment-analysis", "text-classification", "translation", "automatic-speech-recognition"];

    pub fn parse(name: &str) -> crate::error::Result<Self> {
        match name {
            "sentiment-analysis" | "text-classification" => Ok(Task::TextClassification),
            // transformers' `translation_xx_to_yy` names select the languages of a T5 model.
            name if name == "translation" || name.starts_with("translation_") => Ok(Task::Translation),
            "automatic-speech-recognition" => Ok(Task::SpeechRecognition),
            other => Err(crate::error::Error::UnsupportedTask(other.to_string())),
        }
    }
}
