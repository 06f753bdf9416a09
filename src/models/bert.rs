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

#[derive(Deserialize)]
struct Config {
    vocab_size: usize,
    hidden_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    intermediate_size: usize,
    #[serde(default = "gelu")]
    hidden_act: String,
    #[serde(default = "default_positions")]
    max_position_embeddings: usize,
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
    let encoder_config = EncoderConfig {
        hidden: d,
        heads: c.num_attention_heads,
        intermediate: c.intermediate_size,
        layers: c.num_hidden_layers,
        activation: Activation::parse(&c.hidden_act)?,
        layer_norm_eps: c.layer_norm_eps,
    };
    Ok(Box::new(BertClassifier {
        embeddings: Embeddings::load(
            bert.pp("embeddings"),
            c.vocab_size,
            d,
            c.max_position_embeddings,
            Some(c.type_vocab_size),
            c.layer_norm_eps,
        )?,
        encoder: Encoder::load(bert.clone(), &encoder_config, &NAMES)?,
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
