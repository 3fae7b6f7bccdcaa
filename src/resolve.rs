//! The names of a checked patch resolved in its schema, for the merges.

use crate::error::PatchError;
use crate::names::{Hashed, Name};
use crate::patch::Patch;
use crate::schema::{GroupDefinition, StoreSchema};

/// Checks `patch` against `schema`, unless it was parsed against it (and so checked there);
/// returns whether its names carry their ranks in `schema`.
pub(crate) fn check_borrowed(patch: &Patch, schema: &StoreSchema) -> Result<bool, PatchError> {
    if patch.is_resolved_in(schema) {
        Ok(true)
    } else {
        schema.validate(patch).map(|()| false)
    }
}

/// Checks `patch`, taken by value, against `schema`, unless it was parsed against it; its
/// names are resolved first, so that the check and the merge look each one up once.
pub(crate) fn check_owned(patch: &mut Patch, schema: &StoreSchema) -> Result<(), PatchError> {
    if !patch.is_resolved_in(schema) {
        patch.resolve_names(schema);
        schema.validate(patch)?;
    }
    Ok(())
}

/// A group of a validated patch, resolved in the schema.
pub(crate) struct GroupTarget<'s> {
    /// The name's hash, the same in the schema, the patch and profiles.
    pub(crate) hash: u32,
    pub(crate) rank: u32,
    /// The name as the schema keeps it, shared with profiles.
    pub(crate) name: &'s Name,
    pub(crate) definition: &'s GroupDefinition,
    /// Whether the patch's trait names carry their ranks in the schema.
    pub(crate) by_rank: bool,
}

impl<'s> GroupTarget<'s> {
    /// The group `key` of a patch that `schema` accepted.
    pub(crate) fn of(key: Hashed<'_>, schema: &'s StoreSchema, by_rank: bool) -> Self {
        let (rank, name, definition) = schema
            .lookup(key, by_rank)
            .expect("validated: the schema declares every group of the patch");
        GroupTarget {
            hash: key.hash,
            rank,
            name,
            definition,
            by_rank,
        }
    }

    /// The trait `key` of this group of the patch: its rank and its name as the schema keeps it.
    pub(crate) fn resolve(&self, key: Hashed<'_>) -> (u32, &'s Name) {
        let (rank, name, _) = self
            .definition
            .lookup(key, self.by_rank)
            .expect("validated: the group declares every trait of the patch");
        (rank, name)
    }
}
