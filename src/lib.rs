//! Schema-gated merge of profile trait patches: apply "patch profile traits" requests to
//! customer profiles correctly, atomically and fast.
//!
//! A profile store keeps, per profile, named trait groups (`Contact`, `Activity`, ...) of
//! named traits (`email`, `lastVisited`, ...); a [`StoreSchema`] declares which exist. A
//! [`Patch`] `{"traits": {"Contact": {"email": "a@b.c", "phone": null}}}` is checked against
//! the schema and then merged:
//!
//! | patch says | effect |
//! |---|---|
//! | `"trait": value` | the trait is added (at the end of its group) or replaced whole |
//! | `"trait": null` | the trait is removed; removing an absent trait is a no-op |
//! | nothing about a trait | it keeps its value and position |
//! | a group ends up with no trait | the group is dropped |
//! | any unknown group or trait, wrong type, broken rule or limit | the whole patch is rejected, nothing is applied |
//!
//! # Examples
//!
//! ```
//! use profile_traits::{merge, Patch, Profile, StoreSchema};
//!
//! let schema: StoreSchema = serde_json::from_str(r#"{"traitGroups": [{
//!     "displayName": "Contact",
//!     "traits": {
//!         "email": {"dataType": "STRING", "validationRule": {"ruleType": "STRING", "pattern": "@"}},
//!         "phone": {"dataType": "STRING"}
//!     }
//! }]}"#)?;
//! let profile: Profile = serde_json::from_str(
//!     r#"{"traits": {"Contact": {"email": "old@example.com", "phone": "+13175551234"}}}"#,
//! )?;
//!
//! let patch: Patch = r#"{"traits": {"Contact": {"email": "new@example.com", "phone": null}}}"#.parse()?;
//! let merged = merge(&profile, &patch, &schema)?;
//! assert_eq!(
//!     merged.to_value(),
//!     serde_json::json!({"traits": {"Contact": {"email": "new@example.com"}}})
//! );
//!
//! let bad: Patch = r#"{"traits": {"Contact": {"email": "nope", "fax": "1"}}}"#.parse()?;
//! let error = merge(&profile, &bad, &schema).unwrap_err();
//! assert_eq!(
//!     error.to_string(),
//!     "patch rejected, 2 violations: \
//!      `/traits/Contact/email`: string does not match pattern `@`; \
//!      `/traits/Contact/fax`: trait `fax` is not declared in trait group `Contact`"
//! );
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Operations
//!
//! - [`merge`]: a new profile; the old one is untouched and shares unchanged groups.
//! - [`merge_in_place`]: all or nothing on `&mut Profile`, returning the [`Change`]s made.
//! - [`merge_in_place_owned`]: the same with the patch taken by value, moving its values in.
//! - [`StoreSchema::parse_patch`]: a request body read and checked in one pass, its names
//!   resolved in the schema, so that merges under that schema skip both.
//! - [`StoreSchema::validate`]: the checks alone, to answer 400 before accepting a patch.
//! - [`Patch::compose`], [`Patch::from_changes`], [`Patch::undo`]: coalescing queued
//!   patches, replaying and undoing changes.
//!
//! # Event time
//!
//! A [`StoredProfile`] keeps per trait a live value or a tombstone with the [`Stamp`] of the
//! write that made it, so writes applied in any order reach the same profile and an old
//! write never overwrites a newer one:
//! - [`StoredProfile::apply`]: the stamped merge, reporting stale and touched writes too;
//! - [`StoredProfile::view`]: the API's profile; [`StoredProfile::join`] and
//!   [`StoredProfile::purge`]: replicas and merged customers, and tombstone cleanup;
//! - [`list_traits`]: the `GET .../Traits` listing with keyset page tokens.
//!
//! The semantics and the laws the tests check are in the repository's `SEMANTICS.md`.
//!
//! # Out of scope
//!
//! Storage, HTTP, identity resolution and identifier normalization belong to the service
//! that embeds this crate (the repository's `service/` is one).

#![forbid(unsafe_code)]

mod change;
mod error;
mod id;
mod limits;
mod listing;
mod merge;
mod names;
mod patch;
mod pointer;
mod profile;
mod resolve;
mod schema;
mod stamp;
mod stored;
mod validate;
mod value;

pub use change::{Change, ChangeKind};
pub use error::{
    IdError, ListingError, ListingErrorKind, MAX_VIOLATIONS, PatchError, SchemaError, StampError,
    ValueError, Violation, ViolationKind,
};
pub use id::{ProfileId, StoreId};
pub use limits::Limits;
pub use listing::{
    DEFAULT_PAGE_SIZE, FullTrait, MAX_PAGE_RECORDS, MAX_PAGE_SIZE, SortOrder, TraitPage,
    TraitQuery, list_traits,
};
pub use merge::{merge, merge_in_place, merge_in_place_owned};
pub use patch::{Patch, TraitChange};
pub use profile::{Profile, TraitGroup};
pub use schema::{
    ArrayRule, DataType, GroupDefinition, NumberRule, Pattern, StoreSchema, StringRule,
    TraitDefinition, ValidationRule,
};
pub use stamp::Stamp;
pub use stored::{StoredProfile, StoredTrait};
pub use value::{Scalar, TraitValue};

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
