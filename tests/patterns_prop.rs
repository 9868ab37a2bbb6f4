//! The compiled matcher against a naive reference interpreter of docs/patterns.md
//! (tests/reference): random events and random valid patterns over small alphabets, many
//! rules per matcher, the set of matching rules compared with the reference's.
//!
//! `PROPTEST_CASES=5000 cargo test --release --test patterns_prop` for a longer run.

mod reference;

use proptest::prelude::*;
use proptest::sample::{select, Index};
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{json, Map, Value};
use sluice::rules::{EventData, EventView, Matcher, Pattern};

// ---------------------------------------------------------------------------------------
// Alphabets: small, so that patterns and events meet often.

const STRINGS: &[&str] = &[
    "x",
    "xy",
    "Xy",
    "XY",
    "",
    "ab",
    "a*b",
    "a\\b",
    "x\"y",
    "x/y",
    "10.0.0.1",
    "10.0.1.7",
    "2001:db8::1",
    "2001:DB8:0:0:0:0:0:2",
    "::ffff:10.0.0.1",
    "É",
    "é",
    "İ",
];
/// JSON number texts (several spell the same value).
const NUMBERS: &[&str] = &["0", "1", "1.5", "-2", "300", "3e2", "300.0", "-0", "1e300"];
/// Operands of string operators.
const OPERANDS: &[&str] = &[
    "", "x", "X", "xy", "a", "b", "y", "10.", "2001:", "::1", ".1", "*", "\\", "É", "é", "İ", "i",
];
const CIDRS: &[&str] = &[
    "10.0.0.0/24",
    "10.0.0.1/8",
    "10.0.1.0/24",
    "10.0.0.1/32",
    "0.0.0.0/0",
    "2001:db8::/32",
    "2001:db8::1/128",
    "::/0",
    "::ffff:0:0/96",
];
/// Top-level attribute names.
const ATTRS: &[&str] = &["type", "source", "subject", "region"];
/// Field names inside `data`; the rare ones test the parser (a dotted name is one field,
/// so is the empty name, and `$or` and an operator name can be ordinary fields).
const KEYS: &[&str] = &["a", "b", "c"];
const RARE_KEYS: &[&str] = &["a.b", "", "$or", "exists"];

fn number(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

fn string_value() -> BoxedStrategy<Value> {
    select(STRINGS).prop_map(|s| json!(s)).boxed()
}

fn number_value() -> BoxedStrategy<Value> {
    select(NUMBERS).prop_map(number).boxed()
}

fn scalar() -> BoxedStrategy<Value> {
    prop_oneof![
        4 => string_value(),
        3 => number_value(),
        1 => any::<bool>().prop_map(Value::Bool),
        1 => Just(Value::Null),
    ]
    .boxed()
}

fn operand() -> BoxedStrategy<String> {
    select(OPERANDS).prop_map(String::from).boxed()
}

fn data_key() -> BoxedStrategy<String> {
    prop_oneof![12 => select(KEYS), 1 => select(RARE_KEYS)]
        .prop_map(String::from)
        .boxed()
}

/// A field name that may start an `$or` alternative (not an operator name).
fn or_safe_key() -> BoxedStrategy<String> {
    prop_oneof![12 => select(KEYS), 1 => select(&["a.b", "", "$or"][..])]
        .prop_map(String::from)
        .boxed()
}

// ---------------------------------------------------------------------------------------
// Events.

#[derive(Debug, Clone)]
struct Event {
    attrs: Map<String, Value>,
    data: Option<Value>,
    /// A string `data` is handed over as text data rather than a JSON string.
    as_text: bool,
    /// How the JSON texts are spelled: 0 as serde_json writes them, else with escapes and
    /// blank space chosen by this seed.
    spelling: u64,
}

impl Event {
    /// The CloudEvent as one JSON object, as the pattern language sees it.
    fn whole(&self) -> Value {
        let mut whole = self.attrs.clone();
        if let Some(data) = &self.data {
            whole.insert("data".into(), data.clone());
        }
        Value::Object(whole)
    }
}

fn json_data() -> BoxedStrategy<Value> {
    scalar()
        .prop_recursive(4, 32, 4, |inner| {
            prop_oneof![
                2 => prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                3 => prop::collection::vec((data_key(), inner), 0..4)
                    .prop_map(|fields| Value::Object(fields.into_iter().collect())),
            ]
        })
        .boxed()
}

/// Arrays of small records (maybe nested), where array consistency decides.
fn records() -> BoxedStrategy<Value> {
    let tiny = prop_oneof![
        select(&["x", "y"][..]).prop_map(|s| json!(s)),
        select(&["1", "2"][..]).prop_map(number),
    ];
    let record = prop::collection::vec((select(KEYS).prop_map(String::from), tiny), 1..4)
        .prop_map(|fields| Value::Object(fields.into_iter().collect()));
    record
        .prop_recursive(2, 12, 3, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 1..4).prop_map(Value::Array),
                (
                    select(KEYS).prop_map(String::from),
                    prop::collection::vec(inner, 1..4)
                )
                    .prop_map(|(key, items)| json!({ key: items, "c": "x" })),
            ]
        })
        .prop_map(|v| {
            if v.is_array() {
                v
            } else {
                json!([v, {"a": "x", "b": 1}])
            }
        })
        .boxed()
}

fn event() -> BoxedStrategy<Event> {
    let attrs = prop::collection::vec((select(ATTRS).prop_map(String::from), scalar()), 0..4);
    let data = prop_oneof![
        1 => Just(None),
        6 => prop::collection::vec(
            (data_key(), prop_oneof![3 => json_data(), 2 => records()]),
            1..4,
        )
            .prop_map(|fields| Some(Value::Object(fields.into_iter().collect()))),
        1 => json_data().prop_map(Some),
        1 => string_value().prop_map(Some),
    ];
    let spelling = prop_oneof![1 => Just(0), 2 => any::<u64>()];
    (attrs, data, any::<bool>(), spelling)
        .prop_map(|(attrs, data, as_text, spelling)| Event {
            attrs: attrs.into_iter().collect(),
            as_text: as_text && matches!(data, Some(Value::String(_))),
            data,
            spelling,
        })
        .boxed()
}

// ---------------------------------------------------------------------------------------
// Patterns: every operator, `$or` at every level, nested objects.

/// A glob: no `**` (rejected), but `\**` (a literal `*`, then any run) is fine.
fn glob() -> BoxedStrategy<String> {
    let token = select(&["x", "y", "a", "b", "X", ".", "é", "*", "\\*", "\\\\"][..]);
    prop::collection::vec(token, 1..6)
        .prop_map(|tokens| {
            let mut glob = String::new();
            let mut last = "";
            for token in tokens {
                if token == "*" && last == "*" {
                    continue;
                }
                glob.push_str(token);
                last = token;
            }
            glob
        })
        .boxed()
}

fn numeric() -> BoxedStrategy<Value> {
    let bounds = (
        select(NUMBERS).prop_map(number),
        select(NUMBERS).prop_map(number),
        any::<(bool, bool)>(),
        0..4u8,
    );
    bounds
        .prop_map(|(x, y, (x_inclusive, y_inclusive), form)| {
            let lower = |inclusive: bool| if inclusive { ">=" } else { ">" };
            let upper = |inclusive: bool| if inclusive { "<=" } else { "<" };
            let items = match form {
                0 => json!(["=", x]),
                1 => json!([lower(x_inclusive), x]),
                2 => json!([upper(x_inclusive), x]),
                _ => {
                    // Both bounds, in either order; never an empty range.
                    let (lo, hi) = if x.as_f64() <= y.as_f64() {
                        (x, y)
                    } else {
                        (y, x)
                    };
                    let equal = lo.as_f64() == hi.as_f64();
                    let (lo_inclusive, hi_inclusive) = if equal {
                        (true, true)
                    } else {
                        (x_inclusive, y_inclusive)
                    };
                    if x_inclusive == y_inclusive {
                        json!([lower(lo_inclusive), lo, upper(hi_inclusive), hi])
                    } else {
                        json!([upper(hi_inclusive), hi, lower(lo_inclusive), lo])
                    }
                }
            };
            json!({ "numeric": items })
        })
        .boxed()
}

fn anything_but() -> BoxedStrategy<Value> {
    let string_or_list = |s: BoxedStrategy<String>| {
        prop_oneof![
            s.clone().prop_map(Value::String),
            prop::collection::vec(s, 1..3).prop_map(|l| json!(l)),
        ]
    };
    prop_oneof![
        2 => string_value(),
        2 => number_value(),
        1 => prop::collection::vec(string_value(), 1..3).prop_map(Value::Array),
        1 => prop::collection::vec(number_value(), 1..3).prop_map(Value::Array),
        1 => string_or_list(operand()).prop_map(|a| json!({"prefix": a})),
        1 => string_or_list(operand()).prop_map(|a| json!({"suffix": a})),
        1 => string_or_list(operand()).prop_map(|a| json!({"equals-ignore-case": a})),
        1 => string_or_list(glob()).prop_map(|a| json!({"wildcard": a})),
    ]
    .prop_map(|argument| json!({ "anything-but": argument }))
    .boxed()
}

/// One alternative of a leaf: an exact value or an operator object.
fn alternative() -> BoxedStrategy<Value> {
    prop_oneof![
        8 => scalar(),
        1 => operand().prop_map(|s| json!({"prefix": s})),
        1 => operand().prop_map(|s| json!({"suffix": s})),
        1 => operand().prop_map(|s| json!({"prefix": {"equals-ignore-case": s}})),
        1 => operand().prop_map(|s| json!({"suffix": {"equals-ignore-case": s}})),
        1 => operand().prop_map(|s| json!({"equals-ignore-case": s})),
        1 => select(STRINGS).prop_map(|s| json!({"equals-ignore-case": s.to_uppercase()})),
        2 => glob().prop_map(|g| json!({"wildcard": g})),
        1 => operand().prop_map(|s| json!({"contains": s})),
        3 => anything_but(),
        3 => numeric(),
        2 => select(CIDRS).prop_map(|c| json!({"cidr": c})),
        2 => any::<bool>().prop_map(|b| json!({"exists": b})),
    ]
    .boxed()
}

fn leaf() -> BoxedStrategy<Value> {
    prop::collection::vec(alternative(), 1..4)
        .prop_map(Value::Array)
        .boxed()
}

/// A field's value below the top level: a leaf or a nested object.
fn node(depth: u32) -> BoxedStrategy<Value> {
    if depth == 0 {
        leaf()
    } else {
        prop_oneof![3 => leaf(), 2 => object(depth - 1, false)].boxed()
    }
}

/// A non-empty pattern object inside `data`, maybe with an `$or` (whose alternatives may
/// have their own).
fn object(depth: u32, or_alternative: bool) -> BoxedStrategy<Value> {
    let key = if or_alternative {
        or_safe_key()
    } else {
        data_key()
    };
    let fields = prop::collection::vec((key, node(depth)), 1..3);
    let or = if depth == 0 {
        Just(None).boxed()
    } else {
        prop::option::weighted(0.25, prop::collection::vec(object(depth - 1, true), 2..4)).boxed()
    };
    (fields, or).prop_map(build).boxed()
}

fn build((fields, or): (Vec<(String, Value)>, Option<Vec<Value>>)) -> Value {
    let mut object: Map<String, Value> = fields.into_iter().collect();
    if let Some(alternatives) = or {
        object.insert("$or".into(), Value::Array(alternatives));
    }
    Value::Object(object)
}

/// A top-level field: an attribute (a leaf: attributes are never objects) or `data`.
fn top_field() -> BoxedStrategy<(String, Value)> {
    prop_oneof![
        4 => (select(ATTRS).prop_map(String::from), leaf()),
        5 => (Just("data".to_string()), node(3)),
    ]
    .boxed()
}

/// How many conjunctions the pattern object expands to (at most 256 are allowed), or
/// more.
fn combinations(pattern: &Map<String, Value>) -> usize {
    pattern
        .iter()
        .map(|(name, value)| match value {
            Value::Array(items)
                if name == "$or"
                    && items.len() >= 2
                    && items.iter().all(|item| {
                        item.as_object().is_some_and(|o| {
                            !o.keys().any(|k| reference::OPERATORS.contains(&k.as_str()))
                        })
                    }) =>
            {
                items
                    .iter()
                    .map(|item| combinations(item.as_object().unwrap()))
                    .sum()
            }
            Value::Object(inner) => combinations(inner),
            // The matcher also counts a leaf mixing `exists: false` with other
            // alternatives as two (see `mixed_exists_false_leaf_counts_towards_the_limit`): stay
            // under its limit too.
            Value::Array(alternatives)
                if alternatives.len() > 1 && alternatives.contains(&json!({"exists": false})) =>
            {
                2
            }
            _ => 1,
        })
        .product()
}

fn within_limits(pattern: &Value) -> bool {
    combinations(pattern.as_object().unwrap()) <= 256
}

/// A random pattern, `$or` possibly at the top level (nested once).
fn random_pattern(or_depth: u32) -> BoxedStrategy<Value> {
    random_object(or_depth)
        .prop_filter("too many combinations", within_limits)
        .boxed()
}

fn random_object(or_depth: u32) -> BoxedStrategy<Value> {
    let min = usize::from(or_depth < 2); // an `$or` alternative is never empty
    let fields = prop::collection::vec(top_field(), min..3);
    let or = if or_depth == 0 {
        Just(None).boxed()
    } else {
        prop::option::weighted(
            0.3,
            prop::collection::vec(random_object(or_depth - 1), 2..4),
        )
        .boxed()
    };
    (fields, or).prop_map(build).boxed()
}

// Patterns derived from an event, so that array consistency and near misses get tested.

/// Every path of keys in the event (arrays looked through) with, for scalars, the value.
fn paths(value: &Value, prefix: &mut Vec<String>, out: &mut Vec<(Vec<String>, Option<Value>)>) {
    match value {
        Value::Object(fields) => {
            if !prefix.is_empty() {
                out.push((prefix.clone(), None));
            }
            for (key, child) in fields {
                prefix.push(key.clone());
                paths(child, prefix, out);
                prefix.pop();
            }
        }
        Value::Array(items) => {
            if items.is_empty() {
                out.push((prefix.clone(), None));
            }
            for item in items {
                paths(item, prefix, out);
            }
        }
        scalar => out.push((prefix.clone(), Some(scalar.clone()))),
    }
}

fn escape_glob(s: &str) -> String {
    s.replace('\\', "\\\\").replace('*', "\\*")
}

/// An alternative made to match (or nearly match) the event's value `value`.
fn derived_alternative(value: Option<Value>) -> BoxedStrategy<Value> {
    let Some(value) = value else {
        return prop_oneof![
            3 => any::<bool>().prop_map(|b| json!({"exists": b})),
            1 => alternative(),
        ]
        .boxed();
    };
    let exact = Just(value.clone()).boxed();
    let specific: BoxedStrategy<Value> = match &value {
        Value::String(s) if !s.is_empty() => {
            let chars: Vec<char> = s.chars().collect();
            let cut = {
                let chars = chars.clone();
                move |i: &Index| chars[..=i.index(chars.len())].iter().collect::<String>()
            };
            let tail = {
                let chars = chars.clone();
                move |i: &Index| chars[i.index(chars.len())..].iter().collect::<String>()
            };
            let mut options = vec![
                any::<Index>()
                    .prop_map(move |i| json!({"prefix": cut(&i)}))
                    .boxed(),
                any::<Index>()
                    .prop_map(move |i| json!({"suffix": tail(&i)}))
                    .boxed(),
                {
                    let chars = chars.clone();
                    (any::<Index>(), any::<Index>())
                        .prop_map(move |(i, j)| {
                            let (i, j) = (i.index(chars.len()), j.index(chars.len()));
                            let (i, j) = (i.min(j), i.max(j));
                            json!({"contains": chars[i..=j].iter().collect::<String>()})
                        })
                        .boxed()
                },
                Just(json!({"equals-ignore-case": s.to_uppercase()})).boxed(),
                Just(json!({"prefix": {"equals-ignore-case": s.to_uppercase()}})).boxed(),
                Just(json!({"suffix": {"equals-ignore-case": s.to_lowercase()}})).boxed(),
                {
                    // Some characters replaced by `*`.
                    let chars = chars.clone();
                    (any::<Index>(), any::<Index>())
                        .prop_map(move |(i, j)| {
                            let (i, j) = (i.index(chars.len() + 1), j.index(chars.len() + 1));
                            let (i, j) = (i.min(j), i.max(j));
                            let before: String = chars[..i].iter().collect();
                            let after: String = chars[j..].iter().collect();
                            json!({"wildcard": format!("{}*{}", escape_glob(&before), escape_glob(&after))})
                        })
                        .boxed()
                },
                Just(json!({"anything-but": s})).boxed(),
                Just(json!({"anything-but": {"prefix": cut_first(s)}})).boxed(),
            ];
            if let Ok(ip) = s.parse::<std::net::IpAddr>() {
                let bits = if ip.is_ipv4() { 32 } else { 128 };
                let s = s.clone();
                options.push(
                    (0..=bits)
                        .prop_map(move |len| json!({"cidr": format!("{s}/{len}")}))
                        .boxed(),
                );
            }
            proptest::strategy::Union::new(options).boxed()
        }
        Value::Number(n) => {
            let x = n.as_f64().unwrap();
            let other = number(&format!("{x:e}"));
            prop_oneof![
                Just(other.clone()),
                Just(json!({"numeric": ["=", other]})),
                Just(json!({"numeric": [">=", value.clone()]})),
                Just(json!({"numeric": [">", value.clone()]})),
                Just(json!({"numeric": ["<", value.clone()]})),
                Just(json!({"numeric": ["<=", value.clone()]})),
                Just(json!({"numeric": ["<=", value.clone(), ">", -3]})),
                Just(json!({"anything-but": value.clone()})),
                Just(json!({"anything-but": [value.clone(), 1]})),
            ]
            .boxed()
        }
        _ => prop_oneof![
            Just(json!({"anything-but": "x"})),
            Just(json!({"exists": true})),
            Just(json!({"exists": false})),
        ]
        .boxed(),
    };
    prop_oneof![2 => exact, 4 => specific, 1 => alternative()].boxed()
}

fn cut_first(s: &str) -> String {
    s.chars().take(1).collect()
}

/// Where a derived leaf goes: its path, its alternatives, and whether to put it in an `$or`
/// (at which depth of its path, beside which random alternative).
type Placement = (Vec<String>, Value, Option<(Index, Value)>);

fn placement(candidates: Vec<(Vec<String>, Option<Value>)>) -> BoxedStrategy<Placement> {
    select(candidates)
        .prop_flat_map(|(path, value)| {
            (
                Just(path),
                prop::collection::vec(derived_alternative(value), 1..3).prop_map(Value::Array),
                prop::option::weighted(0.3, (any::<Index>(), object(1, true))),
            )
        })
        .boxed()
}

/// Puts `value` at `path` inside `object`, creating objects on the way; false if something
/// already there is in the way.
fn insert(object: &mut Map<String, Value>, path: &[String], value: Value) -> bool {
    let (key, rest) = path.split_first().unwrap();
    if rest.is_empty() {
        if object.contains_key(key) {
            return false;
        }
        object.insert(key.clone(), value);
        return true;
    }
    match object
        .entry(key.clone())
        .or_insert_with(|| Value::Object(Map::new()))
    {
        Value::Object(inner) => insert(inner, rest, value),
        _ => false,
    }
}

fn derived_pattern(event: &Event) -> BoxedStrategy<Value> {
    let mut candidates = Vec::new();
    paths(&event.whole(), &mut Vec::new(), &mut candidates);
    if candidates.is_empty() {
        return random_pattern(1);
    }
    prop::collection::vec(placement(candidates), 1..5)
        .prop_map(|placements| {
            let mut pattern = Map::new();
            for (path, leaf, or) in placements {
                let mut inner = Map::new();
                match or {
                    // The `$or` sits in the object at path[..depth]; its first alternative
                    // holds the rest of the path (never starting with an operator name).
                    Some((depth, Value::Object(other)))
                        if {
                            let depth = depth.index(path.len());
                            depth > 0 && !reference::OPERATORS.contains(&path[depth].as_str())
                        } =>
                    {
                        let depth = depth.index(path.len());
                        insert(&mut inner, &path[depth..], leaf);
                        let or = json!([inner, other]);
                        let mut at = path[..depth].to_vec();
                        at.push("$or".into());
                        insert(&mut pattern, &at, or);
                    }
                    _ => {
                        insert(&mut pattern, &path, leaf);
                    }
                }
            }
            Value::Object(pattern)
        })
        .prop_filter("too many combinations", within_limits)
        .boxed()
}

/// For each path that reaches objects through an array: the scalar fields of each object.
type RecordGroup = (Vec<String>, Vec<(String, Value)>);

/// The scalar fields of one object.
type Record = Vec<(String, Value)>;

fn record_groups(value: &Value) -> Vec<RecordGroup> {
    fn visit(
        value: &Value,
        prefix: &mut Vec<String>,
        in_array: bool,
        groups: &mut Vec<(Vec<String>, Vec<Record>)>,
    ) {
        match value {
            Value::Array(items) => {
                for item in items {
                    visit(item, prefix, true, groups);
                }
            }
            Value::Object(fields) => {
                if in_array && !prefix.is_empty() {
                    let scalars: Record = fields
                        .iter()
                        .filter(|(_, v)| !v.is_object() && !v.is_array())
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect();
                    match groups.iter_mut().find(|(path, _)| path == prefix) {
                        Some((_, records)) => records.push(scalars),
                        None => groups.push((prefix.clone(), vec![scalars])),
                    }
                }
                for (key, child) in fields {
                    prefix.push(key.clone());
                    visit(child, prefix, false, groups);
                    prefix.pop();
                }
            }
            _ => {}
        }
    }
    let mut groups = Vec::new();
    visit(value, &mut Vec::new(), false, &mut groups);
    groups
        .into_iter()
        .filter(|(_, records)| records.len() >= 2)
        .map(|(path, records)| (path, records.into_iter().flatten().collect()))
        .filter(|(_, fields): &RecordGroup| fields.len() >= 2)
        .collect()
}

/// Several fields of the records in one array, maybe of different records, some in an
/// `$or`: array consistency decides.
fn record_pattern(groups: Vec<RecordGroup>) -> BoxedStrategy<Value> {
    select(groups)
        .prop_flat_map(|(path, fields)| {
            let pick = select(fields).prop_flat_map(|(key, value)| {
                (
                    Just(key),
                    prop::collection::vec(derived_alternative(Some(value)), 1..3),
                )
            });
            (
                Just(path),
                prop::collection::vec(pick, 2..4),
                prop::option::weighted(0.3, object(0, true)),
            )
        })
        .prop_map(|(path, picks, or)| {
            let mut inner = Map::new();
            let mut picks = picks.into_iter();
            for (key, alternatives) in picks.by_ref().take(2) {
                inner.entry(key).or_insert(Value::Array(alternatives));
            }
            let rest: Map<String, Value> = picks.map(|(k, a)| (k, Value::Array(a))).collect();
            // An operator name as a field would make the `$or` an ordinary field.
            let or_safe = !rest.is_empty()
                && !rest
                    .keys()
                    .any(|k| reference::OPERATORS.contains(&k.as_str()));
            match or {
                Some(other) if or_safe => {
                    inner.insert("$or".into(), json!([rest, other]));
                }
                _ => inner.extend(rest),
            }
            let mut pattern = Map::new();
            insert(&mut pattern, &path, Value::Object(inner));
            Value::Object(pattern)
        })
        .boxed()
}

/// One test case: a few events, and up to 20 rules, random or derived from the first event.
fn case() -> impl Strategy<Value = (Vec<Event>, Vec<Value>)> {
    case_with(1..21)
}

fn case_with(rules: std::ops::Range<usize>) -> impl Strategy<Value = (Vec<Event>, Vec<Value>)> {
    prop::collection::vec(event(), 1..4).prop_flat_map(move |events| {
        let groups = record_groups(&events[0].whole());
        let pattern = if groups.is_empty() {
            prop_oneof![1 => random_pattern(2), 2 => derived_pattern(&events[0])].boxed()
        } else {
            prop_oneof![
                2 => random_pattern(2),
                3 => derived_pattern(&events[0]),
                2 => record_pattern(groups),
            ]
            .boxed()
        };
        (Just(events), prop::collection::vec(pattern, rules.clone()))
    })
}

// ---------------------------------------------------------------------------------------
// Running the matcher.

/// JSON text for `value`: as serde_json writes it if `seed` is 0, else spelled with
/// escapes (`\u0061`, `\/`, surrogate pairs) and blank space chosen by `seed`.
fn json_text(value: &Value, seed: u64) -> Vec<u8> {
    if seed == 0 {
        return serde_json::to_vec(value).unwrap();
    }
    let mut out = String::new();
    write_json(value, &mut Spelling(seed), &mut out);
    let bytes = out.into_bytes();
    let back: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(&back, value, "the spelling changed the JSON");
    bytes
}

/// xorshift64*.
struct Spelling(u64);

impl Spelling {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn one_in(&mut self, n: u64) -> bool {
        self.next().is_multiple_of(n)
    }

    fn blank(&mut self, out: &mut String) {
        if self.one_in(3) {
            out.push_str([" ", "\n", "\t", "\r\n  "][(self.next() % 4) as usize]);
        }
    }
}

fn write_json(value: &Value, spelling: &mut Spelling, out: &mut String) {
    match value {
        Value::String(s) => write_string(s, spelling, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                spelling.blank(out);
                write_json(item, spelling, out);
                spelling.blank(out);
            }
            out.push(']');
        }
        Value::Object(fields) => {
            out.push('{');
            for (i, (key, item)) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                spelling.blank(out);
                write_string(key, spelling, out);
                spelling.blank(out);
                out.push(':');
                spelling.blank(out);
                write_json(item, spelling, out);
                spelling.blank(out);
            }
            out.push('}');
        }
        // Numbers keep their text (serde_json's arbitrary_precision), which serde_json
        // writes with `e+`: spell the exponent other ways too.
        Value::Number(n) => {
            let exponent = ["e+", "e", "E+", "E"][(spelling.next() % 4) as usize];
            out.push_str(&n.to_string().replace("e+", exponent));
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

fn write_string(s: &str, spelling: &mut Spelling, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        let escape = spelling.one_in(3);
        match c {
            '"' if !escape => out.push_str("\\\""),
            '\\' if !escape => out.push_str("\\\\"),
            '/' if escape && spelling.one_in(2) => out.push_str("\\/"),
            c if escape || c == '"' || c == '\\' || c < ' ' => {
                let upper = spelling.one_in(2);
                for unit in c.encode_utf16(&mut [0; 2]) {
                    if upper {
                        out.push_str(&format!("\\u{unit:04X}"));
                    } else {
                        out.push_str(&format!("\\u{unit:04x}"));
                    }
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn compile(patterns: &[Value]) -> Result<Matcher, String> {
    let mut parsed = Vec::new();
    for pattern in patterns {
        parsed.push(
            Pattern::parse(pattern)
                .map_err(|e| format!("a valid pattern was rejected: {pattern}: {e}"))?,
        );
    }
    Ok(Matcher::new(parsed))
}

fn run(matcher: &Matcher, event: &Event) -> Vec<usize> {
    let attrs = json_text(&Value::Object(event.attrs.clone()), event.spelling);
    let json = event
        .data
        .as_ref()
        .map(|d| json_text(d, event.spelling.rotate_left(32)));
    let data = match (&event.data, &json) {
        (Some(Value::String(text)), _) if event.as_text => EventData::Text(text),
        (_, Some(json)) => EventData::Json(json),
        _ => EventData::None,
    };
    // `matching` appends: what is already there stays.
    let mut out = vec![usize::MAX];
    matcher.matching(
        &EventView {
            attrs: &attrs,
            data,
        },
        &mut out,
    );
    assert_eq!(
        out.first(),
        Some(&usize::MAX),
        "matching() cleared its output"
    );
    out.remove(0);
    out
}

fn expected(patterns: &[Value], event: &Event) -> Vec<usize> {
    let whole = event.whole();
    (0..patterns.len())
        .filter(|&i| reference::matches(&patterns[i], &whole))
        .collect()
}

fn check(events: &[Event], patterns: &[Value]) -> Result<(), TestCaseError> {
    let matcher = compile(patterns).map_err(TestCaseError::fail)?;
    for event in events {
        let expected = expected(patterns, event);
        let actual = run(&matcher, event);
        if actual != expected {
            let mut report = format!(
                "event {} (data as {}, spelling {}): matcher says {actual:?}, reference says {expected:?}",
                event.whole(),
                if event.as_text { "text" } else { "JSON" },
                event.spelling,
            );
            for (i, pattern) in patterns.iter().enumerate() {
                if actual.contains(&i) != expected.contains(&i) {
                    report += &format!(
                        "\n  rule {i}: {pattern}: reference {}",
                        expected.contains(&i)
                    );
                }
            }
            return Err(TestCaseError::fail(report));
        }
    }
    Ok(())
}

/// `default` cases, or `PROPTEST_CASES` (scaled for tests with a different default).
fn config(default: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n: String| n.parse::<u32>().ok())
        .map_or(default, |n| (n * default / 400).max(1));
    Config {
        cases,
        failure_persistence: None,
        max_shrink_time: 120_000,
        max_local_rejects: 1 << 24,
        ..Config::default()
    }
}

#[test]
fn matcher_agrees_with_the_reference() {
    let mut runner = TestRunner::new(config(400));
    let result = runner.run(&case(), |(events, patterns)| check(&events, &patterns));
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// Many rules in one matcher: its indexes grow and share more.
#[test]
fn matcher_agrees_with_the_reference_on_many_rules() {
    let mut runner = TestRunner::new(config(30));
    let result = runner.run(&case_with(50..150), |(events, patterns)| {
        check(&events, &patterns)
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// The generators are not vacuous: many (pattern, event) pairs match, many do not, and
/// the interesting parts of the language come up.
#[test]
fn generated_cases_match_often_enough() {
    let mut runner = TestRunner::deterministic();
    let strategy = case();
    let (mut pairs, mut matched) = (0usize, 0usize);
    let mut consistency_decides = 0usize;
    for _ in 0..300 {
        let (events, patterns) = strategy.new_tree(&mut runner).unwrap().current();
        for event in &events {
            let whole = event.whole();
            for pattern in &patterns {
                pairs += 1;
                if reference::matches(pattern, &whole) {
                    matched += 1;
                } else if reference::matches_ignoring_arrays(pattern, &whole) {
                    consistency_decides += 1;
                }
            }
        }
    }
    let share = matched as f64 / pairs as f64;
    eprintln!(
        "{pairs} pairs: {matched} match ({:.0}%); array consistency alone rejects {consistency_decides}",
        share * 100.0
    );
    assert!((0.2..=0.8).contains(&share), "{share}");
    assert!(consistency_decides >= pairs / 100, "{consistency_decides}");
}

// ---------------------------------------------------------------------------------------
// The reference itself, on the documentation's examples.

fn event_with(data: Value) -> Value {
    json!({"type": "t", "source": "/s", "data": data})
}

#[test]
fn reference_array_consistency() {
    let pattern = json!({"data": {"items": {"sku": ["A"], "qty": [2]}}});
    assert!(!reference::matches(
        &pattern,
        &event_with(json!({"items": [{"sku": "A", "qty": 1}, {"sku": "B", "qty": 2}]}))
    ));
    assert!(reference::matches(
        &pattern,
        &event_with(json!({"items": [{"sku": "A", "qty": 2}]}))
    ));
    assert!(reference::matches(
        &pattern,
        &event_with(json!({"items": [{"sku": "B", "qty": 1}, {"sku": "A", "qty": 2}]}))
    ));
    // Through `$or` and nested arrays.
    let pattern = json!({"data": {"items": {"sku": ["A"], "$or": [{"qty": [2]}, {"n": [1]}]}}});
    assert!(!reference::matches(
        &pattern,
        &event_with(json!({"items": [[{"sku": "A"}, {"qty": 2}]]}))
    ));
    assert!(reference::matches(
        &pattern,
        &event_with(json!({"items": [[{"sku": "A", "qty": 2}], [{"qty": 3}]]}))
    ));
    // Scalars directly in an array do not pin an element.
    assert!(reference::matches(
        &json!({"data": {"tags": ["a"], "$or": [{"tags": ["b"]}, {"x": [1]}]}}),
        &event_with(json!({"tags": ["a", "b"]}))
    ));
    // Different arrays do not constrain each other.
    assert!(reference::matches(
        &json!({"data": {"l": {"a": ["x"]}, "r": {"b": ["y"]}}}),
        &event_with(json!({"l": [{"a": "x"}, {"a": "z"}], "r": [{"b": "z"}, {"b": "y"}]}))
    ));
}

#[test]
fn reference_exists_false_on_objects_and_empty_arrays() {
    let pattern = json!({"data": {"a": [{"exists": false}]}});
    assert!(reference::matches(
        &pattern,
        &event_with(json!({"a": {"b": 1}}))
    ));
    assert!(reference::matches(&pattern, &event_with(json!({"a": []}))));
    assert!(reference::matches(&pattern, &event_with(json!({"b": 1}))));
    assert!(reference::matches(&pattern, &json!({"type": "t"})));
    assert!(!reference::matches(
        &pattern,
        &event_with(json!({"a": null}))
    ));
    assert!(!reference::matches(
        &pattern,
        &event_with(json!({"a": [{}, 1]}))
    ));
    let exists = json!({"data": {"a": [{"exists": true}]}});
    assert!(!reference::matches(
        &exists,
        &event_with(json!({"a": {"b": 1}}))
    ));
    assert!(reference::matches(
        &exists,
        &event_with(json!({"a": [null]}))
    ));
    // Text data is one string at `data`.
    assert!(reference::matches(
        &json!({"data": [{"prefix": "ERR"}]}),
        &event_with(json!("ERROR: x"))
    ));
}

#[test]
fn reference_anything_but() {
    let pattern = json!({"data": {"a": [{"anything-but": 300}]}});
    assert!(!reference::matches(
        &pattern,
        &event_with(json!({"a": 300}))
    ));
    assert!(!reference::matches(
        &pattern,
        &event_with(json!({"a": number("3e2")}))
    ));
    assert!(reference::matches(
        &pattern,
        &event_with(json!({"a": "300"}))
    ));
    assert!(reference::matches(
        &pattern,
        &event_with(json!({"a": null}))
    ));
    assert!(reference::matches(
        &pattern,
        &event_with(json!({"a": [300, 1]}))
    ));
    assert!(!reference::matches(&pattern, &event_with(json!({"b": 1}))));
    let prefix = json!({"data": {"a": [{"anything-but": {"prefix": "test-"}}]}});
    assert!(reference::matches(
        &prefix,
        &event_with(json!({"a": "prod-1"}))
    ));
    assert!(reference::matches(&prefix, &event_with(json!({"a": 42}))));
    assert!(reference::matches(&prefix, &event_with(json!({"a": null}))));
    assert!(!reference::matches(
        &prefix,
        &event_with(json!({"a": "test-1"}))
    ));
}

#[test]
fn reference_numbers_by_value() {
    let event = event_with(json!({"a": number("3.0e2"), "b": "300"}));
    assert!(reference::matches(&json!({"data": {"a": [300]}}), &event));
    assert!(reference::matches(
        &json!({"data": {"a": [number("300.0")]}}),
        &event
    ));
    assert!(!reference::matches(&json!({"data": {"b": [300]}}), &event));
    assert!(reference::matches(
        &json!({"data": {"a": [{"numeric": [">", 0, "<=", number("3e2")]}]}}),
        &event
    ));
    assert!(!reference::matches(
        &json!({"data": {"a": [{"numeric": ["<", 300]}]}}),
        &event
    ));
    assert!(!reference::matches(
        &json!({"data": {"b": [{"numeric": [">", 0]}]}}),
        &event
    ));
}

#[test]
fn reference_operators() {
    let event = event_with(
        json!({"s": "orders/42/paid", "ip": "10.0.0.7", "v6": "2001:db8::1", "star": "a*b"}),
    );
    let yes = |p: Value| assert!(reference::matches(&p, &event), "{p}");
    let no = |p: Value| assert!(!reference::matches(&p, &event), "{p}");
    yes(json!({"data": {"s": [{"wildcard": "orders/*/paid"}]}}));
    yes(json!({"data": {"s": [{"wildcard": "*"}]}}));
    no(json!({"data": {"s": [{"wildcard": "orders/*/x"}]}}));
    yes(json!({"data": {"star": [{"wildcard": "a\\*b"}]}}));
    no(json!({"data": {"s": [{"wildcard": "orders\\*"}]}}));
    yes(json!({"data": {"s": [{"prefix": {"equals-ignore-case": "ORDERS/"}}]}}));
    yes(json!({"data": {"s": [{"suffix": {"equals-ignore-case": "/PAID"}}]}}));
    yes(json!({"data": {"s": [{"equals-ignore-case": "Orders/42/PAID"}]}}));
    yes(json!({"data": {"s": [{"contains": "/42/"}]}}));
    yes(json!({"data": {"ip": [{"cidr": "10.0.0.1/24"}]}}));
    no(json!({"data": {"ip": [{"cidr": "10.0.1.0/24"}]}}));
    no(json!({"data": {"ip": [{"cidr": "::/0"}]}}));
    yes(json!({"data": {"v6": [{"cidr": "2001:db8::/32"}]}}));
    no(json!({"data": {"v6": [{"cidr": "0.0.0.0/0"}]}}));
    yes(json!({"data": {"$or": [{"s": ["x"]}, {"ip": ["10.0.0.7"]}]}}));
    // `$or` that is not an `$or`: an ordinary field.
    no(json!({"data": {"$or": [{"prefix": "orders"}, {"prefix": "10."}]}}));
    assert!(reference::matches(
        &json!({"data": {"$or": [{"prefix": "x"}, {"suffix": "z"}]}}),
        &event_with(json!({"$or": "xyz"}))
    ));
}

// ---------------------------------------------------------------------------------------
// Disagreements found, minimised.

fn matcher_says(pattern: &Value, event: &Value) -> Result<bool, String> {
    let matcher = compile(std::slice::from_ref(pattern))?;
    let mut attrs = event.as_object().unwrap().clone();
    let data = attrs.remove("data");
    let event = Event {
        attrs,
        data,
        as_text: false,
        spelling: 0,
    };
    Ok(run(&matcher, &event) == [0])
}

/// The limit counts the alternatives a rule expands to, as docs/patterns.md says: each
/// `$or` branch, and a leaf mixing `exists: false` with values counts twice.
#[test]
fn mixed_exists_false_leaf_counts_towards_the_limit() {
    let or_of =
        |n: usize| -> Vec<Value> { (0..n).map(|i| json!({ format!("k{i}"): ["x"] })).collect() };
    let event = event_with(json!({"k7": "x"}));
    // 128 branches times the two alternatives of `z`: 256, the limit.
    let pattern = json!({"data": {"$or": or_of(128), "z": [{"exists": false}, "x"]}});
    assert!(reference::matches(&pattern, &event));
    assert_eq!(matcher_says(&pattern, &event), Ok(true));
    // 256 branches times two: over it, rejected with the count.
    let pattern = json!({"data": {"$or": or_of(256), "z": [{"exists": false}, "x"]}});
    let err = matcher_says(&pattern, &event).unwrap_err();
    assert!(err.contains("512 alternatives"), "{err}");
}
