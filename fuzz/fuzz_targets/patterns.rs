//! Fuzzes the pattern, filter and CESQL parsers and the matcher: no input may panic.
//!
//! cargo +nightly fuzz run patterns -- -max_total_time=300
//!
//! The input is a pattern (or filter list, or CESQL text) and an event, separated by the
//! first 0xFF byte (which never occurs in UTF-8 JSON).

#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice::rules::cesql::Sql;
use sluice::rules::{EventData, EventView, Matcher, Pattern};

fuzz_target!(|input: &[u8]| {
    let (pattern, event) = match input.iter().position(|&b| b == 0xFF) {
        Some(at) => (&input[..at], &input[at + 1..]),
        None => (input, &b"{}"[..]),
    };
    if let Ok(text) = std::str::from_utf8(pattern) {
        let _ = Sql::parse(text);
    }
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(pattern) else {
        return;
    };
    let mut compiled = Vec::new();
    if let Ok(p) = Pattern::parse(&value) {
        compiled.push(p);
    }
    if let Ok(p) = Pattern::parse_filters(&value) {
        compiled.push(p);
    }
    if compiled.is_empty() {
        return;
    }
    let matcher = Matcher::new(compiled);
    let mut out = Vec::new();
    // The event bytes serve as attributes, as JSON data and as text data.
    for data in [
        EventData::Json(event),
        EventData::Text(std::str::from_utf8(event).unwrap_or("")),
        EventData::None,
    ] {
        out.clear();
        matcher.matching(&EventView { attrs: event, data }, &mut out);
        assert!(out.windows(2).all(|w| w[0] < w[1]), "sorted and unique");
    }
});
