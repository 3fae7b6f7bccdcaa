//! Joining two stored profiles, and purging tombstones below a horizon (SEMANTICS.md §6).

use std::cmp::Ordering;

use super::{
    Entry, StoredGroup, StoredProfile, canonical_groups, canonical_traits, compare_writes,
};
use crate::names::{Name, NameMap};
use crate::stamp::Stamp;

impl StoredProfile {
    /// The profile that holds the writes of both `self` and `other`: replicas of one profile,
    /// or two profiles found to be one customer.
    ///
    /// Per trait, the winning entry of the two under the rules of
    /// [`StoredProfile::apply`]. An entry only one side has competes with a tombstone at the
    /// other side's horizon (that side refuses the trait's writes at or below it): when the
    /// entry is not newer, it gives way to that tombstone, which is left out when it lies
    /// at the joined horizon. The horizon is the greater of the two; `id` and `createdAt` are those of the profile created
    /// first (an unknown `createdAt` counts as latest), then of the smaller id.
    ///
    /// Join is commutative, associative and idempotent, and joining the profiles built from
    /// two sets of writes gives the profile built from both sets. Both profiles should be in
    /// one schema's order (as [`StoredProfile::apply`] leaves them); otherwise
    /// [`StoredProfile::sort_by_schema`] the result.
    ///
    /// # Examples
    ///
    /// ```
    /// use profile_traits::{Patch, Stamp, StoreSchema, StoredProfile};
    ///
    /// let schema: StoreSchema = serde_json::from_str(r#"[{"displayName": "Contact", "traits": {
    ///     "email": {"dataType": "STRING"}, "phone": {"dataType": "STRING"}}}]"#)?;
    /// let mut a = StoredProfile::new();
    /// a.apply(&r#"{"traits": {"Contact": {"email": "a@b.c"}}}"#.parse()?, &schema, Stamp::new(1, 0)?)?;
    /// let mut b = StoredProfile::new();
    /// b.apply(&r#"{"traits": {"Contact": {"phone": "+1", "email": null}}}"#.parse()?, &schema, Stamp::new(2, 0)?)?;
    ///
    /// let joined = a.join(&b);
    /// assert_eq!(joined, b.join(&a));
    /// assert_eq!(serde_json::to_string(&joined.view())?, r#"{"traits":{"Contact":{"phone":"+1"}}}"#);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn join(&self, other: &StoredProfile) -> StoredProfile {
        let first = if created_first(self, other) {
            self
        } else {
            other
        };
        let mut groups = NameMap::default();
        for (name, group) in &self.groups {
            let theirs = other.groups.get(name);
            let traits = join_traits(Some(group), self.horizon, theirs, other.horizon);
            insert_if_not_empty(&mut groups, name, group.rank, traits);
        }
        for (name, group) in &other.groups {
            if !self.groups.contains_key(name) {
                let traits = join_traits(None, self.horizon, Some(group), other.horizon);
                insert_if_not_empty(&mut groups, name, group.rank, traits);
            }
        }
        groups.sort_by(canonical_groups);
        StoredProfile {
            id: first.id.clone(),
            created_at: first.created_at.clone(),
            horizon: self.horizon.max(other.horizon),
            groups,
            groups_ranked: false,
        }
    }

    /// Removes the tombstones at or below `horizon` and raises the horizon to it (never
    /// lowers it): from then on, writes at or below the horizon to traits with no entry are
    /// stale. Live traits are kept whatever their stamp.
    ///
    /// # Examples
    ///
    /// ```
    /// use profile_traits::{Patch, Stamp, StoreSchema, StoredProfile};
    ///
    /// let schema: StoreSchema = serde_json::from_str(
    ///     r#"[{"displayName": "Contact", "traits": {"phone": {"dataType": "STRING"}}}]"#)?;
    /// let mut profile = StoredProfile::new();
    /// profile.apply(&r#"{"traits": {"Contact": {"phone": null}}}"#.parse()?, &schema, Stamp::new(5, 0)?)?;
    /// assert!(profile.get_entry("Contact", "phone").is_some());
    /// profile.purge(Stamp::new(5, 0)?);
    /// assert!(profile.is_empty());
    /// assert_eq!(profile.horizon(), Stamp::new(5, 0)?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn purge(&mut self, horizon: Stamp) {
        for group in self.groups.values_mut() {
            group.retain(|entry| entry.value.is_some() || entry.stamp > horizon);
        }
        self.groups.retain(|_, group| !group.is_empty());
        self.horizon = self.horizon.max(horizon);
    }
}

/// Whether `a` was created before `b`: the earlier `createdAt` (an unknown one counts as
/// latest; compared as instants when both parse, else as text), then the smaller id.
fn created_first(a: &StoredProfile, b: &StoredProfile) -> bool {
    let key = |p: &'_ StoredProfile| {
        let text = p.created_at.as_deref();
        let instant = text.and_then(|t| t.parse::<Stamp>().ok());
        (
            text.is_none(),
            instant,
            text.map(str::to_owned),
            p.id.clone(),
        )
    };
    key(a) <= key(b)
}

/// The entries of one group joined: `a` and `b` are the group in each profile, if there,
/// and `a_horizon`, `b_horizon` the profiles' horizons.
fn join_traits(
    a: Option<&StoredGroup>,
    a_horizon: Stamp,
    b: Option<&StoredGroup>,
    b_horizon: Stamp,
) -> NameMap<Entry> {
    let horizon = a_horizon.max(b_horizon);
    let mut traits = NameMap::default();
    for (name, entry) in a.iter().flat_map(|group| group.iter()) {
        let winner = match b.and_then(|group| group.get(name)) {
            Some((_, theirs)) => Some(newer(entry, theirs).clone()),
            None => one_sided(entry, b_horizon, horizon),
        };
        if let Some(winner) = winner {
            traits.insert(name.clone(), winner);
        }
    }
    for (name, entry) in b.iter().flat_map(|group| group.iter()) {
        let in_a = a.is_some_and(|group| group.get(name).is_some());
        if !in_a && let Some(winner) = one_sided(entry, a_horizon, horizon) {
            traits.insert(name.clone(), winner);
        }
    }
    traits.sort_by(canonical_traits);
    traits
}

/// The joined entry of a trait only one side has: `entry`, against the other side's
/// `missing_horizon`, the joined profile's horizon being `horizon`.
///
/// The side without an entry refuses the trait's writes at or below its horizon, as if it
/// held a tombstone there: that tombstone wins when the entry is not newer. It is left out
/// when it lies at the joined horizon (no entry means the same there), and kept below it,
/// so that the joined profile takes the writes both sides would take, and joining stays
/// associative (dropping it would refuse writes between the two horizons that both sides
/// take).
fn one_sided(entry: &Entry, missing_horizon: Stamp, horizon: Stamp) -> Option<Entry> {
    let order = compare_writes((entry.stamp, entry.value.as_ref()), (missing_horizon, None));
    if order != Ordering::Less {
        return Some(entry.clone());
    }
    (missing_horizon < horizon).then_some(Entry {
        rank: entry.rank,
        stamp: missing_horizon,
        value: None,
    })
}

/// The winning entry of two for one trait; `a` when they are the same write.
fn newer<'e>(a: &'e Entry, b: &'e Entry) -> &'e Entry {
    let order = compare_writes((a.stamp, a.value.as_ref()), (b.stamp, b.value.as_ref()));
    if order == Ordering::Less { b } else { a }
}

fn insert_if_not_empty(
    groups: &mut NameMap<StoredGroup>,
    name: &Name,
    rank: u32,
    traits: NameMap<Entry>,
) {
    if !traits.is_empty() {
        groups.insert(name.clone(), StoredGroup::new(rank, traits));
    }
}
