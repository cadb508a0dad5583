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
