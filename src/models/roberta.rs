//! RobertaForSequenceClassification and XLMRobertaForSequenceClassification (the same network;
//! only the tokenizer differs): BERT's embeddings with positions counted past the padding index,
//! BERT's encoder, and a head of dense → tanh → out_proj on the first token (`<s>`).

use candle_core::Tensor;
use serde::Deserialize;

use super::embeddings::{Embeddings, PositionIds};
use super::encoder::{first_token, Encoder, EncoderConfig, EncoderNames};
use super::linear::Linear;
use super::norm::Activation;
use super::SequenceClassifier;
use crate::error::{Error, Result};
use crate::weights::Weights;

/// `RobertaConfig` / `XLMRobertaConfig` fields, with transformers' defaults.
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
    /// Also the position embedding row of padding; transformers' default 1 when absent or null.
    #[serde(default)]
    pad_token_id: Option<u32>,
    #[serde(default = "absolute")]
    position_embedding_type: String,
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
fn absolute() -> String {
    "absolute".into()
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
    let d = c.hidden_size;
    let roberta = vb.pp("roberta");
    let encoder_config = EncoderConfig {
        hidden: d,
        heads: c.num_attention_heads,
        intermediate: c.intermediate_size,
        layers: c.num_hidden_layers,
        activation: Activation::parse(&c.hidden_act)?,
        layer_norm_eps: c.layer_norm_eps,
    };
    let embeddings = Embeddings::load(
        roberta.pp("embeddings"),
        c.vocab_size,
        d,
        c.max_position_embeddings,
        Some(c.type_vocab_size),
        c.layer_norm_eps,
    )?
    .with_position_ids(PositionIds::AfterPadding { padding_idx: c.pad_token_id.unwrap_or(1) })?;
    Ok(Box::new(RobertaClassifier {
        embeddings,
        encoder: Encoder::load(roberta.clone(), &encoder_config, &NAMES)?,
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
