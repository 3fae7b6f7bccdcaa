//! Store and profile ids in the API's TTID format.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::IdError;

/// The number of characters after a TTID's prefix.
const SUFFIX_LEN: usize = 26;

/// The lowercase Crockford base32 alphabet used to encode fresh ids.
const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// Whether `suffix` is `[0-7][0-9a-z]{25}`, the part of a TTID after its prefix.
fn is_ttid_suffix(suffix: &str) -> bool {
    let bytes = suffix.as_bytes();
    bytes.len() == SUFFIX_LEN
        && (b'0'..=b'7').contains(&bytes[0])
        && bytes[1..]
            .iter()
            .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
}

/// The 26-character suffix encoding `bits`: 128 bits in base32, so the first character is 0-7.
fn encode_suffix(bits: u128) -> String {
    (0..SUFFIX_LEN)
        .rev()
        .map(|i| char::from(ALPHABET[((bits >> (5 * i)) & 31) as usize]))
        .collect()
}

macro_rules! ttid {
    ($(#[$doc:meta])* $name:ident, $what:literal, $pattern:literal, $check:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// The id as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = IdError;

            /// # Errors
            ///
            /// When `s` does not match the documented pattern.
            fn from_str(s: &str) -> Result<Self, IdError> {
                let check: fn(&str) -> bool = $check;
                if check(s) {
                    Ok($name(s.to_owned()))
                } else {
                    Err(IdError::new($what, $pattern, s))
                }
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;

            fn try_from(s: String) -> Result<Self, IdError> {
                s.parse()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

ttid!(
    /// A memory store id: `^mem_(store|service)_[0-7][0-9a-z]{25}$`.
    ///
    /// # Examples
    ///
    /// ```
    /// use profile_traits::StoreId;
    ///
    /// let id: StoreId = "mem_store_00000000000000000000000000".parse().unwrap();
    /// assert_eq!(id.as_str(), "mem_store_00000000000000000000000000");
    /// assert!("mem_store_9".parse::<StoreId>().is_err());
    /// ```
    StoreId,
    "store id",
    "^mem_(store|service)_[0-7][0-9a-z]{25}$",
    |s| {
        s.strip_prefix("mem_store_")
            .or_else(|| s.strip_prefix("mem_service_"))
            .is_some_and(is_ttid_suffix)
    }
);

ttid!(
    /// A profile id: `^mem_profile_[0-7][0-9a-z]{25}$`.
    ///
    /// # Examples
    ///
    /// ```
    /// use profile_traits::ProfileId;
    ///
    /// let id: ProfileId = "mem_profile_00000000000000000000000000".parse().unwrap();
    /// assert_eq!(id.to_string(), "mem_profile_00000000000000000000000000");
    /// assert_eq!(
    ///     "mem_profile_X".parse::<ProfileId>().unwrap_err().to_string(),
    ///     "`mem_profile_X` is not a valid profile id: expected `^mem_profile_[0-7][0-9a-z]{25}$`"
    /// );
    /// ```
    ProfileId,
    "profile id",
    "^mem_profile_[0-7][0-9a-z]{25}$",
    |s| s.strip_prefix("mem_profile_").is_some_and(is_ttid_suffix)
);

impl ProfileId {
    /// The profile id that encodes `bits` (for example a UUIDv7 or 128 random bits).
    ///
    /// # Examples
    ///
    /// ```
    /// use profile_traits::ProfileId;
    ///
    /// assert_eq!(ProfileId::from_bits(0).as_str(), "mem_profile_00000000000000000000000000");
    /// assert_eq!(ProfileId::from_bits(u128::MAX).as_str(), "mem_profile_7zzzzzzzzzzzzzzzzzzzzzzzzz");
    /// ```
    pub fn from_bits(bits: u128) -> Self {
        ProfileId(format!("mem_profile_{}", encode_suffix(bits)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_prefix_is_a_store_id() {
        assert!(
            "mem_service_01234567890123456789abcdef"
                .parse::<StoreId>()
                .is_ok()
        );
    }

    #[test]
    fn first_suffix_character_is_at_most_seven() {
        assert!(
            "mem_profile_80000000000000000000000000"
                .parse::<ProfileId>()
                .is_err()
        );
    }

    #[test]
    fn uppercase_is_refused() {
        assert!(
            "mem_profile_0000000000000000000000000A"
                .parse::<ProfileId>()
                .is_err()
        );
    }
}
