//! "Will it fit?" before downloading: which weight files a model's loader would download, their
//! size, the parameter count and the memory the model needs per weight dtype. safetensors
//! headers are read with HTTP Range requests (a few KB of each file); for pytorch_model.bin,
//! CTranslate2 model.bin and ggml files only the size is known before downloading, so memory is
//! estimated from it. [`stored_bytes`] is the one rule for what each tensor takes in memory.


use serde::Serialize;

use crate::error::{Error, Result};
use crate::hub::{RangeRead, Repo};

pub use super::WeightDType;

/// Quantised blocks hold this many weights of a row.
pub const BLOCK: usize = 32;

/// The bytes a float tensor of `shape` takes in memory when the model is loaded as `dtype`:
/// a 2-D tensor (weight matrix or embedding table) whose rows are a multiple of 32 long is kept
/// in `dtype`; other 2-D tensors in fp16 unless `dtype` is fp32 (blocks need whole rows of 32);
/// 1-D tensors (biases, norms) and the rest in f32. Saturates instead of overflowing.
pub fn stored_bytes(shape: &[usize], dtype: WeightDType) -> u64 {
    match shape {
        // The loader's own rule (`Matrix`), so the estimate is what loading will hold.
        [rows, columns] => crate::models::linear::stored_bytes(*rows, *columns, dtype) as u64,
        _ => shape.iter().fold(1u64, |n, &d| n.saturating_mul(d as u64)).saturating_mul(4),
    }
}

/// The model's memory per dtype, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Memory {
    pub fp32: u64,
    pub fp16: u64,
    pub q8: u64,
    pub q4: u64,
}

impl Memory {
    pub fn get(&self, dtype: WeightDType) -> u64 {
        match dtype {
            WeightDType::Fp32 => self.fp32,
            WeightDType::Fp16 => self.fp16,
            WeightDType::Q8 => self.q8,
            WeightDType::Q4 => self.q4,
        }
    }

    fn add(&mut self, dtype: WeightDType, bytes: u64) {
        let slot = match dtype {
            WeightDType::Fp32 => &mut self.fp32,
            WeightDType::Fp16 => &mut self.fp16,
            WeightDType::Q8 => &mut self.q8,
            WeightDType::Q4 => &mut self.q4,
        };
        *slot = slot.saturating_add(bytes);
    }
}

/// One weight file the loader would download.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WeightFile {
    pub file: String,
    /// `None` when the server said neither Content-Range nor Content-Length.
    pub size: Option<u64>,
}

/// What `model_info` found out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelInfo {
    pub files: Vec<WeightFile>,
    /// The sum of the files' sizes; `None` if any is unknown.
    pub download_bytes: Option<u64>,
    /// Weights in float tensors; `None` when not known.
    pub parameters: Option<u64>,
    /// Memory per dtype; `None` when not known.
    pub memory: Option<Memory>,
    /// Whether parameters and memory come from the tensor headers (safetensors), rather than
    /// being estimated from file sizes.
    pub exact: bool,
    /// What was estimated or could not be found out, in words; `None` when everything is exact.
    pub note: Option<String>,
}

/// The first request for a weight file asks for this much: it holds most safetensors headers
/// (and the start of other formats, which says how wide their weights are) in one request.
const HEAD: u64 = 64 * 1024;
/// The safetensors format caps headers at 100 MB; more is corrupt (or hostile).
const MAX_HEADER: u64 = 100 << 20;

const SINGLE: &str = "model.safetensors";
const INDEX: &str = "model.safetensors.index.json";
const PYTORCH: &str = "pytorch_model.bin";
const CTRANSLATE2: &str = "model.bin";

/// What one file contributed.
struct FileFacts {
    file: WeightFile,
    /// Exact from tensor headers, estimated from the size, or unknown.
    weights: Weights,
}

enum Weights {
    Exact { parameters: u64, memory: Memory },
    /// Weights ≈ size / bytes per weight; the note says what was assumed.
    Estimated { parameters: u64, note: String },
    Unknown { note: String },
}

/// Which weight files `repo`'s loader would download (`file`, when given, names the one file, as
/// for a ggml model: `model.safetensors`, else the shards of `model.safetensors.index.json`, else
/// `pytorch_model.bin`, else a CTranslate2 `model.bin`), with sizes, parameter count and memory
/// per dtype. Reads only the safetensors headers and the first bytes of other files.
/// `Error::NotFound` when the repo has none of them.
pub async fn model_info(repo: &Repo, file: Option<&str>) -> Result<ModelInfo> {
    let mut facts = Vec::new();
    if let Some(file) = file {
        facts.push(inspect(repo, file).await?.ok_or_else(|| Error::NotFound { url: repo.url(file) })?);
    } else if let Some(single) = inspect(repo, SINGLE).await? {
        facts.push(single);
    } else if let Some(index) = repo.get_json_optional::<serde_json::Value>(INDEX).await? {
        for shard in super::shard_files(&index)? {
            facts.push(inspect(repo, &shard).await?.ok_or_else(|| Error::NotFound { url: repo.url(&shard) })?);
        }
    } else {
        let mut found = None;
        for candidate in [PYTORCH, CTRANSLATE2] {
            found = inspect(repo, candidate).await?;
            if found.is_some() {
                break;
            }
        }
        let url = format!("{} (nor {INDEX}, {PYTORCH} or {CTRANSLATE2})", repo.url(SINGLE));
        facts.push(found.ok_or(Error::NotFound { url })?);
    }
    Ok(summarize(facts))
}


fn summarize(facts: Vec<FileFacts>) -> ModelInfo {
    let download_bytes = facts.iter().try_fold(0u64, |sum, f| Some(sum.saturating_add(f.file.size?)));
    let mut parameters = Some(0u64);
    let mut memory = Some(Memory::default());
    let mut notes = Vec::new();
    let mut exact = true;
    for fact in &facts {
        match &fact.weights {
            Weights::Exact { parameters: p, memory: m } => {
                parameters = parameters.map(|n| n.saturating_add(*p));
                if let Some(memory) = &mut memory {
                    WeightDType::ALL.into_iter().for_each(|dtype| memory.add(dtype, m.get(dtype)));
                }
            }
            Weights::Estimated { parameters: p, note } => {
                exact = false;
                parameters = parameters.map(|n| n.saturating_add(*p));
                if let Some(memory) = &mut memory {
                    for dtype in WeightDType::ALL {
                        memory.add(dtype, (*p as f64 * dtype.bytes_per_weight()) as u64);
                    }
                }
                notes.push(note.clone());
            }
            Weights::Unknown { note } => {
                exact = false;
                (parameters, memory) = (None, None);
                notes.push(note.clone());
            }
        }
    }
    ModelInfo {
        files: facts.into_iter().map(|f| f.file).collect(),
        download_bytes,
        parameters,
        memory,
        exact,
        note: (!notes.is_empty()).then(|| notes.join("; ")),
    }
}

/// Size and weights of one file, from its first bytes (and, for safetensors, its whole header);
/// `None` if the repo has no such file.
async fn inspect(repo: &Repo, file: &str) -> Result<Option<FileFacts>> {
    let (head, size) = match repo.read_range(file, 0, HEAD).await? {
        None => return Ok(None),
        Some(RangeRead::Bytes { bytes, size }) => (bytes, size),
        Some(RangeRead::Ignored { size }) => {
            let note = format!("{file}: the server does not answer Range requests, so its contents are unknown until it is downloaded");
            return Ok(Some(FileFacts { file: WeightFile { file: file.to_string(), size }, weights: Weights::Unknown { note } }));
        }
    };
    let weights = if file.ends_with(".safetensors") {
        let header = safetensors_header(repo, file, head).await?;
        let (parameters, memory) = tensor_totals(&header, file)?;
        Weights::Exact { parameters, memory }
    } else {
        match size {
            Some(size) => {
                let (bytes_per_weight, assumed) = weight_width(&head);
                let parameters = (size as f64 / bytes_per_weight) as u64;
                let note = format!("{file}: only its size is known before downloading; memory estimated from it, {assumed}");
                Weights::Estimated { parameters, note }
            }
            None => Weights::Unknown { note: format!("{file}: the server did not say its size") },
        }
    };
    Ok(Some(FileFacts { file: WeightFile { file: file.to_string(), size }, weights }))
}

/// The JSON header of a safetensors file whose first bytes are `head`, reading the rest of it if
/// it is longer than `head`.
async fn safetensors_header(repo: &Repo, file: &str, mut head: Vec<u8>) -> Result<Vec<u8>> {
    let bad = |message: String| Error::weights(file, message);
    let length: [u8; 8] = head.get(..8).and_then(|b| b.try_into().ok()).ok_or_else(|| bad("shorter than its 8-byte header length".into()))?;
    let length = u64::from_le_bytes(length);
    if length > MAX_HEADER {
        return Err(bad(format!("header length {length} is over the format's limit of {MAX_HEADER} bytes")));
    }
    let end = 8 + length;
    if (head.len() as u64) < end {
        match repo.read_range(file, head.len() as u64, end).await? {
            Some(RangeRead::Bytes { bytes, .. }) => head.extend(bytes),
            _ => return Err(bad("the rest of its header could not be read".into())),
        }
    }
    if (head.len() as u64) < end {
        return Err(bad(format!("header of {length} bytes runs past the end of the file")));
    }
    head.truncate(end as usize);
    head.drain(..8);
    Ok(head)
}

/// One tensor as a safetensors header describes it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct HeaderTensor {
    pub dtype: String,
    pub shape: Vec<usize>,
    pub data_offsets: [u64; 2],
}

impl HeaderTensor {
    pub fn is_float(&self) -> bool {
        matches!(self.dtype.as_str(), "F64" | "F32" | "F16" | "BF16" | "F8_E4M3" | "F8_E5M2")
    }
}

/// Every tensor of a safetensors JSON header, by name (`__metadata__` left out).
pub fn parse_safetensors_header(header: &[u8], file: &str) -> Result<Vec<(String, HeaderTensor)>> {
    let bad = |message: String| Error::weights(file, message);
    let mut entries: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(header).map_err(|e| bad(format!("header is not valid JSON: {e}")))?;
    entries.remove("__metadata__");
    entries
        .into_iter()
        .map(|(name, entry)| match serde_json::from_value::<HeaderTensor>(entry) {
            Ok(tensor) => Ok((name, tensor)),
            Err(e) => Err(bad(format!("tensor {name}: {e}"))),
        })
        .collect()
}

/// Parameters (float weights) and memory per dtype of the tensors in a safetensors header.
/// Integer tensors (ids, masks) are kept as they are stored.
fn tensor_totals(header: &[u8], file: &str) -> Result<(u64, Memory)> {
    let mut parameters = 0u64;
    let mut memory = Memory::default();
    for (_, tensor) in parse_safetensors_header(header, file)? {
        let [start, end] = tensor.data_offsets;
        if tensor.is_float() {
            parameters = parameters.saturating_add(tensor.shape.iter().fold(1u64, |n, &d| n.saturating_mul(d as u64)));
            WeightDType::ALL.into_iter().for_each(|dtype| memory.add(dtype, stored_bytes(&tensor.shape, dtype)));
        } else {
            WeightDType::ALL.into_iter().for_each(|dtype| memory.add(dtype, end.saturating_sub(start)));
        }
    }
    Ok((parameters, memory))
}

/// Bytes per weight of a weights file, guessed from its first bytes, and what was assumed in
/// words: a CTranslate2 model.bin says it in its first float variable, a ggml file in its
/// `ftype`, a PyTorch zip in its storage class names; anything else is taken to be f32.
fn weight_width(head: &[u8]) -> (f64, String) {
    let named = |width: f64, what: &str| (width, format!("which holds {what} weights"));
    if head.starts_with(b"PK") {
        let count = |needle: &[u8]| head.windows(needle.len()).filter(|w| *w == needle).count();
        let (half, float) = (count(b"HalfStorage") + count(b"BFloat16Storage"), count(b"FloatStorage"));
        return if half > float { named(2.0, "16-bit") } else { named(4.0, "f32") };
    }
    if let Some(width) = ggml_width(head) {
        return named(width, "ggml-typed");
    }
    if let Some((width, what)) = ctranslate2_width(head) {
        return named(width, what);
    }
    (4.0, "assuming f32 weights".to_string())
}

/// A whisper.cpp ggml file: magic, then 11 i32 hyperparameters, the last being `ftype`.
fn ggml_width(head: &[u8]) -> Option<f64> {
    const MAGIC: u32 = 0x6767_6d6c;
    let word = |i: usize| head.get(i * 4..i * 4 + 4).map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")));
    if word(0)? != MAGIC {
        return None;
    }
    // ggml's ftype, modulo its quantisation version factor.
    Some(match word(11)? % 1000 {
        0 => 4.0,
        1 => 2.0,
        2 => 18.0 / 32.0,
        3 => 20.0 / 32.0,
        7 => 34.0 / 32.0,
        8 => 22.0 / 32.0,
        9 => 24.0 / 32.0,
        _ => return None,
    })
}

/// A CTranslate2 model.bin (layout in `super::ctranslate2`): the dtype of its first matrix.
fn ctranslate2_width(head: &[u8]) -> Option<(f64, &'static str)> {
    let mut pos = 0usize;
    let mut take = |n: usize| {
        let bytes = head.get(pos..pos + n)?;
        pos += n;
        Some(bytes)
    };
    let u32_at = |b: &[u8]| u32::from_le_bytes(b.try_into().expect("4 bytes"));
    let u16_at = |b: &[u8]| u16::from_le_bytes(b.try_into().expect("2 bytes")) as usize;
    if !(5..=6).contains(&u32_at(take(4)?)) {
        return None;
    }
    let spec = u16_at(take(2)?);
    take(spec)?;
    take(4)?; // spec revision
    let variables = u32_at(take(4)?);
    for _ in 0..variables {
        let name = u16_at(take(2)?);
        take(name)?;
        let rank = take(1)?[0] as usize;
        take(rank * 4)?;
        let dtype = take(1)?[0];
        let bytes = u32_at(take(4)?) as usize;
        if rank == 2 {
            return match dtype {
                0 => Some((4.0, "f32")),
                1 => Some((1.0, "int8")),
                4 | 5 => Some((2.0, "16-bit")),
                _ => None,
            };
        }
        take(bytes)?;
    }
    None
}

/// `Error::TooLarge` if `info` says the model needs more than `budget` bytes as `dtype`
/// weights; an unknown estimate passes (the load then finds out).
pub fn check_budget(info: &ModelInfo, model: &str, dtype: WeightDType, budget: u64) -> Result<()> {
    let Some(memory) = info.memory else { return Ok(()) };
    let needed = memory.get(dtype);
    if needed <= budget {
        return Ok(());
    }
    let smaller = WeightDType::ALL
        .into_iter()
        .find(|&other| memory.get(other) <= budget)
        .map(|other| format!("dtype '{}' needs {} and would fit", other.name(), format_bytes(memory.get(other))));
    Err(Error::TooLarge {
        model: model.to_string(),
        dtype: dtype.name().to_string(),
        needed,
        budget,
        advice: smaller.unwrap_or_else(|| "no dtype fits: raise max_memory or choose a smaller model".to_string()),
    })
}

/// Bytes as the page shows them: B, KB, MB, GB (powers of 1024).
pub fn format_bytes(bytes: u64) -> String {
    const KB: f64 = 1024.0;
    let n = bytes as f64;
    match bytes {
        0..1024 => format!("{bytes} B"),
        1024..1_048_576 => format!("{:.1} KB", n / KB),
        1_048_576..1_073_741_824 => format!("{:.1} MB", n / (KB * KB)),
        _ => format!("{:.2} GB", n / (KB * KB * KB)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_bytes_follows_the_rule() {
        use WeightDType::*;
        // A matrix with rows of 64: kept in the dtype.
        assert_eq!([Fp32, Fp16, Q8, Q4].map(|d| stored_bytes(&[3, 64], d)), [768, 384, 204, 120]);
        // Rows not a multiple of 32: fp16 unless fp32.
        assert_eq!([Fp32, Fp16, Q8, Q4].map(|d| stored_bytes(&[3, 10], d)), [120, 60, 60, 60]);
        // 1-D, 3-D and scalars stay f32.
        for dtype in WeightDType::ALL {
            assert_eq!(stored_bytes(&[64], dtype), 256);
            assert_eq!(stored_bytes(&[2, 2, 32], dtype), 512);
            assert_eq!(stored_bytes(&[], dtype), 4);
        }
        assert_eq!(stored_bytes(&[usize::MAX, 64], Fp32), u64::MAX);
    }

    #[test]
    fn dtypes_parse_by_their_transformers_js_names() {
        for dtype in WeightDType::ALL {
            assert_eq!(WeightDType::parse(dtype.name()).unwrap(), dtype);
        }
        let error = WeightDType::parse("int4").unwrap_err().to_string();
        assert!(error.contains("'int4'") && error.contains("fp32, fp16, q8, q4"), "{error}");
    }

    #[test]
    fn widths_come_from_each_format_s_first_bytes() {
        let mut ggml = 0x6767_6d6cu32.to_le_bytes().to_vec();
        (0..10).for_each(|_| ggml.extend(0u32.to_le_bytes()));
        ggml.extend(9u32.to_le_bytes()); // q5_1
        assert_eq!(weight_width(&ggml).0, 24.0 / 32.0);
        assert_eq!(weight_width(b"PK\x03\x04...HalfStorage...HalfStorage..FloatStorage").0, 2.0);
        assert_eq!(weight_width(b"PK\x03\x04...FloatStorage").0, 4.0);
        assert_eq!(weight_width(b"").0, 4.0);
        // CTranslate2: a scalar, then a [2, 2] f16 matrix.
        let mut ct2 = 6u32.to_le_bytes().to_vec();
        ct2.extend(3u16.to_le_bytes());
        ct2.extend(b"ab\0");
        ct2.extend(1u32.to_le_bytes());
        ct2.extend(2u32.to_le_bytes());
        ct2.extend(2u16.to_le_bytes());
        ct2.extend(b"s\0");
        ct2.extend([0u8, 3]);
        ct2.extend(4u32.to_le_bytes());
        ct2.extend(7u32.to_le_bytes());
        ct2.extend(2u16.to_le_bytes());
        ct2.extend(b"w\0");
        ct2.push(2);
        ct2.extend(2u32.to_le_bytes());
        ct2.extend(2u32.to_le_bytes());
        ct2.push(4);
        assert_eq!(weight_width(&ct2).0, 4.0, "cut off before the byte count: unknown");
        ct2.extend(8u32.to_le_bytes());
        assert_eq!(weight_width(&ct2), (2.0, "which holds 16-bit weights".to_string()));
    }

    #[test]
    fn a_budget_refuses_naming_estimate_dtype_and_budget() {
        let memory = Memory { fp32: 4 << 20, fp16: 2 << 20, q8: 1 << 20, q4: 600 << 10 };
        let info = ModelInfo { files: vec![], download_bytes: None, parameters: None, memory: Some(memory), exact: true, note: None };
        assert!(check_budget(&info, "org/m", WeightDType::Fp32, 4 << 20).is_ok());
        let error = check_budget(&info, "org/m", WeightDType::Fp32, 1 << 20).unwrap_err().to_string();
        assert!(error.contains("org/m") && error.contains("4.0 MB") && error.contains("fp32") && error.contains("1.0 MB"), "{error}");
        assert!(error.contains("'q8' needs 1.0 MB"), "{error}");
        let error = check_budget(&info, "org/m", WeightDType::Q4, 1000).unwrap_err().to_string();
        assert!(error.contains("no dtype fits"), "{error}");
        let unknown = ModelInfo { memory: None, ..info };
        assert!(check_budget(&unknown, "org/m", WeightDType::Fp32, 0).is_ok());
    }

    #[test]
    fn bytes_format_as_the_page_shows_them() {
        assert_eq!(format_bytes(1023), "1023 B");
        assert_eq!(format_bytes(1536), "1.5 KB");
        assert_eq!(format_bytes(268 << 20), "268.0 MB");
        assert_eq!(format_bytes(3 << 30), "3.00 GB");
    }
}
