//! Encryption at rest of the webhook signing secrets the ingester registers itself (kept in
//! `ingester_webhook_endpoints.secret`): XChaCha20-Poly1305 with a random 192-bit nonce, the
//! row's identity (name, mode, endpoint id) as associated data so a sealed secret cannot be
//! moved to another row. Stored as `enc:v1:{hex nonce}:{hex ciphertext+tag}`. The key (32
//! bytes, 64 hex characters) comes from the environment or a file, never the database.

use chacha20poly1305::aead::{Aead, Generate, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

/// Marks a sealed value.
pub const PREFIX: &str = "enc:v1:";

/// The 32-byte key; `Debug` never shows it.
#[derive(Clone)]
pub struct SecretKey([u8; 32]);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(****)")
    }
}

/// Why a key or a sealed value is unusable (never containing either).
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error(
        "the webhook-secret encryption key must be 32 bytes written as 64 hex characters \
         (e.g. `openssl rand -hex 32`)"
    )]
    BadKey,
    #[error("the sealed value is malformed")]
    Malformed,
    #[error(
        "the sealed value does not open with the configured key (another key, or the row was \
         altered)"
    )]
    WrongKey,
    #[error("no randomness for a nonce: {0}")]
    Random(String),
}

impl SecretKey {
    pub fn from_hex(text: &str) -> Result<SecretKey, SealError> {
        let bytes = hex::decode(text.trim()).map_err(|_| SealError::BadKey)?;
        let arr: [u8; 32] = bytes.try_into().map_err(|_| SealError::BadKey)?;
        Ok(SecretKey(arr))
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(&self.0.into())
    }
}

pub fn is_sealed(stored: &str) -> bool {
    stored.starts_with(PREFIX)
}

/// Seals `plaintext`, bound to `aad`.
pub fn seal(key: &SecretKey, plaintext: &str, aad: &str) -> Result<String, SealError> {
    let nonce = XNonce::try_generate().map_err(|e| SealError::Random(e.to_string()))?;
    let ct = key
        .cipher()
        .encrypt(
            &nonce,
            Payload {
                msg: plaintext.as_bytes(),
                aad: aad.as_bytes(),
            },
        )
        .map_err(|_| SealError::Malformed)?;
    Ok(format!(
        "{PREFIX}{}:{}",
        hex::encode(nonce.as_slice()),
        hex::encode(ct)
    ))
}

/// Opens what [`seal`] made with the same key and `aad`.
pub fn open(key: &SecretKey, stored: &str, aad: &str) -> Result<String, SealError> {
    let rest = stored.strip_prefix(PREFIX).ok_or(SealError::Malformed)?;
    let (nonce, ct) = rest.split_once(':').ok_or(SealError::Malformed)?;
    let nonce = hex::decode(nonce).map_err(|_| SealError::Malformed)?;
    let nonce = XNonce::try_from(nonce.as_slice()).map_err(|_| SealError::Malformed)?;
    let ct = hex::decode(ct).map_err(|_| SealError::Malformed)?;
    let pt = key
        .cipher()
        .decrypt(
            &nonce,
            Payload {
                msg: &ct,
                aad: aad.as_bytes(),
            },
        )
        .map_err(|_| SealError::WrongKey)?;
    String::from_utf8(pt).map_err(|_| SealError::Malformed)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const K1: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    #[test]
    fn seals_opens_and_refuses_the_wrong_key_row_or_tampering() {
        let k = SecretKey::from_hex(K1).unwrap();
        let sealed = seal(&k, "whsec_abc", "row-1").unwrap();
        assert!(is_sealed(&sealed) && !sealed.contains("whsec_abc"));
        assert_ne!(
            sealed,
            seal(&k, "whsec_abc", "row-1").unwrap(),
            "fresh nonce"
        );
        assert_eq!(open(&k, &sealed, "row-1").unwrap(), "whsec_abc");
        assert!(matches!(
            open(&k, &sealed, "row-2"),
            Err(SealError::WrongKey)
        ));
        let other = SecretKey::from_hex(&K1.replace("00", "ff")).unwrap();
        assert!(matches!(
            open(&other, &sealed, "row-1"),
            Err(SealError::WrongKey)
        ));
        let mut tampered = sealed.clone();
        tampered.pop();
        tampered.push(if sealed.ends_with('0') { '1' } else { '0' });
        assert!(open(&k, &tampered, "row-1").is_err());
        assert!(matches!(
            SecretKey::from_hex("abcd"),
            Err(SealError::BadKey)
        ));
        assert_eq!(format!("{k:?}"), "SecretKey(****)");
    }
}
