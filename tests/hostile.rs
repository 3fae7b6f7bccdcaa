//! Hostile input: each case ends in a typed error or a correct result, never a panic, never
//! a stack overflow, never memory beyond a small multiple of the input.
//!
//! Every test runs on the default test thread stack. The large-input tests also measure,
//! in a child process of their own, how much the peak resident memory grows.

mod common;

#[path = "../fuzz/check.rs"]
mod check;

use std::process::Command;

use common::strategies::{config, mutate, mutations, profile, schema, valid_patch_doc};
use profile_traits::{
    MAX_VIOLATIONS, Patch, PatchError, Profile, StoreSchema, TraitValue, ViolationKind, merge,
    merge_in_place,
};
use proptest::prelude::*;
use serde_json::{Value, json};

use ViolationKind::{
    DuplicateKey, InvalidValue, LimitExceeded, MalformedJson, NotAnObject, RuleBroken,
    UnexpectedKey, UnknownGroup, UnknownTrait, WrongType,
};

const DEPTH: usize = 100_000;

/// The hostile-input schema: the fuzz schema's `Contact` with more rules, a group `Big`
/// of 95 traits (the most a group may declare) and filler groups up to 50 (the most a
/// store may declare).
fn store() -> StoreSchema {
    let mut groups = vec![json!({"displayName": "Contact", "traits": {
        "email": {"dataType": "STRING"},
        "name": {"dataType": "STRING",
            "validationRule": {"ruleType": "STRING", "minLength": 2, "maxLength": 5}},
        "code": {"dataType": "STRING",
            "validationRule": {"ruleType": "STRING", "pattern": "(a+)+$"}},
        "age": {"dataType": "NUMBER"},
        "vip": {"dataType": "BOOLEAN"},
        "tags": {"dataType": "ARRAY"}
    }})];
    let big: serde_json::Map<String, Value> = (0..95)
        .map(|i| (format!("t{i}"), json!({"dataType": "STRING"})))
        .collect();
    groups.push(json!({"displayName": "Big", "traits": big}));
    for i in 2..50 {
        groups.push(
            json!({"displayName": format!("G{i}"), "traits": {"x": {"dataType": "BOOLEAN"}}}),
        );
    }
    serde_json::from_value(json!({ "traitGroups": groups })).expect("valid schema")
}

fn stored() -> Profile {
    serde_json::from_str(r#"{"traits": {"Contact": {"email": "a@b.c", "age": 30}}}"#)
        .expect("valid profile")
}

fn text(profile: &Profile) -> String {
    serde_json::to_string(profile).expect("a profile serializes")
}

/// Parses `bytes` as a patch and merges it into [`stored`] in place: the merged profile,
/// or the error, after checking that a rejection left the profile as it was and that the
/// report is capped.
fn outcome(bytes: &[u8]) -> Result<Profile, PatchError> {
    let schema = store();
    let before = stored();
    let result = Patch::from_slice(bytes).and_then(|patch| {
        let mut profile = before.clone();
        match merge_in_place(&mut profile, &patch, &schema) {
            Ok(_) => Ok(profile),
            Err(error) => {
                assert_eq!(
                    text(&profile),
                    text(&before),
                    "a rejected patch changed the profile"
                );
                Err(error)
            }
        }
    });
    if let Err(error) = &result {
        assert!(!error.violations().is_empty());
        assert!(error.violations().len() <= MAX_VIOLATIONS);
    }
    result
}

/// The `(kind, pointer)` of every violation of a rejected patch.
#[track_caller]
fn rejection(bytes: impl AsRef<[u8]>) -> Vec<(ViolationKind, String)> {
    match outcome(bytes.as_ref()) {
        Ok(profile) => panic!("accepted, giving {}", text(&profile)),
        Err(error) => error
            .violations()
            .iter()
            .map(|v| (v.kind(), v.pointer().to_owned()))
            .collect(),
    }
}

#[track_caller]
fn assert_rejected(bytes: impl AsRef<[u8]>, expected: &[(ViolationKind, &str)]) {
    let expected: Vec<(ViolationKind, String)> = expected
        .iter()
        .map(|(k, p)| (*k, (*p).to_owned()))
        .collect();
    assert_eq!(rejection(bytes), expected);
}

/// The merged profile's `Contact` group as JSON.
#[track_caller]
fn accepted(bytes: impl AsRef<[u8]>) -> Value {
    match outcome(bytes.as_ref()) {
        Ok(profile) => profile.to_value()["traits"]["Contact"].clone(),
        Err(error) => panic!("rejected: {error}"),
    }
}

fn patch_of(group: &str, name: &str, value_json: &str) -> String {
    format!(
        r#"{{"traits": {{{}: {{{}: {value_json}}}}}}}"#,
        Value::from(group),
        Value::from(name)
    )
}

fn contact(name: &str, value_json: &str) -> String {
    patch_of("Contact", name, value_json)
}

// ---------------------------------------------------------------------------------------
// Deep nesting
// ---------------------------------------------------------------------------------------

fn nested(open: &str, close: &str, depth: usize, inner: &str) -> String {
    let mut s = String::with_capacity(depth * (open.len() + close.len()) + inner.len());
    for _ in 0..depth {
        s.push_str(open);
    }
    s.push_str(inner);
    for _ in 0..depth {
        s.push_str(close);
    }
    s
}

#[test]
fn arrays_nested_100000_deep_in_a_trait_value_are_a_nested_array() {
    // Nested values are skipped without recursion: the answer is the precise one.
    let patch = contact("tags", &nested("[", "]", DEPTH, "1"));
    assert_rejected(&patch, &[(InvalidValue, "/traits/Contact/tags/0")]);
    let patch = contact("tags", &nested("[", "]", 10 * DEPTH, "1"));
    assert_rejected(&patch, &[(InvalidValue, "/traits/Contact/tags/0")]);
}

#[test]
fn objects_nested_100000_deep_in_a_trait_value_are_an_invalid_value() {
    let patch = contact("tags", &nested(r#"{"a":"#, "}", DEPTH, "1"));
    assert_rejected(&patch, &[(InvalidValue, "/traits/Contact/tags")]);
}

#[test]
fn objects_nested_100000_deep_as_a_group_are_an_invalid_value() {
    let group = nested(r#"{"a":"#, "}", DEPTH, "1");
    let patch = format!(r#"{{"traits": {{"Contact": {group}}}}}"#);
    assert_rejected(&patch, &[(InvalidValue, "/traits/Contact/a")]);
}

#[test]
fn nesting_100000_deep_at_the_top_level_is_refused() {
    assert_rejected(nested("[", "]", DEPTH, ""), &[(NotAnObject, "")]);
    assert_rejected(
        nested(r#"{"a":"#, "}", DEPTH, "1"),
        &[(UnexpectedKey, "/a")],
    );
    assert_rejected(
        nested(r#"{"traits":"#, "}", DEPTH, "{}"),
        &[(InvalidValue, "/traits/traits/traits")],
    );
}

#[test]
fn unclosed_nesting_100000_deep_is_malformed_json() {
    assert_rejected("[".repeat(DEPTH), &[(MalformedJson, "")]);
    assert_rejected(
        contact("tags", &"[".repeat(DEPTH)),
        &[(MalformedJson, "/traits/Contact/tags")],
    );
}

#[test]
fn profile_and_schema_nested_100000_deep_are_refused() {
    let deep = nested("[", "]", DEPTH, "");
    let profile = format!(r#"{{"traits": {{"Contact": {{"tags": {deep}}}}}}}"#);
    assert!(serde_json::from_str::<Profile>(&profile).is_err());
    let schema = format!(r#"{{"traitGroups": {deep}}}"#);
    assert!(serde_json::from_str::<StoreSchema>(&schema).is_err());
    assert!(serde_json::from_str::<Patch>(&deep).is_err());
}

// ---------------------------------------------------------------------------------------
// Document shape
// ---------------------------------------------------------------------------------------

#[test]
fn duplicate_keys_are_refused_at_every_level() {
    assert_rejected(
        r#"{"traits": {}, "traits": {}}"#,
        &[(DuplicateKey, "/traits")],
    );
    assert_rejected(
        r#"{"traits": {"Contact": {"age": 1}, "Contact": {"age": 2}}}"#,
        &[(DuplicateKey, "/traits/Contact")],
    );
    assert_rejected(
        r#"{"traits": {"Contact": {"age": 1, "age": 2}}}"#,
        &[(DuplicateKey, "/traits/Contact/age")],
    );
    assert_rejected(
        r#"{"traits": {"Contact": {"age": null, "age": null}}}"#,
        &[(DuplicateKey, "/traits/Contact/age")],
    );
    assert_rejected(
        r#"{"traits": {"Contact": {"tags": {"a": 1, "a": 2}}}}"#,
        &[(InvalidValue, "/traits/Contact/tags")],
    );
    assert_rejected(
        r#"{"x": 1, "x": 2}"#,
        &[(UnexpectedKey, "/x"), (UnexpectedKey, "/x")],
    );
}

#[test]
fn duplicate_keys_are_refused_in_profiles_and_schemas() {
    let profile = r#"{"traits": {"Contact": {"age": 1, "age": 2}}}"#;
    assert!(serde_json::from_str::<Profile>(profile).is_err());
    let profile = r#"{"traits": {"Contact": {"age": 1}, "Contact": {"age": 2}}}"#;
    assert!(serde_json::from_str::<Profile>(profile).is_err());
    let profile = r#"{"traits": {}, "traits": {}}"#;
    assert!(serde_json::from_str::<Profile>(profile).is_err());
    let schema = r#"[{"displayName": "A", "traits": {"x": {"dataType": "STRING"}, "x": {"dataType": "NUMBER"}}}]"#;
    assert!(serde_json::from_str::<StoreSchema>(schema).is_err());
}

#[test]
fn traits_null_is_not_an_object() {
    assert_rejected(r#"{"traits": null}"#, &[(NotAnObject, "/traits")]);
}

#[test]
fn a_null_group_is_not_an_object() {
    assert_rejected(
        r#"{"traits": {"Contact": null}}"#,
        &[(NotAnObject, "/traits/Contact")],
    );
    assert_rejected(
        r#"{"traits": {"Contact": []}}"#,
        &[(NotAnObject, "/traits/Contact")],
    );
}

#[test]
fn a_top_level_array_string_number_or_null_is_not_an_object() {
    for document in [
        "[]",
        "[{\"traits\": {}}]",
        "\"traits\"",
        "42",
        "-0",
        "null",
        "true",
    ] {
        assert_rejected(document, &[(NotAnObject, "")]);
    }
}

#[test]
fn empty_and_trailing_input_is_malformed_json() {
    for document in ["", "   ", "{", "{\"traits\": {}} x", "{\"traits\": {}}}"] {
        let violations = rejection(document);
        assert_eq!(
            violations.last().map(|v| v.0),
            Some(MalformedJson),
            "{document:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Numbers
// ---------------------------------------------------------------------------------------

#[test]
fn a_number_beyond_f64_is_malformed_json() {
    assert_rejected(
        contact("age", "1e400"),
        &[(MalformedJson, "/traits/Contact/age")],
    );
    assert_rejected(
        contact("tags", "[1, -1e400]"),
        &[(MalformedJson, "/traits/Contact/tags")],
    );
}

#[test]
fn minus_zero_is_an_accepted_number() {
    let merged = accepted(contact("age", "-0"));
    assert_eq!(merged["age"], json!(-0.0));
    assert_eq!(merged["age"].to_string(), "-0.0");
    let merged = accepted(contact("age", "-0.0"));
    assert_eq!(merged["age"].to_string(), "-0.0");
}

#[test]
fn integers_just_past_the_32_bit_range_are_refused() {
    assert_rejected(
        contact("age", "2147483648"),
        &[(LimitExceeded, "/traits/Contact/age")],
    );
    assert_rejected(
        contact("age", "-2147483649"),
        &[(LimitExceeded, "/traits/Contact/age")],
    );
    assert_rejected(
        contact("age", "2147483648.0"),
        &[(LimitExceeded, "/traits/Contact/age")],
    );
    assert_rejected(
        contact("age", "3e9"),
        &[(LimitExceeded, "/traits/Contact/age")],
    );
    assert_rejected(
        contact("tags", "[0, 2147483648]"),
        &[(LimitExceeded, "/traits/Contact/tags/1")],
    );
}

#[test]
fn integers_at_the_32_bit_bounds_are_accepted() {
    assert_eq!(
        accepted(contact("age", "2147483647"))["age"],
        json!(2147483647)
    );
    assert_eq!(
        accepted(contact("age", "-2147483648"))["age"],
        json!(-2147483648)
    );
    assert_eq!(
        accepted(contact("age", "2147483647.5"))["age"],
        json!(2147483647.5)
    );
}

#[test]
fn thirty_digit_integers_are_refused_by_the_integer_range() {
    let thirty = "123456789012345678901234567890";
    assert_rejected(
        contact("age", thirty),
        &[(LimitExceeded, "/traits/Contact/age")],
    );
    assert_rejected(
        contact("age", &format!("-{thirty}")),
        &[(LimitExceeded, "/traits/Contact/age")],
    );
    assert_rejected(
        contact("tags", &format!("[{thirty}]")),
        &[(LimitExceeded, "/traits/Contact/tags/0")],
    );
}

#[test]
fn one_and_one_point_zero_are_different_values() {
    assert_eq!(accepted(contact("age", "1.0"))["age"].to_string(), "1.0");
    assert_eq!(accepted(contact("age", "1"))["age"].to_string(), "1");
    let schema = store();
    let mut profile = stored();
    let one: Patch = contact("age", "1").parse().unwrap();
    let one_point_zero: Patch = contact("age", "1.0").parse().unwrap();
    assert_eq!(
        merge_in_place(&mut profile, &one, &schema).unwrap().len(),
        1
    );
    assert_eq!(
        merge_in_place(&mut profile, &one, &schema).unwrap().len(),
        0
    );
    assert_eq!(
        merge_in_place(&mut profile, &one_point_zero, &schema)
            .unwrap()
            .len(),
        1
    );
}

// ---------------------------------------------------------------------------------------
// Strings
// ---------------------------------------------------------------------------------------

#[test]
fn lone_surrogate_escapes_are_malformed_json() {
    for escape in [r#""\ud800""#, r#""\udc00""#, r#""a\ud83dz""#] {
        assert_rejected(
            contact("email", escape),
            &[(MalformedJson, "/traits/Contact/email")],
        );
        let in_key = format!(r#"{{"traits": {{"Contact": {{{escape}: 1}}}}}}"#);
        assert_rejected(in_key, &[(MalformedJson, "/traits/Contact")]);
    }
}

#[test]
fn a_paired_surrogate_escape_is_one_character() {
    assert_eq!(
        accepted(contact("name", r#""\ud83c\udf89🎉""#))["name"],
        json!("🎉🎉")
    );
}

#[test]
fn invalid_utf8_bytes_are_malformed_json() {
    let mut patch = contact("email", r#""a_b""#).into_bytes();
    let at = patch.iter().position(|b| *b == b'_').unwrap();
    for bad in [
        &[0xff][..],
        &[0xc3],
        &[0xed, 0xa0, 0x80],
        &[0xf4, 0x90, 0x80, 0x80],
    ] {
        let mut bytes = patch.clone();
        bytes.splice(at..=at, bad.iter().copied());
        assert_rejected(&bytes, &[(MalformedJson, "/traits/Contact/email")]);
    }
    patch[1] = 0xfe;
    assert_rejected(&patch, &[(MalformedJson, "")]);
}

#[test]
fn an_escaped_nul_is_kept_and_a_raw_nul_is_malformed_json() {
    assert_eq!(
        accepted(contact("email", r#""a\u0000b""#))["email"],
        json!("a\u{0}b")
    );
    assert_rejected(
        contact("email", "\"a\0b\""),
        &[(MalformedJson, "/traits/Contact/email")],
    );
}

#[test]
fn strings_are_limited_to_1024_scalar_values() {
    for unit in ["x", "é", "🎉", "\u{301}"] {
        let at_bound = Value::from(unit.repeat(1024)).to_string();
        assert_eq!(
            accepted(contact("email", &at_bound))["email"],
            json!(unit.repeat(1024))
        );
        let past = Value::from(unit.repeat(1025)).to_string();
        assert_rejected(
            contact("email", &past),
            &[(LimitExceeded, "/traits/Contact/email")],
        );
        let in_array = format!("[{past}]");
        assert_rejected(
            contact("tags", &in_array),
            &[(LimitExceeded, "/traits/Contact/tags/0")],
        );
    }
    // 512 letters with a combining accent each: 1024 scalar values, 512 graphemes.
    let accents = "e\u{301}".repeat(512);
    assert_eq!(
        accepted(contact("email", &Value::from(accents.as_str()).to_string()))["email"],
        json!(accents)
    );
    let past = Value::from(accents + "e").to_string();
    assert_rejected(
        contact("email", &past),
        &[(LimitExceeded, "/traits/Contact/email")],
    );
}

#[test]
fn length_rules_count_scalar_values_not_bytes_or_graphemes() {
    // `name` has minLength 2, maxLength 5.
    for ok in ["🎉🎉", "e\u{301}", "🎉🎉🎉🎉🎉", "👩\u{200d}👩\u{200d}👧"] {
        accepted(contact("name", &Value::from(ok).to_string()));
    }
    for bad in [
        "🎉",
        "é",
        "🎉🎉🎉🎉🎉🎉",
        "👩\u{200d}👩\u{200d}👧\u{200d}👦",
        "e\u{301}e\u{301}e\u{301}",
    ] {
        assert_rejected(
            contact("name", &Value::from(bad).to_string()),
            &[(RuleBroken, "/traits/Contact/name")],
        );
    }
}

#[test]
fn a_ten_megabyte_string_is_refused_with_a_short_report() {
    let huge = "🎉".repeat(10 * 1024 * 1024 / 4);
    let patch = contact("email", &Value::from(huge.as_str()).to_string());
    let error = outcome(patch.as_bytes()).unwrap_err();
    assert_eq!(error.violations().len(), 1);
    assert_eq!(
        error.violations()[0].message(),
        "`/traits/Contact/email`: string has 2621440 characters, at most 1024 allowed"
    );
}

#[test]
fn a_ten_megabyte_trait_name_is_refused_with_a_report_linear_in_it() {
    let name = "n".repeat(10 * 1024 * 1024);
    let patch = contact(&name, "1");
    let error = outcome(patch.as_bytes()).unwrap_err();
    assert_eq!(error.violations().len(), 1);
    assert_eq!(error.violations()[0].kind(), UnknownTrait);
    assert!(error.to_string().len() <= 3 * patch.len());
}

#[test]
fn a_catastrophic_backtracking_pattern_runs_in_linear_time() {
    // `code` has the pattern `(a+)+$`: a backtracking engine takes exponential time on
    // "aaa...ab"; the `regex` crate answers at once, and correctly.
    let no_match = format!("{}b", "a".repeat(1023));
    assert_rejected(
        contact("code", &Value::from(no_match).to_string()),
        &[(RuleBroken, "/traits/Contact/code")],
    );
    let matches = format!("b{}", "a".repeat(1023));
    assert_eq!(
        accepted(contact("code", &Value::from(matches.as_str()).to_string()))["code"],
        json!(matches)
    );
}

// ---------------------------------------------------------------------------------------
// Sizes
// ---------------------------------------------------------------------------------------

fn object_of(entries: impl Iterator<Item = (String, String)>) -> String {
    let members: Vec<String> = entries
        .map(|(k, v)| format!("{}: {v}", Value::from(k)))
        .collect();
    format!("{{{}}}", members.join(", "))
}

#[test]
fn fifty_one_groups_exceed_the_limit() {
    let groups = (0..51).map(|i| (format!("G{i}"), "{}".to_owned()));
    let patch = format!(r#"{{"traits": {}}}"#, object_of(groups));
    let violations = rejection(&patch);
    assert_eq!(violations[0], (LimitExceeded, "/traits".to_owned()));
    // `G0`, `G1` and `G50` are not declared; the others are.
    assert_eq!(violations.len(), 4);
}

#[test]
fn fifty_declared_groups_are_accepted() {
    let mut groups: Vec<(String, String)> = (2..50)
        .map(|i| (format!("G{i}"), r#"{"x": true}"#.to_owned()))
        .collect();
    groups.push(("Contact".to_owned(), r#"{"vip": true}"#.to_owned()));
    groups.push(("Big".to_owned(), r#"{"t0": "a"}"#.to_owned()));
    let patch = format!(r#"{{"traits": {}}}"#, object_of(groups.into_iter()));
    assert_eq!(accepted(&patch)["vip"], json!(true));
}

#[test]
fn a_hundred_traits_in_a_group_exceed_the_limit() {
    let traits = (0..100).map(|i| (format!("t{i}"), "\"v\"".to_owned()));
    let patch = format!(r#"{{"traits": {{"Big": {}}}}}"#, object_of(traits));
    let violations = rejection(&patch);
    assert_eq!(violations[0], (LimitExceeded, "/traits/Big".to_owned()));
    let unknown: Vec<_> = violations[1..]
        .iter()
        .map(|(k, p)| (*k, p.as_str()))
        .collect();
    assert_eq!(
        unknown,
        [
            (UnknownTrait, "/traits/Big/t95"),
            (UnknownTrait, "/traits/Big/t96"),
            (UnknownTrait, "/traits/Big/t97"),
            (UnknownTrait, "/traits/Big/t98"),
            (UnknownTrait, "/traits/Big/t99"),
        ]
    );
    let declared = (0..95).map(|i| (format!("t{i}"), "\"v\"".to_owned()));
    let patch = format!(r#"{{"traits": {{"Big": {}}}}}"#, object_of(declared));
    outcome(patch.as_bytes()).expect("95 declared traits are accepted");
}

#[test]
fn arrays_are_limited_to_100_items() {
    let items = |n: usize| Value::from(vec![Value::from(1); n]).to_string();
    assert_eq!(
        accepted(contact("tags", &items(100)))["tags"],
        json!(vec![1; 100])
    );
    assert_rejected(
        contact("tags", &items(101)),
        &[(LimitExceeded, "/traits/Contact/tags")],
    );
}

#[test]
fn arrays_of_objects_arrays_or_null_are_invalid_values() {
    assert_rejected(
        contact("tags", r#"[{"a": 1}]"#),
        &[(InvalidValue, "/traits/Contact/tags/0")],
    );
    assert_rejected(
        contact("tags", "[1, [2]]"),
        &[(InvalidValue, "/traits/Contact/tags/1")],
    );
    assert_rejected(
        contact("tags", "[[], []]"),
        &[(InvalidValue, "/traits/Contact/tags/0")],
    );
    assert_rejected(
        contact("tags", r#"["a", null]"#),
        &[(InvalidValue, "/traits/Contact/tags/1")],
    );
    assert_rejected(
        contact("tags", "[null]"),
        &[(InvalidValue, "/traits/Contact/tags/0")],
    );
    assert_eq!(accepted(contact("tags", "[]"))["tags"], json!([]));
}

#[test]
fn a_wrong_type_and_an_unknown_name_are_each_reported() {
    assert_rejected(
        r#"{"traits": {"Contact": {"age": "1", "fax": null}, "Nope": {}}}"#,
        &[
            (WrongType, "/traits/Contact/age"),
            (UnknownTrait, "/traits/Contact/fax"),
            (UnknownGroup, "/traits/Nope"),
        ],
    );
}

// ---------------------------------------------------------------------------------------
// Fifty megabytes
// ---------------------------------------------------------------------------------------

const FIFTY_MB: usize = 50 * 1024 * 1024;

/// Peak resident memory of this process, from `/proc/self/status`, if the system says.
fn peak_rss() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Runs `body` in a child process of this test binary, alone, so that its peak memory can
/// be measured; `body` returns the input size, and the peak may grow by at most `factor`
/// times it.
fn isolated(test: &str, factor: usize, body: impl FnOnce() -> usize) {
    if std::env::var_os("PROFILE_TRAITS_HOSTILE_CHILD").is_some() {
        let before = peak_rss();
        let input = body();
        if let (Some(before), Some(after)) = (before, peak_rss()) {
            let grown = after.saturating_sub(before);
            assert!(
                grown <= factor * input,
                "peak memory grew by {grown} bytes for {input} bytes of input"
            );
            eprintln!("{test}: peak memory grew by {grown} bytes for {input} bytes of input");
        }
        return;
    }
    let exe = std::env::current_exe().expect("the test binary knows its path");
    let status = Command::new(exe)
        .args([test, "--exact", "--test-threads=1", "--nocapture"])
        .env("PROFILE_TRAITS_HOSTILE_CHILD", "1")
        .status()
        .expect("the test binary runs");
    assert!(status.success(), "{test} failed in its child process");
}

/// `{"traits": {"Contact": {"u0": null, "u1": null, ...}}}` of about `size` bytes.
fn many_traits(size: usize) -> String {
    let mut patch = String::with_capacity(size + 64);
    patch.push_str(r#"{"traits": {"Contact": {"#);
    let mut i = 0;
    while patch.len() < size {
        if i > 0 {
            patch.push(',');
        }
        patch.push_str(&format!(r#""u{i}":null"#));
        i += 1;
    }
    patch.push_str("}}}");
    patch
}

#[test]
fn a_fifty_megabyte_patch_of_many_traits_is_rejected_with_a_bounded_report() {
    isolated(
        "a_fifty_megabyte_patch_of_many_traits_is_rejected_with_a_bounded_report",
        12,
        || {
            let patch = many_traits(FIFTY_MB);
            let error = outcome(patch.as_bytes()).unwrap_err();
            assert_eq!(error.violations().len(), MAX_VIOLATIONS);
            assert!(error.is_truncated());
            assert_eq!(error.violations()[0].kind(), LimitExceeded);
            assert_eq!(error.violations()[1].pointer(), "/traits/Contact/u0");
            patch.len()
        },
    );
}

#[test]
fn a_fifty_megabyte_patch_of_many_groups_is_rejected_with_a_bounded_report() {
    isolated(
        "a_fifty_megabyte_patch_of_many_groups_is_rejected_with_a_bounded_report",
        16,
        || {
            let mut patch = String::with_capacity(FIFTY_MB + 64);
            patch.push_str(r#"{"traits": {"#);
            let mut i = 0;
            while patch.len() < FIFTY_MB {
                if i > 0 {
                    patch.push(',');
                }
                patch.push_str(&format!(r#""H{i}":{{}}"#));
                i += 1;
            }
            patch.push_str("}}");
            let error = outcome(patch.as_bytes()).unwrap_err();
            assert_eq!(error.violations().len(), MAX_VIOLATIONS);
            assert!(error.is_truncated());
            assert_eq!(error.violations()[0].pointer(), "/traits");
            patch.len()
        },
    );
}

#[test]
fn a_fifty_megabyte_string_value_is_rejected_with_a_bounded_report() {
    isolated(
        "a_fifty_megabyte_string_value_is_rejected_with_a_bounded_report",
        4,
        || {
            let patch = contact("email", &format!("\"{}\"", "x".repeat(FIFTY_MB)));
            let error = outcome(patch.as_bytes()).unwrap_err();
            assert_eq!(error.violations().len(), 1);
            assert_eq!(error.violations()[0].kind(), LimitExceeded);
            patch.len()
        },
    );
}

#[test]
fn a_fifty_megabyte_array_is_rejected_with_a_bounded_report() {
    isolated(
        "a_fifty_megabyte_array_is_rejected_with_a_bounded_report",
        12,
        || {
            let mut items = String::with_capacity(FIFTY_MB + 64);
            items.push('[');
            while items.len() < FIFTY_MB {
                items.push_str("1234567,");
            }
            items.push_str("true]");
            let patch = contact("tags", &items);
            let error = outcome(patch.as_bytes()).unwrap_err();
            assert_eq!(error.violations().len(), 1);
            assert_eq!(error.violations()[0].kind(), LimitExceeded);
            patch.len()
        },
    );
}

// ---------------------------------------------------------------------------------------
// Damaged bytes
// ---------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config("proptest-regressions/hostile.txt"))]

    /// Every truncation of a valid patch, and valid patches with flipped, inserted and
    /// deleted bytes and swapped quotes and brackets, give a typed error that leaves the
    /// profile unchanged, or a correct merge (laws 1 to 4); never a panic.
    #[test]
    fn damaged_patches_give_a_typed_error_or_a_correct_merge(
        (schema, profile, doc, damage) in schema().prop_flat_map(|s| {
            (Just(s.clone()), profile(&s), valid_patch_doc(&s), mutations())
        })
    ) {
        let bytes = doc.to_json().into_bytes();
        check::check_patch_bytes(&schema, &profile, &bytes).expect("the undamaged patch is valid");
        for end in 0..bytes.len() {
            let _ = check::check_patch_bytes(&schema, &profile, &bytes[..end]);
        }
        let damaged = mutate(bytes, &damage);
        let _ = check::check_patch_bytes(&schema, &profile, &damaged);
    }

    /// The same damage against the fuzz target's fixed schema and profile.
    #[test]
    fn damaged_fixture_patches_give_a_typed_error_or_a_correct_merge(
        (doc, damage) in valid_patch_doc(&check::schema()).prop_flat_map(|d| (Just(d), mutations()))
    ) {
        let (schema, profile) = (check::schema(), check::profile());
        let damaged = mutate(doc.to_json().into_bytes(), &damage);
        let _ = check::check_patch_bytes(&schema, &profile, &damaged);
    }
}

#[test]
fn a_merged_value_is_the_patch_value() {
    let merged = accepted(contact("tags", r#"["a", 1, 1.5, true]"#));
    let expected = TraitValue::try_from(json!(["a", 1, 1.5, true])).unwrap();
    assert_eq!(merged["tags"], Value::from(expected));
    let schema = store();
    assert!(merge(&stored(), &Patch::new(), &schema).is_ok());
}
