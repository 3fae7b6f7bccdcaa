//! Listing a stored profile's traits (`GET .../Profiles/{profileId}/Traits`): flattened
//! records, their order, and keyset page tokens (SEMANTICS.md §7).

use std::cmp::Ordering;
use std::fmt::{self, Write as _};
use std::str::FromStr;

use serde::ser::{Serialize, SerializeStruct, Serializer};

use crate::error::ListingError;
use crate::stamp::Stamp;
use crate::stored::{StoredProfile, StoredTrait};
use crate::value::TraitValue;

/// The default `pageSize`.
pub const DEFAULT_PAGE_SIZE: usize = 50;
/// The largest `pageSize` a request may ask for.
pub const MAX_PAGE_SIZE: usize = 1000;
/// The most records one page holds, whatever `pageSize` asks (the API's `maxItems`).
pub const MAX_PAGE_RECORDS: usize = 100;

/// One live trait as the listing shows it: the API's `FullTrait`,
/// `{"name", "value", "traitGroup", "timestamp"}`.
///
/// `timestamp` is serialized at second precision (`2025-01-01T12:00:00Z`), the form the
/// official Python helper library parses; [`FullTrait::stamp`] keeps the whole stamp.
#[derive(Debug, Clone, PartialEq)]
pub struct FullTrait {
    name: String,
    value: TraitValue,
    trait_group: String,
    stamp: Stamp,
}

impl FullTrait {
    /// The trait's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The trait's value.
    pub fn value(&self) -> &TraitValue {
        &self.value
    }

    /// The trait's group.
    pub fn trait_group(&self) -> &str {
        &self.trait_group
    }

    /// The stamp of the write that set the value.
    pub fn stamp(&self) -> Stamp {
        self.stamp
    }
}

impl Serialize for FullTrait {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("FullTrait", 4)?;
        s.serialize_field("name", &self.name)?;
        s.serialize_field("value", &self.value)?;
        s.serialize_field("traitGroup", &self.trait_group)?;
        s.serialize_field("timestamp", &self.stamp.to_seconds_string())?;
        s.end()
    }
}

/// The order of a listing: by stamp (instant, then tiebreaker), then group, then name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortOrder {
    /// Oldest first (`ASC`).
    Asc,
    /// Newest first (`DESC`), the default.
    #[default]
    Desc,
}

impl FromStr for SortOrder {
    type Err = ListingError;

    /// `ASC` or `DESC`, as the API's `orderBy` spells them.
    fn from_str(text: &str) -> Result<Self, ListingError> {
        match text {
            "ASC" => Ok(SortOrder::Asc),
            "DESC" => Ok(SortOrder::Desc),
            _ => Err(ListingError::order(text)),
        }
    }
}

/// What to list: the groups (all when empty), the order, the page size and where to start.
///
/// # Examples
///
/// ```
/// use profile_traits::{SortOrder, TraitQuery};
///
/// let query = TraitQuery::new()
///     .with_groups(["Contact", "Activity"])
///     .with_order(SortOrder::Asc)
///     .with_page_size(500)?;
/// assert_eq!(query.page_size(), 500);
/// assert!(TraitQuery::new().with_page_size(0).is_err());
/// # Ok::<(), profile_traits::ListingError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraitQuery {
    /// Sorted and without repeats, so that `A,B` and `B,A` are the same filter.
    groups: Vec<String>,
    order: SortOrder,
    page_size: usize,
    page_token: Option<String>,
}

impl Default for TraitQuery {
    fn default() -> Self {
        TraitQuery::new()
    }
}

impl TraitQuery {
    /// Every group, newest first, [`DEFAULT_PAGE_SIZE`] per page, from the start.
    pub fn new() -> Self {
        TraitQuery {
            groups: Vec::new(),
            order: SortOrder::Desc,
            page_size: DEFAULT_PAGE_SIZE,
            page_token: None,
        }
    }

    /// Lists only the traits of `groups` (the API's comma-separated `traitGroups`).
    pub fn with_groups<I, S>(mut self, groups: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.groups = groups.into_iter().map(Into::into).collect();
        self.groups.sort();
        self.groups.dedup();
        self
    }

    /// Sets the order.
    pub fn with_order(mut self, order: SortOrder) -> Self {
        self.order = order;
        self
    }

    /// Sets `pageSize`; a page holds at most [`MAX_PAGE_RECORDS`] records whatever it is.
    ///
    /// # Errors
    ///
    /// When `page_size` is not within 1 to [`MAX_PAGE_SIZE`] (`0`, `1001`).
    pub fn with_page_size(mut self, page_size: usize) -> Result<Self, ListingError> {
        if !(1..=MAX_PAGE_SIZE).contains(&page_size) {
            return Err(ListingError::page_size(page_size));
        }
        self.page_size = page_size;
        Ok(self)
    }

    /// Starts at the page a previous answer's `nextToken` or `previousToken` names.
    pub fn with_page_token(mut self, token: impl Into<String>) -> Self {
        self.page_token = Some(token.into());
        self
    }

    /// The groups listed, sorted; empty means all.
    pub fn groups(&self) -> &[String] {
        &self.groups
    }

    /// The order.
    pub fn order(&self) -> SortOrder {
        self.order
    }

    /// The requested `pageSize`.
    pub fn page_size(&self) -> usize {
        self.page_size
    }

    fn records_per_page(&self) -> usize {
        self.page_size.min(MAX_PAGE_RECORDS)
    }

    fn lists_group(&self, group: &str) -> bool {
        self.groups.is_empty()
            || self
                .groups
                .binary_search_by(|g| g.as_str().cmp(group))
                .is_ok()
    }
}

/// One page of a listing: the API's `{"traits": [FullTrait], "meta": {...}}`.
#[derive(Debug, Clone, PartialEq)]
pub struct TraitPage {
    traits: Vec<FullTrait>,
    page_size: usize,
    next_token: Option<String>,
    previous_token: Option<String>,
}

impl TraitPage {
    /// The records of this page, in the query's order.
    pub fn traits(&self) -> &[FullTrait] {
        &self.traits
    }

    /// The most records a page of this listing holds.
    pub fn page_size(&self) -> usize {
        self.page_size
    }

    /// The token of the next page, when there are records after this one.
    pub fn next_token(&self) -> Option<&str> {
        self.next_token.as_deref()
    }

    /// The token of the previous page, when there are records before this one.
    pub fn previous_token(&self) -> Option<&str> {
        self.previous_token.as_deref()
    }
}

impl Serialize for TraitPage {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("TraitPage", 2)?;
        s.serialize_field("traits", &self.traits)?;
        s.serialize_field("meta", &Meta(self))?;
        s.end()
    }
}

struct Meta<'a>(&'a TraitPage);

impl Serialize for Meta<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let page = self.0;
        let fields =
            2 + usize::from(page.next_token.is_some()) + usize::from(page.previous_token.is_some());
        let mut s = serializer.serialize_struct("Meta", fields)?;
        s.serialize_field("key", "traits")?;
        s.serialize_field("pageSize", &page.page_size)?;
        if let Some(token) = &page.next_token {
            s.serialize_field("nextToken", token)?;
        }
        if let Some(token) = &page.previous_token {
            s.serialize_field("previousToken", token)?;
        }
        s.end()
    }
}

/// Lists one page of the live traits of `profile` (SEMANTICS.md §7).
///
/// Records are ordered by (stamp, group, name), oldest or newest first. Page tokens name a
/// position in that order, not an offset, so paging while other traits change never repeats
/// or skips a trait that did not change meanwhile.
///
/// # Errors
///
/// A [`ListingError`] when the page token is malformed or altered
/// (`with_page_token("x")`), or was made for another order or another group filter.
///
/// # Examples
///
/// ```
/// use profile_traits::{list_traits, Patch, SortOrder, Stamp, StoreSchema, StoredProfile, TraitQuery};
///
/// let schema: StoreSchema = serde_json::from_str(r#"[{"displayName": "Contact", "traits": {
///     "email": {"dataType": "STRING"}, "phone": {"dataType": "STRING"}}}]"#)?;
/// let mut profile = StoredProfile::new();
/// let email: Patch = r#"{"traits": {"Contact": {"email": "a@b.c"}}}"#.parse()?;
/// let phone: Patch = r#"{"traits": {"Contact": {"phone": "+1"}}}"#.parse()?;
/// profile.apply(&email, &schema, "2025-01-01T12:00:00.5Z".parse()?)?;
/// profile.apply(&phone, &schema, "2025-01-02T12:00:00Z".parse()?)?;
///
/// let first = list_traits(&profile, &TraitQuery::new().with_page_size(1)?)?;
/// assert_eq!(
///     serde_json::to_value(&first)?["traits"],
///     serde_json::json!([{"name": "phone", "value": "+1", "traitGroup": "Contact",
///                         "timestamp": "2025-01-02T12:00:00Z"}])
/// );
/// let next = TraitQuery::new().with_page_size(1)?.with_page_token(first.next_token().unwrap());
/// let second = list_traits(&profile, &next)?;
/// assert_eq!(second.traits()[0].name(), "email");
/// assert_eq!(second.next_token(), None);
///
/// let wrong_order = next.with_order(SortOrder::Asc);
/// assert!(list_traits(&profile, &wrong_order).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn list_traits(profile: &StoredProfile, query: &TraitQuery) -> Result<TraitPage, ListingError> {
    let filter = filter_hash(&query.groups);
    let start_at = match &query.page_token {
        None => None,
        Some(token) => {
            let token = PageToken::decode(token)?;
            if token.order != query.order || token.filter != filter {
                return Err(ListingError::token_mismatch());
            }
            Some(token)
        }
    };
    let mut records: Vec<StoredTrait<'_>> = profile
        .traits()
        .filter(|t| t.value().is_some() && query.lists_group(t.group()))
        .collect();
    records.sort_by(|a, b| in_order(query.order, key_of(a), key_of(b)));

    let per_page = query.records_per_page();
    let (start, end) = match &start_at {
        None => (0, per_page.min(records.len())),
        Some(token) => {
            let position = token.position.key();
            let placed = |r: &StoredTrait<'_>| in_order(query.order, key_of(r), position);
            match token.direction {
                Direction::After => {
                    let start = records.partition_point(|r| placed(r) != Ordering::Greater);
                    (start, (start + per_page).min(records.len()))
                }
                Direction::Before => {
                    let end = records.partition_point(|r| placed(r) == Ordering::Less);
                    (end.saturating_sub(per_page), end)
                }
            }
        }
    };
    let page = &records[start..end];
    let token = |direction, record: Option<&StoredTrait<'_>>| {
        let position = record.map_or_else(
            || start_at.as_ref().map(|t| t.position.clone()),
            |r| Some(Position::of(r)),
        )?;
        let token = PageToken {
            direction,
            order: query.order,
            filter,
            position,
        };
        Some(token.encode())
    };
    Ok(TraitPage {
        traits: page.iter().map(full_trait).collect(),
        page_size: per_page,
        next_token: if end < records.len() {
            token(Direction::After, page.last())
        } else {
            None
        },
        previous_token: if start > 0 {
            token(Direction::Before, page.first())
        } else {
            None
        },
    })
}

fn full_trait(record: &StoredTrait<'_>) -> FullTrait {
    FullTrait {
        name: record.name().to_owned(),
        value: record.value().expect("only live traits are listed").clone(),
        trait_group: record.group().to_owned(),
        stamp: record.stamp(),
    }
}

/// Where a record stands in a listing: its stamp, group and name.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Position {
    stamp: Stamp,
    group: String,
    name: String,
}

impl Position {
    fn of(record: &StoredTrait<'_>) -> Position {
        Position {
            stamp: record.stamp(),
            group: record.group().to_owned(),
            name: record.name().to_owned(),
        }
    }

    fn key(&self) -> SortKey<'_> {
        (self.stamp, &self.group, &self.name)
    }
}

/// What a listing sorts by: stamp, group, name.
type SortKey<'a> = (Stamp, &'a str, &'a str);

fn key_of<'a>(record: &StoredTrait<'a>) -> SortKey<'a> {
    (record.stamp(), record.group(), record.name())
}

/// How `a` compares with `b` in a listing in `order`.
fn in_order(order: SortOrder, a: SortKey<'_>, b: SortKey<'_>) -> Ordering {
    match order {
        SortOrder::Asc => a.cmp(&b),
        SortOrder::Desc => b.cmp(&a),
    }
}

/// Which side of its position a token's page lies on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    /// The records after the position (`nextToken`).
    After,
    /// The records before the position (`previousToken`).
    Before,
}

/// A page token: a position in one listing (order and filter), and a direction.
///
/// Encoded as lowercase hex (URL-safe) of: version, direction, order, filter hash, stamp,
/// group and name (each length-prefixed), then a checksum of all that, so an altered token
/// is refused rather than read as another position. The longest (two names of 64 four-byte
/// characters) is about 1,150 characters, under the API's 4,096.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PageToken {
    direction: Direction,
    order: SortOrder,
    filter: u64,
    position: Position,
}

const TOKEN_VERSION: u8 = 1;

impl PageToken {
    fn encode(&self) -> String {
        let mut bytes = vec![
            TOKEN_VERSION,
            match self.direction {
                Direction::After => 0,
                Direction::Before => 1,
            },
            match self.order {
                SortOrder::Asc => 0,
                SortOrder::Desc => 1,
            },
        ];
        bytes.extend(self.filter.to_be_bytes());
        bytes.extend(self.position.stamp.micros_since_epoch().to_be_bytes());
        bytes.extend(self.position.stamp.tiebreak().to_be_bytes());
        for text in [&self.position.group, &self.position.name] {
            let len = u16::try_from(text.len()).expect("names are at most 256 bytes");
            bytes.extend(len.to_be_bytes());
            bytes.extend(text.as_bytes());
        }
        bytes.extend(fnv1a(&bytes).to_be_bytes());
        let mut text = String::with_capacity(bytes.len() * 2);
        for byte in bytes {
            write!(text, "{byte:02x}").expect("writing to a String cannot fail");
        }
        text
    }

    fn decode(text: &str) -> Result<PageToken, ListingError> {
        decode_token(text).ok_or_else(ListingError::malformed_token)
    }
}

fn decode_token(text: &str) -> Option<PageToken> {
    if !text.len().is_multiple_of(2) || text.len() > 4096 {
        return None;
    }
    let bytes: Vec<u8> = (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect::<Option<_>>()?;
    let (payload, checksum) = bytes.split_at_checked(bytes.len().checked_sub(8)?)?;
    if fnv1a(payload).to_be_bytes() != checksum {
        return None;
    }
    let mut reader = Reader(payload);
    if reader.take(1)? != [TOKEN_VERSION] {
        return None;
    }
    let direction = match reader.take(1)? {
        [0] => Direction::After,
        [1] => Direction::Before,
        _ => return None,
    };
    let order = match reader.take(1)? {
        [0] => SortOrder::Asc,
        [1] => SortOrder::Desc,
        _ => return None,
    };
    let filter = u64::from_be_bytes(reader.array()?);
    let micros = i64::from_be_bytes(reader.array()?);
    let tiebreak = u64::from_be_bytes(reader.array()?);
    let stamp = Stamp::new(micros, tiebreak).ok()?;
    let group = reader.text()?;
    let name = reader.text()?;
    if !reader.0.is_empty() {
        return None;
    }
    Some(PageToken {
        direction,
        order,
        filter,
        position: Position { stamp, group, name },
    })
}

/// Reads a token's fields in order.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, count: usize) -> Option<&[u8]> {
        let (head, rest) = self.0.split_at_checked(count)?;
        self.0 = rest;
        Some(head)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    fn text(&mut self) -> Option<String> {
        let len = u16::from_be_bytes(self.array()?);
        let bytes = self.take(usize::from(len))?;
        String::from_utf8(bytes.to_vec()).ok()
    }
}

/// The hash a token keeps of the group filter it was made for.
fn filter_hash(groups: &[String]) -> u64 {
    let mut bytes = Vec::new();
    for group in groups {
        bytes.extend(group.as_bytes());
        bytes.push(0);
    }
    fnv1a(&bytes)
}

/// FNV-1a, 64 bits: a stable checksum, the same in every process and version (a token may
/// be read by another instance of the service).
fn fnv1a(bytes: &[u8]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0100_0000_01b3;
    bytes.iter().fold(OFFSET, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(PRIME)
    })
}

impl fmt::Display for SortOrder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SortOrder::Asc => "ASC",
            SortOrder::Desc => "DESC",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> PageToken {
        PageToken {
            direction: Direction::Before,
            order: SortOrder::Asc,
            filter: filter_hash(&["Contact".to_owned()]),
            position: Position {
                stamp: Stamp::new(1_700_000_000_000_000, 9).unwrap(),
                group: "Contact".to_owned(),
                name: "ém/ail".to_owned(),
            },
        }
    }

    #[test]
    fn tokens_round_trip() {
        assert_eq!(PageToken::decode(&token().encode()), Ok(token()));
    }

    #[test]
    fn every_altered_hex_digit_is_refused() {
        let text = token().encode();
        for at in 0..text.len() {
            let mut altered = text.clone().into_bytes();
            altered[at] = if altered[at] == b'0' { b'1' } else { b'0' };
            let altered = String::from_utf8(altered).unwrap();
            assert_eq!(
                PageToken::decode(&altered),
                Err(ListingError::malformed_token()),
                "{at}"
            );
        }
    }

    #[test]
    fn fnv1a_matches_its_published_check_value() {
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
