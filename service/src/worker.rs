//! Applying: durable operations, in acceptance order, to the stored profiles they act on.
//!
//! Every write carries the stamp it was accepted with, and [`StoredProfile::apply_owned`]
//! gives the same stored profile whatever order writes are applied in, so nothing here
//! depends on batching; joins are applied where they were logged.

use std::collections::HashMap;
use std::sync::Arc;

use profile_traits::{ProfileId, StoreSchema, StoredProfile};

use crate::identity;
use crate::store::{Op, OpKind};

/// The stored profiles, by id; shared so that a snapshot or a `GET` copies pointers only.
pub(crate) type Profiles = HashMap<ProfileId, Arc<StoredProfile>>;

/// The applied state.
#[derive(Debug, Default, Clone)]
pub(crate) struct State {
    /// The live profiles.
    pub(crate) profiles: Profiles,
    /// Joined-away ids and the canonical id each redirects to.
    pub(crate) moved: HashMap<ProfileId, ProfileId>,
    /// The last operation applied.
    pub(crate) last_seq: u64,
    /// The acceptance clock's last instant (microseconds since the epoch) among the
    /// operations applied, so that a restarted clock never goes backwards.
    pub(crate) clock: i64,
}

impl State {
    /// Applies `op`.
    pub(crate) fn apply(&mut self, op: Op, schema: &StoreSchema) {
        self.last_seq = op.seq;
        if !op.event_time {
            self.clock = self.clock.max(op.stamp.micros_since_epoch());
        }
        let id = op.profile;
        match op.kind {
            OpKind::Create { created_at, traits } => {
                let mut profile = StoredProfile::new();
                profile.set_id(Some(id.clone()));
                profile.set_created_at(Some(created_at));
                if let Err(error) = profile.apply_owned(traits, schema, op.stamp) {
                    eprintln!("profile-service: traits of create {id} skipped: {error}");
                }
                self.profiles.insert(id, Arc::new(profile));
            }
            OpKind::Patch { patch, join } => {
                // A patch accepted before its profile's delete has nothing left to change.
                let Some(mut profile) = self.profiles.remove(&id) else {
                    return;
                };
                let target = Arc::make_mut(&mut profile);
                for other in &join {
                    if let Some(theirs) = self.profiles.remove(other) {
                        let mut joined = target.join(&theirs);
                        joined.sort_by_schema(schema);
                        // The target is the profile created first; keep its id and time.
                        joined.set_id(Some(id.clone()));
                        joined.set_created_at(target.created_at().map(str::to_owned));
                        *target = joined;
                    }
                    identity::redirect(&mut self.moved, other, &id);
                }
                if let Err(error) = target.apply_owned(patch, schema, op.stamp) {
                    // Every patch was validated against this schema before it was accepted;
                    // this only happens if the schema file changed between runs.
                    eprintln!("profile-service: patch to {id} skipped: {error}");
                }
                self.profiles.insert(id, profile);
            }
            OpKind::Delete => {
                self.profiles.remove(&id);
                self.moved.retain(|_, to| *to != id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use profile_traits::{Patch, Stamp};

    fn schema() -> StoreSchema {
        serde_json::from_str(include_str!("../schema.json")).unwrap()
    }

    fn op(seq: u64, micros: i64, profile: &ProfileId, kind: OpKind) -> Op {
        Op {
            seq,
            stamp: Stamp::new(micros, seq).unwrap(),
            event_time: true,
            more: false,
            profile: profile.clone(),
            kind,
        }
    }

    fn patch(text: &str) -> OpKind {
        OpKind::Patch {
            patch: text.parse::<Patch>().unwrap(),
            join: Vec::new(),
        }
    }

    /// The same stamped patches applied in every order of a small set end at the same
    /// stored profile, byte for byte.
    #[test]
    fn patches_applied_in_any_order_end_the_same() {
        let schema = schema();
        let id = ProfileId::from_bits(1);
        let patches = [
            (
                10,
                r#"{"traits": {"Contact": {"city": "Paris", "lastName": "Doe"}}}"#,
            ),
            (
                30,
                r#"{"traits": {"Contact": {"city": null}, "Activity": {"vip": true}}}"#,
            ),
            (
                20,
                r#"{"traits": {"Contact": {"city": "Rome"}, "Activity": {"vip": false}}}"#,
            ),
        ];
        let orders = [
            [0, 1, 2],
            [0, 2, 1],
            [1, 0, 2],
            [1, 2, 0],
            [2, 0, 1],
            [2, 1, 0],
        ];
        let mut results = Vec::new();
        for order in orders {
            let mut state = State::default();
            state.apply(
                op(
                    1,
                    0,
                    &id,
                    OpKind::Create {
                        created_at: "2026-01-01T00:00:00Z".into(),
                        traits: Patch::new(),
                    },
                ),
                &schema,
            );
            for (n, index) in order.into_iter().enumerate() {
                let (micros, text) = patches[index];
                state.apply(
                    op(2 + n as u64 + index as u64 * 10, micros, &id, patch(text)),
                    &schema,
                );
            }
            let profile = serde_json::to_string(&state.profiles[&id].view()).unwrap();
            results.push(profile);
        }
        assert!(results.windows(2).all(|w| w[0] == w[1]), "{results:#?}");
        assert_eq!(
            results[0],
            r#"{"id":"mem_profile_00000000000000000000000001","createdAt":"2026-01-01T00:00:00Z","traits":{"Contact":{"lastName":"Doe"},"Activity":{"vip":true}}}"#
        );
    }

    #[test]
    fn a_join_moves_the_other_profile_and_redirects_to_the_target() {
        let schema = schema();
        let (a, b, c) = (
            ProfileId::from_bits(1),
            ProfileId::from_bits(2),
            ProfileId::from_bits(3),
        );
        let mut state = State::default();
        for (seq, id, traits) in [
            (1, &a, r#"{"traits": {"Contact": {"email": "a@b.c"}}}"#),
            (
                2,
                &b,
                r#"{"traits": {"Contact": {"phone": "+13175551234"}}}"#,
            ),
            (3, &c, r#"{"traits": {"Contact": {"city": "Rome"}}}"#),
        ] {
            let kind = OpKind::Create {
                created_at: "2026-01-01T00:00:00Z".into(),
                traits: traits.parse().unwrap(),
            };
            state.apply(op(seq, seq as i64, id, kind), &schema);
        }
        let join = |seq, into: &ProfileId, other: &ProfileId| {
            let kind = OpKind::Patch {
                patch: Patch::new(),
                join: vec![other.clone()],
            };
            op(seq, seq as i64, into, kind)
        };
        state.apply(join(4, &b, &c), &schema);
        state.apply(join(5, &a, &b), &schema);
        assert_eq!(
            state.moved,
            HashMap::from([(b.clone(), a.clone()), (c, a.clone())])
        );
        assert_eq!(
            serde_json::to_string(&state.profiles[&a].view()).unwrap(),
            r#"{"id":"mem_profile_00000000000000000000000001","createdAt":"2026-01-01T00:00:00Z","traits":{"Contact":{"email":"a@b.c","phone":"+13175551234","city":"Rome"}}}"#
        );
        state.apply(op(6, 6, &a, OpKind::Delete), &schema);
        assert!(state.moved.is_empty());
    }
}
