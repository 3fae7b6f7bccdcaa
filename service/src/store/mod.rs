//! Storage: where an accepted operation is stamped and made durable before it is answered
//! 202, and where the worker keeps the stored profiles it applies them to.
//!
//! [`Storage`] is what the HTTP surface sees; `embedded/` is the implementation that needs no
//! server (a group-committed log, compacted into snapshots while running), the default;
//! `postgres.rs` keeps everything in PostgreSQL, so that several instances share one store.

pub(crate) mod embedded;
pub(crate) mod postgres;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::body::Bytes;
use profile_traits::{Patch, ProfileId, Stamp, StoredProfile};

use crate::identity::{Key, Located};

/// A future a storage operation returns (boxed, so that `Storage` can be a trait object).
pub(crate) type Pending<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One accepted operation, in acceptance order.
#[derive(Debug, Clone)]
pub(crate) struct Op {
    /// Its position in acceptance order (assigned when it is accepted; 0 before).
    pub(crate) seq: u64,
    /// The stamp its writes carry: the acceptance clock's instant (or the request's
    /// `Event-Time`), with `seq` as tiebreaker.
    pub(crate) stamp: Stamp,
    /// Whether the stamp's instant is the request's `Event-Time` rather than the clock's.
    pub(crate) event_time: bool,
    /// Whether the next operation belongs to the same request (a bulk upsert): a request's
    /// operations are applied at recovery only if all of them are on disk.
    pub(crate) more: bool,
    /// The profile it acts on.
    pub(crate) profile: ProfileId,
    /// What it does.
    pub(crate) kind: OpKind,
}

/// What an operation does.
#[derive(Debug, Clone)]
pub(crate) enum OpKind {
    /// Creates the profile with these traits.
    Create {
        /// The creation time, fixed when the request was accepted.
        created_at: String,
        /// The initial traits.
        traits: Patch,
    },
    /// Joins the profiles of `join` into the profile (they then redirect to it), then
    /// applies the patch to it.
    Patch {
        /// The validated patch.
        patch: Patch,
        /// The profiles found to be the same customer, joined into this one first.
        join: Vec<ProfileId>,
    },
    /// Deletes the profile.
    Delete,
}

/// A write a request asks for, before identity resolution.
#[derive(Debug)]
pub(crate) enum Write {
    /// Create (or resolve to an existing profile) one profile per item: `POST .../Profiles`
    /// holds one, `PUT .../Profiles/Bulk` up to 1000. Each item: its validated traits and
    /// their wire form (logged verbatim).
    Create(Vec<(Patch, Bytes)>),
    /// Patch a profile (joining it with others that hold an identifier it sets).
    Patch {
        /// The profile named in the path.
        id: ProfileId,
        /// The validated patch.
        patch: Patch,
        /// The request body, logged verbatim.
        body: Bytes,
    },
    /// Delete a profile.
    Delete(ProfileId),
}

/// Why an operation was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StoreError {
    /// A patch or delete of a profile that does not exist once every accepted operation is
    /// applied.
    NotFound,
    /// A patch or delete of a profile joined into this one.
    Moved(ProfileId),
    /// The storage cannot take or answer anything now; the message says why.
    Unavailable(String),
}

/// A fresh profile id: a UUIDv7, so ids sort in creation order (its first 48 bits are the
/// time in milliseconds, and the `uuid` crate keeps ids drawn in one millisecond increasing).
pub(crate) fn fresh_profile_id() -> ProfileId {
    ProfileId::from_bits(uuid::Uuid::now_v7().as_u128())
}

/// The current UTC time as the API's `date-time`, to the second: `2025-01-01T12:00:00Z`.
pub(crate) fn now_rfc3339() -> String {
    format!("{:.0}", jiff::Timestamp::now())
}

/// Where operations are accepted and applied profiles read.
pub(crate) trait Storage: Send + Sync {
    /// Where `id` stands once every accepted operation is applied: live, joined into
    /// another profile, or missing.
    fn locate<'a>(&'a self, id: &'a ProfileId) -> Pending<'a, Result<Located, StoreError>>;

    /// The canonical profiles holding the identifier `key`, at most 100.
    fn lookup<'a>(&'a self, key: &'a Key) -> Pending<'a, Result<Vec<ProfileId>, StoreError>>;

    /// Resolves identities, stamps and makes `write` durable (as one unit: all of it or none
    /// is recovered), and answers the profiles it acted on (for a create, the profile each
    /// item resolved to). `event_time` replaces the clock's instant in the stamps.
    /// The checks and the acceptance are one step, so no patch is accepted after a delete it
    /// was checked before.
    fn accept(
        &self,
        write: Write,
        event_time: Option<Stamp>,
    ) -> Pending<'_, Result<Vec<ProfileId>, StoreError>>;

    /// The stored profile as the worker has applied it so far.
    fn profile<'a>(
        &'a self,
        id: &'a ProfileId,
    ) -> Pending<'a, Result<Option<Arc<StoredProfile>>, StoreError>>;

    /// The sequence number of the last operation the worker has applied, for the drain on
    /// shutdown; `None` if this storage cannot tell.
    fn applied_seq(&self) -> Option<u64> {
        None
    }

    /// The sequence number of the last operation accepted, for the drain on shutdown;
    /// `None` if this storage cannot tell.
    fn accepted_seq(&self) -> Option<u64> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_ids_sort_in_creation_order() {
        let ids: Vec<ProfileId> = (0..10_000).map(|_| fresh_profile_id()).collect();
        assert!(ids.windows(2).all(|pair| pair[0] < pair[1]));
        // A UUIDv7 in the TTID form: `[0-7][0-9a-z]{25}` after the prefix.
        assert!(ids[0].as_str().parse::<ProfileId>().is_ok());
    }

    #[test]
    fn timestamps_are_rfc3339_to_the_second() {
        let now = now_rfc3339();
        assert_eq!(now.len(), "2025-01-01T12:00:00Z".len(), "{now}");
        assert!(now.parse::<jiff::Timestamp>().is_ok(), "{now}");
    }
}
