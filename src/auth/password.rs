//! Human passwords: argon2id with the OWASP parameters, stored as PHC strings.
//!
//! Hashing and verification are CPU-bound (tens of milliseconds); callers run
//! them on the bounded argon2 pool (`crate::blocking`), never on an async worker.

use std::sync::OnceLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use super::secrets::SecretString;

/// OWASP Password Storage Cheat Sheet: argon2id, m = 19 MiB, t = 2, p = 1.
pub const ARGON2_M_COST_KIB: u32 = 19 * 1024;
pub const ARGON2_T_COST: u32 = 2;
pub const ARGON2_P_COST: u32 = 1;

/// Longest password accepted, to bound hashing work on hostile input.
pub const MAX_PASSWORD_BYTES: usize = 1024;
pub const MIN_PASSWORD_CHARS: usize = 8;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PasswordError {
    #[error("password must be at least {MIN_PASSWORD_CHARS} characters")]
    TooShort,
    #[error("password must be at most {MAX_PASSWORD_BYTES} bytes")]
    TooLong,
    #[error("password hashing failed")]
    Hash,
}

fn argon2() -> Result<Argon2<'static>, PasswordError> {
    let params = Params::new(ARGON2_M_COST_KIB, ARGON2_T_COST, ARGON2_P_COST, None).map_err(|_| PasswordError::Hash)?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

pub fn check_policy(password: &SecretString) -> Result<(), PasswordError> {
    let p = password.expose();
    if p.len() > MAX_PASSWORD_BYTES {
        return Err(PasswordError::TooLong);
    }
    if p.chars().count() < MIN_PASSWORD_CHARS {
        return Err(PasswordError::TooShort);
    }
    Ok(())
}

/// Hash a password into a PHC string (`$argon2id$v=19$m=19456,t=2,p=1$...`).
pub fn hash_password(password: &SecretString) -> Result<String, PasswordError> {
    check_policy(password)?;
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    argon2()?
        .hash_password(password.expose().as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|_| PasswordError::Hash)
}

/// Verify a password against a stored PHC string. A malformed PHC string or an
/// oversized password is a mismatch, never an error that tells them apart.
pub fn verify_password(password: &SecretString, phc: &str) -> bool {
    if password.expose().len() > MAX_PASSWORD_BYTES {
        return false;
    }
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let Ok(a) = argon2() else { return false };
    a.verify_password(password.expose().as_bytes(), &parsed).is_ok()
}

/// Spend the same work as a real verification when there is no user, so that
/// an unknown name and a wrong password take similar time.
pub fn dummy_verify(password: &SecretString) {
    static DUMMY: OnceLock<Option<String>> = OnceLock::new();
    let phc = DUMMY.get_or_init(|| hash_password(&SecretString::new("dummy-password-for-timing")).ok());
    if let Some(phc) = phc {
        let _ = verify_password(password, phc);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_with_owasp_parameters_and_verifies() {
        let pw = SecretString::new("correct horse battery");
        let phc = hash_password(&pw).unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify_password(&pw, &phc));
        assert!(!verify_password(&SecretString::new("correct horse battery!"), &phc));
        assert!(!verify_password(&pw, "not-a-phc-string"));
    }

    #[test]
    fn policy_bounds_length() {
        assert_eq!(check_policy(&SecretString::new("short")), Err(PasswordError::TooShort));
        assert_eq!(
            check_policy(&SecretString::new("x".repeat(MAX_PASSWORD_BYTES + 1))),
            Err(PasswordError::TooLong)
        );
        assert!(check_policy(&SecretString::new("long enough")).is_ok());
    }
}
