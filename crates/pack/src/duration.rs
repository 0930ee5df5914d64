//! Human-written durations (`"5m"`, `"1h30m"`, `"90d"`).
//!
//! Pack authors write SLAs, evidence ages and rotation lengths the way the source documents do;
//! the model holds them as a typed [`Duration`] so that ordering rules (acknowledge ≤ initial
//! response ≤ resolution) compare numbers, not strings.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

/// A non-negative span of time with one-second resolution.
///
/// Written as one or more `<number><unit>` groups, largest unit first, with units `w` (weeks),
/// `d` (days), `h` (hours), `m` (minutes) and `s` (seconds): `"15m"`, `"1h30m"`, `"90d"`.
/// `"0"` is zero. Months and years are not accepted: they have no fixed length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration {
    seconds: u64,
}

/// Why a duration string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("empty duration")]
    Empty,
    #[error("`{0}`: expected a number before each unit, like \"15m\" or \"1h30m\"")]
    MissingNumber(String),
    #[error("`{0}`: missing unit after the number (use w, d, h, m or s)")]
    MissingUnit(String),
    #[error("`{text}`: unknown unit `{unit}` (use w, d, h, m or s)")]
    UnknownUnit { text: String, unit: char },
    #[error("`{0}`: units must go from largest to smallest, each at most once")]
    UnitOrder(String),
    #[error("`{0}`: duration is too large")]
    Overflow(String),
}

impl Duration {
    pub const ZERO: Duration = Duration { seconds: 0 };

    pub const fn from_secs(seconds: u64) -> Self {
        Self { seconds }
    }
    pub const fn from_mins(minutes: u64) -> Self {
        Self {
            seconds: minutes.saturating_mul(60),
        }
    }
    pub const fn from_hours(hours: u64) -> Self {
        Self {
            seconds: hours.saturating_mul(3600),
        }
    }
    pub const fn from_days(days: u64) -> Self {
        Self {
            seconds: days.saturating_mul(86_400),
        }
    }
    pub const fn as_secs(&self) -> u64 {
        self.seconds
    }
    pub fn to_std(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.seconds)
    }
    /// The same span as a `jiff::SignedDuration`, for arithmetic with timestamps.
    pub fn to_signed(&self) -> jiff::SignedDuration {
        jiff::SignedDuration::from_secs(i64::try_from(self.seconds).unwrap_or(i64::MAX))
    }
}

const UNITS: [(char, u64); 5] = [
    ('w', 604_800),
    ('d', 86_400),
    ('h', 3_600),
    ('m', 60),
    ('s', 1),
];

impl FromStr for Duration {
    type Err = DurationError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(DurationError::Empty);
        }
        if trimmed == "0" {
            return Ok(Self::ZERO);
        }
        let mut seconds: u64 = 0;
        let mut number: Option<u64> = None;
        // Index into UNITS of the last unit seen; each later unit must be strictly smaller.
        let mut last_unit: Option<usize> = None;
        for ch in trimmed.chars() {
            if let Some(digit) = ch.to_digit(10) {
                let n = number
                    .unwrap_or(0)
                    .checked_mul(10)
                    .and_then(|n| n.checked_add(u64::from(digit)))
                    .ok_or_else(|| DurationError::Overflow(text.to_owned()))?;
                number = Some(n);
                continue;
            }
            let Some(index) = UNITS.iter().position(|(u, _)| *u == ch) else {
                if ch.is_alphabetic() {
                    return Err(DurationError::UnknownUnit {
                        text: text.to_owned(),
                        unit: ch,
                    });
                }
                return Err(DurationError::MissingNumber(text.to_owned()));
            };
            let n = number
                .take()
                .ok_or_else(|| DurationError::MissingNumber(text.to_owned()))?;
            if last_unit.is_some_and(|last| index <= last) {
                return Err(DurationError::UnitOrder(text.to_owned()));
            }
            last_unit = Some(index);
            seconds = n
                .checked_mul(UNITS[index].1)
                .and_then(|s| seconds.checked_add(s))
                .ok_or_else(|| DurationError::Overflow(text.to_owned()))?;
        }
        if number.is_some() {
            return Err(DurationError::MissingUnit(text.to_owned()));
        }
        Ok(Self { seconds })
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.seconds == 0 {
            return f.write_str("0");
        }
        let mut rest = self.seconds;
        for (unit, size) in UNITS {
            // Weeks are only used when the span is a whole number of weeks: "14d" reads better
            // than "1w7d"-style surprises, and "2w" round-trips.
            if unit == 'w' && !rest.is_multiple_of(size) {
                continue;
            }
            let n = rest / size;
            if n > 0 {
                write!(f, "{n}{unit}")?;
                rest -= n * size;
            }
        }
        Ok(())
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl de::Visitor<'_> for Visitor {
            type Value = Duration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as \"15m\", \"1h30m\" or \"90d\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
                v.parse().map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
                if v == 0 {
                    Ok(Duration::ZERO)
                } else {
                    Err(E::custom(format!(
                        "`{v}` has no unit: write \"{v}s\", \"{v}m\", \"{v}h\" or \"{v}d\""
                    )))
                }
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
                match u64::try_from(v) {
                    Ok(v) => self.visit_u64(v),
                    Err(_) => Err(E::custom("a duration cannot be negative")),
                }
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

impl JsonSchema for Duration {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A duration such as \"15m\", \"1h30m\" or \"90d\" (units w, d, h, m, s), or 0.",
            "anyOf": [
                {
                    "type": "string",
                    "pattern": "^(0|([0-9]+w)?([0-9]+d)?([0-9]+h)?([0-9]+m)?([0-9]+s)?)$"
                },
                { "const": 0 }
            ],
            "examples": ["5m", "1h", "90d"]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_single_and_compound_units() {
        assert_eq!("5m".parse::<Duration>().unwrap(), Duration::from_mins(5));
        assert_eq!(
            "1h30m".parse::<Duration>().unwrap(),
            Duration::from_mins(90)
        );
        assert_eq!("90d".parse::<Duration>().unwrap(), Duration::from_days(90));
        assert_eq!("2w".parse::<Duration>().unwrap(), Duration::from_days(14));
        assert_eq!("0".parse::<Duration>().unwrap(), Duration::ZERO);
    }

    #[test]
    fn rejects_bad_text_with_reason() {
        assert_eq!("".parse::<Duration>(), Err(DurationError::Empty));
        assert!(matches!(
            "15".parse::<Duration>(),
            Err(DurationError::MissingUnit(_))
        ));
        assert!(matches!(
            "3mo".parse::<Duration>(),
            Err(DurationError::UnknownUnit { unit: 'o', .. })
        ));
        assert!(matches!(
            "5m1h".parse::<Duration>(),
            Err(DurationError::UnitOrder(_))
        ));
        assert!(matches!(
            "h".parse::<Duration>(),
            Err(DurationError::MissingNumber(_))
        ));
        assert!(matches!(
            "99999999999999999999d".parse::<Duration>(),
            Err(DurationError::Overflow(_))
        ));
    }

    #[test]
    fn display_round_trips() {
        for text in ["5m", "1h30m", "90d", "2w", "1d1s", "0"] {
            let d: Duration = text.parse().unwrap();
            assert_eq!(d.to_string(), text);
        }
    }
}
