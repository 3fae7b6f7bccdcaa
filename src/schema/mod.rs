//! The store schema: which trait groups and traits exist, their data types and rules.
//!
//! Definitions here; the rules values must keep in `rules`; the one JSON form, both ways,
//! in `json`.

mod json;
mod rules;

pub use rules::{ArrayRule, DataType, NumberRule, Pattern, StringRule, ValidationRule};

use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};

use crate::error::SchemaError;
use crate::limits::Limits;
use crate::names::{Hashed, Name, NameMap};

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
#[derive(Debug, Clone, PartialEq)]
pub struct TraitDefinition {
    data_type: DataType,
    description: Option<String>,
    id_type_promotion: Option<String>,
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

    /// The declared trait `key` names, with its rank (place in declaration order) and the
    /// key it shares with profiles: found by the rank `key` carries when `by_rank` (its patch
    /// was resolved in this group's schema), else by hash.
    pub(crate) fn lookup(
        &self,
        key: Hashed<'_>,
        by_rank: bool,
    ) -> Option<(u32, &Name, &TraitDefinition)> {
        self.traits.lookup(key, by_rank)
    }

    /// The trait `name`'s place in declaration order, or `u32::MAX` when not declared.
    pub(crate) fn rank_of_trait(&self, hash: u32, name: &Name) -> u32 {
        self.traits
            .find_name(hash, name)
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
#[derive(Debug, Clone)]
pub struct StoreSchema {
    groups: NameMap<GroupDefinition>,
    limits: Limits,
    /// This schema among the schemas of the process: a patch parsed against it
    /// ([`StoreSchema::parse_patch`]) carries it, so that a merge under the same schema (or a
    /// clone of it) trusts the patch's checks and resolved names. Any change of the schema
    /// takes a new one.
    instance: u64,
}

impl PartialEq for StoreSchema {
    /// The same groups, traits and limits; which instance does not matter.
    fn eq(&self, other: &Self) -> bool {
        self.groups == other.groups && self.limits == other.limits
    }
}

/// A number no other schema of the process has.
fn new_instance() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, AtomicOrdering::Relaxed)
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
            instance: new_instance(),
        })
    }

    /// The same schema checking patches against `limits` instead of the defaults.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self.instance = new_instance();
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

    /// The declared group `key` names, with its rank (place in declaration order), the key
    /// it shares with profiles and its definition: found by the rank `key` carries when
    /// `by_rank` (its patch was resolved in this schema), else by hash.
    pub(crate) fn lookup(
        &self,
        key: Hashed<'_>,
        by_rank: bool,
    ) -> Option<(u32, &Name, &GroupDefinition)> {
        self.groups.lookup(key, by_rank)
    }

    /// Identifies this schema and its clones: see the field.
    pub(crate) fn instance(&self) -> u64 {
        self.instance
    }

    /// The group `name`'s place in declaration order, or `u32::MAX` when not declared.
    pub(crate) fn rank_of_group(&self, hash: u32, name: &Name) -> u32 {
        self.groups
            .find_name(hash, name)
            .map_or(u32::MAX, declaration_rank)
    }
}

/// A declaration index as a rank; a schema holds at most 50 groups of 95 traits.
fn declaration_rank(index: usize) -> u32 {
    u32::try_from(index).expect("a schema declares fewer than 2^32 groups or traits")
}
