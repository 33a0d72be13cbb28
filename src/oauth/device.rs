//! The device authorization grant (RFC 8628), so that the CLI and scripts
//! log in people who have second factors: the device asks for a code
//! (§3.1), the person approves it on Roster's verification page after the
//! normal browser login, second step included (§3.3), and the device polls
//! the token endpoint (§3.4, §3.5) until the tokens come.

use chrono::{DateTime, Duration, Utc};
use ring::rand::{SecureRandom, SystemRandom};
use serde::Serialize;

use super::client_auth::{self, Client};
use super::error::{ErrorCode, OAuthError};
use super::request::ClientCredentials;
use super::response::{TokenResponse, respond};
use super::session::{self, LiveSession};
use super::{OAuthContext, grants, oidc, pkce, refresh};
use crate::auth::amr::{Amr, Level};
use crate::auth::second_factor::{self, Due};
use crate::auth::secrets::{Pepper, SecretString, random_secret};
use crate::auth::source_budget::Creation;
use crate::auth::throttle;
use crate::db::DbConnection;
use crate::error::Error;
use crate::models::audit::{self, NewAuditEvent, Outcome};
use crate::models::device_code::{self, Answer, DeviceCodeRow, DeviceStatus};
use crate::models::new_id;
use crate::models::principal::{self, PrincipalKind};
use crate::names::Scopes;

/// How long a device code lives (§3.2 `expires_in`).
pub const DEVICE_CODE_TTL: Duration = Duration::minutes(10);
/// The polling interval first given (§3.2 `interval`).
pub const INTERVAL_SECS: i64 = 5;
/// What `slow_down` adds to the interval (§3.5).
pub const SLOW_DOWN_SECS: i64 = 5;
/// §6.1: 20 consonants, no vowels (no words) and nothing that looks alike.
const USER_CODE_ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";
/// Characters of a user code: 20^8, about 34 bits.
const USER_CODE_LEN: usize = 8;
const DEVICE_CODE_BYTES: usize = 32;

fn hash(pepper: &Pepper, device_code: &str) -> String {
    pepper.mac_hex(format!("device-code:{device_code}").as_bytes())
}

/// A new user code, normalised (no separator): bytes of 240 and over are
/// skipped, so that each of the 20 letters is equally likely.
fn new_user_code() -> Result<String, Error> {
    let mut out = String::with_capacity(USER_CODE_LEN);
    while out.len() < USER_CODE_LEN {
        let mut raw = [0u8; 2 * USER_CODE_LEN];
        SystemRandom::new()
            .fill(&mut raw)
            .map_err(|_| Error::internal("the random generator failed"))?;
        for b in raw.into_iter().filter(|b| *b < 240).take(USER_CODE_LEN - out.len()) {
            out.push(USER_CODE_ALPHABET[usize::from(b % 20)] as char);
        }
    }
    Ok(out)
}

/// A user code as typed, normalised: upper case, separators and spaces
/// dropped (§6.1); `None` if it cannot be one.
pub fn normalize_user_code(typed: &str) -> Option<String> {
    let s: String = typed
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (s.len() == USER_CODE_LEN && s.bytes().all(|b| USER_CODE_ALPHABET.contains(&b))).then_some(s)
}

/// A user code as shown: `BDFG-HJKL`.
pub fn display_user_code(code: &str) -> String {
    let (a, b) = code.split_at(code.len().min(4));
    format!("{a}-{b}")
}

/// The device authorization response (§3.2).
#[derive(Debug, Serialize)]
pub struct DeviceAuthorization {
    #[serde(serialize_with = "crate::auth::secrets::serialize_exposed")]
    pub device_code: SecretString,
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: String,
    pub expires_in: i64,
    pub interval: i64,
}

/// The client a device request may come from: a registered public client
/// named by `client_id`, or a confidential client that authenticates.
fn device_client(conn: &mut DbConnection, client: &Client) -> Result<String, OAuthError> {
    match client {
        Client::Confidential(name) => Ok(name.clone()),
        Client::Public(name) => match client_auth::login_client(conn, name)? {
            Some((_, settings)) if settings.public_client => Ok(name.clone()),
            _ => Err(OAuthError::invalid_client()),
        },
        Client::None => Err(OAuthError::invalid_request("client_id is required")),
    }
}

impl OAuthContext {
    /// `POST /oauth/device_authorization` (§3.1, §3.2).
    pub async fn device_authorization(
        &self,
        creds: ClientCredentials,
        scope: Option<Scopes>,
        remote: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<DeviceAuthorization, OAuthError> {
        if let Some(retry_after) = self.budget.spend(Creation::DeviceAuthorization, remote.as_deref(), now) {
            return Err(OAuthError::Limited { retry_after });
        }
        let creds = client_auth::check_assertion(self, creds, now).await?;
        let oauth = self.clone();
        self.db
            .run(move |conn| {
                let client = client_auth::identify(conn, &oauth, remote.as_deref(), now, &creds)?;
                let client_id = device_client(conn, &client)?;
                let device_code = random_secret(DEVICE_CODE_BYTES)?;
                // A clash with a live user code is retried with a fresh one.
                for _ in 0..4 {
                    let user_code = new_user_code()?;
                    let row = DeviceCodeRow {
                        device_code_hash: hash(&oauth.pepper, device_code.expose()),
                        user_code: user_code.clone(),
                        client_id: client_id.clone(),
                        scope: scope.as_ref().map(ToString::to_string).unwrap_or_default(),
                        status: DeviceStatus::Pending,
                        interval_secs: INTERVAL_SECS,
                        next_poll_at: now,
                        created_at: now,
                        expires_at: now + DEVICE_CODE_TTL,
                        principal_id: None,
                        session_id: None,
                        amr: None,
                        auth_time: None,
                    };
                    match device_code::insert(conn, &row) {
                        Ok(()) => {
                            let uri = format!("{}/oauth/device", oauth.issuer());
                            return Ok(DeviceAuthorization {
                                verification_uri_complete: format!("{uri}?user_code={}", display_user_code(&user_code)),
                                verification_uri: uri,
                                user_code: display_user_code(&user_code),
                                device_code,
                                expires_in: DEVICE_CODE_TTL.num_seconds(),
                                interval: INTERVAL_SECS,
                            });
                        }
                        Err(Error::Conflict(_)) => continue,
                        Err(e) => return Err(e.into()),
                    }
                }
                Err(Error::internal("no free user code after four tries").into())
            })
            .await
    }
}

/// The device's poll (§3.4, §3.5): pending, slow down, expired, denied, or
/// the tokens, once.
pub(super) async fn device_code(
    ctx: &OAuthContext,
    creds: ClientCredentials,
    device_code: SecretString,
    remote: Option<String>,
    now: DateTime<Utc>,
) -> Result<TokenResponse, OAuthError> {
    let (oauth, cfg, keys) = (ctx.clone(), ctx.token.clone(), ctx.keys.current());
    ctx.db
        .run(move |conn| {
            let client = client_auth::identify(conn, &oauth, remote.as_deref(), now, &creds)?;
            let client_id = device_client(conn, &client)?;
            let code_hash = hash(&oauth.pepper, device_code.expose());
            let invalid = || OAuthError::invalid_grant("the device code is invalid or already used");
            let row = device_code::find(conn, &code_hash)?.ok_or_else(invalid)?;
            // §3.4: a device code is for the client it was issued to.
            if row.client_id != client_id {
                return Err(invalid());
            }
            if row.expires_at <= now {
                return Err(OAuthError::new(ErrorCode::ExpiredToken, "the device code expired: start again"));
            }
            match row.status {
                DeviceStatus::Pending => {
                    if now < row.next_poll_at {
                        let interval = row.interval_secs + SLOW_DOWN_SECS;
                        device_code::polled(conn, &code_hash, interval, now + Duration::seconds(interval))?;
                        return Err(OAuthError::new(
                            ErrorCode::SlowDown,
                            format!("polling too fast: wait {interval} seconds between polls"),
                        ));
                    }
                    device_code::polled(
                        conn,
                        &code_hash,
                        row.interval_secs,
                        now + Duration::seconds(row.interval_secs),
                    )?;
                    Err(OAuthError::new(
                        ErrorCode::AuthorizationPending,
                        "the person has not answered yet",
                    ))
                }
                DeviceStatus::Denied => Err(OAuthError::new(ErrorCode::AccessDenied, "the person refused")),
                DeviceStatus::Used => Err(invalid()),
                DeviceStatus::Approved => crate::db::transaction(conn, |conn| {
                    if !device_code::spend(conn, &code_hash)? {
                        return Err(invalid());
                    }
                    let person_id = row.principal_id.clone().ok_or_else(invalid)?;
                    let user = principal::find_by_id(conn, &person_id)?
                        .filter(|u| u.is_active() && u.kind == PrincipalKind::Human)
                        .ok_or_else(invalid)?;
                    let held = principal::scopes_of(conn, &user.id)?;
                    let granted = crate::auth::access::effective_scopes(&Scopes::from_stored(&row.scope), &held);
                    let scope = granted.join(" ");
                    let mut grant = grants::authorization_code(
                        &user,
                        &held,
                        &client_id,
                        &scope,
                        grants::Issued {
                            cfg: &cfg,
                            now,
                            jti: new_id(),
                        },
                    )?;
                    let amr = Amr::from_stored(row.amr.as_deref().unwrap_or(""));
                    grant.claims.amr = Some(amr.names().iter().map(|m| m.to_string()).collect());
                    grant.claims.acr = Some(amr.level().acr().to_string());
                    let family = new_id();
                    let refresh_token =
                        refresh::store(conn, &oauth.pepper, &grant, &client, Some((&family, &scope)), None, now)?;
                    let mut response = respond(&keys, &grant, Some(refresh_token))?;
                    if grant.scopes.iter().any(|s| s == "openid") {
                        let facts = oidc::IdTokenFacts {
                            issuer: cfg.issuer.as_str(),
                            subject: &user.id,
                            client_id: &client_id,
                            auth_time: row.auth_time.unwrap_or(now),
                            nonce: None,
                            sid: row.session_id.as_deref().unwrap_or(""),
                            amr: &amr,
                            lifetime: cfg.access_ttl,
                        };
                        let id_token = oidc::id_token(&keys, &facts, response.access_token.expose(), now)
                            .map_err(|e| Error::internal(format!("signing: {e}")))?;
                        response.id_token = Some(SecretString::new(id_token));
                    }
                    audit::record(
                        conn,
                        NewAuditEvent::new("login.device", Outcome::Ok)
                            .principal(Some(&user.id))
                            .remote(remote.as_deref())
                            .details(serde_json::json!({"client_id": client_id, "scope": grant.scopes, "amr": amr.names()})),
                        now,
                    )?;
                    Ok(response)
                }),
            }
        })
        .await
}

/// What the verification page shows next.
#[derive(Debug)]
pub enum DevicePage {
    /// No login that suffices: through the normal browser login and back.
    Login(String),
    /// Ask for the user code.
    Enter {
        person: String,
        problem: Option<DeviceProblem>,
    },
    /// Ask to approve the device's request.
    Confirm {
        person: String,
        client: String,
        scope: Vec<String>,
        user_code: String,
    },
    /// Answered.
    Done { approved: bool },
}

/// Why the code is asked for again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceProblem {
    UnknownCode,
    Csrf,
    Throttled { retry_after: i64 },
}

/// The person's answer on the verification page.
#[derive(Debug)]
pub struct DeviceForm {
    pub user_code: Option<String>,
    /// `Some(true)` approve, `Some(false)` deny, `None` only look the code up.
    pub approve: Option<bool>,
    pub csrf_ok: bool,
    pub session_token: Option<SecretString>,
}

/// A live session whose login suffices for this person, if there is one.
fn sufficient(
    conn: &mut DbConnection,
    oauth: &OAuthContext,
    token: Option<&SecretString>,
    now: DateTime<Utc>,
) -> Result<Option<LiveSession>, Error> {
    let Some(t) = token else { return Ok(None) };
    let Some(s) = session::current(conn, &oauth.pepper, t, &oauth.sessions, now)? else {
        return Ok(None);
    };
    let due = second_factor::due(conn, &s.person, oauth.mfa, false)?;
    Ok((due == Due::Nothing || s.amr().level() == Level::Multi).then_some(s))
}

/// The browser login that comes back to the verification page, as Roster's
/// own first-party client, carrying the user code in `state`.
fn login_url(oauth: &OAuthContext, user_code: Option<&str>) -> Result<String, Error> {
    let verifier = random_secret(32)?;
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.append_pair("response_type", "code")
        .append_pair("client_id", crate::names::FIRST_PARTY_CLIENT)
        .append_pair("redirect_uri", &format!("{}/oauth/device", oauth.issuer()))
        .append_pair("scope", "openid")
        .append_pair("state", user_code.unwrap_or("-"))
        .append_pair("code_challenge", &pkce::s256(verifier.expose()))
        .append_pair("code_challenge_method", "S256");
    Ok(format!("/oauth/authorize?{}", q.finish()))
}

impl OAuthContext {
    /// `GET` and `POST /oauth/device`: the verification page (§3.3).
    pub async fn device_page(
        &self,
        form: DeviceForm,
        remote: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<DevicePage, Error> {
        let oauth = self.clone();
        self.db
            .run(move |conn| device_page(conn, &oauth, form, remote.as_deref(), now))
            .await
    }
}

fn device_page(
    conn: &mut DbConnection,
    oauth: &OAuthContext,
    form: DeviceForm,
    remote: Option<&str>,
    now: DateTime<Utc>,
) -> Result<DevicePage, Error> {
    let typed = form.user_code.as_deref().filter(|c| !c.is_empty() && *c != "-");
    let Some(live) = sufficient(conn, oauth, form.session_token.as_ref(), now)? else {
        return Ok(DevicePage::Login(login_url(
            oauth,
            typed.and_then(normalize_user_code).as_deref(),
        )?));
    };
    let person = live.person.name.clone();
    let Some(typed) = typed else {
        return Ok(DevicePage::Enter { person, problem: None });
    };
    if form.approve.is_some() && !form.csrf_ok {
        return Ok(DevicePage::Enter {
            person,
            problem: Some(DeviceProblem::Csrf),
        });
    }
    // §5.1: user codes are guessable; wrong ones count toward the person's throttle.
    let keys = throttle::Keys::new(&oauth.pepper, &live.person.name, remote);
    let loaded = throttle::load(conn, &keys)?;
    if let Some(retry_after) = throttle::retry_after_secs(&loaded, now) {
        return Ok(DevicePage::Enter {
            person,
            problem: Some(DeviceProblem::Throttled { retry_after }),
        });
    }
    let found = match normalize_user_code(typed) {
        Some(c) => device_code::find_pending(conn, &c, now)?,
        None => None,
    };
    let Some(row) = found else {
        audit::record(
            conn,
            NewAuditEvent::new("device.refused", Outcome::Failed)
                .principal(Some(&live.person.id))
                .remote(remote)
                .reason("unknown or expired user code"),
            now,
        )?;
        throttle::record_failure(conn, &keys, Some(&live.person.id), &oauth.throttle, now)?;
        return Ok(DevicePage::Enter {
            person,
            problem: Some(DeviceProblem::UnknownCode),
        });
    };
    let Some(approve) = form.approve else {
        let client = client_auth::login_client(conn, &row.client_id)?
            .and_then(|(p, _)| p.display_name.filter(|d| !d.trim().is_empty()))
            .unwrap_or_else(|| row.client_id.clone());
        return Ok(DevicePage::Confirm {
            person,
            client,
            scope: Scopes::from_stored(&row.scope).iter().map(str::to_string).collect(),
            user_code: display_user_code(&row.user_code),
        });
    };
    crate::db::transaction(conn, |conn| {
        let answered = device_code::answer(
            conn,
            &row.device_code_hash,
            &Answer {
                status: if approve {
                    DeviceStatus::Approved
                } else {
                    DeviceStatus::Denied
                },
                principal_id: &live.person.id,
                session_id: &live.row.id,
                amr: &live.row.amr,
                auth_time: live.row.auth_time,
            },
            now,
        )?;
        if !answered {
            return Ok(DevicePage::Enter {
                person: person.clone(),
                problem: Some(DeviceProblem::UnknownCode),
            });
        }
        throttle::record_success(conn, &keys, &loaded)?;
        audit::record(
            conn,
            NewAuditEvent::new(if approve { "device.approved" } else { "device.denied" }, Outcome::Ok)
                .principal(Some(&live.person.id))
                .remote(remote)
                .details(serde_json::json!({"client_id": row.client_id, "session_id": live.row.id})),
            now,
        )?;
        Ok(DevicePage::Done { approved: approve })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_codes_are_eight_consonants_typed_loosely() {
        for _ in 0..200 {
            let c = new_user_code().unwrap();
            assert_eq!(c.len(), 8);
            assert!(c.bytes().all(|b| USER_CODE_ALPHABET.contains(&b)), "{c}");
            assert_eq!(normalize_user_code(&display_user_code(&c).to_lowercase()), Some(c));
        }
        assert_eq!(display_user_code("BCDFGHJK"), "BCDF-GHJK");
        assert_eq!(normalize_user_code("bcdf ghjk"), Some("BCDFGHJK".into()));
        assert_eq!(normalize_user_code("BCDF-GHJA"), None, "no vowels");
        assert_eq!(normalize_user_code("BCDF-GHJ"), None);
    }
}
