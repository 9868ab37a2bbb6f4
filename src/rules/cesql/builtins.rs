//! The built-in functions (spec §3.5), resolved by name and arity at parse time.

use super::types::{cast_error, fail, ErrorKind, Eval, EvalError, Type};
use super::SqlValue;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Builtin {
    Length,
    Concat,
    ConcatWs,
    Lower,
    Upper,
    Trim,
    Left,
    Right,
    Substring,
    SubstringLen,
    Abs,
    CastInt,
    CastBool,
    CastString,
    IsBool,
    IsInt,
}

impl Builtin {
    /// Dispatches on the upper-cased name and the arity (functions are overloaded by
    /// arity only, spec §3.5).
    pub(super) fn resolve(name: &str, arity: usize) -> Option<Builtin> {
        use Builtin::*;
        Some(match (name, arity) {
            ("LENGTH", 1) => Length,
            ("CONCAT", _) => Concat,
            ("CONCAT_WS", n) if n >= 1 => ConcatWs,
            ("LOWER", 1) => Lower,
            ("UPPER", 1) => Upper,
            ("TRIM", 1) => Trim,
            ("LEFT", 2) => Left,
            ("RIGHT", 2) => Right,
            ("SUBSTRING", 2) => Substring,
            ("SUBSTRING", 3) => SubstringLen,
            ("ABS", 1) => Abs,
            ("INT", 1) => CastInt,
            ("BOOL", 1) => CastBool,
            ("STRING", 1) => CastString,
            ("IS_BOOL", 1) => IsBool,
            ("IS_INT", 1) => IsInt,
            _ => return None,
        })
    }

    pub(super) fn return_type(self) -> Type {
        use Builtin::*;
        match self {
            Length | Abs | CastInt => Type::Integer,
            CastBool | IsBool | IsInt => Type::Boolean,
            Concat | ConcatWs | Lower | Upper | Trim | Left | Right | Substring | SubstringLen
            | CastString => Type::String,
        }
    }

    /// Applies the function to already evaluated arguments (the arity was checked by
    /// `resolve`). Arguments are cast to the parameter types here; a failed cast yields
    /// the zero value of the return type and a CastError.
    pub(super) fn apply(self, args: Vec<SqlValue>) -> Eval {
        use SqlValue::{Boolean, Integer};
        let ret = self.return_type();
        let mut args = Args {
            values: args.into_iter(),
            ret,
        };
        match self {
            Builtin::Length => {
                let count = args.string().chars().count();
                Ok(Integer(i32::try_from(count).unwrap_or(i32::MAX)))
            }
            Builtin::Concat => Ok(SqlValue::String(args.rest().concat())),
            Builtin::ConcatWs => {
                let delimiter = args.string();
                Ok(SqlValue::String(args.rest().join(&delimiter)))
            }
            Builtin::Lower => Ok(SqlValue::String(args.string().to_lowercase())),
            Builtin::Upper => Ok(SqlValue::String(args.string().to_uppercase())),
            // `str::trim` removes Unicode White_Space, as the spec asks.
            Builtin::Trim => Ok(SqlValue::String(args.string().trim().to_owned())),
            Builtin::Left | Builtin::Right => {
                let text = args.string();
                let Ok(n) = usize::try_from(args.integer()?) else {
                    // Negative length: return `x` itself with an error (spec §3.5.1).
                    return fail(ErrorKind::FunctionEvaluation, SqlValue::String(text));
                };
                let len = text.chars().count();
                let result = if self == Builtin::Left {
                    text.chars().take(n).collect()
                } else {
                    text.chars().skip(len.saturating_sub(n)).collect()
                };
                Ok(SqlValue::String(result))
            }
            Builtin::Substring | Builtin::SubstringLen => {
                let text = args.string();
                let pos = args.integer()?;
                let len = match self {
                    Builtin::SubstringLen => Some(args.integer()?),
                    _ => None,
                };
                substring(&text, pos, len)
            }
            Builtin::Abs => match args.integer()?.checked_abs() {
                Some(i) => Ok(Integer(i)),
                // |-2147483648| does not fit: the spec mandates 2147483647 and a MathError.
                None => fail(ErrorKind::Math, Integer(i32::MAX)),
            },
            Builtin::CastInt => args
                .any()
                .into_integer()
                .map(Integer)
                .ok_or_else(|| cast_error(ret)),
            Builtin::CastBool => args
                .any()
                .into_boolean()
                .map(Boolean)
                .ok_or_else(|| cast_error(ret)),
            Builtin::CastString => Ok(SqlValue::String(args.any().into_string())),
            // "Can x be cast to Boolean/Integer?" (never an error). With the v1.0 casting
            // table, every Integer is a valid Boolean and every Boolean a valid Integer.
            Builtin::IsBool => Ok(Boolean(args.any().into_boolean().is_some())),
            Builtin::IsInt => Ok(Boolean(args.any().into_integer().is_some())),
        }
    }
}

/// Argument cursor for `Builtin::apply`.
pub(super) struct Args {
    values: std::vec::IntoIter<SqlValue>,
    ret: Type,
}

impl Args {
    pub(super) fn any(&mut self) -> SqlValue {
        // `resolve` guarantees the arity, so the fallback is never used.
        self.values.next().unwrap_or_else(|| self.ret.zero())
    }
    pub(super) fn string(&mut self) -> String {
        self.any().into_string()
    }
    pub(super) fn integer(&mut self) -> Result<i32, EvalError> {
        let ret = self.ret;
        self.any().into_integer().ok_or_else(|| cast_error(ret))
    }
    pub(super) fn rest(&mut self) -> Vec<String> {
        self.values.by_ref().map(SqlValue::into_string).collect()
    }
}

/// `SUBSTRING(x, pos[, len])`, 1-based, negative `pos` counts from the end, `pos = 0`
/// gives "". `pos` beyond either end or a negative `len` is a FunctionEvaluationError
/// with value "".
pub(super) fn substring(text: &str, pos: i32, len: Option<i32>) -> Eval {
    let chars = i64::try_from(text.chars().count()).unwrap_or(i64::MAX);
    let pos = i64::from(pos);
    if pos > chars || pos < -chars || len.is_some_and(|l| l < 0) {
        return fail(
            ErrorKind::FunctionEvaluation,
            SqlValue::String(String::new()),
        );
    }
    if pos == 0 {
        return Ok(SqlValue::String(String::new()));
    }
    let start = if pos > 0 { pos - 1 } else { chars + pos };
    let start = usize::try_from(start).unwrap_or(0);
    let take = len.map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(0));
    Ok(SqlValue::String(
        text.chars().skip(start).take(take).collect(),
    ))
}
