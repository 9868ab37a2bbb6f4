//! Splits an expression into tokens tagged with their byte offsets.

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
    /// Unsigned digits; the sign, if any, is a separate `Plus`/`Minus` token.
    Int(String),
    Str(String),
    /// An attribute or function name (validated by the parser, which knows which).
    Word(String),
    Kw(Keyword),
    LParen,
    RParen,
    Comma,
    Plus,
    Minus,
    Star,
    Slash,
    Percent,
    Equal,
    NotEqual,
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
    Eof,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Keyword {
    And,
    Or,
    Xor,
    Not,
    Like,
    Exists,
    In,
    True,
    False,
}

pub(super) const KEYWORDS: [(&str, Keyword); 9] = [
    ("AND", Keyword::And),
    ("OR", Keyword::Or),
    ("XOR", Keyword::Xor),
    ("NOT", Keyword::Not),
    ("LIKE", Keyword::Like),
    ("EXISTS", Keyword::Exists),
    ("IN", Keyword::In),
    ("TRUE", Keyword::True),
    ("FALSE", Keyword::False),
];

/// Splits the text into tokens tagged with their byte offsets; the last one is `Eof`.
pub(super) fn lex(text: &str) -> Result<Vec<(Tok, usize)>, String> {
    let mut tokens = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        let mut next_is = |expected: char| chars.next_if(|&(_, n)| n == expected).is_some();
        let token = match c {
            ' ' | '\t' | '\r' | '\n' => continue,
            '(' => Tok::LParen,
            ')' => Tok::RParen,
            ',' => Tok::Comma,
            '+' => Tok::Plus,
            '-' => Tok::Minus,
            '*' => Tok::Star,
            '/' => Tok::Slash,
            '%' => Tok::Percent,
            '=' => Tok::Equal,
            '!' if next_is('=') => Tok::NotEqual,
            '!' => return Err(format!("at {start}: expected '=' after '!'")),
            '<' if next_is('=') => Tok::LessOrEqual,
            '<' if next_is('>') => Tok::NotEqual,
            '<' => Tok::Less,
            '>' if next_is('=') => Tok::GreaterOrEqual,
            '>' => Tok::Greater,
            '\'' | '"' => {
                // Like the reference ANTLR lexer, a backslash always pairs with the next
                // character; only an escaped delimiter is unescaped.
                let mut value = String::new();
                loop {
                    match chars.next() {
                        None => return Err(format!("at {start}: unterminated string literal")),
                        Some((_, q)) if q == c => break,
                        Some((_, '\\')) => match chars.next() {
                            Some((_, q)) if q == c => value.push(q),
                            Some((_, other)) => {
                                value.push('\\');
                                value.push(other);
                            }
                            None => return Err(format!("at {start}: unterminated string literal")),
                        },
                        Some((_, other)) => value.push(other),
                    }
                }
                Tok::Str(value)
            }
            c if c.is_ascii_alphanumeric() || c == '_' => {
                let mut word = String::from(c);
                while let Some((_, n)) =
                    chars.next_if(|&(_, n)| n.is_ascii_alphanumeric() || n == '_')
                {
                    word.push(n);
                }
                if word.bytes().all(|b| b.is_ascii_digit()) {
                    Tok::Int(word)
                } else if let Some(&(_, kw)) =
                    KEYWORDS.iter().find(|(k, _)| k.eq_ignore_ascii_case(&word))
                {
                    Tok::Kw(kw)
                } else {
                    Tok::Word(word)
                }
            }
            other => return Err(format!("at {start}: unexpected character {other:?}")),
        };
        tokens.push((token, start));
    }
    tokens.push((Tok::Eof, text.len()));
    Ok(tokens)
}
