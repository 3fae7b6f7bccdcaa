//! The checks run on every fuzz input, shared by the fuzz target (`fuzz_targets/patch.rs`),
//! the corpus replay (`tests/fuzz_corpus.rs`) and the byte-mutation property test
//! (`tests/hostile.rs`).
//!
//! Arbitrary bytes are fed as a patch against a fixed schema and profile. Never a panic;
//! a rejected patch leaves the profile unchanged and names places in the patch; an
//! accepted one sets what it sets, removes what it removes, leaves the rest alone and is
//! idempotent. The stamped merge is checked too: a rejected patch leaves a stored profile
//! unchanged, stamps included; an accepted one is split into stamped writes applied in
//! several orders (stamps and orders derived from the input bytes), which must end at the
//! same stored bytes (law 10), and each write applied again must change nothing (law 11).

#![allow(dead_code, unreachable_pub)]

use profile_traits::{
    ChangeKind, MAX_VIOLATIONS, Patch, PatchError, Profile, Stamp, StoreSchema, StoredProfile,
    TraitChange, ViolationKind, merge, merge_in_place,
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
    // Law 16: the one pass of `parse_patch` gives what parsing, then validating, gives.
    let full = Patch::from_slice(bytes).and_then(|patch| schema.validate(&patch).map(|()| patch));
    assert_eq!(schema.parse_patch(bytes), full, "parse_patch differs");
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
            let mut stored = stored_base(profile, schema);
            let before = stored_text(&stored);
            let stamp = Stamp::new(fnv1a(bytes) as i64 % 8, 0).expect("in range");
            assert_eq!(stored.apply(&patch, schema, stamp), Err(error.clone()));
            assert_eq!(
                stored_text(&stored),
                before,
                "a rejected patch changed stamps"
            );
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
    check_stamped(schema, profile, &patch, fnv1a(bytes));
    Ok(target)
}

/// FNV-1a of the input: the seed of the stamps and orders of [`check_stamped`].
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A small deterministic generator (xorshift64*), seeded from the input.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// A stamp from a small domain (1 to 4 microseconds, tiebreaker 0 or 1), so that ties
    /// are frequent.
    fn stamp(&mut self) -> Stamp {
        let micros = 1 + (self.next() % 4) as i64;
        Stamp::new(micros, self.next() % 2).expect("in range")
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }
}

/// The fixed profile as a stored one: every trait at 2 microseconds after the epoch (so that
/// some stamped writes are older), in the schema's order.
fn stored_base(profile: &Profile, schema: &StoreSchema) -> StoredProfile {
    let mut stored =
        StoredProfile::from_profile(profile.clone(), Stamp::new(2, 0).expect("in range"));
    stored.sort_by_schema(schema);
    stored
}

fn stored_text(stored: &StoredProfile) -> String {
    serde_json::to_string(stored).expect("a stored profile serializes")
}

/// Laws 10 and 11 on stamped writes made from an accepted `patch`: the patch itself, each of
/// its trait writes alone, and a removal of each trait it names, with stamps from `seed`,
/// some written twice, applied to the stored fixed profile in three orders drawn from
/// `seed`. Panics when a law fails.
pub fn check_stamped(schema: &StoreSchema, profile: &Profile, patch: &Patch, seed: u64) {
    let mut rng = Rng::new(seed);
    let mut writes = vec![(patch.clone(), rng.stamp())];
    for (g, t, change) in patch.iter() {
        let mut one = Patch::new();
        one.insert(g, t, change.clone());
        writes.push((one, rng.stamp()));
        let mut removal = Patch::new();
        removal.insert(g, t, TraitChange::Remove);
        writes.push((removal, rng.stamp()));
    }
    for _ in 0..rng.below(3) {
        let again = writes[rng.below(writes.len())].clone();
        writes.push(again);
    }
    let base = stored_base(profile, schema);
    let build = |writes: &[(Patch, Stamp)]| {
        let mut stored = base.clone();
        for (patch, stamp) in writes {
            stored
                .apply(patch, schema, *stamp)
                .expect("parts of an accepted patch are accepted");
        }
        stored
    };
    let built = build(&writes);
    let expected = stored_text(&built);
    for _ in 0..2 {
        rng.shuffle(&mut writes);
        assert_eq!(
            stored_text(&build(&writes)),
            expected,
            "law 10: order independence"
        );
    }
    for (patch, stamp) in &writes {
        let mut again = built.clone();
        let changes = again
            .apply(patch, schema, *stamp)
            .expect("accepted once, accepted twice");
        assert!(
            changes
                .iter()
                .all(|c| matches!(c.kind(), ChangeKind::Stale { .. })),
            "law 11: redelivery at {stamp} reported {changes:?}"
        );
        assert_eq!(stored_text(&again), expected, "law 11: redelivery");
    }
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
