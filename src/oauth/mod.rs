//! The OAuth 2.0 authorization server: RFC 6749 grants, RFC 8693 token
//! exchange, RFC 7662
//! introspection, RFC 7009 revocation and RFC 8414 metadata.

pub mod authorization_request;
pub mod authorize;
pub mod client_auth;
pub mod code;
pub mod device;
pub mod error;
pub mod exchange;
pub mod grants;
pub mod introspect;
pub mod logout;
pub mod metadata;
pub mod oidc;
pub mod origins;
pub mod passkey_login;
pub mod person;
pub mod pkce;
pub mod refresh;
pub mod request;
pub mod response;
pub mod revocations;
pub mod revoke;
pub mod second_step;
pub mod session;
pub mod step;
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

/// The token service: one handle whose methods are the OAuth operations
/// (`token`, `introspect`, `revoke`, `authorize`, `login`, `logout`). It is
/// an `Arc` inside, so a database closure takes a clone of the whole handle
/// rather than a bundle of some of its fields.
#[derive(Clone)]
pub struct OAuthContext(Arc<Parts>);

/// What the token service needs, and nothing else of the process.
pub struct Parts {
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
    /// Per-source budgets of requests that store a row before anyone
    /// authenticated (device authorizations, passkey challenges).
    pub budget: Arc<crate::auth::source_budget::SourceBudget>,
    pub throttle: crate::auth::throttle::ThrottlePolicy,
    pub token: TokenConfig,
    /// Clients verified recently (see [`crate::auth::verified`]).
    pub verified: Arc<VerifiedClients>,
    /// How long browser login sessions live.
    pub sessions: session::SessionPolicy,
    /// Wakes the revocation feed's long polls.
    pub revocations: Arc<crate::feed::ChangeFeed>,
    /// What introspection needs after a token's signature, in memory.
    pub live: Arc<crate::auth::live::LiveView>,
    /// Access tokens whose signature was checked recently (introspection
    /// and the API's bearer checks).
    pub signatures: crate::auth::jwt::VerifiedSignatures,
    /// JWK Sets of clients and trusted issuers that publish a `jwks_uri`.
    pub remote_keys: Arc<crate::auth::remote_keys::RemoteKeys>,
    /// Spends client-assertion `jti`s in batches.
    pub jtis: crate::auth::jti_ledger::JtiLedger,
    /// Stores exchanges decided from memory, in batches.
    pub exchanges: exchange::ExchangeLedger,
    /// Token-exchange targets resolved recently.
    pub targets: exchange::TargetCache,
    /// Who must pass a second step.
    pub mfa: crate::auth::second_factor::MfaPolicy,
    /// The WebAuthn relying party, when the issuer can be one.
    pub passkeys: crate::auth::passkeys::Passkeys,
}

impl OAuthContext {
    pub fn new(parts: Parts) -> Self {
        Self(Arc::new(parts))
    }

    pub fn issuer(&self) -> &str {
        self.token.issuer.as_str()
    }
}

impl std::ops::Deref for OAuthContext {
    type Target = Parts;

    fn deref(&self) -> &Parts {
        &self.0
    }
}
