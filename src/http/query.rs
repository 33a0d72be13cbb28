//! Query strings whose errors name the parameter, like a JSON body's fields.

use actix_web::{FromRequest, HttpRequest, dev::Payload};
use serde::de::DeserializeOwned;

use crate::error::Error;

/// Like `web::Query`, but a bad parameter is a 422 with `field` set to its
/// name and a description of the expected format, as for a body field.
#[derive(Debug)]
pub struct Query<T>(pub T);

impl<T> Query<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

/// What a parameter whose value failed to parse should look like, where the
/// deserializer's own message does not say.
fn expected(field: &str) -> Option<&'static str> {
    Some(match field {
        "since" => "an RFC 3339 time such as 2026-01-01T00:00:00Z",
        "limit" => "an integer from 1 to 200",
        "index" => "a non-negative integer (the X-Roster-Index of an earlier answer)",
        _ => return None,
    })
}

/// Parse a query string into `T`.
pub fn decode<T: DeserializeOwned>(query: &str) -> Result<T, Error> {
    if url::form_urlencoded::parse(query.as_bytes()).any(|(k, v)| k.contains('\0') || v.contains('\0')) {
        return Err(Error::BadRequest(crate::error::NUL_REFUSED.into()));
    }
    let de = serde_urlencoded::Deserializer::new(url::form_urlencoded::parse(query.as_bytes()));
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let message = e.into_inner().to_string();
        let field = crate::error::field_of(&path, &message, "query");
        let mut description = format!("invalid query parameter `{field}`: {message}");
        if let Some(hint) = expected(&field) {
            description.push_str(&format!("; expected {hint}"));
        }
        Error::invalid(field, description)
    })
}

impl<T: DeserializeOwned> FromRequest for Query<T> {
    type Error = Error;
    type Future = std::future::Ready<Result<Self, Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(decode(req.query_string()).map(Query))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Q {
        kind: Option<crate::models::principal::PrincipalKind>,
        since: Option<chrono::DateTime<chrono::Utc>>,
        limit: Option<i64>,
    }

    fn err(q: &str) -> (String, String) {
        match decode::<Q>(q) {
            Err(Error::Invalid { field, message }) => (field, message),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_parameters_are_named_with_the_expected_format() {
        assert_eq!(
            err("kind=robots"),
            (
                "kind".into(),
                "invalid query parameter `kind`: unknown variant `robots`, expected `human` or `service`".into()
            )
        );
        let (field, message) = err("since=yesterday");
        assert_eq!(field, "since");
        assert!(
            message.ends_with("; expected an RFC 3339 time such as 2026-01-01T00:00:00Z"),
            "{message}"
        );
        assert_eq!(err("limit=ten").0, "limit");
        assert_eq!(err("limit=1&limit=2").0, "limit");
        assert_eq!(
            err("colour=red"),
            (
                "colour".into(),
                "invalid query parameter `colour`: unknown field `colour`, expected one of `kind`, `since`, `limit`"
                    .into()
            )
        );
        assert!(decode::<Q>("kind=human&since=2026-01-01T00:00:00Z&limit=5").is_ok());
        assert!(decode::<Q>("").is_ok());
    }
}
