//! Names of trait groups and traits, and the ordered maps keyed by them.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use indexmap::IndexMap;
use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};

/// A group or trait name.
///
/// Shared, not copied: a trait that a patch adds to a profile takes its key from the schema,
/// so adding it allocates no name.
pub(crate) type Name = Arc<str>;

/// An insertion-ordered map keyed by names.
///
/// Hashed with foldhash, seeded per process: names are short, and with the standard
/// SipHash, hashing was most of the time of a small merge (benches: `ours_in_place`).
pub(crate) type NameMap<V> = IndexMap<Name, V, foldhash::fast::RandomState>;

/// Deserializes a JSON object into a [`NameMap`], refusing a key that appears twice.
pub(crate) fn deserialize_unique_map<'de, D, V>(d: D) -> Result<NameMap<V>, D::Error>
where
    D: Deserializer<'de>,
    V: Deserialize<'de>,
{
    struct UniqueMapVisitor<V>(PhantomData<V>);

    impl<'de, V: Deserialize<'de>> Visitor<'de> for UniqueMapVisitor<V> {
        type Value = NameMap<V>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an object")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<NameMap<V>, A::Error> {
            let mut out = NameMap::with_capacity_and_hasher(
                map.size_hint().unwrap_or(0).min(256),
                Default::default(),
            );
            while let Some(key) = map.next_key_seed(KeySeed)? {
                if out.contains_key(key.as_ref()) {
                    return Err(de::Error::custom(format_args!("duplicate key `{key}`")));
                }
                let value = map.next_value()?;
                out.insert(Name::from(key.as_ref()), value);
            }
            Ok(out)
        }
    }

    d.deserialize_map(UniqueMapVisitor(PhantomData))
}

/// Reads an object key, borrowing it from the input when it has no escapes.
///
/// `Cow<str>`'s own `Deserialize` always copies; a patch's keys are only looked at, so the
/// copy was an allocation per key for nothing.
pub(crate) struct KeySeed;

impl<'de> de::DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        struct KeyVisitor;

        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Cow<'de, str>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string key")
            }

            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Cow::Borrowed(v))
            }

            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Cow::Owned(v.to_owned()))
            }

            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Cow::Owned(v))
            }
        }

        d.deserialize_str(KeyVisitor)
    }
}
