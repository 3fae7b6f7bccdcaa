//! The keys the service accepts: the `--account-sid`/`--auth-token` pair (which may use every
//! store served) and the keys of a `--credentials` file, each limited to the stores it lists.
//!
//! The file is a JSON array of keys:
//!
//! ```json
//! [{"sid": "SK00000000000000000000000000000001", "secret": "s3cret",
//!   "stores": ["mem_store_00000000000000000000000000"]}]
//! ```
//!
//! A request's `Authorization: Basic` value is compared with every key, each comparison in
//! time that does not depend on where the bytes differ, and without stopping at a match.

use std::path::Path;

use base64::Engine;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use profile_traits::StoreId;
use subtle::ConstantTimeEq;

/// Standard base64, with or without padding, as clients send it in `Authorization: Basic`.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// One key.
struct Key {
    /// `sid:secret`, as HTTP Basic carries it.
    joined: Vec<u8>,
    /// The stores it may use; `None`: every store served.
    stores: Option<Vec<StoreId>>,
}

/// A key of the `--credentials` file, as written there.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FileKey {
    sid: String,
    secret: String,
    stores: Vec<String>,
}

/// Which key a request was authenticated with: an index into [`Credentials`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct KeyIndex(pub(crate) usize);

/// Every key the service accepts.
pub(crate) struct Credentials(Vec<Key>);

impl Credentials {
    /// The single key `account_sid:auth_token`, which may use every store served.
    pub(crate) fn new(account_sid: &str, auth_token: &str) -> Self {
        Credentials(vec![Key {
            joined: format!("{account_sid}:{auth_token}").into_bytes(),
            stores: None,
        }])
    }

    /// The keys of the `--credentials` file `text`, after the `pair` (SID, token) if any.
    ///
    /// # Errors
    ///
    /// A message if the text is not a JSON array of `{"sid", "secret", "stores"}`, a SID is
    /// empty, contains `:` or appears twice, a secret is empty, or a store id is not a store
    /// TTID.
    pub(crate) fn parse(text: &str, pair: Option<(&str, &str)>) -> Result<Self, String> {
        let keys: Vec<FileKey> = serde_json::from_str(text).map_err(|e| {
            format!(r#"expected a JSON array of {{"sid", "secret", "stores"}}: {e}"#)
        })?;
        let mut credentials = match pair {
            Some((sid, token)) => Credentials::new(sid, token),
            None => Credentials(Vec::new()),
        };
        let mut sids: Vec<String> = pair.iter().map(|(sid, _)| (*sid).to_owned()).collect();
        for (i, key) in keys.into_iter().enumerate() {
            if key.sid.is_empty() || key.sid.contains(':') {
                return Err(format!("key {i}: `sid` must be non-empty, without `:`"));
            }
            if key.secret.is_empty() {
                return Err(format!("key {i} (`{}`): `secret` is empty", key.sid));
            }
            if sids.contains(&key.sid) {
                return Err(format!("key {i}: SID `{}` appears twice", key.sid));
            }
            let stores = key
                .stores
                .iter()
                .map(|s| {
                    s.parse()
                        .map_err(|e| format!("key {i} (`{}`): {e}", key.sid))
                })
                .collect::<Result<Vec<StoreId>, String>>()?;
            credentials.0.push(Key {
                joined: format!("{}:{}", key.sid, key.secret).into_bytes(),
                stores: Some(stores),
            });
            sids.push(key.sid);
        }
        if credentials.0.is_empty() {
            return Err("no keys".to_owned());
        }
        Ok(credentials)
    }

    /// Reads the `--credentials` file at `path` (see [`Credentials::parse`]).
    ///
    /// # Errors
    ///
    /// A message naming the file if it cannot be read or parsed.
    pub(crate) fn load(path: &Path, pair: Option<(&str, &str)>) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read credentials `{}`: {e}", path.display()))?;
        Credentials::parse(&text, pair)
            .map_err(|e| format!("credentials `{}`: {e}", path.display()))
    }

    /// How many keys there are.
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// The key an `Authorization` header value carries, if any. Every key is compared, each
    /// in constant time.
    pub(crate) fn admit(&self, authorization: &str) -> Option<KeyIndex> {
        let (scheme, encoded) = authorization.trim().split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return None;
        }
        let decoded = BASE64.decode(encoded.trim()).ok()?;
        let mut found = None;
        for (i, key) in self.0.iter().enumerate() {
            let equal = bool::from(decoded.ct_eq(&key.joined));
            if equal && found.is_none() {
                found = Some(KeyIndex(i));
            }
        }
        found
    }

    /// Whether key `key` may use store `store`.
    pub(crate) fn may_use(&self, key: KeyIndex, store: &StoreId) -> bool {
        match &self.0[key.0].stores {
            None => true,
            Some(stores) => stores.contains(store),
        }
    }

    /// The SID of key `key`.
    pub(crate) fn sid(&self, key: KeyIndex) -> &str {
        let joined = &self.0[key.0].joined;
        let end = joined
            .iter()
            .position(|&b| b == b':')
            .unwrap_or(joined.len());
        std::str::from_utf8(&joined[..end]).unwrap_or("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose;

    fn header(user: &str, password: &str) -> String {
        format!(
            "Basic {}",
            general_purpose::STANDARD.encode(format!("{user}:{password}"))
        )
    }

    #[test]
    fn basic_credentials_are_read_with_or_without_padding() {
        let credentials = Credentials::new("AC", "secret");
        let encoded = general_purpose::STANDARD.encode("AC:secret");
        assert_eq!(
            credentials.admit(&format!("Basic {encoded}")),
            Some(KeyIndex(0))
        );
        assert!(
            credentials
                .admit(&format!("basic {}", encoded.trim_end_matches('=')))
                .is_some()
        );
        assert!(credentials.admit(&format!("Bearer {encoded}")).is_none());
        assert!(credentials.admit("Basic !!!").is_none());
        assert!(credentials.admit(&header("AC", "secreT")).is_none());
    }

    #[test]
    fn file_keys_are_limited_to_their_stores() {
        let text = r#"[
            {"sid": "SK1", "secret": "one", "stores": ["mem_store_00000000000000000000000000"]},
            {"sid": "SK2", "secret": "two", "stores": []}
        ]"#;
        let credentials = Credentials::parse(text, Some(("AC", "token"))).unwrap();
        assert_eq!(credentials.len(), 3);
        let served: StoreId = "mem_store_00000000000000000000000000".parse().unwrap();
        let pair = credentials.admit(&header("AC", "token")).unwrap();
        let one = credentials.admit(&header("SK1", "one")).unwrap();
        let two = credentials.admit(&header("SK2", "two")).unwrap();
        assert!(credentials.admit(&header("SK1", "two")).is_none());
        assert!(credentials.may_use(pair, &served));
        assert!(credentials.may_use(one, &served));
        assert!(!credentials.may_use(two, &served));
        assert_eq!(credentials.sid(two), "SK2");
    }

    #[test]
    fn bad_files_are_refused_with_a_reason() {
        for (text, expected) in [
            ("{}", "expected a JSON array"),
            (r#"[{"sid": "", "secret": "x", "stores": []}]"#, "non-empty"),
            (
                r#"[{"sid": "A:B", "secret": "x", "stores": []}]"#,
                "without `:`",
            ),
            (r#"[{"sid": "S", "secret": "", "stores": []}]"#, "is empty"),
            (
                r#"[{"sid": "S", "secret": "x", "stores": ["nope"]}]"#,
                "key 0 (`S`)",
            ),
            (
                r#"[{"sid": "S", "secret": "x", "stores": []}, {"sid": "S", "secret": "y", "stores": []}]"#,
                "appears twice",
            ),
            ("[]", "no keys"),
        ] {
            let error = Credentials::parse(text, None).err().unwrap();
            assert!(error.contains(expected), "{text}: {error}");
        }
    }
}
