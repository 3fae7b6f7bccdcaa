//! Names of trait groups and traits, and the ordered maps keyed by them.

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
            while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
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
