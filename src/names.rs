//! A closed set of named values without edges (operation names, runtime states), with one
//! `as_str` match and one parse function behind every conversion; and the store-minted ids.

/// Declares a `Copy` enum whose values are stored as fixed strings. Not a lifecycle: there
/// are no edges, only names.
#[doc(hidden)]
#[macro_export]
macro_rules! named_values {
    (
        $(#[$meta:meta])*
        $vis:vis enum $Enum:ident as $machine:literal $noun:literal {
            $( $(#[$vmeta:meta])* $Var:ident = $name:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        $vis enum $Enum {
            $( $(#[$vmeta])* $Var, )+
        }

        impl $Enum {
            /// Every value, in declaration order.
            pub const ALL: [Self; [$($Enum::$Var),+].len()] = [$($Enum::$Var),+];

            /// Every value's stored name, in declaration order.
            pub const NAMES: [&'static str; [$($Enum::$Var),+].len()] = [$($name),+];

            /// The stored name.
            #[must_use]
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( Self::$Var => $name, )+
                }
            }

            /// Parses a stored name; the one parse function behind `FromStr`, `TryFrom`
            /// and serde.
            ///
            /// # Errors
            ///
            /// [`ParseStatusError`]($crate::ParseStatusError) naming the input and listing
            /// the accepted names.
            pub fn parse(s: &str) -> ::core::result::Result<Self, $crate::ParseStatusError> {
                match s {
                    $( $name => ::core::result::Result::Ok(Self::$Var), )+
                    _ => ::core::result::Result::Err($crate::ParseStatusError::new_named(
                        $machine, $noun, s, &Self::NAMES,
                    )),
                }
            }
        }

        impl $crate::__private::Parse for $Enum {
            const EXPECTING: &'static str = concat!("a ", $machine, " ", $noun, " string");

            fn parse(s: &str) -> ::core::result::Result<Self, $crate::ParseStatusError> {
                $Enum::parse(s)
            }
        }

        $crate::__lifecycle_serde!($Enum);

        $crate::__str_conversions!($Enum);

        impl ::core::convert::TryFrom<&[u8]> for $Enum {
            type Error = $crate::ParseStatusError;

            fn try_from(bytes: &[u8]) -> ::core::result::Result<Self, Self::Error> {
                match ::core::str::from_utf8(bytes) {
                    ::core::result::Result::Ok(s) => Self::parse(s),
                    ::core::result::Result::Err(_) => ::core::result::Result::Err(
                        $crate::ParseStatusError::from_bytes_named(
                            $machine,
                            $noun,
                            bytes,
                            &Self::NAMES,
                        ),
                    ),
                }
            }
        }
    };
}

/// Declares `u64` newtype ids minted by a store: `new`, `get` and `Display` (the number).
macro_rules! ids {
    ($( $(#[$doc:meta])* $Id:ident, )+) => {$(
        $(#[$doc])*
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
    )+};
}
pub(crate) use ids;
