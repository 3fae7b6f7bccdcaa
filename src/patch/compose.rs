//! Composing patches: one patch doing what two do one after the other.

use super::Patch;

impl Patch {
    /// The single patch that does what `self` then `later` do.
    ///
    /// For each trait, the change of `later` wins; traits only `later` names come after the
    /// ones of `self`. Merging the composition gives a profile equal to merging `self`, then
    /// `later`: the same traits with the same values (`==`). Only the order can differ, in
    /// two cases: a trait that `self` removes and `later` sets again goes to the end of its
    /// group when merged one by one, but keeps its place when merged composed; likewise a
    /// group that `self` empties (and so drops) and `later` fills again goes to the end of
    /// the profile one by one, but keeps its place composed.
    ///
    /// The composition can name more traits than one patch may ([`Limits`](crate::Limits)),
    /// so validate it before relying on it.
    ///
    /// # Examples
    ///
    /// ```
    /// use profile_traits::Patch;
    ///
    /// let first: Patch = r#"{"traits": {"Contact": {"email": "a@b.c", "phone": "1"}}}"#.parse().unwrap();
    /// let later: Patch = r#"{"traits": {"Contact": {"phone": null, "city": "Paris"}}}"#.parse().unwrap();
    /// let both: Patch = r#"{"traits": {"Contact": {"email": "a@b.c", "phone": null, "city": "Paris"}}}"#
    ///     .parse().unwrap();
    /// assert_eq!(first.compose(&later), both);
    /// ```
    pub fn compose(&self, later: &Patch) -> Patch {
        let mut composed = self.clone();
        for group in later.group_views() {
            // Named even when empty, so the composition names every group either names.
            composed.group_index_or_insert(group.name);
            for entry in group.entries {
                composed.insert(group.name, later.name(entry.name), entry.change.clone());
            }
        }
        composed
    }
}
