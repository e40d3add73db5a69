//! Virtual key format and hashing, and encryption of upstream secrets at rest.
//!
//! A virtual key is `ot-` + a 12-character base62 public id + a 40-character base62 secret part
//! (fixed lengths, so no separator). The public id is the lookup key and the visible prefix; the
//! ledger stores only the hex SHA-256 of the whole key and compares hashes in constant time.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use rand::Rng;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::LedgerError;

pub use crate::model::KEY_PREFIX;
pub const PUBLIC_ID_LEN: usize = 12;
pub const SECRET_PART_LEN: usize = 40;
pub const KEY_LEN: usize = KEY_PREFIX.len() + PUBLIC_ID_LEN + SECRET_PART_LEN;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

fn random_base62(len: usize) -> String {
    // ThreadRng is a CSPRNG reseeded from the OS; `random_range` is unbiased.
    let mut rng = rand::rng();
    (0..len)
        .map(|_| char::from(BASE62[rng.random_range(0..BASE62.len())]))
        .collect()
}

/// The prefix of every named admin token (`ota-` + public id + secret part, as keys).
pub const ADMIN_TOKEN_PREFIX: &str = "ota-";

/// A fresh admin token: (public id, full token).
pub fn generate_admin_token() -> (String, SecretString) {
    let public_id = random_base62(PUBLIC_ID_LEN);
    let secret = random_base62(SECRET_PART_LEN);
    let full = format!("{ADMIN_TOKEN_PREFIX}{public_id}{secret}");
    (public_id, SecretString::from(full))
}

/// The public id of a well-formed admin token, or `None`.
pub fn parse_admin_token_id(token: &str) -> Option<&str> {
    let rest = token.strip_prefix(ADMIN_TOKEN_PREFIX)?;
    if rest.len() != PUBLIC_ID_LEN + SECRET_PART_LEN
        || !rest.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        return None;
    }
    Some(&rest[..PUBLIC_ID_LEN])
}

/// A fresh key: (public id, full key).
pub fn generate_key() -> (String, SecretString) {
    let public_id = random_base62(PUBLIC_ID_LEN);
    let secret = random_base62(SECRET_PART_LEN);
    let full = format!("{KEY_PREFIX}{public_id}{secret}");
    (public_id, SecretString::from(full))
}

/// The public id of a well-formed key, or `None`.
pub fn parse_public_id(key: &str) -> Option<&str> {
    let rest = key.strip_prefix(KEY_PREFIX)?;
    if rest.len() != PUBLIC_ID_LEN + SECRET_PART_LEN
        || !rest.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        return None;
    }
    Some(&rest[..PUBLIC_ID_LEN])
}

/// Hex SHA-256 of a key.
/// OpenRouter's identity of one of its keys: its hash (SHA-256 of the secret, hex, as
/// OpenRouter and the simulator derive it) and its masked label (`sk-or-v1-abc...wxyz`).
pub fn openrouter_key_identity(secret: &SecretString) -> (String, String) {
    let s = secret.expose_secret();
    let hash = hex::encode(Sha256::digest(s.as_bytes()));
    let body = s.strip_prefix("sk-or-v1-").unwrap_or(s);
    let head: String = body.chars().take(3).collect();
    let tail: String = body
        .chars()
        .skip(body.chars().count().saturating_sub(4))
        .collect();
    (hash, format!("sk-or-v1-{head}...{tail}"))
}

pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// Constant-time comparison of two hex digests.
pub fn hashes_match(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// The AES-256-GCM key that encrypts upstream secrets at rest.
#[derive(Clone)]
pub struct SecretKey {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey([REDACTED])")
    }
}

const CIPHERTEXT_VERSION: &str = "v1:";

impl SecretKey {
    /// Parses base64 of exactly 32 bytes.
    pub fn from_base64(text: &str) -> Result<Self, LedgerError> {
        let bytes = B64
            .decode(text.trim())
            .map_err(|_| LedgerError::SecretKeyInvalid)?;
        Self::from_bytes(&bytes)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, LedgerError> {
        if bytes.len() != 32 {
            return Err(LedgerError::SecretKeyInvalid);
        }
        let cipher = Aes256Gcm::new_from_slice(bytes).map_err(|_| LedgerError::SecretKeyInvalid)?;
        Ok(SecretKey { cipher })
    }

    /// Reads [`crate::env::ORTEAM_SECRET_KEY`]; `None` when unset or empty.
    pub fn from_env() -> Result<Option<Self>, LedgerError> {
        match std::env::var(crate::env::ORTEAM_SECRET_KEY) {
            Ok(v) if !v.trim().is_empty() => Self::from_base64(&v).map(Some),
            _ => Ok(None),
        }
    }

    /// A random key, base64-encoded (for `orteam init` and tests).
    pub fn generate_base64() -> String {
        let mut bytes = [0u8; 32];
        rand::rng().fill(&mut bytes);
        B64.encode(bytes)
    }

    /// Encrypts `plaintext`, binding it to `context` (the row id) as associated data so a
    /// ciphertext copied to another row does not decrypt.
    pub fn encrypt(&self, context: &str, plaintext: &SecretString) -> Result<String, LedgerError> {
        let mut nonce = [0u8; 12];
        rand::rng().fill(&mut nonce);
        let ct = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext.expose_secret().as_bytes(),
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| LedgerError::Invalid("encryption failed".into()))?;
        let mut out = Vec::with_capacity(12 + ct.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Ok(format!("{CIPHERTEXT_VERSION}{}", B64.encode(out)))
    }

    pub fn decrypt(&self, context: &str, stored: &str) -> Result<SecretString, LedgerError> {
        let err = || LedgerError::Decrypt(context.to_owned());
        let body = stored.strip_prefix(CIPHERTEXT_VERSION).ok_or_else(err)?;
        let raw = B64.decode(body).map_err(|_| err())?;
        if raw.len() < 12 {
            return Err(err());
        }
        let (nonce, ct) = raw.split_at(12);
        let plain = self
            .cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| err())?;
        let text = String::from_utf8(plain).map_err(|_| err())?;
        Ok(SecretString::from(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_format_round_trips() {
        let (id, key) = generate_key();
        let k = key.expose_secret();
        assert_eq!(k.len(), KEY_LEN);
        assert_eq!(parse_public_id(k), Some(id.as_str()));
        assert!(parse_public_id("ot-short").is_none());
        assert!(parse_public_id(&k.replace("ot-", "xx-")).is_none());
        assert!(hashes_match(&hash_key(k), &hash_key(k)));
        assert!(!hashes_match(&hash_key(k), &hash_key("other")));
    }

    #[test]
    fn encryption_round_trips_and_binds_context() {
        let key = SecretKey::from_base64(&SecretKey::generate_base64()).unwrap();
        let secret = SecretString::from("sk-or-v1-abc".to_owned());
        let ct = key.encrypt("row1", &secret).unwrap();
        assert!(!ct.contains("sk-or"));
        assert_eq!(
            key.decrypt("row1", &ct).unwrap().expose_secret(),
            "sk-or-v1-abc"
        );
        assert!(key.decrypt("row2", &ct).is_err());
        assert!(SecretKey::from_base64("dG9vIHNob3J0").is_err());
    }
}
