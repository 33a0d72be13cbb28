//! People and services: creating, changing and disabling principals, their
//! passwords and client secrets, and the audit log as admins read it.
//!
//! One handle, [`PrincipalsContext`], whose methods are the operations: the
//! HTTP handlers and the CLI call the same method, and the method runs its
//! private transaction body of the same name on the pools, then its side
//! effects (forgetting verified clients, waking the revocation feed).

pub mod audit;
pub mod console;
pub mod credentials;
pub mod factors;
pub mod federation;
pub mod input;
pub mod invitations;
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
pub use manage::{Created, ListQuery, bootstrap_admin};
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
    /// Brought up to date with every change here before it answers.
    pub live: std::sync::Arc<crate::auth::live::LiveView>,
    /// Who must pass a second step.
    pub mfa: crate::auth::second_factor::MfaPolicy,
    /// Wrong second-factor codes count toward the login throttle.
    pub throttle: crate::auth::throttle::ThrottlePolicy,
    /// The WebAuthn relying party, when the issuer can be one.
    pub passkeys: crate::auth::passkeys::Passkeys,
    /// The issuer URL, which invitation links start with.
    pub issuer: String,
    /// Refused invitation links, folded like failed logins.
    pub failures: std::sync::Arc<crate::auth::failures::FailureLog>,
}

impl PrincipalsContext {
    /// A handle on its own pool, for one-shot commands. Nothing in this
    /// process caches, so its side effects reach nobody here; running
    /// servers see the change through the database (the auth-state
    /// generation and the revocation log) on their next tick.
    pub fn standalone(
        target: crate::db::DatabaseTarget,
        pepper: Pepper,
        hashing: crate::auth::password::Hashing,
    ) -> Self {
        Self {
            db: Pool::new(target, &crate::db::PoolOptions { max_size: 1 }),
            argon: BlockingPool::new("argon2", 1),
            hashing,
            pepper,
            verified: std::sync::Arc::new(crate::auth::verified::VerifiedClients::new()),
            revocations: std::sync::Arc::new(crate::feed::ChangeFeed::new()),
            live: std::sync::Arc::new(crate::auth::live::LiveView::new()),
            mfa: crate::auth::second_factor::MfaPolicy::default(),
            throttle: crate::auth::throttle::ThrottlePolicy::default(),
            passkeys: crate::auth::passkeys::Passkeys::for_issuer(""),
            issuer: String::new(),
            failures: std::sync::Arc::new(crate::auth::failures::FailureLog::default()),
        }
    }

    /// This handle for the Roster at `issuer` (links and passkeys name it).
    pub fn at_issuer(mut self, issuer: &str) -> Self {
        self.passkeys = crate::auth::passkeys::Passkeys::for_issuer(issuer);
        self.issuer = issuer.to_string();
        self
    }

    /// After a change that may end a client's secret or a token: forget the
    /// verified clients and wake the revocation feed. Runs after errors too,
    /// since a change may have committed before the error.
    async fn changed(&self, now: chrono::DateTime<chrono::Utc>) {
        self.verified.invalidate();
        crate::auth::revocation_feed::publish(&self.db, &self.revocations, &self.live, now).await;
    }

    /// Hash a new password on the argon2 pool, at this handle's cost.
    async fn hash(&self, password: crate::auth::secrets::SecretString) -> crate::error::Result<String> {
        let hashing = self.hashing;
        self.argon
            .run(move || hashing.hash(&password))
            .await?
            .map_err(|e| crate::error::Error::invalid("password", e.to_string()))
    }
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
