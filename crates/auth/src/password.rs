//! Password hashing (Argon2id, PHC strings) and Harbor's password policy.

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

/// Harbor's bounds on a local user's password length.
pub const MIN_LEN: usize = 8;
pub const MAX_LEN: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error(
        "the password must have {MIN_LEN} to {MAX_LEN} characters, with at least one uppercase letter, one lowercase letter and one digit"
    )]
    TooWeak,
    #[error("hashing failed: {0}")]
    Hashing(String),
}

/// Checks Harbor's password policy: 8 to 256 characters, at least one uppercase letter, one
/// lowercase letter and one digit.
pub fn check_policy(password: &str) -> Result<(), PasswordError> {
    let len = password.chars().count();
    let ok = (MIN_LEN..=MAX_LEN).contains(&len)
        && password.chars().any(|c| c.is_uppercase())
        && password.chars().any(|c| c.is_lowercase())
        && password.chars().any(|c| c.is_ascii_digit());
    if ok { Ok(()) } else { Err(PasswordError::TooWeak) }
}

/// Hashes a secret with Argon2id and a random salt, as a PHC string.
pub fn hash(secret: &str) -> Result<String, PasswordError> {
    Argon2::default()
        .hash_password(secret.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hashing(e.to_string()))
}

/// Whether `secret` matches a PHC string made by [`hash`]. The comparison inside is
/// constant-time; an unparsable stored hash never matches.
pub fn verify(secret: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default().verify_password(secret.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    }
}

/// Constant-time equality of two byte strings (for secrets compared other than by hash).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy() {
        for ok in ["Harbor12345", "aB345678", &format!("Aa1{}", "x".repeat(253))] {
            assert_eq!(check_policy(ok), Ok(()), "{ok}");
        }
        for bad in ["", "Ab1", "harbor12345", "HARBOR12345", "HarborHarbor", &format!("Aa1{}", "x".repeat(254))] {
            assert_eq!(check_policy(bad), Err(PasswordError::TooWeak), "{bad}");
        }
    }

    #[test]
    fn hash_and_verify() {
        let h = hash("Harbor12345").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(!h.contains("Harbor12345"));
        assert!(verify("Harbor12345", &h));
        assert!(!verify("Harbor12346", &h));
        assert!(!verify("Harbor12345", "not a phc string"));
        // Salted: the same password hashes differently each time.
        assert_ne!(h, hash("Harbor12345").unwrap());
    }

    #[test]
    fn constant_time_comparison() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
