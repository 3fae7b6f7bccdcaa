//! One group of a stored profile: its entries in canonical order, kept in two parts so that a
//! write adding traits does not move the ones already there.

use std::cmp::Ordering;
use std::iter::Peekable;

use super::{Entry, canonical_traits};
use crate::names::{self, Name, NameMap};
use crate::profile::Slot;

/// The entries of one group, in canonical order (by rank, then name); never empty inside a
/// profile.
///
/// Two parts, each in canonical order, merged when read: `traits`, as the group was made or
/// last folded, and `added`, the traits written since. Placing a new trait among `traits`
/// would shift and index again every entry of the group, cold (for a write that adds a few
/// traits, most of its memory traffic); placing it among the few added ones does not touch
/// `traits`. The added part is folded into `traits` once it is as long, so that a group's
/// reads and writes stay within a constant factor of one part's.
///
/// Once the group is ranked for a write's schema, the write finds a declared trait by its
/// rank, not its name: `traits` holds the declared traits first, by rank, so the position of
/// rank `r` is the number of declared ranks below `r` it holds (`declared`). That touches
/// the one entry, where a lookup by hash touches the table and the entries it probes, and
/// knows an absent trait absent without touching the group's entries at all.
#[derive(Debug, Clone)]
pub(super) struct StoredGroup {
    /// The group's place in the schema's declaration order ([`super::UNDECLARED`] when
    /// unknown).
    pub(super) rank: u32,
    /// The schema ([`StoreSchema::instance`]) whose ranks the traits carry; `None` while they
    /// are ranked by stored position. A write ranks the group for its schema first.
    ///
    /// [`StoreSchema::instance`]: crate::schema::StoreSchema
    ranked_for: Option<u64>,
    /// Bit `r` set when `traits` holds the declared trait of rank `r` (a group declares at
    /// most 95); kept while the group is ranked for a schema.
    declared: u128,
    traits: NameMap<Entry>,
    added: Option<Box<NameMap<Entry>>>,
}

impl StoredGroup {
    /// A group of `traits`, ranked by their position until a write ranks it for its schema.
    pub(super) fn new(rank: u32, traits: NameMap<Entry>) -> Self {
        StoredGroup {
            rank,
            ranked_for: None,
            declared: 0,
            traits,
            added: None,
        }
    }

    /// An empty group, ranked for the schema `instance`, that a write is about to add
    /// traits to.
    pub(super) fn empty(rank: u32, instance: u64) -> Self {
        StoredGroup {
            ranked_for: Some(instance),
            ..StoredGroup::new(rank, NameMap::default())
        }
    }

    /// The number of entries.
    pub(super) fn len(&self) -> usize {
        self.traits.len() + self.added.as_ref().map_or(0, |added| added.len())
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Where the declared trait of rank `rank` in the schema `instance` (`name`, whose hash
    /// is `hash`) is: by its rank when the group is ranked for that schema, else by hash.
    pub(super) fn find(&self, instance: u64, rank: u32, hash: u32, name: &Name) -> Option<Slot> {
        if self.ranked_for != Some(instance) {
            if let Some(at) = self.traits.find_name(hash, name) {
                return Some(Slot::First(at));
            }
        } else {
            let bit = 1_u128
                .checked_shl(rank)
                .expect("a group declares at most 95 traits");
            if self.declared & bit != 0 {
                let at = (self.declared & (bit - 1)).count_ones() as usize;
                debug_assert!(
                    self.traits
                        .get_index(at)
                        .is_some_and(|(key, _)| key == name)
                );
                return Some(Slot::First(at));
            }
        }
        self.added.as_ref()?.find_name(hash, name).map(Slot::Added)
    }

    /// The entry of trait `name`, with the name as kept.
    pub(super) fn get(&self, name: &str) -> Option<(&Name, &Entry)> {
        self.traits
            .get_key_value(name)
            .or_else(|| self.added.as_ref()?.get_key_value(name))
    }

    pub(super) fn entry_mut(&mut self, slot: Slot) -> &mut Entry {
        match slot {
            Slot::First(at) => &mut self.traits[at],
            Slot::Added(at) => &mut self.added.as_mut().expect("a slot among the added")[at],
        }
    }

    /// The entries in canonical order.
    pub(super) fn iter(&self) -> Entries<'_> {
        Entries {
            first: self.traits.iter().peekable(),
            added: self.added.as_deref().map(|added| added.iter().peekable()),
        }
    }

    /// Keeps the entries `keep` says to.
    pub(super) fn retain(&mut self, mut keep: impl FnMut(&Entry) -> bool) {
        self.traits.retain(|_, entry| keep(entry));
        if let Some(added) = &mut self.added {
            added.retain(|_, entry| keep(entry));
        }
        self.index_declared();
    }

    /// How many traits the added part holds: where the ones [`StoredGroup::push_unplaced`]
    /// adds next begin.
    pub(super) fn added_len(&self) -> usize {
        self.added.as_ref().map_or(0, |added| added.len())
    }

    /// Adds trait `key`, known absent, whose hash is `hash`, to the added part, not yet in
    /// its place nor indexed (see [`StoredGroup::place_new`]); `room` is how many traits may
    /// be added with it, for the one allocation of the added part.
    pub(super) fn push_unplaced(&mut self, hash: u32, key: Name, entry: Entry, room: usize) {
        self.added
            .get_or_insert_with(|| Box::new(NameMap::with_capacity(room.max(1))))
            .push_unindexed(hash, key, entry);
    }

    /// Places the traits pushed since the added part held `first_new`, after a write's last
    /// push; the write's schema is `instance`, where `rank_of` gives a trait's rank.
    ///
    /// Once per group after all its writes, not a sorted insert per trait, which would shift
    /// the rest of the part and its hash indices every time (the large bench patch adds about
    /// 300 traits). A group not ranked for the schema yet is ranked and sorted whole.
    pub(super) fn place_new(
        &mut self,
        first_new: usize,
        instance: u64,
        rank_of: impl Fn(u32, &Name) -> u32,
    ) {
        if self.ranked_for != Some(instance) {
            self.rank_for(instance, rank_of);
            return;
        }
        let added = self.added.as_mut().expect("traits were pushed");
        added.place_appended(first_new, canonical_traits);
        if added.len() >= self.traits.len() {
            self.fold();
        }
    }

    /// Ranks the group for the schema `instance`, unless it is: every trait ranked by
    /// `rank_of`, and each part sorted into canonical order. A group deserialized, made from
    /// a plain profile or joined is ranked by position until then; writes that only replace
    /// entries leave it so (a stale write changes nothing at all).
    ///
    /// The parts stay apart unless the added one is as long: a group is read with no spare
    /// room, so appending the traits a first write adds would copy the whole group.
    pub(super) fn rank_for(&mut self, instance: u64, rank_of: impl Fn(u32, &Name) -> u32) {
        if self.ranked_for == Some(instance) {
            return;
        }
        for part in std::iter::once(&mut self.traits).chain(self.added.as_deref_mut()) {
            for (hash, name, entry) in part.iter_mut_hashed() {
                entry.rank = rank_of(hash, name);
            }
            part.sort_by(canonical_traits);
        }
        self.ranked_for = Some(instance);
        if self.added_len() >= self.traits.len() {
            self.fold();
        } else {
            self.index_declared();
        }
    }

    /// Merges the added part into `traits`: two runs in canonical order, which the sort
    /// merges in one pass.
    fn fold(&mut self) {
        if let Some(added) = self.added.take() {
            if self.traits.is_empty() {
                self.traits = *added;
            } else {
                let from = self.traits.len();
                self.traits.append_unindexed(*added);
                self.traits.place_appended(from, canonical_traits);
            }
        }
        self.index_declared();
    }

    /// Sets `declared` from the ranks `traits` holds, once they come from a schema.
    fn index_declared(&mut self) {
        self.declared = match self.ranked_for {
            Some(_) => self
                .traits
                .values()
                .filter_map(|entry| 1_u128.checked_shl(entry.rank))
                .fold(0, |declared, bit| declared | bit),
            None => 0,
        };
    }
}

/// A group's entries in canonical order: its two parts merged.
pub(super) struct Entries<'a> {
    first: Peekable<names::Iter<'a, Entry>>,
    added: Option<Peekable<names::Iter<'a, Entry>>>,
}

impl<'a> Iterator for Entries<'a> {
    type Item = (&'a Name, &'a Entry);

    fn next(&mut self) -> Option<Self::Item> {
        let Some(added) = &mut self.added else {
            return self.first.next();
        };
        let take_added = match (self.first.peek(), added.peek()) {
            (Some(&(a, x)), Some(&(b, y))) => canonical_traits(b, y, a, x) == Ordering::Less,
            (None, _) => true,
            (Some(_), None) => false,
        };
        if take_added {
            added.next()
        } else {
            self.first.next()
        }
    }
}
