//! Deterministic performance guards: allocation counts per operation on the bench fixtures,
//! and the heap size of a profile, counted by a global allocator (not timed).
//!
//! Counts are per thread, so tests running in parallel do not disturb each other.

#![allow(unsafe_code)] // A global allocator cannot be written without it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use profile_traits::{Patch, Profile, StoreSchema, merge, merge_in_place_owned};

struct CountingAllocator;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
    static LIVE_BYTES: Cell<isize> = const { Cell::new(0) };
}

fn note(allocations: usize, bytes: isize) {
    // `try_with`: the allocator also runs while a thread's locals are torn down.
    let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + allocations));
    let _ = LIVE_BYTES.try_with(|c| c.set(c.get() + bytes));
}

// SAFETY: every call is forwarded unchanged to the system allocator; counting touches only
// const-initialized thread-locals, which never allocate.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(1, layout.size() as isize);
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note(0, -(layout.size() as isize));
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(1, new_size as isize - layout.size() as isize);
        // SAFETY: forwarded with the caller's pointer and layout.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// The number of allocations (reallocations included) `f` makes on this thread.
fn allocations<T>(f: impl FnOnce() -> T) -> (usize, T) {
    let before = ALLOCATIONS.with(Cell::get);
    let out = f();
    (ALLOCATIONS.with(Cell::get) - before, out)
}

/// The heap bytes still held when `f` returns what it built.
fn live_bytes<T>(f: impl FnOnce() -> T) -> (isize, T) {
    let before = LIVE_BYTES.with(Cell::get);
    let out = f();
    (LIVE_BYTES.with(Cell::get) - before, out)
}

const SCHEMA: &str = include_str!("../benches/data/schema.json");
const PROFILE: &str = include_str!("../benches/data/profile.json");
const SMALL: &str = include_str!("../benches/data/patch_small.json");
const MEDIUM: &str = include_str!("../benches/data/patch_medium.json");
const LARGE: &str = include_str!("../benches/data/patch_large.json");

fn schema() -> StoreSchema {
    serde_json::from_str(SCHEMA).expect("bench schema is valid")
}

fn profile() -> Profile {
    serde_json::from_str(PROFILE).expect("bench profile is valid")
}

fn patch(json: &str) -> Patch {
    json.parse().expect("bench patch parses")
}

/// Allocations of `merge_in_place_owned` with the patch's values moved in.
fn in_place_allocations(patch_json: &str) -> usize {
    let (schema, mut profile, patch) = (schema(), profile(), patch(patch_json));
    let (count, result) = allocations(|| merge_in_place_owned(&mut profile, patch, &schema));
    result.expect("bench patch is valid");
    count
}

#[test]
fn applying_the_small_patch_in_place_allocates_nothing() {
    // Three updates of existing traits: values are moved in, names already exist.
    assert_eq!(in_place_allocations(SMALL), 0);
}

#[test]
fn applying_the_medium_patch_in_place_allocates_only_for_its_new_group() {
    // The new group: its `Arc<TraitGroup>` and its map's table and entry vector, presized
    // for its traits (3). The 12 other inserts fit in the existing groups' spare capacity.
    assert_eq!(in_place_allocations(MEDIUM), 3);
}

#[test]
fn applying_the_large_patch_in_place_allocates_once_per_growth() {
    // 10 new groups, 3 each (Arc, table, entries, presized): 30. Then four maps that lack
    // room for what they gain (the profile's group map and existing groups) grow once
    // each, exactly (table + entries): 8. Without the one-time growth the 314 inserts
    // regrew tables step by step.
    assert_eq!(in_place_allocations(LARGE), 38);
}

#[test]
fn validating_a_valid_patch_allocates_nothing() {
    let schema = schema();
    for json in [SMALL, MEDIUM, LARGE] {
        let patch = patch(json);
        let (count, result) = allocations(|| schema.validate(&patch));
        result.expect("bench patch is valid");
        assert_eq!(count, 0, "validating {json:.40}...");
    }
}

#[test]
fn parsing_the_small_patch_allocates_its_buffers_and_string_values() {
    // Name buffer, entry vector and group vector (3), and the two string values (2); keys
    // are borrowed from the input, not copied.
    let (count, result) = allocations(|| Patch::from_slice(SMALL.as_bytes()));
    result.expect("bench patch parses");
    assert_eq!(count, 5);
}

#[test]
fn the_immutable_merge_copies_only_the_touched_group() {
    let (schema, profile, patch) = (schema(), profile(), patch(SMALL));
    let (count, result) = allocations(|| merge(&profile, &patch, &schema));
    let merged = result.expect("bench patch is valid");
    // The new profile's group map (table + entries, 2); the copy of `Contact`, the one
    // group the patch changes (Arc, table, entries: 3, and its 19 string and array
    // values: 19); the patch's 2 new string values, cloned from the borrowed patch (2).
    // The other 9 groups are shared, not copied.
    assert_eq!(count, 26);
    let shared = profile
        .groups()
        .zip(merged.groups())
        .filter(|((_, a), (_, b))| std::ptr::eq(*a, *b))
        .count();
    assert_eq!(
        shared,
        profile.len() - 1,
        "every group but `Contact` is shared"
    );
}

#[test]
fn a_profile_takes_no_more_heap_than_the_same_profile_as_a_json_value() {
    let (ours, profile) = live_bytes(profile);
    let (value, json) =
        live_bytes(|| serde_json::from_str::<serde_json::Value>(PROFILE).expect("JSON"));
    assert_eq!(profile.to_value(), json);
    assert!(
        ours <= value,
        "Profile holds {ours} heap bytes, serde_json::Value {value}"
    );
}
