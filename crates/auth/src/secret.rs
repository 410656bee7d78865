//! Random secrets: generated passwords, robot secrets, session ids.

const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

#[derive(Debug, thiserror::Error)]
#[error("the system's random source failed: {0}")]
pub struct RandomError(String);

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
    }
}
