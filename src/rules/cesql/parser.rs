//! Parses tokens into the syntax tree: Pratt parsing (precedence climbing) with the
//! nesting and tree-height limits of the module docs.

use super::builtins::Builtin;
use super::eval::{Arith, BinaryOp, Comparison, Expr};
use super::lexer::{lex, Keyword, Tok};
use super::like::compile_like;
use super::{SqlValue, MAX_NESTING, MAX_TREE_HEIGHT};

/// Parses a whole expression: its syntax tree and the attributes it reads (lower case,
/// deduplicated, in order of first appearance).
pub(super) fn parse(text: &str) -> Result<(Expr, Vec<String>), String> {
    let mut parser = Parser {
        tokens: lex(text)?,
        pos: 0,
        nesting: 0,
        attributes: Vec::new(),
    };
    let (root, _) = parser.expression(0)?;
    if *parser.peek() != Tok::Eof {
        return parser.error("expected an operator or the end of the expression");
    }
    Ok((root, parser.attributes))
}

/// Binding powers, loosest first (spec §3.6). AND, OR and XOR share one level.
pub(super) const BP_LOGIC: u8 = 1;
pub(super) const BP_COMPARISON: u8 = 2;
pub(super) const BP_ADDITIVE: u8 = 3;
pub(super) const BP_MULTIPLICATIVE: u8 = 4;
pub(super) const BP_IN: u8 = 5;
pub(super) const BP_LIKE: u8 = 6;
/// Operand of unary `NOT`/`-`: binds tighter than every infix/postfix operator.
pub(super) const BP_PREFIX: u8 = 7;

/// An operator found after an operand.
pub(super) enum Infix {
    Binary(BinaryOp),
    Like { negated: bool },
    In { negated: bool },
}

/// An expression and the height of its syntax tree.
pub(super) type Parsed = (Expr, usize);

pub(super) fn check_height(height: usize, position: usize) -> Result<(), String> {
    if height > MAX_TREE_HEIGHT {
        return Err(format!(
            "at {position}: expression too complex (more than {MAX_TREE_HEIGHT} nested operations)"
        ));
    }
    Ok(())
}

pub(super) struct Parser {
    tokens: Vec<(Tok, usize)>,
    pos: usize,
    nesting: usize,
    attributes: Vec<String>,
}

pub(super) static EOF: (Tok, usize) = (Tok::Eof, 0);

impl Parser {
    pub(super) fn token_at(&self, offset: usize) -> &(Tok, usize) {
        self.tokens
            .get(self.pos + offset)
            .or(self.tokens.last())
            .unwrap_or(&EOF)
    }
    pub(super) fn peek(&self) -> &Tok {
        &self.token_at(0).0
    }
    pub(super) fn position(&self) -> usize {
        self.token_at(0).1
    }
    pub(super) fn advance(&mut self) -> Tok {
        let token = self.peek().clone();
        if token != Tok::Eof {
            self.pos += 1;
        }
        token
    }
    pub(super) fn error<T>(&self, message: &str) -> Result<T, String> {
        Err(format!("at {}: {message}", self.position()))
    }
    pub(super) fn expect(&mut self, token: Tok, what: &str) -> Result<(), String> {
        if *self.peek() == token {
            self.advance();
            Ok(())
        } else {
            self.error(&format!("expected {what}"))
        }
    }

    /// Parses an expression whose operators all bind tighter than `min_bp`.
    pub(super) fn expression(&mut self, min_bp: u8) -> Result<Parsed, String> {
        self.nesting += 1;
        if self.nesting > MAX_NESTING {
            return self.error(&format!(
                "expression nested too deeply (max {MAX_NESTING} levels)"
            ));
        }
        let start = self.position();
        let (mut lhs, mut height) = self.prefix()?;
        check_height(height, start)?;
        while let Some((bp, infix)) = self.infix() {
            if bp <= min_bp {
                break; // left associativity: equal binding power ends the operand
            }
            let op_position = self.position();
            self.advance();
            if matches!(
                infix,
                Infix::Like { negated: true } | Infix::In { negated: true }
            ) {
                self.advance(); // the LIKE/IN after NOT
            }
            (lhs, height) = match infix {
                Infix::Binary(op) => {
                    let (rhs, rhs_height) = self.expression(bp)?;
                    let node = Expr::Binary(op, Box::new(lhs), Box::new(rhs));
                    (node, height.max(rhs_height) + 1)
                }
                Infix::Like { negated } => {
                    // The pattern MUST be a string literal (spec §3.4.3).
                    let Tok::Str(pattern) = self.peek().clone() else {
                        return self.error("expected a string literal after LIKE");
                    };
                    self.advance();
                    let node = Expr::Like {
                        value: Box::new(lhs),
                        pattern: compile_like(&pattern),
                        negated,
                    };
                    (node, height + 1)
                }
                Infix::In { negated } => {
                    self.expect(Tok::LParen, "'(' after IN")?;
                    let (set, set_height) = self.list()?;
                    let node = Expr::In {
                        value: Box::new(lhs),
                        set,
                        negated,
                    };
                    (node, height.max(set_height) + 1)
                }
            };
            check_height(height, op_position)?;
        }
        self.nesting -= 1;
        Ok((lhs, height))
    }

    /// Classifies the current token as an infix/postfix operator.
    pub(super) fn infix(&self) -> Option<(u8, Infix)> {
        use BinaryOp::{And, Compare, Equal, Or, Xor};
        let binary = |bp, op| Some((bp, Infix::Binary(op)));
        let arith = |bp, op| Some((bp, Infix::Binary(BinaryOp::Arith(op))));
        match self.peek() {
            Tok::Kw(Keyword::And) => binary(BP_LOGIC, And),
            Tok::Kw(Keyword::Or) => binary(BP_LOGIC, Or),
            Tok::Kw(Keyword::Xor) => binary(BP_LOGIC, Xor),
            Tok::Equal => binary(BP_COMPARISON, Equal { negated: false }),
            Tok::NotEqual => binary(BP_COMPARISON, Equal { negated: true }),
            Tok::Less => binary(BP_COMPARISON, Compare(Comparison::Less)),
            Tok::LessOrEqual => binary(BP_COMPARISON, Compare(Comparison::LessOrEqual)),
            Tok::Greater => binary(BP_COMPARISON, Compare(Comparison::Greater)),
            Tok::GreaterOrEqual => binary(BP_COMPARISON, Compare(Comparison::GreaterOrEqual)),
            Tok::Plus => arith(BP_ADDITIVE, Arith::Add),
            Tok::Minus => arith(BP_ADDITIVE, Arith::Sub),
            Tok::Star => arith(BP_MULTIPLICATIVE, Arith::Mul),
            Tok::Slash => arith(BP_MULTIPLICATIVE, Arith::Div),
            Tok::Percent => arith(BP_MULTIPLICATIVE, Arith::Rem),
            Tok::Kw(Keyword::Like) => Some((BP_LIKE, Infix::Like { negated: false })),
            Tok::Kw(Keyword::In) => Some((BP_IN, Infix::In { negated: false })),
            Tok::Kw(Keyword::Not) => match self.token_at(1).0 {
                Tok::Kw(Keyword::Like) => Some((BP_LIKE, Infix::Like { negated: true })),
                Tok::Kw(Keyword::In) => Some((BP_IN, Infix::In { negated: true })),
                _ => None,
            },
            _ => None,
        }
    }

    /// Parses an operand: literal, attribute, call, parenthesised or unary expression.
    pub(super) fn prefix(&mut self) -> Result<Parsed, String> {
        let start = self.position();
        match self.advance() {
            Tok::Int(digits) => Ok((self.integer(&digits, false, start)?, 1)),
            // There is no unary plus, only signed literals (`integer-literal`).
            Tok::Plus => match self.advance() {
                Tok::Int(digits) => Ok((self.integer(&digits, false, start)?, 1)),
                _ => Err(format!("at {start}: expected an integer literal after '+'")),
            },
            Tok::Minus => {
                // `-` followed by digits is a negative literal (which makes -2147483648
                // representable); otherwise it is the negation operator.
                if let Tok::Int(digits) = self.peek().clone() {
                    self.advance();
                    return Ok((self.integer(&digits, true, start)?, 1));
                }
                let (operand, height) = self.expression(BP_PREFIX)?;
                Ok((Expr::Negate(Box::new(operand)), height + 1))
            }
            Tok::Kw(Keyword::Not) => {
                let (operand, height) = self.expression(BP_PREFIX)?;
                Ok((Expr::Not(Box::new(operand)), height + 1))
            }
            Tok::Kw(Keyword::True) => Ok((Expr::Literal(SqlValue::Boolean(true)), 1)),
            Tok::Kw(Keyword::False) => Ok((Expr::Literal(SqlValue::Boolean(false)), 1)),
            Tok::Kw(Keyword::Exists) => {
                let name_position = self.position();
                let name = match self.advance() {
                    Tok::Word(name) | Tok::Int(name) => name,
                    _ => {
                        return Err(format!(
                            "at {name_position}: expected an attribute name after EXISTS"
                        ))
                    }
                };
                Ok((Expr::Exists(self.attribute(&name, name_position)?), 1))
            }
            Tok::Str(value) => Ok((Expr::Literal(SqlValue::String(value)), 1)),
            Tok::LParen => {
                let inner = self.expression(0)?;
                self.expect(Tok::RParen, "')'")?;
                Ok(inner)
            }
            Tok::Word(word) if *self.peek() == Tok::LParen => {
                // function-identifier ::= char ( "_" | char )*
                let mut chars = word.chars();
                let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
                    && chars.all(|c| c.is_ascii_alphabetic() || c == '_');
                if !valid {
                    return Err(format!("at {start}: invalid function name '{word}'"));
                }
                self.advance();
                let (args, height) = if *self.peek() == Tok::RParen {
                    self.advance();
                    (Vec::new(), 0)
                } else {
                    self.list()?
                };
                let function = Builtin::resolve(&word.to_ascii_uppercase(), args.len());
                Ok((
                    Expr::Call {
                        name: word,
                        function,
                        args,
                    },
                    height + 1,
                ))
            }
            Tok::Word(word) => Ok((Expr::Attribute(self.attribute(&word, start)?), 1)),
            _ => Err(format!("at {start}: expected an expression")),
        }
    }

    /// Parses `expr (, expr)* )` after an opening parenthesis.
    pub(super) fn list(&mut self) -> Result<(Vec<Expr>, usize), String> {
        let mut items = Vec::new();
        let mut height = 0;
        loop {
            let (item, item_height) = self.expression(0)?;
            items.push(item);
            height = height.max(item_height);
            if *self.peek() == Tok::Comma {
                self.advance();
            } else {
                self.expect(Tok::RParen, "',' or ')'")?;
                return Ok((items, height));
            }
        }
    }

    /// Builds an integer literal, which must fit in 32 bits (spec §2.2).
    pub(super) fn integer(
        &self,
        digits: &str,
        negative: bool,
        start: usize,
    ) -> Result<Expr, String> {
        let magnitude: i64 = if digits.len() > 10 {
            i64::MAX
        } else {
            digits.parse().unwrap_or(i64::MAX)
        };
        let value = if negative { -magnitude } else { magnitude };
        match i32::try_from(value) {
            Ok(value) => Ok(Expr::Literal(SqlValue::Integer(value))),
            Err(_) => Err(format!(
                "at {start}: integer literal out of the 32-bit range"
            )),
        }
    }

    /// Validates and records an attribute name (`value-identifier`), lower-cased.
    pub(super) fn attribute(&mut self, name: &str, position: usize) -> Result<String, String> {
        if !name.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(format!(
                "at {position}: invalid attribute name '{name}' (only letters and digits are allowed)"
            ));
        }
        let name = name.to_ascii_lowercase();
        if !self.attributes.contains(&name) {
            self.attributes.push(name.clone());
        }
        Ok(name)
    }
}

#[cfg(test)]
mod tests {
    use super::super::Sql;

    #[test]
    fn parse_error_messages_name_position_and_expectation() {
        assert_eq!(Sql::parse("(1 + 2").unwrap_err(), "at 6: expected ')'");
        assert_eq!(Sql::parse("").unwrap_err(), "at 0: expected an expression");
        assert_eq!(
            Sql::parse("a LIKE 1").unwrap_err(),
            "at 7: expected a string literal after LIKE"
        );
        assert_eq!(
            Sql::parse("1 2").unwrap_err(),
            "at 2: expected an operator or the end of the expression"
        );
        assert_eq!(
            Sql::parse("x = 'abc").unwrap_err(),
            "at 4: unterminated string literal"
        );
        assert_eq!(
            Sql::parse("2147483648").unwrap_err(),
            "at 0: integer literal out of the 32-bit range"
        );
        assert_eq!(
            Sql::parse("ABS(1, 2").unwrap_err(),
            "at 8: expected ',' or ')'"
        );
    }
}
