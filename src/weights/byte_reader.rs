//! Reading a weights file front to back from any `ByteSource` (in the browser, piece by piece
//! from JS): every read is checked against what is left, and errors name the file and the byte
//! offset. The CTranslate2 and ggml readers add their own typed fields on top.

use std::borrow::Cow;

use crate::error::{Error, Result};
use crate::hub::ByteSource;

pub(super) struct Reader<'a, S: ByteSource + ?Sized> {
    pub source: &'a S,
    pub pos: usize,
    pub file: &'a str,
}

impl<'a, S: ByteSource + ?Sized> Reader<'a, S> {
    pub fn new(source: &'a S, file: &'a str) -> Self {
        Reader { source, pos: 0, file }
    }

    pub fn err(&self, message: impl std::fmt::Display) -> Error {
        Error::weights(self.file, format!("{message} (at byte {})", self.pos))
    }

    /// Bytes not read yet.
    pub fn left(&self) -> usize {
        self.source.len().saturating_sub(self.pos)
    }

    pub fn take(&mut self, n: usize, what: &str) -> Result<Cow<'a, [u8]>> {
        let slice = self
            .source
            .read(self.pos, n)
            .ok_or_else(|| self.err(format!("truncated: {what} needs {n} bytes, {} left", self.left())))?;
        self.pos += n;
        Ok(slice)
    }

    /// Step over `n` bytes without reading them; the position where they start.
    pub fn skip(&mut self, n: usize, what: &str) -> Result<usize> {
        if n > self.left() {
            return Err(self.err(format!("truncated: {what} needs {n} bytes, {} left", self.left())));
        }
        self.pos += n;
        Ok(self.pos - n)
    }

    pub fn u8(&mut self, what: &str) -> Result<u8> {
        Ok(self.take(1, what)?[0])
    }

    pub fn u16(&mut self, what: &str) -> Result<u16> {
        let b = self.take(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    pub fn u32(&mut self, what: &str) -> Result<u32> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn i32(&mut self, what: &str) -> Result<i32> {
        let b = self.take(4, what)?;
        Ok(i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
}
