//! Cursor pagination: `{"items": [...], "next_cursor": ...}` on every list.
//!
//! Cursors are keyset positions (the sort key of the last item), encoded
//! base64url, so that pages stay stable while rows are inserted.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;

use crate::error::{Error, Result};

pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 200;

#[derive(Debug, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// The page size asked for, bounded to `1..=MAX_LIMIT`.
pub fn limit(requested: Option<i64>) -> Result<i64> {
    match requested {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(_) => Err(Error::invalid("limit", format!("must be between 1 and {MAX_LIMIT}"))),
    }
}

pub fn encode_cursor(parts: &[&str]) -> String {
    URL_SAFE_NO_PAD.encode(parts.join("\n"))
}

/// Decode a cursor of `n` parts.
pub fn decode_cursor(cursor: &str, n: usize) -> Result<Vec<String>> {
    let bad = || Error::invalid("cursor", "not a cursor returned by this API");
    let raw = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    let text = String::from_utf8(raw).map_err(|_| bad())?;
    let parts: Vec<String> = text.split('\n').map(str::to_string).collect();
    if parts.len() == n { Ok(parts) } else { Err(bad()) }
}

/// Cut a list fetched with `limit + 1` rows into a page; `views` turns the
/// kept rows into items (all at once, so it can batch its queries).
pub fn paginate<R, T>(
    mut rows: Vec<R>,
    limit: i64,
    cursor_of: impl Fn(&R) -> String,
    views: impl FnOnce(Vec<R>) -> Result<Vec<T>>,
) -> Result<Page<T>> {
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = if more { rows.last().map(&cursor_of) } else { None };
    Ok(Page {
        items: views(rows)?,
        next_cursor,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let c = encode_cursor(&["2026-01-01 00:00:00", "abc"]);
        assert_eq!(decode_cursor(&c, 2).unwrap(), vec!["2026-01-01 00:00:00", "abc"]);
        assert!(decode_cursor(&c, 1).is_err());
        assert!(decode_cursor("!!!", 1).is_err());
    }

    #[test]
    fn limits_are_bounded() {
        assert_eq!(limit(None).unwrap(), DEFAULT_LIMIT);
        assert_eq!(limit(Some(200)).unwrap(), 200);
        assert!(limit(Some(0)).is_err());
        assert!(limit(Some(201)).is_err());
    }

    #[test]
    fn paginate_sets_the_cursor_only_when_more_rows_exist() {
        let p = paginate(vec![1, 2, 3], 2, |r| r.to_string(), Ok).unwrap();
        assert_eq!(p.items, vec![1, 2]);
        assert_eq!(p.next_cursor.as_deref(), Some("2"));
        let p = paginate(vec![1, 2], 2, |r: &i32| r.to_string(), Ok).unwrap();
        assert_eq!(p.next_cursor, None);
    }
}
