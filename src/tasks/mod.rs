//! One file per task: load what the task needs from a repo, run it, shape the output.
//!
//! [`TASKS`] is the one table of what the crate can do: per task its transformers.js name and
//! aliases, the `model_type`s it runs (read from the task's loader registry), its default model
//! and its per-call options. The CLI, `hubside serve` and the JS `pipeline()` /
//! `supportedTasks()` all read it.

pub mod speech_recognition;
pub mod subtitles;
pub mod suggestions;
pub mod text_classification;
pub mod translation;

use serde::de::{self, Deserialize, Deserializer, Visitor};

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    TextClassification,
    Translation,
    SpeechRecognition,
}

/// One row of the task table.
#[derive(Debug)]
pub struct TaskInfo {
    pub task: Task,
    /// The name transformers.js gives the task.
    pub name: &'static str,
    /// Other names transformers.js accepts for it.
    pub aliases: &'static [&'static str],
    /// The model used when none is named.
    pub default_model: &'static str,
    /// Per-call options, callbacks included (transformers.js' names where it has them).
    pub options: &'static [&'static str],
    /// The models offered first (the default among them, first); any other repo id works too.
    pub suggested: &'static [suggestions::Suggestion],
    model_types: fn() -> Vec<&'static str>,
}

impl TaskInfo {
    /// The `config.json` `model_type`s the task's loader registry holds.
    pub fn model_types(&self) -> Vec<&'static str> {
        (self.model_types)()
    }
}

/// In the order of [`Task`]'s variants.
pub const TASKS: [TaskInfo; 3] = [
    TaskInfo {
        task: Task::TextClassification,
        name: "text-classification",
        aliases: &["sentiment-analysis"],
        default_model: "distilbert/distilbert-base-uncased-finetuned-sst-2-english",
        options: &["top_k"],
        suggested: suggestions::TEXT_CLASSIFICATION,
        model_types: || registry_names(text_classification::REGISTRY),
    },
    TaskInfo {
        task: Task::Translation,
        name: "translation",
        // Plus transformers' `translation_{src}_to_{tgt}` names (see `Task::parse`).
        aliases: &[],
        default_model: "Helsinki-NLP/opus-mt-en-de",
        options: &["max_new_tokens", "num_beams", "length_penalty", "early_stopping", "src_lang", "tgt_lang", "on_token"],
        suggested: suggestions::TRANSLATION,
        model_types: || registry_names(translation::REGISTRY),
    },
    TaskInfo {
        task: Task::SpeechRecognition,
        name: "automatic-speech-recognition",
        aliases: &["asr"],
        default_model: "openai/whisper-tiny.en",
        options: &[
            "sampling_rate", "channels", "return_timestamps", "language", "task", "on_partial",
            // openai's long-form rules (whisper::fallback, whisper::prompt).
            "condition_on_previous_text", "initial_prompt", "temperature", "compression_ratio_threshold",
            "logprob_threshold", "no_speech_threshold", "seed",
        ],
        suggested: suggestions::SPEECH_RECOGNITION,
        model_types: || speech_recognition::MODEL_TYPES.to_vec(),
    },
];

fn registry_names<L>(registry: &[(&'static str, L)]) -> Vec<&'static str> {
    registry.iter().map(|(name, _)| *name).collect()
}

/// A task name resolved through the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskName {
    pub task: Task,
    /// Source and target language named by a `translation_{src}_to_{tgt}` task name.
    pub languages: Option<(String, String)>,
}

impl Task {
    pub fn info(self) -> &'static TaskInfo {
        &TASKS[self as usize]
    }

    pub fn name(self) -> &'static str {
        self.info().name
    }

    /// A task by its transformers.js name or alias; transformers' `translation_xx_to_yy` names are
    /// translation from xx to yy. Unknown names are `UnsupportedTask`, which lists the known ones.
    pub fn parse(name: &str) -> Result<TaskName> {
        if let Some(info) = TASKS.iter().find(|info| info.name == name || info.aliases.contains(&name)) {
            return Ok(TaskName { task: info.task, languages: None });
        }
        match name.strip_prefix("translation_").and_then(|pair| pair.split_once("_to_")) {
            Some((src, tgt)) if !src.is_empty() && !tgt.is_empty() => {
                Ok(TaskName { task: Task::Translation, languages: Some((src.to_string(), tgt.to_string())) })
            }
            _ => Err(Error::UnsupportedTask(name.to_string())),
        }
    }

    /// The task whose loader registry holds `model_type`.
    pub fn for_model_type(model_type: &str) -> Option<Task> {
        TASKS.iter().find(|info| info.model_types().contains(&model_type)).map(|info| info.task)
    }
}

/// Every task name `Task::parse` accepts, for messages: `text-classification (sentiment-analysis), ...`.
pub fn task_names() -> String {
    let with_aliases = |info: &TaskInfo| match (info.task, info.aliases) {
        (Task::Translation, _) => format!("{} (translation_xx_to_yy)", info.name),
        (_, []) => info.name.to_string(),
        (_, aliases) => format!("{} ({})", info.name, aliases.join(", ")),
    };
    TASKS.iter().map(with_aliases).collect::<Vec<_>>().join(", ")
}

/// `UnsupportedModel` for `task`, naming `model_type` and every supported one.
pub fn unsupported_model(task: Task, model_type: &str) -> Error {
    Error::UnsupportedModel {
        task: task.name().to_string(),
        model_type: model_type.to_string(),
        supported: task.info().model_types().iter().map(|t| t.to_string()).collect(),
    }
}

/// How a pipeline's model is loaded (the same for every task).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// How weight matrices are stored and multiplied.
    pub dtype: crate::weights::WeightDType,
    /// A single model file in the repo to load instead of its usual files (a whisper.cpp ggml
    /// `.bin` for speech recognition).
    pub file: Option<String>,
}

/// The loader `registry` holds for `config.json`'s `model_type`, or `UnsupportedModel`.
pub fn find_loader<L: Copy>(registry: &[(&str, L)], config: &serde_json::Value, task: Task) -> Result<L> {
    let model_type = config.get("model_type").and_then(|v| v.as_str()).unwrap_or("(none)");
    registry
        .iter()
        .find(|(name, _)| *name == model_type)
        .map(|(_, loader)| *loader)
        .ok_or_else(|| unsupported_model(task, model_type))
}

/// The field names of a `#[derive(Deserialize)]` struct, i.e. the option names an options struct
/// takes. Serde passes them to `deserialize_struct`, where this deserializer records them.
pub fn field_names<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    struct Fields<'a>(&'a mut &'static [&'static str]);

    impl<'de> Deserializer<'de> for Fields<'_> {
        type Error = de::value::Error;

        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> std::result::Result<V::Value, Self::Error> {
            Err(de::Error::custom("not a struct"))
        }

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> std::result::Result<V::Value, Self::Error> {
            *self.0 = fields;
            Err(de::Error::custom("fields recorded"))
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option
            unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
        }
    }

    let mut fields: &'static [&'static str] = &[];
    // Always an error: the deserializer has no values, it only records the names.
    let _ = T::deserialize(Fields(&mut fields));
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_in_variant_order() {
        for (index, info) in TASKS.iter().enumerate() {
            assert_eq!(info.task as usize, index, "{}", info.name);
        }
    }

    #[test]
    fn every_name_and_alias_resolves_to_its_task() {
        for info in &TASKS {
            for name in std::iter::once(&info.name).chain(info.aliases) {
                assert_eq!(Task::parse(name).unwrap(), TaskName { task: info.task, languages: None }, "{name}");
            }
        }
        assert_eq!(Task::parse("sentiment-analysis").unwrap().task, Task::TextClassification);
        assert_eq!(Task::parse("asr").unwrap().task, Task::SpeechRecognition);
    }

    #[test]
    fn translation_xx_to_yy_names_the_languages() {
        let parsed = Task::parse("translation_en_to_de").unwrap();
        assert_eq!(parsed, TaskName { task: Task::Translation, languages: Some(("en".into(), "de".into())) });
        for bad in ["translation_en", "translation__to_de", "translation_en_to_", "translations"] {
            assert!(matches!(Task::parse(bad), Err(Error::UnsupportedTask(_))), "{bad}");
        }
    }

    #[test]
    fn unknown_task_error_lists_every_name() {
        let message = Task::parse("summarization").unwrap_err().to_string();
        assert!(message.contains("'summarization'"), "{message}");
        for info in &TASKS {
            assert!(message.contains(info.name), "{message}");
            for alias in info.aliases {
                assert!(message.contains(alias), "{message}");
            }
        }
        assert!(message.contains("translation_xx_to_yy"), "{message}");
    }

    #[test]
    fn model_types_come_from_the_registries() {
        assert_eq!(Task::TextClassification.info().model_types(), ["bert", "distilbert", "roberta", "xlm-roberta", "deberta-v2"]);
        assert_eq!(Task::Translation.info().model_types(), ["marian", "m2m_100", "t5"]);
        assert_eq!(Task::SpeechRecognition.info().model_types(), ["whisper"]);
        assert_eq!(Task::for_model_type("t5"), Some(Task::Translation));
        assert_eq!(Task::for_model_type("whisper"), Some(Task::SpeechRecognition));
        assert_eq!(Task::for_model_type("gpt2"), None);
        let error = unsupported_model(Task::Translation, "bert").to_string();
        assert!(error.contains("'bert'") && error.contains("translation") && error.contains("marian, m2m_100, t5"), "{error}");
    }

    #[test]
    fn options_structs_take_only_listed_options() {
        let listed = |task: Task| task.info().options;
        for name in field_names::<text_classification::ClassifyOptions>() {
            assert!(listed(Task::TextClassification).contains(name), "{name}");
        }
        for name in field_names::<translation::TranslateOptions>() {
            assert!(listed(Task::Translation).contains(name), "{name}");
        }
        for name in field_names::<speech_recognition::TranscribeOptions>() {
            assert!(listed(Task::SpeechRecognition).contains(name), "{name}");
        }
        assert_eq!(field_names::<text_classification::ClassifyOptions>(), ["top_k"]);
    }

    #[test]
    fn options_deserialize_as_transformers_spells_them() {
        use crate::generation::EarlyStopping;
        use serde_json::json;
        let translate = |value| serde_json::from_value::<translation::TranslateOptions>(value);
        for (given, expected) in [(json!(true), EarlyStopping::Always), (json!(false), EarlyStopping::Heuristic), (json!("never"), EarlyStopping::Never)] {
            assert_eq!(translate(json!({ "early_stopping": given })).unwrap().early_stopping, Some(expected));
        }
        assert_eq!(translate(json!({ "early_stopping": null })).unwrap().early_stopping, None);
        assert!(translate(json!({ "early_stopping": "sometimes" })).unwrap_err().to_string().contains("never"));
        assert!(translate(json!({ "max_length": 5 })).unwrap_err().to_string().contains("max_length"));

        let top_k = |value| serde_json::from_value::<text_classification::ClassifyOptions>(value).map(|o| o.top_k);
        assert_eq!(top_k(json!({})).unwrap(), Some(1));
        assert_eq!(top_k(json!({ "top_k": 3 })).unwrap(), Some(3));
        assert_eq!(top_k(json!({ "top_k": null })).unwrap(), None);
        assert_eq!(top_k(json!({ "top_k": 0 })).unwrap(), None);
        assert!(top_k(json!({ "top_k": -1 })).is_err());

        let transcribe = |value| serde_json::from_value::<speech_recognition::TranscribeOptions>(value);
        assert!(transcribe(json!({ "return_timestamp": true })).unwrap_err().to_string().contains("return_timestamp"));
        assert_eq!(transcribe(json!({ "task": "translate" })).unwrap().task, speech_recognition::SpeechTask::Translate);
    }
}
