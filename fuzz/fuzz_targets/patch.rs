//! Arbitrary bytes as a patch against a fixed schema and profile: never a panic; on
//! success laws 2 to 4 (and 1) hold; on error the profile is unchanged. The checks live in
//! `fuzz/check.rs`, which `tests/fuzz_corpus.rs` replays over the committed corpus.

#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use profile_traits::{Profile, StoreSchema};

#[path = "../check.rs"]
mod check;

static FIXTURE: LazyLock<(StoreSchema, Profile)> =
    LazyLock::new(|| (check::schema(), check::profile()));

fuzz_target!(|data: &[u8]| {
    let (schema, profile) = &*FIXTURE;
    let _ = check::check_patch_bytes(schema, profile, data);
});
