//! DebertaV2ForSequenceClassification (model_type `deberta-v2`: DeBERTa-v2 and the DeBERTa-v3
//! checkpoints such as microsoft/deberta-v3-base fine-tunes), following transformers'
//! `modeling_deberta_v2.py`:
//!
//! - embeddings: words (+ absolute positions only with `position_biased_input`, + token type 0
//!   when `type_vocab_size` > 0), widened by `embed_proj` when `embedding_size` differs from the
//!   hidden size, LayerNorm;
//! - the BERT-style post-LN encoder (`encoder::Encoder`) whose attention scores get DeBERTa's
//!   disentangled terms: content-to-position (`c2p`, queries against projected relative position
//!   embeddings) and position-to-content (`p2c`, keys against them), over relative positions
//!   query − key that are log-bucketed past `position_buckets / 2` and clamped to the span; the
//!   relative embeddings are shared by all layers (`rel_embeddings`, layer-normed with
//!   `norm_rel_ebd`) and projected by each layer's own query/key projections (`share_att_key`)
//!   or its `pos_query_proj`/`pos_key_proj`; all score terms are divided by
//!   √(head_dim · (1 + number of pos_att_type terms));
//! - the convolution of deberta-v2-xlarge/xxlarge (`conv_kernel_size` > 0) over the embeddings,
//!   added to the first layer's output;
//! - ContextPooler: dense + `pooler_hidden_act` on the first token; linear classifier.

use candle_core::{Device, Tensor};
use candle_nn::Embedding;
use serde::Deserialize;

use super::attention::Attention;
use super::embeddings::{EmbeddingTable, Embeddings};
use super::encoder::{first_token, Encoder, EncoderConfig, EncoderNames, LayerHooks};
use super::linear::{Linear, Matrix};
use super::norm::{Activation, LayerNorm};
use super::SequenceClassifier;
use crate::error::{Error, Result};
use crate::weights::Weights;

/// transformers' `DebertaV2Config` defaults where a field is absent.
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
    #[serde(default)]
    type_vocab_size: usize,
    #[serde(default = "default_eps")]
    layer_norm_eps: f64,
    #[serde(default)]
    relative_attention: bool,
    #[serde(default = "unset")]
    max_relative_positions: i64,
    #[serde(default = "unset")]
    position_buckets: i64,
    #[serde(default = "yes")]
    position_biased_input: bool,
    /// A list (`["p2c", "c2p"]`) or, in older configs, a string (`"c2p|p2c"`).
    #[serde(default)]
    pos_att_type: Option<serde_json::Value>,
    #[serde(default)]
    share_att_key: bool,
    #[serde(default)]
    norm_rel_ebd: Option<String>,
    #[serde(default)]
    embedding_size: Option<usize>,
    #[serde(default)]
    pooler_hidden_size: Option<usize>,
    #[serde(default = "gelu")]
    pooler_hidden_act: String,
    #[serde(default)]
    conv_kernel_size: usize,
    #[serde(default = "one")]
    conv_groups: usize,
    #[serde(default = "tanh")]
    conv_act: String,
    #[serde(default)]
    attention_head_size: Option<usize>,
}

fn gelu() -> String {
    "gelu".into()
}
fn default_positions() -> usize {
    512
}
fn default_eps() -> f64 {
    1e-7
}
fn unset() -> i64 {
    -1
}
fn yes() -> bool {
    true
}
fn one() -> usize {
    1
}
fn tanh() -> String {
    "tanh".into()
}

const NAMES: EncoderNames = EncoderNames {
    layer_prefix: "encoder.layer",
    query: "attention.self.query_proj",
    key: "attention.self.key_proj",
    value: "attention.self.value_proj",
    attention_out: "attention.output.dense",
    attention_norm: "attention.output.LayerNorm",
    ffn_in: "intermediate.dense",
    ffn_out: "output.dense",
    output_norm: "output.LayerNorm",
};

/// `make_log_bucket_position` for one relative position (query − key): exact within
/// `buckets / 2`, logarithmic beyond, reaching ±(buckets − 1) at `max_position − 1`. In f32, as
/// torch computes it.
pub fn log_bucket(relative: i64, buckets: usize, max_position: usize) -> i64 {
    let mid = (buckets / 2) as i64;
    if relative.abs() <= mid {
        return relative;
    }
    let ratio = (relative.abs() as f32 / mid as f32).ln();
    let log_max = (((max_position - 1) as f64 / mid as f64) as f32).ln();
    let position = (ratio / log_max * (mid - 1) as f32).ceil() + mid as f32;
    position as i64 * relative.signum()
}

/// How relative positions become rows of the relative embeddings.
struct RelativePositions {
    /// Embedding rows on either side of "same position": relative position r uses row r + span,
    /// clamped to 0..2·span.
    span: usize,
    /// (buckets, max_position) for log-bucketed positions; `None`: positions used as they are.
    buckets: Option<(usize, usize)>,
}

impl RelativePositions {
    /// The embedding row of relative position `relative` (query − key).
    fn row(&self, relative: i64) -> usize {
        let bucketed = match self.buckets {
            Some((buckets, max_position)) => log_bucket(relative, buckets, max_position),
            None => relative,
        };
        (bucketed + self.span as i64).clamp(0, 2 * self.span as i64 - 1) as usize
    }
}

/// Which disentangled terms the attention scores get.
#[derive(Debug, Clone, Copy, Default)]
struct PositionTerms {
    c2p: bool,
    p2c: bool,
}

impl PositionTerms {
    /// transformers ignores names other than c2p and p2c (v1's p2p), so they are ignored here too.
    fn parse(value: Option<&serde_json::Value>) -> Result<Self> {
        let names: Vec<String> = match value {
            None | Some(serde_json::Value::Null) => Vec::new(),
            Some(serde_json::Value::String(s)) => s.to_lowercase().split('|').map(|t| t.trim().to_string()).collect(),
            Some(serde_json::Value::Array(items)) => items
                .iter()
                .map(|v| v.as_str().map(str::to_string).ok_or_else(|| Error::Config(format!("pos_att_type holds {v}, not a string"))))
                .collect::<Result<_>>()?,
            Some(other) => return Err(Error::Config(format!("pos_att_type is {other}; expected a list such as [\"p2c\", \"c2p\"]"))),
        };
        Ok(PositionTerms { c2p: names.iter().any(|n| n == "c2p"), p2c: names.iter().any(|n| n == "p2c") })
    }

    fn count(self) -> usize {
        usize::from(self.c2p) + usize::from(self.p2c)
    }
}

/// The relative-position half of DeBERTa's attention.
struct Disentangled {
    terms: PositionTerms,
    positions: RelativePositions,
    /// (2·span, hidden), layer-normed already when the config says so (it is a constant).
    embeddings: Tensor,
    /// Per layer, without `share_att_key`: (pos_key_proj for c2p, pos_query_proj for p2c).
    projections: Option<Vec<(Option<Linear>, Option<Linear>)>>,
}

impl Disentangled {
    /// The c2p + p2c score terms of one layer, (batch, heads, n, n), for its heads' queries and
    /// keys (batch, heads, n, head_dim). `rows`: the relative embeddings the input's positions
    /// reach (1, rows, hidden); `index`: the row each query/key pair uses.
    fn scores(&self, layer: usize, attention: &Attention, (q, k): (&Tensor, &Tensor), rows: &Tensor, index: &RowIndex) -> Result<Tensor> {
        let (pos_query, pos_key) = match &self.projections {
            None => {
                let (pos_query, pos_key, _) = attention.heads(rows)?;
                (Some(pos_query), Some(pos_key))
            }
            Some(projections) => {
                let (key_proj, query_proj) = &projections[layer];
                let project = |proj: &Option<Linear>| -> Result<Option<Tensor>> {
                    proj.as_ref().map(|p| attention.split_heads(&p.forward(rows)?)).transpose()
                };
                (project(query_proj)?, project(key_proj)?)
            }
        };
        // (b, h, n, rows): each query (c2p) / key (p2c) against every relative position reached.
        let c2p = match (self.terms.c2p, &pos_key) {
            (true, Some(pos_key)) => Some(q.broadcast_matmul(&pos_key.t()?)?.contiguous()?),
            _ => None,
        };
        let p2c = match (self.terms.p2c, &pos_query) {
            (true, Some(pos_query)) => Some(k.broadcast_matmul(&pos_query.t()?)?.contiguous()?),
            _ => None,
        };
        index.gather(c2p, p2c)
    }
}

/// Which relative embedding row (of those an input of n tokens reaches) each query/key pair uses.
struct RowIndex {
    n: usize,
    rows: usize,
    /// [i·n + j]: query i, key j (c2p).
    c2p: Vec<u32>,
    /// [j·n + i]: key j, query i (p2c: transformers' `-r_pos`).
    p2c: Vec<u32>,
}

impl RowIndex {
    /// transformers' `torch.gather` of c2p (b, h, n, rows) by the c2p rows, plus that of p2c by
    /// the p2c rows, transposed: (b, h, n, n), in one pass and without expanding the indices
    /// over batch and heads (a batch of long texts would otherwise hold several such tensors).
    fn gather(&self, c2p: Option<Tensor>, p2c: Option<Tensor>) -> Result<Tensor> {
        let some = c2p.as_ref().or(p2c.as_ref()).ok_or_else(|| Error::Config("DeBERTa relative attention without c2p or p2c terms".into()))?;
        let (b, h, n, rows) = some.dims4()?;
        if n != self.n || rows != self.rows {
            return Err(Error::Input(format!("relative scores of {n} × {rows} for an index of {} × {}", self.n, self.rows)));
        }
        // Copied out (and the tensors dropped) for plain indexing.
        let c2p = c2p.map(|t| t.flatten_all()?.to_vec1::<f32>()).transpose()?;
        let p2c = p2c.map(|t| t.flatten_all()?.to_vec1::<f32>()).transpose()?;
        let mut out = vec![0f32; b * h * n * n];
        let fill = |(bh, out): (usize, &mut [f32])| {
            let raw = bh * n * rows;
            if let Some(c2p) = &c2p {
                let c2p = &c2p[raw..raw + n * rows];
                for (i, (out, index)) in out.chunks_mut(n).zip(self.c2p.chunks(n)).enumerate() {
                    let row = &c2p[i * rows..(i + 1) * rows];
                    out.iter_mut().zip(index).for_each(|(o, &r)| *o += row[r as usize]);
                }
            }
            if let Some(p2c) = &p2c {
                let p2c = &p2c[raw..raw + n * rows];
                for (j, index) in self.p2c.chunks(n).enumerate() {
                    let row = &p2c[j * rows..(j + 1) * rows];
                    for (i, &r) in index.iter().enumerate() {
                        out[i * n + j] += row[r as usize];
                    }
                }
            }
        };
        if rayon::current_num_threads() > 1 && b * h > 1 {
            use rayon::prelude::*;
            out.par_chunks_mut(n * n).enumerate().for_each(fill);
        } else {
            out.chunks_mut(n * n).enumerate().for_each(fill);
        }
        Ok(Tensor::from_vec(out, (b, h, n, n), &Device::Cpu)?)
    }
}

/// `ConvLayer`: a 1-D convolution over the embedding output (same length, zero padded), as one
/// `Linear` over each position's window of `taps` neighbours; then the activation, the first
/// layer's output added, LayerNorm.
struct ConvLayer {
    taps: usize,
    /// (hidden, hidden · taps): output channel × (input channel, tap), grouped convolutions
    /// widened to a block-diagonal matrix.
    conv: Linear,
    activation: Activation,
    norm: LayerNorm,
}

impl ConvLayer {
    fn load(c: &Config, vb: Weights) -> Result<Self> {
        let (d, taps, groups) = (c.hidden_size, c.conv_kernel_size, c.conv_groups);
        // An even kernel makes transformers' convolution one position shorter than the input,
        // which its masking then fails on.
        if taps.is_multiple_of(2) {
            return Err(Error::Config(format!("conv_kernel_size is {taps}; DeBERTa's convolution needs an odd kernel")));
        }
        if groups == 0 || !d.is_multiple_of(groups) {
            return Err(Error::Config(format!("conv_groups is {groups}; it must divide hidden_size ({d})")));
        }
        // Grouped weights are widened to a dense matrix: bounded like every matrix a config sizes.
        if (d * taps).checked_mul(d).is_none_or(|n| n as u64 > super::limits::MAX_MATRIX_ELEMENTS) {
            return Err(Error::Config(format!(
                "conv_kernel_size {taps} × hidden_size² ({d}²) is more than {} elements in one matrix",
                super::limits::MAX_MATRIX_ELEMENTS
            )));
        }
        let per_group = d / groups;
        let grouped = vb.get((d, per_group, taps), "conv.weight")?.to_vec3::<f32>()?;
        let mut weight = vec![0f32; d * d * taps];
        for (out, rows) in grouped.iter().enumerate() {
            let first_input = out / per_group * per_group;
            for (i, row) in rows.iter().enumerate() {
                let at = out * d * taps + (first_input + i) * taps;
                weight[at..at + taps].copy_from_slice(row);
            }
        }
        let weight = Tensor::from_vec(weight, (d, d * taps), &Device::Cpu)?;
        let conv = Linear::from_matrix(Matrix::from_tensor(&weight, vb.dtype())?, Some(vb.get(d, "conv.bias")?))?;
        Ok(ConvLayer { taps, conv, activation: Activation::parse(&c.conv_act)?, norm: LayerNorm::load(d, c.layer_norm_eps, vb.pp("LayerNorm"))? })
    }

    /// `embedded`, `layer_output`: (batch, n, d); `mask`: (batch, n, 1) of 1 / 0 in f32.
    fn forward(&self, embedded: &Tensor, layer_output: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let (b, n, d) = embedded.dims3()?;
        let pad = (self.taps - 1) / 2;
        // transformers zeroes the embeddings of padding before the convolution reads them.
        let zeros = Tensor::zeros((b, pad, d), embedded.dtype(), embedded.device())?;
        let padded = Tensor::cat(&[&zeros, &embedded.broadcast_mul(mask)?, &zeros], 1)?;
        let windows: Vec<Tensor> = (0..self.taps).map(|t| padded.narrow(1, t, n)).collect::<candle_core::Result<_>>()?;
        // (b, n, d, taps) → (b, n, d · taps), in the weight's (input channel, tap) order.
        let windows = Tensor::stack(&windows, 3)?.reshape((b, n, d * self.taps))?;
        let out = self.activation.apply(&self.conv.forward(&windows)?.broadcast_mul(mask)?)?;
        Ok(self.norm.forward(&(layer_output + out)?)?.broadcast_mul(mask)?)
    }
}

pub struct DebertaV2Classifier {
    embeddings: Embeddings,
    encoder: Encoder,
    disentangled: Option<Disentangled>,
    conv: Option<ConvLayer>,
    pooler: Linear,
    pooler_activation: Activation,
    classifier: Linear,
    max_positions: usize,
}

pub fn load_classifier(config: &serde_json::Value, num_labels: usize, vb: Weights) -> Result<Box<dyn SequenceClassifier>> {
    let c: Config = super::parse_config(config)?;
    let (d, heads, eps) = (c.hidden_size, c.num_attention_heads, c.layer_norm_eps);
    if let Some(size) = c.attention_head_size.filter(|&size| size * heads != d) {
        return Err(Error::Config(format!(
            "attention_head_size is {size}; only hidden_size / num_attention_heads ({d} / {heads}) is supported"
        )));
    }
    if let Some(size) = c.pooler_hidden_size.filter(|&size| size != d) {
        return Err(Error::Config(format!("pooler_hidden_size is {size}; the classifier needs it equal to hidden_size ({d})")));
    }
    let terms = PositionTerms::parse(c.pos_att_type.as_ref())?;
    let body = vb.pp("deberta");

    let width = c.embedding_size.unwrap_or(d);
    let emb = body.pp("embeddings");
    let table = |rows: usize, name: &str| -> Result<Embedding> { Ok(Embedding::new(emb.get((rows, width), name)?, width)) };
    let embeddings = Embeddings::new(
        EmbeddingTable::load(c.vocab_size, width, "word_embeddings.weight", &emb)?,
        c.position_biased_input.then(|| table(c.max_position_embeddings, "position_embeddings.weight")).transpose()?,
        (c.type_vocab_size > 0).then(|| table(c.type_vocab_size, "token_type_embeddings.weight")).transpose()?,
        (width != d).then(|| Linear::load_no_bias(width, d, emb.pp("embed_proj"))).transpose()?,
        LayerNorm::load(d, eps, emb.pp("LayerNorm"))?,
        c.max_position_embeddings,
    );

    let encoder_config = EncoderConfig {
        hidden: d,
        heads,
        intermediate: c.intermediate_size,
        layers: c.num_hidden_layers,
        activation: Activation::parse(&c.hidden_act)?,
        layer_norm_eps: eps,
    };
    // Every score term (content, c2p, p2c) is divided by √(head_dim · terms), whether or not
    // relative attention is on.
    let head_dim = d.checked_div(heads).unwrap_or(0);
    let scale = 1.0 / ((head_dim * (1 + terms.count())) as f32).sqrt();
    let encoder = Encoder::load_scaled(body.clone(), &encoder_config, &NAMES, scale)?;

    let disentangled = if c.relative_attention && terms.count() > 0 {
        Some(load_disentangled(&c, terms, &body)?)
    } else {
        None
    };
    Ok(Box::new(DebertaV2Classifier {
        embeddings,
        encoder,
        disentangled,
        conv: (c.conv_kernel_size > 0).then(|| ConvLayer::load(&c, body.pp("encoder.conv"))).transpose()?,
        pooler: Linear::load(d, d, vb.pp("pooler.dense"))?,
        pooler_activation: Activation::parse(&c.pooler_hidden_act)?,
        classifier: Linear::load(d, num_labels, vb.pp("classifier"))?,
        max_positions: c.max_position_embeddings,
    }))
}

fn load_disentangled(c: &Config, terms: PositionTerms, body: &Weights) -> Result<Disentangled> {
    let d = c.hidden_size;
    // transformers: a span below 1 means max_position_embeddings; buckets, when set, replace it.
    let max_relative = if c.max_relative_positions < 1 { c.max_position_embeddings } else { c.max_relative_positions as usize };
    let positions = if c.position_buckets > 0 {
        let buckets = c.position_buckets as usize;
        // Positions past buckets / 2 are bucketed by log(distance / mid) / log((max − 1) / mid),
        // which needs max − 1 above mid (and mid above 0) to be a finite, growing bucket.
        if buckets < 2 || max_relative <= buckets / 2 + 1 {
            return Err(Error::Config(format!(
                "position_buckets {buckets} with max_relative_positions {max_relative}: the span must exceed half the buckets plus one"
            )));
        }
        RelativePositions { span: buckets, buckets: Some((buckets, max_relative)) }
    } else {
        RelativePositions { span: max_relative, buckets: None }
    };
    let encoder = body.pp("encoder");
    let mut embeddings = encoder.get((2 * positions.span, d), "rel_embeddings.weight")?;
    let norm_rel = c.norm_rel_ebd.as_deref().unwrap_or("none").to_lowercase();
    if norm_rel.split('|').any(|n| n.trim() == "layer_norm") {
        embeddings = LayerNorm::load(d, c.layer_norm_eps, encoder.pp("LayerNorm"))?.forward(&embeddings)?;
    }
    let projections = if c.share_att_key {
        None
    } else {
        let layers = (0..c.num_hidden_layers)
            .map(|i| {
                let attention = encoder.pp(format!("layer.{i}.attention.self"));
                Ok((
                    terms.c2p.then(|| Linear::load(d, d, attention.pp("pos_key_proj"))).transpose()?,
                    terms.p2c.then(|| Linear::load(d, d, attention.pp("pos_query_proj"))).transpose()?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        Some(layers)
    };
    Ok(Disentangled { terms, positions, embeddings, projections })
}

impl DebertaV2Classifier {
    /// Hidden states of the encoder for `input_ids` (batch, n).
    fn encode(&self, input_ids: &Tensor, attention_mask: &Tensor) -> Result<Tensor> {
        // transformers also zeroes the embeddings of padding (the convolution, which reads them,
        // masks them itself) and gives padded queries uniform attention: padded keys are masked,
        // so that reaches no real token's output.
        let (b, n) = input_ids.dims2()?;
        if n == 0 {
            return Err(Error::Input("no input tokens".into()));
        }
        let hidden = self.embeddings.forward(input_ids)?;
        let conv_mask = attention_mask.to_dtype(candle_core::DType::F32)?.reshape((b, n, 1))?;
        let after_first = |layer: usize, output: &Tensor| -> Result<Tensor> {
            match &self.conv {
                Some(conv) if layer == 0 => conv.forward(&hidden, output, &conv_mask),
                _ => Ok(output.clone()),
            }
        };
        let mut hooks = LayerHooks::default();
        if self.conv.is_some() {
            hooks.after_layer = Some(&after_first);
        }
        let Some(disentangled) = &self.disentangled else {
            return self.encoder.forward_with(&hidden, attention_mask, &hooks);
        };
        let positions = &disentangled.positions;
        // Only the embedding rows these n positions reach are projected: the relative positions
        // lie in ±(n − 1), and rows grow with the position.
        let first = positions.row(1 - n as i64);
        let last = positions.row(n as i64 - 1);
        let rows = disentangled.embeddings.narrow(0, first, last - first + 1)?.unsqueeze(0)?;
        let index = |row_of: &dyn Fn(i64, i64) -> usize| -> Vec<u32> {
            (0..n as i64).flat_map(|a| (0..n as i64).map(move |b| (a, b))).map(|(a, b)| (row_of(a, b) - first) as u32).collect()
        };
        // c2p: query i against key j at relative position i − j; p2c: key j against query i, at
        // the row of −(j − i) (transformers' `-r_pos`, bucketed symmetrically).
        let index = RowIndex {
            n,
            rows: last - first + 1,
            c2p: index(&|i, j| positions.row(i - j)),
            p2c: index(&|j, i| positions.row(i - j)),
        };
        let score_terms = |layer: usize, attention: &Attention, q: &Tensor, k: &Tensor| {
            disentangled.scores(layer, attention, (q, k), &rows, &index)
        };
        hooks.score_terms = Some(&score_terms);
        self.encoder.forward_with(&hidden, attention_mask, &hooks)
    }
}

impl SequenceClassifier for DebertaV2Classifier {
    fn max_positions(&self) -> usize {
        self.max_positions
    }

    fn logits(&self, input_ids: &Tensor, attention_mask: &Tensor) -> Result<Tensor> {
        let hidden = self.encode(input_ids, attention_mask)?;
        let pooled = self.pooler.forward_then(&first_token(&hidden)?, self.pooler_activation)?;
        self.classifier.forward(&pooled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_buckets_match_transformers() {
        // transformers' make_log_bucket_position(r, 256, 512) and (r, 16, 64).
        let relative = [-600, -511, -300, -200, -129, -128, -127, -5, 0, 1, 127, 128, 129, 130, 200, 255, 256, 300, 400, 511, 600];
        let expected = [-270, -255, -207, -169, -129, -128, -127, -5, 0, 1, 127, 128, 129, 130, 169, 192, 192, 207, 233, 255, 270];
        let got: Vec<i64> = relative.iter().map(|&r| log_bucket(r, 256, 512)).collect();
        assert_eq!(got, expected);
        let relative = [-20, -9, -8, -7, 0, 7, 8, 9, 20, 40, 100];
        let expected = [-12, -9, -8, -7, 0, 7, 8, 9, 12, 14, 17];
        let got: Vec<i64> = relative.iter().map(|&r| log_bucket(r, 16, 64)).collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn pos_att_type_in_both_spellings() {
        let parse = |v: serde_json::Value| PositionTerms::parse(Some(&v)).unwrap();
        let both = parse(serde_json::json!(["p2c", "c2p"]));
        assert!(both.c2p && both.p2c && both.count() == 2);
        let both = parse(serde_json::json!("C2P|p2c"));
        assert!(both.c2p && both.p2c);
        assert_eq!(parse(serde_json::json!("p2p")).count(), 0);
        assert_eq!(PositionTerms::parse(None).unwrap().count(), 0);
        assert!(matches!(PositionTerms::parse(Some(&serde_json::json!(3))), Err(Error::Config(_))));
        assert!(matches!(PositionTerms::parse(Some(&serde_json::json!([1]))), Err(Error::Config(_))));
    }
}
