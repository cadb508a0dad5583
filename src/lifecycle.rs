//! Declaring a lifecycle once: the [`lifecycle!`](crate::lifecycle!) macro and the
//! [`Lifecycle`] trait every declared status enum implements.
//!
//! A lifecycle is a set of named states and the directed edges between them. One
//! `lifecycle!` invocation writes it down once; from that single declaration come
//!
//! - the runtime enum (`Copy`, one byte) with `ALL`, `NAMES`, `as_str`, `parse`,
//!   `parse_bytes`, `can_transition_to`, `legal_next`, `is_terminal`, `Display`, `FromStr`,
//!   `TryFrom<&str>`, `TryFrom<&[u8]>` and (with the `serde` feature) serde as the string,
//! - a module of zero-sized marker types, one per state, with the sealed `State` trait
//!   (`const STATUS`) and the edge trait `CanTransitionTo<T>` implemented once per edge,
//! - the transition table and the diagram text ([`mermaid`], [`dot`]), both read from the
//!   same generated constants.
//!
//! Nothing else: a typed carrier such as [`Topology<S>`](crate::Topology) is an ordinary
//! struct written by hand over the markers, its transitions bounded by `CanTransitionTo`
//! (see `src/topology.rs` for the pattern: one private constructor, one bounded `move_to`,
//! an `Any…` enum to erase and restore).
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
//!         states {
//!             $(#[attr])* Variant = "stored_string" => [Target, ...],
//!             ...
//!         }
//!     }
//! }
//! ```
//!
//! A state's attributes (usually its doc comment) apply to both its variant and its
//! marker type. Every generated name lives either on the enum or in the marker module, so several
//! lifecycles can share one module as long as their enum and marker-module names differ. A
//! state with an empty target list is terminal; a lifecycle may consist of terminal states
//! only.
//!
//! Invoke it at module level (not inside a function body): the marker module refers to
//! the enum through `super::`.
//!
//! # Mistakes it refuses
//!
//! Each is a compile error naming the lifecycle and the offending state, with a UI test in
//! `ui-tests/fail/lifecycle_*.rs`:
//!
//! - **a state declared twice** (`` `Door` declares the state `Open` twice ``); rustc also
//!   reports the repeated name itself (E0428).
//! - **two states with the same stored string**: the later one could never be read back
//!   (`` `Door::Ajar` reuses the stored string "open" of an earlier state ``). Fix: give
//!   every state its own string.
//! - **an edge to an undeclared state** (`` the edge `Closed => Ajar` leads to `Ajar`, which
//!   is not a declared state ``). Fix the name or declare the state. An edge is written
//!   under its source, so its source is always a declared state.
//! - **more than 64 states**: the transition table holds one `u64` bitmask per state.
//!
//! The string checks are `const` assertions over the generated tables (a `macro_rules!`
//! macro cannot compare identifiers while expanding); the edge check is a match on the
//! declared names.

use alloc::string::String;
use core::fmt::Write as _;
use core::iter::FusedIterator;

/// What every enum declared with [`lifecycle!`](crate::lifecycle!) provides to generic code.
///
/// Generic helpers such as [`LegalNext`], [`mermaid`], [`dot`], [`edges`],
/// [`ParseStatusError`](crate::ParseStatusError) and
/// [`StatusMismatch`](crate::StatusMismatch) are written once against it.
///
/// # Sealed
///
/// This trait is sealed: it can not be implemented by hand, only by declaring a lifecycle
/// with [`lifecycle!`](crate::lifecycle!). The helpers above trust facts that the macro
/// checks at compile time and a hand-written impl could break: `index` is the position in
/// `ALL`, `NAMES` has one distinct string per value, there are at most 64 values, and
/// `successor_mask` sets only bits of declared values. A lifecycle of your own is one macro
/// call away, so sealing takes nothing from users, and it lets the trait grow methods
/// without breaking anyone.
///
/// ```
/// use topostate::{Lifecycle, TopologyStatus};
///
/// assert_eq!(TopologyStatus::MACHINE, "topology");
/// assert_eq!(<TopologyStatus as Lifecycle>::ALL.len(), 7);
/// assert_eq!(TopologyStatus::NAMES[5], "tearing_down");
/// ```
pub trait Lifecycle:
    crate::__private::Sealed + Copy + Eq + Ord + core::hash::Hash + core::fmt::Debug + 'static
{
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
#[must_use]
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
/// generates, the syntax and the mistakes it refuses.
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
        $crate::__private::named_enum! {
            [$(#[$meta])* #[repr(u8)]] $vis enum $Enum as $machine $noun {
                $( [$(#[$vmeta])*] $Var = $name ),+
            }
        }

        const _: () = if $Enum::ALL.len() > 64 {
            ::core::panic!("{}", concat!(
                "lifecycle `", stringify!($Enum), "` declares more than 64 states; its",
                " transition table holds one `u64` bitmask per state"
            ));
        };

        impl $Enum {
            // Invariant: bit `i` of `SUCCESSORS[s]` is set iff `ALL[s] -> ALL[i]` is declared.
            const SUCCESSORS: [u64; [$($Enum::$Var),+].len()] = {
                // One arm per declared state; an unknown target adds no bit here and is
                // reported once, by the marker module's edge macro below.
                macro_rules! successor_bit {
                    $( ($Var) => { $crate::__private::bit($Enum::$Var as usize) }; )+
                    ($unknown:ident) => { 0u64 };
                }
                [$( 0u64 $( | successor_bit!($Next) )* ),+]
            };

            /// Is `self → next` one of the declared edges? A table lookup, usable in
            /// `const` contexts.
            #[must_use]
            pub const fn can_transition_to(self, next: Self) -> bool {
                Self::SUCCESSORS[self as usize] & $crate::__private::bit(next as usize) != 0
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

        impl $crate::__private::Sealed for $Enum {}

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
                sealed::Sealed
                + ::core::fmt::Debug
                + ::core::marker::Send
                + ::core::marker::Sync
                + ::core::marker::Sized
                + 'static
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

            // One arm per declared state, so an edge to anything else is refused here, once,
            // naming the edge, instead of as a missing type.
            macro_rules! edge {
                $( ($from:ident => $Var) => { impl CanTransitionTo<$Var> for $from {} }; )+
                ($from:ident => $unknown:ident) => {
                    ::core::compile_error!(concat!(
                        "lifecycle `", stringify!($Enum), "`: the edge `", stringify!($from),
                        " => ", stringify!($unknown), "` leads to `", stringify!($unknown),
                        "`, which is not a declared state"
                    ));
                };
            }

            $(
                $(#[$vmeta])*
                #[doc = concat!("\n\n(type state for `", $name, "`)")]
                #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
                pub enum $Var {}

                impl sealed::Sealed for $Var {}

                impl State for $Var {
                    const STATUS: super::$Enum = super::$Enum::$Var;
                }

                $( edge!($Var => $Next); )*
            )+
        }
    };
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
