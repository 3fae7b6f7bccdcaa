//! Deterministic performance guards: allocation counts per operation on the bench fixtures,
//! and the heap size of a profile, counted by a global allocator (not timed).
//!
//! Counts are per thread, so tests running in parallel do not disturb each other.

#![allow(unsafe_code)] // A global allocator cannot be written without it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use profile_traits::{
    Patch, Profile, Stamp, StoreSchema, StoredProfile, merge, merge_in_place_owned,
};

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

/// The heap bytes of what `read` reads, read a second time: the first read on a thread also
/// makes the room it reads each kind of map into, kept for the thread's next reads (a cost
/// per thread, not per profile).
fn heap_of_read<T>(read: impl Fn() -> T) -> (isize, T) {
    drop(read());
    live_bytes(read)
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

/// The bench profile's stored form, every trait stamped, in the schema's order.
fn stored_text() -> String {
    let mut stored = StoredProfile::from_profile(profile(), Stamp::new(1_000, 7).expect("stamp"));
    stored.sort_by_schema(&schema());
    serde_json::to_string(&stored).expect("serializes")
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
fn applying_the_medium_patch_in_place_allocates_for_its_new_group_and_each_added_part() {
    // The new group: its `Arc<TraitGroup>` and its entry vector, presized for its 4 traits
    // (2; a map of at most 8 entries has no table). A profile is read with no spare room
    // (its heap is the guard below): the group map grows its entries and its table once for
    // the new group (2). Each of the 4 existing groups gaining 1 to 3 traits keeps them in
    // an added part, boxed, with room for every trait the patch sets there (2 each, 8):
    // growing the group itself would copy it whole (one allocation fewer, but most of the
    // merge's memory traffic).
    assert_eq!(in_place_allocations(MEDIUM), 12);
}

#[test]
fn applying_the_large_patch_in_place_allocates_once_per_part() {
    // 10 new groups, 3 each (Arc, table, entries, presized): 30. The profile's group map
    // grows its entries and its table once (2). Each of the 10 existing groups, read with
    // no spare room, gains 7 to 13 traits among 21 to 24 it sets: an added part, boxed,
    // with room for every trait it sets (box, entries, table): 30. Without the room made
    // once the 314 inserts regrew tables step by step.
    assert_eq!(in_place_allocations(LARGE), 62);
}

/// Allocations of `StoredProfile::apply_owned` on the bench profile as a store loads it
/// (read from its stored form, with no spare room).
fn stamped_allocations(patch_json: &str) -> usize {
    let schema = schema();
    let mut stored: StoredProfile = serde_json::from_str(&stored_text()).expect("stored form");
    stored.sort_by_schema(&schema);
    let patch = patch(patch_json);
    let stamp = Stamp::new(2_000, 0).expect("stamp");
    let (count, result) = allocations(|| stored.apply_owned(patch, &schema, stamp));
    result.expect("bench patch is valid");
    count
}

#[test]
fn applying_the_small_patch_stamped_allocates_nothing() {
    // Three newer writes to existing entries: values and stamps replaced in place.
    assert_eq!(stamped_allocations(SMALL), 0);
}

#[test]
fn applying_the_medium_patch_stamped_allocates_for_its_new_group_and_each_added_part() {
    // The new group: its added part, boxed, presized for its 4 traits, which becomes the
    // group (2; no table at 8 entries or fewer). The group map, read with no spare room,
    // grows its entries and its table once (2). Each of the 4 existing groups gaining traits
    // keeps them in an added part, boxed, with room for every trait the patch sets there
    // (2 each, 8): placing them among the group's entries would shift and index it whole.
    assert_eq!(stamped_allocations(MEDIUM), 12);
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
fn parsing_the_small_patch_allocates_its_buffers_once_then_only_its_string_values() {
    // On a thread that has dropped no patch yet: the entry vector (1) and the two string
    // values (2). Its names (33 bytes) and its one group are kept inside the patch.
    let (count, result) = allocations(|| Patch::from_slice(SMALL.as_bytes()));
    drop(result.expect("bench patch parses"));
    assert_eq!(count, 3);
    // The dropped patch left its buffers to the thread, so the next parse allocates only
    // its string values. Parsing and checking in one pass allocates the same: the checks
    // allocate nothing, and resolving names stores their ranks in the entries.
    let schema = schema();
    let (count, result) = allocations(|| schema.parse_patch(SMALL.as_bytes()));
    drop(result.expect("bench patch is valid"));
    assert_eq!(count, 2);
    let (count, result) = allocations(|| Patch::from_slice(SMALL.as_bytes()));
    drop(result.expect("bench patch parses"));
    assert_eq!(count, 2);
}

#[test]
fn a_thread_keeps_the_buffers_of_one_dropped_patch_only_when_they_are_small() {
    let parse_and_drop = |json: &str| drop(Patch::from_slice(json.as_bytes()).expect("parses"));
    let (kept, ()) = live_bytes(|| parse_and_drop(LARGE));
    assert_eq!(kept, 0, "the large patch's buffers (over 16 KiB) are freed");
    let (kept, ()) = live_bytes(|| parse_and_drop(SMALL));
    assert!(
        kept > 0 && kept < 1024,
        "the small patch's buffers are kept: {kept} bytes"
    );
    let (kept, ()) = live_bytes(|| parse_and_drop(SMALL));
    assert_eq!(kept, 0, "the next parse reuses them: one set per thread");
}

#[test]
fn the_immutable_merge_copies_only_the_touched_group() {
    let (schema, profile, patch) = (schema(), profile(), patch(SMALL));
    let (count, result) = allocations(|| merge(&profile, &patch, &schema));
    let merged = result.expect("bench patch is valid");
    // The new profile's group map (table + entries, 2); the copy of `Contact`, the one
    // group the patch changes (Arc, table, entries: 3, what the patch does to each of its
    // traits: 1, and its 17 string and array values the patch keeps: 17); the patch's 2 new
    // string values, cloned from the borrowed patch (2). The 2 string values the patch
    // replaces are not copied. The other 9 groups are shared, not copied.
    assert_eq!(count, 25);
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
fn the_rooms_a_thread_reads_profiles_in_take_at_most_40_kib_made_once() {
    // One room per kind of map (a group's values, a profile's groups; a stored group's
    // entries, a stored profile's groups), each with room for 96 entries and a table of 256
    // slots, made by the thread's first read and kept: what a first read holds beyond a
    // second one (34 KiB).
    let text = stored_text();
    let rooms = std::thread::spawn(move || {
        let read = || {
            let stored = serde_json::from_str::<StoredProfile>(&text).expect("stored form");
            (profile(), stored)
        };
        let (first, _) = live_bytes(read);
        let (second, _) = live_bytes(read);
        first - second
    })
    .join()
    .expect("reads");
    assert!(
        (1..=40 * 1024).contains(&rooms),
        "the rooms take {rooms} bytes"
    );
}

/// The heap of the bench profile as a `serde_json::Value`, the baselines' representation.
fn value_heap() -> isize {
    let (value, json) =
        heap_of_read(|| serde_json::from_str::<serde_json::Value>(PROFILE).expect("JSON"));
    assert_eq!(profile().to_value(), json);
    value
}

#[test]
fn a_profile_takes_at_most_six_tenths_of_the_heap_of_the_same_json_value() {
    // Per trait an entry of 64 bytes (hash, name inline, value) and 4 to 8 bytes of table;
    // no allocation per name.
    let (ours, _profile) = heap_of_read(profile);
    let value = value_heap();
    assert!(
        ours * 10 <= value * 6,
        "Profile holds {ours} heap bytes, serde_json::Value {value}"
    );
}

#[test]
fn a_stored_profile_with_its_stamps_takes_at_most_eight_tenths_of_the_json_value() {
    // The same traits each with a stamp (16 bytes) and a rank (4), read from the stored form
    // as a store loads it, with no spare room: traits a write adds to a group go to an added
    // part of it (0.73; 0.78 when each group was read with room for 2 more).
    let text = stored_text();
    let (ours, loaded) =
        heap_of_read(|| serde_json::from_str::<StoredProfile>(&text).expect("stored form"));
    assert_eq!(serde_json::to_string(&loaded).expect("serializes"), text);
    let value = value_heap();
    assert!(
        ours * 10 <= value * 8,
        "StoredProfile holds {ours} heap bytes, the profile as serde_json::Value {value}"
    );
}
