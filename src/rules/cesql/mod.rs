//! CloudEvents SQL Expression Language (CESQL) v1.0: parser and evaluator.
//!
//! Self-contained (std only). Supported, following the v1.0.0 specification:
//!
//! * **Literals**: integers (32-bit signed, optional `+`/`-` sign, out of range is a
//!   parse error), `TRUE`/`FALSE`, and `'…'` or `"…"` strings. Inside a string only the
//!   delimiting quote is unescaped (`\'` in `'…'`, `\"` in `"…"`); any other backslash is
//!   kept verbatim so that `LIKE` patterns can carry `\%` and `\_`.
//! * **Attributes**: `[A-Za-z0-9]+`, matched case-insensitively (CloudEvents attribute names
//!   are lower case, so names are lowered). A missing attribute is a *MissingAttributeError*.
//! * **Operators**: `NOT`, unary `-`, `* / %`, `+ -`, `= != <> < <= > >=`, `AND OR XOR`,
//!   `[NOT] LIKE 'pattern'` (`%`, `_`, `\%`, `\_`), `[NOT] IN (a, b, …)`, `EXISTS name`.
//!   Keywords and function names are case-insensitive.
//! * **Functions**: `LENGTH`, `CONCAT`, `CONCAT_WS`, `LOWER`, `UPPER`, `TRIM`, `LEFT`,
//!   `RIGHT`, `SUBSTRING` (2 and 3 arguments), `ABS`, and the casting functions `INT`,
//!   `BOOL`, `STRING`, `IS_BOOL`, `IS_INT`. An unknown name or arity evaluates to `false`
//!   with a *MissingFunctionError*.
//! * **Types and casts**: String, Integer, Boolean with the implicit casts of spec §3.7
//!   (`=`/`<>`/`!=` cast the left operand to the right operand's type; `IN` casts the set
//!   elements to the left operand's type; everything else casts to the declared types).
//!
//! Precedence (spec §3.6, tightest first): function calls; unary `NOT` and `-`; `LIKE`;
//! `EXISTS`; `IN`; `* / %`; `+ -`; comparisons; then `AND`, `OR`, `XOR`, which share **one**
//! level and associate left to right. Note the two places where this differs from
//! classic SQL: `a OR b AND c` means `(a OR b) AND c`, and `NOT a = b` means
//! `(NOT a) = b`; write parentheses (or `a NOT LIKE …` / `a NOT IN …`) when in doubt.
//!
//! **Errors.** Evaluation never fails: it returns a value plus an error flag. The
//! evaluator works in the spec's "fail fast" mode (§4.1), which is also what the TCK
//! expects: as soon as an operand of an operator or function fails, the operator yields
//! the zero value of its own return type (`""`, `0`, `false`) and the error travels up;
//! `AND`/`OR` still short-circuit, so `FALSE AND 1/0 = 0` is `false` with no error. Only
//! the operation where an error *originates* may pick a different value (`ABS` of
//! `-2147483648` gives `2147483647`, `LEFT(x, -1)` gives `x`, as the spec requires).
//! Integer overflow (`+ - *`, `/` of `-2147483648` by `-1`, unary minus of
//! `-2147483648`) is a *MathError* with value `0`, like division by zero.
//!
//! **Limits.** Expressions longer than 4096 bytes, nested deeper than 64 levels, or whose
//! syntax tree is taller than 256 nodes (e.g. a chain of 300 `OR`s) are rejected at parse
//! time, so parsing and evaluation need little stack (measured worst case: ~130 KiB in
//! release builds, ~650 KiB in debug builds). Neither panics on any input.
//!
//! The code follows the pipeline: `lexer` (text to tokens), `parser` (tokens to the
//! syntax tree, with the limits), `eval` (the tree and its evaluation) over `types`
//! (values, casts, errors), `like` and `builtins`; `tck` holds the conformance suite.

mod builtins;
mod eval;
mod lexer;
mod like;
mod parser;
#[cfg(test)]
mod tck;
mod types;

use std::fmt;

use eval::Expr;

/// Longest accepted expression, in bytes.
const MAX_EXPRESSION_LEN: usize = 4096;
/// Deepest accepted syntactic nesting (parentheses, unary operators, calls, precedence levels).
const MAX_NESTING: usize = 64;
/// Tallest accepted syntax tree. Chains such as `a OR b OR c …` grow the tree without
/// nesting; this bounds the evaluator's recursion.
const MAX_TREE_HEIGHT: usize = 256;

/// A parsed CESQL v1 expression.
#[derive(Debug, Clone)]
pub struct Sql {
    root: Expr,
    attributes: Vec<String>,
}

/// A CESQL value.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    String(String),
    Integer(i32),
    Boolean(bool),
}

impl fmt::Display for SqlValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SqlValue::String(s) => f.write_str(s),
            SqlValue::Integer(i) => write!(f, "{i}"),
            SqlValue::Boolean(b) => write!(f, "{b}"),
        }
    }
}

/// Signature of the attribute lookup callback.
type Attr<'a> = &'a dyn Fn(&str) -> Option<SqlValue>;

impl Sql {
    /// Parses an expression.
    ///
    /// # Errors
    ///
    /// A syntax error or an exceeded limit; the message names the position (0-based byte
    /// offset) and what was expected, e.g. "at 12: expected ')'".
    pub fn parse(text: &str) -> Result<Sql, String> {
        if text.len() > MAX_EXPRESSION_LEN {
            return Err(format!(
                "at {MAX_EXPRESSION_LEN}: expression too long (max {MAX_EXPRESSION_LEN} bytes)"
            ));
        }
        let (root, attributes) = parser::parse(text)?;
        Ok(Sql { root, attributes })
    }

    /// Names of the context attributes the expression reads (lower case, deduplicated,
    /// in order of first appearance), so the caller knows what to extract from the event.
    #[must_use]
    pub fn attributes(&self) -> Vec<String> {
        self.attributes.clone()
    }

    /// Evaluates against an event; `attr(name)` returns the attribute's value or None if
    /// the event lacks it. Returns the result value (after evaluation, with errors
    /// replaced by zero values as the spec says) and whether any evaluation error occurred.
    ///
    /// `attr` is called with lower-case names; it must return `Some` for the required
    /// attributes (`id`, `source`, `specversion`, `type`) and represent values that are
    /// not Integer or Boolean (URIs, timestamps, binary) as `SqlValue::String`.
    #[must_use]
    pub fn evaluate(&self, attr: &dyn Fn(&str) -> Option<SqlValue>) -> (SqlValue, bool) {
        match self.root.eval(attr) {
            Ok(value) => (value, false),
            Err(error) => (error.value, true),
        }
    }

    /// Filter semantics for the CloudEvents Subscriptions API.
    ///
    /// Spec §1.2 (v1.0): "the expression output value MUST be a Boolean. If the output
    /// value is not a Boolean, or any errors are returned, the event MUST NOT pass the
    /// filter." So the result is *not* cast: only `Boolean(true)` with no error passes;
    /// `Integer(1)` or `String("true")` do not. (Pre-1.0 drafts said the result was
    /// "always cast to a boolean"; v1.0 replaced that.)
    #[must_use]
    pub fn matches(&self, attr: &dyn Fn(&str) -> Option<SqlValue>) -> bool {
        matches!(self.evaluate(attr), (SqlValue::Boolean(true), false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    // -----------------------------------------------------------------------------------
    // API
    // -----------------------------------------------------------------------------------

    fn attrs(pairs: &[(&str, SqlValue)]) -> impl Fn(&str) -> Option<SqlValue> {
        let map: HashMap<String, SqlValue> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        move |name: &str| map.get(name).cloned()
    }

    #[test]
    fn attributes_are_lowercased_and_deduplicated() {
        let sql = Sql::parse(
            "Type = 'x' AND (EXISTS subject OR LENGTH(type) > ttl) AND NOT EXISTS SUBJECT",
        )
        .unwrap();
        assert_eq!(sql.attributes(), ["type", "subject", "ttl"]);
        assert!(Sql::parse("1 + 2").unwrap().attributes().is_empty());
    }

    #[test]
    fn matches_requires_boolean_true_without_error() {
        let event = attrs(&[
            ("type", SqlValue::String("a".into())),
            ("one", SqlValue::Integer(1)),
        ]);
        let matches = |text: &str| Sql::parse(text).unwrap().matches(&event);
        assert!(matches("type = 'a'"));
        assert!(!matches("type = 'b'"));
        assert!(!matches("one")); // Integer(1) is not a Boolean: no implicit cast
        assert!(!matches("'true'"));
        assert!(matches("type = 'a' OR missing = 1")); // OR short-circuits before the error
        assert!(!matches("missing = 1 OR type = 'a'")); // error => filtered out
        assert!(!matches("NOT (missing = 1)")); // error => filtered out even though "NOT false"
        assert!(!matches("1 / 0 = 0"));
    }

    // -----------------------------------------------------------------------------------
    // Robustness
    // -----------------------------------------------------------------------------------

    #[test]
    fn limits_are_enforced_without_panicking() {
        let deep_parens = format!("{}1{}", "(".repeat(1000), ")".repeat(1000));
        assert!(Sql::parse(&deep_parens)
            .unwrap_err()
            .contains("nested too deeply"));
        assert!(Sql::parse(&"NOT ".repeat(1000))
            .unwrap_err()
            .contains("nested too deeply"));
        assert!(Sql::parse(&"-".repeat(1000)).is_err());
        assert!(Sql::parse(&format!("{}1{}", "ABS(".repeat(500), ")".repeat(500))).is_err());
        let chain = vec!["1"; 1000].join("+");
        assert!(Sql::parse(&chain).unwrap_err().contains("too complex"));
        let too_long = format!("'{}'", "a".repeat(MAX_EXPRESSION_LEN));
        assert!(Sql::parse(&too_long).unwrap_err().contains("too long"));

        // The largest accepted shapes parse and evaluate within a small stack (measured
        // worst case: ~650 KiB in a debug build, ~130 KiB in release).
        let shapes = [
            vec!["1"; MAX_TREE_HEIGHT].join("+"),
            vec!["a = 2"; MAX_TREE_HEIGHT - 2].join(" OR "),
            format!(
                "{}a{}",
                "ABS(".repeat(MAX_NESTING - 2),
                ")".repeat(MAX_NESTING - 2)
            ),
            format!("{}a", "NOT ".repeat(MAX_NESTING - 2)),
        ];
        let worker = std::thread::Builder::new().stack_size(1024 * 1024);
        let results = worker
            .spawn(move || {
                let attr = |_: &str| Some(SqlValue::Integer(1));
                shapes.map(|text| Sql::parse(&text).map(|sql| sql.evaluate(&attr)))
            })
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(results[0], Ok((SqlValue::Integer(256), false)));
        assert_eq!(results[1], Ok((SqlValue::Boolean(false), false)));
        assert_eq!(results[2], Ok((SqlValue::Integer(1), false)));
        assert_eq!(results[3], Ok((SqlValue::Boolean(true), false)));
        let wrapped = format!(
            "{}({}){}",
            "-(".repeat(10),
            vec!["1"; MAX_TREE_HEIGHT].join("+"),
            ")".repeat(10)
        );
        assert!(Sql::parse(&wrapped).unwrap_err().contains("too complex"));
        let too_tall = vec!["1"; MAX_TREE_HEIGHT + 2].join("+");
        assert!(Sql::parse(&too_tall).is_err());
        let nested = format!("{}1{}", "(-".repeat(31), ")".repeat(31));
        assert_eq!(
            Sql::parse(&nested).unwrap().evaluate(&|_| None),
            (SqlValue::Integer(-1), false)
        );
        let chain = vec!["a = 1"; MAX_TREE_HEIGHT / 2].join(" OR ");
        let sql = Sql::parse(&chain).unwrap();
        assert_eq!(
            sql.evaluate(&|_| Some(SqlValue::Integer(2))),
            (SqlValue::Boolean(false), false)
        );
        let long_set = format!("a IN ({})", vec!["'x'"; 1000].join(","));
        assert!(!Sql::parse(&long_set)
            .unwrap()
            .matches(&|_| Some(SqlValue::String("y".into()))));
    }

    /// Tiny xorshift64 generator, so the test needs no crates.
    struct XorShift(u64);
    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
            items[(self.next() % items.len() as u64) as usize]
        }
    }

    #[test]
    fn random_token_soup_never_panics() {
        const TOKENS: &[&str] = &[
            "(",
            ")",
            ",",
            "+",
            "-",
            "*",
            "/",
            "%",
            "=",
            "!=",
            "<>",
            "<",
            "<=",
            ">",
            ">=",
            "!",
            "AND",
            "or",
            "XOR",
            "NOT",
            "LIKE",
            "EXISTS",
            "IN",
            "TRUE",
            "false",
            "0",
            "1",
            "7",
            "2147483647",
            "2147483648",
            "-2147483648",
            "'abc'",
            "'a%_\\%'",
            "\"x\\\"y\"",
            "'",
            "\"",
            "\\",
            "id",
            "type",
            "myint",
            "missing",
            "ABS",
            "LENGTH",
            "CONCAT",
            "CONCAT_WS",
            "SUBSTRING",
            "LEFT",
            "INT",
            "BOOL",
            "STRING",
            "IS_INT",
            "my_ext",
            "é",
            "#",
            " ",
            "\n",
        ];
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        let event = attrs(&[
            ("id", SqlValue::String("1".into())),
            ("type", SqlValue::String("abc".into())),
            ("myint", SqlValue::Integer(i32::MIN)),
        ]);
        let mut parsed = 0;
        for _ in 0..5000 {
            let len = 1 + rng.next() % 24;
            let text: Vec<&str> = (0..len).map(|_| rng.pick(TOKENS)).collect();
            let separator = if rng.next().is_multiple_of(2) {
                " "
            } else {
                ""
            };
            if let Ok(sql) = Sql::parse(&text.join(separator)) {
                parsed += 1;
                let _ = sql.evaluate(&event);
                let _ = sql.matches(&event);
                let _ = sql.attributes();
            }
        }
        // Grammar-shaped inputs: operand (operator operand)*.
        const OPERANDS: &[&str] = &[
            "1",
            "-1",
            "'2'",
            "TRUE",
            "id",
            "myint",
            "missing",
            "ABS(myint)",
            "(3)",
            "LENGTH(type)",
        ];
        const OPERATORS: &[&str] = &[
            "+", "-", "*", "/", "%", "=", "<>", "<", ">=", "AND", "OR", "XOR",
        ];
        for _ in 0..2000 {
            let mut text = String::from(rng.pick(OPERANDS));
            for _ in 0..rng.next() % 8 {
                text = format!("{text} {} {}", rng.pick(OPERATORS), rng.pick(OPERANDS));
                if rng.next().is_multiple_of(4) {
                    text = format!("NOT ({text})");
                }
            }
            let sql = Sql::parse(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
            let _ = sql.evaluate(&event);
            parsed += 1;
        }
        assert!(parsed > 2000);
    }
}
