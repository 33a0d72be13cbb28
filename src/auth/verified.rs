//! Clients whose secret was verified recently, kept in memory so that a
//! service asking for its next token needs no database round trip; and, by
//! the same rules, how each asserting client or trusted issuer is verified
//! (its keys), so that a client assertion is checked in memory.
//!
//! An entry is found only by the keyed hash of the exact `client_id` and
//! secret that were verified (never the secret itself), so a wrong guess
//! always misses and takes the throttled database path. Entries are dropped
//! when anything that could invalidate them changes:
//! - on this instance at once, after the change commits ([`VerifiedClients::invalidate`]);
//! - on every other instance (and after a CLI change) when its background
//!   tick sees the database's authentication generation move
//!   ([`crate::models::auth_state`]), so within one tick (1 s);
//! - and a secret's own `expires_at` is checked on every hit.
//!
//! The cache answers only while the generation was confirmed recently
//! ([`MAX_UNCONFIRMED_SECS`]): an instance cut off from the database (while
//! others still serve admins) stops answering from memory within seconds,
//! instead of issuing tokens to a service disabled meanwhile.
//!
//! An entry verified against the database while a change was committing is
//! tagged with the epoch it started in and refused if the cache was cleared
//! meanwhile, so a stale answer never outlives the clear.

use std::collections::HashMap;
use std::sync::RwLock;

use chrono::{DateTime, Utc};

use crate::auth::client::{Asserter, AuthenticatedClient};
use crate::auth::secrets::{Pepper, SecretString};

/// How long after the last confirmed generation the cache still answers.
/// The tick confirms it every second.
pub const MAX_UNCONFIRMED_SECS: i64 = 5;

/// Most entries kept; past it the cache starts over (one service has one
/// entry per secret in use, so this is far above any real fleet).
const MAX_ENTRIES: usize = 10_000;

#[derive(Default)]
struct State {
    /// The database generation the entries belong to.
    generation: Option<i64>,
    /// When the tick last read that generation.
    confirmed_at: Option<DateTime<Utc>>,
    /// Bumped on every clear; an insert carries the epoch it started in.
    epoch: u64,
    entries: HashMap<String, AuthenticatedClient>,
    /// By `iss`: how its assertions are verified.
    asserters: HashMap<String, Asserter>,
}

impl State {
    /// Was the generation confirmed recently enough to answer from memory?
    fn confirmed(&self, now: DateTime<Utc>) -> bool {
        self.confirmed_at
            .is_some_and(|t| now - t <= chrono::Duration::seconds(MAX_UNCONFIRMED_SECS))
    }
}

#[derive(Default)]
pub struct VerifiedClients {
    state: RwLock<State>,
}

/// The lookup key of a presented `client_id` and secret.
pub struct Key(String);

impl VerifiedClients {
    pub fn new() -> Self {
        Self::default()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The key of a client confirmed through its own assertions
    /// (`private_key_jwt`): every assertion is verified anyway, so the
    /// entry only saves reading the client's row and scopes.
    pub fn asserted_key(principal_id: &str) -> Key {
        Key(format!("asserted-client:{principal_id}"))
    }

    /// The key of the service a trusted issuer's subject stands for.
    pub fn federated_key(issuer_id: &str, subject: &str) -> Key {
        Key(format!("federated:{issuer_id}\0{subject}"))
    }

    pub fn key(pepper: &Pepper, client_id: &str, secret: &SecretString) -> Key {
        Key(pepper.mac_hex(format!("verified-client:{client_id}\0{}", secret.expose()).as_bytes()))
    }

    /// The entry for `key`, if it is there, its secret has not expired at
    /// `now`, and the generation was confirmed recently.
    pub fn get(&self, key: &Key, now: DateTime<Utc>) -> Option<AuthenticatedClient> {
        let state = self.read();
        if !state.confirmed(now) {
            return None;
        }
        let hit = state.entries.get(&key.0)?;
        if hit.secret_expires_at.is_some_and(|exp| exp <= now) {
            return None;
        }
        Some(hit.clone())
    }

    /// The epoch to pass to [`insert`](Self::insert), read before the database is.
    pub fn epoch(&self) -> u64 {
        self.read().epoch
    }

    /// Keep a client verified against the database, unless the cache was
    /// cleared since `epoch` (the verification may have read a state that a
    /// committed change has since replaced).
    pub fn insert(&self, key: Key, verified: AuthenticatedClient, epoch: u64) {
        let mut state = self.write();
        if state.epoch != epoch {
            return;
        }
        if state.entries.len() >= MAX_ENTRIES {
            state.entries.clear();
        }
        state.entries.insert(key.0, verified);
    }

    /// How assertions from `iss` are verified, if known and the generation
    /// was confirmed recently.
    pub fn asserter(&self, iss: &str, now: DateTime<Utc>) -> Option<Asserter> {
        let state = self.read();
        if !state.confirmed(now) {
            return None;
        }
        state.asserters.get(iss).cloned()
    }

    /// Keep how `iss` is verified, read from the database, unless the cache
    /// was cleared since `epoch`.
    pub fn insert_asserter(&self, iss: String, asserter: Asserter, epoch: u64) {
        let mut state = self.write();
        if state.epoch != epoch {
            return;
        }
        if state.asserters.len() >= MAX_ENTRIES {
            state.asserters.clear();
        }
        state.asserters.insert(iss, asserter);
    }

    /// Forget every entry: a change was committed on this instance.
    pub fn invalidate(&self) {
        let mut state = self.write();
        state.entries.clear();
        state.asserters.clear();
        state.epoch += 1;
    }

    /// The database's generation, read by the background tick at `now`: when
    /// it moved, forget every entry.
    pub fn observe(&self, generation: i64, now: DateTime<Utc>) {
        let mut state = self.write();
        state.confirmed_at = Some(now);
        if state.generation == Some(generation) {
            return;
        }
        state.generation = Some(generation);
        state.entries.clear();
        state.asserters.clear();
        state.epoch += 1;
    }

    pub fn len(&self) -> usize {
        self.read().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::principal::Principal;

    fn verified(expires_at: Option<chrono::DateTime<chrono::Utc>>) -> AuthenticatedClient {
        let t = chrono::DateTime::UNIX_EPOCH;
        AuthenticatedClient {
            principal: Principal {
                id: "id".into(),
                kind: crate::models::principal::PrincipalKind::Service,
                name: "billing".into(),
                display_name: None,
                email: None,
                status: crate::models::principal::PrincipalStatus::Active,
                created_at: t,
                updated_at: t,
                tokens_not_before: None,
            },
            exchange: None,
            secret_id: Some("s1".into()),
            secret_expires_at: expires_at,
            scopes: vec!["a".into()],
        }
    }

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    #[test]
    fn only_the_exact_secret_hits_and_clears_drop_everything() {
        let pepper = Pepper::from_bytes(b"0123456789abcdef0123456789abcdef").unwrap();
        let cache = VerifiedClients::new();
        let key = || VerifiedClients::key(&pepper, "billing", &SecretString::new("right"));
        cache.observe(7, now());
        cache.insert(key(), verified(None), cache.epoch());
        assert_eq!(cache.get(&key(), now()).unwrap().secret_id.as_deref(), Some("s1"));
        assert!(
            cache
                .get(
                    &VerifiedClients::key(&pepper, "billing", &SecretString::new("wrong")),
                    now()
                )
                .is_none()
        );
        // `billing` + `x\0y` is not `billing\0x` + `y`.
        assert!(
            cache
                .get(
                    &VerifiedClients::key(&pepper, "billing\0right", &SecretString::new("")),
                    now()
                )
                .is_none()
        );

        cache.observe(7, now());
        assert_eq!(cache.len(), 1, "same generation: kept");
        cache.observe(8, now());
        assert!(cache.get(&key(), now()).is_none(), "the generation moved");

        cache.insert(key(), verified(None), cache.epoch());
        cache.invalidate();
        assert!(cache.is_empty());
    }

    #[test]
    fn a_verification_that_straddles_a_clear_is_not_kept() {
        let pepper = Pepper::from_bytes(b"0123456789abcdef0123456789abcdef").unwrap();
        let cache = VerifiedClients::new();
        let key = || VerifiedClients::key(&pepper, "billing", &SecretString::new("right"));
        let epoch = cache.epoch();
        cache.invalidate(); // a change committed while the database was read
        cache.insert(key(), verified(None), epoch);
        assert!(cache.is_empty());
    }

    #[test]
    fn an_expired_secret_misses() {
        let pepper = Pepper::from_bytes(b"0123456789abcdef0123456789abcdef").unwrap();
        let cache = VerifiedClients::new();
        cache.observe(1, now());
        let key = || VerifiedClients::key(&pepper, "billing", &SecretString::new("right"));
        let exp = now() + chrono::Duration::seconds(3);
        cache.insert(key(), verified(Some(exp)), cache.epoch());
        assert!(cache.get(&key(), now()).is_some());
        assert!(cache.get(&key(), now() + chrono::Duration::seconds(3)).is_none());
    }

    /// Cut off from the database, an instance stops answering from memory.
    #[test]
    fn without_a_recent_confirmation_nothing_hits() {
        let pepper = Pepper::from_bytes(b"0123456789abcdef0123456789abcdef").unwrap();
        let cache = VerifiedClients::new();
        let key = || VerifiedClients::key(&pepper, "billing", &SecretString::new("right"));
        cache.insert(key(), verified(None), cache.epoch());
        assert!(cache.get(&key(), now()).is_none(), "never confirmed");
        cache.observe(1, now()); // the first generation seen clears the cache
        cache.insert(key(), verified(None), cache.epoch());
        let later = |s| now() + chrono::Duration::seconds(s);
        assert!(cache.get(&key(), later(MAX_UNCONFIRMED_SECS)).is_some());
        assert!(cache.get(&key(), later(MAX_UNCONFIRMED_SECS + 1)).is_none());
        cache.observe(1, later(MAX_UNCONFIRMED_SECS + 1));
        assert!(
            cache.get(&key(), later(MAX_UNCONFIRMED_SECS + 1)).is_some(),
            "confirmed again"
        );
    }
}
