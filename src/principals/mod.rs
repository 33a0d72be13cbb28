//! People and services: creating, changing and disabling principals, their
//! passwords and client secrets, and the audit log as admins read it.
//!
//! Synchronous functions take a connection and `now` (the CLI runs them on
//! its one connection); the async ones take a [`PrincipalsContext`] and run
//! them on the pools.

pub mod audit;
pub mod console;
pub mod input;
pub mod manage;
pub mod password;
pub mod recover;
pub mod secrets;
pub mod throttle;
pub mod view;

use crate::auth::secrets::Pepper;
use crate::blocking::BlockingPool;
use crate::db::Pool;

pub use crate::auth::access::ADMIN_SCOPE;
pub use input::{CreatePrincipal, NewPrincipal, PatchPrincipal, PrincipalChanges};
pub use manage::{bootstrap_admin, create_human, create_service, get, list, set_status};
pub use secrets::{CreatedService, CreatedServiceView};
pub use view::PrincipalView;

/// The name of the human created on first start.
pub const BOOTSTRAP_ADMIN: &str = "admin";

/// What the principal operations need.
#[derive(Clone)]
pub struct PrincipalsContext {
    pub db: Pool,
    /// argon2 runs here, apart from the database pool.
    pub argon: BlockingPool,
    /// The cost of new password hashes.
    pub hashing: crate::auth::password::Hashing,
    pub pepper: Pepper,
    /// Forgotten after every change here that could invalidate a client.
    pub verified: std::sync::Arc<crate::auth::verified::VerifiedClients>,
    /// Woken when a change here reaches the revocation feed.
    pub revocations: std::sync::Arc<crate::feed::ChangeFeed>,
}

/// No principal `id`.
pub(crate) fn not_found(id: &str) -> crate::error::Error {
    crate::error::Error::NotFound(format!("principal {id}"))
}

/// The principal `id`, or 404.
pub(crate) fn row(
    conn: &mut crate::db::DbConnection,
    id: &str,
) -> crate::error::Result<crate::models::principal::Principal> {
    crate::models::principal::find_by_id(conn, id)?.ok_or_else(|| not_found(id))
}
