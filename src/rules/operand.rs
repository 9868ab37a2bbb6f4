//! What one alternative of a pattern leaf tests about one leaf value of the event.
//!
//! Every operator is evaluated here, on a single value; the matcher's indexes only decide
//! which conditions are worth evaluating.

use std::borrow::Cow;
use std::net::IpAddr;

/// A leaf value of an event: a string, number, boolean or null found at a field's path.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Leaf<'a> {
    /// A string and, if some rule on the field ignores case, its lower-case form.
    Str(&'a str, Option<&'a str>),
    Num(f64),
    Bool(bool),
    Null,
}

/// An exact JSON value in a pattern.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Scalar {
    Str(Box<str>),
    Num(f64),
    Bool(bool),
    Null,
}

impl Scalar {
    fn equals(&self, leaf: &Leaf<'_>) -> bool {
        match (self, leaf) {
            (Scalar::Str(a), Leaf::Str(b, _)) => **a == **b,
            (Scalar::Num(a), Leaf::Num(b)) => a == b,
            (Scalar::Bool(a), Leaf::Bool(b)) => a == b,
            (Scalar::Null, Leaf::Null) => true,
            _ => false,
        }
    }
}

/// One alternative of a leaf (`"x"`, `{"prefix": "a"}`, ...). Strings of the `*Ic`
/// variants are stored in lower case.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Operand {
    Exact(Scalar),
    Prefix(Box<str>),
    PrefixIc(Box<str>),
    Suffix(Box<str>),
    SuffixIc(Box<str>),
    EqualsIc(Box<str>),
    Wildcard(Glob),
    Contains(Box<str>),
    AnythingBut(Exclusion),
    Numeric(Range),
    Cidr(Cidr),
    /// `{"exists": true}`: any leaf value.
    Exists,
}

/// What `anything-but` excludes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Exclusion {
    Values(Vec<Scalar>),
    Prefixes(Vec<Box<str>>),
    Suffixes(Vec<Box<str>>),
    EqualsIc(Vec<Box<str>>),
    Wildcards(Vec<Glob>),
}

impl Operand {
    pub(crate) fn matches(&self, leaf: &Leaf<'_>) -> bool {
        if let Operand::Exact(s) = self {
            return s.equals(leaf);
        }
        match (self, leaf) {
            (Operand::Exists, _) => true,
            (Operand::AnythingBut(ex), _) => !ex.excludes(leaf),
            (Operand::Numeric(r), Leaf::Num(n)) => r.contains(*n),
            (_, Leaf::Str(s, lower)) => self.matches_str(s, *lower),
            _ => false,
        }
    }

    fn matches_str(&self, s: &str, lower: Option<&str>) -> bool {
        let lower = |_: ()| match lower {
            Some(l) => Cow::Borrowed(l),
            None => Cow::Owned(to_lower(s)),
        };
        match self {
            Operand::Prefix(p) => s.starts_with(&**p),
            Operand::Suffix(p) => s.ends_with(&**p),
            Operand::PrefixIc(p) => lower(()).starts_with(&**p),
            Operand::SuffixIc(p) => lower(()).ends_with(&**p),
            Operand::EqualsIc(p) => *lower(()) == **p,
            Operand::Wildcard(g) => g.matches(s),
            Operand::Contains(p) => memchr::memmem::find(s.as_bytes(), p.as_bytes()).is_some(),
            Operand::Cidr(c) => c.contains_str(s),
            _ => false,
        }
    }

    /// Whether matching needs the value's lower-case form.
    pub(crate) fn ignores_case(&self) -> bool {
        matches!(
            self,
            Operand::PrefixIc(_)
                | Operand::SuffixIc(_)
                | Operand::EqualsIc(_)
                | Operand::AnythingBut(Exclusion::EqualsIc(_))
        )
    }
}

impl Exclusion {
    fn excludes(&self, leaf: &Leaf<'_>) -> bool {
        match self {
            Exclusion::Values(values) => values.iter().any(|v| v.equals(leaf)),
            Exclusion::Prefixes(ps) => {
                str_of(leaf).is_some_and(|s| ps.iter().any(|p| s.starts_with(&**p)))
            }
            Exclusion::Suffixes(ps) => {
                str_of(leaf).is_some_and(|s| ps.iter().any(|p| s.ends_with(&**p)))
            }
            Exclusion::Wildcards(gs) => {
                str_of(leaf).is_some_and(|s| gs.iter().any(|g| g.matches(s)))
            }
            Exclusion::EqualsIc(vs) => match leaf {
                Leaf::Str(s, lower) => {
                    let owned;
                    let lower = match lower {
                        Some(l) => *l,
                        None => {
                            owned = to_lower(s);
                            &owned
                        }
                    };
                    vs.iter().any(|v| **v == *lower)
                }
                _ => false,
            },
        }
    }
}

fn str_of<'a>(leaf: &Leaf<'a>) -> Option<&'a str> {
    match leaf {
        Leaf::Str(s, _) => Some(s),
        _ => None,
    }
}

/// Lower case, character by character (no context rules such as the final sigma), so that
/// the lower case of a prefix is a prefix of the lower case.
pub(crate) fn to_lower(s: &str) -> String {
    if s.is_ascii() {
        s.to_ascii_lowercase()
    } else {
        s.chars().flat_map(char::to_lowercase).collect()
    }
}

/// A `wildcard` glob: literal segments separated by `*`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Glob {
    /// `a*b*c` is `["a", "b", "c"]`; `*a` is `["", "a"]`; no star is one segment.
    segments: Vec<Box<str>>,
}

impl Glob {
    /// Parses `*`, `\*` and `\\`; rejects `**` and any other escape.
    pub(crate) fn parse(text: &str) -> Result<Glob, String> {
        let mut segments = Vec::new();
        let mut current = String::new();
        let mut chars = text.chars().peekable();
        let mut after_star = false;
        while let Some(c) = chars.next() {
            match c {
                '*' if after_star => {
                    return Err("consecutive wildcards (**) are not allowed".into())
                }
                '*' => {
                    segments.push(std::mem::take(&mut current).into_boxed_str());
                    after_star = true;
                    continue;
                }
                '\\' => match chars.next() {
                    Some(e @ ('*' | '\\')) => current.push(e),
                    _ => {
                        return Err("a backslash may only escape * or \\ (write \\* or \\\\)".into())
                    }
                },
                c => current.push(c),
            }
            after_star = false;
        }
        segments.push(current.into_boxed_str());
        Ok(Glob { segments })
    }

    /// The literal text before the first `*` (the whole text if there is none).
    pub(crate) fn literal_prefix(&self) -> &str {
        &self.segments[0]
    }

    /// The literal text after the last `*`, if there is a `*`.
    pub(crate) fn literal_suffix(&self) -> Option<&str> {
        (self.segments.len() > 1).then(|| &*self.segments[self.segments.len() - 1])
    }

    /// Linear in the length of `s`: the first and last segments anchor the ends, the
    /// middle ones are found leftmost-first, which is optimal for `*`-only globs.
    pub(crate) fn matches(&self, s: &str) -> bool {
        let segs = &self.segments;
        if segs.len() == 1 {
            return *segs[0] == *s;
        }
        let (first, last) = (&*segs[0], &*segs[segs.len() - 1]);
        if s.len() < first.len() + last.len() || !s.starts_with(first) || !s.ends_with(last) {
            return false;
        }
        let mut rest = &s.as_bytes()[first.len()..s.len() - last.len()];
        for seg in &segs[1..segs.len() - 1] {
            match memchr::memmem::find(rest, seg.as_bytes()) {
                Some(at) => rest = &rest[at + seg.len()..],
                None => return false,
            }
        }
        true
    }
}

/// A `numeric` range; a bound is `(value, inclusive)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Range {
    pub lower: Option<(f64, bool)>,
    pub upper: Option<(f64, bool)>,
}

impl Range {
    pub(crate) fn contains(&self, n: f64) -> bool {
        self.lower
            .is_none_or(|(lo, incl)| n > lo || (incl && n == lo))
            && self
                .upper
                .is_none_or(|(hi, incl)| n < hi || (incl && n == hi))
    }
}

/// An IP network; IPv4 addresses live in the low 32 bits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Cidr {
    pub v6: bool,
    pub bits: u128,
    pub len: u8,
}

impl Cidr {
    pub(crate) fn parse(text: &str) -> Result<Cidr, String> {
        let (addr, len) = text
            .split_once('/')
            .ok_or("expected an address/length network such as 10.0.0.0/24")?;
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("{addr:?} is not an IP address"))?;
        let (v6, bits) = ip_bits(addr);
        let max = if v6 { 128 } else { 32 };
        let len: u8 = len
            .parse()
            .ok()
            .filter(|l| *l <= max)
            .ok_or(format!("the prefix length must be 0 to {max}"))?;
        Ok(Cidr {
            v6,
            bits: mask(bits, len, v6),
            len,
        })
    }

    fn contains_str(&self, s: &str) -> bool {
        s.parse::<IpAddr>().is_ok_and(|ip| self.contains(ip))
    }

    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        let (v6, bits) = ip_bits(ip);
        v6 == self.v6 && mask(bits, self.len, v6) == self.bits
    }
}

pub(crate) fn ip_bits(ip: IpAddr) -> (bool, u128) {
    match ip {
        IpAddr::V4(a) => (false, u32::from(a) as u128),
        IpAddr::V6(a) => (true, u128::from(a)),
    }
}

/// Keeps the first `len` bits of an address of 32 or 128 bits.
pub(crate) fn mask(bits: u128, len: u8, v6: bool) -> u128 {
    let width = if v6 { 128 } else { 32 };
    let drop = width - len as u32;
    if drop >= 128 {
        0
    } else {
        (bits >> drop) << drop
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        let g = |p: &str, s: &str| Glob::parse(p).unwrap().matches(s);
        assert!(g("a*b", "ab") && g("a*b", "axxb") && !g("a*b", "axxc"));
        assert!(g("*", "") && g("*", "anything"));
        assert!(g("*a*b*", "xaxbx") && !g("*a*b*", "xbxax"));
        assert!(g("a*a", "aa") && !g("a*a", "a"), "ends may not overlap");
        assert!(g(r"a\*b", "a*b") && !g(r"a\*b", "axb"));
        assert!(g(r"a\\*", r"a\zz"));
        assert!(Glob::parse("a**b").is_err() && Glob::parse(r"\n").is_err());
        assert!(Glob::parse(r"a\").is_err());
    }

    #[test]
    fn cidrs() {
        let c = Cidr::parse("10.0.0.1/24").unwrap();
        assert!(c.contains_str("10.0.0.255") && !c.contains_str("10.0.1.0"));
        assert!(!c.contains_str("::ffff:10.0.0.1"), "another family");
        let c = Cidr::parse("2001:db8::/32").unwrap();
        assert!(c.contains_str("2001:db8:1::1") && !c.contains_str("2001:db9::1"));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains_str("1.2.3.4"));
        assert!(Cidr::parse("10.0.0.0/33").is_err() && Cidr::parse("10.0.0.0").is_err());
    }
}
