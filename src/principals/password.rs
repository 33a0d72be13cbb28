//! Password changes: an admin sets anyone's; a person changes their own by
//! proving the current one. Either way, the person's refresh tokens die.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::PrincipalsContext;
use super::row;
use crate::auth::access::Caller;
use crate::auth::password;
use crate::auth::secrets::SecretString;
use crate::db::DbConnection;
use crate::error::{Error, Result};
use crate::models::audit::{self, NewAuditEvent, Outcome};
use crate::models::principal::PrincipalKind;
use crate::models::{password as password_row, refresh_token};

/// `PUT /api/v1/principals/{id}/password`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetPassword {
    pub password: SecretString,
    pub current_password: Option<SecretString>,
}

/// Who may set the password of `target`, and whether they must prove the
/// current one first.
#[derive(Debug, PartialEq, Eq)]
pub enum Permission {
    /// An admin: no current password needed.
    Admin,
    /// The person themselves: the current password must match.
    Own,
}

/// The rule: admins may set any password; anyone else only their own.
pub fn permission(caller: &Caller, target: &str) -> Result<Permission> {
    if caller.is_admin() {
        Ok(Permission::Admin)
    } else if caller.principal.id == target {
        Ok(Permission::Own)
    } else {
        Err(Error::Forbidden(
            "only an admin may set another principal's password".into(),
        ))
    }
}

/// Set a human's password (already hashed) and revoke their refresh tokens.
pub(super) fn change_password(
    conn: &mut DbConnection,
    id: &str,
    password_phc: &str,
    actor: Option<&str>,
    now: DateTime<Utc>,
) -> Result<()> {
    crate::db::transaction(conn, |conn| {
        if row(conn, id)?.kind != PrincipalKind::Human {
            return Err(Error::invalid("id", "only human principals have a password"));
        }
        password_row::set(conn, id, password_phc, now)?;
        let revoked = refresh_token::revoke_all_for_principal(conn, id, now)?;
        // A new password ends every browser session of the old one.
        crate::models::login_session::end_all_for_principal(conn, id, now)?;
        audit::record(
            conn,
            NewAuditEvent::new("password.changed", Outcome::Ok)
                .actor(actor)
                .principal(Some(id))
                .details(serde_json::json!({"refresh_tokens_revoked": revoked})),
            now,
        )
    })
}

impl PrincipalsContext {
    /// `PUT /api/v1/principals/{id}/password`: check who may, verify the
    /// current password on the argon2 pool when it is their own, hash the new
    /// one there too, and store it.
    pub async fn change_password(
        &self,
        caller: &Caller,
        id: String,
        body: SetPassword,
        now: DateTime<Utc>,
    ) -> Result<()> {
        if permission(caller, &id)? == Permission::Own {
            let current = body
                .current_password
                .ok_or_else(|| Error::invalid("current_password", "required to change your own password"))?;
            let lookup = id.clone();
            let phc = self.db.run(move |c| password_row::find(c, &lookup)).await?;
            let ok = self
                .argon
                .run(move || phc.is_some_and(|phc| password::verify_password(&current, &phc)))
                .await?;
            if !ok {
                return Err(Error::Forbidden("the current password is wrong".into()));
            }
        }
        let phc = self.hash(body.password).await?;
        let actor = caller.principal.id.clone();
        self.db
            .run(move |c| change_password(c, &id, &phc, Some(&actor), now))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::jwt::AccessTokenClaims;
    use crate::models::principal::Principal;

    fn caller(id: &str, scope: &str) -> Caller {
        let t = chrono::DateTime::UNIX_EPOCH;
        Caller {
            claims: AccessTokenClaims {
                iss: "i".into(),
                sub: id.into(),
                aud: "i".into(),
                exp: 0,
                iat: 0,
                nbf: Some(0),
                jti: "j".into(),
                client_id: id.into(),
                scope: scope.into(),
                principal_kind: "human".into(),
                name: id.into(),
                act: None,
                root_jti: None,
                amr: None,
                acr: None,
            },
            principal: Principal {
                id: id.into(),
                kind: crate::models::principal::PrincipalKind::Human,
                name: id.into(),
                display_name: None,
                email: None,
                status: crate::models::principal::PrincipalStatus::Active,
                created_at: t,
                updated_at: t,
                tokens_not_before: None,
            },
            granted: scope.split(' ').filter(|s| !s.is_empty()).map(str::to_string).collect(),
        }
    }

    #[test]
    fn admins_set_any_password_and_people_only_their_own() {
        assert_eq!(permission(&caller("a", "admin"), "b").unwrap(), Permission::Admin);
        assert_eq!(permission(&caller("a", "admin"), "a").unwrap(), Permission::Admin);
        assert_eq!(permission(&caller("a", ""), "a").unwrap(), Permission::Own);
        assert!(matches!(
            permission(&caller("a", "registry:read"), "b"),
            Err(Error::Forbidden(_))
        ));
    }
}
