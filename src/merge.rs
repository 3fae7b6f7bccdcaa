//! Merging a validated patch into a profile: immutable, in place, and by value.

use std::sync::Arc;

use crate::change::{Change, ChangeKind, ChangeLog, NamedChange, PatchValue};
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
    for group in patch.groups_mut() {
        let target = GroupTarget::of(group.key, schema, true);
        let slot = find_group(profile, &target, group.entries);
        apply_group(profile, &target, slot, group.changes(), &mut log);
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
        let slot = find_group(profile, &target, group.entries);
        apply_group(profile, &target, slot, changes, log);
    }
}

/// Applies the changes of one group of a patch that [`StoreSchema::validate`] accepted.
///
/// Values are swapped into the profile from a patch taken by value, cloned from a borrowed
/// one ([`PatchValue`]). A group shared with another profile goes to
/// [`apply_to_shared_group`].
///
/// `slot` says where the group is in the profile: see [`find_group`].
fn apply_group<'n, V: PatchValue>(
    profile: &mut Profile,
    target: &GroupTarget<'_>,
    slot: GroupSlot,
    changes: impl Iterator<Item = NamedChange<'n, V>>,
    log: &mut ChangeLog<'_>,
) {
    if let GroupSlot::Present { index, .. } = slot
        && Arc::strong_count(&profile.groups[index]) > 1
    {
        apply_to_shared_group(profile, target, index, changes, log);
        return;
    }
    let group_key = target.name;
    // The group is made unique (an atomic compare-and-swap) once, not once per change; a
    // group the profile lacks is filled before it is shared, with room for every set.
    let mut fresh = TraitGroup::default();
    let (group, mut room) = match slot {
        GroupSlot::Present { index, sets } => (
            Arc::get_mut(&mut profile.groups[index]).expect("shared groups are handled above"),
            sets,
        ),
        GroupSlot::Absent { sets } => {
            fresh = TraitGroup::with_capacity(sets);
            (&mut fresh, sets)
        }
    };
    for (name, change) in changes {
        let (_, key) = target.resolve(name);
        match change {
            Some(value) => {
                // This set and the ones after it: at most how many traits are still added.
                let sets_left = room;
                room = room.saturating_sub(1);
                match group.find(name.hash, key) {
                    Some(slot) if group.value(slot) == value.get() => {}
                    Some(slot) => {
                        let (key, stored) = group.entry_mut(slot);
                        let old = value.store(stored);
                        log.note(group_key, key, || ChangeKind::Updated {
                            old: old.into_owned(),
                            new: stored.clone(),
                        });
                    }
                    None => {
                        let stored =
                            group.push(name.hash, key.clone(), value.into_owned(), sets_left);
                        log.note(group_key, key, || ChangeKind::Added {
                            value: stored.clone(),
                        });
                    }
                }
            }
            None => {
                let Some(slot) = group.find(name.hash, key) else {
                    continue;
                };
                let (key, old) = group.remove(slot);
                log.note(group_key, &key, || ChangeKind::Removed { old });
            }
        }
    }
    let emptied = group.is_empty();
    match slot {
        GroupSlot::Present { index, .. } if emptied => {
            profile.groups.shift_remove_index(index);
        }
        GroupSlot::Absent { .. } if !emptied => {
            profile
                .groups
                .push_new(target.hash, group_key.clone(), Arc::new(fresh));
        }
        _ => {}
    }
}

/// Applies the changes of one group of a patch to the group at `index`, which `profile`
/// shares with another profile: copies it once, with the changes in it, and only if a
/// change really touches it.
///
/// Copying first and then applying copied every value, and then dropped the copies of the
/// values the patch replaces: twice the work for most of a group that a large patch updates.
fn apply_to_shared_group<'n, V: PatchValue>(
    profile: &mut Profile,
    target: &GroupTarget<'_>,
    index: usize,
    changes: impl Iterator<Item = NamedChange<'n, V>>,
    log: &mut ChangeLog<'_>,
) {
    let group_key = target.name;
    let shared = &profile.groups[index];
    // What the patch does to each trait of the group, by position: nothing (`None`), set
    // (`Some(Some(value))`) or remove (`Some(None)`); and the traits it adds.
    let mut fates: Vec<Option<Option<V>>> = Vec::new();
    let mut added = Vec::new();
    for (name, change) in changes {
        let (_, key) = target.resolve(name);
        let Some(slot) = shared.find(name.hash, key) else {
            if let Some(value) = change {
                log.note(group_key, key, || ChangeKind::Added {
                    value: value.get().clone(),
                });
                added.push((name.hash, key, value));
            }
            continue;
        };
        let old = shared.value(slot);
        match &change {
            Some(value) if value.get() == old => continue,
            Some(value) => log.note(group_key, key, || ChangeKind::Updated {
                old: old.clone(),
                new: value.get().clone(),
            }),
            None => log.note(group_key, key, || ChangeKind::Removed { old: old.clone() }),
        }
        if fates.is_empty() {
            fates.resize_with(shared.end(), || None);
        }
        fates[shared.position(slot)] = Some(change);
    }
    if fates.is_empty() && added.is_empty() {
        return;
    }
    let mut copy = shared.copy_with(added.len(), |at, old| match fates.get_mut(at) {
        Some(fate @ Some(_)) => fate.take().flatten().map(V::into_owned),
        _ => Some(old.clone()),
    });
    for (hash, key, value) in added {
        copy.push(hash, key.clone(), value.into_owned(), 0);
    }
    if copy.is_empty() {
        profile.groups.shift_remove_index(index);
    } else {
        profile.groups[index] = Arc::new(copy);
    }
}

/// Finds the group `target` in the profile, with how many traits the patch sets in it (its
/// `entries`): at most how many it adds.
fn find_group(profile: &Profile, target: &GroupTarget<'_>, entries: &[Entry]) -> GroupSlot {
    let sets = entries
        .iter()
        .filter(|entry| matches!(entry.change, TraitChange::Set(_)))
        .count();
    match profile.groups.find_name(target.hash, target.name) {
        Some(index) => GroupSlot::Present { index, sets },
        None => GroupSlot::Absent { sets },
    }
}

/// Where a patched group is in the profile, and how many traits the patch sets in it: room
/// to make at once for the traits it adds, instead of growing step by step.
#[derive(Clone, Copy)]
enum GroupSlot {
    Present { index: usize, sets: usize },
    Absent { sets: usize },
}
