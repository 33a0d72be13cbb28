//! The OAuth 2.0 authorization server: RFC 6749 grants, RFC 7662
//! introspection, RFC 7009 revocation and RFC 8414 metadata.

pub mod client_auth;
pub mod error;
pub mod grants;
pub mod introspect;
pub mod metadata;
pub mod request;
pub mod revoke;
pub mod token;

pub use error::OAuthError;
