//! Login throttling: failed password logins are counted per (username,
//! source network), per source network and per username, in the database so
//! that every instance sharing it counts together. Past a limit, a key is
//! blocked for a delay that doubles with each further failure, up to a cap;
//! a blocked login is refused before argon2 runs. A success clears its
//! (username, network) counter.
//!
//! Guessing from one address cannot lock the owner out elsewhere: the pair
//! limit is per network, the network limit sits well above it (many people
//! share a NAT), and the per-username ceiling, against distributed guessing,
//! is far higher still. Usernames are keyed by a keyed hash, so a password
//! typed into the username field is never stored.

use std::net::IpAddr;

use chrono::{DateTime, Duration, Utc};

use super::secrets::Pepper;
use crate::db::DbConnection;
use crate::error::Result;
use crate::models::throttle::{self, ThrottleRow};

/// Limits and delays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThrottlePolicy {
    /// Failures of one username from one network before it is slowed.
    pub pair_limit: i32,
    /// Failures from one network, any username.
    pub network_limit: i32,
    /// Failures for one username, from anywhere.
    pub name_limit: i32,
    /// The first delay; each further failure doubles it.
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// A counter with no failure for this long starts again from zero.
    pub forget_after: Duration,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        Self {
            pair_limit: 5,
            network_limit: 100,
            name_limit: 1000,
            base_delay: Duration::seconds(1),
            max_delay: Duration::minutes(15),
            forget_after: Duration::hours(1),
        }
    }
}

/// The network a source address counts in: its /24 (IPv4) or /64 (IPv6).
pub fn network_of(ip: IpAddr) -> String {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    };
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.0/24", o[0], o[1], o[2])
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

/// The counters one login attempt touches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    pub pair: String,
    pub network: String,
    pub name: String,
}

impl Keys {
    pub fn new(pepper: &Pepper, username: &str, remote: Option<&str>) -> Self {
        let name = pepper.mac_hex(format!("throttle-name:{}", username.to_lowercase()).as_bytes())[..32].to_string();
        let network = remote
            .and_then(|r| r.parse::<IpAddr>().ok())
            .map(network_of)
            .unwrap_or_else(|| "unknown".to_string());
        Self {
            pair: format!("pair:{name}:{network}"),
            network: format!("net:{network}"),
            name: format!("name:{name}"),
        }
    }

    fn all(&self) -> Vec<String> {
        vec![self.pair.clone(), self.network.clone(), self.name.clone()]
    }

    fn limit(&self, key: &str, p: &ThrottlePolicy) -> i32 {
        if key == self.pair {
            p.pair_limit
        } else if key == self.network {
            p.network_limit
        } else {
            p.name_limit
        }
    }
}

/// How long the attempt must wait, if any of its counters blocks it now.
pub fn blocked_for(rows: &[ThrottleRow], now: DateTime<Utc>) -> Option<Duration> {
    rows.iter()
        .filter_map(|r| r.blocked_until)
        .filter(|until| *until > now)
        .map(|until| until - now)
        .max()
}

/// [`blocked_for`] in whole seconds, rounded up: what `Retry-After` says
/// and what the audit records.
pub fn retry_after_secs(rows: &[ThrottleRow], now: DateTime<Utc>) -> Option<i64> {
    blocked_for(rows, now).map(|wait| wait.num_seconds() + i64::from(wait.subsec_nanos() > 0))
}

/// A counter after one more failure at `now`.
pub fn after_failure(
    existing: Option<&ThrottleRow>,
    key: &str,
    subject: Option<&str>,
    limit: i32,
    p: &ThrottlePolicy,
    now: DateTime<Utc>,
) -> ThrottleRow {
    let fresh = existing.is_none_or(|r| now - r.last_failure >= p.forget_after);
    let failures = if fresh {
        1
    } else {
        existing.map_or(1, |r| r.failures.saturating_add(1))
    };
    let blocked_until = (failures >= limit).then(|| {
        let doublings = (failures - limit).min(30) as u32;
        let delay = p
            .base_delay
            .checked_mul(2i32.saturating_pow(doublings))
            .unwrap_or(p.max_delay)
            .min(p.max_delay);
        now + delay
    });
    ThrottleRow {
        key: key.to_string(),
        subject: subject
            .map(str::to_string)
            .or_else(|| existing.and_then(|r| r.subject.clone())),
        failures,
        last_failure: now,
        blocked_until,
    }
}

/// The counters of an attempt, as they are before it.
pub fn load(conn: &mut DbConnection, keys: &Keys) -> Result<Vec<ThrottleRow>> {
    throttle::find_many(conn, &keys.all())
}

/// Count one failure on each counter: one write per counter, in one
/// transaction. `subject` is the principal's id, when the name is one. Two
/// instances creating the same counter at once collide on its key: the
/// loser runs again and updates the winner's row.
pub fn record_failure(
    conn: &mut DbConnection,
    keys: &Keys,
    subject: Option<&str>,
    p: &ThrottlePolicy,
    now: DateTime<Utc>,
) -> Result<()> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let counted = crate::db::transaction(conn, |conn| {
            let rows = throttle::find_many(conn, &keys.all())?;
            for key in keys.all() {
                let existing = rows.iter().find(|r| r.key == key);
                let subject_here = if key == keys.network { None } else { subject };
                let next = after_failure(existing, &key, subject_here, keys.limit(&key, p), p, now);
                match existing {
                    Some(_) => throttle::save(conn, &next)?,
                    None => throttle::insert(conn, &next)?,
                }
            }
            Ok(())
        });
        match counted {
            Err(crate::error::Error::Conflict(_)) if attempt < 5 => continue,
            other => return other,
        }
    }
}

/// A success clears the (username, network) counter, if there is one: no
/// write when there was no failure.
pub fn record_success(conn: &mut DbConnection, keys: &Keys, loaded: &[ThrottleRow]) -> Result<()> {
    if loaded.iter().any(|r| r.key == keys.pair) {
        throttle::delete(conn, &keys.pair)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 5, 1, 12, 0, 0).unwrap()
    }

    #[test]
    fn networks_are_24s_and_64s() {
        assert_eq!(network_of("203.0.113.77".parse().unwrap()), "203.0.113.0/24");
        assert_eq!(network_of("::ffff:203.0.113.77".parse().unwrap()), "203.0.113.0/24");
        assert_eq!(network_of("2001:db8:1:2:3:4:5:6".parse().unwrap()), "2001:db8:1:2::/64");
    }

    #[test]
    fn keys_never_hold_the_typed_name() {
        let p = Pepper::from_bytes(b"0123456789abcdef0123456789abcdef").unwrap();
        let k = Keys::new(&p, "Hunter2-Password", Some("10.1.2.3"));
        assert!(!format!("{k:?}").to_lowercase().contains("hunter2"));
        assert_eq!(
            k,
            Keys::new(&p, "hunter2-password", Some("10.1.2.99")),
            "same name, same /24"
        );
        assert_ne!(k.pair, Keys::new(&p, "hunter2-password", Some("10.1.3.3")).pair);
        assert_eq!(k.name, Keys::new(&p, "hunter2-password", Some("10.1.3.3")).name);
    }

    #[test]
    fn delays_start_at_the_limit_double_and_are_capped() {
        let p = ThrottlePolicy::default();
        let mut row: Option<ThrottleRow> = None;
        let mut delays = Vec::new();
        for i in 0..20 {
            let now = t0() + Duration::seconds(i);
            let next = after_failure(row.as_ref(), "pair:x", Some("id"), 5, &p, now);
            delays.push(next.blocked_until.map(|b| (b - now).num_seconds()));
            row = Some(next);
        }
        assert_eq!(
            &delays[..8],
            &[None, None, None, None, Some(1), Some(2), Some(4), Some(8)]
        );
        assert_eq!(delays[19], Some(900), "capped at 15 minutes");
        assert_eq!(row.as_ref().unwrap().subject.as_deref(), Some("id"));
        // After a quiet hour the count starts again.
        let later = t0() + Duration::hours(2);
        let again = after_failure(row.as_ref(), "pair:x", None, 5, &p, later);
        assert_eq!((again.failures, again.blocked_until), (1, None));
        assert_eq!(again.subject.as_deref(), Some("id"), "the subject is kept");
    }

    #[test]
    fn an_attempt_waits_for_its_longest_block() {
        let now = t0();
        let row = |key: &str, secs: Option<i64>| ThrottleRow {
            key: key.into(),
            subject: None,
            failures: 9,
            last_failure: now,
            blocked_until: secs.map(|s| now + Duration::seconds(s)),
        };
        assert_eq!(blocked_for(&[row("a", None), row("b", Some(-5))], now), None);
        assert_eq!(
            blocked_for(&[row("a", Some(3)), row("b", Some(40))], now),
            Some(Duration::seconds(40))
        );
    }
}
