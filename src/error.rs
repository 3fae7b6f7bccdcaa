//! Errors: why a patch was rejected, why a schema was refused, why an id or value is invalid.

use std::fmt;

/// The most violations one [`PatchError`] holds.
///
/// A hostile patch with millions of bad entries must not produce a report of the same size;
/// past this count the report stops and [`PatchError::is_truncated`] says so.
pub const MAX_VIOLATIONS: usize = 100;

/// What kind of rule a [`Violation`] breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ViolationKind {
    /// The bytes are not JSON (syntax error, bad UTF-8, nesting too deep, number out of range).
    MalformedJson,
    /// A key appears twice in the same JSON object.
    DuplicateKey,
    /// A key the wire format does not know, such as a top-level key other than `traits`.
    UnexpectedKey,
    /// The document, `traits`, or a trait group is not a JSON object (`null` included).
    NotAnObject,
    /// A trait value outside the domain: an object, a nested array, or `null` inside an array.
    InvalidValue,
    /// A trait group the schema does not declare.
    UnknownGroup,
    /// A trait its group does not declare.
    UnknownTrait,
    /// A value whose JSON type is not the trait's `dataType`.
    WrongType,
    /// A value that breaks the trait's `validationRule`.
    RuleBroken,
    /// A documented limit is exceeded (group or trait count, string length, array size,
    /// integer range).
    LimitExceeded,
}

/// One reason a patch was rejected: what, where, and a readable message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    kind: ViolationKind,
    pointer: String,
    /// The place, `": "`, then the reason, which starts at `reason_start`.
    message: String,
    reason_start: usize,
    line_column: Option<(usize, usize)>,
}

impl Violation {
    pub(crate) fn new(kind: ViolationKind, pointer: String, reason: impl fmt::Display) -> Self {
        let place = describe_place(&pointer);
        let reason_start = place.len() + 2;
        Violation {
            kind,
            message: format!("{place}: {reason}"),
            pointer,
            reason_start,
            line_column: None,
        }
    }

    pub(crate) fn malformed(pointer: String, line: usize, column: usize, reason: &str) -> Self {
        let violation = Violation::new(
            ViolationKind::MalformedJson,
            pointer,
            format_args!("malformed JSON at line {line}, column {column}: {reason}"),
        );
        Violation {
            line_column: Some((line, column)),
            ..violation
        }
    }

    /// The kind of rule broken, to branch on.
    pub fn kind(&self) -> ViolationKind {
        self.kind
    }

    /// The RFC 6901 JSON pointer of the offending place in the patch document, such as
    /// `/traits/Contact/email`; `""` is the whole document.
    pub fn pointer(&self) -> &str {
        &self.pointer
    }

    /// The readable message: the place first, then the reason.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The reason alone, without the place: `expected a string, found a number`.
    pub fn reason(&self) -> &str {
        &self.message[self.reason_start..]
    }

    /// Line and column (both 1-based) of a [`ViolationKind::MalformedJson`] error.
    pub fn line_column(&self) -> Option<(usize, usize)> {
        self.line_column
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

fn describe_place(pointer: &str) -> String {
    if pointer.is_empty() {
        "the document".to_owned()
    } else {
        format!("`{pointer}`")
    }
}

/// A rejected patch: every violation found, in document order, up to [`MAX_VIOLATIONS`].
///
/// Nothing of a rejected patch is ever applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatchError {
    violations: Vec<Violation>,
    truncated: bool,
}

impl PatchError {
    pub(crate) fn from_violations(violations: Violations) -> Option<Self> {
        if violations.list.is_empty() {
            return None;
        }
        Some(PatchError {
            violations: violations.list,
            truncated: violations.truncated,
        })
    }

    /// The violations in document order; never empty.
    pub fn violations(&self) -> &[Violation] {
        &self.violations
    }

    /// Whether more violations existed than the report holds ([`MAX_VIOLATIONS`]).
    pub fn is_truncated(&self) -> bool {
        self.truncated
    }

    /// How many violations the one-line [`Display`](fmt::Display) form shows.
    pub const SHOWN_INLINE: usize = 3;
}

impl fmt::Display for PatchError {
    /// One line: the count and the first [`PatchError::SHOWN_INLINE`] violations,
    /// `patch rejected, 2 violations: `/traits/A/x`: ...; `/traits/A/y`: ...`. The alternate
    /// form (`{:#}`) lists every violation, one per line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.violations.len();
        let more = if self.truncated { " or more" } else { "" };
        let noun = if count == 1 {
            "violation"
        } else {
            "violations"
        };
        write!(f, "patch rejected, {count}{more} {noun}")?;
        if f.alternate() {
            for violation in &self.violations {
                write!(f, "\n- {violation}")?;
            }
            return Ok(());
        }
        let shown = &self.violations[..count.min(Self::SHOWN_INLINE)];
        for (index, violation) in shown.iter().enumerate() {
            let separator = if index == 0 { ": " } else { "; " };
            write!(f, "{separator}{violation}")?;
        }
        if count > shown.len() || self.truncated {
            f.write_str("; ...")?;
        }
        Ok(())
    }
}

impl std::error::Error for PatchError {}

/// The growing list of violations of one check, capped at [`MAX_VIOLATIONS`].
///
/// `Vec::new` does not allocate, so a valid patch costs no allocation here.
#[derive(Debug, Default)]
pub(crate) struct Violations {
    list: Vec<Violation>,
    truncated: bool,
}

impl Violations {
    pub(crate) fn push(&mut self, violation: Violation) {
        if self.list.len() < MAX_VIOLATIONS {
            self.list.push(violation);
        } else {
            self.truncated = true;
        }
    }

    pub(crate) fn is_truncated(&self) -> bool {
        self.truncated
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub(crate) fn into_result(self) -> Result<(), PatchError> {
        match PatchError::from_violations(self) {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }
}

/// Why a [`StoreSchema`](crate::StoreSchema) could not be built or deserialized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaError {
    location: String,
    reason: String,
}

impl SchemaError {
    pub(crate) fn new(location: impl Into<String>, reason: impl Into<String>) -> Self {
        SchemaError {
            location: location.into(),
            reason: reason.into(),
        }
    }

    /// Where the problem is, such as ``trait group `Contact`, trait `email` ``; empty for the
    /// schema as a whole.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Which rule is broken.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl fmt::Display for SchemaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.location.is_empty() {
            write!(f, "invalid schema: {}", self.reason)
        } else {
            write!(f, "invalid schema: {}: {}", self.location, self.reason)
        }
    }
}

impl std::error::Error for SchemaError {}

/// Why a string is not a valid [`StoreId`](crate::StoreId) or [`ProfileId`](crate::ProfileId).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdError {
    what: &'static str,
    pattern: &'static str,
    input: String,
}

impl IdError {
    pub(crate) fn new(what: &'static str, pattern: &'static str, input: &str) -> Self {
        IdError {
            what,
            pattern,
            input: input.to_owned(),
        }
    }

    /// The refused input.
    pub fn input(&self) -> &str {
        &self.input
    }
}

impl fmt::Display for IdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` is not a valid {}: expected `{}`",
            self.input.escape_debug(),
            self.what,
            self.pattern
        )
    }
}

impl std::error::Error for IdError {}

/// Why a `serde_json::Value` is not a [`TraitValue`](crate::TraitValue).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueError {
    pointer: String,
    found: &'static str,
}

impl ValueError {
    pub(crate) fn new(pointer: String, found: &'static str) -> Self {
        ValueError { pointer, found }
    }

    /// The JSON pointer of the offending place, relative to the converted value.
    pub fn pointer(&self) -> &str {
        &self.pointer
    }
}

impl fmt::Display for ValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let place = if self.pointer.is_empty() {
            "the value".to_owned()
        } else {
            format!("`{}`", self.pointer)
        };
        write!(
            f,
            "{place}: expected a string, number, boolean or flat array of those, found {}",
            self.found
        )
    }
}

impl std::error::Error for ValueError {}

/// Why a number or text is not a [`Stamp`](crate::Stamp).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StampError {
    input: String,
    out_of_range: bool,
}

impl StampError {
    pub(crate) fn malformed(input: &str) -> Self {
        StampError {
            input: input.to_owned(),
            out_of_range: false,
        }
    }

    pub(crate) fn out_of_range(micros: i64) -> Self {
        StampError {
            input: micros.to_string(),
            out_of_range: true,
        }
    }

    /// The refused input: the text, or the microsecond count.
    pub fn input(&self) -> &str {
        &self.input
    }
}

impl fmt::Display for StampError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.out_of_range {
            write!(
                f,
                "{} microseconds since the epoch is outside the years 0000 to 9999",
                self.input
            )
        } else {
            write!(
                f,
                "`{}` is not an RFC 3339 date-time in the years 0000 to 9999, such as `2024-10-07T15:39:25.123456Z`",
                self.input.escape_debug()
            )
        }
    }
}

impl std::error::Error for StampError {}

/// Why a trait listing could not be answered (a 400 in the API).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListingError {
    kind: ListingErrorKind,
    message: String,
}

/// What is wrong with a listing request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ListingErrorKind {
    /// `pageSize` is not within 1 to 1000.
    PageSize,
    /// `orderBy` is neither `ASC` nor `DESC`.
    Order,
    /// The page token is malformed or was altered.
    MalformedToken,
    /// The page token was made for another order or another group filter.
    TokenMismatch,
}

impl ListingError {
    pub(crate) fn page_size(page_size: usize) -> Self {
        ListingError {
            kind: ListingErrorKind::PageSize,
            message: format!("`pageSize` {page_size} is not within 1 to 1000"),
        }
    }

    pub(crate) fn order(text: &str) -> Self {
        ListingError {
            kind: ListingErrorKind::Order,
            message: format!(
                "`orderBy` `{}` is neither `ASC` nor `DESC`",
                text.escape_debug()
            ),
        }
    }

    pub(crate) fn malformed_token() -> Self {
        ListingError {
            kind: ListingErrorKind::MalformedToken,
            message: "`pageToken` is not a token this listing made".to_owned(),
        }
    }

    pub(crate) fn token_mismatch() -> Self {
        ListingError {
            kind: ListingErrorKind::TokenMismatch,
            message: "`pageToken` was made for another `orderBy` or `traitGroups`".to_owned(),
        }
    }

    /// What is wrong, to branch on.
    pub fn kind(&self) -> ListingErrorKind {
        self.kind
    }
}

impl fmt::Display for ListingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ListingError {}
