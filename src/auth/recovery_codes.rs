//! Recovery codes: ten single-use codes shown once, stored only as keyed
//! hashes, typed instead of a second factor. Each is 16 characters of an
//! alphabet without look-alikes (80 bits), shown in groups of four.

use ring::rand::{SecureRandom, SystemRandom};

use crate::auth::secrets::{Pepper, SecretString};
use crate::error::{Error, Result};

/// How many codes a person gets.
pub const COUNT: usize = 10;
const LEN: usize = 16;
/// No 0/O, 1/I/L, 2/Z, 5/S, 8/B, U/V: 32 letters and digits, 5 bits each.
const ALPHABET: &[u8; 32] = b"34679ACDEFGHJKMNPQRTWXYabcdefghk";

/// Fresh codes, formatted `xxxx-xxxx-xxxx-xxxx`.
pub fn generate() -> Result<Vec<SecretString>> {
    let rng = SystemRandom::new();
    (0..COUNT)
        .map(|_| {
            let mut raw = [0u8; LEN];
            rng.fill(&mut raw)
                .map_err(|_| Error::internal("the random generator failed"))?;
            let chars: Vec<char> = raw.iter().map(|b| ALPHABET[(*b & 31) as usize] as char).collect();
            let groups: Vec<String> = chars.chunks(4).map(|c| c.iter().collect()).collect();
            Ok(SecretString::new(groups.join("-")))
        })
        .collect()
}

/// A typed code as stored: separators and spaces dropped. Case matters
/// (the alphabet has both), so it is kept.
pub fn normalize(typed: &str) -> Option<String> {
    let s: String = typed.chars().filter(|c| !matches!(c, '-' | ' ')).collect();
    (s.len() == LEN && s.bytes().all(|b| ALPHABET.contains(&b))).then_some(s)
}

/// The keyed hash stored for a code.
pub fn hash(pepper: &Pepper, normalized: &str) -> String {
    pepper.mac_hex(format!("recovery-code:{normalized}").as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_grouped_and_survive_retyping() {
        let codes = generate().unwrap();
        assert_eq!(codes.len(), COUNT);
        let mut seen = std::collections::HashSet::new();
        for c in &codes {
            let c = c.expose();
            assert_eq!(c.len(), 19, "{c}");
            assert_eq!(c.matches('-').count(), 3);
            let n = normalize(c).unwrap();
            assert_eq!(normalize(&n.clone()).as_deref(), Some(n.as_str()));
            assert!(seen.insert(n));
        }
        assert_eq!(normalize("34679ACDEFGHJKMN").as_deref(), Some("34679ACDEFGHJKMN"));
        assert_eq!(
            normalize("0000-0000-0000-0000"),
            None,
            "look-alikes are not in the alphabet"
        );
        assert_eq!(normalize("34679"), None);
    }
}
