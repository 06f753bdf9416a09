//! `pytorch_model.bin`: the zip archive torch.save writes since PyTorch 1.6, its `data.pkl`
//! unpickled with candle's pickle VM, each tensor sliced out of its storage entry when a model asks
//! for it. torch.save stores entries uncompressed, so a tensor is a byte range of the file: in the
//! browser the file stays in JS memory and only the tensor being converted is copied into wasm
//! memory (NLLB-600M's 2.5 GB file would not fit beside its tensors in wasm32's 4 GB otherwise).
//! (candle's own loader only reads from files, which the browser does not have.)

use std::collections::HashMap;
use std::io::{Cursor, Read, Seek, SeekFrom};

use candle_core::pickle::{Object, Stack};
use candle_core::{Device, Tensor};

use super::pickle::TensorEntry;
use super::safetensors::RowMajor;
use super::{Stored, TensorSource, Tensors};
use crate::error::{Error, Result};
use crate::hub::ByteSource;

/// The tensors of a `pytorch_model.bin` over its bytes, read one at a time. The pickle is checked
/// by [`super::pickle::check`] before it is run, and each tensor's shape, offset and storage by
/// checked arithmetic before it is sliced.
pub struct Pickled<S: ByteSource> {
    source: S,
    file: String,
    tensors: HashMap<String, TensorEntry>,
    /// Storage entry name → (first byte in the file, length).
    storages: HashMap<String, (usize, usize)>,
}

impl<S: ByteSource> Pickled<S> {
    pub fn open(source: S, file: &str) -> Result<Self> {
        let bad = |e: &dyn std::fmt::Display| Error::weights(file, e);
        if source.read(0, 2).is_none_or(|magic| magic.as_ref() != b"PK") {
            return Err(bad(&"not a zip archive (legacy pre-1.6 PyTorch files are not supported)"));
        }
        let mut zip = zip::ZipArchive::new(SourceReader { source: &source, position: 0 }).map_err(|e| bad(&e))?;
        let pickle_name = zip
            .file_names()
            .flatten()
            .find(|name| name.ends_with("data.pkl"))
            .map(|name| name.into_owned())
            .ok_or_else(|| bad(&"no data.pkl in the archive"))?;
        let dir = pickle_name.trim_end_matches(".pkl").to_string();

        let entry = zip.by_name(&pickle_name).map_err(|e| bad(&e))?;
        // The pickle is read whole before it is checked; being stored, it is no larger than the file.
        if entry.size() > source.len() as u64 {
            return Err(bad(&format!("data.pkl claims {} bytes, more than the archive holds", entry.size())));
        }
        let mut pickle = Vec::new();
        entry.take(source.len() as u64).read_to_end(&mut pickle).map_err(|e| bad(&e))?;
        super::pickle::check(&pickle).map_err(|e| bad(&format!("data.pkl refused: {e}")))?;
        let mut stack = Stack::empty();
        stack.read_loop(&mut Cursor::new(&pickle)).map_err(|e| bad(&e))?;
        let state_dict = match stack.finalize().map_err(|e| bad(&e))? {
            Object::Dict(entries) => entries,
            _ => return Err(bad(&"data.pkl does not hold a state dict")),
        };

        let mut tensors = HashMap::new();
        let mut storages = HashMap::new();
        for (name, value) in state_dict {
            let Object::Unicode(name) = name else { return Err(bad(&"a state dict key is not a string")) };
            let info = match super::pickle::tensor_entry(value) {
                Ok(Some(info)) => info,
                Ok(None) => continue, // plain data (e.g. a version number)
                Err(e) => return Err(bad(&format!("entry {name}: {e}"))),
            };
            if !storages.contains_key(&info.storage) {
                let path = format!("{dir}/{}", info.storage);
                let entry = zip.by_name(&path).map_err(|e| bad(&format!("{path}: {e}")))?;
                if entry.compression() != zip::CompressionMethod::Stored || entry.compressed_size() != entry.size() {
                    return Err(bad(&format!("{path} is compressed; torch.save stores tensors uncompressed")));
                }
                let start = entry.data_start().and_then(|s| usize::try_from(s).ok());
                let len = usize::try_from(entry.size()).ok();
                match start.zip(len) {
                    Some((start, len)) if start.checked_add(len).is_some_and(|end| end <= source.len()) => {
                        storages.insert(info.storage.clone(), (start, len));
                    }
                    _ => return Err(bad(&format!("{path} runs past the end of the file"))),
                }
            }
            let len = super::tensor_bytes(&info.dims, info.dtype.size_in_bytes())
                .ok_or_else(|| bad(&format!("tensor {name}: size {:?} overflows", info.dims)))?;
            let storage_len = storages[&info.storage].1;
            if info.offset_bytes.checked_add(len).is_none_or(|end| end > storage_len) {
                return Err(bad(&format!("tensor {name} runs past its storage")));
            }
            tensors.insert(name, info);
        }
        if tensors.is_empty() {
            return Err(bad(&"no tensors in the state dict"));
        }
        Ok(Pickled { source, file: file.to_string(), tensors, storages })
    }

    fn tensor(&self, name: &str, info: &TensorEntry) -> Result<Tensor> {
        let bad = |e: &dyn std::fmt::Display| Error::weights(&self.file, e);
        let (start, _) = self.storages[&info.storage];
        // Both checked in `open`: the tensor lies inside its storage, the storage inside the file.
        let len = super::tensor_bytes(&info.dims, info.dtype.size_in_bytes()).unwrap_or(usize::MAX);
        let data = self
            .source
            .read(start + info.offset_bytes, len)
            .ok_or_else(|| bad(&format!("tensor {name} runs past the end of the file")))?;
        let dims = &info.dims;
        match layout(info) {
            Some(Layout::RowMajor) => Ok(Tensor::from_raw_buffer(&data, info.dtype, dims, &Device::Cpu)?),
            Some(Layout::ColumnMajor) => {
                // Stored transposed: read with reversed dims, then permute back.
                let reversed: Vec<usize> = dims.iter().rev().copied().collect();
                let order: Vec<usize> = (0..dims.len()).rev().collect();
                Ok(Tensor::from_raw_buffer(&data, info.dtype, reversed.as_slice(), &Device::Cpu)?.permute(order)?.contiguous()?)
            }
            None => Err(bad(&format!("tensor {name} has an unsupported strided layout"))),
        }
    }
}

enum Layout {
    RowMajor,
    ColumnMajor,
}

/// How `info`'s strides lay its elements out, if contiguously (strides of size-1 dims do not matter).
fn layout(info: &TensorEntry) -> Option<Layout> {
    let dims = &info.dims;
    let strides = |order: &mut dyn Iterator<Item = usize>| {
        let mut expected = vec![0; dims.len()];
        let mut step = 1;
        for i in order {
            expected[i] = step;
            step *= dims[i];
        }
        expected
    };
    let matches = |expected: Vec<usize>| info.stride.iter().zip(&expected).zip(dims).all(|((x, y), &d)| d <= 1 || *x == *y);
    if matches(strides(&mut (0..dims.len()).rev())) {
        Some(Layout::RowMajor)
    } else if matches(strides(&mut (0..dims.len()))) {
        Some(Layout::ColumnMajor)
    } else {
        None
    }
}

impl<S: ByteSource> TensorSource for Pickled<S> {
    fn names(&self) -> Vec<String> {
        self.tensors.keys().cloned().collect()
    }

    fn contains(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    fn load(&self, name: &str) -> Result<Option<Stored>> {
        match self.tensors.get(name) {
            Some(info) => Ok(Some(Stored::Dense(self.tensor(name, info)?))),
            None => Ok(None),
        }
    }

    fn file(&self) -> &str {
        &self.file
    }

    fn dims(&self, name: &str) -> Result<Option<Vec<usize>>> {
        Ok(self.tensors.get(name).map(|info| info.dims.clone()))
    }

    // Row-major float matrices are converted a few rows at a time, so a 1 GB vocabulary table
    // (NLLB's) is never whole in f32 while it is quantised.
    fn loads_rows(&self, name: &str) -> bool {
        self.matrix(name).is_some()
    }

    // torch.save writes a storage once however many names share it (tied embeddings).
    fn same_data(&self, a: &str, b: &str) -> bool {
        match (self.tensors.get(a), self.tensors.get(b)) {
            (Some(a), Some(b)) => {
                (&a.storage, a.offset_bytes, &a.dims, &a.stride, a.dtype) == (&b.storage, b.offset_bytes, &b.dims, &b.stride, b.dtype)
            }
            _ => false,
        }
    }

    fn load_rows(&self, name: &str, first: usize, count: usize, out: &mut [f32]) -> Option<Result<()>> {
        let matrix = self.matrix(name)?;
        Some(matrix.read_rows_f32(&self.source, first, count, out).then_some(()).ok_or_else(|| matrix.outside(&self.file, name, first, count)))
    }
}

impl<S: ByteSource> Pickled<S> {
    /// `name` as a row-major float matrix in the file, which `load_rows` reads a few rows at a
    /// time (so a 1 GB vocabulary table, NLLB's, is never whole in f32 while it is quantised).
    fn matrix(&self, name: &str) -> Option<RowMajor> {
        let info = self.tensors.get(name)?;
        let row_major = info.dims.len() == 2 && info.dtype.is_float() && matches!(layout(info), Some(Layout::RowMajor));
        // The whole tensor was checked to lie inside its storage and the file in `open`.
        row_major.then(|| RowMajor {
            start: self.storages[&info.storage].0 + info.offset_bytes,
            dtype: info.dtype,
            rows: info.dims[0],
            cols: info.dims[1],
        })
    }
}

/// Every tensor of a `pytorch_model.bin` held in memory (tests and the fuzz harness).
pub fn from_bytes(bytes: &[u8], file: &str) -> Result<Tensors> {
    let pickled = Pickled::open(bytes, file)?;
    let mut tensors = Tensors::new();
    for (name, info) in &pickled.tensors {
        tensors.insert(name.clone(), pickled.tensor(name, info)?);
    }
    Ok(tensors)
}

/// `Read + Seek` over a [`ByteSource`], for the zip reader, which looks at the directory at the
/// end of the file and the small entries only.
struct SourceReader<'a, S: ByteSource> {
    source: &'a S,
    position: u64,
}

impl<S: ByteSource> Read for SourceReader<'_, S> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let len = self.source.len() as u64;
        let n = (len.saturating_sub(self.position)).min(buf.len() as u64) as usize;
        if n == 0 {
            return Ok(0);
        }
        let bytes = self.source.read(self.position as usize, n).ok_or(std::io::ErrorKind::UnexpectedEof)?;
        buf[..n].copy_from_slice(&bytes);
        self.position += n as u64;
        Ok(n)
    }
}

impl<S: ByteSource> Seek for SourceReader<'_, S> {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let len = self.source.len() as i128;
        let target = match to {
            SeekFrom::Start(n) => n as i128,
            SeekFrom::End(n) => len + n as i128,
            SeekFrom::Current(n) => self.position as i128 + n as i128,
        };
        if target < 0 {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "seek before the start"));
        }
        self.position = target as u64;
        Ok(self.position)
    }
}
