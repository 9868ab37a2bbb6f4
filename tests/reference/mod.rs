//! A reference interpreter of the event-pattern language, written from
//! `docs/patterns.md` alone, to check the compiled matcher against.
//!
//! Deliberately naive and slow: the pattern is expanded into conjunctions of leaf
//! conditions (one per combination of `$or` alternatives); for each condition the event's
//! leaf values at its path are enumerated together with the array positions they sit at;
//! then a brute-force search looks for one leaf value per condition such that each value
//! satisfies its condition and no two of them come from different elements of the same
//! array (array consistency). `exists: false` is checked globally instead: the path has no
//! leaf value anywhere in the event.
//!
//! The pattern is assumed valid (the matcher's parser rejects invalid ones).

use std::net::IpAddr;

use serde_json::{Map, Value};

/// The operator names; an object using one of them as a field is not an `$or` alternative.
pub const OPERATORS: [&str; 9] = [
    "prefix",
    "suffix",
    "equals-ignore-case",
    "wildcard",
    "contains",
    "anything-but",
    "numeric",
    "cidr",
    "exists",
];

/// Does the (valid) `pattern` match `event`, the CloudEvent as one JSON object: its
/// attributes at the top level and its data, if any, under `data`?
pub fn matches(pattern: &Value, event: &Value) -> bool {
    let Value::Object(fields) = pattern else {
        panic!("a pattern is a JSON object: {pattern}")
    };
    expand(fields, &[])
        .iter()
        .any(|conjunction| conjunction_matches(conjunction, event, true))
}

/// [`matches`] without array consistency (to tell how often it decides a case).
pub fn matches_ignoring_arrays(pattern: &Value, event: &Value) -> bool {
    let Value::Object(fields) = pattern else {
        panic!("a pattern is a JSON object: {pattern}")
    };
    expand(fields, &[])
        .iter()
        .any(|conjunction| conjunction_matches(conjunction, event, false))
}

/// One leaf of the pattern at its full path: some leaf value there must satisfy one of
/// the alternatives.
#[derive(Clone, Debug)]
struct Condition<'p> {
    path: Vec<String>,
    alternatives: &'p [Value],
}

/// The pattern object's fields (at `prefix`) as a disjunction of conjunctions.
fn expand<'p>(fields: &'p Map<String, Value>, prefix: &[String]) -> Vec<Vec<Condition<'p>>> {
    let mut conjunctions: Vec<Vec<Condition<'p>>> = vec![Vec::new()];
    for (name, value) in fields {
        // The ways this one field can be satisfied, each a conjunction.
        let choices: Vec<Vec<Condition<'p>>> = if name == "$or" && is_or(value) {
            value
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|alternative| expand(alternative.as_object().unwrap(), prefix))
                .collect()
        } else {
            let mut path = prefix.to_vec();
            path.push(name.clone());
            match value {
                Value::Array(alternatives) => vec![vec![Condition { path, alternatives }]],
                Value::Object(inner) => expand(inner, &path),
                other => panic!("a pattern field is a list or an object, not {other}"),
            }
        };
        let mut next = Vec::new();
        for conjunction in &conjunctions {
            for choice in &choices {
                let mut combined = conjunction.clone();
                combined.extend(choice.iter().cloned());
                next.push(combined);
            }
        }
        conjunctions = next;
    }
    conjunctions
}

/// Is this value of a field named `$or` an `$or`: an array of at least two objects, none
/// of which uses an operator name as a field?
fn is_or(value: &Value) -> bool {
    match value {
        Value::Array(items) => {
            items.len() >= 2
                && items.iter().all(|item| match item {
                    Value::Object(fields) => {
                        !fields.keys().any(|key| OPERATORS.contains(&key.as_str()))
                    }
                    _ => false,
                })
        }
        _ => false,
    }
}

/// One step from a JSON value into a child.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

/// A leaf value of the event (a string, number, boolean or null) with, for each array it
/// is in with a JSON object between that array and the value, the array (by its location
/// in the event) and the index of the element it is in.
#[derive(Clone, Debug)]
struct LeafValue<'e> {
    value: &'e Value,
    positions: Vec<(Vec<Step>, usize)>,
}

/// The event's leaf values at `path`, arrays looked through on the way and at the end.
fn leaf_values<'e>(event: &'e Value, path: &[String]) -> Vec<LeafValue<'e>> {
    let mut out = Vec::new();
    walk(event, path, &mut Vec::new(), &[], &[], &mut out);
    out
}

/// `carried`: array positions that count (an object lies between the array and `value`);
/// `pending`: positions in arrays entered since the last object.
fn walk<'e>(
    value: &'e Value,
    rest: &[String],
    at: &mut Vec<Step>,
    carried: &[(Vec<Step>, usize)],
    pending: &[(Vec<Step>, usize)],
    out: &mut Vec<LeafValue<'e>>,
) {
    match value {
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let mut pending = pending.to_vec();
                pending.push((at.clone(), i));
                at.push(Step::Index(i));
                walk(item, rest, at, carried, &pending, out);
                at.pop();
            }
        }
        Value::Object(fields) => {
            // An object at the end of the path is not a leaf value.
            if let Some((key, rest)) = rest.split_first() {
                if let Some(child) = fields.get(key) {
                    // Stepping through an object: the arrays entered since the last
                    // object now have an object between them and whatever lies below.
                    let mut carried = carried.to_vec();
                    carried.extend(pending.iter().cloned());
                    at.push(Step::Key(key.clone()));
                    walk(child, rest, at, &carried, &[], out);
                    at.pop();
                }
            }
        }
        scalar => {
            if rest.is_empty() {
                out.push(LeafValue {
                    value: scalar,
                    positions: carried.to_vec(),
                });
            }
        }
    }
}

/// Not from different elements of one array.
fn consistent(a: &LeafValue<'_>, b: &LeafValue<'_>) -> bool {
    a.positions.iter().all(|(array_a, index_a)| {
        b.positions
            .iter()
            .all(|(array_b, index_b)| array_a != array_b || index_a == index_b)
    })
}

fn conjunction_matches(conditions: &[Condition<'_>], event: &Value, arrays: bool) -> bool {
    // For each condition, the ways to satisfy it: `None` is "no leaf value at the path
    // anywhere, and one alternative is `exists: false`"; `Some(v)` is a leaf value that
    // satisfies an alternative.
    let mut options: Vec<Vec<Option<LeafValue<'_>>>> = Vec::new();
    for condition in conditions {
        let values = leaf_values(event, &condition.path);
        let mut ways = Vec::new();
        if values.is_empty() && condition.alternatives.iter().any(is_exists_false) {
            ways.push(None);
        }
        for mut value in values {
            if !arrays {
                value.positions.clear();
            }
            if condition
                .alternatives
                .iter()
                .any(|alternative| alternative_matches(alternative, value.value))
            {
                ways.push(Some(value));
            }
        }
        if ways.is_empty() {
            return false;
        }
        options.push(ways);
    }
    choose(&options, &mut Vec::new())
}

/// Brute force: pick one way per condition, each chosen leaf value consistent with every
/// one chosen before.
fn choose<'e>(options: &[Vec<Option<LeafValue<'e>>>], chosen: &mut Vec<LeafValue<'e>>) -> bool {
    let Some((first, rest)) = options.split_first() else {
        return true;
    };
    for way in first {
        match way {
            None => {
                if choose(rest, chosen) {
                    return true;
                }
            }
            Some(value) => {
                if chosen.iter().all(|other| consistent(value, other)) {
                    chosen.push(value.clone());
                    let found = choose(rest, chosen);
                    chosen.pop();
                    if found {
                        return true;
                    }
                }
            }
        }
    }
    false
}

fn is_exists_false(alternative: &Value) -> bool {
    alternative.get("exists") == Some(&Value::Bool(false))
}

/// Does one leaf value (a string, number, boolean or null) satisfy one alternative of a
/// leaf? `exists: false` is satisfied by no value (it is checked globally).
fn alternative_matches(alternative: &Value, value: &Value) -> bool {
    let Value::Object(operator) = alternative else {
        return same_value(alternative, value);
    };
    assert_eq!(operator.len(), 1, "an operator object has one key");
    let (name, argument) = operator.iter().next().unwrap();
    let string = value.as_str();
    match name.as_str() {
        "prefix" => string.is_some_and(|s| match argument {
            Value::String(prefix) => s.starts_with(prefix.as_str()),
            Value::Object(ignoring_case) => {
                lower(s).starts_with(&lower(text(&ignoring_case["equals-ignore-case"])))
            }
            other => panic!("prefix of {other}"),
        }),
        "suffix" => string.is_some_and(|s| match argument {
            Value::String(suffix) => s.ends_with(suffix.as_str()),
            Value::Object(ignoring_case) => {
                lower(s).ends_with(&lower(text(&ignoring_case["equals-ignore-case"])))
            }
            other => panic!("suffix of {other}"),
        }),
        "equals-ignore-case" => string.is_some_and(|s| lower(s) == lower(text(argument))),
        "wildcard" => string.is_some_and(|s| wildcard(text(argument), s)),
        "contains" => string.is_some_and(|s| s.contains(text(argument))),
        "anything-but" => !excluded(argument, value),
        "numeric" => value.is_number() && numeric(argument, number(value)),
        "cidr" => string.is_some_and(|s| in_network(text(argument), s)),
        "exists" => argument.as_bool().expect("exists takes a boolean"),
        other => panic!("unknown operator {other}"),
    }
}

fn text(value: &Value) -> &str {
    value
        .as_str()
        .unwrap_or_else(|| panic!("expected a string: {value}"))
}

fn number(value: &Value) -> f64 {
    value
        .as_f64()
        .unwrap_or_else(|| panic!("expected a number: {value}"))
}

fn lower(s: &str) -> String {
    s.to_lowercase()
}

/// Typed JSON equality, numbers by value.
fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(_), Value::Number(_)) => number(a) == number(b),
        _ => a == b,
    }
}

/// Is `value` excluded by the argument of `anything-but`?
fn excluded(argument: &Value, value: &Value) -> bool {
    match argument {
        Value::String(_) | Value::Number(_) => same_value(argument, value),
        Value::Array(items) => items.iter().any(|item| excluded(item, value)),
        Value::Object(operator) => {
            let (name, patterns) = operator.iter().next().unwrap();
            let Some(s) = value.as_str() else {
                return false; // only strings can be excluded by these
            };
            let patterns: Vec<&str> = match patterns {
                Value::Array(items) => items.iter().map(text).collect(),
                one => vec![text(one)],
            };
            patterns.iter().any(|p| match name.as_str() {
                "prefix" => s.starts_with(p),
                "suffix" => s.ends_with(p),
                "equals-ignore-case" => lower(s) == lower(p),
                "wildcard" => wildcard(p, s),
                other => panic!("anything-but {other}"),
            })
        }
        other => panic!("anything-but {other}"),
    }
}

/// `["=", x]` or bounds `>`, `>=`, `<`, `<=`, all of which must hold.
fn numeric(argument: &Value, x: f64) -> bool {
    let items = argument.as_array().expect("numeric takes a list");
    items.chunks(2).all(|pair| {
        let bound = number(&pair[1]);
        match text(&pair[0]) {
            "=" => x == bound,
            ">" => x > bound,
            ">=" => x >= bound,
            "<" => x < bound,
            "<=" => x <= bound,
            other => panic!("numeric operator {other}"),
        }
    })
}

/// A glob: `*` any run of characters, `\*` a literal `*`, `\\` a literal `\`.
fn wildcard(glob: &str, s: &str) -> bool {
    // None: `*`; Some(c): the character c.
    let mut tokens: Vec<Option<char>> = Vec::new();
    let mut chars = glob.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => tokens.push(Some(chars.next().expect("an escape"))),
            '*' => tokens.push(None),
            c => tokens.push(Some(c)),
        }
    }
    let s: Vec<char> = s.chars().collect();
    // m[i][j]: the first i tokens match the first j characters.
    let mut m = vec![vec![false; s.len() + 1]; tokens.len() + 1];
    m[0][0] = true;
    for i in 1..=tokens.len() {
        for j in 0..=s.len() {
            m[i][j] = match tokens[i - 1] {
                None => m[i - 1][j] || (j > 0 && m[i][j - 1]),
                Some(c) => j > 0 && m[i - 1][j - 1] && s[j - 1] == c,
            };
        }
    }
    m[tokens.len()][s.len()]
}

/// Is the string `s` an IP address inside `network` (`address/length`, host bits
/// ignored), of the same family?
fn in_network(network: &str, s: &str) -> bool {
    let (address, length) = network.split_once('/').expect("address/length");
    let address: IpAddr = address.parse().expect("a network address");
    let length: u32 = length.parse().expect("a prefix length");
    let Ok(ip) = s.parse::<IpAddr>() else {
        return false;
    };
    match (address, ip) {
        (IpAddr::V4(net), IpAddr::V4(ip)) => {
            let mask = u32::MAX.checked_shl(32 - length).unwrap_or(0);
            u32::from(net) & mask == u32::from(ip) & mask
        }
        (IpAddr::V6(net), IpAddr::V6(ip)) => {
            let mask = u128::MAX.checked_shl(128 - length).unwrap_or(0);
            u128::from(net) & mask == u128::from(ip) & mask
        }
        _ => false,
    }
}
