//! Roster's wire contract: the types both the server and `roster-client`
//! speak, written once so that the two cannot drift apart.
//!
//! - [`claims`]: the claims of an access token (RFC 9068).
//! - [`error`]: the `error` codes of the token endpoint (RFC 6749 §5.2).
//! - [`bearer`]: reading `Authorization: Bearer` (RFC 6750 §2.1) and the
//!   `WWW-Authenticate` challenge of a refusal (RFC 6750 §3).
//! - [`registration`]: the body a service registers an instance with.
//!
//! It depends on serde alone: no web framework, no runtime.

pub mod bearer;
pub mod claims;
pub mod error;
pub mod registration;
