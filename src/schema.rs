//! The store schema: which trait groups and traits exist, their data types and rules.

use std::fmt;

use regex::Regex;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeStruct, Serializer};

use crate::error::SchemaError;
use crate::limits::Limits;
use crate::names::{KeySeed, Name, NameMap, deserialize_unique_map};

/// Trait groups one store may declare (documented).
const MAX_GROUPS_PER_STORE: usize = 50;
/// Traits one group may declare (documented).
const MAX_TRAITS_PER_GROUP: usize = 95;
/// Characters in a group or trait name (documented).
const MAX_NAME_CHARS: usize = 64;
/// Characters in a group or trait description (documented).
const MAX_DESCRIPTION_CHARS: usize = 1024;
/// Characters in `idTypePromotion` (documented).
const MAX_ID_TYPE_PROMOTION_CHARS: usize = 30;
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

    fn wire_name(self) -> &'static str {
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

impl Serialize for Pattern {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let source = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Pattern::new(&source).map_err(|e| de::Error::custom(e.reason()))
    }
}

/// Rules for a `STRING` trait. Lengths count Unicode scalar values.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StringRule {
    /// A regular expression that must match somewhere in the string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<Pattern>,
    /// The fewest characters allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_length: Option<u64>,
    /// The most characters allowed (at least 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u64>,
}

/// Rules for a `NUMBER` trait; both bounds are inclusive.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NumberRule {
    /// The smallest value allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// The largest value allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
}

/// Rules for an `ARRAY` trait: bounds on its number of items.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ArrayRule {
    /// The fewest items allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_items: Option<u64>,
    /// The most items allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_items: Option<u64>,
}

/// A trait's `validationRule`, tagged by `ruleType`, which must equal the trait's `dataType`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "ruleType", rename_all = "UPPERCASE")]
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
    fn data_type(&self) -> DataType {
        match self {
            ValidationRule::String(_) => DataType::String,
            ValidationRule::Number(_) => DataType::Number,
            ValidationRule::Boolean => DataType::Boolean,
            ValidationRule::Array(_) => DataType::Array,
        }
    }

    /// Why the rule can never be satisfied or is out of its documented range, if it is.
    fn problem(&self) -> Option<String> {
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

/// The definition of one trait: its data type, and optionally a description, an identifier
/// type to promote it to, and a validation rule.
///
/// # Examples
///
/// ```
/// use profile_traits::{DataType, StringRule, TraitDefinition, ValidationRule};
///
/// let email = TraitDefinition::new(DataType::String)
///     .with_description("primary email address")
///     .with_rule(ValidationRule::String(StringRule { max_length: Some(254), ..StringRule::default() }));
/// assert_eq!(email.data_type(), DataType::String);
/// ```
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TraitDefinition {
    data_type: DataType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id_type_promotion: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    validation_rule: Option<ValidationRule>,
}

impl TraitDefinition {
    /// A trait of type `data_type` with no rule.
    pub fn new(data_type: DataType) -> Self {
        TraitDefinition {
            data_type,
            description: None,
            id_type_promotion: None,
            validation_rule: None,
        }
    }

    /// Sets the description (at most 1024 characters, checked by [`StoreSchema::new`]).
    pub fn with_description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    /// Sets the identifier type this trait is promoted to (at most 30 characters).
    pub fn with_id_type_promotion(mut self, id_type: impl Into<String>) -> Self {
        self.id_type_promotion = Some(id_type.into());
        self
    }

    /// Sets the validation rule; its type must equal the data type, which
    /// [`StoreSchema::new`] checks.
    pub fn with_rule(mut self, rule: ValidationRule) -> Self {
        self.validation_rule = Some(rule);
        self
    }

    /// The data type values of this trait must have.
    pub fn data_type(&self) -> DataType {
        self.data_type
    }

    /// The description, if any.
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    /// The identifier type this trait is promoted to, if any.
    pub fn id_type_promotion(&self) -> Option<&str> {
        self.id_type_promotion.as_deref()
    }

    /// The validation rule, if any.
    pub fn validation_rule(&self) -> Option<&ValidationRule> {
        self.validation_rule.as_ref()
    }

    fn check(&self, location: &str) -> Result<(), SchemaError> {
        check_chars(
            location,
            "description",
            self.description.as_deref(),
            MAX_DESCRIPTION_CHARS,
        )?;
        check_chars(
            location,
            "idTypePromotion",
            self.id_type_promotion.as_deref(),
            MAX_ID_TYPE_PROMOTION_CHARS,
        )?;
        let Some(rule) = &self.validation_rule else {
            return Ok(());
        };
        if rule.data_type() != self.data_type {
            return Err(SchemaError::new(
                location,
                format!(
                    "`ruleType` {} does not match `dataType` {}",
                    rule.data_type().wire_name(),
                    self.data_type.wire_name()
                ),
            ));
        }
        match rule.problem() {
            Some(problem) => Err(SchemaError::new(location, problem)),
            None => Ok(()),
        }
    }
}

fn check_chars(
    location: &str,
    field: &str,
    value: Option<&str>,
    max: usize,
) -> Result<(), SchemaError> {
    let chars = value.map_or(0, |v| v.chars().count());
    if chars > max {
        return Err(SchemaError::new(
            location,
            format!("`{field}` has {chars} characters, at most {max} allowed"),
        ));
    }
    Ok(())
}

/// One trait group of a schema (the API's `TraitGroup` resource): a name and its traits.
///
/// # Examples
///
/// ```
/// use profile_traits::{DataType, GroupDefinition, TraitDefinition};
///
/// let contact = GroupDefinition::new("Contact")
///     .with_trait("email", TraitDefinition::new(DataType::String))
///     .with_trait("age", TraitDefinition::new(DataType::Number));
/// assert_eq!(contact.len(), 2);
/// assert_eq!(contact.trait_definition("age").unwrap().data_type(), DataType::Number);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct GroupDefinition {
    name: Name,
    description: Option<String>,
    version: Option<i64>,
    traits: NameMap<TraitDefinition>,
}

impl GroupDefinition {
    /// An empty group named `name` (its `displayName`).
    pub fn new(name: impl AsRef<str>) -> Self {
        GroupDefinition {
            name: Name::from(name.as_ref()),
            description: None,
            version: None,
            traits: NameMap::default(),
        }
    }

    /// Sets the description (at most 1024 characters).
    pub fn with_description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    /// Sets the version the control plane reports.
    pub fn with_version(mut self, version: i64) -> Self {
        self.version = Some(version);
        self
    }

    /// Declares the trait `name`, replacing an earlier definition of the same name.
    pub fn with_trait(mut self, name: impl AsRef<str>, definition: TraitDefinition) -> Self {
        self.traits.insert(Name::from(name.as_ref()), definition);
        self
    }

    /// The group's name (`displayName`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The description, if any.
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    /// The version, if any.
    pub fn version(&self) -> Option<i64> {
        self.version
    }

    /// The definition of the trait `name`, if the group declares it.
    pub fn trait_definition(&self, name: &str) -> Option<&TraitDefinition> {
        self.traits.get(name)
    }

    /// The declared traits, in declaration order.
    pub fn traits(&self) -> impl Iterator<Item = (&str, &TraitDefinition)> {
        self.traits.iter().map(|(name, def)| (&**name, def))
    }

    /// The number of declared traits.
    pub fn len(&self) -> usize {
        self.traits.len()
    }

    /// Whether the group declares no trait.
    pub fn is_empty(&self) -> bool {
        self.traits.is_empty()
    }

    /// The declared trait `name` with its shared key, for adding it to a profile.
    pub(crate) fn resolve(&self, name: &str) -> Option<(&Name, &TraitDefinition)> {
        self.traits.get_key_value(name)
    }

    /// The declared trait `name`'s place in declaration order and its shared key.
    pub(crate) fn resolve_ranked(&self, name: &str) -> Option<(u32, &Name)> {
        let (index, key, _) = self.traits.get_full(name)?;
        Some((declaration_rank(index), key))
    }

    /// The trait `name`'s place in declaration order, or `u32::MAX` when not declared.
    pub(crate) fn rank_of_trait(&self, name: &str) -> u32 {
        self.traits
            .get_index_of(name)
            .map_or(u32::MAX, declaration_rank)
    }

    fn check(&self) -> Result<(), SchemaError> {
        let location = format!("trait group `{}`", self.name);
        if !is_group_name(&self.name) {
            return Err(SchemaError::new(
                location,
                "name must be 1-64 characters of `a-zA-Z0-9_-.`",
            ));
        }
        check_chars(
            &location,
            "description",
            self.description.as_deref(),
            MAX_DESCRIPTION_CHARS,
        )?;
        if self.traits.len() > MAX_TRAITS_PER_GROUP {
            return Err(SchemaError::new(
                location,
                format!(
                    "{} traits declared, at most {MAX_TRAITS_PER_GROUP} allowed",
                    self.traits.len()
                ),
            ));
        }
        for (name, definition) in &self.traits {
            let location = format!("{location}, trait `{name}`");
            let chars = name.chars().count();
            if chars == 0 || chars > MAX_NAME_CHARS {
                return Err(SchemaError::new(location, "name must be 1-64 characters"));
            }
            definition.check(&location)?;
        }
        Ok(())
    }
}

/// Whether `name` matches `^[a-zA-Z0-9_\-\.]{1,64}$`.
fn is_group_name(name: &str) -> bool {
    (1..=MAX_NAME_CHARS).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// A store's schema: the trait groups and traits a patch may name, their types and rules,
/// and the [`Limits`] every patch is checked against.
///
/// A `StoreSchema` is always valid: [`StoreSchema::new`] and deserialization check the
/// documented rules (group names, counts, lengths, rule types) and refuse a schema that
/// breaks one.
///
/// Deserializes from the control plane's own JSON: a list of trait groups, or the list
/// response `{"traitGroups": [...], "meta": ...}`. Serializes as `{"traitGroups": [...]}`,
/// with a `"limits"` member only when the limits differ from the documented defaults.
///
/// # Examples
///
/// ```
/// use profile_traits::{DataType, StoreSchema};
///
/// let schema: StoreSchema = serde_json::from_str(r#"{"traitGroups": [
///     {"displayName": "Contact", "traits": {"email": {"dataType": "STRING"}}}
/// ]}"#).unwrap();
/// let contact = schema.group("Contact").unwrap();
/// assert_eq!(contact.trait_definition("email").unwrap().data_type(), DataType::String);
///
/// let duplicate = r#"[{"displayName": "A", "traits": {}}, {"displayName": "A", "traits": {}}]"#;
/// assert!(serde_json::from_str::<StoreSchema>(duplicate).is_err());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct StoreSchema {
    groups: NameMap<GroupDefinition>,
    limits: Limits,
}

impl StoreSchema {
    /// A schema with `groups`, in order, and the documented default [`Limits`].
    ///
    /// # Errors
    ///
    /// When the schema breaks a documented rule, naming the group and trait:
    /// - two groups with the same name, or more than 50 groups;
    /// - a group name that is empty, longer than 64 characters or not `a-zA-Z0-9_-.`;
    /// - more than 95 traits in a group, or a trait name that is empty or over 64 characters;
    /// - a description over 1024 characters, an `idTypePromotion` over 30;
    /// - a rule whose `ruleType` is not the trait's `dataType`, a minimum above its maximum,
    ///   or a `maxLength` of 0.
    ///
    /// # Examples
    ///
    /// ```
    /// use profile_traits::{DataType, GroupDefinition, StoreSchema, TraitDefinition};
    ///
    /// let schema = StoreSchema::new([
    ///     GroupDefinition::new("Contact").with_trait("email", TraitDefinition::new(DataType::String)),
    /// ]).unwrap();
    /// assert_eq!(schema.len(), 1);
    ///
    /// let error = StoreSchema::new([GroupDefinition::new("has space")]).unwrap_err();
    /// assert_eq!(
    ///     error.to_string(),
    ///     "invalid schema: trait group `has space`: name must be 1-64 characters of `a-zA-Z0-9_-.`"
    /// );
    /// ```
    pub fn new(groups: impl IntoIterator<Item = GroupDefinition>) -> Result<Self, SchemaError> {
        let mut map = NameMap::default();
        for group in groups {
            group.check()?;
            if map.contains_key(&group.name) {
                return Err(SchemaError::new(
                    format!("trait group `{}`", group.name),
                    "declared twice",
                ));
            }
            map.insert(group.name.clone(), group);
        }
        if map.len() > MAX_GROUPS_PER_STORE {
            return Err(SchemaError::new(
                "",
                format!(
                    "{} trait groups declared, at most {MAX_GROUPS_PER_STORE} allowed",
                    map.len()
                ),
            ));
        }
        Ok(StoreSchema {
            groups: map,
            limits: Limits::default(),
        })
    }

    /// The same schema checking patches against `limits` instead of the defaults.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The limits patches are checked against.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The trait group `name`, if the schema declares it.
    pub fn group(&self, name: &str) -> Option<&GroupDefinition> {
        self.groups.get(name)
    }

    /// The declared trait groups, in order.
    pub fn groups(&self) -> impl Iterator<Item = &GroupDefinition> {
        self.groups.values()
    }

    /// The number of declared trait groups.
    pub fn len(&self) -> usize {
        self.groups.len()
    }

    /// Whether the schema declares no trait group.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// The declared group `name` with its shared key, for adding it to a profile.
    pub(crate) fn resolve(&self, name: &str) -> Option<(&Name, &GroupDefinition)> {
        self.groups.get_key_value(name)
    }

    /// The declared group `name`'s place in declaration order, its shared key and definition.
    pub(crate) fn resolve_ranked(&self, name: &str) -> Option<(u32, &Name, &GroupDefinition)> {
        let (index, key, definition) = self.groups.get_full(name)?;
        Some((declaration_rank(index), key, definition))
    }

    /// The group `name`'s place in declaration order, or `u32::MAX` when not declared.
    pub(crate) fn rank_of_group(&self, name: &str) -> u32 {
        self.groups
            .get_index_of(name)
            .map_or(u32::MAX, declaration_rank)
    }
}

/// A declaration index as a rank; a schema holds at most 50 groups of 95 traits.
fn declaration_rank(index: usize) -> u32 {
    u32::try_from(index).expect("a schema declares fewer than 2^32 groups or traits")
}

impl Serialize for GroupDefinition {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let fields =
            2 + usize::from(self.description.is_some()) + usize::from(self.version.is_some());
        let mut s = serializer.serialize_struct("TraitGroup", fields)?;
        s.serialize_field("displayName", &*self.name)?;
        if let Some(description) = &self.description {
            s.serialize_field("description", description)?;
        }
        if let Some(version) = self.version {
            s.serialize_field("version", &version)?;
        }
        s.serialize_field("traits", &TraitsOut(&self.traits))?;
        s.end()
    }
}

struct TraitsOut<'a>(&'a NameMap<TraitDefinition>);

impl Serialize for TraitsOut<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, definition) in self.0 {
            map.serialize_entry(&**name, definition)?;
        }
        map.end()
    }
}

/// A trait group as the control plane sends it; unknown members (timestamps, links) are
/// ignored, since the list response may carry more than we use.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct GroupWire {
    display_name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    version: Option<i64>,
    #[serde(default, deserialize_with = "deserialize_unique_map")]
    traits: NameMap<TraitDefinitionWire>,
}

/// A trait definition as sent, its pattern not yet compiled, so that a bad pattern is
/// reported as a [`SchemaError`] naming its group and trait.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TraitDefinitionWire {
    data_type: DataType,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    id_type_promotion: Option<String>,
    #[serde(default)]
    validation_rule: Option<RuleWire>,
}

#[derive(serde::Deserialize)]
#[serde(tag = "ruleType", rename_all = "UPPERCASE")]
enum RuleWire {
    String(StringRuleWire),
    Number(NumberRule),
    Boolean,
    Array(ArrayRule),
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct StringRuleWire {
    #[serde(default)]
    pattern: Option<String>,
    #[serde(default)]
    min_length: Option<u64>,
    #[serde(default)]
    max_length: Option<u64>,
}

impl TraitDefinitionWire {
    fn compile(self, location: &str) -> Result<TraitDefinition, SchemaError> {
        let validation_rule = match self.validation_rule {
            None => None,
            Some(RuleWire::String(rule)) => {
                let pattern = rule
                    .pattern
                    .map(|source| Pattern::new(&source))
                    .transpose()
                    .map_err(|e| SchemaError::new(location, e.reason()))?;
                Some(ValidationRule::String(StringRule {
                    pattern,
                    min_length: rule.min_length,
                    max_length: rule.max_length,
                }))
            }
            Some(RuleWire::Number(rule)) => Some(ValidationRule::Number(rule)),
            Some(RuleWire::Boolean) => Some(ValidationRule::Boolean),
            Some(RuleWire::Array(rule)) => Some(ValidationRule::Array(rule)),
        };
        Ok(TraitDefinition {
            data_type: self.data_type,
            description: self.description,
            id_type_promotion: self.id_type_promotion,
            validation_rule,
        })
    }
}

impl TryFrom<GroupWire> for GroupDefinition {
    type Error = SchemaError;

    fn try_from(wire: GroupWire) -> Result<Self, SchemaError> {
        let traits = wire
            .traits
            .into_iter()
            .map(|(name, definition)| {
                let location = format!("trait group `{}`, trait `{name}`", wire.display_name);
                definition
                    .compile(&location)
                    .map(|definition| (name, definition))
            })
            .collect::<Result<_, _>>()?;
        Ok(GroupDefinition {
            name: Name::from(wire.display_name),
            description: wire.description,
            version: wire.version,
            traits,
        })
    }
}

impl Serialize for StoreSchema {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let custom_limits = self.limits != Limits::default();
        let mut s = serializer.serialize_struct("StoreSchema", 1 + usize::from(custom_limits))?;
        s.serialize_field("traitGroups", &GroupsOut(&self.groups))?;
        if custom_limits {
            s.serialize_field("limits", &self.limits)?;
        }
        s.end()
    }
}

struct GroupsOut<'a>(&'a NameMap<GroupDefinition>);

impl Serialize for GroupsOut<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.values())
    }
}

impl<'de> Deserialize<'de> for StoreSchema {
    /// Accepts `[TraitGroup, ...]` or `{"traitGroups": [...], "meta"?: ..., "limits"?: ...}`
    /// and runs the checks of [`StoreSchema::new`].
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct SchemaVisitor;

        impl<'de> Visitor<'de> for SchemaVisitor {
            type Value = (Vec<GroupWire>, Limits);

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of trait groups or an object with `traitGroups`")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut groups = Vec::new();
                while let Some(group) = seq.next_element()? {
                    groups.push(group);
                }
                Ok((groups, Limits::default()))
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut groups = None;
                let mut limits = None;
                let mut meta_seen = false;
                while let Some(key) = map.next_key_seed(KeySeed)? {
                    let repeated = match key.as_ref() {
                        "traitGroups" => groups.replace(map.next_value()?).is_some(),
                        "limits" => limits.replace(map.next_value()?).is_some(),
                        "meta" => {
                            map.next_value::<de::IgnoredAny>()?;
                            std::mem::replace(&mut meta_seen, true)
                        }
                        other => {
                            return Err(de::Error::unknown_field(
                                other,
                                &["traitGroups", "meta", "limits"],
                            ));
                        }
                    };
                    if repeated {
                        return Err(de::Error::custom(format_args!("duplicate key `{key}`")));
                    }
                }
                let groups = groups.ok_or_else(|| de::Error::missing_field("traitGroups"))?;
                Ok((groups, limits.unwrap_or_default()))
            }
        }

        let (groups, limits) = d.deserialize_any(SchemaVisitor)?;
        let groups = groups
            .into_iter()
            .map(GroupDefinition::try_from)
            .collect::<Result<Vec<_>, _>>()
            .map_err(de::Error::custom)?;
        StoreSchema::new(groups)
            .map(|schema| schema.with_limits(limits))
            .map_err(de::Error::custom)
    }
}
