//! A downloaded file. In the browser its bytes stay in JavaScript memory and are copied into wasm
//! memory piece by piece as they are parsed, so big weights are not held twice in wasm memory
//! (which never shrinks) while tensors are built from them.

use std::borrow::Cow;

/// Random access to bytes, wherever they live.
pub trait ByteSource {
    fn len(&self) -> usize;

    /// `len` bytes from `start`, or `None` past the end.
    fn read(&self, start: usize, len: usize) -> Option<Cow<'_, [u8]>>;

    /// `out.len()` bytes from `start` copied into `out`; false (and `out` unspecified) past the
    /// end. A JS-backed source copies straight into `out`, with no buffer of its own in between.
    fn read_into(&self, start: usize, out: &mut [u8]) -> bool {
        match self.read(start, out.len()) {
            Some(bytes) => {
                out.copy_from_slice(&bytes);
                true
            }
            None => false,
        }
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl ByteSource for [u8] {
    fn len(&self) -> usize {
        <[u8]>::len(self)
    }

    fn read(&self, start: usize, len: usize) -> Option<Cow<'_, [u8]>> {
        self.get(start..start.checked_add(len)?).map(Cow::Borrowed)
    }
}

impl<T: ByteSource + ?Sized> ByteSource for &T {
    fn len(&self) -> usize {
        (**self).len()
    }

    fn read(&self, start: usize, len: usize) -> Option<Cow<'_, [u8]>> {
        (**self).read(start, len)
    }

    fn read_into(&self, start: usize, out: &mut [u8]) -> bool {
        (**self).read_into(start, out)
    }
}

impl ByteSource for Vec<u8> {
    fn len(&self) -> usize {
        self.as_slice().len()
    }

    fn read(&self, start: usize, len: usize) -> Option<Cow<'_, [u8]>> {
        self.as_slice().read(start, len)
    }
}

pub struct Blob(Inner);

enum Inner {
    Bytes(Vec<u8>),
    #[cfg(target_arch = "wasm32")]
    Js(js_sys::Uint8Array),
}

impl From<Vec<u8>> for Blob {
    fn from(bytes: Vec<u8>) -> Self {
        Blob(Inner::Bytes(bytes))
    }
}

#[cfg(target_arch = "wasm32")]
impl From<js_sys::Uint8Array> for Blob {
    fn from(array: js_sys::Uint8Array) -> Self {
        Blob(Inner::Js(array))
    }
}

impl Blob {
    /// All the bytes, in wasm memory.
    pub fn into_vec(self) -> Vec<u8> {
        match self.0 {
            Inner::Bytes(bytes) => bytes,
            #[cfg(target_arch = "wasm32")]
            Inner::Js(array) => array.to_vec(),
        }
    }

    /// The bytes as a JS array (a copy only if they are in wasm memory).
    #[cfg(target_arch = "wasm32")]
    pub fn to_js(&self) -> js_sys::Uint8Array {
        match &self.0 {
            Inner::Bytes(bytes) => js_sys::Uint8Array::from(bytes.as_slice()),
            Inner::Js(array) => array.clone(),
        }
    }
}

impl ByteSource for Blob {
    fn len(&self) -> usize {
        match &self.0 {
            Inner::Bytes(bytes) => bytes.len(),
            #[cfg(target_arch = "wasm32")]
            Inner::Js(array) => array.length() as usize,
        }
    }

    fn read(&self, start: usize, len: usize) -> Option<Cow<'_, [u8]>> {
        match &self.0 {
            Inner::Bytes(bytes) => bytes.read(start, len),
            #[cfg(target_arch = "wasm32")]
            Inner::Js(array) => {
                let end = start.checked_add(len).filter(|&end| end <= array.length() as usize)?;
                let mut out = vec![0u8; len];
                array.subarray(start as u32, end as u32).copy_to(&mut out);
                Some(Cow::Owned(out))
            }
        }
    }

    fn read_into(&self, start: usize, out: &mut [u8]) -> bool {
        match &self.0 {
            Inner::Bytes(bytes) => bytes.read_into(start, out),
            #[cfg(target_arch = "wasm32")]
            Inner::Js(array) => {
                let Some(end) = start.checked_add(out.len()).filter(|&end| end <= array.length() as usize) else {
                    return false;
                };
                array.subarray(start as u32, end as u32).copy_to(out);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ranges_and_refuses_past_the_end() {
        let blob = Blob::from(vec![1u8, 2, 3, 4]);
        assert_eq!(blob.read(1, 2).unwrap().as_ref(), &[2, 3]);
        assert_eq!(blob.read(4, 0).unwrap().as_ref(), &[] as &[u8]);
        assert!(blob.read(3, 2).is_none());
        assert!(blob.read(usize::MAX, 2).is_none());
        let mut out = [0u8; 2];
        assert!(blob.read_into(2, &mut out) && out == [3, 4]);
        assert!(!blob.read_into(3, &mut out) && !blob.read_into(usize::MAX, &mut out));
        assert_eq!(blob.into_vec(), vec![1, 2, 3, 4]);
    }
}
