//! Trait listing (SEMANTICS.md §7): record shape, order, filters, page sizes, keyset page
//! tokens.

use profile_traits::{
    FullTrait, ListingErrorKind, Patch, SortOrder, Stamp, StoreSchema, StoredProfile, TraitQuery,
    list_traits,
};
use serde_json::json;

/// Three groups of 20 traits each.
fn schema() -> StoreSchema {
    let traits: serde_json::Map<String, serde_json::Value> = (0..20)
        .map(|i| (format!("t{i:02}"), json!({"dataType": "NUMBER"})))
        .collect();
    serde_json::from_value(json!([
        {"displayName": "A", "traits": traits},
        {"displayName": "B", "traits": traits},
        {"displayName": "C", "traits": traits},
    ]))
    .expect("valid schema")
}

fn stamp(micros: i64, tiebreak: u64) -> Stamp {
    Stamp::new(micros, tiebreak).expect("in range")
}

fn set(group: &str, name: &str, value: i32) -> Patch {
    let mut patch = Patch::new();
    patch.set(group, name, value);
    patch
}

/// 60 live traits and some tombstones; several traits share an instant, so the tiebreaker,
/// group and name decide their order.
fn profile() -> StoredProfile {
    let schema = schema();
    let mut profile = StoredProfile::new();
    for (i, group) in ["A", "B", "C"].into_iter().enumerate() {
        for t in 0..20 {
            let n = i32::try_from(i * 20 + t).unwrap();
            let at = stamp(1_000_000 * i64::from(n % 7), u64::try_from(n % 3).unwrap());
            profile
                .apply(&set(group, &format!("t{t:02}"), n), &schema, at)
                .expect("valid");
        }
    }
    let mut removal = Patch::new();
    removal.remove("A", "t00").remove("C", "t19");
    profile
        .apply(&removal, &schema, stamp(9_000_000, 0))
        .expect("valid");
    profile
}

/// Every live trait, sorted as a listing in `order` sorts them.
fn sorted(profile: &StoredProfile, order: SortOrder, groups: &[&str]) -> Vec<(String, String)> {
    let mut all: Vec<_> = profile
        .traits()
        .filter(|t| t.value().is_some() && (groups.is_empty() || groups.contains(&t.group())))
        .map(|t| (t.stamp(), t.group().to_owned(), t.name().to_owned()))
        .collect();
    all.sort();
    if order == SortOrder::Desc {
        all.reverse();
    }
    all.into_iter().map(|(_, g, n)| (g, n)).collect()
}

fn names(traits: &[FullTrait]) -> Vec<(String, String)> {
    traits
        .iter()
        .map(|t| (t.trait_group().to_owned(), t.name().to_owned()))
        .collect()
}

/// The `nextToken` of the first page of `query`.
fn next_token_of_first_page(profile: &StoredProfile, query: &TraitQuery) -> String {
    let first = list_traits(profile, query).expect("first page");
    first.next_token().expect("more than one page").to_owned()
}

/// Follows `nextToken` from the first page to the last; returns every record seen.
fn walk_forward(profile: &StoredProfile, query: &TraitQuery) -> Vec<(String, String)> {
    let mut seen = Vec::new();
    let mut page = list_traits(profile, query).expect("first page");
    loop {
        assert!(page.traits().len() <= query.page_size().min(100));
        seen.extend(names(page.traits()));
        let Some(next) = page.next_token() else { break };
        let next = query.clone().with_page_token(next);
        page = list_traits(profile, &next).expect("next page");
        assert!(
            !page.traits().is_empty(),
            "a next token never leads to an empty page"
        );
    }
    seen
}

#[test]
fn all_pages_joined_equal_the_full_sorted_list_for_every_page_size_and_order() {
    let profile = profile();
    for order in [SortOrder::Asc, SortOrder::Desc] {
        let expected = sorted(&profile, order, &[]);
        assert_eq!(expected.len(), 58);
        for page_size in 1..=101 {
            let query = TraitQuery::new()
                .with_order(order)
                .with_page_size(page_size)
                .unwrap();
            assert_eq!(
                walk_forward(&profile, &query),
                expected,
                "{order} {page_size}"
            );
        }
    }
}

#[test]
fn previous_tokens_walk_back_through_the_same_pages() {
    let profile = profile();
    for order in [SortOrder::Asc, SortOrder::Desc] {
        for page_size in [1, 7, 20, 57, 58] {
            let query = TraitQuery::new()
                .with_order(order)
                .with_page_size(page_size)
                .unwrap();
            let mut pages = vec![list_traits(&profile, &query).unwrap()];
            while let Some(next) = pages.last().unwrap().next_token() {
                let next = query.clone().with_page_token(next);
                pages.push(list_traits(&profile, &next).unwrap());
            }
            assert_eq!(pages[0].previous_token(), None);
            for i in (1..pages.len()).rev() {
                let back = query
                    .clone()
                    .with_page_token(pages[i].previous_token().expect("a page after the first"));
                let previous = list_traits(&profile, &back).unwrap();
                assert_eq!(
                    previous.traits(),
                    pages[i - 1].traits(),
                    "{order} {page_size} {i}"
                );
            }
        }
    }
}

#[test]
fn page_size_over_100_gives_pages_of_100() {
    let traits: serde_json::Map<String, serde_json::Value> = (0..95)
        .map(|i| (format!("t{i:02}"), json!({"dataType": "NUMBER"})))
        .collect();
    let schema: StoreSchema = serde_json::from_value(json!([
        {"displayName": "A", "traits": traits}, {"displayName": "B", "traits": traits}
    ]))
    .unwrap();
    let mut profile = StoredProfile::new();
    for group in ["A", "B"] {
        let mut patch = Patch::new();
        for t in 0..95 {
            patch.set(group, &format!("t{t:02}"), 1);
        }
        profile.apply(&patch, &schema, stamp(1, 0)).unwrap();
    }
    let query = TraitQuery::new().with_page_size(1000).unwrap();
    let first = list_traits(&profile, &query).unwrap();
    assert_eq!(first.page_size(), 100);
    assert_eq!(first.traits().len(), 100);
    let second = list_traits(
        &profile,
        &query.with_page_token(first.next_token().unwrap()),
    )
    .unwrap();
    assert_eq!(second.traits().len(), 90);
    assert_eq!(second.next_token(), None);
}

#[test]
fn page_size_outside_1_to_1000_is_refused() {
    for bad in [0, 1001] {
        let error = TraitQuery::new().with_page_size(bad).unwrap_err();
        assert_eq!(error.kind(), ListingErrorKind::PageSize);
        assert_eq!(
            error.to_string(),
            format!("`pageSize` {bad} is not within 1 to 1000")
        );
    }
}

#[test]
fn order_by_parses_asc_and_desc_only() {
    assert_eq!("ASC".parse::<SortOrder>().unwrap(), SortOrder::Asc);
    assert_eq!("DESC".parse::<SortOrder>().unwrap(), SortOrder::Desc);
    let error = "asc".parse::<SortOrder>().unwrap_err();
    assert_eq!(error.kind(), ListingErrorKind::Order);
    assert_eq!(
        error.to_string(),
        "`orderBy` `asc` is neither `ASC` nor `DESC`"
    );
}

#[test]
fn group_filter_lists_only_those_groups_in_any_spelling_order() {
    let profile = profile();
    let query = TraitQuery::new()
        .with_groups(["C", "A", "C"])
        .with_page_size(10)
        .unwrap();
    assert_eq!(
        walk_forward(&profile, &query),
        sorted(&profile, SortOrder::Desc, &["A", "C"])
    );
    let first = list_traits(&profile, &query).unwrap();
    let same_filter = TraitQuery::new()
        .with_groups(["A", "C"])
        .with_page_size(10)
        .unwrap()
        .with_page_token(first.next_token().unwrap());
    assert!(list_traits(&profile, &same_filter).is_ok());
}

#[test]
fn a_token_used_with_another_order_or_filter_is_refused() {
    let profile = profile();
    let query = TraitQuery::new().with_page_size(5).unwrap();
    let token = next_token_of_first_page(&profile, &query);
    let other_order = query
        .clone()
        .with_order(SortOrder::Asc)
        .with_page_token(&token);
    let other_filter = query.clone().with_groups(["A"]).with_page_token(&token);
    for query in [other_order, other_filter] {
        let error = list_traits(&profile, &query).unwrap_err();
        assert_eq!(error.kind(), ListingErrorKind::TokenMismatch);
        assert_eq!(
            error.to_string(),
            "`pageToken` was made for another `orderBy` or `traitGroups`"
        );
    }
}

#[test]
fn an_altered_or_foreign_token_is_refused() {
    let profile = profile();
    let query = TraitQuery::new().with_page_size(5).unwrap();
    let token = next_token_of_first_page(&profile, &query);
    let mut altered = token.clone().into_bytes();
    let last = altered.len() - 1;
    altered[last] = if altered[last] == b'a' { b'b' } else { b'a' };
    for bad in [
        String::from_utf8(altered).unwrap(),
        "x".to_owned(),
        String::new(),
        "00".repeat(3000),
    ] {
        let error = list_traits(&profile, &query.clone().with_page_token(bad)).unwrap_err();
        assert_eq!(error.kind(), ListingErrorKind::MalformedToken);
        assert_eq!(
            error.to_string(),
            "`pageToken` is not a token this listing made"
        );
    }
}

#[test]
fn tokens_are_url_safe_and_at_most_4096_characters() {
    let long = "é".repeat(64);
    let schema: StoreSchema = serde_json::from_value(json!([
        {"displayName": "G", "traits": {long.clone(): {"dataType": "NUMBER"}, "b": {"dataType": "NUMBER"}}}
    ]))
    .unwrap();
    let mut profile = StoredProfile::new();
    profile
        .apply(&set("G", &long, 1), &schema, stamp(2, 0))
        .unwrap();
    profile
        .apply(&set("G", "b", 1), &schema, stamp(1, 0))
        .unwrap();
    let page = list_traits(&profile, &TraitQuery::new().with_page_size(1).unwrap()).unwrap();
    let token = page.next_token().unwrap();
    assert!(token.len() <= 4096);
    assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));
}

#[test]
fn a_trait_that_did_not_change_while_paging_is_seen_exactly_once() {
    let schema = schema();
    for order in [SortOrder::Asc, SortOrder::Desc] {
        let mut profile = profile();
        let untouched: Vec<(String, String)> = sorted(&profile, order, &[])
            .into_iter()
            .filter(|(g, _)| g != "B")
            .collect();
        let query = TraitQuery::new()
            .with_order(order)
            .with_page_size(4)
            .unwrap();
        let mut seen = Vec::new();
        let mut page = list_traits(&profile, &query).unwrap();
        let mut clock: i32 = 10_000_000;
        loop {
            seen.extend(names(page.traits()));
            // Between the first pages, every trait of group B changes (and so moves to the
            // newest end of the order; in ASC order, ahead of the reader again).
            if clock < 10_000_005 {
                let mut patch = Patch::new();
                for t in 0..20 {
                    patch.set("B", &format!("t{t:02}"), clock);
                }
                profile
                    .apply(&patch, &schema, stamp(i64::from(clock), 0))
                    .unwrap();
                clock += 1;
            }
            let Some(next) = page.next_token() else { break };
            page = list_traits(&profile, &query.clone().with_page_token(next)).unwrap();
        }
        for record in &untouched {
            let count = seen.iter().filter(|s| *s == record).count();
            assert_eq!(count, 1, "{order} {record:?}");
        }
    }
}

#[test]
fn records_have_the_api_shape_with_second_precision_timestamps() {
    let schema = schema();
    let mut profile = StoredProfile::new();
    profile
        .apply(
            &set("A", "t01", 5),
            &schema,
            "2025-01-01T12:00:00.999999Z".parse().unwrap(),
        )
        .unwrap();
    let page = list_traits(&profile, &TraitQuery::new()).unwrap();
    assert_eq!(
        serde_json::to_value(&page).unwrap(),
        json!({
            "traits": [{"name": "t01", "value": 5, "traitGroup": "A", "timestamp": "2025-01-01T12:00:00Z"}],
            "meta": {"key": "traits", "pageSize": 50}
        })
    );
}
