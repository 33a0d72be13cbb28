//! Browser login sessions: created by a login on Roster's page, kept in the
//! database so that every instance honours them, ended by logout, by an idle
//! or absolute timeout, and by disabling the person.

use chrono::{DateTime, Duration, Utc};

use crate::auth::amr::{Amr, Method};
use crate::auth::secrets::{Pepper, SecretString, constant_time_eq, random_secret};
use crate::db::DbConnection;
use crate::error::Result;
use crate::models::login_session::{self, LoginSessionRow, Pending};
use crate::models::principal::{self, Principal};
use crate::models::{new_id, refresh_token};

/// How long a session lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionPolicy {
    /// A session unused this long ends.
    pub idle: Duration,
    /// A session ends this long after the login, used or not.
    pub lifetime: Duration,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        Self {
            idle: Duration::hours(1),
            lifetime: Duration::hours(12),
        }
    }
}

/// How long a login waits for its second step after the password.
pub const PENDING_TTL: Duration = Duration::minutes(10);

/// Bytes of randomness in a session cookie and a CSRF cookie.
const TOKEN_BYTES: usize = 32;

fn hash(pepper: &Pepper, token: &SecretString) -> String {
    pepper.mac_hex(format!("login-session:{}", token.expose()).as_bytes())
}

/// A live session and its person.
#[derive(Debug, Clone)]
pub struct LiveSession {
    pub row: LoginSessionRow,
    pub person: Principal,
}

impl LiveSession {
    pub fn auth_time(&self) -> DateTime<Utc> {
        self.row.auth_time
    }

    /// What the login proved.
    pub fn amr(&self) -> Amr {
        Amr::from_stored(&self.row.amr)
    }

    /// The step still due, for a session waiting for its second step.
    pub fn pending(&self) -> Option<Pending> {
        self.row.pending()
    }
}

/// Is `row` live at `now` for `person`: not ended, within both timeouts, and
/// its person active and not disabled since the login?
pub fn is_live(row: &LoginSessionRow, person: &Principal, policy: &SessionPolicy, now: DateTime<Utc>) -> bool {
    row.pending.is_none() && open(row, person, policy, now)
}

/// Not ended, within both timeouts, its person active: live, or still
/// waiting for its second step.
fn open(row: &LoginSessionRow, person: &Principal, policy: &SessionPolicy, now: DateTime<Utc>) -> bool {
    row.ended_at.is_none()
        && now < row.expires_at
        && now < row.last_seen_at + policy.idle
        && person.is_active()
        && !person.killed_token(row.auth_time.timestamp())
}

/// The live session of a cookie's token, if any.
pub fn current(
    conn: &mut DbConnection,
    pepper: &Pepper,
    token: &SecretString,
    policy: &SessionPolicy,
    now: DateTime<Utc>,
) -> Result<Option<LiveSession>> {
    let Some(row) = login_session::find_by_hash(conn, &hash(pepper, token))? else {
        return Ok(None);
    };
    let Some(person) = principal::find_by_id(conn, &row.principal_id)? else {
        return Ok(None);
    };
    Ok(is_live(&row, &person, policy, now).then_some(LiveSession { row, person }))
}

/// The session of a cookie's token that a second step may apply to: one
/// waiting for it, or a live one stepping up (`acr_values`).
pub fn for_second_step(
    conn: &mut DbConnection,
    pepper: &Pepper,
    token: &SecretString,
    policy: &SessionPolicy,
    now: DateTime<Utc>,
) -> Result<Option<LiveSession>> {
    let Some(row) = login_session::find_by_hash(conn, &hash(pepper, token))? else {
        return Ok(None);
    };
    let Some(person) = principal::find_by_id(conn, &row.principal_id)? else {
        return Ok(None);
    };
    Ok(open(&row, &person, policy, now).then_some(LiveSession { row, person }))
}

/// Start a session for `person`, who has just proved `amr`: live at once,
/// or waiting for the `pending` step for at most [`PENDING_TTL`]. Returns
/// the cookie's token.
pub fn start(
    conn: &mut DbConnection,
    pepper: &Pepper,
    person: &Principal,
    policy: &SessionPolicy,
    begun: (&Amr, Option<Pending>),
    now: DateTime<Utc>,
) -> Result<(SecretString, LiveSession)> {
    let (amr, pending) = begun;
    let token = random_secret(TOKEN_BYTES)?;
    let t = now;
    let row = LoginSessionRow {
        id: new_id(),
        token_hash: hash(pepper, &token),
        principal_id: person.id.clone(),
        auth_time: t,
        last_seen_at: t,
        expires_at: if pending.is_some() {
            now + PENDING_TTL
        } else {
            now + policy.lifetime
        },
        ended_at: None,
        amr: amr.to_stored(),
        pending: pending.map(|p| p.as_str().to_string()),
    };
    login_session::insert(conn, &row)?;
    Ok((
        token,
        LiveSession {
            row,
            person: person.clone(),
        },
    ))
}

/// The second step of `session` passed, proving `more` as well: it is live
/// from `now`, for the policy's whole lifetime.
pub fn complete(
    conn: &mut DbConnection,
    session: &LiveSession,
    more: &[Method],
    policy: &SessionPolicy,
    now: DateTime<Utc>,
) -> Result<Option<LiveSession>> {
    let amr = session.amr().with(more);
    let expires_at = if session.pending().is_some() {
        now + policy.lifetime
    } else {
        session.row.expires_at
    };
    if !login_session::complete(conn, &session.row.id, &amr.to_stored(), expires_at, now)? {
        return Ok(None);
    }
    let mut row = session.row.clone();
    row.amr = amr.to_stored();
    row.pending = None;
    row.auth_time = now;
    row.last_seen_at = now;
    row.expires_at = expires_at;
    Ok(Some(LiveSession {
        row,
        person: session.person.clone(),
    }))
}

/// Record a use of the session (single sign-on), which moves the idle deadline.
pub fn touch(conn: &mut DbConnection, session: &LiveSession, now: DateTime<Utc>) -> Result<()> {
    login_session::touch(conn, &session.row.id, now)
}

/// End session `id` and revoke the refresh tokens issued under it, inside
/// the caller's transaction. Returns false when it had ended already.
pub fn end(conn: &mut DbConnection, id: &str, now: DateTime<Utc>) -> Result<bool> {
    let ended = login_session::end(conn, id, now)?;
    refresh_token::revoke_session(conn, id, now)?;
    Ok(ended)
}

/// A fresh value for the CSRF cookie.
pub fn new_csrf_cookie() -> Result<SecretString> {
    random_secret(TOKEN_BYTES)
}

/// The form's CSRF token for a CSRF cookie: a keyed hash of it, so that only
/// a page Roster rendered for that browser carries it (double-submit cookie,
/// signed; OWASP CSRF Prevention Cheat Sheet).
pub fn csrf_token(pepper: &Pepper, cookie: &SecretString) -> String {
    pepper.mac_hex(format!("login-csrf:{}", cookie.expose()).as_bytes())
}

/// Does the form's `token` belong to the browser's CSRF `cookie`?
pub fn csrf_ok(pepper: &Pepper, cookie: Option<&SecretString>, token: Option<&str>) -> bool {
    match (cookie, token) {
        (Some(cookie), Some(token)) => constant_time_eq(&csrf_token(pepper, cookie), token),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, h, m, 0).unwrap()
    }

    fn person(status: &str) -> Principal {
        Principal {
            id: "p".into(),
            kind: crate::models::principal::PrincipalKind::Human,
            name: "alice".into(),
            display_name: None,
            email: None,
            status: status.parse().unwrap(),
            created_at: at(0, 0),
            updated_at: at(0, 0),
            tokens_not_before: None,
        }
    }

    fn row() -> LoginSessionRow {
        LoginSessionRow {
            id: "s".into(),
            token_hash: "h".into(),
            principal_id: "p".into(),
            auth_time: at(9, 0),
            last_seen_at: at(10, 0),
            expires_at: at(21, 0),
            ended_at: None,
            amr: "pwd".into(),
            pending: None,
        }
    }

    #[test]
    fn a_session_ends_when_idle_at_its_lifetime_on_logout_and_on_disable() {
        let policy = SessionPolicy::default();
        let alice = person("active");
        assert!(is_live(&row(), &alice, &policy, at(10, 59)));
        assert!(!is_live(&row(), &alice, &policy, at(11, 0)), "idle for an hour");
        let mut busy = row();
        busy.last_seen_at = at(20, 59);
        assert!(is_live(&busy, &alice, &policy, at(20, 59)));
        assert!(
            !is_live(&busy, &alice, &policy, at(21, 0)),
            "twelve hours after the login"
        );
        let mut ended = row();
        ended.ended_at = Some(at(9, 30));
        assert!(!is_live(&ended, &alice, &policy, at(10, 0)));
        let mut waiting = row();
        waiting.pending = Some("second_factor".into());
        assert!(!is_live(&waiting, &alice, &policy, at(10, 0)), "its second step is due");
        assert!(open(&waiting, &alice, &policy, at(10, 0)));
        assert!(!is_live(&row(), &person("disabled"), &policy, at(10, 0)));
        let mut re_enabled = person("active");
        re_enabled.tokens_not_before = Some(at(9, 30));
        assert!(
            !is_live(&row(), &re_enabled, &policy, at(10, 0)),
            "disabled after the login, then enabled"
        );
    }

    #[test]
    fn the_csrf_token_belongs_to_its_cookie() {
        let pepper = Pepper::from_bytes(b"0123456789abcdef0123456789abcdef").unwrap();
        let cookie = SecretString::new("cookie-a");
        let token = csrf_token(&pepper, &cookie);
        assert!(csrf_ok(&pepper, Some(&cookie), Some(&token)));
        assert!(!csrf_ok(&pepper, Some(&SecretString::new("cookie-b")), Some(&token)));
        assert!(!csrf_ok(&pepper, None, Some(&token)));
        assert!(!csrf_ok(&pepper, Some(&cookie), None));
        assert!(!csrf_ok(&pepper, Some(&cookie), Some("cookie-a")));
    }
}
