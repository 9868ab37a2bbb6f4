//! `LIKE` patterns: compiled once at parse time, matched without recursion.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LikeToken {
    /// `%`: any sequence of characters, possibly empty.
    AnySequence,
    /// `_`: exactly one character.
    AnyChar,
    Char(char),
}

/// Compiles a LIKE pattern. `\%` and `\_` are literal; a backslash before anything else
/// is itself a literal backslash (the spec only defines escapes for the two wildcards,
/// and the TCK expects `'ab\c' LIKE 'ab\c'` to hold).
pub(super) fn compile_like(pattern: &str) -> Vec<LikeToken> {
    let mut tokens = Vec::new();
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        let token = match c {
            '\\' => match chars.peek() {
                Some(&escaped @ ('%' | '_')) => {
                    chars.next();
                    LikeToken::Char(escaped)
                }
                _ => LikeToken::Char('\\'),
            },
            '%' => LikeToken::AnySequence,
            '_' => LikeToken::AnyChar,
            c => LikeToken::Char(c),
        };
        // `%%` is the same as `%`.
        if !(token == LikeToken::AnySequence && tokens.last() == Some(&LikeToken::AnySequence)) {
            tokens.push(token);
        }
    }
    tokens
}

/// Case-sensitive wildcard match over Unicode scalar values. Iterative, with a single
/// backtrack point (the last `%`), so the worst case is O(pattern × text), no recursion.
pub(super) fn like_matches(pattern: &[LikeToken], text: &str) -> bool {
    let text: Vec<char> = text.chars().collect();
    let (mut p, mut t) = (0, 0);
    // (pattern index after the last `%`, text index that `%` currently extends to)
    let mut backtrack: Option<(usize, usize)> = None;
    while let Some(&c) = text.get(t) {
        match pattern.get(p) {
            Some(LikeToken::AnySequence) => {
                p += 1;
                backtrack = Some((p, t));
            }
            Some(LikeToken::AnyChar) => {
                p += 1;
                t += 1;
            }
            Some(LikeToken::Char(expected)) if *expected == c => {
                p += 1;
                t += 1;
            }
            _ => match backtrack {
                // Let the last `%` swallow one more character and retry.
                Some((after_star, star_end)) => {
                    backtrack = Some((after_star, star_end + 1));
                    p = after_star;
                    t = star_end + 1;
                }
                None => return false,
            },
        }
    }
    pattern
        .iter()
        .skip(p)
        .all(|token| *token == LikeToken::AnySequence)
}
