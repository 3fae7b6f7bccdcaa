//! Merging a validated patch into a profile: immutable, in place, and by value.

use std::sync::Arc;

use crate::change::{Change, ChangeKind, ChangeLog, NamedChange};
use crate::error::PatchError;
use crate::patch::{Entry, Patch, TraitChange};
use crate::profile::{Profile, TraitGroup};
use crate::resolve::{GroupTarget, check_borrowed, check_owned};
use crate::schema::StoreSchema;

/// Merges `patch` into `profile` under `schema` and returns the new profile; `profile` is
/// left as it was.
///
/// The new profile shares every group the patch does not change with `profile`, so the
/// cost is that of the changed groups, not of the whole profile.
///
/// Rules: each trait the patch sets takes the patch's value (added at the end of its group
/// if absent, replaced whole if present); each trait set to `null` is removed (a no-op if
/// absent); every other trait and group is unchanged, value and position; a group left
/// with no trait is dropped; `id` and `createdAt` pass through.
///
/// # Errors
///
/// Every violation of [`StoreSchema::validate`]; then nothing is applied.
///
/// # Examples
///
/// ```
/// use profile_traits::{merge, Patch, Profile, StoreSchema};
///
/// let schema: StoreSchema = serde_json::from_str(r#"[{"displayName": "Contact", "traits": {
///     "email": {"dataType": "STRING"}, "phone": {"dataType": "STRING"}}}]"#).unwrap();
/// let profile: Profile = serde_json::from_str(
///     r#"{"traits": {"Contact": {"email": "old@b.c", "phone": "+1"}}}"#).unwrap();
/// let patch: Patch = r#"{"traits": {"Contact": {"email": "new@b.c", "phone": null}}}"#.parse().unwrap();
///
/// let merged = merge(&profile, &patch, &schema).unwrap();
/// assert_eq!(merged.to_value(), serde_json::json!({"traits": {"Contact": {"email": "new@b.c"}}}));
///
/// let unknown: Patch = r#"{"traits": {"Contact": {"fax": "1"}}}"#.parse().unwrap();
/// assert!(merge(&profile, &unknown, &schema).is_err());
/// ```
pub fn merge(
    profile: &Profile,
    patch: &Patch,
    schema: &StoreSchema,
) -> Result<Profile, PatchError> {
    let by_rank = check_borrowed(patch, schema)?;
    let mut merged = profile.clone();
    apply_borrowed(
        &mut merged,
        patch,
        schema,
        by_rank,
        &mut ChangeLog::counting(),
    );
    Ok(merged)
}

/// Merges `patch` into `profile` in place, all or nothing, and returns the changes made.
///
/// Setting a trait to the value it already has is not a change, so an empty list means the
/// profile did not change (a store write can be skipped).
///
/// # Errors
///
/// Every violation of [`StoreSchema::validate`]; then `profile` is untouched.
///
/// # Examples
///
/// ```
/// use profile_traits::{merge_in_place, ChangeKind, Patch, Profile, StoreSchema, TraitValue};
///
/// let schema: StoreSchema = serde_json::from_str(r#"[{"displayName": "Contact", "traits": {
///     "email": {"dataType": "STRING"}, "phone": {"dataType": "STRING"}}}]"#).unwrap();
/// let mut profile: Profile = serde_json::from_str(r#"{"traits": {"Contact": {"email": "a@b.c"}}}"#).unwrap();
/// let patch: Patch = r#"{"traits": {"Contact": {"email": "a@b.c", "phone": "+1"}}}"#.parse().unwrap();
///
/// let changes = merge_in_place(&mut profile, &patch, &schema).unwrap();
/// assert_eq!(changes.len(), 1);
/// assert_eq!(changes[0].trait_name(), "phone");
/// assert_eq!(changes[0].kind(), &ChangeKind::Added { value: TraitValue::from("+1") });
/// ```
pub fn merge_in_place(
    profile: &mut Profile,
    patch: &Patch,
    schema: &StoreSchema,
) -> Result<Vec<Change>, PatchError> {
    let by_rank = check_borrowed(patch, schema)?;
    let mut changes = Vec::new();
    apply_borrowed(
        profile,
        patch,
        schema,
        by_rank,
        &mut ChangeLog::recording(&mut changes),
    );
    Ok(changes)
}

/// Merges `patch`, taken by value, into `profile` in place, all or nothing, and returns how
/// many traits changed.
///
/// The patch's values are moved into the profile, not copied, and the name of a trait that
/// already exists is not copied either: a patch that updates existing traits allocates
/// nothing here. `0` means the profile did not change.
///
/// # Errors
///
/// Every violation of [`StoreSchema::validate`]; then `profile` is untouched.
///
/// # Examples
///
/// ```
/// use profile_traits::{merge_in_place_owned, Patch, Profile, StoreSchema};
///
/// let schema: StoreSchema = serde_json::from_str(
///     r#"[{"displayName": "Contact", "traits": {"email": {"dataType": "STRING"}}}]"#).unwrap();
/// let mut profile = Profile::new();
/// let patch: Patch = r#"{"traits": {"Contact": {"email": "a@b.c"}}}"#.parse().unwrap();
/// assert_eq!(merge_in_place_owned(&mut profile, patch.clone(), &schema).unwrap(), 1);
/// assert_eq!(merge_in_place_owned(&mut profile, patch, &schema).unwrap(), 0);
/// ```
pub fn merge_in_place_owned(
    profile: &mut Profile,
    mut patch: Patch,
    schema: &StoreSchema,
) -> Result<usize, PatchError> {
    check_owned(&mut patch, schema)?;
    let mut log = ChangeLog::counting();
    let mut groups = patch.into_groups();
    while let Some(group) = groups.next_group() {
        let target = GroupTarget::of(group.key(), schema, true);
        let candidates = NewTraitCandidates {
            entries: group.entries(),
        };
        let slot = find_group_with_room(profile, &target, candidates);
        let changes = group
            .drain()
            .map(|(name, change)| (name, change.into_value()));
        apply_group(profile, &target, slot, changes, &mut log);
    }
    Ok(log.count)
}

/// Applies a validated `patch` by reference: values are cloned where stored.
fn apply_borrowed(
    profile: &mut Profile,
    patch: &Patch,
    schema: &StoreSchema,
    by_rank: bool,
    log: &mut ChangeLog<'_>,
) {
    for group in patch.group_views() {
        let target = GroupTarget::of(group.key, schema, by_rank);
        let changes = group
            .entries
            .iter()
            .map(|entry| (patch.entry_key(entry), entry.change.borrowed_value()));
        let candidates = NewTraitCandidates {
            entries: group.entries,
        };
        let slot = find_group_with_room(profile, &target, candidates);
        apply_group(profile, &target, slot, changes, log);
    }
}

/// Applies the changes of one group of a patch that [`StoreSchema::validate`] accepted.
///
/// Values come as `Cow`: owned ones are moved into the profile, borrowed ones cloned. A
/// group shared with another profile is copied only when a change really touches it.
///
/// `slot` says where the group is in the profile: see [`find_group_with_room`].
fn apply_group<'v>(
    profile: &mut Profile,
    target: &GroupTarget<'_>,
    slot: GroupSlot,
    changes: impl Iterator<Item = NamedChange<'v>>,
    log: &mut ChangeLog<'_>,
) {
    let group_key = target.name;
    let (mut index, capacity) = match slot {
        GroupSlot::Present(index) => (Some(index), 0),
        GroupSlot::Absent { capacity } => (None, capacity),
    };
    for (name, change) in changes {
        let (_, key) = target.resolve(name);
        match change {
            Some(value) => {
                let group_index = *index.get_or_insert_with(|| {
                    let group = TraitGroup::with_capacity(capacity);
                    profile
                        .groups
                        .push_new(target.hash, group_key.clone(), Arc::new(group))
                });
                let group = &mut profile.groups[group_index];
                match group.traits.find_name(name.hash, key) {
                    Some(slot) if group.traits[slot] == *value => {}
                    Some(slot) => {
                        let group = Arc::make_mut(group);
                        let (key, stored) =
                            group.traits.get_index_mut(slot).expect("index just found");
                        let old = std::mem::replace(stored, value.into_owned());
                        log.note(group_key, key, || ChangeKind::Updated {
                            old,
                            new: stored.clone(),
                        });
                    }
                    None => {
                        let group = Arc::make_mut(group);
                        group
                            .traits
                            .push_new(name.hash, key.clone(), value.into_owned());
                        let stored = &group.traits[group.traits.len() - 1];
                        log.note(group_key, key, || ChangeKind::Added {
                            value: stored.clone(),
                        });
                    }
                }
            }
            None => {
                let Some(group_index) = index else { continue };
                let group = &mut profile.groups[group_index];
                let Some(slot) = group.traits.find_name(name.hash, key) else {
                    continue;
                };
                let (key, old) = Arc::make_mut(group)
                    .traits
                    .shift_remove_index(slot)
                    .expect("index just found");
                log.note(group_key, &key, || ChangeKind::Removed { old });
            }
        }
    }
    if let Some(group_index) = index
        && profile.groups[group_index].is_empty()
    {
        profile.groups.shift_remove_index(group_index);
    }
}

/// The entries of one group of a patch, looked at before they are applied.
#[derive(Clone, Copy)]
struct NewTraitCandidates<'a> {
    entries: &'a [Entry],
}

impl<'a> NewTraitCandidates<'a> {
    fn sets(self) -> impl Iterator<Item = &'a Entry> + Clone {
        self.entries
            .iter()
            .filter(|entry| matches!(entry.change, TraitChange::Set(_)))
    }
}

/// Finds the group `name` in the profile and, if present, grows it once for all the traits
/// `candidates` may add, instead of doubling its table step by step while adding them (half
/// the time of the large bench patch went to regrowing).
fn find_group_with_room(
    profile: &mut Profile,
    target: &GroupTarget<'_>,
    candidates: NewTraitCandidates<'_>,
) -> GroupSlot {
    match profile.groups.find_name(target.hash, target.name) {
        Some(index) => {
            reserve_for_new_traits(profile, index, candidates);
            GroupSlot::Present(index)
        }
        None => GroupSlot::Absent {
            capacity: candidates.sets().count(),
        },
    }
}

/// Where a patched group is in the profile, or how many traits it will have when added.
#[derive(Clone, Copy)]
enum GroupSlot {
    Present(usize),
    Absent { capacity: usize },
}

fn reserve_for_new_traits(profile: &mut Profile, index: usize, candidates: NewTraitCandidates<'_>) {
    // A few inserts regrow a group at most once or twice. Past that, room for every set
    // trait, new or not: counting the new ones exactly looked each of them up once more,
    // and a group holds at most the 95 traits of its schema anyway.
    const FEW_SETS: usize = 8;
    let traits = &profile.groups[index].traits;
    let spare = traits.capacity() - traits.len();
    let sets = candidates.sets().count();
    if sets > spare.max(FEW_SETS) {
        Arc::make_mut(&mut profile.groups[index])
            .traits
            .reserve(sets);
    }
}
