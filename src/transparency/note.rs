//! Ed25519 keys, signed notes and checkpoints, as C2SP specifies them
//! (c2sp.org/signed-note, c2sp.org/tlog-checkpoint) and Go's
//! `golang.org/x/mod/sumdb/note` implements them:
//!
//! - a verifier key is `NAME+HASH+BASE64(0x01 || public key)`, a signer key
//!   `PRIVATE+KEY+NAME+HASH+BASE64(0x01 || seed)`, where `HASH` is the first
//!   four bytes (8 lowercase hex digits) of
//!   `SHA-256(NAME || "\n" || 0x01 || public key)`;
//! - a signed note is its text (UTF-8, ending in a newline, no control
//!   characters but newlines), a blank line, and one line per signature:
//!   `— NAME BASE64(key hash (4 bytes) || Ed25519 signature of the text)`;
//! - a checkpoint is a note whose text is the origin line, the tree size
//!   in decimal and the tree hash in base64, each ending in a newline,
//!   then optional extension lines.

use super::merkle::Hash;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

/// The algorithm byte of Ed25519 keys in notes.
const ALG_ED25519: u8 = 1;
/// The start of a signature line (an em dash and a space).
const SIG_PREFIX: &str = "\u{2014} ";
/// Go's note.Open reads at most this many signature lines.
const MAX_SIGNATURES: usize = 100;

/// Whether `name` can name a key: not empty, no whitespace, no `+` (the
/// signed-note rules), and no control character (a key's name is the
/// default origin of the checkpoints it signs, one line of text: a name
/// with one made a key no checkpoint could use).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(|c| c.is_whitespace() || c == '+' || c.is_control())
}

fn key_hash(name: &str, public: &[u8; 32]) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([ALG_ED25519]);
    h.update(public);
    let d = h.finalize();
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

/// A key that verifies notes: a name and an Ed25519 public key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verifier {
    /// The key's name.
    pub name: String,
    /// The key hash (the first four bytes of the SHA-256 above).
    pub hash: u32,
    key: VerifyingKey,
}

impl Verifier {
    /// Parses `NAME+HASH+BASE64`. The error says what is wrong.
    pub fn parse(text: &str) -> Result<Verifier, String> {
        if text.trim().starts_with("PRIVATE+KEY+") {
            return Err(
                "this is a signer key (PRIVATE+KEY+...), which must stay secret; give its verifier key \
                        (NAME+HASH+KEY, what `cairn key verifier FILE` prints)"
                    .into(),
            );
        }
        let (name, hash, public) = parse_key_text(text, "a verifier key is NAME+HASH+KEY")?;
        if key_hash(name, &public) != hash {
            return Err("the key hash does not match the name and key".into());
        }
        let key = VerifyingKey::from_bytes(&public).map_err(|_| "not an Ed25519 public key".to_string())?;
        Ok(Verifier { name: name.to_string(), hash, key })
    }

    /// The key as text: `NAME+HASH+BASE64`.
    pub fn text(&self) -> String {
        let mut bytes = vec![ALG_ED25519];
        bytes.extend_from_slice(self.key.as_bytes());
        format!("{}+{:08x}+{}", self.name, self.hash, B64.encode(bytes))
    }

    fn verifies(&self, msg: &[u8], sig: &[u8]) -> bool {
        let Ok(sig) = ed25519_dalek::Signature::from_slice(sig) else { return false };
        self.key.verify_strict(msg, &sig).is_ok()
    }
}

/// Splits `NAME+HASH+BASE64(0x01 || 32 bytes)` (a verifier key, or a
/// signer key after its `PRIVATE+KEY+`): the name, the key hash and the 32
/// key bytes, checked in form only. `usage` says what the text should be.
fn parse_key_text<'a>(text: &'a str, usage: &str) -> Result<(&'a str, u32, [u8; 32]), String> {
    let mut parts = text.trim_end_matches(['\n', '\r']).splitn(3, '+');
    let (Some(name), Some(hash), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(usage.to_string());
    };
    if !valid_name(name) {
        return Err(format!("{name:?} is not a key name (no spaces, '+' or control characters)"));
    }
    let hash = parse_key_hash(hash)?;
    let bytes = B64.decode(key).map_err(|_| "the key is not base64".to_string())?;
    let key = match bytes.split_first() {
        Some((&ALG_ED25519, rest)) => {
            rest.try_into().map_err(|_| "an Ed25519 key is 32 bytes".to_string())?
        }
        Some((alg, _)) => return Err(format!("unknown key algorithm {alg} (cairn knows Ed25519, 1)")),
        None => return Err("the key is empty".into()),
    };
    Ok((name, hash, key))
}

fn parse_key_hash(hex: &str) -> Result<u32, String> {
    if hex.len() != 8 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("{hex:?} is not a key hash (8 hex digits)"));
    }
    u32::from_str_radix(hex, 16).map_err(|_| format!("{hex:?} is not a key hash"))
}

/// A key that signs notes.
pub struct Signer {
    /// The key's name.
    pub name: String,
    /// The key hash.
    pub hash: u32,
    key: SigningKey,
}

impl Signer {
    /// A new key named `name`, from the operating system's randomness.
    pub fn generate(name: &str) -> Result<Signer, String> {
        if !valid_name(name) {
            return Err(format!("{name:?} is not a key name (no spaces, '+' or control characters)"));
        }
        let mut seed = [0u8; 32];
        getrandom::getrandom(&mut seed).map_err(|e| format!("no randomness for a key: {e}"))?;
        Ok(Signer::from_seed(name, seed))
    }

    fn from_seed(name: &str, seed: [u8; 32]) -> Signer {
        let key = SigningKey::from_bytes(&seed);
        let hash = key_hash(name, key.verifying_key().as_bytes());
        Signer { name: name.to_string(), hash, key }
    }

    /// Parses `PRIVATE+KEY+NAME+HASH+BASE64`. The error says what is wrong
    /// (never the key).
    pub fn parse(text: &str) -> Result<Signer, String> {
        let Some(rest) = text.strip_prefix("PRIVATE+KEY+") else {
            return Err("a signer key starts with PRIVATE+KEY+".into());
        };
        let (name, hash, seed) = parse_key_text(rest, "a signer key is PRIVATE+KEY+NAME+HASH+KEY")?;
        let signer = Signer::from_seed(name, seed);
        if signer.hash != hash {
            return Err("the key hash does not match the name and key".into());
        }
        Ok(signer)
    }

    /// The key as text: `PRIVATE+KEY+NAME+HASH+BASE64`.
    pub fn text(&self) -> String {
        let mut bytes = vec![ALG_ED25519];
        bytes.extend_from_slice(self.key.as_bytes());
        format!("PRIVATE+KEY+{}+{:08x}+{}", self.name, self.hash, B64.encode(bytes))
    }

    /// The matching verifier key.
    pub fn verifier(&self) -> Verifier {
        Verifier { name: self.name.clone(), hash: self.hash, key: self.key.verifying_key() }
    }

    /// `text` signed: the text, a blank line and the signature line.
    pub fn sign(&self, text: &str) -> Result<String, String> {
        check_text(text)?;
        let mut sig = self.hash.to_be_bytes().to_vec();
        sig.extend_from_slice(&self.key.sign(text.as_bytes()).to_bytes());
        Ok(format!("{text}\n{SIG_PREFIX}{} {}\n", self.name, B64.encode(sig)))
    }
}

/// A note holds no control characters but newlines.
fn no_control_characters(text: &str) -> Result<(), String> {
    match text.chars().find(|&c| c < ' ' && c != '\n') {
        Some(c) => Err(format!("the note contains the control character {c:?}")),
        None => Ok(()),
    }
}

/// A note's text must be UTF-8 with no control characters but newlines,
/// and end with a newline.
fn check_text(text: &str) -> Result<(), String> {
    no_control_characters(text)?;
    if !text.ends_with('\n') {
        return Err("the note's text does not end with a newline".into());
    }
    Ok(())
}

/// Opens a signed note: checks its form and that `key` signed it, and
/// returns its text. Signature lines by other keys are allowed and left
/// unchecked (as Go's `note.Open` does); a line that claims `key`'s name and
/// hash and does not verify refuses the note.
pub fn open<'a>(msg: &'a [u8], key: &Verifier) -> Result<&'a str, String> {
    let msg = std::str::from_utf8(msg).map_err(|_| "the note is not UTF-8".to_string())?;
    no_control_characters(msg)?;
    let split = msg.rfind("\n\n").ok_or("the note has no signature block (a blank line, then signatures)")?;
    let (text, sigs) = (&msg[..split + 1], &msg[split + 2..]);
    if sigs.is_empty() || !sigs.ends_with('\n') {
        return Err("the note's signature block does not end with a newline".into());
    }
    let mut verified = false;
    for (count, line) in sigs[..sigs.len() - 1].split('\n').enumerate() {
        if count >= MAX_SIGNATURES {
            return Err(format!("the note has more than {MAX_SIGNATURES} signature lines"));
        }
        let Some(line) = line.strip_prefix(SIG_PREFIX) else {
            return Err(format!("{line:?} is not a signature line (\u{2014} NAME SIGNATURE)"));
        };
        let (name, b64) = line.split_once(' ').unwrap_or((line, ""));
        let sig = B64.decode(b64).map_err(|_| format!("the signature of {name:?} is not base64"))?;
        if !valid_name(name) || b64.is_empty() || sig.len() < 5 {
            return Err(format!("{line:?} is not a signature line"));
        }
        let hash = u32::from_be_bytes([sig[0], sig[1], sig[2], sig[3]]);
        if name != key.name || hash != key.hash {
            continue;
        }
        if !key.verifies(text.as_bytes(), &sig[4..]) {
            return Err(format!("the signature of {name} does not verify: the note was changed, or signed by another key of that name"));
        }
        verified = true;
    }
    if !verified {
        return Err(format!(
            "the note has no signature by the key {}+{:08x} (its signature lines name other keys)",
            key.name, key.hash
        ));
    }
    Ok(text)
}

/// A checkpoint: the state of a log, as C2SP tlog-checkpoint writes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's origin line.
    pub origin: String,
    /// The tree size.
    pub size: u64,
    /// The tree hash.
    pub root: Hash,
}

impl Checkpoint {
    /// The checkpoint's text (the body of the note).
    pub fn text(&self) -> String {
        format!("{}\n{}\n{}\n", self.origin, self.size, B64.encode(self.root))
    }

    /// Parses a checkpoint's text (extension lines after the third are
    /// allowed and ignored). The error says what is wrong.
    pub fn parse(text: &str) -> Result<Checkpoint, String> {
        let mut lines = text.split('\n');
        let (Some(origin), Some(size), Some(root)) = (lines.next(), lines.next(), lines.next()) else {
            return Err("a checkpoint has an origin line, a tree size line and a root hash line".into());
        };
        if origin.is_empty() {
            return Err("the checkpoint's origin line is empty".into());
        }
        // What follows: extension lines, each non-empty (C2SP
        // tlog-checkpoint), then the empty piece after the last newline.
        let rest: Vec<&str> = lines.collect();
        let Some((last, extensions)) = rest.split_last() else {
            return Err("the checkpoint's root hash line does not end with a newline".into());
        };
        if !last.is_empty() {
            return Err("the checkpoint's last line does not end with a newline".into());
        }
        if extensions.iter().any(|l| l.is_empty()) {
            return Err(
                "the checkpoint has an empty extension line (extension lines must not be empty)".into()
            );
        }
        let size_ok = !size.is_empty()
            && size.bytes().all(|b| b.is_ascii_digit())
            && (size == "0" || !size.starts_with('0'));
        let size: u64 = match size_ok.then(|| size.parse().ok()).flatten() {
            Some(s) => s,
            None => return Err(format!("the checkpoint's tree size {size:?} is not a decimal number")),
        };
        let root: Hash = B64
            .decode(root)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| format!("the checkpoint's root hash {root:?} is not 32 bytes of base64"))?;
        Ok(Checkpoint { origin: origin.to_string(), size, root })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Go's note_test.go: the same key and note.
    const SKEY: &str = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
    const VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    const TEXT: &str = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
    const SIGNED: &str = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n\n\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";

    #[test]
    fn go_note_vectors() {
        let s = Signer::parse(SKEY).unwrap();
        assert_eq!(s.text(), SKEY);
        assert_eq!(s.verifier().text(), VKEY);
        assert_eq!(s.sign(TEXT).unwrap(), SIGNED);
        let v = Verifier::parse(VKEY).unwrap();
        assert_eq!(open(SIGNED.as_bytes(), &v).unwrap(), TEXT);
    }

    #[test]
    fn altered_notes_are_refused() {
        let v = Verifier::parse(VKEY).unwrap();
        let other = Signer::generate("PeterNeumann").unwrap();
        let cases = [
            SIGNED.replace("problem,", "problem;"),
            SIGNED.replace("\u{2014} PeterNeumann", "\u{2014} PaulNeumann"),
            format!("{SIGNED}junk\n"),
            format!("{SIGNED}junk"),
            SIGNED.trim_end().to_string(),
            SIGNED.replace("x08go", "x08gp"),
            other.sign(TEXT).unwrap(),
            TEXT.to_string(),
            SIGNED.replace("\u{2014} ", "- "),
            SIGNED.replace("is.\n", "is.\u{7}\n"),
        ];
        for c in &cases {
            assert!(open(c.as_bytes(), &v).is_err(), "accepted {c:?}");
        }
        // Another key's line beside ours is fine.
        let both = format!("{SIGNED}{}", other.sign(TEXT).unwrap().rsplit_once("\n\n").unwrap().1);
        assert_eq!(open(both.as_bytes(), &v).unwrap(), TEXT);
    }

    #[test]
    fn bad_keys_are_refused() {
        for k in [
            "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
            "PeterNeumann+c74f20a3+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
            "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10",
            "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
            "PeterNeumann+c74f20a3",
        ] {
            assert!(Verifier::parse(k).is_err(), "{k}");
        }
        assert!(Signer::parse(VKEY).is_err());
        let signer = Signer::generate("archive.example/news").unwrap();
        let why = Verifier::parse(&signer.text()).unwrap_err();
        assert!(why.contains("this is a signer key"), "{why}");
        assert!(Signer::generate("two words").is_err());
        // A control character: no checkpoint could take the name as its
        // origin.
        assert!(Signer::generate("a\u{1}b").is_err());
        assert!(Signer::generate("a\u{85}b").is_err());
        assert!(Signer::generate("archive.example/news").is_ok());
    }

    #[test]
    fn checkpoints_round_trip_and_bad_ones_are_refused() {
        let c = Checkpoint { origin: "example.org/cairn".into(), size: 12, root: [7; 32] };
        assert_eq!(Checkpoint::parse(&c.text()).unwrap(), c);
        assert_eq!(Checkpoint::parse(&format!("{}ext line\n", c.text())).unwrap(), c);
        for bad in [
            "example.org/cairn\n012\nBwcH\n",
            "example.org/cairn\n12\n",
            "\n12\nBwcH\n",
            "o\n-1\nBwcH\n",
            "o\n1\nBwcH",
            "example.org/cairn\n12\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\n\next\n",
            "example.org/cairn\n12\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\next\n\n",
        ] {
            assert!(Checkpoint::parse(bad).is_err(), "{bad:?}");
        }
        let good = format!("{}ext line\n", c.text());
        for bad in [good.replacen("ext line", "\next line", 1), format!("{good}\n")] {
            let why = Checkpoint::parse(&bad).unwrap_err();
            assert!(why.contains("empty extension line"), "{bad:?}: {why}");
        }
    }
}
