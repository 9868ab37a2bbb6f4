//! An event's data as the ingest validator reads it: one pass over the bytes builds a
//! flat list of nodes that point into them. Nothing is allocated per value: strings are
//! unescaped only when a keyword reads one that has escapes, numbers keep their text and
//! are converted when compared. Building a `serde_json::Value` instead (with this crate's
//! `arbitrary_precision` and `preserve_order`) costs several times the validation itself.
//!
//! [`Tape`] is a `jsonschema` instance representation (`jsonschema::options_for`). Its
//! answers match `serde_json::Value`'s, with one gap the parser closes: a document with
//! a repeated key in an object, or an escaped key, is refused ([`Doc::parse`] returns
//! `None`), so the caller validates it as a `Value` (whose last duplicate wins).
//! Also left to `Value`: nesting of 128 levels or more (serde_json refuses it), a lone
//! surrogate escape, and objects whose key starts with `$serde_json::private::` (with
//! this crate's `arbitrary_precision` and `raw_value`, serde_json reads such an object as
//! a number or a raw value, not as an object).

use std::borrow::Cow;
use std::ops::ControlFlow;

use jsonschema::json::{Array, Json, JsonNumber, Node, NodeIdentity, Object};
use jsonschema::JsonType;
use serde_json::Value;

/// serde_json's own nesting limit: it refuses the 128th level.
const MAX_DEPTH: usize = 128;
/// Keys serde_json gives a meaning of its own (see the module docs).
const SERDE_PRIVATE: &[u8] = b"$serde_json::private::";
/// Objects up to this many keys are checked for repeats pairwise, larger ones sorted.
const PAIRWISE_KEYS: usize = 16;

/// The representation (a marker for `jsonschema::options_for::<Tape>()`).
pub struct Tape;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Null,
    True,
    False,
    Number,
    String,
    Array,
    Object,
}

/// One value. Objects are followed by key, value, key, value ...; arrays by their
/// elements; `next` is the index after the value's last descendant.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    kind: Kind,
    /// A string with a backslash in it.
    escaped: bool,
    /// Byte span: a string's content between the quotes; a container's from its opening
    /// to its closing bracket; a number's or literal's text.
    start: u32,
    end: u32,
    /// Members of an object, elements of an array.
    len: u32,
    next: u32,
}

/// A parsed document.
pub struct Doc<'a> {
    src: &'a str,
    nodes: Vec<Entry>,
}

impl<'a> Doc<'a> {
    /// Parses `bytes`; `None` when they are not JSON, or are JSON that this
    /// representation leaves to `serde_json::Value` (see the module docs).
    pub fn parse(bytes: &'a [u8]) -> Option<Doc<'a>> {
        if bytes.len() >= u32::MAX as usize {
            return None;
        }
        let src = std::str::from_utf8(bytes).ok()?;
        let mut parser = Parser {
            bytes,
            pos: 0,
            nodes: Vec::with_capacity(16 + bytes.len() / 8),
            keys: Vec::with_capacity(16),
        };
        parser.value(0)?;
        parser.skip_whitespace();
        if parser.pos != bytes.len() {
            return None;
        }
        Some(Doc {
            src,
            nodes: parser.nodes,
        })
    }

    /// The document's root value.
    pub fn root(&self) -> TapeNode<'_> {
        TapeNode { doc: self, at: 0 }
    }

    /// The member `key` of the root object, if it is a string.
    pub fn root_string(&self, key: &str) -> Option<Cow<'a, str>> {
        let root = self.nodes.first().filter(|e| e.kind == Kind::Object)?;
        let mut at = 1;
        for _ in 0..root.len {
            let (name, value) = (&self.nodes[at], &self.nodes[at + 1]);
            if self.span(name) == key {
                return (value.kind == Kind::String).then(|| self.string_of(value));
            }
            at = value.next as usize;
        }
        None
    }

    fn span(&self, e: &Entry) -> &'a str {
        &self.src[e.start as usize..e.end as usize]
    }

    /// A string entry's value (unescaped).
    fn string_of(&self, e: &Entry) -> Cow<'a, str> {
        if !e.escaped {
            return Cow::Borrowed(self.span(e));
        }
        // With its quotes: serde_json's own unescaping.
        let quoted = &self.src[e.start as usize - 1..e.end as usize + 1];
        Cow::Owned(serde_json::from_str(quoted).expect("escapes checked by the parser"))
    }
}

struct Parser<'a> {
    bytes: &'a [u8],
    pos: usize,
    nodes: Vec<Entry>,
    /// The keys of the objects being parsed (a stack shared by nested objects).
    keys: Vec<Key>,
}

/// An object key: its span, and its length and first bytes to compare quickly.
#[derive(Clone, Copy)]
struct Key {
    start: u32,
    end: u32,
    quick: u64,
}

impl Parser<'_> {
    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.bytes.get(self.pos) {
            self.pos += 1;
        }
    }

    fn push(&mut self, kind: Kind, start: usize, end: usize) -> usize {
        let at = self.nodes.len();
        self.nodes.push(Entry {
            kind,
            escaped: false,
            start: start as u32,
            end: end as u32,
            len: 0,
            next: at as u32 + 1,
        });
        at
    }

    fn value(&mut self, depth: usize) -> Option<()> {
        self.skip_whitespace();
        let start = self.pos;
        match *self.bytes.get(start)? {
            b'{' => self.object(depth + 1),
            b'[' => self.array(depth + 1),
            b'"' => self.string().map(drop),
            b't' => self.literal(b"true", Kind::True),
            b'f' => self.literal(b"false", Kind::False),
            b'n' => self.literal(b"null", Kind::Null),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    fn literal(&mut self, text: &[u8], kind: Kind) -> Option<()> {
        let start = self.pos;
        if !self.bytes[start..].starts_with(text) {
            return None;
        }
        self.pos += text.len();
        self.push(kind, start, self.pos);
        Some(())
    }

    /// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
    fn number(&mut self) -> Option<()> {
        let start = self.pos;
        let b = self.bytes;
        let mut i = start;
        if b.get(i) == Some(&b'-') {
            i += 1;
        }
        match b.get(i)? {
            b'0' => i += 1,
            b'1'..=b'9' => {
                while b.get(i).is_some_and(u8::is_ascii_digit) {
                    i += 1;
                }
            }
            _ => return None,
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            let digits = i;
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            if i == digits {
                return None;
            }
        }
        if let Some(b'e' | b'E') = b.get(i) {
            i += 1;
            if let Some(b'+' | b'-') = b.get(i) {
                i += 1;
            }
            let digits = i;
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            if i == digits {
                return None;
            }
        }
        self.pos = i;
        self.push(Kind::Number, start, i);
        Some(())
    }

    /// A string at `pos` (its opening quote); returns its entry's index.
    fn string(&mut self) -> Option<usize> {
        let content = self.pos + 1;
        let b = self.bytes;
        let mut i = content;
        let mut escaped = false;
        loop {
            i = plain_run_end(b, i);
            match *b.get(i)? {
                b'"' => break,
                b'\\' => {
                    escaped = true;
                    i = escape_end(b, i)?;
                }
                // A raw control character (serde_json refuses them too).
                _ => return None,
            }
        }
        self.pos = i + 1;
        let at = self.push(Kind::String, content, i);
        self.nodes[at].escaped = escaped;
        Some(at)
    }

    fn array(&mut self, depth: usize) -> Option<()> {
        if depth >= MAX_DEPTH {
            return None;
        }
        let at = self.push(Kind::Array, self.pos, 0);
        self.pos += 1;
        let mut len = 0;
        self.skip_whitespace();
        if self.bytes.get(self.pos) == Some(&b']') {
            self.pos += 1;
        } else {
            loop {
                self.value(depth)?;
                len += 1;
                if self.after_member(b']')? {
                    break;
                }
            }
        }
        self.close(at, len);
        Some(())
    }

    fn object(&mut self, depth: usize) -> Option<()> {
        if depth >= MAX_DEPTH {
            return None;
        }
        let at = self.push(Kind::Object, self.pos, 0);
        self.pos += 1;
        let first_key = self.keys.len();
        self.skip_whitespace();
        if self.bytes.get(self.pos) == Some(&b'}') {
            self.pos += 1;
        } else {
            loop {
                self.skip_whitespace();
                if self.bytes.get(self.pos) != Some(&b'"') {
                    return None;
                }
                let key = self.string()?;
                let key = self.nodes[key];
                let bytes = self.bytes;
                let text = &bytes[key.start as usize..key.end as usize];
                if key.escaped || text.starts_with(SERDE_PRIVATE) {
                    return None; // left to Value (see the module docs)
                }
                self.keys.push(Key {
                    start: key.start,
                    end: key.end,
                    quick: quick_key(text),
                });
                self.skip_whitespace();
                if self.bytes.get(self.pos) != Some(&b':') {
                    return None;
                }
                self.pos += 1;
                self.value(depth)?;
                if self.after_member(b'}')? {
                    break;
                }
            }
        }
        let count = self.keys.len() - first_key;
        if has_repeats(self.bytes, &mut self.keys[first_key..]) {
            return None;
        }
        self.keys.truncate(first_key);
        self.close(at, count);
        Some(())
    }

    /// After a container's member: a comma (false) or its `close` bracket (true).
    fn after_member(&mut self, close: u8) -> Option<bool> {
        self.skip_whitespace();
        let c = *self.bytes.get(self.pos)?;
        self.pos += 1;
        match c {
            b',' => Some(false),
            c if c == close => Some(true),
            _ => None,
        }
    }

    fn close(&mut self, at: usize, len: usize) {
        let next = self.nodes.len() as u32;
        let entry = &mut self.nodes[at];
        entry.end = self.pos as u32;
        entry.len = len as u32;
        entry.next = next;
    }
}

/// Where the escape sequence at `i` (a backslash) ends; `None` if it is not one
/// serde_json accepts (a lone surrogate is refused here, whatever serde_json does).
fn escape_end(b: &[u8], i: usize) -> Option<usize> {
    match *b.get(i + 1)? {
        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => Some(i + 2),
        b'u' => {
            let unit = hex4(b, i + 2)?;
            match unit {
                0xD800..=0xDBFF => {
                    if b.get(i + 6) != Some(&b'\\') || b.get(i + 7) != Some(&b'u') {
                        return None;
                    }
                    let low = hex4(b, i + 8)?;
                    (0xDC00..=0xDFFF).contains(&low).then_some(i + 12)
                }
                0xDC00..=0xDFFF => None,
                _ => Some(i + 6),
            }
        }
        _ => None,
    }
}

fn hex4(b: &[u8], at: usize) -> Option<u32> {
    let digits = b.get(at..at + 4)?;
    let text = std::str::from_utf8(digits).ok()?;
    if !digits.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    u32::from_str_radix(text, 16).ok()
}

/// Where the run of bytes from `i` that need no attention in a string ends: at a quote,
/// a backslash, a control character, or the end. Sixteen bytes at a time (SSE2, which
/// every x86_64 has), else eight.
fn plain_run_end(b: &[u8], mut i: usize) -> usize {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::*;
        // SAFETY: SSE2 is part of x86_64; every load reads 16 bytes inside `b`.
        unsafe {
            let quote = _mm_set1_epi8(b'"' as i8);
            let backslash = _mm_set1_epi8(b'\\' as i8);
            let below_space = _mm_set1_epi8(0x1F);
            while i + 16 <= b.len() {
                let x = _mm_loadu_si128(b.as_ptr().add(i).cast());
                // c < 0x20 <=> min(c, 0x1F) == c (unsigned).
                let control = _mm_cmpeq_epi8(_mm_min_epu8(x, below_space), x);
                let stop = _mm_or_si128(
                    control,
                    _mm_or_si128(_mm_cmpeq_epi8(x, quote), _mm_cmpeq_epi8(x, backslash)),
                );
                let mask = _mm_movemask_epi8(stop) as u32;
                if mask != 0 {
                    return i + mask.trailing_zeros() as usize;
                }
                i += 16;
            }
        }
    }
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    // The high bit of each byte that is zero in `x` (exact: no false positives).
    let zero_bytes = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS;
    while let Some(chunk) = b.get(i..i + 8) {
        let x = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
        let control = x.wrapping_sub(ONES * 0x20) & !x & HIGHS;
        let stop =
            control | zero_bytes(x ^ (ONES * b'"' as u64)) | zero_bytes(x ^ (ONES * b'\\' as u64));
        if stop != 0 {
            // The lowest flagged byte is exact even where higher flags are not.
            return i + (stop.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while let Some(&c) = b.get(i) {
        if c == b'"' || c == b'\\' || c < 0x20 {
            break;
        }
        i += 1;
    }
    i
}

/// A key's length and first six bytes, packed: different values, different keys.
fn quick_key(key: &[u8]) -> u64 {
    let mut quick = (key.len().min(0xFFFF) as u64) << 48;
    for (n, &c) in key.iter().take(6).enumerate() {
        quick |= u64::from(c) << (8 * n);
    }
    quick
}

/// Whether two of an object's (unescaped) keys are the same.
fn has_repeats(bytes: &[u8], keys: &mut [Key]) -> bool {
    let text = |k: &Key| &bytes[k.start as usize..k.end as usize];
    if keys.len() <= PAIRWISE_KEYS {
        return keys.iter().enumerate().any(|(i, a)| {
            keys[i + 1..]
                .iter()
                .any(|b| a.quick == b.quick && text(a) == text(b))
        });
    }
    keys.sort_unstable_by(|a, b| a.quick.cmp(&b.quick).then_with(|| text(a).cmp(text(b))));
    keys.windows(2).any(|w| text(&w[0]) == text(&w[1]))
}

/// A value of a [`Doc`].
#[derive(Clone, Copy)]
pub struct TapeNode<'a> {
    doc: &'a Doc<'a>,
    at: u32,
}

impl<'a> TapeNode<'a> {
    fn entry(&self) -> &'a Entry {
        &self.doc.nodes[self.at as usize]
    }

    fn text(&self) -> &'a str {
        self.doc.span(self.entry())
    }

    /// A string's value (unescaped).
    fn string(&self) -> Cow<'a, str> {
        self.doc.string_of(self.entry())
    }

    /// The first child of a container.
    fn first_child(&self) -> u32 {
        self.at + 1
    }
}

impl Json for Tape {
    type Node<'a> = TapeNode<'a>;
    type PreparedKey = Box<str>;
    type StringBuffer = Vec<Entry>;

    // A lookup is a scan of the members, so one pass over them beats any number of them.
    // (Not usize::MAX: the library multiplies it by a key count.)
    const KEYS_PER_LOOKUP: usize = u32::MAX as usize;
    const ACYCLIC: bool = true;

    fn prepare_key(key: &str) -> Box<str> {
        key.into()
    }

    fn with_string_node<T>(
        buffer: &mut Vec<Entry>,
        string: &str,
        f: impl FnOnce(TapeNode<'_>) -> T,
    ) -> T {
        // A one-node document whose "raw" text is the string itself, never unescaped.
        let mut nodes = std::mem::take(buffer);
        nodes.clear();
        nodes.push(Entry {
            kind: Kind::String,
            escaped: false,
            start: 0,
            end: string.len() as u32,
            len: 0,
            next: 1,
        });
        let doc = Doc { src: string, nodes };
        let result = f(doc.root());
        *buffer = doc.nodes;
        result
    }
}

impl<'a> Node<'a, Tape> for TapeNode<'a> {
    type Object = TapeObject<'a>;
    type Array = TapeArray<'a>;
    type Number = TapeNumber<'a>;

    fn as_object(&self) -> Option<TapeObject<'a>> {
        (self.entry().kind == Kind::Object).then_some(TapeObject(*self))
    }

    fn as_array(&self) -> Option<TapeArray<'a>> {
        (self.entry().kind == Kind::Array).then_some(TapeArray(*self))
    }

    fn as_string(&self) -> Option<Cow<'a, str>> {
        (self.entry().kind == Kind::String).then(|| self.string())
    }

    fn as_number(&self) -> Option<TapeNumber<'a>> {
        (self.entry().kind == Kind::Number).then(|| TapeNumber(self.text()))
    }

    fn as_boolean(&self) -> Option<bool> {
        match self.entry().kind {
            Kind::True => Some(true),
            Kind::False => Some(false),
            _ => None,
        }
    }

    fn is_null(&self) -> bool {
        self.entry().kind == Kind::Null
    }

    fn is_number(&self) -> bool {
        self.entry().kind == Kind::Number
    }

    fn is_string(&self) -> bool {
        self.entry().kind == Kind::String
    }

    fn json_type(&self) -> JsonType {
        match self.entry().kind {
            Kind::Null => JsonType::Null,
            Kind::True | Kind::False => JsonType::Boolean,
            Kind::Number => JsonType::Number,
            Kind::String => JsonType::String,
            Kind::Array => JsonType::Array,
            Kind::Object => JsonType::Object,
        }
    }

    fn string_length(&self) -> Option<u64> {
        self.as_string().map(|s| s.chars().count() as u64)
    }

    fn string_length_within(&self, min: u64, max: u64) -> Option<bool> {
        let e = self.entry();
        if e.kind != Kind::String {
            return None;
        }
        if !e.escaped {
            // A code point takes one to four bytes: the count lies in ceil(bytes/4)..=bytes.
            let bytes = u64::from(e.end - e.start);
            if bytes < min || bytes.div_ceil(4) > max {
                return Some(false);
            }
            if min <= bytes.div_ceil(4) && bytes <= max {
                return Some(true);
            }
        }
        self.string_length().map(|n| (min..=max).contains(&n))
    }

    // A `const` built in code has no depth cap, so this walks rather than recurses.
    fn equals_value(&self, expected: &Value) -> bool {
        // Scalars (most `enum` values) without the walk's stack.
        match expected {
            Value::String(s) => return self.as_string().is_some_and(|got| got == s.as_str()),
            Value::Number(n) => {
                return self
                    .as_number()
                    .is_some_and(|got| jsonschema::json::cmp::equal_numbers(&got, n))
            }
            Value::Bool(b) => return self.as_boolean() == Some(*b),
            Value::Null => return self.is_null(),
            Value::Array(_) | Value::Object(_) => {}
        }
        let mut pending = vec![(*self, expected)];
        while let Some((node, expected)) = pending.pop() {
            let equal = match expected {
                Value::Null => node.is_null(),
                Value::Bool(b) => node.as_boolean() == Some(*b),
                Value::Number(n) => node
                    .as_number()
                    .is_some_and(|got| jsonschema::json::cmp::equal_numbers(&got, n)),
                Value::String(s) => node.as_string().is_some_and(|got| got == s.as_str()),
                Value::Array(items) => node.as_array().is_some_and(|array| {
                    array.len() == items.len() && {
                        pending.extend(array.elements().zip(items));
                        true
                    }
                }),
                Value::Object(map) => node.as_object().is_some_and(|object| {
                    object.len() == map.len()
                        && object
                            .members()
                            .all(|(key, value)| match map.get(key.as_ref()) {
                                Some(expected) => {
                                    pending.push((value, expected));
                                    true
                                }
                                None => false,
                            })
                }),
            };
            if !equal {
                return false;
            }
        }
        true
    }

    fn to_value(&self) -> Cow<'a, Value> {
        let e = self.entry();
        let value = match e.kind {
            Kind::String => Value::String(self.string().into_owned()),
            // Numbers, literals and containers: serde_json reads the span itself (the
            // parser accepts only what it does; `null` rather than a panic otherwise).
            _ => serde_json::from_str(self.text()).unwrap_or(Value::Null),
        };
        Cow::Owned(value)
    }

    fn identity(&self) -> Option<NodeIdentity> {
        Some(NodeIdentity::tagged(
            std::ptr::from_ref::<Doc>(self.doc) as usize,
            self.at,
        ))
    }
}

/// An object node.
#[derive(Clone, Copy)]
pub struct TapeObject<'a>(TapeNode<'a>);

pub struct TapeMembers<'a> {
    doc: &'a Doc<'a>,
    /// The next key's index.
    at: u32,
    left: u32,
}

impl<'a> Iterator for TapeMembers<'a> {
    type Item = (Cow<'a, str>, TapeNode<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        let (key, value) = self.next_nodes()?;
        Some((key.string(), value))
    }
}

impl<'a> TapeMembers<'a> {
    fn next_nodes(&mut self) -> Option<(TapeNode<'a>, TapeNode<'a>)> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let key = TapeNode {
            doc: self.doc,
            at: self.at,
        };
        let value = TapeNode {
            doc: self.doc,
            at: self.at + 1,
        };
        self.at = value.entry().next;
        Some((key, value))
    }
}

impl<'a> Object<'a, Tape> for TapeObject<'a> {
    type Node = TapeNode<'a>;
    type MemberName = Cow<'a, str>;
    type MembersIter = TapeMembers<'a>;

    fn len(&self) -> usize {
        self.0.entry().len as usize
    }

    #[allow(clippy::borrowed_box)]
    fn get(&self, key: &Box<str>) -> Option<TapeNode<'a>> {
        // Keys are unescaped and distinct (the parser refuses others).
        let mut members = self.members();
        while let Some((name, value)) = members.next_nodes() {
            if name.text() == &**key {
                return Some(value);
            }
        }
        None
    }

    fn members(&self) -> TapeMembers<'a> {
        TapeMembers {
            doc: self.0.doc,
            at: self.0.first_child(),
            left: self.0.entry().len,
        }
    }

    // The keys are string nodes already.
    fn try_for_each_name_node<B>(
        &self,
        _buffer: &mut Vec<Entry>,
        mut f: impl FnMut(TapeNode<'_>) -> ControlFlow<B>,
    ) -> ControlFlow<B> {
        let mut members = self.members();
        while let Some((name, _)) = members.next_nodes() {
            f(name)?;
        }
        ControlFlow::Continue(())
    }
}

/// An array node.
#[derive(Clone, Copy)]
pub struct TapeArray<'a>(TapeNode<'a>);

pub struct TapeElements<'a> {
    doc: &'a Doc<'a>,
    at: u32,
    left: u32,
}

impl<'a> Iterator for TapeElements<'a> {
    type Item = TapeNode<'a>;

    fn next(&mut self) -> Option<TapeNode<'a>> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let node = TapeNode {
            doc: self.doc,
            at: self.at,
        };
        self.at = node.entry().next;
        Some(node)
    }
}

impl<'a> Array<'a, Tape> for TapeArray<'a> {
    type Node = TapeNode<'a>;
    type ElementsIter = TapeElements<'a>;

    fn len(&self) -> usize {
        self.0.entry().len as usize
    }

    fn elements(&self) -> TapeElements<'a> {
        TapeElements {
            doc: self.0.doc,
            at: self.0.first_child(),
            left: self.0.entry().len,
        }
    }
}

/// A number, as written.
#[derive(Clone, Copy)]
pub struct TapeNumber<'a>(&'a str);

// As serde_json's `Number` answers with `arbitrary_precision` (which this crate enables).
impl JsonNumber for TapeNumber<'_> {
    fn as_u64(&self) -> Option<u64> {
        self.0.parse().ok()
    }

    fn as_i64(&self) -> Option<i64> {
        self.0.parse().ok()
    }

    fn as_f64(&self) -> Option<f64> {
        self.0.parse::<f64>().ok().filter(|f| f.is_finite())
    }

    fn as_str(&self) -> Cow<'_, str> {
        Cow::Borrowed(self.0)
    }

    fn to_number(&self) -> Cow<'_, serde_json::Number> {
        Cow::Owned(self.0.parse().expect("number parsed before"))
    }

    fn is_integer(&self) -> bool {
        if self.as_u64().is_some() || self.as_i64().is_some() {
            return true;
        }
        match self.as_f64() {
            Some(f) => f.fract() == 0.0,
            // Past f64: the library's own (rare, allocating) answer.
            None => jsonschema::json::JsonNumber::is_integer(&*self.to_number()),
        }
    }

    fn is_written_as_integer(&self) -> bool {
        if self.as_u64().is_some() || self.as_i64().is_some() {
            return true;
        }
        if self.0.contains(['e', 'E']) {
            // 2^63; every f64 past it is a whole number.
            return self
                .as_f64()
                .is_some_and(|f| f.abs() >= 9_223_372_036_854_775_808.0);
        }
        !self.0.contains('.')
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn validator(schema: &Value) -> (jsonschema::Validator, jsonschema::Validator<Tape>) {
        (
            jsonschema::options()
                .should_validate_formats(true)
                .build(schema)
                .unwrap(),
            jsonschema::options_for::<Tape>()
                .should_validate_formats(true)
                .build(schema)
                .unwrap(),
        )
    }

    #[test]
    fn parses_what_serde_json_parses() {
        for text in [
            r#"{"a":1,"b":[true,false,null,-0.5e+3,"x\"y\u00e9\ud83d\ude00"],"c":{}}"#,
            " [ ] ",
            "\"\"",
            "0",
            "-12.5E-7",
            "[[[{\"k\":[1]}]]]",
        ] {
            let doc = Doc::parse(text.as_bytes()).unwrap_or_else(|| panic!("{text}"));
            let expected: Value = serde_json::from_str(text).unwrap();
            assert_eq!(doc.root().to_value().into_owned(), expected, "{text}");
        }
    }

    #[test]
    fn refuses_what_it_leaves_to_serde_json() {
        for text in [
            "",
            "{",
            "[1,]",
            "{\"a\":1,}",
            "01",
            "1.",
            "-",
            ".5",
            "1e",
            "tru",
            "nul",
            "\"a\u{1}b\"",
            "\"\\x\"",
            "\"\\ud800\"",
            "\"\\udc00\"",
            "[1] x",
            "{\"a\":1,\"a\":2}",
            "{\"$serde_json::private::Number\":\"1\"}",
            "[{\"$serde_json::private::RawValue\":\"1\",\"a\":1}]",
            "{\"\\u0061\":1}",
            "{\"a\" 1}",
        ] {
            assert!(Doc::parse(text.as_bytes()).is_none(), "{text:?}");
        }
        // serde_json's limit, to the level.
        for depth in [127, 128] {
            let text = "[".repeat(depth) + &"]".repeat(depth);
            let by_serde = serde_json::from_str::<Value>(&text).is_ok();
            assert_eq!(Doc::parse(text.as_bytes()).is_some(), by_serde, "{depth}");
            assert_eq!(by_serde, depth < MAX_DEPTH);
        }
        let many: Vec<String> = (0..40).map(|i| format!("\"k{}\":{i}", i % 39)).collect();
        let repeated = format!("{{{}}}", many.join(","));
        assert!(Doc::parse(repeated.as_bytes()).is_none());
    }

    #[test]
    fn meets_the_libraries_contract() {
        let text = jsonschema_value_document();
        let doc = Doc::parse(text.as_bytes()).unwrap();
        let root = doc.root();
        let object = root.as_object().unwrap();
        assert_eq!(object.len(), 8);
        assert!(object.get(&Tape::prepare_key("missing")).is_none());
        let s = object.get(&Tape::prepare_key("string")).unwrap();
        assert_eq!(s.string_length(), Some(5));
        assert_eq!(s.string_length_within(5, 5), Some(true));
        assert_eq!(s.string_length_within(6, 9), Some(false));
        let float = object.get(&Tape::prepare_key("float")).unwrap();
        assert!(float.equals_value(&json!(1.5)));
        let integer = object.get(&Tape::prepare_key("integer")).unwrap();
        assert!(integer.equals_value(&json!(42.0)));
        let dup = object.get(&Tape::prepare_key("duplicates")).unwrap();
        let items: Vec<_> = dup.as_array().unwrap().elements().collect();
        assert!(items[1].equals_value(&json!({"a": 1})));
        assert_ne!(items[1].identity(), items[2].identity());
        let copy = items[1];
        assert_eq!(items[1].identity(), copy.identity());
        assert!(!dup.as_array().unwrap().is_unique());
    }

    fn jsonschema_value_document() -> String {
        r#"{"string":"héllo","integer":42,"float":1.5,"boolean":true,"null":null,
            "array":[10,20,30],"duplicates":[1,{"a":1},{"a":1}],"object":{"nested":"value"}}"#
            .to_string()
    }

    /// Schemas whose keywords read every accessor.
    fn schemas() -> Vec<Value> {
        vec![
            json!({"type": "object", "required": ["a", "b"], "properties": {"a": {"type": "integer"}, "b": {"type": "string", "minLength": 2, "maxLength": 3}}, "additionalProperties": false}),
            json!({"enum": ["x", 1, 2.5, null, [1, "a"], {"k": [true]}]}),
            json!({"const": {"a": [1, 2.0, {"b": "é"}]}}),
            json!({"type": "array", "items": {"type": "number", "minimum": -1, "exclusiveMaximum": 1e3, "multipleOf": 0.5}, "uniqueItems": true, "minItems": 1}),
            json!({"type": "integer", "maximum": 18446744073709551615u64}),
            json!({"propertyNames": {"pattern": "^[a-z]+$", "maxLength": 3}, "minProperties": 1, "maxProperties": 3}),
            json!({"patternProperties": {"^x-": {"type": "boolean"}}, "additionalProperties": {"type": "string", "format": "date-time"}}),
            json!({"type": "string", "format": "email"}),
            json!({"type": "string", "pattern": "^o-[0-9]+$"}),
            json!({"if": {"properties": {"t": {"const": "a"}}}, "then": {"required": ["x"]}, "else": {"required": ["y"]}}),
            json!({"$defs": {"node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/node"}, "v": {"type": "integer"}}}}, "$ref": "#/$defs/node"}),
            json!({"contains": {"type": "string"}, "minContains": 2}),
            json!({"oneOf": [{"type": "string"}, {"type": "number"}], "not": {"const": 0}}),
            json!({"dependentRequired": {"a": ["b"]}, "unevaluatedProperties": false, "properties": {"a": {}, "b": {}}}),
            json!({"type": "string", "maxLength": 2}),
            json!({"type": "object", "properties": {"order": {"type": "object", "required": ["id"], "properties": {"id": {"type": "string", "pattern": "^o-"}, "v": {"type": "number", "minimum": 0, "maximum": 1000}}}}}),
            json!({"type": ["integer", "null"], "multipleOf": 2}),
            json!({"items": {"enum": [1, "a", null, true]}, "prefixItems": [{"type": "integer"}]}),
            json!({"required": ["a", "b", "c"], "properties": {"c": {"type": "string"}}}),
            json!({"required": ["a", "b", "c", "d", "t", "v", "x", "y", "k", "id", "order", "next", "AB", "abcd", "x-a", "q"]}),
        ]
    }

    /// The same answers as `serde_json::Value` on a table of instances.
    #[test]
    fn validates_as_serde_json_values_do() {
        let schemas = schemas();
        let instances = [
            r#"{"a":1,"b":"xy"}"#,
            r#"{"a":1.0,"b":"xyz"}"#,
            r#"{"a":1.5,"b":"x"}"#,
            r#"{"a":1,"b":"éé"}"#,
            r#"{"a":1,"b":"\u00e9\u00e9\u00e9\u00e9"}"#,
            r#"{"a":1,"b":"ab","c":null}"#,
            r#""x""#,
            r#""\u0078""#,
            "1",
            "1.0",
            "1e0",
            "2.5",
            "25e-1",
            "null",
            r#"[1,"a"]"#,
            r#"{"k":[true]}"#,
            r#"{"a":[1,2,{"b":"é"}]}"#,
            r#"{"a":[1.0,2,{"b":"\u00e9"}]}"#,
            "[0.5,-1,999.5]",
            "[0.5,0.50]",
            "[1000]",
            "[]",
            "18446744073709551615",
            "18446744073709551616",
            "-9223372036854775809",
            "1e400",
            r#"{"ab":1}"#,
            r#"{"abcd":1}"#,
            r#"{"AB":1}"#,
            "{}",
            r#"{"x-a":true,"b":"2026-11-23T10:00:00Z"}"#,
            r#"{"x-a":1,"b":"yesterday"}"#,
            r#""zoe@example.com""#,
            r#""zoe""#,
            r#""o-12""#,
            r#""o-1x""#,
            r#"{"t":"a","x":1}"#,
            r#"{"t":"a","y":1}"#,
            r#"{"t":"b","y":1}"#,
            r#"{"next":{"next":{"v":1}},"v":2}"#,
            r#"{"next":{"next":{"v":"1"}}}"#,
            r#"["a",1,"b"]"#,
            r#"["a",1]"#,
            "0",
            "0.0",
            r#"{"a":1}"#,
            r#"{"a":1,"b":2}"#,
            r#"{"b":2,"c":3}"#,
            r#""ab""#,
            r#""😀😀""#,
            r#""😀😀😀""#,
            r#""\ud83d\ude00\ud83d\ude00""#,
        ];
        let mut disagreements = Vec::new();
        let mut checked = 0;
        for schema in &schemas {
            let (serde_validator, tape_validator) = validator(schema);
            for text in instances {
                let value: Value = serde_json::from_str(text).unwrap();
                let doc = Doc::parse(text.as_bytes()).unwrap_or_else(|| panic!("{text}"));
                let want = serde_validator.is_valid(&value);
                checked += usize::from(want);
                if tape_validator.is_valid(doc.root()) != want {
                    disagreements.push(format!("{schema} on {text}: Value says {want}"));
                }
                let errors = tape_validator.iter_errors(doc.root()).count();
                if (errors == 0) != want {
                    disagreements.push(format!("{schema} on {text}: iter_errors {errors}"));
                }
            }
        }
        assert!(disagreements.is_empty(), "{disagreements:#?}");
        // Both answers occur (the table is not all valid or all invalid).
        assert!(checked > 50 && checked < schemas.len() * instances.len() - 50);
    }

    /// JSON text: numbers and strings as producers write them, keys the schemas name.
    fn json_text() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let numbers = [
            "0",
            "-0",
            "1",
            "2",
            "-1",
            "1.0",
            "2.5",
            "0.5",
            "1e2",
            "1E-2",
            "-2.50",
            "1000",
            "999.5",
            "42",
            "3",
            "18446744073709551615",
            "18446744073709551616",
            "-9223372036854775809",
            "1e400",
            "4.0e0",
        ];
        let strings = [
            "x",
            "o-12",
            "zoe@example.com",
            "2026-11-23T10:00:00Z",
            "EUR",
            "a",
            "ab",
            "abcd",
        ];
        let leaf = prop_oneof![
            Just("null".to_string()),
            Just("true".to_string()),
            Just("false".to_string()),
            prop::sample::select(numbers.to_vec()).prop_map(String::from),
            prop::sample::select(strings.to_vec()).prop_map(|s| format!("\"{s}\"")),
            // Escapes, non-ASCII and astral characters.
            "[a-zé😀\"\\\\ \n]{0,4}".prop_map(|s| serde_json::to_string(&s).unwrap()),
            Just("\"\\u0078\\ud83d\\ude00\"".to_string()),
        ];
        leaf.prop_recursive(4, 40, 5, |inner| {
            let keys = "[a-d]|x-a|next|v|order|id|t|x|y|k|AB|abcd";
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5)
                    .prop_map(|items| format!("[{}]", items.join(", "))),
                prop::collection::btree_map(keys, inner, 0..5).prop_map(|members| {
                    let members: Vec<String> = members
                        .iter()
                        .map(|(k, v)| format!("\"{k}\": {v}"))
                        .collect();
                    format!("{{ {} }}", members.join(","))
                }),
            ]
        })
    }

    #[test]
    fn random_documents_validate_as_values_do() {
        use proptest::test_runner::{Config, TestRunner};
        let schemas = schemas();
        let validators: Vec<_> = schemas.iter().map(validator).collect();
        let mut runner = TestRunner::new(Config {
            cases: 2000,
            ..Config::default()
        });
        runner
            .run(&json_text(), |text| {
                let value: Value = serde_json::from_str(&text).unwrap();
                let doc = Doc::parse(text.as_bytes()).expect("distinct unescaped keys parse");
                proptest::prop_assert_eq!(doc.root().to_value().into_owned(), value.clone());
                for (schema, (by_value, by_tape)) in schemas.iter().zip(&validators) {
                    proptest::prop_assert_eq!(
                        by_tape.is_valid(doc.root()),
                        by_value.is_valid(&value),
                        "{} on {}",
                        schema,
                        text
                    );
                }
                Ok(())
            })
            .unwrap();
    }
}
