//! Flattening an event into the leaf values of the fields some rule mentions.
//!
//! The event's JSON (attributes, then data) is read once with a streaming parser; a
//! subtree no rule looks into is skipped without being decoded. Each leaf value records
//! the array elements it lies in (for array consistency): `(array, index)` pairs, kept
//! only for arrays whose element is, or contains, the object holding the value.

use std::collections::HashMap;

use jiter::{Jiter, JiterResult, Peek};

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

/// The child named by a raw (still JSON-escaped) object key.
fn child(node: &PathNode, raw: &[u8]) -> Option<u32> {
    if !raw.contains(&b'\\') {
        return node.child(raw);
    }
    let mut quoted = Vec::with_capacity(raw.len() + 2);
    quoted.push(b'"');
    quoted.extend_from_slice(raw);
    quoted.push(b'"');
    let name: String = serde_json::from_slice(&quoted).ok()?;
    node.child(name.as_bytes())
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
    /// attributes at the root, its data at `data`). On invalid JSON, the leaves added so
    /// far by this call are removed and the error returned.
    pub(crate) fn add_json(&mut self, w: &Walker<'_>, json: &[u8], node: u32) -> JiterResult<()> {
        let (leaves, positions, text) = (self.leaves.len(), self.positions.len(), self.text.len());
        let mut j = Jiter::new(json);
        let result = j
            .peek()
            .and_then(|peek| self.walk(w, &mut j, peek, node, 0, 0))
            .and_then(|()| j.finish());
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
        j: &mut Jiter<'_>,
        peek: Peek,
        node: u32,
        committed: usize,
        depth: u32,
    ) -> JiterResult<()> {
        let path = &w.paths.nodes[node as usize];
        if depth > MAX_WALK_DEPTH {
            return j.known_skip(peek);
        }
        match peek {
            Peek::Object => {
                if path.children.is_empty() {
                    return j.known_skip(peek);
                }
                // Values inside this object belong to every array element around it.
                let committed = self.stack.len();
                let mut key = j.next_object_bytes()?.map(|k| child(path, k));
                while let Some(child_node) = key {
                    let peek = j.peek()?;
                    match child_node {
                        Some(c) => self.walk(w, j, peek, c, committed, depth + 1)?,
                        None => j.known_skip(peek)?,
                    }
                    key = j.next_key_bytes()?.map(|k| child(path, k));
                }
                Ok(())
            }
            Peek::Array => {
                if path.children.is_empty() && path.field.is_none() {
                    return j.known_skip(peek);
                }
                let array = self.next_array;
                self.next_array += 1;
                let mut index = 0;
                let mut next = j.known_array()?;
                while let Some(peek) = next {
                    self.stack.push((array, index));
                    self.walk(w, j, peek, node, committed, depth + 1)?;
                    self.stack.pop();
                    index += 1;
                    next = j.array_step()?;
                }
                Ok(())
            }
            _ => {
                let Some(field) = path.field else {
                    return j.known_skip(peek);
                };
                match peek {
                    Peek::String => {
                        let s = j.known_str()?;
                        self.record(w, field, LeafKind::Str, Some(s), committed);
                    }
                    Peek::True | Peek::False => {
                        let b = j.known_bool(peek)?;
                        self.record(w, field, LeafKind::Bool(b), None, committed);
                    }
                    Peek::Null => {
                        j.known_null()?;
                        self.record(w, field, LeafKind::Null, None, committed);
                    }
                    _ => {
                        let raw = j.known_number_bytes(peek)?;
                        // The standard library parses every JSON number exactly rounded.
                        let n = std::str::from_utf8(raw)
                            .ok()
                            .and_then(|t| t.parse::<f64>().ok())
                            .unwrap_or(f64::NAN);
                        self.record(w, field, LeafKind::Num(n + 0.0), None, committed);
                    }
                }
                Ok(())
            }
        }
    }
}
