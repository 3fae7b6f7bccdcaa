//! Throughput of the merge paths against the `serde_json::Value` + `json-patch` baselines.
//!
//! Workload and baselines: `benches/data/BENCH.md`. One criterion group per patch size
//! (`small`, `medium`, `large`) so that ours and the baselines run side by side; function
//! names are stable so results compare across runs. The `scaling` group applies one 3-trait
//! patch in place to profiles of 10 to 4,750 traits (the most a schema allows: 50 groups of
//! 95), so that a merge's cost can be seen not to grow with the profile. Run with
//! `cargo bench`.

use std::hint::black_box;

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use profile_traits::{
    DataType, GroupDefinition, Patch, Profile, Stamp, StoreSchema, StoredProfile, TraitDefinition,
    TraitValue, merge, merge_in_place_owned,
};
use serde_json::Value;

const SCHEMA: &str = include_str!("data/schema.json");
const PROFILE: &str = include_str!("data/profile.json");
const PATCHES: [(&str, &str); 3] = [
    ("small", include_str!("data/patch_small.json")),
    ("medium", include_str!("data/patch_medium.json")),
    ("large", include_str!("data/patch_large.json")),
];

/// A profile that shares no group with any other, as a profile loaded from a store is.
///
/// `Profile::clone` shares groups copy-on-write, so a clone would make the in-place merge
/// pay for copying the groups it touches.
fn fresh_profile() -> Profile {
    serde_json::from_str(PROFILE).expect("bench profile is valid")
}

/// The bench profile as a store keeps it: every trait stamped, in the schema's order.
fn fresh_stored(schema: &StoreSchema) -> StoredProfile {
    let mut stored = StoredProfile::from_profile(fresh_profile(), stamp(1_000));
    stored.sort_by_schema(schema);
    stored
}

/// A stored profile as a store that keeps profiles as text loads one: read from its stored
/// form, not yet ranked for the schema, which its first write does.
fn read_stored(text: &str) -> StoredProfile {
    serde_json::from_str(text).expect("the stored form reads back")
}

fn stamp(micros: i64) -> Stamp {
    Stamp::new(micros, 0).expect("in range")
}

fn bench_patch_size(c: &mut Criterion, size: &str, patch_json: &str) {
    let schema: StoreSchema = serde_json::from_str(SCHEMA).expect("bench schema is valid");
    let profile: Profile = serde_json::from_str(PROFILE).expect("bench profile is valid");
    let patch = schema
        .parse_patch(patch_json.as_bytes())
        .expect("bench patch is valid");
    let patch_bytes = patch_json.as_bytes();
    let profile_value: Value = serde_json::from_str(PROFILE).expect("bench profile is JSON");
    let patch_value: Value = serde_json::from_str(patch_json).expect("bench patch is JSON");

    let mut group = c.benchmark_group(size);
    group.throughput(Throughput::Elements(patch.len() as u64));

    group.bench_function("b1_json_patch_in_place", |b| {
        b.iter_batched(
            || profile_value.clone(),
            |mut target| {
                json_patch::merge(&mut target, black_box(&patch_value));
                target
            },
            BatchSize::SmallInput,
        )
    });
    group.bench_function("b2_json_patch_from_bytes", |b| {
        b.iter_batched(
            || profile_value.clone(),
            |mut target| {
                let parsed: Value =
                    serde_json::from_slice(black_box(patch_bytes)).expect("valid JSON");
                json_patch::merge(&mut target, &parsed);
                target
            },
            BatchSize::SmallInput,
        )
    });
    group.bench_function("b3_json_patch_immutable", |b| {
        b.iter(|| {
            let mut target = black_box(&profile_value).clone();
            json_patch::merge(&mut target, black_box(&patch_value));
            target
        })
    });

    group.bench_function("ours_in_place", |b| {
        b.iter_batched(
            || (fresh_profile(), patch.clone()),
            |(mut target, patch)| {
                merge_in_place_owned(&mut target, black_box(patch), &schema).expect("valid patch");
                target
            },
            BatchSize::SmallInput,
        )
    });
    group.bench_function("ours_from_bytes", |b| {
        b.iter_batched(
            fresh_profile,
            |mut target| {
                let parsed = schema
                    .parse_patch(black_box(patch_bytes))
                    .expect("valid patch");
                merge_in_place_owned(&mut target, parsed, &schema).expect("valid patch");
                target
            },
            BatchSize::SmallInput,
        )
    });
    let stored_text = serde_json::to_string(&fresh_stored(&schema)).expect("serializes");
    let stored_setups: [(&str, &dyn Fn() -> StoredProfile); 2] = [
        ("ours_stamped_in_place", &|| fresh_stored(&schema)),
        ("ours_stamped_read_in_place", &|| read_stored(&stored_text)),
    ];
    for (id, stored) in stored_setups {
        group.bench_function(id, |b| {
            b.iter_batched(
                || (stored(), patch.clone()),
                |(mut target, patch)| {
                    target
                        .apply_owned(black_box(patch), &schema, stamp(2_000))
                        .expect("valid patch");
                    target
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.bench_function("ours_stamped_from_bytes", |b| {
        b.iter_batched(
            || fresh_stored(&schema),
            |mut target| {
                let parsed = schema
                    .parse_patch(black_box(patch_bytes))
                    .expect("valid patch");
                target
                    .apply_owned(parsed, &schema, stamp(2_000))
                    .expect("valid patch");
                target
            },
            BatchSize::SmallInput,
        )
    });
    group.bench_function("ours_immutable", |b| {
        b.iter(|| merge(black_box(&profile), black_box(&patch), &schema).expect("valid patch"))
    });
    group.bench_function("ours_validate", |b| {
        b.iter(|| schema.validate(black_box(&patch)))
    });
    group.bench_function("ours_parse", |b| {
        b.iter(|| Patch::from_slice(black_box(patch_bytes)))
    });
    group.finish();
}

/// Groups and traits per group of the largest schema allowed.
const SCALING_GROUPS: usize = 50;
const SCALING_TRAITS: usize = 95;

fn scaling_name(group: usize, name: usize) -> (String, String) {
    (format!("Group{group:02}"), format!("trait{name:02}"))
}

/// A profile of the first `traits` traits of the 50 x 95 schema, group after group.
fn scaling_profile(traits: usize) -> Profile {
    let mut profile = Profile::new();
    for i in 0..traits {
        let (group, name) = scaling_name(i / SCALING_TRAITS, i % SCALING_TRAITS);
        profile.insert(
            &group,
            &name,
            TraitValue::from(format!("value of trait {i}")),
        );
    }
    // As a store loads it: read from its JSON, no spare room.
    serde_json::from_str(&serde_json::to_string(&profile).expect("serializes")).expect("reads")
}

fn bench_scaling(c: &mut Criterion) {
    let schema = StoreSchema::new((0..SCALING_GROUPS).map(|g| {
        (0..SCALING_TRAITS).fold(GroupDefinition::new(scaling_name(g, 0).0), |group, t| {
            group.with_trait(scaling_name(g, t).1, TraitDefinition::new(DataType::String))
        })
    }))
    .expect("the largest schema allowed is valid");
    // Three updates of traits every profile has; two patches taken in turn, so each write
    // really changes the value.
    let patches: Vec<Patch> = ["a", "b"]
        .iter()
        .map(|suffix| {
            let mut patch = Patch::new();
            for t in 0..3 {
                let (group, name) = scaling_name(0, t);
                patch.set(&group, &name, format!("new value {t} {suffix}"));
            }
            patch
        })
        .collect();
    let mut group = c.benchmark_group("scaling");
    group.throughput(Throughput::Elements(3));
    for traits in [10, 100, 1_000, SCALING_GROUPS * SCALING_TRAITS] {
        let mut profile = scaling_profile(traits);
        let mut turn = 0;
        group.bench_with_input(
            BenchmarkId::new("ours_in_place", traits),
            &traits,
            |b, _| {
                b.iter_batched(
                    || {
                        turn += 1;
                        patches[turn % 2].clone()
                    },
                    |patch| {
                        merge_in_place_owned(black_box(&mut profile), black_box(patch), &schema)
                            .expect("valid patch")
                    },
                    BatchSize::SmallInput,
                )
            },
        );
    }
    group.finish();
}

fn benches(c: &mut Criterion) {
    for (size, patch_json) in PATCHES {
        bench_patch_size(c, size, patch_json);
    }
    bench_scaling(c);
}

criterion_group!(merge_benches, benches);
criterion_main!(merge_benches);
