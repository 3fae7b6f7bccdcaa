//! Assertion and fixture helpers shared by the integration tests.
//!
//! Every assertion compares whole values: the whole profile as its serialized JSON text (so
//! that positions count, which `Profile` equality does not compare), the whole change list,
//! the whole list of violations as `(kind, pointer, message)`.

use profile_traits::{
    Change, ChangeKind, PatchError, Profile, StoreSchema, Violation, ViolationKind, merge,
    merge_in_place, merge_in_place_owned,
};
use profile_traits::{Patch, TraitValue};
use serde::Serialize;

/// A violation as a comparable tuple: kind, pointer, message.
pub type Found = (ViolationKind, String, String);

/// A schema from its API JSON text (a list of groups or `{"traitGroups": [...]}`).
#[track_caller]
pub fn schema(text: &str) -> StoreSchema {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("test schema is invalid: {e}\n{text}"))
}

/// A profile from its JSON text; the text keeps the order of groups and traits.
#[track_caller]
pub fn profile(text: &str) -> Profile {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("test profile is invalid: {e}\n{text}"))
}

/// A patch from its JSON text, which must parse.
#[track_caller]
pub fn patch(text: &str) -> Patch {
    text.parse()
        .unwrap_or_else(|e| panic!("test patch does not parse: {e}\n{text}"))
}

/// Compact JSON text of anything serializable, keeping the order of maps.
#[track_caller]
pub fn json_text<T: Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).expect("test values serialize")
}

/// Every violation of `error` as `(kind, pointer, message)`, in report order.
pub fn found(error: &PatchError) -> Vec<Found> {
    error.violations().iter().map(found_one).collect()
}

fn found_one(violation: &Violation) -> Found {
    (
        violation.kind(),
        violation.pointer().to_owned(),
        violation.message().to_owned(),
    )
}

/// The expected violations, as owned tuples comparable with [`found`].
pub fn expected(list: &[(ViolationKind, &str, &str)]) -> Vec<Found> {
    list.iter()
        .map(|(kind, pointer, message)| (*kind, (*pointer).to_owned(), (*message).to_owned()))
        .collect()
}

/// A change as comparable JSON: `{"group", "trait", "added"|"updated"|"removed"|"touched"|"stale": ...}`.
pub fn change_json(change: &Change) -> serde_json::Value {
    let value = |v: &TraitValue| serde_json::Value::from(v.clone());
    let kind = match change.kind() {
        ChangeKind::Added { value: new } => serde_json::json!({"added": value(new)}),
        ChangeKind::Updated { old, new } => {
            serde_json::json!({"updated": {"old": value(old), "new": value(new)}})
        }
        ChangeKind::Removed { old } => serde_json::json!({"removed": value(old)}),
        ChangeKind::Touched => serde_json::json!({"touched": true}),
        ChangeKind::Stale { by } => serde_json::json!({"stale": by}),
    };
    let mut object = serde_json::json!({"group": change.group(), "trait": change.trait_name()});
    object
        .as_object_mut()
        .expect("built as an object")
        .extend(kind.as_object().expect("built as an object").clone());
    object
}

/// All changes as comparable JSON, in order.
pub fn changes_json(changes: &[Change]) -> Vec<serde_json::Value> {
    changes.iter().map(change_json).collect()
}

/// Asserts that `patch` is valid under `schema` and that each merge form turns `before` into
/// the profile whose compact JSON text is `expected`; returns the change list of
/// `merge_in_place`.
#[track_caller]
pub fn assert_merges(
    schema: &StoreSchema,
    before: &Profile,
    patch: &Patch,
    expected: &str,
) -> Vec<Change> {
    assert_merges_named("", schema, before, patch, expected)
}

/// [`assert_merges`] with a case name in every failure message.
#[track_caller]
pub fn assert_merges_named(
    name: &str,
    schema: &StoreSchema,
    before: &Profile,
    patch: &Patch,
    expected: &str,
) -> Vec<Change> {
    if let Err(error) = schema.validate(patch) {
        panic!("[{name}] validate rejected a patch expected to merge: {error}");
    }
    let original = json_text(before);
    let merged = merge(before, patch, schema)
        .unwrap_or_else(|e| panic!("[{name}] merge rejected a patch expected to merge: {e}"));
    assert_eq!(json_text(&merged), expected, "[{name}] merge result");
    assert_eq!(
        json_text(before),
        original,
        "[{name}] merge changed its input"
    );

    let mut in_place = before.clone();
    let changes = merge_in_place(&mut in_place, patch, schema)
        .unwrap_or_else(|e| panic!("[{name}] merge_in_place rejected: {e}"));
    assert_eq!(
        json_text(&in_place),
        expected,
        "[{name}] merge_in_place result"
    );
    assert_eq!(in_place, merged, "[{name}] merge_in_place == merge");

    let mut owned = before.clone();
    let count = merge_in_place_owned(&mut owned, patch.clone(), schema)
        .unwrap_or_else(|e| panic!("[{name}] merge_in_place_owned rejected: {e}"));
    assert_eq!(
        json_text(&owned),
        expected,
        "[{name}] merge_in_place_owned result"
    );
    assert_eq!(
        count,
        changes.len(),
        "[{name}] owned count == change list length"
    );
    changes
}

/// Asserts that every check refuses `patch` with exactly `expected` violations, and that
/// neither in-place form changes the profile; returns the error.
#[track_caller]
pub fn assert_rejected(
    schema: &StoreSchema,
    before: &Profile,
    patch: &Patch,
    expected: &[Found],
) -> PatchError {
    assert_rejected_named("", schema, before, patch, expected)
}

/// [`assert_rejected`] with a case name in every failure message.
#[track_caller]
pub fn assert_rejected_named(
    name: &str,
    schema: &StoreSchema,
    before: &Profile,
    patch: &Patch,
    expected: &[Found],
) -> PatchError {
    let original = json_text(before);
    let error = match merge(before, patch, schema) {
        Ok(merged) => panic!(
            "[{name}] merge accepted a patch expected to be rejected: {}",
            json_text(&merged)
        ),
        Err(error) => error,
    };
    assert_eq!(found(&error), expected, "[{name}] violations of merge");
    assert_eq!(
        schema.validate(patch).as_ref().err(),
        Some(&error),
        "[{name}] validate agrees with merge"
    );

    let mut in_place = before.clone();
    let in_place_error = merge_in_place(&mut in_place, patch, schema).err();
    assert_eq!(
        in_place_error.as_ref(),
        Some(&error),
        "[{name}] merge_in_place error"
    );
    assert_unchanged(name, before, &original, &in_place, "merge_in_place");

    let mut owned = before.clone();
    let owned_error = merge_in_place_owned(&mut owned, patch.clone(), schema).err();
    assert_eq!(
        owned_error.as_ref(),
        Some(&error),
        "[{name}] merge_in_place_owned error"
    );
    assert_unchanged(name, before, &original, &owned, "merge_in_place_owned");
    error
}

#[track_caller]
fn assert_unchanged(name: &str, before: &Profile, original: &str, after: &Profile, form: &str) {
    assert_eq!(
        after, before,
        "[{name}] {form} changed a profile on rejection"
    );
    assert_eq!(
        json_text(after),
        original,
        "[{name}] {form} changed the order of a profile on rejection"
    );
}

/// Asserts that parsing `text` as a patch fails with exactly `expected` violations, the same
/// from `&str` and from bytes; returns the error.
#[track_caller]
pub fn assert_parse_rejected(text: &str, expected: &[Found]) -> PatchError {
    let error = match text.parse::<Patch>() {
        Ok(patch) => panic!("patch parsed, expected a rejection: {}", json_text(&patch)),
        Err(error) => error,
    };
    assert_eq!(found(&error), expected, "violations of {text}");
    assert_eq!(
        Patch::from_slice(text.as_bytes()).err().as_ref(),
        Some(&error),
        "from_slice agrees with from_str for {text}"
    );
    error
}
