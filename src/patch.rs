//! The patch: a typed set or remove per trait, and its JSON wire form.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;
use std::ops::Range;
use std::str::FromStr;

use serde::de::{self, Deserialize, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, Serializer};

use crate::error::{PatchError, Violation, ViolationKind, Violations};
use crate::names::KeySeed;
use crate::pointer::{group_pointer, pointer, trait_pointer};
use crate::value::{ParsedValue, ParsedValueVisitor, TraitValue};

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
    pub(crate) fn borrowed_value(&self) -> Option<Cow<'_, TraitValue>> {
        match self {
            TraitChange::Set(value) => Some(Cow::Borrowed(value)),
            TraitChange::Remove => None,
        }
    }

    /// The value to set, moved out, or `None` for a removal.
    pub(crate) fn into_value(self) -> Option<Cow<'static, TraitValue>> {
        match self {
            TraitChange::Set(value) => Some(Cow::Owned(value)),
            TraitChange::Remove => None,
        }
    }
}

/// Keys of one object checked for repetition by scanning; past this many, by a set.
const SCAN_KEYS: usize = 32;

/// Where a name lies in [`Patch::names`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Span {
    start: usize,
    end: usize,
}

impl Span {
    /// The name this span marks in `names`.
    pub(crate) fn of(self, names: &str) -> &str {
        &names[self.start..self.end]
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

/// The groups of a patch taken by value: each group's names are borrowed from the patch's
/// name buffer while its values are moved out.
pub(crate) struct IntoGroups {
    names: String,
    groups: std::vec::IntoIter<GroupEntry>,
    entries: std::vec::IntoIter<Entry>,
}

impl IntoGroups {
    /// The next group, in document order; its entries must be drained before the next call.
    pub(crate) fn next_group(&mut self) -> Option<OwnedGroup<'_>> {
        let group = self.groups.next()?;
        Some(OwnedGroup {
            name: group.name.of(&self.names),
            names: &self.names,
            count: group.entries.len(),
            entries: &mut self.entries,
        })
    }
}

/// One group of a patch taken by value: see [`IntoGroups`].
pub(crate) struct OwnedGroup<'p> {
    name: &'p str,
    names: &'p str,
    count: usize,
    entries: &'p mut std::vec::IntoIter<Entry>,
}

impl<'p> OwnedGroup<'p> {
    /// The group's name.
    pub(crate) fn name(&self) -> &'p str {
        self.name
    }

    /// The names buffer the entries' spans index into.
    pub(crate) fn names(&self) -> &'p str {
        self.names
    }

    /// The group's entries, still in place.
    pub(crate) fn entries(&self) -> &[Entry] {
        &self.entries.as_slice()[..self.count]
    }

    /// The group's trait names with their changes, moved out.
    pub(crate) fn drain(self) -> impl Iterator<Item = (&'p str, TraitChange)> {
        let names = self.names;
        self.entries
            .by_ref()
            .take(self.count)
            .map(move |entry| (entry.name.of(names), entry.change))
    }
}

/// A group of a patch as the checks and the merge see it.
pub(crate) struct GroupView<'p> {
    pub(crate) name: &'p str,
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
/// group: parsing a patch allocates for its values and a few buffers, not for each name
/// (benches: `ours_parse`, `ours_from_bytes`).
#[derive(Clone, Default)]
pub struct Patch {
    /// Every group and trait name, back to back.
    names: String,
    /// The groups in document order; their entry ranges tile `entries` in order.
    groups: Vec<GroupEntry>,
    /// The trait changes, group after group.
    entries: Vec<Entry>,
}

impl Patch {
    /// An empty patch: valid, and changes nothing.
    pub fn new() -> Self {
        Patch::default()
    }

    /// An empty patch with room for what a JSON document of `input_len` bytes can hold, so
    /// that parsing rarely grows a buffer: names take fewer bytes than the document, and
    /// each trait takes at least a few bytes of it (`"a":1,`), typically more than 24.
    fn with_capacity_for_input(input_len: usize) -> Self {
        const MAX_PRESIZED_BYTES: usize = 64 * 1024;
        const BYTES_PER_ENTRY: usize = 24;
        let bytes = input_len.min(MAX_PRESIZED_BYTES);
        Patch {
            names: String::with_capacity(bytes),
            groups: Vec::new(),
            entries: Vec::with_capacity(bytes / BYTES_PER_ENTRY),
        }
    }

    /// Parses a patch from JSON bytes.
    ///
    /// # Errors
    ///
    /// A [`PatchError`] listing every problem of the wire format, in document order:
    /// - malformed JSON or invalid UTF-8, with line and column (`{"traits": `);
    /// - a key repeated in one object (`{"traits": {"A": {"x": 1, "x": 2}}}`);
    /// - a top-level key other than `traits` (`{"trait": {}}`);
    /// - a document, `traits` or group that is not an object (`{"traits": {"A": null}}`);
    /// - a value outside the domain (`{"traits": {"A": {"x": {"y": 1}}}}`).
    ///
    /// # Examples
    ///
    /// ```
    /// use profile_traits::{Patch, ViolationKind};
    ///
    /// let error = Patch::from_slice(br#"{"traits": {"Contact": null}}"#).unwrap_err();
    /// assert_eq!(error.violations()[0].kind(), ViolationKind::NotAnObject);
    /// assert_eq!(error.violations()[0].pointer(), "/traits/Contact");
    /// assert_eq!(
    ///     error.violations()[0].message(),
    ///     "`/traits/Contact`: expected an object, found null"
    /// );
    /// ```
    pub fn from_slice(bytes: &[u8]) -> Result<Patch, PatchError> {
        // Checking UTF-8 once for the whole input is cheaper than serde_json checking each
        // string (a sixth of the parse time of the small bench patch); invalid input goes
        // through the slice reader, which says where the bad byte is.
        match std::str::from_utf8(bytes) {
            Ok(text) => text.parse(),
            Err(_) => parse_json(
                &mut serde_json::Deserializer::from_slice(bytes),
                bytes.len(),
            ),
        }
    }

    /// Parses a patch from a `serde_json::Value`, with the checks of [`Patch::from_slice`].
    ///
    /// # Errors
    ///
    /// As [`Patch::from_slice`], except that a `Value` cannot be malformed or repeat a key.
    pub fn from_value(value: &serde_json::Value) -> Result<Patch, PatchError> {
        let mut state = ParseState::default();
        let parsed = PatchSeed {
            state: &mut state,
            capacity_hint: 0,
        }
        .deserialize(value);
        finish(parsed, state, |e| {
            Violation::new(ViolationKind::InvalidValue, String::new(), e)
        })
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
        let start = self.names.len();
        self.names.push_str(name);
        Span {
            start,
            end: self.names.len(),
        }
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
            entries: &self.entries[g.entries.clone()],
        })
    }

    /// Every name of the patch, back to back; entries' spans index into it.
    pub(crate) fn names(&self) -> &str {
        &self.names
    }

    /// The name of `entry`, an entry of this patch.
    pub(crate) fn entry_name(&self, entry: &Entry) -> &str {
        self.name(entry.name)
    }

    /// The groups of the patch taken by value, so a merge can move the values out.
    pub(crate) fn into_groups(self) -> IntoGroups {
        IntoGroups {
            names: self.names,
            groups: self.groups.into_iter(),
            entries: self.entries.into_iter(),
        }
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

    /// The single patch that does what `self` then `later` do.
    ///
    /// For each trait, the change of `later` wins; traits only `later` names come after the
    /// ones of `self`. Merging the composition gives a profile equal to merging `self`, then
    /// `later`: the same traits with the same values (`==`). Only the order can differ, in
    /// two cases: a trait that `self` removes and `later` sets again goes to the end of its
    /// group when merged one by one, but keeps its place when merged composed; likewise a
    /// group that `self` empties (and so drops) and `later` fills again goes to the end of
    /// the profile one by one, but keeps its place composed.
    ///
    /// The composition can name more traits than one patch may ([`Limits`](crate::Limits)),
    /// so validate it before relying on it.
    ///
    /// # Examples
    ///
    /// ```
    /// use profile_traits::Patch;
    ///
    /// let first: Patch = r#"{"traits": {"Contact": {"email": "a@b.c", "phone": "1"}}}"#.parse().unwrap();
    /// let later: Patch = r#"{"traits": {"Contact": {"phone": null, "city": "Paris"}}}"#.parse().unwrap();
    /// let both: Patch = r#"{"traits": {"Contact": {"email": "a@b.c", "phone": null, "city": "Paris"}}}"#
    ///     .parse().unwrap();
    /// assert_eq!(first.compose(&later), both);
    /// ```
    pub fn compose(&self, later: &Patch) -> Patch {
        let mut composed = self.clone();
        for group in later.group_views() {
            // Named even when empty, so the composition names every group either names.
            composed.group_index_or_insert(group.name);
            for entry in group.entries {
                composed.insert(group.name, later.name(entry.name), entry.change.clone());
            }
        }
        composed
    }

    /// The patch in its wire form, as a `serde_json::Value`.
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("a patch always serializes: its keys are strings")
    }
}

impl FromStr for Patch {
    type Err = PatchError;

    /// Parses a patch from a JSON string, as [`Patch::from_slice`].
    fn from_str(s: &str) -> Result<Patch, PatchError> {
        parse_json(&mut serde_json::Deserializer::from_str(s), s.len())
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

impl<'de> Deserialize<'de> for Patch {
    /// Runs the checks of [`Patch::from_slice`]; the error message lists every violation.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut state = ParseState::default();
        let patch = PatchSeed {
            state: &mut state,
            capacity_hint: 0,
        }
        .deserialize(d)?;
        match PatchError::from_violations(state.violations) {
            None => Ok(patch),
            Some(error) => Err(de::Error::custom(error)),
        }
    }
}

/// Parses a whole JSON document into a patch, mapping syntax errors to violations.
fn parse_json<'de, R: serde_json::de::Read<'de>>(
    deserializer: &mut serde_json::Deserializer<R>,
    input_len: usize,
) -> Result<Patch, PatchError> {
    let mut state = ParseState::default();
    let parsed = PatchSeed {
        state: &mut state,
        capacity_hint: input_len,
    }
    .deserialize(&mut *deserializer)
    .and_then(|patch| deserializer.end().map(|()| patch));
    let error_pointer = state.error_pointer.take();
    finish(parsed, state, |e| {
        let text = e.to_string();
        let reason = text
            .rsplit_once(" at line ")
            .map_or(text.as_str(), |(reason, _)| reason);
        Violation::malformed(
            error_pointer.unwrap_or_default(),
            e.line(),
            e.column(),
            reason,
        )
    })
}

/// The patch, or every violation: the wire-format ones collected while parsing, and the
/// error that stopped the parser, if any.
fn finish<E>(
    parsed: Result<Patch, E>,
    mut state: ParseState,
    stopped: impl FnOnce(E) -> Violation,
) -> Result<Patch, PatchError> {
    match parsed {
        Ok(patch) => state.violations.into_result().map(|()| patch),
        Err(e) => {
            state.violations.push(stopped(e));
            state.violations.into_result().map(|()| Patch::new())
        }
    }
}

/// What parsing has found so far besides the patch itself.
#[derive(Default)]
struct ParseState {
    violations: Violations,
    /// Where the error that stopped the parser happened; set by the innermost visitor that
    /// saw it, so that outer ones leave it alone.
    error_pointer: Option<String>,
}

impl ParseState {
    fn note_error_at(&mut self, place: impl FnOnce() -> String) {
        if self.error_pointer.is_none() {
            self.error_pointer = Some(place());
        }
    }

    fn violation(&mut self, kind: ViolationKind, pointer: String, reason: impl fmt::Display) {
        self.violations.push(Violation::new(kind, pointer, reason));
    }
}

/// Handles a JSON object; any other JSON value is consumed and reported by what it is.
trait ObjectHandler<'de> {
    type Output;

    fn handle<A: MapAccess<'de>>(self, map: A) -> Result<Self::Output, A::Error>;
}

/// Drives an [`ObjectHandler`]: `Ok(output)` for an object, `Err(found)` for anything else.
struct ObjectVisitor<H>(H);

impl<'de, H: ObjectHandler<'de>> Visitor<'de> for ObjectVisitor<H> {
    type Value = Result<H::Output, &'static str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        self.0.handle(map).map(Ok)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Err("a boolean"))
    }

    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Err("a number"))
    }

    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Err("a number"))
    }

    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Err("a number"))
    }

    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Err("a string"))
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Err("null"))
    }

    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(Err("null"))
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Err("an array"))
    }
}

struct PatchSeed<'s> {
    state: &'s mut ParseState,
    /// The input's length in bytes, when known, to size the patch's buffers once.
    capacity_hint: usize,
}

impl<'de> DeserializeSeed<'de> for PatchSeed<'_> {
    type Value = Patch;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Patch, D::Error> {
        let state = self.state;
        let top_level = TopLevel {
            state: &mut *state,
            capacity_hint: self.capacity_hint,
        };
        match d.deserialize_any(ObjectVisitor(top_level))? {
            Ok(patch) => Ok(patch),
            Err(found) => {
                state.violation(
                    ViolationKind::NotAnObject,
                    String::new(),
                    format_args!("expected an object, found {found}"),
                );
                Ok(Patch::new())
            }
        }
    }
}

/// The document: `{"traits": ...}` and nothing else.
struct TopLevel<'s> {
    state: &'s mut ParseState,
    capacity_hint: usize,
}

impl<'de> ObjectHandler<'de> for TopLevel<'_> {
    type Output = Patch;

    fn handle<A: MapAccess<'de>>(self, mut map: A) -> Result<Patch, A::Error> {
        let state = self.state;
        let mut patch = Patch::with_capacity_for_input(self.capacity_hint);
        let mut traits_seen = false;
        while let Some(key) = map.next_key_seed(KeySeed)? {
            if key != "traits" {
                state.violation(
                    ViolationKind::UnexpectedKey,
                    pointer([key.as_ref()]),
                    format_args!("unexpected key `{key}`, a patch has only `traits`"),
                );
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            if std::mem::replace(&mut traits_seen, true) {
                state.violation(
                    ViolationKind::DuplicateKey,
                    "/traits".to_owned(),
                    "key `traits` appears more than once",
                );
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            let groups = map
                .next_value_seed(ObjectSeed(Groups {
                    state: &mut *state,
                    patch: &mut patch,
                }))
                .inspect_err(|_| state.note_error_at(|| "/traits".to_owned()))?;
            match groups {
                Ok(()) => {}
                Err(found) => state.violation(
                    ViolationKind::NotAnObject,
                    "/traits".to_owned(),
                    format_args!("expected an object, found {found}"),
                ),
            }
        }
        Ok(patch)
    }
}

/// Deserializes with an [`ObjectVisitor`].
struct ObjectSeed<H>(H);

impl<'de, H: ObjectHandler<'de>> DeserializeSeed<'de> for ObjectSeed<H> {
    type Value = Result<H::Output, &'static str>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(ObjectVisitor(self.0))
    }
}

/// The `traits` object: group names to groups.
struct Groups<'s, 'p> {
    state: &'s mut ParseState,
    patch: &'p mut Patch,
}

impl<'de> ObjectHandler<'de> for Groups<'_, '_> {
    type Output = ();

    fn handle<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Groups { state, patch } = self;
        // Names whose value was refused: seen all the same, so a repetition is still reported.
        let mut refused: Vec<Cow<'de, str>> = Vec::new();
        // Past a few keys, a set finds repetitions: linear, not quadratic, time on hostile input.
        let mut seen: Option<HashSet<Cow<'de, str>>> = None;
        while let Some(name) = map.next_key_seed(KeySeed)? {
            if seen.is_none() && patch.groups.len() + refused.len() > SCAN_KEYS {
                let names = patch.groups.iter();
                let names = names.map(|g| Cow::Owned(patch.name(g.name).to_owned()));
                seen = Some(names.chain(refused.iter().cloned()).collect());
            }
            let repeated = match &mut seen {
                Some(seen) => !seen.insert(name.clone()),
                None => patch.group_index(&name).is_some() || refused.contains(&name),
            };
            if repeated {
                state.violation(
                    ViolationKind::DuplicateKey,
                    group_pointer(&name),
                    format_args!("key `{name}` appears more than once"),
                );
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            let first_entry = patch.entries.len();
            let traits = map
                .next_value_seed(ObjectSeed(Traits {
                    state: &mut *state,
                    patch: &mut *patch,
                    group: &name,
                }))
                .inspect_err(|_| state.note_error_at(|| group_pointer(&name)))?;
            match traits {
                Ok(()) => {
                    let name = patch.push_name(&name);
                    let entries = first_entry..patch.entries.len();
                    patch.groups.push(GroupEntry { name, entries });
                }
                Err(found) => {
                    state.violation(
                        ViolationKind::NotAnObject,
                        group_pointer(&name),
                        format_args!("expected an object, found {found}"),
                    );
                    refused.push(name);
                }
            }
        }
        Ok(())
    }
}

/// One group's object: trait names to values or `null`, appended to the patch's entries.
struct Traits<'s, 'p, 'n> {
    state: &'s mut ParseState,
    patch: &'p mut Patch,
    group: &'n str,
}

impl<'de> ObjectHandler<'de> for Traits<'_, '_, '_> {
    type Output = ();

    fn handle<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Traits {
            state,
            patch,
            group,
        } = self;
        let first_entry = patch.entries.len();
        // Names whose value was refused: seen all the same, so a repetition is still reported.
        let mut refused: Vec<Cow<'de, str>> = Vec::new();
        // Past a few keys, a set finds repetitions: linear, not quadratic, time on hostile input.
        let mut seen: Option<HashSet<Cow<'de, str>>> = None;
        while let Some(name) = map.next_key_seed(KeySeed)? {
            let range = first_entry..patch.entries.len();
            if seen.is_none() && range.len() + refused.len() > SCAN_KEYS {
                let names = patch.entries[range.clone()].iter();
                let names = names.map(|e| Cow::Owned(patch.name(e.name).to_owned()));
                seen = Some(names.chain(refused.iter().cloned()).collect());
            }
            let repeated = match &mut seen {
                Some(seen) => !seen.insert(name.clone()),
                None => patch.position_in(range, &name).is_some() || refused.contains(&name),
            };
            if repeated {
                state.violation(
                    ViolationKind::DuplicateKey,
                    trait_pointer(group, &name),
                    format_args!("key `{name}` appears more than once"),
                );
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            let value = map
                .next_value_seed(TraitValueSeed)
                .inspect_err(|_| state.note_error_at(|| trait_pointer(group, &name)))?;
            let change = match value {
                ParsedValue::Value(value) => TraitChange::Set(value),
                ParsedValue::Null => TraitChange::Remove,
                ParsedValue::Invalid(found, None) => {
                    state.violation(
                        ViolationKind::InvalidValue,
                        trait_pointer(group, &name),
                        format_args!(
                            "expected a string, number, boolean, flat array of those, or null, found {found}"
                        ),
                    );
                    refused.push(name);
                    continue;
                }
                ParsedValue::Invalid(found, Some(index)) => {
                    state.violation(
                        ViolationKind::InvalidValue,
                        pointer(["traits", group, &name, &index.to_string()]),
                        format_args!("expected a string, number or boolean, found {found}"),
                    );
                    refused.push(name);
                    continue;
                }
            };
            let name = patch.push_name(&name);
            patch.entries.push(Entry { name, change });
        }
        Ok(())
    }
}

struct TraitValueSeed;

impl<'de> DeserializeSeed<'de> for TraitValueSeed {
    type Value = ParsedValue;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<ParsedValue, D::Error> {
        d.deserialize_any(ParsedValueVisitor)
    }
}
