//! `state::State` is sealed: an outside type cannot become a topology status.
use topostate::{state, TopologyStatus};

#[derive(Debug)]
pub struct Paused;

impl state::State for Paused {
    const STATUS: TopologyStatus = TopologyStatus::Active;
}

fn main() {}
