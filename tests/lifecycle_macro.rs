//! The `lifecycle!` macro on lifecycles of its own, declared here: everything it generates
//! is derived from the declaration and agrees with a table written out by hand, it is
//! hygienic, and it holds the largest table it accepts (64 states). The mistakes it refuses
//! are the `ui-tests/fail/lifecycle_*.rs` fixtures.

use std::collections::BTreeSet;

use static_assertions::{assert_eq_size, assert_impl_all, assert_not_impl_any};
use topostate::lifecycle::{dot, edges, mermaid, sql_in_list};
use topostate::{Lifecycle, MutationOp, MutationState, ParseStatusError, StatusMismatch};

type TestResult = Result<(), Box<dyn std::error::Error>>;

topostate::lifecycle! {
    /// A support ticket: a toy lifecycle unlike the topology's.
    pub enum Ticket {
        machine = "ticket",
        noun = "state",
        markers = pub mod ticket,
        states {
            /// Filed, nobody on it.
            Open = "open" => [InProgress, Closed],
            /// Someone is on it.
            InProgress = "in_progress" => [Review, Open],
            /// Waiting for a second pair of eyes.
            Review = "review" => [InProgress, Closed],
            /// Done; terminal.
            Closed = "closed" => [],
        }
    }
}

/// The ticket lifecycle written out by hand, not derived from the macro.
const TICKET_STATES: [&str; 4] = ["open", "in_progress", "review", "closed"];
const TICKET_EDGES: [(&str, &str); 6] = [
    ("open", "in_progress"),
    ("open", "closed"),
    ("in_progress", "review"),
    ("in_progress", "open"),
    ("review", "in_progress"),
    ("review", "closed"),
];

// A second lifecycle in the same module whose state names shadow the prelude (`Ok`, `Some`,
// `Send`, `Result`, ...) and whose stored strings hold braces and quotes: the generated code
// names everything by full path and never reads a stored string as a format string.
topostate::lifecycle! {
    enum Awkward {
        machine = "awkward",
        noun = "case",
        markers = mod awkward,
        states {
            Ok = "ok" => [Err, Some],
            Err = "{err}" => [None],
            Some = "some \"quoted\"" => [Send, Sync],
            None = "none" => [Result],
            Send = "send" => [],
            Sync = "sync" => [Ok],
            Result = "result" => [Error],
            Error = "error" => [],
        }
    }
}

topostate::lifecycle! {
    /// The largest lifecycle the table holds: 64 states in a ring.
    pub enum Ring {
        machine = "ring",
        noun = "position",
        markers = pub mod ring,
        states {
            S0 = "s0" => [S1], S1 = "s1" => [S2], S2 = "s2" => [S3], S3 = "s3" => [S4],
            S4 = "s4" => [S5], S5 = "s5" => [S6], S6 = "s6" => [S7], S7 = "s7" => [S8],
            S8 = "s8" => [S9], S9 = "s9" => [S10], S10 = "s10" => [S11], S11 = "s11" => [S12],
            S12 = "s12" => [S13], S13 = "s13" => [S14], S14 = "s14" => [S15], S15 = "s15" => [S16],
            S16 = "s16" => [S17], S17 = "s17" => [S18], S18 = "s18" => [S19], S19 = "s19" => [S20],
            S20 = "s20" => [S21], S21 = "s21" => [S22], S22 = "s22" => [S23], S23 = "s23" => [S24],
            S24 = "s24" => [S25], S25 = "s25" => [S26], S26 = "s26" => [S27], S27 = "s27" => [S28],
            S28 = "s28" => [S29], S29 = "s29" => [S30], S30 = "s30" => [S31], S31 = "s31" => [S32],
            S32 = "s32" => [S33], S33 = "s33" => [S34], S34 = "s34" => [S35], S35 = "s35" => [S36],
            S36 = "s36" => [S37], S37 = "s37" => [S38], S38 = "s38" => [S39], S39 = "s39" => [S40],
            S40 = "s40" => [S41], S41 = "s41" => [S42], S42 = "s42" => [S43], S43 = "s43" => [S44],
            S44 = "s44" => [S45], S45 = "s45" => [S46], S46 = "s46" => [S47], S47 = "s47" => [S48],
            S48 = "s48" => [S49], S49 = "s49" => [S50], S50 = "s50" => [S51], S51 = "s51" => [S52],
            S52 = "s52" => [S53], S53 = "s53" => [S54], S54 = "s54" => [S55], S55 = "s55" => [S56],
            S56 = "s56" => [S57], S57 = "s57" => [S58], S58 = "s58" => [S59], S59 = "s59" => [S60],
            S60 = "s60" => [S61], S61 = "s61" => [S62], S62 = "s62" => [S63], S63 = "s63" => [S0],
        }
    }
}

// ---- the markers: zero-sized, sealed `State`, one `CanTransitionTo` per declared edge ------

assert_eq_size!(ticket::Open, ());
assert_eq_size!(Ticket, u8);
assert_impl_all!(ticket::Open: ticket::State, Copy, Send, Sync, core::fmt::Debug);
assert_impl_all!(ticket::Open: ticket::CanTransitionTo<ticket::InProgress>);
assert_impl_all!(ticket::Open: ticket::CanTransitionTo<ticket::Closed>);
assert_impl_all!(ticket::InProgress: ticket::CanTransitionTo<ticket::Review>);
assert_impl_all!(ticket::InProgress: ticket::CanTransitionTo<ticket::Open>);
assert_impl_all!(ticket::Review: ticket::CanTransitionTo<ticket::InProgress>);
assert_impl_all!(ticket::Review: ticket::CanTransitionTo<ticket::Closed>);
assert_not_impl_any!(ticket::Open: ticket::CanTransitionTo<ticket::Review>);
assert_not_impl_any!(ticket::Open: ticket::CanTransitionTo<ticket::Open>);
assert_not_impl_any!(ticket::Closed: ticket::CanTransitionTo<ticket::Open>);
assert_not_impl_any!(ticket::Closed: ticket::CanTransitionTo<ticket::Closed>);
assert_impl_all!(ring::S63: ring::CanTransitionTo<ring::S0>);
assert_not_impl_any!(ring::S0: ring::CanTransitionTo<ring::S63>);

/// Compiles only for a declared edge, and reports it at runtime.
fn edge<S: ticket::CanTransitionTo<T>, T: ticket::State>() -> (Ticket, Ticket) {
    (S::STATUS, T::STATUS)
}

fn names(
    pairs: impl IntoIterator<Item = (Ticket, Ticket)>,
) -> BTreeSet<(&'static str, &'static str)> {
    pairs
        .into_iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect()
}

// ---- the runtime enum ----------------------------------------------------------------------

#[test]
fn values_and_names_follow_the_declaration() {
    assert_eq!(Ticket::NAMES, TICKET_STATES);
    assert_eq!(
        Ticket::ALL,
        [
            Ticket::Open,
            Ticket::InProgress,
            Ticket::Review,
            Ticket::Closed
        ]
    );
    assert_eq!(<Ticket as Lifecycle>::NAMES, TICKET_STATES);
    assert_eq!(Ticket::MACHINE, "ticket");
    assert_eq!(Ticket::NOUN, "state");
    for (i, t) in Ticket::ALL.into_iter().enumerate() {
        assert_eq!(t.index(), i);
        assert_eq!(t.as_str(), TICKET_STATES[i]);
        assert_eq!(Lifecycle::as_str(t), TICKET_STATES[i]);
    }
}

#[test]
fn every_conversion_goes_through_one_parse() -> Result<(), ParseStatusError> {
    for (t, name) in Ticket::ALL.into_iter().zip(TICKET_STATES) {
        assert_eq!(Ticket::parse(name)?, t);
        assert_eq!(name.parse::<Ticket>()?, t);
        assert_eq!(Ticket::try_from(name)?, t);
        assert_eq!(Ticket::try_from(name.as_bytes())?, t);
        assert_eq!(Ticket::parse_bytes(name.as_bytes())?, t);
        assert_eq!(t.to_string(), name);
        assert_eq!(t.as_ref(), name);
    }
    let err = Ticket::parse("Open").expect_err("stored strings are case-sensitive");
    assert_eq!(
        err.to_string(),
        "unknown ticket state: 'Open' (expected one of: open, in_progress, review, closed)"
    );
    assert_eq!(err.machine(), "ticket");
    assert_eq!(err.accepted(), TICKET_STATES);
    let err = Ticket::parse_bytes(b"op\xffen").expect_err("not UTF-8");
    assert_eq!(err.input(), "op\u{fffd}en");
    assert_eq!(Ticket::try_from(&b"op\xffen"[..]), Err(err));
    Ok(())
}

#[cfg(feature = "serde")]
#[test]
fn serde_is_the_stored_string() -> TestResult {
    assert_eq!(
        serde_json::to_string(&Ticket::InProgress)?,
        r#""in_progress""#
    );
    assert_eq!(
        serde_json::from_str::<Ticket>(r#""review""#)?,
        Ticket::Review
    );
    let msg = serde_json::from_str::<Ticket>(r#""done""#)
        .expect_err("done is not a ticket state")
        .to_string();
    assert!(msg.contains("unknown ticket state: 'done'"), "{msg}");
    let msg = serde_json::from_str::<Ticket>("3")
        .expect_err("a number")
        .to_string();
    assert!(msg.contains("a ticket state string"), "{msg}");
    Ok(())
}

// ---- the edges: typed, runtime and text views all equal the hand-written table --------------

#[test]
fn runtime_table_equals_the_hand_written_edges() {
    let expected: BTreeSet<_> = TICKET_EDGES.into_iter().collect();
    for from in Ticket::ALL {
        for to in Ticket::ALL {
            let declared = expected.contains(&(from.as_str(), to.as_str()));
            assert_eq!(from.can_transition_to(to), declared, "{from} -> {to}");
            assert_eq!(
                Lifecycle::can_transition_to(from, to),
                declared,
                "{from} -> {to}"
            );
        }
    }
    assert_eq!(names(edges::<Ticket>()), expected);
    assert_eq!(
        Ticket::InProgress.legal_next().collect::<Vec<_>>(),
        [Ticket::Open, Ticket::Review],
        "declaration order of the states, not of the target list"
    );
    let terminal: Vec<_> = Ticket::ALL
        .into_iter()
        .filter(|t| t.is_terminal())
        .collect();
    assert_eq!(terminal, [Ticket::Closed]);
}

#[test]
fn typed_edges_equal_the_runtime_table() {
    use ticket::{Closed, InProgress, Open, Review};
    let typed = [
        edge::<Open, InProgress>(),
        edge::<Open, Closed>(),
        edge::<InProgress, Review>(),
        edge::<InProgress, Open>(),
        edge::<Review, InProgress>(),
        edge::<Review, Closed>(),
    ];
    assert_eq!(names(typed), names(edges::<Ticket>()));
    assert_eq!(<Review as ticket::State>::STATUS, Ticket::Review);
}

#[test]
fn diagrams_and_sql_list_come_from_the_declaration() {
    let text = mermaid::<Ticket>();
    assert!(
        text.starts_with("stateDiagram-v2\n    [*] --> open\n"),
        "{text}"
    );
    for (from, to) in TICKET_EDGES {
        assert!(text.contains(&format!("    {from} --> {to}\n")), "{text}");
    }
    assert!(text.ends_with("    closed --> [*]\n"), "{text}");
    let text = dot::<Ticket>();
    assert!(text.starts_with("digraph \"ticket\" {\n"), "{text}");
    assert!(
        text.contains("    \"closed\" [shape=doublecircle];\n"),
        "{text}"
    );
    assert_eq!(
        sql_in_list::<Ticket>(),
        "'open', 'in_progress', 'review', 'closed'"
    );
}

// ---- hygiene and the table's limit ---------------------------------------------------------

#[test]
fn prelude_names_and_odd_strings_are_ordinary_states() -> Result<(), ParseStatusError> {
    assert_eq!(Awkward::parse("{err}")?, Awkward::Err);
    assert_eq!(Awkward::parse("some \"quoted\"")?, Awkward::Some);
    assert!(Awkward::Ok.can_transition_to(Awkward::Some));
    assert!(Awkward::Sync.can_transition_to(Awkward::Ok));
    assert!(Awkward::Error.is_terminal());
    assert!(Awkward::Result.can_transition_to(Awkward::Error));
    assert_eq!(<awkward::Send as awkward::State>::STATUS, Awkward::Send);
    assert_eq!(sql_in_list::<Awkward>().matches('\'').count(), 16);
    assert_eq!("error".parse::<Awkward>()?, Awkward::Error);
    Ok(())
}

#[test]
fn sixty_four_states_fill_the_table() {
    assert_eq!(Ring::ALL.len(), 64);
    assert_eq!(Ring::S62.successor_mask(), 1 << 63);
    assert!(Ring::S62.can_transition_to(Ring::S63));
    assert!(
        Ring::S63.can_transition_to(Ring::S0),
        "the last bit wraps to the first state"
    );
    assert!(!Ring::S63.can_transition_to(Ring::S62));
    assert_eq!(Ring::S63.legal_next().collect::<Vec<_>>(), [Ring::S0]);
    assert_eq!(edges::<Ring>().count(), 64);
    assert!(Ring::ALL.iter().all(|r| !r.is_terminal()));
    assert_eq!(Ring::parse("s63"), Ok(Ring::S63));
}

// ---- a typed carrier of one's own over the markers -------------------------------------------

/// A ticket whose state is known at compile time, written the way `Topology<S>` is: one
/// private constructor and one bounded `move_to`.
#[derive(Debug)]
struct Typed<S: ticket::State> {
    title: String,
    state: std::marker::PhantomData<S>,
}

impl Typed<ticket::Open> {
    fn new(title: &str) -> Self {
        Self::from_title(title.to_owned())
    }
}

impl<S: ticket::State> Typed<S> {
    fn from_title(title: String) -> Self {
        Self {
            title,
            state: std::marker::PhantomData,
        }
    }

    fn move_to<T: ticket::State>(self) -> Typed<T>
    where
        S: ticket::CanTransitionTo<T>,
    {
        Typed::from_title(self.title)
    }

    fn restore(status: Ticket, title: String) -> Result<Self, StatusMismatch<String, Ticket>> {
        if status == S::STATUS {
            Ok(Self::from_title(title))
        } else {
            Err(StatusMismatch::new(S::STATUS, status, title))
        }
    }
}

#[test]
fn markers_carry_a_typestate_of_ones_own() -> TestResult {
    let t = Typed::new("printer on fire")
        .move_to::<ticket::InProgress>()
        .move_to::<ticket::Review>()
        .move_to::<ticket::Closed>();
    assert_eq!(t.title, "printer on fire");

    let review = Typed::<ticket::Review>::restore(Ticket::Review, "x".into())?;
    assert_eq!(review.move_to::<ticket::InProgress>().title, "x");
    let err =
        Typed::<ticket::Closed>::restore(Ticket::Open, "y".into()).expect_err("open is not closed");
    assert_eq!(
        err.to_string(),
        "expected a ticket in state 'closed', found 'open'"
    );
    assert_eq!(err.into_inner(), "y");
    Ok(())
}

// ---- the core shared with the crate's named values ---------------------------------------------

#[test]
fn named_values_share_the_core() -> Result<(), ParseStatusError> {
    // `MutationOp` has no edges; it gets the same conversions and messages as a lifecycle.
    for (op, name) in MutationOp::ALL.into_iter().zip(MutationOp::NAMES) {
        assert_eq!(MutationOp::parse_bytes(name.as_bytes())?, op);
        assert_eq!(op.to_string(), name);
    }
    let op = MutationOp::parse("noop").expect_err("noop").to_string();
    let state = MutationState::parse("noop").expect_err("noop").to_string();
    assert!(
        op.starts_with("unknown mutation op: 'noop' (expected one of: add_lan,"),
        "{op}"
    );
    assert!(
        state.starts_with("unknown mutation state: 'noop' (expected one of: pending,"),
        "{state}"
    );
    Ok(())
}
