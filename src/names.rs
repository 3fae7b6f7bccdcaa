//! Names of trait groups and traits, and the ordered maps keyed by them.

use std::any::{Any, TypeId};
use std::borrow::Cow;
use std::cell::RefCell;
use std::cmp::Ordering;
use std::fmt;
use std::hash::BuildHasher;
use std::ops::{Deref, Index, IndexMut};
use std::sync::{Arc, OnceLock};

use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};

/// Bytes of a name kept inline, without an allocation; longer names are shared.
const INLINE: usize = 22;

/// A group or trait name.
///
/// Names of up to 22 bytes (nearly all: the bench profile's longest has 20) are kept inline,
/// so a profile's trait costs no allocation for its name and copying one costs no reference
/// count; longer ones are shared behind an `Arc`.
#[derive(Clone)]
pub(crate) struct Name(Repr);

#[derive(Clone)]
enum Repr {
    Inline { len: u8, bytes: [u8; INLINE] },
    Shared(Arc<str>),
}

impl Name {
    fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Inline { len, bytes } => std::str::from_utf8(&bytes[..usize::from(*len)])
                .expect("an inline name is copied from a str whole"),
            Repr::Shared(text) => text,
        }
    }

    /// Whether the name is `text`: for an inline name, compared a word at a time, without
    /// the call to `memcmp` that comparing slices makes (a schema lookup per name read).
    fn is(&self, text: &[u8]) -> bool {
        let Repr::Inline { len, bytes } = &self.0 else {
            return self.as_bytes() == text;
        };
        if usize::from(*len) != text.len() {
            return false;
        }
        // Two words that cover `text` (overlapping), and a third for a name of 17-22 bytes;
        // a name shorter than a word (few are) byte by byte.
        let word = |b: &[u8], at: usize| u64::from_le_bytes(b[at..at + 8].try_into().expect("8"));
        match text.len() {
            0..8 => bytes[..text.len()] == *text,
            n => {
                word(bytes, 0) == word(text, 0)
                    && word(bytes, n - 8) == word(text, n - 8)
                    && (n <= 16 || word(bytes, 8) == word(text, 8))
            }
        }
    }

    /// The name's bytes, without the UTF-8 check of [`Name::as_str`].
    fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Repr::Shared(text) => text.as_bytes(),
        }
    }
}

impl From<&str> for Name {
    fn from(text: &str) -> Self {
        if text.len() <= INLINE {
            let mut bytes = [0; INLINE];
            bytes[..text.len()].copy_from_slice(text.as_bytes());
            let len = u8::try_from(text.len()).expect("at most INLINE bytes");
            Name(Repr::Inline { len, bytes })
        } else {
            Name(Repr::Shared(Arc::from(text)))
        }
    }
}

impl From<String> for Name {
    fn from(text: String) -> Self {
        Name::from(text.as_str())
    }
}

impl Deref for Name {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Name {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq for Name {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            // Zero-padded, so equal texts are equal arrays: a few word compares, no memcmp.
            (Repr::Inline { len, bytes }, Repr::Inline { len: l, bytes: b }) => {
                len == l && bytes == b
            }
            _ => self.as_bytes() == other.as_bytes(),
        }
    }
}

impl Eq for Name {}

impl PartialOrd for Name {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Name {
    /// Byte order, which is `str`'s order.
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The hash of a name, the same for every map of the process: a schema's names are hashed
/// once and the hash used again in profiles.
///
/// foldhash, seeded once per process at random (hostile names cannot be chosen to collide).
pub(crate) fn hash_name(name: &str) -> u32 {
    hash_bytes(name.as_bytes())
}

fn hash_bytes(name: &[u8]) -> u32 {
    static STATE: OnceLock<foldhash::fast::FixedState> = OnceLock::new();
    let state = STATE.get_or_init(|| {
        let seed = std::collections::hash_map::RandomState::new().hash_one(0_u8);
        foldhash::fast::FixedState::with_seed(seed)
    });
    let hash = state.hash_one(name);
    (hash ^ (hash >> 32)) as u32
}

impl Name {
    /// The name's hash, as [`hash_name`] gives it for the same text.
    pub(crate) fn hash(&self) -> u32 {
        hash_bytes(self.as_bytes())
    }
}

/// A name with its hash: hashed once, when a patch is read, and looked up with that hash
/// in the schema and the profile.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Hashed<'a> {
    pub(crate) name: &'a str,
    pub(crate) hash: u32,
    /// The name's place in the schema a patch was parsed against ([`NO_RANK`] when not
    /// declared there or not parsed against one); meaningful only with that schema.
    pub(crate) rank: u32,
}

/// The rank of a name no schema resolved.
pub(crate) const NO_RANK: u32 = u32::MAX;

/// Maps with at most this many entries find a name by scanning its hashes; larger ones keep
/// a table.
const LINEAR: usize = 8;

/// A marker for an empty slot of the table: never a position, which is always below two
/// thirds of the table's size.
const EMPTY: u32 = u32::MAX;

/// An insertion-ordered map keyed by names: the entries in a vector, each with its name's
/// 32-bit hash, and past a few entries an open-addressing table of `u32` positions.
///
/// A slot of the table holds a position in its low bits (those of the table's mask) and its
/// entry's hash in the bits above: a probe passes over other names' slots without reading
/// their entries, each a cache line of its own in a profile read cold.
///
/// About 64 bytes per trait of a profile plus 4 to 8 for the table, where an `IndexMap` with
/// shared names took about 95 and an allocation per name (`tests/alloc.rs`).
///
/// An entry removed by [`NameMap::remove_leaving_hole`] leaves a hole where it was: no later
/// entry moves, so positions found before stay valid. Holes are out of the table, skipped by
/// lookups and iteration and not counted by [`NameMap::len`]; positions ([`NameMap::end`])
/// count them. They are closed up once they outnumber the entries.
#[derive(Clone)]
pub(crate) struct NameMap<V> {
    entries: Vec<Bucket<V>>,
    /// Positions in `entries` tagged with their hashes' high bits, by hash; empty while
    /// there are at most [`LINEAR`] entries. A boxed slice, not a `Vec`: its size is set
    /// at each rebuild, and the 8 bytes of a capacity pay for `holes`.
    table: Box<[u32]>,
    /// How many entries are holes.
    holes: usize,
}

/// One entry of a [`NameMap`].
#[derive(Clone)]
pub(crate) struct Bucket<V> {
    hash: u32,
    /// Removed, its value a placeholder (in the padding after `hash`: no size).
    hole: bool,
    key: Name,
    value: V,
}

impl<V> Bucket<V> {
    fn new(hash: u32, key: Name, value: V) -> Self {
        Bucket {
            hash,
            hole: false,
            key,
            value,
        }
    }
}

impl<V> Default for NameMap<V> {
    fn default() -> Self {
        NameMap {
            entries: Vec::new(),
            table: Box::default(),
            holes: 0,
        }
    }
}

/// Spreads a 32-bit hash over a table's slots.
fn slot_of(hash: u32, mask: usize) -> usize {
    (u64::from(hash).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as usize & mask
}

/// The mask of a table's slots, which also covers every position it holds.
fn mask_of(table: &[u32]) -> u32 {
    u32::try_from(table.len() - 1).expect("fewer than 2^32 slots")
}

impl<V> NameMap<V> {
    /// An empty map with room for `capacity` entries, in the vector and the table.
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        let mut map = NameMap {
            entries: Vec::with_capacity(capacity),
            table: Box::default(),
            holes: 0,
        };
        if capacity > LINEAR {
            map.rebuild_table_for(capacity);
        }
        map
    }

    /// The number of entries, holes not counted.
    pub(crate) fn len(&self) -> usize {
        self.entries.len() - self.holes
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// One past the last position: the number of entries and holes.
    pub(crate) fn end(&self) -> usize {
        self.entries.len()
    }

    /// Whether an entry can be pushed without growing the vector (moving every entry).
    pub(crate) fn has_room(&self) -> bool {
        self.entries.len() < self.entries.capacity()
    }

    /// The position of `name`, whose hash is `hash`.
    pub(crate) fn find(&self, hash: u32, name: &str) -> Option<usize> {
        self.find_bytes(hash, name.as_bytes())
    }

    /// The position of `key`.
    pub(crate) fn find_key(&self, key: Hashed<'_>) -> Option<usize> {
        self.find_bytes(key.hash, key.name.as_bytes())
    }

    /// The position of `name`, whose hash is `hash`: the key a schema shares with profiles,
    /// compared without `memcmp`.
    pub(crate) fn find_name(&self, hash: u32, name: &Name) -> Option<usize> {
        self.find_by(hash, |key| key == name)
    }

    fn find_bytes(&self, hash: u32, name: &[u8]) -> Option<usize> {
        self.find_by(hash, |key| key.is(name))
    }

    fn find_by(&self, hash: u32, is_name: impl Fn(&Name) -> bool) -> Option<usize> {
        let matches = |bucket: &Bucket<V>| bucket.hash == hash && is_name(&bucket.key);
        if self.table.is_empty() {
            return self.entries.iter().position(|b| matches(b) && !b.hole);
        }
        let mask = mask_of(&self.table);
        let tag = hash & !mask;
        let mut slot = slot_of(hash, mask as usize);
        loop {
            let tagged = self.table[slot];
            if tagged == EMPTY {
                return None;
            }
            let at = (tagged & mask) as usize;
            if tagged & !mask == tag && matches(&self.entries[at]) {
                return Some(at);
            }
            slot = (slot + 1) & mask as usize;
        }
    }

    /// The entry `key` names with its position: at the rank `key` carries when `by_rank`,
    /// else found by hash.
    pub(crate) fn lookup(&self, key: Hashed<'_>, by_rank: bool) -> Option<(u32, &Name, &V)> {
        let at = if by_rank {
            key.rank as usize
        } else {
            self.find_key(key)?
        };
        let bucket = self.entries.get(at)?;
        let rank = u32::try_from(at).expect("fewer than 2^32 entries");
        Some((rank, &bucket.key, &bucket.value))
    }

    pub(crate) fn get_index_of(&self, name: &str) -> Option<usize> {
        self.find(hash_name(name), name)
    }

    pub(crate) fn contains_key(&self, name: &str) -> bool {
        self.get_index_of(name).is_some()
    }

    pub(crate) fn get(&self, name: &str) -> Option<&V> {
        self.get_index_of(name).map(|at| &self.entries[at].value)
    }

    pub(crate) fn get_key_value(&self, name: &str) -> Option<(&Name, &V)> {
        self.get_index_of(name)
            .map(|at| self.get_index(at).expect("found"))
    }

    pub(crate) fn get_index(&self, at: usize) -> Option<(&Name, &V)> {
        self.entries.get(at).map(|b| (&b.key, &b.value))
    }

    pub(crate) fn get_index_mut(&mut self, at: usize) -> Option<(&Name, &mut V)> {
        self.entries.get_mut(at).map(|b| (&b.key, &mut b.value))
    }

    /// Inserts `key` at the end, or replaces its value where it is (keeping the key);
    /// returns its position and the old value.
    pub(crate) fn insert_full(&mut self, key: Name, value: V) -> (usize, Option<V>) {
        let hash = key.hash();
        if let Some(at) = self.find_bytes(hash, key.as_bytes()) {
            return (
                at,
                Some(std::mem::replace(&mut self.entries[at].value, value)),
            );
        }
        (self.push_new(hash, key, value), None)
    }

    pub(crate) fn insert(&mut self, key: Name, value: V) -> Option<V> {
        self.insert_full(key, value).1
    }

    /// Appends to `target` a copy of each entry whose value `copy(first + position, value)`
    /// makes (`None` leaves the entry out), keeping its hash.
    pub(crate) fn copy_into(
        &self,
        target: &mut NameMap<V>,
        first: usize,
        mut copy: impl FnMut(usize, &V) -> Option<V>,
    ) {
        for (at, bucket) in self.entries.iter().enumerate() {
            if bucket.hole {
                continue;
            }
            if let Some(value) = copy(first + at, &bucket.value) {
                target.push_new(bucket.hash, bucket.key.clone(), value);
            }
        }
    }

    /// Appends `key`, known absent, whose hash is `hash`; returns its position.
    pub(crate) fn push_new(&mut self, hash: u32, key: Name, value: V) -> usize {
        let at = self.entries.len();
        self.entries.push(Bucket::new(hash, key, value));
        // A table, once made, holds every entry.
        if self.table.is_empty() {
            if self.entries.len() > LINEAR {
                self.rebuild_table();
            }
        } else if self.entries.len() * 3 > self.table.len() * 2 {
            self.rebuild_table();
        } else {
            let position = u32::try_from(at).expect("fewer than 2^32 entries");
            Self::place(&mut self.table, hash, position);
        }
        at
    }

    /// Appends `key`, known absent, leaving the table as it is: for a batch of appends that
    /// [`NameMap::place_appended`] then orders and indexes at once. Meanwhile lookups may
    /// miss the appended entries (never the others); a patch names each trait once, so a
    /// merge never looks up a trait it appended.
    pub(crate) fn push_unindexed(&mut self, hash: u32, key: Name, value: V) {
        self.entries.push(Bucket::new(hash, key, value));
    }

    /// Appends the entries of `other`, whose names are absent here, leaving the table as it
    /// is (see [`NameMap::push_unindexed`]).
    pub(crate) fn append_unindexed(&mut self, other: NameMap<V>) {
        self.entries.extend(other.entries);
    }

    /// Moves the entries from position `from` on (appended by [`NameMap::push_unindexed`])
    /// to their places in `compare`'s order among the ones before `from`, which are in that
    /// order, and indexes every entry again.
    ///
    /// A few appended entries are placed by binary search and one shift each; more are
    /// sorted in with the rest.
    pub(crate) fn place_appended(
        &mut self,
        from: usize,
        mut compare: impl FnMut(&Name, &V, &Name, &V) -> Ordering,
    ) {
        const FEW: usize = 4;
        let mut compare_buckets =
            |a: &Bucket<V>, b: &Bucket<V>| compare(&a.key, &a.value, &b.key, &b.value);
        if self.entries.len() - from > FEW {
            self.entries.sort_by(compare_buckets);
        } else {
            self.entries[from..].sort_by(&mut compare_buckets);
            let mut lowest = 0;
            for at in from..self.entries.len() {
                let (placed, rest) = self.entries.split_at(at);
                let entry = &rest[0];
                let place = lowest
                    + placed[lowest..]
                        .partition_point(|b| compare_buckets(b, entry) == Ordering::Less);
                self.entries[place..=at].rotate_right(1);
                lowest = place + 1;
            }
        }
        self.rebuild_table();
    }

    fn place(table: &mut [u32], hash: u32, position: u32) {
        let mask = mask_of(table);
        let mut slot = slot_of(hash, mask as usize);
        while table[slot] != EMPTY {
            slot = (slot + 1) & mask as usize;
        }
        table[slot] = hash & !mask | position;
    }

    /// Remakes the table for the entries as they are: at most two thirds full.
    fn rebuild_table(&mut self) {
        self.rebuild_table_for(self.entries.len());
    }

    /// Remakes the table, sized for `len` entries (at least as many as there are).
    fn rebuild_table_for(&mut self, len: usize) {
        if len <= LINEAR {
            self.table = Box::default();
            return;
        }
        let size = (len * 3 / 2 + 1).next_power_of_two();
        if self.table.len() == size {
            self.table.fill(EMPTY);
        } else {
            self.table = vec![EMPTY; size].into_boxed_slice();
        }
        let holes = self.holes > 0;
        for (position, bucket) in self.entries.iter().enumerate() {
            if holes && bucket.hole {
                continue;
            }
            let position = u32::try_from(position).expect("fewer than 2^32 entries");
            Self::place(&mut self.table, bucket.hash, position);
        }
    }

    /// Removes the entry at `at`, shifting the later ones down.
    pub(crate) fn shift_remove_index(&mut self, at: usize) -> Option<(Name, V)> {
        if at >= self.entries.len() {
            return None;
        }
        let bucket = self.entries.remove(at);
        if self.entries.len() <= LINEAR {
            self.table = Box::default();
        } else if !self.table.is_empty() {
            self.unplace(bucket.hash, at, true);
        }
        Some((bucket.key, bucket.value))
    }

    /// Removes the entry at `at`, leaving a hole that holds `placeholder`: no later entry
    /// moves. Shifting them down moved half the group on average, cold, and renumbered the
    /// whole table: in a medium patch's merge in place, a tenth of the instructions and of
    /// the cache misses for three removals. Closes the holes once they outnumber the
    /// entries.
    pub(crate) fn remove_leaving_hole(&mut self, at: usize, placeholder: V) -> (Name, V) {
        let bucket = &mut self.entries[at];
        debug_assert!(!bucket.hole, "a position found is an entry's");
        bucket.hole = true;
        let (hash, key) = (bucket.hash, bucket.key.clone());
        let value = std::mem::replace(&mut bucket.value, placeholder);
        self.holes += 1;
        if !self.table.is_empty() {
            self.unplace(hash, at, false);
        }
        if self.holes > self.len() {
            self.close_holes();
        }
        (key, value)
    }

    /// Moves the entries over the holes, if any, and indexes them again.
    fn close_holes(&mut self) {
        if self.holes == 0 {
            return;
        }
        self.entries.retain(|bucket| !bucket.hole);
        self.holes = 0;
        self.rebuild_table();
    }

    /// Takes position `at` (whose hash is `hash`) out of the table. When `shifted` (the
    /// entry was removed, the later ones moved down), also moves the later positions down
    /// one: one pass over the table, where a rebuild hashed and placed every entry again (a
    /// third of a medium patch's merge).
    fn unplace(&mut self, hash: u32, at: usize, shifted: bool) {
        let at = u32::try_from(at).expect("fewer than 2^32 entries");
        let mask = mask_of(&self.table);
        let slots = mask as usize;
        let mut hole = slot_of(hash, slots);
        while self.table[hole] & mask != at {
            hole = (hole + 1) & slots;
        }
        // Backward-shift deletion: each later entry of the probe run moves into the hole
        // unless its home slot lies cyclically after the hole.
        let mut next = (hole + 1) & slots;
        while self.table[next] != EMPTY {
            let position = self.table[next] & mask;
            let hash = if shifted {
                self.entries_hash(position, at)
            } else {
                self.entries[position as usize].hash
            };
            let home = slot_of(hash, slots);
            if (next.wrapping_sub(home) & slots) >= (next.wrapping_sub(hole) & slots) {
                self.table[hole] = self.table[next];
                hole = next;
            }
            next = (next + 1) & slots;
        }
        self.table[hole] = EMPTY;
        if !shifted {
            return;
        }
        for tagged in self.table.iter_mut() {
            // A later position moves down one; its tag, above the mask, stays.
            if *tagged != EMPTY && *tagged & mask > at {
                *tagged -= 1;
            }
        }
    }

    /// The hash of the entry the table calls `position`, while the entry removed from
    /// `removed` has already shifted the later ones down.
    fn entries_hash(&self, position: u32, removed: u32) -> u32 {
        let index = if position > removed {
            position - 1
        } else {
            position
        };
        self.entries[index as usize].hash
    }

    /// Inserts `key`, absent, at position `at`.
    pub(crate) fn shift_insert(&mut self, at: usize, key: Name, value: V) {
        let hash = key.hash();
        self.entries.insert(at, Bucket::new(hash, key, value));
        if self.entries.len() > LINEAR {
            self.rebuild_table();
        }
    }

    pub(crate) fn sort_by(&mut self, mut compare: impl FnMut(&Name, &V, &Name, &V) -> Ordering) {
        self.close_holes();
        self.entries
            .sort_by(|a, b| compare(&a.key, &a.value, &b.key, &b.value));
        // Also indexes entries appended by `push_unindexed`.
        self.rebuild_table();
    }

    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&Name, &mut V) -> bool) {
        let before = self.entries.len();
        self.entries
            .retain_mut(|b| !b.hole && keep(&b.key, &mut b.value));
        self.holes = 0;
        if self.entries.len() != before {
            self.rebuild_table();
        }
    }

    pub(crate) fn partition_point(&self, mut before: impl FnMut(&Name, &V) -> bool) -> usize {
        self.entries.partition_point(|b| before(&b.key, &b.value))
    }

    /// Moves the entries out into a map of new allocations of their exact size, leaving this
    /// map's allocations to the next read (its table still to be cleared: see
    /// [`with_read_room`]).
    fn take_exact(&mut self) -> Self {
        let mut entries = Vec::with_capacity(self.entries.len());
        entries.append(&mut self.entries);
        let mut map = NameMap {
            entries,
            table: Box::default(),
            holes: 0,
        };
        map.rebuild_table();
        map
    }

    pub(crate) fn iter(&self) -> Iter<'_, V> {
        Iter {
            buckets: self.entries.iter(),
            holes: self.holes,
        }
    }

    pub(crate) fn values(&self) -> impl ExactSizeIterator<Item = &V> + Clone {
        self.iter().map(|(_, value)| value)
    }

    /// The entries with their names' hashes, to look each name up in another map unhashed
    /// again.
    pub(crate) fn iter_mut_hashed(&mut self) -> impl Iterator<Item = (u32, &Name, &mut V)> {
        self.entries
            .iter_mut()
            .filter(|b| !b.hole)
            .map(|b| (b.hash, &b.key, &mut b.value))
    }

    pub(crate) fn values_mut(&mut self) -> impl Iterator<Item = &mut V> {
        self.entries
            .iter_mut()
            .filter(|b| !b.hole)
            .map(|b| &mut b.value)
    }
}

/// The entries of a [`NameMap`], in order, holes skipped.
pub(crate) struct Iter<'a, V> {
    buckets: std::slice::Iter<'a, Bucket<V>>,
    /// Holes among `buckets`: while none (in most maps, always), each bucket is an entry.
    holes: usize,
}

impl<V> Clone for Iter<'_, V> {
    fn clone(&self) -> Self {
        Iter {
            buckets: self.buckets.clone(),
            holes: self.holes,
        }
    }
}

impl<'a, V> Iterator for Iter<'a, V> {
    type Item = (&'a Name, &'a V);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let bucket = self.buckets.next()?;
            if self.holes == 0 || !bucket.hole {
                return Some((&bucket.key, &bucket.value));
            }
            self.holes -= 1;
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let len = self.buckets.len() - self.holes;
        (len, Some(len))
    }
}

impl<V> ExactSizeIterator for Iter<'_, V> {}

impl<V> DoubleEndedIterator for Iter<'_, V> {
    fn next_back(&mut self) -> Option<Self::Item> {
        loop {
            let bucket = self.buckets.next_back()?;
            if self.holes == 0 || !bucket.hole {
                return Some((&bucket.key, &bucket.value));
            }
            self.holes -= 1;
        }
    }
}

impl<'a, V> IntoIterator for &'a NameMap<V> {
    type Item = (&'a Name, &'a V);
    type IntoIter = Iter<'a, V>;

    fn into_iter(self) -> Iter<'a, V> {
        self.iter()
    }
}

impl<'a, V> IntoIterator for &'a mut NameMap<V> {
    type Item = (&'a Name, &'a mut V);
    type IntoIter = std::iter::FilterMap<
        std::slice::IterMut<'a, Bucket<V>>,
        fn(&'a mut Bucket<V>) -> Option<(&'a Name, &'a mut V)>,
    >;

    fn into_iter(self) -> Self::IntoIter {
        self.entries
            .iter_mut()
            .filter_map(|b| (!b.hole).then_some((&b.key, &mut b.value)))
    }
}

impl<V> IntoIterator for NameMap<V> {
    type Item = (Name, V);
    type IntoIter =
        std::iter::FilterMap<std::vec::IntoIter<Bucket<V>>, fn(Bucket<V>) -> Option<(Name, V)>>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries
            .into_iter()
            .filter_map(|b| (!b.hole).then_some((b.key, b.value)))
    }
}

impl<V> FromIterator<(Name, V)> for NameMap<V> {
    fn from_iter<I: IntoIterator<Item = (Name, V)>>(iter: I) -> Self {
        let iter = iter.into_iter();
        let mut map = NameMap::with_capacity(iter.size_hint().0);
        for (key, value) in iter {
            map.insert(key, value);
        }
        map
    }
}

impl<V> Index<usize> for NameMap<V> {
    type Output = V;

    fn index(&self, at: usize) -> &V {
        &self.entries[at].value
    }
}

impl<V> IndexMut<usize> for NameMap<V> {
    fn index_mut(&mut self, at: usize) -> &mut V {
        &mut self.entries[at].value
    }
}

impl<V: PartialEq> PartialEq for NameMap<V> {
    /// Equal as maps: the same names with equal values, in any order.
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len()
            && self.entries.iter().filter(|b| !b.hole).all(|b| {
                other
                    .find_name(b.hash, &b.key)
                    .is_some_and(|at| other.entries[at].value == b.value)
            })
    }
}

impl<V: fmt::Debug> fmt::Debug for NameMap<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// The entries a read map has room for before it grows: a group declares at most 95 traits.
const READ_ROOM: usize = 96;

thread_local! {
    /// Per value type, the map a JSON object is read into before it is moved out at its
    /// exact size ([`NameMap::take_exact`]), kept from one read to the next.
    static READ_ROOMS: RefCell<Vec<(TypeId, Box<dyn Any>)>> = const { RefCell::new(Vec::new()) };
}

/// Runs `read` on this thread's read room for maps of `V`: empty, with room for
/// [`READ_ROOM`] entries.
///
/// A map grown entry by entry leaves each outgrown vector freed between the values read
/// into it, and freed room beside a value costs when the value is freed (`free` merges the
/// two, touching more memory). A map read here and then moved out at its exact size lies
/// after its values, with no freed room among them, for as long as the profile is kept.
fn with_read_room<V: 'static, R>(read: impl FnOnce(&mut NameMap<V>) -> R) -> R {
    let taken = READ_ROOMS.with(|rooms| {
        let mut rooms = rooms.borrow_mut();
        let at = rooms.iter().position(|(id, _)| *id == TypeId::of::<V>())?;
        Some(rooms.swap_remove(at).1)
    });
    let mut room = taken
        .and_then(|room| room.downcast::<NameMap<V>>().ok())
        .unwrap_or_else(|| Box::new(NameMap::with_capacity(READ_ROOM)));
    let out = read(&mut room);
    // A read that failed part way leaves entries behind.
    room.entries.clear();
    room.table.fill(EMPTY);
    READ_ROOMS.with(|rooms| rooms.borrow_mut().push((TypeId::of::<V>(), room)));
    out
}

/// Deserializes a JSON object into a [`NameMap`], refusing a key that appears twice.
pub(crate) fn deserialize_unique_map<'de, D, V>(d: D) -> Result<NameMap<V>, D::Error>
where
    D: Deserializer<'de>,
    V: Deserialize<'de> + 'static,
{
    deserialize_unique_map_into(d, |value: V| value)
}

/// [`deserialize_unique_map`], each value read as a `T` and kept as `into` makes it: made
/// as it is read, a value lies beside what it holds.
pub(crate) fn deserialize_unique_map_into<'de, D, T, V>(
    d: D,
    into: fn(T) -> V,
) -> Result<NameMap<V>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
    V: 'static,
{
    struct UniqueMapVisitor<T, V>(fn(T) -> V);

    impl<'de, T: Deserialize<'de>, V: 'static> Visitor<'de> for UniqueMapVisitor<T, V> {
        type Value = NameMap<V>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an object")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<NameMap<V>, A::Error> {
            with_read_room(|read: &mut NameMap<V>| {
                while let Some(key) = map.next_key_seed(KeySeed)? {
                    let hash = hash_name(&key);
                    if read.find(hash, &key).is_some() {
                        return Err(de::Error::custom(format_args!("duplicate key `{key}`")));
                    }
                    let value = (self.0)(map.next_value()?);
                    read.push_new(hash, Name::from(key.as_ref()), value);
                }
                Ok(read.take_exact())
            })
        }
    }

    d.deserialize_map(UniqueMapVisitor(into))
}

/// Reads an object key, borrowing it from the input when it has no escapes.
///
/// `Cow<str>`'s own `Deserialize` always copies; a patch's keys are only looked at, so the
/// copy was an allocation per key for nothing.
pub(crate) struct KeySeed;

impl<'de> de::DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        struct KeyVisitor;

        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Cow<'de, str>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string key")
            }

            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Cow::Borrowed(v))
            }

            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Cow::Owned(v.to_owned()))
            }

            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Cow::Owned(v))
            }
        }

        d.deserialize_str(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_takes_three_words() {
        assert_eq!(std::mem::size_of::<Name>(), 24);
    }

    #[test]
    fn a_name_is_exactly_the_text_it_was_made_from() {
        // Inline and shared names of every length, against texts that differ from them in
        // one byte anywhere, or are one byte shorter or longer.
        for len in 0..=30 {
            let text: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            let name = Name::from(std::str::from_utf8(&text).unwrap());
            assert!(name.is(&text), "{len}");
            for at in 0..len {
                let mut other = text.clone();
                other[at] = b'_';
                assert!(!name.is(&other), "{len} {at}");
            }
            assert!(!name.is(&[text.as_slice(), b"a"].concat()), "{len}");
            if len > 0 {
                assert!(!name.is(&text[..len - 1]), "{len}");
            }
        }
    }

    #[test]
    fn a_presized_map_finds_its_entries() {
        let mut presized = NameMap::with_capacity(20);
        for i in 1..20 {
            presized.insert(Name::from(format!("t{i}")), i);
        }
        for i in 1..20 {
            assert_eq!(presized.get(&format!("t{i}")), Some(&i));
        }
    }

    #[test]
    fn a_map_finds_every_name_through_growth_removal_and_sorting() {
        let mut map = NameMap::default();
        let names: Vec<String> = (0..200)
            .map(|i| format!("trait-name-number-{i:04}"))
            .collect();
        for (i, name) in names.iter().enumerate() {
            assert_eq!(map.insert(Name::from(name.as_str()), i), None);
        }
        for (i, name) in names.iter().enumerate() {
            assert_eq!(map.get(name), Some(&i));
        }
        let at = map.get_index_of("trait-name-number-0007").unwrap();
        assert_eq!(map.shift_remove_index(at).map(|(_, v)| v), Some(7));
        assert_eq!(map.get_index_of("trait-name-number-0008"), Some(7));
        map.sort_by(|a, _, b, _| b.cmp(a));
        assert_eq!(map.get_index_of("trait-name-number-0199"), Some(0));
        map.retain(|_, v| *v % 2 == 0);
        assert_eq!(map.len(), 100);
        assert!(map.get("trait-name-number-0003").is_none());
        assert_eq!(map.get("trait-name-number-0004"), Some(&4));
        map.shift_insert(0, Name::from("x"), 1000);
        assert_eq!(map.get_index_of("x"), Some(0));
        assert_eq!(map.get("trait-name-number-0004"), Some(&4));
    }

    #[test]
    fn removing_entries_one_by_one_keeps_every_other_one_findable_at_its_position() {
        let mut map = NameMap::default();
        let mut names: Vec<String> = (0..150).map(|i| format!("t{i}")).collect();
        for name in &names {
            map.insert(Name::from(name.as_str()), ());
        }
        // A fixed, scattered order of removals: front, back and middle of the map.
        let mut step = 0;
        while !names.is_empty() {
            step = (step * 7 + 3) % names.len();
            let removed = names.remove(step);
            let at = map.get_index_of(&removed).unwrap();
            assert_eq!(map.shift_remove_index(at).map(|(_, v)| v), Some(()));
            assert_eq!(map.get_index_of(&removed), None);
            for (at, name) in names.iter().enumerate() {
                assert_eq!(map.get_index_of(name), Some(at), "after removing {removed}");
            }
        }
        assert!(map.is_empty());
    }

    #[test]
    fn an_entry_removed_leaving_a_hole_is_gone_and_the_others_stay_where_they_were() {
        // Maps scanned (a few entries) and indexed; removals in a scattered order, every
        // other removed name pushed again (at the end), till the holes are closed up.
        for size in [5, 150] {
            let mut map = NameMap::default();
            let mut names: Vec<String> = (0..size).map(|i| format!("t{i}")).collect();
            for (i, name) in names.iter().enumerate() {
                map.insert(Name::from(name.as_str()), i);
            }
            let mut step = 0;
            for round in 0..size * 2 {
                if names.is_empty() {
                    break;
                }
                step = (step * 7 + 3) % names.len();
                let removed = names.remove(step);
                let at = map.get_index_of(&removed).unwrap();
                let positions: Vec<usize> =
                    names.iter().map(|n| map.get_index_of(n).unwrap()).collect();
                let (key, value) = map.remove_leaving_hole(at, usize::MAX);
                assert_eq!(&*key, removed);
                assert_ne!(value, usize::MAX);
                assert_eq!(map.get_index_of(&removed), None);
                assert_eq!(map.len(), names.len());
                let kept: Vec<&str> = map.iter().map(|(name, _)| &**name).collect();
                assert_eq!(kept, names, "in order, without {removed}");
                assert_eq!(map.iter().rev().count(), names.len());
                if map.holes > 0 {
                    let now: Vec<usize> =
                        names.iter().map(|n| map.get_index_of(n).unwrap()).collect();
                    assert_eq!(now, positions, "no entry moved for {removed}");
                }
                assert!(
                    map.holes <= map.len(),
                    "holes closed once they outnumber entries"
                );
                if round % 2 == 0 {
                    let at = map.push_new(hash_name(&removed), Name::from(removed.as_str()), 0);
                    assert_eq!(map.get_index_of(&removed), Some(at));
                    assert_eq!(at, map.end() - 1, "a name pushed again comes last");
                    names.push(removed);
                }
            }
            let copy: NameMap<usize> = map.clone().into_iter().collect();
            assert!(copy == map && copy.holes == 0);
        }
    }

    #[test]
    fn appended_entries_are_placed_in_order_and_found() {
        let by_name = |a: &Name, _: &(), b: &Name, _: &()| a.cmp(b);
        // Few appended (placed by shifts) and many (sorted in), into small and large maps.
        for (existing, appended) in [(3, 2), (12, 3), (12, 4), (12, 9), (40, 1), (0, 3)] {
            let mut map = NameMap::default();
            for i in 0..existing {
                map.insert(Name::from(format!("t{:03}", i * 2)), ());
            }
            for i in 0..appended {
                // Odd names land between the existing even ones, last first.
                let name = Name::from(format!("t{:03}", (appended - i) * 7 % 90 * 2 + 1));
                map.push_unindexed(name.hash(), name, ());
            }
            map.place_appended(existing, by_name);
            let names: Vec<&str> = map.iter().map(|(name, _)| &**name).collect();
            let mut sorted = names.clone();
            sorted.sort_unstable();
            assert_eq!(names, sorted, "{existing} + {appended}");
            for (at, name) in names.iter().enumerate() {
                assert_eq!(map.get_index_of(name), Some(at));
            }
        }
    }

    /// Reads one JSON object into a map of numbers, with the room of this thread.
    fn read(json: &str) -> Result<NameMap<u32>, serde_json::Error> {
        let mut d = serde_json::Deserializer::from_str(json);
        deserialize_unique_map(&mut d)
    }

    #[test]
    fn maps_read_one_after_another_in_one_room_keep_none_of_each_others_keys() {
        // Larger than the room (so it grows), then smaller, then one that failed part way:
        // each read must see only its own keys, found at their own positions.
        let large: Vec<String> = (0..300).map(|i| format!("\"k{i}\": {i}")).collect();
        let large = read(&format!("{{{}}}", large.join(","))).expect("reads");
        assert_eq!((large.len(), large.get("k299")), (300, Some(&299)));
        assert_eq!(large.entries.capacity(), 300, "moved out at its exact size");
        assert!(
            read(r#"{"k1": 1, "k2": 2, "k1": 3}"#).is_err(),
            "a repeated key"
        );
        let small = read(r#"{"k2": 2, "k1": 1}"#).expect("no key of the reads before");
        assert_eq!(small.get_index_of("k1"), Some(1));
        assert_eq!(small.get("k299"), None);
        assert_eq!(small.entries.capacity(), 2);
    }
}
