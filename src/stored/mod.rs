//! The stored profile: per trait a live value or a tombstone, each with its stamp, plus the
//! horizon (SEMANTICS.md §6).

mod apply;
mod group;
mod join;
mod serde;

use std::cmp::Ordering;
use std::sync::Arc;

use crate::id::ProfileId;
use crate::names::{Name, NameMap};
use crate::profile::{Profile, TraitGroup};
use crate::schema::StoreSchema;
use crate::stamp::Stamp;
use crate::value::TraitValue;

use self::group::StoredGroup;

/// What a store keeps of one profile: per trait a live value or a tombstone (the record of a
/// removal), each with the [`Stamp`] of the write that made it, and a horizon.
///
/// Writes are applied with [`StoredProfile::apply`] in any order: whatever order a store
/// receives the same writes in, it ends at the same stored profile, serialized byte for byte
/// the same, and an old write that arrives late never overwrites a newer one. The API's
/// profile is [`StoredProfile::view`]: live traits only.
///
/// Groups and traits are kept in the schema's declaration order (traits the schema does not
/// declare follow, by name). The order is taken from the schema by `apply`, which places new
/// groups and traits; a profile made by [`StoredProfile::from_profile`] or deserialized keeps
/// the order it came with until then, and [`StoredProfile::sort_by_schema`] sorts it at once.
///
/// Equality compares ids, horizon, and the entries in order.
///
/// # Stored form
///
/// ```json
/// {"id": "mem_profile_...", "createdAt": "...",
///  "horizon": {"time": "0000-01-01T00:00:00Z", "tiebreak": 0},
///  "traits": {"Contact": {
///     "email": {"value": "a@b.c", "time": "2024-10-07T15:39:25.123456Z", "tiebreak": 7},
///     "phone": {"value": null, "time": "2024-10-07T15:40:00Z", "tiebreak": 8}}}}
/// ```
///
/// `"value": null` is a tombstone. `id` and `createdAt` are left out when unknown. The form
/// round-trips exactly; deserializing refuses unknown members and repeated keys.
///
/// # Examples
///
/// ```
/// use profile_traits::{ChangeKind, Patch, Stamp, StoreSchema, StoredProfile};
///
/// let schema: StoreSchema = serde_json::from_str(
///     r#"[{"displayName": "Contact", "traits": {"email": {"dataType": "STRING"}}}]"#)?;
/// let new: Patch = r#"{"traits": {"Contact": {"email": "new@b.c"}}}"#.parse()?;
/// let old: Patch = r#"{"traits": {"Contact": {"email": "old@b.c"}}}"#.parse()?;
///
/// let mut profile = StoredProfile::new();
/// profile.apply(&new, &schema, "2024-10-07T15:40:00Z".parse()?)?;
/// // The older write arrives late: it is reported stale and changes nothing.
/// let changes = profile.apply(&old, &schema, "2024-10-07T15:39:00Z".parse()?)?;
/// assert_eq!(changes[0].kind(), &ChangeKind::Stale { by: "2024-10-07T15:40:00Z".parse()? });
/// assert_eq!(
///     serde_json::to_string(&profile.view())?,
///     r#"{"traits":{"Contact":{"email":"new@b.c"}}}"#
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct StoredProfile {
    id: Option<ProfileId>,
    created_at: Option<String>,
    horizon: Stamp,
    groups: NameMap<StoredGroup>,
    /// Whether the groups' ranks come from a schema (else from their stored position), so
    /// that `apply` ranks them once, not at every new group.
    groups_ranked: bool,
}

/// One trait's entry: a live value or a tombstone, with the stamp of the write that made it.
#[derive(Debug, Clone)]
struct Entry {
    /// The trait's place in its group's declaration order ([`UNDECLARED`] when unknown).
    rank: u32,
    stamp: Stamp,
    /// `None` is a tombstone.
    value: Option<TraitValue>,
}

/// The rank of a group or trait the schema does not declare: after the declared ones.
const UNDECLARED: u32 = u32::MAX;

/// One trait of a stored profile, as [`StoredProfile::traits`] lists it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StoredTrait<'a> {
    group: &'a str,
    name: &'a str,
    value: Option<&'a TraitValue>,
    stamp: Stamp,
}

impl<'a> StoredTrait<'a> {
    /// The trait group's name.
    pub fn group(&self) -> &'a str {
        self.group
    }

    /// The trait's name.
    pub fn name(&self) -> &'a str {
        self.name
    }

    /// The live value, or `None` for a tombstone.
    pub fn value(&self) -> Option<&'a TraitValue> {
        self.value
    }

    /// The stamp of the write that made this entry.
    pub fn stamp(&self) -> Stamp {
        self.stamp
    }
}

impl Default for StoredProfile {
    fn default() -> Self {
        StoredProfile::new()
    }
}

impl StoredProfile {
    /// An empty stored profile with no id and the smallest horizon ([`Stamp::MIN`]).
    pub fn new() -> Self {
        StoredProfile {
            id: None,
            created_at: None,
            horizon: Stamp::MIN,
            groups: NameMap::default(),
            groups_ranked: true,
        }
    }

    /// The stored form of a plain profile: every trait live at `stamp`, in the profile's
    /// order; `id` and `createdAt` carried over.
    pub fn from_profile(profile: Profile, stamp: Stamp) -> Self {
        let mut stored = StoredProfile::new();
        stored.id = profile.id().cloned();
        stored.created_at = profile.created_at().map(str::to_owned);
        for (group_rank, (group_name, group)) in profile.groups.into_iter().enumerate() {
            let group = Arc::unwrap_or_clone(group);
            let mut traits = NameMap::with_capacity(group.len());
            for (rank, (name, value)) in group.into_traits().enumerate() {
                let entry = Entry {
                    rank: rank_of(rank),
                    stamp,
                    value: Some(value),
                };
                traits.push_new(name.hash(), name, entry);
            }
            let group = StoredGroup::new(rank_of(group_rank), traits);
            stored.groups.insert(group_name, group);
        }
        stored.groups_ranked = false;
        stored
    }

    /// The API's view: live traits only, in the stored order; groups with no live trait are
    /// left out.
    pub fn view(&self) -> Profile {
        let mut profile = Profile::new();
        profile.set_id(self.id.clone());
        profile.set_created_at(self.created_at.clone());
        for (name, group) in &self.groups {
            let traits: NameMap<TraitValue> = group
                .iter()
                .filter_map(|(name, entry)| Some((name.clone(), entry.value.clone()?)))
                .collect();
            if !traits.is_empty() {
                profile
                    .groups
                    .insert(name.clone(), Arc::new(TraitGroup::from_traits(traits)));
            }
        }
        profile
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

    /// The horizon: writes at or below it to traits with no entry are stale.
    pub fn horizon(&self) -> Stamp {
        self.horizon
    }

    /// The live value of trait `name` of `group`, if any.
    pub fn get(&self, group: &str, name: &str) -> Option<&TraitValue> {
        self.entry(group, name)?.value.as_ref()
    }

    /// The entry of trait `name` of `group`, live or tombstone, if any.
    pub fn get_entry(&self, group: &str, name: &str) -> Option<StoredTrait<'_>> {
        let (group, traits) = self.groups.get_key_value(group)?;
        let (name, entry) = traits.get(name)?;
        Some(StoredTrait {
            group,
            name,
            value: entry.value.as_ref(),
            stamp: entry.stamp,
        })
    }

    /// Every entry, live or tombstone, in the stored order.
    pub fn traits(&self) -> impl Iterator<Item = StoredTrait<'_>> {
        self.groups.iter().flat_map(|(group, stored)| {
            stored.iter().map(move |(name, entry)| StoredTrait {
                group,
                name,
                value: entry.value.as_ref(),
                stamp: entry.stamp,
            })
        })
    }

    /// The number of live traits.
    pub fn live_count(&self) -> usize {
        self.traits().filter(|t| t.value.is_some()).count()
    }

    /// Whether the profile holds no entry at all, live or tombstone.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// Sorts groups and traits into `schema`'s declaration order (traits it does not declare
    /// follow, by name), as [`StoredProfile::apply`] keeps them; for a profile made by
    /// [`StoredProfile::from_profile`], deserialized, or joined from such profiles.
    pub fn sort_by_schema(&mut self, schema: &StoreSchema) {
        for (hash, name, group) in self.groups.iter_mut_hashed() {
            group.rank = schema.rank_of_group(hash, name);
            let definition = schema.group(name);
            group.rank_for(schema.instance(), |hash, trait_name| {
                definition.map_or(UNDECLARED, |d| d.rank_of_trait(hash, trait_name))
            });
        }
        self.groups.sort_by(canonical_groups);
        self.groups_ranked = true;
    }

    fn entry(&self, group: &str, name: &str) -> Option<&Entry> {
        self.groups.get(group)?.get(name).map(|(_, entry)| entry)
    }
}

fn rank_of(index: usize) -> u32 {
    u32::try_from(index).unwrap_or(UNDECLARED)
}

/// The canonical order of groups: by rank, then by name.
fn canonical_groups(a: &Name, x: &StoredGroup, b: &Name, y: &StoredGroup) -> Ordering {
    (x.rank, a).cmp(&(y.rank, b))
}

/// The canonical order of traits in a group: by rank, then by name.
fn canonical_traits(a: &Name, x: &Entry, b: &Name, y: &Entry) -> Ordering {
    (x.rank, a).cmp(&(y.rank, b))
}

impl PartialEq for StoredProfile {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
            && self.created_at == other.created_at
            && self.horizon == other.horizon
            && self.groups.len() == other.groups.len()
            && self.traits().eq(other.traits())
    }
}

/// Which of two writes to one trait wins (SEMANTICS.md §6): the greater stamp; at equal
/// stamps a removal beats a set, and of two sets the value whose compact JSON text is
/// greater bytewise. `Equal` means the same write: the same JSON text, not `==` values
/// (`0.0 == -0.0`, but they are different writes, and taking them for the same one would
/// keep whichever arrived first).
#[inline]
fn compare_writes(a: (Stamp, Option<&TraitValue>), b: (Stamp, Option<&TraitValue>)) -> Ordering {
    a.0.cmp(&b.0).then_with(|| match (a.1, b.1) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(x), Some(y)) => compact_json(x).cmp(&compact_json(y)),
    })
}

fn compact_json(value: &TraitValue) -> Vec<u8> {
    serde_json::to_vec(value).expect("a trait value always serializes")
}
