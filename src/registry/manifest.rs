//! Module manifests in the getModules.json shape: a closed schema, so that
//! what every user's menu shows cannot carry script.
//!
//! ```json
//! {"name": "Billing", "code": "billing", "deps": ["ledger"],
//!  "pages": [{"name": "Invoices", "code": "invoices", "module_link": "/billing/invoices",
//!             "icon": "receipt", "required_scope": "invoices:read", "menu_position": 10}]}
//! ```
//! Unknown fields are refused, not passed through: the old shape's `css` and
//! `js` would let one service load code into every frontend. Names are plain
//! text (no control characters, no `<` or `>`); `module_link` is a relative
//! reference or an http(s) URL, never `javascript:`, `data:`, `vbscript:` or
//! anything else, in any spelling; `icon` is such a link or a list of CSS
//! class names (`"fa fa-ticket"`).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};

/// Largest manifest accepted, in bytes of JSON.
pub const MAX_MANIFEST_BYTES: usize = 64 * 1024;
pub const MAX_PAGES: usize = 200;
pub const MAX_DEPS: usize = 50;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub name: String,
    pub code: String,
    pub pages: Vec<Page>,
    /// Codes of the modules this one needs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deps: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Page {
    pub name: String,
    pub code: String,
    pub module_link: String,
    pub icon: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub menu_position: Option<i64>,
}

/// Plain text of at most `max` characters: not blank, no control characters,
/// no angle brackets.
fn check_text(field: String, value: &str, max: usize) -> Result<()> {
    if value.trim().is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    if value.chars().count() > max {
        return Err(Error::invalid(field, format!("must be at most {max} characters")));
    }
    if value.chars().any(|c| c.is_control() || c == '<' || c == '>') {
        return Err(Error::invalid(
            field,
            "must be plain text: no control characters, no < or >",
        ));
    }
    Ok(())
}

/// A link a frontend may put in `href` or `src`: an http(s) URL without
/// credentials, or a relative reference that no HTML or URL decoding can turn
/// into another scheme (no `:` or `%3A` before the path, no `&` before the query, no
/// whitespace, control characters or backslashes, no `//` host).
pub fn check_link(field: String, value: &str, max: usize) -> Result<()> {
    let refuse = |why: &str| Err(Error::invalid(field.clone(), why.to_string()));
    if value.is_empty() {
        return refuse("must not be empty");
    }
    if value.chars().count() > max {
        return refuse(&format!("must be at most {max} characters"));
    }
    if value.chars().any(|c| c.is_control() || c.is_whitespace() || c == '\\') {
        return refuse("must not contain spaces, control characters or backslashes");
    }
    match url::Url::parse(value) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => {
            if !u.username().is_empty() || u.password().is_some() {
                return refuse("must not carry a user name or password");
            }
            Ok(())
        }
        Ok(_) => refuse("must be a relative path or an http(s) URL"),
        Err(url::ParseError::RelativeUrlWithoutBase) => {
            let path_end = value.find(['?', '#']).unwrap_or(value.len());
            let path = &value[..path_end];
            let first_segment = &path[..path.find('/').unwrap_or(path.len())];
            // A colon, or one a later URL decoding would make, before the path.
            if first_segment.contains(':') || first_segment.to_ascii_lowercase().contains("%3a") {
                return refuse("must be a relative path or an http(s) URL");
            }
            if path.contains('&') {
                return refuse("must not contain & before its query");
            }
            if value.starts_with("//") {
                return refuse("a link to another host must be an absolute http(s) URL");
            }
            Ok(())
        }
        Err(_) => refuse("must be a relative path or an http(s) URL"),
    }
}

/// Longest class list accepted as an icon, in bytes.
pub const MAX_ICON_CLASSES_BYTES: usize = 256;

/// Is `value` a list of CSS class names (`fa fa-ticket`, `fa-solid fa-gear`):
/// one or more tokens of ASCII letters, digits, `-` and `_`, separated by
/// single spaces, at most [`MAX_ICON_CLASSES_BYTES`]? Nothing in it can end a
/// `class` attribute or name a scheme.
pub fn is_class_list(value: &str) -> bool {
    value.len() <= MAX_ICON_CLASSES_BYTES
        && value.split(' ').all(|token| {
            !token.is_empty()
                && token
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// A page's icon: a class list for an icon font, or a link to an image (the
/// rules of [`check_link`]). Returned by the module list exactly as stored.
pub fn check_icon(field: String, value: &str) -> Result<()> {
    if is_class_list(value) {
        return Ok(());
    }
    check_link(field.clone(), value, MAX_ICON_CLASSES_BYTES).map_err(|_| {
        Error::invalid(
            field,
            "must be CSS class names (letters, digits, - and _, separated by single spaces) \
             or a relative path or http(s) URL without spaces, control characters or backslashes",
        )
    })
}

/// A digest of a manifest's canonical JSON (as stored), to tell whether a
/// pull found something new.
pub fn digest(json: &str) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, json.as_bytes());
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Parse and validate a manifest: required fields and their types, no
/// unknown ones, length limits, plain-text names, safe links, unique page
/// codes, and the size limit. The error names the field.
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
        Error::from_json_path(&path, e.into_inner().to_string(), "manifest")
    })?;
    validate(&manifest)?;
    Ok(manifest)
}

pub fn validate(m: &Manifest) -> Result<()> {
    check_text("name".into(), &m.name, 100)?;
    check_text("code".into(), &m.code, 64)?;
    if m.pages.len() > MAX_PAGES {
        return Err(Error::invalid("pages", format!("at most {MAX_PAGES} pages")));
    }
    if m.deps.len() > MAX_DEPS {
        return Err(Error::invalid("deps", format!("at most {MAX_DEPS} entries")));
    }
    for (i, d) in m.deps.iter().enumerate() {
        check_text(format!("deps[{i}]"), d, 64)?;
    }
    let mut codes = std::collections::HashSet::new();
    for (i, p) in m.pages.iter().enumerate() {
        check_text(format!("pages[{i}].name"), &p.name, 100)?;
        check_text(format!("pages[{i}].code"), &p.code, 64)?;
        check_link(format!("pages[{i}].module_link"), &p.module_link, 2048)?;
        check_icon(format!("pages[{i}].icon"), &p.icon)?;
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
    fn valid_manifests_round_trip() {
        let m = manifest(json!({"name": "Billing", "code": "billing", "deps": ["x"],
            "pages": [page("inv", Some(1), None)]}))
        .unwrap();
        let back = serde_json::to_value(&m).unwrap();
        assert_eq!(
            back,
            json!({"name": "Billing", "code": "billing", "deps": ["x"],
                "pages": [{"name": "INV", "code": "inv", "module_link": "/inv", "icon": "i", "menu_position": 1}]})
        );
    }

    fn refused(v: Value) -> String {
        match manifest(v.clone()) {
            Err(Error::Invalid { field, .. }) => field,
            other => panic!("{v}: {other:?}"),
        }
    }

    #[test]
    fn unknown_fields_are_refused_not_passed_through() {
        let base = |extra: (&str, Value)| {
            let mut m = json!({"name": "B", "code": "b", "pages": [page("x", None, None)]});
            m[extra.0] = extra.1;
            m
        };
        assert_eq!(refused(base(("js", json!(["http://evil/x.js"])))), "js");
        assert_eq!(refused(base(("css", json!(["/a.css"])))), "css");
        let mut p = page("x", None, None);
        p["onclick"] = json!("alert(1)");
        assert_eq!(
            refused(json!({"name": "B", "code": "b", "pages": [p]})),
            "pages[0].onclick"
        );
    }

    #[test]
    fn icons_are_class_lists_or_links() {
        for ok in [
            "fa fa-ticket",
            "fa-solid fa-gear",
            "material_icons",
            "bi bi-0-circle",
            "receipt",
            "/icons/x.svg",
            "https://cdn.example/icons/x.svg",
        ] {
            assert!(check_icon("icon".into(), ok).is_ok(), "{ok:?} must be accepted");
        }
        let longest = format!("fa {}", "x".repeat(MAX_ICON_CLASSES_BYTES - 3));
        assert!(check_icon("icon".into(), &longest).is_ok());
        for bad in [
            "fa  fa-cog",
            " fa",
            "fa ",
            "fa\tfa-cog",
            "fa\nfa-cog",
            "fa \"onmouseover=x",
            "fa 'x",
            "fa <b>",
            "fa fa-cog>",
            "fa javascript:alert(1)",
            "JaVaScRiPt:alert(1)",
            "javascript:alert(1)",
            "data:image/svg+xml;base64,PHN2Zz4=",
            "fa fa-\u{e9}",
            "",
            &format!("fa {}", "x".repeat(MAX_ICON_CLASSES_BYTES - 2)),
        ] {
            match check_icon("pages[0].icon".into(), bad) {
                Err(Error::Invalid { field, .. }) => assert_eq!(field, "pages[0].icon", "{bad:?}"),
                other => panic!("{bad:?} must be refused: {other:?}"),
            }
        }
        let mut p = page("x", None, None);
        p["icon"] = json!("fa fa-cog");
        let m = manifest(json!({"name": "B", "code": "b", "pages": [p]})).unwrap();
        assert_eq!(m.pages[0].icon, "fa fa-cog");
    }

    #[test]
    fn links_cannot_carry_script_in_any_spelling() {
        for bad in [
            "javascript:alert(1)",
            "JavaScript:alert(1)",
            "JAVASCRIPT:alert(1)",
            " javascript:alert(1)",
            "\tjavascript:alert(1)",
            "java\tscript:alert(1)",
            "java\nscript:alert(1)",
            "javascript&#58;alert(1)",
            "javascript&colon;alert(1)",
            "&#106;avascript:alert(1)",
            "&#x6A;avascript&#x3A;alert(1)",
            "%6Aavascript:alert(1)",
            "data:text/html,<script>alert(1)</script>",
            "DATA:image/svg+xml;base64,PHN2Zz4=",
            "vbscript:msgbox(1)",
            "VBScript:msgbox(1)",
            "jav\u{0}ascript:alert(1)",
            "\\\\evil\\x",
            "//evil.example/x",
            "http://user:pw@svc/x",
            "ftp://svc/x",
            "",
        ] {
            assert!(check_link("l".into(), bad, 2048).is_err(), "{bad:?} must be refused");
        }
        for ok in [
            "/billing/invoices",
            "billing/invoices",
            "./x",
            "../x",
            "receipt",
            "/p?a=1&b=2",
            "/p#top&x",
            "https://cdn.example/icons/x.svg",
            "http://svc.internal:8080/app?a=1&b=2",
            "/a:b",
        ] {
            assert!(check_link("l".into(), ok, 2048).is_ok(), "{ok:?} must be accepted");
        }
        let mut p = page("x", None, None);
        p["module_link"] = json!(" javascript:alert(1)");
        assert_eq!(
            refused(json!({"name": "B", "code": "b", "pages": [p]})),
            "pages[0].module_link"
        );
    }

    #[test]
    fn names_are_plain_text() {
        let mut p = page("x", None, None);
        p["name"] = json!("<script>alert(1)</script>");
        assert_eq!(
            refused(json!({"name": "B", "code": "b", "pages": [p]})),
            "pages[0].name"
        );
        assert_eq!(refused(json!({"name": "B\u{1b}[2J", "code": "b", "pages": []})), "name");
        assert_eq!(refused(json!({"name": "B", "code": "b\nc", "pages": []})), "code");
        assert!(manifest(json!({"name": "Billing & Ledger", "code": "b", "pages": []})).is_ok());
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
        let big = json!({"name": "B", "code": "b", "pages": [], "deps": ["x".repeat(MAX_MANIFEST_BYTES)]});
        assert!(manifest(big).is_err());
        assert!(parse(b"not json").is_err());
    }

    proptest::proptest! {
        /// Any bytes: a manifest or a field error, never a panic.
        #[test]
        fn the_manifest_parser_never_panics(body in proptest::collection::vec(proptest::num::u8::ANY, 0..1024)) {
            let _ = parse(&body);
        }

        /// No accepted link starts a script scheme, however it is spelled:
        /// after removing what browsers ignore (whitespace, control
        /// characters) and decoding entities' colons, it is http(s) or relative.
        #[test]
        fn accepted_links_never_name_a_script_scheme(
            prefix in "[ \t\n\x00-\x1f]{0,3}",
            scheme in "(?i)(javascript|vbscript|data|java\tscript|jav&#x61;script)",
            sep in "(:|&#58;|&#x3a;|&colon;|%3a)",
            rest in "[a-z()0-9/]{0,20}",
        ) {
            let link = format!("{prefix}{scheme}{sep}{rest}");
            proptest::prop_assert!(check_link("l".into(), &link, 2048).is_err(), "{:?} accepted", link);
        }

        /// Any link that is accepted can be put in an href safely.
        #[test]
        fn accepted_links_are_relative_or_http(link in ".{0,80}") {
            if check_link("l".into(), &link, 2048).is_ok() {
                let lower = link.to_ascii_lowercase();
                let scheme_like = lower.split(['/', '?', '#']).next().unwrap_or("").contains(':');
                proptest::prop_assert!(!scheme_like || lower.starts_with("http://") || lower.starts_with("https://"), "{:?}", link);
            }
        }
    }
}
