//! The stored form of a [`StoredProfile`]: see its documentation.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer};
use serde::ser::{Serialize, SerializeMap, SerializeStruct, Serializer};

use super::{Entry, StoredGroup, StoredProfile, UNDECLARED, rank_of};
use crate::id::ProfileId;
use crate::names::{NameMap, deserialize_unique_map, deserialize_unique_map_into};
use crate::stamp::Stamp;
use crate::value::TraitValue;

impl Serialize for StoredProfile {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let fields = 2 + usize::from(self.id.is_some()) + usize::from(self.created_at.is_some());
        let mut s = serializer.serialize_struct("StoredProfile", fields)?;
        if let Some(id) = &self.id {
            s.serialize_field("id", id)?;
        }
        if let Some(created_at) = &self.created_at {
            s.serialize_field("createdAt", created_at)?;
        }
        s.serialize_field("horizon", &self.horizon)?;
        s.serialize_field("traits", &GroupsOut(&self.groups))?;
        s.end()
    }
}

struct GroupsOut<'a>(&'a NameMap<StoredGroup>);

impl Serialize for GroupsOut<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, group) in self.0 {
            map.serialize_entry(&**name, &TraitsOut(group))?;
        }
        map.end()
    }
}

struct TraitsOut<'a>(&'a StoredGroup);

impl Serialize for TraitsOut<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, entry) in self.0.iter() {
            map.serialize_entry(&**name, entry)?;
        }
        map.end()
    }
}

impl Serialize for Entry {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("Entry", 3)?;
        s.serialize_field("value", &self.value)?;
        s.serialize_field("time", &self.stamp.to_string())?;
        s.serialize_field("tiebreak", &self.stamp.tiebreak())?;
        s.end()
    }
}

/// The stored form as read.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct StoredWire {
    #[serde(default)]
    id: Option<ProfileId>,
    #[serde(default)]
    created_at: Option<String>,
    horizon: Stamp,
    #[serde(deserialize_with = "deserialize_groups")]
    traits: NameMap<StoredGroup>,
}

/// The groups, ranked by their stored position, each made a [`StoredGroup`] as it is read.
fn deserialize_groups<'de, D: Deserializer<'de>>(d: D) -> Result<NameMap<StoredGroup>, D::Error> {
    let mut groups =
        deserialize_unique_map_into(d, |GroupWire(traits)| StoredGroup::new(UNDECLARED, traits))?;
    if let Some((name, _)) = groups.iter().find(|(_, group)| group.is_empty()) {
        return Err(de::Error::custom(EmptyGroup(name)));
    }
    for (rank, group) in groups.values_mut().enumerate() {
        group.rank = rank_of(rank);
    }
    Ok(groups)
}

/// A group's entries as read, ranked by their stored position: the map the stored group
/// keeps, not a copy of it.
struct GroupWire(NameMap<Entry>);

impl<'de> Deserialize<'de> for GroupWire {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut traits: NameMap<Entry> = deserialize_unique_map(d)?;
        for (rank, entry) in traits.values_mut().enumerate() {
            entry.rank = rank_of(rank);
        }
        Ok(GroupWire(traits))
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryWire<'a> {
    value: Option<TraitValue>,
    /// Borrowed from the input where it can be (a time has no escapes), not allocated.
    #[serde(borrow)]
    time: Cow<'a, str>,
    tiebreak: u64,
}

impl<'de> Deserialize<'de> for Entry {
    /// An entry ranked last, until its group is read whole.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let wire = EntryWire::deserialize(d)?;
        Ok(Entry {
            rank: UNDECLARED,
            stamp: Stamp::with_text(&wire.time, wire.tiebreak).map_err(de::Error::custom)?,
            value: wire.value,
        })
    }
}

impl<'de> Deserialize<'de> for StoredProfile {
    /// Refuses unknown members, repeated keys, values outside the trait value domain,
    /// malformed stamps and empty groups; keeps the order as stored.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let wire = StoredWire::deserialize(d)?;
        Ok(StoredProfile {
            id: wire.id,
            created_at: wire.created_at,
            horizon: wire.horizon,
            groups: wire.traits,
            groups_ranked: false,
        })
    }
}

struct EmptyGroup<'a>(&'a str);

impl fmt::Display for EmptyGroup<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "trait group `{}` holds no entry", self.0)
    }
}
