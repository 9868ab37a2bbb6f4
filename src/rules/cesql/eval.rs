//! The syntax tree and its evaluation, in the spec's "fail fast" mode (see the module
//! docs of `cesql`).

use super::builtins::Builtin;
use super::like::{like_matches, LikeToken};
use super::types::{cast_error, fail, ErrorKind, Eval, EvalError, Type};
use super::{Attr, SqlValue};

#[derive(Debug, Clone)]
pub(super) enum Expr {
    Literal(SqlValue),
    Attribute(String),
    Exists(String),
    Not(Box<Expr>),
    Negate(Box<Expr>),
    Binary(BinaryOp, Box<Expr>, Box<Expr>),
    Like {
        value: Box<Expr>,
        pattern: Vec<LikeToken>,
        negated: bool,
    },
    In {
        value: Box<Expr>,
        set: Vec<Expr>,
        negated: bool,
    },
    Call {
        /// The name as written, kept for debugging output.
        #[allow(dead_code)]
        name: String,
        /// `None` when no built-in has this name and arity (MissingFunctionError).
        function: Option<Builtin>,
        args: Vec<Expr>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BinaryOp {
    And,
    Or,
    Xor,
    Equal { negated: bool },
    Compare(Comparison),
    Arith(Arith),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Comparison {
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Arith {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

// The evaluator recurses once per tree level, so every level's stack frames are kept
// small: `eval` only dispatches and each operation lives in its own function (this
// matters most in debug builds, where frames are not shared between match arms).
impl Expr {
    pub(super) fn eval(&self, attr: Attr) -> Eval {
        match self {
            Expr::Literal(value) => Ok(value.clone()),
            // The type of a bare attribute reference cannot be known statically, so a
            // missing one yields `false` (spec §3.2); enclosing operators substitute
            // their own zero value.
            Expr::Attribute(name) => attr(name).ok_or(EvalError {
                kind: ErrorKind::MissingAttribute,
                value: SqlValue::Boolean(false),
            }),
            Expr::Exists(name) => Ok(SqlValue::Boolean(attr(name).is_some())),
            Expr::Not(operand) => eval_not(operand, attr),
            Expr::Negate(operand) => eval_negate(operand, attr),
            Expr::Binary(op, left, right) => eval_binary(*op, left, right, attr),
            Expr::Like {
                value,
                pattern,
                negated,
            } => eval_like(value, pattern, *negated, attr),
            Expr::In {
                value,
                set,
                negated,
            } => eval_in(value, set, *negated, attr),
            Expr::Call { function, args, .. } => eval_call(*function, args, attr),
        }
    }

    /// Evaluates `self` as an operand of an operation returning `ret`: if the operand
    /// fails, the operation yields `ret`'s zero value (fail fast, see the module docs).
    pub(super) fn operand(&self, ret: Type, attr: Attr) -> Eval {
        self.eval(attr).map_err(|error| error.replace_value(ret))
    }

    /// Like `operand`, then cast to Integer (a failed cast is a CastError).
    pub(super) fn int_operand(&self, ret: Type, attr: Attr) -> Result<i32, EvalError> {
        match self.eval(attr) {
            Ok(value) => value.into_integer().ok_or_else(|| cast_error(ret)),
            Err(error) => Err(error.replace_value(ret)),
        }
    }

    /// Like `operand`, then cast to Boolean (a failed cast is a CastError).
    pub(super) fn bool_operand(&self, ret: Type, attr: Attr) -> Result<bool, EvalError> {
        match self.eval(attr) {
            Ok(value) => value.into_boolean().ok_or_else(|| cast_error(ret)),
            Err(error) => Err(error.replace_value(ret)),
        }
    }
}

pub(super) const BOOL: Type = Type::Boolean;

pub(super) fn eval_not(operand: &Expr, attr: Attr) -> Eval {
    Ok(SqlValue::Boolean(!operand.bool_operand(BOOL, attr)?))
}

pub(super) fn eval_negate(operand: &Expr, attr: Attr) -> Eval {
    match operand.int_operand(Type::Integer, attr)?.checked_neg() {
        Some(i) => Ok(SqlValue::Integer(i)),
        None => fail(ErrorKind::Math, SqlValue::Integer(0)),
    }
}

pub(super) fn eval_binary(op: BinaryOp, left: &Expr, right: &Expr, attr: Attr) -> Eval {
    match op {
        // `&&`/`||` short-circuit, so the right operand is not evaluated (spec §3.4.2).
        BinaryOp::And => Ok(SqlValue::Boolean(
            left.bool_operand(BOOL, attr)? && right.bool_operand(BOOL, attr)?,
        )),
        BinaryOp::Or => Ok(SqlValue::Boolean(
            left.bool_operand(BOOL, attr)? || right.bool_operand(BOOL, attr)?,
        )),
        BinaryOp::Xor => Ok(SqlValue::Boolean(
            left.bool_operand(BOOL, attr)? != right.bool_operand(BOOL, attr)?,
        )),
        BinaryOp::Equal { negated } => eval_equal(left, right, negated, attr),
        BinaryOp::Compare(comparison) => eval_compare(comparison, left, right, attr),
        BinaryOp::Arith(arith) => eval_arith(arith, left, right, attr),
    }
}

pub(super) fn eval_equal(left: &Expr, right: &Expr, negated: bool, attr: Attr) -> Eval {
    // `=` is overloaded for all three types, so it is "ambiguous" (§3.7): the right
    // operand's type selects the overload and the left operand is cast to it.
    let l = left.operand(BOOL, attr)?;
    let r = right.operand(BOOL, attr)?;
    let l = l.cast(r.ty()).ok_or_else(|| cast_error(BOOL))?;
    Ok(SqlValue::Boolean((l == r) != negated))
}

pub(super) fn eval_compare(comparison: Comparison, left: &Expr, right: &Expr, attr: Attr) -> Eval {
    let l = left.int_operand(BOOL, attr)?;
    let r = right.int_operand(BOOL, attr)?;
    Ok(SqlValue::Boolean(match comparison {
        Comparison::Less => l < r,
        Comparison::LessOrEqual => l <= r,
        Comparison::Greater => l > r,
        Comparison::GreaterOrEqual => l >= r,
    }))
}

pub(super) fn eval_arith(arith: Arith, left: &Expr, right: &Expr, attr: Attr) -> Eval {
    let l = left.int_operand(Type::Integer, attr)?;
    let r = right.int_operand(Type::Integer, attr)?;
    // Division and remainder truncate towards zero and the remainder has the sign of the
    // dividend (Rust's `/` and `%`). `i32::MIN % -1` is 0, not an overflow.
    let result = match arith {
        Arith::Add => l.checked_add(r),
        Arith::Sub => l.checked_sub(r),
        Arith::Mul => l.checked_mul(r),
        Arith::Div => l.checked_div(r),
        Arith::Rem if r == 0 => None,
        Arith::Rem => Some(l.wrapping_rem(r)),
    };
    match result {
        Some(i) => Ok(SqlValue::Integer(i)),
        None => fail(ErrorKind::Math, SqlValue::Integer(0)),
    }
}

pub(super) fn eval_like(value: &Expr, pattern: &[LikeToken], negated: bool, attr: Attr) -> Eval {
    let text = value.operand(BOOL, attr)?.into_string();
    Ok(SqlValue::Boolean(like_matches(pattern, &text) != negated))
}

pub(super) fn eval_in(value: &Expr, set: &[Expr], negated: bool, attr: Attr) -> Eval {
    // The left operand's type is the target type of every set element (§3.7). Like
    // `x = a OR x = b …`, evaluation stops at the first match.
    let needle = value.operand(BOOL, attr)?;
    let target = needle.ty();
    for element in set {
        let element = element
            .operand(BOOL, attr)?
            .cast(target)
            .ok_or_else(|| cast_error(BOOL))?;
        if element == needle {
            return Ok(SqlValue::Boolean(!negated));
        }
    }
    Ok(SqlValue::Boolean(negated))
}

pub(super) fn eval_call(function: Option<Builtin>, args: &[Expr], attr: Attr) -> Eval {
    let Some(function) = function else {
        return fail(ErrorKind::MissingFunction, SqlValue::Boolean(false));
    };
    let ret = function.return_type();
    let values = args
        .iter()
        .map(|arg| arg.operand(ret, attr))
        .collect::<Result<Vec<_>, _>>()?;
    function.apply(values)
}
