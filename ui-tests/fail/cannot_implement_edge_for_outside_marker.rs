//! An outside marker cannot gain edges: `CanTransitionTo` requires the sealed `State` supertrait.
use topostate::state::{Active, CanTransitionTo};

#[derive(Debug)]
pub struct Paused;

impl CanTransitionTo<Active> for Paused {}

fn main() {}
