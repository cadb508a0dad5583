//! `lifecycle!` refuses a state declared twice, naming it (next to rustc's own E0428 and
//! the conflicts the repeated marker type causes).
topostate::lifecycle! {
    pub enum Door {
        machine = "door",
        noun = "state",
        markers = pub mod door,
        states {
            Open = "open" => [Closed],
            Closed = "closed" => [Open],
            Open = "ajar" => [],
        }
    }
}

fn main() {}
