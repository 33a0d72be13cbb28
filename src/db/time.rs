//! How a UTC instant is stored: rows hold `DateTime<Utc>`, and these two
//! column types carry it to and from a `TIMESTAMP` column (UTC, without a
//! zone, to the microsecond) on both backends. A row field names them with
//! `#[diesel(serialize_as = …, deserialize_as = …)]`.

use chrono::{DateTime, NaiveDateTime, SubsecRound, Utc};
use diesel::backend::Backend;
use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::expression::AsExpression;
use diesel::serialize::{self, IsNull, Output, ToSql};
use diesel::sql_types::{Nullable, Timestamp};

/// The stored form of an instant: UTC, truncated to the microsecond (the
/// finest both backends keep), so what is read back equals what was written.
pub fn stored(t: DateTime<Utc>) -> NaiveDateTime {
    t.naive_utc().trunc_subsecs(6)
}

/// A `TIMESTAMP NOT NULL` column.
#[derive(Debug, Clone, Copy, AsExpression, FromSqlRow)]
#[diesel(sql_type = Timestamp)]
pub struct UtcTimestamp(NaiveDateTime);

/// A `TIMESTAMP` column that may be `NULL`.
#[derive(Debug, Clone, Copy, AsExpression, FromSqlRow)]
#[diesel(sql_type = Nullable<Timestamp>)]
pub struct NullableUtcTimestamp(Option<NaiveDateTime>);

impl From<DateTime<Utc>> for UtcTimestamp {
    fn from(t: DateTime<Utc>) -> Self {
        Self(stored(t))
    }
}

impl From<UtcTimestamp> for DateTime<Utc> {
    fn from(t: UtcTimestamp) -> Self {
        t.0.and_utc()
    }
}

impl From<Option<DateTime<Utc>>> for NullableUtcTimestamp {
    fn from(t: Option<DateTime<Utc>>) -> Self {
        Self(t.map(stored))
    }
}

impl From<NullableUtcTimestamp> for Option<DateTime<Utc>> {
    fn from(t: NullableUtcTimestamp) -> Self {
        t.0.map(|t| t.and_utc())
    }
}

impl<DB: Backend> FromSql<Timestamp, DB> for UtcTimestamp
where
    NaiveDateTime: FromSql<Timestamp, DB>,
{
    fn from_sql(bytes: DB::RawValue<'_>) -> deserialize::Result<Self> {
        NaiveDateTime::from_sql(bytes).map(Self)
    }
}

impl<DB: Backend> ToSql<Timestamp, DB> for UtcTimestamp
where
    NaiveDateTime: ToSql<Timestamp, DB>,
{
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, DB>) -> serialize::Result {
        self.0.to_sql(out)
    }
}

impl<DB: Backend> FromSql<Nullable<Timestamp>, DB> for NullableUtcTimestamp
where
    NaiveDateTime: FromSql<Timestamp, DB>,
{
    fn from_sql(bytes: DB::RawValue<'_>) -> deserialize::Result<Self> {
        NaiveDateTime::from_sql(bytes).map(|t| Self(Some(t)))
    }

    fn from_nullable_sql(bytes: Option<DB::RawValue<'_>>) -> deserialize::Result<Self> {
        match bytes {
            Some(bytes) => Self::from_sql(bytes),
            None => Ok(Self(None)),
        }
    }
}

impl<DB: Backend> ToSql<Nullable<Timestamp>, DB> for NullableUtcTimestamp
where
    NaiveDateTime: ToSql<Timestamp, DB>,
{
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, DB>) -> serialize::Result {
        match &self.0 {
            Some(t) => <NaiveDateTime as ToSql<Timestamp, DB>>::to_sql(t, out),
            None => Ok(IsNull::Yes),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_keep_microseconds_and_round_trip() {
        let t = DateTime::parse_from_rfc3339("2026-12-06T07:40:01.123456789Z")
            .unwrap()
            .with_timezone(&Utc);
        let back: DateTime<Utc> = UtcTimestamp::from(t).into();
        assert_eq!(back.to_rfc3339(), "2026-12-06T07:40:01.123456+00:00");
        let none: Option<DateTime<Utc>> = NullableUtcTimestamp::from(None).into();
        assert_eq!(none, None);
        let some: Option<DateTime<Utc>> = NullableUtcTimestamp::from(Some(t)).into();
        assert_eq!(some, Some(back));
    }
}
