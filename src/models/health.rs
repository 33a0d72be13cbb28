//! Whether a registered service or instance is up: one enum, stored as its
//! name in both tables' `status` columns.

use crate::error::{Error, Result};

/// Whether a service or an instance is up; stored as `up` or `down`. (A
/// service that never registered has no row: callers say `unknown`.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    Up,
    Down,
}

impl Health {
    pub fn of(up: bool) -> Self {
        if up { Health::Up } else { Health::Down }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Health::Up => "up",
            Health::Down => "down",
        }
    }
}

impl std::fmt::Display for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TryFrom<String> for Health {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        match s.as_str() {
            "up" => Ok(Health::Up),
            "down" => Ok(Health::Down),
            other => Err(Error::internal(format!("unknown registry status '{other}'"))),
        }
    }
}

impl From<Health> for String {
    fn from(h: Health) -> String {
        h.as_str().to_string()
    }
}
