//! Time-based one-time passwords (RFC 6238) with `totp-rs`: six digits,
//! SHA-1, 30-second steps, as every authenticator app computes them. A code
//! is accepted for its own step or one step either side (§5.2), and the
//! caller makes sure each step is accepted only once.

use totp_rs::{Algorithm, Secret, TOTP};

use crate::auth::secrets::constant_time_eq;

/// Seconds per time step (§4.1 `X`).
pub const STEP_SECS: u64 = 30;
/// Digits per code.
pub const DIGITS: usize = 6;
/// Bytes of a new secret: 160 bits, the length RFC 4226 §4 recommends.
pub const SECRET_BYTES: usize = 20;

fn totp(secret: &[u8], issuer: Option<String>, account: String) -> Option<TOTP> {
    TOTP::new(Algorithm::SHA1, DIGITS, 1, STEP_SECS, secret.to_vec(), issuer, account).ok()
}

/// The secret as base32 (RFC 4648, no padding), as authenticator apps take it.
pub fn base32(secret: &[u8]) -> String {
    Secret::Raw(secret.to_vec()).to_encoded().to_string()
}

/// The `otpauth://totp/...` URI a QR code carries (Key Uri Format).
pub fn otpauth_uri(secret: &[u8], issuer: &str, account: &str) -> Option<String> {
    // totp-rs refuses ':' in either part: it separates them in the label.
    let clean = |s: &str| s.replace(':', " ");
    totp(secret, Some(clean(issuer)), clean(account)).map(|t| t.get_url())
}

/// The time step of `unix` seconds (§4.2 `T`).
pub fn step_of(unix: u64) -> u64 {
    unix / STEP_SECS
}

/// The step, among `now`'s and one either side, whose code is `code`.
pub fn matching_step(secret: &[u8], code: &str, unix_now: u64) -> Option<u64> {
    let code = code.trim();
    if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let t = totp(secret, None, String::new())?;
    let now = step_of(unix_now);
    let mut found = None;
    // Every candidate is computed and compared, found or not.
    for step in [now.saturating_sub(1), now, now + 1] {
        if constant_time_eq(&t.generate(step * STEP_SECS), code) && found.is_none() {
            found = Some(step);
        }
    }
    found
}

/// The bytes of a base32 secret, as [`base32`] shows it.
pub fn from_base32(encoded: &str) -> Option<Vec<u8>> {
    Secret::Encoded(encoded.to_string()).to_bytes().ok()
}

/// The code of `secret` at `unix` (for tests and the documentation's walkthrough).
pub fn code_at(secret: &[u8], unix: u64) -> Option<String> {
    totp(secret, None, String::new()).map(|t| t.generate(unix))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B: eight digits, the three hash functions, each with
    /// its own seed (the ASCII digits repeated to the hash's length).
    #[test]
    fn rfc_6238_appendix_b_vectors() {
        let seed20 = b"12345678901234567890".to_vec();
        let seed32 = b"12345678901234567890123456789012".to_vec();
        let seed64 = b"1234567890123456789012345678901234567890123456789012345678901234".to_vec();
        let vectors: [(u64, &str, &str, &str); 6] = [
            (59, "94287082", "46119246", "90693936"),
            (1111111109, "07081804", "68084774", "25091201"),
            (1111111111, "14050471", "67062674", "99943326"),
            (1234567890, "89005924", "91819424", "93441116"),
            (2000000000, "69279037", "90698825", "38618901"),
            (20000000000, "65353130", "77737706", "47863826"),
        ];
        let make = |alg, seed: &Vec<u8>| TOTP::new_unchecked(alg, 8, 1, 30, seed.clone(), None, String::new());
        for (time, sha1, sha256, sha512) in vectors {
            assert_eq!(make(Algorithm::SHA1, &seed20).generate(time), sha1, "SHA1 at {time}");
            assert_eq!(
                make(Algorithm::SHA256, &seed32).generate(time),
                sha256,
                "SHA256 at {time}"
            );
            assert_eq!(
                make(Algorithm::SHA512, &seed64).generate(time),
                sha512,
                "SHA512 at {time}"
            );
        }
    }

    #[test]
    fn a_code_is_accepted_one_step_either_side_and_no_further() {
        let secret = b"12345678901234567890";
        let now = 1_111_111_111;
        let at = |t: u64| code_at(secret, t).unwrap();
        assert_eq!(matching_step(secret, &at(now), now), Some(step_of(now)));
        assert_eq!(matching_step(secret, &at(now - 30), now), Some(step_of(now) - 1));
        assert_eq!(matching_step(secret, &at(now + 30), now), Some(step_of(now) + 1));
        assert_eq!(matching_step(secret, &at(now - 60), now), None, "two steps behind");
        assert_eq!(matching_step(secret, &at(now + 60), now), None, "two steps ahead");
        assert_eq!(matching_step(secret, "12345", now), None);
        assert_eq!(matching_step(secret, "abcdef", now), None);
        assert_eq!(
            matching_step(secret, &format!(" {} ", at(now)), now),
            Some(step_of(now))
        );
    }

    #[test]
    fn the_uri_names_issuer_and_account() {
        let uri = otpauth_uri(b"12345678901234567890", "Roster", "ad:min").unwrap();
        assert!(
            uri.starts_with("otpauth://totp/Roster:ad%20min?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"),
            "{uri}"
        );
        assert!(uri.contains("issuer=Roster"), "{uri}");
        assert_eq!(base32(b"12345678901234567890"), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
    }
}
