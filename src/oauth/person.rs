//! Checking a person's password, shared by the password grant (RFC 6749
//! §4.3) and the login page: throttling first, argon2 on its own pool, the
//! same answer and the same work for an unknown user and a wrong password,
//! and every failure audited and counted.

use chrono::{DateTime, Utc};

use super::OAuthContext;
use super::error::OAuthError;
use crate::auth::secrets::SecretString;
use crate::auth::{password, throttle};
use crate::db::DbConnection;
use crate::error::Error;
use crate::models::audit::{NewAuditEvent, Outcome};
use crate::models::password as password_row;
use crate::models::principal::{self, Principal, PrincipalKind};
use crate::models::throttle::ThrottleRow;

/// What a password check loads before argon2 runs.
#[derive(Debug, Clone)]
pub struct Candidate {
    user: Option<Principal>,
    phc: Option<String>,
    throttle_keys: throttle::Keys,
    throttle_rows: Vec<ThrottleRow>,
}

/// Load the person named `username`, after refusing a throttled login
/// before anything else (argon2 included).
pub(crate) fn load(
    conn: &mut DbConnection,
    oauth: &OAuthContext,
    username: &str,
    remote: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Candidate, OAuthError> {
    let throttle_keys = throttle::Keys::new(&oauth.pepper, username, remote);
    let throttle_rows = throttle::load(conn, &throttle_keys)?;
    let user = principal::find_by_name(conn, username)?;
    if let Some(retry_after) = throttle::retry_after_secs(&throttle_rows, now) {
        // Whose account is being guessed: the principal's id when the name
        // is one, otherwise only a keyed hash of the name (it may be a
        // password typed into the wrong field).
        let mut details = serde_json::json!({"retry_after": retry_after});
        if user.is_none() {
            details["username_hash"] = super::client_auth::audit_hash(&oauth.pepper, "audit-username", username).into();
        }
        oauth.failures.record(
            conn,
            NewAuditEvent::new("login.throttled", Outcome::Failed)
                .principal(user.as_ref().map(|u| u.id.as_str()))
                .remote(remote)
                .reason("too many failed logins")
                .details(details),
            now,
        )?;
        return Err(OAuthError::Throttled { retry_after });
    }
    let phc = match &user {
        Some(u) if u.kind == PrincipalKind::Human => password_row::find(conn, &u.id)?,
        _ => None,
    };
    Ok(Candidate {
        user,
        phc,
        throttle_keys,
        throttle_rows,
    })
}

/// Run argon2 on its pool: the stored hash, or a dummy one of the same cost.
pub async fn verify(ctx: &OAuthContext, candidate: &Candidate, password: SecretString) -> Result<bool, OAuthError> {
    let phc = candidate.phc.clone();
    let hashing = ctx.hashing;
    Ok(ctx
        .argon
        .run(move || match phc {
            Some(phc) => password::verify_password(&password, &phc),
            None => {
                hashing.dummy_verify(&password);
                false
            }
        })
        .await
        .map_err(Error::from)?)
}

/// The person, once their password was verified; otherwise the failure is
/// audited as `event`, counted against the throttle, and answered
/// `invalid_grant` "invalid username or password".
pub(crate) fn settle(
    conn: &mut DbConnection,
    oauth: &OAuthContext,
    candidate: &Candidate,
    verified: bool,
    event: &'static str,
    remote: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Principal, OAuthError> {
    let failure = match &candidate.user {
        None => Some("unknown user"),
        Some(u) if u.kind != PrincipalKind::Human => Some("principal is not a human"),
        Some(_) if !verified => Some("wrong password"),
        Some(u) if !u.is_active() => Some("principal is disabled"),
        Some(_) => None,
    };
    match (&candidate.user, failure) {
        (Some(u), None) => Ok(u.clone()),
        (user, reason) => {
            let subject = user.as_ref().map(|u| u.id.as_str());
            oauth.failures.record(
                conn,
                NewAuditEvent::new(event, Outcome::Failed)
                    .principal(subject)
                    .remote(remote)
                    .reason(reason.unwrap_or("login refused")),
                now,
            )?;
            throttle::record_failure(conn, &candidate.throttle_keys, subject, &oauth.throttle, now)?;
            Err(refused())
        }
    }
}

/// The one answer to every refused login.
pub fn refused() -> OAuthError {
    OAuthError::invalid_grant("invalid username or password")
}

/// Inside the issuing transaction: the person as they are now, still active
/// and with the password that was checked (a disable or password change
/// while argon2 queued cannot be outrun). The throttle's failures are not
/// cleared here: a login is done only once its second step is (see [`cleared`]).
pub fn confirm(conn: &mut DbConnection, candidate: &Candidate, user: &Principal) -> Result<Principal, OAuthError> {
    let current = principal::find_by_id(conn, &user.id)?.filter(Principal::is_active);
    let still_valid = current.is_some() && password_row::find(conn, &user.id)? == candidate.phc;
    current.filter(|_| still_valid).ok_or_else(refused)
}

/// The login succeeded as a whole: clear the throttle's failures. Not
/// called when a second step is still due, so that a known password cannot
/// reset the count of guessed codes.
pub fn cleared(conn: &mut DbConnection, candidate: &Candidate) -> Result<(), Error> {
    throttle::record_success(conn, &candidate.throttle_keys, &candidate.throttle_rows)
}
