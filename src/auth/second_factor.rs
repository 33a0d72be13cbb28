//! A person's second factors as stored: TOTP enrolment and confirmation,
//! the second step of a login (a TOTP code or a recovery code, each
//! accepted once), recovery codes, and whether a person must pass a second
//! step at all. The login page and the self-service API both call these
//! inside their transactions, and audit around them.

use chrono::{DateTime, Utc};

use crate::auth::secrets::{Pepper, SecretString};
use crate::auth::{recovery_codes, sealed, totp};
use crate::db::DbConnection;
use crate::error::{Error, Result};
use crate::models::new_id;
use crate::models::principal::{self, Principal};
use crate::models::second_factor::{self as rows, FactorKind, FactorRow, Mfa};

/// The server's MFA policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MfaPolicy {
    /// Everyone holding `admin` must pass a second step (on by default).
    pub admins_required: bool,
}

impl Default for MfaPolicy {
    fn default() -> Self {
        Self { admins_required: true }
    }
}

/// Longest factor name, in characters.
pub const MAX_NAME_CHARS: usize = 64;

/// An unconfirmed enrolment is forgotten after this long.
pub const ENROLMENT_TTL: chrono::Duration = chrono::Duration::minutes(15);

const TOTP_PURPOSE: &str = "totp-secret-encryption";

/// Must `person` pass a second step to log in: their own setting, or the
/// server's for admins.
pub fn required(conn: &mut DbConnection, person: &Principal, policy: MfaPolicy) -> Result<bool> {
    if rows::mfa_of(conn, &person.id)? == Mfa::Required {
        return Ok(true);
    }
    if !policy.admins_required {
        return Ok(false);
    }
    let scopes = principal::scopes_of(conn, &person.id)?;
    Ok(scopes.iter().any(|s| s == crate::auth::access::ADMIN_SCOPE))
}

/// What a login must still do after the password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// Nothing: the password suffices.
    Nothing,
    /// A code from a confirmed factor, or a recovery code.
    SecondFactor,
    /// The person has no factor but must pass a second step: enrol one now.
    Enrol,
}

/// What `person` must do after their password, when the login asks for
/// `wants_mfa` (an `acr_values` of `mfa`) or not.
pub fn due(conn: &mut DbConnection, person: &Principal, policy: MfaPolicy, wants_mfa: bool) -> Result<Due> {
    if rows::has_confirmed(conn, &person.id)? {
        return Ok(Due::SecondFactor);
    }
    if wants_mfa || required(conn, person, policy)? {
        return Ok(Due::Enrol);
    }
    Ok(Due::Nothing)
}

/// A TOTP enrolment, answered once.
#[derive(Debug)]
pub struct TotpEnrolment {
    pub id: String,
    /// base32, as authenticator apps take it.
    pub secret: SecretString,
    pub otpauth_uri: SecretString,
}

/// Start enrolling a TOTP factor named `name` for `person`: stored
/// unconfirmed, its secret sealed.
pub fn begin_totp(
    conn: &mut DbConnection,
    pepper: &Pepper,
    person: &Principal,
    name: &str,
    issuer: &str,
    now: DateTime<Utc>,
) -> Result<TotpEnrolment> {
    let mut secret = [0u8; totp::SECRET_BYTES];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut secret)
        .map_err(|_| Error::internal("the random generator failed"))?;
    let id = new_id();
    let key = sealed::key_for(pepper, TOTP_PURPOSE)?;
    rows::insert(
        conn,
        &FactorRow {
            id: id.clone(),
            principal_id: person.id.clone(),
            kind: FactorKind::Totp,
            name: name.to_string(),
            secret: Some(sealed::seal(&key, id.as_bytes(), &secret)?),
            credential_id: None,
            passkey: None,
            last_step: None,
            confirmed_at: None,
            created_at: now,
            last_used_at: None,
        },
    )?;
    let uri = totp::otpauth_uri(&secret, issuer, &person.name)
        .ok_or_else(|| Error::internal("a TOTP URI could not be made"))?;
    Ok(TotpEnrolment {
        id,
        secret: SecretString::new(totp::base32(&secret)),
        otpauth_uri: SecretString::new(uri),
    })
}

/// An unconfirmed TOTP enrolment of `person` shown again (after a wrong
/// code), while it may still be confirmed.
pub fn reopen_totp(
    conn: &mut DbConnection,
    pepper: &Pepper,
    person: &Principal,
    id: &str,
    issuer: &str,
    now: DateTime<Utc>,
) -> Result<Option<TotpEnrolment>> {
    let row = match rows::find(conn, &person.id, id)? {
        Some(r) if r.kind == FactorKind::Totp && !r.confirmed() && now < r.created_at + ENROLMENT_TTL => r,
        _ => return Ok(None),
    };
    let secret = secret_of(pepper, &row)?;
    let uri = totp::otpauth_uri(&secret, issuer, &person.name)
        .ok_or_else(|| Error::internal("a TOTP URI could not be made"))?;
    Ok(Some(TotpEnrolment {
        id: row.id,
        secret: SecretString::new(totp::base32(&secret)),
        otpauth_uri: SecretString::new(uri),
    }))
}

/// The label authenticator apps show for Roster at `issuer`: its host.
pub fn issuer_label(issuer: &str) -> String {
    url::Url::parse(issuer)
        .ok()
        .and_then(|u| u.host_str().map(|h| format!("Roster {h}")))
        .unwrap_or_else(|| "Roster".to_string())
}

fn secret_of(pepper: &Pepper, row: &FactorRow) -> Result<Vec<u8>> {
    let sealed_secret = row
        .secret
        .as_deref()
        .ok_or_else(|| Error::internal("a TOTP factor without a secret"))?;
    sealed::open(
        &[sealed::key_for(pepper, TOTP_PURPOSE)?],
        row.id.as_bytes(),
        sealed_secret,
        "TOTP secret",
    )
}

/// Why a TOTP confirmation was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfirmRefusal {
    /// No unconfirmed TOTP enrolment of this person has that id (or it expired).
    Unknown,
    /// The code is not the enrolment's.
    WrongCode,
}

/// What a confirmation gave: the factor, and the recovery codes when it is
/// the person's first confirmed factor.
#[derive(Debug)]
pub struct Confirmed {
    pub factor: FactorRow,
    pub recovery_codes: Option<Vec<SecretString>>,
}

/// Confirm TOTP enrolment `id` of `person` with `code`.
pub fn confirm_totp(
    conn: &mut DbConnection,
    pepper: &Pepper,
    person_id: &str,
    id: &str,
    code: &str,
    now: DateTime<Utc>,
) -> Result<std::result::Result<Confirmed, ConfirmRefusal>> {
    let row = match rows::find(conn, person_id, id)? {
        Some(r) if r.kind == FactorKind::Totp && !r.confirmed() && now < r.created_at + ENROLMENT_TTL => r,
        _ => return Ok(Err(ConfirmRefusal::Unknown)),
    };
    let secret = secret_of(pepper, &row)?;
    let Some(step) = totp::matching_step(&secret, code, unix(now)) else {
        return Ok(Err(ConfirmRefusal::WrongCode));
    };
    // One confirmation of this person's at a time: of two first factors
    // confirmed at once, one brings the recovery codes, and they stay valid.
    crate::models::principal::lock(conn, person_id)?;
    let first = !rows::has_confirmed(conn, person_id)?;
    if !rows::confirm(conn, id, Some(step as i64), now)? {
        return Ok(Err(ConfirmRefusal::Unknown));
    }
    let recovery_codes = if first {
        Some(new_recovery_codes(conn, pepper, person_id, now)?)
    } else {
        None
    };
    let factor = rows::find(conn, person_id, id)?.ok_or_else(|| Error::internal("a factor vanished"))?;
    Ok(Ok(Confirmed { factor, recovery_codes }))
}

/// Replace a person's recovery codes with ten fresh ones, returned once.
pub fn new_recovery_codes(
    conn: &mut DbConnection,
    pepper: &Pepper,
    person_id: &str,
    now: DateTime<Utc>,
) -> Result<Vec<SecretString>> {
    let codes = recovery_codes::generate()?;
    let hashes: Vec<String> = codes
        .iter()
        .filter_map(|c| recovery_codes::normalize(c.expose()))
        .map(|n| recovery_codes::hash(pepper, &n))
        .collect();
    rows::replace_recovery_codes(conn, person_id, &hashes, now)?;
    Ok(codes)
}

/// How a second step was passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Passed {
    /// A TOTP code of factor `id`.
    Totp { id: String },
    /// A recovery code; this many are left.
    RecoveryCode { left: i64 },
}

/// Check `code` as the second step of `person_id`: a code of one of their
/// confirmed TOTP factors whose time step none of them accepted yet, or
/// one of their unused recovery codes. Spends what it accepts.
pub fn pass(
    conn: &mut DbConnection,
    pepper: &Pepper,
    person_id: &str,
    code: &str,
    now: DateTime<Utc>,
) -> Result<Option<Passed>> {
    let code = code.trim();
    if code.len() > 64 {
        return Ok(None);
    }
    for row in rows::of(conn, person_id)? {
        if row.kind != FactorKind::Totp || !row.confirmed() {
            continue;
        }
        let secret = secret_of(pepper, &row)?;
        if let Some(step) = totp::matching_step(&secret, code, unix(now))
            && rows::accept_step(conn, &row.id, step as i64, now)?
        {
            return Ok(Some(Passed::Totp { id: row.id }));
        }
    }
    if let Some(n) = recovery_codes::normalize(code)
        && rows::use_recovery_code(conn, person_id, &recovery_codes::hash(pepper, &n), now)?
    {
        let left = rows::recovery_codes_left(conn, person_id)?;
        return Ok(Some(Passed::RecoveryCode { left }));
    }
    Ok(None)
}

fn unix(now: DateTime<Utc>) -> u64 {
    u64::try_from(now.timestamp()).unwrap_or(0)
}
