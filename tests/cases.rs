//! Data-driven merge cases: `tests/data/cases.json` is the source of truth.
//!
//! Each case names a schema (API JSON shape, optionally with `"limits"`), a profile, a patch
//! (`patch` as JSON, or `patch_text` as raw text for malformed JSON and repeated keys), and
//! either the whole expected profile or the whole expected list of violations. For every case
//! the runner checks `merge`, `merge_in_place` and `merge_in_place_owned` (same result, or the
//! same error and an unchanged profile), and that `StoreSchema::validate` agrees.
//!
//! JSON objects in the file are read in document order (positions are part of the expected
//! result), so the file goes through [`Json`], not `serde_json::Value`, whose maps are sorted.
//! Large values are written with generators, expanded before use:
//! - `{"$repeat": "ab", "times": 3}` is the string `"ababab"`;
//! - `{"$for": 3, "item": T}` is an array of 3 copies of `T`;
//! - `{"$for": 3, "key": "t{i}", "value": T}` is the object `{"t0": T, "t1": T, "t2": T}`;
//!
//! and in both `$for` forms, `{i}` in any string or key of `T` is replaced by the index.

mod common;

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};

use common::helpers::{
    Found, assert_merges_named, assert_rejected_named, changes_json, found, json_text,
};
use profile_traits::{Patch, Profile, StoreSchema, ViolationKind};
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, Serializer};

const CASES: &str = include_str!("data/cases.json");

/// A JSON value that keeps the order (and repetitions) of object members.
#[derive(Debug, Clone)]
enum Json {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    fn member(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Object(members) => members.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    fn as_count(&self) -> usize {
        match self {
            Json::Number(n) => n
                .as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .expect("a generator count is a non-negative integer"),
            other => panic!("a generator count is a number, found {other:?}"),
        }
    }

    /// The value with every generator expanded.
    fn expand(&self) -> Json {
        match self {
            Json::Object(members) => {
                if let Some(Json::String(unit)) = self.member("$repeat") {
                    let times = self.member("times").expect("`$repeat` needs `times`");
                    return Json::String(unit.repeat(times.as_count()));
                }
                if let Some(count) = self.member("$for") {
                    return self.expand_for(count.as_count());
                }
                Json::Object(
                    members
                        .iter()
                        .map(|(k, v)| (k.clone(), v.expand()))
                        .collect(),
                )
            }
            Json::Array(items) => Json::Array(items.iter().map(Json::expand).collect()),
            other => other.clone(),
        }
    }

    fn expand_for(&self, count: usize) -> Json {
        if let Some(item) = self.member("item") {
            return Json::Array((0..count).map(|i| item.substitute(i).expand()).collect());
        }
        let key = match self.member("key") {
            Some(Json::String(key)) => key,
            _ => panic!("`$for` needs `item`, or `key` and `value`"),
        };
        let value = self
            .member("value")
            .expect("`$for` with `key` needs `value`");
        Json::Object(
            (0..count)
                .map(|i| (fill(key, i), value.substitute(i).expand()))
                .collect(),
        )
    }

    /// The value with `{i}` replaced by `index` in every string and key.
    fn substitute(&self, index: usize) -> Json {
        match self {
            Json::String(s) => Json::String(fill(s, index)),
            Json::Array(items) => Json::Array(items.iter().map(|v| v.substitute(index)).collect()),
            Json::Object(members) => Json::Object(
                members
                    .iter()
                    .map(|(k, v)| (fill(k, index), v.substitute(index)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    /// The value at RFC 6901 `pointer`, if there is one.
    fn at(&self, pointer: &str) -> Option<&Json> {
        if pointer.is_empty() {
            return Some(self);
        }
        let rest = pointer.strip_prefix('/')?;
        let (token, rest) = match rest.find('/') {
            Some(end) => (&rest[..end], &rest[end..]),
            None => (rest, ""),
        };
        let token = token.replace("~1", "/").replace("~0", "~");
        let child = match self {
            Json::Object(members) => members.iter().find(|(k, _)| *k == token).map(|(_, v)| v),
            Json::Array(items) => token.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => None,
        }?;
        child.at(rest)
    }

    /// Compact JSON text, in document order, after expansion.
    fn text(&self) -> String {
        json_text(&self.expand())
    }
}

fn fill(template: &str, index: usize) -> String {
    template.replace("{i}", &index.to_string())
}

impl Serialize for Json {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Json::Null => serializer.serialize_unit(),
            Json::Bool(b) => serializer.serialize_bool(*b),
            Json::Number(n) => n.serialize(serializer),
            Json::String(s) => serializer.serialize_str(s),
            Json::Array(items) => serializer.collect_seq(items),
            Json::Object(members) => {
                let mut map = serializer.serialize_map(Some(members.len()))?;
                for (key, value) in members {
                    map.serialize_entry(key, value)?;
                }
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct JsonVisitor;

        impl<'de> Visitor<'de> for JsonVisitor {
            type Value = Json;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }

            fn visit_unit<E>(self) -> Result<Json, E> {
                Ok(Json::Null)
            }

            fn visit_bool<E>(self, v: bool) -> Result<Json, E> {
                Ok(Json::Bool(v))
            }

            fn visit_i64<E>(self, v: i64) -> Result<Json, E> {
                Ok(Json::Number(v.into()))
            }

            fn visit_u64<E>(self, v: u64) -> Result<Json, E> {
                Ok(Json::Number(v.into()))
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Json, E> {
                serde_json::Number::from_f64(v)
                    .map(Json::Number)
                    .ok_or_else(|| E::custom("non-finite number"))
            }

            fn visit_str<E>(self, v: &str) -> Result<Json, E> {
                Ok(Json::String(v.to_owned()))
            }

            fn visit_string<E>(self, v: String) -> Result<Json, E> {
                Ok(Json::String(v))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Json::Array(items))
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
                let mut members = Vec::new();
                while let Some((key, value)) = map.next_entry()? {
                    members.push((key, value));
                }
                Ok(Json::Object(members))
            }
        }

        d.deserialize_any(JsonVisitor)
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    #[serde(rename = "_about")]
    _about: Vec<String>,
    cases: Vec<Case>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    schema: Json,
    profile: Json,
    #[serde(default)]
    patch: Option<Json>,
    #[serde(default)]
    patch_text: Option<String>,
    #[serde(default)]
    expected_profile: Option<Json>,
    #[serde(default)]
    expected_violations: Option<Vec<ExpectedViolation>>,
    #[serde(default)]
    expected_changes: Option<Vec<Json>>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectedViolation {
    kind: String,
    pointer: String,
    message: String,
}

/// The kind named `name` in the case file.
fn kind(name: &str) -> ViolationKind {
    match name {
        "MalformedJson" => ViolationKind::MalformedJson,
        "DuplicateKey" => ViolationKind::DuplicateKey,
        "UnexpectedKey" => ViolationKind::UnexpectedKey,
        "NotAnObject" => ViolationKind::NotAnObject,
        "InvalidValue" => ViolationKind::InvalidValue,
        "UnknownGroup" => ViolationKind::UnknownGroup,
        "UnknownTrait" => ViolationKind::UnknownTrait,
        "WrongType" => ViolationKind::WrongType,
        "RuleBroken" => ViolationKind::RuleBroken,
        "LimitExceeded" => ViolationKind::LimitExceeded,
        other => panic!("unknown violation kind `{other}` in the case file"),
    }
}

fn load() -> CaseFile {
    serde_json::from_str(CASES).unwrap_or_else(|e| panic!("tests/data/cases.json: {e}"))
}

fn run(case: &Case) {
    let name = case.name.as_str();
    let schema: StoreSchema = serde_json::from_str(&case.schema.text())
        .unwrap_or_else(|e| panic!("[{name}] schema does not load: {e}"));
    let profile: Profile = serde_json::from_str(&case.profile.text())
        .unwrap_or_else(|e| panic!("[{name}] profile does not load: {e}"));
    let text = match (&case.patch, &case.patch_text) {
        (Some(patch), None) => patch.text(),
        (None, Some(text)) => text.clone(),
        _ => panic!("[{name}] needs exactly one of `patch` and `patch_text`"),
    };
    let parsed = text.parse::<Patch>();
    assert_eq!(
        Patch::from_slice(text.as_bytes()),
        parsed,
        "[{name}] from_slice and from_str agree"
    );
    match (&case.expected_profile, &case.expected_violations) {
        (Some(expected), None) => {
            let patch = parsed.unwrap_or_else(|e| panic!("[{name}] patch does not parse: {e}"));
            let expected_text = expected.text();
            let expected_profile: Profile = serde_json::from_str(&expected_text)
                .unwrap_or_else(|e| panic!("[{name}] expected_profile does not load: {e}"));
            assert_eq!(
                json_text(&expected_profile),
                expected_text,
                "[{name}] expected_profile is in canonical form"
            );
            let reparsed = json_text(&patch).parse::<Patch>();
            assert_eq!(reparsed.as_ref(), Ok(&patch), "[{name}] patch round trip");
            let changes = assert_merges_named(name, &schema, &profile, &patch, &expected_text);
            if let Some(expected_changes) = &case.expected_changes {
                let expected_changes: Vec<serde_json::Value> = expected_changes
                    .iter()
                    .map(|c| serde_json::from_str(&c.text()).expect("JSON text reparses"))
                    .collect();
                assert_eq!(changes_json(&changes), expected_changes, "[{name}] changes");
            }
        }
        (None, Some(violations)) => {
            assert!(
                case.expected_changes.is_none(),
                "[{name}] a rejected case has no changes"
            );
            let expected: Vec<Found> = violations
                .iter()
                .map(|v| (kind(&v.kind), v.pointer.clone(), v.message.clone()))
                .collect();
            match parsed {
                Err(error) => assert_eq!(found(&error), expected, "[{name}] parse violations"),
                Ok(patch) => {
                    assert_rejected_named(name, &schema, &profile, &patch, &expected);
                }
            }
            assert_pointers_point_into_the_patch(name, &text, &expected);
        }
        _ => panic!("[{name}] needs exactly one of `expected_profile` and `expected_violations`"),
    }
}

/// Each reported pointer names a place of the patch document (when the document is JSON).
fn assert_pointers_point_into_the_patch(name: &str, text: &str, expected: &[Found]) {
    let Ok(document) = serde_json::from_str::<Json>(text) else {
        return;
    };
    for (_, pointer, _) in expected {
        assert!(
            document.at(pointer).is_some(),
            "[{name}] pointer `{pointer}` is not in the patch"
        );
    }
}

#[test]
fn every_case_holds() {
    let file = load();
    let failed: Vec<&str> = file
        .cases
        .iter()
        .filter(|case| catch_unwind(AssertUnwindSafe(|| run(case))).is_err())
        .map(|case| case.name.as_str())
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} cases failed: {failed:?}",
        failed.len(),
        file.cases.len()
    );
}

#[test]
fn case_names_are_unique_and_there_are_at_least_sixty() {
    let file = load();
    let mut names: Vec<&str> = file.cases.iter().map(|c| c.name.as_str()).collect();
    assert!(names.len() >= 60, "only {} cases", names.len());
    names.sort_unstable();
    let before = names.len();
    names.dedup();
    assert_eq!(names.len(), before, "case names repeat");
}

#[test]
fn every_violation_kind_has_a_case() {
    let file = load();
    let all = [
        "MalformedJson",
        "DuplicateKey",
        "UnexpectedKey",
        "NotAnObject",
        "InvalidValue",
        "UnknownGroup",
        "UnknownTrait",
        "WrongType",
        "RuleBroken",
        "LimitExceeded",
    ];
    let missing: Vec<&str> = all
        .into_iter()
        .filter(|wanted| {
            !file.cases.iter().any(|case| {
                case.expected_violations
                    .iter()
                    .flatten()
                    .any(|v| v.kind == *wanted)
            })
        })
        .collect();
    assert!(missing.is_empty(), "no case for {missing:?}");
}
