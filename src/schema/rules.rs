//! The rules a trait's values must keep: its data type and its `validationRule`.

use regex::Regex;

use crate::error::SchemaError;

/// Characters in a `validationRule.pattern` (documented).
const MAX_PATTERN_CHARS: usize = 1000;

/// The JSON type a trait's values must have (`dataType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum DataType {
    /// A JSON string.
    String,
    /// A JSON number.
    Number,
    /// `true` or `false`.
    Boolean,
    /// A flat array of strings, numbers and booleans.
    Array,
}

impl DataType {
    /// The name of a value of this type in messages: `"a string"`, `"a number"`, ...
    pub(crate) fn value_name(self) -> &'static str {
        match self {
            DataType::String => "a string",
            DataType::Number => "a number",
            DataType::Boolean => "a boolean",
            DataType::Array => "an array",
        }
    }

    pub(super) fn wire_name(self) -> &'static str {
        match self {
            DataType::String => "STRING",
            DataType::Number => "NUMBER",
            DataType::Boolean => "BOOLEAN",
            DataType::Array => "ARRAY",
        }
    }
}

/// A compiled `validationRule.pattern`: a regular expression that must match somewhere in
/// the string (JSON Schema semantics).
///
/// Matching uses the `regex` crate, whose time is linear in the input, so a pattern such as
/// `(a+)+$` cannot be used to stall the service.
#[derive(Debug, Clone)]
pub struct Pattern {
    regex: Regex,
}

impl Pattern {
    /// Compiles `source`.
    ///
    /// # Errors
    ///
    /// When `source` is not a valid regular expression (`"("`) or has more than 1000
    /// characters.
    ///
    /// # Examples
    ///
    /// ```
    /// use profile_traits::Pattern;
    ///
    /// let email = Pattern::new("^[^@]+@[^@]+$").unwrap();
    /// assert!(email.is_match("a@b.c"));
    /// assert!(Pattern::new("(").is_err());
    /// ```
    pub fn new(source: &str) -> Result<Self, SchemaError> {
        let chars = source.chars().count();
        if chars > MAX_PATTERN_CHARS {
            return Err(SchemaError::new(
                "",
                format!("pattern has {chars} characters, at most {MAX_PATTERN_CHARS} allowed"),
            ));
        }
        Regex::new(source)
            .map(|regex| Pattern { regex })
            .map_err(|e| {
                SchemaError::new(
                    "",
                    format!("pattern `{source}` is not a valid regular expression: {e}"),
                )
            })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        self.regex.as_str()
    }

    /// Whether the pattern matches somewhere in `text`.
    pub fn is_match(&self, text: &str) -> bool {
        self.regex.is_match(text)
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

/// Rules for a `STRING` trait. Lengths count Unicode scalar values.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StringRule {
    /// A regular expression that must match somewhere in the string.
    pub pattern: Option<Pattern>,
    /// The fewest characters allowed.
    pub min_length: Option<u64>,
    /// The most characters allowed (at least 1).
    pub max_length: Option<u64>,
}

/// Rules for a `NUMBER` trait; both bounds are inclusive.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NumberRule {
    /// The smallest value allowed.
    pub min: Option<f64>,
    /// The largest value allowed.
    pub max: Option<f64>,
}

/// Rules for an `ARRAY` trait: bounds on its number of items.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ArrayRule {
    /// The fewest items allowed.
    pub min_items: Option<u64>,
    /// The most items allowed.
    pub max_items: Option<u64>,
}

/// A trait's `validationRule`, tagged by `ruleType`, which must equal the trait's `dataType`.
#[derive(Debug, Clone, PartialEq)]
pub enum ValidationRule {
    /// `{"ruleType": "STRING", "pattern"?, "minLength"?, "maxLength"?}`
    String(StringRule),
    /// `{"ruleType": "NUMBER", "min"?, "max"?}`
    Number(NumberRule),
    /// `{"ruleType": "BOOLEAN"}`
    Boolean,
    /// `{"ruleType": "ARRAY", "minItems"?, "maxItems"?}`
    Array(ArrayRule),
}

impl ValidationRule {
    pub(super) fn data_type(&self) -> DataType {
        match self {
            ValidationRule::String(_) => DataType::String,
            ValidationRule::Number(_) => DataType::Number,
            ValidationRule::Boolean => DataType::Boolean,
            ValidationRule::Array(_) => DataType::Array,
        }
    }

    /// Why the rule can never be satisfied or is out of its documented range, if it is.
    pub(super) fn problem(&self) -> Option<String> {
        match self {
            ValidationRule::String(rule) => {
                if rule.max_length == Some(0) {
                    return Some("`maxLength` must be at least 1".to_owned());
                }
                bounds_problem("minLength", rule.min_length, "maxLength", rule.max_length)
            }
            ValidationRule::Number(rule) => {
                if rule.min.is_some_and(|m| !m.is_finite())
                    || rule.max.is_some_and(|m| !m.is_finite())
                {
                    return Some("`min` and `max` must be finite".to_owned());
                }
                match (rule.min, rule.max) {
                    (Some(min), Some(max)) if min > max => {
                        Some(format!("`min` {min} is greater than `max` {max}"))
                    }
                    _ => None,
                }
            }
            ValidationRule::Boolean => None,
            ValidationRule::Array(rule) => {
                bounds_problem("minItems", rule.min_items, "maxItems", rule.max_items)
            }
        }
    }
}

fn bounds_problem(
    min_name: &str,
    min: Option<u64>,
    max_name: &str,
    max: Option<u64>,
) -> Option<String> {
    match (min, max) {
        (Some(min), Some(max)) if min > max => Some(format!(
            "`{min_name}` {min} is greater than `{max_name}` {max}"
        )),
        _ => None,
    }
}
