//! The patch: a typed set or remove per trait, and its wire form out (`Serialize`).
//!
//! Parsing is in `parse`, composition in `compose`, the names' text in `name_text`, the
//! buffers a thread keeps for its next parse in `spare`.

mod compose;
mod name_text;
mod parse;
mod spare;

use std::fmt;
use std::ops::Range;

use serde::ser::{Serialize, SerializeMap, Serializer};
use smallvec::SmallVec;

use self::name_text::NameText;

use crate::names::{Hashed, NO_RANK, hash_name};
use crate::schema::StoreSchema;
use crate::value::TraitValue;

/// What a patch does to one trait.
///
/// In JSON a removal is `null`; here it is its own variant, so no value can be mistaken for
/// one.
#[derive(Debug, Clone, PartialEq)]
pub enum TraitChange {
    /// Add the trait, or replace its value whole (arrays are replaced, never merged).
    Set(TraitValue),
    /// Remove the trait; removing an absent trait is a no-op.
    Remove,
}

impl TraitChange {
    /// The value to set, borrowed, or `None` for a removal.
    pub(crate) fn borrowed_value(&self) -> Option<&TraitValue> {
        match self {
            TraitChange::Set(value) => Some(value),
            TraitChange::Remove => None,
        }
    }

    /// The value to set, mutable, or `None` for a removal.
    pub(crate) fn value_mut(&mut self) -> Option<&mut TraitValue> {
        match self {
            TraitChange::Set(value) => Some(value),
            TraitChange::Remove => None,
        }
    }
}

/// Where a name lies in [`Patch::names`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Span {
    start: usize,
    end: usize,
    /// The name's hash (computed once, when the name is added) in the low half, and its
    /// rank in the schema of [`Patch::resolved_for`] (or [`NO_RANK`]) in the high half.
    ///
    /// One word, not two `u32` fields: the parser writes the two halves as they come, and a
    /// struct copy then read them back as one 8-byte load, which the processor cannot
    /// forward from two 4-byte stores (a stall for every name parsed).
    hash_and_rank: u64,
}

impl Span {
    fn new(start: usize, end: usize, hash: u32, rank: u32) -> Self {
        Span {
            start,
            end,
            hash_and_rank: u64::from(hash) | (u64::from(rank) << 32),
        }
    }

    fn hash(self) -> u32 {
        self.hash_and_rank as u32
    }

    fn rank(self) -> u32 {
        (self.hash_and_rank >> 32) as u32
    }

    fn set_rank(&mut self, rank: u32) {
        *self = Span::new(self.start, self.end, self.hash(), rank);
    }

    /// The name this span marks in `names`.
    pub(crate) fn of(self, names: &str) -> &str {
        &names[self.start..self.end]
    }

    /// The name this span marks in `names`, with its hash.
    pub(crate) fn key(self, names: &str) -> Hashed<'_> {
        Hashed {
            name: self.of(names),
            hash: self.hash(),
            rank: self.rank(),
        }
    }
}

/// One group of a patch: its name, and where its entries lie in [`Patch::entries`].
#[derive(Debug, Clone)]
pub(crate) struct GroupEntry {
    pub(crate) name: Span,
    pub(crate) entries: Range<usize>,
}

/// One trait change of a patch.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) name: Span,
    pub(crate) change: TraitChange,
}

/// A group of a patch taken by value, for a merge to swap its values out: see
/// [`Patch::groups_mut`].
pub(crate) struct GroupMut<'p> {
    pub(crate) key: Hashed<'p>,
    names: &'p str,
    pub(crate) entries: &'p mut [Entry],
}

impl<'p> GroupMut<'p> {
    /// The group's trait names with their values to set (mutable) or `None` to remove.
    pub(crate) fn changes(
        self,
    ) -> impl ExactSizeIterator<Item = (Hashed<'p>, Option<&'p mut TraitValue>)> {
        let names = self.names;
        self.entries
            .iter_mut()
            .map(move |entry| (entry.name.key(names), entry.change.value_mut()))
    }
}

/// A group of a patch as the checks and the merge see it.
pub(crate) struct GroupView<'p> {
    pub(crate) name: &'p str,
    pub(crate) key: Hashed<'p>,
    pub(crate) entries: &'p [Entry],
}

/// A "patch profile traits" request: for each named trait of each named group, a value to
/// set or a removal.
///
/// Groups and traits keep document order; a name appears at most once per object (a JSON
/// document that repeats a key is refused). A patch is not tied to a schema: parsing checks
/// the wire format only, and [`StoreSchema::validate`](crate::StoreSchema::validate) or
/// [`merge`](crate::merge) check it against a store.
///
/// Wire form: `{"traits": {Group: {trait: value | null}}}`.
///
/// # Examples
///
/// ```
/// use profile_traits::{Patch, TraitChange, TraitValue};
///
/// let patch: Patch = r#"{"traits": {"Contact": {"email": "a@b.c", "phone": null}}}"#.parse().unwrap();
/// assert_eq!(patch.get("Contact", "email"), Some(&TraitChange::Set(TraitValue::from("a@b.c"))));
/// assert_eq!(patch.get("Contact", "phone"), Some(&TraitChange::Remove));
///
/// let mut built = Patch::new();
/// built.set("Contact", "email", "a@b.c").remove("Contact", "phone");
/// assert_eq!(built, patch);
/// assert_eq!(
///     serde_json::to_string(&built).unwrap(),
///     r#"{"traits":{"Contact":{"email":"a@b.c","phone":null}}}"#
/// );
/// ```
///
/// # Representation
///
/// All names live back to back in one string and the changes in one vector, group after
/// group: parsing a patch allocates for its values and its changes, not for each name
/// (benches: `ours_parse`, `ours_from_bytes`). The names of a short patch (up to 64 bytes)
/// and the first group are kept inside the patch. A thread keeps the buffers of the last
/// patch it dropped, up to 16 KiB each, for the next patch it parses.
#[derive(Clone, Default)]
pub struct Patch {
    /// Every group and trait name, back to back.
    names: NameText,
    /// The groups in document order; their entry ranges tile `entries` in order. Most
    /// patches name one group, kept inside the patch.
    groups: SmallVec<[GroupEntry; 1]>,
    /// The trait changes, group after group.
    entries: Vec<Entry>,
    /// The [`StoreSchema::instance`] this patch was checked against, its names' ranks
    /// resolved there ([`StoreSchema::parse_patch`]); any change of the patch clears it.
    resolved_for: Option<u64>,
}

impl Patch {
    /// An empty patch: valid, and changes nothing.
    pub fn new() -> Self {
        Patch::default()
    }

    /// Sets trait `name` of `group` to `value`, replacing what the patch said of it before.
    pub fn set(&mut self, group: &str, name: &str, value: impl Into<TraitValue>) -> &mut Self {
        self.insert(group, name, TraitChange::Set(value.into()));
        self
    }

    /// Makes the patch remove trait `name` of `group`, replacing what it said of it before.
    pub fn remove(&mut self, group: &str, name: &str) -> &mut Self {
        self.insert(group, name, TraitChange::Remove);
        self
    }

    /// Puts `change` for trait `name` of `group` into the patch; returns what the patch said
    /// of that trait before. A new group or trait goes after the existing ones.
    pub fn insert(&mut self, group: &str, name: &str, change: TraitChange) -> Option<TraitChange> {
        self.resolved_for = None;
        let index = self.group_index_or_insert(group);
        let range = self.groups[index].entries.clone();
        if let Some(offset) = self.position_in(range.clone(), name) {
            return Some(std::mem::replace(
                &mut self.entries[range.start + offset].change,
                change,
            ));
        }
        let name = self.push_name(name);
        self.entries.insert(range.end, Entry { name, change });
        self.groups[index].entries.end += 1;
        for later in &mut self.groups[index + 1..] {
            later.entries.start += 1;
            later.entries.end += 1;
        }
        None
    }

    fn push_name(&mut self, name: &str) -> Span {
        self.push_hashed(name, hash_name(name), NO_RANK)
    }

    /// Appends `name`, whose hash is `hash` and rank `rank`, to the name buffer.
    #[inline]
    fn push_hashed(&mut self, name: &str, hash: u32, rank: u32) -> Span {
        let start = self.names.len();
        self.names.push_str(name);
        Span::new(start, self.names.len(), hash, rank)
    }

    fn name(&self, span: Span) -> &str {
        span.of(&self.names)
    }

    fn group_index(&self, name: &str) -> Option<usize> {
        self.groups.iter().position(|g| self.name(g.name) == name)
    }

    fn group_index_or_insert(&mut self, name: &str) -> usize {
        if let Some(index) = self.group_index(name) {
            return index;
        }
        self.resolved_for = None;
        let name = self.push_name(name);
        let at = self.entries.len();
        self.groups.push(GroupEntry {
            name,
            entries: at..at,
        });
        self.groups.len() - 1
    }

    /// The offset of trait `name` among the entries in `range`.
    fn position_in(&self, range: Range<usize>, name: &str) -> Option<usize> {
        self.entries[range]
            .iter()
            .position(|e| self.name(e.name) == name)
    }

    /// What the patch does to trait `name` of `group`, if it names it.
    pub fn get(&self, group: &str, name: &str) -> Option<&TraitChange> {
        let range = self.groups[self.group_index(group)?].entries.clone();
        let offset = self.position_in(range.clone(), name)?;
        Some(&self.entries[range.start + offset].change)
    }

    /// The groups with their names and entries, in document order.
    pub(crate) fn group_views(&self) -> impl ExactSizeIterator<Item = GroupView<'_>> {
        self.groups.iter().map(|g| GroupView {
            name: self.name(g.name),
            key: g.name.key(&self.names),
            entries: &self.entries[g.entries.clone()],
        })
    }

    /// The name of `entry`, an entry of this patch, with its hash.
    pub(crate) fn entry_key(&self, entry: &Entry) -> Hashed<'_> {
        entry.name.key(&self.names)
    }

    /// Whether this patch was parsed against `schema` or a clone of it, unchanged since:
    /// checked there, its names resolved there.
    pub(crate) fn is_resolved_in(&self, schema: &StoreSchema) -> bool {
        self.resolved_for == Some(schema.instance())
    }

    /// Appends a change of trait `name` (hashed to `hash`, of rank `rank` in its group) to
    /// the group that [`Patch::push_group`] closes next.
    #[inline]
    pub(crate) fn push_entry(&mut self, name: &str, hash: u32, rank: u32, change: TraitChange) {
        let name = self.push_hashed(name, hash, rank);
        self.entries.push(Entry { name, change });
    }

    /// Appends group `name` (hashed to `hash`, of rank `rank`) with the entries pushed
    /// since there were `first_entry`.
    pub(crate) fn push_group(&mut self, name: &str, hash: u32, rank: u32, first_entry: usize) {
        let name = self.push_hashed(name, hash, rank);
        let entries = first_entry..self.entries.len();
        self.groups.push(GroupEntry { name, entries });
    }

    /// Marks the patch as checked against `schema`, with every name's rank there pushed.
    pub(crate) fn mark_resolved(&mut self, schema: &StoreSchema) {
        self.resolved_for = Some(schema.instance());
    }

    /// Resolves every name in `schema`, by hash, as [`StoreSchema::parse_patch`] does while
    /// parsing; the caller checks the patch against `schema` before it relies on that.
    pub(crate) fn resolve_names(&mut self, schema: &StoreSchema) {
        let Patch {
            names,
            groups,
            entries,
            resolved_for,
        } = self;
        for group in groups.iter_mut() {
            let definition = schema.lookup(group.name.key(names), false);
            group
                .name
                .set_rank(definition.map_or(NO_RANK, |(rank, _, _)| rank));
            for entry in &mut entries[group.entries.clone()] {
                let rank = definition
                    .and_then(|(_, _, definition)| definition.lookup(entry.name.key(names), false))
                    .map_or(NO_RANK, |(rank, _, _)| rank);
                entry.name.set_rank(rank);
            }
        }
        *resolved_for = Some(schema.instance());
    }

    /// The groups with their names and entries, the entries mutable: a merge that took the
    /// patch by value swaps its values with the profile's, in place (see `PatchValue`).
    pub(crate) fn groups_mut(&mut self) -> impl Iterator<Item = GroupMut<'_>> {
        let Patch {
            names,
            groups,
            entries,
            ..
        } = self;
        let names: &str = names;
        // The groups' entry ranges tile `entries` in order.
        let mut rest = entries.as_mut_slice();
        groups.iter().map(move |group| {
            let (entries, after) = std::mem::take(&mut rest).split_at_mut(group.entries.len());
            rest = after;
            GroupMut {
                key: group.name.key(names),
                names,
                entries,
            }
        })
    }

    /// Every `(group, trait, change)` of the patch, in document order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str, &TraitChange)> {
        self.group_views().flat_map(move |group| {
            group
                .entries
                .iter()
                .map(move |entry| (group.name, self.name(entry.name), &entry.change))
        })
    }

    /// The names of the groups the patch names, in document order, including groups it names
    /// with no trait (`{"traits": {"Contact": {}}}`).
    pub fn group_names(&self) -> impl ExactSizeIterator<Item = &str> {
        self.groups.iter().map(|group| self.name(group.name))
    }

    /// The number of trait changes.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the patch changes no trait.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The patch in its wire form, as a `serde_json::Value`.
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("a patch always serializes: its keys are strings")
    }
}

impl PartialEq for Patch {
    /// Equal when they name the same groups and traits in the same order with the same
    /// changes; how the names are stored does not matter.
    fn eq(&self, other: &Self) -> bool {
        self.groups.len() == other.groups.len()
            && self.group_views().zip(other.group_views()).all(|(a, b)| {
                a.name == b.name
                    && a.entries.len() == b.entries.len()
                    && a.entries.iter().zip(b.entries).all(|(x, y)| {
                        self.name(x.name) == other.name(y.name) && x.change == y.change
                    })
            })
    }
}

impl fmt::Debug for Patch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.group_views().map(|group| {
                (
                    group.name,
                    DebugEntries {
                        patch: self,
                        entries: group.entries,
                    },
                )
            }))
            .finish()
    }
}

struct DebugEntries<'a> {
    patch: &'a Patch,
    entries: &'a [Entry],
}

impl fmt::Debug for DebugEntries<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(
                self.entries
                    .iter()
                    .map(|e| (self.patch.name(e.name), &e.change)),
            )
            .finish()
    }
}

impl Serialize for Patch {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry("traits", &GroupsOut(self))?;
        map.end()
    }
}

struct GroupsOut<'a>(&'a Patch);

impl Serialize for GroupsOut<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let patch = self.0;
        let mut map = serializer.serialize_map(Some(patch.groups.len()))?;
        for group in patch.group_views() {
            map.serialize_entry(
                group.name,
                &EntriesOut {
                    patch,
                    entries: group.entries,
                },
            )?;
        }
        map.end()
    }
}

struct EntriesOut<'a> {
    patch: &'a Patch,
    entries: &'a [Entry],
}

impl Serialize for EntriesOut<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.entries.len()))?;
        for entry in self.entries {
            let name = self.patch.name(entry.name);
            match &entry.change {
                TraitChange::Set(value) => map.serialize_entry(name, value)?,
                TraitChange::Remove => map.serialize_entry(name, &())?,
            }
        }
        map.end()
    }
}
