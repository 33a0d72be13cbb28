//! Whether a registered service or instance is up: one enum, stored as its
//! name in both tables' `status` columns.

/// Whether a service or an instance is up; stored as `up` or `down`. (A
/// service that never registered has no row: callers say `unknown`.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Up,
    Down,
}

impl Health {
    pub fn of(up: bool) -> Self {
        if up { Health::Up } else { Health::Down }
    }
}

stored_as_name!(Health { Up => "up", Down => "down" });
