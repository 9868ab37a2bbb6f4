//! The value indexes of one field: given a leaf value, which conjunctions might match it,
//! at a cost that depends on the value, not on how many conditions the field has.
//!
//! - exact values and `equals-ignore-case`: hash maps;
//! - `prefix` / `suffix` (and their ignore-case forms, and wildcards by their literal
//!   start or end): byte tries walked once along the value (suffixes reversed);
//! - `numeric`: an interval tree;
//! - `cidr`: one hash lookup per distinct prefix length;
//! - what none of these can index (`contains`, `*x*` wildcards) is tested one by one.
//!
//! Hits are candidates: the matcher still checks each candidate conjunction in full.

use std::collections::HashMap;
use std::net::IpAddr;

use super::operand::{ip_bits, mask, Cidr, Leaf, Operand, Range, Scalar};

type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Index key of a number: its bits, with -0 folded into 0.
fn num_key(n: f64) -> u64 {
    (n + 0.0).to_bits()
}

/// Conjunction ids found through an index.
pub(crate) type Hits = Vec<u32>;

/// What a field's index keeps as is from building to lookups.
#[derive(Default)]
struct Keys {
    exact_str: Map<Box<str>, Hits>,
    exact_num: Map<u64, Hits>,
    exact_true: Hits,
    exact_false: Hits,
    exact_null: Hits,
    equals_ic: Map<Box<str>, Hits>,
    cidr: Map<(bool, u8, u128), Hits>,
    /// Tested one by one.
    scan: Vec<(Operand, u32)>,
    /// `exists: true`: every leaf value.
    any: Hits,
}

/// A field's index under construction.
#[derive(Default)]
pub(crate) struct FieldIndex {
    keys: Keys,
    prefix: TrieBuilder,
    prefix_ic: TrieBuilder,
    suffix: TrieBuilder,
    suffix_ic: TrieBuilder,
    numeric: Vec<(Range, u32)>,
}

/// Whether the index can find values matching the operand without testing it for each.
pub(crate) fn indexable(op: &Operand) -> bool {
    !matches!(op, Operand::AnythingBut(_))
}

impl FieldIndex {
    pub(crate) fn add(&mut self, op: &Operand, conj: u32) {
        let keys = &mut self.keys;
        match op {
            Operand::Exact(Scalar::Str(s)) => {
                keys.exact_str.entry(s.clone()).or_default().push(conj)
            }
            Operand::Exact(Scalar::Num(n)) => {
                keys.exact_num.entry(num_key(*n)).or_default().push(conj)
            }
            Operand::Exact(Scalar::Bool(true)) => keys.exact_true.push(conj),
            Operand::Exact(Scalar::Bool(false)) => keys.exact_false.push(conj),
            Operand::Exact(Scalar::Null) => keys.exact_null.push(conj),
            Operand::EqualsIc(s) => keys.equals_ic.entry(s.clone()).or_default().push(conj),
            Operand::Prefix(p) => self.prefix.insert(p.bytes(), conj),
            Operand::PrefixIc(p) => self.prefix_ic.insert(p.bytes(), conj),
            Operand::Suffix(p) => self.suffix.insert(p.bytes().rev(), conj),
            Operand::SuffixIc(p) => self.suffix_ic.insert(p.bytes().rev(), conj),
            Operand::Numeric(r) => self.numeric.push((*r, conj)),
            Operand::Cidr(c) => keys
                .cidr
                .entry((c.v6, c.len, c.bits))
                .or_default()
                .push(conj),
            Operand::Exists => keys.any.push(conj),
            Operand::Wildcard(g) => {
                // A glob's literal start (or end) is a prefix (suffix) every match has.
                if !g.literal_prefix().is_empty() {
                    self.prefix.insert(g.literal_prefix().bytes(), conj)
                } else if let Some(s) = g.literal_suffix().filter(|s| !s.is_empty()) {
                    self.suffix.insert(s.bytes().rev(), conj)
                } else {
                    keys.scan.push((op.clone(), conj))
                }
            }
            Operand::Contains(_) | Operand::AnythingBut(_) => keys.scan.push((op.clone(), conj)),
        }
    }

    pub(crate) fn freeze(self) -> FrozenIndex {
        let mut cidr_lengths: Vec<(bool, u8)> = self
            .keys
            .cidr
            .keys()
            .map(|(v6, len, _)| (*v6, *len))
            .collect();
        cidr_lengths.sort_unstable();
        cidr_lengths.dedup();
        FrozenIndex {
            keys: self.keys,
            prefix: self.prefix.freeze(),
            prefix_ic: self.prefix_ic.freeze(),
            suffix: self.suffix.freeze(),
            suffix_ic: self.suffix_ic.freeze(),
            numeric: IntervalTree::new(self.numeric),
            cidr_lengths,
        }
    }
}

/// A field's index, ready for lookups.
pub(crate) struct FrozenIndex {
    keys: Keys,
    prefix: Trie,
    prefix_ic: Trie,
    suffix: Trie,
    suffix_ic: Trie,
    numeric: IntervalTree,
    cidr_lengths: Vec<(bool, u8)>,
}

impl FrozenIndex {
    /// Calls `hit` with every conjunction the value may satisfy (maybe more than once).
    pub(crate) fn probe(&self, leaf: &Leaf<'_>, hit: &mut impl FnMut(u32)) {
        let mut all = |ids: &[u32]| ids.iter().for_each(|&c| hit(c));
        all(&self.keys.any);
        match *leaf {
            Leaf::Str(s, lower) => {
                if let Some(ids) = self.keys.exact_str.get(s) {
                    all(ids);
                }
                self.prefix.walk(s.bytes(), &mut all);
                self.suffix.walk(s.bytes().rev(), &mut all);
                if let Some(lower) = lower {
                    if let Some(ids) = self.keys.equals_ic.get(lower) {
                        all(ids);
                    }
                    self.prefix_ic.walk(lower.bytes(), &mut all);
                    self.suffix_ic.walk(lower.bytes().rev(), &mut all);
                }
                if !self.cidr_lengths.is_empty() {
                    if let Ok(ip) = s.parse::<IpAddr>() {
                        let (v6, bits) = ip_bits(ip);
                        for &(family, len) in &self.cidr_lengths {
                            if family == v6 {
                                if let Some(ids) =
                                    self.keys.cidr.get(&(v6, len, mask(bits, len, v6)))
                                {
                                    all(ids);
                                }
                            }
                        }
                    }
                }
            }
            Leaf::Num(n) => {
                if let Some(ids) = self.keys.exact_num.get(&num_key(n)) {
                    all(ids);
                }
                self.numeric.stab(n, &mut all);
            }
            Leaf::Bool(true) => all(&self.keys.exact_true),
            Leaf::Bool(false) => all(&self.keys.exact_false),
            Leaf::Null => all(&self.keys.exact_null),
        }
        for (op, conj) in &self.keys.scan {
            if op.matches(leaf) {
                hit(*conj);
            }
        }
    }
}

/// Byte trie under construction.
#[derive(Default)]
struct TrieBuilder {
    nodes: Vec<BuildNode>,
}

#[derive(Default)]
struct BuildNode {
    edges: Vec<(u8, u32)>,
    hits: Hits,
}

impl TrieBuilder {
    fn insert(&mut self, key: impl Iterator<Item = u8>, hit: u32) {
        if self.nodes.is_empty() {
            self.nodes.push(BuildNode::default());
        }
        let mut node = 0usize;
        for b in key {
            node = match self.nodes[node].edges.binary_search_by_key(&b, |e| e.0) {
                Ok(i) => self.nodes[node].edges[i].1 as usize,
                Err(i) => {
                    let next = self.nodes.len();
                    self.nodes[node].edges.insert(i, (b, next as u32));
                    self.nodes.push(BuildNode::default());
                    next
                }
            };
        }
        self.nodes[node].hits.push(hit);
    }

    fn freeze(self) -> Trie {
        let mut trie = Trie::default();
        for n in self.nodes {
            trie.nodes.push(TrieNode {
                edges: trie.edge_bytes.len() as u32,
                edge_count: n.edges.len() as u32,
                hits: trie.hits.len() as u32,
                hit_count: n.hits.len() as u32,
            });
            trie.edge_bytes.extend(n.edges.iter().map(|e| e.0));
            trie.edge_targets.extend(n.edges.iter().map(|e| e.1));
            trie.hits.extend(n.hits);
        }
        trie
    }
}

/// A frozen byte trie in flat arrays: per node, its edges' bytes (searched with memchr),
/// their targets, and the conjunctions whose key ends there.
#[derive(Default)]
struct Trie {
    nodes: Vec<TrieNode>,
    edge_bytes: Vec<u8>,
    edge_targets: Vec<u32>,
    hits: Vec<u32>,
}

struct TrieNode {
    edges: u32,
    edge_count: u32,
    hits: u32,
    hit_count: u32,
}

impl Trie {
    /// Reports the hits of every key that is a prefix of `key`.
    fn walk(&self, key: impl Iterator<Item = u8>, out: &mut impl FnMut(&[u32])) {
        if self.nodes.is_empty() {
            return;
        }
        let mut node = &self.nodes[0];
        let mut key = key;
        loop {
            if node.hit_count > 0 {
                out(&self.hits[node.hits as usize..(node.hits + node.hit_count) as usize]);
            }
            let Some(b) = key.next() else { return };
            let start = node.edges as usize;
            let bytes = &self.edge_bytes[start..start + node.edge_count as usize];
            match memchr::memchr(b, bytes) {
                Some(i) => node = &self.nodes[self.edge_targets[start + i] as usize],
                None => return,
            }
        }
    }
}

/// A static centred interval tree over numeric ranges: a lookup costs O(log n + hits).
#[derive(Default)]
struct IntervalTree {
    nodes: Vec<IntervalNode>,
}

struct IntervalNode {
    centre: f64,
    /// Ranges containing `centre`, by lower bound ascending, and by upper bound descending.
    by_lower: Vec<(Range, u32)>,
    by_upper: Vec<(Range, u32)>,
    left: Option<u32>,
    right: Option<u32>,
}

/// A value inside the range (for ranges that contain any double).
fn inner_point(r: &Range) -> f64 {
    match (r.lower, r.upper) {
        (Some((lo, _)), Some((hi, _))) => {
            let mid = lo / 2.0 + hi / 2.0;
            [mid, lo, hi]
                .into_iter()
                .find(|x| r.contains(*x))
                .unwrap_or(mid)
        }
        (Some((lo, incl)), None) => {
            if incl {
                lo
            } else {
                lo.next_up()
            }
        }
        (None, Some((hi, incl))) => {
            if incl {
                hi
            } else {
                hi.next_down()
            }
        }
        (None, None) => 0.0,
    }
}

fn lower_value(r: &Range) -> f64 {
    r.lower.map_or(f64::NEG_INFINITY, |b| b.0)
}

fn upper_value(r: &Range) -> f64 {
    r.upper.map_or(f64::INFINITY, |b| b.0)
}

impl IntervalTree {
    fn new(ranges: Vec<(Range, u32)>) -> IntervalTree {
        let mut tree = IntervalTree::default();
        if !ranges.is_empty() {
            tree.build(ranges);
        }
        tree
    }

    fn build(&mut self, ranges: Vec<(Range, u32)>) -> u32 {
        // The median of points inside each range: at least one range contains it.
        let mut points: Vec<f64> = ranges.iter().map(|(r, _)| inner_point(r)).collect();
        let mid = points.len() / 2;
        let centre = *points.select_nth_unstable_by(mid, f64::total_cmp).1;
        let total = ranges.len();
        let (mut left, mut right, mut here) = (Vec::new(), Vec::new(), Vec::new());
        for (r, id) in ranges {
            if r.contains(centre) {
                here.push((r, id));
            } else if upper_value(&r) <= centre {
                left.push((r, id));
            } else {
                right.push((r, id));
            }
        }
        // Only ranges that contain no double at all can defeat the split: keep them here.
        if left.len() == total || right.len() == total {
            here.append(&mut left);
            here.append(&mut right);
        }
        let mut by_lower = here.clone();
        by_lower.sort_by(|a, b| lower_value(&a.0).total_cmp(&lower_value(&b.0)));
        let mut by_upper = here;
        by_upper.sort_by(|a, b| upper_value(&b.0).total_cmp(&upper_value(&a.0)));
        let at = self.nodes.len();
        self.nodes.push(IntervalNode {
            centre,
            by_lower,
            by_upper,
            left: None,
            right: None,
        });
        if !left.is_empty() {
            let l = self.build(left);
            self.nodes[at].left = Some(l);
        }
        if !right.is_empty() {
            let r = self.build(right);
            self.nodes[at].right = Some(r);
        }
        at as u32
    }

    fn stab(&self, x: f64, out: &mut impl FnMut(&[u32])) {
        let mut at = (!self.nodes.is_empty()).then_some(0u32);
        while let Some(i) = at {
            let node = &self.nodes[i as usize];
            // The ranges here contain the centre, so only one of their ends can exclude x.
            if x < node.centre {
                for (r, id) in &node.by_lower {
                    if lower_value(r) > x {
                        break;
                    }
                    if r.contains(x) {
                        out(std::slice::from_ref(id));
                    }
                }
                at = node.left;
            } else if x > node.centre {
                for (r, id) in &node.by_upper {
                    if upper_value(r) < x {
                        break;
                    }
                    if r.contains(x) {
                        out(std::slice::from_ref(id));
                    }
                }
                at = node.right;
            } else {
                for (r, id) in &node.by_lower {
                    if r.contains(x) {
                        out(std::slice::from_ref(id));
                    }
                }
                return;
            }
        }
    }
}

impl Cidr {
    #[cfg(test)]
    fn key(&self) -> (bool, u8, u128) {
        (self.v6, self.len, self.bits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(lo: Option<(f64, bool)>, hi: Option<(f64, bool)>) -> Range {
        Range {
            lower: lo,
            upper: hi,
        }
    }

    #[test]
    fn interval_tree_agrees_with_a_scan() {
        // Deterministic pseudo-random ranges, including open, closed and unbounded ends.
        let mut seed = 0x2545F4914F6CDD1Du64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut ranges = Vec::new();
        for id in 0..500u32 {
            let a = (next() % 100) as f64;
            let b = a + (next() % 30) as f64;
            let lo = (next() % 5 != 0).then_some((a, next() % 2 == 0));
            let hi = (next() % 5 != 0).then_some((b, next() % 2 == 0));
            let r = range(lo, hi);
            if lo.zip(hi).is_some_and(|(l, h)| l.0 == h.0 && !(l.1 && h.1)) {
                continue;
            }
            ranges.push((r, id));
        }
        let tree = IntervalTree::new(ranges.clone());
        for x in (-10..140)
            .map(|x| x as f64 / 1.0)
            .chain([0.5, 99.5, f64::MAX, f64::MIN])
        {
            let mut got = Vec::new();
            tree.stab(x, &mut |ids: &[u32]| got.extend_from_slice(ids));
            got.sort_unstable();
            let mut want: Vec<u32> = ranges
                .iter()
                .filter(|(r, _)| r.contains(x))
                .map(|(_, id)| *id)
                .collect();
            want.sort_unstable();
            assert_eq!(got, want, "x = {x}");
        }
    }

    #[test]
    fn tries_report_every_prefix() {
        let mut b = TrieBuilder::default();
        for (i, p) in ["", "a", "ab", "abc", "b"].iter().enumerate() {
            b.insert(p.bytes(), i as u32);
        }
        let t = b.freeze();
        let mut got = Vec::new();
        t.walk("abd".bytes(), &mut |ids: &[u32]| got.extend_from_slice(ids));
        assert_eq!(got, [0, 1, 2]);
    }

    #[test]
    fn cidr_index_keys_are_masked() {
        let c = Cidr::parse("10.1.2.3/8").unwrap();
        assert_eq!(c.key(), (false, 8, 10u128 << 24));
    }
}
