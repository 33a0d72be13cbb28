//! Values sealed at rest with AES-256-GCM under a sub-key of the pepper:
//! signing keys and TOTP secrets. A random nonce per value; what the value
//! belongs to (a kid, a factor id) is bound as associated data, so that a
//! sealed value copied onto another row does not open.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

use crate::auth::secrets::Pepper;
use crate::error::{Error, Result};

/// The key for `purpose`: HKDF of the pepper.
pub fn key_for(pepper: &Pepper, purpose: &str) -> Result<LessSafeKey> {
    aes_key(&pepper.derive_key(purpose).map_err(Error::internal)?)
}

pub fn aes_key(key: &[u8; 32]) -> Result<LessSafeKey> {
    UnboundKey::new(&AES_256_GCM, key)
        .map(LessSafeKey::new)
        .map_err(|_| Error::internal("AES key setup"))
}

/// base64url(nonce ‖ ciphertext ‖ tag).
pub fn seal(key: &LessSafeKey, aad: &[u8], plaintext: &[u8]) -> Result<String> {
    let mut nonce = [0u8; NONCE_LEN];
    SystemRandom::new()
        .fill(&mut nonce)
        .map_err(|_| Error::internal("random nonce"))?;
    let mut buf = plaintext.to_vec();
    key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), &mut buf)
        .map_err(|_| Error::internal("sealing"))?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&buf);
    Ok(URL_SAFE_NO_PAD.encode(out))
}

/// Open `sealed` with the first of `keys` that opens it.
pub fn open(keys: &[LessSafeKey], aad: &[u8], sealed: &str, what: &str) -> Result<Vec<u8>> {
    let raw = URL_SAFE_NO_PAD
        .decode(sealed)
        .map_err(|_| Error::internal(format!("a stored {what} is not base64url")))?;
    if raw.len() < NONCE_LEN {
        return Err(Error::internal(format!("a stored {what} is truncated")));
    }
    let (nonce, ciphertext) = raw.split_at(NONCE_LEN);
    let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| Error::internal("bad nonce"))?;
    for key in keys {
        let mut buf = ciphertext.to_vec();
        if let Ok(plain) = key.open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(aad), &mut buf) {
            return Ok(plain.to_vec());
        }
    }
    Err(Error::internal(format!(
        "cannot decrypt a stored {what}: wrong pepper?"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_value_opens_only_with_its_key_and_its_owner() {
        let a = aes_key(&[1; 32]).unwrap();
        let b = aes_key(&[2; 32]).unwrap();
        let sealed = seal(&a, b"factor-1", b"secret").unwrap();
        assert_eq!(open(&[a], b"factor-1", &sealed, "x").unwrap(), b"secret");
        let a = aes_key(&[1; 32]).unwrap();
        assert!(open(&[b], b"factor-1", &sealed, "x").is_err());
        assert!(open(&[a], b"factor-2", &sealed, "x").is_err());
    }
}
