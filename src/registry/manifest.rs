//! Module manifests in the getModules.json shape: their schema and limits.
//!
//! ```json
//! {"name": "Billing", "code": "billing",
//!  "pages": [{"name": "Invoices", "code": "invoices", "module_link": "/billing/invoices",
//!             "icon": "receipt", "required_scope": "invoices:read", "menu_position": 10}],
//!  "css": [...], "js": [...], "deps": [...]}
//! ```
//! Fields older frontends used (`css`, `js`, `deps`, anything else) are kept
//! and passed through unchanged.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// Largest manifest accepted, in bytes of JSON.
pub const MAX_MANIFEST_BYTES: usize = 64 * 1024;
pub const MAX_PAGES: usize = 200;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub name: String,
    pub code: String,
    pub pages: Vec<Page>,
    /// Everything else, passed through unchanged.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page {
    pub name: String,
    pub code: String,
    pub module_link: String,
    pub icon: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub menu_position: Option<i64>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn check_len(field: String, value: &str, max: usize) -> Result<()> {
    if value.trim().is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    if value.chars().count() > max {
        return Err(Error::invalid(field, format!("must be at most {max} characters")));
    }
    Ok(())
}

/// Parse and validate a manifest: required fields and their types, length
/// limits, unique page codes, and the size limit. The error names the field.
pub fn parse(bytes: &[u8]) -> Result<Manifest> {
    if bytes.len() > MAX_MANIFEST_BYTES {
        return Err(Error::invalid(
            "manifest",
            format!("larger than {MAX_MANIFEST_BYTES} bytes"),
        ));
    }
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| Error::invalid("manifest", format!("not JSON: {e}")))?;
    let manifest: Manifest = serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let message = e.into_inner().to_string();
        Error::from_json_path(&path, message, "manifest")
    })?;
    validate(&manifest)?;
    Ok(manifest)
}

pub fn validate(m: &Manifest) -> Result<()> {
    check_len("name".into(), &m.name, 100)?;
    check_len("code".into(), &m.code, 64)?;
    if m.pages.len() > MAX_PAGES {
        return Err(Error::invalid("pages", format!("at most {MAX_PAGES} pages")));
    }
    let mut codes = std::collections::HashSet::new();
    for (i, p) in m.pages.iter().enumerate() {
        check_len(format!("pages[{i}].name"), &p.name, 100)?;
        check_len(format!("pages[{i}].code"), &p.code, 64)?;
        check_len(format!("pages[{i}].module_link"), &p.module_link, 2048)?;
        check_len(format!("pages[{i}].icon"), &p.icon, 256)?;
        if let Some(scope) = &p.required_scope {
            crate::names::validate_scope(scope)
                .map_err(|_| Error::invalid(format!("pages[{i}].required_scope"), "not a valid scope"))?;
        }
        if !codes.insert(p.code.as_str()) {
            return Err(Error::invalid(
                format!("pages[{i}].code"),
                format!("page code '{}' is repeated", p.code),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) fn page(code: &str, pos: Option<i64>, scope: Option<&str>) -> Value {
        let mut p = json!({"name": code.to_uppercase(), "code": code, "module_link": format!("/{code}"), "icon": "i"});
        if let Some(pos) = pos {
            p["menu_position"] = json!(pos);
        }
        if let Some(s) = scope {
            p["required_scope"] = json!(s);
        }
        p
    }

    pub(crate) fn manifest(v: Value) -> Result<Manifest> {
        parse(v.to_string().as_bytes())
    }

    #[test]
    fn valid_manifests_keep_extra_fields() {
        let m = manifest(
            json!({"name": "Billing", "code": "billing", "css": ["a.css"], "js": ["a.js"], "deps": ["x"],
            "pages": [page("inv", Some(1), None)]}),
        )
        .unwrap();
        assert_eq!(m.extra["css"], json!(["a.css"]));
        let back = serde_json::to_value(&m).unwrap();
        assert_eq!(back["deps"], json!(["x"]));
        assert_eq!(back["pages"][0]["code"], "inv");
    }

    #[test]
    fn invalid_manifests_name_the_field() {
        let cases = [
            (json!({"code": "b", "pages": []}), "name"),
            (json!({"name": "B", "code": "b", "pages": "no"}), "pages"),
            (json!({"name": "", "code": "b", "pages": []}), "name"),
            (
                json!({"name": "B", "code": "b", "pages": [{"name": "x", "code": "x", "icon": "i"}]}),
                "pages[0]",
            ),
            (
                json!({"name": "B", "code": "b", "pages": [page("x", None, None), page("x", None, None)]}),
                "pages[1].code",
            ),
            (
                json!({"name": "B", "code": "b", "pages": [page("x", None, Some("Bad Scope"))]}),
                "pages[0].required_scope",
            ),
            (
                json!({"name": "B", "code": "b", "pages": [{"name": "x", "code": "x", "module_link": "/", "icon": "i", "menu_position": "top"}]}),
                "pages[0].menu_position",
            ),
            (json!({"name": "x".repeat(101), "code": "b", "pages": []}), "name"),
        ];
        for (v, field) in cases {
            match manifest(v.clone()) {
                Err(Error::Invalid { field: f, .. }) => assert!(f.starts_with(field), "{v}: {f}"),
                other => panic!("{v}: {other:?}"),
            }
        }
        let big = json!({"name": "B", "code": "b", "pages": [], "css": "x".repeat(MAX_MANIFEST_BYTES)});
        assert!(manifest(big).is_err());
        assert!(parse(b"not json").is_err());
    }
}
