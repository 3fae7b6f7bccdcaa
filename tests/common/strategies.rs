//! Proptest strategies: schemas, conforming profiles, valid and invalid patches.
//!
//! Patches are generated as [`Doc`]s, a small JSON text tree that keeps key order and can
//! say what a `serde_json::Value` cannot (a key twice, a `null` group), then parsed with
//! the crate's own parser.

use std::collections::BTreeSet;

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{Index, select, subsequence};
use proptest::string::string_regex;

use profile_traits::{
    ArrayRule, DataType, GroupDefinition, NumberRule, Patch, Pattern, Profile, Scalar, StoreSchema,
    StringRule, TraitDefinition, TraitValue, ValidationRule,
};
use serde_json::{Number, Value};

/// Case count for laws and the model test: proptest's default (256), or `PROPTEST_CASES`.
pub fn config(file: &'static str) -> ProptestConfig {
    ProptestConfig {
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::Direct(file),
        )),
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------------------
// JSON text tree
// ---------------------------------------------------------------------------------------

/// A JSON document as text pieces: objects keep their key order and may repeat a key.
#[derive(Debug, Clone, PartialEq)]
pub enum Doc {
    /// Any JSON text, written as is.
    Raw(String),
    /// An object, members in order.
    Object(Vec<(String, Doc)>),
}

impl Doc {
    /// The JSON value `value` as a document.
    pub fn value(value: &Value) -> Doc {
        Doc::Raw(value.to_string())
    }

    /// The document's JSON text.
    pub fn to_json(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut String) {
        match self {
            Doc::Raw(text) => out.push_str(text),
            Doc::Object(members) => {
                out.push('{');
                for (i, (key, value)) in members.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::from(key.as_str()).to_string());
                    out.push(':');
                    value.write(out);
                }
                out.push('}');
            }
        }
    }

    /// The members of the `traits` object of a patch document.
    pub fn groups_mut(&mut self) -> &mut Vec<(String, Doc)> {
        let Doc::Object(top) = self else {
            panic!("a patch document is an object")
        };
        match top.iter_mut().find(|(k, _)| k == "traits") {
            Some((_, Doc::Object(groups))) => groups,
            _ => panic!("a generated patch has an object `traits`"),
        }
    }

    /// The traits of group `name`, added at the end if the document does not name it.
    pub fn group_mut(&mut self, name: &str) -> &mut Vec<(String, Doc)> {
        let groups = self.groups_mut();
        let index = match groups.iter().position(|(k, _)| k == name) {
            Some(index) => index,
            None => {
                groups.push((name.to_owned(), Doc::Object(Vec::new())));
                groups.len() - 1
            }
        };
        match &mut groups[index].1 {
            Doc::Object(traits) => traits,
            Doc::Raw(_) => panic!("a generated group is an object"),
        }
    }
}

/// Sets `key` to `value` in `members`, in its place if present, else at `at`.
fn upsert(members: &mut Vec<(String, Doc)>, key: &str, value: Doc, at: Index) {
    match members.iter_mut().find(|(k, _)| k == key) {
        Some(slot) => slot.1 = value,
        None => {
            let at = at.index(members.len() + 1);
            members.insert(at, (key.to_owned(), value));
        }
    }
}

// ---------------------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------------------

/// Group names: `^[a-zA-Z0-9_\-\.]{1,64}$`, including one-character and 64-character ones.
pub fn group_name() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => "[A-Z][a-z]{0,7}",
        2 => "[a-zA-Z0-9_.\\-]{1,12}",
        1 => select(vec!["_", ".", "-", "..", "0", "a-b.c_d"]).prop_map(str::to_owned),
        1 => "[a-zA-Z0-9_.\\-]{64}",
    ]
}

/// Trait names: 1-64 characters of anything, with unicode, `~`, `/`, blanks and NUL.
pub fn trait_name() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => "[a-z]{1,6}",
        2 => "\\PC{1,8}",
        2 => select(vec![
            "~", "/", "~0", "~1", "a/b", "c~d", "~/", " ", "\u{200b}", "\t", "\0", "é",
            "e\u{301}", "🎉", "👩‍👩‍👧", "\"", "\\", "traits",
        ])
        .prop_map(str::to_owned),
        1 => "[a-zé🎉~/ ]{64}",
    ]
}

/// Keeps the first of each name.
fn unique<T>(items: Vec<(String, T)>) -> Vec<(String, T)> {
    let mut seen = BTreeSet::new();
    items
        .into_iter()
        .filter(|(name, _)| seen.insert(name.clone()))
        .collect()
}

// ---------------------------------------------------------------------------------------
// Schemas
// ---------------------------------------------------------------------------------------

/// Patterns with a matching core and a filler that keeps a string matching:
/// `(pattern, core, filler class, core first)`.
const PATTERNS: &[(&str, &str, &str, bool)] = &[
    ("@", "@", "\\PC", true),
    ("^[a-z]+$", "a", "[a-z]", true),
    ("^\\d{3}", "123", "\\PC", true),
    ("é|🎉", "🎉", "[\\PC&&[^é🎉]]", false),
    ("^\\S*$", "", "\\S", true),
    ("(a+)+$", "a", "\\PC", false),
];

/// A string of each pattern that does not match it.
const NON_MATCHING: &[&str] = &["x", "A", "ab", "e", " ", "b"];

fn pattern_index(pattern: &Pattern) -> usize {
    PATTERNS
        .iter()
        .position(|(source, ..)| *source == pattern.as_str())
        .expect("generated patterns come from PATTERNS")
}

fn string_rule() -> impl Strategy<Value = StringRule> {
    (
        prop::option::of(0..PATTERNS.len()),
        prop::option::of(0u64..=4),
        prop::option::of(0u64..=12),
    )
        .prop_map(|(pattern, min_length, max_extra)| StringRule {
            pattern: pattern.map(|i| Pattern::new(PATTERNS[i].0).expect("valid pattern")),
            min_length,
            max_length: max_extra.map(|extra| min_length.unwrap_or(0).max(3) + extra),
        })
}

fn number_rule() -> impl Strategy<Value = NumberRule> {
    let bound = |range: std::ops::RangeInclusive<i32>| {
        prop::option::of(
            (range, prop::bool::ANY)
                .prop_map(|(n, half)| f64::from(n) + if half { 0.5 } else { 0.0 }),
        )
    };
    (bound(-1000..=0), bound(1..=1000)).prop_map(|(min, max)| NumberRule { min, max })
}

fn array_rule() -> impl Strategy<Value = ArrayRule> {
    (prop::option::of(0u64..=3), prop::option::of(0u64..=6)).prop_map(|(min, extra)| ArrayRule {
        min_items: min,
        max_items: extra.map(|extra| min.unwrap_or(0).max(1) + extra),
    })
}

/// A trait definition of any data type, with or without each kind of rule.
pub fn trait_definition() -> impl Strategy<Value = TraitDefinition> {
    let rule = prop_oneof![
        string_rule().prop_map(ValidationRule::String),
        number_rule().prop_map(ValidationRule::Number),
        Just(ValidationRule::Boolean),
        array_rule().prop_map(ValidationRule::Array),
    ];
    (
        select(vec![
            DataType::String,
            DataType::Number,
            DataType::Boolean,
            DataType::Array,
        ]),
        prop::option::of(rule),
        prop::option::of("\\PC{0,12}"),
        prop::option::of("[A-Z_]{1,30}"),
    )
        .prop_map(|(data_type, rule, description, promotion)| {
            let mut definition = TraitDefinition::new(data_type);
            // A rule only applies to its own data type; keep the ones that fit.
            if let Some(rule) = rule.filter(|r| rule_type(r) == data_type) {
                definition = definition.with_rule(rule);
            }
            if let Some(description) = description {
                definition = definition.with_description(description);
            }
            if let Some(promotion) = promotion {
                definition = definition.with_id_type_promotion(promotion);
            }
            definition
        })
}

fn rule_type(rule: &ValidationRule) -> DataType {
    match rule {
        ValidationRule::String(_) => DataType::String,
        ValidationRule::Number(_) => DataType::Number,
        ValidationRule::Boolean => DataType::Boolean,
        ValidationRule::Array(_) => DataType::Array,
    }
}

/// A group definition with 1-6 traits.
pub fn group_definition() -> impl Strategy<Value = GroupDefinition> {
    (
        group_name(),
        vec((trait_name(), trait_definition()), 1..=6),
        prop::option::of("\\PC{0,12}"),
        prop::option::of(0i64..10),
    )
        .prop_map(|(name, traits, description, version)| {
            let mut group = GroupDefinition::new(name);
            for (name, definition) in unique(traits) {
                group = group.with_trait(name, definition);
            }
            if let Some(description) = description {
                group = group.with_description(description);
            }
            if let Some(version) = version {
                group = group.with_version(version);
            }
            group
        })
}

/// A valid schema of 1-4 groups.
pub fn schema() -> impl Strategy<Value = StoreSchema> {
    vec(group_definition(), 1..=4).prop_map(|groups| {
        let named = unique(
            groups
                .into_iter()
                .map(|g| (g.name().to_owned(), g))
                .collect(),
        );
        StoreSchema::new(named.into_iter().map(|(_, g)| g)).expect("generated schemas are valid")
    })
}

/// Every `(group, trait, definition)` of `schema`.
pub fn declared(schema: &StoreSchema) -> Vec<(String, String, TraitDefinition)> {
    schema
        .groups()
        .flat_map(|g| {
            g.traits()
                .map(|(t, d)| (g.name().to_owned(), t.to_owned(), d.clone()))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Values
// ---------------------------------------------------------------------------------------

/// Finite numbers: whole ones in the 32-bit range and at its bounds, fractions, `-0.0`.
fn any_number() -> impl Strategy<Value = Number> {
    prop_oneof![
        4 => any::<i32>().prop_map(Number::from),
        1 => select(vec![i32::MIN, i32::MAX, 0, -1, 1]).prop_map(Number::from),
        2 => (-1.0e6f64..1.0e6).prop_map(|f| Number::from_f64(f).expect("finite")),
        1 => (any::<i32>(), 1u8..8).prop_map(|(n, eighths)| {
            Number::from_f64(f64::from(n) + f64::from(eighths) / 8.0).expect("finite")
        }),
        1 => select(vec![-0.0, 0.5, -2147483648.0, 2147483647.0, 1e-300])
            .prop_map(|f| Number::from_f64(f).expect("finite")),
    ]
}

/// A string of exactly `chars` Unicode scalar values.
fn string_of(chars: usize) -> BoxedStrategy<String> {
    prop_oneof![
        3 => vec(any::<char>(), chars..=chars).prop_map(|c| c.into_iter().collect()),
        1 => select(vec!['🎉', '\u{301}', 'é', '\0', '\u{ffff}', '\u{10ffff}'])
            .prop_map(move |c| std::iter::repeat_n(c, chars).collect()),
    ]
    .boxed()
}

/// Strings within the default limit, up to exactly 1024 characters.
fn any_string() -> BoxedStrategy<String> {
    prop_oneof![
        8 => (0usize..=12).prop_flat_map(string_of),
        1 => Just(1024usize).prop_flat_map(string_of),
    ]
    .boxed()
}

fn scalar() -> impl Strategy<Value = Scalar> {
    prop_oneof![
        (0usize..=6)
            .prop_flat_map(string_of)
            .prop_map(Scalar::String),
        any_number().prop_map(Scalar::Number),
        any::<bool>().prop_map(Scalar::Bool),
    ]
}

fn conforming_string(rule: Option<&StringRule>) -> BoxedStrategy<String> {
    let Some(rule) = rule else {
        return any_string();
    };
    let (core, filler, core_first) = match &rule.pattern {
        Some(p) => {
            let (_, core, filler, first) = PATTERNS[pattern_index(p)];
            (core, filler, first)
        }
        None => ("", "\\PC", true),
    };
    let core_chars = core.chars().count() as u64;
    let lo = rule.min_length.unwrap_or(0).max(core_chars);
    let hi = rule.max_length.unwrap_or(lo + 12);
    assert!(
        lo <= hi,
        "generated string rules leave room for the pattern core"
    );
    let filler = filler.to_owned();
    (lo..=hi)
        .prop_flat_map(move |len| {
            let n = len - core_chars;
            string_regex(&format!("{filler}{{{n}}}")).expect("valid filler regex")
        })
        .prop_map(move |fill| {
            if core_first {
                format!("{core}{fill}")
            } else {
                format!("{fill}{core}")
            }
        })
        .boxed()
}

fn conforming_number(rule: Option<&NumberRule>) -> BoxedStrategy<Number> {
    let Some(rule) = rule else {
        return any_number().boxed();
    };
    let min = rule.min.unwrap_or(-2_000.0);
    let max = rule.max.unwrap_or(2_000.0);
    let whole = (min.ceil() as i32..=max.floor() as i32).prop_map(Number::from);
    let fraction = (min..=max).prop_map(|f| Number::from_f64(f).expect("finite"));
    let bounds = select(vec![min, max]).prop_map(|f| Number::from_f64(f).expect("finite"));
    prop_oneof![3 => whole, 1 => fraction, 1 => bounds].boxed()
}

fn conforming_array(rule: Option<&ArrayRule>) -> BoxedStrategy<Vec<Scalar>> {
    let lo = rule.and_then(|r| r.min_items).unwrap_or(0) as usize;
    let hi = rule
        .and_then(|r| r.max_items)
        .map_or(lo + 6, |m| m as usize);
    if rule.is_none() {
        return prop_oneof![
            8 => vec(scalar(), 0..=6),
            1 => vec(scalar(), 100..=100),
        ]
        .boxed();
    }
    vec(scalar(), lo..=hi).boxed()
}

/// A value that `definition` accepts under the default limits.
pub fn value_for(definition: &TraitDefinition) -> BoxedStrategy<TraitValue> {
    let rule = definition.validation_rule();
    match definition.data_type() {
        DataType::String => {
            let rule = match rule {
                Some(ValidationRule::String(r)) => Some(r),
                _ => None,
            };
            conforming_string(rule).prop_map(TraitValue::String).boxed()
        }
        DataType::Number => {
            let rule = match rule {
                Some(ValidationRule::Number(r)) => Some(r),
                _ => None,
            };
            conforming_number(rule).prop_map(TraitValue::Number).boxed()
        }
        DataType::Boolean => any::<bool>().prop_map(TraitValue::Bool).boxed(),
        DataType::Array => {
            let rule = match rule {
                Some(ValidationRule::Array(r)) => Some(r),
                _ => None,
            };
            conforming_array(rule).prop_map(TraitValue::Array).boxed()
        }
    }
}

// ---------------------------------------------------------------------------------------
// Profiles
// ---------------------------------------------------------------------------------------

/// A group of the profile: a shuffled subset of the group's traits with conforming values.
fn profile_group(group: &GroupDefinition) -> BoxedStrategy<(String, Vec<(String, TraitValue)>)> {
    let name = group.name().to_owned();
    let traits: Vec<BoxedStrategy<(String, TraitValue)>> = group
        .traits()
        .map(|(t, d)| {
            let t = t.to_owned();
            value_for(d).prop_map(move |v| (t.clone(), v)).boxed()
        })
        .collect();
    let n = traits.len();
    (
        subsequence((0..n).collect::<Vec<_>>(), 0..=n).prop_shuffle(),
        traits,
    )
        .prop_map(move |(picked, values)| {
            let traits = picked.into_iter().map(|i| values[i].clone()).collect();
            (name.clone(), traits)
        })
        .boxed()
}

/// A profile that conforms to `schema`, sometimes with an id, a creation time, and a group
/// the schema does not declare (a profile holds what the store holds).
pub fn profile(schema: &StoreSchema) -> BoxedStrategy<Profile> {
    let groups: Vec<_> = schema.groups().map(profile_group).collect();
    let n = groups.len();
    (
        subsequence((0..n).collect::<Vec<_>>(), 0..=n).prop_shuffle(),
        groups,
        prop::option::of(any::<u128>()),
        prop::option::of("20[0-9]{2}-0[1-9]-1[0-9]T00:00:00Z"),
        prop::option::of((0..=n, any_string())),
    )
        .prop_map(|(picked, groups, id, created_at, legacy)| {
            let mut order: Vec<(String, Vec<(String, TraitValue)>)> =
                picked.into_iter().map(|i| groups[i].clone()).collect();
            if let Some((at, value)) = legacy {
                let traits = vec![("old".to_owned(), TraitValue::String(value))];
                order.insert(at.min(order.len()), ("Legacy~/".to_owned(), traits));
            }
            let mut profile = Profile::new();
            for (group, traits) in order {
                for (name, value) in traits {
                    profile.insert(&group, &name, value);
                }
            }
            profile.set_id(id.map(profile_traits::ProfileId::from_bits));
            profile.set_created_at(created_at);
            profile
        })
        .boxed()
}

// ---------------------------------------------------------------------------------------
// Valid patches
// ---------------------------------------------------------------------------------------

/// One group of a valid patch: a shuffled subset of its traits, each set or removed.
fn patch_group(group: &GroupDefinition) -> BoxedStrategy<(String, Doc)> {
    let name = group.name().to_owned();
    let traits: Vec<BoxedStrategy<(String, Doc)>> = group
        .traits()
        .map(|(t, d)| {
            let t = t.to_owned();
            prop_oneof![
                3 => value_for(d).prop_map(|v| Doc::value(&Value::from(v))),
                1 => Just(Doc::Raw("null".to_owned())),
            ]
            .prop_map(move |v| (t.clone(), v))
            .boxed()
        })
        .collect();
    let n = traits.len();
    (
        subsequence((0..n).collect::<Vec<_>>(), 0..=n).prop_shuffle(),
        traits,
    )
        .prop_map(move |(picked, values)| {
            let members = picked.into_iter().map(|i| values[i].clone()).collect();
            (name.clone(), Doc::Object(members))
        })
        .boxed()
}

/// A valid patch document for `schema`: some of its groups (perhaps `{}`), some traits of
/// each set to a conforming value or `null`; sometimes without `traits` at all.
pub fn valid_patch_doc(schema: &StoreSchema) -> BoxedStrategy<Doc> {
    let groups: Vec<_> = schema.groups().map(patch_group).collect();
    let n = groups.len();
    prop_oneof![
        20 => (subsequence((0..n).collect::<Vec<_>>(), 0..=n).prop_shuffle(), groups)
            .prop_map(|(picked, groups)| {
                let groups = picked.into_iter().map(|i| groups[i].clone()).collect();
                Doc::Object(vec![("traits".to_owned(), Doc::Object(groups))])
            }),
        1 => Just(Doc::Object(Vec::new())),
    ]
    .boxed()
}

/// A valid patch for `schema`, parsed from [`valid_patch_doc`].
pub fn valid_patch(schema: &StoreSchema) -> BoxedStrategy<Patch> {
    valid_patch_doc(schema)
        .prop_map(|doc| {
            let traits_doc = ensure_traits(doc);
            traits_doc
                .to_json()
                .parse::<Patch>()
                .expect("generated valid patches parse")
        })
        .boxed()
}

fn ensure_traits(doc: Doc) -> Doc {
    match doc {
        Doc::Object(members) if members.is_empty() => {
            Doc::Object(vec![("traits".to_owned(), Doc::Object(Vec::new()))])
        }
        other => other,
    }
}

/// A schema, a conforming profile and a valid patch.
pub fn case() -> impl Strategy<Value = (StoreSchema, Profile, Patch)> {
    schema().prop_flat_map(|s| (Just(s.clone()), profile(&s), valid_patch(&s)))
}

/// A schema, a conforming profile and two valid patches.
pub fn case2() -> impl Strategy<Value = (StoreSchema, Profile, Patch, Patch)> {
    schema().prop_flat_map(|s| {
        (
            Just(s.clone()),
            profile(&s),
            valid_patch(&s),
            valid_patch(&s),
        )
    })
}

// ---------------------------------------------------------------------------------------
// Invalid patches
// ---------------------------------------------------------------------------------------

/// One defect that makes a patch invalid.
#[derive(Debug, Clone)]
pub enum Defect {
    /// A group the schema does not declare.
    UnknownGroup(String),
    /// A trait its group does not declare, set or removed.
    UnknownTrait { set: bool },
    /// A value of another data type.
    WrongType,
    /// A value that breaks the trait's rule (or has the wrong type if it has none).
    BrokenRule,
    /// A string, array or integer just past its documented limit.
    PastLimit(u8),
    /// A group that is `null` or not an object.
    NotObjectGroup(&'static str),
    /// A value outside the domain: an object, a nested array, `null` in an array.
    OutOfDomain(&'static str),
    /// 51 groups in one patch.
    TooManyGroups,
    /// 100 traits in one group.
    TooManyTraits,
    /// A key twice: at the top, a group, or a trait.
    DuplicateKey(u8),
    /// A top-level key other than `traits`.
    UnexpectedKey,
    /// `traits` or the document is not an object.
    NotObjectTraits(&'static str),
}

fn defect() -> impl Strategy<Value = Defect> {
    prop_oneof![
        2 => prop_oneof![
            Just("Unknown".to_owned()),
            Just("Ünknöwn/~".to_owned()),
            Just(String::new()),
            "[a-zA-Z0-9_.\\-]{65}",
            "\\PC{1,6}",
        ]
        .prop_map(Defect::UnknownGroup),
        2 => any::<bool>().prop_map(|set| Defect::UnknownTrait { set }),
        2 => Just(Defect::WrongType),
        3 => Just(Defect::BrokenRule),
        3 => (0u8..8).prop_map(Defect::PastLimit),
        1 => select(vec!["null", "[]", "\"x\"", "1", "true"]).prop_map(Defect::NotObjectGroup),
        1 => select(vec!["{}", "{\"a\":1}", "[[1]]", "[null]", "[1,{}]", "[\"a\",[]]"])
            .prop_map(Defect::OutOfDomain),
        1 => Just(Defect::TooManyGroups),
        1 => Just(Defect::TooManyTraits),
        1 => (0u8..3).prop_map(Defect::DuplicateKey),
        1 => Just(Defect::UnexpectedKey),
        1 => select(vec!["null", "[]", "\"traits\"", "7"]).prop_map(Defect::NotObjectTraits),
    ]
}

/// The name `base` made unique against `taken` by appending `_`.
fn fresh(base: &str, taken: impl Fn(&str) -> bool) -> String {
    let mut name = base.to_owned();
    while taken(&name) {
        name.push('_');
    }
    name
}

/// A JSON value that `definition` rejects because of its type.
fn wrong_type(definition: &TraitDefinition) -> Value {
    match definition.data_type() {
        DataType::String => serde_json::json!(1),
        DataType::Number => serde_json::json!("1"),
        DataType::Boolean => serde_json::json!("true"),
        DataType::Array => serde_json::json!(true),
    }
}

/// A JSON value that breaks `definition`'s rule, or has the wrong type if there is no
/// rule to break.
fn rule_breaker(definition: &TraitDefinition, pick: usize) -> Value {
    let mut breakers = Vec::new();
    match definition.validation_rule() {
        Some(ValidationRule::String(rule)) => {
            if let Some(p) = &rule.pattern {
                breakers.push(Value::from(NON_MATCHING[pattern_index(p)]));
            }
            if let Some(min) = rule.min_length.filter(|m| *m > 0) {
                breakers.push(Value::from("🎉".repeat(min as usize - 1)));
            }
            if let Some(max) = rule.max_length {
                breakers.push(Value::from("e\u{301}".repeat(max as usize / 2 + 1)));
            }
        }
        Some(ValidationRule::Number(rule)) => {
            if let Some(min) = rule.min {
                breakers.push(serde_json::json!(min - 1.0));
            }
            if let Some(max) = rule.max {
                breakers.push(serde_json::json!(max + 0.25));
            }
        }
        Some(ValidationRule::Array(rule)) => {
            if let Some(min) = rule.min_items.filter(|m| *m > 0) {
                breakers.push(Value::Array(vec![Value::from(1); min as usize - 1]));
            }
            if let Some(max) = rule.max_items {
                breakers.push(Value::Array(vec![Value::from("x"); max as usize + 1]));
            }
        }
        _ => {}
    }
    if breakers.is_empty() {
        return wrong_type(definition);
    }
    breakers.swap_remove(pick % breakers.len())
}

/// A JSON value just past a documented limit, or of the wrong type when no limit fits.
fn past_limit(definition: &TraitDefinition, which: u8) -> Value {
    let long = |which: u8| match which % 3 {
        0 => "x".repeat(1025),
        1 => "🎉".repeat(1025),
        _ => "e\u{301}".repeat(512) + "e",
    };
    match definition.data_type() {
        DataType::String => Value::from(long(which)),
        DataType::Number => match which % 4 {
            0 => serde_json::json!(2147483648i64),
            1 => serde_json::json!(-2147483649i64),
            2 => serde_json::json!(2147483648.0),
            _ => serde_json::json!(1e15),
        },
        DataType::Array => match which % 3 {
            0 => Value::Array(vec![Value::from(true); 101]),
            1 => Value::Array(vec![Value::from(long(which / 3))]),
            _ => Value::Array(vec![serde_json::json!(4294967296i64)]),
        },
        DataType::Boolean => wrong_type(definition),
    }
}

fn apply_defect(schema: &StoreSchema, doc: &mut Doc, defect: &Defect, at: Index, pick: Index) {
    let declared = declared(schema);
    let (group, name, definition) = pick.get(&declared).clone();
    match defect {
        Defect::UnknownGroup(base) => {
            let group = fresh(base, |n| schema.group(n).is_some());
            let members = Doc::Object(vec![("x".to_owned(), Doc::Raw("1".to_owned()))]);
            upsert(doc.groups_mut(), &group, members, at);
        }
        Defect::UnknownTrait { set } => {
            let definition = schema.group(&group).expect("declared group");
            let name = fresh("undeclared ~/é", |n| {
                definition.trait_definition(n).is_some()
            });
            let value = if *set { "\"v\"" } else { "null" };
            upsert(doc.group_mut(&group), &name, Doc::Raw(value.to_owned()), at);
        }
        Defect::WrongType => {
            let bad = Doc::value(&wrong_type(&definition));
            upsert(doc.group_mut(&group), &name, bad, at);
        }
        Defect::BrokenRule => {
            let bad = Doc::value(&rule_breaker(&definition, pick.index(1000)));
            upsert(doc.group_mut(&group), &name, bad, at);
        }
        Defect::PastLimit(which) => {
            let bad = Doc::value(&past_limit(&definition, *which));
            upsert(doc.group_mut(&group), &name, bad, at);
        }
        Defect::NotObjectGroup(raw) => {
            upsert(doc.groups_mut(), &group, Doc::Raw((*raw).to_owned()), at);
        }
        Defect::OutOfDomain(raw) => {
            upsert(
                doc.group_mut(&group),
                &name,
                Doc::Raw((*raw).to_owned()),
                at,
            );
        }
        Defect::TooManyGroups => {
            let groups = doc.groups_mut();
            let mut i = 0;
            while groups.len() < 51 {
                let name = format!("G{i}");
                if !groups.iter().any(|(k, _)| *k == name) {
                    groups.push((name, Doc::Object(Vec::new())));
                }
                i += 1;
            }
        }
        Defect::TooManyTraits => {
            let traits = doc.group_mut(&group);
            let mut i = 0;
            while traits.len() < 100 {
                let name = format!("t{i}");
                if !traits.iter().any(|(k, _)| *k == name) {
                    traits.push((name, Doc::Raw("null".to_owned())));
                }
                i += 1;
            }
        }
        Defect::DuplicateKey(level) => match level {
            0 => {
                let Doc::Object(top) = doc else {
                    unreachable!()
                };
                top.push(("traits".to_owned(), Doc::Object(Vec::new())));
            }
            1 => {
                doc.group_mut(&group);
                doc.groups_mut().push((group, Doc::Object(Vec::new())));
            }
            _ => {
                let traits = doc.group_mut(&group);
                traits.push((name.clone(), Doc::Raw("null".to_owned())));
                traits.push((name, Doc::Raw("null".to_owned())));
            }
        },
        Defect::UnexpectedKey => {
            let Doc::Object(top) = doc else {
                unreachable!()
            };
            let at = at.index(top.len() + 1);
            top.insert(at, ("trait".to_owned(), Doc::Object(Vec::new())));
        }
        Defect::NotObjectTraits(raw) => {
            *doc = match *raw {
                "null" => Doc::Object(vec![("traits".to_owned(), Doc::Raw("null".to_owned()))]),
                other if pick.index(2) == 0 => Doc::Raw(other.to_owned()),
                other => Doc::Object(vec![("traits".to_owned(), Doc::Raw(other.to_owned()))]),
            };
        }
    }
}

/// An invalid patch document for `schema`: a valid one with one defect injected.
pub fn invalid_patch_doc(schema: &StoreSchema) -> BoxedStrategy<Doc> {
    let schema = schema.clone();
    (
        valid_patch_doc(&schema),
        defect(),
        any::<Index>(),
        any::<Index>(),
    )
        .prop_map(move |(doc, defect, at, pick)| {
            let mut doc = ensure_traits(doc);
            apply_defect(&schema, &mut doc, &defect, at, pick);
            doc
        })
        .boxed()
}

/// A patch document that is valid or invalid for `schema`, and which of the two it is.
pub fn any_patch_doc(schema: &StoreSchema) -> BoxedStrategy<(Doc, bool)> {
    prop_oneof![
        valid_patch_doc(schema).prop_map(|d| (d, true)),
        invalid_patch_doc(schema).prop_map(|d| (d, false)),
    ]
    .boxed()
}

// ---------------------------------------------------------------------------------------
// Byte mutations
// ---------------------------------------------------------------------------------------

/// One way to damage a JSON text.
#[derive(Debug, Clone)]
pub enum Mutation {
    /// Flip bit `bit` of the byte at the index.
    FlipBit(Index, u8),
    /// Insert the byte at the index.
    Insert(Index, u8),
    /// Delete the byte at the index.
    Delete(Index),
    /// Replace one quote or bracket with another.
    Swap(Index, u8),
}

/// 1-4 mutations.
pub fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    let interesting = select(b"{}[]\":,\\0-e.n \xff\xc3".to_vec());
    let byte = prop_oneof![interesting, any::<u8>()];
    let one = prop_oneof![
        (any::<Index>(), 0u8..8).prop_map(|(i, b)| Mutation::FlipBit(i, b)),
        (any::<Index>(), byte).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<Index>().prop_map(Mutation::Delete),
        (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Swap(i, b)),
    ];
    vec(one, 1..=4)
}

/// `bytes` with `mutations` applied in order.
pub fn mutate(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    const SWAPPABLE: &[u8] = b"\"'{}[]";
    for mutation in mutations {
        match mutation {
            Mutation::FlipBit(i, bit) if !bytes.is_empty() => {
                let i = i.index(bytes.len());
                bytes[i] ^= 1 << bit;
            }
            Mutation::Insert(i, b) => {
                let i = i.index(bytes.len() + 1);
                bytes.insert(i, *b);
            }
            Mutation::Delete(i) if !bytes.is_empty() => {
                let i = i.index(bytes.len());
                bytes.remove(i);
            }
            Mutation::Swap(i, with) => {
                let positions: Vec<usize> = bytes
                    .iter()
                    .enumerate()
                    .filter(|(_, b)| SWAPPABLE.contains(b))
                    .map(|(i, _)| i)
                    .collect();
                if !positions.is_empty() {
                    let at = positions[i.index(positions.len())];
                    bytes[at] = SWAPPABLE[usize::from(*with) % SWAPPABLE.len()];
                }
            }
            _ => {}
        }
    }
    bytes
}
