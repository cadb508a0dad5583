//! The live-edit mutation queue: its lifecycle, declared with the same macro as the
//! topology's, and the operation names.

crate::lifecycle! {
    /// The state of a queued live edit (a mutation).
    ///
    /// Deliberately not `#[non_exhaustive]`: the queue's four states are a closed set, so
    /// an exhaustive `match` on them is a feature, and a new state is a breaking change.
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

crate::named_values! {
    /// A live-edit operation, parsed and validated from its stored name.
    ///
    /// Deliberately not `#[non_exhaustive]`: the operations are the applier's closed set,
    /// so an applier's exhaustive `match` fails to compile, rather than skipping, when one
    /// is added.
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
    pub enum MutationOp as "mutation" "op" {
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
}
