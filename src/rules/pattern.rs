//! Parsing event patterns (EventBridge's language) and CloudEvents filters into one form:
//! an OR of conjunctions of conditions on field paths (`$or`, `any` and `not` are
//! expanded when the rule is loaded). See docs/patterns.md for the language.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::cesql::Sql;
use super::operand::{to_lower, Cidr, Exclusion, Glob, Operand, Range, Scalar};

/// Why a pattern is invalid, and where (`.data.amount[0].numeric`).
pub type PatternError = super::InvalidAt;

/// Limits on a pattern, checked when it is parsed (documented in docs/patterns.md).
pub const MAX_PATTERN_BYTES: usize = 64 * 1024;
pub const MAX_DEPTH: usize = 16;
pub const MAX_VALUES: usize = 1024;
pub const MAX_COMBINATIONS: usize = 256;
/// Conditions summed over a rule's alternatives (each alternative repeats the fields
/// outside its `$or`).
pub const MAX_CONDITIONS: usize = 16_384;

const OPERATORS: [&str; 9] = [
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

/// A parsed, validated pattern: it matches when any of its conjunctions does.
#[derive(Debug, Clone)]
pub struct Pattern {
    pub(crate) conjunctions: Vec<Conjunction>,
}

/// Conditions that must all hold, with array consistency between them.
#[derive(Debug, Clone, Default)]
pub(crate) struct Conjunction {
    pub conditions: Vec<Condition>,
}

#[derive(Debug, Clone)]
pub(crate) enum Condition {
    /// Some leaf value at the path matches one of the operands.
    Values {
        path: Vec<Box<str>>,
        operands: Vec<Operand>,
    },
    /// No leaf value at the path anywhere in the event (`exists: false`).
    Absent { path: Vec<Box<str>> },
    /// A CESQL expression over context attributes, negated under `not`.
    Sql { expr: Arc<Sql>, negate: bool },
}

type Dnf = Vec<Conjunction>;

fn fail<T>(path: impl Into<String>, message: impl Into<String>) -> Result<T, PatternError> {
    Err(PatternError {
        path: path.into(),
        message: message.into(),
    })
}

/// Every combination of one conjunction from `a` and one from `b`.
fn and(mut a: Dnf, b: Dnf, path: &str) -> Result<Dnf, PatternError> {
    if a.len() * b.len() > MAX_COMBINATIONS {
        return fail(
            path,
            format!(
                "expands to {} alternatives; at most {MAX_COMBINATIONS} are allowed",
                a.len() * b.len()
            ),
        );
    }
    let out = if b.len() == 1 {
        // The common case (an ordinary field): extend in place rather than copy.
        for x in &mut a {
            x.conditions.extend(b[0].conditions.iter().cloned());
        }
        a
    } else {
        let mut out = Vec::with_capacity(a.len() * b.len());
        for x in &a {
            for y in &b {
                let mut c = x.clone();
                c.conditions.extend(y.conditions.iter().cloned());
                out.push(c);
            }
        }
        out
    };
    let conditions: usize = out.iter().map(|c| c.conditions.len()).sum();
    if conditions > MAX_CONDITIONS {
        return fail(
            path,
            format!(
                "expands to {conditions} conditions in all; at most {MAX_CONDITIONS} are allowed"
            ),
        );
    }
    Ok(out)
}

fn or(mut a: Dnf, b: Dnf, path: &str) -> Result<Dnf, PatternError> {
    if a.len() + b.len() > MAX_COMBINATIONS {
        return fail(
            path,
            format!("expands to more than {MAX_COMBINATIONS} alternatives"),
        );
    }
    a.extend(b);
    Ok(a)
}

fn check_size(value: &Value) -> Result<(), PatternError> {
    let size = serde_json::to_vec(value).map_or(usize::MAX, |v| v.len());
    if size > MAX_PATTERN_BYTES {
        return fail(
            "",
            format!("the pattern is {size} bytes as JSON; at most {MAX_PATTERN_BYTES} are allowed"),
        );
    }
    Ok(())
}

impl Pattern {
    /// A pattern that matches every event.
    pub fn match_all() -> Self {
        Pattern {
            conjunctions: vec![Conjunction::default()],
        }
    }

    /// Parses an EventBridge-style event pattern.
    pub fn parse(value: &Value) -> Result<Pattern, PatternError> {
        check_size(value)?;
        let Value::Object(map) = value else {
            return fail("", "a pattern must be a JSON object");
        };
        Ok(Pattern {
            conjunctions: parse_object(map, &[], "", 0)?,
        })
    }

    /// Parses a CloudEvents Subscriptions API `filters` list (all must match).
    pub fn parse_filters(value: &Value) -> Result<Pattern, PatternError> {
        check_size(value)?;
        let Value::Array(filters) = value else {
            return fail("", "filters must be a list of filter expressions");
        };
        let mut dnf = vec![Conjunction::default()];
        for (i, f) in filters.iter().enumerate() {
            let at = format!("[{i}]");
            dnf = and(dnf, parse_filter(f, &at, false, 0)?, &at)?;
        }
        Ok(Pattern { conjunctions: dnf })
    }

    /// A pattern matching when all of `patterns` match (a rule's `pattern` and `filters`).
    pub fn all(patterns: Vec<Pattern>) -> Pattern {
        let mut dnf = vec![Conjunction::default()];
        for p in patterns {
            let mut next = Vec::with_capacity(dnf.len() * p.conjunctions.len());
            for x in &dnf {
                for y in &p.conjunctions {
                    let mut c = x.clone();
                    c.conditions.extend(y.conditions.iter().cloned());
                    next.push(c);
                }
            }
            dnf = next;
        }
        Pattern { conjunctions: dnf }
    }

    /// How many alternatives the pattern expanded to (`$or`, `any`, `exists: false`).
    pub fn combinations(&self) -> usize {
        self.conjunctions.len()
    }

    /// How many conditions its alternatives hold in all.
    pub fn conditions(&self) -> usize {
        self.conjunctions.iter().map(|c| c.conditions.len()).sum()
    }
}

/// Is `name` a CloudEvents attribute name (lower-case ASCII letters and digits)?
pub(crate) fn is_attribute_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// `$or` is an OR only when it holds two or more objects that use no operator names as
/// fields; otherwise it is an ordinary field, as in EventBridge.
fn is_or(value: &Value) -> Option<&Vec<Value>> {
    let Value::Array(items) = value else {
        return None;
    };
    let all_plain_objects = items.iter().all(|item| {
        item.as_object()
            .is_some_and(|m| !m.keys().any(|k| OPERATORS.contains(&k.as_str())))
    });
    (items.len() >= 2 && all_plain_objects).then_some(items)
}

fn parse_object(
    map: &Map<String, Value>,
    field: &[Box<str>],
    path: &str,
    depth: usize,
) -> Result<Dnf, PatternError> {
    if depth > MAX_DEPTH {
        return fail(path, format!("nested deeper than {MAX_DEPTH} levels"));
    }
    let mut dnf = vec![Conjunction::default()];
    for (name, v) in map {
        let at = format!("{path}.{name}");
        if name == "$or" {
            if let Some(branches) = is_or(v) {
                let mut alternatives = Vec::new();
                for (i, b) in branches.iter().enumerate() {
                    let at = format!("{at}[{i}]");
                    let b = b.as_object().expect("is_or checked");
                    if b.is_empty() {
                        return fail(at, "an empty object in $or would match everything");
                    }
                    alternatives = or(alternatives, parse_object(b, field, &at, depth + 1)?, &at)?;
                }
                dnf = and(dnf, alternatives, &at)?;
                continue;
            }
        }
        if field.is_empty() && name != "data" && !is_attribute_name(name) {
            let hint = match name.as_str() {
                "detail-type" => " (AWS's detail-type is the CloudEvents type)",
                _ => "",
            };
            return fail(
                at,
                format!("not a CloudEvents attribute name (lower-case letters and digits) nor data{hint}"),
            );
        }
        if field.is_empty() && name != "data" && v.is_object() {
            let hint = if name == "detail" {
                " (AWS's detail is the CloudEvents data)"
            } else {
                ""
            };
            return fail(
                at,
                format!("context attributes are never objects; only data has fields{hint}"),
            );
        }
        let mut sub_field = field.to_vec();
        sub_field.push(name.as_str().into());
        let sub = match v {
            Value::Object(m) if m.is_empty() => {
                return fail(at, "an empty object tests nothing; remove it or add fields")
            }
            Value::Object(m) => parse_object(m, &sub_field, &at, depth + 1)?,
            Value::Array(items) => parse_leaf(items, sub_field, &at).map_err(|mut e| {
                if name == "$or" {
                    e.message += " ($or is an OR only with an array of at least two objects)";
                }
                e
            })?,
            other => {
                return fail(
                    at,
                    format!("must be a list of alternatives or an object, e.g. [{other}]"),
                )
            }
        };
        dnf = and(dnf, sub, &at)?;
    }
    Ok(dnf)
}

/// A leaf: alternatives ORed. `exists: false` becomes a separate alternative conjunction.
fn parse_leaf(items: &[Value], path: Vec<Box<str>>, at: &str) -> Result<Dnf, PatternError> {
    if items.is_empty() {
        return fail(at, "an empty list matches nothing; list at least one value");
    }
    if items.len() > MAX_VALUES {
        return fail(at, format!("more than {MAX_VALUES} alternatives"));
    }
    let mut operands = Vec::new();
    let mut absent = false;
    for (i, item) in items.iter().enumerate() {
        let at = format!("{at}[{i}]");
        match item {
            Value::Object(op) => match parse_operator(op, &at)? {
                Some(operand) => operands.push(operand),
                None => absent = true,
            },
            Value::Array(_) => {
                return fail(at, "lists cannot be nested; use one list of alternatives")
            }
            v => operands.push(Operand::Exact(scalar(v, &at)?)),
        }
    }
    let mut dnf = Vec::new();
    if !operands.is_empty() {
        dnf.push(Conjunction {
            conditions: vec![Condition::Values {
                path: path.clone(),
                operands,
            }],
        });
    }
    if absent {
        dnf.push(Conjunction {
            conditions: vec![Condition::Absent { path }],
        });
    }
    Ok(dnf)
}

fn scalar(v: &Value, at: &str) -> Result<Scalar, PatternError> {
    Ok(match v {
        Value::String(s) => Scalar::Str(s.as_str().into()),
        Value::Number(n) => Scalar::Num(number(n, at)?),
        Value::Bool(b) => Scalar::Bool(*b),
        Value::Null => Scalar::Null,
        _ => return fail(at, "expected a string, number, boolean or null"),
    })
}

fn number(n: &serde_json::Number, at: &str) -> Result<f64, PatternError> {
    match n.as_f64() {
        // -0 and 0 are one value.
        Some(x) if x.is_finite() => Ok(x + 0.0),
        _ => fail(at, format!("{n} is outside the range of a double")),
    }
}

fn string<'a>(v: &'a Value, at: &str) -> Result<&'a str, PatternError> {
    v.as_str().map_or_else(|| fail(at, "expected a string"), Ok)
}

/// One operator object; `None` for `exists: false`.
fn parse_operator(op: &Map<String, Value>, at: &str) -> Result<Option<Operand>, PatternError> {
    let mut entries = op.iter();
    let (Some((name, arg)), None) = (entries.next(), entries.next()) else {
        return fail(
            at,
            "an operator object has exactly one key, e.g. {\"prefix\": \"a\"}",
        );
    };
    let at_op = format!("{at}.{name}");
    let at = at_op.as_str();
    Ok(Some(match name.as_str() {
        "prefix" | "suffix" => {
            let suffix = name == "suffix";
            match arg {
                Value::Object(m) => {
                    let text = ignore_case_arg(m, at)?;
                    if suffix {
                        Operand::SuffixIc(text)
                    } else {
                        Operand::PrefixIc(text)
                    }
                }
                v => {
                    let text = string(v, at)?.into();
                    if suffix {
                        Operand::Suffix(text)
                    } else {
                        Operand::Prefix(text)
                    }
                }
            }
        }
        "equals-ignore-case" => Operand::EqualsIc(to_lower(string(arg, at)?).into()),
        "wildcard" => Operand::Wildcard(Glob::parse(string(arg, at)?).or_else(|e| fail(at, e))?),
        "contains" => Operand::Contains(string(arg, at)?.into()),
        "anything-but" => Operand::AnythingBut(parse_anything_but(arg, at)?),
        "numeric" => Operand::Numeric(parse_numeric(arg, at)?),
        "cidr" => Operand::Cidr(Cidr::parse(string(arg, at)?).or_else(|e| fail(at, e))?),
        "exists" => match arg {
            Value::Bool(true) => Operand::Exists,
            Value::Bool(false) => return Ok(None),
            _ => return fail(at, "expected true or false"),
        },
        other => {
            return fail(
                at.rsplit_once('.').map_or(at, |(p, _)| p),
                format!(
                    "unknown operator {other:?}; expected one of {}",
                    OPERATORS.join(", ")
                ),
            )
        }
    }))
}

/// `{"equals-ignore-case": "text"}` inside `prefix` / `suffix`.
fn ignore_case_arg(m: &Map<String, Value>, at: &str) -> Result<Box<str>, PatternError> {
    match m.get("equals-ignore-case") {
        Some(v) if m.len() == 1 => {
            Ok(to_lower(string(v, &format!("{at}.equals-ignore-case"))?).into())
        }
        _ => fail(
            at,
            "expected a string or {\"equals-ignore-case\": \"text\"}",
        ),
    }
}

fn parse_anything_but(arg: &Value, at: &str) -> Result<Exclusion, PatternError> {
    match arg {
        Value::String(_) | Value::Number(_) => Ok(Exclusion::Values(vec![scalar(arg, at)?])),
        Value::Array(items) => {
            if items.is_empty() || items.len() > MAX_VALUES {
                return fail(at, format!("list 1 to {MAX_VALUES} values"));
            }
            let strings = items[0].is_string();
            let mut values = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let at = format!("{at}[{i}]");
                match item {
                    Value::String(_) | Value::Number(_) if item.is_string() == strings => {
                        values.push(scalar(item, &at)?)
                    }
                    Value::String(_) | Value::Number(_) => {
                        return fail(at, "the list must hold only strings or only numbers")
                    }
                    _ => return fail(at, "expected a string or a number"),
                }
            }
            Ok(Exclusion::Values(values))
        }
        Value::Object(m) => {
            let mut entries = m.iter();
            let (Some((name, v)), None) = (entries.next(), entries.next()) else {
                return fail(
                    at,
                    "expected one of prefix, suffix, equals-ignore-case, wildcard",
                );
            };
            let at = format!("{at}.{name}");
            let texts: Vec<&str> = match v {
                Value::String(s) => vec![s],
                Value::Array(items) if !items.is_empty() && items.len() <= MAX_VALUES => items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| string(item, &format!("{at}[{i}]")))
                    .collect::<Result<_, _>>()?,
                _ => return fail(at, "expected a string or a non-empty list of strings"),
            };
            let boxed = |t: &&str| Box::<str>::from(*t);
            Ok(match name.as_str() {
                "prefix" => Exclusion::Prefixes(texts.iter().map(boxed).collect()),
                "suffix" => Exclusion::Suffixes(texts.iter().map(boxed).collect()),
                "equals-ignore-case" => {
                    Exclusion::EqualsIc(texts.iter().map(|t| to_lower(t).into()).collect())
                }
                "wildcard" => Exclusion::Wildcards(
                    texts
                        .iter()
                        .map(|t| Glob::parse(t).or_else(|e| fail(&at, e)))
                        .collect::<Result<_, _>>()?,
                ),
                other => {
                    return fail(
                        at,
                        format!("anything-but takes prefix, suffix, equals-ignore-case or wildcard, not {other:?}"),
                    )
                }
            })
        }
        _ => fail(
            at,
            "expected a string, a number, a list of them, or an object such as {\"prefix\": \"a\"}",
        ),
    }
}

fn parse_numeric(arg: &Value, at: &str) -> Result<Range, PatternError> {
    let Value::Array(items) = arg else {
        return fail(at, "expected a list such as [\">\", 0, \"<=\", 5]");
    };
    if items.len() != 2 && items.len() != 4 {
        return fail(
            at,
            "expected one or two comparisons, e.g. [\"=\", 5] or [\">\", 0, \"<=\", 5]",
        );
    }
    let mut range = Range {
        lower: None,
        upper: None,
    };
    let mut equals = false;
    for (i, pair) in items.chunks(2).enumerate() {
        let op_at = format!("{at}[{}]", 2 * i);
        let num_at = format!("{at}[{}]", 2 * i + 1);
        let Value::Number(n) = &pair[1] else {
            return fail(num_at, "expected a number");
        };
        let n = number(n, &num_at)?;
        let (slot, bound) = match pair[0].as_str() {
            Some("=") => {
                equals = true;
                range.lower = Some((n, true));
                (&mut range.upper, (n, true))
            }
            Some(">") => (&mut range.lower, (n, false)),
            Some(">=") => (&mut range.lower, (n, true)),
            Some("<") => (&mut range.upper, (n, false)),
            Some("<=") => (&mut range.upper, (n, true)),
            _ => return fail(op_at, "expected one of =, <, <=, >, >="),
        };
        if slot.is_some() {
            return fail(
                op_at,
                "at most one lower bound (> or >=) and one upper bound (< or <=); = stands alone",
            );
        }
        *slot = Some(bound);
    }
    if equals && items.len() == 4 {
        return fail(at, "= cannot be combined with another comparison");
    }
    if let (Some((lo, lo_incl)), Some((hi, hi_incl))) = (range.lower, range.upper) {
        if lo > hi || (lo == hi && !(lo_incl && hi_incl)) {
            return fail(at, "the range is empty");
        }
    }
    Ok(range)
}

/// One CloudEvents filter expression; `negate` pushes a surrounding `not` inwards.
fn parse_filter(v: &Value, at: &str, negate: bool, depth: usize) -> Result<Dnf, PatternError> {
    if depth > MAX_DEPTH {
        return fail(at, format!("nested deeper than {MAX_DEPTH} levels"));
    }
    let Some(map) = v.as_object() else {
        return fail(
            at,
            "a filter is an object with one dialect, e.g. {\"exact\": {\"type\": \"x\"}}",
        );
    };
    let mut entries = map.iter();
    let (Some((dialect, arg)), None) = (entries.next(), entries.next()) else {
        return fail(
            at,
            "a filter has exactly one dialect: exact, prefix, suffix, all, any, not or sql",
        );
    };
    let at = format!("{at}.{dialect}");
    match dialect.as_str() {
        "exact" | "prefix" | "suffix" => {
            let Some(attrs) = arg.as_object().filter(|m| !m.is_empty()) else {
                return fail(at, "expected an object of attribute: value");
            };
            // exact {a, b} is a AND b; negated, NOT a OR NOT b.
            let mut dnf = if negate { Vec::new() } else { vec![Conjunction::default()] };
            for (name, value) in attrs {
                let at = format!("{at}.{name}");
if !is_attribute_name(name) {
                    return fail(
                        at,
                        "not a CloudEvents attribute name (lower-case letters and digits)",
                    );
                }
                if name == "data" {
                    return fail(
                        at,
                        "filters see context attributes only; match data with a pattern",
                    );
                }
                let text = string(value, &at)?;
                let path = vec![Box::<str>::from(name.as_str())];
                let one = attribute_filter(dialect, text, path, negate);
                dnf = if negate { or(dnf, one, &at)? } else { and(dnf, one, &at)? };
            }
            Ok(dnf)
        }
        "all" | "any" => {
            let Some(items) = arg.as_array().filter(|a| !a.is_empty()) else {
                return fail(at, "expected a non-empty list of filters");
            };
            // all = AND, any = OR; a negation swaps them (De Morgan).
            let conjunctive = (dialect == "all") != negate;
            let mut dnf = if conjunctive { vec![Conjunction::default()] } else { Vec::new() };
            for (i, item) in items.iter().enumerate() {
                let at = format!("{at}[{i}]");
                let one = parse_filter(item, &at, negate, depth + 1)?;
                dnf = if conjunctive { and(dnf, one, &at)? } else { or(dnf, one, &at)? };
            }
            Ok(dnf)
        }
        "not" => parse_filter(arg, &at, !negate, depth + 1),
        "sql" => {
            let expr = Sql::parse(string(arg, &at)?).or_else(|e| fail(&at, e))?;
            Ok(vec![Conjunction {
                conditions: vec![Condition::Sql {
                    expr: Arc::new(expr),
                    negate,
                }],
            }])
        }
        other => fail(
            at,
            format!("unknown filter dialect {other:?}; expected exact, prefix, suffix, all, any, not or sql"),
        ),
    }
}

/// `exact`/`prefix`/`suffix` on one attribute, compared by the attribute's string form.
fn attribute_filter(dialect: &str, text: &str, path: Vec<Box<str>>, negate: bool) -> Dnf {
    let condition = |operands| {
        vec![Conjunction {
            conditions: vec![Condition::Values {
                path: path.clone(),
                operands,
            }],
        }]
    };
    if !negate {
        return condition(vec![match dialect {
            "exact" => {
                let forms = string_forms(text);
                return condition(forms.into_iter().map(Operand::Exact).collect());
            }
            "prefix" => Operand::Prefix(text.into()),
            _ => Operand::Suffix(text.into()),
        }]);
    }
    let exclusion = match dialect {
        "exact" => Exclusion::Values(string_forms(text)),
        "prefix" => Exclusion::Prefixes(vec![text.into()]),
        _ => Exclusion::Suffixes(vec![text.into()]),
    };
    // NOT (a = v): a present with another value, or a missing.
    let mut dnf = condition(vec![Operand::AnythingBut(exclusion)]);
    dnf.push(Conjunction {
        conditions: vec![Condition::Absent { path }],
    });
    dnf
}

/// The attribute values whose CloudEvents string form is `text`: the string itself, and
/// the integer or boolean it canonically spells.
fn string_forms(text: &str) -> Vec<Scalar> {
    let mut forms = vec![Scalar::Str(text.into())];
    if let Ok(n) = text.parse::<i32>() {
        if n.to_string() == text {
            forms.push(Scalar::Num(n as f64));
        }
    }
    match text {
        "true" => forms.push(Scalar::Bool(true)),
        "false" => forms.push(Scalar::Bool(false)),
        _ => {}
    }
    forms
}
