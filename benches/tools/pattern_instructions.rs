//! Matches the pattern benchmark's events against one of its rule sets, for counting
//! instructions with callgrind (repeatable whatever else the machine is doing):
//!
//! ```sh
//! cargo build --release --example pattern-instructions
//! for n in 0 20000; do
//!   valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/examples/pattern-instructions 10000 $n 2>&1 | grep Collected
//! done
//! ```
//!
//! Instructions per event = (count with 20000 events - count with 0) / 20000.

#[path = "../support/patterns_gen.rs"]
mod gen;

use gen::{compile, event, match_one, rule, Rng};

fn main() {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<u64>());
    let (Some(Ok(rules)), Some(Ok(events_to_match))) = (args.next(), args.next()) else {
        eprintln!("usage: pattern-instructions RULES EVENTS");
        std::process::exit(2);
    };
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ rules);
    let patterns: Vec<_> = (0..rules).map(|i| rule(i, rules, &mut rng)).collect();
    let matcher = compile(&patterns);
    let events: Vec<_> = (0..256).map(|_| event(rules, &mut rng)).collect();
    let mut out = Vec::new();
    let mut matched = 0;
    for i in 0..events_to_match as usize {
        matched += match_one(&matcher, &events[i % events.len()], &mut out);
    }
    println!("{matched} matches");
}
