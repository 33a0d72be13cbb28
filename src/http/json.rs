//! JSON request bodies whose errors name the field.

use actix_web::{HttpRequest, web};
use serde::de::DeserializeOwned;

use crate::error::Error;

// Like `web::Json`, but a body of the wrong shape is a 422 naming the field
// (via serde_path_to_error); malformed JSON is a 400.
fn decode<T: DeserializeOwned>(body: &[u8], empty_default: Option<fn() -> T>) -> Result<T, Error> {
    if body.iter().all(u8::is_ascii_whitespace)
        && let Some(default) = empty_default
    {
        return Ok(default());
    }
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| Error::BadRequest(format!("invalid JSON body: {e}")))?;
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let message = e.into_inner().to_string();
        Error::invalid(field_of(&path, &message, "body"), message)
    })
}

async fn read(req: &HttpRequest, payload: web::Payload) -> Result<web::Bytes, Error> {
    if let Some(ct) = req.headers().get(actix_web::http::header::CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or("");
        if !ct.is_empty() && !ct.starts_with("application/json") {
            return Err(Error::BadRequest("the body must be application/json".into()));
        }
    }
    payload
        .to_bytes_limited(super::MAX_BODY_BYTES)
        .await
        .map_err(|_| Error::BadRequest("the request body is too large".into()))?
        .map_err(|e| Error::BadRequest(format!("cannot read the request body: {e}")))
}

/// Parse a JSON body inside a handler, after its authentication extractors
/// have succeeded (extractors run concurrently, so a body error could
/// otherwise answer before a 401 or 403).
pub async fn parse<T: DeserializeOwned>(req: &HttpRequest, payload: web::Payload) -> Result<T, Error> {
    decode(&read(req, payload).await?, None)
}

/// Like [`parse`], but an empty body is `T::default()`.
pub async fn parse_or_default<T: DeserializeOwned + Default>(
    req: &HttpRequest,
    payload: web::Payload,
) -> Result<T, Error> {
    decode(&read(req, payload).await?, Some(T::default))
}

/// For PATCH: a missing field is `None`, `null` is `Some(None)`.
pub fn double_option<'de, T, D>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    T: serde::Deserialize<'de>,
    D: serde::Deserializer<'de>,
{
    serde::Deserialize::deserialize(d).map(Some)
}

/// The field an error is about: the path serde_path_to_error reports, or for
/// a missing field (reported at its parent) the parent's path plus its name.
pub fn field_of(path: &str, message: &str, root: &str) -> String {
    let missing = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next());
    match (path, missing) {
        (".", Some(f)) => f.to_string(),
        (p, Some(f)) => format!("{p}.{f}"),
        (".", None) => root.to_string(),
        (p, None) => p.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_field() {
        assert_eq!(field_of(".", "missing field `base_url`", "body"), "base_url");
        assert_eq!(field_of("pages[0]", "missing field `icon`", "m"), "pages[0].icon");
        assert_eq!(field_of("kind", "unknown variant", "body"), "kind");
        assert_eq!(field_of(".", "invalid type", "body"), "body");
    }
}
