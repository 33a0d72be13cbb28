//! Passkeys (WebAuthn) with `webauthn-rs`: registering one for a person,
//! and checking one, as the second step after a password or alone (a
//! discoverable credential: no username typed). The relying party is the
//! issuer: its host is the RP ID and its origin the only one accepted.
//! Ceremony state waits in the database between challenge and answer, and
//! is used once.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use webauthn_rs::prelude::{
    DiscoverableAuthentication, DiscoverableKey, Passkey, PasskeyAuthentication, PasskeyRegistration,
    PublicKeyCredential, RegisterPublicKeyCredential, Url, Uuid, Webauthn, WebauthnBuilder,
};

use crate::auth::amr::Method;
use crate::auth::second_factor::{self, Confirmed};
use crate::auth::secrets::Pepper;
use crate::db::DbConnection;
use crate::error::{Error, Result};
use crate::models::new_id;
use crate::models::principal::Principal;
use crate::models::second_factor::{self as rows, CeremonyRow, FactorKind, FactorRow};

/// How long a ceremony waits for its answer.
pub const CEREMONY_TTL: Duration = Duration::minutes(5);

/// The relying party, when the issuer can be one.
#[derive(Clone)]
pub struct Passkeys {
    webauthn: Option<std::sync::Arc<Webauthn>>,
    why_not: String,
}

impl std::fmt::Debug for Passkeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Passkeys")
            .field("available", &self.webauthn.is_some())
            .finish()
    }
}

impl Passkeys {
    /// The relying party of `issuer`. WebAuthn needs a domain name (not an
    /// IP address) and a secure context (https, or http on localhost).
    pub fn for_issuer(issuer: &str) -> Self {
        let unavailable = |why: String| Self {
            webauthn: None,
            why_not: why,
        };
        let Ok(origin) = Url::parse(issuer) else {
            return unavailable(format!("the issuer {issuer} is not a URL"));
        };
        let Some(url::Host::Domain(host)) = origin.host() else {
            return unavailable(format!(
                "passkeys need an issuer with a domain name (WebAuthn refuses IP addresses): {issuer}"
            ));
        };
        let host = host.to_string();
        match WebauthnBuilder::new(&host, &origin).and_then(|b| b.rp_name("Roster").build()) {
            Ok(w) => Self {
                webauthn: Some(std::sync::Arc::new(w)),
                why_not: String::new(),
            },
            Err(e) => unavailable(format!("passkeys are unavailable for {issuer}: {e}")),
        }
    }

    fn get(&self) -> Result<&Webauthn> {
        self.webauthn
            .as_deref()
            .ok_or_else(|| Error::Conflict(self.why_not.clone()))
    }

    /// Nothing, or the 409 that says why passkeys are unavailable here.
    pub fn require(&self) -> Result<()> {
        self.get().map(|_| ())
    }

    pub fn available(&self) -> bool {
        self.webauthn.is_some()
    }
}

/// The kinds of ceremony.
const REGISTER: &str = "register";
const INVITED: &str = "invited";
const SECOND_STEP: &str = "second_step";
const DISCOVERABLE: &str = "discoverable";

fn json<T: serde::Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::internal(format!("webauthn state: {e}")))
}

fn parse<T: serde::de::DeserializeOwned>(text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| Error::internal(format!("webauthn state: {e}")))
}

fn user_id(person: &Principal) -> Result<Uuid> {
    Uuid::parse_str(&person.id).map_err(|_| Error::internal("a principal id is not a UUID"))
}

fn store(
    conn: &mut DbConnection,
    kind: &str,
    person: Option<&str>,
    name: Option<&str>,
    state: String,
    now: DateTime<Utc>,
) -> Result<String> {
    let id = new_id();
    rows::insert_ceremony(
        conn,
        &CeremonyRow {
            id: id.clone(),
            principal_id: person.map(str::to_string),
            kind: kind.to_string(),
            name: name.map(str::to_string),
            state,
            expires_at: now + CEREMONY_TTL,
        },
    )?;
    Ok(id)
}

/// A ceremony begun: its id, and the options for `navigator.credentials`.
#[derive(Debug, serde::Serialize)]
pub struct Begun {
    pub ceremony: String,
    pub options: serde_json::Value,
}

/// Who registers a passkey.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registrant {
    /// A person signed in, adding one of their factors.
    Own,
    /// A person with an invitation, registering their first (and only)
    /// credential: no recovery codes, which stand in for a second step
    /// after a password they do not have.
    Invited,
}

impl Registrant {
    fn kind(self) -> &'static str {
        match self {
            Self::Own => REGISTER,
            Self::Invited => INVITED,
        }
    }
}

/// Start registering a passkey named `name` for `person`.
pub fn begin_registration(
    conn: &mut DbConnection,
    passkeys: &Passkeys,
    person: &Principal,
    name: &str,
    registrant: Registrant,
    now: DateTime<Utc>,
) -> Result<Begun> {
    let webauthn = passkeys.get()?;
    let existing: Vec<_> = rows::passkeys_of(conn, &person.id)?
        .iter()
        .filter_map(|f| f.passkey.as_deref().and_then(|p| parse::<Passkey>(p).ok()))
        .map(|p| p.cred_id().clone())
        .collect();
    let display = person.display_name.clone().unwrap_or_else(|| person.name.clone());
    let (ccr, state) = webauthn
        .start_passkey_registration(user_id(person)?, &person.name, &display, Some(existing))
        .map_err(|e| Error::internal(format!("webauthn: {e}")))?;
    let mut options = serde_json::to_value(&ccr).map_err(|e| Error::internal(format!("webauthn: {e}")))?;
    // A discoverable credential, so that it can sign in with no username typed.
    if let Some(sel) = options
        .pointer_mut("/publicKey/authenticatorSelection")
        .and_then(serde_json::Value::as_object_mut)
    {
        sel.insert("residentKey".into(), "required".into());
        sel.insert("requireResidentKey".into(), true.into());
    }
    let ceremony = store(
        conn,
        registrant.kind(),
        Some(&person.id),
        Some(name),
        json(&state)?,
        now,
    )?;
    Ok(Begun { ceremony, options })
}

/// Why a passkey was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// No such ceremony of this person, or it ran out.
    UnknownCeremony,
    /// The authenticator's answer did not verify (the reason, for the audit).
    Invalid(String),
    /// The credential belongs to nobody here.
    UnknownCredential,
}

/// Finish registering: the passkey is stored confirmed; a person's first
/// factor of their own brings recovery codes.
pub fn finish_registration(
    conn: &mut DbConnection,
    passkeys: &Passkeys,
    pepper: &Pepper,
    (person_id, registrant): (&str, Registrant),
    ceremony: &str,
    credential: &RegisterPublicKeyCredential,
    now: DateTime<Utc>,
) -> Result<std::result::Result<Confirmed, Refused>> {
    let webauthn = passkeys.get()?;
    let row = match rows::take_ceremony(conn, ceremony, now)? {
        Some(r) if r.kind == registrant.kind() && r.principal_id.as_deref() == Some(person_id) => r,
        _ => return Ok(Err(Refused::UnknownCeremony)),
    };
    let state: PasskeyRegistration = parse(&row.state)?;
    let passkey = match webauthn.finish_passkey_registration(credential, &state) {
        Ok(p) => p,
        Err(e) => return Ok(Err(Refused::Invalid(e.to_string()))),
    };
    // As a TOTP confirmation: one first factor, one set of recovery codes.
    crate::models::principal::lock(conn, person_id)?;
    let first = registrant == Registrant::Own && !rows::has_confirmed(conn, person_id)?;
    let factor = FactorRow {
        id: new_id(),
        principal_id: person_id.to_string(),
        kind: FactorKind::Passkey,
        name: row.name.unwrap_or_else(|| "Passkey".to_string()),
        secret: None,
        credential_id: Some(URL_SAFE_NO_PAD.encode(passkey.cred_id())),
        passkey: Some(json(&passkey)?),
        last_step: None,
        confirmed_at: Some(now),
        created_at: now,
        last_used_at: None,
    };
    rows::insert(conn, &factor)?;
    let recovery_codes = if first {
        Some(second_factor::new_recovery_codes(conn, pepper, person_id, now)?)
    } else {
        None
    };
    Ok(Ok(Confirmed { factor, recovery_codes }))
}

/// Start checking a passkey: of `person` (a second step), or of whoever
/// the authenticator offers (a discoverable credential).
pub fn begin_authentication(
    conn: &mut DbConnection,
    passkeys: &Passkeys,
    person: Option<&Principal>,
    now: DateTime<Utc>,
) -> Result<Begun> {
    let webauthn = passkeys.get()?;
    let (options, kind, state) = match person {
        Some(p) => {
            let keys: Vec<Passkey> = rows::passkeys_of(conn, &p.id)?
                .iter()
                .filter_map(|f| f.passkey.as_deref().and_then(|k| parse::<Passkey>(k).ok()))
                .collect();
            if keys.is_empty() {
                return Err(Error::Conflict(format!("{} has no passkey", p.name)));
            }
            let (rcr, state) = webauthn
                .start_passkey_authentication(&keys)
                .map_err(|e| Error::internal(format!("webauthn: {e}")))?;
            (serde_json::to_value(&rcr), SECOND_STEP, json(&state)?)
        }
        None => {
            let (mut rcr, state) = webauthn
                .start_discoverable_authentication()
                .map_err(|e| Error::internal(format!("webauthn: {e}")))?;
            // A button, not the autofill of conditional mediation.
            rcr.mediation = None;
            (serde_json::to_value(&rcr), DISCOVERABLE, json(&state)?)
        }
    };
    let ceremony = store(conn, kind, person.map(|p| p.id.as_str()), None, state, now)?;
    Ok(Begun {
        ceremony,
        options: options.map_err(|e| Error::internal(format!("webauthn: {e}")))?,
    })
}

/// Whether `ceremony` is a sign-in with a passkey alone (no person named):
/// it starts a new login whatever login is under way in the browser.
pub fn is_discoverable(conn: &mut DbConnection, ceremony: &str) -> Result<bool> {
    Ok(rows::find_ceremony(conn, ceremony)?.is_some_and(|c| c.kind == DISCOVERABLE))
}

/// A passkey that verified: whose, which, and what it proved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub principal_id: String,
    pub factor_id: String,
    pub methods: Vec<Method>,
}

/// Finish checking a passkey: its signature, its counter (a clone shows
/// as a counter going back), and for a second step that it is `person`'s.
pub fn finish_authentication(
    conn: &mut DbConnection,
    passkeys: &Passkeys,
    ceremony: &str,
    credential: &PublicKeyCredential,
    person: Option<&str>,
    now: DateTime<Utc>,
) -> Result<std::result::Result<Verified, Refused>> {
    let webauthn = passkeys.get()?;
    let row = match rows::take_ceremony(conn, ceremony, now)? {
        Some(r) if r.principal_id.as_deref() == person => r,
        _ => return Ok(Err(Refused::UnknownCeremony)),
    };
    let cred_id = URL_SAFE_NO_PAD.encode(credential.get_credential_id());
    let Some(factor) = rows::find_by_credential(conn, &cred_id)?.filter(|f| f.confirmed()) else {
        return Ok(Err(Refused::UnknownCredential));
    };
    if person.is_some_and(|p| p != factor.principal_id) {
        return Ok(Err(Refused::UnknownCredential));
    }
    let mut passkey: Passkey = parse(factor.passkey.as_deref().unwrap_or("null"))?;
    let result = match row.kind.as_str() {
        SECOND_STEP => {
            let state: PasskeyAuthentication = parse(&row.state)?;
            webauthn.finish_passkey_authentication(credential, &state)
        }
        DISCOVERABLE => {
            match webauthn.identify_discoverable_authentication(credential) {
                Ok((user, _)) if user.to_string() == factor.principal_id => {}
                _ => return Ok(Err(Refused::UnknownCredential)),
            }
            let state: DiscoverableAuthentication = parse(&row.state)?;
            webauthn.finish_discoverable_authentication(credential, state, &[DiscoverableKey::from(&passkey)])
        }
        _ => return Ok(Err(Refused::UnknownCeremony)),
    };
    let result = match result {
        Ok(r) => r,
        Err(e) => return Ok(Err(Refused::Invalid(e.to_string()))),
    };
    let changed = passkey.update_credential(&result).unwrap_or(false);
    let stored = if changed { Some(json(&passkey)?) } else { None };
    rows::passkey_used(conn, &factor.id, stored.as_deref(), now)?;
    let mut methods = vec![Method::Hwk];
    if result.user_verified() {
        methods.push(Method::User);
    }
    Ok(Ok(Verified {
        principal_id: factor.principal_id,
        factor_id: factor.id,
        methods,
    }))
}
