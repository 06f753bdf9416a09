//! Sentiment analysis / text classification: tokenize (truncating to the model's limit), run a
//! sequence classifier on length-sorted padded batches, softmax (or sigmoid) per label.

use candle_core::{Device, Tensor};

use crate::error::{Error, Result};
use crate::generation::math;
use crate::hub::Repo;
use crate::models::{bert, deberta_v2, distilbert, roberta, SequenceClassifier};
use crate::weights::{self, Weights};
use crate::tokenizer;
use super::LoadOptions;

type Loader = fn(&serde_json::Value, usize, Weights) -> Result<Box<dyn SequenceClassifier>>;

/// `model_type` → loader. Adding an architecture is one model file and one line here.
pub(super) const REGISTRY: &[(&str, Loader)] = &[
    ("bert", bert::load_classifier),
    ("distilbert", distilbert::load_classifier),
    ("roberta", roberta::load_classifier),
    ("xlm-roberta", roberta::load_classifier),
    ("deberta-v2", deberta_v2::load_classifier),
];

/// Texts per forward pass: bounds memory for long batches; sorted by length to limit padding.
const BATCH: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ScoreFn {
    Softmax,
    Sigmoid,
}

pub struct TextClassifier {
    model: Box<dyn SequenceClassifier>,
    tokenizer: tokenizer::AnyTokenizer,
    labels: Vec<String>,
    pad_id: u32,
    score_fn: ScoreFn,
}

/// One text's result: everything the CLI's `--json` and the tests need.
#[derive(Debug, Clone)]
pub struct Classification {
    pub input_ids: Vec<u32>,
    pub logits: Vec<f32>,
    /// Probabilities in label order.
    pub scores: Vec<f32>,
}

/// Per-call options (transformers.js names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClassifyOptions {
    /// How many labels to return, best first: 1 unless given; `null` or 0 = every label.
    #[serde(deserialize_with = "every_label_when_zero")]
    pub top_k: Option<usize>,
}

impl Default for ClassifyOptions {
    fn default() -> Self {
        ClassifyOptions { top_k: Some(1) }
    }
}

fn every_label_when_zero<'de, D: serde::Deserializer<'de>>(deserializer: D) -> std::result::Result<Option<usize>, D::Error> {
    Ok(<Option<usize> as serde::Deserialize>::deserialize(deserializer)?.filter(|&k| k > 0))
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LabelScore {
    pub label: String,
    pub score: f32,
}

impl TextClassifier {
    /// Load config, tokenizer and weights from `repo`. The architecture is checked first, so an
    /// unsupported model fails before any weights are downloaded.
    pub async fn load(repo: &Repo) -> Result<Self> {
        Self::load_with(repo, &LoadOptions::default()).await
    }

    /// `load` with weights stored as `options` ask.
    pub async fn load_with(repo: &Repo, options: &LoadOptions) -> Result<Self> {
        let config: serde_json::Value = repo.get_json("config.json").await?;
        let loader = super::find_loader(REGISTRY, &config, super::Task::TextClassification)?;
        crate::models::limits::validate_config(&config, "config.json")?;
        let labels = labels(&config)?;
        let score_fn = if labels.len() == 1
            || config.get("problem_type").and_then(|v| v.as_str()) == Some("multi_label_classification")
        {
            ScoreFn::Sigmoid
        } else {
            ScoreFn::Softmax
        };

        let (mut tokenizer, tokenizer_config) = tokenizer::load_any(repo).await?;
        let model = weights::compact::load(
            repo,
            options.dtype,
            weights::WEIGHT_FILES,
            || Box::pin(weights::open(repo)),
            |w| loader(&config, labels.len(), w.clone()),
        )
        .await?;

        let max_length = tokenizer_config
            .max_length()
            .map_or(model.max_positions(), |n| n.min(model.max_positions()));
        tokenizer.set_max_length(max_length)?;
        let pad_token = tokenizer::TokenizerConfig::token(&tokenizer_config.pad_token, "[PAD]");
        let pad_id = tokenizer
            .token_to_id(&pad_token)
            .or_else(|| config.get("pad_token_id").and_then(|v| v.as_u64()).map(|v| v as u32))
            .unwrap_or(0);
        Ok(TextClassifier { model, tokenizer, labels, pad_id, score_fn })
    }

    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        self.tokenizer.encode(text)
    }

    /// Classify each text; results come back in input order.
    pub fn classify<S: AsRef<str>>(&self, texts: &[S]) -> Result<Vec<Classification>> {
        let ids = texts.iter().map(|t| self.encode(t.as_ref())).collect::<Result<Vec<_>>>()?;
        let mut order: Vec<usize> = (0..ids.len()).collect();
        order.sort_by_key(|&i| ids[i].len());
        let mut results: Vec<Option<Classification>> = vec![None; ids.len()];
        for chunk in order.chunks(BATCH) {
            let batch: Vec<&[u32]> = chunk.iter().map(|&i| ids[i].as_slice()).collect();
            for (&i, logits) in chunk.iter().zip(self.logits(&batch)?) {
                let scores = self.scores(&logits);
                results[i] = Some(Classification { input_ids: ids[i].clone(), logits, scores });
            }
        }
        Ok(results.into_iter().flatten().collect())
    }

    /// The `top_k` best labels of a result, best first (`None`: all labels).
    pub fn top_k(&self, result: &Classification, top_k: Option<usize>) -> Vec<LabelScore> {
        let mut ranked: Vec<LabelScore> = self
            .labels
            .iter()
            .zip(&result.scores)
            .map(|(label, &score)| LabelScore { label: label.clone(), score })
            .collect();
        ranked.sort_by(|a, b| b.score.total_cmp(&a.score));
        ranked.truncate(top_k.unwrap_or(ranked.len()));
        ranked
    }

    fn logits(&self, batch: &[&[u32]]) -> Result<Vec<Vec<f32>>> {
        if batch.iter().any(|ids| ids.is_empty()) {
            return Err(Error::Input("a text encodes to no tokens at all (the tokenizer adds none)".into()));
        }
        let longest = batch.iter().map(|ids| ids.len()).max().unwrap_or(0);
        let mut input_ids = Vec::with_capacity(batch.len() * longest);
        let mut mask = Vec::with_capacity(batch.len() * longest);
        for ids in batch {
            input_ids.extend_from_slice(ids);
            input_ids.extend(std::iter::repeat_n(self.pad_id, longest - ids.len()));
            mask.extend(std::iter::repeat_n(1u32, ids.len()));
            mask.extend(std::iter::repeat_n(0u32, longest - ids.len()));
        }
        let shape = (batch.len(), longest);
        let input_ids = Tensor::from_vec(input_ids, shape, &Device::Cpu)?;
        let mask = Tensor::from_vec(mask, shape, &Device::Cpu)?;
        let model = self.model.as_ref();
        let logits = crate::models::kernels::on_pool(|| -> Result<Vec<Vec<f32>>> { Ok(model.logits(&input_ids, &mask)?.to_vec2::<f32>()?) })?;
        for row in &logits {
            crate::models::check_finite(row, "logit")?;
        }
        Ok(logits)
    }

    fn scores(&self, logits: &[f32]) -> Vec<f32> {
        match self.score_fn {
            ScoreFn::Sigmoid => logits.iter().map(|&x| 1.0 / (1.0 + (-x).exp())).collect(),
            ScoreFn::Softmax => {
                let mut scores = logits.to_vec();
                math::softmax(&mut scores);
                scores
            }
        }
    }
}

/// Labels in id order from `id2label`; `LABEL_i` when a config has none.
fn labels(config: &serde_json::Value) -> Result<Vec<String>> {
    if let Some(map) = config.get("id2label").and_then(|v| v.as_object()) {
        let mut pairs = map
            .iter()
            .map(|(id, label)| {
                let id = id.parse::<usize>().map_err(|_| Error::Config(format!("id2label key '{id}' is not a number")))?;
                Ok((id, label.as_str().unwrap_or_default().to_string()))
            })
            .collect::<Result<Vec<_>>>()?;
        pairs.sort();
        if pairs.iter().enumerate().any(|(i, (id, _))| i != *id) || pairs.is_empty() {
            return Err(Error::Config("id2label ids must be 0..n".into()));
        }
        return Ok(pairs.into_iter().map(|(_, label)| label).collect());
    }
    let n = config.get("num_labels").and_then(|v| v.as_u64()).unwrap_or(2) as usize;
    Ok((0..n).map(|i| format!("LABEL_{i}")).collect())
}
