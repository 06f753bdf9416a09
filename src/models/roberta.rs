//! RobertaForSequenceClassification and XLMRobertaForSequenceClassification (the same network;
//! only the tokenizer differs): BERT's embeddings with positions counted past the padding index,
//! BERT's encoder, and a head of dense → tanh → out_proj on the first token (`<s>`).

use candle_core::Tensor;
use serde::Deserialize;

use super::embeddings::{Embeddings, PositionIds};
use super::encoder::{first_token, Encoder};
use super::linear::Linear;
use super::SequenceClassifier;
use crate::error::{Error, Result};
use crate::weights::Weights;

/// `RobertaConfig` / `XLMRobertaConfig`: BERT's fields and defaults, plus these.
#[derive(Deserialize)]
struct Config {
    #[serde(flatten)]
    bert: super::bert::Config,
    /// Also the position embedding row of padding; transformers' default 1 when absent or null.
    #[serde(default)]
    pad_token_id: Option<u32>,
    #[serde(default = "absolute")]
    position_embedding_type: String,
}

fn absolute() -> String {
    "absolute".into()
}

pub struct RobertaClassifier {
    embeddings: Embeddings,
    encoder: Encoder,
    dense: Linear,
    out_proj: Linear,
}

pub fn load_classifier(config: &serde_json::Value, num_labels: usize, vb: Weights) -> Result<Box<dyn SequenceClassifier>> {
    let c: Config = super::parse_config(config)?;
    if c.position_embedding_type != "absolute" {
        return Err(Error::Config(format!(
            "position_embedding_type '{}' is not supported; only 'absolute' is",
            c.position_embedding_type
        )));
    }
    let d = c.bert.hidden_size;
    let roberta = vb.pp("roberta");
    let embeddings = c
        .bert
        .embeddings(roberta.pp("embeddings"))?
        .with_position_ids(PositionIds::AfterPadding { padding_idx: c.pad_token_id.unwrap_or(1) })?;
    Ok(Box::new(RobertaClassifier {
        embeddings,
        encoder: c.bert.encoder(roberta.clone())?,
        dense: Linear::load(d, d, vb.pp("classifier.dense"))?,
        out_proj: Linear::load(d, num_labels, vb.pp("classifier.out_proj"))?,
    }))
}

impl SequenceClassifier for RobertaClassifier {
    /// max_position_embeddings less the padding index and the row below it (512 of 514).
    fn max_positions(&self) -> usize {
        self.embeddings.max_tokens()
    }

    fn logits(&self, input_ids: &Tensor, attention_mask: &Tensor) -> Result<Tensor> {
        let hidden = self.encoder.forward(&self.embeddings.forward(input_ids)?, attention_mask)?;
        let features = self.dense.forward(&first_token(&hidden)?)?.tanh()?;
        self.out_proj.forward(&features)
    }
}
