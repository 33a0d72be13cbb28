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
    if holds_nul(&value) {
        return Err(Error::BadRequest(crate::error::NUL_REFUSED.into()));
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        Error::from_json_path(&path, e.into_inner().to_string(), "body")
    })
}

/// Does any string or key of `v` hold U+0000 (which PostgreSQL cannot store)?
fn holds_nul(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::String(s) => s.contains('\0'),
        serde_json::Value::Array(items) => items.iter().any(holds_nul),
        serde_json::Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || holds_nul(v)),
        _ => false,
    }
}

async fn read(req: &HttpRequest, payload: web::Payload) -> Result<web::Bytes, Error> {
    read_limited(req, payload, super::MAX_BODY_BYTES).await
}

/// Read a JSON body of at most `limit` bytes.
pub async fn read_limited(req: &HttpRequest, payload: web::Payload, limit: usize) -> Result<web::Bytes, Error> {
    if let Some(ct) = req.headers().get(actix_web::http::header::CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or("");
        if !ct.is_empty() && !ct.starts_with("application/json") {
            return Err(Error::BadRequest("the body must be application/json".into()));
        }
    }
    super::read_body(req, payload, limit).await.map_err(|e| match e {
        super::BodyError::TooLarge => Error::BadRequest("the request body is too large".into()),
        super::BodyError::TimedOut(t) => Error::TimedOut(format!("the request body did not arrive within {t:?}")),
        super::BodyError::Broken(e) => Error::BadRequest(format!("cannot read the request body: {e}")),
    })
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
