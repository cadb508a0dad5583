//! No edge can be added from outside: `impl CanTransitionTo<Active> for Pending` is rejected by the orphan rule.
use topostate::state::{Active, CanTransitionTo, Pending};

impl CanTransitionTo<Active> for Pending {}

fn main() {}
