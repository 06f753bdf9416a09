//! Whisper (encoder–decoder speech transformer), written for incremental decoding: the decoder
//! keeps a key/value cache per layer for self-attention (one row appended per token) and for
//! cross-attention (computed once per 30 s window from the encoder output), so each new token
//! costs one position, not the whole prefix.
//!
//! Loads from CTranslate2 tensors (Systran/faster-whisper-*: fused q/k/v, `gamma`/`beta`) and from
//! the transformers layout (openai/whisper-*: `model.encoder.layers.N.self_attn.q_proj` …); the
//! hyper-parameters come from tensor shapes (and head counts from the CTranslate2 scalars or
//! config.json). Computation is f32 on the CPU.
//!
//! Follows [openai/whisper model.py](https://github.com/openai/whisper/blob/fdf63e51dc3089e10d72fd25ac04ffe22f86543e/whisper/model.py).

use candle_core::{DType, Device, Tensor};

use super::config::{validate, Config};
use crate::error::{Error, Result};
use crate::models::activations;
use crate::models::attention::{causal_mask, Attention, AttentionKind, Decoder, DecoderState};
use crate::models::embeddings::EmbeddingTable;
use crate::models::linear::{with_values, Linear, Matrix};
use crate::models::norm::{Activation, LayerNorm};
use crate::weights::Weights;

const LN_EPS: f64 = 1e-5;

struct Mlp {
    norm: LayerNorm,
    fc1: Linear,
    fc2: Linear,
}

/// `ResidualAttentionBlock`'s `mlp` with its `mlp_ln`: x + fc2(gelu(fc1(ln(x)))).
impl Mlp {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.fc1.forward_then(&self.norm.forward(x)?, Activation::Gelu)?;
        self.fc2.forward_plus(&h, x)
    }
}

/// How a convolution's input is laid out.
#[derive(Clone, Copy)]
enum Layout {
    /// (channels, frames), row-major: the log-mel spectrogram.
    ChannelsFirst,
    /// (frames, channels), row-major: a convolution's output, as the layers after it take it.
    FramesFirst,
}

/// `nn.Conv1d(kernel_size=3, padding=1)` with bias, then GELU (both of `AudioEncoder`'s
/// convolutions), as one product: the input's windows unrolled into rows (im2col), times the
/// weights (c_out, c_in·3) through [`Linear`], whose bias and GELU pass runs in place. The result
/// comes out as (frames, channels), the layout the encoder layers take, so unlike candle's
/// `conv1d` (whose product runs on candle's own pool, one thread in wasm) nothing is transposed
/// back and forth, and the product runs where every other product does.
struct Conv {
    linear: Linear,
    stride: usize,
}

/// Whisper's kernel width and padding.
const CONV_TAPS: usize = 3;
const CONV_PADDING: usize = 1;

impl Conv {
    fn new(weight: &Tensor, bias: &Tensor, stride: usize, name: &str) -> Result<Self> {
        let (c_out, c_in, taps) = weight.dims3().map_err(|_| Error::weights(name, format!("weight of shape {:?}, not (out, in, 3)", weight.dims())))?;
        if taps != CONV_TAPS {
            return Err(Error::weights(name, format!("a kernel of {taps} taps, not {CONV_TAPS}")));
        }
        if bias.elem_count() != c_out {
            return Err(Error::weights(name, format!("a bias of {} values for {c_out} channels", bias.elem_count())));
        }
        let weight = weight.reshape((c_out, c_in * taps))?;
        Ok(Conv { linear: Linear::new(weight, Some(bias.flatten_all()?))?, stride })
    }

    /// gelu(conv(x) + bias) for `x` of `channels` × `frames` values laid out as `layout`, as
    /// (output frames, output channels).
    fn forward(&self, x: &[f32], channels: usize, frames: usize, layout: Layout) -> Result<Tensor> {
        let width = channels * CONV_TAPS;
        if x.len() != channels * frames || width != self.linear.in_features() {
            return Err(Error::Input(format!(
                "a convolution over {} input channels got {} values for {channels} channels × {frames} frames",
                self.linear.in_features() / CONV_TAPS,
                x.len()
            )));
        }
        let out_frames = (frames + 2 * CONV_PADDING).saturating_sub(CONV_TAPS) / self.stride.max(1) + 1;
        let (channel_step, frame_step) = match layout {
            Layout::ChannelsFirst => (frames, 1),
            Layout::FramesFirst => (1, channels),
        };
        // Row t: for each input channel c its 3 taps, input frames t·stride − 1 ..= t·stride + 1
        // (zero outside), in the weights' (c, tap) order.
        let mut windows = vec![0f32; out_frames * width];
        activations::for_each_part(&mut windows, width, |first_row, part| {
            for (row, values) in part.chunks_exact_mut(width).enumerate() {
                let centre = (first_row + row) * self.stride;
                for tap in 0..CONV_TAPS {
                    let Some(frame) = (centre + tap).checked_sub(CONV_PADDING).filter(|&f| f < frames) else {
                        continue;
                    };
                    for (c, value) in values.iter_mut().skip(tap).step_by(CONV_TAPS).enumerate() {
                        *value = x[c * channel_step + frame * frame_step];
                    }
                }
            }
        });
        let windows = Tensor::from_vec(windows, (out_frames, width), &Device::Cpu)?;
        self.linear.forward_then(&windows, Activation::Gelu)
    }
}

/// Attention with the pre-LayerNorm in front of it.
struct Block {
    norm: LayerNorm,
    attn: Attention,
}

struct EncoderLayer {
    attn: Block,
    mlp: Mlp,
}

struct DecoderLayer {
    self_attn: Block,
    cross_attn: Block,
    mlp: Mlp,
}

pub struct Whisper {
    config: Config,
    conv1: Conv,
    conv2: Conv,
    encoder_positions: Tensor,
    encoder_layers: Vec<EncoderLayer>,
    encoder_norm: LayerNorm,
    token_embedding: EmbeddingTable,
    decoder_positions: Tensor,
    decoder_layers: Vec<DecoderLayer>,
    decoder_norm: LayerNorm,
    /// Logits projection (usually the token embedding's matrix, shared), (vocab, d).
    projection: Linear,
}

/// Where each weight lives in one checkpoint layout.
trait Source {
    fn weights(&self) -> &Weights;

    /// A dense tensor in f32.
    fn get(&self, name: &str) -> Result<Tensor> {
        self.weights().tensor(name)
    }

    fn dims(&self, name: &str) -> Result<Vec<usize>> {
        self.weights().dims(name)
    }

    /// A (rows, cols) matrix in the load's dtype.
    fn matrix(&self, name: &str, rows: usize, cols: usize) -> Result<Matrix> {
        self.weights().matrix((rows, cols), name)
    }

    /// The vocabulary matrix (token embedding, tied to the output projection): see
    /// `Weights::output_matrix`.
    fn output_matrix(&self, name: &str, rows: usize, cols: usize) -> Result<Matrix> {
        self.weights().output_matrix((rows, cols), name)
    }
}

struct Ct2<'a>(&'a Weights);

impl Source for Ct2<'_> {
    fn weights(&self) -> &Weights {
        self.0
    }
}

impl Ct2<'_> {
    fn linear(&self, prefix: &str, out: usize, inp: usize) -> Result<Linear> {
        let w = self.matrix(&format!("{prefix}/weight"), out, inp)?;
        let bias = format!("{prefix}/bias");
        let b = if self.0.contains_tensor(&bias) { Some(self.0.get(out, &bias)?) } else { None };
        Linear::from_matrix(w, b)
    }

    fn norm(&self, prefix: &str, d: usize) -> Result<LayerNorm> {
        Ok(LayerNorm::new(self.0.get(d, &format!("{prefix}/gamma"))?, self.0.get(d, &format!("{prefix}/beta"))?, LN_EPS))
    }

    fn count_layers(&self, prefix: &str) -> usize {
        let names = self.0.names();
        (0..).take_while(|i| names.iter().any(|k| k.starts_with(&format!("{prefix}/layer_{i}/")))).count()
    }

    fn heads(&self, name: &str, d: usize) -> usize {
        let scalar = self.0.contains_tensor(name).then(|| self.0.tensor(name).ok()).flatten();
        let heads = scalar.and_then(|t| t.flatten_all().ok()?.to_dtype(DType::I64).ok()?.to_vec1::<i64>().ok()?.first().copied());
        heads.filter(|&h| h > 0).map_or(d / 64, |h| h as usize)
    }
}

struct Hf {
    weights: Weights,
}

impl Source for Hf {
    fn weights(&self) -> &Weights {
        &self.weights
    }
}

impl Hf {
    fn has(&self, name: &str) -> bool {
        self.weights.contains_tensor(name)
    }

    fn linear(&self, prefix: &str, out: usize, inp: usize) -> Result<Linear> {
        let w = self.matrix(&format!("{prefix}.weight"), out, inp)?;
        let bias = format!("{prefix}.bias");
        let b = if self.has(&bias) { Some(self.weights.get(out, &bias)?) } else { None };
        Linear::from_matrix(w, b)
    }

    fn norm(&self, prefix: &str, d: usize) -> Result<LayerNorm> {
        Ok(LayerNorm::new(self.weights.get(d, &format!("{prefix}.weight"))?, self.weights.get(d, &format!("{prefix}.bias"))?, LN_EPS))
    }

    fn attention(&self, prefix: &str, d: usize, d_source: usize, heads: usize, kind: AttentionKind) -> Result<Attention> {
        let q = self.linear(&format!("{prefix}.q_proj"), d, d)?;
        let k = self.linear(&format!("{prefix}.k_proj"), d, d_source)?;
        let v = self.linear(&format!("{prefix}.v_proj"), d, d_source)?;
        let out = self.linear(&format!("{prefix}.out_proj"), d, d)?;
        Attention::new(&self.weights, kind, q, k, v, out, heads, Attention::default_scale(d, heads))
    }
}

fn dim(dims: &[usize], i: usize, name: &str) -> Result<usize> {
    dims.get(i).copied().ok_or_else(|| Error::weights(name, format!("unexpected shape {dims:?}")))
}

impl Whisper {
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// From a CTranslate2 `WhisperSpec` model (`weights::ctranslate2::from_bytes`).
    pub fn from_ctranslate2(weights: &Weights) -> Result<Self> {
        let s = Ct2(weights);
        let conv1_w = s.get("encoder/conv1/weight")?;
        let (n_audio_state, n_mels) = (dim(conv1_w.dims(), 0, "encoder/conv1/weight")?, dim(conv1_w.dims(), 1, "encoder/conv1/weight")?);
        let encoder_positions = s.get("encoder/position_encodings/encodings")?;
        let n_audio_ctx = dim(encoder_positions.dims(), 0, "encoder/position_encodings/encodings")?;
        let embedding_dims = s.dims("decoder/embeddings/weight")?;
        let (n_vocab, n_text_state) = (dim(&embedding_dims, 0, "decoder/embeddings/weight")?, dim(&embedding_dims, 1, "decoder/embeddings/weight")?);
        let token_embedding = s.output_matrix("decoder/embeddings/weight", n_vocab, n_text_state)?;
        let decoder_positions = s.get("decoder/position_encodings/encodings")?;
        let config = Config {
            n_mels,
            n_audio_ctx,
            n_audio_state,
            n_audio_head: s.heads("encoder/num_heads", n_audio_state),
            n_audio_layer: s.count_layers("encoder"),
            n_vocab,
            n_text_ctx: dim(decoder_positions.dims(), 0, "decoder/position_encodings/encodings")?,
            n_text_state,
            n_text_head: s.heads("decoder/num_heads", n_text_state),
            n_text_layer: s.count_layers("decoder"),
        };
        validate(&config)?;
        let (da, dt) = (config.n_audio_state, config.n_text_state);
        let mlp = |p: &str, d: usize| -> Result<Mlp> {
            let hidden = dim(&s.dims(&format!("{p}/ffn/linear_0/weight"))?, 0, p)?;
            Ok(Mlp {
                norm: s.norm(&format!("{p}/ffn/layer_norm"), d)?,
                fc1: s.linear(&format!("{p}/ffn/linear_0"), hidden, d)?,
                fc2: s.linear(&format!("{p}/ffn/linear_1"), d, hidden)?,
            })
        };
        let self_attention = |p: &str, d: usize, heads: usize| -> Result<Block> {
            Ok(Block {
                norm: s.norm(&format!("{p}/self_attention/layer_norm"), d)?,
                attn: Attention::self_attention_fused(
                    s.linear(&format!("{p}/self_attention/linear_0"), 3 * d, d)?,
                    s.linear(&format!("{p}/self_attention/linear_1"), d, d)?,
                    heads,
                    Attention::default_scale(d, heads),
                )?,
            })
        };
        let encoder_layers = (0..config.n_audio_layer)
            .map(|i| {
                let p = format!("encoder/layer_{i}");
                Ok(EncoderLayer { attn: self_attention(&p, da, config.n_audio_head)?, mlp: mlp(&p, da)? })
            })
            .collect::<Result<Vec<_>>>()?;
        let decoder_layers = (0..config.n_text_layer)
            .map(|i| {
                let p = format!("decoder/layer_{i}");
                Ok(DecoderLayer {
                    self_attn: self_attention(&p, dt, config.n_text_head)?,
                    cross_attn: Block {
                        norm: s.norm(&format!("{p}/attention/layer_norm"), dt)?,
                        attn: Attention::cross_attention_fused(
                            s.linear(&format!("{p}/attention/linear_0"), dt, dt)?,
                            s.linear(&format!("{p}/attention/linear_1"), 2 * dt, da)?,
                            s.linear(&format!("{p}/attention/linear_2"), dt, dt)?,
                            config.n_text_head,
                            Attention::default_scale(dt, config.n_text_head),
                        )?,
                    },
                    mlp: mlp(&p, dt)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        // Systran's files name the embedding a second time as an alias; it is loaded once.
        let separate_projection = weights.contains_tensor("decoder/projection/weight")
            && !weights.same_data("decoder/projection/weight", "decoder/embeddings/weight");
        let projection = if separate_projection {
            s.output_matrix("decoder/projection/weight", n_vocab, dt)?
        } else {
            token_embedding.clone()
        };
        Ok(Whisper {
            conv1: Conv::new(&conv1_w, &s.get("encoder/conv1/bias")?, 1, "encoder/conv1")?,
            conv2: Conv::new(&s.get("encoder/conv2/weight")?, &s.get("encoder/conv2/bias")?, 2, "encoder/conv2")?,
            encoder_positions,
            encoder_layers,
            encoder_norm: s.norm("encoder/layer_norm", da)?,
            token_embedding: EmbeddingTable::new(token_embedding),
            decoder_positions,
            decoder_layers,
            decoder_norm: s.norm("decoder/layer_norm", dt)?,
            projection: Linear::from_matrix(projection, None)?,
            config,
        })
    }

    /// From the transformers layout (WhisperForConditionalGeneration / WhisperModel weights and
    /// their config.json).
    pub fn from_transformers(config_json: &serde_json::Value, weights: &Weights) -> Result<Self> {
        let nested = weights.contains_tensor("model.encoder.conv1.weight");
        let s = Hf { weights: if nested { weights.pp("model") } else { weights.clone() } };
        let conv1_w = s.get("encoder.conv1.weight")?;
        let (n_audio_state, n_mels) = (dim(conv1_w.dims(), 0, "encoder.conv1.weight")?, dim(conv1_w.dims(), 1, "encoder.conv1.weight")?);
        // The log-mel input is sized from the weights; a config.json that says otherwise (80 vs
        // large-v3's 128) belongs to other weights, and features for it would not fit them.
        if let Some(bins) = config_json.get("num_mel_bins").filter(|v| !v.is_null()) {
            if bins.as_u64() != Some(n_mels as u64) {
                return Err(Error::Config(format!(
                    "config.json: num_mel_bins is {bins} but encoder.conv1.weight takes {n_mels} mel bins: config and weights do not match"
                )));
            }
        }
        let encoder_positions = s.get("encoder.embed_positions.weight")?;
        let embedding_dims = s.dims("decoder.embed_tokens.weight")?;
        let (n_vocab, n_text_state) = (dim(&embedding_dims, 0, "decoder.embed_tokens.weight")?, dim(&embedding_dims, 1, "decoder.embed_tokens.weight")?);
        let token_embedding = s.output_matrix("decoder.embed_tokens.weight", n_vocab, n_text_state)?;
        let decoder_positions = s.get("decoder.embed_positions.weight")?;
        let count = |p: &str| (0..).take_while(|i| s.has(&format!("{p}.layers.{i}.fc1.weight"))).count();
        let heads = |key: &str, d: usize| {
            config_json.get(key).and_then(|v| v.as_u64()).filter(|&h| h > 0).map_or(d / 64, |h| h as usize)
        };
        let config = Config {
            n_mels,
            n_audio_ctx: dim(encoder_positions.dims(), 0, "encoder.embed_positions.weight")?,
            n_audio_state,
            n_audio_head: heads("encoder_attention_heads", n_audio_state),
            n_audio_layer: count("encoder"),
            n_vocab,
            n_text_ctx: dim(decoder_positions.dims(), 0, "decoder.embed_positions.weight")?,
            n_text_state,
            n_text_head: heads("decoder_attention_heads", n_text_state),
            n_text_layer: count("decoder"),
        };
        validate(&config)?;
        let (da, dt) = (config.n_audio_state, config.n_text_state);
        let mlp = |p: &str, d: usize| -> Result<Mlp> {
            let hidden = dim(&s.dims(&format!("{p}.fc1.weight"))?, 0, p)?;
            Ok(Mlp {
                norm: s.norm(&format!("{p}.final_layer_norm"), d)?,
                fc1: s.linear(&format!("{p}.fc1"), hidden, d)?,
                fc2: s.linear(&format!("{p}.fc2"), d, hidden)?,
            })
        };
        let self_attention = |p: &str, d: usize, heads: usize| -> Result<Block> {
            Ok(Block {
                norm: s.norm(&format!("{p}.self_attn_layer_norm"), d)?,
                attn: s.attention(&format!("{p}.self_attn"), d, d, heads, AttentionKind::SelfAttention)?,
            })
        };
        let encoder_layers = (0..config.n_audio_layer)
            .map(|i| {
                let p = format!("encoder.layers.{i}");
                Ok(EncoderLayer { attn: self_attention(&p, da, config.n_audio_head)?, mlp: mlp(&p, da)? })
            })
            .collect::<Result<Vec<_>>>()?;
        let decoder_layers = (0..config.n_text_layer)
            .map(|i| {
                let p = format!("decoder.layers.{i}");
                Ok(DecoderLayer {
                    self_attn: self_attention(&p, dt, config.n_text_head)?,
                    cross_attn: Block {
                        norm: s.norm(&format!("{p}.encoder_attn_layer_norm"), dt)?,
                        attn: s.attention(&format!("{p}.encoder_attn"), dt, da, config.n_text_head, AttentionKind::CrossAttention)?,
                    },
                    mlp: mlp(&p, dt)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        // proj_out is tied to the token embedding; some checkpoints store it anyway.
        let projection = if weights.contains_tensor("proj_out.weight") {
            weights.output_matrix((n_vocab, dt), "proj_out.weight")?
        } else {
            token_embedding.clone()
        };
        Ok(Whisper {
            conv1: Conv::new(&conv1_w, &s.get("encoder.conv1.bias")?, 1, "encoder.conv1")?,
            conv2: Conv::new(&s.get("encoder.conv2.weight")?, &s.get("encoder.conv2.bias")?, 2, "encoder.conv2")?,
            encoder_positions,
            encoder_layers,
            encoder_norm: s.norm("encoder.layer_norm", da)?,
            token_embedding: EmbeddingTable::new(token_embedding),
            decoder_positions,
            decoder_layers,
            decoder_norm: s.norm("decoder.layer_norm", dt)?,
            projection: Linear::from_matrix(projection, None)?,
            config,
        })
    }

    /// `AudioEncoder.forward`: two GELU convolutions (the second with stride 2), sinusoidal
    /// positions, pre-LN residual blocks, a final LayerNorm.
    /// Encode one window of log-mel frames, (n_mels, 2·n_audio_ctx) row-major → (1, n_audio_ctx, d).
    pub fn encode(&self, mel: &[f32]) -> Result<Tensor> {
        let c = &self.config;
        let frames = 2 * c.n_audio_ctx;
        if mel.len() != c.n_mels * frames {
            return Err(Error::Input(format!(
                "expected {} x {frames} mel values, got {}",
                c.n_mels,
                mel.len()
            )));
        }
        // (frames, channels) from here on: the mel input is read as (channels, frames).
        let x = self.conv1.forward(mel, c.n_mels, frames, Layout::ChannelsFirst)?;
        let x = with_values(&x, |x| self.conv2.forward(x, c.n_audio_state, frames, Layout::FramesFirst))?;
        // + the sinusoidal positions, in place in the convolution's own output.
        let positions = self.encoder_positions.narrow(0, 0, c.n_audio_ctx)?;
        if positions.dims() != x.dims() {
            return Err(Error::Input(format!("the convolutions gave {:?} values, the positions are {:?}", x.dims(), positions.dims())));
        }
        let row_len = x.dim(1)?;
        with_values(&positions, |positions| {
            activations::rows_in_place(&x, |first_row, part| {
                let start = first_row * row_len;
                part.iter_mut().zip(positions.get(start..).unwrap_or_default()).for_each(|(x, p)| *x += p);
            })
        })?;
        let mut x = x.unsqueeze(0)?;
        for layer in &self.encoder_layers {
            x = (&x + layer.attn.attn.forward_self(&layer.attn.norm.forward(&x)?, None, None)?)?;
            x = layer.mlp.forward(&x)?;
        }
        self.encoder_norm.forward(&x)
    }

}

impl Decoder for Whisper {
    /// A decoder state for one encoded window: cross-attention keys/values, empty self cache.
    fn start(&self, audio_features: &Tensor, beams: usize) -> Result<DecoderState> {
        DecoderState::start(self.decoder_layers.iter().map(|l| &l.cross_attn.attn), audio_features, beams)
    }

    /// `TextDecoder.forward` with its `kv_cache`: token + learned position embeddings, pre-LN
    /// blocks of causal self-attention, cross-attention and MLP, then logits against the (tied)
    /// token embedding.
    /// Feed `tokens` after those already in `state`; returns their logits, (beams, new, vocab).
    fn decode(&self, state: &mut DecoderState, tokens: &[u32]) -> Result<Tensor> {
        self.forward(state, tokens, None)
    }
}

/// The (layer, head)s whose cross-attention scores to keep, and where (see `decode_with_cross_scores`).
type Record<'a> = (&'a [(usize, usize)], &'a mut Vec<Option<Tensor>>);

impl Whisper {
    /// `decode` that also hands back the cross-attention scores (scaled, before the softmax) of
    /// the given (layer, head)s, each (new tokens, audio positions) of beam 0: the `QKs` that
    /// openai's `find_alignment` hooks out of the cross-attention blocks. Only the asked heads are
    /// kept (all heads of every layer of a large model over a full window would be ~1 GB).
    pub fn decode_with_cross_scores(&self, state: &mut DecoderState, tokens: &[u32], heads: &[(usize, usize)]) -> Result<(Tensor, Vec<Tensor>)> {
        let mut found: Vec<Option<Tensor>> = vec![None; heads.len()];
        let logits = self.forward(state, tokens, Some((heads, &mut found)))?;
        let scores = found
            .into_iter()
            .zip(heads)
            .map(|(scores, (l, h))| {
                scores.ok_or_else(|| Error::Config(format!("alignment head [{l}, {h}]: the decoder has {} layers", self.config.n_text_layer)))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok((logits, scores))
    }

    fn forward(&self, state: &mut DecoderState, tokens: &[u32], mut record: Option<Record>) -> Result<Tensor> {
        let c = &self.config;
        let ids = state.token_ids(tokens)?;
        let (beams, t) = ids.dims2()?;
        if state.position + t > c.n_text_ctx {
            return Err(Error::Input(format!(
                "decoder context full: {} + {t} tokens exceed {}",
                state.position, c.n_text_ctx
            )));
        }
        if let Some(&bad) = tokens.iter().find(|&&id| id as usize >= c.n_vocab) {
            return Err(Error::Input(format!("token id {bad} is outside the vocabulary ({})", c.n_vocab)));
        }
        let x = self.token_embedding.forward(&ids.flatten_all()?)?.reshape((beams, t, c.n_text_state))?;
        let mut x = x.broadcast_add(&self.decoder_positions.narrow(0, state.position, t)?)?;
        // Several tokens at once (the prompt) must not see the ones after them.
        let mask = causal_mask(state.position, t)?;
        for (index, (layer, cache)) in self.decoder_layers.iter().zip(&mut state.layers).enumerate() {
            let h = layer.self_attn.norm.forward(&x)?;
            x = (&x + layer.self_attn.attn.forward_self(&h, mask.as_ref(), Some(&mut cache.self_kv))?)?;
            let h = layer.cross_attn.norm.forward(&x)?;
            let attended = match record.as_mut().filter(|(heads, _)| heads.iter().any(|&(l, _)| l == index)) {
                None => layer.cross_attn.attn.forward_cross(&h, &cache.cross_kv)?,
                Some((heads, found)) => {
                    let (attended, scores) = layer.cross_attn.attn.forward_cross_with_scores(&h, &cache.cross_kv)?;
                    for (slot, &(_, head)) in found.iter_mut().zip(heads.iter()).filter(|(_, &(l, _))| l == index) {
                        *slot = Some(scores.get(0)?.get(head)?.contiguous()?);
                    }
                    attended
                }
            };
            x = (&x + attended)?;
            x = layer.mlp.forward(&x)?;
        }
        state.position += t;
        let x = self.decoder_norm.forward(&x)?;
        self.projection.forward(&x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random(dims: &[usize], seed: u64) -> Tensor {
        let mut rng = fastrand::Rng::with_seed(seed);
        let values: Vec<f32> = (0..dims.iter().product()).map(|_| rng.f32() * 2.0 - 1.0).collect();
        Tensor::from_vec(values, dims, &Device::Cpu).unwrap()
    }

    /// The unrolled convolution is candle's `conv1d` + bias + GELU, transposed to (frames,
    /// channels), for either input layout, both strides, on one thread and split over three.
    #[test]
    fn conv_matches_candles_conv1d() {
        for (c_in, c_out, frames) in [(5, 8, 20), (40, 24, 601)] {
            let weight = random(&[c_out, c_in, CONV_TAPS], 1);
            let bias = random(&[c_out], 2);
            let x = random(&[c_in, frames], 3);
            let x_frames_first = x.t().unwrap().contiguous().unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let x_channels_first = x.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            for stride in [1, 2] {
                let conv = Conv::new(&weight, &bias, stride, "conv").unwrap();
                let want = x
                    .unsqueeze(0)
                    .unwrap()
                    .conv1d(&weight, CONV_PADDING, stride, 1, 1)
                    .unwrap()
                    .broadcast_add(&bias.reshape((1, (), 1)).unwrap())
                    .unwrap()
                    .gelu_erf()
                    .unwrap()
                    .squeeze(0)
                    .unwrap()
                    .t()
                    .unwrap();
                for threads in [1, 3] {
                    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
                    for (values, layout) in [(&x_channels_first, Layout::ChannelsFirst), (&x_frames_first, Layout::FramesFirst)] {
                        let got = pool.install(|| conv.forward(values, c_in, frames, layout)).unwrap();
                        assert_eq!(got.dims(), want.dims());
                        let diff = (&got - &want).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap();
                        assert!(diff < 2e-6, "c_in={c_in} stride={stride} threads={threads}: {diff}");
                    }
                }
            }
            let conv = Conv::new(&weight, &bias, 1, "conv").unwrap();
            assert!(conv.forward(&x_channels_first[1..], c_in, frames, Layout::ChannelsFirst).is_err());
            assert!(Conv::new(&weight, &random(&[c_out + 1], 4), 1, "conv").is_err());
            assert!(Conv::new(&random(&[c_out, c_in, 5], 5), &bias, 1, "conv").is_err());
        }
    }
}
