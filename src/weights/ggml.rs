//! whisper.cpp's ggml model files (`ggml-*.bin`, e.g. ggerganov/whisper.cpp `ggml-tiny.en-q5_1.bin`),
//! read into transformers-named tensors that stay in their stored block format.
//!
//! Layout (little-endian, no padding anywhere), as whisper.cpp's `models/convert-pt-to-ggml.py`
//! writes it and `whisper_model_load` (src/whisper.cpp) reads it:
//! - i32 magic `0x67676d6c` ("ggml");
//! - 11 × i32 hyper-parameters: n_vocab, n_audio_ctx, n_audio_state, n_audio_head, n_audio_layer,
//!   n_text_ctx, n_text_state, n_text_head, n_text_layer, n_mels, ftype; `ftype` is
//!   `quantisation version × 1000 + ggml_ftype` (the quantiser writes version 2, the converter 0);
//! - mel filters: i32 n_mel, i32 n_fft (frequency bins, 201), n_mel × n_fft f32;
//! - vocabulary: i32 count, then per token a u32 length and the token's raw bytes (GPT-2 byte-level
//!   strings decoded back to bytes), ids 0..count; the special tokens are not stored;
//! - tensors until the end of the file: i32 n_dims, i32 name length, i32 ggml_type, n_dims × i32
//!   dims (`ne[0]` first: the PyTorch shape reversed), the openai/whisper state-dict name, the data
//!   (ggml blocks for quantised types).
//!
//! Which tensor is stored how ([`Role`]): 2-D matrices (attention, MLP, token embedding) in the
//! file's type (f16, or q4_0/q4_1/q5_0/q5_1/q8_0/k-quants after `whisper_model_quantize`); the
//! convolution kernels in f16 (f32 in an all-f32 file); biases, norms, positional embeddings and
//! the convolution biases (stored as (n, 1)) in f32.
//!
//! The reader is bounded and never panics: every size is checked (with checked arithmetic) against
//! the bytes left before anything is allocated, every tensor must be one whisper.cpp expects for
//! the hyper-parameters, with its shape, and all of them must be present; anything else is an
//! `Error::Weights`.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use candle_core::quantized::{GgmlDType, QStorage, QTensor};
use candle_core::{Device, Tensor};

use crate::error::{Error, Result};
use crate::hub::ByteSource;
use super::byte_reader::Reader;

/// The first four bytes of a whisper.cpp model, "ggml" as a little-endian u32.
pub const MAGIC: u32 = 0x6767_6d6c;
/// ggml's `GGML_QNT_VERSION`: the block layout the quantiser writes (stored in `ftype`).
pub const QUANTIZATION_VERSION: i32 = 2;
/// ggml's `GGML_QNT_VERSION_FACTOR`.
const QUANTIZATION_VERSION_FACTOR: i32 = 1000;
/// Bounds that keep garbage from asking for absurd sizes before the byte counts are checked.
const MAX_DIM: usize = 1 << 24;
const MAX_LAYERS: usize = 1024;
const MAX_TENSOR_DIMS: usize = 4;
const MAX_NAME_LEN: usize = 256;

/// ggml's `ggml_ftype`: what a file's matrices are stored as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileType {
    F32,
    F16,
    Q4_0,
    Q4_1,
    Q8_0,
    Q5_0,
    Q5_1,
    Q2K,
    Q3K,
    Q4K,
    Q5K,
    Q6K,
}

/// (file type, `ggml_ftype` code, whisper.cpp's name for it, the block type of the matrices).
const FILE_TYPES: [(FileType, i32, &str, GgmlDType); 12] = [
    (FileType::F32, 0, "f32", GgmlDType::F32),
    (FileType::F16, 1, "f16", GgmlDType::F16),
    (FileType::Q4_0, 2, "q4_0", GgmlDType::Q4_0),
    (FileType::Q4_1, 3, "q4_1", GgmlDType::Q4_1),
    (FileType::Q8_0, 7, "q8_0", GgmlDType::Q8_0),
    (FileType::Q5_0, 8, "q5_0", GgmlDType::Q5_0),
    (FileType::Q5_1, 9, "q5_1", GgmlDType::Q5_1),
    (FileType::Q2K, 10, "q2_k", GgmlDType::Q2K),
    (FileType::Q3K, 11, "q3_k", GgmlDType::Q3K),
    (FileType::Q4K, 12, "q4_k", GgmlDType::Q4K),
    (FileType::Q5K, 13, "q5_k", GgmlDType::Q5K),
    (FileType::Q6K, 14, "q6_k", GgmlDType::Q6K),
];

/// ggml's `ggml_type` codes of the tensor types a model file can hold.
const TENSOR_TYPES: [(i32, GgmlDType); 13] = [
    (0, GgmlDType::F32),
    (1, GgmlDType::F16),
    (30, GgmlDType::BF16),
    (2, GgmlDType::Q4_0),
    (3, GgmlDType::Q4_1),
    (6, GgmlDType::Q5_0),
    (7, GgmlDType::Q5_1),
    (8, GgmlDType::Q8_0),
    (10, GgmlDType::Q2K),
    (11, GgmlDType::Q3K),
    (12, GgmlDType::Q4K),
    (13, GgmlDType::Q5K),
    (14, GgmlDType::Q6K),
];

/// ggml's `ggml_type` code of `dtype`, for writing files.
pub(crate) fn type_code(dtype: GgmlDType) -> Option<u32> {
    TENSOR_TYPES.iter().find(|(_, d)| *d == dtype).map(|&(code, _)| code as u32)
}

impl FileType {
    fn row(self) -> &'static (FileType, i32, &'static str, GgmlDType) {
        // Every variant has a row.
        FILE_TYPES.iter().find(|row| row.0 == self).unwrap_or(&FILE_TYPES[0])
    }

    pub fn from_code(code: i32) -> Option<Self> {
        FILE_TYPES.iter().find(|row| row.1 == code).map(|row| row.0)
    }

    /// By whisper.cpp's name: `f16`, `q5_1`, … (any case).
    pub fn parse(name: &str) -> Option<Self> {
        let name = name.trim().to_ascii_lowercase();
        FILE_TYPES.iter().find(|row| row.2 == name).map(|row| row.0)
    }

    pub fn code(self) -> i32 {
        self.row().1
    }

    pub fn name(self) -> &'static str {
        self.row().2
    }

    /// Whether the matrices are ggml blocks (the file went through the quantiser).
    pub fn is_quantized(self) -> bool {
        !matches!(self, FileType::F32 | FileType::F16)
    }

    /// Every name `parse` takes, for messages.
    pub fn names() -> String {
        FILE_TYPES.iter().map(|row| row.2).collect::<Vec<_>>().join(", ")
    }
}

fn tensor_type(code: i32) -> Option<GgmlDType> {
    TENSOR_TYPES.iter().find(|row| row.0 == code).map(|row| row.1)
}

pub(crate) fn tensor_type_code(dtype: GgmlDType) -> Option<i32> {
    TENSOR_TYPES.iter().find(|row| row.1 == dtype).map(|row| row.0)
}

/// The hyper-parameters in the file header (openai/whisper's `ModelDimensions`, plus the storage).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HParams {
    pub n_vocab: usize,
    pub n_audio_ctx: usize,
    pub n_audio_state: usize,
    pub n_audio_head: usize,
    pub n_audio_layer: usize,
    pub n_text_ctx: usize,
    pub n_text_state: usize,
    pub n_text_head: usize,
    pub n_text_layer: usize,
    pub n_mels: usize,
    pub file_type: FileType,
    /// 0 for converted (f32/f16) files, `QUANTIZATION_VERSION` for quantised ones.
    pub quantization_version: i32,
}

impl HParams {
    /// The header's `ftype` field.
    pub fn ftype_field(&self) -> i32 {
        self.quantization_version * QUANTIZATION_VERSION_FACTOR + self.file_type.code()
    }

    /// The ten dimensions in header order (`ftype` follows them).
    pub(crate) fn dims_in_header_order(&self) -> [usize; 10] {
        [
            self.n_vocab,
            self.n_audio_ctx,
            self.n_audio_state,
            self.n_audio_head,
            self.n_audio_layer,
            self.n_text_ctx,
            self.n_text_state,
            self.n_text_head,
            self.n_text_layer,
            self.n_mels,
        ]
    }
}

/// The mel filterbank stored in the file: (n_mel, n_fft) row-major, n_fft being frequency bins.
#[derive(Debug, Clone, PartialEq)]
pub struct MelFilters {
    pub n_mel: usize,
    pub n_fft: usize,
    pub data: Vec<f32>,
}

/// How whisper.cpp stores a tensor, which decides its type in a file of a given `FileType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// 2-D weights the quantiser quantises: attention and MLP matrices, the token embedding.
    Matrix,
    /// The 3-D convolution kernels: f16 (f32 in an all-f32 file), never quantised.
    ConvWeight,
    /// Convolution biases, stored as (n, 1) in f32 (the quantiser skips them by name).
    ConvBias,
    /// Biases, norms and the positional embeddings (skipped by name): f32.
    Float,
}

impl Role {
    /// The type whisper.cpp stores this tensor in, in a file of type `file_type`.
    pub fn dtype(self, file_type: FileType) -> GgmlDType {
        match (self, file_type) {
            (Role::Matrix, file_type) => file_type.row().3,
            (Role::ConvWeight, FileType::F32) => GgmlDType::F32,
            (Role::ConvWeight, _) => GgmlDType::F16,
            (Role::ConvBias | Role::Float, _) => GgmlDType::F32,
        }
    }
}

/// One tensor whisper.cpp expects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorSpec {
    /// The openai/whisper state-dict name, as stored in the file.
    pub name: String,
    /// The transformers (WhisperForConditionalGeneration) name it is returned under.
    pub hf_name: String,
    /// PyTorch shape (the file stores it reversed).
    pub shape: Vec<usize>,
    pub role: Role,
}

impl TensorSpec {
    /// The transformers shape: a convolution bias is (n), not (n, 1).
    pub fn hf_shape(&self) -> Vec<usize> {
        match self.role {
            Role::ConvBias => self.shape[..1].to_vec(),
            _ => self.shape.clone(),
        }
    }
}

/// openai/whisper → transformers names inside a residual block.
const BLOCK_NAMES: [(&str, &str); 13] = [
    ("attn.query", "self_attn.q_proj"),
    ("attn.key", "self_attn.k_proj"),
    ("attn.value", "self_attn.v_proj"),
    ("attn.out", "self_attn.out_proj"),
    ("attn_ln", "self_attn_layer_norm"),
    ("cross_attn.query", "encoder_attn.q_proj"),
    ("cross_attn.key", "encoder_attn.k_proj"),
    ("cross_attn.value", "encoder_attn.v_proj"),
    ("cross_attn.out", "encoder_attn.out_proj"),
    ("cross_attn_ln", "encoder_attn_layer_norm"),
    ("mlp.0", "fc1"),
    ("mlp.2", "fc2"),
    ("mlp_ln", "final_layer_norm"),
];

fn block_name(openai: &str) -> &'static str {
    // `layout` only asks for names in the table.
    BLOCK_NAMES.iter().find(|(o, _)| *o == openai).map_or("unknown", |(_, hf)| hf)
}

/// Every tensor whisper.cpp's loader creates for `h`, in openai/whisper's state-dict order
/// (the order the converter writes them in).
pub fn layout(h: &HParams) -> Vec<TensorSpec> {
    let mut specs = Vec::new();
    let mut push = |name: String, hf_name: String, shape: Vec<usize>, role: Role| {
        specs.push(TensorSpec { name, hf_name, shape, role });
    };
    let (da, dt) = (h.n_audio_state, h.n_text_state);
    push("encoder.positional_embedding".into(), "model.encoder.embed_positions.weight".into(), vec![h.n_audio_ctx, da], Role::Float);
    for (conv, inputs) in [("conv1", h.n_mels), ("conv2", da)] {
        push(format!("encoder.{conv}.weight"), format!("model.encoder.{conv}.weight"), vec![da, inputs, 3], Role::ConvWeight);
        push(format!("encoder.{conv}.bias"), format!("model.encoder.{conv}.bias"), vec![da, 1], Role::ConvBias);
    }
    let block = |side: &str, i: usize, d: usize, cross: bool, push: &mut dyn FnMut(String, String, Vec<usize>, Role)| {
        let mut linear = |part: &str, out: usize, inp: usize, bias: bool| {
            let (o, hf) = (format!("{side}.blocks.{i}.{part}"), format!("model.{side}.layers.{i}.{}", block_name(part)));
            push(format!("{o}.weight"), format!("{hf}.weight"), vec![out, inp], Role::Matrix);
            if bias {
                push(format!("{o}.bias"), format!("{hf}.bias"), vec![out], Role::Float);
            }
        };
        let attentions: &[&str] = if cross { &["attn", "cross_attn"] } else { &["attn"] };
        for attn in attentions {
            linear(&format!("{attn}.query"), d, d, true);
            linear(&format!("{attn}.key"), d, d, false);
            linear(&format!("{attn}.value"), d, d, true);
            linear(&format!("{attn}.out"), d, d, true);
        }
        linear("mlp.0", 4 * d, d, true);
        linear("mlp.2", d, 4 * d, true);
        let norms: &[&str] = if cross { &["attn_ln", "cross_attn_ln", "mlp_ln"] } else { &["attn_ln", "mlp_ln"] };
        for norm in norms {
            let (o, hf) = (format!("{side}.blocks.{i}.{norm}"), format!("model.{side}.layers.{i}.{}", block_name(norm)));
            push(format!("{o}.weight"), format!("{hf}.weight"), vec![d], Role::Float);
            push(format!("{o}.bias"), format!("{hf}.bias"), vec![d], Role::Float);
        }
    };
    for i in 0..h.n_audio_layer {
        block("encoder", i, da, false, &mut push);
    }
    for part in ["weight", "bias"] {
        push(format!("encoder.ln_post.{part}"), format!("model.encoder.layer_norm.{part}"), vec![da], Role::Float);
    }
    push("decoder.positional_embedding".into(), "model.decoder.embed_positions.weight".into(), vec![h.n_text_ctx, dt], Role::Float);
    push("decoder.token_embedding.weight".into(), "model.decoder.embed_tokens.weight".into(), vec![h.n_vocab, dt], Role::Matrix);
    for i in 0..h.n_text_layer {
        block("decoder", i, dt, true, &mut push);
    }
    for part in ["weight", "bias"] {
        push(format!("decoder.ln.{part}"), format!("model.decoder.layer_norm.{part}"), vec![dt], Role::Float);
    }
    specs
}

/// A tensor as stored: f32 as a candle `Tensor`, f16 and quantised blocks as a `QTensor`.
/// Shapes are the transformers ones.
#[derive(Debug)]
pub enum GgmlTensor {
    F32(Tensor),
    Blocks(QTensor),
}

impl GgmlTensor {
    pub fn dtype(&self) -> GgmlDType {
        match self {
            GgmlTensor::F32(_) => GgmlDType::F32,
            GgmlTensor::Blocks(q) => q.dtype(),
        }
    }

    pub fn dims(&self) -> &[usize] {
        match self {
            GgmlTensor::F32(t) => t.dims(),
            GgmlTensor::Blocks(q) => q.shape().dims(),
        }
    }

    /// The values in f32 (dequantised).
    pub fn to_f32(&self) -> Result<Tensor> {
        Ok(match self {
            GgmlTensor::F32(t) => t.clone(),
            GgmlTensor::Blocks(q) => q.dequantize(&Device::Cpu)?,
        })
    }
}

/// Everything in a whisper.cpp model file.
#[derive(Debug)]
pub struct GgmlFile {
    pub hparams: HParams,
    pub mel_filters: MelFilters,
    /// Token bytes by id (the ordinary tokens only: specials follow from `n_vocab`).
    pub vocab: Vec<Vec<u8>>,
    /// Keyed by transformers name (`model.encoder.layers.0.self_attn.q_proj.weight`, …).
    pub tensors: HashMap<String, GgmlTensor>,
}

/// The tensors of a parsed file as a `TensorSource`: blocks as stored (f16, q5_1, …), each handed
/// out once (the loader reads every tensor once; nothing is kept twice).
pub struct Source {
    tensors: std::cell::RefCell<HashMap<String, GgmlTensor>>,
    dims: HashMap<String, Vec<usize>>,
    file: String,
}

impl Source {
    pub fn new(tensors: HashMap<String, GgmlTensor>, file: &str) -> Self {
        let dims = tensors.iter().map(|(name, t)| (name.clone(), t.dims().to_vec())).collect();
        Source { tensors: std::cell::RefCell::new(tensors), dims, file: file.to_string() }
    }
}

impl super::TensorSource for Source {
    fn names(&self) -> Vec<String> {
        self.dims.keys().cloned().collect()
    }

    fn contains(&self, name: &str) -> bool {
        self.dims.contains_key(name)
    }

    fn load(&self, name: &str) -> Result<Option<super::Stored>> {
        if !self.contains(name) {
            return Ok(None);
        }
        match self.tensors.borrow_mut().remove(name) {
            Some(GgmlTensor::F32(t)) => Ok(Some(super::Stored::Dense(t))),
            Some(GgmlTensor::Blocks(q)) => Ok(Some(super::Stored::Quantized(q))),
            None => Err(Error::weights(&self.file, format!("tensor '{name}' was already read"))),
        }
    }

    fn file(&self) -> &str {
        &self.file
    }

    fn dims(&self, name: &str) -> Result<Option<Vec<usize>>> {
        Ok(self.dims.get(name).cloned())
    }
}

/// Whether `bytes` starts like a whisper.cpp model.
pub fn has_magic<S: ByteSource + ?Sized>(bytes: &S) -> bool {
    bytes.read(0, 4).is_some_and(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) == MAGIC)
}

/// ggml's fields on top of the shared bounded reader.
impl<S: ByteSource + ?Sized> Reader<'_, S> {
    /// A count or size: non-negative and at most `max`.
    fn size(&mut self, what: &str, max: usize) -> Result<usize> {
        let value = self.i32(what)?;
        usize::try_from(value)
            .ok()
            .filter(|&v| v <= max)
            .ok_or_else(|| self.err(format!("{what} is {value}, expected 0..={max}")))
    }

    /// A dimension: at least 1.
    fn dim(&mut self, what: &str, max: usize) -> Result<usize> {
        let value = self.size(what, max)?;
        if value == 0 {
            return Err(self.err(format!("{what} is 0")));
        }
        Ok(value)
    }

    /// `count` values of `size` bytes each must fit in what is left.
    fn fits(&self, count: usize, size: usize, what: &str) -> Result<usize> {
        count
            .checked_mul(size)
            .filter(|&bytes| bytes <= self.left())
            .ok_or_else(|| self.err(format!("truncated: {what} ({count} × {size} bytes) is larger than the {} bytes left", self.left())))
    }
}

fn f32s(bytes: &[u8]) -> Vec<f32> {
    bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
}

/// Parse a whole whisper.cpp model (bytes in memory, or a downloaded `Blob`). `file` names it in
/// errors.
pub fn parse<S: ByteSource + ?Sized>(bytes: &S, file: &str) -> Result<GgmlFile> {
    let mut r = Reader::new(bytes, file);
    let magic = r.take(4, "magic")?;
    if magic.as_ref() != MAGIC.to_le_bytes() {
        return Err(r.err("not a whisper.cpp ggml model (no 'ggml' magic)"));
    }
    let hparams = read_hparams(&mut r)?;
    let mel_filters = {
        let n_mel = r.dim("mel filter count", MAX_DIM)?;
        let n_fft = r.dim("mel filter length", MAX_DIM)?;
        let len = r.fits(n_mel, n_fft, "mel filters")?;
        let bytes = r.fits(len, 4, "mel filters")?;
        MelFilters { n_mel, n_fft, data: f32s(&r.take(bytes, "mel filters")?) }
    };
    let count = r.size("vocabulary size", hparams.n_vocab)?;
    r.fits(count, 4, "vocabulary")?;
    let mut vocab = Vec::with_capacity(count);
    for _ in 0..count {
        let len = r.i32("token length")? as u32 as usize;
        vocab.push(r.take(len, "token")?.into_owned());
    }
    let tensors = read_tensors(&mut r, &hparams)?;
    Ok(GgmlFile { hparams, mel_filters, vocab, tensors })
}

fn read_hparams<S: ByteSource + ?Sized>(r: &mut Reader<'_, S>) -> Result<HParams> {
    let mut dim = |what: &str| r.dim(what, MAX_DIM);
    let (n_vocab, n_audio_ctx, n_audio_state, n_audio_head) =
        (dim("n_vocab")?, dim("n_audio_ctx")?, dim("n_audio_state")?, dim("n_audio_head")?);
    let n_audio_layer = r.dim("n_audio_layer", MAX_LAYERS)?;
    let mut dim = |what: &str| r.dim(what, MAX_DIM);
    let (n_text_ctx, n_text_state, n_text_head) = (dim("n_text_ctx")?, dim("n_text_state")?, dim("n_text_head")?);
    let n_text_layer = r.dim("n_text_layer", MAX_LAYERS)?;
    let n_mels = r.dim("n_mels", MAX_DIM)?;
    let ftype = r.i32("ftype")?;
    let file_type = FileType::from_code(ftype.rem_euclid(QUANTIZATION_VERSION_FACTOR))
        .ok_or_else(|| r.err(format!("unknown ftype {ftype}; supported: {}", FileType::names())))?;
    if n_audio_state != n_text_state {
        // whisper.cpp asserts it: the cross-attention keys are square.
        return Err(r.err(format!("n_audio_state {n_audio_state} differs from n_text_state {n_text_state}")));
    }
    Ok(HParams {
        n_vocab,
        n_audio_ctx,
        n_audio_state,
        n_audio_head,
        n_audio_layer,
        n_text_ctx,
        n_text_state,
        n_text_head,
        n_text_layer,
        n_mels,
        file_type,
        quantization_version: ftype.div_euclid(QUANTIZATION_VERSION_FACTOR),
    })
}

fn read_tensors<S: ByteSource + ?Sized>(r: &mut Reader<'_, S>, hparams: &HParams) -> Result<HashMap<String, GgmlTensor>> {
    let specs = layout(hparams);
    let by_name: HashMap<&str, &TensorSpec> = specs.iter().map(|s| (s.name.as_str(), s)).collect();
    let mut seen = HashSet::new();
    let mut tensors = HashMap::with_capacity(specs.len());
    while r.left() > 0 {
        let n_dims = r.dim("tensor rank", MAX_TENSOR_DIMS)?;
        let name_len = r.dim("tensor name length", MAX_NAME_LEN)?;
        let code = r.i32("tensor type")?;
        let dtype = tensor_type(code).ok_or_else(|| r.err(format!("unknown tensor type {code}")))?;
        let mut ne = Vec::with_capacity(n_dims);
        for _ in 0..n_dims {
            ne.push(r.dim("tensor dimension", MAX_DIM)?);
        }
        let raw = r.take(name_len, "tensor name")?;
        let name = std::str::from_utf8(&raw).map_err(|_| r.err("tensor name is not UTF-8"))?.to_string();
        let spec = by_name.get(name.as_str()).ok_or_else(|| r.err(format!("unknown tensor '{name}'")))?;
        if !seen.insert(spec.name.as_str()) {
            return Err(r.err(format!("tensor '{name}' appears twice")));
        }
        let shape: Vec<usize> = ne.iter().rev().copied().collect();
        if shape != spec.shape {
            return Err(r.err(format!("tensor '{name}' has shape {shape:?}, expected {:?}", spec.shape)));
        }
        // Shapes match the hyper-parameters, each bounded, so the product is checked only for overflow.
        let elements = super::tensor_bytes(&shape, 1);
        let block = dtype.block_size();
        let elements = elements
            .filter(|n| ne[0].is_multiple_of(block) && n.is_multiple_of(block))
            .ok_or_else(|| r.err(format!("tensor '{name}': {shape:?} does not split into {dtype:?} blocks of {block}")))?;
        let bytes = r.fits(elements / block, dtype.type_size(), &format!("data of '{name}'"))?;
        let data = r.take(bytes, &format!("data of '{name}'"))?;
        let tensor = to_tensor(&data, dtype, spec.hf_shape()).map_err(|e| r.err(format!("tensor '{name}': {e}")))?;
        tensors.insert(spec.hf_name.clone(), tensor);
    }
    if let Some(missing) = specs.iter().find(|s| !seen.contains(s.name.as_str())) {
        let others = specs.len() - seen.len() - 1;
        return Err(r.err(format!("truncated: tensor '{}' is missing (and {others} more)", missing.name)));
    }
    Ok(tensors)
}

fn to_tensor(data: &[u8], dtype: GgmlDType, shape: Vec<usize>) -> Result<GgmlTensor> {
    if dtype == GgmlDType::F32 {
        return Ok(GgmlTensor::F32(Tensor::from_vec(f32s(data), shape, &Device::Cpu)?));
    }
    // candle reads blocks in place and needs them 2-byte aligned (their f16 scales); the file packs
    // tensors without padding, so copy into u16 storage. Every block type here has an even size.
    if !dtype.type_size().is_multiple_of(2) {
        return Err(candle_core::Error::Msg(format!("{dtype:?} blocks have an odd size")).into());
    }
    let aligned: Vec<u16> = data.chunks_exact(2).map(|b| u16::from_ne_bytes([b[0], b[1]])).collect();
    let storage = QStorage::from_data(Cow::Borrowed(bytemuck::cast_slice(&aligned)), &Device::Cpu, dtype)?;
    Ok(GgmlTensor::Blocks(QTensor::new(storage, shape)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> HParams {
        HParams {
            n_vocab: 51864,
            n_audio_ctx: 1500,
            n_audio_state: 384,
            n_audio_head: 6,
            n_audio_layer: 4,
            n_text_ctx: 448,
            n_text_state: 384,
            n_text_head: 6,
            n_text_layer: 4,
            n_mels: 80,
            file_type: FileType::F16,
            quantization_version: 0,
        }
    }

    #[test]
    fn layout_has_whisper_cpps_tensor_count_and_names() {
        let specs = layout(&tiny());
        // whisper_model_load's create_tensor calls: 7 encoder-wide (positions, two convolutions,
        // final norm), 4 decoder-wide (positions, token embedding, final norm), 15 per encoder
        // layer, 24 per decoder layer (n_tensors there is a larger memory budget).
        assert_eq!(specs.len(), 7 + 4 + 15 * 4 + 24 * 4);
        let find = |name: &str| specs.iter().find(|s| s.name == name).unwrap();
        assert_eq!(find("encoder.blocks.3.attn.key.weight").hf_name, "model.encoder.layers.3.self_attn.k_proj.weight");
        assert_eq!(find("decoder.blocks.0.cross_attn.out.bias").hf_name, "model.decoder.layers.0.encoder_attn.out_proj.bias");
        assert_eq!(find("decoder.blocks.1.cross_attn_ln.weight").hf_name, "model.decoder.layers.1.encoder_attn_layer_norm.weight");
        assert_eq!(find("decoder.blocks.1.mlp_ln.bias").hf_name, "model.decoder.layers.1.final_layer_norm.bias");
        assert_eq!(find("encoder.blocks.0.mlp.2.weight").shape, vec![384, 1536]);
        assert_eq!(find("encoder.ln_post.bias").hf_name, "model.encoder.layer_norm.bias");
        let bias = find("encoder.conv2.bias");
        assert_eq!((bias.shape.clone(), bias.hf_shape()), (vec![384, 1], vec![384]));
        let names: HashSet<_> = specs.iter().map(|s| s.hf_name.clone()).collect();
        assert_eq!(names.len(), specs.len());
    }

    #[test]
    fn what_gets_quantised_follows_whisper_model_quantize() {
        let specs = layout(&tiny());
        // The quantiser quantises 2-D tensors except the positional embeddings and conv biases.
        for spec in &specs {
            let skipped = spec.name.ends_with("positional_embedding") || spec.name.starts_with("encoder.conv") && spec.name.ends_with("bias");
            let quantised = spec.shape.len() == 2 && !skipped;
            assert_eq!(spec.role == Role::Matrix, quantised, "{}", spec.name);
            assert_eq!(Role::dtype(spec.role, FileType::Q5_1) == GgmlDType::Q5_1, quantised, "{}", spec.name);
        }
        assert_eq!(Role::ConvWeight.dtype(FileType::Q8_0), GgmlDType::F16);
        assert_eq!(Role::ConvWeight.dtype(FileType::F32), GgmlDType::F32);
    }

    #[test]
    fn file_type_codes_and_names() {
        assert_eq!(FileType::parse("Q5_1"), Some(FileType::Q5_1));
        assert_eq!(FileType::from_code(9), Some(FileType::Q5_1));
        assert_eq!(FileType::Q8_0.code(), 7);
        assert_eq!(FileType::from_code(4), None);
        let mut h = tiny();
        h.file_type = FileType::Q5_0;
        h.quantization_version = QUANTIZATION_VERSION;
        assert_eq!(h.ftype_field(), 2008);
        for (_, code, _, dtype) in FILE_TYPES {
            assert!(code == 0 || code == 1 || tensor_type_code(dtype).is_some());
        }
    }
}
