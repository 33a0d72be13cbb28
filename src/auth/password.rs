//! Human passwords: argon2id with the OWASP parameters, stored as PHC strings.
//!
//! Hashing and verification are CPU-bound (tens of milliseconds); callers run
//! them on the bounded argon2 pool (`crate::blocking`), never on an async worker.

use std::sync::Mutex;

use argon2::password_hash::{PasswordHash, PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use subtle::ConstantTimeEq;

use super::secrets::SecretString;

/// The cost of argon2id for new hashes. Verification reads the cost from the
/// stored PHC string, so changing it never locks anyone out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Hashing {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Hashing {
    /// OWASP Password Storage Cheat Sheet: argon2id, m = 19 MiB, t = 2, p = 1.
    pub const OWASP: Hashing = Hashing {
        memory_kib: 19 * 1024,
        iterations: 2,
        parallelism: 1,
    };

    /// argon2's smallest cost: for tests only, where thousands of hashes are
    /// made and none protects anything.
    pub const CHEAPEST_FOR_TESTS: Hashing = Hashing {
        memory_kib: 8,
        iterations: 1,
        parallelism: 1,
    };

    fn argon2(&self) -> Result<Argon2<'static>, PasswordError> {
        let params =
            Params::new(self.memory_kib, self.iterations, self.parallelism, None).map_err(|_| PasswordError::Hash)?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }

    /// Hash a password into a PHC string (`$argon2id$v=19$m=19456,t=2,p=1$...`).
    pub fn hash(&self, password: &SecretString) -> Result<String, PasswordError> {
        check_policy(password)?;
        let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
        self.argon2()?
            .hash_password(password.expose().as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|_| PasswordError::Hash)
    }

    /// Spend the same work as a real verification when there is no user, so
    /// that an unknown name and a wrong password take similar time.
    pub fn dummy_verify(&self, password: &SecretString) {
        static DUMMIES: Mutex<Vec<(Hashing, String)>> = Mutex::new(Vec::new());
        let known = DUMMIES
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|(h, _)| h == self)
            .map(|(_, phc)| phc.clone());
        let phc = match known {
            Some(phc) => phc,
            None => match self.hash(&SecretString::new("dummy-password-for-timing")) {
                Ok(phc) => {
                    DUMMIES
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push((*self, phc.clone()));
                    phc
                }
                Err(_) => return,
            },
        };
        let _ = verify_password(password, &phc);
    }
}

impl Default for Hashing {
    fn default() -> Self {
        Self::OWASP
    }
}

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

/// Hash a password at the OWASP cost (the CLI's commands).
pub fn hash_password(password: &SecretString) -> Result<String, PasswordError> {
    Hashing::OWASP.hash(password)
}

/// Working memories of argon2 kept for the next verification: as many as run
/// at once (the argon2 pool runs one per core). Without them each login
/// allocated and freed 19 MiB on whichever blocking thread ran it, and the
/// allocator kept that memory per thread: the process grew by hundreds of
/// MiB under a stream of logins.
static MEMORY: Mutex<Vec<Vec<Block>>> = Mutex::new(Vec::new());
const MEMORIES_KEPT: usize = 16;

fn with_memory<T>(blocks: usize, f: impl FnOnce(&mut [Block]) -> T) -> T {
    let reuse = MEMORY
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .pop()
        .filter(|m| m.len() == blocks);
    let mut memory = reuse.unwrap_or_else(|| vec![Block::default(); blocks]);
    let out = f(&mut memory);
    let mut kept = MEMORY.lock().unwrap_or_else(|p| p.into_inner());
    if kept.len() < MEMORIES_KEPT {
        kept.push(memory);
    }
    out
}

/// Verify a password against a stored PHC string, in constant time, on a
/// reused working memory. A malformed PHC string or an oversized password is
/// a mismatch, never an error that tells them apart.
pub fn verify_password(password: &SecretString, phc: &str) -> bool {
    if password.expose().len() > MAX_PASSWORD_BYTES {
        return false;
    }
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    if parsed.algorithm != argon2::ARGON2ID_IDENT || parsed.version.is_some_and(|v| v != u32::from(Version::V0x13)) {
        return false;
    }
    let (Ok(params), Some(salt), Some(expected)) = (Params::try_from(&parsed), parsed.salt, parsed.hash) else {
        return false;
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let expected = expected.as_bytes();
    let mut out = vec![0u8; expected.len()];
    let blocks = params.block_count();
    let a = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    let hashed = with_memory(blocks, |memory| {
        a.hash_password_into_with_memory(password.expose().as_bytes(), salt, &mut out, memory)
    });
    hashed.is_ok() && bool::from(out.ct_eq(expected))
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
        // The working memory is reused: a second round gives the same answers.
        assert!(verify_password(&pw, &phc));
        assert!(!verify_password(&SecretString::new("wrong password"), &phc));
    }

    /// Hashes made by the argon2 crate's own hasher with other parameters
    /// verify too (their own memory size); other algorithms and tampered
    /// hashes do not.
    #[test]
    fn verifies_what_the_argon2_crate_made() {
        let pw = SecretString::new("correct horse battery");
        let salt = SaltString::encode_b64(b"sixteen byte salt").unwrap();
        let small = Params::new(64, 1, 1, None).unwrap();
        let id = Argon2::new(Algorithm::Argon2id, Version::V0x13, small.clone());
        let phc = id.hash_password(pw.expose().as_bytes(), &salt).unwrap().to_string();
        assert!(phc.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{phc}");
        assert!(verify_password(&pw, &phc));
        let tampered = format!("{}A", &phc[..phc.len() - 1]);
        assert_ne!(tampered, phc);
        assert!(!verify_password(&pw, &tampered));
        let i = Argon2::new(Algorithm::Argon2i, Version::V0x13, small);
        let phc_i = i.hash_password(pw.expose().as_bytes(), &salt).unwrap().to_string();
        assert!(!verify_password(&pw, &phc_i), "only argon2id is accepted");
    }

    /// The test cost makes real, verifiable argon2id hashes with its own
    /// parameters; they verify like the production ones.
    #[test]
    fn the_test_cost_is_a_real_argon2id_hash() {
        let pw = SecretString::new("correct horse battery");
        let phc = Hashing::CHEAPEST_FOR_TESTS.hash(&pw).unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=8,t=1,p=1$"), "{phc}");
        assert!(verify_password(&pw, &phc));
        assert!(!verify_password(&SecretString::new("another password"), &phc));
        Hashing::CHEAPEST_FOR_TESTS.dummy_verify(&pw);
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
