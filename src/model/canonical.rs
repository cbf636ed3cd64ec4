//! The canonical byte encoding that event ids, entry hashes and the chain are
//! computed over. docs/format.md is the specification; this file implements
//! it and the golden tests in [`crate::model::event`] pin it.
//!
//! Primitives (all integers big-endian):
//!
//! | value | bytes |
//! |---|---|
//! | `u64` | 8 bytes |
//! | `bool` | 1 byte, `0x00` or `0x01` |
//! | string | `u64` byte length, then the UTF-8 bytes |
//! | 32-byte id | the 32 raw bytes, no length |
//! | `Option<T>` | `0x00` when absent, else `0x01` then `T` |
//! | list of `T` | `u64` element count, then each element |
//! | timestamp | its canonical text ([`crate::model::time`]) as a string |
//!
//! Every encoding starts with a domain tag string such as `cairn/v1/comment`.
//! Never hash bincode or JSON output: their bytes are not a contract.

use crate::model::time::Timestamp;

/// Builds canonical bytes field by field.
#[derive(Default, Debug, Clone)]
pub struct Encoder {
    buf: Vec<u8>,
}

impl Encoder {
    /// Starts an encoding with its domain tag (`cairn/v1/...`).
    pub fn with_tag(tag: &str) -> Encoder {
        let mut e = Encoder { buf: Vec::with_capacity(256) };
        e.str(tag);
        e
    }

    /// A big-endian `u64`.
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// A boolean byte.
    pub fn bool(&mut self, v: bool) -> &mut Self {
        self.buf.push(u8::from(v));
        self
    }

    /// A length-prefixed UTF-8 string.
    pub fn str(&mut self, s: &str) -> &mut Self {
        self.u64(s.len() as u64);
        self.buf.extend_from_slice(s.as_bytes());
        self
    }

    /// 32 raw bytes.
    pub fn id(&mut self, id: &[u8; 32]) -> &mut Self {
        self.buf.extend_from_slice(id);
        self
    }

    /// A timestamp, as its canonical text.
    pub fn time(&mut self, t: &Timestamp) -> &mut Self {
        match t.canonical_text() {
            Some(text) => self.str(text.as_str()),
            None => self.str(&t.canonical()),
        }
    }

    /// An optional value: tag byte, then the value when present.
    pub fn opt<T>(&mut self, v: Option<T>, f: impl FnOnce(&mut Self, T)) -> &mut Self {
        match v {
            None => self.buf.push(0),
            Some(x) => {
                self.buf.push(1);
                f(self, x);
            }
        }
        self
    }

    /// An optional string.
    pub fn opt_str(&mut self, v: Option<&str>) -> &mut Self {
        self.opt(v, |e, s| {
            e.str(s);
        })
    }

    /// An optional timestamp.
    pub fn opt_time(&mut self, v: Option<&Timestamp>) -> &mut Self {
        self.opt(v, |e, t| {
            e.time(t);
        })
    }

    /// A list: the element count, then each element written by `f`.
    pub fn list<T>(&mut self, items: &[T], mut f: impl FnMut(&mut Self, &T)) -> &mut Self {
        self.u64(items.len() as u64);
        for item in items {
            f(self, item);
        }
        self
    }

    /// The bytes written so far.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Consumes the encoder.
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    /// BLAKE3 of the bytes written so far.
    pub fn hash(&self) -> [u8; 32] {
        *blake3::hash(&self.buf).as_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primitives() {
        let mut e = Encoder::with_tag("t");
        e.u64(1).bool(true).opt_str(None).opt_str(Some("é")).list(&[7u64], |e, v| {
            e.u64(*v);
        });
        let expected: Vec<u8> = [
            &[0, 0, 0, 0, 0, 0, 0, 1, b't'][..],
            &[0, 0, 0, 0, 0, 0, 0, 1],
            &[1],
            &[0],
            &[1, 0, 0, 0, 0, 0, 0, 0, 2, 0xc3, 0xa9],
            &[0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 7],
        ]
        .concat();
        assert_eq!(e.as_bytes(), &expected[..]);
    }
}
