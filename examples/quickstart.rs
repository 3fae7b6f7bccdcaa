//! Merges a bundled patch into a bundled profile under a bundled schema, prints the merged
//! profile and the changes, then shows a rejected patch with all its violations.
//!
//! Run with `cargo run --example quickstart`.

use profile_traits::{ChangeKind, Patch, Profile, StoreSchema, merge_in_place};

const SCHEMA: &str = include_str!("data/schema.json");
const PROFILE: &str = include_str!("data/profile.json");
const PATCH: &str = include_str!("data/patch.json");
const REJECTED_PATCH: &str = include_str!("data/patch_rejected.json");

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let schema: StoreSchema = serde_json::from_str(SCHEMA)?;
    let mut profile: Profile = serde_json::from_str(PROFILE)?;
    let patch: Patch = PATCH.parse()?;

    let changes = merge_in_place(&mut profile, &patch, &schema)?;
    println!(
        "merged profile:\n{}",
        serde_json::to_string_pretty(&profile)?
    );
    println!("\n{} changes:", changes.len());
    for change in &changes {
        let place = format!("{}.{}", change.group(), change.trait_name());
        match change.kind() {
            ChangeKind::Added { value } => {
                println!("  added   {place} = {}", serde_json::to_string(value)?)
            }
            ChangeKind::Updated { old, new } => println!(
                "  updated {place}: {} -> {}",
                serde_json::to_string(old)?,
                serde_json::to_string(new)?
            ),
            ChangeKind::Removed { old } => {
                println!("  removed {place} (was {})", serde_json::to_string(old)?)
            }
            ChangeKind::Touched | ChangeKind::Stale { .. } => {
                unreachable!("only the stamped merge reports {:?}", change.kind())
            }
        }
    }

    let before = profile.clone();
    let rejected: Patch = REJECTED_PATCH.parse()?;
    match merge_in_place(&mut profile, &rejected, &schema) {
        Ok(_) => return Err("the bundled rejected patch was accepted".into()),
        Err(error) => println!("\nrejected patch, nothing applied:\n{error}"),
    }
    assert_eq!(profile, before, "a rejected patch changes nothing");
    Ok(())
}
