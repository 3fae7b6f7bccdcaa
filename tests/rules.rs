//! One test per rule of SEMANTICS.md §2 (the patch), §3 (validation) and §4 (merge), plus
//! the construction rules of §1 (schema, ids, values) and every error message.
//!
//! Profiles are compared as their serialized JSON text, so positions count; violations as
//! whole `(kind, pointer, message)` lists; change lists whole.

mod common;

use common::helpers::{
    assert_merges, assert_parse_rejected, assert_rejected, changes_json, expected, found,
    json_text, patch, profile, schema,
};
use profile_traits::{
    ArrayRule, ChangeKind, DataType, GroupDefinition, IdError, Limits, MAX_VIOLATIONS, NumberRule,
    Patch, Pattern, Profile, ProfileId, Scalar, SchemaError, StoreId, StoreSchema, StringRule,
    TraitChange, TraitDefinition, TraitValue, ValidationRule, ValueError, ViolationKind, merge,
    merge_in_place, merge_in_place_owned,
};
use serde_json::json;

use ViolationKind::{
    DuplicateKey, InvalidValue, LimitExceeded, MalformedJson, NotAnObject, RuleBroken,
    UnexpectedKey, UnknownGroup, UnknownTrait, WrongType,
};

/// The store schema most tests use, in the control plane's list-response shape.
const SCHEMA: &str = r#"{"traitGroups": [
    {"displayName": "Contact", "traits": {
        "email": {"dataType": "STRING", "validationRule": {"ruleType": "STRING", "pattern": "@"}},
        "phone": {"dataType": "STRING"},
        "name": {"dataType": "STRING",
            "validationRule": {"ruleType": "STRING", "minLength": 2, "maxLength": 5}},
        "age": {"dataType": "NUMBER", "validationRule": {"ruleType": "NUMBER", "min": 0, "max": 150}},
        "score": {"dataType": "NUMBER"},
        "vip": {"dataType": "BOOLEAN", "validationRule": {"ruleType": "BOOLEAN"}},
        "tags": {"dataType": "ARRAY",
            "validationRule": {"ruleType": "ARRAY", "minItems": 1, "maxItems": 3}},
        "list": {"dataType": "ARRAY"}}},
    {"displayName": "Activity", "traits": {
        "lastVisited": {"dataType": "STRING"}, "visits": {"dataType": "NUMBER"}}},
    {"displayName": "Billing", "traits": {"plan": {"dataType": "STRING"}}}
]}"#;

/// The stored profile most tests start from.
const PROFILE: &str = r#"{"traits":{"Contact":{"email":"a@b.c","phone":"+1555","vip":true},"Activity":{"visits":3}}}"#;

fn standard() -> (StoreSchema, Profile) {
    (schema(SCHEMA), profile(PROFILE))
}

/// The one violation list of a patch that names `trait` of `Contact` wrongly.
fn one(kind: ViolationKind, pointer: &str, message: &str) -> Vec<common::helpers::Found> {
    expected(&[(kind, pointer, message)])
}

// ---------------------------------------------------------------------------------------
// Section 2: the patch
// ---------------------------------------------------------------------------------------

#[test]
fn absent_traits_is_a_valid_patch_that_changes_nothing() {
    let (schema, before) = standard();
    let patch = patch("{}");
    assert!(patch.is_empty());
    assert_eq!(patch, Patch::new());
    let changes = assert_merges(&schema, &before, &patch, PROFILE);
    assert_eq!(changes_json(&changes), Vec::<serde_json::Value>::new());
}

#[test]
fn empty_traits_is_a_valid_patch_that_changes_nothing() {
    let (schema, before) = standard();
    let patch = patch(r#"{"traits": {}}"#);
    assert_eq!(patch, Patch::new());
    let changes = assert_merges(&schema, &before, &patch, PROFILE);
    assert!(changes.is_empty());
}

#[test]
fn top_level_key_other_than_traits_is_rejected() {
    assert_parse_rejected(
        r#"{"traits": {}, "Traits": {}, "id": "x"}"#,
        &expected(&[
            (
                UnexpectedKey,
                "/Traits",
                "`/Traits`: unexpected key `Traits`, a patch has only `traits`",
            ),
            (
                UnexpectedKey,
                "/id",
                "`/id`: unexpected key `id`, a patch has only `traits`",
            ),
        ]),
    );
}

#[test]
fn unexpected_top_level_key_is_escaped_in_its_pointer() {
    assert_parse_rejected(
        r#"{"a/b~": 1}"#,
        &one(
            UnexpectedKey,
            "/a~1b~0",
            "`/a~1b~0`: unexpected key `a/b~`, a patch has only `traits`",
        ),
    );
}

#[test]
fn null_traits_is_rejected() {
    assert_parse_rejected(
        r#"{"traits": null}"#,
        &one(
            NotAnObject,
            "/traits",
            "`/traits`: expected an object, found null",
        ),
    );
}

#[test]
fn non_object_traits_is_rejected() {
    for (text, found_what) in [
        (r#"{"traits": []}"#, "an array"),
        (r#"{"traits": "Contact"}"#, "a string"),
        (r#"{"traits": 1}"#, "a number"),
        (r#"{"traits": false}"#, "a boolean"),
    ] {
        let message = format!("`/traits`: expected an object, found {found_what}");
        assert_parse_rejected(text, &one(NotAnObject, "/traits", &message));
    }
}

#[test]
fn non_object_document_is_rejected() {
    for (text, found_what) in [
        ("null", "null"),
        ("[]", "an array"),
        (r#""traits""#, "a string"),
        ("7", "a number"),
        ("true", "a boolean"),
    ] {
        let message = format!("the document: expected an object, found {found_what}");
        assert_parse_rejected(text, &one(NotAnObject, "", &message));
    }
}

#[test]
fn null_group_is_rejected() {
    assert_parse_rejected(
        r#"{"traits": {"Contact": null}}"#,
        &one(
            NotAnObject,
            "/traits/Contact",
            "`/traits/Contact`: expected an object, found null",
        ),
    );
}

#[test]
fn null_group_does_not_clear_the_group() {
    let (schema, before) = standard();
    // The same intent through the typed API: the only way to clear a group is to remove each
    // trait; the JSON `null` group never reaches a merge.
    assert!(Patch::from_value(&json!({"traits": {"Contact": null}})).is_err());
    let mut after = before.clone();
    let text = r#"{"traits": {"Contact": null}}"#;
    let result = text
        .parse::<Patch>()
        .and_then(|p| merge_in_place(&mut after, &p, &schema));
    assert!(result.is_err());
    assert_eq!(json_text(&after), PROFILE);
}

#[test]
fn non_object_group_is_rejected() {
    assert_parse_rejected(
        r#"{"traits": {"Contact": "x", "Activity": [], "Billing": 0, "Other": true}}"#,
        &expected(&[
            (
                NotAnObject,
                "/traits/Contact",
                "`/traits/Contact`: expected an object, found a string",
            ),
            (
                NotAnObject,
                "/traits/Activity",
                "`/traits/Activity`: expected an object, found an array",
            ),
            (
                NotAnObject,
                "/traits/Billing",
                "`/traits/Billing`: expected an object, found a number",
            ),
            (
                NotAnObject,
                "/traits/Other",
                "`/traits/Other`: expected an object, found a boolean",
            ),
        ]),
    );
}

#[test]
fn null_value_is_a_typed_removal() {
    let patch = patch(r#"{"traits": {"Contact": {"phone": null, "email": "a@b.c"}}}"#);
    let entries: Vec<(&str, &str, &TraitChange)> = patch.iter().collect();
    assert_eq!(
        entries,
        [
            ("Contact", "phone", &TraitChange::Remove),
            (
                "Contact",
                "email",
                &TraitChange::Set(TraitValue::from("a@b.c"))
            ),
        ]
    );
    let mut built = Patch::new();
    built
        .remove("Contact", "phone")
        .set("Contact", "email", "a@b.c");
    assert_eq!(built, patch);
}

#[test]
fn duplicate_key_is_rejected() {
    assert_parse_rejected(
        r#"{"traits": {"Contact": {"phone": "1", "phone": "2"}}}"#,
        &one(
            DuplicateKey,
            "/traits/Contact/phone",
            "`/traits/Contact/phone`: key `phone` appears more than once",
        ),
    );
}

#[test]
fn duplicate_group_key_is_rejected() {
    assert_parse_rejected(
        r#"{"traits": {"Contact": {"phone": "1"}, "Contact": {"phone": "1"}}}"#,
        &one(
            DuplicateKey,
            "/traits/Contact",
            "`/traits/Contact`: key `Contact` appears more than once",
        ),
    );
}

#[test]
fn duplicate_traits_key_is_rejected() {
    assert_parse_rejected(
        r#"{"traits": {}, "traits": {}}"#,
        &one(
            DuplicateKey,
            "/traits",
            "`/traits`: key `traits` appears more than once",
        ),
    );
}

#[test]
fn every_repetition_of_a_key_is_reported() {
    assert_parse_rejected(
        r#"{"traits": {"Contact": {"phone": "1", "phone": "2", "phone": null}}}"#,
        &expected(&[
            (
                DuplicateKey,
                "/traits/Contact/phone",
                "`/traits/Contact/phone`: key `phone` appears more than once",
            ),
            (
                DuplicateKey,
                "/traits/Contact/phone",
                "`/traits/Contact/phone`: key `phone` appears more than once",
            ),
        ]),
    );
}

/// Regression: a key whose first value was refused was not remembered, so its repetition went
/// unreported (the patch was still rejected, but not every violation was named).
#[test]
fn key_repeated_after_a_refused_value_is_a_duplicate_key() {
    assert_parse_rejected(
        r#"{"traits": {"Contact": {"phone": {}, "phone": "1"}, "Billing": null, "Billing": {}}}"#,
        &expected(&[
            (
                InvalidValue,
                "/traits/Contact/phone",
                "`/traits/Contact/phone`: expected a string, number, boolean, flat array of those, or null, found an object",
            ),
            (
                DuplicateKey,
                "/traits/Contact/phone",
                "`/traits/Contact/phone`: key `phone` appears more than once",
            ),
            (
                NotAnObject,
                "/traits/Billing",
                "`/traits/Billing`: expected an object, found null",
            ),
            (
                DuplicateKey,
                "/traits/Billing",
                "`/traits/Billing`: key `Billing` appears more than once",
            ),
        ]),
    );
}

#[test]
fn same_trait_name_in_two_groups_is_not_a_duplicate() {
    let schema = schema(
        r#"[{"displayName": "A", "traits": {"x": {"dataType": "NUMBER"}}},
            {"displayName": "B", "traits": {"x": {"dataType": "NUMBER"}}}]"#,
    );
    let patch = patch(r#"{"traits": {"A": {"x": 1}, "B": {"x": 2}}}"#);
    assert_merges(
        &schema,
        &Profile::new(),
        &patch,
        r#"{"traits":{"A":{"x":1},"B":{"x":2}}}"#,
    );
}

#[test]
fn object_value_is_invalid() {
    assert_parse_rejected(
        r#"{"traits": {"Contact": {"phone": {"n": 1}}}}"#,
        &one(
            InvalidValue,
            "/traits/Contact/phone",
            "`/traits/Contact/phone`: expected a string, number, boolean, flat array of those, or null, found an object",
        ),
    );
}

#[test]
fn nested_array_null_item_and_object_item_are_invalid_at_the_item() {
    assert_parse_rejected(
        r#"{"traits": {"Contact": {"list": ["a", ["b"]], "tags": [null], "phone": [1, 2, {}]}}}"#,
        &expected(&[
            (
                InvalidValue,
                "/traits/Contact/list/1",
                "`/traits/Contact/list/1`: expected a string, number or boolean, found a nested array",
            ),
            (
                InvalidValue,
                "/traits/Contact/tags/0",
                "`/traits/Contact/tags/0`: expected a string, number or boolean, found null",
            ),
            (
                InvalidValue,
                "/traits/Contact/phone/2",
                "`/traits/Contact/phone/2`: expected a string, number or boolean, found an object",
            ),
        ]),
    );
}

#[test]
fn first_invalid_item_of_an_array_is_reported() {
    assert_parse_rejected(
        r#"{"traits": {"Contact": {"list": [1, null, {}, []]}}}"#,
        &one(
            InvalidValue,
            "/traits/Contact/list/1",
            "`/traits/Contact/list/1`: expected a string, number or boolean, found null",
        ),
    );
}

#[test]
fn malformed_json_is_an_error_with_line_and_column() {
    let error = assert_parse_rejected(
        "{\"traits\": {\n  \"Contact\": {\"phone\": \"1\",}\n}}",
        &one(
            MalformedJson,
            "/traits/Contact",
            "`/traits/Contact`: malformed JSON at line 2, column 28: trailing comma",
        ),
    );
    assert_eq!(error.violations()[0].line_column(), Some((2, 28)));
}

#[test]
fn invalid_utf8_is_malformed_json() {
    let error =
        Patch::from_slice(b"{\"traits\": {\"Contact\": {\"phone\": \"\xff\"}}}").unwrap_err();
    assert_eq!(
        found(&error),
        one(
            MalformedJson,
            "/traits/Contact/phone",
            "`/traits/Contact/phone`: malformed JSON at line 1, column 35: invalid unicode code point",
        )
    );
    assert_eq!(error.violations()[0].line_column(), Some((1, 35)));
}

#[test]
fn violations_other_than_malformed_json_have_no_line_and_column() {
    let error = patch_error(r#"{"traits": {"Contact": null}}"#);
    assert_eq!(error.violations()[0].line_column(), None);
}

fn patch_error(text: &str) -> profile_traits::PatchError {
    text.parse::<Patch>().unwrap_err()
}

#[test]
fn patch_from_value_checks_the_wire_format() {
    let error = Patch::from_value(&json!({"traits": {"Contact": {"phone": {"x": 1}}}, "extra": 1}))
        .unwrap_err();
    // `serde_json::Value` sorts keys: `extra` comes before `traits`.
    assert_eq!(
        found(&error),
        expected(&[
            (
                UnexpectedKey,
                "/extra",
                "`/extra`: unexpected key `extra`, a patch has only `traits`",
            ),
            (
                InvalidValue,
                "/traits/Contact/phone",
                "`/traits/Contact/phone`: expected a string, number, boolean, flat array of those, or null, found an object",
            ),
        ])
    );
    assert_eq!(
        Patch::from_value(&json!({"traits": {"Contact": {"phone": null}}})).unwrap(),
        patch(r#"{"traits": {"Contact": {"phone": null}}}"#)
    );
}

#[test]
fn patch_deserialize_refuses_what_parsing_refuses() {
    let error = serde_json::from_str::<Patch>(r#"{"traits": {"Contact": null}}"#).unwrap_err();
    assert_eq!(
        error.to_string(),
        "patch rejected, 1 violation: `/traits/Contact`: expected an object, found null"
    );
}

#[test]
fn patch_serialization_round_trips() {
    let text = r#"{"traits":{"Contact":{"phone":null,"email":"a@b.c","list":["x",1,2.5,true],"score":1.0},"Activity":{}}}"#;
    let patch = patch(text);
    assert_eq!(json_text(&patch), text);
    assert_eq!(
        patch.to_value(),
        serde_json::from_str::<serde_json::Value>(text).unwrap()
    );
    let again: Patch = serde_json::from_str(&json_text(&patch)).unwrap();
    assert_eq!(again, patch);
    assert_eq!(
        again.group_names().collect::<Vec<_>>(),
        ["Contact", "Activity"]
    );
    assert_eq!(again.len(), 4);
}

// ---------------------------------------------------------------------------------------
// Section 2: the limits on a patch
// ---------------------------------------------------------------------------------------

fn fifty_groups_schema() -> StoreSchema {
    StoreSchema::new((0..50).map(|i| {
        GroupDefinition::new(format!("g{i}"))
            .with_trait("t", TraitDefinition::new(DataType::Number))
    }))
    .unwrap()
}

#[test]
fn fifty_groups_per_patch_are_accepted() {
    let schema = fifty_groups_schema();
    let mut patch = Patch::new();
    for i in 0..50 {
        patch.set(&format!("g{i}"), "t", i);
    }
    let groups: Vec<String> = (0..50).map(|i| format!(r#""g{i}":{{"t":{i}}}"#)).collect();
    let expected_text = format!(r#"{{"traits":{{{}}}}}"#, groups.join(","));
    assert_merges(&schema, &Profile::new(), &patch, &expected_text);
}

#[test]
fn more_than_fifty_groups_per_patch_are_rejected() {
    let schema = fifty_groups_schema();
    let mut patch = Patch::new();
    for i in 0..51 {
        patch.set(&format!("g{}", i % 50), "t", i);
    }
    // 50 distinct groups: within the limit, whatever the number of traits.
    assert!(schema.validate(&patch).is_ok());
    patch.set("g50", "t", 50);
    assert_rejected(
        &schema,
        &Profile::new(),
        &patch,
        &expected(&[
            (
                LimitExceeded,
                "/traits",
                "`/traits`: patch names 51 trait groups, at most 50 allowed",
            ),
            (
                UnknownGroup,
                "/traits/g50",
                "`/traits/g50`: trait group `g50` is not declared in the schema",
            ),
        ]),
    );
}

fn wide_group_schema(traits: usize) -> StoreSchema {
    let group = (0..traits).fold(GroupDefinition::new("Wide"), |group, i| {
        group.with_trait(format!("t{i}"), TraitDefinition::new(DataType::Boolean))
    });
    StoreSchema::new([group]).unwrap()
}

#[test]
fn ninety_nine_traits_per_group_are_within_the_limit() {
    // A store declares at most 95 traits per group, so a patch of 99 names 4 unknown ones;
    // the limit itself is not reported.
    let schema = wide_group_schema(95);
    let mut patch = Patch::new();
    for i in 0..99 {
        patch.remove("Wide", &format!("t{i}"));
    }
    let unknown: Vec<(ViolationKind, String, String)> = (95..99)
        .map(|i| {
            (
                UnknownTrait,
                format!("/traits/Wide/t{i}"),
                format!("`/traits/Wide/t{i}`: trait `t{i}` is not declared in trait group `Wide`"),
            )
        })
        .collect();
    assert_rejected(&schema, &Profile::new(), &patch, &unknown);
}

#[test]
fn more_than_ninety_nine_traits_per_group_are_rejected() {
    let schema = wide_group_schema(95);
    let mut patch = Patch::new();
    for i in 0..100 {
        patch.set("Wide", &format!("t{i}"), true);
    }
    let mut all = vec![(
        LimitExceeded,
        "/traits/Wide".to_owned(),
        "`/traits/Wide`: patch names 100 traits in this group, at most 99 allowed".to_owned(),
    )];
    all.extend((95..100).map(|i| {
        (
            UnknownTrait,
            format!("/traits/Wide/t{i}"),
            format!("`/traits/Wide/t{i}`: trait `t{i}` is not declared in trait group `Wide`"),
        )
    }));
    assert_rejected(&schema, &Profile::new(), &patch, &all);
}

#[test]
fn ninety_five_declared_traits_merge_in_patch_order() {
    let schema = wide_group_schema(95);
    let mut patch = Patch::new();
    for i in (0..95).rev() {
        patch.set("Wide", &format!("t{i}"), i % 2 == 0);
    }
    let traits: Vec<String> = (0..95)
        .rev()
        .map(|i| format!(r#""t{i}":{}"#, i % 2 == 0))
        .collect();
    let expected_text = format!(r#"{{"traits":{{"Wide":{{{}}}}}}}"#, traits.join(","));
    let changes = assert_merges(&schema, &Profile::new(), &patch, &expected_text);
    assert_eq!(changes.len(), 95);
}

// ---------------------------------------------------------------------------------------
// Section 3: validation
// ---------------------------------------------------------------------------------------

#[test]
fn unknown_group_is_rejected() {
    let (schema, before) = standard();
    assert_rejected(
        &schema,
        &before,
        &patch(r#"{"traits": {"Loyalty": {"points": 1}}}"#),
        &one(
            UnknownGroup,
            "/traits/Loyalty",
            "`/traits/Loyalty`: trait group `Loyalty` is not declared in the schema",
        ),
    );
}

#[test]
fn unknown_trait_is_rejected() {
    let (schema, before) = standard();
    assert_rejected(
        &schema,
        &before,
        &patch(r#"{"traits": {"Contact": {"fax": "+1"}}}"#),
        &one(
            UnknownTrait,
            "/traits/Contact/fax",
            "`/traits/Contact/fax`: trait `fax` is not declared in trait group `Contact`",
        ),
    );
}

#[test]
fn unknown_trait_with_null_value_is_rejected() {
    let (schema, before) = standard();
    assert_rejected(
        &schema,
        &before,
        &patch(r#"{"traits": {"Contact": {"fax": null}}}"#),
        &one(
            UnknownTrait,
            "/traits/Contact/fax",
            "`/traits/Contact/fax`: trait `fax` is not declared in trait group `Contact`",
        ),
    );
}

#[test]
fn names_match_exactly_and_case_sensitively() {
    let (schema, before) = standard();
    assert_rejected(
        &schema,
        &before,
        &patch(r#"{"traits": {"Contact": {"Email": "a@b", "email ": "a@b"}, "contact": {}}}"#),
        &expected(&[
            (
                UnknownTrait,
                "/traits/Contact/Email",
                "`/traits/Contact/Email`: trait `Email` is not declared in trait group `Contact`",
            ),
            (
                UnknownTrait,
                "/traits/Contact/email ",
                "`/traits/Contact/email `: trait `email ` is not declared in trait group `Contact`",
            ),
            (
                UnknownGroup,
                "/traits/contact",
                "`/traits/contact`: trait group `contact` is not declared in the schema",
            ),
        ]),
    );
}

#[test]
fn value_must_match_the_data_type() {
    let (schema, before) = standard();
    assert_rejected(
        &schema,
        &before,
        &patch(
            r#"{"traits": {"Contact": {"phone": 1, "score": "1", "vip": "true", "list": "a",
                "email": ["a@b"], "age": true, "tags": false}}}"#,
        ),
        &expected(&[
            (
                WrongType,
                "/traits/Contact/phone",
                "`/traits/Contact/phone`: expected a string, found a number",
            ),
            (
                WrongType,
                "/traits/Contact/score",
                "`/traits/Contact/score`: expected a number, found a string",
            ),
            (
                WrongType,
                "/traits/Contact/vip",
                "`/traits/Contact/vip`: expected a boolean, found a string",
            ),
            (
                WrongType,
                "/traits/Contact/list",
                "`/traits/Contact/list`: expected an array, found a string",
            ),
            (
                WrongType,
                "/traits/Contact/email",
                "`/traits/Contact/email`: expected a string, found an array",
            ),
            (
                WrongType,
                "/traits/Contact/age",
                "`/traits/Contact/age`: expected a number, found a boolean",
            ),
            (
                WrongType,
                "/traits/Contact/tags",
                "`/traits/Contact/tags`: expected an array, found a boolean",
            ),
        ]),
    );
}

#[test]
fn wrong_type_skips_the_rule() {
    let (schema, before) = standard();
    assert_rejected(
        &schema,
        &before,
        &patch(r#"{"traits": {"Contact": {"name": 1}}}"#),
        &one(
            WrongType,
            "/traits/Contact/name",
            "`/traits/Contact/name`: expected a string, found a number",
        ),
    );
}

#[test]
fn array_holds_only_strings_numbers_and_booleans() {
    let (schema, before) = standard();
    let patch = patch(r#"{"traits": {"Contact": {"list": ["a", -1, 0.5, false]}}}"#);
    assert_merges(
        &schema,
        &before,
        &patch,
        r#"{"traits":{"Contact":{"email":"a@b.c","phone":"+1555","vip":true,"list":["a",-1,0.5,false]},"Activity":{"visits":3}}}"#,
    );
}

fn email_schema(pattern: &str) -> StoreSchema {
    StoreSchema::new([GroupDefinition::new("Contact").with_trait(
        "email",
        TraitDefinition::new(DataType::String).with_rule(ValidationRule::String(StringRule {
            pattern: Some(Pattern::new(pattern).unwrap()),
            ..StringRule::default()
        })),
    )])
    .unwrap()
}

fn set_email(value: &str) -> Patch {
    let mut patch = Patch::new();
    patch.set("Contact", "email", value);
    patch
}

#[test]
fn pattern_matches_anywhere_in_the_string() {
    let schema = email_schema("[0-9]+");
    for accepted in ["123", "abc1", "1abc", "a1b"] {
        let expected_text = format!(r#"{{"traits":{{"Contact":{{"email":"{accepted}"}}}}}}"#);
        assert_merges(
            &schema,
            &Profile::new(),
            &set_email(accepted),
            &expected_text,
        );
    }
    assert_rejected(
        &schema,
        &Profile::new(),
        &set_email("abc"),
        &one(
            RuleBroken,
            "/traits/Contact/email",
            "`/traits/Contact/email`: string does not match pattern `[0-9]+`",
        ),
    );
}

#[test]
fn anchored_pattern_must_match_the_whole_string() {
    let schema = email_schema("^[0-9]{3}$");
    assert_merges(
        &schema,
        &Profile::new(),
        &set_email("123"),
        r#"{"traits":{"Contact":{"email":"123"}}}"#,
    );
    for refused in ["1234", "a123", "123\n", ""] {
        assert_rejected(
            &schema,
            &Profile::new(),
            &set_email(refused),
            &one(
                RuleBroken,
                "/traits/Contact/email",
                "`/traits/Contact/email`: string does not match pattern `^[0-9]{3}$`",
            ),
        );
    }
}

#[test]
fn pattern_is_unicode_aware() {
    let schema = email_schema("^.{2}$");
    assert_merges(
        &schema,
        &Profile::new(),
        &set_email("😀é"),
        r#"{"traits":{"Contact":{"email":"😀é"}}}"#,
    );
}

fn name_schema(min: Option<u64>, max: Option<u64>) -> StoreSchema {
    StoreSchema::new([GroupDefinition::new("Contact").with_trait(
        "name",
        TraitDefinition::new(DataType::String).with_rule(ValidationRule::String(StringRule {
            pattern: None,
            min_length: min,
            max_length: max,
        })),
    )])
    .unwrap()
}

fn set_name(value: &str) -> Patch {
    let mut patch = Patch::new();
    patch.set("Contact", "name", value);
    patch
}

#[test]
fn min_length_counts_unicode_scalar_values() {
    let schema = name_schema(Some(3), None);
    // Three scalar values, nine bytes: accepted.
    assert_merges(
        &schema,
        &Profile::new(),
        &set_name("日本語"),
        r#"{"traits":{"Contact":{"name":"日本語"}}}"#,
    );
    // Two scalar values, eight bytes: refused.
    assert_rejected(
        &schema,
        &Profile::new(),
        &set_name("😀😀"),
        &one(
            RuleBroken,
            "/traits/Contact/name",
            "`/traits/Contact/name`: string has 2 characters, fewer than `minLength` 3",
        ),
    );
    // "e" + combining acute accent: two scalar values, one grapheme.
    assert_rejected(
        &schema,
        &Profile::new(),
        &set_name("e\u{301}"),
        &one(
            RuleBroken,
            "/traits/Contact/name",
            "`/traits/Contact/name`: string has 2 characters, fewer than `minLength` 3",
        ),
    );
}

#[test]
fn max_length_counts_unicode_scalar_values() {
    let schema = name_schema(None, Some(3));
    assert_merges(
        &schema,
        &Profile::new(),
        &set_name("😀😀😀"),
        r#"{"traits":{"Contact":{"name":"😀😀😀"}}}"#,
    );
    assert_rejected(
        &schema,
        &Profile::new(),
        &set_name("éééé"),
        &one(
            RuleBroken,
            "/traits/Contact/name",
            "`/traits/Contact/name`: string has 4 characters, more than `maxLength` 3",
        ),
    );
}

#[test]
fn min_length_and_max_length_are_inclusive() {
    let schema = name_schema(Some(2), Some(2));
    assert_merges(
        &schema,
        &Profile::new(),
        &set_name("ab"),
        r#"{"traits":{"Contact":{"name":"ab"}}}"#,
    );
    for (value, message) in [
        (
            "a",
            "`/traits/Contact/name`: string has 1 characters, fewer than `minLength` 2",
        ),
        (
            "abc",
            "`/traits/Contact/name`: string has 3 characters, more than `maxLength` 2",
        ),
    ] {
        assert_rejected(
            &schema,
            &Profile::new(),
            &set_name(value),
            &one(RuleBroken, "/traits/Contact/name", message),
        );
    }
}

#[test]
fn string_rules_are_reported_in_rule_order() {
    let schema = StoreSchema::new([GroupDefinition::new("Contact").with_trait(
        "name",
        TraitDefinition::new(DataType::String).with_rule(ValidationRule::String(StringRule {
            pattern: Some(Pattern::new("^x").unwrap()),
            min_length: Some(2),
            max_length: Some(3),
        })),
    )])
    .unwrap();
    assert_rejected(
        &schema,
        &Profile::new(),
        &set_name("a"),
        &expected(&[
            (
                RuleBroken,
                "/traits/Contact/name",
                "`/traits/Contact/name`: string has 1 characters, fewer than `minLength` 2",
            ),
            (
                RuleBroken,
                "/traits/Contact/name",
                "`/traits/Contact/name`: string does not match pattern `^x`",
            ),
        ]),
    );
}

fn age_schema(min: Option<f64>, max: Option<f64>) -> StoreSchema {
    StoreSchema::new([GroupDefinition::new("Contact").with_trait(
        "age",
        TraitDefinition::new(DataType::Number)
            .with_rule(ValidationRule::Number(NumberRule { min, max })),
    )])
    .unwrap()
}

fn set_age(text: &str) -> Patch {
    patch(&format!(
        r#"{{"traits": {{"Contact": {{"age": {text}}}}}}}"#
    ))
}

#[test]
fn min_and_max_are_inclusive() {
    let schema = age_schema(Some(-1.5), Some(2.5));
    for accepted in ["-1.5", "2.5", "0", "-1", "2"] {
        let expected_text = format!(r#"{{"traits":{{"Contact":{{"age":{accepted}}}}}}}"#);
        assert_merges(&schema, &Profile::new(), &set_age(accepted), &expected_text);
    }
    for (refused, message) in [
        (
            "-2",
            "`/traits/Contact/age`: number -2 is less than `min` -1.5",
        ),
        (
            "-1.5000001",
            "`/traits/Contact/age`: number -1.5000001 is less than `min` -1.5",
        ),
        (
            "3",
            "`/traits/Contact/age`: number 3 is greater than `max` 2.5",
        ),
        (
            "2.5000001",
            "`/traits/Contact/age`: number 2.5000001 is greater than `max` 2.5",
        ),
    ] {
        assert_rejected(
            &schema,
            &Profile::new(),
            &set_age(refused),
            &one(RuleBroken, "/traits/Contact/age", message),
        );
    }
}

fn tags_schema(min: Option<u64>, max: Option<u64>) -> StoreSchema {
    StoreSchema::new([GroupDefinition::new("Contact").with_trait(
        "tags",
        TraitDefinition::new(DataType::Array).with_rule(ValidationRule::Array(ArrayRule {
            min_items: min,
            max_items: max,
        })),
    )])
    .unwrap()
}

fn set_tags(count: usize) -> Patch {
    let mut patch = Patch::new();
    patch.set("Contact", "tags", vec![Scalar::from(true); count]);
    patch
}

#[test]
fn min_items_and_max_items_bound_array_length() {
    let schema = tags_schema(Some(1), Some(2));
    assert_merges(
        &schema,
        &Profile::new(),
        &set_tags(1),
        r#"{"traits":{"Contact":{"tags":[true]}}}"#,
    );
    assert_merges(
        &schema,
        &Profile::new(),
        &set_tags(2),
        r#"{"traits":{"Contact":{"tags":[true,true]}}}"#,
    );
    assert_rejected(
        &schema,
        &Profile::new(),
        &set_tags(0),
        &one(
            RuleBroken,
            "/traits/Contact/tags",
            "`/traits/Contact/tags`: array has 0 items, fewer than `minItems` 1",
        ),
    );
    assert_rejected(
        &schema,
        &Profile::new(),
        &set_tags(3),
        &one(
            RuleBroken,
            "/traits/Contact/tags",
            "`/traits/Contact/tags`: array has 3 items, more than `maxItems` 2",
        ),
    );
}

#[test]
fn max_items_zero_allows_only_the_empty_array() {
    let schema = tags_schema(None, Some(0));
    assert_merges(
        &schema,
        &Profile::new(),
        &set_tags(0),
        r#"{"traits":{"Contact":{"tags":[]}}}"#,
    );
    assert_rejected(
        &schema,
        &Profile::new(),
        &set_tags(1),
        &one(
            RuleBroken,
            "/traits/Contact/tags",
            "`/traits/Contact/tags`: array has 1 items, more than `maxItems` 0",
        ),
    );
}

fn set_phone(value: String) -> Patch {
    let mut patch = Patch::new();
    patch.set("Contact", "phone", value);
    patch
}

#[test]
fn strings_are_limited_to_1024_characters() {
    let (schema, before) = standard();
    for unit in ["a", "é", "日", "😀"] {
        let at_limit = unit.repeat(1024);
        let after = before.clone();
        let merged = merge(&after, &set_phone(at_limit.clone()), &schema).unwrap();
        assert_eq!(
            merged.get("Contact", "phone"),
            Some(&TraitValue::from(at_limit))
        );
        assert_rejected(
            &schema,
            &before,
            &set_phone(unit.repeat(1025)),
            &one(
                LimitExceeded,
                "/traits/Contact/phone",
                "`/traits/Contact/phone`: string has 1025 characters, at most 1024 allowed",
            ),
        );
    }
}

#[test]
fn array_strings_are_limited_to_1024_characters() {
    let (schema, before) = standard();
    let mut patch = Patch::new();
    patch.set(
        "Contact",
        "list",
        vec![
            Scalar::from("😀".repeat(1024)),
            Scalar::from("😀".repeat(1025)),
            Scalar::from("a".repeat(2000)),
        ],
    );
    assert_rejected(
        &schema,
        &before,
        &patch,
        &expected(&[
            (
                LimitExceeded,
                "/traits/Contact/list/1",
                "`/traits/Contact/list/1`: string has 1025 characters, at most 1024 allowed",
            ),
            (
                LimitExceeded,
                "/traits/Contact/list/2",
                "`/traits/Contact/list/2`: string has 2000 characters, at most 1024 allowed",
            ),
        ]),
    );
}

#[test]
fn arrays_are_limited_to_100_items() {
    let (schema, before) = standard();
    let mut patch = Patch::new();
    patch.set("Contact", "list", vec![Scalar::from(1); 100]);
    let merged = merge(&before, &patch, &schema).unwrap();
    assert_eq!(
        merged.get("Contact", "list"),
        Some(&TraitValue::Array(vec![Scalar::from(1); 100]))
    );
    patch.set("Contact", "list", vec![Scalar::from(1); 101]);
    assert_rejected(
        &schema,
        &before,
        &patch,
        &one(
            LimitExceeded,
            "/traits/Contact/list",
            "`/traits/Contact/list`: array has 101 items, at most 100 allowed",
        ),
    );
}

fn set_score(text: &str) -> Patch {
    patch(&format!(
        r#"{{"traits": {{"Contact": {{"score": {text}}}}}}}"#
    ))
}

fn out_of_range(text: &str) -> Vec<common::helpers::Found> {
    one(
        LimitExceeded,
        "/traits/Contact/score",
        &format!(
            "`/traits/Contact/score`: integer {text} is outside the allowed range -2147483648 to 2147483647"
        ),
    )
}

#[test]
fn integers_are_limited_to_the_32_bit_signed_range() {
    let (schema, before) = standard();
    for accepted in ["2147483647", "-2147483648", "0"] {
        let merged = merge(&before, &set_score(accepted), &schema).unwrap();
        assert_eq!(json_text(merged.get("Contact", "score").unwrap()), accepted);
    }
    for refused in [
        "2147483648",
        "-2147483649",
        "9223372036854775807",
        "-9223372036854775808",
        "18446744073709551615",
    ] {
        assert_rejected(
            &schema,
            &before,
            &set_score(refused),
            &out_of_range(refused),
        );
    }
}

#[test]
fn whole_numbers_written_as_floats_are_range_checked() {
    let (schema, before) = standard();
    for (written, shown) in [
        ("3e9", "3000000000.0"),
        ("2147483648.0", "2147483648.0"),
        ("-2147483649.0", "-2147483649.0"),
        ("1e300", "1e+300"),
    ] {
        assert_rejected(&schema, &before, &set_score(written), &out_of_range(shown));
    }
    for (written, stored) in [
        ("2147483647.0", "2147483647.0"),
        ("-2147483648.0", "-2147483648.0"),
        ("2e9", "2000000000.0"),
    ] {
        let merged = merge(&before, &set_score(written), &schema).unwrap();
        assert_eq!(json_text(merged.get("Contact", "score").unwrap()), stored);
    }
}

#[test]
fn fractional_numbers_are_not_range_checked() {
    let (schema, before) = standard();
    for written in ["2147483648.5", "-2147483649.5", "0.1"] {
        let merged = merge(&before, &set_score(written), &schema).unwrap();
        assert_eq!(json_text(merged.get("Contact", "score").unwrap()), written);
    }
}

#[test]
fn limits_are_configurable_per_schema() {
    let limits = Limits {
        max_groups_per_patch: 1,
        max_traits_per_group: 1,
        max_string_chars: 2,
        max_array_items: 1,
        min_integer: -1,
        max_integer: 1,
    };
    let schema = schema(SCHEMA).with_limits(limits);
    assert_eq!(schema.limits(), &limits);
    let before = profile(PROFILE);
    assert_merges(
        &schema,
        &before,
        &patch(r#"{"traits": {"Contact": {"phone": "éé"}}}"#),
        r#"{"traits":{"Contact":{"email":"a@b.c","phone":"éé","vip":true},"Activity":{"visits":3}}}"#,
    );
    assert_rejected(
        &schema,
        &before,
        &patch(
            r#"{"traits": {"Contact": {"phone": "abc", "list": ["x", 2], "score": -2}, "Activity": {}}}"#,
        ),
        &expected(&[
            (
                LimitExceeded,
                "/traits",
                "`/traits`: patch names 2 trait groups, at most 1 allowed",
            ),
            (
                LimitExceeded,
                "/traits/Contact",
                "`/traits/Contact`: patch names 3 traits in this group, at most 1 allowed",
            ),
            (
                LimitExceeded,
                "/traits/Contact/phone",
                "`/traits/Contact/phone`: string has 3 characters, at most 2 allowed",
            ),
            (
                LimitExceeded,
                "/traits/Contact/list",
                "`/traits/Contact/list`: array has 2 items, at most 1 allowed",
            ),
            (
                LimitExceeded,
                "/traits/Contact/list/1",
                "`/traits/Contact/list/1`: integer 2 is outside the allowed range -1 to 1",
            ),
            (
                LimitExceeded,
                "/traits/Contact/score",
                "`/traits/Contact/score`: integer -2 is outside the allowed range -1 to 1",
            ),
        ]),
    );
}

#[test]
fn every_violation_is_reported_in_document_order() {
    let (schema, before) = standard();
    assert_rejected(
        &schema,
        &before,
        &patch(
            r#"{"traits": {"Billing": {"plan": 1}, "Nope": {"x": 1},
                "Contact": {"name": "x", "fax": null, "age": -1, "tags": []}, "Activity": {"visits": "1"}}}"#,
        ),
        &expected(&[
            (
                WrongType,
                "/traits/Billing/plan",
                "`/traits/Billing/plan`: expected a string, found a number",
            ),
            (
                UnknownGroup,
                "/traits/Nope",
                "`/traits/Nope`: trait group `Nope` is not declared in the schema",
            ),
            (
                RuleBroken,
                "/traits/Contact/name",
                "`/traits/Contact/name`: string has 1 characters, fewer than `minLength` 2",
            ),
            (
                UnknownTrait,
                "/traits/Contact/fax",
                "`/traits/Contact/fax`: trait `fax` is not declared in trait group `Contact`",
            ),
            (
                RuleBroken,
                "/traits/Contact/age",
                "`/traits/Contact/age`: number -1 is less than `min` 0",
            ),
            (
                RuleBroken,
                "/traits/Contact/tags",
                "`/traits/Contact/tags`: array has 0 items, fewer than `minItems` 1",
            ),
            (
                WrongType,
                "/traits/Activity/visits",
                "`/traits/Activity/visits`: expected a number, found a string",
            ),
        ]),
    );
}

#[test]
fn pointers_escape_tilde_and_slash() {
    let schema = StoreSchema::new([GroupDefinition::new("G")
        .with_trait("a/b", TraitDefinition::new(DataType::String))
        .with_trait("c~d", TraitDefinition::new(DataType::String))])
    .unwrap();
    assert_rejected(
        &schema,
        &Profile::new(),
        &patch(r#"{"traits": {"G": {"a/b": 1, "c~d": 2, "~1/": null}, "x/~y": {}}}"#),
        &expected(&[
            (
                WrongType,
                "/traits/G/a~1b",
                "`/traits/G/a~1b`: expected a string, found a number",
            ),
            (
                WrongType,
                "/traits/G/c~0d",
                "`/traits/G/c~0d`: expected a string, found a number",
            ),
            (
                UnknownTrait,
                "/traits/G/~01~1",
                "`/traits/G/~01~1`: trait `~1/` is not declared in trait group `G`",
            ),
            (
                UnknownGroup,
                "/traits/x~1~0y",
                "`/traits/x~1~0y`: trait group `x/~y` is not declared in the schema",
            ),
        ]),
    );
}

/// A patch with 95 wrong types in `Wide`, then `unknown` unknown groups, and the first 100
/// violations it breaks, in order.
fn many_violations(unknown: usize) -> (Patch, Vec<common::helpers::Found>) {
    let mut patch = Patch::new();
    for i in 0..95 {
        patch.set("Wide", &format!("t{i}"), "not a boolean");
    }
    for i in 0..unknown {
        patch.set(&format!("Unknown{i}"), "x", 1);
    }
    let wrong_types = (0..95).map(|i| {
        (
            WrongType,
            format!("/traits/Wide/t{i}"),
            format!("`/traits/Wide/t{i}`: expected a boolean, found a string"),
        )
    });
    let unknown_groups = (0..unknown).map(|i| {
        (
            UnknownGroup,
            format!("/traits/Unknown{i}"),
            format!("`/traits/Unknown{i}`: trait group `Unknown{i}` is not declared in the schema"),
        )
    });
    let first: Vec<_> = wrong_types
        .chain(unknown_groups)
        .take(MAX_VIOLATIONS)
        .collect();
    (patch, first)
}

#[test]
fn violations_are_capped_at_max_violations() {
    let schema = wide_group_schema(95);
    let before = profile(r#"{"traits":{"Wide":{"t3":true,"t1":false}}}"#);
    let (patch, first) = many_violations(10);
    let error = assert_rejected(&schema, &before, &patch, &first);
    assert_eq!(error.violations().len(), MAX_VIOLATIONS);
    assert!(error.is_truncated());
    let lines: Vec<String> = first.iter().map(|(_, _, m)| format!("\n- {m}")).collect();
    assert_eq!(
        format!("{error:#}"),
        format!("patch rejected, 100 or more violations{}", lines.concat())
    );
}

#[test]
fn exactly_max_violations_is_not_truncated() {
    let schema = wide_group_schema(95);
    let before = profile(r#"{"traits":{"Wide":{"t3":true,"t1":false}}}"#);
    let (patch, all) = many_violations(5);
    let error = assert_rejected(&schema, &before, &patch, &all);
    assert_eq!(error.violations().len(), MAX_VIOLATIONS);
    assert!(!error.is_truncated());
    assert!(format!("{error:#}").starts_with("patch rejected, 100 violations\n- "));
}

#[test]
fn parse_violations_are_capped_at_max_violations() {
    let groups: Vec<String> = (0..150).map(|i| format!(r#""g{i}": null"#)).collect();
    let text = format!(r#"{{"traits": {{{}}}}}"#, groups.join(", "));
    let error = text.parse::<Patch>().unwrap_err();
    let wanted: Vec<_> = (0..100)
        .map(|i| {
            (
                NotAnObject,
                format!("/traits/g{i}"),
                format!("`/traits/g{i}`: expected an object, found null"),
            )
        })
        .collect();
    assert_eq!(found(&error), wanted);
    assert!(error.is_truncated());
}

// ---------------------------------------------------------------------------------------
// Section 4: merge
// ---------------------------------------------------------------------------------------

#[test]
fn rejected_patch_applies_nothing() {
    let (schema, before) = standard();
    // Valid changes next to one bad value: none of them lands.
    assert_rejected(
        &schema,
        &before,
        &patch(
            r#"{"traits": {"Billing": {"plan": "pro"}, "Contact": {"phone": null, "email": "z@y", "age": 151}}}"#,
        ),
        &one(
            RuleBroken,
            "/traits/Contact/age",
            "`/traits/Contact/age`: number 151 is greater than `max` 150",
        ),
    );
}

#[test]
fn set_adds_an_absent_trait_at_the_end_of_its_group() {
    let (schema, before) = standard();
    let changes = assert_merges(
        &schema,
        &before,
        &patch(r#"{"traits": {"Contact": {"score": 9, "name": "Ann"}}}"#),
        r#"{"traits":{"Contact":{"email":"a@b.c","phone":"+1555","vip":true,"score":9,"name":"Ann"},"Activity":{"visits":3}}}"#,
    );
    assert_eq!(
        changes_json(&changes),
        [
            json!({"group": "Contact", "trait": "score", "added": 9}),
            json!({"group": "Contact", "trait": "name", "added": "Ann"}),
        ]
    );
}

#[test]
fn set_replaces_a_present_trait_in_place() {
    let (schema, before) = standard();
    let changes = assert_merges(
        &schema,
        &before,
        &patch(r#"{"traits": {"Contact": {"email": "new@b.c"}}}"#),
        r#"{"traits":{"Contact":{"email":"new@b.c","phone":"+1555","vip":true},"Activity":{"visits":3}}}"#,
    );
    assert_eq!(
        changes_json(&changes),
        [
            json!({"group": "Contact", "trait": "email", "updated": {"old": "a@b.c", "new": "new@b.c"}})
        ]
    );
}

#[test]
fn arrays_are_replaced_whole_never_merged() {
    let (schema, _) = standard();
    let before = profile(r#"{"traits":{"Contact":{"list":["a","b","c"]}}}"#);
    let changes = assert_merges(
        &schema,
        &before,
        &patch(r#"{"traits": {"Contact": {"list": ["c", "a"]}}}"#),
        r#"{"traits":{"Contact":{"list":["c","a"]}}}"#,
    );
    assert_eq!(
        changes_json(&changes),
        [json!({"group": "Contact", "trait": "list",
            "updated": {"old": ["a", "b", "c"], "new": ["c", "a"]}})]
    );
}

#[test]
fn value_may_change_type_within_the_domain() {
    let (_, before) = standard();
    let schema =
        schema(r#"[{"displayName": "Contact", "traits": {"phone": {"dataType": "ARRAY"}}}]"#);
    // The profile is not checked against the schema; the patch is.
    let changes = assert_merges(
        &schema,
        &before,
        &patch(r#"{"traits": {"Contact": {"phone": ["+1", "+2"]}}}"#),
        r#"{"traits":{"Contact":{"email":"a@b.c","phone":["+1","+2"],"vip":true},"Activity":{"visits":3}}}"#,
    );
    assert_eq!(
        changes_json(&changes),
        [
            json!({"group": "Contact", "trait": "phone", "updated": {"old": "+1555", "new": ["+1", "+2"]}})
        ]
    );
}

#[test]
fn null_removes_trait() {
    let (schema, before) = standard();
    let changes = assert_merges(
        &schema,
        &before,
        &patch(r#"{"traits": {"Contact": {"phone": null}}}"#),
        r#"{"traits":{"Contact":{"email":"a@b.c","vip":true},"Activity":{"visits":3}}}"#,
    );
    assert_eq!(
        changes_json(&changes),
        [json!({"group": "Contact", "trait": "phone", "removed": "+1555"})]
    );
}

#[test]
fn removing_an_absent_trait_is_a_no_op() {
    let (schema, before) = standard();
    let changes = assert_merges(
        &schema,
        &before,
        &patch(r#"{"traits": {"Contact": {"name": null}, "Billing": {"plan": null}}}"#),
        PROFILE,
    );
    assert!(changes.is_empty());
}

#[test]
fn untouched_traits_keep_their_position() {
    let (schema, _) = standard();
    let before = profile(
        r#"{"traits":{"Contact":{"vip":true,"phone":"1","email":"a@b","score":1,"age":2}}}"#,
    );
    assert_merges(
        &schema,
        &before,
        &patch(r#"{"traits": {"Contact": {"email": null, "age": 3, "name": "Al", "vip": false}}}"#),
        r#"{"traits":{"Contact":{"vip":false,"phone":"1","score":1,"age":3,"name":"Al"}}}"#,
    );
}

#[test]
fn untouched_groups_keep_their_position() {
    let (schema, _) = standard();
    let before = profile(
        r#"{"traits":{"Billing":{"plan":"free"},"Contact":{"phone":"1"},"Activity":{"visits":1}}}"#,
    );
    assert_merges(
        &schema,
        &before,
        &patch(r#"{"traits": {"Activity": {"visits": 2}, "Billing": {"plan": "pro"}}}"#),
        r#"{"traits":{"Billing":{"plan":"pro"},"Contact":{"phone":"1"},"Activity":{"visits":2}}}"#,
    );
}

#[test]
fn new_groups_are_appended_in_patch_order() {
    let (schema, _) = standard();
    let before = profile(r#"{"traits":{"Activity":{"visits":1}}}"#);
    assert_merges(
        &schema,
        &before,
        &patch(
            r#"{"traits": {"Contact": {"vip": true}, "Activity": {"visits": 2}, "Billing": {"plan": "pro"}}}"#,
        ),
        r#"{"traits":{"Activity":{"visits":2},"Contact":{"vip":true},"Billing":{"plan":"pro"}}}"#,
    );
}

#[test]
fn untouched_traits_and_groups_keep_their_value() {
    let (schema, before) = standard();
    let merged = merge(
        &before,
        &patch(r#"{"traits": {"Billing": {"plan": "pro"}}}"#),
        &schema,
    )
    .unwrap();
    for (group, traits) in before.groups() {
        assert_eq!(merged.group(group), Some(traits));
    }
}

#[test]
fn group_left_empty_is_dropped() {
    let (schema, before) = standard();
    let changes = assert_merges(
        &schema,
        &before,
        &patch(r#"{"traits": {"Activity": {"visits": null, "lastVisited": null}}}"#),
        r#"{"traits":{"Contact":{"email":"a@b.c","phone":"+1555","vip":true}}}"#,
    );
    assert_eq!(
        changes_json(&changes),
        [json!({"group": "Activity", "trait": "visits", "removed": 3})]
    );
}

#[test]
fn profile_left_without_traits_is_empty() {
    let (schema, _) = standard();
    let before = profile(r#"{"traits":{"Billing":{"plan":"free"}}}"#);
    let mut patch = Patch::new();
    patch.remove("Billing", "plan");
    assert_merges(&schema, &before, &patch, r#"{"traits":{}}"#);
    let merged = merge(&before, &patch, &schema).unwrap();
    assert!(merged.is_empty());
    assert_eq!(merged, Profile::new());
}

#[test]
fn group_emptied_then_refilled_by_one_patch_keeps_its_position() {
    let (schema, before) = standard();
    let before_with_billing = {
        let mut p = before.clone();
        p.insert("Billing", "plan", TraitValue::from("free"));
        p
    };
    assert_merges(
        &schema,
        &before_with_billing,
        &patch(r#"{"traits": {"Activity": {"visits": null, "lastVisited": "today"}}}"#),
        r#"{"traits":{"Contact":{"email":"a@b.c","phone":"+1555","vip":true},"Activity":{"lastVisited":"today"},"Billing":{"plan":"free"}}}"#,
    );
}

#[test]
fn empty_group_in_the_patch_changes_nothing() {
    let (schema, before) = standard();
    let patch = patch(r#"{"traits": {"Billing": {}, "Contact": {}}}"#);
    assert!(patch.is_empty());
    assert_eq!(
        patch.group_names().collect::<Vec<_>>(),
        ["Billing", "Contact"]
    );
    let changes = assert_merges(&schema, &before, &patch, PROFILE);
    assert!(changes.is_empty());
}

#[test]
fn no_op_write_is_not_a_change() {
    let (schema, before) = standard();
    let patch = patch(
        r#"{"traits": {"Contact": {"email": "a@b.c", "vip": true}, "Activity": {"visits": 3}}}"#,
    );
    let changes = assert_merges(&schema, &before, &patch, PROFILE);
    assert!(changes.is_empty());
    let mut owned = before.clone();
    assert_eq!(merge_in_place_owned(&mut owned, patch, &schema), Ok(0));
}

#[test]
fn one_and_one_point_zero_are_different_values() {
    let (schema, before) = standard();
    let changes = assert_merges(
        &schema,
        &before,
        &patch(r#"{"traits": {"Activity": {"visits": 3.0}}}"#),
        r#"{"traits":{"Contact":{"email":"a@b.c","phone":"+1555","vip":true},"Activity":{"visits":3.0}}}"#,
    );
    assert_eq!(changes.len(), 1);
    assert_eq!(
        changes[0].kind(),
        &ChangeKind::Updated {
            old: TraitValue::from(3),
            new: TraitValue::try_from(3.0).unwrap(),
        }
    );
    assert_ne!(TraitValue::from(1), TraitValue::try_from(1.0).unwrap());
}

#[test]
fn merge_in_place_lists_added_updated_and_removed_in_patch_order() {
    let (schema, before) = standard();
    let mut after = before.clone();
    let changes = merge_in_place(
        &mut after,
        &patch(
            r#"{"traits": {"Billing": {"plan": "pro"}, "Contact": {"vip": false, "phone": null, "email": "a@b.c"}}}"#,
        ),
        &schema,
    )
    .unwrap();
    assert_eq!(
        changes_json(&changes),
        [
            json!({"group": "Billing", "trait": "plan", "added": "pro"}),
            json!({"group": "Contact", "trait": "vip", "updated": {"old": true, "new": false}}),
            json!({"group": "Contact", "trait": "phone", "removed": "+1555"}),
        ]
    );
    assert_eq!(changes[0].group(), "Billing");
    assert_eq!(changes[0].trait_name(), "plan");
    assert_eq!(
        json_text(&after),
        r#"{"traits":{"Contact":{"email":"a@b.c","vip":false},"Activity":{"visits":3},"Billing":{"plan":"pro"}}}"#
    );
}

#[test]
fn merge_in_place_owned_returns_the_number_of_changes() {
    let (schema, before) = standard();
    let mut after = before.clone();
    let patch = patch(
        r#"{"traits": {"Billing": {"plan": "pro"}, "Contact": {"vip": true, "phone": null, "name": "Al"}}}"#,
    );
    assert_eq!(merge_in_place_owned(&mut after, patch, &schema), Ok(3));
    assert_eq!(
        json_text(&after),
        r#"{"traits":{"Contact":{"email":"a@b.c","vip":true,"name":"Al"},"Activity":{"visits":3},"Billing":{"plan":"pro"}}}"#
    );
}

#[test]
fn merge_leaves_its_input_unchanged() {
    let (schema, before) = standard();
    let copy = before.clone();
    let merged = merge(
        &before,
        &patch(r#"{"traits": {"Contact": {"phone": null, "email": "x@y"}, "Activity": {"visits": null}}}"#),
        &schema,
    )
    .unwrap();
    assert_eq!(json_text(&before), PROFILE);
    assert_eq!(before, copy);
    assert_eq!(
        json_text(&merged),
        r#"{"traits":{"Contact":{"email":"x@y","vip":true}}}"#
    );
}

#[test]
fn id_and_created_at_pass_through() {
    let (schema, _) = standard();
    let text = r#"{"id":"mem_profile_01j9zzzzzzzzzzzzzzzzzzzzzz","createdAt":"2024-10-07T15:39:25Z","traits":{"Billing":{"plan":"free"}}}"#;
    let before = profile(text);
    assert_eq!(
        before.id().map(ProfileId::as_str),
        Some("mem_profile_01j9zzzzzzzzzzzzzzzzzzzzzz")
    );
    assert_eq!(before.created_at(), Some("2024-10-07T15:39:25Z"));
    assert_merges(
        &schema,
        &before,
        &patch(r#"{"traits": {"Billing": {"plan": null}, "Contact": {"vip": true}}}"#),
        r#"{"id":"mem_profile_01j9zzzzzzzzzzzzzzzzzzzzzz","createdAt":"2024-10-07T15:39:25Z","traits":{"Contact":{"vip":true}}}"#,
    );
    assert_rejected(
        &schema,
        &before,
        &patch(r#"{"traits": {"Nope": {}}}"#),
        &one(
            UnknownGroup,
            "/traits/Nope",
            "`/traits/Nope`: trait group `Nope` is not declared in the schema",
        ),
    );
}

#[test]
fn profile_groups_the_schema_does_not_declare_are_left_alone() {
    let (schema, _) = standard();
    let before = profile(r#"{"traits":{"Legacy":{"x":[1,"a"]},"Contact":{"phone":"1"}}}"#);
    assert_merges(
        &schema,
        &before,
        &patch(r#"{"traits": {"Contact": {"phone": null}}}"#),
        r#"{"traits":{"Legacy":{"x":[1,"a"]}}}"#,
    );
}

#[test]
fn merging_twice_equals_merging_once() {
    let (schema, before) = standard();
    let patch = patch(
        r#"{"traits": {"Contact": {"phone": null, "name": "Al"}, "Billing": {"plan": "x"}}}"#,
    );
    let once = merge(&before, &patch, &schema).unwrap();
    let mut twice = once.clone();
    assert_eq!(merge_in_place(&mut twice, &patch, &schema), Ok(vec![]));
    assert_eq!(json_text(&twice), json_text(&once));
}

// ---------------------------------------------------------------------------------------
// Error messages: PatchError Display
// ---------------------------------------------------------------------------------------

#[test]
fn patch_error_display_is_one_line_with_the_first_violations() {
    let (schema, _) = standard();
    let one_error = schema
        .validate(&patch(r#"{"traits": {"Nope": {}}}"#))
        .unwrap_err();
    assert_eq!(
        one_error.to_string(),
        "patch rejected, 1 violation: `/traits/Nope`: trait group `Nope` is not declared in the schema"
    );
    let two = schema
        .validate(&patch(r#"{"traits": {"Contact": {"fax": 1, "vip": 1}}}"#))
        .unwrap_err();
    assert_eq!(
        two.to_string(),
        "patch rejected, 2 violations: \
         `/traits/Contact/fax`: trait `fax` is not declared in trait group `Contact`; \
         `/traits/Contact/vip`: expected a boolean, found a number"
    );
    let four = schema
        .validate(&patch(
            r#"{"traits": {"Contact": {"a": 1, "b": 1, "c": 1, "d": 1}}}"#,
        ))
        .unwrap_err();
    assert_eq!(
        four.to_string(),
        "patch rejected, 4 violations: \
         `/traits/Contact/a`: trait `a` is not declared in trait group `Contact`; \
         `/traits/Contact/b`: trait `b` is not declared in trait group `Contact`; \
         `/traits/Contact/c`: trait `c` is not declared in trait group `Contact`; ..."
    );
    assert!(!two.is_truncated());
    assert_eq!(
        two.violations()[1].to_string(),
        two.violations()[1].message()
    );
}

#[test]
fn patch_error_alternate_display_lists_every_violation() {
    let (schema, _) = standard();
    let two = schema
        .validate(&patch(r#"{"traits": {"Contact": {"fax": 1, "vip": 1}}}"#))
        .unwrap_err();
    assert_eq!(
        format!("{two:#}"),
        "patch rejected, 2 violations\n\
         - `/traits/Contact/fax`: trait `fax` is not declared in trait group `Contact`\n\
         - `/traits/Contact/vip`: expected a boolean, found a number"
    );
}

#[test]
fn violation_reason_is_the_message_without_the_place() {
    let (schema, _) = standard();
    let error = schema
        .validate(&patch(r#"{"traits": {"Contact": {"vip": 1}}}"#))
        .unwrap_err();
    assert_eq!(error.violations()[0].pointer(), "/traits/Contact/vip");
    assert_eq!(
        error.violations()[0].reason(),
        "expected a boolean, found a number"
    );
    let whole = patch_error("[1]");
    assert_eq!(
        whole.violations()[0].reason(),
        "expected an object, found an array"
    );
}

#[test]
fn whole_document_violation_names_the_document() {
    let error = patch_error("[1]");
    assert_eq!(
        error.to_string(),
        "patch rejected, 1 violation: the document: expected an object, found an array"
    );
}

// ---------------------------------------------------------------------------------------
// Section 1: the schema
// ---------------------------------------------------------------------------------------

#[test]
fn schema_is_accepted_as_a_list_or_as_the_list_response() {
    let list = r#"[{"displayName": "Contact", "description": "who", "version": 3,
        "createdAt": "2024-01-01", "traits": {"email": {"dataType": "STRING",
        "description": "primary", "idTypePromotion": "email",
        "validationRule": {"ruleType": "STRING", "pattern": "@", "minLength": 3, "maxLength": 254}}}}]"#;
    let response = format!(r#"{{"traitGroups": {list}, "meta": {{"pageSize": 50}}}}"#);
    let from_list = schema(list);
    let from_response = schema(&response);
    assert_eq!(from_list, from_response);
    let expected_schema = StoreSchema::new([GroupDefinition::new("Contact")
        .with_description("who")
        .with_version(3)
        .with_trait(
            "email",
            TraitDefinition::new(DataType::String)
                .with_description("primary")
                .with_id_type_promotion("email")
                .with_rule(ValidationRule::String(StringRule {
                    pattern: Some(Pattern::new("@").unwrap()),
                    min_length: Some(3),
                    max_length: Some(254),
                })),
        )])
    .unwrap();
    assert_eq!(from_list, expected_schema);
    assert_eq!(from_list.limits(), &Limits::default());
}

#[test]
fn schema_serialization_round_trips() {
    let text = r#"{"traitGroups":[{"displayName":"Contact","description":"who","version":3,"traits":{"email":{"dataType":"STRING","description":"primary","idTypePromotion":"email","validationRule":{"ruleType":"STRING","pattern":"@","minLength":3,"maxLength":254}},"age":{"dataType":"NUMBER","validationRule":{"ruleType":"NUMBER","min":0.0,"max":150.5}},"vip":{"dataType":"BOOLEAN","validationRule":{"ruleType":"BOOLEAN"}},"tags":{"dataType":"ARRAY","validationRule":{"ruleType":"ARRAY","minItems":0,"maxItems":3}}}},{"displayName":"Empty","traits":{}}]}"#;
    let schema = schema(text);
    assert_eq!(json_text(&schema), text);
    let with_limits = schema.clone().with_limits(Limits {
        max_array_items: 5,
        ..Limits::default()
    });
    let limits_text = json_text(&with_limits);
    assert!(limits_text.ends_with(r#""limits":{"maxGroupsPerPatch":50,"maxTraitsPerGroup":99,"maxStringChars":1024,"maxArrayItems":5,"minInteger":-2147483648,"maxInteger":2147483647}}"#));
    let again: StoreSchema = serde_json::from_str(&limits_text).unwrap();
    assert_eq!(again, with_limits);
    assert_eq!(again.limits().max_array_items, 5);
}

#[test]
fn partial_limits_default_the_rest() {
    let schema = schema(r#"{"traitGroups": [], "limits": {"maxStringChars": 10}}"#);
    assert_eq!(
        schema.limits(),
        &Limits {
            max_string_chars: 10,
            ..Limits::default()
        }
    );
}

#[test]
fn default_limits_are_the_documented_ones() {
    assert_eq!(
        Limits::default(),
        Limits {
            max_groups_per_patch: 50,
            max_traits_per_group: 99,
            max_string_chars: 1024,
            max_array_items: 100,
            min_integer: -2147483648,
            max_integer: 2147483647,
        }
    );
}

fn schema_error(groups: Vec<GroupDefinition>) -> SchemaError {
    StoreSchema::new(groups).unwrap_err()
}

fn string_trait() -> TraitDefinition {
    TraitDefinition::new(DataType::String)
}

#[test]
fn invalid_schemas_are_refused_with_a_schema_error_naming_the_place() {
    let cases: Vec<(Vec<GroupDefinition>, &str, &str)> = vec![
        (
            vec![GroupDefinition::new("A"), GroupDefinition::new("A")],
            "trait group `A`",
            "declared twice",
        ),
        (
            vec![GroupDefinition::new("")],
            "trait group ``",
            "name must be 1-64 characters of `a-zA-Z0-9_-.`",
        ),
        (
            vec![GroupDefinition::new("a".repeat(65))],
            &*Box::leak(format!("trait group `{}`", "a".repeat(65)).into_boxed_str()),
            "name must be 1-64 characters of `a-zA-Z0-9_-.`",
        ),
        (
            vec![GroupDefinition::new("Contact/Info")],
            "trait group `Contact/Info`",
            "name must be 1-64 characters of `a-zA-Z0-9_-.`",
        ),
        (
            vec![GroupDefinition::new("Contäct")],
            "trait group `Contäct`",
            "name must be 1-64 characters of `a-zA-Z0-9_-.`",
        ),
        (
            vec![GroupDefinition::new("A").with_description("d".repeat(1025))],
            "trait group `A`",
            "`description` has 1025 characters, at most 1024 allowed",
        ),
        (
            vec![GroupDefinition::new("A").with_trait("", string_trait())],
            "trait group `A`, trait ``",
            "name must be 1-64 characters",
        ),
        (
            vec![GroupDefinition::new("A").with_trait("é".repeat(65), string_trait())],
            &*Box::leak(format!("trait group `A`, trait `{}`", "é".repeat(65)).into_boxed_str()),
            "name must be 1-64 characters",
        ),
        (
            vec![
                GroupDefinition::new("A")
                    .with_trait("t", string_trait().with_description("é".repeat(1025))),
            ],
            "trait group `A`, trait `t`",
            "`description` has 1025 characters, at most 1024 allowed",
        ),
        (
            vec![
                GroupDefinition::new("A")
                    .with_trait("t", string_trait().with_id_type_promotion("x".repeat(31))),
            ],
            "trait group `A`, trait `t`",
            "`idTypePromotion` has 31 characters, at most 30 allowed",
        ),
        (
            vec![GroupDefinition::new("A").with_trait(
                "t",
                string_trait().with_rule(ValidationRule::Number(NumberRule::default())),
            )],
            "trait group `A`, trait `t`",
            "`ruleType` NUMBER does not match `dataType` STRING",
        ),
        (
            vec![
                GroupDefinition::new("A").with_trait(
                    "t",
                    TraitDefinition::new(DataType::Boolean)
                        .with_rule(ValidationRule::Array(ArrayRule::default())),
                ),
            ],
            "trait group `A`, trait `t`",
            "`ruleType` ARRAY does not match `dataType` BOOLEAN",
        ),
        (
            vec![GroupDefinition::new("A").with_trait(
                "t",
                string_trait().with_rule(ValidationRule::String(StringRule {
                    min_length: Some(3),
                    max_length: Some(2),
                    ..StringRule::default()
                })),
            )],
            "trait group `A`, trait `t`",
            "`minLength` 3 is greater than `maxLength` 2",
        ),
        (
            vec![GroupDefinition::new("A").with_trait(
                "t",
                string_trait().with_rule(ValidationRule::String(StringRule {
                    max_length: Some(0),
                    ..StringRule::default()
                })),
            )],
            "trait group `A`, trait `t`",
            "`maxLength` must be at least 1",
        ),
        (
            vec![GroupDefinition::new("A").with_trait(
                "t",
                TraitDefinition::new(DataType::Number).with_rule(ValidationRule::Number(
                    NumberRule {
                        min: Some(2.5),
                        max: Some(1.0),
                    },
                )),
            )],
            "trait group `A`, trait `t`",
            "`min` 2.5 is greater than `max` 1",
        ),
        (
            vec![GroupDefinition::new("A").with_trait(
                "t",
                TraitDefinition::new(DataType::Number).with_rule(ValidationRule::Number(
                    NumberRule {
                        min: Some(f64::NAN),
                        max: None,
                    },
                )),
            )],
            "trait group `A`, trait `t`",
            "`min` and `max` must be finite",
        ),
        (
            vec![GroupDefinition::new("A").with_trait(
                "t",
                TraitDefinition::new(DataType::Array).with_rule(ValidationRule::Array(ArrayRule {
                    min_items: Some(2),
                    max_items: Some(1),
                })),
            )],
            "trait group `A`, trait `t`",
            "`minItems` 2 is greater than `maxItems` 1",
        ),
    ];
    for (groups, location, reason) in cases {
        let error = schema_error(groups);
        assert_eq!(
            (error.location(), error.reason()),
            (location, reason),
            "{error}"
        );
        assert_eq!(
            error.to_string(),
            format!("invalid schema: {location}: {reason}")
        );
    }
}

#[test]
fn schema_limits_accept_their_bounds() {
    let ninety_five = wide_group_schema(95);
    assert_eq!(ninety_five.group("Wide").unwrap().len(), 95);
    assert_eq!(fifty_groups_schema().len(), 50);
    let long_names = StoreSchema::new([GroupDefinition::new("a".repeat(64))
        .with_description("é".repeat(1024))
        .with_trait(
            "😀".repeat(64),
            string_trait()
                .with_description("é".repeat(1024))
                .with_id_type_promotion("x".repeat(30))
                .with_rule(ValidationRule::String(StringRule {
                    pattern: Some(Pattern::new(&"a".repeat(1000)).unwrap()),
                    min_length: Some(0),
                    max_length: Some(1),
                })),
        )]);
    assert!(long_names.is_ok(), "{long_names:?}");
    assert!(StoreSchema::new([GroupDefinition::new("a-Z_0.9")]).is_ok());
}

#[test]
fn more_than_fifty_groups_are_refused() {
    let error =
        StoreSchema::new((0..51).map(|i| GroupDefinition::new(format!("g{i}")))).unwrap_err();
    assert_eq!(error.location(), "");
    assert_eq!(
        error.to_string(),
        "invalid schema: 51 trait groups declared, at most 50 allowed"
    );
}

#[test]
fn more_than_ninety_five_traits_in_a_group_are_refused() {
    let group = (0..96).fold(GroupDefinition::new("Wide"), |group, i| {
        group.with_trait(format!("t{i}"), string_trait())
    });
    assert_eq!(
        StoreSchema::new([group]).unwrap_err().to_string(),
        "invalid schema: trait group `Wide`: 96 traits declared, at most 95 allowed"
    );
}

#[test]
fn invalid_patterns_are_refused() {
    let error = Pattern::new("(").unwrap_err();
    assert_eq!(error.location(), "");
    assert!(
        error
            .to_string()
            .starts_with("invalid schema: pattern `(` is not a valid regular expression: "),
        "{error}"
    );
    assert_eq!(
        Pattern::new(&"a".repeat(1001)).unwrap_err().to_string(),
        "invalid schema: pattern has 1001 characters, at most 1000 allowed"
    );
    let pattern = Pattern::new("^a+$").unwrap();
    assert_eq!(pattern.as_str(), "^a+$");
    assert!(pattern.is_match("aaa"));
    assert!(!pattern.is_match("aab"));
}

#[test]
fn a_deserialized_schema_with_a_bad_pattern_names_its_group_and_trait() {
    let text = format!(
        r#"[{{"displayName": "Contact", "traits": {{"email": {{"dataType": "STRING",
            "validationRule": {{"ruleType": "STRING", "pattern": "{}"}}}}}}}}]"#,
        "a".repeat(1001)
    );
    let error = serde_json::from_str::<StoreSchema>(&text).unwrap_err();
    assert_eq!(
        error.to_string(),
        "invalid schema: trait group `Contact`, trait `email`: pattern has 1001 characters, \
         at most 1000 allowed"
    );
}

#[test]
fn invalid_schemas_cannot_be_deserialized() {
    for (text, message) in [
        (
            r#"[{"displayName": "A", "traits": {}}, {"displayName": "A", "traits": {}}]"#,
            "invalid schema: trait group `A`: declared twice",
        ),
        (
            r#"[{"displayName": "has space", "traits": {}}]"#,
            "invalid schema: trait group `has space`: name must be 1-64 characters of `a-zA-Z0-9_-.`",
        ),
        (
            r#"[{"displayName": "A", "traits": {"t": {"dataType": "STRING", "validationRule": {"ruleType": "ARRAY"}}}}]"#,
            "invalid schema: trait group `A`, trait `t`: `ruleType` ARRAY does not match `dataType` STRING",
        ),
        (
            r#"{"traitGroups": [{"displayName": "A", "traits": {"t": {"dataType": "NUMBER", "validationRule": {"ruleType": "NUMBER", "min": 2, "max": 1}}}}]}"#,
            "invalid schema: trait group `A`, trait `t`: `min` 2 is greater than `max` 1",
        ),
    ] {
        let error = serde_json::from_str::<StoreSchema>(text).unwrap_err();
        let shown = error.to_string();
        let (reason, _) = shown.rsplit_once(" at line ").unwrap_or((&shown, ""));
        assert_eq!(reason, message, "{text}");
    }
}

#[test]
fn malformed_schema_documents_are_refused() {
    for text in [
        r#"[{"displayName": "A", "traits": {"t": {"dataType": "DATE"}}}]"#,
        r#"[{"displayName": "A", "traits": {"t": {"dataType": "STRING", "extra": 1}}}]"#,
        r#"[{"displayName": "A", "traits": {"t": {"dataType": "STRING", "validationRule": {"ruleType": "STRING", "minLen": 1}}}}]"#,
        r#"[{"displayName": "A", "traits": {"t": {"dataType": "STRING", "validationRule": {"pattern": "a"}}}}]"#,
        r#"[{"displayName": "A", "traits": {"t": {"dataType": "STRING"}, "t": {"dataType": "NUMBER"}}}]"#,
        r#"[{"displayName": "A", "traits": {"t": {"dataType": "STRING", "validationRule": {"ruleType": "STRING", "pattern": "("}}}}]"#,
        r#"[{"traits": {}}]"#,
        r#"{"groups": []}"#,
        r#"{"meta": {}}"#,
        r#"{"traitGroups": [], "traitGroups": []}"#,
        r#"{"traitGroups": [], "limits": {"maxStrings": 1}}"#,
        r#""Contact""#,
    ] {
        assert!(serde_json::from_str::<StoreSchema>(text).is_err(), "{text}");
    }
}

#[test]
fn schema_lookups_follow_declaration_order() {
    let schema = schema(SCHEMA);
    let names: Vec<&str> = schema.groups().map(GroupDefinition::name).collect();
    assert_eq!(names, ["Contact", "Activity", "Billing"]);
    let contact = schema.group("Contact").unwrap();
    let traits: Vec<&str> = contact.traits().map(|(name, _)| name).collect();
    assert_eq!(
        traits,
        [
            "email", "phone", "name", "age", "score", "vip", "tags", "list"
        ]
    );
    assert_eq!(
        contact.trait_definition("tags").unwrap().validation_rule(),
        Some(&ValidationRule::Array(ArrayRule {
            min_items: Some(1),
            max_items: Some(3)
        }))
    );
    assert!(schema.group("contact").is_none());
    assert!(contact.trait_definition("Email").is_none());
}

// ---------------------------------------------------------------------------------------
// Section 1: ids
// ---------------------------------------------------------------------------------------

#[test]
fn store_ids_follow_the_ttid_pattern() {
    for good in [
        "mem_store_00000000000000000000000000",
        "mem_service_7zzzzzzzzzzzzzzzzzzzzzzzzz",
        "mem_store_01j9x0abcdefghijklmnopqrst",
    ] {
        let id: StoreId = good.parse().unwrap();
        assert_eq!(id.as_str(), good);
        assert_eq!(id.to_string(), good);
        assert_eq!(json_text(&id), format!("\"{good}\""));
        assert_eq!(
            serde_json::from_str::<StoreId>(&json_text(&id)).unwrap(),
            id
        );
    }
    for bad in [
        "",
        "mem_store_",
        "mem_store_8000000000000000000000000",
        "mem_store_80000000000000000000000000",
        "mem_store_0000000000000000000000000",
        "mem_store_000000000000000000000000000",
        "mem_store_0000000000000000000000000A",
        "mem_store_0000000000000000000000000-",
        "mem_profile_00000000000000000000000000",
        "MEM_STORE_00000000000000000000000000",
        " mem_store_00000000000000000000000000",
        "mem_store_00000000000000000000000000\n",
    ] {
        let error = bad.parse::<StoreId>().unwrap_err();
        assert_eq!(error.input(), bad);
        assert_eq!(
            error.to_string(),
            format!(
                "`{}` is not a valid store id: expected `^mem_(store|service)_[0-7][0-9a-z]{{25}}$`",
                bad.escape_debug()
            )
        );
    }
}

#[test]
fn profile_ids_follow_the_ttid_pattern() {
    let good = "mem_profile_01j9x0abcdefghijklmnopqrst";
    let id: ProfileId = good.parse().unwrap();
    assert_eq!(id.as_ref(), good);
    assert_eq!(ProfileId::try_from(good.to_owned()), Ok(id));
    for bad in [
        "mem_profile_80000000000000000000000000",
        "mem_store_00000000000000000000000000",
        "mem_profile_0000000000000000000000000é",
    ] {
        assert!(bad.parse::<ProfileId>().is_err(), "{bad}");
    }
    let error: IdError = "mem_profile_\"x\"\n".parse::<ProfileId>().unwrap_err();
    assert_eq!(
        error.to_string(),
        r#"`mem_profile_\"x\"\n` is not a valid profile id: expected `^mem_profile_[0-7][0-9a-z]{25}$`"#
    );
    assert_eq!(
        ProfileId::from_bits(0).as_str(),
        "mem_profile_00000000000000000000000000"
    );
}

#[test]
fn profile_with_an_invalid_id_cannot_be_deserialized() {
    let error = serde_json::from_str::<Profile>(r#"{"id": "p1", "traits": {}}"#).unwrap_err();
    assert!(
        error.to_string().starts_with(
            "`p1` is not a valid profile id: expected `^mem_profile_[0-7][0-9a-z]{25}$`"
        ),
        "{error}"
    );
}

// ---------------------------------------------------------------------------------------
// Section 1: profiles and trait values
// ---------------------------------------------------------------------------------------

#[test]
fn profile_serialization_round_trips_in_order() {
    let text = r#"{"id":"mem_profile_00000000000000000000000000","createdAt":"2024-10-07T15:39:25Z","traits":{"Z":{"b":1,"a":[true,"x",1.5]},"A":{"z":"s","y":false}}}"#;
    let profile = profile(text);
    assert_eq!(json_text(&profile), text);
    assert_eq!(
        profile.to_value(),
        serde_json::from_str::<serde_json::Value>(text).unwrap()
    );
    let names: Vec<&str> = profile.groups().map(|(name, _)| name).collect();
    assert_eq!(names, ["Z", "A"]);
    assert_eq!(profile.trait_count(), 4);
}

#[test]
fn profile_equality_ignores_order() {
    let a = profile(r#"{"traits":{"A":{"x":1,"y":2},"B":{"z":3}}}"#);
    let b = profile(r#"{"traits":{"B":{"z":3},"A":{"y":2,"x":1}}}"#);
    assert_eq!(a, b);
    assert_ne!(json_text(&a), json_text(&b));
}

#[test]
fn profile_deserialization_drops_empty_groups_and_refuses_bad_input() {
    assert_eq!(
        json_text(&profile(r#"{"traits":{"A":{},"B":{"x":1}}}"#)),
        r#"{"traits":{"B":{"x":1}}}"#
    );
    assert_eq!(json_text(&profile("{}")), r#"{"traits":{}}"#);
    for bad in [
        r#"{"traits":{"A":{"x":1,"x":2}}}"#,
        r#"{"traits":{"A":{"x":1}},"traits":{}}"#,
        r#"{"traits":{"A":{"x":1}},"extra":1}"#,
        r#"{"traits":{"A":{"x":null}}}"#,
        r#"{"traits":{"A":{"x":{"y":1}}}}"#,
        r#"{"traits":{"A":{"x":[[1]]}}}"#,
        r#"{"traits":{"A":null}}"#,
        r#"{"traits":{"A":{},"A":{}}}"#,
    ] {
        assert!(serde_json::from_str::<Profile>(bad).is_err(), "{bad}");
    }
}

#[test]
fn profile_insert_and_remove_keep_the_canonical_form() {
    let mut profile = Profile::new();
    assert_eq!(profile.insert("A", "x", TraitValue::from(1)), None);
    assert_eq!(
        profile.insert("A", "x", TraitValue::from(2)),
        Some(TraitValue::from(1))
    );
    assert_eq!(profile.remove("A", "x"), Some(TraitValue::from(2)));
    assert_eq!(profile.remove("A", "x"), None);
    assert!(profile.is_empty());
    assert_eq!(json_text(&profile), r#"{"traits":{}}"#);
}

#[test]
fn trait_values_convert_to_and_from_json_values() {
    for value in [
        json!("s"),
        json!(1),
        json!(-1),
        json!(1.5),
        json!(true),
        json!([]),
        json!(["a", 1, 2.5, false]),
    ] {
        let trait_value = TraitValue::try_from(value.clone()).unwrap();
        assert_eq!(serde_json::Value::from(trait_value.clone()), value);
        assert_eq!(serde_json::to_value(&trait_value).unwrap(), value);
        let back: TraitValue = serde_json::from_value(value.clone()).unwrap();
        assert_eq!(back, trait_value);
    }
    assert_eq!(
        TraitValue::try_from(json!(["a", 1, true])).unwrap(),
        TraitValue::Array(vec![Scalar::from("a"), Scalar::from(1), Scalar::from(true)])
    );
    assert_eq!(Scalar::try_from(json!("a")), Ok(Scalar::from("a")));
    assert_eq!(serde_json::Value::from(Scalar::from(false)), json!(false));
}

#[test]
fn values_outside_the_domain_are_refused_with_a_value_error() {
    for (value, pointer, message) in [
        (
            json!(null),
            "",
            "the value: expected a string, number, boolean or flat array of those, found null",
        ),
        (
            json!({"a": 1}),
            "",
            "the value: expected a string, number, boolean or flat array of those, found an object",
        ),
        (
            json!([1, [2]]),
            "/1",
            "`/1`: expected a string, number, boolean or flat array of those, found a nested array",
        ),
        (
            json!(["a", "b", null]),
            "/2",
            "`/2`: expected a string, number, boolean or flat array of those, found null",
        ),
        (
            json!([{}]),
            "/0",
            "`/0`: expected a string, number, boolean or flat array of those, found an object",
        ),
    ] {
        let error: ValueError = TraitValue::try_from(value.clone()).unwrap_err();
        assert_eq!(
            (error.pointer(), error.to_string().as_str()),
            (pointer, message),
            "{value}"
        );
    }
    for (value, message) in [
        (
            json!([1]),
            "the value: expected a string, number, boolean or flat array of those, found an array",
        ),
        (
            json!(null),
            "the value: expected a string, number, boolean or flat array of those, found null",
        ),
        (
            json!({}),
            "the value: expected a string, number, boolean or flat array of those, found an object",
        ),
    ] {
        assert_eq!(Scalar::try_from(value).unwrap_err().to_string(), message);
    }
    for non_finite in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        assert_eq!(
            TraitValue::try_from(non_finite).unwrap_err().to_string(),
            "the value: expected a string, number, boolean or flat array of those, found a non-finite number"
        );
    }
}

#[test]
fn trait_value_deserialization_errors_are_readable() {
    for (text, message) in [
        (
            "null",
            "expected a string, number, boolean or flat array of those, found null",
        ),
        (
            r#"{"a": 1}"#,
            "expected a string, number, boolean or flat array of those, found an object",
        ),
        (
            r#"[1, [2]]"#,
            "array item 1: expected a string, number or boolean, found a nested array",
        ),
    ] {
        let error = serde_json::from_str::<TraitValue>(text)
            .unwrap_err()
            .to_string();
        let (reason, _) = error.rsplit_once(" at line ").unwrap_or((&error, ""));
        assert_eq!(reason, message, "{text}");
    }
    // Regression: a lone scalar's array was called "a nested array".
    let error = serde_json::from_str::<Scalar>("[]")
        .unwrap_err()
        .to_string();
    assert_eq!(
        error,
        "expected a string, number or boolean, found an array"
    );
}

#[test]
fn deeply_nested_array_is_an_invalid_value_not_a_crash() {
    let text = format!(
        r#"{{"traits": {{"Contact": {{"list": {}{}}}}}}}"#,
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    assert_parse_rejected(
        &text,
        &one(
            InvalidValue,
            "/traits/Contact/list/0",
            "`/traits/Contact/list/0`: expected a string, number or boolean, found a nested array",
        ),
    );
}

#[test]
fn change_list_replays_and_undoes_the_merge() {
    let (schema, before) = standard();
    let mut after = before.clone();
    let changes = merge_in_place(
        &mut after,
        &patch(r#"{"traits": {"Contact": {"phone": null, "vip": false, "name": "Al"}, "Activity": {"visits": null}}}"#),
        &schema,
    )
    .unwrap();
    assert_eq!(
        json_text(&Patch::from_changes(&changes)),
        r#"{"traits":{"Contact":{"phone":null,"vip":false,"name":"Al"},"Activity":{"visits":null}}}"#
    );
    let undo = Patch::undo(&changes);
    assert_eq!(
        json_text(&undo),
        r#"{"traits":{"Activity":{"visits":3},"Contact":{"name":null,"vip":true,"phone":"+1555"}}}"#
    );
    // Removed traits and dropped groups come back at the end.
    assert_merges(
        &schema,
        &after,
        &undo,
        r#"{"traits":{"Contact":{"email":"a@b.c","vip":true,"phone":"+1555"},"Activity":{"visits":3}}}"#,
    );
}
