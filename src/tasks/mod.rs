//! One file per task: load what the task needs from a repo, run it, shape the output.

pub mod speech_recognition;
pub mod text_classification;
pub mod translation;

use crate::error::{Error, Result};

/// The loader `registry` holds for `config.json`'s `model_type`, or `UnsupportedModel` naming
/// the `model_type` and every supported one.
pub fn find_loader<L: Copy>(registry: &[(&str, L)], config: &serde_json::Value, task: &str) -> Result<L> {
    let model_type = config.get("model_type").and_then(|v| v.as_str()).unwrap_or("(none)");
    registry.iter().find(|(name, _)| *name == model_type).map(|(_, loader)| *loader).ok_or_else(|| {
        Error::UnsupportedModel {
            task: task.to_string(),
            model_type: model_type.to_string(),
            supported: registry.iter().map(|(name, _)| name.to_string()).collect(),
        }
    })
}

/// Task names as transformers.js spells them, mapped to the task that runs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    TextClassification,
    Translation,
    SpeechRecognition,
}

impl Task {
    pub const NAMES: &'static [&'static str] = &["sentiment-analysis", "text-classification", "translation", "automatic-speech-recognition"];

    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "sentiment-analysis" | "text-classification" => Ok(Task::TextClassification),
            // transformers' `translation_xx_to_yy` names select the languages of a T5 model.
            name if name == "translation" || name.starts_with("translation_") => Ok(Task::Translation),
            "automatic-speech-recognition" => Ok(Task::SpeechRecognition),
            other => Err(Error::UnsupportedTask(other.to_string())),
        }
    }
}
