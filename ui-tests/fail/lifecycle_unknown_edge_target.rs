//! `lifecycle!` refuses an edge to a state that is not declared, naming the edge.
topostate::lifecycle! {
    pub enum Door {
        machine = "door",
        noun = "state",
        markers = pub mod door,
        states {
            Open = "open" => [Closed],
            Closed = "closed" => [Open, Locked],
        }
    }
}

fn main() {}
