//! The patch: a typed set or remove per trait, and its JSON wire form.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserialize, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, Serializer};

use crate::error::{PatchError, Violation, ViolationKind, Violations};
use crate::merge::{Change, ChangeKind};
use crate::pointer::{group_pointer, pointer, trait_pointer};
use crate::value::{ParsedValue, ParsedValueVisitor, TraitValue};

/// Keys of one object checked for repetition by scanning; past this many, by a set.
const SCAN_KEYS: usize = 32;

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

/// The changes a patch makes to one trait group, in document order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct GroupChanges {
    pub(crate) name: String,
    pub(crate) changes: Vec<(String, TraitChange)>,
}

impl GroupChanges {
    fn position(&self, name: &str) -> Option<usize> {
        self.changes.iter().position(|(n, _)| n == name)
    }
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
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Patch {
    pub(crate) groups: Vec<GroupChanges>,
}

impl Patch {
    /// An empty patch: valid, and changes nothing.
    pub fn new() -> Self {
        Patch::default()
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
        let mut deserializer = serde_json::Deserializer::from_slice(bytes);
        parse_json(&mut deserializer)
    }

    /// Parses a patch from a `serde_json::Value`, with the checks of [`Patch::from_slice`].
    ///
    /// # Errors
    ///
    /// As [`Patch::from_slice`], except that a `Value` cannot be malformed or repeat a key.
    pub fn from_value(value: &serde_json::Value) -> Result<Patch, PatchError> {
        let mut state = ParseState::default();
        let parsed = PatchSeed { state: &mut state }.deserialize(value);
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
        let group = self.group_mut(group);
        match group.position(name) {
            Some(index) => Some(std::mem::replace(&mut group.changes[index].1, change)),
            None => {
                group.changes.push((name.to_owned(), change));
                None
            }
        }
    }

    fn group_mut(&mut self, name: &str) -> &mut GroupChanges {
        let index = match self.groups.iter().position(|g| g.name == name) {
            Some(index) => index,
            None => {
                self.groups.push(GroupChanges {
                    name: name.to_owned(),
                    changes: Vec::new(),
                });
                self.groups.len() - 1
            }
        };
        &mut self.groups[index]
    }

    /// What the patch does to trait `name` of `group`, if it names it.
    pub fn get(&self, group: &str, name: &str) -> Option<&TraitChange> {
        let group = self.groups.iter().find(|g| g.name == group)?;
        group.position(name).map(|index| &group.changes[index].1)
    }

    /// Every `(group, trait, change)` of the patch, in document order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str, &TraitChange)> {
        self.groups.iter().flat_map(|group| {
            group
                .changes
                .iter()
                .map(move |(name, change)| (group.name.as_str(), name.as_str(), change))
        })
    }

    /// The names of the groups the patch names, in document order, including groups it names
    /// with no trait (`{"traits": {"Contact": {}}}`).
    pub fn group_names(&self) -> impl ExactSizeIterator<Item = &str> {
        self.groups.iter().map(|group| group.name.as_str())
    }

    /// The number of trait changes.
    pub fn len(&self) -> usize {
        self.groups.iter().map(|group| group.changes.len()).sum()
    }

    /// Whether the patch changes no trait.
    pub fn is_empty(&self) -> bool {
        self.groups.iter().all(|group| group.changes.is_empty())
    }

    /// The single patch that does what `self` then `later` do.
    ///
    /// For each trait, the change of `later` wins; traits only `later` names come after the
    /// ones of `self`. Merging the composition gives a profile equal to merging `self`, then
    /// `later`: the same traits with the same values. The order inside a group can differ in
    /// one case: a trait that `self` removes and `later` sets again goes to the end of its
    /// group when merged one by one, but keeps its place when merged composed.
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
        for group in &later.groups {
            let target = composed.group_mut(&group.name);
            for (name, change) in &group.changes {
                match target.position(name) {
                    Some(index) => target.changes[index].1 = change.clone(),
                    None => target.changes.push((name.clone(), change.clone())),
                }
            }
        }
        composed
    }

    /// The patch that makes `changes` again: each added or updated trait set to its new
    /// value, each removed trait removed. Merged into the profile the changes were made to,
    /// it gives the profile they made.
    pub fn from_changes(changes: &[Change]) -> Patch {
        let mut patch = Patch::new();
        for change in changes {
            let redo = match change.kind() {
                ChangeKind::Added { value } | ChangeKind::Updated { new: value, .. } => {
                    TraitChange::Set(value.clone())
                }
                ChangeKind::Removed { .. } => TraitChange::Remove,
            };
            patch.insert(change.group(), change.trait_name(), redo);
        }
        patch
    }

    /// The patch that takes `changes` back: each added trait removed, each updated or removed
    /// trait set to its old value. Merged into the profile the changes made, it gives back
    /// the profile they were made to (a removed trait comes back at the end of its group).
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
            };
            patch.insert(change.group(), change.trait_name(), undo);
        }
        patch
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
        let mut deserializer = serde_json::Deserializer::from_str(s);
        parse_json(&mut deserializer)
    }
}

impl Serialize for Patch {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry("traits", &GroupsOut(&self.groups))?;
        map.end()
    }
}

struct GroupsOut<'a>(&'a [GroupChanges]);

impl Serialize for GroupsOut<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for group in self.0 {
            map.serialize_entry(&group.name, &ChangesOut(&group.changes))?;
        }
        map.end()
    }
}

struct ChangesOut<'a>(&'a [(String, TraitChange)]);

impl Serialize for ChangesOut<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, change) in self.0 {
            match change {
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
        let patch = PatchSeed { state: &mut state }.deserialize(d)?;
        match PatchError::from_violations(state.violations) {
            None => Ok(patch),
            Some(error) => Err(de::Error::custom(error)),
        }
    }
}

/// Parses a whole JSON document into a patch, mapping syntax errors to violations.
fn parse_json<'de, R: serde_json::de::Read<'de>>(
    deserializer: &mut serde_json::Deserializer<R>,
) -> Result<Patch, PatchError> {
    let mut state = ParseState::default();
    let parsed = PatchSeed { state: &mut state }
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
}

impl<'de> DeserializeSeed<'de> for PatchSeed<'_> {
    type Value = Patch;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Patch, D::Error> {
        let state = self.state;
        match d.deserialize_any(ObjectVisitor(TopLevel { state: &mut *state }))? {
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
}

impl<'de> ObjectHandler<'de> for TopLevel<'_> {
    type Output = Patch;

    fn handle<A: MapAccess<'de>>(self, mut map: A) -> Result<Patch, A::Error> {
        let state = self.state;
        let mut patch = Patch::new();
        let mut traits_seen = false;
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
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
                .next_value_seed(ObjectSeed(Groups { state: &mut *state }))
                .inspect_err(|_| state.note_error_at(|| "/traits".to_owned()))?;
            match groups {
                Ok(groups) => patch.groups = groups,
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
struct Groups<'s> {
    state: &'s mut ParseState,
}

impl<'de> ObjectHandler<'de> for Groups<'_> {
    type Output = Vec<GroupChanges>;

    fn handle<A: MapAccess<'de>>(self, mut map: A) -> Result<Vec<GroupChanges>, A::Error> {
        let state = self.state;
        let mut groups: Vec<GroupChanges> = Vec::new();
        // Names whose value was refused: seen all the same, so a repetition is still reported.
        let mut refused: Vec<Cow<'de, str>> = Vec::new();
        // Past a few keys, a set finds repetitions: linear, not quadratic, time on hostile input.
        let mut seen: Option<HashSet<Cow<'de, str>>> = None;
        while let Some(name) = map.next_key::<Cow<'de, str>>()? {
            if seen.is_none() && groups.len() + refused.len() > SCAN_KEYS {
                let names = groups.iter().map(|g| Cow::Owned(g.name.clone()));
                seen = Some(names.chain(refused.iter().cloned()).collect());
            }
            let repeated = match &mut seen {
                Some(seen) => !seen.insert(name.clone()),
                None => groups.iter().any(|g| g.name == name) || refused.contains(&name),
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
            let changes = map
                .next_value_seed(ObjectSeed(Traits {
                    state: &mut *state,
                    group: &name,
                }))
                .inspect_err(|_| state.note_error_at(|| group_pointer(&name)))?;
            match changes {
                Ok(changes) => groups.push(GroupChanges {
                    name: name.into_owned(),
                    changes,
                }),
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
        Ok(groups)
    }
}

/// One group's object: trait names to values or `null`.
struct Traits<'s, 'n> {
    state: &'s mut ParseState,
    group: &'n str,
}

impl<'de> ObjectHandler<'de> for Traits<'_, '_> {
    type Output = Vec<(String, TraitChange)>;

    fn handle<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Output, A::Error> {
        let Traits { state, group } = self;
        let mut changes: Vec<(String, TraitChange)> = Vec::new();
        // Names whose value was refused: seen all the same, so a repetition is still reported.
        let mut refused: Vec<Cow<'de, str>> = Vec::new();
        // Past a few keys, a set finds repetitions: linear, not quadratic, time on hostile input.
        let mut seen: Option<HashSet<Cow<'de, str>>> = None;
        while let Some(name) = map.next_key::<Cow<'de, str>>()? {
            if seen.is_none() && changes.len() + refused.len() > SCAN_KEYS {
                let names = changes.iter().map(|(n, _)| Cow::Owned(n.clone()));
                seen = Some(names.chain(refused.iter().cloned()).collect());
            }
            let repeated = match &mut seen {
                Some(seen) => !seen.insert(name.clone()),
                None => changes.iter().any(|(n, _)| *n == name) || refused.contains(&name),
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
            match value {
                ParsedValue::Value(value) => changes.push((name.into_owned(), TraitChange::Set(value))),
                ParsedValue::Null => changes.push((name.into_owned(), TraitChange::Remove)),
                ParsedValue::Invalid(found, None) => {
                    state.violation(
                        ViolationKind::InvalidValue,
                        trait_pointer(group, &name),
                        format_args!("expected a string, number, boolean, flat array of those, or null, found {found}"),
                    );
                    refused.push(name);
                }
                ParsedValue::Invalid(found, Some(index)) => {
                    state.violation(
                        ViolationKind::InvalidValue,
                        pointer(["traits", group, &name, &index.to_string()]),
                        format_args!("expected a string, number or boolean, found {found}"),
                    );
                    refused.push(name);
                }
            }
        }
        Ok(changes)
    }
}

struct TraitValueSeed;

impl<'de> DeserializeSeed<'de> for TraitValueSeed {
    type Value = ParsedValue;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<ParsedValue, D::Error> {
        d.deserialize_any(ParsedValueVisitor)
    }
}
