//! A closed set of named values without edges (operation names, runtime states), with one
//! `as_str` match and one parse function behind every conversion; and the store-minted ids.

/// Declares a `Copy` enum whose values are stored as fixed strings. Not a lifecycle: there
/// are no edges, only names. The enum and every conversion come from the core it shares
/// with [`lifecycle!`](crate::lifecycle!), which also refuses a value declared twice or
/// two values stored as the same string.
macro_rules! named_values {
    (
        $(#[$meta:meta])*
        $vis:vis enum $Enum:ident as $machine:literal $noun:literal {
            $( $(#[$vmeta:meta])* $Var:ident = $name:literal, )+
        }
    ) => {
        $crate::__private::named_enum! {
            [$(#[$meta])*] $vis enum $Enum as $machine $noun {
                $( [$(#[$vmeta])*] $Var = $name ),+
            }
        }
    };
}
pub(crate) use named_values;

/// Declares `u64` newtype ids minted by a store: `new`, `get`, `Display` (the number) and,
/// with the `serde` feature, the id as a JSON number.
///
/// Every store mints ids from 1, so the wire refuses 0 (it names no row any store can hold)
/// as well as negative numbers and numbers past `u64::MAX`; each refusal names the id's
/// label, e.g. `invalid value: integer `0`, expected a lan id: an integer from 1 to ...`.
macro_rules! ids {
    ($( $(#[$doc:meta])* $Id:ident as $label:literal, )+) => {$(
        $(#[$doc])*
        ///
        #[doc = concat!(
            "On the wire (feature `serde`) a ", $label, " is a JSON number from 1 to `u64::MAX`; ",
            "0, negative numbers, larger numbers and other types are refused naming the ",
            $label, "."
        )]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $Id(u64);

        impl $Id {
            /// Wraps a raw id.
            #[must_use]
            pub const fn new(id: u64) -> Self {
                Self(id)
            }

            /// The raw id.
            #[must_use]
            pub const fn get(self) -> u64 {
                self.0
            }
        }

        impl core::fmt::Display for $Id {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                core::fmt::Display::fmt(&self.0, f)
            }
        }

        #[cfg(feature = "serde")]
        impl serde::Serialize for $Id {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_u64(self.0)
            }
        }

        #[cfg(feature = "serde")]
        impl<'de> serde::Deserialize<'de> for $Id {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                deserializer
                    .deserialize_u64($crate::names::wire::IdVisitor(concat!(
                        "a ",
                        $label,
                        ": an integer from 1 to 18446744073709551615"
                    )))
                    .map(Self)
            }
        }
    )+};
}
pub(crate) use ids;

/// The visitors behind the ids and versions on the wire.
#[cfg(feature = "serde")]
pub(crate) mod wire {
    use core::fmt;

    use serde::de::{Error, Unexpected, Visitor};

    /// A store-minted id: an integer in `1..=u64::MAX`; `.0` is what serde says it expected.
    pub(crate) struct IdVisitor(pub(crate) &'static str);

    impl Visitor<'_> for IdVisitor {
        type Value = u64;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }

        fn visit_u64<E: Error>(self, v: u64) -> Result<u64, E> {
            if v == 0 {
                Err(E::invalid_value(Unexpected::Unsigned(v), &self))
            } else {
                Ok(v)
            }
        }

        fn visit_i64<E: Error>(self, v: i64) -> Result<u64, E> {
            match u64::try_from(v) {
                Ok(v) => self.visit_u64(v),
                Err(_) => Err(E::invalid_value(Unexpected::Signed(v), &self)),
            }
        }

        fn visit_str<E: Error>(self, _: &str) -> Result<u64, E> {
            // Not `Unexpected::Str`: that would echo the whole string, however long.
            Err(E::invalid_type(Unexpected::Other("a string"), &self))
        }
    }

    /// A version: an integer in `INITIAL_VERSION..=MAX_VERSION`.
    pub(crate) struct VersionVisitor;

    impl Visitor<'_> for VersionVisitor {
        type Value = u64;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(
                f,
                "a version: an integer from {} to {}",
                crate::INITIAL_VERSION,
                crate::MAX_VERSION
            )
        }

        fn visit_u64<E: Error>(self, v: u64) -> Result<u64, E> {
            if (crate::INITIAL_VERSION..=crate::MAX_VERSION).contains(&v) {
                Ok(v)
            } else {
                Err(E::invalid_value(Unexpected::Unsigned(v), &self))
            }
        }

        fn visit_i64<E: Error>(self, v: i64) -> Result<u64, E> {
            match u64::try_from(v) {
                Ok(v) => self.visit_u64(v),
                Err(_) => Err(E::invalid_value(Unexpected::Signed(v), &self)),
            }
        }

        fn visit_str<E: Error>(self, _: &str) -> Result<u64, E> {
            Err(E::invalid_type(Unexpected::Other("a string"), &self))
        }
    }

    /// Deserializes a version (`deserialize_with`), refusing 0 and anything past
    /// [`MAX_VERSION`](crate::MAX_VERSION).
    pub(crate) fn version<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        d.deserialize_u64(VersionVisitor)
    }

    /// [`version`] for an optional version: `null` or absent (with `default`) is `None`.
    #[cfg(feature = "std")]
    pub(crate) fn opt_version<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<Option<u64>, D::Error> {
        struct Opt;
        impl<'de> Visitor<'de> for Opt {
            type Value = Option<u64>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                VersionVisitor.expecting(f)?;
                f.write_str(", or null")
            }
            fn visit_none<E: Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_unit<E: Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_some<D: serde::Deserializer<'de>>(
                self,
                d: D,
            ) -> Result<Self::Value, D::Error> {
                version(d).map(Some)
            }
        }
        d.deserialize_option(Opt)
    }
}
