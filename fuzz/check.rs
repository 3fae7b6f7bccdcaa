//! The checks run on every fuzz input, shared by the fuzz target (`fuzz_targets/patch.rs`),
//! the corpus replay (`tests/fuzz_corpus.rs`) and the byte-mutation property test
//! (`tests/hostile.rs`).
//!
//! Arbitrary bytes are fed as a patch against a fixed schema and profile. Never a panic;
//! a rejected patch leaves the profile unchanged and names places in the patch; an
//! accepted one sets what it sets, removes what it removes, leaves the rest alone and is
//! idempotent.

#![allow(dead_code, unreachable_pub)]

use profile_traits::{
    MAX_VIOLATIONS, Patch, PatchError, Profile, StoreSchema, TraitChange, ViolationKind, merge,
    merge_in_place,
};
use serde_json::Value;

/// The fixed schema: every data type, every kind of rule, a trait name with `/` and `~`.
pub const SCHEMA: &str = r#"{"traitGroups": [
    {"displayName": "Contact", "traits": {
        "email": {"dataType": "STRING", "validationRule": {"ruleType": "STRING", "pattern": "@", "maxLength": 254}},
        "name": {"dataType": "STRING", "validationRule": {"ruleType": "STRING", "minLength": 1, "maxLength": 64}},
        "age": {"dataType": "NUMBER", "validationRule": {"ruleType": "NUMBER", "min": 0, "max": 150}},
        "vip": {"dataType": "BOOLEAN", "validationRule": {"ruleType": "BOOLEAN"}},
        "tags": {"dataType": "ARRAY", "validationRule": {"ruleType": "ARRAY", "maxItems": 10}}
    }},
    {"displayName": "Activity", "traits": {
        "lastVisited": {"dataType": "STRING"},
        "visits": {"dataType": "NUMBER"},
        "a/b~c": {"dataType": "STRING"},
        "é🎉": {"dataType": "ARRAY"}
    }},
    {"displayName": "x", "traits": {"y": {"dataType": "BOOLEAN"}}}
]}"#;

/// The fixed profile, with an id, a creation time and a group the schema does not declare.
pub const PROFILE: &str = r#"{
    "id": "mem_profile_01h8z6v3m4k5j6h7g8f9d0s1a2",
    "createdAt": "2024-10-07T15:39:25Z",
    "traits": {
        "Contact": {"email": "a@b.c", "age": 30, "tags": ["x", 1, true]},
        "Legacy": {"old": "kept"},
        "Activity": {"visits": 3, "a/b~c": "s"}
    }
}"#;

/// The fixed schema, parsed.
pub fn schema() -> StoreSchema {
    serde_json::from_str(SCHEMA).expect("the fixed schema is valid")
}

/// The fixed profile, parsed.
pub fn profile() -> Profile {
    serde_json::from_str(PROFILE).expect("the fixed profile is valid")
}

fn text(profile: &Profile) -> String {
    serde_json::to_string(profile).expect("a profile serializes")
}

/// Checks one input; panics when a law fails. Returns the merged profile, or the error.
pub fn check_patch_bytes(
    schema: &StoreSchema,
    profile: &Profile,
    bytes: &[u8],
) -> Result<Profile, PatchError> {
    let as_json: Option<Value> = serde_json::from_slice(bytes).ok();
    let patch = match Patch::from_slice(bytes) {
        Ok(patch) => patch,
        Err(error) => {
            check_error(&error, as_json.as_ref());
            return Err(error);
        }
    };
    let mut target = profile.clone();
    let changes = match merge_in_place(&mut target, &patch, schema) {
        Ok(changes) => changes,
        Err(error) => {
            assert_eq!(
                text(&target),
                text(profile),
                "a rejected patch changed the profile"
            );
            assert_eq!(schema.validate(&patch), Err(error.clone()));
            assert_eq!(merge(profile, &patch, schema), Err(error.clone()));
            check_error(&error, as_json.as_ref());
            return Err(error);
        }
    };
    assert_eq!(schema.validate(&patch), Ok(()));
    // Laws 2 and 3.
    for (g, t, change) in patch.iter() {
        match change {
            TraitChange::Set(value) => assert_eq!(target.get(g, t), Some(value)),
            TraitChange::Remove => assert_eq!(target.get(g, t), None),
        }
    }
    // Law 1, values: what the patch does not name is untouched.
    for (g, group) in profile.groups() {
        for (t, value) in group.iter() {
            if patch.get(g, t).is_none() {
                assert_eq!(target.get(g, t), Some(value));
            }
        }
    }
    assert!(target.groups().all(|(_, group)| !group.is_empty()));
    assert_eq!(target.id(), profile.id());
    assert_eq!(target.created_at(), profile.created_at());
    // Law 4: idempotence.
    let mut again = target.clone();
    let second = merge_in_place(&mut again, &patch, schema).expect("accepted once, accepted twice");
    assert!(second.is_empty(), "a second merge changed {second:?}");
    assert_eq!(text(&again), text(&target));
    assert_eq!(changes.is_empty(), text(&target) == text(profile));
    Ok(target)
}

/// A report is never empty, never over the cap, and when the input is JSON, names places
/// that exist in it.
fn check_error(error: &PatchError, as_json: Option<&Value>) {
    assert!(!error.violations().is_empty());
    assert!(error.violations().len() <= MAX_VIOLATIONS);
    let Some(json) = as_json else { return };
    for violation in error.violations() {
        assert_ne!(
            violation.kind(),
            ViolationKind::MalformedJson,
            "{violation}"
        );
        assert!(
            json.pointer(violation.pointer()).is_some(),
            "pointer {:?} does not resolve",
            violation.pointer()
        );
    }
}
