//! Whisper (encoder–decoder speech transformer), written for incremental decoding: the decoder
//! keeps a key/value cache per layer for self-attention (one row appended per token) and for
//! cross-attention (computed once per 30 s window from the encoder output), so each new token
//! costs one position, not the whole prefix.
//!
//! Loads from CTranslate2 tensors (Systran/faster-whisper-*: fused q/k/v, `gamma`/`beta`) and from
//! the transformers layout (openai/whisper-*: `model.encoder.layers.N.self_attn.q_proj` …); the
//! hyper-parameters come from tensor shapes (and head counts from the CTranslate2 scalars or
//! config.json). Computation is f32 on the CPU.

use candle_core::{DType, Device, Module, Tensor, D};
use candle_nn::{LayerNorm, Linear};

use crate::error::{Error, Result};
use crate::weights::{ctranslate2, Tensors};

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Config {
    pub n_mels: usize,
    /// Encoder positions (1500: 3000 mel frames after the stride-2 convolution).
    pub n_audio_ctx: usize,
    pub n_audio_state: usize,
    pub n_audio_head: usize,
    pub n_audio_layer: usize,
    pub n_vocab: usize,
    /// Decoder positions (448).
    pub n_text_ctx: usize,
    pub n_text_state: usize,
    pub n_text_head: usize,
    pub n_text_layer: usize,
}

impl Config {
    /// Multilingual checkpoints have 51865+ tokens; English-only ones 51864.
    pub fn is_multilingual(&self) -> bool {
        self.n_vocab >= 51865
    }
}

const LN_EPS: f64 = 1e-5;

struct Attention {
    /// Self-attention: q, k, v fused, (3d, d_in). Cross-attention: q only, (d, d).
    q_or_qkv: Linear,
    /// Cross-attention only: k and v fused, (2d, d_audio).
    kv: Option<Linear>,
    out: Linear,
    heads: usize,
    norm: LayerNorm,
}

/// (1, t, h·dh) → (1, h, t, dh)
fn split_heads(x: &Tensor, heads: usize) -> candle_core::Result<Tensor> {
    let (b, t, d) = x.dims3()?;
    x.reshape((b, t, heads, d / heads))?.transpose(1, 2)?.contiguous()
}

/// (1, h, t, dh) → (1, t, h·dh)
fn merge_heads(x: &Tensor) -> candle_core::Result<Tensor> {
    let (b, h, t, dh) = x.dims4()?;
    x.transpose(1, 2)?.reshape((b, t, h * dh))
}

impl Attention {
    fn d(&self) -> usize {
        self.out.weight().dim(0).unwrap_or(0)
    }

    /// softmax(q kᵀ / √dh + mask) v for q (1,h,t,dh), k/v (1,h,T,dh).
    fn attend(&self, q: &Tensor, k: &Tensor, v: &Tensor, mask: Option<&Tensor>) -> candle_core::Result<Tensor> {
        let dh = q.dim(3)?;
        let mut scores = q.matmul(&k.t()?)?;
        if let Some(mask) = mask {
            scores = scores.broadcast_add(mask)?;
        }
        let scores = scores.contiguous()?;
        scores.inplace_op1(&ScaledSoftmax { scale: 1.0 / (dh as f32).sqrt() })?;
        let out = scores.matmul(v)?;
        self.out.forward(&merge_heads(&out)?)
    }

    /// Self-attention over `x` (1, t, d) after `cache` (keys/values of earlier positions), which is
    /// extended by this call's t positions.
    fn self_attention(&self, x: &Tensor, cache: &mut Option<(Tensor, Tensor)>, mask: Option<&Tensor>) -> candle_core::Result<Tensor> {
        let d = self.d();
        let qkv = self.q_or_qkv.forward(x)?;
        let q = split_heads(&qkv.narrow(D::Minus1, 0, d)?, self.heads)?;
        let k = split_heads(&qkv.narrow(D::Minus1, d, d)?, self.heads)?;
        let v = split_heads(&qkv.narrow(D::Minus1, 2 * d, d)?, self.heads)?;
        let (k, v) = match cache.take() {
            Some((pk, pv)) => (Tensor::cat(&[&pk, &k], 2)?, Tensor::cat(&[&pv, &v], 2)?),
            None => (k, v),
        };
        let out = self.attend(&q, &k, &v, mask)?;
        *cache = Some((k, v));
        Ok(out)
    }

    /// Keys and values of the encoder output for cross-attention, (1,h,T,dh) each.
    fn cross_kv(&self, audio: &Tensor) -> candle_core::Result<(Tensor, Tensor)> {
        let d = self.d();
        let kv = self.kv.as_ref().expect("cross-attention has kv").forward(audio)?;
        let k = split_heads(&kv.narrow(D::Minus1, 0, d)?, self.heads)?;
        let v = split_heads(&kv.narrow(D::Minus1, d, d)?, self.heads)?;
        Ok((k, v))
    }

    fn cross_attention(&self, x: &Tensor, kv: &(Tensor, Tensor)) -> candle_core::Result<Tensor> {
        let q = split_heads(&self.q_or_qkv.forward(x)?, self.heads)?;
        self.attend(&q, &kv.0, &kv.1, None)
    }
}

/// softmax(scale · x) over the last dimension, in place. The attention scores of a 30 s window
/// are 1500 × 1500 per head, so this is a large share of the encoder's time: one pass for the
/// maximum, one for a vectorisable `exp` (Cephes polynomial, ~1 ulp) and the sum, one to scale.
struct ScaledSoftmax {
    scale: f32,
}

/// e^x for x ≤ 0 (−∞ included): range reduction by ln 2 and a degree-6 polynomial, written
/// without branches or libm calls so that loops over it vectorise (SSE2, wasm simd128).
#[inline(always)]
fn exp_nonpositive(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    const ROUND: f32 = 12_582_912.0; // 1.5 · 2^23: adding and subtracting it rounds to an integer
    let xc = x.max(-87.0);
    let n = (xc * LOG2E + ROUND) - ROUND;
    let r = xc - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_1e-4f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let y = p * r * r + r + 1.0;
    let y = y * f32::from_bits(((n as i32 + 127) << 23) as u32);
    if x < -87.0 {
        0.0
    } else {
        y
    }
}

fn softmax_row(row: &mut [f32], scale: f32) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if max == f32::NEG_INFINITY {
        row.fill(0.0);
        return;
    }
    let mut sums = [0f32; 8];
    let mut chunks = row.chunks_exact_mut(8);
    for chunk in &mut chunks {
        for (x, s) in chunk.iter_mut().zip(sums.iter_mut()) {
            *x = exp_nonpositive((*x - max) * scale);
            *s += *x;
        }
    }
    let mut sum: f32 = sums.iter().sum();
    for x in chunks.into_remainder() {
        *x = exp_nonpositive((*x - max) * scale);
        sum += *x;
    }
    let inv = 1.0 / sum;
    row.iter_mut().for_each(|x| *x *= inv);
}

impl candle_core::InplaceOp1 for ScaledSoftmax {
    fn name(&self) -> &'static str {
        "whisper-scaled-softmax"
    }

    fn cpu_fwd(&self, storage: &mut candle_core::CpuStorage, layout: &candle_core::Layout) -> candle_core::Result<()> {
        let candle_core::CpuStorage::F32(data) = storage else {
            candle_core::bail!("whisper softmax: f32 only");
        };
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("whisper softmax: input must be contiguous");
        };
        let n = layout.dims().last().copied().unwrap_or(1).max(1);
        let data = &mut data[start..end];
        let scale = self.scale;
        #[cfg(not(target_arch = "wasm32"))]
        {
            use rayon::prelude::*;
            if data.len() >= 1 << 16 {
                data.par_chunks_mut(n).for_each(|row| softmax_row(row, scale));
                return Ok(());
            }
        }
        data.chunks_mut(n).for_each(|row| softmax_row(row, scale));
        Ok(())
    }
}

struct Mlp {
    norm: LayerNorm,
    fc1: Linear,
    fc2: Linear,
}

impl Mlp {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let h = self.fc1.forward(&self.norm.forward(x)?)?.gelu_erf()?;
        x + self.fc2.forward(&h)?
    }
}

struct EncoderLayer {
    attn: Attention,
    mlp: Mlp,
}

struct DecoderLayer {
    self_attn: Attention,
    cross_attn: Attention,
    mlp: Mlp,
}

pub struct Whisper {
    config: Config,
    conv1: (Tensor, Tensor),
    conv2: (Tensor, Tensor),
    encoder_positions: Tensor,
    encoder_layers: Vec<EncoderLayer>,
    encoder_norm: LayerNorm,
    token_embedding: Tensor,
    decoder_positions: Tensor,
    decoder_layers: Vec<DecoderLayer>,
    decoder_norm: LayerNorm,
    /// Logits projection (the token embedding, tied), (vocab, d).
    projection: Linear,
}

/// Per-window decoder state: the cross-attention keys/values of one encoded window and the
/// self-attention cache of the tokens fed so far.
pub struct DecoderState {
    cross: Vec<(Tensor, Tensor)>,
    cache: Vec<Option<(Tensor, Tensor)>>,
    len: usize,
}

impl DecoderState {
    /// Tokens fed so far.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Forget the fed tokens, keep the encoded audio.
    pub fn reset(&mut self) {
        self.cache.iter_mut().for_each(|c| *c = None);
        self.len = 0;
    }
}

/// Where each weight lives in one checkpoint layout.
trait Source {
    fn get(&self, name: &str) -> Result<Tensor>;
}

fn expect_dims(t: &Tensor, name: &str, dims: &[usize]) -> Result<()> {
    if t.dims() != dims {
        return Err(Error::weights(name, format!("expected shape {dims:?}, found {:?}", t.dims())));
    }
    Ok(())
}

struct Ct2<'a>(&'a Tensors);

impl Source for Ct2<'_> {
    fn get(&self, name: &str) -> Result<Tensor> {
        let t = self.0.get(name).ok_or_else(|| Error::weights("model.bin", format!("missing variable '{name}'")))?;
        Ok(t.to_dtype(DType::F32)?)
    }
}

impl Ct2<'_> {
    fn linear(&self, prefix: &str, out: usize, inp: usize) -> Result<Linear> {
        let w = self.get(&format!("{prefix}/weight"))?;
        expect_dims(&w, &format!("{prefix}/weight"), &[out, inp])?;
        let b = match self.0.get(&format!("{prefix}/bias")) {
            Some(b) => Some(b.to_dtype(DType::F32)?),
            None => None,
        };
        Ok(Linear::new(w, b))
    }

    fn norm(&self, prefix: &str, d: usize) -> Result<LayerNorm> {
        let g = self.get(&format!("{prefix}/gamma"))?;
        expect_dims(&g, &format!("{prefix}/gamma"), &[d])?;
        Ok(LayerNorm::new(g, self.get(&format!("{prefix}/beta"))?, LN_EPS))
    }

    fn count_layers(&self, prefix: &str) -> usize {
        (0..).take_while(|i| self.0.keys().any(|k| k.starts_with(&format!("{prefix}/layer_{i}/")))).count()
    }

    fn heads(&self, name: &str, d: usize) -> usize {
        ctranslate2::scalar_i64(self.0, name).filter(|&h| h > 0).map_or(d / 64, |h| h as usize)
    }
}

struct Hf<'a> {
    tensors: &'a Tensors,
    prefix: &'a str,
}

impl Source for Hf<'_> {
    fn get(&self, name: &str) -> Result<Tensor> {
        let full = format!("{}{name}", self.prefix);
        let t = self
            .tensors
            .get(&full)
            .ok_or_else(|| Error::weights("model.safetensors", format!("missing tensor '{full}'")))?;
        Ok(t.to_dtype(DType::F32)?)
    }
}

impl Hf<'_> {
    fn has(&self, name: &str) -> bool {
        self.tensors.contains_key(&format!("{}{name}", self.prefix))
    }

    fn linear(&self, prefix: &str, out: usize, inp: usize) -> Result<Linear> {
        let w = self.get(&format!("{prefix}.weight"))?;
        expect_dims(&w, &format!("{prefix}.weight"), &[out, inp])?;
        let b = if self.has(&format!("{prefix}.bias")) { Some(self.get(&format!("{prefix}.bias"))?) } else { None };
        Ok(Linear::new(w, b))
    }

    fn norm(&self, prefix: &str, d: usize) -> Result<LayerNorm> {
        let w = self.get(&format!("{prefix}.weight"))?;
        expect_dims(&w, &format!("{prefix}.weight"), &[d])?;
        Ok(LayerNorm::new(w, self.get(&format!("{prefix}.bias"))?, LN_EPS))
    }

    /// q_proj, k_proj (no bias), v_proj fused into one (3d, d) projection.
    fn fused_qkv(&self, prefix: &str, d: usize) -> Result<Linear> {
        let q = self.linear(&format!("{prefix}.q_proj"), d, d)?;
        let k = self.linear(&format!("{prefix}.k_proj"), d, d)?;
        let v = self.linear(&format!("{prefix}.v_proj"), d, d)?;
        Ok(fuse(&[q, k, v])?)
    }

    fn cross_kv(&self, prefix: &str, d: usize, d_audio: usize) -> Result<Linear> {
        let k = self.linear(&format!("{prefix}.k_proj"), d, d_audio)?;
        let v = self.linear(&format!("{prefix}.v_proj"), d, d_audio)?;
        Ok(fuse(&[k, v])?)
    }
}

/// Stack linear layers' outputs into one; a missing bias is zero.
fn fuse(parts: &[Linear]) -> candle_core::Result<Linear> {
    let weights: Vec<&Tensor> = parts.iter().map(|l| l.weight()).collect();
    let biases = parts
        .iter()
        .map(|l| match l.bias() {
            Some(b) => Ok(b.clone()),
            None => Tensor::zeros(l.weight().dim(0)?, DType::F32, &Device::Cpu),
        })
        .collect::<candle_core::Result<Vec<_>>>()?;
    Ok(Linear::new(Tensor::cat(&weights, 0)?, Some(Tensor::cat(&biases, 0)?)))
}

fn dim(t: &Tensor, i: usize, name: &str) -> Result<usize> {
    t.dims().get(i).copied().ok_or_else(|| Error::weights(name, format!("unexpected shape {:?}", t.dims())))
}

impl Whisper {
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// From a CTranslate2 `WhisperSpec` model (`weights::ctranslate2::from_bytes`).
    pub fn from_ctranslate2(tensors: &Tensors) -> Result<Self> {
        let s = Ct2(tensors);
        let conv1_w = s.get("encoder/conv1/weight")?;
        let (n_audio_state, n_mels) = (dim(&conv1_w, 0, "encoder/conv1/weight")?, dim(&conv1_w, 1, "encoder/conv1/weight")?);
        let encoder_positions = s.get("encoder/position_encodings/encodings")?;
        let n_audio_ctx = dim(&encoder_positions, 0, "encoder/position_encodings/encodings")?;
        let token_embedding = s.get("decoder/embeddings/weight")?;
        let (n_vocab, n_text_state) = (dim(&token_embedding, 0, "decoder/embeddings/weight")?, dim(&token_embedding, 1, "decoder/embeddings/weight")?);
        let decoder_positions = s.get("decoder/position_encodings/encodings")?;
        let config = Config {
            n_mels,
            n_audio_ctx,
            n_audio_state,
            n_audio_head: s.heads("encoder/num_heads", n_audio_state),
            n_audio_layer: s.count_layers("encoder"),
            n_vocab,
            n_text_ctx: dim(&decoder_positions, 0, "decoder/position_encodings/encodings")?,
            n_text_state,
            n_text_head: s.heads("decoder/num_heads", n_text_state),
            n_text_layer: s.count_layers("decoder"),
        };
        validate(&config)?;
        let (da, dt) = (config.n_audio_state, config.n_text_state);
        let mlp = |p: &str, d: usize| -> Result<Mlp> {
            let hidden = dim(&s.get(&format!("{p}/ffn/linear_0/weight"))?, 0, p)?;
            Ok(Mlp {
                norm: s.norm(&format!("{p}/ffn/layer_norm"), d)?,
                fc1: s.linear(&format!("{p}/ffn/linear_0"), hidden, d)?,
                fc2: s.linear(&format!("{p}/ffn/linear_1"), d, hidden)?,
            })
        };
        let self_attention = |p: &str, d: usize, heads: usize| -> Result<Attention> {
            Ok(Attention {
                q_or_qkv: s.linear(&format!("{p}/self_attention/linear_0"), 3 * d, d)?,
                kv: None,
                out: s.linear(&format!("{p}/self_attention/linear_1"), d, d)?,
                heads,
                norm: s.norm(&format!("{p}/self_attention/layer_norm"), d)?,
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
                    cross_attn: Attention {
                        q_or_qkv: s.linear(&format!("{p}/attention/linear_0"), dt, dt)?,
                        kv: Some(s.linear(&format!("{p}/attention/linear_1"), 2 * dt, da)?),
                        out: s.linear(&format!("{p}/attention/linear_2"), dt, dt)?,
                        heads: config.n_text_head,
                        norm: s.norm(&format!("{p}/attention/layer_norm"), dt)?,
                    },
                    mlp: mlp(&p, dt)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let projection = match tensors.get("decoder/projection/weight") {
            Some(w) => w.to_dtype(DType::F32)?,
            None => token_embedding.clone(),
        };
        expect_dims(&projection, "decoder/projection/weight", &[n_vocab, dt])?;
        Ok(Whisper {
            conv1: (conv1_w, s.get("encoder/conv1/bias")?),
            conv2: (s.get("encoder/conv2/weight")?, s.get("encoder/conv2/bias")?),
            encoder_positions,
            encoder_layers,
            encoder_norm: s.norm("encoder/layer_norm", da)?,
            token_embedding,
            decoder_positions,
            decoder_layers,
            decoder_norm: s.norm("decoder/layer_norm", dt)?,
            projection: Linear::new(projection, None),
            config,
        })
    }

    /// From the transformers layout (WhisperForConditionalGeneration / WhisperModel weights and
    /// their config.json).
    pub fn from_transformers(config_json: &serde_json::Value, tensors: &Tensors) -> Result<Self> {
        let prefix = if tensors.contains_key("model.encoder.conv1.weight") { "model." } else { "" };
        let s = Hf { tensors, prefix };
        let conv1_w = s.get("encoder.conv1.weight")?;
        let (n_audio_state, n_mels) = (dim(&conv1_w, 0, "encoder.conv1.weight")?, dim(&conv1_w, 1, "encoder.conv1.weight")?);
        let encoder_positions = s.get("encoder.embed_positions.weight")?;
        let token_embedding = s.get("decoder.embed_tokens.weight")?;
        let (n_vocab, n_text_state) = (dim(&token_embedding, 0, "decoder.embed_tokens.weight")?, dim(&token_embedding, 1, "decoder.embed_tokens.weight")?);
        let decoder_positions = s.get("decoder.embed_positions.weight")?;
        let count = |p: &str| (0..).take_while(|i| s.has(&format!("{p}.layers.{i}.fc1.weight"))).count();
        let heads = |key: &str, d: usize| {
            config_json.get(key).and_then(|v| v.as_u64()).filter(|&h| h > 0).map_or(d / 64, |h| h as usize)
        };
        let config = Config {
            n_mels,
            n_audio_ctx: dim(&encoder_positions, 0, "encoder.embed_positions.weight")?,
            n_audio_state,
            n_audio_head: heads("encoder_attention_heads", n_audio_state),
            n_audio_layer: count("encoder"),
            n_vocab,
            n_text_ctx: dim(&decoder_positions, 0, "decoder.embed_positions.weight")?,
            n_text_state,
            n_text_head: heads("decoder_attention_heads", n_text_state),
            n_text_layer: count("decoder"),
        };
        validate(&config)?;
        let (da, dt) = (config.n_audio_state, config.n_text_state);
        let mlp = |p: &str, d: usize| -> Result<Mlp> {
            let hidden = dim(&s.get(&format!("{p}.fc1.weight"))?, 0, p)?;
            Ok(Mlp {
                norm: s.norm(&format!("{p}.final_layer_norm"), d)?,
                fc1: s.linear(&format!("{p}.fc1"), hidden, d)?,
                fc2: s.linear(&format!("{p}.fc2"), d, hidden)?,
            })
        };
        let self_attention = |p: &str, d: usize, heads: usize| -> Result<Attention> {
            Ok(Attention {
                q_or_qkv: s.fused_qkv(&format!("{p}.self_attn"), d)?,
                kv: None,
                out: s.linear(&format!("{p}.self_attn.out_proj"), d, d)?,
                heads,
                norm: s.norm(&format!("{p}.self_attn_layer_norm"), d)?,
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
                    cross_attn: Attention {
                        q_or_qkv: s.linear(&format!("{p}.encoder_attn.q_proj"), dt, dt)?,
                        kv: Some(s.cross_kv(&format!("{p}.encoder_attn"), dt, da)?),
                        out: s.linear(&format!("{p}.encoder_attn.out_proj"), dt, dt)?,
                        heads: config.n_text_head,
                        norm: s.norm(&format!("{p}.encoder_attn_layer_norm"), dt)?,
                    },
                    mlp: mlp(&p, dt)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        // proj_out is tied to the token embedding; some checkpoints store it anyway.
        let projection = match tensors.get("proj_out.weight") {
            Some(w) => w.to_dtype(DType::F32)?,
            None => token_embedding.clone(),
        };
        expect_dims(&projection, "proj_out.weight", &[n_vocab, dt])?;
        Ok(Whisper {
            conv1: (conv1_w, s.get("encoder.conv1.bias")?),
            conv2: (s.get("encoder.conv2.weight")?, s.get("encoder.conv2.bias")?),
            encoder_positions,
            encoder_layers,
            encoder_norm: s.norm("encoder.layer_norm", da)?,
            token_embedding,
            decoder_positions,
            decoder_layers,
            decoder_norm: s.norm("decoder.layer_norm", dt)?,
            projection: Linear::new(projection, None),
            config,
        })
    }

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
        let x = Tensor::from_slice(mel, (1, c.n_mels, frames), &Device::Cpu)?;
        let conv = |x: &Tensor, (w, b): &(Tensor, Tensor), stride| -> candle_core::Result<Tensor> {
            x.conv1d(w, 1, stride, 1, 1)?.broadcast_add(&b.reshape((1, (), 1))?)?.gelu_erf()
        };
        let x = conv(&x, &self.conv1, 1)?;
        let x = conv(&x, &self.conv2, 2)?;
        let mut x = x.transpose(1, 2)?.broadcast_add(&self.encoder_positions.narrow(0, 0, c.n_audio_ctx)?)?;
        for layer in &self.encoder_layers {
            let mut none = None;
            x = (&x + layer.attn.self_attention(&layer.attn.norm.forward(&x)?, &mut none, None)?)?;
            x = layer.mlp.forward(&x)?;
        }
        Ok(self.encoder_norm.forward(&x)?)
    }

    /// A decoder state for one encoded window: cross-attention keys/values, empty self cache.
    pub fn start(&self, audio_features: &Tensor) -> Result<DecoderState> {
        let cross = self
            .decoder_layers
            .iter()
            .map(|l| l.cross_attn.cross_kv(audio_features))
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(DecoderState { cross, cache: vec![None; self.decoder_layers.len()], len: 0 })
    }

    /// Feed `tokens` after those already in `state`; returns their logits, (tokens.len(), vocab).
    pub fn decode(&self, state: &mut DecoderState, tokens: &[u32]) -> Result<Tensor> {
        let c = &self.config;
        let t = tokens.len();
        if t == 0 {
            return Err(Error::Input("no tokens to decode".into()));
        }
        if state.len + t > c.n_text_ctx {
            return Err(Error::Input(format!(
                "decoder context full: {} + {t} tokens exceed {}",
                state.len, c.n_text_ctx
            )));
        }
        if let Some(&bad) = tokens.iter().find(|&&id| id as usize >= c.n_vocab) {
            return Err(Error::Input(format!("token id {bad} is outside the vocabulary ({})", c.n_vocab)));
        }
        let ids = Tensor::from_slice(tokens, t, &Device::Cpu)?;
        let x = self.token_embedding.index_select(&ids, 0)?;
        let x = (x + self.decoder_positions.narrow(0, state.len, t)?)?;
        let mut x = x.unsqueeze(0)?;
        // Causal mask over [cached | new] positions, only needed when several tokens come at once.
        let mask = if t > 1 {
            let past = state.len;
            let total = past + t;
            let values: Vec<f32> = (0..t)
                .flat_map(|i| (0..total).map(move |j| if j > past + i { f32::NEG_INFINITY } else { 0.0 }))
                .collect();
            Some(Tensor::from_vec(values, (t, total), &Device::Cpu)?)
        } else {
            None
        };
        for (i, layer) in self.decoder_layers.iter().enumerate() {
            let h = layer.self_attn.norm.forward(&x)?;
            x = (&x + layer.self_attn.self_attention(&h, &mut state.cache[i], mask.as_ref())?)?;
            let h = layer.cross_attn.norm.forward(&x)?;
            x = (&x + layer.cross_attn.cross_attention(&h, &state.cross[i])?)?;
            x = layer.mlp.forward(&x)?;
        }
        state.len += t;
        let x = self.decoder_norm.forward(&x)?;
        Ok(self.projection.forward(&x)?.squeeze(0)?)
    }
}

fn validate(c: &Config) -> Result<()> {
    let bad = |m: String| Err(Error::weights("model", m));
    if c.n_audio_layer == 0 || c.n_text_layer == 0 {
        return bad(format!("no encoder or decoder layers found ({} / {})", c.n_audio_layer, c.n_text_layer));
    }
    if c.n_audio_head == 0 || !c.n_audio_state.is_multiple_of(c.n_audio_head) || c.n_text_head == 0 || !c.n_text_state.is_multiple_of(c.n_text_head) {
        return bad(format!("hidden sizes {} / {} do not split into {} / {} heads", c.n_audio_state, c.n_text_state, c.n_audio_head, c.n_text_head));
    }
    if c.n_audio_ctx == 0 || c.n_text_ctx == 0 || c.n_vocab == 0 {
        return bad("empty position or token embeddings".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_exp_is_accurate() {
        let mut worst = 0f64;
        let mut x = -90.0f32;
        while x <= 0.0 {
            let (got, want) = (exp_nonpositive(x) as f64, (x as f64).exp());
            if want > 1e-37 {
                worst = worst.max(((got - want) / want).abs());
            }
            x += 0.001;
        }
        assert!(worst < 3e-7, "relative error {worst}");
        assert_eq!(exp_nonpositive(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp_nonpositive(0.0), 1.0);
    }

    #[test]
    fn softmax_matches_candle() {
        let values: Vec<f32> = (0..3 * 37).map(|i| ((i * 7919) % 101) as f32 / 7.0 - 6.0).collect();
        let t = Tensor::from_vec(values, (3, 37), &Device::Cpu).unwrap();
        let want = candle_nn::ops::softmax_last_dim(&(&t * 0.125).unwrap()).unwrap().to_vec2::<f32>().unwrap();
        let got = t.copy().unwrap();
        got.inplace_op1(&ScaledSoftmax { scale: 0.125 }).unwrap();
        for (a, b) in got.to_vec2::<f32>().unwrap().iter().flatten().zip(want.iter().flatten()) {
            assert!((a - b).abs() < 1e-7, "{a} vs {b}");
        }
        // A fully masked row gives zeros, not NaN.
        let masked = Tensor::from_vec(vec![f32::NEG_INFINITY; 4], (1, 4), &Device::Cpu).unwrap();
        masked.inplace_op1(&ScaledSoftmax { scale: 1.0 }).unwrap();
        assert_eq!(masked.to_vec2::<f32>().unwrap(), vec![vec![0.0; 4]]);
    }
}
