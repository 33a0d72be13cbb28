//! JWK Sets fetched from `jwks_uri`s (a client's, or a trusted issuer's),
//! under the outbound fetch policy. A set is fetched when first needed,
//! refreshed by the background tick, and fetched again early only when an
//! assertion names a `kid` the set lacks (a rotation): at most once per
//! unknown `kid` per [`UNKNOWN_KID_REFETCH`], and at most once per URL per
//! [`MIN_REFETCH`] whatever the `kid`s, so made-up `kid`s cannot turn Roster
//! into a flood of fetches.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use jsonwebtoken::jwk::JwkSet;

use crate::outbound::fetch::Fetcher;

/// How long an unknown `kid` waits before it may cause another fetch.
pub const UNKNOWN_KID_REFETCH: Duration = Duration::seconds(60);
/// The shortest time between two fetches of one URL caused by unknown `kid`s.
pub const MIN_REFETCH: Duration = Duration::seconds(5);
/// How old a set gets before the background tick fetches it again.
pub const REFRESH_AFTER: Duration = Duration::minutes(5);
/// The largest JWK Set accepted, in bytes.
pub const MAX_JWKS_BYTES: usize = 64 * 1024;
/// Most URLs remembered; past it the least recently used one goes.
const MAX_URLS: usize = 1000;

#[derive(Default)]
struct Entry {
    set: Option<Arc<JwkSet>>,
    fetched_at: Option<DateTime<Utc>>,
    /// When a fetch was last started for this URL.
    attempted_at: Option<DateTime<Utc>>,
    /// When each unknown `kid` last caused a fetch.
    unknown_kids: HashMap<String, DateTime<Utc>>,
    used_at: Option<DateTime<Utc>>,
}

pub struct RemoteKeys {
    fetcher: Fetcher,
    entries: Mutex<HashMap<String, Entry>>,
    /// One fetch of a URL at a time: requests that need the same set wait
    /// for the fetch under way instead of starting their own.
    fetching: tokio::sync::Mutex<()>,
}

impl RemoteKeys {
    pub fn new(fetcher: Fetcher) -> Self {
        Self {
            fetcher,
            entries: Mutex::new(HashMap::new()),
            fetching: tokio::sync::Mutex::new(()),
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The set to verify an assertion with `kid` against: the one held,
    /// unless it lacks the `kid` (or none is held) and the rules above let
    /// Roster fetch it again. An error says why no set could be had.
    pub async fn keys(&self, url: &str, kid: Option<&str>, now: DateTime<Utc>) -> Result<Arc<JwkSet>, String> {
        if let Some(set) = self.usable(url, kid, now) {
            return Ok(set);
        }
        let _one_at_a_time = self.fetching.lock().await;
        // Fetched by the request this one waited for?
        if let Some(set) = self.usable(url, kid, now) {
            return Ok(set);
        }
        if !self.may_fetch(url, kid, now) {
            return self
                .held(url)
                .ok_or_else(|| "the key set could not be fetched recently".to_string());
        }
        match self.fetch(url).await {
            Ok(set) => {
                self.store(url, set.clone(), now);
                Ok(set)
            }
            Err(e) => self.held(url).ok_or(e),
        }
    }

    /// The held set, if it has `kid` (or any key, without one).
    fn usable(&self, url: &str, kid: Option<&str>, now: DateTime<Utc>) -> Option<Arc<JwkSet>> {
        let mut entries = self.entries();
        let entry = entries.get_mut(url)?;
        entry.used_at = Some(now);
        let set = entry.set.as_ref()?;
        crate::auth::assertion::has_key(set, kid).then(|| set.clone())
    }

    fn held(&self, url: &str) -> Option<Arc<JwkSet>> {
        self.entries().get(url).and_then(|e| e.set.clone())
    }

    /// Record a fetch attempt if the limits allow one now.
    fn may_fetch(&self, url: &str, kid: Option<&str>, now: DateTime<Utc>) -> bool {
        let mut entries = self.entries();
        if !entries.contains_key(url) && entries.len() >= MAX_URLS {
            let oldest = entries.iter().min_by_key(|(_, e)| e.used_at).map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                entries.remove(&oldest);
            }
        }
        let entry = entries.entry(url.to_string()).or_default();
        if entry.set.is_some() {
            if entry.attempted_at.is_some_and(|t| now - t < MIN_REFETCH) {
                return false;
            }
            if let Some(kid) = kid {
                if entry
                    .unknown_kids
                    .get(kid)
                    .is_some_and(|t| now - *t < UNKNOWN_KID_REFETCH)
                {
                    return false;
                }
                entry.unknown_kids.retain(|_, t| now - *t < UNKNOWN_KID_REFETCH);
                if entry.unknown_kids.len() < 100 {
                    entry.unknown_kids.insert(kid.to_string(), now);
                }
            }
        } else if entry.attempted_at.is_some_and(|t| now - t < MIN_REFETCH) {
            // Nothing held and the last try failed moments ago.
            return false;
        }
        entry.attempted_at = Some(now);
        true
    }

    fn store(&self, url: &str, set: Arc<JwkSet>, now: DateTime<Utc>) {
        let mut entries = self.entries();
        let entry = entries.entry(url.to_string()).or_default();
        entry.set = Some(set);
        entry.fetched_at = Some(now);
    }

    async fn fetch(&self, url: &str) -> Result<Arc<JwkSet>, String> {
        let bytes = self
            .fetcher
            .document(url, MAX_JWKS_BYTES)
            .await
            .map_err(|e| format!("fetching the key set failed: {e}"))?;
        let value: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|_| "the fetched key set is not JSON".to_string())?;
        let set = crate::auth::assertion::check_key_set(&value).map_err(|e| format!("the fetched key set: {e}"))?;
        Ok(Arc::new(set))
    }

    /// The background tick: fetch again every set older than
    /// [`REFRESH_AFTER`] that was used since it was fetched, so that a
    /// rotation is seen without any request paying for it. A failed fetch
    /// keeps the set held.
    pub async fn refresh_due(&self, now: DateTime<Utc>) {
        let due: Vec<String> = self
            .entries()
            .iter()
            .filter(|(_, e)| e.fetched_at.is_some_and(|t| now - t >= REFRESH_AFTER) && e.used_at >= e.fetched_at)
            .map(|(k, _)| k.clone())
            .collect();
        for url in due {
            let _one_at_a_time = self.fetching.lock().await;
            if let Ok(set) = self.fetch(&url).await {
                self.store(&url, set, now);
            } else {
                // Try again on a later tick, not at once.
                if let Some(e) = self.entries().get_mut(&url) {
                    e.fetched_at = Some(now - REFRESH_AFTER + Duration::seconds(30));
                }
            }
        }
    }
}
