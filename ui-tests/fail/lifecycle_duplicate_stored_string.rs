//! `lifecycle!` refuses two states stored as the same string (the later one could never be
//! read back), naming the state and the string.
topostate::lifecycle! {
    pub enum Door {
        machine = "door",
        noun = "state",
        markers = pub mod door,
        states {
            Open = "open" => [Closed, Ajar],
            Closed = "closed" => [Open],
            Ajar = "open" => [Closed],
        }
    }
}

fn main() {}
