//! Storage: where an accepted operation is made durable before it is answered 202, and where
//! the worker keeps the profiles it applies them to.
//!
//! [`Storage`] is what the HTTP surface sees; `embedded/` is the implementation that needs no
//! server (a group-committed log, compacted into snapshots while running).

pub(crate) mod embedded;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use profile_traits::{Patch, Profile, ProfileId};

/// A future a storage operation returns (boxed, so that `Storage` can be a trait object).
pub(crate) type Pending<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One accepted operation, in acceptance order.
#[derive(Debug, Clone)]
pub(crate) struct Op {
    /// Its position in acceptance order (assigned when it is made durable; 0 before).
    pub(crate) seq: u64,
    /// The profile it acts on.
    pub(crate) profile: ProfileId,
    /// What it does.
    pub(crate) kind: OpKind,
}

/// What an operation does.
#[derive(Debug, Clone)]
pub(crate) enum OpKind {
    /// Creates the profile with these traits (a patch merged into an empty profile).
    Create {
        /// The creation time, fixed when the request was accepted.
        created_at: String,
        /// The initial traits.
        traits: Patch,
    },
    /// Merges a validated patch into the profile.
    Patch(Patch),
    /// Deletes the profile.
    Delete,
}

/// Why an operation was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StoreError {
    /// A patch or delete of a profile that does not exist once every accepted operation is
    /// applied.
    NotFound,
    /// A create whose id is taken.
    Conflict,
    /// The storage cannot take or answer anything now; the message says why.
    Unavailable(String),
}

/// Where operations are accepted and applied profiles read.
pub(crate) trait Storage: Send + Sync {
    /// Whether `id` exists once every accepted operation is applied (deletes included).
    fn exists<'a>(&'a self, id: &'a ProfileId) -> Pending<'a, Result<bool, StoreError>>;

    /// Makes `op` durable and answers its sequence number, or refuses it: a create of a
    /// taken id ([`StoreError::Conflict`]), a patch or delete of a profile that does not
    /// exist once every operation accepted before it is applied ([`StoreError::NotFound`]).
    /// The check and the acceptance are one step, so no patch is accepted after a delete it
    /// was checked before. `body` is the request body `op` was parsed from.
    fn accept(&self, op: Op, body: Vec<u8>) -> Pending<'_, Result<u64, StoreError>>;

    /// The profile as the worker has applied it so far.
    fn profile<'a>(
        &'a self,
        id: &'a ProfileId,
    ) -> Pending<'a, Result<Option<Arc<Profile>>, StoreError>>;

    /// The sequence number of the last operation the worker has applied, for the drain on
    /// shutdown; `None` if this storage cannot tell.
    fn applied_seq(&self) -> Option<u64> {
        None
    }
}
