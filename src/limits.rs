//! The documented per-patch and per-value limits.

use serde::{Deserialize, Serialize};

/// Limits every patch is checked against, on top of the schema's own rules.
///
/// The defaults are the API's documented limits. A store can override them with
/// [`StoreSchema::with_limits`](crate::StoreSchema::with_limits).
///
/// # Examples
///
/// ```
/// use profile_traits::Limits;
///
/// let strict = Limits { max_string_chars: 256, ..Limits::default() };
/// assert_eq!(strict.max_array_items, 100);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Limits {
    /// Trait groups one patch may name (documented: 50).
    pub max_groups_per_patch: usize,
    /// Traits one patch may name in one group (documented: 99).
    pub max_traits_per_group: usize,
    /// Unicode scalar values in a string, alone or in an array (documented: 1024).
    pub max_string_chars: usize,
    /// Items in an array (documented: 100).
    pub max_array_items: usize,
    /// The smallest integer allowed (documented: the 32-bit signed range).
    pub min_integer: i64,
    /// The largest integer allowed (documented: the 32-bit signed range).
    pub max_integer: i64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_groups_per_patch: 50,
            max_traits_per_group: 99,
            max_string_chars: 1024,
            max_array_items: 100,
            min_integer: i32::MIN.into(),
            max_integer: i32::MAX.into(),
        }
    }
}
