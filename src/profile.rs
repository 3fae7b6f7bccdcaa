//! The profile: its id, creation time, and trait groups of trait values.

use std::fmt;
use std::sync::Arc;

use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeStruct, Serializer};

use crate::id::ProfileId;
use crate::names::{
    self, KeySeed, Name, NameMap, deserialize_unique_map, deserialize_unique_map_into,
};
use crate::value::TraitValue;

/// One trait group of a profile: trait names to values, in insertion order.
///
/// A group inside a [`Profile`] is never empty: a group left with no traits is dropped.
///
/// Equality compares the traits as a map, like JSON objects: two groups with
/// the same traits in another order are equal. Order is still kept and serialized.
#[derive(Debug, Clone, Default)]
pub struct TraitGroup {
    traits: NameMap<TraitValue>,
    /// Traits added once `traits` had no spare room, after them in order. A profile is read
    /// with no spare room (its heap is kept small); growing `traits` in place would copy the
    /// whole group, cold, for each group a patch adds to: most of the memory traffic of a
    /// merge that adds a few traits.
    added: Option<Box<NameMap<TraitValue>>>,
}

/// Where a trait is in a group kept in two parts (a [`TraitGroup`], or a stored profile's
/// group): in its first part or among the traits added since.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Slot {
    First(usize),
    Added(usize),
}

impl TraitGroup {
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        TraitGroup {
            traits: NameMap::with_capacity(capacity),
            added: None,
        }
    }

    /// A group of `traits`, in their order.
    pub(crate) fn from_traits(traits: NameMap<TraitValue>) -> Self {
        TraitGroup {
            traits,
            added: None,
        }
    }

    /// The traits, in order, taken by value.
    pub(crate) fn into_traits(self) -> impl Iterator<Item = (Name, TraitValue)> {
        let added = self.added.into_iter().flat_map(|added| *added);
        self.traits.into_iter().chain(added)
    }

    /// The value of the trait `name`, if present.
    pub fn get(&self, name: &str) -> Option<&TraitValue> {
        let slot = self.find_str(name)?;
        Some(self.value(slot))
    }

    /// Whether the trait `name` is present.
    pub fn contains(&self, name: &str) -> bool {
        self.find_str(name).is_some()
    }

    /// The traits, in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &TraitValue)> {
        let added = self.added.as_deref().map(NameMap::iter);
        Traits {
            first: self.traits.iter(),
            added,
        }
    }

    /// The number of traits.
    pub fn len(&self) -> usize {
        self.traits.len() + self.added.as_ref().map_or(0, |added| added.len())
    }

    /// Whether the group has no trait.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Where trait `name`, whose hash is `hash`, is: `name` is the key a schema shares.
    pub(crate) fn find(&self, hash: u32, name: &Name) -> Option<Slot> {
        if let Some(at) = self.traits.find_name(hash, name) {
            return Some(Slot::First(at));
        }
        let added = self.added.as_ref()?;
        added.find_name(hash, name).map(Slot::Added)
    }

    fn find_str(&self, name: &str) -> Option<Slot> {
        if let Some(at) = self.traits.get_index_of(name) {
            return Some(Slot::First(at));
        }
        self.added.as_ref()?.get_index_of(name).map(Slot::Added)
    }

    pub(crate) fn value(&self, slot: Slot) -> &TraitValue {
        match slot {
            Slot::First(at) => &self.traits[at],
            Slot::Added(at) => &self.added.as_ref().expect("a slot among the added")[at],
        }
    }

    pub(crate) fn entry_mut(&mut self, slot: Slot) -> (&Name, &mut TraitValue) {
        let (map, at) = self.part_mut(slot);
        map.get_index_mut(at).expect("a slot of this group")
    }

    /// Adds trait `key`, known absent, whose hash is `hash`, at the end; `room` is how many
    /// traits may be added with it, for the one allocation of the added part.
    pub(crate) fn push(
        &mut self,
        hash: u32,
        key: Name,
        value: TraitValue,
        room: usize,
    ) -> &TraitValue {
        if self.added.is_none() && self.traits.has_room() {
            let at = self.traits.push_new(hash, key, value);
            return &self.traits[at];
        }
        let added = self
            .added
            .get_or_insert_with(|| Box::new(NameMap::with_capacity(room.max(1))));
        let at = added.push_new(hash, key, value);
        &added[at]
    }

    /// The position of `slot` among the group's traits and the holes removed ones left:
    /// below [`TraitGroup::end`].
    pub(crate) fn position(&self, slot: Slot) -> usize {
        match slot {
            Slot::First(at) => at,
            Slot::Added(at) => self.traits.end() + at,
        }
    }

    /// One past the last [`TraitGroup::position`].
    pub(crate) fn end(&self) -> usize {
        self.traits.end() + self.added.as_ref().map_or(0, |added| added.end())
    }

    /// A copy of the group, in one part, with room for `room` more traits; each value is
    /// `copy(position, value)` ([`TraitGroup::position`]), and `None` leaves the trait out.
    pub(crate) fn copy_with(
        &self,
        room: usize,
        mut copy: impl FnMut(usize, &TraitValue) -> Option<TraitValue>,
    ) -> TraitGroup {
        let mut traits = NameMap::with_capacity(self.len() + room);
        self.traits.copy_into(&mut traits, 0, &mut copy);
        if let Some(added) = &self.added {
            added.copy_into(&mut traits, self.traits.end(), &mut copy);
        }
        TraitGroup::from_traits(traits)
    }

    /// Removes the trait at `slot`, leaving a hole: the later ones keep their positions
    /// until the holes outnumber the traits ([`NameMap::remove_leaving_hole`]).
    pub(crate) fn remove(&mut self, slot: Slot) -> (Name, TraitValue) {
        let (map, at) = self.part_mut(slot);
        map.remove_leaving_hole(at, TraitValue::Bool(false))
    }

    fn part_mut(&mut self, slot: Slot) -> (&mut NameMap<TraitValue>, usize) {
        match slot {
            Slot::First(at) => (&mut self.traits, at),
            Slot::Added(at) => (
                self.added.as_deref_mut().expect("a slot among the added"),
                at,
            ),
        }
    }
}

/// The traits of a [`TraitGroup`], in order.
struct Traits<'a> {
    first: names::Iter<'a, TraitValue>,
    added: Option<names::Iter<'a, TraitValue>>,
}

impl<'a> Iterator for Traits<'a> {
    type Item = (&'a str, &'a TraitValue);

    fn next(&mut self) -> Option<Self::Item> {
        let (name, value) = self.first.next().or_else(|| self.added.as_mut()?.next())?;
        Some((&**name, value))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let len = self.first.len() + self.added.as_ref().map_or(0, ExactSizeIterator::len);
        (len, Some(len))
    }
}

impl ExactSizeIterator for Traits<'_> {}

impl PartialEq for TraitGroup {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len()
            && self
                .iter()
                .all(|(name, value)| other.get(name) == Some(value))
    }
}

impl Serialize for TraitGroup {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.len()))?;
        for (name, value) in self.iter() {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for TraitGroup {
    /// Refuses a key that appears twice and values outside the trait value domain.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_unique_map(d).map(TraitGroup::from_traits)
    }
}

/// A profile: the API's `{"id"?, "createdAt"?, "traits": {group: {trait: value}}}`.
///
/// Groups and traits keep insertion order. Groups are shared copy-on-write between a profile
/// and the profiles [`merge`](crate::merge) makes from it, so an immutable merge copies only
/// the groups it changes. Equality compares groups and traits as maps (order is not
/// compared, as for JSON objects); the order is still kept and serialized.
///
/// A profile is not checked against a schema: it holds what the store holds. Patches are.
///
/// # Examples
///
/// ```
/// use profile_traits::{Profile, TraitValue};
///
/// let mut profile: Profile = serde_json::from_str(
///     r#"{"traits": {"Contact": {"email": "a@b.c"}}}"#,
/// ).unwrap();
/// profile.insert("Contact", "phone", TraitValue::from("+13175551234"));
/// assert_eq!(profile.get("Contact", "email"), Some(&TraitValue::from("a@b.c")));
/// assert_eq!(
///     serde_json::to_string(&profile).unwrap(),
///     r#"{"traits":{"Contact":{"email":"a@b.c","phone":"+13175551234"}}}"#
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Profile {
    id: Option<ProfileId>,
    created_at: Option<String>,
    pub(crate) groups: NameMap<Arc<TraitGroup>>,
}

impl Profile {
    /// An empty profile with no id.
    pub fn new() -> Self {
        Profile::default()
    }

    /// The profile's id, if known.
    pub fn id(&self) -> Option<&ProfileId> {
        self.id.as_ref()
    }

    /// Sets the profile's id.
    pub fn set_id(&mut self, id: Option<ProfileId>) {
        self.id = id;
    }

    /// When the profile was created, as the API's date-time string, if known.
    pub fn created_at(&self) -> Option<&str> {
        self.created_at.as_deref()
    }

    /// Sets the creation time (passed through as given).
    pub fn set_created_at(&mut self, created_at: Option<String>) {
        self.created_at = created_at;
    }

    /// The trait group `name`, if present.
    pub fn group(&self, name: &str) -> Option<&TraitGroup> {
        self.groups.get(name).map(|group| &**group)
    }

    /// The value of trait `name` in group `group`, if present.
    pub fn get(&self, group: &str, name: &str) -> Option<&TraitValue> {
        self.group(group)?.get(name)
    }

    /// The trait groups, in order; none is empty.
    pub fn groups(&self) -> impl ExactSizeIterator<Item = (&str, &TraitGroup)> {
        self.groups.iter().map(|(name, group)| (&**name, &**group))
    }

    /// The number of trait groups.
    pub fn len(&self) -> usize {
        self.groups.len()
    }

    /// Whether the profile has no trait.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// The number of traits over all groups.
    pub fn trait_count(&self) -> usize {
        self.groups.values().map(|group| group.len()).sum()
    }

    /// Sets trait `name` of `group` to `value`, without any schema check; returns the old
    /// value.
    ///
    /// This is for building profiles, for example from a store. Requests go through
    /// [`merge`](crate::merge), which checks them against the schema.
    pub fn insert(&mut self, group: &str, name: &str, value: TraitValue) -> Option<TraitValue> {
        let index = match self.groups.get_index_of(group) {
            Some(index) => index,
            None => self.groups.insert_full(Name::from(group), Arc::default()).0,
        };
        let group = Arc::make_mut(&mut self.groups[index]);
        match group.find_str(name) {
            Some(slot) => Some(std::mem::replace(group.entry_mut(slot).1, value)),
            None => {
                let name = Name::from(name);
                group.push(name.hash(), name, value, 1);
                None
            }
        }
    }

    /// Removes trait `name` of `group`, dropping the group if it is left empty; returns the
    /// old value.
    pub fn remove(&mut self, group: &str, name: &str) -> Option<TraitValue> {
        let index = self.groups.get_index_of(group)?;
        let slot = self.groups[index].find_str(name)?;
        let group = Arc::make_mut(&mut self.groups[index]);
        let (_, old) = group.remove(slot);
        if group.is_empty() {
            self.groups.shift_remove_index(index);
        }
        Some(old)
    }

    /// The profile as a `serde_json::Value`.
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("a profile always serializes: its keys are strings")
    }
}

impl Serialize for Profile {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let fields = 1 + usize::from(self.id.is_some()) + usize::from(self.created_at.is_some());
        let mut s = serializer.serialize_struct("Profile", fields)?;
        if let Some(id) = &self.id {
            s.serialize_field("id", id)?;
        }
        if let Some(created_at) = &self.created_at {
            s.serialize_field("createdAt", created_at)?;
        }
        s.serialize_field("traits", &GroupsOut(&self.groups))?;
        s.end()
    }
}

struct GroupsOut<'a>(&'a NameMap<Arc<TraitGroup>>);

impl Serialize for GroupsOut<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, group) in self.0 {
            map.serialize_entry(&**name, &**group)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Profile {
    /// Refuses unknown members, duplicate keys, and values outside the trait value domain;
    /// drops empty groups, so the result is in the one canonical form.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ProfileVisitor;

        impl<'de> Visitor<'de> for ProfileVisitor {
            type Value = Profile;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a profile object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Profile, A::Error> {
                let mut profile = Profile::new();
                let mut seen = [false; 3];
                while let Some(key) = map.next_key_seed(KeySeed)? {
                    let slot = match key.as_ref() {
                        "id" => 0,
                        "createdAt" => 1,
                        "traits" => 2,
                        other => {
                            return Err(de::Error::unknown_field(
                                other,
                                &["id", "createdAt", "traits"],
                            ));
                        }
                    };
                    if std::mem::replace(&mut seen[slot], true) {
                        return Err(de::Error::custom(format_args!("duplicate key `{key}`")));
                    }
                    match slot {
                        0 => profile.id = map.next_value()?,
                        1 => profile.created_at = map.next_value()?,
                        _ => {
                            profile.groups = map.next_value_seed(UniqueGroups)?;
                            profile.groups.retain(|_, group| !group.is_empty());
                        }
                    }
                }
                Ok(profile)
            }
        }

        d.deserialize_map(ProfileVisitor)
    }
}

struct UniqueGroups;

impl<'de> de::DeserializeSeed<'de> for UniqueGroups {
    type Value = NameMap<Arc<TraitGroup>>;

    /// Each group shared as it is read, so that it lies beside its traits.
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        deserialize_unique_map_into(d, Arc::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(profile: &Profile) -> String {
        serde_json::to_string(profile).unwrap()
    }

    #[test]
    fn traits_added_to_a_group_read_with_no_spare_room_keep_their_order() {
        // Read from JSON: no spare room, so what is added goes to the group's added part.
        let mut profile: Profile =
            serde_json::from_str(r#"{"traits": {"G": {"a": 1, "b": 2}}}"#).unwrap();
        profile.insert("G", "c", TraitValue::from(3));
        profile.insert("G", "d", TraitValue::from(4));
        assert_eq!(
            text(&profile),
            r#"{"traits":{"G":{"a":1,"b":2,"c":3,"d":4}}}"#
        );
        assert_eq!(profile.get("G", "c"), Some(&TraitValue::from(3)));
        assert_eq!(profile.group("G").unwrap().len(), 4);

        // Removing from either part keeps the others in order; replacing keeps the place.
        assert_eq!(profile.remove("G", "a"), Some(TraitValue::from(1)));
        assert_eq!(profile.remove("G", "c"), Some(TraitValue::from(3)));
        profile.insert("G", "d", TraitValue::from(5));
        assert_eq!(text(&profile), r#"{"traits":{"G":{"b":2,"d":5}}}"#);

        // Equal to the same traits read whole; emptied both parts, the group is dropped.
        let read: Profile = serde_json::from_str(&text(&profile)).unwrap();
        assert_eq!(profile, read);
        profile.remove("G", "b");
        profile.remove("G", "d");
        assert!(profile.is_empty());
    }
}
