//! Applying a patch to a stored profile at a stamp (SEMANTICS.md §6).

use std::cmp::Ordering;

use super::{Entry, StoredGroup, StoredProfile, canonical_groups, compare_writes};
use crate::change::{Change, ChangeKind, ChangeLog, NamedChange, PatchValue};
use crate::error::PatchError;
use crate::names::Name;
use crate::patch::Patch;
use crate::resolve::{GroupTarget, check_borrowed, check_owned};
use crate::schema::StoreSchema;
use crate::stamp::Stamp;

impl StoredProfile {
    /// Applies `patch`, written at `stamp`, all or nothing, and returns what happened to each
    /// trait it names.
    ///
    /// Validation is [`StoreSchema::validate`], unchanged, and does not look at the stored
    /// profile. Then, per trait, the write is compared with the trait's entry:
    /// - older than the entry, or no entry and not above the horizon: skipped,
    ///   [`ChangeKind::Stale`] with the stamp that beat it;
    /// - at the entry's stamp: the greater write wins (a removal beats a set; of two sets the
    ///   value with the greater compact JSON text); the same write again reports nothing;
    /// - newer: applied. A set reports [`ChangeKind::Added`], [`ChangeKind::Updated`], or
    ///   [`ChangeKind::Touched`] when the value is the same (only the stamp moves); a removal
    ///   leaves a tombstone and reports [`ChangeKind::Removed`], or [`ChangeKind::Touched`]
    ///   when the trait was not live. A tombstone is recorded even for a trait with no entry,
    ///   so that an older set arriving later cannot bring it back.
    ///
    /// Whatever order writes are applied in, the stored profile ends the same.
    ///
    /// # Errors
    ///
    /// Every violation of [`StoreSchema::validate`]; then nothing changes, stamps included.
    ///
    /// # Examples
    ///
    /// ```
    /// use profile_traits::{ChangeKind, Patch, Stamp, StoreSchema, StoredProfile};
    ///
    /// let schema: StoreSchema = serde_json::from_str(
    ///     r#"[{"displayName": "Contact", "traits": {"phone": {"dataType": "STRING"}}}]"#)?;
    /// let set: Patch = r#"{"traits": {"Contact": {"phone": "+1"}}}"#.parse()?;
    /// let remove: Patch = r#"{"traits": {"Contact": {"phone": null}}}"#.parse()?;
    ///
    /// // The removal happened last but arrives first.
    /// let mut profile = StoredProfile::new();
    /// profile.apply(&remove, &schema, Stamp::new(2_000, 0)?)?;
    /// let changes = profile.apply(&set, &schema, Stamp::new(1_000, 0)?)?;
    /// assert_eq!(changes[0].kind(), &ChangeKind::Stale { by: Stamp::new(2_000, 0)? });
    /// assert_eq!(profile.get("Contact", "phone"), None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn apply(
        &mut self,
        patch: &Patch,
        schema: &StoreSchema,
        stamp: Stamp,
    ) -> Result<Vec<Change>, PatchError> {
        let by_rank = check_borrowed(patch, schema)?;
        let mut changes = Vec::new();
        let mut log = ChangeLog::recording(&mut changes);
        for group in patch.group_views() {
            let target = GroupTarget::of(group.key, schema, by_rank);
            let writes = group
                .entries
                .iter()
                .map(|entry| (patch.entry_key(entry), entry.change.borrowed_value()));
            self.apply_group(&target, writes, schema, stamp, &mut log);
        }
        Ok(changes)
    }

    /// Applies `patch`, taken by value, as [`StoredProfile::apply`], moving its values in;
    /// returns how many entries changed (added, updated, removed or touched). `0` means
    /// nothing needs storing.
    ///
    /// # Errors
    ///
    /// Every violation of [`StoreSchema::validate`]; then nothing changes.
    ///
    /// # Examples
    ///
    /// ```
    /// use profile_traits::{Patch, Stamp, StoreSchema, StoredProfile};
    ///
    /// let schema: StoreSchema = serde_json::from_str(
    ///     r#"[{"displayName": "Contact", "traits": {"email": {"dataType": "STRING"}}}]"#)?;
    /// let patch: Patch = r#"{"traits": {"Contact": {"email": "a@b.c"}}}"#.parse()?;
    /// let mut profile = StoredProfile::new();
    /// assert_eq!(profile.apply_owned(patch.clone(), &schema, Stamp::new(5, 0)?)?, 1);
    /// assert_eq!(profile.apply_owned(patch, &schema, Stamp::new(5, 0)?)?, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn apply_owned(
        &mut self,
        mut patch: Patch,
        schema: &StoreSchema,
        stamp: Stamp,
    ) -> Result<usize, PatchError> {
        check_owned(&mut patch, schema)?;
        let mut log = ChangeLog::counting();
        for group in patch.groups_mut() {
            let target = GroupTarget::of(group.key, schema, true);
            self.apply_group(&target, group.changes(), schema, stamp, &mut log);
        }
        Ok(log.count)
    }

    /// Applies the writes of one validated group at `stamp`.
    fn apply_group<'n, V: PatchValue>(
        &mut self,
        target: &GroupTarget<'_>,
        writes: impl ExactSizeIterator<Item = NamedChange<'n, V>>,
        schema: &StoreSchema,
        stamp: Stamp,
        log: &mut ChangeLog<'_>,
    ) {
        let group_key = target.name;
        let mut group_index = self.groups.find_name(target.hash, group_key);
        let instance = schema.instance();
        // Where the traits this patch adds to the group begin in its added part, once it
        // adds one.
        let mut first_new = None;
        // At most how many traits the group gains: room to make at once for them.
        let count = writes.len();
        for (name, value) in writes {
            let (trait_rank, trait_key) = target.resolve(name);
            let existing = group_index.and_then(|index| {
                let group = &self.groups[index];
                Some((
                    index,
                    group.find(instance, trait_rank, name.hash, trait_key)?,
                ))
            });
            let Some((index, slot)) = existing else {
                if stamp <= self.horizon {
                    log.note_stale(group_key, trait_key, self.horizon);
                    continue;
                }
                let index = *group_index
                    .get_or_insert_with(|| self.insert_group(group_key, target.rank, schema));
                let group = &mut self.groups[index];
                first_new.get_or_insert(group.added_len());
                let entry = Entry {
                    rank: trait_rank,
                    stamp,
                    value: value.map(V::into_owned),
                };
                log.note(group_key, trait_key, || match &entry.value {
                    Some(value) => ChangeKind::Added {
                        value: value.clone(),
                    },
                    None => ChangeKind::Touched,
                });
                group.push_unplaced(name.hash, trait_key.clone(), entry, count);
                continue;
            };
            let entry = self.groups[index].entry_mut(slot);
            match compare_writes(
                (stamp, value.as_ref().map(V::get)),
                (entry.stamp, entry.value.as_ref()),
            ) {
                Ordering::Less => {
                    log.note_stale(group_key, trait_key, entry.stamp);
                    continue;
                }
                Ordering::Equal => continue,
                Ordering::Greater => {}
            }
            entry.stamp = stamp;
            let old = std::mem::replace(&mut entry.value, value.map(V::into_owned));
            let new = &entry.value;
            log.note(group_key, trait_key, || match (old, new) {
                (Some(old), Some(new)) if old == *new => ChangeKind::Touched,
                (Some(old), Some(new)) => ChangeKind::Updated {
                    old,
                    new: new.clone(),
                },
                (None, Some(new)) => ChangeKind::Added { value: new.clone() },
                (Some(old), None) => ChangeKind::Removed { old },
                (None, None) => ChangeKind::Touched,
            });
        }
        if let (Some(first_new), Some(index)) = (first_new, group_index) {
            let definition = target.definition;
            self.groups[index].place_new(first_new, instance, |hash, name| {
                definition.rank_of_trait(hash, name)
            });
        }
    }

    /// Inserts the empty group `key` at its place in `schema`'s order; returns its index.
    fn insert_group(&mut self, key: &Name, rank: u32, schema: &StoreSchema) -> usize {
        if !self.groups_ranked {
            for (hash, name, group) in self.groups.iter_mut_hashed() {
                group.rank = schema.rank_of_group(hash, name);
            }
            self.groups.sort_by(canonical_groups);
            self.groups_ranked = true;
        }
        let at = self
            .groups
            .partition_point(|name, group| (group.rank, name) < (rank, key));
        self.groups
            .shift_insert(at, key.clone(), StoredGroup::empty(rank, schema.instance()));
        at
    }
}
