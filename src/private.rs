//! Items the exported macros need; not public API.

/// A type parsed from one stored string by one function.
pub trait Parse: Sized {
    /// What serde says it expected, e.g. "a topology status string".
    const EXPECTING: &'static str;

    /// The one parse function.
    fn parse(s: &str) -> Result<Self, crate::ParseStatusError>;
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
