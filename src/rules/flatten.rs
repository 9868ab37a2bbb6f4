//! Flattening an event into the leaf values of the fields some rule mentions.
//!
//! The event's JSON (attributes, then data) is read once, forward only; a subtree no
//! rule looks into is skipped without being decoded. Each leaf value records
//! the array elements it lies in (for array consistency): `(array, index)` pairs, kept
//! only for arrays whose element is, or contains, the object holding the value.

use std::collections::HashMap;

type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Deeper than this, a subtree is skipped rather than walked (patterns nest at most 16
/// levels; only arrays inside arrays get this deep).
const MAX_WALK_DEPTH: u32 = 128;

/// The tree of field paths the rules mention; field ids are dense from 0.
#[derive(Default)]
pub(crate) struct Paths {
    nodes: Vec<PathNode>,
    fields: u32,
}

#[derive(Default)]
struct PathNode {
    /// Child names (as JSON-unescaped bytes) and nodes; a map once there are many.
    children: Vec<(Box<[u8]>, u32)>,
    child_map: Option<Map<Box<[u8]>, u32>>,
    field: Option<u32>,
}

/// Up to this many children, a linear scan beats hashing.
const SCAN_CHILDREN: usize = 8;

impl PathNode {
    fn child(&self, name: &[u8]) -> Option<u32> {
        match &self.child_map {
            Some(map) => map.get(name).copied(),
            None => self
                .children
                .iter()
                .find(|(n, _)| **n == *name)
                .map(|(_, c)| *c),
        }
    }
}

const ROOT: u32 = 0;

impl Paths {
    pub(crate) fn new() -> Paths {
        Paths {
            nodes: vec![PathNode::default()],
            fields: 0,
        }
    }

    /// The id of the field at `path`, created if new.
    pub(crate) fn field(&mut self, path: &[Box<str>]) -> u32 {
        let mut node = ROOT;
        for name in path {
            node = match self.nodes[node as usize].child(name.as_bytes()) {
                Some(n) => n,
                None => {
                    let n = self.nodes.len() as u32;
                    self.nodes.push(PathNode::default());
                    let parent = &mut self.nodes[node as usize];
                    parent.children.push((name.as_bytes().into(), n));
                    if parent.children.len() > SCAN_CHILDREN {
                        parent.child_map = Some(parent.children.iter().cloned().collect());
                    }
                    n
                }
            };
        }
        let fields = &mut self.fields;
        *self.nodes[node as usize].field.get_or_insert_with(|| {
            *fields += 1;
            *fields - 1
        })
    }

    pub(crate) fn field_count(&self) -> usize {
        self.fields as usize
    }

    /// The node of `data`, if any rule looks into the data.
    pub(crate) fn data_node(&self) -> Option<u32> {
        self.nodes[ROOT as usize].child(b"data")
    }

    pub(crate) fn field_of(&self, node: u32) -> Option<u32> {
        self.nodes[node as usize].field
    }
}

/// A leaf value found in the event.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LeafRec {
    pub field: u32,
    pub value: LeafKind,
    /// Ranges into [`Flat::text`]: the string and, if wanted, its lower-case form.
    pub text: (u32, u32),
    pub lower: Option<(u32, u32)>,
    /// Range into [`Flat::positions`].
    pub pos: (u32, u32),
    /// The next leaf of the same field, or `NONE`.
    next: u32,
}

const NONE: u32 = u32::MAX;

#[derive(Debug, Clone, Copy)]
pub(crate) enum LeafKind {
    Str,
    Num(f64),
    Bool(bool),
    Null,
}

/// The flattened event, reused from event to event.
#[derive(Default)]
pub(crate) struct Flat {
    pub leaves: Vec<LeafRec>,
    pub text: String,
    pub positions: Vec<(u32, u32)>,
    stack: Vec<(u32, u32)>,
    next_array: u32,
    /// Per field: `(generation, first leaf)`; stale generations mean no leaf.
    heads: Vec<(u32, u32)>,
    generation: u32,
}

pub(crate) struct Walker<'a> {
    pub paths: &'a Paths,
    /// Per field: does some rule ignore case on it?
    pub lower: &'a [bool],
}

impl Flat {
    /// Empties the buffers for an event of a matcher with `fields` fields.
    pub(crate) fn clear(&mut self, fields: usize) {
        self.leaves.clear();
        self.text.clear();
        self.positions.clear();
        self.stack.clear();
        self.next_array = 0;
        if self.heads.len() < fields {
            self.heads.resize(fields, (0, NONE));
        }
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            self.heads.fill((0, NONE));
            self.generation = 1;
        }
    }

    /// The leaves of one field (most recent first).
    pub(crate) fn leaves_of(&self, field: u32) -> impl Iterator<Item = (u32, &LeafRec)> + '_ {
        let (generation, first) = self.heads[field as usize];
        let mut at = if generation == self.generation {
            first
        } else {
            NONE
        };
        std::iter::from_fn(move || {
            let i = at;
            let rec = self.leaves.get(i as usize)?;
            at = rec.next;
            Some((i, rec))
        })
    }

    pub(crate) fn has_leaf(&self, field: u32) -> bool {
        self.heads[field as usize].0 == self.generation
    }

    /// The array elements leaf `i` lies in.
    pub(crate) fn positions_of(&self, leaf: &LeafRec) -> &[(u32, u32)] {
        &self.positions[leaf.pos.0 as usize..leaf.pos.1 as usize]
    }

    fn record(
        &mut self,
        w: &Walker<'_>,
        field: u32,
        value: LeafKind,
        text: Option<&str>,
        committed: usize,
    ) {
        let head = &mut self.heads[field as usize];
        let next = if head.0 == self.generation {
            head.1
        } else {
            NONE
        };
        *head = (self.generation, self.leaves.len() as u32);
        let mut rec = LeafRec {
            field,
            value,
            text: (0, 0),
            lower: None,
            pos: (0, 0),
            next,
        };
        if let Some(s) = text {
            let start = self.text.len() as u32;
            self.text.push_str(s);
            rec.text = (start, self.text.len() as u32);
            if w.lower[field as usize] {
                let start = self.text.len();
                if s.is_ascii() {
                    self.text.push_str(s);
                    self.text[start..].make_ascii_lowercase();
                } else {
                    self.text.extend(s.chars().flat_map(char::to_lowercase));
                }
                rec.lower = Some((start as u32, self.text.len() as u32));
            }
        }
        let start = self.positions.len() as u32;
        self.positions.extend_from_slice(&self.stack[..committed]);
        rec.pos = (start, self.positions.len() as u32);
        self.leaves.push(rec);
    }

    /// Adds the leaves of a JSON document whose root is at path node `node` (the event's
    /// attributes at the root, its data at `data`). On malformed JSON, the leaves added so
    /// far by this call are removed and the error returned.
    pub(crate) fn add_json(
        &mut self,
        w: &Walker<'_>,
        json: &[u8],
        node: u32,
    ) -> Result<(), Malformed> {
        let (leaves, positions, text) = (self.leaves.len(), self.positions.len(), self.text.len());
        let mut r = Reader { b: json, i: 0 };
        let result = self.walk(w, &mut r, node, 0, 0).and_then(|()| r.end());
        if result.is_err() {
            // Unlink the removed leaves, newest first, restoring each field's head.
            for rec in self.leaves.drain(leaves..).rev() {
                self.heads[rec.field as usize] = if rec.next == NONE {
                    (0, NONE)
                } else {
                    (self.generation, rec.next)
                };
            }
            self.positions.truncate(positions);
            self.text.truncate(text);
            self.stack.clear();
        }
        result
    }

    /// Adds a text string as the value at path node `node`.
    pub(crate) fn add_text(&mut self, w: &Walker<'_>, text: &str, node: u32) {
        if let Some(field) = w.paths.field_of(node) {
            self.record(w, field, LeafKind::Str, Some(text), 0);
        }
    }

    fn walk(
        &mut self,
        w: &Walker<'_>,
        r: &mut Reader<'_>,
        node: u32,
        committed: usize,
        depth: u32,
    ) -> Result<(), Malformed> {
        let path = &w.paths.nodes[node as usize];
        let first = r.peek()?;
        if depth > MAX_WALK_DEPTH {
            return r.skip();
        }
        match first {
            b'{' => {
                if path.children.is_empty() {
                    return r.skip();
                }
                // Values inside this object belong to every array element around it.
                let committed = self.stack.len();
                r.i += 1;
                if r.peek()? == b'}' {
                    r.i += 1;
                    return Ok(());
                }
                loop {
                    if r.peek()? != b'"' {
                        return Err(Malformed);
                    }
                    let key = r.string()?;
                    r.expect(b':')?;
                    let child = if key.escaped {
                        path.child(r.decode(&key)?.as_bytes())
                    } else {
                        path.child(r.raw(&key))
                    };
                    match child {
                        Some(c) => self.walk(w, r, c, committed, depth + 1)?,
                        None => r.skip()?,
                    }
                    match r.peek()? {
                        b',' => r.i += 1,
                        b'}' => {
                            r.i += 1;
                            return Ok(());
                        }
                        _ => return Err(Malformed),
                    }
                }
            }
            b'[' => {
                if path.children.is_empty() && path.field.is_none() {
                    return r.skip();
                }
                let array = self.next_array;
                self.next_array += 1;
                r.i += 1;
                if r.peek()? == b']' {
                    r.i += 1;
                    return Ok(());
                }
                let mut index = 0;
                loop {
                    self.stack.push((array, index));
                    self.walk(w, r, node, committed, depth + 1)?;
                    self.stack.pop();
                    index += 1;
                    match r.peek()? {
                        b',' => r.i += 1,
                        b']' => {
                            r.i += 1;
                            return Ok(());
                        }
                        _ => return Err(Malformed),
                    }
                }
            }
            b'"' => {
                let Some(field) = path.field else {
                    return r.skip();
                };
                let s = r.string()?;
                if s.escaped {
                    let decoded = r.decode(&s)?;
                    self.record(w, field, LeafKind::Str, Some(&decoded), committed);
                } else {
                    let text = std::str::from_utf8(r.raw(&s)).map_err(|_| Malformed)?;
                    self.record(w, field, LeafKind::Str, Some(text), committed);
                }
                Ok(())
            }
            _ => {
                let token = r.token()?;
                let Some(field) = path.field else {
                    return Ok(());
                };
                let value = match token {
                    b"true" => LeafKind::Bool(true),
                    b"false" => LeafKind::Bool(false),
                    b"null" => LeafKind::Null,
                    _ => LeafKind::Num(number(token)? + 0.0),
                };
                self.record(w, field, value, None, committed);
                Ok(())
            }
        }
    }
}

/// The JSON is malformed (events are validated at ingest, so this is rare).
#[derive(Debug)]
pub(crate) struct Malformed;

/// A JSON number token as a double (the standard library rounds exactly).
fn number(token: &[u8]) -> Result<f64, Malformed> {
    let json_number = matches!(token.first(), Some(b'-' | b'0'..=b'9'))
        && token
            .iter()
            .all(|b| matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'));
    if !json_number {
        return Err(Malformed);
    }
    std::str::from_utf8(token)
        .ok()
        .and_then(|t| t.parse().ok())
        .ok_or(Malformed)
}

/// A string token: its contents lie between `start` and `end` (quotes excluded).
struct StrToken {
    start: usize,
    end: usize,
    escaped: bool,
}

/// A forward-only JSON reader that decodes only what it is asked for and skips the rest
/// at memchr speed. It does not validate what it skips (ingest did); on malformed input
/// it returns an error or garbage values, never panics, and always advances.
struct Reader<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Reader<'a> {
    fn peek(&mut self) -> Result<u8, Malformed> {
        while let Some(&c) = self.b.get(self.i) {
            if !matches!(c, b' ' | b'\n' | b'\r' | b'\t') {
                return Ok(c);
            }
            self.i += 1;
        }
        Err(Malformed)
    }

    fn expect(&mut self, c: u8) -> Result<(), Malformed> {
        if self.peek()? == c {
            self.i += 1;
            Ok(())
        } else {
            Err(Malformed)
        }
    }

    fn end(&mut self) -> Result<(), Malformed> {
        match self.peek() {
            Err(Malformed) => Ok(()),
            Ok(_) => Err(Malformed),
        }
    }

    /// At an opening quote: consumes the string.
    fn string(&mut self) -> Result<StrToken, Malformed> {
        self.i += 1;
        let start = self.i;
        let mut escaped = false;
        loop {
            let at = memchr::memchr2(b'"', b'\\', &self.b[self.i..]).ok_or(Malformed)?;
            self.i += at;
            if self.b[self.i] == b'\\' {
                escaped = true;
                self.i += 2;
                if self.i > self.b.len() {
                    return Err(Malformed);
                }
            } else {
                self.i += 1;
                return Ok(StrToken {
                    start,
                    end: self.i - 1,
                    escaped,
                });
            }
        }
    }

    fn raw(&self, s: &StrToken) -> &'a [u8] {
        &self.b[s.start..s.end]
    }

    /// The unescaped text of a string with escapes.
    fn decode(&self, s: &StrToken) -> Result<String, Malformed> {
        serde_json::from_slice(&self.b[s.start - 1..s.end + 1]).map_err(|_| Malformed)
    }

    /// A literal or number: the bytes up to the next delimiter.
    fn token(&mut self) -> Result<&'a [u8], Malformed> {
        let start = self.i;
        while let Some(&c) = self.b.get(self.i) {
            if matches!(
                c,
                b',' | b'}' | b']' | b' ' | b'\n' | b'\r' | b'\t' | b':' | b'"' | b'{' | b'['
            ) {
                break;
            }
            self.i += 1;
        }
        if self.i == start {
            return Err(Malformed);
        }
        Ok(&self.b[start..self.i])
    }

    /// Skips one value.
    fn skip(&mut self) -> Result<(), Malformed> {
        match self.peek()? {
            b'"' => self.string().map(drop),
            b'{' | b'[' => {
                let mut depth = 0usize;
                loop {
                    let c = *self.b.get(self.i).ok_or(Malformed)?;
                    match c {
                        b'"' => {
                            self.string()?;
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth -= 1;
                            if depth == 0 {
                                self.i += 1;
                                return Ok(());
                            }
                        }
                        _ => {}
                    }
                    self.i += 1;
                }
            }
            _ => self.token().map(drop),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flatten(paths: &[&[&str]], json: &[u8]) -> Result<Vec<String>, Malformed> {
        let mut p = Paths::new();
        for path in paths {
            let path: Vec<Box<str>> = path.iter().map(|s| (*s).into()).collect();
            p.field(&path);
        }
        let lower = vec![false; p.field_count()];
        let w = Walker {
            paths: &p,
            lower: &lower,
        };
        let mut flat = Flat::default();
        flat.clear(p.field_count());
        flat.add_json(&w, json, 0)?;
        Ok(flat
            .leaves
            .iter()
            .map(|l| match l.value {
                LeafKind::Str => {
                    format!(
                        "{}={}",
                        l.field,
                        &flat.text[l.text.0 as usize..l.text.1 as usize]
                    )
                }
                LeafKind::Num(n) => format!("{}={n}", l.field),
                LeafKind::Bool(b) => format!("{}={b}", l.field),
                LeafKind::Null => format!("{}=null", l.field),
            })
            .collect())
    }

    #[test]
    fn reads_only_mentioned_fields_with_escapes_and_numbers() {
        let json = br#" { "skip": {"a": [1, "}\"]", {"b": null}]}, "a\u0062": "x\ty\u00e9",
                          "n": [3.0e2, -0, 1E400], "t": true, "z": null } "#;
        let got = flatten(&[&["ab"], &["n"], &["t"], &["z"]], json).unwrap();
        assert_eq!(
            got,
            ["0=x\tyé", "1=300", "1=0", "1=inf", "2=true", "3=null"]
        );
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        let paths: &[&[&str]] = &[&["a"], &["a", "b"]];
        for bad in [
            &b""[..],
            b"{",
            b"{\"a\"",
            b"{\"a\":",
            b"{\"a\": \"unterminated",
            b"{\"a\": \"ends in a backslash\\",
            b"{\"a\": [1, 2",
            b"{\"a\": {\"b\": 1}",
            b"{\"a\": tru}x",
            b"{\"a\": 1} trailing",
            b"{\"a\": \"\xff\"}",
            b"{\"a\": +1}",
            b"{\"x\": [[[[}",
            b"[1, 2}",
            b"{\"a\" 1}",
        ] {
            assert!(
                flatten(paths, bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
