//! Trait values: a string, a number, a boolean, or a flat array of those.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, SeqAccess, Visitor};
use serde::ser::{Serialize, Serializer};
use serde_json::{Number, Value};

use crate::error::ValueError;

/// The value of one trait.
///
/// The type makes the documented domain the only representable one: never `null`, never an
/// object, never a nested array. `null` exists only in a patch's JSON, where it means
/// "remove" (see [`TraitChange`](crate::TraitChange)).
///
/// # Examples
///
/// ```
/// use profile_traits::TraitValue;
///
/// let tags = TraitValue::try_from(serde_json::json!(["vip", 3, true])).unwrap();
/// assert_eq!(serde_json::Value::from(tags), serde_json::json!(["vip", 3, true]));
/// assert!(TraitValue::try_from(serde_json::json!({"nested": 1})).is_err());
/// ```
#[derive(Debug, Clone, PartialEq)]
// An 8-byte tag, not the default single byte after which `Bool` keeps its payload: moving a
// value then copied bytes 1..8 with two overlapping loads that the processor cannot forward
// from the stores that wrote them, a stall on every move of the merge's path. The size and
// the niches (`TraitChange`, `Option<TraitValue>`) stay the same.
#[repr(u64)]
pub enum TraitValue {
    /// A JSON string.
    String(String),
    /// A JSON number; `1` and `1.0` are different values, as in `serde_json`.
    Number(Number),
    /// A JSON boolean.
    Bool(bool),
    /// A flat JSON array of strings, numbers and booleans.
    Array(Vec<Scalar>),
}

/// One element of a [`TraitValue::Array`]: a string, a number or a boolean.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    /// A JSON string.
    String(String),
    /// A JSON number.
    Number(Number),
    /// A JSON boolean.
    Bool(bool),
}

impl TraitValue {
    /// The name of this value's JSON type, as used in error messages: `"a string"`, ...
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            TraitValue::String(_) => "a string",
            TraitValue::Number(_) => "a number",
            TraitValue::Bool(_) => "a boolean",
            TraitValue::Array(_) => "an array",
        }
    }
}

impl From<&str> for TraitValue {
    fn from(value: &str) -> Self {
        TraitValue::String(value.to_owned())
    }
}

impl From<String> for TraitValue {
    fn from(value: String) -> Self {
        TraitValue::String(value)
    }
}

impl From<bool> for TraitValue {
    fn from(value: bool) -> Self {
        TraitValue::Bool(value)
    }
}

impl From<i32> for TraitValue {
    fn from(value: i32) -> Self {
        TraitValue::Number(value.into())
    }
}

impl From<Number> for TraitValue {
    fn from(value: Number) -> Self {
        TraitValue::Number(value)
    }
}

impl From<Vec<Scalar>> for TraitValue {
    fn from(value: Vec<Scalar>) -> Self {
        TraitValue::Array(value)
    }
}

impl From<&str> for Scalar {
    fn from(value: &str) -> Self {
        Scalar::String(value.to_owned())
    }
}

impl From<String> for Scalar {
    fn from(value: String) -> Self {
        Scalar::String(value)
    }
}

impl From<bool> for Scalar {
    fn from(value: bool) -> Self {
        Scalar::Bool(value)
    }
}

impl From<i32> for Scalar {
    fn from(value: i32) -> Self {
        Scalar::Number(value.into())
    }
}

impl From<Number> for Scalar {
    fn from(value: Number) -> Self {
        Scalar::Number(value)
    }
}

impl TryFrom<f64> for TraitValue {
    type Error = ValueError;

    /// Fails for NaN and the infinities, which JSON cannot hold.
    fn try_from(value: f64) -> Result<Self, ValueError> {
        Number::from_f64(value)
            .map(TraitValue::Number)
            .ok_or_else(|| ValueError::new(String::new(), "a non-finite number"))
    }
}

impl From<TraitValue> for Value {
    fn from(value: TraitValue) -> Self {
        match value {
            TraitValue::String(s) => Value::String(s),
            TraitValue::Number(n) => Value::Number(n),
            TraitValue::Bool(b) => Value::Bool(b),
            TraitValue::Array(items) => Value::Array(items.into_iter().map(Value::from).collect()),
        }
    }
}

impl From<Scalar> for Value {
    fn from(value: Scalar) -> Self {
        match value {
            Scalar::String(s) => Value::String(s),
            Scalar::Number(n) => Value::Number(n),
            Scalar::Bool(b) => Value::Bool(b),
        }
    }
}

impl TryFrom<Value> for TraitValue {
    type Error = ValueError;

    /// Fails for `null`, objects, nested arrays and `null` inside an array, naming the place.
    fn try_from(value: Value) -> Result<Self, ValueError> {
        match value {
            Value::String(s) => Ok(TraitValue::String(s)),
            Value::Number(n) => Ok(TraitValue::Number(n)),
            Value::Bool(b) => Ok(TraitValue::Bool(b)),
            Value::Array(items) => items
                .into_iter()
                .enumerate()
                .map(|(index, item)| {
                    scalar_from_value(item, "a nested array")
                        .map_err(|found| ValueError::new(format!("/{index}"), found))
                })
                .collect::<Result<_, _>>()
                .map(TraitValue::Array),
            Value::Null => Err(ValueError::new(String::new(), "null")),
            Value::Object(_) => Err(ValueError::new(String::new(), "an object")),
        }
    }
}

impl TryFrom<Value> for Scalar {
    type Error = ValueError;

    /// Fails for `null`, objects and arrays.
    fn try_from(value: Value) -> Result<Self, ValueError> {
        scalar_from_value(value, "an array").map_err(|found| ValueError::new(String::new(), found))
    }
}

/// The scalar in `value`, or what was found instead.
fn scalar_from_value(value: Value, array_name: &'static str) -> Result<Scalar, &'static str> {
    match value {
        Value::String(s) => Ok(Scalar::String(s)),
        Value::Number(n) => Ok(Scalar::Number(n)),
        Value::Bool(b) => Ok(Scalar::Bool(b)),
        Value::Null => Err("null"),
        Value::Array(_) => Err(array_name),
        Value::Object(_) => Err("an object"),
    }
}

impl Serialize for TraitValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            TraitValue::String(s) => serializer.serialize_str(s),
            TraitValue::Number(n) => n.serialize(serializer),
            TraitValue::Bool(b) => serializer.serialize_bool(*b),
            TraitValue::Array(items) => items.serialize(serializer),
        }
    }
}

impl Serialize for Scalar {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Scalar::String(s) => serializer.serialize_str(s),
            Scalar::Number(n) => n.serialize(serializer),
            Scalar::Bool(b) => serializer.serialize_bool(*b),
        }
    }
}

/// What a JSON value turned out to be while deserializing a trait value.
///
/// Shared by [`TraitValue`]'s `Deserialize` (which fails on `Invalid`) and the patch parser
/// (which turns `Null` into a removal and `Invalid` into a violation, then goes on).
pub(crate) enum ParsedValue {
    Value(TraitValue),
    Null,
    /// Outside the domain: what was found, and the array index where, if inside an array.
    Invalid(&'static str, Option<usize>),
}

pub(crate) struct ParsedValueVisitor;

impl<'de> Visitor<'de> for ParsedValueVisitor {
    type Value = ParsedValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string, number, boolean, flat array of those, or null")
    }

    fn visit_bool<E>(self, v: bool) -> Result<ParsedValue, E> {
        Ok(ParsedValue::Value(TraitValue::Bool(v)))
    }

    fn visit_i64<E>(self, v: i64) -> Result<ParsedValue, E> {
        Ok(ParsedValue::Value(TraitValue::Number(v.into())))
    }

    fn visit_u64<E>(self, v: u64) -> Result<ParsedValue, E> {
        Ok(ParsedValue::Value(TraitValue::Number(v.into())))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<ParsedValue, E> {
        Number::from_f64(v)
            .map(|n| ParsedValue::Value(TraitValue::Number(n)))
            .ok_or_else(|| E::custom("number out of range"))
    }

    fn visit_str<E>(self, v: &str) -> Result<ParsedValue, E> {
        Ok(ParsedValue::Value(TraitValue::String(v.to_owned())))
    }

    fn visit_string<E>(self, v: String) -> Result<ParsedValue, E> {
        Ok(ParsedValue::Value(TraitValue::String(v)))
    }

    fn visit_unit<E>(self) -> Result<ParsedValue, E> {
        Ok(ParsedValue::Null)
    }

    fn visit_none<E>(self) -> Result<ParsedValue, E> {
        Ok(ParsedValue::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<ParsedValue, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<ParsedValue, A::Error> {
        while map
            .next_entry::<de::IgnoredAny, de::IgnoredAny>()?
            .is_some()
        {}
        Ok(ParsedValue::Invalid("an object", None))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ParsedValue, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(128));
        let mut invalid = None;
        let mut index = 0;
        while let Some(item) = seq.next_element::<ParsedScalar>()? {
            match item {
                ParsedScalar::Scalar(scalar) => items.push(scalar),
                ParsedScalar::Invalid(found) => {
                    invalid = invalid.or(Some(ParsedValue::Invalid(found, Some(index))));
                }
            }
            index += 1;
        }
        Ok(invalid.unwrap_or(ParsedValue::Value(TraitValue::Array(items))))
    }
}

enum ParsedScalar {
    Scalar(Scalar),
    Invalid(&'static str),
}

impl<'de> Deserialize<'de> for ParsedScalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ScalarVisitor;

        impl<'de> Visitor<'de> for ScalarVisitor {
            type Value = ParsedScalar;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, number or boolean")
            }

            fn visit_bool<E>(self, v: bool) -> Result<ParsedScalar, E> {
                Ok(ParsedScalar::Scalar(Scalar::Bool(v)))
            }

            fn visit_i64<E>(self, v: i64) -> Result<ParsedScalar, E> {
                Ok(ParsedScalar::Scalar(Scalar::Number(v.into())))
            }

            fn visit_u64<E>(self, v: u64) -> Result<ParsedScalar, E> {
                Ok(ParsedScalar::Scalar(Scalar::Number(v.into())))
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<ParsedScalar, E> {
                Number::from_f64(v)
                    .map(|n| ParsedScalar::Scalar(Scalar::Number(n)))
                    .ok_or_else(|| E::custom("number out of range"))
            }

            fn visit_str<E>(self, v: &str) -> Result<ParsedScalar, E> {
                Ok(ParsedScalar::Scalar(Scalar::String(v.to_owned())))
            }

            fn visit_string<E>(self, v: String) -> Result<ParsedScalar, E> {
                Ok(ParsedScalar::Scalar(Scalar::String(v)))
            }

            fn visit_unit<E>(self) -> Result<ParsedScalar, E> {
                Ok(ParsedScalar::Invalid("null"))
            }

            fn visit_none<E>(self) -> Result<ParsedScalar, E> {
                Ok(ParsedScalar::Invalid("null"))
            }

            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<ParsedScalar, D::Error> {
                d.deserialize_any(self)
            }

            fn visit_map<A: de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<ParsedScalar, A::Error> {
                while map
                    .next_entry::<de::IgnoredAny, de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(ParsedScalar::Invalid("an object"))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ParsedScalar, A::Error> {
                while seq.next_element::<de::IgnoredAny>()?.is_some() {}
                Ok(ParsedScalar::Invalid("a nested array"))
            }
        }

        d.deserialize_any(ScalarVisitor)
    }
}

impl<'de> Deserialize<'de> for TraitValue {
    /// Refuses `null`, objects, nested arrays and `null` inside an array.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match d.deserialize_any(ParsedValueVisitor)? {
            ParsedValue::Value(value) => Ok(value),
            ParsedValue::Null => Err(de::Error::custom(
                "expected a string, number, boolean or flat array of those, found null",
            )),
            ParsedValue::Invalid(found, None) => Err(de::Error::custom(format_args!(
                "expected a string, number, boolean or flat array of those, found {found}"
            ))),
            ParsedValue::Invalid(found, Some(index)) => Err(de::Error::custom(format_args!(
                "array item {index}: expected a string, number or boolean, found {found}"
            ))),
        }
    }
}

impl<'de> Deserialize<'de> for Scalar {
    /// Refuses `null`, objects and arrays.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match ParsedScalar::deserialize(d)? {
            ParsedScalar::Scalar(scalar) => Ok(scalar),
            ParsedScalar::Invalid(found) => {
                // Alone, a scalar's array is not nested in anything.
                let found = if found == "a nested array" {
                    "an array"
                } else {
                    found
                };
                Err(de::Error::custom(format_args!(
                    "expected a string, number or boolean, found {found}"
                )))
            }
        }
    }
}
