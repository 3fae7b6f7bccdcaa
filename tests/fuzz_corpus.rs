//! Replays the committed fuzz corpus (`fuzz/corpus/patch/`) through the fuzz target's own
//! checks, as an ordinary test: no nightly toolchain, no libFuzzer. The checks include the
//! stamped merge's laws 10 and 11 (`check::check_stamped`), with stamps and orders drawn
//! from each input's bytes; the last test draws more of them.

#[path = "../fuzz/check.rs"]
mod check;

use std::path::Path;

use profile_traits::Patch;

#[test]
fn every_corpus_input_gives_a_typed_error_or_a_correct_merge() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/patch");
    let (schema, profile) = (check::schema(), check::profile());
    let mut replayed = 0;
    let mut accepted = 0;
    for entry in std::fs::read_dir(&dir).expect("the corpus directory exists") {
        let path = entry.expect("a readable directory entry").path();
        let bytes = std::fs::read(&path).expect("a readable corpus file");
        let result =
            std::panic::catch_unwind(|| check::check_patch_bytes(&schema, &profile, &bytes));
        match result {
            Ok(outcome) => accepted += usize::from(outcome.is_ok()),
            Err(_) => panic!("corpus input {} broke a check", path.display()),
        }
        replayed += 1;
    }
    assert!(
        replayed >= 20,
        "only {replayed} corpus inputs in {}",
        dir.display()
    );
    assert!(accepted > 0, "no corpus input was accepted");
}

#[test]
fn the_named_corpus_inputs_have_the_expected_outcome() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/patch");
    let (schema, profile) = (check::schema(), check::profile());
    for entry in std::fs::read_dir(&dir).expect("the corpus directory exists") {
        let path = entry.expect("a readable directory entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        let bytes = std::fs::read(&path).expect("a readable corpus file");
        let outcome = check::check_patch_bytes(&schema, &profile, &bytes);
        if name.starts_with("valid_") {
            assert!(
                outcome.is_ok(),
                "{name} was rejected: {}",
                outcome.unwrap_err()
            );
        } else if name.starts_with("invalid_") || name.starts_with("malformed_") {
            assert!(outcome.is_err(), "{name} was accepted");
        }
    }
}

#[test]
fn valid_corpus_inputs_as_stamped_writes_in_many_orders_keep_laws_10_and_11() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/patch");
    let (schema, profile) = (check::schema(), check::profile());
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).expect("the corpus directory exists") {
        let bytes = std::fs::read(entry.expect("a readable entry").path()).expect("readable");
        let Ok(patch) = Patch::from_slice(&bytes) else {
            continue;
        };
        if schema.validate(&patch).is_err() {
            continue;
        }
        for salt in 0..64u64 {
            check::check_stamped(&schema, &profile, &patch, check::fnv1a(&bytes) ^ salt);
        }
        checked += 1;
    }
    assert!(checked >= 5, "only {checked} valid corpus inputs");
}
