//! The text form of [`Stamp`] (SEMANTICS.md §6, Stamps): RFC 3339 parsing and display
//! compared with `jiff::Timestamp` on random instants, offsets and fractions; pinned
//! examples; the error messages; the leap second.
//!
//! Failing seeds are kept in `proptest-regressions/stamp.txt`.

mod common;

use common::strategies::config;
use jiff::Timestamp;
use profile_traits::Stamp;
use proptest::prelude::*;

const REGRESSIONS: &str = "proptest-regressions/stamp.txt";

/// 0000-01-01T00:00:00Z and 9999-12-31T23:59:59.999999Z, in microseconds since the epoch.
const MIN_MICROS: i64 = -62_167_219_200_000_000;
const MAX_MICROS: i64 = 253_402_300_799_999_999;

/// jiff's instant cut to microseconds toward the past, as our parser cuts the digits of
/// the fraction past the sixth.
fn jiff_micros(timestamp: Timestamp) -> i64 {
    let micros = timestamp.as_nanosecond().div_euclid(1_000);
    i64::try_from(micros).expect("jiff's range fits in i64 microseconds")
}

fn is_leap_year(year: u32) -> bool {
    year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400))
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// A valid RFC 3339 date-time in the years 0000 to 9999: any date, time and second
/// (`60` sometimes), 0 to 9 digits of fraction, `Z`, `z` or an offset `±HH:MM` up to
/// `±23:59`, separator `T`, `t` or a space.
fn rfc3339() -> impl Strategy<Value = String> {
    let date = (0u32..=9999, 1u32..=12)
        .prop_flat_map(|(year, month)| (Just(year), Just(month), 1..=days_in_month(year, month)));
    let second = prop_oneof![20 => 0u32..=59, 1 => Just(60u32)];
    let fraction = (0usize..=9).prop_flat_map(|n| {
        proptest::collection::vec(0u8..=9, n..=n).prop_map(|digits| {
            digits
                .iter()
                .map(|d| char::from(b'0' + d))
                .collect::<String>()
        })
    });
    let offset = prop_oneof![
        2 => Just("Z".to_owned()),
        1 => Just("z".to_owned()),
        4 => (any::<bool>(), 0u32..=23, 0u32..=59).prop_map(|(minus, h, m)| {
            format!("{}{h:02}:{m:02}", if minus { '-' } else { '+' })
        }),
    ];
    let separator = prop_oneof![4 => Just('T'), 1 => Just('t'), 1 => Just(' ')];
    (
        date,
        separator,
        0u32..=23,
        0u32..=59,
        second,
        fraction,
        offset,
    )
        .prop_map(
            |((year, month, day), separator, hour, minute, second, fraction, offset)| {
                let fraction = if fraction.is_empty() {
                    String::new()
                } else {
                    format!(".{fraction}")
                };
                format!(
                    "{year:04}-{month:02}-{day:02}{separator}{hour:02}:{minute:02}:{second:02}{fraction}{offset}"
                )
            },
        )
}

/// Near misses of RFC 3339: a valid text with one byte replaced, removed or inserted.
fn near_miss() -> impl Strategy<Value = String> {
    let bytes = b"0123456789-+:.TtZz Wx\xc3";
    (
        rfc3339(),
        any::<proptest::sample::Index>(),
        0usize..bytes.len(),
        0u8..3,
    )
        .prop_map(move |(text, at, pick, how)| {
            let mut chars: Vec<u8> = text.into_bytes();
            let at = at.index(chars.len() + 1);
            let byte = bytes[pick];
            match how {
                0 if at < chars.len() => chars[at] = byte,
                1 if at < chars.len() => {
                    chars.remove(at);
                }
                _ => chars.insert(at, byte),
            }
            String::from_utf8_lossy(&chars).into_owned()
        })
}

proptest! {
    #![proptest_config(config(REGRESSIONS))]

    /// Our parser reads every valid RFC 3339 text as the instant jiff reads (cut to
    /// microseconds toward the past), and refuses exactly those that fall outside the years
    /// 0000 to 9999 once in UTC.
    #[test]
    fn parsing_agrees_with_jiff(text in rfc3339()) {
        let ours = text.parse::<Stamp>();
        match text.parse::<Timestamp>() {
            Ok(theirs) => {
                let micros = jiff_micros(theirs);
                if (MIN_MICROS..=MAX_MICROS).contains(&micros) {
                    let ours = ours.map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
                    prop_assert_eq!(ours.micros_since_epoch(), micros, "{}", text);
                    prop_assert_eq!(ours.tiebreak(), 0);
                } else {
                    prop_assert!(ours.is_err(), "{} is outside 0000-9999 but parsed", text);
                }
            }
            Err(error) => {
                // jiff's range ends a day short of ours at both ends (it keeps room for
                // any offset), so it refuses only instants at the very ends.
                let ours = ours.map_err(|e| TestCaseError::fail(format!("{text}: {e}; jiff: {error}")))?;
                let micros = ours.micros_since_epoch();
                prop_assert!(
                    micros < jiff_micros(Timestamp::MIN) || micros > jiff_micros(Timestamp::MAX),
                    "jiff refused {} ({}), which lies in its range", text, error
                );
            }
        }
    }

    /// Whatever our parser accepts among near misses of RFC 3339, jiff accepts too, as the
    /// same instant (jiff accepts more: ISO 8601 forms RFC 3339 does not have).
    #[test]
    fn parsing_of_near_misses_accepts_nothing_jiff_refuses(text in near_miss()) {
        if let Ok(ours) = text.parse::<Stamp>() {
            let theirs = text
                .parse::<Timestamp>()
                .map_err(|e| TestCaseError::fail(format!("we accept {text:?}, jiff refuses: {e}")))?;
            prop_assert_eq!(ours.micros_since_epoch(), jiff_micros(theirs), "{:?}", text);
        }
    }

    /// Display equals jiff's `Timestamp` display in UTC (the fraction's trailing zeros cut,
    /// none when zero), and parses back to the same instant.
    #[test]
    fn display_agrees_with_jiff_and_parses_back(
        micros in prop_oneof![
            4 => MIN_MICROS..=MAX_MICROS,
            2 => (MIN_MICROS / 1_000_000..=MAX_MICROS / 1_000_000).prop_map(|s| s * 1_000_000),
            2 => (MIN_MICROS / 1_000..=MAX_MICROS / 1_000).prop_map(|m| m * 1_000),
            1 => prop::sample::select(vec![MIN_MICROS, MAX_MICROS, -1, 0, 1, 999_999, -999_999]),
        ],
        tiebreak in any::<u64>(),
    ) {
        let stamp = Stamp::new(micros, tiebreak).expect("in range");
        let text = stamp.to_string();
        if let Ok(theirs) = Timestamp::from_microsecond(micros) {
            prop_assert_eq!(&text, &theirs.to_string());
        }
        let back: Stamp = text.parse().expect("our own text parses");
        prop_assert_eq!(back.micros_since_epoch(), micros);
        prop_assert_eq!(back, Stamp::new(micros, 0).unwrap());
        // The seconds form cuts toward the past.
        let seconds: Stamp = stamp.to_seconds_string().parse().unwrap();
        prop_assert_eq!(seconds.micros_since_epoch(), micros - micros.rem_euclid(1_000_000));
    }

    /// Serde writes the whole stamp, tiebreaker included, and reads it back.
    #[test]
    fn serde_round_trips_the_whole_stamp(micros in MIN_MICROS..=MAX_MICROS, tiebreak in any::<u64>()) {
        let stamp = Stamp::new(micros, tiebreak).unwrap();
        let json = serde_json::to_string(&stamp).unwrap();
        prop_assert_eq!(&json, &format!(r#"{{"time":"{stamp}","tiebreak":{tiebreak}}}"#));
        prop_assert_eq!(serde_json::from_str::<Stamp>(&json).unwrap(), stamp);
    }
}

#[test]
fn pinned_examples() {
    let cases = [
        (
            "2024-10-07T15:39:25.123456Z",
            1_728_315_565_123_456,
            "2024-10-07T15:39:25.123456Z",
        ),
        (
            "2024-10-07T17:39:25.1234+02:00",
            1_728_315_565_123_400,
            "2024-10-07T15:39:25.1234Z",
        ),
        (
            "2024-10-07t15:39:25z",
            1_728_315_565_000_000,
            "2024-10-07T15:39:25Z",
        ),
        (
            "2024-10-07 15:39:25.000000Z",
            1_728_315_565_000_000,
            "2024-10-07T15:39:25Z",
        ),
        (
            "2024-10-07T15:39:25.123456789Z",
            1_728_315_565_123_456,
            "2024-10-07T15:39:25.123456Z",
        ),
        (
            "2024-10-07T15:39:25.9999999Z",
            1_728_315_565_999_999,
            "2024-10-07T15:39:25.999999Z",
        ),
        ("1970-01-01T00:00:00Z", 0, "1970-01-01T00:00:00Z"),
        ("1970-01-01T00:00:00-00:00", 0, "1970-01-01T00:00:00Z"),
        (
            "1969-12-31T23:59:59.9999999Z",
            -1,
            "1969-12-31T23:59:59.999999Z",
        ),
        (
            "1970-01-01T01:00:00.5+01:00",
            500_000,
            "1970-01-01T00:00:00.5Z",
        ),
        (
            "2000-02-29T23:30:00-01:00",
            951_870_600_000_000,
            "2000-03-01T00:30:00Z",
        ),
        ("0000-01-01T00:00:00Z", MIN_MICROS, "0000-01-01T00:00:00Z"),
        (
            "0000-01-01T00:00:00-23:59",
            MIN_MICROS + 86_340_000_000,
            "0000-01-01T23:59:00Z",
        ),
        (
            "9999-12-31T23:59:59.999999Z",
            MAX_MICROS,
            "9999-12-31T23:59:59.999999Z",
        ),
        (
            "9999-12-31T23:59:59.99999999Z",
            MAX_MICROS,
            "9999-12-31T23:59:59.999999Z",
        ),
        (
            "9999-12-31T23:59:59+23:59",
            MAX_MICROS - 86_340_999_999,
            "9999-12-31T00:00:59Z",
        ),
    ];
    for (text, micros, shown) in cases {
        let stamp: Stamp = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(
            (
                stamp.micros_since_epoch(),
                stamp.tiebreak(),
                stamp.to_string()
            ),
            (micros, 0, shown.to_owned()),
            "{text}"
        );
    }
    assert_eq!(Stamp::MIN.to_string(), "0000-01-01T00:00:00Z");
    assert_eq!(Stamp::MIN, Stamp::new(MIN_MICROS, 0).unwrap());
    assert_eq!(
        Stamp::new(1_728_315_565_123_456, 9)
            .unwrap()
            .to_seconds_string(),
        "2024-10-07T15:39:25Z"
    );
    assert_eq!(
        Stamp::new(-1, 0).unwrap().to_seconds_string(),
        "1969-12-31T23:59:59Z"
    );
}

#[test]
fn stamps_order_by_instant_then_tiebreaker() {
    let s = |micros, tiebreak| Stamp::new(micros, tiebreak).unwrap();
    assert!(s(1, 0) > s(0, u64::MAX));
    assert!(s(0, 1) > s(0, 0));
    assert!(s(-1, 5) < s(0, 0));
    assert!(Stamp::MIN <= s(MIN_MICROS, 0));
    assert!(Stamp::MIN < s(MIN_MICROS, 1));
}

#[test]
fn leap_second_parses_as_second_59() {
    for (leap, plain) in [
        ("2016-12-31T23:59:60Z", "2016-12-31T23:59:59Z"),
        ("2016-12-31T23:59:60.5Z", "2016-12-31T23:59:59.5Z"),
        ("2017-01-01T00:59:60+01:00", "2016-12-31T23:59:59Z"),
        ("2024-06-15T12:34:60Z", "2024-06-15T12:34:59Z"),
    ] {
        let stamp: Stamp = leap.parse().unwrap_or_else(|e| panic!("{leap}: {e}"));
        assert_eq!(stamp.to_string(), plain, "{leap}");
        assert_eq!(stamp, plain.parse().unwrap(), "{leap}");
        let theirs: Timestamp = leap.parse().unwrap();
        assert_eq!(jiff_micros(theirs), stamp.micros_since_epoch(), "{leap}");
    }
    assert!("2016-12-31T23:59:61Z".parse::<Stamp>().is_err());
}

#[test]
fn out_of_range_stamps_are_refused_with_the_count() {
    for micros in [i64::MAX, i64::MIN, MIN_MICROS - 1, MAX_MICROS + 1] {
        let error = Stamp::new(micros, 0).unwrap_err();
        assert_eq!(error.input(), micros.to_string());
        assert_eq!(
            error.to_string(),
            format!("{micros} microseconds since the epoch is outside the years 0000 to 9999")
        );
    }
    assert!(Stamp::new(MIN_MICROS, u64::MAX).is_ok());
    assert!(Stamp::new(MAX_MICROS, u64::MAX).is_ok());
}

#[test]
fn malformed_text_is_refused_with_the_text() {
    for text in [
        "",
        "2024-10-07",
        "2024-10-07T15:39:25",
        "2024-10-07T15:39Z",
        "2024-10-07T15:39:25+02",
        "2024-10-07T15:39:25+0200",
        "2024-10-07T15:39:25+24:00",
        "2024-10-07T15:39:25+02:60",
        "2024-10-07T15:39:25.Z",
        "2024-10-07T15:39:25.1234567890Z",
        "2024-10-07T15:39:25,5Z",
        "2024-10-07T24:00:00Z",
        "2024-10-07T15:60:00Z",
        "2024-02-30T00:00:00Z",
        "2023-02-29T00:00:00Z",
        "1900-02-29T00:00:00Z",
        "2024-13-01T00:00:00Z",
        "2024-00-01T00:00:00Z",
        "2024-10-00T00:00:00Z",
        "+2024-10-07T15:39:25Z",
        "-0001-12-31T23:59:59Z",
        "10000-01-01T00:00:00Z",
        "0000-01-01T00:00:00+00:01",
        "9999-12-31T23:59:59-00:01",
        "2024-10-07T15:39:25Z ",
        " 2024-10-07T15:39:25Z",
        "2024-10-07X15:39:25Z",
        "2024-10-07T15:39:25\u{0}Z",
        "２０２４-10-07T15:39:25Z",
        "yesterday\n\"`",
    ] {
        let error = text.parse::<Stamp>().expect_err(text);
        assert_eq!(error.input(), text);
        assert_eq!(
            error.to_string(),
            format!(
                "`{}` is not an RFC 3339 date-time in the years 0000 to 9999, such as `2024-10-07T15:39:25.123456Z`",
                text.escape_debug()
            )
        );
    }
    assert_eq!(
        "2024-02-30T00:00:00Z"
            .parse::<Stamp>()
            .unwrap_err()
            .to_string(),
        "`2024-02-30T00:00:00Z` is not an RFC 3339 date-time in the years 0000 to 9999, such as `2024-10-07T15:39:25.123456Z`"
    );
    assert_eq!(
        "a\"b\n".parse::<Stamp>().unwrap_err().to_string(),
        r#"`a\"b\n` is not an RFC 3339 date-time in the years 0000 to 9999, such as `2024-10-07T15:39:25.123456Z`"#
    );
}

#[test]
fn serde_refuses_bad_stamps() {
    for (json, message) in [
        (
            r#"{"time":"2024-10-07T15:39:25Z"}"#,
            "missing field `tiebreak`",
        ),
        (
            r#"{"time":"2024-10-07T15:39:25Z","tiebreak":1,"x":2}"#,
            "unknown field `x`",
        ),
        (
            r#"{"time":"2024-10-07","tiebreak":1}"#,
            "`2024-10-07` is not an RFC 3339 date-time",
        ),
        (
            r#"{"time":"2024-10-07T15:39:25Z","tiebreak":-1}"#,
            "invalid value: integer `-1`",
        ),
        (r#""2024-10-07T15:39:25Z""#, "invalid type: string"),
    ] {
        let error = serde_json::from_str::<Stamp>(json).unwrap_err().to_string();
        assert!(error.starts_with(message), "{json}: {error}");
    }
}
