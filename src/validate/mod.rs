//! Checking a patch against a schema, without applying it; parsing and checking in one
//! pass in `one_pass`.

mod one_pass;

use serde_json::Number;

use crate::error::{PatchError, Violation, ViolationKind, Violations};
use crate::limits::Limits;
use crate::patch::{GroupView, Patch, TraitChange};
use crate::pointer::{group_pointer, pointer, trait_pointer};
use crate::resolve::check_owned;
use crate::schema::{
    ArrayRule, DataType, GroupDefinition, NumberRule, StoreSchema, StringRule, TraitDefinition,
    ValidationRule,
};
use crate::value::{Scalar, TraitValue};

impl StoreSchema {
    /// Checks `patch` against this schema and its limits without applying it, so a service
    /// can answer 400 before it accepts a patch for later processing.
    ///
    /// A patch that passes here is exactly a patch that [`merge`](crate::merge) accepts.
    /// A valid patch costs no allocation.
    ///
    /// # Errors
    ///
    /// A [`PatchError`] listing every violation in document order:
    /// - a group the schema does not declare ([`ViolationKind::UnknownGroup`]);
    /// - a trait its group does not declare, also when removed ([`ViolationKind::UnknownTrait`]);
    /// - a value whose type is not the trait's `dataType` ([`ViolationKind::WrongType`]);
    /// - a value that breaks the trait's `validationRule` ([`ViolationKind::RuleBroken`]);
    /// - more groups or traits than one patch may name, a string or array over its size
    ///   limit, an integer outside the allowed range ([`ViolationKind::LimitExceeded`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use profile_traits::{Patch, StoreSchema};
    ///
    /// let schema: StoreSchema = serde_json::from_str(r#"[{"displayName": "Contact",
    ///     "traits": {"email": {"dataType": "STRING"}, "age": {"dataType": "NUMBER"}}}]"#).unwrap();
    /// let patch: Patch = r#"{"traits": {"Contact": {"age": "ten", "fax": null}, "Billing": {}}}"#
    ///     .parse().unwrap();
    /// let error = schema.validate(&patch).unwrap_err();
    /// let messages: Vec<&str> = error.violations().iter().map(|v| v.message()).collect();
    /// assert_eq!(messages, [
    ///     "`/traits/Contact/age`: expected a number, found a string",
    ///     "`/traits/Contact/fax`: trait `fax` is not declared in trait group `Contact`",
    ///     "`/traits/Billing`: trait group `Billing` is not declared in the schema",
    /// ]);
    /// ```
    pub fn validate(&self, patch: &Patch) -> Result<(), PatchError> {
        let mut violations = Violations::default();
        check_patch(self, patch, &mut violations);
        violations.into_result()
    }
}

impl StoreSchema {
    /// Parses a patch from JSON bytes and checks it against this schema: the checks of
    /// [`Patch::from_slice`], then of [`StoreSchema::validate`], with the same result.
    ///
    /// A valid patch is read in one pass: each name is resolved in the schema as it is read,
    /// each value checked as soon as it is read. Any other input goes through the full
    /// parser and checks, so the report is theirs, every violation in document order.
    ///
    /// The patch comes back with its names resolved in this schema, so that a merge under
    /// this schema (or a clone of it) neither checks it again nor looks its names up by
    /// hash: this is the fast way in for a service ([`merge_in_place_owned`](crate::merge_in_place_owned),
    /// [`StoredProfile::apply_owned`](crate::StoredProfile::apply_owned)). Changing the
    /// patch, or merging it under another schema, goes back to the checks.
    ///
    /// # Errors
    ///
    /// Every violation of the wire format; when there is none, every violation of the schema.
    ///
    /// # Examples
    ///
    /// ```
    /// use profile_traits::{merge_in_place_owned, Profile, StoreSchema};
    ///
    /// let schema: StoreSchema = serde_json::from_str(
    ///     r#"[{"displayName": "Contact", "traits": {"email": {"dataType": "STRING"}}}]"#)?;
    /// let patch = schema.parse_patch(br#"{"traits": {"Contact": {"email": "a@b.c"}}}"#)?;
    /// let mut profile = Profile::new();
    /// assert_eq!(merge_in_place_owned(&mut profile, patch, &schema)?, 1);
    ///
    /// let error = schema.parse_patch(br#"{"traits": {"Contact": {"fax": "1"}}}"#).unwrap_err();
    /// assert_eq!(error.violations()[0].pointer(), "/traits/Contact/fax");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn parse_patch(&self, bytes: &[u8]) -> Result<Patch, PatchError> {
        let mut patch = Patch::with_capacity_for_input(bytes.len());
        if one_pass::read_valid(bytes, self, &mut patch).is_some() {
            return Ok(patch);
        }
        // Not a valid patch, or spelled in a way the one pass leaves out: the full parser
        // and checks, for their report (with the buffers of the part read, kept).
        drop(patch);
        let mut patch = Patch::from_slice(bytes)?;
        check_owned(&mut patch, self)?;
        Ok(patch)
    }
}

fn check_patch(schema: &StoreSchema, patch: &Patch, out: &mut Violations) {
    let by_rank = patch.is_resolved_in(schema);
    let limits = schema.limits();
    let groups = patch.group_views();
    if groups.len() > limits.max_groups_per_patch {
        out.push(Violation::new(
            ViolationKind::LimitExceeded,
            "/traits".to_owned(),
            format_args!(
                "patch names {} trait groups, at most {} allowed",
                groups.len(),
                limits.max_groups_per_patch
            ),
        ));
    }
    for group in groups {
        // Once the capped report overflows there is nothing more worth finding.
        if out.is_truncated() {
            return;
        }
        match schema.lookup(group.key, by_rank) {
            Some((_, _, definition)) => {
                check_group(definition, by_rank, limits, patch, &group, out)
            }
            None => out.push(Violation::new(
                ViolationKind::UnknownGroup,
                group_pointer(group.name),
                format_args!("trait group `{}` is not declared in the schema", group.name),
            )),
        }
    }
}

fn check_group(
    definition: &GroupDefinition,
    by_rank: bool,
    limits: &Limits,
    patch: &Patch,
    group: &GroupView<'_>,
    out: &mut Violations,
) {
    if group.entries.len() > limits.max_traits_per_group {
        out.push(Violation::new(
            ViolationKind::LimitExceeded,
            group_pointer(group.name),
            format_args!(
                "patch names {} traits in this group, at most {} allowed",
                group.entries.len(),
                limits.max_traits_per_group
            ),
        ));
    }
    for entry in group.entries {
        if out.is_truncated() {
            return;
        }
        let key = patch.entry_key(entry);
        let name = key.name;
        let Some((_, _, trait_definition)) = definition.lookup(key, by_rank) else {
            out.push(Violation::new(
                ViolationKind::UnknownTrait,
                trait_pointer(group.name, name),
                format_args!(
                    "trait `{name}` is not declared in trait group `{}`",
                    group.name
                ),
            ));
            continue;
        };
        if let TraitChange::Set(value) = &entry.change {
            let place = Place {
                group: group.name,
                name,
            };
            check_value(trait_definition, limits, value, place, out);
        }
    }
}

/// The trait a value belongs to, for pointers built only when a violation is found.
#[derive(Clone, Copy)]
struct Place<'a> {
    group: &'a str,
    name: &'a str,
}

impl Place<'_> {
    fn pointer(self) -> String {
        trait_pointer(self.group, self.name)
    }

    fn item_pointer(self, index: usize) -> String {
        pointer(["traits", self.group, self.name, &index.to_string()])
    }
}

fn check_value(
    definition: &TraitDefinition,
    limits: &Limits,
    value: &TraitValue,
    place: Place<'_>,
    out: &mut Violations,
) {
    let rule = definition.validation_rule();
    match (definition.data_type(), value) {
        (DataType::String, TraitValue::String(s)) => {
            check_string_limit(s, limits, || place.pointer(), out);
            if let Some(ValidationRule::String(rule)) = rule {
                check_string_rule(s, rule, place, out);
            }
        }
        (DataType::Number, TraitValue::Number(n)) => {
            check_integer_limit(n, limits, || place.pointer(), out);
            if let Some(ValidationRule::Number(rule)) = rule {
                check_number_rule(n, rule, place, out);
            }
        }
        (DataType::Boolean, TraitValue::Bool(_)) => {}
        (DataType::Array, TraitValue::Array(items)) => {
            check_array_limits(items, limits, place, out);
            if let Some(ValidationRule::Array(rule)) = rule {
                check_array_rule(items, rule, place, out);
            }
        }
        (expected, found) => out.push(Violation::new(
            ViolationKind::WrongType,
            place.pointer(),
            format_args!(
                "expected {}, found {}",
                expected.value_name(),
                found.type_name()
            ),
        )),
    }
}

/// The number of Unicode scalar values in `s`.
fn char_count(s: &str) -> usize {
    s.chars().count()
}

fn check_string_limit(
    s: &str,
    limits: &Limits,
    pointer: impl FnOnce() -> String,
    out: &mut Violations,
) {
    // A string of at most `max` bytes has at most `max` characters: no need to count.
    if s.len() <= limits.max_string_chars {
        return;
    }
    let chars = char_count(s);
    if chars > limits.max_string_chars {
        out.push(Violation::new(
            ViolationKind::LimitExceeded,
            pointer(),
            format_args!(
                "string has {chars} characters, at most {} allowed",
                limits.max_string_chars
            ),
        ));
    }
}

fn check_string_rule(s: &str, rule: &StringRule, place: Place<'_>, out: &mut Violations) {
    if let Some(min) = rule.min_length {
        let chars = char_count(s) as u64;
        if chars < min {
            out.push(Violation::new(
                ViolationKind::RuleBroken,
                place.pointer(),
                format_args!("string has {chars} characters, fewer than `minLength` {min}"),
            ));
        }
    }
    if let Some(max) = rule.max_length
        && s.len() as u64 > max
    {
        let chars = char_count(s) as u64;
        if chars > max {
            out.push(Violation::new(
                ViolationKind::RuleBroken,
                place.pointer(),
                format_args!("string has {chars} characters, more than `maxLength` {max}"),
            ));
        }
    }
    if let Some(pattern) = &rule.pattern
        && !pattern.is_match(s)
    {
        out.push(Violation::new(
            ViolationKind::RuleBroken,
            place.pointer(),
            format_args!("string does not match pattern `{}`", pattern.as_str()),
        ));
    }
}

/// Whether `n` is a whole number outside the allowed integer range.
///
/// Whole numbers written as floats (`3e9`, `2147483648.0`) count too, so the 32-bit limit
/// cannot be dodged by spelling; fractional numbers are not integers and pass.
fn integer_out_of_range(n: &Number, limits: &Limits) -> bool {
    if let Some(i) = n.as_i64() {
        return i < limits.min_integer || i > limits.max_integer;
    }
    if n.is_u64() {
        return true;
    }
    let f = n.as_f64().unwrap_or(0.0);
    // Range first: `fract` is a library call, and most numbers are in range.
    (f < limits.min_integer as f64 || f > limits.max_integer as f64) && f.fract() == 0.0
}

fn check_integer_limit(
    n: &Number,
    limits: &Limits,
    pointer: impl FnOnce() -> String,
    out: &mut Violations,
) {
    if integer_out_of_range(n, limits) {
        out.push(Violation::new(
            ViolationKind::LimitExceeded,
            pointer(),
            format_args!(
                "integer {n} is outside the allowed range {} to {}",
                limits.min_integer, limits.max_integer
            ),
        ));
    }
}

fn check_number_rule(n: &Number, rule: &NumberRule, place: Place<'_>, out: &mut Violations) {
    let value = n.as_f64().unwrap_or(f64::NAN);
    if let Some(min) = rule.min
        && value < min
    {
        out.push(Violation::new(
            ViolationKind::RuleBroken,
            place.pointer(),
            format_args!("number {n} is less than `min` {min}"),
        ));
    }
    if let Some(max) = rule.max
        && value > max
    {
        out.push(Violation::new(
            ViolationKind::RuleBroken,
            place.pointer(),
            format_args!("number {n} is greater than `max` {max}"),
        ));
    }
}

fn check_array_limits(items: &[Scalar], limits: &Limits, place: Place<'_>, out: &mut Violations) {
    if items.len() > limits.max_array_items {
        out.push(Violation::new(
            ViolationKind::LimitExceeded,
            place.pointer(),
            format_args!(
                "array has {} items, at most {} allowed",
                items.len(),
                limits.max_array_items
            ),
        ));
    }
    for (index, item) in items.iter().enumerate() {
        match item {
            Scalar::String(s) => check_string_limit(s, limits, || place.item_pointer(index), out),
            Scalar::Number(n) => check_integer_limit(n, limits, || place.item_pointer(index), out),
            Scalar::Bool(_) => {}
        }
    }
}

fn check_array_rule(items: &[Scalar], rule: &ArrayRule, place: Place<'_>, out: &mut Violations) {
    let len = items.len() as u64;
    if let Some(min) = rule.min_items
        && len < min
    {
        out.push(Violation::new(
            ViolationKind::RuleBroken,
            place.pointer(),
            format_args!("array has {len} items, fewer than `minItems` {min}"),
        ));
    }
    if let Some(max) = rule.max_items
        && len > max
    {
        out.push(Violation::new(
            ViolationKind::RuleBroken,
            place.pointer(),
            format_args!("array has {len} items, more than `maxItems` {max}"),
        ));
    }
}
