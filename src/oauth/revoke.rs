//! Token revocation (RFC 7009).

use chrono::{DateTime, Utc};

use super::OAuthContext;
use super::client_auth;
use super::error::OAuthError;
use super::refresh;
use super::request::ClientCredentials;
use crate::auth::access::verify_for_revocation;
use crate::auth::jwt::AccessTokenClaims;
use crate::auth::secrets::{Pepper, SecretString};
use crate::db::Tx;
use crate::models::audit::{self, NewAuditEvent, Outcome};
use crate::models::{revoked_token, token_exchange};

/// Who may revoke a token issued to `token_client` (`None`: a person who
/// logged in without a client), when the caller authenticated as `caller`.
/// `false` is "not yours", which includes a call with no client
/// authentication at all: answered 200 and ignored, exactly as an unknown
/// token is (§2.2), so the answer never tells a real token from garbage.
/// (Wrong credentials are still 401 `invalid_client`, before any token is
/// looked at.)
fn may_revoke(token_client: Option<&str>, caller: Option<&str>) -> bool {
    match (token_client, caller) {
        (None, _) => true,
        (Some(t), Some(c)) => t == c,
        (Some(_), None) => false,
    }
}

impl OAuthContext {
    /// RFC 7009 §2.1. A client revokes tokens issued to it after authenticating;
    /// a person who logged in without a client revokes a token by presenting it.
    /// Unknown or invalid tokens are not an error (§2.2).
    ///
    /// An access token goes on the deny list until its `exp`; a refresh token
    /// revokes its whole family.
    pub async fn revoke(
        &self,
        creds: ClientCredentials,
        token: Option<String>,
        remote: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<(), OAuthError> {
        let token = token.ok_or_else(|| OAuthError::invalid_request("missing parameter 'token'"))?;
        let claims =
            verify_for_revocation(&self.db, &self.keys, &self.signatures, &token, &self.token.issuer, now).await?;
        let creds = client_auth::check_assertion(self, creds, now).await?;
        let oauth = self.clone();
        let revoked = self
            .db
            .run(move |conn| {
                // Client authentication first, on its own: its failures are
                // audited and must not roll back with the revocation.
                let caller =
                    client_auth::authenticate(conn, &oauth, remote.as_deref(), now, &creds)?.map(|c| c.principal.name);
                crate::db::transaction(conn, |tx| {
                    revoke_in(
                        tx,
                        &oauth.pepper,
                        claims.as_ref(),
                        &token,
                        caller.as_deref(),
                        remote.as_deref(),
                        now,
                    )
                })
            })
            .await;
        crate::auth::revocation_feed::publish(&self.db, &self.revocations, &self.live, now).await;
        revoked
    }
}

/// [`revoke`]'s one transaction: the deny list, the feed row and its
/// number, the refresh family and the audit event commit together or not at
/// all. Revoking again is not an error and makes sure the feed row exists.
fn revoke_in(
    tx: &mut Tx<'_>,
    pepper: &Pepper,
    claims: Option<&AccessTokenClaims>,
    token: &str,
    caller: Option<&str>,
    remote: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), OAuthError> {
    if let Some(claims) = claims {
        let own_client = claims.principal_kind == "human" && claims.client_id == claims.name;
        let token_client = (!own_client).then_some(claims.client_id.as_str());
        if !may_revoke(token_client, caller) {
            return Ok(());
        }
        let exp = DateTime::from_timestamp(claims.exp, 0).unwrap_or(now);
        // RFC 8693: what was exchanged from it, at any depth, ends with it.
        let derived = token_exchange::descendants(tx, &claims.jti, now)?;
        audit::record(
            tx,
            NewAuditEvent::new("token.revoked", Outcome::Ok)
                .principal(Some(&claims.sub))
                .remote(remote)
                .details(
                    serde_json::json!({"token_type": "access_token", "jti": claims.jti, "derived": derived.len()}),
                ),
            now,
        )?;
        // Last: the feed's counter row stays locked from here to the commit.
        revoked_token::insert(tx, &claims.jti, exp, now)?;
        revoked_token::insert_many(tx, &derived, now)?;
        return Ok(());
    }
    let Some(row) = refresh::find(tx, pepper, &SecretString::new(token.to_string()))? else {
        return Ok(());
    };
    if !may_revoke(row.client_id.as_deref(), caller) {
        return Ok(());
    }
    let revoked = refresh::revoke_family(tx, &row, now)?;
    audit::record(
        tx,
        NewAuditEvent::new("token.revoked", Outcome::Ok)
            .principal(Some(&row.principal_id))
            .remote(remote)
            .details(
                serde_json::json!({"token_type": "refresh_token", "family_id": row.family_id, "revoked": revoked}),
            ),
        now,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_issuing_client_revokes_its_tokens() {
        assert!(may_revoke(None, None));
        assert!(may_revoke(None, Some("billing")));
        assert!(may_revoke(Some("billing"), Some("billing")));
        assert!(!may_revoke(Some("billing"), Some("ledger")));
        assert!(!may_revoke(Some("billing"), None));
    }
}
