//! Compact models: what a load in fp16/q8/q4 kept, written once as a GGUF file and read back on
//! the next visit, so the original checkpoint is neither downloaded nor quantised again.
//!
//! The entry is keyed by repo, revision and dtype (where it is stored) and carries in its metadata
//! the identity of the source weights (their ETag, which the Hub sets to the LFS file's sha256) and
//! a checksum of every tensor's bytes. A stale entry (the repo's weights changed), a damaged one
//! (checksum or structure) or one from another format version is dropped and rebuilt from the
//! original.

use std::borrow::Cow;
use std::collections::HashMap;
use std::future::Future;
use std::io::{Read, Seek, SeekFrom};
use std::pin::Pin;

use candle_core::quantized::gguf_file::Content;
use candle_core::quantized::GgmlDType;
use candle_core::Device;

use super::{Recorded, Stored, TensorSource, WeightDType, Weights};
use crate::error::{Error, Result};
use crate::hub::{Blob, ByteSource, Repo};

/// Bumped whenever what a dtype stores changes, so older entries are rebuilt.
const FORMAT: &str = "hubside-compact-1";
const KEY_FORMAT: &str = "hubside.format";
const KEY_DTYPE: &str = "hubside.dtype";
const KEY_SOURCE: &str = "hubside.source";
const KEY_CHECKSUM: &str = "hubside.checksum";

/// A `ByteSource` as `Read + Seek`, for candle's GGUF reader.
struct Cursor<'a, S: ByteSource + ?Sized> {
    source: &'a S,
    pos: u64,
}

impl<S: ByteSource + ?Sized> Read for Cursor<'_, S> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let start = self.pos.min(self.source.len() as u64) as usize;
        let n = buf.len().min(self.source.len() - start);
        if n == 0 {
            return Ok(0);
        }
        let bytes = self.source.read(start, n).ok_or_else(|| std::io::Error::other("read past the end"))?;
        buf[..n].copy_from_slice(&bytes);
        self.pos += n as u64;
        Ok(n)
    }
}

impl<S: ByteSource + ?Sized> Seek for Cursor<'_, S> {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let len = self.source.len() as i128;
        let target = match to {
            SeekFrom::Start(p) => p as i128,
            SeekFrom::End(d) => len + d as i128,
            SeekFrom::Current(d) => self.pos as i128 + d as i128,
        };
        if target < 0 {
            return Err(std::io::Error::other("seek before the start"));
        }
        self.pos = target as u64;
        Ok(self.pos)
    }
}

/// FNV-1a over 64-bit words: cheap enough to check every byte of a cached model on load.
#[derive(Default)]
struct Checksum(u64);

impl Checksum {
    fn new() -> Self {
        Checksum(0xcbf2_9ce4_8422_2325)
    }

    fn update(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            self.0 = (self.0 ^ u64::from_le_bytes(w.try_into().expect("8 bytes"))).wrapping_mul(0x100_0000_01b3);
        }
        for &b in words.remainder() {
            self.0 = (self.0 ^ b as u64).wrapping_mul(0x100_0000_01b3);
        }
    }
}

/// What a compact entry must say to be used for this load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    pub dtype: WeightDType,
    /// The source weights' identity (file and ETag), when the server told it.
    pub source: Option<String>,
}

/// A compact entry's file as its pieces: the GGUF header, then each tensor's bytes and padding.
/// Matrices are borrowed from the loaded model's own storage, so keeping an entry costs no second
/// copy of the model in (wasm) memory; `Repo::compact_store` writes the pieces out one by one.
pub struct EntryBytes<'a> {
    pieces: Vec<Cow<'a, [u8]>>,
}

impl EntryBytes<'_> {
    pub fn len(&self) -> usize {
        self.pieces.iter().map(|p| p.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn pieces(&self) -> impl Iterator<Item = &[u8]> {
        self.pieces.iter().map(|p| p.as_ref())
    }

    /// The whole file in one buffer (tests; small entries).
    pub fn to_vec(&self) -> Vec<u8> {
        self.pieces().flatten().copied().collect()
    }
}

/// GGUF's alignment of tensor data (the format's default, which candle writes and reads).
const ALIGNMENT: usize = 32;

/// The tensors a load recorded, as a GGUF file (version 2, laid out byte for byte as candle's
/// `gguf_file::write` does): matrices in their stored form, dense tensors in f32.
pub fn write<'a>(recorded: &'a [(String, Recorded)], key: &Key) -> Result<EntryBytes<'a>> {
    let mut tensors: Vec<(&str, Vec<usize>, GgmlDType, Cow<'a, [u8]>)> = Vec::with_capacity(recorded.len());
    let mut seen = HashMap::new();
    for (name, what) in recorded {
        let kind = what.is_matrix();
        match seen.get(name.as_str()) {
            // The same tensor asked for twice (tied embeddings): kept once.
            Some(&k) if k == kind => continue,
            Some(_) => return Err(Error::Config(format!("tensor '{name}' was read both as a matrix and as a dense tensor"))),
            None => {
                seen.insert(name.as_str(), kind);
            }
        }
        tensors.push(match what {
            Recorded::Matrix(m) => {
                let (dtype, data) = m.ggml_data()?;
                (name.as_str(), vec![m.rows(), m.cols()], dtype, data)
            }
            Recorded::Rows { of, first, rows } => {
                let (dtype, data) = of.ggml_rows(*first, *rows)?;
                (name.as_str(), vec![*rows, of.cols()], dtype, data)
            }
            Recorded::Dense(t) => {
                // GGUF has no rank-0 tensors: scalars (CTranslate2's head counts) are kept as [1].
                let dims = if t.rank() == 0 { vec![1] } else { t.dims().to_vec() };
                let values = t.to_dtype(candle_core::DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
                (name.as_str(), dims, GgmlDType::F32, Cow::Owned(values.iter().flat_map(|v| v.to_le_bytes()).collect()))
            }
        });
    }
    let mut checksum = Checksum::new();
    for (_, _, _, data) in &tensors {
        checksum.update(data);
    }
    let metadata = [
        (KEY_FORMAT, FORMAT.to_string()),
        (KEY_DTYPE, key.dtype.name().to_string()),
        (KEY_SOURCE, key.source.clone().unwrap_or_default()),
        (KEY_CHECKSUM, format!("{:016x}", checksum.0)),
    ];
    let mut header = Vec::new();
    let string = |out: &mut Vec<u8>, text: &str| {
        out.extend_from_slice(&(text.len() as u64).to_le_bytes());
        out.extend_from_slice(text.as_bytes());
    };
    header.extend_from_slice(&0x4655_4747u32.to_le_bytes()); // "GGUF"
    header.extend_from_slice(&2u32.to_le_bytes());
    header.extend_from_slice(&(tensors.len() as u64).to_le_bytes());
    header.extend_from_slice(&(metadata.len() as u64).to_le_bytes());
    for (key, value) in &metadata {
        string(&mut header, key);
        header.extend_from_slice(&8u32.to_le_bytes()); // GGUF's string value type
        string(&mut header, value);
    }
    let padding = |len: usize| len.next_multiple_of(ALIGNMENT) - len;
    let mut offset = 0usize;
    for (name, dims, dtype, data) in &tensors {
        string(&mut header, name);
        header.extend_from_slice(&(dims.len() as u32).to_le_bytes());
        // ggml lists dimensions innermost first.
        for &dim in dims.iter().rev() {
            header.extend_from_slice(&(dim as u64).to_le_bytes());
        }
        let code = super::ggml::type_code(*dtype).ok_or_else(|| Error::Config(format!("no ggml type code for {dtype:?}")))?;
        header.extend_from_slice(&code.to_le_bytes());
        header.extend_from_slice(&(offset as u64).to_le_bytes());
        offset += data.len() + padding(data.len());
    }
    header.resize(header.len() + padding(header.len()), 0);
    let mut pieces = vec![Cow::Owned(header)];
    const ZEROS: [u8; ALIGNMENT] = [0; ALIGNMENT];
    for (_, _, _, data) in tensors {
        let pad = padding(data.len());
        pieces.push(data);
        if pad > 0 {
            pieces.push(Cow::Borrowed(&ZEROS[..pad]));
        }
    }
    Ok(EntryBytes { pieces })
}

/// Bytes the checksum reads at a time (a whole number of its 8-byte words).
const CHECKSUM_PIECE: usize = 1 << 18;

/// A compact entry opened for reading.
pub struct CompactSource<S: ByteSource> {
    bytes: S,
    content: Content,
}

impl<S: ByteSource> CompactSource<S> {
    /// Open `bytes` if they are an intact entry for `key`; `None` means "rebuild it".
    pub fn open(bytes: S, key: &Key) -> Option<Self> {
        let content = Content::read(&mut Cursor { source: &bytes, pos: 0 }).ok()?;
        let text = |k: &str| content.metadata.get(k).and_then(|v| v.to_string().ok()).cloned();
        let checksum = text(KEY_CHECKSUM);
        if text(KEY_FORMAT).as_deref() != Some(FORMAT) || text(KEY_DTYPE).as_deref() != Some(key.dtype.name()) {
            return None;
        }
        // Without the server's word on the source (offline), the entry for this repo and revision stands.
        if key.source.is_some() && text(KEY_SOURCE) != key.source {
            return None;
        }
        let source = CompactSource { bytes, content };
        (Some(source.checksum()?) == checksum).then_some(source)
    }

    fn checksum(&self) -> Option<String> {
        let mut infos: Vec<_> = self.content.tensor_infos.values().collect();
        infos.sort_by_key(|i| i.offset);
        let mut checksum = Checksum::new();
        let mut buffer = vec![0u8; CHECKSUM_PIECE];
        for info in infos {
            // A damaged entry may name dims whose product overflows (candle's elem_count would
            // wrap or panic): it is rebuilt like any other damage.
            let elems = super::tensor_bytes(info.shape.dims(), 1)?;
            let len = (elems / info.ggml_dtype.block_size()).checked_mul(info.ggml_dtype.type_size())?;
            let start = (self.content.tensor_data_offset as usize).checked_add(info.offset as usize)?;
            // A piece at a time (whole 8-byte words, so the sum is that of the whole): reading a
            // 40 MB vocabulary matrix at once would leave a 40 MB hole in wasm memory.
            let mut done = 0;
            while done < len {
                let piece = &mut buffer[..CHECKSUM_PIECE.min(len - done)];
                if !self.bytes.read_into(start.checked_add(done)?, piece) {
                    return None;
                }
                checksum.update(piece);
                done += piece.len();
            }
        }
        Some(format!("{:016x}", checksum.0))
    }
}

impl<S: ByteSource> TensorSource for CompactSource<S> {
    fn names(&self) -> Vec<String> {
        self.content.tensor_infos.keys().cloned().collect()
    }

    fn contains(&self, name: &str) -> bool {
        self.content.tensor_infos.contains_key(name)
    }

    fn load(&self, name: &str) -> Result<Option<Stored>> {
        if !self.contains(name) {
            return Ok(None);
        }
        let q = self
            .content
            .tensor(&mut Cursor { source: &self.bytes, pos: 0 }, name, &Device::Cpu)
            .map_err(|e| Error::weights(self.file(), e))?;
        Ok(Some(if q.dtype() == GgmlDType::F32 { Stored::Dense(q.dequantize(&Device::Cpu)?) } else { Stored::Quantized(q) }))
    }

    fn file(&self) -> &str {
        "compact model cache"
    }

    /// Matrices are read from the entry straight into their storage (one allocation, no copy in
    /// between); f32 tensors are dense ones and go through `load`.
    fn load_matrix(&self, name: &str) -> Option<Result<crate::models::linear::Matrix>> {
        let info = self.content.tensor_infos.get(name).filter(|i| i.ggml_dtype != GgmlDType::F32)?;
        let &[rows, cols] = info.shape.dims() else { return None };
        let start = (self.content.tensor_data_offset as usize).checked_add(info.offset as usize);
        let read = |out: &mut [u8]| match start {
            Some(start) if self.bytes.read_into(start, out) => Ok(()),
            _ => Err(Error::weights(self.file(), format!("tensor {name} runs past the end of the entry"))),
        };
        Some(crate::models::linear::Matrix::from_ggml_bytes_with(info.ggml_dtype, rows, cols, read))
    }

    fn dims(&self, name: &str) -> Result<Option<Vec<usize>>> {
        Ok(self.content.tensor_infos.get(name).map(|i| i.shape.dims().to_vec()))
    }
}

pub type OpenSource<'a> = Pin<Box<dyn Future<Output = Result<Box<dyn TensorSource>>> + 'a>>;

/// Build a model from `repo` in `dtype`: from the compact cache when it holds an intact entry
/// for the repo's current weights (`weight_files`: the files the loader would read, in order, of
/// which the first that exists identifies the weights), else from the original (`open`), caching
/// what the model kept. fp32 loads and uncached repos go straight to the original.
pub async fn load<'a, M>(
    repo: &'a Repo,
    dtype: WeightDType,
    weight_files: &[&str],
    open: impl FnOnce() -> OpenSource<'a>,
    build: impl Fn(&Weights) -> Result<M>,
) -> Result<M> {
    if dtype == WeightDType::Fp32 || !repo.caches_compact() {
        return build(&Weights::new(open().await?, dtype));
    }
    let key = Key { dtype, source: repo.weights_identity(weight_files).await };
    if let Some(bytes) = repo.compact_lookup(dtype).await {
        if let Some(source) = CompactSource::<Blob>::open(bytes, &key) {
            if let Ok(model) = build(&Weights::new(Box::new(source), dtype)) {
                return Ok(model);
            }
        }
        repo.compact_delete(dtype).await;
    }
    let weights = Weights::recording(open().await?, dtype);
    let model = build(&weights)?;
    // A model that loaded is worth keeping even if the cache cannot take it.
    let recorded = weights.recorded();
    if let Ok(entry) = write(&recorded, &key) {
        repo.compact_store(dtype, &entry).await;
    }
    Ok(model)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::quantized::gguf_file::{self, Value};
    use candle_core::quantized::QTensor;
    use candle_core::Tensor;

    fn recorded() -> Vec<(String, Recorded)> {
        let w = Tensor::arange(0f32, 64.0, &Device::Cpu).unwrap().reshape((2, 32)).unwrap();
        let m = crate::models::linear::Matrix::from_tensor(&w, WeightDType::Q8).unwrap();
        vec![
            ("a.weight".into(), Recorded::Matrix(m.clone())),
            ("a.weight".into(), Recorded::Matrix(m)),
            ("a.bias".into(), Recorded::Dense(Tensor::new(&[1f32, 2.0], &Device::Cpu).unwrap())),
            ("heads".into(), Recorded::Dense(Tensor::new(6i64, &Device::Cpu).unwrap())),
        ]
    }

    /// The entry is the file candle's own GGUF writer makes of the same tensors, byte for byte.
    #[test]
    fn pieces_are_candles_gguf_file() {
        let key = Key { dtype: WeightDType::Q8, source: Some("etag".into()) };
        let mut recorded = recorded();
        let f16 = Tensor::arange(0f32, 30.0, &Device::Cpu).unwrap().reshape((3, 10)).unwrap();
        recorded.push(("f16.weight".into(), Recorded::Matrix(crate::models::linear::Matrix::from_tensor(&f16, WeightDType::Q8).unwrap())));
        let entry = write(&recorded, &key).unwrap();
        assert!(entry.pieces().count() > 3);
        let bytes = entry.to_vec();
        assert_eq!(bytes.len(), entry.len());
        let content = Content::read(&mut std::io::Cursor::new(&bytes)).unwrap();
        let mut infos: Vec<_> = content.tensor_infos.iter().collect();
        infos.sort_by_key(|(_, i)| i.offset);
        let tensors: Vec<(String, QTensor)> = infos
            .iter()
            .map(|(name, _)| ((*name).clone(), content.tensor(&mut std::io::Cursor::new(&bytes), name, &Device::Cpu).unwrap()))
            .collect();
        let mut metadata: Vec<(&str, &Value)> = content.metadata.iter().map(|(k, v)| (k.as_str(), v)).collect();
        let order = [KEY_FORMAT, KEY_DTYPE, KEY_SOURCE, KEY_CHECKSUM];
        metadata.sort_by_key(|(k, _)| order.iter().position(|o| o == k));
        let tensors: Vec<(&str, &QTensor)> = tensors.iter().map(|(n, q)| (n.as_str(), q)).collect();
        let mut candle = std::io::Cursor::new(Vec::new());
        gguf_file::write(&mut candle, &metadata, &tensors).unwrap();
        assert_eq!(bytes, candle.into_inner());
        assert_eq!(tensors[3].1.dtype(), GgmlDType::F16, "10 columns are no whole q8 block: f16");
    }

    /// A model reading an entry gets each matrix read straight into its storage, byte for byte
    /// what was recorded; a matrix asked for in another shape is refused.
    #[test]
    fn matrices_are_read_straight_from_the_entry() {
        let key = Key { dtype: WeightDType::Q8, source: None };
        let recorded = recorded();
        let bytes = write(&recorded, &key).unwrap().to_vec();
        let source = CompactSource::open(bytes, &key).unwrap();
        let read = source.load_matrix("a.weight").unwrap().unwrap();
        let Recorded::Matrix(want) = &recorded[0].1 else { panic!() };
        assert_eq!(read.ggml_data().unwrap(), want.ggml_data().unwrap());
        assert!(source.load_matrix("a.bias").is_none(), "f32 tensors are dense ones");
        let weights = Weights::new(Box::new(source), WeightDType::Q8);
        assert_eq!(weights.matrix((2, 32), "a.weight").unwrap().ggml_data().unwrap(), want.ggml_data().unwrap());
        assert!(weights.matrix((1, 64), "a.weight").is_err());
    }

    /// Fused q/k/v are recorded as rows of the fused matrix (the parts' own storage is not kept
    /// alive for the entry), and the entry holds each part exactly as it would have alone.
    #[test]
    fn fused_parts_are_written_from_the_fused_matrix() {
        use crate::models::linear::Linear;
        let part = |start: f32| Tensor::arange(start, start + 64.0, &Device::Cpu).unwrap().reshape((2, 32)).unwrap();
        let bias = Tensor::new(&[1f32, 2.0], &Device::Cpu).unwrap();
        let tensors: crate::weights::Tensors = ["q", "k", "v"]
            .iter()
            .enumerate()
            .flat_map(|(i, name)| [(format!("{name}.weight"), part(100.0 * i as f32)), (format!("{name}.bias"), bias.clone())])
            .collect();
        let weights = Weights::recording(Box::new(crate::weights::InMemory::new(tensors.clone(), "tensors")), WeightDType::Q8);
        let parts: Vec<Linear> = ["q", "k", "v"].iter().map(|name| Linear::load(32, 2, weights.pp(name)).unwrap()).collect();
        let fused = weights.fuse(&parts).unwrap();
        drop(parts);
        assert_eq!(fused.out_features(), 6);
        let recorded = weights.recorded();
        for name in ["q.weight", "k.weight", "v.weight"] {
            let (_, what) = recorded.iter().find(|(n, _)| n == name).unwrap();
            assert!(matches!(what, Recorded::Rows { rows: 2, .. }), "{name} is recorded as rows of the fused matrix");
        }
        let key = Key { dtype: WeightDType::Q8, source: None };
        let source = CompactSource::open(write(&recorded, &key).unwrap().to_vec(), &key).unwrap();
        for name in ["q", "k", "v"] {
            let alone = crate::models::linear::Matrix::from_tensor(&tensors[&format!("{name}.weight")], WeightDType::Q8).unwrap();
            let read = source.load_matrix(&format!("{name}.weight")).unwrap().unwrap();
            assert_eq!(read.ggml_data().unwrap(), alone.ggml_data().unwrap(), "{name}");
        }
    }

    #[test]
    fn round_trips_and_refuses_other_keys_and_damage() {
        let key = Key { dtype: WeightDType::Q8, source: Some("model.safetensors \"abc\"".into()) };
        let bytes = write(&recorded(), &key).unwrap().to_vec();
        let source = CompactSource::open(bytes.clone(), &key).expect("intact entry");
        assert_eq!(source.dims("a.weight").unwrap(), Some(vec![2, 32]));
        assert!(matches!(source.load("a.weight").unwrap(), Some(Stored::Quantized(_))));
        match source.load("a.bias").unwrap() {
            Some(Stored::Dense(t)) => assert_eq!(t.to_vec1::<f32>().unwrap(), [1.0, 2.0]),
            _ => panic!("bias must come back dense"),
        }
        // Offline (no identity) the entry is used; another source or dtype is not.
        assert!(CompactSource::open(bytes.clone(), &Key { source: None, ..key.clone() }).is_some());
        assert!(CompactSource::open(bytes.clone(), &Key { source: Some("other".into()), ..key.clone() }).is_none());
        assert!(CompactSource::open(bytes.clone(), &Key { dtype: WeightDType::Q4, ..key.clone() }).is_none());
        // Every truncation, and a flipped byte in the data, is refused (never a panic).
        // (The last tensor, `heads`, has 4 bytes of data and then 28 of padding that may go.)
        for len in 0..bytes.len() - 28 {
            assert!(CompactSource::open(bytes[..len].to_vec(), &key).is_none(), "{len}");
        }
        let mut damaged = bytes.clone();
        let in_bias = damaged.len() - 64; // a.bias's first byte (heads, last, takes 32)
        damaged[in_bias] ^= 1;
        assert!(CompactSource::open(damaged, &key).is_none());
    }
}
