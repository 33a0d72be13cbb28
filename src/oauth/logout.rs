//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0 §2, §3): end
//! the browser session, and send the person back only to a
//! `post_logout_redirect_uri` registered for the client.

use chrono::{DateTime, Utc};

use super::authorize::AuthorizeError;
use super::client_auth::login_client;
use super::request::FormParams;
use super::session;
use super::{OAuthContext, oidc};
use crate::auth::secrets::SecretString;
use crate::models::audit::{self, NewAuditEvent, Outcome};

/// The outcome of a logout request.
#[derive(Debug)]
pub enum LogoutStep {
    /// The session is over (or there was none): send the person to
    /// `redirect`, or show that they are logged out.
    Done { redirect: Option<String> },
    /// Nothing proves the request comes from the session's own frontend (no
    /// `id_token_hint` of this session): ask the person, so that no other
    /// site can log them out (§2: the OP SHOULD ask).
    Confirm { carried: Vec<(&'static str, String)> },
}

impl OAuthContext {
    /// `GET` or `POST /oauth/logout`. `confirmed` is a POST of Roster's own
    /// confirmation form with a good CSRF token.
    pub async fn logout(
        &self,
        params: FormParams,
        session_token: Option<SecretString>,
        confirmed: bool,
        remote: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<LogoutStep, AuthorizeError> {
        let hint = params
            .get("id_token_hint")
            .and_then(|t| oidc::id_token_hint(&self.keys.current(), t, &self.token.issuer));
        if params.get("id_token_hint").is_some() && hint.is_none() {
            return Err(AuthorizeError::Page(
                "The logout request carries an ID token Roster did not issue.".into(),
            ));
        }
        let client_id = match (hint.as_ref().map(|h| h.aud.clone()), params.get("client_id")) {
            (Some(a), Some(b)) if a != b => {
                return Err(AuthorizeError::Page(
                    "The logout request names two different applications.".into(),
                ));
            }
            (Some(a), _) => Some(a),
            (None, b) => b.map(str::to_string),
        };
        let (pepper, policy) = (self.pepper.clone(), self.sessions);
        let post_logout = params.get("post_logout_redirect_uri").map(str::to_string);
        let state = params.get("state").map(str::to_string);
        let carried: Vec<(&'static str, String)> = [
            ("client_id", client_id.clone()),
            ("post_logout_redirect_uri", post_logout.clone()),
            ("state", state.clone()),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect();
        self.db
            .run(move |conn| {
                let redirect = match &post_logout {
                    None => None,
                    Some(uri) => {
                        let not_registered = || {
                            AuthorizeError::Page(
                                "The address this application asked to send you to after logout is not registered for it."
                                    .into(),
                            )
                        };
                        let name = client_id.as_deref().ok_or_else(not_registered)?;
                        let (_, settings) = login_client(conn, name)?.ok_or_else(not_registered)?;
                        if !settings.post_logout_redirect_uris.iter().any(|r| r == uri) {
                            return Err(not_registered());
                        }
                        let mut url = url::Url::parse(uri).map_err(|_| not_registered())?;
                        if let Some(s) = &state {
                            url.query_pairs_mut().append_pair("state", s);
                        }
                        Some(url.to_string())
                    }
                };
                let live = match &session_token {
                    Some(t) => session::current(conn, &pepper, t, &policy, now)?,
                    None => None,
                };
                let Some(live) = live else {
                    return Ok(LogoutStep::Done { redirect });
                };
                let from_its_frontend = hint.as_ref().is_some_and(|h| h.sid == live.row.id);
                if !confirmed && !from_its_frontend {
                    return Ok(LogoutStep::Confirm { carried });
                }
                crate::db::transaction(conn, |conn| {
                    session::end(conn, &live.row.id, now)?;
                    audit::record(
                        conn,
                        NewAuditEvent::new("session.ended", Outcome::Ok)
                            .principal(Some(&live.person.id))
                            .remote(remote.as_deref())
                            .details(serde_json::json!({"session_id": live.row.id, "client_id": client_id})),
                        now,
                    )
                })?;
                Ok(LogoutStep::Done { redirect })
            })
            .await
    }
}
