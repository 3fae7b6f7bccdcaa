//! The changes a merge reports, and the patches that replay or take them back.

use crate::names::{Hashed, Name};
use crate::patch::{Patch, TraitChange};
use crate::stamp::Stamp;
use crate::value::TraitValue;

/// One change a merge made to a profile, or, for the stamped merge, one write it skipped.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    group: Name,
    name: Name,
    kind: ChangeKind,
}

impl Change {
    pub(crate) fn new(group: Name, name: Name, kind: ChangeKind) -> Self {
        Change { group, name, kind }
    }

    /// The trait group of the changed trait.
    pub fn group(&self) -> &str {
        &self.group
    }

    /// The name of the changed trait.
    pub fn trait_name(&self) -> &str {
        &self.name
    }

    /// What happened to it.
    pub fn kind(&self) -> &ChangeKind {
        &self.kind
    }
}

/// What happened to one trait.
#[derive(Debug, Clone, PartialEq)]
pub enum ChangeKind {
    /// The trait was absent and now has `value`.
    Added {
        /// The value now stored.
        value: TraitValue,
    },
    /// The trait's value changed from `old` to `new` (never equal).
    Updated {
        /// The value before.
        old: TraitValue,
        /// The value now stored.
        new: TraitValue,
    },
    /// The trait was removed; it had `old`.
    Removed {
        /// The value before.
        old: TraitValue,
    },
    /// Stamped merge only: the write won, but the trait's visible state is what it was (the
    /// same value set again, or a removal of a trait that was not live); only its stamp
    /// moved, so a store writes stamps but the API view is unchanged.
    Touched,
    /// Stamped merge only: the write lost to a newer one and was skipped; `by` is the stamp
    /// that beat it (the trait's entry, or the horizon when the trait has none).
    Stale {
        /// The stamp that beat the write.
        by: Stamp,
    },
}

impl ChangeKind {
    /// Whether the change alters the API view of the profile: added, updated or removed.
    pub fn is_visible(&self) -> bool {
        match self {
            ChangeKind::Added { .. } | ChangeKind::Updated { .. } | ChangeKind::Removed { .. } => {
                true
            }
            ChangeKind::Touched | ChangeKind::Stale { .. } => false,
        }
    }
}

/// One trait's change as the merges take it: a name, and a value to set or `None` to
/// remove.
pub(crate) type NamedChange<'n, V> = (Hashed<'n>, Option<V>);

/// A value a merge stores: swapped in (or, where the profile had none, moved out) from a
/// patch taken by value, cloned from one borrowed.
///
/// Swapped rather than moved where it can be: a value moved out of the patch is split by the compiler into a
/// tag and a payload on the stack, and copied back in chunks that straddle the stores that
/// wrote them, which the processor cannot forward from (a stall on every trait of a merge,
/// seen in `perf annotate`). A swap copies memory to memory. The old values go to the patch,
/// which the merge drops at its end.
pub(crate) trait PatchValue: Sized {
    /// What [`PatchValue::store`] gives back: the value the profile held.
    type Old: PatchValue;

    /// The value, to compare with the stored one.
    fn get(&self) -> &TraitValue;

    /// The value, to store where there was none.
    fn into_owned(self) -> TraitValue;

    /// Puts the value in `slot`; gives back what `slot` held.
    fn store(self, slot: &mut TraitValue) -> Self::Old;
}

impl PatchValue for TraitValue {
    type Old = TraitValue;

    fn get(&self) -> &TraitValue {
        self
    }

    fn into_owned(self) -> TraitValue {
        self
    }

    fn store(self, slot: &mut TraitValue) -> TraitValue {
        std::mem::replace(slot, self)
    }
}

impl PatchValue for &TraitValue {
    type Old = TraitValue;

    fn get(&self) -> &TraitValue {
        self
    }

    fn into_owned(self) -> TraitValue {
        self.clone()
    }

    fn store(self, slot: &mut TraitValue) -> TraitValue {
        std::mem::replace(slot, self.clone())
    }
}

/// A value in a patch taken by value.
impl PatchValue for &mut TraitValue {
    type Old = Self;

    fn get(&self) -> &TraitValue {
        self
    }

    /// Moves the value out, leaving `false` in the patch.
    fn into_owned(self) -> TraitValue {
        std::mem::replace(self, TraitValue::Bool(false))
    }

    fn store(self, slot: &mut TraitValue) -> Self {
        std::mem::swap(slot, self);
        self
    }
}

/// Counts the changes a merge makes, and records them when asked to.
pub(crate) struct ChangeLog<'c> {
    pub(crate) count: usize,
    changes: Option<&'c mut Vec<Change>>,
}

impl<'c> ChangeLog<'c> {
    pub(crate) fn counting() -> Self {
        ChangeLog {
            count: 0,
            changes: None,
        }
    }

    pub(crate) fn recording(changes: &'c mut Vec<Change>) -> Self {
        ChangeLog {
            count: 0,
            changes: Some(changes),
        }
    }

    /// Notes one change; `kind` is only built when the change is recorded.
    #[inline]
    pub(crate) fn note(&mut self, group: &Name, name: &Name, kind: impl FnOnce() -> ChangeKind) {
        self.count += 1;
        if let Some(changes) = self.changes.as_deref_mut() {
            changes.push(Change::new(group.clone(), name.clone(), kind()));
        }
    }

    /// Notes a stamped write skipped as stale: recorded when asked to, but not counted,
    /// since it changed nothing.
    pub(crate) fn note_stale(&mut self, group: &Name, name: &Name, by: Stamp) {
        if let Some(changes) = self.changes.as_deref_mut() {
            changes.push(Change::new(
                group.clone(),
                name.clone(),
                ChangeKind::Stale { by },
            ));
        }
    }
}

impl Patch {
    /// The patch that makes `changes` again: each added or updated trait set to its new
    /// value, each removed trait removed; touched and stale ones change no value and are left
    /// out. Merged into the profile the changes were made to,
    /// it gives the profile they made.
    pub fn from_changes(changes: &[Change]) -> Patch {
        let mut patch = Patch::new();
        for change in changes {
            let redo = match change.kind() {
                ChangeKind::Added { value } | ChangeKind::Updated { new: value, .. } => {
                    TraitChange::Set(value.clone())
                }
                ChangeKind::Removed { .. } => TraitChange::Remove,
                ChangeKind::Touched | ChangeKind::Stale { .. } => continue,
            };
            patch.insert(change.group(), change.trait_name(), redo);
        }
        patch
    }

    /// The patch that takes `changes` back: each added trait removed, each updated or removed
    /// trait set to its old value (touched and stale ones are left out). Merged into the profile the changes made, it gives back
    /// the profile they were made to (`==`; a removed trait comes back at the end of its
    /// group, and a dropped group at the end of the profile).
    ///
    /// # Examples
    ///
    /// ```
    /// use profile_traits::{merge_in_place, DataType, GroupDefinition, Patch, Profile, StoreSchema, TraitDefinition};
    ///
    /// let schema = StoreSchema::new([GroupDefinition::new("Contact")
    ///     .with_trait("email", TraitDefinition::new(DataType::String))]).unwrap();
    /// let before: Profile = serde_json::from_str(r#"{"traits": {"Contact": {"email": "old@b.c"}}}"#).unwrap();
    /// let mut profile = before.clone();
    /// let changes = merge_in_place(&mut profile, &r#"{"traits": {"Contact": {"email": "new@b.c"}}}"#.parse().unwrap(), &schema).unwrap();
    /// merge_in_place(&mut profile, &Patch::undo(&changes), &schema).unwrap();
    /// assert_eq!(profile, before);
    /// ```
    pub fn undo(changes: &[Change]) -> Patch {
        let mut patch = Patch::new();
        // Backwards, so that when a list names a trait twice, its earliest old value wins.
        for change in changes.iter().rev() {
            let undo = match change.kind() {
                ChangeKind::Added { .. } => TraitChange::Remove,
                ChangeKind::Updated { old, .. } | ChangeKind::Removed { old } => {
                    TraitChange::Set(old.clone())
                }
                ChangeKind::Touched | ChangeKind::Stale { .. } => continue,
            };
            patch.insert(change.group(), change.trait_name(), undo);
        }
        patch
    }
}
