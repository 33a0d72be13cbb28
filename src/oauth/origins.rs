//! The browser origins allowed to call Roster cross-origin (CORS): those of
//! the registered redirect URIs of active services, and nobody else. The set
//! is reloaded on the background tick when the authentication generation
//! (bumped by every change of a service's status or settings) has moved;
//! requests read the last good snapshot.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, RwLock};

use crate::db::DbConnection;
use crate::error::Result;
use crate::models::client_settings;

#[derive(Debug, Default)]
pub struct AllowedOrigins {
    set: RwLock<Arc<HashSet<String>>>,
    /// The authentication generation the set was loaded at.
    loaded_at: Mutex<Option<i64>>,
}

/// The ASCII serialisation of a URL's origin (RFC 6454 §6.2), as browsers send it.
pub fn origin_of(url: &str) -> Option<String> {
    let origin = url::Url::parse(url).ok()?.origin();
    origin.is_tuple().then(|| origin.ascii_serialization())
}

impl AllowedOrigins {
    pub fn new() -> Self {
        Self::default()
    }

    /// Is `origin` (an `Origin` header's value) allowed?
    pub fn allows(&self, origin: &str) -> bool {
        match self.set.read() {
            Ok(s) => s.contains(origin),
            Err(poisoned) => poisoned.into_inner().contains(origin),
        }
    }

    /// Is the set older than `generation`?
    pub fn is_behind(&self, generation: i64) -> bool {
        let loaded = match self.loaded_at.lock() {
            Ok(g) => *g,
            Err(poisoned) => *poisoned.into_inner(),
        };
        loaded != Some(generation)
    }

    /// Reload from the database, as of `generation` (read before this call,
    /// so that a change racing the reload is picked up by the next tick). On
    /// failure the last good set stays.
    pub fn reload(&self, conn: &mut DbConnection, generation: i64) -> Result<()> {
        let set: HashSet<String> = client_settings::all_active_redirect_uris(conn)?
            .iter()
            .filter_map(|u| origin_of(u))
            .collect();
        let fresh = Arc::new(set);
        match self.set.write() {
            Ok(mut s) => *s = fresh,
            Err(poisoned) => *poisoned.into_inner() = fresh,
        }
        match self.loaded_at.lock() {
            Ok(mut g) => *g = Some(generation),
            Err(poisoned) => *poisoned.into_inner() = Some(generation),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_scheme_host_and_port() {
        assert_eq!(
            origin_of("https://app.example/cb?x=1").as_deref(),
            Some("https://app.example")
        );
        assert_eq!(
            origin_of("https://app.example:443/cb").as_deref(),
            Some("https://app.example")
        );
        assert_eq!(
            origin_of("http://localhost:5173/").as_deref(),
            Some("http://localhost:5173")
        );
        assert_eq!(origin_of("data:text/plain,x"), None);
    }
}
