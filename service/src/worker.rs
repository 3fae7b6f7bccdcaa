//! Applying: durable operations, in acceptance order, to the profiles they act on. Runs of
//! patches to one profile are coalesced with [`Patch::compose`] into one merge.
//!
//! The worker does not own the profiles: it loads those a batch touches from the storage and
//! hands back their new states to be saved, so any storage (embedded or a database) can keep
//! them.

use std::collections::{HashMap, HashSet};

use profile_traits::{Patch, Profile, ProfileId, StoreSchema, TraitChange, merge_in_place_owned};

use crate::store::{Op, OpKind};

/// Counters of what the worker did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Applied {
    /// Patches applied (each counted once, composed or not).
    pub(crate) patches: u64,
    /// Merges performed for them: fewer than `patches` when runs were coalesced.
    pub(crate) merges: u64,
}

/// A run of patches to one profile, composed into one.
struct Run {
    composed: Patch,
    parts: Vec<Patch>,
    /// Groups in which `composed` removes a trait.
    removing: HashSet<String>,
}

impl Run {
    fn new(patch: Patch) -> Self {
        let mut run = Run {
            composed: Patch::new(),
            parts: Vec::new(),
            removing: HashSet::new(),
        };
        run.absorb(patch);
        run
    }

    /// Whether merging `composed.compose(later)` gives exactly what merging `composed` then
    /// `later` gives, trait order included.
    ///
    /// The one difference [`Patch::compose`] documents is order: a trait (or group) removed
    /// by one patch and set again by a later one is appended at the end when they are merged
    /// one by one, but keeps its place when merged composed. So a run is not extended by a
    /// patch that sets anything in a group where the run removes something.
    fn can_absorb(&self, later: &Patch) -> bool {
        !later.iter().any(|(group, _, change)| {
            matches!(change, TraitChange::Set(_)) && self.removing.contains(group)
        })
    }

    fn absorb(&mut self, later: Patch) {
        for (group, _, change) in later.iter() {
            if matches!(change, TraitChange::Remove) && !self.removing.contains(group) {
                self.removing.insert(group.to_owned());
            }
        }
        self.composed = if self.parts.is_empty() {
            later.clone()
        } else {
            self.composed.compose(&later)
        };
        self.parts.push(later);
    }
}

/// Applies `ops` (in acceptance order) to the profiles they touch, each loaded once with
/// `load`, coalescing consecutive patches of one profile.
///
/// Operations on different profiles commute, so only the order per profile matters: a
/// profile's pending run is merged before any create or delete of that profile, and at the
/// end. The result is the one applying every operation one by one gives: the new state of
/// every profile the batch touched (`None`: deleted, or never created), and counters.
pub(crate) fn apply_batch(
    ops: Vec<Op>,
    schema: &StoreSchema,
    mut load: impl FnMut(&ProfileId) -> Option<Profile>,
) -> (Vec<(ProfileId, Option<Profile>)>, Applied) {
    let mut order: Vec<ProfileId> = Vec::new();
    let mut per_profile: HashMap<ProfileId, Vec<Op>> = HashMap::new();
    for op in ops {
        per_profile
            .entry(op.profile.clone())
            .or_insert_with(|| {
                order.push(op.profile.clone());
                Vec::new()
            })
            .push(op);
    }
    let mut applied = Applied::default();
    let profiles = order
        .into_iter()
        .map(|id| {
            let ops = per_profile
                .remove(&id)
                .expect("every id in order has its ops");
            let state = apply_to_one(&id, load(&id), ops, schema, &mut applied);
            (id, state)
        })
        .collect();
    (profiles, applied)
}

/// Applies `ops`, all on profile `id`, to its state `profile`.
fn apply_to_one(
    id: &ProfileId,
    mut profile: Option<Profile>,
    ops: Vec<Op>,
    schema: &StoreSchema,
    applied: &mut Applied,
) -> Option<Profile> {
    let mut run: Option<Run> = None;
    for op in ops {
        match op.kind {
            OpKind::Patch(patch) => match &mut run {
                Some(pending) if pending.can_absorb(&patch) => pending.absorb(patch),
                _ => {
                    if let Some(done) = run.replace(Run::new(patch)) {
                        flush(profile.as_mut(), id, done, schema, applied);
                    }
                }
            },
            OpKind::Create { created_at, traits } => {
                if let Some(done) = run.take() {
                    flush(profile.as_mut(), id, done, schema, applied);
                }
                let mut created = Profile::new();
                if let Err(error) = merge_in_place_owned(&mut created, traits, schema) {
                    eprintln!("profile-service: create of {id} skipped: {error}");
                }
                created.set_id(Some(id.clone()));
                created.set_created_at(Some(created_at));
                profile = Some(created);
            }
            OpKind::Delete => {
                if let Some(done) = run.take() {
                    flush(profile.as_mut(), id, done, schema, applied);
                }
                profile = None;
            }
        }
    }
    if let Some(done) = run {
        flush(profile.as_mut(), id, done, schema, applied);
    }
    profile
}

/// Merges a run into its profile: composed in one merge, or (if the composition breaks a
/// limit, which [`Patch::compose`] allows) one by one.
fn flush(
    profile: Option<&mut Profile>,
    id: &ProfileId,
    run: Run,
    schema: &StoreSchema,
    applied: &mut Applied,
) {
    // A patch accepted before its profile's delete was accepted has nothing left to change.
    let Some(profile) = profile else {
        return;
    };
    applied.patches += run.parts.len() as u64;
    if run.parts.len() > 1 {
        let mut merged = profile.clone();
        if merge_in_place_owned(&mut merged, run.composed, schema).is_ok() {
            *profile = merged;
            applied.merges += 1;
            return;
        }
    }
    for part in run.parts {
        applied.merges += 1;
        if let Err(error) = merge_in_place_owned(profile, part, schema) {
            // Every patch was validated against this schema before it was accepted; this only
            // happens if the schema file changed between runs.
            eprintln!("profile-service: patch to {id} skipped: {error}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Profiles = HashMap<ProfileId, Profile>;

    /// Applies `ops` to `profiles` as the embedded store does: load, apply, save.
    fn apply_to(profiles: &mut Profiles, ops: Vec<Op>, schema: &StoreSchema) -> Applied {
        let (states, applied) = apply_batch(ops, schema, |id| profiles.get(id).cloned());
        for (id, state) in states {
            match state {
                Some(profile) => profiles.insert(id, profile),
                None => profiles.remove(&id),
            };
        }
        applied
    }

    fn schema() -> StoreSchema {
        serde_json::from_str(include_str!("../schema.json")).unwrap()
    }

    /// A small deterministic generator (xorshift), so failures reproduce.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }
    }

    fn random_patch(rng: &mut Rng) -> Patch {
        let traits = [
            ("Contact", "lastName"),
            ("Contact", "city"),
            ("Activity", "lastVisited"),
            ("Activity", "vip"),
            ("Preferences", "language"),
        ];
        let mut patch = Patch::new();
        for _ in 0..=rng.below(3) {
            let (group, name) = traits[rng.below(traits.len() as u64) as usize];
            if rng.below(3) == 0 {
                patch.remove(group, name);
            } else if name == "vip" {
                patch.set(group, name, rng.below(2) == 0);
            } else {
                patch.set(group, name, format!("v{}", rng.below(5)));
            }
        }
        patch
    }

    fn random_ops(rng: &mut Rng, ids: &[ProfileId]) -> Vec<Op> {
        let mut ops: Vec<Op> = ids
            .iter()
            .map(|id| Op {
                seq: 0,
                profile: id.clone(),
                kind: OpKind::Create {
                    created_at: "2026-01-01T00:00:00Z".into(),
                    traits: Patch::new(),
                },
            })
            .collect();
        for _ in 0..60 {
            let profile = ids[rng.below(ids.len() as u64) as usize].clone();
            let kind = match rng.below(30) {
                0 => OpKind::Delete,
                1 => OpKind::Create {
                    created_at: "2026-01-02T00:00:00Z".into(),
                    traits: random_patch(rng),
                },
                _ => OpKind::Patch(random_patch(rng)),
            };
            ops.push(Op {
                seq: 0,
                profile,
                kind,
            });
        }
        ops
    }

    fn as_json(profiles: &Profiles) -> Vec<(String, String)> {
        let mut out: Vec<_> = profiles
            .iter()
            .map(|(id, p)| (id.to_string(), serde_json::to_string(p).unwrap()))
            .collect();
        out.sort();
        out
    }

    #[test]
    fn coalesced_batch_equals_one_by_one_including_order() {
        let schema = schema();
        let ids: Vec<ProfileId> = (0..3).map(ProfileId::from_bits).collect();
        let mut coalesced_any = false;
        for seed in 1..400 {
            let ops = random_ops(&mut Rng(seed), &ids);
            let mut one_by_one = Profiles::new();
            for op in ops.clone() {
                apply_to(&mut one_by_one, vec![op], &schema);
            }
            let mut batched = Profiles::new();
            let applied = apply_to(&mut batched, ops, &schema);
            coalesced_any |= applied.merges < applied.patches;
            assert_eq!(as_json(&batched), as_json(&one_by_one), "seed {seed}");
        }
        assert!(coalesced_any);
    }

    #[test]
    fn removed_then_set_again_is_not_coalesced() {
        let schema = schema();
        let id = ProfileId::from_bits(1);
        let create = |traits: &str| OpKind::Create {
            created_at: "2026-01-01T00:00:00Z".into(),
            traits: traits.parse().unwrap(),
        };
        let patch = |p: &str| OpKind::Patch(p.parse().unwrap());
        let ops = [
            create(r#"{"traits": {"Contact": {"city": "Paris", "lastName": "Doe"}}}"#),
            patch(r#"{"traits": {"Contact": {"city": null}}}"#),
            patch(r#"{"traits": {"Contact": {"city": "Rome"}}}"#),
        ]
        .map(|kind| Op {
            seq: 0,
            profile: id.clone(),
            kind,
        });
        let mut profiles = Profiles::new();
        let applied = apply_to(&mut profiles, ops.to_vec(), &schema);
        assert_eq!(
            applied,
            Applied {
                patches: 2,
                merges: 2
            }
        );
        assert_eq!(
            serde_json::to_string(&profiles[&id]).unwrap(),
            r#"{"id":"mem_profile_00000000000000000000000001","createdAt":"2026-01-01T00:00:00Z","traits":{"Contact":{"lastName":"Doe","city":"Rome"}}}"#
        );
    }
}
