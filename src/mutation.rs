//! The live-edit mutation queue: its lifecycle, declared with the same macro as the
//! topology's, and the operation names.

use core::fmt;

crate::lifecycle! {
    /// The state of a queued live edit (a mutation).
    ///
    /// ```
    /// use topostate::MutationState;
    ///
    /// assert!(MutationState::Pending.can_transition_to(MutationState::Applying));
    /// assert!(!MutationState::Pending.can_transition_to(MutationState::Applied));
    /// assert_eq!(
    ///     "done".parse::<MutationState>().unwrap_err().to_string(),
    ///     "unknown mutation state: 'done' (expected one of: pending, applying, applied, failed)"
    /// );
    /// ```
    pub enum MutationState {
        machine = "mutation",
        noun = "state",
        markers = pub mod mutation_state,
        states {
            /// Queued, waiting for the applier.
            Pending = "pending" => [Applying],
            /// Claimed by the applier; at most one per topology at a time.
            Applying = "applying" => [Applied, Failed],
            /// Applied to the live topology.
            Applied = "applied" => [],
            /// Refused or failed while applying; the reason is recorded.
            Failed = "failed" => [],
        }
    }
}

macro_rules! ops {
    ($( $(#[$doc:meta])* $Var:ident = $name:literal, )+) => {
        /// A live-edit operation, parsed and validated from its stored name.
        ///
        /// ```
        /// use topostate::MutationOp;
        ///
        /// assert_eq!("attach_decky".parse::<MutationOp>()?, MutationOp::AttachDecky);
        /// assert_eq!(MutationOp::ALL.len(), 8);
        /// let err = "noop".parse::<MutationOp>().unwrap_err();
        /// assert!(err.to_string().starts_with("unknown mutation op: 'noop'"));
        /// # Ok::<(), topostate::ParseStatusError>(())
        /// ```
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum MutationOp {
            $( $(#[$doc])* $Var, )+
        }

        impl MutationOp {
            /// Every operation, in declaration order.
            pub const ALL: [Self; [$(Self::$Var),+].len()] = [$(Self::$Var),+];

            /// Every operation's stored name, in declaration order.
            pub const NAMES: [&'static str; [$(Self::$Var),+].len()] = [$($name),+];

            /// The stored name.
            #[must_use]
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( Self::$Var => $name, )+
                }
            }

            /// Parses a stored name.
            ///
            /// # Errors
            ///
            /// [`ParseStatusError`](crate::ParseStatusError) naming the input and listing
            /// the eight operation names.
            pub fn parse(s: &str) -> Result<Self, crate::ParseStatusError> {
                match s {
                    $( $name => Ok(Self::$Var), )+
                    _ => Err(crate::ParseStatusError::new_named(
                        "mutation", "op", s, &Self::NAMES,
                    )),
                }
            }
        }
    };
}

ops! {
    /// Add a LAN to a live topology.
    AddLan = "add_lan",
    /// Remove a LAN (not a decky's home LAN).
    RemoveLan = "remove_lan",
    /// Add a decky.
    AddDecky = "add_decky",
    /// Attach a decky to another LAN.
    AttachDecky = "attach_decky",
    /// Detach a decky from a LAN (not its home LAN).
    DetachDecky = "detach_decky",
    /// Remove a decky.
    RemoveDecky = "remove_decky",
    /// Change a decky's settings.
    UpdateDecky = "update_decky",
    /// Change a LAN's settings.
    UpdateLan = "update_lan",
}

impl crate::__private::Parse for MutationOp {
    fn parse(s: &str) -> Result<Self, crate::ParseStatusError> {
        Self::parse(s)
    }
}

crate::__lifecycle_serde!(MutationOp);

impl fmt::Display for MutationOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl core::str::FromStr for MutationOp {
    type Err = crate::ParseStatusError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<&str> for MutationOp {
    type Error = crate::ParseStatusError;

    fn try_from(s: &str) -> Result<Self, Self::Error> {
        Self::parse(s)
    }
}
