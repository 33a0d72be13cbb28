//! Client settings rows: a service's redirect URIs and whether it is a public client.

use crate::db::time::UtcTimestamp;
use chrono::{DateTime, Utc};
use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::{client_settings, principals};
use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = client_settings)]
pub struct ClientSettingsRow {
    pub principal_id: String,
    pub public_client: bool,
    /// A JSON array of absolute URLs.
    pub redirect_uris: String,
    /// A JSON array of absolute URLs.
    pub post_logout_redirect_uris: String,
    #[diesel(serialize_as = UtcTimestamp, deserialize_as = UtcTimestamp)]
    pub updated_at: DateTime<Utc>,
}

/// The two lists of a row, decoded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientSettings {
    pub public_client: bool,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
}

impl ClientSettingsRow {
    pub fn decode(&self) -> Result<ClientSettings> {
        let list = |s: &str| {
            serde_json::from_str::<Vec<String>>(s).map_err(|e| Error::internal(format!("client settings: {e}")))
        };
        Ok(ClientSettings {
            public_client: self.public_client,
            redirect_uris: list(&self.redirect_uris)?,
            post_logout_redirect_uris: list(&self.post_logout_redirect_uris)?,
        })
    }
}

pub fn find(conn: &mut DbConnection, principal_id: &str) -> Result<Option<ClientSettings>> {
    client_settings::table
        .find(principal_id)
        .select(ClientSettingsRow::as_select())
        .first(conn)
        .optional()?
        .map(|r| r.decode())
        .transpose()
}

/// Settings of many principals at once.
pub fn find_many(conn: &mut DbConnection, ids: &[String]) -> Result<Vec<(String, ClientSettings)>> {
    client_settings::table
        .filter(client_settings::principal_id.eq_any(ids))
        .select(ClientSettingsRow::as_select())
        .load(conn)?
        .into_iter()
        .map(|r| Ok((r.principal_id.clone(), r.decode()?)))
        .collect()
}

/// Insert or replace the settings of `principal_id`.
pub fn put(conn: &mut DbConnection, principal_id: &str, s: &ClientSettings, now: DateTime<Utc>) -> Result<()> {
    let json = |v: &Vec<String>| serde_json::to_string(v).map_err(|e| Error::internal(format!("client settings: {e}")));
    let row = ClientSettingsRow {
        principal_id: principal_id.to_string(),
        public_client: s.public_client,
        redirect_uris: json(&s.redirect_uris)?,
        post_logout_redirect_uris: json(&s.post_logout_redirect_uris)?,
        updated_at: now,
    };
    diesel::delete(client_settings::table.find(principal_id)).execute(conn)?;
    diesel::insert_into(client_settings::table).values(row).execute(conn)?;
    Ok(())
}

/// The redirect URIs of every active service, for CORS.
pub fn all_active_redirect_uris(conn: &mut DbConnection) -> Result<Vec<String>> {
    let rows: Vec<(String, String)> = client_settings::table
        .inner_join(principals::table.on(principals::id.eq(client_settings::principal_id)))
        .filter(principals::status.eq("active"))
        .select((
            client_settings::redirect_uris,
            client_settings::post_logout_redirect_uris,
        ))
        .load(conn)?;
    let mut out = Vec::new();
    for (a, b) in rows {
        for s in [a, b] {
            out.extend(
                serde_json::from_str::<Vec<String>>(&s)
                    .map_err(|e| Error::internal(format!("client settings: {e}")))?,
            );
        }
    }
    Ok(out)
}
