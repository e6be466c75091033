//! Times as integers: the hashed bytes never depend on a time library's encoding.

use serde::{Deserialize, Serialize};
use std::fmt;

/// An instant, in microseconds since 1970-01-01T00:00:00Z (UTC), ignoring leap seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub const MICROS_PER_SECOND: i64 = 1_000_000;
    pub const MICROS_PER_DAY: i64 = 86_400 * Self::MICROS_PER_SECOND;

    /// The current wall-clock time.
    pub fn now() -> Self {
        Self::from_chrono(chrono::Utc::now())
    }

    pub fn from_chrono(t: chrono::DateTime<chrono::Utc>) -> Self {
        Self(t.timestamp_micros())
    }

    /// `None` for instants chrono cannot represent (beyond ±262,000 years).
    pub fn to_chrono(self) -> Option<chrono::DateTime<chrono::Utc>> {
        chrono::DateTime::from_timestamp_micros(self.0)
    }

    /// RFC 3339 with microseconds, or the raw integer when chrono cannot represent it.
    pub fn to_rfc3339(self) -> String {
        match self.to_chrono() {
            Some(t) => t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            None => format!("{}us", self.0),
        }
    }

    pub fn plus_micros(self, micros: i64) -> Self {
        Self(self.0.saturating_add(micros))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

/// A calendar date (UTC), in days since 1970-01-01.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Date(pub i32);

impl Date {
    pub fn from_chrono(d: chrono::NaiveDate) -> Self {
        let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date");
        // Any NaiveDate is within ±262,000 years: the day count fits in i32.
        Self((d - epoch).num_days() as i32)
    }

    pub fn to_chrono(self) -> Option<chrono::NaiveDate> {
        let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date");
        epoch.checked_add_signed(chrono::TimeDelta::try_days(i64::from(self.0))?)
    }

    /// The date of an instant (UTC).
    pub fn of(t: Timestamp) -> Self {
        Self(t.0.div_euclid(Timestamp::MICROS_PER_DAY) as i32)
    }

    /// Midnight (UTC) at the start of this date.
    pub fn start(self) -> Timestamp {
        Timestamp(i64::from(self.0) * Timestamp::MICROS_PER_DAY)
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.to_chrono() {
            Some(d) => write!(f, "{d}"),
            None => write!(f, "day {}", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_and_timestamp_round_trip_through_chrono() {
        let d = chrono::NaiveDate::from_ymd_opt(2026, 12, 4).unwrap();
        let date = Date::from_chrono(d);
        assert_eq!(date.to_chrono(), Some(d));
        assert_eq!(Date::of(date.start().plus_micros(5)), date);
        assert_eq!(date.start().to_rfc3339(), "2026-12-04T00:00:00.000000Z");
        assert_eq!(Date::of(Timestamp(-1)), Date(-1));
    }
}
