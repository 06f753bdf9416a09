//! Weights as Hub repositories ship them, behind one lazy `TensorSource`: `model.safetensors`,
//! sharded safetensors (`model.safetensors.index.json`), `pytorch_model.bin`, CTranslate2
//! `model.bin`. Models read them through `Weights`, which reads one tensor at a time and stores
//! every weight matrix in the load's `WeightDType` right away, so loading never holds the whole
//! model in f32: peak memory is the model in its dtype plus the largest single tensor (plus the
//! downloaded file, which in the browser stays in JavaScript memory).

mod byte_reader;
pub mod compact;
pub mod ctranslate2;
pub mod ggml;
pub mod ggml_writer;
pub mod fit;
pub mod pickle;
pub mod pytorch;
pub mod safetensors;

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::rc::Rc;

use candle_core::quantized::QTensor;
use candle_core::{DType, Device, Shape, Tensor};

use crate::error::{Error, Result};
use crate::hub::{Blob, Repo};
use crate::models::linear::{Linear, Matrix, Precision};

pub type Tensors = HashMap<String, Tensor>;

/// The byte size of a tensor of `dims` with elements of `element_bytes`, or `None` if any product
/// of its dims overflows. Every parser checks shapes with this before building one: a zero dim
/// makes the element count 0 while candle's stride computation still multiplies the others, so
/// the product of the nonzero dims must fit as well.
pub fn tensor_bytes(dims: &[usize], element_bytes: usize) -> Option<usize> {
    let nonzero = dims.iter().try_fold(element_bytes, |n, &d| n.checked_mul(d.max(1)))?;
    Some(if dims.contains(&0) { 0 } else { nonzero })
}

/// How weight matrices are held in memory (transformers.js's names). Embedding tables count as
/// matrices; biases and norms stay f32.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WeightDType {
    #[default]
    Fp32,
    Fp16,
    /// 8-bit blocks of 32 with one f16 scale (ggml Q8_0): 8.5 bits per weight.
    Q8,
    /// 4-bit blocks of 32 with an f16 scale and minimum (ggml Q4_1): 5 bits per weight.
    Q4,
}

impl WeightDType {
    pub const ALL: [WeightDType; 4] = [WeightDType::Fp32, WeightDType::Fp16, WeightDType::Q8, WeightDType::Q4];

    pub fn name(self) -> &'static str {
        match self {
            WeightDType::Fp32 => "fp32",
            WeightDType::Fp16 => "fp16",
            WeightDType::Q8 => "q8",
            WeightDType::Q4 => "q4",
        }
    }

    /// Bytes per weight of a matrix stored in this dtype (block overhead included).
    pub fn bytes_per_weight(self) -> f64 {
        match self {
            WeightDType::Fp32 => 4.0,
            WeightDType::Fp16 => 2.0,
            WeightDType::Q8 => 34.0 / 32.0,
            WeightDType::Q4 => 20.0 / 32.0,
        }
    }

    /// transformers.js's dtype names; `int8`/`uint8` are its other 8-bit names.
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "fp32" => Ok(WeightDType::Fp32),
            "fp16" => Ok(WeightDType::Fp16),
            "q8" | "int8" | "uint8" => Ok(WeightDType::Q8),
            "q4" => Ok(WeightDType::Q4),
            other => Err(Error::Input(format!("unknown dtype '{other}'; supported: fp32, fp16, q8, q4"))),
        }
    }
}

impl std::fmt::Display for WeightDType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A tensor as a file stores it: dense (any float or integer dtype; f16 is not widened), or in a
/// ggml block format (whisper.cpp files, the compact cache).
pub enum Stored {
    Dense(Tensor),
    Quantized(QTensor),
}

impl Stored {
    fn to_f32(&self) -> Result<Tensor> {
        Ok(match self {
            Stored::Dense(t) => t.to_dtype(DType::F32)?,
            Stored::Quantized(q) => q.dequantize(&Device::Cpu)?,
        })
    }

    fn dims(&self) -> &[usize] {
        match self {
            Stored::Dense(t) => t.dims(),
            Stored::Quantized(q) => q.shape().dims(),
        }
    }
}

/// Tensors by name, read when asked for.
pub trait TensorSource {
    fn names(&self) -> Vec<String>;
    fn contains(&self, name: &str) -> bool;
    /// The tensor as stored, or None when there is no such name.
    fn load(&self, name: &str) -> Result<Option<Stored>>;
    /// A file name for error messages.
    fn file(&self) -> &str;
    /// The shape of `name`, without converting it.
    fn dims(&self, name: &str) -> Result<Option<Vec<usize>>> {
        Ok(self.load(name)?.map(|t| t.dims().to_vec()))
    }
    /// Rows first..first + count of the 2-D float tensor `name` as f32 into `out` (`count` times
    /// its columns), for sources that can read part of a tensor (None: this source loads tensors
    /// whole).
    fn load_rows(&self, _name: &str, _first: usize, _count: usize, _out: &mut [f32]) -> Option<Result<()>> {
        None
    }
    /// `name` as a weight matrix read straight from the source's bytes into its storage, for
    /// sources that hold matrices as a `Matrix` stores them (the compact cache); None otherwise.
    fn load_matrix(&self, _name: &str) -> Option<Result<Matrix>> {
        None
    }
    /// Whether `load_rows` reads `name`.
    fn loads_rows(&self, _name: &str) -> bool {
        false
    }
    /// Whether names `a` and `b` are one tensor in the file: a CTranslate2 alias, or tied weights
    /// that torch.save wrote once (a model then loads the table once, not twice).
    fn same_data(&self, _a: &str, _b: &str) -> bool {
        false
    }
}

/// Tensors already in memory (tests, benchmarks).
pub struct InMemory {
    tensors: Tensors,
    file: String,
}

impl InMemory {
    pub fn new(tensors: Tensors, file: &str) -> Self {
        InMemory { tensors, file: file.to_string() }
    }
}

impl TensorSource for InMemory {
    fn names(&self) -> Vec<String> {
        self.tensors.keys().cloned().collect()
    }

    fn contains(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    fn load(&self, name: &str) -> Result<Option<Stored>> {
        Ok(self.tensors.get(name).cloned().map(Stored::Dense))
    }

    fn file(&self) -> &str {
        &self.file
    }
}

/// Shards of one checkpoint: each name is read from the shard holding it.
struct Sharded {
    shards: Vec<Box<dyn TensorSource>>,
    index: HashMap<String, usize>,
}

impl TensorSource for Sharded {
    fn names(&self) -> Vec<String> {
        self.index.keys().cloned().collect()
    }

    fn contains(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }

    fn load(&self, name: &str) -> Result<Option<Stored>> {
        match self.index.get(name) {
            Some(&i) => self.shards[i].load(name),
            None => Ok(None),
        }
    }

    fn file(&self) -> &str {
        "model.safetensors.index.json"
    }

    fn dims(&self, name: &str) -> Result<Option<Vec<usize>>> {
        match self.index.get(name) {
            Some(&i) => self.shards[i].dims(name),
            None => Ok(None),
        }
    }

    fn loads_rows(&self, name: &str) -> bool {
        self.index.get(name).is_some_and(|&i| self.shards[i].loads_rows(name))
    }

    fn load_rows(&self, name: &str, first: usize, count: usize, out: &mut [f32]) -> Option<Result<()>> {
        self.shards[*self.index.get(name)?].load_rows(name, first, count, out)
    }

    fn same_data(&self, a: &str, b: &str) -> bool {
        match (self.index.get(a), self.index.get(b)) {
            (Some(&i), Some(&j)) => i == j && self.shards[i].same_data(a, b),
            _ => false,
        }
    }
}

const SINGLE: &str = "model.safetensors";
const INDEX: &str = "model.safetensors.index.json";
const PYTORCH: &str = "pytorch_model.bin";

/// The files `open` reads weights from, in the order it tries them.
pub const WEIGHT_FILES: &[&str] = &[SINGLE, INDEX, PYTORCH];

/// The shard file names of a `model.safetensors.index.json`, each once, in order. Each must be a
/// file inside the repo (`hub::file_name_problem`): an index naming `../../x` or `/dev/zero` is
/// refused, not followed.
pub(crate) fn shard_files(index: &serde_json::Value) -> Result<BTreeSet<String>> {
    let weight_map = index
        .get("weight_map")
        .and_then(|m| m.as_object())
        .ok_or_else(|| Error::weights(INDEX, "no weight_map"))?;
    weight_map
        .iter()
        .map(|(tensor, file)| {
            let file = file.as_str().ok_or_else(|| Error::weights(INDEX, format!("weight_map['{tensor}'] is not a file name")))?;
            match crate::hub::file_name_problem(file) {
                Some(problem) => Err(Error::weights(
                    INDEX,
                    format!("weight_map['{tensor}'] = '{}' is not a file inside the repo: {problem}", file.escape_debug()),
                )),
                None => Ok(file.to_string()),
            }
        })
        .collect()
}

/// The repo's model weights, in the order transformers prefers them.
pub async fn open(repo: &Repo) -> Result<Box<dyn TensorSource>> {
    // Big files are read as blobs: in the browser they are parsed straight from JS memory.
    if let Some(blob) = repo.get_blob_optional(SINGLE).await? {
        return Ok(Box::new(safetensors::Safetensors::<Blob>::open(blob, SINGLE)?));
    }
    if let Some(index) = repo.get_json_optional::<serde_json::Value>(INDEX).await? {
        let files = shard_files(&index)?;
        let mut shards: Vec<Box<dyn TensorSource>> = Vec::new();
        let mut index = HashMap::new();
        for file in &files {
            let blob = repo.get_blob(file).await?;
            let shard = safetensors::Safetensors::<Blob>::open(blob, file)?;
            for name in shard.names() {
                index.insert(name, shards.len());
            }
            shards.push(Box::new(shard));
        }
        return Ok(Box::new(Sharded { shards, index }));
    }
    if let Some(blob) = repo.get_blob_optional(PYTORCH).await? {
        return Ok(Box::new(pytorch::Pickled::<Blob>::open(blob, PYTORCH)?));
    }
    Err(Error::NotFound {
        url: format!("{} (nor {INDEX} or {PYTORCH})", repo.url(SINGLE)),
    })
}

/// What a load read, in the form the model keeps it: the compact cache writes exactly this.
pub enum Recorded {
    Dense(Tensor),
    Matrix(Matrix),
    /// A matrix the model keeps only as rows `first..first + rows` of a fused one (q/k/v): the
    /// record holds the fused matrix, not a second copy of the part.
    Rows { of: Matrix, first: usize, rows: usize },
}

impl Recorded {
    /// Whether this is a matrix (in any form) rather than a dense tensor.
    pub fn is_matrix(&self) -> bool {
        !matches!(self, Recorded::Dense(_))
    }
}

struct Shared {
    source: Box<dyn TensorSource>,
    dtype: WeightDType,
    record: Option<RefCell<Vec<(String, Recorded)>>>,
}

/// What models load from: a `TensorSource` seen under a name prefix (`pp`), with the dtype
/// weight matrices are stored in. Dense tensors (norms, biases, positions) come back in f32.
#[derive(Clone)]
pub struct Weights {
    shared: Rc<Shared>,
    prefix: String,
}

impl Weights {
    pub fn new(source: Box<dyn TensorSource>, dtype: WeightDType) -> Self {
        Weights { shared: Rc::new(Shared { source, dtype, record: None }), prefix: String::new() }
    }

    /// Like `new`, also keeping a list of every tensor handed out (`recorded`).
    pub fn recording(source: Box<dyn TensorSource>, dtype: WeightDType) -> Self {
        Weights { shared: Rc::new(Shared { source, dtype, record: Some(RefCell::new(Vec::new())) }), prefix: String::new() }
    }

    /// From tensors in memory, in f32 (tests).
    pub fn from_tensors(tensors: Tensors) -> Self {
        Weights::new(Box::new(InMemory::new(tensors, "tensors")), WeightDType::Fp32)
    }

    pub fn dtype(&self) -> WeightDType {
        self.shared.dtype
    }

    /// The same weights under `{prefix}.{name}`.
    pub fn pp(&self, name: impl std::fmt::Display) -> Weights {
        Weights { shared: self.shared.clone(), prefix: self.path(&name.to_string()) }
    }

    fn path(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.prefix)
        }
    }

    pub fn contains_tensor(&self, name: &str) -> bool {
        self.shared.source.contains(&self.path(name))
    }

    /// Whether `a` and `b` name one tensor of the file (see `TensorSource::same_data`): a model
    /// whose output projection is its embedding table under a second name then ties them.
    pub fn same_data(&self, a: &str, b: &str) -> bool {
        self.shared.source.same_data(&self.path(a), &self.path(b))
    }

    /// Every tensor name in the source (not only under this prefix).
    pub fn names(&self) -> Vec<String> {
        self.shared.source.names()
    }

    fn stored(&self, name: &str) -> Result<(String, Stored)> {
        let path = self.path(name);
        match self.shared.source.load(&path)? {
            Some(stored) => Ok((path, stored)),
            None => Err(Error::weights(self.shared.source.file(), format!("missing tensor '{path}'"))),
        }
    }

    fn record(&self, path: String, what: Recorded) {
        if let Some(record) = &self.shared.record {
            record.borrow_mut().push((path, what));
        }
    }

    /// The shape of `name`.
    pub fn dims(&self, name: &str) -> Result<Vec<usize>> {
        let path = self.path(name);
        self.shared
            .source
            .dims(&path)?
            .ok_or_else(|| Error::weights(self.shared.source.file(), format!("missing tensor '{path}'")))
    }

    /// `name` in f32, whatever its shape.
    pub fn tensor(&self, name: &str) -> Result<Tensor> {
        let (path, stored) = self.stored(name)?;
        let tensor = match stored {
            // Integer scalars (CTranslate2's head counts) keep their dtype.
            Stored::Dense(t) if t.dtype().is_int() => t,
            other => other.to_f32()?,
        };
        self.record(path, Recorded::Dense(tensor.clone()));
        Ok(tensor)
    }

    /// `name` in f32, which must have `shape`.
    pub fn get<S: Into<Shape>>(&self, shape: S, name: &str) -> Result<Tensor> {
        let shape = shape.into();
        let tensor = self.tensor(name)?;
        if tensor.shape() != &shape {
            return Err(Error::weights(
                self.shared.source.file(),
                format!("tensor '{}' has shape {:?}, expected {:?}", self.path(name), tensor.dims(), shape.dims()),
            ));
        }
        Ok(tensor)
    }

    /// `name`, a (rows, cols) matrix, stored in the load's dtype (a ggml-quantised tensor is kept
    /// as it is).
    pub fn matrix(&self, shape: (usize, usize), name: &str) -> Result<Matrix> {
        self.matrix_in(self.shared.dtype.into(), shape, name)
    }

    /// `name`, a matrix that maps hidden states to logits over the vocabulary (a decoder's output
    /// projection, or the token embedding tied to it): kept in bf16 when the load asks for q8 or
    /// q4. Its rounding errors move logits directly, and greedy decoding follows the largest one:
    /// measured, Whisper base in q8 translates the German test clip differently with this matrix
    /// in q8, and exactly like fp32 with it in f16 or bf16 (llama.cpp likewise keeps
    /// `output.weight` at a higher precision than the layers). bf16 rather than f16: the browser
    /// widens it with one shuffle, where f16 takes four operations and ran at half f32's speed.
    pub fn output_matrix(&self, shape: (usize, usize), name: &str) -> Result<Matrix> {
        let precision = match self.shared.dtype {
            WeightDType::Q8 | WeightDType::Q4 => Precision::Bf16,
            other => Precision::Dtype(other),
        };
        self.matrix_in(precision, shape, name)
    }

    fn matrix_in(&self, dtype: Precision, (rows, cols): (usize, usize), name: &str) -> Result<Matrix> {
        let source = &self.shared.source;
        let path = self.path(name);
        // Sources that can, read the matrix straight into its storage: by rows, converting on the
        // way (checkpoints), or as stored (the compact cache). Anything else, or a shape that is
        // not the expected one, goes through `stored` below, which reports the mismatch.
        if source.dims(&path)?.as_deref() == Some(&[rows, cols][..]) {
            let read_directly = if source.loads_rows(&path) {
                let read = |first, count, out: &mut [f32]| {
                    source.load_rows(&path, first, count, out).unwrap_or_else(|| Err(Error::weights(source.file(), format!("tensor '{path}' cannot be read by rows"))))
                };
                Some(Matrix::from_row_pieces(rows, cols, dtype, read))
            } else {
                source.load_matrix(&path)
            };
            if let Some(matrix) = read_directly {
                let matrix = matrix?;
                self.record(path, Recorded::Matrix(matrix.clone()));
                return Ok(matrix);
            }
        }
        let (path, stored) = self.stored(name)?;
        if stored.dims() != [rows, cols] {
            return Err(Error::weights(
                self.shared.source.file(),
                format!("tensor '{path}' has shape {:?}, expected [{rows}, {cols}]", stored.dims()),
            ));
        }
        let matrix = match &stored {
            Stored::Dense(t) => Matrix::from_tensor(t, dtype)?,
            Stored::Quantized(q) => Matrix::from_qtensor(q)?,
        };
        drop(stored);
        self.record(path, Recorded::Matrix(matrix.clone()));
        Ok(matrix)
    }

    /// Several layers loaded from these weights as one ([`Linear::fuse`]: q/k/v). A recording load
    /// then records the parts as rows of the fused matrix, so the parts' own storage is freed with
    /// them instead of being kept, next to the fused copy, until the compact entry is written.
    pub fn fuse(&self, parts: &[Linear]) -> Result<Linear> {
        let fused = Linear::fuse(parts)?;
        if let Some(record) = &self.shared.record {
            let mut first = 0;
            for part in parts {
                let rows = part.out_features();
                for (_, what) in record.borrow_mut().iter_mut() {
                    if matches!(what, Recorded::Matrix(m) if m.shares_storage(part.weight())) {
                        *what = Recorded::Rows { of: fused.weight().clone(), first, rows };
                    }
                }
                first += rows;
            }
        }
        Ok(fused)
    }

    /// Everything handed out so far (empty unless made with `recording`).
    pub fn recorded(&self) -> Vec<(String, Recorded)> {
        match &self.shared.record {
            Some(record) => std::mem::take(&mut *record.borrow_mut()),
            None => Vec::new(),
        }
    }
}

#[cfg(test)]
mod shard_index_tests {
    use super::*;

    #[test]
    fn an_index_may_only_name_files_inside_the_repo() {
        let index = |file: serde_json::Value| serde_json::json!({ "weight_map": { "a.weight": "model-1.safetensors", "b.weight": file } });
        let files = shard_files(&index("sub/model-2.safetensors".into())).unwrap();
        assert_eq!(files.into_iter().collect::<Vec<_>>(), ["model-1.safetensors", "sub/model-2.safetensors"]);
        for bad in ["../../x", "/abs/path", "/dev/zero", "a\\b", "", "a/../../b"] {
            match shard_files(&index(bad.into())) {
                Err(Error::Weights { file, message }) => {
                    assert_eq!(file, INDEX);
                    assert!(message.contains("b.weight") && message.contains("not a file inside the repo"), "{message}");
                }
                other => panic!("{bad:?}: {other:?}"),
            }
        }
        assert!(matches!(shard_files(&index(7.into())), Err(Error::Weights { .. })));
    }

    #[test]
    #[cfg(not(target_arch = "wasm32"))] // pollster is a native dev-dependency
    fn loading_refuses_an_index_that_points_outside_the_repo() {
        let index = serde_json::json!({ "weight_map": { "w": "../../../../etc/passwd" } });
        let files = [(INDEX.to_string(), serde_json::to_vec(&index).unwrap())].into_iter().collect();
        let repo = Repo::memory("m", files);
        assert!(matches!(pollster::block_on(open(&repo)), Err(Error::Weights { .. })));
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn tensor_bytes_refuses_products_that_overflow_even_beside_a_zero_dim() {
        assert_eq!(super::tensor_bytes(&[2, 3], 4), Some(24));
        assert_eq!(super::tensor_bytes(&[], 4), Some(4));
        assert_eq!(super::tensor_bytes(&[0, 7], 4), Some(0));
        assert_eq!(super::tensor_bytes(&[0, usize::MAX, usize::MAX], 4), None);
        assert_eq!(super::tensor_bytes(&[usize::MAX / 2], 4), None); // × 4 overflows (1 << 62 does not compile for wasm32)
    }
}
