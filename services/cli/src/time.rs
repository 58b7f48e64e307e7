//! Times on the command line and in the output.

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};

/// A point in time as the command line gives it: RFC 3339 (`2026-03-03T12:00:00Z`), a date
/// (`2026-03-03`, its start in UTC) or unix seconds (`1772496000`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Instant(pub DateTime<Utc>);

impl std::str::FromStr for Instant {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if let Ok(t) = DateTime::parse_from_rfc3339(s) {
            return Ok(Instant(t.with_timezone(&Utc)));
        }
        if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
            return Ok(Instant(d.and_time(chrono::NaiveTime::MIN).and_utc()));
        }
        if let Ok(secs) = s.parse::<i64>()
            && let Some(t) = DateTime::from_timestamp(secs, 0)
        {
            return Ok(Instant(t));
        }
        Err(format!(
            "{s:?} is not a time: use RFC 3339 (2026-03-03T12:00:00Z), a date (2026-03-03) or unix seconds"
        ))
    }
}

impl Instant {
    pub fn to_proto(self) -> prost_types::Timestamp {
        prost_types::Timestamp {
            seconds: self.0.timestamp(),
            nanos: i32::try_from(self.0.timestamp_subsec_nanos()).unwrap_or(0),
        }
    }
}

/// An optional command-line time as a protobuf timestamp.
pub fn proto(t: Option<Instant>) -> Option<prost_types::Timestamp> {
    t.map(Instant::to_proto)
}

/// RFC 3339 in UTC (`2026-03-03T12:00:00Z`, fractions only when there are any); empty when
/// unset.
pub fn format(t: Option<&prost_types::Timestamp>) -> String {
    t.and_then(|t| {
        let nanos = u32::try_from(t.nanos).ok()?;
        DateTime::from_timestamp(t.seconds, nanos)
    })
    .map(|t| t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_the_three_forms_to_the_same_instant() {
        let a: Instant = "2026-03-03T00:00:00Z".parse().unwrap();
        let b: Instant = "2026-03-03".parse().unwrap();
        let c: Instant = "1772496000".parse().unwrap();
        assert_eq!(a, b);
        assert_eq!(a, c);
        let d: Instant = "2026-03-03T01:00:00+01:00".parse().unwrap();
        assert_eq!(a, d);
        assert!("March 3rd".parse::<Instant>().is_err());
    }

    #[test]
    fn formats_utc_seconds() {
        let t = prost_types::Timestamp {
            seconds: 1_772_496_000,
            nanos: 0,
        };
        assert_eq!(format(Some(&t)), "2026-03-03T00:00:00Z");
        assert_eq!(format(None), "");
    }
}
