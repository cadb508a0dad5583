//! Declaring a lifecycle once: the [`lifecycle!`](crate::lifecycle!) macro and the
//! [`Lifecycle`] trait every declared status enum implements.
//!
//! A lifecycle is a set of named states and the directed edges between them. One
//! `lifecycle!` invocation writes it down once; from that single declaration come
//!
//! - the runtime enum (`Copy`, one byte) with `ALL`, `as_str`, `parse`,
//!   `can_transition_to`, `legal_next`, `is_terminal`, `Display`, `FromStr`,
//!   `TryFrom<&str>`, `TryFrom<&[u8]>` and (with the `serde` feature) serde as the string,
//! - a module of zero-sized marker types, one per state, with the sealed `State` trait
//!   (`const STATUS`) and the edge trait `CanTransitionTo<T>` implemented once per edge,
//! - optionally a typed carrier `Carrier<S>` with an `Any…` enum to erase and restore it,
//! - the transition table and the diagram text ([`mermaid`], [`dot`]), both read from the
//!   same generated constants.
//!
//! The macro is how this crate declares its own lifecycles (the topology's in
//! [`crate::TopologyStatus`], the mutation queue's in [`crate::MutationState`]), and users
//! can declare theirs the same way:
//!
//! ```
//! topostate::lifecycle! {
//!     /// The life of a door.
//!     pub enum DoorState {
//!         machine = "door",
//!         noun = "state",
//!         markers = pub mod door,
//!         states {
//!             /// The door is shut.
//!             Closed = "closed" => [Open, Locked],
//!             /// The door is open.
//!             Open = "open" => [Closed],
//!             /// The door is locked.
//!             Locked = "locked" => [Closed],
//!         }
//!     }
//! }
//!
//! # fn main() -> Result<(), topostate::ParseStatusError> {
//! assert!(DoorState::Closed.can_transition_to(DoorState::Locked));
//! assert!(!DoorState::Open.can_transition_to(DoorState::Locked));
//! assert_eq!("locked".parse::<DoorState>()?, DoorState::Locked);
//! let err = "ajar".parse::<DoorState>().unwrap_err();
//! assert_eq!(
//!     err.to_string(),
//!     "unknown door state: 'ajar' (expected one of: closed, open, locked)"
//! );
//! # Ok(())
//! # }
//! ```
//!
//! # Syntax
//!
//! ```text
//! lifecycle! {
//!     $(#[attr])* $vis enum Name {
//!         machine = "word used in messages",
//!         noun = "status" | "state" | ...,
//!         markers = $vis mod module_for_marker_types,
//!         // optional: a typed carrier and its erased form
//!         typed = $(#[attr])* $vis struct Carrier(DataType) as $(#[attr])* AnyCarrier,
//!         states {
//!             $(#[attr])* Variant = "stored_string" => [Target, ...],
//!             ...
//!         }
//!     }
//! }
//! ```
//!
//! Every generated name lives either on the enum, in the marker module, or is the carrier
//! and its `Any` form, so several lifecycles can share one module as long as their enum,
//! marker-module and carrier names differ. A state with an empty target list is terminal;
//! a lifecycle may consist of terminal states only. At most 64 states are supported (the
//! table is one `u64` bitmask per state).
//!
//! Invoke it at module level (not inside a function body): the marker module refers to
//! the enum through `super::`.

use alloc::string::String;
use core::fmt::Write as _;
use core::iter::FusedIterator;

/// What every enum declared with [`lifecycle!`](crate::lifecycle!) provides to generic code.
///
/// It is implemented by the macro and by nothing else in practice; generic helpers such as
/// [`LegalNext`], [`mermaid`], [`dot`] and [`ParseStatusError`](crate::ParseStatusError)
/// are written once against it.
///
/// ```
/// use topostate::{Lifecycle, TopologyStatus};
///
/// assert_eq!(TopologyStatus::MACHINE, "topology");
/// assert_eq!(<TopologyStatus as Lifecycle>::ALL.len(), 7);
/// assert_eq!(TopologyStatus::NAMES[5], "tearing_down");
/// ```
pub trait Lifecycle: Copy + Eq + Ord + core::hash::Hash + core::fmt::Debug + 'static {
    /// The name of the machine used in messages, e.g. `"topology"`.
    const MACHINE: &'static str;
    /// What one value is called in messages, e.g. `"status"`.
    const NOUN: &'static str;
    /// Every value, in declaration order.
    const ALL: &'static [Self];
    /// The stored string of every value, in declaration order.
    const NAMES: &'static [&'static str];

    /// The position of `self` in [`Lifecycle::ALL`].
    fn index(self) -> usize;

    /// The legal successors of `self`, as a bitmask over [`Lifecycle::index`].
    fn successor_mask(self) -> u64;

    /// The stored string of `self`.
    fn as_str(self) -> &'static str {
        Self::NAMES[self.index()]
    }

    /// Is `self → next` a legal transition?
    fn can_transition_to(self, next: Self) -> bool {
        self.successor_mask() & (1u64 << next.index()) != 0
    }
}

/// The legal successors of one status, in declaration order; made by `legal_next`.
///
/// It walks a bitmask, so it never allocates.
///
/// ```
/// use topostate::TopologyStatus;
///
/// let next: Vec<_> = TopologyStatus::Active.legal_next().collect();
/// assert_eq!(next, [TopologyStatus::Degraded, TopologyStatus::TearingDown]);
/// ```
#[derive(Clone, Debug)]
pub struct LegalNext<L: Lifecycle> {
    remaining: u64,
    marker: core::marker::PhantomData<L>,
}

impl<L: Lifecycle> LegalNext<L> {
    /// The successors of `from`.
    pub fn new(from: L) -> Self {
        Self {
            remaining: from.successor_mask(),
            marker: core::marker::PhantomData,
        }
    }
}

impl<L: Lifecycle> Iterator for LegalNext<L> {
    type Item = L;

    fn next(&mut self) -> Option<L> {
        if self.remaining == 0 {
            return None;
        }
        let index = self.remaining.trailing_zeros() as usize;
        self.remaining &= self.remaining - 1;
        L::ALL.get(index).copied()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.remaining.count_ones() as usize;
        (n, Some(n))
    }
}

impl<L: Lifecycle> ExactSizeIterator for LegalNext<L> {}
impl<L: Lifecycle> FusedIterator for LegalNext<L> {}

/// Every legal edge of a lifecycle, source by source in declaration order.
///
/// ```
/// use topostate::{lifecycle::edges, TopologyStatus};
///
/// assert_eq!(edges::<TopologyStatus>().count(), 13);
/// ```
pub fn edges<L: Lifecycle>() -> impl Iterator<Item = (L, L)> {
    L::ALL
        .iter()
        .flat_map(|&from| LegalNext::new(from).map(move |to| (from, to)))
}

/// The lifecycle as a Mermaid `stateDiagram-v2`, generated from the declaration.
///
/// Every state is listed, so terminal states without edges still appear.
///
/// ```
/// use topostate::{lifecycle::mermaid, TopologyStatus};
///
/// let text = mermaid::<TopologyStatus>();
/// assert!(text.starts_with("stateDiagram-v2\n"));
/// assert!(text.contains("    pending --> deploying\n"));
/// ```
pub fn mermaid<L: Lifecycle>() -> String {
    let mut out = String::from("stateDiagram-v2\n");
    if let Some(first) = L::ALL.first() {
        // Mermaid cannot write to a String-backed fmt::Write incorrectly; the error is
        // impossible, so it is ignored rather than unwrapped.
        let _ = writeln!(out, "    [*] --> {}", first.as_str());
    }
    for state in L::ALL {
        let _ = writeln!(out, "    {}", state.as_str());
    }
    for (from, to) in edges::<L>() {
        let _ = writeln!(out, "    {} --> {}", from.as_str(), to.as_str());
    }
    for state in L::ALL.iter().filter(|s| s.successor_mask() == 0) {
        let _ = writeln!(out, "    {} --> [*]", state.as_str());
    }
    out
}

/// The lifecycle as a Graphviz DOT `digraph`, generated from the declaration.
///
/// ```
/// use topostate::{lifecycle::dot, TopologyStatus};
///
/// let text = dot::<TopologyStatus>();
/// assert!(text.starts_with("digraph \"topology\" {\n"));
/// assert!(text.contains("    \"failed\" -> \"tearing_down\";\n"));
/// ```
pub fn dot<L: Lifecycle>() -> String {
    let mut out = String::new();
    let _ = writeln!(out, "digraph {} {{", dot_id(L::MACHINE));
    let _ = writeln!(out, "    rankdir=LR;");
    for state in L::ALL {
        let shape = if state.successor_mask() == 0 {
            "doublecircle"
        } else {
            "circle"
        };
        let _ = writeln!(out, "    {} [shape={shape}];", dot_id(state.as_str()));
    }
    for (from, to) in edges::<L>() {
        let _ = writeln!(
            out,
            "    {} -> {};",
            dot_id(from.as_str()),
            dot_id(to.as_str())
        );
    }
    out.push_str("}\n");
    out
}

/// A DOT identifier: always quoted, with `"` and `\` escaped.
fn dot_id(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    out.push('"');
    for c in name.chars() {
        if matches!(c, '"' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// The stored strings of a lifecycle as a SQL list, for a `CHECK (col IN (...))` constraint.
///
/// Names come from the declaration (identifiers and string literals chosen by the crate),
/// and single quotes are doubled anyway.
///
/// ```
/// use topostate::{lifecycle::sql_in_list, MutationState};
///
/// assert_eq!(sql_in_list::<MutationState>(), "'pending', 'applying', 'applied', 'failed'");
/// ```
pub fn sql_in_list<L: Lifecycle>() -> String {
    names_in_list(L::NAMES)
}

/// [`sql_in_list`] for any set of names (e.g. those of a `named_values!` type).
pub(crate) fn names_in_list(names: &[&str]) -> String {
    let mut out = String::new();
    for (i, name) in names.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push('\'');
        out.push_str(&name.replace('\'', "''"));
        out.push('\'');
    }
    out
}

/// Declares a lifecycle once; see the [module documentation](mod@crate::lifecycle) for what it
/// generates and the syntax.
///
/// ```
/// topostate::lifecycle! {
///     /// A job.
///     pub enum JobState {
///         machine = "job",
///         noun = "state",
///         markers = pub mod job,
///         states {
///             /// Waiting.
///             Queued = "queued" => [Done],
///             /// Finished.
///             Done = "done" => [],
///         }
///     }
/// }
///
/// # fn main() {
/// assert!(JobState::Done.is_terminal());
/// assert_eq!(<job::Queued as job::State>::STATUS, JobState::Queued);
/// assert_eq!(JobState::ALL.len(), 2);
/// # }
/// ```
#[macro_export]
macro_rules! lifecycle {
    // ---- entry without a typed carrier ------------------------------------------------
    (
        $(#[$meta:meta])*
        $vis:vis enum $Enum:ident {
            machine = $machine:literal,
            noun = $noun:literal,
            markers = $mvis:vis mod $markers:ident,
            states {
                $(
                    $(#[$vmeta:meta])*
                    $Var:ident = $name:literal => [$($Next:ident),* $(,)?]
                ),+ $(,)?
            }
        }
    ) => {
        $crate::__lifecycle_core! {
            [$(#[$meta])*] [$vis] $Enum [$machine] [$noun] [$mvis] $markers
            [$( [$(#[$vmeta])*] $Var = $name => [$($Next),*] )+]
        }
    };
    // ---- entry with a typed carrier ---------------------------------------------------
    (
        $(#[$meta:meta])*
        $vis:vis enum $Enum:ident {
            machine = $machine:literal,
            noun = $noun:literal,
            markers = $mvis:vis mod $markers:ident,
            typed = $(#[$tmeta:meta])* $tvis:vis struct $Typed:ident($Data:ty)
                as $(#[$ameta:meta])* $Any:ident,
            states {
                $(
                    $(#[$vmeta:meta])*
                    $Var:ident = $name:literal => [$($Next:ident),* $(,)?]
                ),+ $(,)?
            }
        }
    ) => {
        $crate::__lifecycle_core! {
            [$(#[$meta])*] [$vis] $Enum [$machine] [$noun] [$mvis] $markers
            [$( [$(#[$vmeta])*] $Var = $name => [$($Next),*] )+]
        }
        $crate::__lifecycle_typed! {
            $Enum $markers [$(#[$tmeta])*] [$tvis] $Typed [$Data] [$(#[$ameta])*] $Any
            [$( $Var = $name )+]
        }
    };
}

// Not public API.
#[doc(hidden)]
#[macro_export]
macro_rules! __lifecycle_core {
    (
        [$(#[$meta:meta])*] [$vis:vis] $Enum:ident [$machine:literal] [$noun:literal]
        [$mvis:vis] $markers:ident
        [$( [$(#[$vmeta:meta])*] $Var:ident = $name:literal => [$($Next:ident),*] )+]
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[repr(u8)]
        $vis enum $Enum {
            $( $(#[$vmeta])* $Var, )+
        }

        impl $Enum {
            /// Every value, in declaration order.
            pub const ALL: [Self; [$($Enum::$Var),+].len()] = [$($Enum::$Var),+];

            /// The stored string of every value, in declaration order.
            pub const NAMES: [&'static str; [$($Enum::$Var),+].len()] = [$($name),+];

            // Invariant: bit `i` of `SUCCESSORS[s]` is set iff `ALL[s] -> ALL[i]` is declared.
            const SUCCESSORS: [u64; [$($Enum::$Var),+].len()] = {
                assert!(
                    [$($Enum::$Var),+].len() <= 64,
                    "a lifecycle has at most 64 states"
                );
                [$( 0u64 $( | (1u64 << ($Enum::$Next as u32)) )* ),+]
            };

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
                    _ => ::core::result::Result::Err($crate::ParseStatusError::new::<Self>(s)),
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
                        $crate::ParseStatusError::from_bytes::<Self>(bytes),
                    ),
                }
            }

            /// Is `self → next` one of the declared edges? A table lookup, usable in
            /// `const` contexts.
            #[must_use]
            pub const fn can_transition_to(self, next: Self) -> bool {
                Self::SUCCESSORS[self as usize] & (1u64 << (next as u32)) != 0
            }

            /// The legal successors, in declaration order, without allocating.
            pub fn legal_next(self) -> $crate::LegalNext<Self> {
                $crate::LegalNext::new(self)
            }

            /// Has this value no legal successor?
            #[must_use]
            pub const fn is_terminal(self) -> bool {
                Self::SUCCESSORS[self as usize] == 0
            }
        }

        impl $crate::Lifecycle for $Enum {
            const MACHINE: &'static str = $machine;
            const NOUN: &'static str = $noun;
            const ALL: &'static [Self] = &$Enum::ALL;
            const NAMES: &'static [&'static str] = &$Enum::NAMES;

            fn index(self) -> usize {
                self as usize
            }

            fn successor_mask(self) -> u64 {
                Self::SUCCESSORS[self as usize]
            }

            fn as_str(self) -> &'static str {
                $Enum::as_str(self)
            }
        }

        impl $crate::__private::Parse for $Enum {
            const EXPECTING: &'static str = concat!("a ", $machine, " ", $noun, " string");

            fn parse(s: &str) -> ::core::result::Result<Self, $crate::ParseStatusError> {
                $Enum::parse(s)
            }
        }

        $crate::__str_conversions!($Enum);

        impl ::core::convert::TryFrom<&[u8]> for $Enum {
            type Error = $crate::ParseStatusError;

            fn try_from(bytes: &[u8]) -> ::core::result::Result<Self, Self::Error> {
                Self::parse_bytes(bytes)
            }
        }

        $crate::__lifecycle_serde!($Enum);

        #[doc = concat!(
            "Zero-sized marker types, one per ", $machine, " ", $noun,
            ", with the sealed [`State`](", stringify!($markers), "::State) trait and the edge",
            " trait [`CanTransitionTo`](", stringify!($markers), "::CanTransitionTo)."
        )]
        $mvis mod $markers {
            mod sealed {
                pub trait Sealed {}
            }

            #[doc = concat!(
                "A ", $machine, " ", $noun, " as a type.\n\n",
                "This trait is sealed: it can not be implemented by outside types, so the set",
                " of states is exactly the declared one."
            )]
            pub trait State:
                sealed::Sealed + ::core::fmt::Debug + Send + Sync + Sized + 'static
            {
                /// The runtime value this marker stands for.
                const STATUS: super::$Enum;
            }

            #[doc = concat!(
                "`Self: CanTransitionTo<T>` holds exactly when `Self → T` is a declared ",
                $machine, " edge.\n\n",
                "It is implemented once per edge of the declaration and is the bound of every",
                " typed transition, so no transition can exist that the declaration lacks."
            )]
            #[diagnostic::on_unimplemented(
                message = "illegal transition: `{Self}` cannot move to `{T}`",
                label = "this value's state has no declared edge to `{T}`",
                note = "only declared edges are transitions; the legal targets of `{Self}` are the `CanTransitionTo` implementations listed below"
            )]
            pub trait CanTransitionTo<T: State>: State {}

            $(
                $(#[$vmeta])*
                #[doc = concat!("\n\n(type state for `", $name, "`)")]
                #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
                pub enum $Var {}

                impl sealed::Sealed for $Var {}

                impl State for $Var {
                    const STATUS: super::$Enum = super::$Enum::$Var;
                }

                $( impl CanTransitionTo<$Next> for $Var {} )*
            )+
        }
    };
}

// Not public API.
#[doc(hidden)]
#[macro_export]
macro_rules! __lifecycle_typed {
    (
        $Enum:ident $markers:ident [$(#[$tmeta:meta])*] [$tvis:vis] $Typed:ident [$Data:ty]
        [$(#[$ameta:meta])*] $Any:ident [$( $Var:ident = $name:literal )+]
    ) => {
        $(#[$tmeta])*
        #[must_use = "a typed value is consumed by each transition; dropping the result loses it"]
        $tvis struct $Typed<S: $markers::State> {
            data: $Data,
            state: ::core::marker::PhantomData<S>,
        }

        impl<S: $markers::State> $Typed<S> {
            // Invariant: the only constructor; private to the declaring module, which
            // builds non-initial states only through edges or a validated restore.
            const fn from_data(data: $Data) -> Self {
                Self { data, state: ::core::marker::PhantomData }
            }

            /// The runtime status of this typed value (`S::STATUS`).
            #[must_use]
            pub fn status(&self) -> $Enum {
                <S as $markers::State>::STATUS
            }

            /// The data this value carries.
            #[must_use]
            pub fn data(&self) -> &$Data {
                &self.data
            }

            /// Gives up the typed state and returns the data.
            #[must_use]
            pub fn into_data(self) -> $Data {
                self.data
            }

            /// Forgets the static state, keeping it as a runtime value.
            pub fn erase(self) -> $Any {
                $Any::from_status(<S as $markers::State>::STATUS, self.data)
            }
        }

        impl<S: $markers::State> ::core::fmt::Debug for $Typed<S>
        where
            $Data: ::core::fmt::Debug,
        {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.debug_struct(stringify!($Typed))
                    .field("status", &<S as $markers::State>::STATUS)
                    .field("data", &self.data)
                    .finish()
            }
        }

        impl<S: $markers::State> ::core::convert::From<$Typed<S>> for $Any {
            fn from(typed: $Typed<S>) -> Self {
                typed.erase()
            }
        }

        $(#[$ameta])*
        #[derive(Debug)]
        #[must_use]
        $tvis enum $Any {
            $(
                #[doc = concat!("In the `", $name, "` state.")]
                $Var($Typed<$markers::$Var>),
            )+
        }

        impl $Any {
            /// Pairs data with a runtime status (already validated by its type).
            pub fn from_status(status: $Enum, data: $Data) -> Self {
                match status {
                    $( $Enum::$Var => Self::$Var($Typed::from_data(data)), )+
                }
            }

            /// Parses a stored status string and pairs it with the data, in one step.
            ///
            /// # Errors
            ///
            /// [`ParseStatusError`]($crate::ParseStatusError) when `status` is not one of
            /// the declared strings.
            pub fn from_stored(
                status: &str,
                data: $Data,
            ) -> ::core::result::Result<Self, $crate::ParseStatusError> {
                ::core::result::Result::Ok(Self::from_status($Enum::parse(status)?, data))
            }

            /// The runtime status.
            #[must_use]
            pub fn status(&self) -> $Enum {
                match self {
                    $( Self::$Var(_) => $Enum::$Var, )+
                }
            }

            /// The data, whatever the status.
            #[must_use]
            pub fn data(&self) -> &$Data {
                match self {
                    $( Self::$Var(t) => t.data(), )+
                }
            }

            /// Takes the data out, whatever the status.
            #[must_use]
            pub fn into_data(self) -> $Data {
                match self {
                    $( Self::$Var(t) => t.into_data(), )+
                }
            }

            /// Turns the value back into its typed form if its status is `S`.
            ///
            /// # Errors
            ///
            /// [`StatusMismatch`]($crate::StatusMismatch) naming the expected and found
            /// statuses, holding the value so nothing is lost.
            pub fn restore<S: $markers::State>(
                self,
            ) -> ::core::result::Result<$Typed<S>, $crate::StatusMismatch<Self, $Enum>> {
                let found = self.status();
                if found == <S as $markers::State>::STATUS {
                    ::core::result::Result::Ok($Typed::from_data(self.into_data()))
                } else {
                    ::core::result::Result::Err($crate::StatusMismatch::new(
                        <S as $markers::State>::STATUS,
                        found,
                        self,
                    ))
                }
            }
        }
    };
}

// Not public API.
/// The string conversions of a named enum with `as_str` and `parse` (a lifecycle's runtime
/// enum, or a `named_values!` type): `Display`, `AsRef<str>`, `FromStr`, `TryFrom<&str>`.
#[doc(hidden)]
#[macro_export]
macro_rules! __str_conversions {
    ($Enum:ident) => {
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

            fn from_str(s: &str) -> ::core::result::Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl ::core::convert::TryFrom<&str> for $Enum {
            type Error = $crate::ParseStatusError;

            fn try_from(s: &str) -> ::core::result::Result<Self, Self::Error> {
                Self::parse(s)
            }
        }
    };
}

// Not public API.
#[cfg(feature = "serde")]
#[doc(hidden)]
#[macro_export]
macro_rules! __lifecycle_serde {
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

// Not public API.
#[cfg(not(feature = "serde"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __lifecycle_serde {
    ($Enum:ident) => {};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_ids_are_quoted_and_escaped() {
        assert_eq!(dot_id("traffic light"), "\"traffic light\"");
        assert_eq!(dot_id(r#"a"b\c"#), r#""a\"b\\c""#);
    }
}
