//! The stamped merge of SEMANTICS.md §6, case by case: the tie rule, every row of the apply
//! table, purge and horizon, rejection, and the stored form (exact JSON, refusals, order,
//! `from_profile`, the join's choice of id and creation time).
//!
//! Every assertion compares whole values: the full change list (as JSON, see
//! `common::helpers::change_json`) and the full serialized stored profile.

mod common;

use common::helpers::{changes_json, json_text, patch, profile, schema};
use profile_traits::{
    ChangeKind, ProfileId, Stamp, StoreSchema, StoredProfile, TraitValue, ViolationKind,
};
use serde_json::{Value, json};

const SCHEMA: &str = r#"[
    {"displayName": "Contact", "traits": {
        "email": {"dataType": "STRING"},
        "phone": {"dataType": "STRING"},
        "age": {"dataType": "NUMBER", "validationRule": {"ruleType": "NUMBER", "min": -10, "max": 150}},
        "tags": {"dataType": "ARRAY"}}},
    {"displayName": "Prefs", "traits": {"vip": {"dataType": "BOOLEAN"}}}
]"#;

fn fixture() -> StoreSchema {
    schema(SCHEMA)
}

/// The stamp `sec` seconds after the epoch, tiebreaker 0.
fn at(sec: i64) -> Stamp {
    Stamp::new(sec * 1_000_000, 0).expect("in range")
}

/// The serialized form of the stamp `at(sec)`.
fn stamp_json(sec: i64) -> Value {
    json!({"time": format!("1970-01-01T00:00:{sec:02}Z"), "tiebreak": 0})
}

/// The text of one entry: `value` (JSON text, `null` for a tombstone) at `at(sec)`.
fn entry(value: &str, sec: i64) -> String {
    format!(r#"{{"value":{value},"time":"1970-01-01T00:00:{sec:02}Z","tiebreak":0}}"#)
}

/// The full text of a stored profile without id: horizon `at(horizon)` (`None`: the
/// smallest stamp) and `groups` in the order given.
fn stored(horizon: Option<i64>, groups: &[(&str, &[(&str, String)])]) -> String {
    let horizon = match horizon {
        None => r#"{"time":"0000-01-01T00:00:00Z","tiebreak":0}"#.to_owned(),
        Some(sec) => format!(r#"{{"time":"1970-01-01T00:00:{sec:02}Z","tiebreak":0}}"#),
    };
    let groups: Vec<String> = groups
        .iter()
        .map(|(group, traits)| {
            let traits: Vec<String> = traits
                .iter()
                .map(|(name, entry)| format!("{}:{entry}", json!(name)))
                .collect();
            format!("{}:{{{}}}", json!(group), traits.join(","))
        })
        .collect();
    format!(
        r#"{{"horizon":{horizon},"traits":{{{}}}}}"#,
        groups.join(",")
    )
}

fn added(group: &str, name: &str, value: Value) -> Value {
    json!({"group": group, "trait": name, "added": value})
}

fn updated(group: &str, name: &str, old: Value, new: Value) -> Value {
    json!({"group": group, "trait": name, "updated": {"old": old, "new": new}})
}

fn removed(group: &str, name: &str, old: Value) -> Value {
    json!({"group": group, "trait": name, "removed": old})
}

fn touched(group: &str, name: &str) -> Value {
    json!({"group": group, "trait": name, "touched": true})
}

fn stale(group: &str, name: &str, by: Value) -> Value {
    json!({"group": group, "trait": name, "stale": by})
}

/// Applies `patch_text` at `stamp`, which must be accepted; returns the change list as JSON,
/// after checking that `apply_owned` makes the same profile and counts the non-stale
/// changes.
#[track_caller]
fn apply(profile: &mut StoredProfile, patch_text: &str, stamp: Stamp) -> Vec<Value> {
    let schema = fixture();
    let p = patch(patch_text);
    let mut owned = profile.clone();
    let changes = profile
        .apply(&p, &schema, stamp)
        .unwrap_or_else(|e| panic!("apply rejected {patch_text}: {e}"));
    let count = owned
        .apply_owned(p, &schema, stamp)
        .unwrap_or_else(|e| panic!("apply_owned rejected {patch_text}: {e}"));
    assert_eq!(
        json_text(&owned),
        json_text(profile),
        "apply_owned == apply"
    );
    let visible_or_touched = changes
        .iter()
        .filter(|c| !matches!(c.kind(), ChangeKind::Stale { .. }))
        .count();
    assert_eq!(count, visible_or_touched, "apply_owned counts the changes");
    changes_json(&changes)
}

/// A stored profile built by applying `writes` in order.
#[track_caller]
fn built(writes: &[(&str, Stamp)]) -> StoredProfile {
    let mut profile = StoredProfile::new();
    for (text, stamp) in writes {
        apply(&mut profile, text, *stamp);
    }
    profile
}

const SET_A: &str = r#"{"traits": {"Contact": {"email": "a@x"}}}"#;
const SET_B: &str = r#"{"traits": {"Contact": {"email": "b@x"}}}"#;
const REMOVE: &str = r#"{"traits": {"Contact": {"email": null}}}"#;

// ---------------------------------------------------------------------------------------
// The apply table: a write newer than the entry
// ---------------------------------------------------------------------------------------

#[test]
fn set_of_a_trait_with_no_entry_is_added() {
    let mut p = StoredProfile::new();
    assert_eq!(
        apply(&mut p, SET_A, at(1)),
        [added("Contact", "email", json!("a@x"))]
    );
    assert_eq!(
        json_text(&p),
        stored(None, &[("Contact", &[("email", entry(r#""a@x""#, 1))])])
    );
}

#[test]
fn newer_set_of_another_value_is_updated() {
    let mut p = built(&[(SET_A, at(1))]);
    assert_eq!(
        apply(&mut p, SET_B, at(2)),
        [updated("Contact", "email", json!("a@x"), json!("b@x"))]
    );
    assert_eq!(
        json_text(&p),
        stored(None, &[("Contact", &[("email", entry(r#""b@x""#, 2))])])
    );
}

#[test]
fn newer_set_of_the_same_value_is_touched_and_moves_only_the_stamp() {
    let mut p = built(&[(SET_A, at(1))]);
    assert_eq!(apply(&mut p, SET_A, at(2)), [touched("Contact", "email")]);
    assert_eq!(
        json_text(&p),
        stored(None, &[("Contact", &[("email", entry(r#""a@x""#, 2))])])
    );
}

#[test]
fn newer_removal_of_a_live_trait_is_removed_and_leaves_a_tombstone() {
    let mut p = built(&[(SET_A, at(1))]);
    assert_eq!(
        apply(&mut p, REMOVE, at(2)),
        [removed("Contact", "email", json!("a@x"))]
    );
    assert_eq!(
        json_text(&p),
        stored(None, &[("Contact", &[("email", entry("null", 2))])])
    );
    assert_eq!(json_text(&p.view()), r#"{"traits":{}}"#);
}

#[test]
fn removal_of_a_trait_with_no_entry_is_touched_and_records_a_tombstone() {
    let mut p = StoredProfile::new();
    assert_eq!(apply(&mut p, REMOVE, at(3)), [touched("Contact", "email")]);
    assert_eq!(
        json_text(&p),
        stored(None, &[("Contact", &[("email", entry("null", 3))])])
    );
    assert_eq!(json_text(&p.view()), r#"{"traits":{}}"#);
}

#[test]
fn newer_removal_of_a_tombstone_is_touched_and_moves_the_tombstone() {
    let mut p = built(&[(SET_A, at(1)), (REMOVE, at(2))]);
    assert_eq!(apply(&mut p, REMOVE, at(4)), [touched("Contact", "email")]);
    assert_eq!(
        json_text(&p),
        stored(None, &[("Contact", &[("email", entry("null", 4))])])
    );
}

#[test]
fn newer_set_over_a_tombstone_is_added() {
    let mut p = built(&[(REMOVE, at(2))]);
    assert_eq!(
        apply(&mut p, SET_B, at(3)),
        [added("Contact", "email", json!("b@x"))]
    );
    assert_eq!(
        json_text(&p),
        stored(None, &[("Contact", &[("email", entry(r#""b@x""#, 3))])])
    );
}

// ---------------------------------------------------------------------------------------
// Stale writes
// ---------------------------------------------------------------------------------------

#[test]
fn older_write_is_stale_by_the_entry_stamp_and_changes_nothing() {
    for late in [SET_A, SET_B, REMOVE] {
        let mut p = built(&[(SET_B, at(5))]);
        let before = json_text(&p);
        assert_eq!(
            apply(&mut p, late, at(4)),
            [stale("Contact", "email", stamp_json(5))],
            "{late}"
        );
        assert_eq!(json_text(&p), before, "{late}");
    }
}

#[test]
fn smaller_tiebreaker_at_the_same_instant_is_stale() {
    let newer = Stamp::new(1_000_000, 7).unwrap();
    let older = Stamp::new(1_000_000, 6).unwrap();
    let mut p = built(&[(SET_A, newer)]);
    let before = json_text(&p);
    assert_eq!(
        apply(&mut p, REMOVE, older),
        [stale(
            "Contact",
            "email",
            json!({"time": "1970-01-01T00:00:01Z", "tiebreak": 7})
        )]
    );
    assert_eq!(json_text(&p), before);
    assert_eq!(
        apply(&mut p, REMOVE, Stamp::new(1_000_000, 8).unwrap()),
        [removed("Contact", "email", json!("a@x"))]
    );
}

#[test]
fn tombstone_stops_a_late_older_set() {
    // The removal happened last but arrives first, on a trait that has no entry.
    let mut p = StoredProfile::new();
    assert_eq!(apply(&mut p, REMOVE, at(5)), [touched("Contact", "email")]);
    assert_eq!(
        apply(&mut p, SET_A, at(4)),
        [stale("Contact", "email", stamp_json(5))]
    );
    assert_eq!(
        json_text(&p),
        stored(None, &[("Contact", &[("email", entry("null", 5))])])
    );
    assert_eq!(p.get("Contact", "email"), None);
}

#[test]
fn write_with_no_entry_at_or_below_the_horizon_is_stale_by_the_horizon() {
    let mut p = StoredProfile::new();
    p.purge(at(5));
    for (text, stamp) in [(SET_A, at(5)), (REMOVE, at(5)), (SET_A, at(4))] {
        assert_eq!(
            apply(&mut p, text, stamp),
            [stale("Contact", "email", stamp_json(5))],
            "{text} at {stamp}"
        );
        assert_eq!(json_text(&p), stored(Some(5), &[]), "{text} at {stamp}");
    }
    assert_eq!(
        apply(&mut p, SET_A, Stamp::new(5_000_000, 1).unwrap()),
        [added("Contact", "email", json!("a@x"))]
    );
}

#[test]
fn horizon_after_purge_makes_old_writes_to_missing_traits_stale() {
    let mut p = built(&[
        (r#"{"traits": {"Contact": {"email": "a@x"}}}"#, at(2)),
        (r#"{"traits": {"Contact": {"phone": null}}}"#, at(3)),
        (r#"{"traits": {"Prefs": {"vip": null}}}"#, at(7)),
    ]);
    assert_eq!(
        json_text(&p),
        stored(
            None,
            &[
                (
                    "Contact",
                    &[("email", entry(r#""a@x""#, 2)), ("phone", entry("null", 3))]
                ),
                ("Prefs", &[("vip", entry("null", 7))]),
            ]
        )
    );
    p.purge(at(3));
    // The tombstone at the horizon goes, the live trait below it and the newer tombstone stay.
    assert_eq!(
        json_text(&p),
        stored(
            Some(3),
            &[
                ("Contact", &[("email", entry(r#""a@x""#, 2))]),
                ("Prefs", &[("vip", entry("null", 7))]),
            ]
        )
    );
    let before = json_text(&p);
    assert_eq!(
        apply(
            &mut p,
            r#"{"traits": {"Contact": {"phone": "+1", "email": "old@x"}, "Prefs": {"vip": true}}}"#,
            at(1)
        ),
        [
            stale("Contact", "phone", stamp_json(3)),
            stale("Contact", "email", stamp_json(2)),
            stale("Prefs", "vip", stamp_json(7)),
        ]
    );
    assert_eq!(json_text(&p), before);
    // Above the horizon, a trait with no entry takes writes again.
    assert_eq!(
        apply(&mut p, r#"{"traits": {"Contact": {"phone": "+1"}}}"#, at(4)),
        [added("Contact", "phone", json!("+1"))]
    );
    // Purging never lowers the horizon.
    p.purge(at(1));
    assert_eq!(p.horizon(), at(3));
}

// ---------------------------------------------------------------------------------------
// The tie rule
// ---------------------------------------------------------------------------------------

/// Applies `first` then `second` at the same stamp `at(3)`, and the other way round;
/// returns both change lists of the second write, after checking both orders end at the
/// same stored bytes, which are returned too.
fn tie(first: &str, second: &str) -> (Vec<Value>, Vec<Value>, String) {
    let mut one = built(&[(first, at(3))]);
    let one_changes = apply(&mut one, second, at(3));
    let mut other = built(&[(second, at(3))]);
    let other_changes = apply(&mut other, first, at(3));
    assert_eq!(json_text(&one), json_text(&other), "{first} / {second}");
    (one_changes, other_changes, json_text(&one))
}

#[test]
fn tie_removal_beats_set() {
    let (set_then_remove, remove_then_set, end) = tie(SET_A, REMOVE);
    assert_eq!(set_then_remove, [removed("Contact", "email", json!("a@x"))]);
    assert_eq!(remove_then_set, [stale("Contact", "email", stamp_json(3))]);
    assert_eq!(
        end,
        stored(None, &[("Contact", &[("email", entry("null", 3))])])
    );
}

#[test]
fn tie_greater_compact_json_wins() {
    let (a_then_b, b_then_a, end) = tie(SET_A, SET_B);
    assert_eq!(
        a_then_b,
        [updated("Contact", "email", json!("a@x"), json!("b@x"))]
    );
    assert_eq!(b_then_a, [stale("Contact", "email", stamp_json(3))]);
    assert_eq!(
        end,
        stored(None, &[("Contact", &[("email", entry(r#""b@x""#, 3))])])
    );
}

#[test]
fn tie_compares_json_bytes_not_numbers() {
    // "9" is greater than "10" byte by byte.
    let (_, _, end) = tie(
        r#"{"traits": {"Contact": {"age": 9}}}"#,
        r#"{"traits": {"Contact": {"age": 10}}}"#,
    );
    assert_eq!(end, stored(None, &[("Contact", &[("age", entry("9", 3))])]));
    // `[1]` > `"z"` > `true`? No: `t` (0x74) > `[` (0x5b) > `"` (0x22).
    let (_, _, end) = tie(
        r#"{"traits": {"Contact": {"tags": ["b"]}}}"#,
        r#"{"traits": {"Contact": {"tags": [true]}}}"#,
    );
    assert_eq!(
        end,
        stored(None, &[("Contact", &[("tags", entry("[true]", 3))])])
    );
}

/// `0.0` and `-0.0` are equal numbers (`==`) but different writes with different JSON
/// (`0.0` > `-0.0` byte by byte): at a tie, `0.0` wins in either order. The tie rule used
/// to take `==` values for the same write, so whichever arrived first stayed, breaking
/// law 10 (the stored bytes depended on the order of arrival).
#[test]
fn tie_between_zero_and_negative_zero_is_decided_by_json_bytes() {
    let zero = r#"{"traits": {"Contact": {"age": 0.0}}}"#;
    let negative_zero = r#"{"traits": {"Contact": {"age": -0.0}}}"#;
    let (_, _, end) = tie(zero, negative_zero);
    assert_eq!(
        end,
        stored(None, &[("Contact", &[("age", entry("0.0", 3))])])
    );
    let (_, _, end) = tie(
        r#"{"traits": {"Contact": {"tags": [-0.0, 1]}}}"#,
        r#"{"traits": {"Contact": {"tags": [0.0, 1]}}}"#,
    );
    assert_eq!(
        end,
        stored(None, &[("Contact", &[("tags", entry("[0.0,1]", 3))])])
    );
}

#[test]
fn tie_same_write_again_changes_nothing_and_reports_nothing() {
    for write in [SET_A, REMOVE] {
        let mut p = built(&[(write, at(3))]);
        let before = json_text(&p);
        assert_eq!(apply(&mut p, write, at(3)), Vec::<Value>::new(), "{write}");
        assert_eq!(json_text(&p), before, "{write}");
    }
}

#[test]
fn one_patch_reports_each_trait_in_patch_order() {
    let mut p = built(&[
        (
            r#"{"traits": {"Contact": {"email": "a@x", "age": 30, "tags": [1]}}}"#,
            at(2),
        ),
        (r#"{"traits": {"Prefs": {"vip": false}}}"#, at(9)),
    ]);
    let changes = apply(
        &mut p,
        r#"{"traits": {"Prefs": {"vip": true}, "Contact": {"tags": [1], "phone": null, "age": null, "email": "b@x"}}}"#,
        at(5),
    );
    assert_eq!(
        changes,
        [
            stale("Prefs", "vip", stamp_json(9)),
            touched("Contact", "tags"),
            touched("Contact", "phone"),
            removed("Contact", "age", json!(30)),
            updated("Contact", "email", json!("a@x"), json!("b@x")),
        ]
    );
    assert_eq!(
        json_text(&p),
        stored(
            None,
            &[
                (
                    "Contact",
                    &[
                        ("email", entry(r#""b@x""#, 5)),
                        ("phone", entry("null", 5)),
                        ("age", entry("null", 5)),
                        ("tags", entry("[1]", 5)),
                    ]
                ),
                ("Prefs", &[("vip", entry("false", 9))]),
            ]
        )
    );
}

// ---------------------------------------------------------------------------------------
// Rejection
// ---------------------------------------------------------------------------------------

#[test]
fn rejected_patch_changes_nothing_including_stamps() {
    let schema = fixture();
    let mut p = built(&[
        (SET_A, at(1)),
        (r#"{"traits": {"Contact": {"phone": null}}}"#, at(2)),
    ]);
    let before = json_text(&p);
    // A valid newer write to `email` and `phone` next to an out-of-range `age`.
    let bad = patch(r#"{"traits": {"Contact": {"email": "b@x", "phone": "+1", "age": 200}}}"#);
    let error = p.apply(&bad, &schema, at(9)).unwrap_err();
    assert_eq!(
        error
            .violations()
            .iter()
            .map(|v| (v.kind(), v.pointer()))
            .collect::<Vec<_>>(),
        [(ViolationKind::RuleBroken, "/traits/Contact/age")]
    );
    assert_eq!(json_text(&p), before);
    let owned_error = p.apply_owned(bad, &schema, at(9)).unwrap_err();
    assert_eq!(owned_error, error);
    assert_eq!(json_text(&p), before);
    // An undeclared group is refused as by the plain merge, whatever the stamps.
    let unknown = patch(r#"{"traits": {"Nope": {"x": 1}}}"#);
    let error = p.apply(&unknown, &schema, at(9)).unwrap_err();
    assert_eq!(error, schema.validate(&unknown).unwrap_err());
    assert_eq!(json_text(&p), before);
}

// ---------------------------------------------------------------------------------------
// Stored form
// ---------------------------------------------------------------------------------------

const SMALL: &str = concat!(
    r#"{"id":"mem_profile_00000000000000000000000007","createdAt":"2024-10-07T15:39:25Z","#,
    r#""horizon":{"time":"2024-10-07T15:00:00Z","tiebreak":3},"#,
    r#""traits":{"Contact":{"email":{"value":"a@b.c","time":"2024-10-07T15:39:25.123456Z","tiebreak":7},"#,
    r#""phone":{"value":null,"time":"2024-10-07T15:40:00Z","tiebreak":8}},"#,
    r#""Prefs":{"vip":{"value":true,"time":"2024-10-07T15:39:25.1Z","tiebreak":0}}}}"#
);

fn small() -> StoredProfile {
    let mut p = StoredProfile::new();
    p.set_id(Some(ProfileId::from_bits(7)));
    p.set_created_at(Some("2024-10-07T15:39:25Z".to_owned()));
    let stamp = |text: &str, tiebreak: u64| {
        let instant: Stamp = text.parse().unwrap();
        Stamp::new(instant.micros_since_epoch(), tiebreak).unwrap()
    };
    let schema = fixture();
    let mut write = |text: &str, at: Stamp| {
        p.apply(&patch(text), &schema, at).unwrap();
    };
    write(SET_A, stamp("2024-10-07T15:39:00Z", 1));
    write(
        r#"{"traits": {"Contact": {"email": "a@b.c"}}}"#,
        stamp("2024-10-07T15:39:25.123456Z", 7),
    );
    write(
        r#"{"traits": {"Prefs": {"vip": true}}}"#,
        stamp("2024-10-07T15:39:25.100Z", 0),
    );
    write(
        r#"{"traits": {"Contact": {"phone": null}}}"#,
        stamp("2024-10-07T15:40:00Z", 8),
    );
    p.purge(stamp("2024-10-07T15:00:00Z", 3));
    p
}

#[test]
fn stored_form_is_exact_and_round_trips() {
    let p = small();
    assert_eq!(json_text(&p), SMALL);
    let back: StoredProfile = serde_json::from_str(SMALL).unwrap();
    assert_eq!(back, p);
    assert_eq!(json_text(&back), SMALL);
    assert_eq!(
        json_text(&p.view()),
        r#"{"id":"mem_profile_00000000000000000000000007","createdAt":"2024-10-07T15:39:25Z","traits":{"Contact":{"email":"a@b.c"},"Prefs":{"vip":true}}}"#
    );
    let entries: Vec<(&str, &str, Option<&TraitValue>, String)> = p
        .traits()
        .map(|t| (t.group(), t.name(), t.value(), t.stamp().to_string()))
        .collect();
    let (email, vip) = (TraitValue::from("a@b.c"), TraitValue::from(true));
    assert_eq!(
        entries,
        [
            (
                "Contact",
                "email",
                Some(&email),
                "2024-10-07T15:39:25.123456Z".to_owned()
            ),
            ("Contact", "phone", None, "2024-10-07T15:40:00Z".to_owned()),
            (
                "Prefs",
                "vip",
                Some(&vip),
                "2024-10-07T15:39:25.1Z".to_owned()
            ),
        ]
    );
    assert_eq!(p.live_count(), 2);
    let phone = p.get_entry("Contact", "phone").unwrap();
    assert_eq!((phone.value(), phone.stamp().tiebreak()), (None, 8));
    assert_eq!(p.get("Contact", "phone"), None);
}

#[test]
fn stored_form_without_id_leaves_the_members_out() {
    let text = r#"{"horizon":{"time":"0000-01-01T00:00:00Z","tiebreak":0},"traits":{}}"#;
    assert_eq!(json_text(&StoredProfile::new()), text);
    let back: StoredProfile = serde_json::from_str(text).unwrap();
    assert_eq!(back, StoredProfile::new());
}

/// Every refusal of the stored form, with the start of its message.
#[test]
fn stored_form_refuses_unknown_members_repeated_keys_bad_stamps_and_empty_groups() {
    let horizon = r#""horizon":{"time":"0000-01-01T00:00:00Z","tiebreak":0}"#;
    let live = r#"{"value":1,"time":"2024-10-07T15:40:00Z","tiebreak":0}"#;
    let cases = [
        (
            format!(r#"{{{horizon},"traits":{{}},"extra":1}}"#),
            "unknown field `extra`",
        ),
        (
            format!(
                r#"{{{horizon},"traits":{{"A":{{"x":{{"value":1,"time":"2024-10-07T15:40:00Z","tiebreak":0,"stamp":2}}}}}}}}"#
            ),
            "unknown field `stamp`",
        ),
        (
            r#"{"horizon":{"time":"0000-01-01T00:00:00Z","tiebreak":0,"x":0},"traits":{}}"#
                .to_owned(),
            "unknown field `x`",
        ),
        (
            format!(r#"{{{horizon},"traits":{{"A":{{"x":{live}}},"A":{{"y":{live}}}}}}}"#),
            "",
        ),
        (
            format!(r#"{{{horizon},"traits":{{"A":{{"x":{live},"x":{live}}}}}}}"#),
            "",
        ),
        (
            format!(r#"{{{horizon},{horizon},"traits":{{}}}}"#),
            "duplicate field `horizon`",
        ),
        (
            format!(
                r#"{{{horizon},"traits":{{"A":{{"x":{{"value":1,"time":"2024-13-07T15:40:00Z","tiebreak":0}}}}}}}}"#
            ),
            "`2024-13-07T15:40:00Z` is not an RFC 3339 date-time",
        ),
        (
            r#"{"horizon":{"time":"yesterday","tiebreak":0},"traits":{}}"#.to_owned(),
            "`yesterday` is not an RFC 3339 date-time",
        ),
        (
            format!(
                r#"{{{horizon},"traits":{{"A":{{"x":{{"value":1,"time":"2024-10-07T15:40:00Z"}}}}}}}}"#
            ),
            "missing field `tiebreak`",
        ),
        (
            format!(
                r#"{{{horizon},"traits":{{"A":{{"x":{{"value":1,"time":"2024-10-07T15:40:00Z","tiebreak":-1}}}}}}}}"#
            ),
            "invalid value: integer `-1`",
        ),
        (
            format!(r#"{{{horizon},"traits":{{"A":{{}}}}}}"#),
            "trait group `A` holds no entry",
        ),
        (
            format!(
                r#"{{{horizon},"traits":{{"A":{{"x":{{"value":{{"o":1}},"time":"2024-10-07T15:40:00Z","tiebreak":0}}}}}}}}"#
            ),
            "",
        ),
        (r#"{"traits":{}}"#.to_owned(), "missing field `horizon`"),
    ];
    for (text, message) in cases {
        let error = serde_json::from_str::<StoredProfile>(&text)
            .map(|p| json_text(&p))
            .expect_err(&text);
        assert!(
            error.to_string().starts_with(message),
            "{text}\nrefused with: {error}"
        );
    }
}

#[test]
fn repeated_keys_are_refused_with_their_name() {
    let live = r#"{"value":1,"time":"2024-10-07T15:40:00Z","tiebreak":0}"#;
    let horizon = r#""horizon":{"time":"0000-01-01T00:00:00Z","tiebreak":0}"#;
    for (text, name) in [
        (
            format!(r#"{{{horizon},"traits":{{"A":{{"x":{live}}},"A":{{"y":{live}}}}}}}"#),
            "A",
        ),
        (
            format!(r#"{{{horizon},"traits":{{"A":{{"x":{live},"x":{live}}}}}}}"#),
            "x",
        ),
    ] {
        let error = serde_json::from_str::<StoredProfile>(&text).unwrap_err();
        assert!(
            error.to_string().contains(&format!("`{name}`")),
            "{text}\nrefused with: {error}"
        );
    }
}

#[test]
fn stored_order_is_schema_order_whatever_the_order_of_writes() {
    let mut p = StoredProfile::new();
    for (text, sec) in [
        (r#"{"traits": {"Prefs": {"vip": true}}}"#, 1),
        (r#"{"traits": {"Contact": {"tags": ["t"]}}}"#, 2),
        (r#"{"traits": {"Contact": {"email": "a@x"}}}"#, 3),
        (r#"{"traits": {"Contact": {"age": null}}}"#, 4),
        (r#"{"traits": {"Contact": {"phone": "+1"}}}"#, 5),
    ] {
        apply(&mut p, text, at(sec));
    }
    assert_eq!(
        json_text(&p.view()),
        r#"{"traits":{"Contact":{"email":"a@x","phone":"+1","tags":["t"]},"Prefs":{"vip":true}}}"#
    );
    assert_eq!(
        json_text(&p),
        stored(
            None,
            &[
                (
                    "Contact",
                    &[
                        ("email", entry(r#""a@x""#, 3)),
                        ("phone", entry(r#""+1""#, 5)),
                        ("age", entry("null", 4)),
                        ("tags", entry(r#"["t"]"#, 2)),
                    ]
                ),
                ("Prefs", &[("vip", entry("true", 1))]),
            ]
        )
    );
}

#[test]
fn traits_added_to_a_read_group_keep_schema_order_before_and_after_they_are_folded_in() {
    // A group read from the stored form has no spare room: traits a write adds to it are
    // kept in a part of their own until they are as many as the rest, then folded in. The
    // stored form, lookups and equality must not tell.
    let tags = ("tags", entry(r#"["t"]"#, 1));
    let mut p: StoredProfile =
        serde_json::from_str(&stored(None, &[("Contact", std::slice::from_ref(&tags))]))
            .expect("stored");
    let phone = ("phone", entry(r#""+1""#, 2));
    let email = ("email", entry(r#""a@x""#, 3));
    let age = ("age", entry("40", 4));
    let age_again = ("age", entry("41", 5));
    let steps = [
        // The read group is ranked and sorted whole by its first write.
        (
            r#"{"traits": {"Contact": {"phone": "+1"}}}"#,
            2,
            vec![&phone, &tags],
        ),
        // Added apart (1 against 2).
        (
            r#"{"traits": {"Contact": {"email": "a@x"}}}"#,
            3,
            vec![&email, &phone, &tags],
        ),
        // Folded in (2 against 2).
        (
            r#"{"traits": {"Contact": {"age": 40}}}"#,
            4,
            vec![&email, &phone, &age, &tags],
        ),
        (
            r#"{"traits": {"Contact": {"age": 41}}}"#,
            5,
            vec![&email, &phone, &age_again, &tags],
        ),
    ];
    for (text, sec, entries) in steps {
        apply(&mut p, text, at(sec));
        let entries: Vec<(&str, String)> = entries.iter().map(|(n, e)| (*n, e.clone())).collect();
        let expected = stored(None, &[("Contact", &entries)]);
        assert_eq!(json_text(&p), expected, "after {text}");
        let read: StoredProfile = serde_json::from_str(&expected).expect("stored form");
        assert_eq!(read, p, "after {text}");
        for (name, _) in &entries {
            assert!(
                p.get_entry("Contact", name).is_some(),
                "{name} after {text}"
            );
        }
    }
}

#[test]
fn from_profile_stamps_every_trait_and_keeps_the_profile_order_until_sorted() {
    let plain = profile(
        r#"{"id": "mem_profile_00000000000000000000000009", "createdAt": "2024-01-01T00:00:00Z",
            "traits": {"Legacy": {"z": 1, "a": 2}, "Prefs": {"vip": false},
                       "Contact": {"tags": [], "email": "a@x"}}}"#,
    );
    let mut p = StoredProfile::from_profile(plain.clone(), at(4));
    assert_eq!(p.view(), plain);
    assert_eq!(json_text(&p.view()), json_text(&plain));
    assert_eq!(p.horizon(), Stamp::MIN);
    let head = r#"{"id":"mem_profile_00000000000000000000000009","createdAt":"2024-01-01T00:00:00Z","horizon":{"time":"0000-01-01T00:00:00Z","tiebreak":0},"traits":"#;
    assert_eq!(
        json_text(&p),
        format!(
            r#"{head}{{"Legacy":{{"z":{},"a":{}}},"Prefs":{{"vip":{}}},"Contact":{{"tags":{},"email":{}}}}}}}"#,
            entry("1", 4),
            entry("2", 4),
            entry("false", 4),
            entry("[]", 4),
            entry(r#""a@x""#, 4)
        )
    );
    p.sort_by_schema(&fixture());
    // Declared groups and traits in schema order, then the undeclared ones by name.
    assert_eq!(
        json_text(&p),
        format!(
            r#"{head}{{"Contact":{{"email":{},"tags":{}}},"Prefs":{{"vip":{}}},"Legacy":{{"a":{},"z":{}}}}}}}"#,
            entry(r#""a@x""#, 4),
            entry("[]", 4),
            entry("false", 4),
            entry("2", 4),
            entry("1", 4)
        )
    );
    // Unsorted, a write that adds a trait sorts that trait's group (as documented: `apply`
    // places what it adds); the groups move only when a write adds a group.
    let mut q = StoredProfile::from_profile(plain, at(4));
    apply(&mut q, r#"{"traits": {"Contact": {"phone": "+1"}}}"#, at(5));
    let id = r#""id":"mem_profile_00000000000000000000000009","createdAt":"2024-01-01T00:00:00Z""#;
    assert_eq!(
        json_text(&q.view()),
        format!(
            r#"{{{id},"traits":{{"Legacy":{{"z":1,"a":2}},"Prefs":{{"vip":false}},"Contact":{{"email":"a@x","phone":"+1","tags":[]}}}}}}"#
        )
    );
    q.purge(at(4));
    apply(&mut q, r#"{"traits": {"Prefs": {"vip": null}}}"#, at(6));
    apply(&mut q, r#"{"traits": {"Prefs": {"vip": true}}}"#, at(5));
    q.purge(at(6));
    apply(&mut q, r#"{"traits": {"Prefs": {"vip": false}}}"#, at(7));
    assert_eq!(
        json_text(&q.view()),
        format!(
            r#"{{{id},"traits":{{"Contact":{{"email":"a@x","phone":"+1","tags":[]}},"Prefs":{{"vip":false}},"Legacy":{{"z":1,"a":2}}}}}}"#
        )
    );
}

// ---------------------------------------------------------------------------------------
// Join: id and creation time
// ---------------------------------------------------------------------------------------

fn with_identity(bits: u128, created_at: Option<&str>, writes: &[(&str, Stamp)]) -> StoredProfile {
    let mut p = built(writes);
    p.set_id(Some(ProfileId::from_bits(bits)));
    p.set_created_at(created_at.map(str::to_owned));
    p
}

fn identity(p: &StoredProfile) -> (Option<String>, Option<&str>) {
    (p.id().map(|id| id.as_str().to_owned()), p.created_at())
}

#[test]
fn join_takes_id_and_created_at_of_the_profile_created_first() {
    let early = with_identity(9, Some("2024-01-01T00:00:00Z"), &[(SET_A, at(1))]);
    let late = with_identity(1, Some("2024-06-01T00:00:00Z"), &[(SET_B, at(2))]);
    for joined in [early.join(&late), late.join(&early)] {
        assert_eq!(
            identity(&joined),
            (
                Some("mem_profile_00000000000000000000000009".to_owned()),
                Some("2024-01-01T00:00:00Z")
            )
        );
        assert_eq!(
            json_text(&joined.view()),
            r#"{"id":"mem_profile_00000000000000000000000009","createdAt":"2024-01-01T00:00:00Z","traits":{"Contact":{"email":"b@x"}}}"#
        );
    }
}

#[test]
fn join_compares_created_at_as_instants_then_takes_the_smaller_id() {
    // The same instant in two offsets: a tie, so the smaller id wins.
    let a = with_identity(5, Some("2024-01-01T02:00:00+02:00"), &[]);
    let b = with_identity(3, Some("2024-01-01T00:00:00Z"), &[]);
    for joined in [a.join(&b), b.join(&a)] {
        assert_eq!(
            identity(&joined),
            (
                Some("mem_profile_00000000000000000000000003".to_owned()),
                Some("2024-01-01T00:00:00Z")
            )
        );
    }
    // An earlier instant wins even when its text sorts later.
    let c = with_identity(8, Some("2024-01-01T01:00:00+05:00"), &[]);
    for joined in [b.join(&c), c.join(&b)] {
        assert_eq!(
            identity(&joined),
            (
                Some("mem_profile_00000000000000000000000008".to_owned()),
                Some("2024-01-01T01:00:00+05:00")
            )
        );
    }
    // An unknown creation time counts as latest.
    let unknown = with_identity(1, None, &[]);
    for joined in [b.join(&unknown), unknown.join(&b)] {
        assert_eq!(
            identity(&joined).0.as_deref(),
            Some("mem_profile_00000000000000000000000003")
        );
    }
}

#[test]
fn join_keeps_the_greater_horizon_and_drops_one_sided_entries_at_or_below_the_other() {
    let mut a = built(&[
        (SET_A, at(2)),
        (r#"{"traits": {"Prefs": {"vip": true}}}"#, at(6)),
    ]);
    let mut b = built(&[(r#"{"traits": {"Contact": {"phone": "+1"}}}"#, at(4))]);
    b.purge(at(2));
    a.purge(at(4));
    let joined = a.join(&b);
    assert_eq!(joined, b.join(&a));
    // `phone` at 4 is at a's horizon, the joined one: dropped. `email` at 2 is at b's
    // horizon: it gives way to a tombstone there (b refuses email writes up to 2), kept
    // since it lies below the joined horizon: both sides take a write to `email` at 3.
    // `vip` at 6 is above both.
    assert_eq!(
        json_text(&joined),
        stored(
            Some(4),
            &[
                ("Contact", &[("email", entry("null", 2))]),
                ("Prefs", &[("vip", entry("true", 6))])
            ]
        )
    );
    // Each side takes a write to `email` at 3, and so does the join.
    let late = r#"{"traits": {"Contact": {"email": "late@x"}}}"#;
    let (mut a, mut b, mut joined) = (a, b, joined);
    assert_eq!(
        apply(&mut a, late, at(3)),
        [updated("Contact", "email", json!("a@x"), json!("late@x"))]
    );
    assert_eq!(
        apply(&mut b, late, at(3)),
        [added("Contact", "email", json!("late@x"))]
    );
    assert_eq!(
        apply(&mut joined, late, at(3)),
        [added("Contact", "email", json!("late@x"))]
    );
}

/// Seed `620fe98d` (law 13): `a` holds `email` live at 1 below its horizon 4, `b` has no
/// entry and horizon 2, `c` holds `email` at 3. `(a ⊔ b) ⊔ c` used to drop a's entry (at
/// or below b's horizon), then c's (at or below the joined horizon 4), while
/// `a ⊔ (b ⊔ c)` kept c's: join was not associative, and the first refused a write at 3
/// that each of a, b and c takes.
#[test]
fn join_is_associative_when_an_entry_lies_below_its_own_horizon() {
    let mut a = built(&[(SET_A, at(1))]);
    a.purge(at(4));
    let mut b = built(&[(r#"{"traits": {"Prefs": {"vip": true}}}"#, at(5))]);
    b.purge(at(2));
    let c = built(&[(SET_B, at(3))]);
    let left = a.join(&b).join(&c);
    let right = a.join(&b.join(&c));
    assert_eq!(json_text(&left), json_text(&right));
    assert_eq!(
        json_text(&left),
        stored(
            Some(4),
            &[
                ("Contact", &[("email", entry(r#""b@x""#, 3))]),
                ("Prefs", &[("vip", entry("true", 5))])
            ]
        )
    );
}

/// Law 14 holds byte for byte for profiles in schema order. A profile made by
/// `from_profile` keeps the plain profile's order until a write adds a trait to a group,
/// which sorts that group; purging a tombstone first turns the next write to it from an
/// update into an addition, so the order shows whether the purge came first (values and
/// stamps do not). `sort_by_schema` makes both the same.
#[test]
fn an_unsorted_profile_shows_whether_a_purge_came_first() {
    let plain = profile(r#"{"traits": {"Contact": {"tags": [1], "phone": "+1"}}}"#);
    let mut base = StoredProfile::from_profile(plain, at(1));
    apply(
        &mut base,
        r#"{"traits": {"Contact": {"phone": null}}}"#,
        at(2),
    );
    let write = r#"{"traits": {"Contact": {"phone": "+2"}}}"#;
    let mut purged_first = base.clone();
    purged_first.purge(at(3));
    apply(&mut purged_first, write, at(4));
    let mut purged_last = base.clone();
    apply(&mut purged_last, write, at(4));
    purged_last.purge(at(3));
    assert_eq!(
        json_text(&purged_first),
        stored(
            Some(3),
            &[(
                "Contact",
                &[("phone", entry(r#""+2""#, 4)), ("tags", entry("[1]", 1))]
            )]
        )
    );
    assert_eq!(
        json_text(&purged_last),
        stored(
            Some(3),
            &[(
                "Contact",
                &[("tags", entry("[1]", 1)), ("phone", entry(r#""+2""#, 4))]
            )]
        )
    );
    assert_eq!(purged_first.view(), purged_last.view());
    purged_last.sort_by_schema(&fixture());
    assert_eq!(json_text(&purged_last), json_text(&purged_first));
}

/// Seed `048c52bc` (law 14 as first written, with writes only above the purge stamp): law
/// 14 is about writes above the horizon the purge leaves, which is never below the
/// profile's own. Purging at 3 a profile whose horizon is 4 removes a tombstone at 2; a set
/// at 3 is then stale (no entry, at or below the horizon), while applied before the purge it
/// beats the tombstone.
#[test]
fn purge_below_the_horizon_makes_writes_up_to_the_horizon_stale() {
    let mut base = built(&[(SET_A, at(1))]);
    base.purge(at(4));
    apply(&mut base, REMOVE, at(2));
    assert_eq!(
        json_text(&base),
        stored(Some(4), &[("Contact", &[("email", entry("null", 2))])])
    );
    let mut purged_first = base.clone();
    purged_first.purge(at(3));
    assert_eq!(
        apply(&mut purged_first, SET_B, at(3)),
        [stale("Contact", "email", stamp_json(4))]
    );
    assert_eq!(json_text(&purged_first), stored(Some(4), &[]));
    let mut purged_last = base;
    assert_eq!(
        apply(&mut purged_last, SET_B, at(3)),
        [added("Contact", "email", json!("b@x"))]
    );
    purged_last.purge(at(3));
    assert_eq!(
        json_text(&purged_last),
        stored(Some(4), &[("Contact", &[("email", entry(r#""b@x""#, 3))])])
    );
}
