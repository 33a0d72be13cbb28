//! Outbound HTTP under one policy: every fetch Roster makes on someone
//! else's say-so (a service's health and manifest URLs, a client's or a
//! trusted issuer's `jwks_uri`) connects only where [`policy::FetchPolicy`]
//! allows, checked on every resolved address and every redirect hop.

pub mod fetch;
pub mod policy;
