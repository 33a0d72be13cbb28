//! The body that registers an instance of a service:
//! `PUT /api/v1/services/{name}/instances/{id}` (and the single-instance
//! `PUT /api/v1/services/{name}/registration`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A category membership of a service, with its priority (higher wins).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CategoryAssignment {
    /// The category's name, e.g. `application`.
    pub name: String,
    #[serde(default)]
    pub priority: i32,
}

/// What an instance tells Roster about itself. Fields left `None` keep what
/// Roster has (categories, description, meta) or take Roster's default
/// (ttl, thresholds). Unknown fields are refused.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registration {
    /// Where the instance answers, e.g. `http://10.0.0.5:8080/`.
    pub base_url: String,
    /// Polled by Roster; relative to `base_url` (e.g. `/health`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_url: Option<String>,
    /// A getModules.json Roster pulls; relative to `base_url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modules_url: Option<String>,
    /// Replaces the service's categories; omitted, they stay as they are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub categories: Option<Vec<CategoryAssignment>>,
    /// The lease: without a heartbeat for this long the instance is down.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_seconds: Option<i64>,
    /// Keep the instance registered and checked, but out of category answers.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub draining: bool,
    /// Failed health checks in a row before an up instance is down.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failures_before_down: Option<i64>,
    /// Passed health checks in a row before a down instance is up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passes_before_up: Option<i64>,
    /// The service's; omitted, it stays as it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The service's; omitted, it stays as it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<BTreeMap<String, String>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a client sends is what the server reads back, and a bare body
    /// carries only its URL.
    #[test]
    fn round_trips_and_omits_what_is_unset() {
        let bare = Registration {
            base_url: "http://10.0.0.5:8080/".into(),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(&bare).unwrap(),
            serde_json::json!({"base_url": "http://10.0.0.5:8080/"})
        );
        let full = Registration {
            base_url: "http://10.0.0.5:8080/".into(),
            health_url: Some("/health".into()),
            modules_url: Some("/getModules.json".into()),
            categories: Some(vec![CategoryAssignment {
                name: "application".into(),
                priority: 10,
            }]),
            ttl_seconds: Some(30),
            draining: true,
            failures_before_down: Some(3),
            passes_before_up: Some(2),
            description: Some("orders".into()),
            meta: Some(BTreeMap::from([("team".into(), "shop".into())])),
        };
        let json = serde_json::to_string(&full).unwrap();
        assert_eq!(serde_json::from_str::<Registration>(&json).unwrap(), full);
        assert!(serde_json::from_str::<Registration>(r#"{"base_url":"x","ttl":3}"#).is_err());
    }
}
