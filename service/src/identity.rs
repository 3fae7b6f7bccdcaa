//! Identity (service README, "Identity"): which traits identify a customer, how their values are normalized,
//! the index from identifier values to profiles, and the decisions it drives: which profile
//! a create resolves to, and which profiles a create or patch joins.
//!
//! An identifier is a trait whose schema definition has `idTypePromotion`; its live values
//! are indexed under that id type. The index is kept at acceptance (under the storage's
//! acceptance lock), from the identifier traits of every profile as stamped writes leave
//! them, so a write that is stale does not move the index either. It is not written to disk:
//! recovery rebuilds it from the recovered profiles, whose identifier entries carry the same
//! stamps.

use std::collections::{BTreeSet, HashMap};

use profile_traits::{Patch, ProfileId, Stamp, StoreSchema, StoredProfile, TraitValue};

use crate::store::{Op, OpKind};

/// The most profile ids a lookup answers.
pub(crate) const MAX_LOOKUP_PROFILES: usize = 100;

/// An indexed identifier: its id type and normalized value.
pub(crate) type Key = (String, String);

/// Where a profile id stands once every accepted operation is applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Located {
    /// The profile exists under this id.
    Live,
    /// The profile was joined into this one (the canonical id).
    Moved(ProfileId),
    /// No such profile (never created, or deleted).
    Missing,
}

/// `raw` normalized as an identifier of `id_type`, or `None` when it is not indexed.
///
/// `email`: trimmed, all whitespace removed, lowercased. `phone`: spaces, `-`, `.`, `(` and
/// `)` removed; `+` and 7-15 digits is kept, 10 digits gets `+1`, 11 digits starting with `1`
/// gets `+`, anything else is not indexed. Other types: trimmed.
pub(crate) fn normalize(id_type: &str, raw: &str) -> Option<String> {
    let normalized = match id_type {
        "email" => raw
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_lowercase(),
        "phone" => {
            let kept: String = raw
                .trim()
                .chars()
                .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
                .collect();
            let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
            match kept.strip_prefix('+') {
                Some(rest) if digits(rest) && (7..=15).contains(&rest.len()) => kept,
                Some(_) => return None,
                None if digits(&kept) && kept.len() == 10 => format!("+1{kept}"),
                None if digits(&kept) && kept.len() == 11 && kept.starts_with('1') => {
                    format!("+{kept}")
                }
                None => return None,
            }
        }
        _ => raw.trim().to_owned(),
    };
    (!normalized.is_empty()).then_some(normalized)
}

/// The id type of trait `name` of `group`, if it is an identifier.
fn id_type<'s>(schema: &'s StoreSchema, group: &str, name: &str) -> Option<&'s str> {
    schema
        .group(group)?
        .trait_definition(name)?
        .id_type_promotion()
}

/// Whether `id_type` is the id type of some identifier trait of `schema`.
pub(crate) fn is_id_type(schema: &StoreSchema, id_type: &str) -> bool {
    schema.groups().any(|group| {
        group
            .traits()
            .any(|(_, definition)| definition.id_type_promotion() == Some(id_type))
    })
}

/// Adds the keys of `value`, an identifier of `id_type`, to `keys`: each element of an
/// array, strings as they are and numbers as their JSON text; booleans are not indexed.
fn add_keys(id_type: &str, value: &TraitValue, keys: &mut BTreeSet<Key>) {
    let texts: Vec<String> = match serde_json::to_value(value) {
        Ok(serde_json::Value::Array(items)) => items.iter().filter_map(text_of).collect(),
        Ok(scalar) => text_of(&scalar).into_iter().collect(),
        Err(_) => Vec::new(),
    };
    for text in texts {
        if let Some(normalized) = normalize(id_type, &text) {
            keys.insert((id_type.to_owned(), normalized));
        }
    }
}

fn text_of(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Whether `patch` sets at least one identifier trait (what a create must carry).
pub(crate) fn sets_identifier(schema: &StoreSchema, patch: &Patch) -> bool {
    patch.iter().any(|(group, name, change)| {
        matches!(change, profile_traits::TraitChange::Set(_))
            && id_type(schema, group, name).is_some()
    })
}

/// The identifier keys `patch` sets.
pub(crate) fn keys_set(schema: &StoreSchema, patch: &Patch) -> BTreeSet<Key> {
    let mut keys = BTreeSet::new();
    for (group, name, change) in patch.iter() {
        if let (Some(id_type), profile_traits::TraitChange::Set(value)) =
            (id_type(schema, group, name), change)
        {
            add_keys(id_type, value, &mut keys);
        }
    }
    keys
}

/// Whether `patch` sets or removes an identifier trait: if not, accepting it changes no
/// identity state (most patches; checked without building [`identifier_part`]).
pub(crate) fn touches_identifier(schema: &StoreSchema, patch: &Patch) -> bool {
    patch
        .iter()
        .any(|(group, name, _)| id_type(schema, group, name).is_some())
}

/// The identifier part of `patch` (its sets and removals of identifier traits).
fn identifier_part(schema: &StoreSchema, patch: &Patch) -> Patch {
    let mut part = Patch::new();
    for (group, name, change) in patch.iter() {
        if id_type(schema, group, name).is_some() {
            part.insert(group, name, change.clone());
        }
    }
    part
}

/// The keys of the live identifier traits of `profile`.
pub(crate) fn live_keys(schema: &StoreSchema, profile: &StoredProfile) -> BTreeSet<Key> {
    let mut keys = BTreeSet::new();
    for entry in profile.traits() {
        if let (Some(id_type), Some(value)) =
            (id_type(schema, entry.group(), entry.name()), entry.value())
        {
            add_keys(id_type, value, &mut keys);
        }
    }
    keys
}

/// The identity state at acceptance: every live profile's identifier traits (stamped, as
/// the worker will store them), the index of their values, and where joined-away ids went.
#[derive(Debug, Default)]
pub(crate) struct Identity {
    /// Per live profile, its identifier traits only.
    profiles: HashMap<ProfileId, StoredProfile>,
    /// Identifier key to the live profiles holding it.
    index: HashMap<Key, BTreeSet<ProfileId>>,
    /// Joined-away id to the canonical id it redirects to (never to a joined-away id).
    moved: HashMap<ProfileId, ProfileId>,
}

impl Identity {
    /// The state of recovered `profiles`, with the redirects `moved`.
    pub(crate) fn recover<'a>(
        schema: &StoreSchema,
        profiles: impl IntoIterator<Item = (&'a ProfileId, &'a StoredProfile)>,
        moved: &HashMap<ProfileId, ProfileId>,
    ) -> Identity {
        let mut identity = Identity {
            moved: moved.clone(),
            ..Identity::default()
        };
        for (id, profile) in profiles {
            let mut part = StoredProfile::new();
            for entry in profile.traits() {
                if id_type(schema, entry.group(), entry.name()).is_none() {
                    continue;
                }
                let mut write = Patch::new();
                match entry.value() {
                    Some(value) => write.set(entry.group(), entry.name(), value.clone()),
                    None => write.remove(entry.group(), entry.name()),
                };
                // Applying each entry at its own stamp rebuilds the same entries, in any order.
                let _ = part.apply_owned(write, schema, entry.stamp());
            }
            identity.index_profile(schema, id, &part);
            identity.profiles.insert(id.clone(), part);
        }
        identity
    }

    /// Adds live profile `id` with `part`, its identifier traits only (as [`Identity::part`]
    /// gives them), and indexes it: for storage that loads the identity state piecemeal.
    pub(crate) fn add(&mut self, schema: &StoreSchema, id: ProfileId, part: StoredProfile) {
        self.index_profile(schema, &id, &part);
        self.profiles.insert(id, part);
    }

    /// The identifier traits of live profile `id`, stamped.
    pub(crate) fn part(&self, id: &ProfileId) -> Option<&StoredProfile> {
        self.profiles.get(id)
    }

    /// The identifier keys live profile `id` holds once `patch` is applied at `stamp`.
    pub(crate) fn keys_after_patch(
        &self,
        schema: &StoreSchema,
        id: &ProfileId,
        patch: &Patch,
        stamp: Stamp,
    ) -> BTreeSet<Key> {
        let mut after = self.profiles.get(id).cloned().unwrap_or_default();
        let _ = after.apply_owned(identifier_part(schema, patch), schema, stamp);
        live_keys(schema, &after)
    }

    /// Where `id` stands.
    pub(crate) fn locate(&self, id: &ProfileId) -> Located {
        if self.profiles.contains_key(id) {
            Located::Live
        } else if let Some(to) = self.moved.get(id) {
            Located::Moved(to.clone())
        } else {
            Located::Missing
        }
    }

    /// The canonical profiles holding `key`, oldest first, at most [`MAX_LOOKUP_PROFILES`].
    pub(crate) fn lookup(&self, key: &Key) -> Vec<ProfileId> {
        self.index
            .get(key)
            .map(|ids| ids.iter().take(MAX_LOOKUP_PROFILES).cloned().collect())
            .unwrap_or_default()
    }

    /// The profiles holding any identifier `patch` sets, oldest first.
    fn holders(&self, keys: &BTreeSet<Key>) -> BTreeSet<ProfileId> {
        keys.iter()
            .filter_map(|key| self.index.get(key))
            .flatten()
            .cloned()
            .collect()
    }

    /// What a create of `patch` resolves to: `None`, a new profile; or the profile that
    /// answers (the one created first of those holding an identifier it sets: UUIDv7 ids
    /// order by creation) and the others, to be joined into it.
    pub(crate) fn resolve_create(
        &self,
        schema: &StoreSchema,
        patch: &Patch,
    ) -> Option<(ProfileId, Vec<ProfileId>)> {
        let mut holders = self.holders(&keys_set(schema, patch)).into_iter();
        let target = holders.next()?;
        Some((target, holders.collect()))
    }

    /// What a patch of live profile `id` with `patch` at `stamp` resolves to: the profile it
    /// applies to and those joined into it first. If the identifiers `id` holds once the
    /// patch is applied are held by other profiles, all of them are joined into the one
    /// created first.
    pub(crate) fn resolve_patch(
        &self,
        schema: &StoreSchema,
        id: &ProfileId,
        patch: &Patch,
        stamp: Stamp,
    ) -> (ProfileId, Vec<ProfileId>) {
        if !touches_identifier(schema, patch) {
            return (id.clone(), Vec::new());
        }
        let mut all = self.holders(&self.keys_after_patch(schema, id, patch, stamp));
        all.insert(id.clone());
        let mut all = all.into_iter();
        let target = all.next().expect("holds `id`");
        (target, all.collect())
    }

    /// Records accepted operation `op`, as the worker will apply it.
    pub(crate) fn record(&mut self, schema: &StoreSchema, op: &Op) {
        let id = &op.profile;
        match &op.kind {
            OpKind::Create { traits, .. } => {
                let mut part = StoredProfile::new();
                let _ = part.apply_owned(identifier_part(schema, traits), schema, op.stamp);
                self.index_profile(schema, id, &part);
                self.profiles.insert(id.clone(), part);
            }
            // Nothing to record: the identifier traits and the index stay as they are.
            OpKind::Patch { patch, join }
                if join.is_empty() && !touches_identifier(schema, patch) => {}
            OpKind::Patch { patch, join } => {
                let Some(mut part) = self.profiles.remove(id) else {
                    return;
                };
                self.unindex_profile(schema, id, &part);
                for other in join {
                    if let Some(theirs) = self.profiles.remove(other) {
                        self.unindex_profile(schema, other, &theirs);
                        part = part.join(&theirs);
                    }
                    redirect(&mut self.moved, other, id);
                }
                let _ = part.apply_owned(identifier_part(schema, patch), schema, op.stamp);
                self.index_profile(schema, id, &part);
                self.profiles.insert(id.clone(), part);
            }
            OpKind::Delete => {
                if let Some(part) = self.profiles.remove(id) {
                    self.unindex_profile(schema, id, &part);
                }
                self.moved.retain(|_, to| to != id);
            }
        }
    }

    fn index_profile(&mut self, schema: &StoreSchema, id: &ProfileId, part: &StoredProfile) {
        for key in live_keys(schema, part) {
            self.index.entry(key).or_default().insert(id.clone());
        }
    }

    fn unindex_profile(&mut self, schema: &StoreSchema, id: &ProfileId, part: &StoredProfile) {
        for key in live_keys(schema, part) {
            if let Some(ids) = self.index.get_mut(&key) {
                ids.remove(id);
                if ids.is_empty() {
                    self.index.remove(&key);
                }
            }
        }
    }
}

/// Records in `moved` that `from` was joined into `to` (the worker's copy of
/// [`Identity`]'s redirects).
pub(crate) fn redirect(
    moved: &mut HashMap<ProfileId, ProfileId>,
    from: &ProfileId,
    to: &ProfileId,
) {
    for target in moved.values_mut() {
        if target == from {
            *target = to.clone();
        }
    }
    moved.insert(from.clone(), to.clone());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_trimmed_stripped_of_whitespace_and_lowercased() {
        assert_eq!(
            normalize("email", "  Alyssa.Mock @Example.COM\t").as_deref(),
            Some("alyssa.mock@example.com")
        );
        assert_eq!(normalize("email", "  "), None);
    }

    #[test]
    fn phones_are_normalized_or_not_indexed() {
        let cases = [
            ("+1 (317) 555-1234", Some("+13175551234")),
            ("317.555.1234", Some("+13175551234")),
            ("1-317-555-6789", Some("+13175556789")),
            ("+4930123", Some("+4930123")),
            ("+123456", None),
            ("+1234567890123456", None),
            ("23175556789", None),
            ("555-1234", None),
            ("+1 317 555 12x4", None),
            ("", None),
        ];
        for (raw, expected) in cases {
            assert_eq!(normalize("phone", raw).as_deref(), expected, "{raw}");
        }
    }

    #[test]
    fn other_types_are_trimmed() {
        assert_eq!(normalize("crm", "  A-1 ").as_deref(), Some("A-1"));
    }

    #[test]
    fn array_identifiers_index_each_element() {
        let mut keys = BTreeSet::new();
        let value = TraitValue::try_from(serde_json::json!([" A@b.c", "x@Y.z", true])).unwrap();
        add_keys("email", &value, &mut keys);
        assert_eq!(
            keys.into_iter().map(|(_, v)| v).collect::<Vec<_>>(),
            ["a@b.c", "x@y.z"]
        );
    }
}
