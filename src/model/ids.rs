//! Typed identifiers: [`EventId`], [`BlobId`], [`ChainHash`], [`Seq`] and
//! [`ArticleKey`], with hex conversion and prefix matching.
//!
//! Ids are types, not bare arrays, so that a blob id can never be passed where
//! an event id is expected (STYLE.md, point 5).

use bincode::{Decode, Encode};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Lower-case hex of `bytes`.
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0x0f)] as char);
    }
    out
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Decodes exactly 32 bytes of hex (64 digits, either case).
pub fn parse_hex32(s: &str) -> Option<[u8; 32]> {
    let b = s.as_bytes();
    if b.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in b.chunks_exact(2).enumerate() {
        out[i] = (hex_digit(pair[0])? << 4) | hex_digit(pair[1])?;
    }
    Some(out)
}

/// A validated hex prefix of an id, as typed by a user (`cairn show 3fa2`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HexPrefix {
    text: String,
    /// The whole bytes the prefix fixes (an odd last digit is not included).
    bytes: Vec<u8>,
}

impl HexPrefix {
    /// Parses 1 to 64 hex digits; `None` for anything else.
    pub fn parse(s: &str) -> Option<HexPrefix> {
        if s.is_empty() || s.len() > 64 || !s.bytes().all(|c| hex_digit(c).is_some()) {
            return None;
        }
        let text = s.to_ascii_lowercase();
        let bytes = text
            .as_bytes()
            .chunks_exact(2)
            .map(|p| (hex_digit(p[0]).unwrap_or(0) << 4) | hex_digit(p[1]).unwrap_or(0))
            .collect();
        Some(HexPrefix { text, bytes })
    }

    /// The whole bytes fixed by the prefix, usable as a key-range prefix.
    pub fn byte_prefix(&self) -> &[u8] {
        &self.bytes
    }

    /// Whether `id` starts with this prefix (checks an odd trailing digit too).
    pub fn matches(&self, id: &[u8; 32]) -> bool {
        to_hex(id).starts_with(&self.text)
    }

    /// The prefix as lower-case hex.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

macro_rules! hash_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
        pub struct $name(pub [u8; 32]);

        /// Hashed by its first 8 bytes alone: an id is a BLAKE3 output,
        /// as evenly spread in its first 8 bytes as in all 32, and every
        /// map that holds ids is seeded (foldhash's per-process seed,
        /// SipHash's random keys), so nobody can aim ids at one bucket;
        /// ids equal in their first 8 bytes would need 2^64 tries to find.
        /// One `u64` to mix instead of a length and 32 bytes: the views
        /// build and probe such maps for every comment of every capture.
        impl std::hash::Hash for $name {
            fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
                let mut first = [0u8; 8];
                first.copy_from_slice(&self.0[..8]);
                state.write_u64(u64::from_le_bytes(first));
            }
        }

        /// Hex in human-readable formats (JSON), raw bytes otherwise.
        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                if s.is_human_readable() {
                    s.serialize_str(&self.to_hex())
                } else {
                    self.0.serialize(s)
                }
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                if d.is_human_readable() {
                    let s = String::deserialize(d)?;
                    $name::from_hex(&s).ok_or_else(|| serde::de::Error::custom(format!("not a 64-digit hex id: {s:?}")))
                } else {
                    <[u8; 32]>::deserialize(d).map($name)
                }
            }
        }

        /// The raw 32 bytes, as the serde form above writes them in
        /// bincode, read in one piece (serde's path reads them one byte at
        /// a time).
        impl<C> bincode::Decode<C> for $name {
            fn decode<D: bincode::de::Decoder<Context = C>>(d: &mut D) -> Result<Self, bincode::error::DecodeError> {
                <[u8; 32] as bincode::Decode<C>>::decode(d).map($name)
            }
        }
        bincode::impl_borrow_decode!($name);

        /// The 32 bytes as the serde form above writes them in bincode,
        /// written in one piece.
        impl bincode::Encode for $name {
            fn encode<E: bincode::enc::Encoder>(&self, e: &mut E) -> Result<(), bincode::error::EncodeError> {
                bincode::Encode::encode(&self.0, e)
            }
        }

        impl $name {
            /// The raw 32 bytes.
            pub fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }
            /// Full lower-case hex (64 digits).
            pub fn to_hex(&self) -> String {
                to_hex(&self.0)
            }
            /// Parses 64 hex digits.
            pub fn from_hex(s: &str) -> Option<Self> {
                parse_hex32(s).map(Self)
            }
            /// The first 12 hex digits, for listings.
            pub fn short(&self) -> String {
                to_hex(&self.0[..6])
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.short())
            }
        }
    };
}

hash_id!(
    /// The id of an event: BLAKE3 of its canonical identity encoding
    /// (docs/format.md).
    EventId
);
/// A map keyed by event id, hashed with foldhash under a per-process
/// random seed rather than SipHash: ids are BLAKE3 outputs, so nobody can
/// aim them at one bucket of a seed they do not know, and the views build
/// and probe such maps for every comment of every capture (SipHash of a
/// 32-byte id was most of their cost).
pub type IdMap<V> = std::collections::HashMap<EventId, V, foldhash::fast::RandomState>;

/// A set of event ids, hashed as [`IdMap`] is.
pub type IdSet = std::collections::HashSet<EventId, foldhash::fast::RandomState>;

hash_id!(
    /// The id of a raw capture: BLAKE3 of the raw bytes exactly as read.
    BlobId
);
hash_id!(
    /// A chain head: `head_n = BLAKE3(head_(n-1) || entry_hash_n)`.
    ChainHash
);

impl ChainHash {
    /// `head_0`: 32 zero bytes, the head of an empty archive.
    pub const GENESIS: ChainHash = ChainHash([0u8; 32]);
}

/// A position in the log. Seqs are dense and start at 1; seq 0 names the
/// empty archive (no entry), so `head` of an empty archive is `0 000…0`.
#[derive(
    Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Default, Serialize, Deserialize, Decode, Encode,
)]
pub struct Seq(pub u64);

impl Seq {
    /// The seq after this one.
    pub fn next(self) -> Seq {
        Seq(self.0 + 1)
    }
    /// Big-endian bytes, so that byte order equals numeric order in sled.
    pub fn to_be_bytes(self) -> [u8; 8] {
        self.0.to_be_bytes()
    }
}

impl fmt::Display for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// What identifies an article across versions and captures: its canonical URL
/// when one is known, else `title:DATE:NORMALIZED TITLE` (see
/// [`crate::model::normalize`]).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Default, Serialize, Deserialize, Encode)]
pub struct ArticleKey(pub String);

/// The string as bincode writes it, read through `decode_text`.
impl<C> bincode::Decode<C> for ArticleKey {
    fn decode<D: bincode::de::Decoder<Context = C>>(d: &mut D) -> Result<Self, bincode::error::DecodeError> {
        decode_text(d).map(ArticleKey)
    }
}
bincode::impl_borrow_decode!(ArticleKey);

/// A `String` as bincode writes it (its length, then its bytes), read as
/// bincode's own `Decode` reads it, without its zeroed buffer: from a
/// slice (how cairn decodes) the bytes are checked in place and copied
/// once. (bincode's allocates the string zeroed and copies into it; the
/// zeroing, through `calloc`, was 7% of the log reader's time in a replay
/// at 1M.)
pub(crate) fn decode_text<D: bincode::de::Decoder>(d: &mut D) -> Result<String, bincode::error::DecodeError> {
    use bincode::de::read::Reader;
    let len = u64::decode(d)?;
    let len = usize::try_from(len).map_err(|_| bincode::error::DecodeError::OutsideUsizeRange(len))?;
    d.claim_container_read::<u8>(len)?;
    let Some(bytes) = d.reader().peek_read(len) else {
        // Not a slice: read as bincode does.
        let mut bytes = vec![0u8; len];
        d.reader().read(&mut bytes)?;
        return String::from_utf8(bytes)
            .map_err(|e| bincode::error::DecodeError::Utf8 { inner: e.utf8_error() });
    };
    let text =
        std::str::from_utf8(bytes).map_err(|inner| bincode::error::DecodeError::Utf8 { inner })?.to_owned();
    d.reader().consume(len);
    Ok(text)
}

/// An `Option<String>` as bincode writes it (a byte, 0 or 1, then the
/// string), read through `decode_text`.
pub(crate) fn decode_opt_text<D: bincode::de::Decoder>(
    d: &mut D,
) -> Result<Option<String>, bincode::error::DecodeError> {
    match u8::decode(d)? {
        0 => Ok(None),
        1 => decode_text(d).map(Some),
        found => Err(bincode::error::DecodeError::UnexpectedVariant {
            type_name: "Option<String>",
            allowed: &bincode::error::AllowedEnumVariants::Range { min: 0, max: 1 },
            found: u32::from(found),
        }),
    }
}

impl ArticleKey {
    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ArticleKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let id = EventId([0xab; 32]);
        assert_eq!(EventId::from_hex(&id.to_hex()), Some(id));
        assert_eq!(id.short(), "abababababab");
        assert!(EventId::from_hex("zz").is_none());
    }

    #[test]
    fn prefixes() {
        let p = HexPrefix::parse("AB1").unwrap();
        assert_eq!(p.byte_prefix(), &[0xab]);
        let mut id = [0u8; 32];
        id[0] = 0xab;
        id[1] = 0x1f;
        assert!(p.matches(&id));
        id[1] = 0x2f;
        assert!(!p.matches(&id));
        assert!(HexPrefix::parse("").is_none());
        assert!(HexPrefix::parse("xyz").is_none());
        assert!(HexPrefix::parse(&"a".repeat(65)).is_none());
    }
}
