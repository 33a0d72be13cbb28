//! Rows and queries. Diesel lives here and in `crate::db`, nowhere else.

/// A closed set stored as its name in a text column (portable across both
/// backends): `as_str` and `from_name`, `Display`, and the `String`
/// conversions that diesel's `serialize_as`/`deserialize_as` use. A name no
/// variant has is a broken row: an internal error.
macro_rules! stored_as_name {
    ($ty:ident { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl $ty {
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $name,)+
                }
            }

            pub fn from_name(name: &str) -> Option<Self> {
                match name {
                    $($name => Some(Self::$variant),)+
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl From<$ty> for String {
            fn from(value: $ty) -> String {
                value.as_str().to_string()
            }
        }

        impl TryFrom<String> for $ty {
            type Error = crate::error::Error;
            fn try_from(name: String) -> crate::error::Result<Self> {
                Self::from_name(&name).ok_or_else(|| {
                    crate::error::Error::internal(format!("a stored {} is '{name}'", stringify!($ty)))
                })
            }
        }
    };
}

pub mod audit;
pub mod auth_state;
pub mod authorization_code;
pub mod client_key;
pub mod client_settings;
pub mod device_code;
pub mod federation;
pub mod health;
pub mod instance;
pub mod invitation;
pub mod login_session;
pub mod password;
pub mod principal;
pub mod refresh_token;
pub mod registration;
pub mod revocation;
pub mod revoked_token;
pub mod second_factor;
pub mod secret;
pub mod settings;
pub mod signing_key;
pub mod throttle;
pub mod token_exchange;
pub mod transition;

use chrono::{DateTime, NaiveDateTime, Utc};

/// An instant as a query compares it with a `TIMESTAMP` column. Rows hold
/// `DateTime<Utc>` themselves (see [`crate::db::time`]); only queries in
/// this folder need this.
pub(crate) fn to_db_time(t: DateTime<Utc>) -> NaiveDateTime {
    crate::db::time::stored(t)
}

/// A new random UUID as TEXT.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A new time-ordered UUID (v7) as TEXT, for rows that are paged by age.
/// Ids made in this process at the same instant (the rows of one
/// transaction) still sort in the order they were made: RFC 9562 §6.2's
/// counter, kept by one shared context.
pub fn new_ordered_id(now: DateTime<Utc>) -> String {
    static CONTEXT: std::sync::Mutex<uuid::ContextV7> = std::sync::Mutex::new(uuid::ContextV7::new());
    let secs = now.timestamp().max(0) as u64;
    let nanos = now.timestamp_subsec_nanos();
    let ts = match CONTEXT.lock() {
        Ok(context) => uuid::Timestamp::from_unix(&*context, secs, nanos),
        Err(poisoned) => uuid::Timestamp::from_unix(&*poisoned.into_inner(), secs, nanos),
    };
    uuid::Uuid::new_v7(ts).to_string()
}

#[cfg(test)]
mod ordered_id_tests {
    #[test]
    fn ids_made_at_one_instant_sort_in_the_order_made() {
        let now = chrono::Utc::now();
        let ids: Vec<String> = (0..1000).map(|_| super::new_ordered_id(now)).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted);
    }
}

#[cfg(test)]
mod stored_name_tests {
    use super::health::Health;
    use super::instance::Source;
    use super::principal::{PrincipalKind, PrincipalStatus};
    use super::revocation::RevocationKind;
    use super::signing_key::KeyState;

    fn round_trip<T>(all: &[T])
    where
        T: Copy + PartialEq + std::fmt::Debug + Into<String> + TryFrom<String, Error = crate::error::Error>,
    {
        for v in all {
            let name: String = (*v).into();
            assert_eq!(T::try_from(name).unwrap(), *v);
        }
        assert!(matches!(
            T::try_from("nonsense".to_string()),
            Err(crate::error::Error::Internal(_))
        ));
    }

    /// Every stored name reads back as its variant; anything else in a row is
    /// a broken row, not a client's mistake.
    #[test]
    fn stored_names_round_trip() {
        round_trip(&[Health::Up, Health::Down]);
        round_trip(&[Source::Api, Source::Docker]);
        round_trip(&[PrincipalKind::Human, PrincipalKind::Service]);
        round_trip(&[PrincipalStatus::Active, PrincipalStatus::Disabled]);
        round_trip(&[KeyState::Next, KeyState::Active, KeyState::Retired]);
        round_trip(&[RevocationKind::Token, RevocationKind::Principal]);
        assert_eq!(KeyState::Retired.to_string(), "retired");
        assert!(matches!(
            "robot".parse::<PrincipalKind>(),
            Err(crate::error::Error::Invalid { .. })
        ));
    }
}
