//! `roster-client`: what a service links to use Roster, so that nobody
//! hand-writes it.
//!
//! - [`TokenSource`] gets client-credentials tokens through the `oauth2`
//!   crate, authenticating with a secret, a private key (`private_key_jwt`)
//!   or a platform's workload token ([`ClientAuth`]), caches one per (scope, resource), renews it at 80 % of its
//!   lifetime with a single request however many callers wait, and backs off
//!   while Roster is down, serving the cached token while it is valid.
//!   [`TokenSource::exchange`] trades a caller's token for one to act for
//!   the caller towards another service (RFC 8693), cached per (caller's
//!   token, audience).
//! - [`Verifier`] checks incoming access tokens offline against Roster's
//!   JWKS (RFC 9068: `typ`, `iss`, `aud`, `exp`, `nbf`, scopes), and with
//!   [`Verifier::follow_revocations`] refuses revoked tokens and disabled
//!   principals within about a second. A token made by exchange shows its
//!   delegation chain in [`Claims::act`] and [`Claims::actors`].
//! - No web framework by default. Feature `actix`: the `actix::Caller`
//!   extractor and the `actix::RequireScope` middleware. Feature `axum`: the
//!   `axum::Caller` extractor and the `axum::RequireScopeLayer` tower layer.
//!   Both answer as RFC 6750 §3 says.
//! - [`RegistryAgent`] registers the service, heartbeats, registers again
//!   when Roster forgets it, and leaves on shutdown.
//!
//! Time is a parameter: every part takes a [`Clock`], manual in tests.

#![warn(missing_docs)]

#[cfg(feature = "actix")]
pub mod actix;
mod auth;
#[cfg(feature = "axum")]
pub mod axum;
mod backoff;
mod clock;
mod discovery;
mod error;
mod jwks;
mod registry;
mod revocation;
mod token;
mod verify;

pub use auth::{AssertionSigner, ClientAuth, KeyError, SigningAlg};
pub use backoff::Backoff;
pub use clock::Clock;
pub use discovery::DiscoveryError;
pub use discovery::Metadata;
pub use error::{VerifyError, bearer_token};
pub use jwks::KeysError;
pub use registry::{AgentCounts, AgentHandle, Category, RegistryAgent, RegistryError, ServiceRegistration};
pub use revocation::{FailMode, RevocationPolicy};
/// The wire contract shared with the server.
pub use roster_proto as proto;
pub use secrecy::{ExposeSecret, SecretString};
pub use token::{AccessToken, TokenError, TokenRequest, TokenSource};
pub use verify::{Claims, FeedError, SetupError, Verifier, VerifierConfig};

/// The HTTP client every part uses: no redirects (a token endpoint or a JWKS
/// that redirects is refused rather than followed, RFC 6749 §3.1), bounded
/// connect and request times.
fn http_client(timeout: std::time::Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(std::time::Duration::from_secs(5))
        .timeout(timeout)
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
}
