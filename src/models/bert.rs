//! BertForSequenceClassification: embeddings, encoder, tanh pooler on [CLS], linear classifier.

use candle_core::Tensor;
use crate::weights::Weights;
use serde::Deserialize;

use super::embeddings::Embeddings;
use super::encoder::{first_token, Encoder, EncoderConfig, EncoderNames};
use super::linear::Linear;
use super::norm::Activation;
use super::SequenceClassifier;
use crate::error::Result;

/// `BertConfig`'s fields with its defaults; RoBERTa's config inherits them (`roberta.rs`).
#[derive(Deserialize)]
pub(super) struct Config {
    vocab_size: usize,
    pub(super) hidden_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    intermediate_size: usize,
    #[serde(default = "gelu")]
    hidden_act: String,
    #[serde(default = "default_positions")]
    pub(super) max_position_embeddings: usize,
    #[serde(default = "default_type_vocab")]
    type_vocab_size: usize,
    #[serde(default = "default_eps")]
    layer_norm_eps: f64,
}

fn gelu() -> String {
    "gelu".into()
}
fn default_positions() -> usize {
    512
}
fn default_type_vocab() -> usize {
    2
}
fn default_eps() -> f64 {
    1e-12
}

impl Config {
    /// The encoder this config describes.
    pub(super) fn encoder(&self, vb: Weights) -> Result<Encoder> {
        let config = EncoderConfig {
            hidden: self.hidden_size,
            heads: self.num_attention_heads,
            intermediate: self.intermediate_size,
            layers: self.num_hidden_layers,
            activation: Activation::parse(&self.hidden_act)?,
            layer_norm_eps: self.layer_norm_eps,
        };
        Encoder::load(vb, &config, &NAMES)
    }

    /// Word + position (+ token type 0) embeddings, then LayerNorm.
    pub(super) fn embeddings(&self, vb: Weights) -> Result<Embeddings> {
        Embeddings::load(
            vb,
            self.vocab_size,
            self.hidden_size,
            self.max_position_embeddings,
            Some(self.type_vocab_size),
            self.layer_norm_eps,
        )
    }
}

const NAMES: EncoderNames = EncoderNames {
    layer_prefix: "encoder.layer",
    query: "attention.self.query",
    key: "attention.self.key",
    value: "attention.self.value",
    attention_out: "attention.output.dense",
    attention_norm: "attention.output.LayerNorm",
    ffn_in: "intermediate.dense",
    ffn_out: "output.dense",
    output_norm: "output.LayerNorm",
};

pub struct BertClassifier {
    embeddings: Embeddings,
    encoder: Encoder,
    pooler: Linear,
    classifier: Linear,
    max_positions: usize,
}

pub fn load_classifier(config: &serde_json::Value, num_labels: usize, vb: Weights) -> Result<Box<dyn SequenceClassifier>> {
    let c: Config = super::parse_config(config)?;
    let d = c.hidden_size;
    let bert = vb.pp("bert");
    Ok(Box::new(BertClassifier {
        embeddings: c.embeddings(bert.pp("embeddings"))?,
        encoder: c.encoder(bert.clone())?,
        pooler: Linear::load(d, d, bert.pp("pooler.dense"))?,
        classifier: Linear::load(d, num_labels, vb.pp("classifier"))?,
        max_positions: c.max_position_embeddings,
    }))
}

impl SequenceClassifier for BertClassifier {
    fn max_positions(&self) -> usize {
        self.max_positions
    }

    fn logits(&self, input_ids: &Tensor, attention_mask: &Tensor) -> Result<Tensor> {
        let hidden = self.encoder.forward(&self.embeddings.forward(input_ids)?, attention_mask)?;
        let pooled = self.pooler.forward(&first_token(&hidden)?)?.tanh()?;
        self.classifier.forward(&pooled)
    }
}
