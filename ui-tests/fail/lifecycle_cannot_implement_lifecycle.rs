//! `Lifecycle` is sealed: a hand-written impl does not compile; `lifecycle!` is the way in.
use topostate::Lifecycle;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Door {
    Open,
}

impl Lifecycle for Door {
    const MACHINE: &'static str = "door";
    const NOUN: &'static str = "state";
    const ALL: &'static [Self] = &[Door::Open];
    const NAMES: &'static [&'static str] = &["open"];

    fn index(self) -> usize {
        0
    }

    fn successor_mask(self) -> u64 {
        0
    }
}

fn main() {}
