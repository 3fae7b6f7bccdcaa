//! The streaming parser of a patch's JSON form: one pass, every wire-format violation in
//! document order, names borrowed from the input.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserialize, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};

use smallvec::SmallVec;

use super::name_text::NameText;
use super::spare::{self, Buffers};
use super::{Entry, GroupEntry, Patch, TraitChange};
use crate::error::{PatchError, Violation, ViolationKind, Violations};
use crate::names::KeySeed;
use crate::pointer::{group_pointer, pointer, trait_pointer};
use crate::value::{ParsedValue, ParsedValueVisitor};

/// Keys of one object checked for repetition by scanning; past this many, by a set.
const SCAN_KEYS: usize = 32;

/// The keys of one JSON object seen so far that are not in the patch: the check for a
/// repeated key, for the `traits` object and each group's object alike.
#[derive(Default)]
struct SeenKeys<'de> {
    /// Names whose value was refused: seen all the same, so a repetition is still reported.
    refused: Vec<Cow<'de, str>>,
    /// Past a few keys, a set finds repetitions: linear, not quadratic, time on hostile input.
    set: Option<HashSet<Cow<'de, str>>>,
}

impl<'de> SeenKeys<'de> {
    /// Whether `name` was seen before in this object, among the `accepted` names (those the
    /// patch holds) and the refused ones; notes it as seen.
    ///
    /// `name` as a `Cow`, so the set keeps a borrowed key borrowed.
    #[allow(clippy::ptr_arg)]
    fn repeats<'a>(
        &mut self,
        name: &Cow<'de, str>,
        accepted: impl ExactSizeIterator<Item = &'a str> + Clone,
    ) -> bool {
        if self.set.is_none() && accepted.len() + self.refused.len() > SCAN_KEYS {
            let names = accepted.clone().map(|n| Cow::Owned(n.to_owned()));
            self.set = Some(names.chain(self.refused.iter().cloned()).collect());
        }
        match &mut self.set {
            Some(set) => !set.insert(name.clone()),
            None => accepted.into_iter().any(|n| n == name.as_ref()) || self.refused.contains(name),
        }
    }

    /// Notes `name` as seen although its value was refused.
    fn refuse(&mut self, name: Cow<'de, str>) {
        if self.set.is_none() {
            self.refused.push(name);
        }
    }
}

impl Patch {
    /// An empty patch with room for the changes a JSON document of `input_len` bytes can
    /// hold, so that parsing rarely grows a buffer: each trait takes at least a few bytes of
    /// it (`"a":1,`), typically more than 24. Names start inside the patch and move to the
    /// heap only when they overflow. The buffers are the ones the thread kept from the last
    /// patch it dropped, if any ([`spare`]).
    pub(crate) fn with_capacity_for_input(input_len: usize) -> Self {
        const MAX_PRESIZED_BYTES: usize = 64 * 1024;
        const BYTES_PER_ENTRY: usize = 24;
        let bytes = input_len.min(MAX_PRESIZED_BYTES);
        let Buffers {
            names,
            groups,
            mut entries,
        } = spare::take();
        let names = if names.capacity() > 0 {
            NameText::Heap(names)
        } else {
            NameText::default()
        };
        entries.reserve(bytes / BYTES_PER_ENTRY);
        Patch {
            names,
            groups: SmallVec::from_vec(groups),
            entries,
            resolved_for: None,
        }
    }

    /// Parses a patch from JSON bytes.
    ///
    /// # Errors
    ///
    /// A [`PatchError`] listing every problem of the wire format, in document order:
    /// - malformed JSON or invalid UTF-8, with line and column (`{"traits": `);
    /// - a key repeated in one object (`{"traits": {"A": {"x": 1, "x": 2}}}`);
    /// - a top-level key other than `traits` (`{"trait": {}}`);
    /// - a document, `traits` or group that is not an object (`{"traits": {"A": null}}`);
    /// - a value outside the domain (`{"traits": {"A": {"x": {"y": 1}}}}`).
    ///
    /// # Examples
    ///
    /// ```
    /// use profile_traits::{Patch, ViolationKind};
    ///
    /// let error = Patch::from_slice(br#"{"traits": {"Contact": null}}"#).unwrap_err();
    /// assert_eq!(error.violations()[0].kind(), ViolationKind::NotAnObject);
    /// assert_eq!(error.violations()[0].pointer(), "/traits/Contact");
    /// assert_eq!(
    ///     error.violations()[0].message(),
    ///     "`/traits/Contact`: expected an object, found null"
    /// );
    /// ```
    pub fn from_slice(bytes: &[u8]) -> Result<Patch, PatchError> {
        // Checking UTF-8 once for the whole input is cheaper than serde_json checking each
        // string (a sixth of the parse time of the small bench patch); invalid input goes
        // through the slice reader, which says where the bad byte is.
        match std::str::from_utf8(bytes) {
            Ok(text) => text.parse(),
            Err(_) => parse_json(
                &mut serde_json::Deserializer::from_slice(bytes),
                bytes.len(),
            ),
        }
    }

    /// Parses a patch from a `serde_json::Value`, with the checks of [`Patch::from_slice`].
    ///
    /// # Errors
    ///
    /// As [`Patch::from_slice`], except that a `Value` cannot be malformed or repeat a key.
    pub fn from_value(value: &serde_json::Value) -> Result<Patch, PatchError> {
        let mut state = ParseState::default();
        let parsed = PatchSeed {
            state: &mut state,
            capacity_hint: 0,
        }
        .deserialize(value);
        finish(parsed, state, |e| {
            Violation::new(ViolationKind::InvalidValue, String::new(), e)
        })
    }
}

impl FromStr for Patch {
    type Err = PatchError;

    /// Parses a patch from a JSON string, as [`Patch::from_slice`].
    fn from_str(s: &str) -> Result<Patch, PatchError> {
        parse_json(&mut serde_json::Deserializer::from_str(s), s.len())
    }
}

impl<'de> Deserialize<'de> for Patch {
    /// Runs the checks of [`Patch::from_slice`]; the error message lists every violation.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut state = ParseState::default();
        let patch = PatchSeed {
            state: &mut state,
            capacity_hint: 0,
        }
        .deserialize(d)?;
        match PatchError::from_violations(state.violations) {
            None => Ok(patch),
            Some(error) => Err(de::Error::custom(error)),
        }
    }
}

/// Parses a whole JSON document into a patch, mapping syntax errors to violations.
fn parse_json<'de, R: serde_json::de::Read<'de>>(
    deserializer: &mut serde_json::Deserializer<R>,
    input_len: usize,
) -> Result<Patch, PatchError> {
    let mut state = ParseState::default();
    let parsed = PatchSeed {
        state: &mut state,
        capacity_hint: input_len,
    }
    .deserialize(&mut *deserializer)
    .and_then(|patch| deserializer.end().map(|()| patch));
    let error_pointer = state.error_pointer.take();
    finish(parsed, state, |e| {
        let text = e.to_string();
        let reason = text
            .rsplit_once(" at line ")
            .map_or(text.as_str(), |(reason, _)| reason);
        Violation::malformed(
            error_pointer.unwrap_or_default(),
            e.line(),
            e.column(),
            reason,
        )
    })
}

/// The patch, or every violation: the wire-format ones collected while parsing, and the
/// error that stopped the parser, if any.
fn finish<E>(
    parsed: Result<Patch, E>,
    mut state: ParseState,
    stopped: impl FnOnce(E) -> Violation,
) -> Result<Patch, PatchError> {
    match parsed {
        Ok(patch) => state.violations.into_result().map(|()| patch),
        Err(e) => {
            state.violations.push(stopped(e));
            state.violations.into_result().map(|()| Patch::new())
        }
    }
}

/// What parsing has found so far besides the patch itself.
#[derive(Default)]
struct ParseState {
    violations: Violations,
    /// Where the error that stopped the parser happened; set by the innermost visitor that
    /// saw it, so that outer ones leave it alone.
    error_pointer: Option<String>,
}

impl ParseState {
    fn note_error_at(&mut self, place: impl FnOnce() -> String) {
        if self.error_pointer.is_none() {
            self.error_pointer = Some(place());
        }
    }

    fn violation(&mut self, kind: ViolationKind, pointer: String, reason: impl fmt::Display) {
        self.violations.push(Violation::new(kind, pointer, reason));
    }
}

/// Handles a JSON object; any other JSON value is consumed and reported by what it is.
trait ObjectHandler<'de> {
    type Output;

    fn handle<A: MapAccess<'de>>(self, map: A) -> Result<Self::Output, A::Error>;
}

/// Drives an [`ObjectHandler`]: `Ok(output)` for an object, `Err(found)` for anything else.
struct ObjectVisitor<H>(H);

impl<'de, H: ObjectHandler<'de>> Visitor<'de> for ObjectVisitor<H> {
    type Value = Result<H::Output, &'static str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        self.0.handle(map).map(Ok)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Err("a boolean"))
    }

    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Err("a number"))
    }

    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Err("a number"))
    }

    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Err("a number"))
    }

    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Err("a string"))
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Err("null"))
    }

    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(Err("null"))
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Err("an array"))
    }
}

struct PatchSeed<'s> {
    state: &'s mut ParseState,
    /// The input's length in bytes, when known, to size the patch's buffers once.
    capacity_hint: usize,
}

impl<'de> DeserializeSeed<'de> for PatchSeed<'_> {
    type Value = Patch;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Patch, D::Error> {
        let state = self.state;
        let top_level = TopLevel {
            state: &mut *state,
            capacity_hint: self.capacity_hint,
        };
        match d.deserialize_any(ObjectVisitor(top_level))? {
            Ok(patch) => Ok(patch),
            Err(found) => {
                state.violation(
                    ViolationKind::NotAnObject,
                    String::new(),
                    format_args!("expected an object, found {found}"),
                );
                Ok(Patch::new())
            }
        }
    }
}

/// The document: `{"traits": ...}` and nothing else.
struct TopLevel<'s> {
    state: &'s mut ParseState,
    capacity_hint: usize,
}

impl<'de> ObjectHandler<'de> for TopLevel<'_> {
    type Output = Patch;

    fn handle<A: MapAccess<'de>>(self, mut map: A) -> Result<Patch, A::Error> {
        let state = self.state;
        let mut patch = Patch::with_capacity_for_input(self.capacity_hint);
        let mut traits_seen = false;
        while let Some(key) = map.next_key_seed(KeySeed)? {
            if key != "traits" {
                state.violation(
                    ViolationKind::UnexpectedKey,
                    pointer([key.as_ref()]),
                    format_args!("unexpected key `{key}`, a patch has only `traits`"),
                );
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            if std::mem::replace(&mut traits_seen, true) {
                state.violation(
                    ViolationKind::DuplicateKey,
                    "/traits".to_owned(),
                    "key `traits` appears more than once",
                );
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            let groups = map
                .next_value_seed(ObjectSeed(Groups {
                    state: &mut *state,
                    patch: &mut patch,
                }))
                .inspect_err(|_| state.note_error_at(|| "/traits".to_owned()))?;
            match groups {
                Ok(()) => {}
                Err(found) => state.violation(
                    ViolationKind::NotAnObject,
                    "/traits".to_owned(),
                    format_args!("expected an object, found {found}"),
                ),
            }
        }
        Ok(patch)
    }
}

/// Deserializes with an [`ObjectVisitor`].
struct ObjectSeed<H>(H);

impl<'de, H: ObjectHandler<'de>> DeserializeSeed<'de> for ObjectSeed<H> {
    type Value = Result<H::Output, &'static str>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(ObjectVisitor(self.0))
    }
}

/// The `traits` object: group names to groups.
struct Groups<'s, 'p> {
    state: &'s mut ParseState,
    patch: &'p mut Patch,
}

impl<'de> ObjectHandler<'de> for Groups<'_, '_> {
    type Output = ();

    fn handle<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Groups { state, patch } = self;
        let mut keys = SeenKeys::default();
        while let Some(name) = map.next_key_seed(KeySeed)? {
            let accepted = patch.groups.iter().map(|g| patch.name(g.name));
            if keys.repeats(&name, accepted) {
                state.violation(
                    ViolationKind::DuplicateKey,
                    group_pointer(&name),
                    format_args!("key `{name}` appears more than once"),
                );
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            let first_entry = patch.entries.len();
            let traits = map
                .next_value_seed(ObjectSeed(Traits {
                    state: &mut *state,
                    patch: &mut *patch,
                    group: &name,
                }))
                .inspect_err(|_| state.note_error_at(|| group_pointer(&name)))?;
            match traits {
                Ok(()) => {
                    let name = patch.push_name(&name);
                    let entries = first_entry..patch.entries.len();
                    patch.groups.push(GroupEntry { name, entries });
                }
                Err(found) => {
                    state.violation(
                        ViolationKind::NotAnObject,
                        group_pointer(&name),
                        format_args!("expected an object, found {found}"),
                    );
                    keys.refuse(name);
                }
            }
        }
        Ok(())
    }
}

/// One group's object: trait names to values or `null`, appended to the patch's entries.
struct Traits<'s, 'p, 'n> {
    state: &'s mut ParseState,
    patch: &'p mut Patch,
    group: &'n str,
}

impl<'de> ObjectHandler<'de> for Traits<'_, '_, '_> {
    type Output = ();

    fn handle<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Traits {
            state,
            patch,
            group,
        } = self;
        let first_entry = patch.entries.len();
        let mut keys = SeenKeys::default();
        while let Some(name) = map.next_key_seed(KeySeed)? {
            let accepted = patch.entries[first_entry..]
                .iter()
                .map(|e| patch.name(e.name));
            if keys.repeats(&name, accepted) {
                state.violation(
                    ViolationKind::DuplicateKey,
                    trait_pointer(group, &name),
                    format_args!("key `{name}` appears more than once"),
                );
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            let value = map
                .next_value_seed(TraitValueSeed)
                .inspect_err(|_| state.note_error_at(|| trait_pointer(group, &name)))?;
            let change = match value {
                ParsedValue::Value(value) => TraitChange::Set(value),
                ParsedValue::Null => TraitChange::Remove,
                ParsedValue::Invalid(found, None) => {
                    state.violation(
                        ViolationKind::InvalidValue,
                        trait_pointer(group, &name),
                        format_args!(
                            "expected a string, number, boolean, flat array of those, or null, found {found}"
                        ),
                    );
                    keys.refuse(name);
                    continue;
                }
                ParsedValue::Invalid(found, Some(index)) => {
                    state.violation(
                        ViolationKind::InvalidValue,
                        pointer(["traits", group, &name, &index.to_string()]),
                        format_args!("expected a string, number or boolean, found {found}"),
                    );
                    keys.refuse(name);
                    continue;
                }
            };
            let name = patch.push_name(&name);
            patch.entries.push(Entry { name, change });
        }
        Ok(())
    }
}

struct TraitValueSeed;

impl<'de> DeserializeSeed<'de> for TraitValueSeed {
    type Value = ParsedValue;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<ParsedValue, D::Error> {
        d.deserialize_any(ParsedValueVisitor)
    }
}
