//! The OAuth 2.0 authorization server: RFC 6749 grants, RFC 7662
//! introspection, RFC 7009 revocation and RFC 8414 metadata.

pub mod authorization_request;
pub mod authorize;
pub mod client_auth;
pub mod code;
pub mod error;
pub mod grants;
pub mod introspect;
pub mod logout;
pub mod metadata;
pub mod oidc;
pub mod origins;
pub mod person;
pub mod pkce;
pub mod refresh;
pub mod request;
pub mod response;
pub mod revocations;
pub mod revoke;
pub mod session;
pub mod token;

use std::sync::Arc;

pub use error::OAuthError;

use crate::auth::failures::FailureLog;
use crate::auth::keys::KeyStore;
use crate::auth::secrets::Pepper;
use crate::auth::usage::UsageRecorder;
use crate::auth::verified::VerifiedClients;
use crate::blocking::BlockingPool;
use crate::db::Pool;
use grants::TokenConfig;

/// What the token service needs, and nothing else of the process.
#[derive(Clone)]
pub struct OAuthContext {
    pub db: Pool,
    /// argon2 runs here, apart from the database pool.
    pub argon: BlockingPool,
    /// The cost of the dummy hash verified for unknown users.
    pub hashing: crate::auth::password::Hashing,
    pub keys: Arc<KeyStore>,
    pub pepper: Pepper,
    pub usage: Arc<UsageRecorder>,
    /// Failed logins, folded per source before they reach the audit log.
    pub failures: Arc<FailureLog>,
    pub throttle: crate::auth::throttle::ThrottlePolicy,
    pub token: TokenConfig,
    /// Clients verified recently (see [`crate::auth::verified`]).
    pub verified: Arc<VerifiedClients>,
    /// How long browser login sessions live.
    pub sessions: session::SessionPolicy,
    /// Wakes the revocation feed's long polls.
    pub revocations: Arc<crate::feed::ChangeFeed>,
}

/// What a database closure of the token service needs of the context.
#[derive(Clone)]
pub(crate) struct Checks {
    pub pepper: Pepper,
    pub usage: Arc<UsageRecorder>,
    pub failures: Arc<FailureLog>,
    pub throttle: crate::auth::throttle::ThrottlePolicy,
    pub verified: Arc<VerifiedClients>,
}

impl Checks {
    pub fn at<'a>(
        &'a self,
        remote: Option<&'a str>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> client_auth::ClientCheck<'a> {
        client_auth::ClientCheck {
            pepper: &self.pepper,
            usage: &self.usage,
            failures: &self.failures,
            throttle: &self.throttle,
            verified: &self.verified,
            remote,
            now,
        }
    }
}

impl OAuthContext {
    pub fn issuer(&self) -> &str {
        &self.token.issuer
    }

    pub(crate) fn checks(&self) -> Checks {
        Checks {
            pepper: self.pepper.clone(),
            usage: self.usage.clone(),
            failures: self.failures.clone(),
            throttle: self.throttle.clone(),
            verified: self.verified.clone(),
        }
    }
}
