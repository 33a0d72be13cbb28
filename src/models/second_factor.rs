//! Second-factor rows: a person's TOTP and passkey factors, their recovery
//! codes (by keyed hash), and their MFA setting.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::{mfa_settings, recovery_codes, second_factors};
use crate::db::time::{NullableUtcTimestamp, UtcTimestamp};
use crate::error::Result;

use super::to_db_time;

/// What kind of second factor a row is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FactorKind {
    /// A time-based one-time password (RFC 6238).
    Totp,
    /// A WebAuthn credential.
    Passkey,
}

stored_as_name!(FactorKind { Totp => "totp", Passkey => "passkey" });

/// Whether a person must pass a second step to log in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mfa {
    /// A second step when the person has a factor.
    #[default]
    Optional,
    /// Always a second step; a person with no factor enrols one at login.
    Required,
}

stored_as_name!(Mfa { Optional => "optional", Required => "required" });

/// One second factor.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = second_factors)]
pub struct FactorRow {
    pub id: String,
    pub principal_id: String,
    #[diesel(serialize_as = String, deserialize_as = String)]
    pub kind: FactorKind,
    pub name: String,
    /// TOTP: the secret, sealed.
    pub secret: Option<String>,
    /// Passkey: its credential id (base64url).
    pub credential_id: Option<String>,
    /// Passkey: webauthn-rs's credential, as JSON.
    pub passkey: Option<String>,
    /// TOTP: the last time step accepted.
    pub last_step: Option<i64>,
    #[diesel(serialize_as = NullableUtcTimestamp, deserialize_as = NullableUtcTimestamp)]
    pub confirmed_at: Option<DateTime<Utc>>,
    #[diesel(serialize_as = UtcTimestamp, deserialize_as = UtcTimestamp)]
    pub created_at: DateTime<Utc>,
    #[diesel(serialize_as = NullableUtcTimestamp, deserialize_as = NullableUtcTimestamp)]
    pub last_used_at: Option<DateTime<Utc>>,
}

impl FactorRow {
    pub fn confirmed(&self) -> bool {
        self.confirmed_at.is_some()
    }
}

pub fn insert(conn: &mut DbConnection, row: &FactorRow) -> Result<()> {
    diesel::insert_into(second_factors::table)
        .values(row.clone())
        .execute(conn)?;
    Ok(())
}

/// A person's factors, confirmed or not, oldest first.
pub fn of(conn: &mut DbConnection, principal_id: &str) -> Result<Vec<FactorRow>> {
    Ok(second_factors::table
        .filter(second_factors::principal_id.eq(principal_id))
        .order((second_factors::created_at.asc(), second_factors::id.asc()))
        .select(FactorRow::as_select())
        .load(conn)?)
}

/// Does the person have a confirmed factor?
pub fn has_confirmed(conn: &mut DbConnection, principal_id: &str) -> Result<bool> {
    let n: i64 = second_factors::table
        .filter(second_factors::principal_id.eq(principal_id))
        .filter(second_factors::confirmed_at.is_not_null())
        .count()
        .get_result(conn)?;
    Ok(n > 0)
}

pub fn find(conn: &mut DbConnection, principal_id: &str, id: &str) -> Result<Option<FactorRow>> {
    Ok(second_factors::table
        .find(id)
        .filter(second_factors::principal_id.eq(principal_id))
        .select(FactorRow::as_select())
        .first(conn)
        .optional()?)
}

/// The passkey with `credential_id`, whoever holds it.
pub fn find_by_credential(conn: &mut DbConnection, credential_id: &str) -> Result<Option<FactorRow>> {
    Ok(second_factors::table
        .filter(second_factors::credential_id.eq(credential_id))
        .select(FactorRow::as_select())
        .first(conn)
        .optional()?)
}

/// Confirm an unconfirmed factor, accepting `step` as its first code.
pub fn confirm(conn: &mut DbConnection, id: &str, step: Option<i64>, now: DateTime<Utc>) -> Result<bool> {
    let n = diesel::update(
        second_factors::table
            .find(id)
            .filter(second_factors::confirmed_at.is_null()),
    )
    .set((
        second_factors::confirmed_at.eq(Some(to_db_time(now))),
        second_factors::last_step.eq(step),
        second_factors::last_used_at.eq(Some(to_db_time(now))),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

/// Accept TOTP time step `step` for factor `id` if no later or equal step
/// was accepted before: a compare-and-set, so that two requests racing with
/// one code cannot both win.
pub fn accept_step(conn: &mut DbConnection, id: &str, step: i64, now: DateTime<Utc>) -> Result<bool> {
    let n = diesel::update(
        second_factors::table
            .find(id)
            .filter(second_factors::confirmed_at.is_not_null())
            .filter(
                second_factors::last_step
                    .is_null()
                    .or(second_factors::last_step.lt(step)),
            ),
    )
    .set((
        second_factors::last_step.eq(Some(step)),
        second_factors::last_used_at.eq(Some(to_db_time(now))),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

/// Record a use of a passkey, with its new state (signature counter).
pub fn passkey_used(conn: &mut DbConnection, id: &str, passkey: Option<&str>, now: DateTime<Utc>) -> Result<()> {
    let used = second_factors::last_used_at.eq(Some(to_db_time(now)));
    let row = diesel::update(second_factors::table.find(id));
    match passkey {
        Some(p) => row.set((used, second_factors::passkey.eq(Some(p)))).execute(conn)?,
        None => row.set(used).execute(conn)?,
    };
    Ok(())
}

pub fn delete(conn: &mut DbConnection, principal_id: &str, id: &str) -> Result<bool> {
    let n = diesel::delete(
        second_factors::table
            .find(id)
            .filter(second_factors::principal_id.eq(principal_id)),
    )
    .execute(conn)?;
    Ok(n == 1)
}

/// Remove every factor and recovery code of a person. Returns the factors removed.
pub fn delete_all(conn: &mut DbConnection, principal_id: &str) -> Result<usize> {
    let n =
        diesel::delete(second_factors::table.filter(second_factors::principal_id.eq(principal_id))).execute(conn)?;
    diesel::delete(recovery_codes::table.filter(recovery_codes::principal_id.eq(principal_id))).execute(conn)?;
    Ok(n)
}

/// Unconfirmed factors older than `before` (abandoned enrolments).
pub fn delete_unconfirmed_before(conn: &mut DbConnection, before: DateTime<Utc>) -> Result<usize> {
    Ok(diesel::delete(
        second_factors::table
            .filter(second_factors::confirmed_at.is_null())
            .filter(second_factors::created_at.lt(to_db_time(before))),
    )
    .execute(conn)?)
}

/// Replace a person's recovery codes with `hashes`.
pub fn replace_recovery_codes(
    conn: &mut DbConnection,
    principal_id: &str,
    hashes: &[String],
    now: DateTime<Utc>,
) -> Result<()> {
    diesel::delete(recovery_codes::table.filter(recovery_codes::principal_id.eq(principal_id))).execute(conn)?;
    for h in hashes {
        diesel::insert_into(recovery_codes::table)
            .values((
                recovery_codes::code_hash.eq(h),
                recovery_codes::principal_id.eq(principal_id),
                recovery_codes::created_at.eq(to_db_time(now)),
                recovery_codes::used_at.eq(None::<chrono::NaiveDateTime>),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// Spend recovery code `hash` of a person: true once, false ever after.
pub fn use_recovery_code(conn: &mut DbConnection, principal_id: &str, hash: &str, now: DateTime<Utc>) -> Result<bool> {
    let n = diesel::update(
        recovery_codes::table
            .find(hash)
            .filter(recovery_codes::principal_id.eq(principal_id))
            .filter(recovery_codes::used_at.is_null()),
    )
    .set(recovery_codes::used_at.eq(Some(to_db_time(now))))
    .execute(conn)?;
    Ok(n == 1)
}

/// How many unused recovery codes a person has.
pub fn recovery_codes_left(conn: &mut DbConnection, principal_id: &str) -> Result<i64> {
    Ok(recovery_codes::table
        .filter(recovery_codes::principal_id.eq(principal_id))
        .filter(recovery_codes::used_at.is_null())
        .count()
        .get_result(conn)?)
}

/// A person's MFA setting.
pub fn mfa_of(conn: &mut DbConnection, principal_id: &str) -> Result<Mfa> {
    let name: Option<String> = mfa_settings::table
        .find(principal_id)
        .select(mfa_settings::mfa)
        .first(conn)
        .optional()?;
    name.map(Mfa::try_from).transpose().map(Option::unwrap_or_default)
}

pub fn set_mfa(conn: &mut DbConnection, principal_id: &str, mfa: Mfa, now: DateTime<Utc>) -> Result<()> {
    diesel::delete(mfa_settings::table.find(principal_id)).execute(conn)?;
    if mfa != Mfa::Optional {
        diesel::insert_into(mfa_settings::table)
            .values((
                mfa_settings::principal_id.eq(principal_id),
                mfa_settings::mfa.eq(mfa.as_str()),
                mfa_settings::updated_at.eq(to_db_time(now)),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// A WebAuthn ceremony under way.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = crate::db::schema::webauthn_ceremonies)]
pub struct CeremonyRow {
    pub id: String,
    /// Whose: set for a registration and a second step, not for a
    /// passkey login that names nobody yet.
    pub principal_id: Option<String>,
    /// `register`, `second_step` or `discoverable`.
    pub kind: String,
    /// A registration: the new passkey's name.
    pub name: Option<String>,
    /// webauthn-rs's state, as JSON.
    pub state: String,
    #[diesel(serialize_as = UtcTimestamp, deserialize_as = UtcTimestamp)]
    pub expires_at: DateTime<Utc>,
}

pub fn insert_ceremony(conn: &mut DbConnection, row: &CeremonyRow) -> Result<()> {
    diesel::insert_into(crate::db::schema::webauthn_ceremonies::table)
        .values(row.clone())
        .execute(conn)?;
    Ok(())
}

/// Ceremony `id`, left in place.
pub fn find_ceremony(conn: &mut DbConnection, id: &str) -> Result<Option<CeremonyRow>> {
    use crate::db::schema::webauthn_ceremonies as c;
    Ok(c::table
        .find(id)
        .select(CeremonyRow::as_select())
        .first(conn)
        .optional()?)
}

/// Take ceremony `id`: it is deleted, so that an answer is used once.
pub fn take_ceremony(conn: &mut DbConnection, id: &str, now: DateTime<Utc>) -> Result<Option<CeremonyRow>> {
    use crate::db::schema::webauthn_ceremonies as c;
    let row: Option<CeremonyRow> = c::table
        .find(id)
        .select(CeremonyRow::as_select())
        .first(conn)
        .optional()?;
    let Some(row) = row else { return Ok(None) };
    let n = diesel::delete(c::table.find(id)).execute(conn)?;
    Ok((n == 1 && now < row.expires_at).then_some(row))
}

/// Forget ceremonies that ran out.
pub fn delete_expired_ceremonies(conn: &mut DbConnection, now: DateTime<Utc>) -> Result<usize> {
    use crate::db::schema::webauthn_ceremonies as c;
    Ok(diesel::delete(c::table.filter(c::expires_at.lt(to_db_time(now)))).execute(conn)?)
}

/// The passkeys of a person (confirmed).
pub fn passkeys_of(conn: &mut DbConnection, principal_id: &str) -> Result<Vec<FactorRow>> {
    Ok(of(conn, principal_id)?
        .into_iter()
        .filter(|f| f.kind == FactorKind::Passkey && f.confirmed())
        .collect())
}
