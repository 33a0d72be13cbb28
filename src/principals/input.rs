//! What admins send to create and change principals, and the rules it must
//! follow before anything is stored.

use std::str::FromStr;

use serde::Deserialize;

use crate::auth::secrets::SecretString;
use crate::error::{Error, Result};
use crate::models::principal::{CategoryAssignment, PrincipalKind, PrincipalStatus};
use crate::names::{validate_categories, validate_name, validate_scope};

/// `POST /api/v1/principals`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreatePrincipal {
    pub kind: PrincipalKind,
    pub name: String,
    pub display_name: Option<String>,
    pub email: Option<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
    pub password: Option<SecretString>,
    #[serde(default)]
    pub categories: Vec<CategoryAssignment>,
}

/// `PATCH /api/v1/principals/{id}`: a missing field stays as it is; `null`
/// clears a nullable one.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchPrincipal {
    #[serde(default, deserialize_with = "double_option")]
    pub display_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    pub email: Option<Option<String>>,
    pub scopes: Option<Vec<String>>,
    pub categories: Option<Vec<CategoryAssignment>>,
    pub status: Option<PrincipalStatus>,
}

/// For PATCH: a missing field is `None`, `null` is `Some(None)`.
fn double_option<'de, T, D>(d: D) -> std::result::Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: serde::Deserializer<'de>,
{
    Deserialize::deserialize(d).map(Some)
}

/// A new principal, as the CLI and the API both build it.
#[derive(Debug, Clone)]
pub struct NewPrincipal {
    pub kind: PrincipalKind,
    pub name: String,
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub scopes: Vec<String>,
    pub categories: Vec<CategoryAssignment>,
}

impl NewPrincipal {
    pub fn validate(&self) -> Result<()> {
        validate_name("name", &self.name)?;
        if let Some(d) = &self.display_name {
            validate_display_name(d)?;
        }
        if let Some(e) = &self.email {
            validate_email(e)?;
        }
        for s in &self.scopes {
            validate_scope(s)?;
        }
        if self.kind == PrincipalKind::Human && !self.categories.is_empty() {
            return Err(Error::invalid(
                "categories",
                "only service principals belong to categories",
            ));
        }
        validate_categories(&self.categories)
    }
}

/// Changes to a principal; `None` leaves a field as it is. For the nullable
/// fields, `Some(None)` clears them.
#[derive(Debug, Clone, Default)]
pub struct PrincipalChanges {
    pub display_name: Option<Option<String>>,
    pub email: Option<Option<String>>,
    pub scopes: Option<Vec<String>>,
    pub categories: Option<Vec<CategoryAssignment>>,
}

impl From<&PatchPrincipal> for PrincipalChanges {
    fn from(p: &PatchPrincipal) -> Self {
        Self {
            display_name: p.display_name.clone(),
            email: p.email.clone(),
            scopes: p.scopes.clone(),
            categories: p.categories.clone(),
        }
    }
}

impl PrincipalChanges {
    pub fn validate(&self, kind: PrincipalKind) -> Result<()> {
        if let Some(Some(d)) = &self.display_name {
            validate_display_name(d)?;
        }
        if let Some(Some(e)) = &self.email {
            validate_email(e)?;
        }
        for s in self.scopes.iter().flatten() {
            validate_scope(s)?;
        }
        if let Some(cats) = &self.categories {
            if kind == PrincipalKind::Human && !cats.is_empty() {
                return Err(Error::invalid(
                    "categories",
                    "only service principals belong to categories",
                ));
            }
            validate_categories(cats)?;
        }
        Ok(())
    }

    /// The names of the fields this change touches, for the audit log.
    pub fn fields(&self) -> Vec<&'static str> {
        [
            ("display_name", self.display_name.is_some()),
            ("email", self.email.is_some()),
            ("scopes", self.scopes.is_some()),
            ("categories", self.categories.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, touched)| touched.then_some(name))
        .collect()
    }
}

fn validate_display_name(d: &str) -> Result<()> {
    if d.is_empty() || d.chars().count() > 200 {
        return Err(Error::invalid("display_name", "must be 1 to 200 characters"));
    }
    Ok(())
}

pub fn validate_email(email: &str) -> Result<()> {
    let ok = email.len() <= 254
        && !email.chars().any(char::is_whitespace)
        && email
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty() && !domain.contains('@'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid("email", "not a valid email address"))
    }
}

/// `NAME` or `NAME:PRIORITY`, as the CLI takes a category.
pub fn parse_category(s: &str) -> Result<CategoryAssignment> {
    let (name, priority) = match s.rsplit_once(':') {
        Some((name, p)) => {
            let priority = i32::from_str(p)
                .map_err(|_| Error::invalid("category", format!("priority '{p}' is not an integer")))?;
            (name, priority)
        }
        None => (s, 0),
    };
    validate_name("category", name)?;
    Ok(CategoryAssignment {
        name: name.to_string(),
        priority,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(e: Error) -> String {
        match e {
            Error::Invalid { field, .. } => field,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn category_assignments_parse() {
        assert_eq!(
            parse_category("notification:10").unwrap(),
            CategoryAssignment {
                name: "notification".into(),
                priority: 10
            }
        );
        assert_eq!(parse_category("application").unwrap().priority, 0);
        assert_eq!(field(parse_category("x:high").unwrap_err()), "category");
        assert_eq!(field(parse_category("Bad:1").unwrap_err()), "category");
    }

    #[test]
    fn new_principals_are_checked_field_by_field() {
        let ok = NewPrincipal {
            kind: PrincipalKind::Human,
            name: "alice".into(),
            display_name: Some("Alice".into()),
            email: Some("alice@example.com".into()),
            scopes: vec!["registry:read".into()],
            categories: vec![],
        };
        ok.validate().unwrap();
        let mut bad = ok.clone();
        bad.email = Some("not an email".into());
        assert_eq!(field(bad.validate().unwrap_err()), "email");
        let mut bad = ok.clone();
        bad.display_name = Some(String::new());
        assert_eq!(field(bad.validate().unwrap_err()), "display_name");
        let mut bad = ok.clone();
        bad.categories = vec![CategoryAssignment {
            name: "x".into(),
            priority: 0,
        }];
        assert_eq!(field(bad.validate().unwrap_err()), "categories");
        let twice = vec![
            CategoryAssignment {
                name: "x".into(),
                priority: 0,
            },
            CategoryAssignment {
                name: "x".into(),
                priority: 1,
            },
        ];
        assert_eq!(field(validate_categories(&twice).unwrap_err()), "categories");
    }

    #[test]
    fn changes_name_the_fields_they_touch() {
        let c = PrincipalChanges {
            email: Some(None),
            scopes: Some(vec![]),
            ..Default::default()
        };
        assert_eq!(c.fields(), vec!["email", "scopes"]);
        assert_eq!(
            field(
                PrincipalChanges {
                    categories: Some(vec![CategoryAssignment {
                        name: "a".into(),
                        priority: 0
                    }]),
                    ..Default::default()
                }
                .validate(PrincipalKind::Human)
                .unwrap_err()
            ),
            "categories"
        );
    }
}
