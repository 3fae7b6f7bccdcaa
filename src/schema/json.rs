//! The schema's one JSON form, the control plane's, both ways.
//!
//! Every type has one deserializer, used alike on its own and inside a [`StoreSchema`]. The
//! only difference is where a `pattern` that does not compile is reported: on its own, as the
//! deserialization error; inside a schema, set aside until the document is read, so that the
//! [`SchemaError`] names the group and trait (a group's `displayName` may come after its
//! traits).

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserialize, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeStruct, Serializer};

use super::rules::{ArrayRule, DataType, NumberRule, Pattern, StringRule, ValidationRule};
use super::{GroupDefinition, StoreSchema, TraitDefinition};
use crate::error::SchemaError;
use crate::limits::Limits;
use crate::names::{KeySeed, Name, NameMap};

// ---------------------------------------------------------------------------------------
// Serialization

impl Serialize for Pattern {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// Writes the fields of a rule (not its `ruleType`) into `map`.
fn serialize_rule_fields<M: SerializeMap>(
    rule: &ValidationRule,
    map: &mut M,
) -> Result<(), M::Error> {
    fn field<M: SerializeMap, T: Serialize>(
        map: &mut M,
        name: &str,
        value: &Option<T>,
    ) -> Result<(), M::Error> {
        match value {
            Some(value) => map.serialize_entry(name, value),
            None => Ok(()),
        }
    }
    match rule {
        ValidationRule::String(rule) => {
            field(map, "pattern", &rule.pattern)?;
            field(map, "minLength", &rule.min_length)?;
            field(map, "maxLength", &rule.max_length)
        }
        ValidationRule::Number(rule) => {
            field(map, "min", &rule.min)?;
            field(map, "max", &rule.max)
        }
        ValidationRule::Boolean => Ok(()),
        ValidationRule::Array(rule) => {
            field(map, "minItems", &rule.min_items)?;
            field(map, "maxItems", &rule.max_items)
        }
    }
}

/// A rule serialized with or without its `ruleType`.
struct RuleOut<'a> {
    rule: &'a ValidationRule,
    tagged: bool,
}

impl Serialize for RuleOut<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        if self.tagged {
            map.serialize_entry("ruleType", &self.rule.data_type())?;
        }
        serialize_rule_fields(self.rule, &mut map)?;
        map.end()
    }
}

impl Serialize for ValidationRule {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        RuleOut {
            rule: self,
            tagged: true,
        }
        .serialize(serializer)
    }
}

impl Serialize for StringRule {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let rule = ValidationRule::String(self.clone());
        RuleOut {
            rule: &rule,
            tagged: false,
        }
        .serialize(serializer)
    }
}

impl Serialize for NumberRule {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let rule = ValidationRule::Number(self.clone());
        RuleOut {
            rule: &rule,
            tagged: false,
        }
        .serialize(serializer)
    }
}

impl Serialize for ArrayRule {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let rule = ValidationRule::Array(self.clone());
        RuleOut {
            rule: &rule,
            tagged: false,
        }
        .serialize(serializer)
    }
}

impl Serialize for TraitDefinition {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let fields = 1
            + usize::from(self.description.is_some())
            + usize::from(self.id_type_promotion.is_some())
            + usize::from(self.validation_rule.is_some());
        let mut s = serializer.serialize_struct("TraitDefinition", fields)?;
        s.serialize_field("dataType", &self.data_type)?;
        if let Some(description) = &self.description {
            s.serialize_field("description", description)?;
        }
        if let Some(id_type) = &self.id_type_promotion {
            s.serialize_field("idTypePromotion", id_type)?;
        }
        if let Some(rule) = &self.validation_rule {
            s.serialize_field("validationRule", rule)?;
        }
        s.end()
    }
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

// ---------------------------------------------------------------------------------------
// Deserialization

/// Where a pattern that does not compile goes: `None`, the deserialization error at once;
/// `Some(slot)`, the first one's reason set aside in `slot` (inside a schema).
type BadPatterns<'s> = Option<&'s mut Option<String>>;

/// Compiles a pattern read from the document.
fn compile<E: de::Error>(source: &str, bad: &mut BadPatterns<'_>) -> Result<Option<Pattern>, E> {
    match Pattern::new(source) {
        Ok(pattern) => Ok(Some(pattern)),
        Err(e) => match bad {
            None => Err(E::custom(e.reason())),
            Some(slot) => {
                slot.get_or_insert_with(|| e.reason().to_owned());
                Ok(None)
            }
        },
    }
}

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let source = <Cow<'de, str>>::deserialize(d)?;
        Pattern::new(&source).map_err(|e| de::Error::custom(e.reason()))
    }
}

/// The members a rule object may have, over all rule types.
const RULE_FIELDS: [&str; 7] = [
    "pattern",
    "minLength",
    "maxLength",
    "min",
    "max",
    "minItems",
    "maxItems",
];

/// The members of a rule object as read, before its type says which are allowed.
#[derive(Default)]
struct RuleFields {
    rule_type: Option<DataType>,
    pattern: Option<Pattern>,
    min_length: Option<u64>,
    max_length: Option<u64>,
    min: Option<f64>,
    max: Option<f64>,
    min_items: Option<u64>,
    max_items: Option<u64>,
    /// Which of [`RULE_FIELDS`] were present, one bit each.
    present: u8,
}

impl RuleFields {
    /// The rule of type `data_type`; an error naming the first member that type does not
    /// have.
    fn into_rule<E: de::Error>(self, data_type: DataType) -> Result<ValidationRule, E> {
        let (allowed, rule): (&'static [&'static str], _) = match data_type {
            DataType::String => (
                &["pattern", "minLength", "maxLength"],
                ValidationRule::String(StringRule {
                    pattern: self.pattern,
                    min_length: self.min_length,
                    max_length: self.max_length,
                }),
            ),
            DataType::Number => (
                &["min", "max"],
                ValidationRule::Number(NumberRule {
                    min: self.min,
                    max: self.max,
                }),
            ),
            DataType::Boolean => (&[], ValidationRule::Boolean),
            DataType::Array => (
                &["minItems", "maxItems"],
                ValidationRule::Array(ArrayRule {
                    min_items: self.min_items,
                    max_items: self.max_items,
                }),
            ),
        };
        for (bit, name) in RULE_FIELDS.iter().enumerate() {
            if self.present & (1 << bit) != 0 && !allowed.contains(name) {
                return Err(E::unknown_field(name, allowed));
            }
        }
        Ok(rule)
    }
}

/// Reads a rule object: with its `ruleType` (`tagged`) as a [`ValidationRule`], or without
/// as one of the rule structs.
struct RuleSeed<'s> {
    tagged: bool,
    bad: BadPatterns<'s>,
}

impl<'de> DeserializeSeed<'de> for RuleSeed<'_> {
    type Value = RuleFields;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<RuleFields, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RuleSeed<'_> {
    type Value = RuleFields;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a validation rule object")
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<RuleFields, A::Error> {
        let mut fields = RuleFields::default();
        while let Some(key) = map.next_key_seed(KeySeed)? {
            if key == "ruleType" && self.tagged {
                if fields.rule_type.replace(map.next_value()?).is_some() {
                    return Err(de::Error::duplicate_field("ruleType"));
                }
                continue;
            }
            let Some(bit) = RULE_FIELDS.iter().position(|name| *name == key) else {
                return Err(de::Error::unknown_field(&key, &RULE_FIELDS));
            };
            if fields.present & (1 << bit) != 0 {
                return Err(de::Error::duplicate_field(RULE_FIELDS[bit]));
            }
            fields.present |= 1 << bit;
            match RULE_FIELDS[bit] {
                "pattern" => {
                    let source: Cow<'de, str> = map.next_value_seed(StrSeed)?;
                    fields.pattern = compile(&source, &mut self.bad)?;
                }
                "minLength" => fields.min_length = map.next_value()?,
                "maxLength" => fields.max_length = map.next_value()?,
                "min" => fields.min = map.next_value()?,
                "max" => fields.max = map.next_value()?,
                "minItems" => fields.min_items = map.next_value()?,
                _ => fields.max_items = map.next_value()?,
            }
        }
        if self.tagged && fields.rule_type.is_none() {
            return Err(de::Error::missing_field("ruleType"));
        }
        Ok(fields)
    }
}

/// A string, borrowed from the input when it has no escapes.
struct StrSeed;

impl<'de> DeserializeSeed<'de> for StrSeed {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Cow<'de, str>, D::Error> {
        KeySeed.deserialize(d)
    }
}

/// Reads a tagged rule into a [`ValidationRule`].
fn read_rule<'de, D: Deserializer<'de>>(
    d: D,
    bad: BadPatterns<'_>,
) -> Result<ValidationRule, D::Error> {
    let fields = RuleSeed { tagged: true, bad }.deserialize(d)?;
    let data_type = fields.rule_type.expect("checked when read");
    fields.into_rule(data_type)
}

impl<'de> Deserialize<'de> for ValidationRule {
    /// `{"ruleType": ..., fields of that type}`; unknown members are refused.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        read_rule(d, None)
    }
}

/// Reads an untagged rule of type `data_type`.
fn read_untagged<'de, D: Deserializer<'de>>(
    d: D,
    data_type: DataType,
) -> Result<ValidationRule, D::Error> {
    let fields = RuleSeed {
        tagged: false,
        bad: None,
    }
    .deserialize(d)?;
    fields.into_rule(data_type)
}

impl<'de> Deserialize<'de> for StringRule {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match read_untagged(d, DataType::String)? {
            ValidationRule::String(rule) => Ok(rule),
            _ => unreachable!("read as a string rule"),
        }
    }
}

impl<'de> Deserialize<'de> for NumberRule {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match read_untagged(d, DataType::Number)? {
            ValidationRule::Number(rule) => Ok(rule),
            _ => unreachable!("read as a number rule"),
        }
    }
}

impl<'de> Deserialize<'de> for ArrayRule {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match read_untagged(d, DataType::Array)? {
            ValidationRule::Array(rule) => Ok(rule),
            _ => unreachable!("read as an array rule"),
        }
    }
}

/// `validationRule`: a rule, or `null` for none.
struct OptionalRuleSeed<'s>(BadPatterns<'s>);

impl<'de> DeserializeSeed<'de> for OptionalRuleSeed<'_> {
    type Value = Option<ValidationRule>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for OptionalRuleSeed<'_> {
    type Value = Option<ValidationRule>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a validation rule or null")
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        read_rule(d, self.0).map(Some)
    }
}

/// Reads a trait definition; unknown members are refused.
struct DefinitionSeed<'s>(BadPatterns<'s>);

const DEFINITION_FIELDS: [&str; 4] = [
    "dataType",
    "description",
    "idTypePromotion",
    "validationRule",
];

impl<'de> DeserializeSeed<'de> for DefinitionSeed<'_> {
    type Value = TraitDefinition;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<TraitDefinition, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for DefinitionSeed<'_> {
    type Value = TraitDefinition;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a trait definition object")
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<TraitDefinition, A::Error> {
        let mut data_type = None;
        let mut description = None;
        let mut id_type_promotion = None;
        let mut validation_rule = None;
        let mut present = [false; 4];
        while let Some(key) = map.next_key_seed(KeySeed)? {
            let Some(slot) = DEFINITION_FIELDS.iter().position(|name| *name == key) else {
                return Err(de::Error::unknown_field(&key, &DEFINITION_FIELDS));
            };
            if std::mem::replace(&mut present[slot], true) {
                return Err(de::Error::duplicate_field(DEFINITION_FIELDS[slot]));
            }
            match slot {
                0 => data_type = Some(map.next_value()?),
                1 => description = map.next_value()?,
                2 => id_type_promotion = map.next_value()?,
                _ => {
                    let bad = self.0.as_deref_mut();
                    validation_rule = map.next_value_seed(OptionalRuleSeed(bad))?;
                }
            }
        }
        Ok(TraitDefinition {
            data_type: data_type.ok_or_else(|| de::Error::missing_field("dataType"))?,
            description,
            id_type_promotion,
            validation_rule,
        })
    }
}

impl<'de> Deserialize<'de> for TraitDefinition {
    /// `{"dataType", "description"?, "idTypePromotion"?, "validationRule"?}`; the checks of
    /// [`StoreSchema::new`] run when a schema is made of it.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        DefinitionSeed(None).deserialize(d)
    }
}

/// A pattern that did not compile, set aside: the trait it belongs to and why.
type BadTrait = Option<(Name, String)>;

/// A group's `traits`: names to definitions, each name once.
struct TraitsSeed<'s>(&'s mut BadTrait);

impl<'de> DeserializeSeed<'de> for TraitsSeed<'_> {
    type Value = NameMap<TraitDefinition>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for TraitsSeed<'_> {
    type Value = NameMap<TraitDefinition>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object of trait definitions")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut traits = NameMap::default();
        while let Some(key) = map.next_key_seed(KeySeed)? {
            if traits.contains_key(key.as_ref()) {
                return Err(de::Error::custom(format_args!("duplicate key `{key}`")));
            }
            let mut bad = None;
            let definition = map.next_value_seed(DefinitionSeed(Some(&mut bad)))?;
            let name = Name::from(key.as_ref());
            if let Some(reason) = bad
                && self.0.is_none()
            {
                *self.0 = Some((name.clone(), reason));
            }
            traits.insert(name, definition);
        }
        Ok(traits)
    }
}

/// One trait group as the control plane sends it; unknown members (timestamps, links) are
/// ignored, since the list response may carry more than we use.
struct GroupSeed<'s>(&'s mut Option<SchemaError>);

const GROUP_FIELDS: [&str; 4] = ["displayName", "description", "version", "traits"];

impl<'de> DeserializeSeed<'de> for GroupSeed<'_> {
    type Value = GroupDefinition;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<GroupDefinition, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for GroupSeed<'_> {
    type Value = GroupDefinition;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a trait group object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<GroupDefinition, A::Error> {
        let mut name: Option<String> = None;
        let mut description = None;
        let mut version = None;
        let mut traits = NameMap::default();
        let mut bad: BadTrait = None;
        let mut present = [false; 4];
        while let Some(key) = map.next_key_seed(KeySeed)? {
            let Some(slot) = GROUP_FIELDS.iter().position(|field| *field == key) else {
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            if std::mem::replace(&mut present[slot], true) {
                return Err(de::Error::duplicate_field(GROUP_FIELDS[slot]));
            }
            match slot {
                0 => name = Some(map.next_value()?),
                1 => description = map.next_value()?,
                2 => version = map.next_value()?,
                _ => traits = map.next_value_seed(TraitsSeed(&mut bad))?,
            }
        }
        let name = name.ok_or_else(|| de::Error::missing_field("displayName"))?;
        if let Some((trait_name, reason)) = bad
            && self.0.is_none()
        {
            let location = format!("trait group `{name}`, trait `{trait_name}`");
            *self.0 = Some(SchemaError::new(location, reason));
        }
        Ok(GroupDefinition {
            name: Name::from(name),
            description,
            version,
            traits,
        })
    }
}

/// `[group, ...]`, with the first pattern that did not compile set aside.
struct GroupsSeed<'s>(&'s mut Option<SchemaError>);

impl<'de> DeserializeSeed<'de> for GroupsSeed<'_> {
    type Value = Vec<GroupDefinition>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for GroupsSeed<'_> {
    type Value = Vec<GroupDefinition>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of trait groups")
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut groups = Vec::new();
        while let Some(group) = seq.next_element_seed(GroupSeed(&mut *self.0))? {
            groups.push(group);
        }
        Ok(groups)
    }
}

/// The whole document: a list of groups, or `{"traitGroups", "meta"?, "limits"?}`.
struct SchemaVisitor<'s>(&'s mut Option<SchemaError>);

impl<'de> Visitor<'de> for SchemaVisitor<'_> {
    type Value = (Vec<GroupDefinition>, Limits);

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of trait groups or an object with `traitGroups`")
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        let groups = GroupsSeed(self.0).visit_seq(seq)?;
        Ok((groups, Limits::default()))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut groups = None;
        let mut limits = None;
        let mut meta_seen = false;
        while let Some(key) = map.next_key_seed(KeySeed)? {
            let repeated = match key.as_ref() {
                "traitGroups" => groups
                    .replace(map.next_value_seed(GroupsSeed(&mut *self.0))?)
                    .is_some(),
                "limits" => limits.replace(map.next_value()?).is_some(),
                "meta" => {
                    map.next_value::<IgnoredAny>()?;
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

impl<'de> Deserialize<'de> for StoreSchema {
    /// Accepts `[TraitGroup, ...]` or `{"traitGroups": [...], "meta"?: ..., "limits"?: ...}`
    /// and runs the checks of [`StoreSchema::new`].
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut bad_pattern = None;
        let (groups, limits) = d.deserialize_any(SchemaVisitor(&mut bad_pattern))?;
        if let Some(error) = bad_pattern {
            return Err(de::Error::custom(error));
        }
        StoreSchema::new(groups)
            .map(|schema| schema.with_limits(limits))
            .map_err(de::Error::custom)
    }
}
