//! The storage envelope: one format-version byte, then bincode 2 (standard
//! configuration). Decoding checks the version and that every byte was
//! consumed. These bytes are for storage only: nothing hashes them.

use crate::error::{Error, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The current envelope version.
pub const ENVELOPE_VERSION: u8 = 1;

/// Encodes `value` inside the envelope.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    let mut out = vec![ENVELOPE_VERSION];
    let body = bincode::serde::encode_to_vec(value, bincode::config::standard())
        .map_err(|e| Error::Corrupt(format!("cannot encode value: {e}")))?;
    out.extend_from_slice(&body);
    Ok(out)
}

/// Decodes an enveloped value; `what` names it in errors (`segment at seq 12`).
pub fn decode<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T> {
    let (&version, body) =
        bytes.split_first().ok_or_else(|| Error::Corrupt(format!("{what}: empty value")))?;
    if version != ENVELOPE_VERSION {
        return Err(Error::Corrupt(format!(
            "{what}: envelope version {version}, expected {ENVELOPE_VERSION}"
        )));
    }
    let (value, used): (T, usize) = bincode::serde::decode_from_slice(body, bincode::config::standard())
        .map_err(|e| Error::Corrupt(format!("{what}: {e}")))?;
    if used != body.len() {
        return Err(Error::Corrupt(format!("{what}: {} trailing bytes after the value", body.len() - used)));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_strictness() {
        let v = (7u64, "x".to_string());
        let mut bytes = encode(&v).unwrap();
        assert_eq!(decode::<(u64, String)>(&bytes, "t").unwrap(), v);
        bytes.push(0);
        assert!(decode::<(u64, String)>(&bytes, "t").is_err());
        assert!(decode::<(u64, String)>(&[], "t").is_err());
        assert!(decode::<(u64, String)>(&[2, 7, 1, b'x'], "t").is_err());
    }
}
