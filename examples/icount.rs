//! Runs one bench operation a given number of times, for `benches/icount.sh` to count its
//! instructions under callgrind (repeatable, unlike time on a shared machine).
//!
//! `cargo run --release --example icount -- OPERATION SIZE REPEAT`, with OPERATION one of the
//! bench functions of `benches/merge.rs` and SIZE `small`, `medium` or `large`. Only the
//! operation runs inside `measured`, so callgrind's `--toggle-collect` leaves setup out.

use std::hint::black_box;
use std::process::ExitCode;

use profile_traits::{
    Patch, Profile, Stamp, StoreSchema, StoredProfile, merge, merge_in_place_owned,
};
use serde_json::Value;

const SCHEMA: &str = include_str!("../benches/data/schema.json");
const PROFILE: &str = include_str!("../benches/data/profile.json");

/// One operation's input, made before `measured` runs.
enum Input {
    Value(Value),
    Profile(Profile, Patch),
    Stored(StoredProfile, Patch),
    ProfileOnly(Profile),
    StoredOnly(StoredProfile),
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [operation, size, repeat] = args.as_slice() else {
        eprintln!("usage: icount OPERATION small|medium|large REPEAT");
        return ExitCode::from(2);
    };
    let patch_json = match size.as_str() {
        "small" => include_str!("../benches/data/patch_small.json"),
        "medium" => include_str!("../benches/data/patch_medium.json"),
        "large" => include_str!("../benches/data/patch_large.json"),
        _ => {
            eprintln!("unknown size `{size}`");
            return ExitCode::from(2);
        }
    };
    let Ok(repeat) = repeat.parse::<usize>() else {
        eprintln!("REPEAT must be a whole number");
        return ExitCode::from(2);
    };
    let schema: StoreSchema = serde_json::from_str(SCHEMA).expect("bench schema is valid");
    let patch = schema
        .parse_patch(patch_json.as_bytes())
        .expect("bench patch is valid");
    let patch_value: Value = serde_json::from_str(patch_json).expect("bench patch is JSON");
    for _ in 0..repeat {
        let input = match operation.as_str() {
            "b1_json_patch_in_place" | "b2_json_patch_from_bytes" | "b3_json_patch_immutable" => {
                Input::Value(serde_json::from_str(PROFILE).expect("bench profile is JSON"))
            }
            "ours_in_place" | "ours_immutable" => Input::Profile(profile(), patch.clone()),
            "ours_from_bytes" => Input::ProfileOnly(profile()),
            "ours_stamped_in_place" => Input::Stored(stored(&schema), patch.clone()),
            "ours_stamped_read_in_place" => Input::Stored(stored_read(&schema), patch.clone()),
            "ours_stamped_from_bytes" => Input::StoredOnly(stored(&schema)),
            _ => {
                eprintln!("unknown operation `{operation}`");
                return ExitCode::from(2);
            }
        };
        black_box(measured(
            operation,
            input,
            &schema,
            patch_json,
            &patch_value,
        ));
    }
    ExitCode::SUCCESS
}

fn profile() -> Profile {
    serde_json::from_str(PROFILE).expect("bench profile is valid")
}

fn stored(schema: &StoreSchema) -> StoredProfile {
    let mut stored = StoredProfile::from_profile(profile(), stamp(1_000));
    stored.sort_by_schema(schema);
    stored
}

/// The stored profile as a store that keeps profiles as text loads it: read from its stored
/// form, not yet ranked for the schema.
fn stored_read(schema: &StoreSchema) -> StoredProfile {
    let text = serde_json::to_string(&stored(schema)).expect("serializes");
    serde_json::from_str(&text).expect("the stored form reads back")
}

fn stamp(micros: i64) -> Stamp {
    Stamp::new(micros, 0).expect("in range")
}

/// The operation alone; everything callgrind counts happens in here. The merged profile is
/// handed back and dropped outside, as criterion drops a bench's outputs after timing it;
/// the patch a merge consumes is dropped inside, as in the benches.
#[inline(never)]
fn measured(
    operation: &str,
    input: Input,
    schema: &StoreSchema,
    patch_json: &str,
    patch_value: &Value,
) -> Input {
    match (operation, input) {
        ("b1_json_patch_in_place", Input::Value(mut target)) => {
            json_patch::merge(&mut target, black_box(patch_value));
            Input::Value(target)
        }
        ("b2_json_patch_from_bytes", Input::Value(mut target)) => {
            let parsed: Value = serde_json::from_str(black_box(patch_json)).expect("valid JSON");
            json_patch::merge(&mut target, &parsed);
            Input::Value(target)
        }
        ("b3_json_patch_immutable", Input::Value(original)) => {
            let mut target = black_box(&original).clone();
            json_patch::merge(&mut target, black_box(patch_value));
            Input::Value(target)
        }
        ("ours_in_place", Input::Profile(mut target, patch)) => {
            merge_in_place_owned(&mut target, black_box(patch), schema).expect("valid patch");
            Input::ProfileOnly(target)
        }
        ("ours_immutable", Input::Profile(original, patch)) => {
            let merged = merge(black_box(&original), black_box(&patch), schema);
            Input::ProfileOnly(merged.expect("valid patch"))
        }
        ("ours_from_bytes", Input::ProfileOnly(mut target)) => {
            let parsed = schema
                .parse_patch(black_box(patch_json.as_bytes()))
                .expect("valid patch");
            merge_in_place_owned(&mut target, parsed, schema).expect("valid patch");
            Input::ProfileOnly(target)
        }
        (
            "ours_stamped_in_place" | "ours_stamped_read_in_place",
            Input::Stored(mut target, patch),
        ) => {
            target
                .apply_owned(black_box(patch), schema, stamp(2_000))
                .expect("valid patch");
            Input::StoredOnly(target)
        }
        ("ours_stamped_from_bytes", Input::StoredOnly(mut target)) => {
            let parsed = schema
                .parse_patch(black_box(patch_json.as_bytes()))
                .expect("valid patch");
            target
                .apply_owned(parsed, schema, stamp(2_000))
                .expect("valid patch");
            Input::StoredOnly(target)
        }
        _ => unreachable!("main makes the input that matches the operation"),
    }
}
