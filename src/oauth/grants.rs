//! The grants as pure functions of their inputs and `now`: they decide who the
//! token is for, its scope, audience and lifetime. Loading rows, checking
//! secrets and passwords, and signing happen around them in `token.rs`.

use chrono::{DateTime, Duration, Utc};

use super::client_auth::Client;
use super::error::OAuthError;
use crate::auth::amr::Amr;
use crate::auth::jwt::{AccessTokenClaims, Issuer};
use crate::models::principal::{Principal, PrincipalKind};
use crate::models::refresh_token::RefreshTokenRow;
use crate::names::Scopes;

/// Token lifetimes and the issuer.
#[derive(Debug, Clone)]
pub struct TokenConfig {
    pub issuer: Issuer,
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
    /// RFC 6749 §4.3 is still offered (scripts, the CLI); `--password-grant off` ends it.
    pub password_grant: bool,
    /// The longest life of a client's own assertion (`private_key_jwt`):
    /// `exp` at most this long after `iat` or now (RFC 7523 §3 item 4).
    pub assertion_max_lifetime: Duration,
}

/// The audience of a token: a registered service named by `resource`
/// (RFC 8707), or Roster itself.
#[derive(Debug, Clone, Copy)]
pub enum Audience<'a> {
    Roster,
    Service(&'a Principal),
}

/// What a grant decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub claims: AccessTokenClaims,
    pub scopes: Vec<String>,
    /// Present when a refresh token is to be issued: its expiry.
    pub refresh_expires_at: Option<DateTime<Utc>>,
}

/// RFC 6749 §3.3: the requested scope must be a subset of what the principal
/// was granted; when omitted, the token carries everything granted.
pub fn resolve_scope(requested: Option<&Scopes>, granted: &[String]) -> Result<Vec<String>, OAuthError> {
    let Some(requested) = requested else {
        let mut all = granted.to_vec();
        all.sort();
        all.dedup();
        return Ok(all);
    };
    match requested.iter().find(|s| !granted.iter().any(|g| g == s)) {
        Some(s) => Err(OAuthError::invalid_scope(format!("scope '{s}' is not granted"))),
        None => Ok(requested.to_vec()),
    }
}

fn audience_of(audience: Audience<'_>, cfg: &TokenConfig) -> Result<String, OAuthError> {
    match audience {
        Audience::Roster => Ok(cfg.issuer.to_string()),
        Audience::Service(p) if p.kind == PrincipalKind::Service && p.is_active() => Ok(p.name.clone()),
        Audience::Service(p) => Err(OAuthError::new(
            super::error::ErrorCode::InvalidTarget,
            format!("resource '{}' is not an active service", p.name),
        )),
    }
}

fn claims(
    subject: &Principal,
    client_id: &str,
    scopes: &[String],
    aud: String,
    cfg: &TokenConfig,
    now: DateTime<Utc>,
    jti: String,
) -> AccessTokenClaims {
    // A token must outlive a disable that happened in the same second: it is
    // dated just after it (within every verifier's clock leeway).
    let iat = match subject.tokens_not_before {
        Some(t) if t.timestamp() >= now.timestamp() => t.timestamp() + 1,
        _ => now.timestamp(),
    };
    AccessTokenClaims {
        iss: cfg.issuer.to_string(),
        sub: subject.id.clone(),
        aud: aud.into(),
        exp: iat + cfg.access_ttl.num_seconds(),
        iat,
        nbf: Some(iat),
        jti,
        client_id: client_id.to_string(),
        scope: scopes.join(" "),
        principal_kind: subject.kind.to_string(),
        name: subject.name.clone(),
        act: None,
        root_jti: None,
        amr: None,
        acr: None,
    }
}

/// How a token is issued: under which settings, when (`iat`), and with
/// which id (`jti`, made by the caller so that grants stay pure).
#[derive(Debug, Clone)]
pub struct Issued<'a> {
    pub cfg: &'a TokenConfig,
    pub now: DateTime<Utc>,
    pub jti: String,
}

/// RFC 6749 §4.4: a service authenticated with its own secret gets a token for
/// itself. No refresh token is issued (§4.4.3).
pub fn client_credentials(
    client: &Principal,
    granted: &[String],
    scope: Option<&Scopes>,
    audience: Audience<'_>,
    issued: Issued<'_>,
) -> Result<Grant, OAuthError> {
    let Issued { cfg, now, jti } = issued;
    if client.kind != PrincipalKind::Service {
        return Err(OAuthError::unauthorized_client(
            "only service principals may use client_credentials",
        ));
    }
    if !client.is_active() {
        return Err(OAuthError::invalid_client());
    }
    let scopes = resolve_scope(scope, granted)?;
    let aud = audience_of(audience, cfg)?;
    Ok(Grant {
        claims: claims(client, &client.name, &scopes, aud, cfg, now, jti),
        scopes,
        refresh_expires_at: None,
    })
}

/// RFC 6749 §4.3: a person whose password has been verified. `client` is the
/// service acting for them, if any; without one the person is their own client.
pub fn password(
    user: &Principal,
    granted: &[String],
    client: Option<&str>,
    scope: Option<&Scopes>,
    audience: Audience<'_>,
    issued: Issued<'_>,
) -> Result<Grant, OAuthError> {
    let Issued { cfg, now, jti } = issued;
    if user.kind != PrincipalKind::Human || !user.is_active() {
        return Err(OAuthError::invalid_grant("invalid username or password"));
    }
    let scopes = resolve_scope(scope, granted)?;
    let aud = audience_of(audience, cfg)?;
    Ok(Grant {
        claims: claims(user, client.unwrap_or(&user.name), &scopes, aud, cfg, now, jti),
        scopes,
        refresh_expires_at: Some(now + cfg.refresh_ttl),
    })
}

/// RFC 6749 §4.1.3: a person's code, redeemed by the client it was issued
/// to. The token carries the code's scopes the person still holds, and the
/// OpenID scopes; its audience is Roster.
pub fn authorization_code(
    user: &Principal,
    held_now: &[String],
    client: &str,
    code_scope: &str,
    issued: Issued<'_>,
) -> Result<Grant, OAuthError> {
    let Issued { cfg, now, jti } = issued;
    if user.kind != PrincipalKind::Human || !user.is_active() {
        return Err(OAuthError::invalid_grant(
            "the authorization code is invalid, expired or already used",
        ));
    }
    let scopes = crate::auth::access::effective_scopes(&Scopes::from_stored(code_scope), held_now);
    Ok(Grant {
        claims: claims(user, client, &scopes, cfg.issuer.to_string(), cfg, now, jti),
        scopes,
        refresh_expires_at: Some(now + cfg.refresh_ttl),
    })
}

/// RFC 6749 §6: exchange an unspent refresh token. The new scope may narrow
/// the original (§6) and loses anything the principal is no longer granted.
/// A token issued to a confidential client refreshes only when that client
/// authenticates again (§6: "the client MUST authenticate").
pub fn refresh(
    stored: &RefreshTokenRow,
    user: &Principal,
    granted_now: &[String],
    presented: &Client,
    scope: Option<&Scopes>,
    issued: Issued<'_>,
) -> Result<Grant, OAuthError> {
    let Issued { cfg, now, jti } = issued;
    if stored.is_spent() || stored.is_expired(now) {
        return Err(OAuthError::invalid_grant(
            "the refresh token is invalid, expired or revoked",
        ));
    }
    let client = presented.name();
    if stored.client_id.as_deref() != client {
        return Err(OAuthError::invalid_grant(
            "the refresh token was issued to another client",
        ));
    }
    if stored.client_confidential && !matches!(presented, Client::Confidential(_)) {
        return Err(OAuthError::invalid_client());
    }
    if !user.is_active() || user.id != stored.principal_id {
        return Err(OAuthError::invalid_grant(
            "the refresh token is invalid, expired or revoked",
        ));
    }
    let original = Scopes::from_stored(&stored.scope).to_vec();
    let requested: Scopes = resolve_scope(scope, &original)?.into_iter().collect();
    // OpenID scopes are not granted to anyone: they ask for the person's own claims.
    let scopes = crate::auth::access::effective_scopes(&requested, granted_now);
    let mut claims = claims(
        user,
        client.unwrap_or(&user.name),
        &scopes,
        stored.audience.clone(),
        cfg,
        now,
        jti,
    );
    // A refreshed token says how its person logged in, as the first did
    // (OpenID Connect Core §12.2: the login behind it is the same).
    if let Some(stored) = &stored.amr {
        let amr = Amr::from_stored(stored);
        claims.amr = Some(amr.names().iter().map(|m| m.to_string()).collect());
        claims.acr = Some(amr.level().acr().to_string());
    }
    Ok(Grant {
        claims,
        scopes,
        refresh_expires_at: Some(now + cfg.refresh_ttl),
    })
}

/// What a token exchange (RFC 8693 §2.1) decided before its grant: the
/// verified, live subject token and whom it is for, the acting service, the
/// resolved target services, and the scope requested.
#[derive(Debug, Clone, Copy)]
pub struct Exchange<'a> {
    pub subject_token: &'a AccessTokenClaims,
    pub subject: &'a Principal,
    /// The scopes `subject` holds now.
    pub held: &'a [String],
    pub actor: &'a Principal,
    /// The services the token is for (RFC 8693 §2.1 `audience`).
    pub audiences: &'a [String],
    pub scope: Option<&'a Scopes>,
}

/// RFC 8693 §2.2 and §4.1: the token `actor` gets to act for the subject
/// token's subject towards `audiences`. It carries at most the subject
/// token's effective scopes, never outlives it, and nests the subject
/// token's `act` inside its own, so the whole chain stays visible.
pub fn exchange(x: Exchange<'_>, issued: Issued<'_>) -> Result<Grant, OAuthError> {
    let Issued { cfg, now, jti } = issued;
    let offered = crate::auth::access::effective_scopes(&Scopes::from_stored(&x.subject_token.scope), x.held);
    let scopes = match x.scope {
        None => offered,
        Some(requested) => match requested.iter().find(|s| !offered.iter().any(|o| o == s)) {
            Some(s) => {
                return Err(OAuthError::invalid_scope(format!(
                    "scope '{s}' is not among the subject token's scopes"
                )));
            }
            None => requested.to_vec(),
        },
    };
    let mut c = claims(x.subject, &x.actor.name, &scopes, String::new(), cfg, now, jti);
    c.aud = crate::auth::jwt::Audience::many(x.audiences.to_vec());
    c.exp = c.exp.min(x.subject_token.exp);
    c.act = Some(crate::auth::jwt::Actor {
        sub: x.actor.id.clone(),
        client_id: x.actor.name.clone(),
        act: x.subject_token.act.clone().map(Box::new),
    });
    c.root_jti = Some(x.subject_token.root().to_string());
    Ok(Grant {
        claims: c,
        scopes,
        refresh_expires_at: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 10, 0, 0).unwrap()
    }

    /// The usual issuing context of these tests: `cfg`, [`now`], jti `j`.
    fn issued(cfg: &TokenConfig) -> Issued<'_> {
        Issued {
            cfg,
            now: now(),
            jti: "j".into(),
        }
    }

    /// A client's `scope` parameter, as the token endpoint parses it.
    fn sc(value: &str) -> Scopes {
        Scopes::parse(value).unwrap()
    }

    fn cfg() -> TokenConfig {
        TokenConfig {
            issuer: Issuer::new("https://id.example"),
            access_ttl: Duration::minutes(5),
            refresh_ttl: Duration::days(30),
            password_grant: true,
            assertion_max_lifetime: Duration::minutes(5),
        }
    }

    fn principal(kind: &str, name: &str, status: &str) -> Principal {
        Principal {
            id: format!("id-{name}"),
            kind: kind.parse().unwrap(),
            name: name.into(),
            display_name: None,
            email: None,
            status: status.parse().unwrap(),
            created_at: now(),
            updated_at: now(),
            tokens_not_before: None,
        }
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn scope_defaults_to_all_granted_and_must_be_a_subset() {
        let granted = s(&["b", "a"]);
        assert_eq!(resolve_scope(None, &granted).unwrap(), s(&["a", "b"]));
        assert_eq!(resolve_scope(Some(&sc("b")), &granted).unwrap(), s(&["b"]));
        assert_eq!(resolve_scope(Some(&sc("a  b a")), &granted).unwrap(), s(&["a", "b"]));
        let e = resolve_scope(Some(&sc("a c")), &granted).unwrap_err();
        assert_eq!(e.code(), super::super::error::ErrorCode::InvalidScope);
    }

    #[test]
    fn client_credentials_issues_for_the_service_itself() {
        let svc = principal("service", "billing", "active");
        let g = client_credentials(
            &svc,
            &s(&["x", "y"]),
            Some(&sc("x")),
            Audience::Roster,
            Issued {
                cfg: &cfg(),
                now: now(),
                jti: "j1".into(),
            },
        )
        .unwrap();
        let c = &g.claims;
        assert_eq!(c.sub, "id-billing");
        assert_eq!(c.client_id, "billing");
        assert_eq!(c.name, "billing");
        assert_eq!(c.principal_kind, "service");
        assert_eq!(c.aud, "https://id.example");
        assert_eq!(c.iss, "https://id.example");
        assert_eq!(c.scope, "x");
        assert_eq!(c.iat, now().timestamp());
        assert_eq!(c.nbf, Some(c.iat));
        assert_eq!(c.exp, c.iat + 300);
        assert_eq!(c.jti, "j1");
        assert_eq!(g.refresh_expires_at, None);
    }

    #[test]
    fn a_token_issued_in_the_second_of_a_disable_is_dated_after_it() {
        let mut svc = principal("service", "billing", "active");
        svc.tokens_not_before = Some(now() + Duration::milliseconds(300));
        let g = client_credentials(&svc, &[], None, Audience::Roster, issued(&cfg())).unwrap();
        assert_eq!(g.claims.iat, now().timestamp() + 1);
        assert_eq!(g.claims.nbf, Some(g.claims.iat));
        assert_eq!(g.claims.exp, g.claims.iat + 300);
        assert!(!svc.killed_token(g.claims.iat));
        assert!(
            svc.killed_token(now().timestamp()),
            "tokens of that second before it are dead"
        );
        let later = now() + Duration::seconds(5);
        let g = client_credentials(
            &svc,
            &[],
            None,
            Audience::Roster,
            Issued {
                cfg: &cfg(),
                now: later,
                jti: "j".into(),
            },
        )
        .unwrap();
        assert_eq!(g.claims.iat, later.timestamp());
    }

    #[test]
    fn client_credentials_audience_is_the_named_service() {
        let svc = principal("service", "billing", "active");
        let target = principal("service", "ledger", "active");
        let g = client_credentials(&svc, &[], None, Audience::Service(&target), issued(&cfg())).unwrap();
        assert_eq!(g.claims.aud, "ledger");
        let human = principal("human", "alice", "active");
        let e = client_credentials(&svc, &[], None, Audience::Service(&human), issued(&cfg())).unwrap_err();
        assert_eq!(e.code(), super::super::error::ErrorCode::InvalidTarget);
    }

    #[test]
    fn client_credentials_refuses_humans_and_disabled_services() {
        let human = principal("human", "alice", "active");
        let e = client_credentials(&human, &[], None, Audience::Roster, issued(&cfg())).unwrap_err();
        assert_eq!(e.code(), super::super::error::ErrorCode::UnauthorizedClient);
        let off = principal("service", "billing", "disabled");
        let e = client_credentials(&off, &[], None, Audience::Roster, issued(&cfg())).unwrap_err();
        assert_eq!(e.code(), super::super::error::ErrorCode::InvalidClient);
    }

    #[test]
    fn password_grant_issues_a_refresh_token_for_humans_only() {
        let alice = principal("human", "alice", "active");
        let g = password(&alice, &s(&["r"]), None, None, Audience::Roster, issued(&cfg())).unwrap();
        assert_eq!(g.claims.client_id, "alice");
        assert_eq!(g.claims.principal_kind, "human");
        assert_eq!(g.scopes, s(&["r"]));
        assert_eq!(g.refresh_expires_at, Some(now() + Duration::days(30)));
        let g = password(&alice, &[], Some("portal"), None, Audience::Roster, issued(&cfg())).unwrap();
        assert_eq!(g.claims.client_id, "portal");
        let svc = principal("service", "billing", "active");
        let e = password(&svc, &[], None, None, Audience::Roster, issued(&cfg())).unwrap_err();
        assert_eq!(e.code(), super::super::error::ErrorCode::InvalidGrant);
        let off = principal("human", "bob", "disabled");
        let e = password(&off, &[], None, None, Audience::Roster, issued(&cfg())).unwrap_err();
        assert_eq!(
            (e.code(), e.description()),
            (
                super::super::error::ErrorCode::InvalidGrant,
                "invalid username or password"
            )
        );
    }

    fn stored(scope: &str, client: Option<&str>) -> RefreshTokenRow {
        RefreshTokenRow {
            id: "r1".into(),
            family_id: "f1".into(),
            principal_id: "id-alice".into(),
            client_id: client.map(str::to_string),
            token_hash: "h".into(),
            scope: scope.into(),
            audience: "https://id.example".into(),
            created_at: now(),
            expires_at: now() + Duration::days(1),
            used_at: None,
            revoked_at: None,
            client_confidential: false,
            session_id: None,
            amr: None,
        }
    }

    #[test]
    fn a_refreshed_token_says_how_its_person_logged_in() {
        let alice = principal("human", "alice", "active");
        let client = Client::Public("spa".into());
        let plain = refresh(
            &stored("a", Some("spa")),
            &alice,
            &s(&["a"]),
            &client,
            None,
            issued(&cfg()),
        )
        .unwrap();
        assert_eq!((plain.claims.amr, plain.claims.acr), (None, None));
        let mut row = stored("a", Some("spa"));
        row.amr = Some("pwd otp mfa".into());
        let two = refresh(&row, &alice, &s(&["a"]), &client, None, issued(&cfg())).unwrap();
        assert_eq!(
            (two.claims.amr, two.claims.acr),
            (
                Some(vec!["pwd".to_string(), "otp".into(), "mfa".into()]),
                Some("mfa".to_string())
            )
        );
    }

    #[test]
    fn a_confidential_clients_token_refreshes_only_with_its_secret() {
        let alice = principal("human", "alice", "active");
        let mut row = stored("a", Some("portal"));
        row.client_confidential = true;
        let with_secret = Client::Confidential("portal".into());
        assert!(refresh(&row, &alice, &s(&["a"]), &with_secret, None, issued(&cfg())).is_ok());
        let bare = Client::Public("portal".into());
        let e = refresh(&row, &alice, &s(&["a"]), &bare, None, issued(&cfg())).unwrap_err();
        assert_eq!(e.code(), super::super::error::ErrorCode::InvalidClient);
        let e = refresh(&row, &alice, &s(&["a"]), &Client::None, None, issued(&cfg())).unwrap_err();
        assert_eq!(e.code(), super::super::error::ErrorCode::InvalidGrant);
        // A public client's token needs no secret, and a secret does not hurt.
        let public = stored("a", Some("portal"));
        assert!(refresh(&public, &alice, &s(&["a"]), &bare, None, issued(&cfg())).is_ok());
        assert!(refresh(&public, &alice, &s(&["a"]), &with_secret, None, issued(&cfg())).is_ok());
    }

    #[test]
    fn refresh_narrows_scope_and_drops_revoked_grants() {
        let alice = principal("human", "alice", "active");
        let later = now() + Duration::hours(1);
        let g = refresh(
            &stored("a b c", None),
            &alice,
            &s(&["a", "b"]),
            &Client::None,
            None,
            Issued {
                cfg: &cfg(),
                now: later,
                jti: "j".into(),
            },
        )
        .unwrap();
        assert_eq!(g.scopes, s(&["a", "b"]));
        assert_eq!(g.claims.iat, later.timestamp());
        let g = refresh(
            &stored("a b", None),
            &alice,
            &s(&["a", "b"]),
            &Client::None,
            Some(&sc("a")),
            Issued {
                cfg: &cfg(),
                now: later,
                jti: "j".into(),
            },
        )
        .unwrap();
        assert_eq!(g.scopes, s(&["a"]));
        let e = refresh(
            &stored("a", None),
            &alice,
            &s(&["a", "b"]),
            &Client::None,
            Some(&sc("b")),
            Issued {
                cfg: &cfg(),
                now: later,
                jti: "j".into(),
            },
        )
        .unwrap_err();
        assert_eq!(e.code(), super::super::error::ErrorCode::InvalidScope);
    }

    /// The code and description a refused grant answers with.
    fn refused<T: std::fmt::Debug>(r: Result<T, OAuthError>) -> (super::super::error::ErrorCode, String) {
        let e = r.unwrap_err();
        (e.code(), e.description().to_string())
    }

    #[test]
    fn refresh_refuses_spent_expired_foreign_and_disabled() {
        use super::super::error::ErrorCode::InvalidGrant;
        let dead = (
            InvalidGrant,
            "the refresh token is invalid, expired or revoked".to_string(),
        );
        let alice = principal("human", "alice", "active");
        let mut spent = stored("a", None);
        spent.used_at = Some(now());
        assert_eq!(
            refused(refresh(&spent, &alice, &[], &Client::None, None, issued(&cfg()))),
            dead
        );
        let mut revoked = stored("a", None);
        revoked.revoked_at = Some(now());
        assert_eq!(
            refused(refresh(&revoked, &alice, &[], &Client::None, None, issued(&cfg()))),
            dead
        );
        let expired_at = now() + Duration::days(1);
        assert_eq!(
            refused(refresh(
                &stored("a", None),
                &alice,
                &[],
                &Client::None,
                None,
                Issued {
                    cfg: &cfg(),
                    now: expired_at,
                    jti: "j".into()
                }
            )),
            dead,
            "expired at its expiry"
        );
        assert!(
            refresh(
                &stored("a", None),
                &alice,
                &[],
                &Client::None,
                None,
                Issued {
                    cfg: &cfg(),
                    now: expired_at - Duration::seconds(1),
                    jti: "j".into()
                }
            )
            .is_ok()
        );
        let foreign = (
            InvalidGrant,
            "the refresh token was issued to another client".to_string(),
        );
        assert_eq!(
            refused(refresh(
                &stored("a", Some("portal")),
                &alice,
                &[],
                &Client::None,
                None,
                issued(&cfg())
            )),
            foreign
        );
        assert_eq!(
            refused(refresh(
                &stored("a", None),
                &alice,
                &[],
                &Client::Public("portal".into()),
                None,
                issued(&cfg())
            )),
            foreign
        );
        assert!(
            refresh(
                &stored("a", Some("portal")),
                &alice,
                &[],
                &Client::Public("portal".into()),
                None,
                issued(&cfg())
            )
            .is_ok()
        );
        let off = principal("human", "alice", "disabled");
        assert_eq!(
            refused(refresh(
                &stored("a", None),
                &off,
                &[],
                &Client::None,
                None,
                issued(&cfg())
            )),
            dead
        );
        let bob = principal("human", "bob", "active");
        assert_eq!(
            refused(refresh(
                &stored("a", None),
                &bob,
                &[],
                &Client::None,
                None,
                issued(&cfg())
            )),
            dead
        );
    }
}
