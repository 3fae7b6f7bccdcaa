//! The one pass of [`StoreSchema::parse_patch`] over a valid patch: reading the JSON,
//! resolving each name in the schema as it is read and checking each value as soon as it is
//! read.
//!
//! It gives up (`None`) at the first thing that is not part of a valid patch (a violation
//! of any kind, malformed JSON) and at the few valid spellings it leaves out (escapes in
//! names, integers of more than 18 digits, `-0`): `parse_patch` then runs the full parser and
//! checks, whose report is the one callers see. So this pass only has to agree with them on
//! the patches it accepts, which the tests check on generated and hostile input.

use serde_json::Number;

use super::{Place, check_value};
use crate::error::Violations;
use crate::limits::Limits;
use crate::names::{Hashed, NO_RANK, hash_name};
use crate::patch::{Patch, TraitChange};
use crate::schema::{GroupDefinition, StoreSchema};
use crate::value::{Scalar, TraitValue};

/// `bytes` as a patch checked against `schema`, or `None` to leave them to the full parser.
#[cfg(test)]
fn parse_valid(bytes: &[u8], schema: &StoreSchema) -> Option<Patch> {
    let mut patch = Patch::with_capacity_for_input(bytes.len());
    read_valid(bytes, schema, &mut patch).map(|()| patch)
}

/// Reads `bytes` into `patch` (empty, made for them) as a patch checked against `schema`;
/// `None` leaves them to the full parser, and `patch` part read. The patch is the
/// caller's, not returned, so that it is not moved (160 bytes) on its way out.
pub(super) fn read_valid(bytes: &[u8], schema: &StoreSchema, patch: &mut Patch) -> Option<()> {
    let text = std::str::from_utf8(bytes).ok()?;
    let mut reader = Reader { text, at: 0 };
    reader.open(b'{')?;
    if reader.name()? != "traits" {
        return None;
    }
    reader.colon()?;
    read_groups(&mut reader, patch, schema)?;
    reader.skip_whitespace();
    reader.eat(b'}')?;
    reader.skip_whitespace();
    if reader.at != text.len() {
        return None;
    }
    patch.mark_resolved(schema);
    Some(())
}

/// The `traits` object.
fn read_groups(reader: &mut Reader<'_>, patch: &mut Patch, schema: &StoreSchema) -> Option<()> {
    let limits = schema.limits();
    read_members(
        reader,
        limits.max_groups_per_patch,
        |key| {
            schema
                .lookup(key, false)
                .map(|(rank, _, group)| (rank, group))
        },
        |reader, name, hash, rank, definition| {
            let first_entry = patch.len();
            read_traits(reader, patch, name, definition, limits)?;
            patch.push_group(name, hash, rank, first_entry);
            Some(())
        },
    )
}

/// One group's object.
fn read_traits(
    reader: &mut Reader<'_>,
    patch: &mut Patch,
    group: &str,
    definition: &GroupDefinition,
    limits: &Limits,
) -> Option<()> {
    read_members(
        reader,
        limits.max_traits_per_group,
        |key| definition.lookup(key, false).map(|(rank, _, t)| (rank, t)),
        |reader, name, hash, rank, trait_definition| {
            let change = match reader.value()? {
                Some(value) => {
                    let mut violations = Violations::default();
                    let place = Place { group, name };
                    check_value(trait_definition, limits, &value, place, &mut violations);
                    if !violations.is_empty() {
                        return None;
                    }
                    TraitChange::Set(value)
                }
                None => TraitChange::Remove,
            };
            patch.push_entry(name, hash, rank, change);
            Some(())
        },
    )
}

/// The members of one object, the `traits` object or a group's: each key resolved by
/// `lookup` (its rank and definition), then its value read by `member`. `None` for a key
/// not declared or repeated, more than `most` members, or anything `member` gives up on.
fn read_members<'a, D>(
    reader: &mut Reader<'a>,
    most: usize,
    lookup: impl Fn(Hashed<'_>) -> Option<(u32, D)>,
    mut member: impl FnMut(&mut Reader<'a>, &'a str, u32, u32, D) -> Option<()>,
) -> Option<()> {
    reader.open(b'{')?;
    if reader.close(b'}') {
        return Some(());
    }
    // By rank: a schema declares at most 50 groups, a group at most 95 traits.
    let mut seen = 0_u128;
    let mut count = 0;
    loop {
        let name = reader.name()?;
        let hash = hash_name(name);
        let key = Hashed {
            name,
            hash,
            rank: NO_RANK,
        };
        let (rank, definition) = lookup(key)?;
        let bit = 1_u128.checked_shl(rank)?;
        count += 1;
        if seen & bit != 0 || count > most {
            return None;
        }
        seen |= bit;
        reader.colon()?;
        member(reader, name, hash, rank, definition)?;
        if !reader.comma_or_close(b'}')? {
            return Some(());
        }
    }
}

/// 10^0 to 10^19, each exact in an `f64` (up to 10^22 are): a number on the fast path of
/// [`Reader::number`] has at most 19 digits.
const POWERS_OF_TEN: [f64; 20] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19,
];

/// A position in the JSON text.
struct Reader<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Reader<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            self.at += 1;
        }
    }

    /// Takes `byte`, which must come next.
    fn eat(&mut self, byte: u8) -> Option<()> {
        (self.peek()? == byte).then(|| self.at += 1)
    }

    /// Takes `{` or `[` after any whitespace, and the whitespace after it.
    fn open(&mut self, bracket: u8) -> Option<()> {
        self.skip_whitespace();
        self.eat(bracket)?;
        self.skip_whitespace();
        Some(())
    }

    /// Takes the closing `bracket` of an empty object or array, if it comes next.
    fn close(&mut self, bracket: u8) -> bool {
        self.eat(bracket).is_some()
    }

    /// Takes `:` and the whitespace around it.
    fn colon(&mut self) -> Option<()> {
        self.skip_whitespace();
        self.eat(b':')?;
        self.skip_whitespace();
        Some(())
    }

    /// Takes `,` (then `true`: another member follows) or the closing `bracket` (`false`).
    fn comma_or_close(&mut self, bracket: u8) -> Option<bool> {
        self.skip_whitespace();
        let byte = self.peek()?;
        self.at += 1;
        if byte == b',' {
            self.skip_whitespace();
            Some(true)
        } else {
            (byte == bracket).then_some(false)
        }
    }

    /// Skips the bytes a string holds as they are: up to the next `"`, `\\` or control
    /// byte, or the end. Eight bytes at a time while eight are left.
    fn skip_plain(&mut self) {
        /// `0x01` in every byte of a word.
        const ONES: u64 = u64::MAX / 255;
        let bytes = self.text.as_bytes();
        while let Some(chunk) = bytes.get(self.at..self.at + 8) {
            let word = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
            // The high bit of each byte that is zero in `x`; exact up to the first such
            // byte, which is all that is used.
            let zero = |x: u64| x.wrapping_sub(ONES) & !x & (ONES << 7);
            let stop = zero(word ^ (ONES * u64::from(b'"')))
                | zero(word ^ (ONES * u64::from(b'\\')))
                | (word.wrapping_sub(ONES * 0x20) & !word & (ONES << 7));
            if stop != 0 {
                self.at += (stop.trailing_zeros() / 8) as usize;
                return;
            }
            self.at += 8;
        }
        while !matches!(self.peek(), None | Some(b'"' | b'\\' | 0..=0x1f)) {
            self.at += 1;
        }
    }

    /// A key, which must be a string with no escape.
    fn name(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let start = self.at;
        self.skip_plain();
        if self.peek()? != b'"' {
            return None;
        }
        let name = &self.text[start..self.at];
        self.at += 1;
        Some(name)
    }

    /// A trait's value: `Some` value, or `None` for `null`.
    fn value(&mut self) -> Option<Option<TraitValue>> {
        Some(Some(match self.peek()? {
            b'n' => return self.word("null").map(|()| None),
            b'[' => {
                self.open(b'[')?;
                let mut items = Vec::new();
                if !self.close(b']') {
                    loop {
                        items.push(self.scalar()?);
                        if !self.comma_or_close(b']')? {
                            break;
                        }
                    }
                }
                TraitValue::Array(items)
            }
            _ => match self.scalar()? {
                Scalar::String(s) => TraitValue::String(s),
                Scalar::Number(n) => TraitValue::Number(n),
                Scalar::Bool(b) => TraitValue::Bool(b),
            },
        }))
    }

    fn scalar(&mut self) -> Option<Scalar> {
        match self.peek()? {
            b'"' => self.string().map(Scalar::String),
            b't' => self.word("true").map(|()| Scalar::Bool(true)),
            b'f' => self.word("false").map(|()| Scalar::Bool(false)),
            _ => self.number().map(Scalar::Number),
        }
    }

    fn word(&mut self, word: &str) -> Option<()> {
        let end = self.at + word.len();
        (self.text.as_bytes().get(self.at..end)? == word.as_bytes()).then(|| self.at = end)
    }

    /// A string value, its escapes decoded as JSON (and serde_json) decodes them.
    fn string(&mut self) -> Option<String> {
        self.eat(b'"')?;
        let start = self.at;
        self.skip_plain();
        match self.peek()? {
            b'"' => {}
            b'\\' => return self.escaped_string(start),
            _ => return None,
        }
        let text = self.text[start..self.at].to_owned();
        self.at += 1;
        Some(text)
    }

    /// The rest of a string that has an escape at `self.at`; `start` is where it began.
    fn escaped_string(&mut self, start: usize) -> Option<String> {
        let mut text = self.text[start..self.at].to_owned();
        loop {
            let plain = self.at;
            self.skip_plain();
            text.push_str(&self.text[plain..self.at]);
            match self.peek()? {
                b'"' => {
                    self.at += 1;
                    return Some(text);
                }
                b'\\' => {
                    self.at += 1;
                    let byte = self.peek()?;
                    self.at += 1;
                    text.push(match byte {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => self.unicode_escape()?,
                        _ => return None,
                    });
                }
                _ => return None,
            }
        }
    }

    /// The character of a `\u` escape whose `XXXX` comes next, a surrogate pair taken
    /// whole; a lone surrogate is refused, as serde_json refuses it.
    fn unicode_escape(&mut self) -> Option<char> {
        let first = self.hex4()?;
        match first {
            0xD800..=0xDBFF => {
                self.word("\\u")?;
                let second = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&second) {
                    return None;
                }
                char::from_u32(0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00))
            }
            0xDC00..=0xDFFF => None,
            _ => char::from_u32(first),
        }
    }

    fn hex4(&mut self) -> Option<u32> {
        let digits = self.text.get(self.at..self.at + 4)?;
        if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        self.at += 4;
        u32::from_str_radix(digits, 16).ok()
    }

    /// A number, as serde_json (with `float_roundtrip`) reads it: a whole number without
    /// fraction or exponent is an integer, anything else the nearest `f64`.
    fn number(&mut self) -> Option<Number> {
        let start = self.at;
        let negative = self.eat(b'-').is_some();
        let mut magnitude = 0_u64;
        let mut digits = 0;
        match self.peek()? {
            b'0' => self.at += 1,
            b'1'..=b'9' => {
                while let Some(digit @ b'0'..=b'9') = self.peek() {
                    magnitude = magnitude.wrapping_mul(10) + u64::from(digit - b'0');
                    digits += 1;
                    self.at += 1;
                }
            }
            _ => return None,
        }
        let mut float = false;
        let mut fraction_digits = 0;
        if self.eat(b'.').is_some() {
            float = true;
            while let Some(digit @ b'0'..=b'9') = self.peek() {
                magnitude = magnitude.wrapping_mul(10) + u64::from(digit - b'0');
                fraction_digits += 1;
                self.at += 1;
            }
            if fraction_digits == 0 {
                return None;
            }
        }
        let mut exponent = false;
        if let Some(b'e' | b'E') = self.peek() {
            (float, exponent) = (true, true);
            self.at += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.at += 1;
            }
            self.digits()?;
        }
        if float {
            // A decimal whose digits, read as a whole number, are exact in an `f64` (at most
            // 2^53), over a power of ten that is exact too: one division, rounded once, is the
            // nearest `f64`, as the full conversion finds it (Clinger's fast path), at a
            // fraction of its cost. 19 digits cannot wrap the `u64`.
            if !exponent && digits + fraction_digits <= 19 && magnitude <= 1 << 53 {
                let value = magnitude as f64 / POWERS_OF_TEN[fraction_digits];
                return Number::from_f64(if negative { -value } else { value });
            }
            let value: f64 = self.text[start..self.at].parse().ok()?;
            return Number::from_f64(value).filter(|_| value.is_finite());
        }
        // Up to 18 digits fit an i64 either way; longer ones are left to serde_json, which
        // turns those past the integer range into floats. serde_json reads `-0` as a float.
        if digits > 18 || (negative && magnitude == 0) {
            return None;
        }
        Some(if negative {
            Number::from(-i64::try_from(magnitude).ok()?)
        } else {
            Number::from(magnitude)
        })
    }

    /// One or more decimal digits.
    fn digits(&mut self) -> Option<()> {
        let start = self.at;
        while let Some(b'0'..=b'9') = self.peek() {
            self.at += 1;
        }
        (self.at > start).then_some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> StoreSchema {
        serde_json::from_str(
            r#"[{"displayName": "Contact", "traits": {
                "email": {"dataType": "STRING"}, "age": {"dataType": "NUMBER"},
                "vip": {"dataType": "BOOLEAN"}, "tags": {"dataType": "ARRAY"}}}]"#,
        )
        .unwrap()
    }

    #[test]
    fn a_valid_patch_is_read_in_one_pass() {
        let json = r#" { "traits" : { "Contact" : { "email" : "a\"b\u00e9\ud83d\ude00", "age" : -1.5e3,
            "vip": true, "tags": [ "x", 120, false ] }, "Contact2": {} } } "#;
        let json = json.replace(r#", "Contact2": {}"#, "");
        let patch = parse_valid(json.as_bytes(), &schema()).expect("read in one pass");
        assert_eq!(Ok(patch), Patch::from_slice(json.as_bytes()));
    }

    /// The fast path to the nearest `f64` of [`Reader::number`] and the full conversion
    /// agree: decimals of 1-21 digits with the point anywhere, on and off the fast path
    /// (over 2^53 as a whole number, over 19 digits, an exponent), and edge spellings.
    #[test]
    fn a_decimal_reads_as_the_same_number_as_the_full_parser_reads_it() {
        let mut texts: Vec<String> = [
            "0.0",
            "-0.0",
            "0.1",
            "0.30000000000000004",
            "9007199254740993.0",
            "9007199254740992.5",
            "1.7976931348623157",
            "123456789012345678.9",
            "5e-324",
            "1.5e3",
            "-2.25E+2",
            "0.000000000000000000001",
        ]
        .map(String::from)
        .into();
        // A fixed xorshift sequence: the same cases every run.
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        let mut next = move |below: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % below) as usize
        };
        for _ in 0..20_000 {
            let len = next(21) + 1;
            let digits: String = (0..len)
                .map(|_| char::from(b'0' + next(10) as u8))
                .collect();
            let (whole, fraction) = digits.split_at(next(len as u64));
            let whole = whole.trim_start_matches('0');
            let sign = ["", "-"][next(2)];
            // An empty whole part reads `0`, an empty fraction `5`.
            texts.push(format!("{sign}{whole:0>1}.{fraction:5<1}"));
        }
        let schema = schema();
        for text in texts {
            let json = format!(r#"{{"traits": {{"Contact": {{"age": {text}}}}}}}"#);
            // Whole numbers past 2^31 break the schema's integer limit: the one pass leaves
            // them to the full checks.
            let full = Patch::from_slice(json.as_bytes())
                .and_then(|patch| schema.validate(&patch).map(|()| patch));
            assert_eq!(parse_valid(json.as_bytes(), &schema), full.ok(), "{text}");
        }
    }

    #[test]
    fn what_is_not_a_valid_patch_is_left_to_the_full_parser() {
        for json in [
            r#"{"traits": {"Contact": {"fax": 1}}}"#,
            r#"{"traits": {"Contact": {"age": "1"}}}"#,
            r#"{"traits": {"Contact": {"age": 1, "age": 2}}}"#,
            r#"{"traits": {"Contact": {"age": -0}}}"#,
            r#"{"traits": {"Contact": {"age": 1234567890123456789}}}"#,
            r#"{"traits": {"Contact": {"age": 01}}}"#,
            r#"{"traits": {"Contact": {"email": "\ud83d"}}}"#,
            r#"{"traits": {"Contact": {"em\u0061il": "a"}}}"#,
            r#"{"traits": {"Contact": {}}, "x": 1}"#,
            r#"{"traits": {"Contact": {}}} x"#,
        ] {
            assert!(parse_valid(json.as_bytes(), &schema()).is_none(), "{json}");
        }
    }

    #[test]
    fn a_string_or_key_reads_the_same_wherever_its_escape_quote_or_control_byte_falls() {
        // Strings are scanned eight bytes at a time: put each kind of byte that ends the
        // plain run at every position of strings up to three words long, in a value and in
        // a key (where an escape is left to the full parser).
        let schema = schema();
        for len in 0..24 {
            for at in 0..=len {
                for special in [r#"\""#, r"\\", r"\u00e9", "\t", "é", "\u{7f}"] {
                    let text = format!("{}{special}{}", "a".repeat(at), "b".repeat(len - at));
                    let value = format!(r#"{{"traits": {{"Contact": {{"email": "{text}"}}}}}}"#);
                    let valid = special != "\t";
                    assert_eq!(
                        parse_valid(value.as_bytes(), &schema).is_some(),
                        valid,
                        "{value}"
                    );
                    for json in [
                        value,
                        format!(r#"{{"traits": {{"Contact": {{"{text}": 1}}}}}}"#),
                    ] {
                        let full = Patch::from_slice(json.as_bytes())
                            .and_then(|patch| schema.validate(&patch).map(|()| patch));
                        assert_eq!(schema.parse_patch(json.as_bytes()), full, "{json}");
                    }
                }
            }
        }
    }
}
