//! The stamp of a write: a UTC instant with microsecond precision plus a tiebreaker, and its
//! RFC 3339 text form.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserialize, Deserializer};
use serde::ser::{Serialize, SerializeStruct, Serializer};

use crate::error::StampError;

const MICROS_PER_SECOND: i64 = 1_000_000;
const SECONDS_PER_DAY: i64 = 86_400;
/// Days from 0000-03-01 (the start of the proleptic Gregorian 400-year era the date
/// arithmetic counts in) to 1970-01-01.
const UNIX_EPOCH_DAY: i64 = 719_468;
/// 0000-01-01T00:00:00Z, the earliest instant RFC 3339 can write.
const MIN_MICROS: i64 = -62_167_219_200 * MICROS_PER_SECOND;
/// 9999-12-31T23:59:59.999999Z, the latest instant RFC 3339 can write.
const MAX_MICROS: i64 = 253_402_300_800 * MICROS_PER_SECOND - 1;

/// When a write happened, as the store orders writes: a UTC instant with microsecond
/// precision, then a tiebreaker for writes at the same instant (a writer's log sequence
/// number, say).
///
/// Stamps are totally ordered, instant first, then tiebreaker, so every store that holds the
/// same writes agrees on which is newest (SEMANTICS.md §6). The instant lies in the years
/// 0000 to 9999, the range RFC 3339 can write.
///
/// The text form ([`Display`](fmt::Display), [`FromStr`]) is RFC 3339 and shows the instant
/// only: `Z` on output with a fraction only when it is not zero, any offset on input, and a
/// parsed stamp has tiebreaker 0. Serde writes the whole stamp as
/// `{"time": "2024-10-07T15:39:25.123456Z", "tiebreak": 7}`.
///
/// # Examples
///
/// ```
/// use profile_traits::Stamp;
///
/// let stamp: Stamp = "2024-10-07T17:39:25.1234+02:00".parse()?;
/// assert_eq!(stamp.to_string(), "2024-10-07T15:39:25.1234Z");
/// assert_eq!(stamp.micros_since_epoch(), 1_728_315_565_123_400);
///
/// let later_in_the_same_instant = Stamp::new(stamp.micros_since_epoch(), 1)?;
/// assert!(later_in_the_same_instant > stamp);
/// # Ok::<(), profile_traits::StampError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Stamp {
    micros: i64,
    tiebreak: u64,
}

impl Stamp {
    /// The smallest stamp: 0000-01-01T00:00:00Z with tiebreaker 0, the horizon of a new
    /// stored profile.
    pub const MIN: Stamp = Stamp {
        micros: MIN_MICROS,
        tiebreak: 0,
    };

    /// The stamp at `micros_since_epoch` microseconds after 1970-01-01T00:00:00Z, with
    /// `tiebreak` ordering writes at the same instant.
    ///
    /// # Errors
    ///
    /// When the instant is before the year 0000 or after the year 9999
    /// (`Stamp::new(i64::MAX, 0)`).
    ///
    /// # Examples
    ///
    /// ```
    /// use profile_traits::Stamp;
    ///
    /// assert_eq!(Stamp::new(0, 3).unwrap().to_string(), "1970-01-01T00:00:00Z");
    /// assert!(Stamp::new(i64::MAX, 0).is_err());
    /// ```
    pub fn new(micros_since_epoch: i64, tiebreak: u64) -> Result<Stamp, StampError> {
        if !(MIN_MICROS..=MAX_MICROS).contains(&micros_since_epoch) {
            return Err(StampError::out_of_range(micros_since_epoch));
        }
        Ok(Stamp {
            micros: micros_since_epoch,
            tiebreak,
        })
    }

    /// The stamp at the RFC 3339 instant `text` with `tiebreak`.
    pub(crate) fn with_text(text: &str, tiebreak: u64) -> Result<Stamp, StampError> {
        let instant: Stamp = text.parse()?;
        Ok(Stamp {
            tiebreak,
            ..instant
        })
    }

    /// Microseconds since 1970-01-01T00:00:00Z.
    pub fn micros_since_epoch(&self) -> i64 {
        self.micros
    }

    /// The tiebreaker among writes at the same instant.
    pub fn tiebreak(&self) -> u64 {
        self.tiebreak
    }

    /// The instant at second precision, `2025-01-01T12:00:00Z`: the form of the API's
    /// `timestamp` fields (the official Python helper library parses only that form).
    pub fn to_seconds_string(&self) -> String {
        let whole = Stamp {
            micros: self.micros - self.micros.rem_euclid(MICROS_PER_SECOND),
            tiebreak: 0,
        };
        whole.to_string()
    }
}

impl fmt::Display for Stamp {
    /// RFC 3339 in UTC: `2024-10-07T15:39:25.123456Z`, the fraction with its trailing zeros
    /// cut, and none when it is zero.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let seconds = self.micros.div_euclid(MICROS_PER_SECOND);
        let fraction = self.micros.rem_euclid(MICROS_PER_SECOND);
        let (year, month, day) = civil_from_days(seconds.div_euclid(SECONDS_PER_DAY));
        let second_of_day = seconds.rem_euclid(SECONDS_PER_DAY);
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
            second_of_day / 3600,
            second_of_day / 60 % 60,
            second_of_day % 60
        )?;
        if fraction != 0 {
            let digits = format!("{fraction:06}");
            write!(f, ".{}", digits.trim_end_matches('0'))?;
        }
        f.write_str("Z")
    }
}

impl FromStr for Stamp {
    type Err = StampError;

    /// Parses RFC 3339 (`2024-10-07T15:39:25.123456Z`, `2024-10-07t17:39:25+02:00`), with
    /// tiebreaker 0.
    ///
    /// `T` may be lowercase or a space and `Z` lowercase, as RFC 3339 allows; a fraction
    /// has 1 to 9 digits, cut to microseconds; a leap second (`:60`) counts as `:59`, since
    /// a UTC instant count has no room for it.
    fn from_str(text: &str) -> Result<Stamp, StampError> {
        parse_rfc3339(text).ok_or_else(|| StampError::malformed(text))
    }
}

/// Parses RFC 3339's `date-time`, or `None` when `text` is not one or lies outside the
/// years 0000 to 9999 once in UTC.
fn parse_rfc3339(text: &str) -> Option<Stamp> {
    let bytes = text.as_bytes();
    let mut cursor = Cursor { bytes, at: 0 };
    let year = cursor.digits(4)?;
    cursor.expect(b'-')?;
    let month = cursor.digits(2)?;
    cursor.expect(b'-')?;
    let day = cursor.digits(2)?;
    cursor.expect_any(b"Tt ")?;
    let hour = cursor.digits(2)?;
    cursor.expect(b':')?;
    let minute = cursor.digits(2)?;
    cursor.expect(b':')?;
    let second = cursor.digits(2)?;
    let mut micros = 0;
    if cursor.peek() == Some(b'.') {
        cursor.at += 1;
        micros = cursor.fraction_micros()?;
    }
    let offset_seconds = match cursor.next()? {
        b'Z' | b'z' => 0,
        sign @ (b'+' | b'-') => {
            let hours = cursor.digits(2)?;
            cursor.expect(b':')?;
            let minutes = cursor.digits(2)?;
            if hours > 23 || minutes > 59 {
                return None;
            }
            let offset = hours * 3600 + minutes * 60;
            if sign == b'-' { -offset } else { offset }
        }
        _ => return None,
    };
    if cursor.at != bytes.len()
        || !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let second = second.min(59);
    let days = days_from_civil(year, month, day);
    let seconds = days * SECONDS_PER_DAY + hour * 3600 + minute * 60 + second - offset_seconds;
    Stamp::new(seconds * MICROS_PER_SECOND + micros, 0).ok()
}

/// A position in the text being parsed.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let byte = self.peek()?;
        self.at += 1;
        Some(byte)
    }

    fn expect(&mut self, wanted: u8) -> Option<()> {
        (self.next()? == wanted).then_some(())
    }

    fn expect_any(&mut self, wanted: &[u8]) -> Option<()> {
        wanted.contains(&self.next()?).then_some(())
    }

    /// Exactly `count` ASCII digits as a number.
    fn digits(&mut self, count: usize) -> Option<i64> {
        let mut value = 0;
        for _ in 0..count {
            let byte = self.next()?;
            if !byte.is_ascii_digit() {
                return None;
            }
            value = value * 10 + i64::from(byte - b'0');
        }
        Some(value)
    }

    /// 1 to 9 digits of a fraction of a second, as whole microseconds (cut, not rounded).
    fn fraction_micros(&mut self) -> Option<i64> {
        let start = self.at;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.at += 1;
        }
        let digits = &self.bytes[start..self.at];
        if digits.is_empty() || digits.len() > 9 {
            return None;
        }
        let micros = digits
            .iter()
            .chain(std::iter::repeat(&b'0'))
            .take(6)
            .fold(0, |value, digit| value * 10 + i64::from(digit - b'0'));
        Some(micros)
    }
}

fn is_leap_year(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - UNIX_EPOCH_DAY
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (H. Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let days = days + UNIX_EPOCH_DAY;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

impl Serialize for Stamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut state = serializer.serialize_struct("Stamp", 2)?;
        state.serialize_field("time", &self.to_string())?;
        state.serialize_field("tiebreak", &self.tiebreak)?;
        state.end()
    }
}

impl<'de> Deserialize<'de> for Stamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        /// The wire form: `{"time": RFC 3339, "tiebreak": u64}`.
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct StampWire {
            time: String,
            tiebreak: u64,
        }

        let wire = StampWire::deserialize(d)?;
        Stamp::with_text(&wire.time, wire.tiebreak).map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_range_ends_are_the_rfc_3339_years() {
        assert_eq!(Stamp::MIN.to_string(), "0000-01-01T00:00:00Z");
        let max = Stamp::new(MAX_MICROS, 0).unwrap();
        assert_eq!(max.to_string(), "9999-12-31T23:59:59.999999Z");
        assert_eq!("0000-01-01T00:00:00Z".parse::<Stamp>().unwrap(), Stamp::MIN);
        assert!("0000-01-01T00:00:00+00:01".parse::<Stamp>().is_err());
        assert!(Stamp::new(MIN_MICROS - 1, 0).is_err());
        assert!(Stamp::new(MAX_MICROS + 1, 0).is_err());
    }

    #[test]
    fn civil_dates_round_trip_over_whole_eras() {
        for days in (days_from_civil(0, 1, 1)..=days_from_civil(9999, 12, 31)).step_by(97) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
        }
    }
}
