//! The admin console's own login client: a public service principal,
//! registered when `roster serve` starts, with no scopes of its own. An
//! admin's console token carries the admin's scopes, never the console's.

use chrono::{DateTime, Utc};

use crate::auth::secrets::Pepper;
use crate::db::DbConnection;
use crate::error::Result;
use crate::models::client_settings::{self, ClientSettings};
use crate::models::principal::{self, PrincipalKind};

use super::input::{NewPrincipal, PrincipalChanges, validate_redirect_uri};

/// The console's client_id.
pub const CONSOLE_CLIENT: &str = crate::names::FIRST_PARTY_CLIENT;

/// Where a console login returns, and where its logout lands.
pub fn redirect_uri(issuer: &str) -> String {
    format!("{issuer}/console/")
}

/// Where the device login's verification page has the browser login return.
pub fn device_redirect_uri(issuer: &str) -> String {
    format!("{issuer}/oauth/device")
}

/// What [`ensure`] found or did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsoleClient {
    /// Registered now.
    Registered,
    /// Its redirect URIs followed a new issuer.
    Updated,
    Unchanged,
    /// An admin disabled it: the console cannot log in, by their choice.
    Disabled,
    /// The console cannot be offered; the reason is for the operator.
    Unavailable(String),
}

fn input(redirect: &str, device: &str) -> NewPrincipal {
    NewPrincipal {
        kind: PrincipalKind::Service,
        name: CONSOLE_CLIENT.to_string(),
        display_name: Some("Roster admin console".to_string()),
        email: None,
        scopes: Vec::new(),
        categories: Vec::new(),
        client: ClientSettings {
            public_client: true,
            redirect_uris: vec![redirect.to_string(), device.to_string()],
            post_logout_redirect_uris: vec![redirect.to_string()],
        },
        credentials: Default::default(),
        token_exchange: None,
    }
}

/// Register the console's public client for `issuer`, or bring its
/// redirect URIs to it. An issuer that is neither https nor loopback http
/// gets no console: its tokens would cross the network in the clear (and
/// browsers offer PKCE's `crypto.subtle` only to secure pages).
pub fn ensure(conn: &mut DbConnection, pepper: &Pepper, issuer: &str, now: DateTime<Utc>) -> Result<ConsoleClient> {
    let redirect = redirect_uri(issuer);
    let device = device_redirect_uri(issuer);
    if let Err(e) = validate_redirect_uri("redirect_uris", &redirect) {
        return Ok(ConsoleClient::Unavailable(format!(
            "the issuer {issuer} cannot take browser logins ({e}); use an https issuer (--issuer)"
        )));
    }
    let Some(existing) = principal::find_by_name(conn, CONSOLE_CLIENT)? else {
        return match super::manage::create_service(conn, pepper, &input(&redirect, &device), None, now) {
            Ok(_) => Ok(ConsoleClient::Registered),
            // Another instance, starting at the same moment with the same
            // issuer, registered it.
            Err(crate::error::Error::Conflict(_)) => Ok(ConsoleClient::Unchanged),
            Err(e) => Err(e),
        };
    };
    let settings = client_settings::find(conn, &existing.id)?;
    let ours = existing.kind == PrincipalKind::Service && settings.as_ref().is_some_and(|s| s.public_client);
    if !ours {
        return Ok(ConsoleClient::Unavailable(format!(
            "the name {CONSOLE_CLIENT} belongs to a principal that is not a public client; rename it to offer the console"
        )));
    }
    if !existing.is_active() {
        return Ok(ConsoleClient::Disabled);
    }
    let wanted = vec![redirect.clone(), device];
    let logout = vec![redirect];
    if settings.is_some_and(|s| s.redirect_uris == wanted && s.post_logout_redirect_uris == logout) {
        return Ok(ConsoleClient::Unchanged);
    }
    let changes = PrincipalChanges {
        display_name: None,
        email: None,
        scopes: None,
        categories: None,
        redirect_uris: Some(wanted),
        post_logout_redirect_uris: Some(logout),
        credentials: Default::default(),
        token_exchange: None,
    };
    super::manage::update(conn, &existing.id, &changes, None, None, now)?;
    Ok(ConsoleClient::Updated)
}
