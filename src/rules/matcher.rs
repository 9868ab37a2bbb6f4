//! The matcher of one bus: which rules match an event, at a cost that depends on the
//! event and on the rules it (nearly) matches, not on how many rules the bus has.
//!
//! Compiling: every rule's pattern is already an OR of conjunctions. Each conjunction is
//! filed in the value index of one of its fields, under its most selective condition
//! (an exact value shared by few conjunctions beats a prefix, which beats a range, ...).
//! Conjunctions with no indexable condition (only `anything-but`, `exists: false` or
//! CESQL) are checked for every event.
//!
//! Matching: the event is flattened once into the leaf values of the mentioned fields;
//! each value is looked up in its field's index, which yields candidate conjunctions; each
//! candidate is then checked in full, with array consistency. See docs/patterns.md.

use std::cell::RefCell;
use std::sync::Arc;

use super::cesql::{Sql, SqlValue};
use super::flatten::{Flat, LeafKind, LeafRec, Paths, Walker};
use super::index::{indexable, FieldIndex, FrozenIndex};
use super::operand::{Leaf, Operand, Scalar};
use super::pattern::{Condition, Pattern};

/// What the matcher sees of an event: its attributes as a JSON object, and its data.
pub struct EventView<'a> {
    pub attrs: &'a [u8],
    pub data: EventData<'a>,
}

pub enum EventData<'a> {
    None,
    /// JSON data, as JSON text.
    Json(&'a [u8]),
    /// Text data: one string at `data`.
    Text(&'a str),
}

/// The event's attributes are not a JSON object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the event's attributes are not valid JSON")]
pub struct InvalidEvent;

/// All rules of one bus, ready to match.
pub struct Matcher {
    paths: Paths,
    /// Per field: does some rule ignore case on it?
    lower: Vec<bool>,
    /// Per field: its value index, if some conjunction is filed there.
    indexes: Vec<Option<Box<FrozenIndex>>>,
    conjunctions: Vec<Conj>,
    /// Conjunctions with no indexable condition.
    always: Vec<u32>,
}

struct Conj {
    rule: u32,
    values: Box<[ValueCond]>,
    absent: Box<[u32]>,
    sql: Box<[SqlCond]>,
}

struct ValueCond {
    field: u32,
    operands: Box<[Operand]>,
}

struct SqlCond {
    expr: Arc<Sql>,
    negate: bool,
    /// The attributes it reads, with their field ids.
    attrs: Box<[(Box<str>, u32)]>,
}

/// Per-thread buffers, so matching allocates nothing once warm.
#[derive(Default)]
struct Scratch {
    flat: Flat,
    seen: Vec<u32>,
    generation: u32,
    candidates: Vec<u32>,
    options: Vec<u32>,
    bounds: Vec<(u32, u32)>,
    chosen: Vec<u32>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::default();
}

impl Matcher {
    /// Compiles the rules of a bus; rule `i` is the `i`-th pattern.
    pub fn new(rules: Vec<Pattern>) -> Matcher {
        let mut paths = Paths::new();
        let mut conjunctions = Vec::new();
        for (rule, pattern) in rules.into_iter().enumerate() {
            for c in pattern.conjunctions {
                let mut conj = Conj {
                    rule: rule as u32,
                    values: Box::default(),
                    absent: Box::default(),
                    sql: Box::default(),
                };
                let (mut values, mut absent, mut sql) = (Vec::new(), Vec::new(), Vec::new());
                for condition in c.conditions {
                    match condition {
                        Condition::Values { path, operands } => values.push(ValueCond {
                            field: paths.field(&path),
                            operands: operands.into(),
                        }),
                        Condition::Absent { path } => absent.push(paths.field(&path)),
                        Condition::Sql { expr, negate } => {
                            // CloudEvents filters see context attributes only.
                            let attrs = expr
                                .attributes()
                                .into_iter()
                                .filter(|a| a != "data")
                                .map(|a| {
                                    let field = paths.field(&[a.as_str().into()]);
                                    (a.into_boxed_str(), field)
                                })
                                .collect();
                            sql.push(SqlCond {
                                expr,
                                negate,
                                attrs,
                            })
                        }
                    }
                }
                conj.values = values.into();
                conj.absent = absent.into();
                conj.sql = sql.into();
                conjunctions.push(conj);
            }
        }

        let fields = paths.field_count();
        let mut lower = vec![false; fields];
        for cond in conjunctions.iter().flat_map(|c| c.values.iter()) {
            if cond.operands.iter().any(Operand::ignores_case) {
                lower[cond.field as usize] = true;
            }
        }

        // How many conditions test each exact value, to prefer rare ones as index keys.
        let mut shared: std::collections::HashMap<(u32, ExactKey), u32> = Default::default();
        for cond in conjunctions.iter().flat_map(|c| c.values.iter()) {
            for op in cond.operands.iter() {
                if let Some(key) = exact_key(op) {
                    *shared.entry((cond.field, key)).or_default() += 1;
                }
            }
        }
        let mut builders: Vec<Option<FieldIndex>> = (0..fields).map(|_| None).collect();
        let mut always = Vec::new();
        for (id, conj) in conjunctions.iter().enumerate() {
            let best = conj
                .values
                .iter()
                .filter(|c| c.operands.iter().all(indexable))
                .min_by_key(|c| cost(c, &shared));
            match best {
                Some(cond) => {
                    let index =
                        builders[cond.field as usize].get_or_insert_with(FieldIndex::default);
                    for op in cond.operands.iter() {
                        index.add(op, id as u32);
                    }
                }
                None => always.push(id as u32),
            }
        }
        Matcher {
            paths,
            lower,
            indexes: builders
                .into_iter()
                .map(|b| b.map(|b| Box::new(b.freeze())))
                .collect(),
            conjunctions,
            always,
        }
    }

    /// Whether any rule looks into `data` (if not, the router skips reading it).
    pub fn needs_data(&self) -> bool {
        self.paths.data_node().is_some()
    }

    /// Appends the index of every matching rule to `out`, ascending, each once. An event
    /// whose attributes are not valid JSON matches nothing.
    pub fn matching(&self, event: &EventView<'_>, out: &mut Vec<usize>) {
        let _ = self.matching_checked(event, out);
    }

    /// As [`Matcher::matching`], but says when the attributes are not valid JSON. Data
    /// that is not valid JSON counts as absent.
    pub fn matching_checked(
        &self,
        event: &EventView<'_>,
        out: &mut Vec<usize>,
    ) -> Result<(), InvalidEvent> {
        SCRATCH.with_borrow_mut(|s| self.match_with(event, out, s))
    }

    fn match_with(
        &self,
        event: &EventView<'_>,
        out: &mut Vec<usize>,
        s: &mut Scratch,
    ) -> Result<(), InvalidEvent> {
        let walker = Walker {
            paths: &self.paths,
            lower: &self.lower,
        };
        let flat = &mut s.flat;
        flat.clear(self.paths.field_count());
        flat.add_json(&walker, event.attrs, 0)
            .map_err(|_| InvalidEvent)?;
        if let Some(node) = self.paths.data_node() {
            match event.data {
                EventData::Json(json) => {
                    let _ = flat.add_json(&walker, json, node);
                }
                EventData::Text(text) => flat.add_text(&walker, text, node),
                EventData::None => {}
            }
        }

        // Candidates: conjunctions filed under a value of the event, plus the unindexed.
        if s.seen.len() < self.conjunctions.len() {
            s.seen.resize(self.conjunctions.len(), 0);
        }
        s.generation = s.generation.wrapping_add(1);
        if s.generation == 0 {
            s.seen.fill(0);
            s.generation = 1;
        }
        let (seen, generation, candidates) = (&mut s.seen, s.generation, &mut s.candidates);
        candidates.clear();
        let mut add = |c: u32| {
            let mark = &mut seen[c as usize];
            if *mark != generation {
                *mark = generation;
                candidates.push(c);
            }
        };
        for rec in &flat.leaves {
            if let Some(index) = &self.indexes[rec.field as usize] {
                index.probe(&leaf(flat, rec), &mut add);
            }
        }
        self.always.iter().for_each(|&c| add(c));

        let start = out.len();
        for &c in candidates.iter() {
            let conj = &self.conjunctions[c as usize];
            if verify(conj, flat, &mut s.options, &mut s.bounds, &mut s.chosen) {
                out.push(conj.rule as usize);
            }
        }
        out[start..].sort_unstable();
        let mut kept = start;
        for i in start..out.len() {
            if kept == start || out[kept - 1] != out[i] {
                out[kept] = out[i];
                kept += 1;
            }
        }
        out.truncate(kept);
        Ok(())
    }
}

fn leaf<'a>(flat: &'a Flat, rec: &LeafRec) -> Leaf<'a> {
    match rec.value {
        LeafKind::Str => Leaf::Str(
            &flat.text[rec.text.0 as usize..rec.text.1 as usize],
            rec.lower.map(|(a, b)| &flat.text[a as usize..b as usize]),
        ),
        LeafKind::Num(n) => Leaf::Num(n),
        LeafKind::Bool(b) => Leaf::Bool(b),
        LeafKind::Null => Leaf::Null,
    }
}

/// Checks every condition of a candidate conjunction.
fn verify(
    conj: &Conj,
    flat: &Flat,
    options: &mut Vec<u32>,
    bounds: &mut Vec<(u32, u32)>,
    chosen: &mut Vec<u32>,
) -> bool {
    if conj.absent.iter().any(|&f| flat.has_leaf(f)) {
        return false;
    }
    for sql in conj.sql.iter() {
        let attr = |name: &str| {
            let (_, field) = sql.attrs.iter().find(|(a, _)| &**a == name)?;
            let (_, rec) = flat.leaves_of(*field).next()?;
            sql_value(&leaf(flat, rec))
        };
        if sql.expr.matches(&attr) == sql.negate {
            return false;
        }
    }
    // For each condition, the leaves that satisfy it.
    options.clear();
    bounds.clear();
    let mut in_arrays = false;
    for cond in conj.values.iter() {
        let start = options.len();
        for (i, rec) in flat.leaves_of(cond.field) {
            let value = leaf(flat, rec);
            if cond.operands.iter().any(|op| op.matches(&value)) {
                options.push(i);
                in_arrays |= rec.pos.0 != rec.pos.1;
            }
        }
        if options.len() == start {
            return false;
        }
        bounds.push((start as u32, options.len() as u32));
    }
    if !in_arrays || bounds.len() < 2 {
        return true;
    }
    // Values inside arrays of objects: one choice per condition, all consistent. Leaves
    // with the same array positions are interchangeable, so each keeps one of each.
    let positions = |leaf: u32| flat.positions_of(&flat.leaves[leaf as usize]);
    let mut unique = Vec::with_capacity(options.len());
    let mut groups = Vec::with_capacity(bounds.len());
    for &(a, b) in bounds.iter() {
        let group = &mut options[a as usize..b as usize];
        group.sort_unstable_by(|x, y| positions(*x).cmp(positions(*y)));
        let start = unique.len();
        for &option in group.iter() {
            if unique[start..]
                .last()
                .is_none_or(|&last| positions(last) != positions(option))
            {
                unique.push(option);
            }
        }
        groups.push((start, unique.len()));
    }
    // The most constrained condition first.
    groups.sort_unstable_by_key(|(a, b)| b - a);
    chosen.clear();
    let mut budget = MAX_CONSISTENCY_STEPS;
    consistent_choice(flat, &unique, &groups, 0, chosen, &mut budget)
}

/// How many choices the array-consistency search may try for one conjunction and event;
/// past it the conjunction does not match (documented in docs/patterns.md).
const MAX_CONSISTENCY_STEPS: u32 = 100_000;

/// Backtracking with forward checking: after each choice, every remaining condition must
/// still have an option consistent with all choices so far.
fn consistent_choice(
    flat: &Flat,
    options: &[u32],
    groups: &[(usize, usize)],
    cond: usize,
    chosen: &mut Vec<u32>,
    budget: &mut u32,
) -> bool {
    let Some(&(a, b)) = groups.get(cond) else {
        return true;
    };
    let positions = |leaf: u32| flat.positions_of(&flat.leaves[leaf as usize]);
    let fits = |chosen: &[u32], option: u32| {
        chosen
            .iter()
            .all(|&c| consistent(positions(c), positions(option)))
    };
    for &option in &options[a..b] {
        if *budget == 0 {
            return false;
        }
        *budget -= 1;
        if !fits(chosen, option) {
            continue;
        }
        chosen.push(option);
        let viable = groups[cond + 1..]
            .iter()
            .all(|&(a, b)| options[a..b].iter().any(|&o| fits(chosen, o)));
        if viable && consistent_choice(flat, options, groups, cond + 1, chosen, budget) {
            return true;
        }
        chosen.pop();
    }
    false
}

/// Two leaves are consistent unless they lie in different elements of one array.
fn consistent(a: &[(u32, u32)], b: &[(u32, u32)]) -> bool {
    a.iter()
        .all(|(array, i)| b.iter().all(|(other, j)| array != other || i == j))
}

fn sql_value(leaf: &Leaf<'_>) -> Option<SqlValue> {
    Some(match *leaf {
        Leaf::Str(s, _) => SqlValue::String(s.to_owned()),
        Leaf::Bool(b) => SqlValue::Boolean(b),
        Leaf::Num(n) if n.fract() == 0.0 && n >= i32::MIN as f64 && n <= i32::MAX as f64 => {
            SqlValue::Integer(n as i32)
        }
        Leaf::Num(n) => SqlValue::String(n.to_string()),
        Leaf::Null => return None,
    })
}

/// An index key some conditions may share: an exact value, a prefix, a suffix.
#[derive(Debug, PartialEq, Eq, Hash)]
enum ExactKey {
    Str(u8, Box<str>),
    Num(u64),
    Other(u8),
}

fn exact_key(op: &Operand) -> Option<ExactKey> {
    Some(match op {
        Operand::Exact(Scalar::Str(s)) => ExactKey::Str(0, s.clone()),
        Operand::EqualsIc(s) => ExactKey::Str(1, s.clone()),
        Operand::Prefix(s) => ExactKey::Str(2, s.clone()),
        Operand::PrefixIc(s) => ExactKey::Str(3, s.clone()),
        Operand::Suffix(s) => ExactKey::Str(4, s.clone()),
        Operand::SuffixIc(s) => ExactKey::Str(5, s.clone()),
        Operand::Exact(Scalar::Num(n)) => ExactKey::Num((n + 0.0).to_bits()),
        Operand::Exact(Scalar::Bool(b)) => ExactKey::Other(*b as u8),
        Operand::Exact(Scalar::Null) => ExactKey::Other(2),
        _ => return None,
    })
}

/// How many candidates a condition is expected to yield if used as the index key: keys
/// by how many conditions share them (a prefix also by how short it is); other
/// operators by their kind.
fn cost(cond: &ValueCond, shared: &std::collections::HashMap<(u32, ExactKey), u32>) -> u64 {
    cond.operands
        .iter()
        .map(|op| {
            let sharing = || {
                let key = exact_key(op).expect("a keyed operand");
                u64::from(shared.get(&(cond.field, key)).copied().unwrap_or(1))
            };
            match op {
                Operand::Exact(_) | Operand::EqualsIc(_) => sharing(),
                Operand::Numeric(r) if r.lower == r.upper => 2,
                Operand::Prefix(p)
                | Operand::PrefixIc(p)
                | Operand::Suffix(p)
                | Operand::SuffixIc(p) => sharing() * (1 + 64 / (1 + p.len() as u64)),
                Operand::Wildcard(_) => 500,
                Operand::Cidr(_) => 1_000,
                Operand::Numeric(_) => 2_000,
                Operand::Contains(_) => 5_000,
                Operand::Exists => 10_000,
                Operand::AnythingBut(_) => 100_000,
            }
        })
        .sum()
}
