//! PKCE (RFC 7636): the code challenge and verifier, `S256` only.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;

/// §4.1: 43 to 128 characters of `[A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~"`.
pub fn valid_verifier(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// An `S256` challenge is the unpadded base64url of a SHA-256 digest: 43 characters.
pub fn valid_challenge(challenge: &str) -> bool {
    challenge.len() == 43 && B64.decode(challenge).is_ok_and(|d| d.len() == 32)
}

/// §4.2: `BASE64URL-ENCODE(SHA256(ASCII(code_verifier)))`.
pub fn s256(verifier: &str) -> String {
    B64.encode(ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes()))
}

/// §4.6: does `verifier` answer `challenge`? Compared in constant time.
pub fn verify(challenge: &str, verifier: &str) -> bool {
    valid_verifier(verifier) && crate::auth::secrets::constant_time_eq(&s256(verifier), challenge)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rfc_7636_appendix_b_example_verifies() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert_eq!(s256(verifier), challenge);
        assert!(valid_challenge(challenge));
        assert!(verify(challenge, verifier));
        assert!(!verify(challenge, "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXj"));
        assert!(!verify(challenge, "short"));
        assert!(!verify(challenge, &format!("{verifier}!")));
        assert!(!valid_challenge("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-c"));
        assert!(!valid_challenge("plain-text-challenge-that-is-43-characters-"));
        assert!(!valid_verifier(&"a".repeat(129)));
        assert!(valid_verifier(&"a".repeat(128)));
    }
}
