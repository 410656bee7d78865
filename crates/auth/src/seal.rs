//! Secrets kept at rest encrypted with the installation's secret key (Harbor's `secretkey`):
//! what Berth stores that would let someone act as the registry (the token signing key when it
//! lives in the database now; registry credentials and OIDC client secrets later). Every
//! replica must hold the same key, from a file (a mounted secret) or created once in the
//! database.
//!
//! ChaCha20-Poly1305 from `ring` (already in the build for TLS), a random 96-bit nonce per
//! value (the values sealed are few), the text form `sealed:v1:<hex of nonce and ciphertext>`.

use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use sha2::{Digest, Sha256};

const PREFIX: &str = "sealed:v1:";

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("not a sealed value")]
    NotSealed,
    #[error("the value cannot be opened with this secret key (another key sealed it, or it was altered)")]
    WrongKeyOrAltered,
    #[error("the system's random source failed: {0}")]
    Random(String),
    #[error("unusable key: {0}")]
    Key(String),
}

pub struct SecretKey {
    key: LessSafeKey,
}

impl SecretKey {
    /// A key from key material of any length (a file's contents): its SHA-256.
    pub fn from_material(material: &[u8]) -> Result<SecretKey, SealError> {
        if material.is_empty() {
            return Err(SealError::Key("the key material is empty".into()));
        }
        let digest = Sha256::digest(material);
        let unbound = UnboundKey::new(&CHACHA20_POLY1305, &digest).map_err(|e| SealError::Key(e.to_string()))?;
        Ok(SecretKey { key: LessSafeKey::new(unbound) })
    }

    /// New key material: 32 random bytes, as hex.
    pub fn generate_material() -> Result<String, SealError> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| SealError::Random(e.to_string()))?;
        Ok(hex::encode(bytes))
    }

    pub fn seal(&self, plaintext: &[u8]) -> Result<String, SealError> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|e| SealError::Random(e.to_string()))?;
        let mut buf = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::empty(), &mut buf)
            .map_err(|_| SealError::WrongKeyOrAltered)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        Ok(format!("{PREFIX}{}", hex::encode(out)))
    }

    pub fn open(&self, sealed: &str) -> Result<Vec<u8>, SealError> {
        let body = sealed.strip_prefix(PREFIX).ok_or(SealError::NotSealed)?;
        let bytes = hex::decode(body).map_err(|_| SealError::NotSealed)?;
        if bytes.len() < NONCE_LEN {
            return Err(SealError::NotSealed);
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::NotSealed)?;
        let mut buf = ciphertext.to_vec();
        let plain = self.key.open_in_place(nonce, Aad::empty(), &mut buf).map_err(|_| SealError::WrongKeyOrAltered)?;
        Ok(plain.to_vec())
    }

    pub fn is_sealed(value: &str) -> bool {
        value.starts_with(PREFIX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_with_the_same_key_only() {
        let key = SecretKey::from_material(b"the installation's key").unwrap();
        let a = key.seal(b"-----BEGIN PRIVATE KEY-----").unwrap();
        let b = key.seal(b"-----BEGIN PRIVATE KEY-----").unwrap();
        assert!(SecretKey::is_sealed(&a));
        assert_ne!(a, b, "a fresh nonce each time");
        assert!(!a.contains("BEGIN"));
        assert_eq!(key.open(&a).unwrap(), b"-----BEGIN PRIVATE KEY-----");
        assert_eq!(
            SecretKey::from_material(b"the installation's key").unwrap().open(&b).unwrap(),
            b"-----BEGIN PRIVATE KEY-----"
        );

        let other = SecretKey::from_material(b"another key").unwrap();
        assert!(SecretKey::from_material(b"").is_err());
        assert!(matches!(other.open(&a), Err(SealError::WrongKeyOrAltered)));
        let mut altered = a.clone();
        let last = altered.pop().unwrap();
        altered.push(if last == '0' { '1' } else { '0' });
        assert!(matches!(key.open(&altered), Err(SealError::WrongKeyOrAltered)));
        assert!(matches!(key.open("-----BEGIN"), Err(SealError::NotSealed)));
        assert!(matches!(key.open("sealed:v1:zz"), Err(SealError::NotSealed)));
        assert!(matches!(key.open("sealed:v1:00"), Err(SealError::NotSealed)));
        assert_eq!(SecretKey::generate_material().unwrap().len(), 64);
    }
}
