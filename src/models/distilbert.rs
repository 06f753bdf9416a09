//! DistilBertForSequenceClassification: embeddings, encoder, ReLU pre-classifier on [CLS], classifier.

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
    dim: usize,
    n_layers: usize,
    n_heads: usize,
    hidden_dim: usize,
    #[serde(default = "gelu")]
    activation: String,
    #[serde(default = "default_positions")]
    max_position_embeddings: usize,
}

fn gelu() -> String {
    "gelu".into()
}
fn default_positions() -> usize {
    512
}

// DistilBERT hard-codes LayerNorm eps 1e-12.
const EPS: f64 = 1e-12;

const NAMES: EncoderNames = EncoderNames {
    layer_prefix: "transformer.layer",
    query: "attention.q_lin",
    key: "attention.k_lin",
    value: "attention.v_lin",
    attention_out: "attention.out_lin",
    attention_norm: "sa_layer_norm",
    ffn_in: "ffn.lin1",
    ffn_out: "ffn.lin2",
    output_norm: "output_layer_norm",
};

pub struct DistilBertClassifier {
    embeddings: Embeddings,
    encoder: Encoder,
    pre_classifier: Linear,
    classifier: Linear,
    max_positions: usize,
}

pub fn load_classifier(config: &serde_json::Value, num_labels: usize, vb: Weights) -> Result<Box<dyn SequenceClassifier>> {
    let c: Config = super::parse_config(config)?;
    let d = c.dim;
    let body = vb.pp("distilbert");
    let encoder_config = EncoderConfig {
        hidden: d,
        heads: c.n_heads,
        intermediate: c.hidden_dim,
        layers: c.n_layers,
        activation: Activation::parse(&c.activation)?,
        layer_norm_eps: EPS,
    };
    Ok(Box::new(DistilBertClassifier {
        // Sinusoidal position embeddings are stored in the checkpoint too, so both kinds load alike.
        embeddings: Embeddings::load(body.pp("embeddings"), c.vocab_size, d, c.max_position_embeddings, None, EPS)?,
        encoder: Encoder::load(body.clone(), &encoder_config, &NAMES)?,
        pre_classifier: Linear::load(d, d, vb.pp("pre_classifier"))?,
        classifier: Linear::load(d, num_labels, vb.pp("classifier"))?,
        max_positions: c.max_position_embeddings,
    }))
}

impl SequenceClassifier for DistilBertClassifier {
    fn max_positions(&self) -> usize {
        self.max_positions
    }

    fn logits(&self, input_ids: &Tensor, attention_mask: &Tensor) -> Result<Tensor> {
        let hidden = self.encoder.forward(&self.embeddings.forward(input_ids)?, attention_mask)?;
        let pooled = self.pre_classifier.forward(&first_token(&hidden)?)?.relu()?;
        self.classifier.forward(&pooled)
    }
}
