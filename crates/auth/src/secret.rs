//! Random secrets: generated passwords, robot secrets, session ids.

const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

#[derive(Debug, thiserror::Error)]
#[error("the system's random source failed: {0}")]
pub struct RandomError(String);

impl RandomError {
    pub(crate) fn new(detail: String) -> RandomError {
        RandomError(detail)
    }
}

/// `len` characters drawn uniformly from `[A-Za-z0-9]` with the system's CSPRNG.
pub fn random_alphanumeric(len: usize) -> Result<String, RandomError> {
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        getrandom::fill(&mut buf).map_err(|e| RandomError(e.to_string()))?;
        // Rejection sampling keeps the distribution uniform: 248 = 4 × 62.
        for &b in buf.iter().filter(|&&b| b < 248) {
            if out.len() == len {
                break;
            }
            out.push(ALPHABET[(b % 62) as usize] as char);
        }
    }
    Ok(out)
}

/// A random password that satisfies Harbor's password policy.
pub fn random_password() -> Result<String, RandomError> {
    loop {
        let candidate = random_alphanumeric(24)?;
        if crate::password::check_policy(&candidate).is_ok() {
            return Ok(candidate);
        }
    }
}

/// Hashes a machine secret (a robot's): salted SHA-256, as `sha256$<salt>$<hash>`.
///
/// Not Argon2 on purpose: these secrets are long random strings, so a slow hash buys nothing
/// against guessing, and every registry request of a robot would pay for it.
pub fn hash_machine_secret(secret: &str) -> Result<String, RandomError> {
    let salt = random_alphanumeric(16)?;
    Ok(format!("sha256${salt}${}", salted_sha256(&salt, secret)))
}

fn salted_sha256(salt: &str, secret: &str) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::new().chain_update(salt.as_bytes()).chain_update(secret.as_bytes()).finalize();
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `secret` matches a hash from [`hash_machine_secret`], compared in constant time.
pub fn verify_machine_secret(secret: &str, stored: &str) -> bool {
    let mut parts = stored.splitn(3, '$');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("sha256"), Some(salt), Some(hash)) => {
            crate::password::constant_time_eq(salted_sha256(salt, secret).as_bytes(), hash.as_bytes())
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_strings() {
        let a = random_alphanumeric(32).unwrap();
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(a, random_alphanumeric(32).unwrap());
        let p = random_password().unwrap();
        assert!(crate::password::check_policy(&p).is_ok());
        let h = hash_machine_secret("S3cretValue").unwrap();
        assert!(h.starts_with("sha256$") && !h.contains("S3cretValue"));
        assert!(verify_machine_secret("S3cretValue", &h));
        assert!(!verify_machine_secret("S3cretValuf", &h));
        assert!(!verify_machine_secret("S3cretValue", "garbage"));
        assert_ne!(h, hash_machine_secret("S3cretValue").unwrap());
    }
}
