//! Items the exported macros need; not public API.
//!
//! The shared core of [`lifecycle!`](crate::lifecycle!) and the crate's `named_values!`
//! lives here: [`named_enum!`] writes a closed set of named values (the enum, its one
//! `as_str` match and one parse function, every conversion through them, serde, and the
//! compile-time checks on the declaration). `lifecycle!` adds the edges on top.

/// A type parsed from one stored string by one function.
pub trait Parse: Sized {
    /// What serde says it expected, e.g. "a topology status string".
    const EXPECTING: &'static str;

    /// The one parse function.
    fn parse(s: &str) -> Result<Self, crate::ParseStatusError>;
}

/// The seal of [`Lifecycle`](crate::Lifecycle): implemented by `lifecycle!` and nothing else.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a lifecycle declared with `topostate::lifecycle!`",
    label = "`Lifecycle` cannot be implemented by hand",
    note = "`Lifecycle` is sealed: declare the states and edges with `topostate::lifecycle!`, which implements it"
)]
pub trait Sealed {}

/// Is `a` the same string as `b`? (`==` on `str` is not callable in `const`.)
#[must_use]
pub const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// Is `list[index]` the first occurrence of its string in `list`? False when an earlier
/// entry is the same string, or when `index` is out of range.
#[must_use]
pub const fn is_first(list: &[&str], index: usize) -> bool {
    if index >= list.len() {
        return false;
    }
    let mut i = 0;
    while i < index {
        if str_eq(list[i], list[index]) {
            return false;
        }
        i += 1;
    }
    true
}

/// The bit of a transition table for the state at `index`; nothing for an index the
/// `u64` cannot hold (that lifecycle is refused by its own check, with a clear message,
/// rather than by a shift overflow).
#[must_use]
pub const fn bit(index: usize) -> u64 {
    if index < 64 { 1u64 << index } else { 0 }
}

pub use crate::__named_enum as named_enum;
pub use crate::__named_serde as named_serde;

/// The shared core of `lifecycle!` and `named_values!`: a `Copy` enum stored as fixed
/// strings.
///
/// It generates the enum (with the given attributes), `ALL`, `NAMES`, `as_str` (the one
/// match), `parse` (the one parse function) and `parse_bytes`, then `Display`, `AsRef<str>`,
/// `FromStr`, `TryFrom<&str>`, `TryFrom<&[u8]>` and serde, all through those two; and the
/// checks that refuse, at compile time, a value declared twice or two values stored as the
/// same string (the later one could never be read back).
#[doc(hidden)]
#[macro_export]
macro_rules! __named_enum {
    (
        [$(#[$meta:meta])*] $vis:vis enum $Enum:ident as $machine:literal $noun:literal {
            $( [$(#[$vmeta:meta])*] $Var:ident = $name:literal ),+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        $vis enum $Enum {
            $( $(#[$vmeta])* $Var, )+
        }

        // Trait signatures name `ParseStatusError` rather than `Self::Err`/`Self::Error`,
        // which a state called `Err` or `Error` would make ambiguous.
        // A const item is always evaluated, even by `cargo check`, so a bad declaration
        // fails wherever it is compiled. `panic!("{}", ..)` keeps a stored string holding
        // braces from being read as a format string.
        const _: () = {
            let idents: &[&str] = &[$(stringify!($Var)),+];
            let names: &[&str] = &[$($name),+];
            let mut i = 0;
            $(
                if !$crate::__private::is_first(idents, i) {
                    ::core::panic!("{}", concat!(
                        "`", stringify!($Enum), "` declares the ", $noun, " `",
                        stringify!($Var), "` twice; every ", $noun, " needs its own name"
                    ));
                }
                if !$crate::__private::is_first(names, i) {
                    ::core::panic!("{}", concat!(
                        "`", stringify!($Enum), "::", stringify!($Var),
                        "` reuses the stored string \"", $name, "\" of an earlier ", $noun,
                        "; every ", $noun, " needs its own string, or the later one could",
                        " never be read back"
                    ));
                }
                i += 1;
            )+
            let _ = i;
        };

        impl $Enum {
            /// Every value, in declaration order.
            pub const ALL: [Self; [$($Enum::$Var),+].len()] = [$($Enum::$Var),+];

            /// The stored string of every value, in declaration order.
            pub const NAMES: [&'static str; [$($Enum::$Var),+].len()] = [$($name),+];

            /// The string this value is stored and sent as.
            #[must_use]
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( Self::$Var => $name, )+
                }
            }

            /// Parses a stored string; the only parse function, behind `FromStr`,
            /// `TryFrom` and serde.
            ///
            /// # Errors
            ///
            /// [`ParseStatusError`]($crate::ParseStatusError) naming the input and
            /// listing the accepted values when `s` is not exactly one of them.
            // Inlined into callers so the valid path is a bare `match`; the cold error
            // constructor stays out of line.
            #[inline(always)]
            pub fn parse(s: &str) -> ::core::result::Result<Self, $crate::ParseStatusError> {
                match s {
                    $( $name => ::core::result::Result::Ok(Self::$Var), )+
                    _ => ::core::result::Result::Err($crate::ParseStatusError::new_named(
                        $machine, $noun, s, &Self::NAMES,
                    )),
                }
            }

            /// Parses stored bytes (they must be the UTF-8 of one accepted string).
            ///
            /// # Errors
            ///
            /// [`ParseStatusError`]($crate::ParseStatusError) naming the input (lossily
            /// decoded) when the bytes are not exactly one accepted string.
            pub fn parse_bytes(
                bytes: &[u8],
            ) -> ::core::result::Result<Self, $crate::ParseStatusError> {
                match ::core::str::from_utf8(bytes) {
                    ::core::result::Result::Ok(s) => Self::parse(s),
                    ::core::result::Result::Err(_) => ::core::result::Result::Err(
                        $crate::ParseStatusError::from_bytes_named(
                            $machine, $noun, bytes, &Self::NAMES,
                        ),
                    ),
                }
            }
        }

        impl $crate::__private::Parse for $Enum {
            const EXPECTING: &'static str = concat!("a ", $machine, " ", $noun, " string");

            fn parse(s: &str) -> ::core::result::Result<Self, $crate::ParseStatusError> {
                $Enum::parse(s)
            }
        }

        impl ::core::fmt::Display for $Enum {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::core::convert::AsRef<str> for $Enum {
            fn as_ref(&self) -> &str {
                self.as_str()
            }
        }

        impl ::core::str::FromStr for $Enum {
            type Err = $crate::ParseStatusError;

            fn from_str(s: &str) -> ::core::result::Result<Self, $crate::ParseStatusError> {
                Self::parse(s)
            }
        }

        impl ::core::convert::TryFrom<&str> for $Enum {
            type Error = $crate::ParseStatusError;

            fn try_from(s: &str) -> ::core::result::Result<Self, $crate::ParseStatusError> {
                Self::parse(s)
            }
        }

        impl ::core::convert::TryFrom<&[u8]> for $Enum {
            type Error = $crate::ParseStatusError;

            fn try_from(bytes: &[u8]) -> ::core::result::Result<Self, $crate::ParseStatusError> {
                Self::parse_bytes(bytes)
            }
        }

        $crate::__private::named_serde!($Enum);
    };
}

/// Serde as the stored string, through `as_str` and `parse`; nothing without this crate's
/// `serde` feature (the feature of this crate decides, not the caller's).
#[cfg(feature = "serde")]
#[doc(hidden)]
#[macro_export]
macro_rules! __named_serde {
    ($Enum:ident) => {
        impl $crate::__private::serde::Serialize for $Enum {
            fn serialize<Ser>(&self, serializer: Ser) -> ::core::result::Result<Ser::Ok, Ser::Error>
            where
                Ser: $crate::__private::serde::Serializer,
            {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> $crate::__private::serde::Deserialize<'de> for $Enum {
            fn deserialize<De>(deserializer: De) -> ::core::result::Result<Self, De::Error>
            where
                De: $crate::__private::serde::Deserializer<'de>,
            {
                deserializer.deserialize_str($crate::__private::LifecycleVisitor::<Self>::new())
            }
        }
    };
}

/// See the `serde` version above.
#[cfg(not(feature = "serde"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __named_serde {
    ($Enum:ident) => {};
}

#[cfg(feature = "serde")]
pub use serde;

#[cfg(feature = "serde")]
pub use self::visitor::LifecycleVisitor;

#[cfg(feature = "serde")]
mod visitor {
    use core::fmt;
    use core::marker::PhantomData;

    use super::Parse;

    /// Deserializes any [`Parse`] type from a string or bytes through its parse function.
    #[derive(Debug)]
    pub struct LifecycleVisitor<T>(PhantomData<T>);

    impl<T> LifecycleVisitor<T> {
        /// The visitor.
        #[must_use]
        pub const fn new() -> Self {
            Self(PhantomData)
        }
    }

    impl<T> Default for LifecycleVisitor<T> {
        fn default() -> Self {
            Self::new()
        }
    }

    impl<T: Parse> serde::de::Visitor<'_> for LifecycleVisitor<T> {
        type Value = T;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(T::EXPECTING)
        }

        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<T, E> {
            T::parse(v).map_err(E::custom)
        }

        fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<T, E> {
            match core::str::from_utf8(v) {
                Ok(s) => self.visit_str(s),
                Err(_) => Err(E::invalid_value(serde::de::Unexpected::Bytes(v), &self)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn str_eq_compares_whole_strings() {
        assert!(str_eq("open", "open"));
        assert!(!str_eq("open", "opens"));
        assert!(!str_eq("open", "oPen"));
        assert!(str_eq("", ""));
    }

    #[test]
    fn is_first_spots_only_later_repeats() {
        let list = ["a", "b", "a", "c"];
        assert!(is_first(&list, 0));
        assert!(is_first(&list, 1));
        assert!(!is_first(&list, 2));
        assert!(is_first(&list, 3));
        assert!(!is_first(&list, 4), "out of range is never a first");
    }

    #[test]
    fn bit_stops_at_the_table_width() {
        assert_eq!(bit(0), 1);
        assert_eq!(bit(63), 1 << 63);
        assert_eq!(bit(64), 0);
    }
}
