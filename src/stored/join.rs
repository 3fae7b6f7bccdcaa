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
    /// [`StoredProfile::apply`]; an entry only one side has is dropped when its stamp is at
    /// or below the other side's horizon (that side would refuse it as stale). The horizon
    /// is the greater of the two; `id` and `createdAt` are those of the profile created
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
            group
                .traits
                .retain(|_, entry| entry.value.is_some() || entry.stamp > horizon);
        }
        self.groups.retain(|_, group| !group.traits.is_empty());
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
    let mut traits = NameMap::default();
    for (name, entry) in a.iter().flat_map(|group| &group.traits) {
        let winner = match b.and_then(|group| group.traits.get(name)) {
            Some(theirs) => newer(entry, theirs),
            None if entry.stamp <= b_horizon => continue,
            None => entry,
        };
        traits.insert(name.clone(), winner.clone());
    }
    for (name, entry) in b.iter().flat_map(|group| &group.traits) {
        let in_a = a.is_some_and(|group| group.traits.contains_key(name));
        if !in_a && entry.stamp > a_horizon {
            traits.insert(name.clone(), entry.clone());
        }
    }
    traits.sort_by(canonical_traits);
    traits
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
        groups.insert(name.clone(), StoredGroup { rank, traits });
    }
}
