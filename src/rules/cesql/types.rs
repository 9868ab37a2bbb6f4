//! CESQL's three types, the casts between them (spec §3.7) and evaluation errors.

use super::SqlValue;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Type {
    String,
    Integer,
    Boolean,
}

impl Type {
    /// The type's zero value (spec §3.1), returned by operations that fail.
    pub(super) fn zero(self) -> SqlValue {
        match self {
            Type::String => SqlValue::String(String::new()),
            Type::Integer => SqlValue::Integer(0),
            Type::Boolean => SqlValue::Boolean(false),
        }
    }
}

impl SqlValue {
    pub(super) fn ty(&self) -> Type {
        match self {
            SqlValue::String(_) => Type::String,
            SqlValue::Integer(_) => Type::Integer,
            SqlValue::Boolean(_) => Type::Boolean,
        }
    }

    /// Cast to Integer (spec §3.7): base-10 with optional sign, no whitespace, must fit
    /// in 32 bits; `true` is 1 and `false` is 0.
    pub(super) fn into_integer(self) -> Option<i32> {
        match self {
            SqlValue::Integer(i) => Some(i),
            SqlValue::Boolean(b) => Some(i32::from(b)),
            SqlValue::String(s) => s.parse().ok(),
        }
    }

    /// Cast to Boolean: strings whose lower case is exactly "true"/"false"; integers are
    /// `true` unless 0.
    pub(super) fn into_boolean(self) -> Option<bool> {
        match self {
            SqlValue::Boolean(b) => Some(b),
            SqlValue::Integer(i) => Some(i != 0),
            SqlValue::String(s) => match s.to_lowercase().as_str() {
                "true" => Some(true),
                "false" => Some(false),
                _ => None,
            },
        }
    }

    /// Cast to String; always succeeds.
    pub(super) fn into_string(self) -> String {
        match self {
            SqlValue::String(s) => s,
            SqlValue::Integer(i) => i.to_string(),
            SqlValue::Boolean(b) => b.to_string(),
        }
    }

    pub(super) fn cast(self, to: Type) -> Option<SqlValue> {
        match to {
            Type::String => Some(SqlValue::String(self.into_string())),
            Type::Integer => self.into_integer().map(SqlValue::Integer),
            Type::Boolean => self.into_boolean().map(SqlValue::Boolean),
        }
    }
}

/// Error kinds of spec §3.3 that can occur during evaluation (parse errors are `Err`
/// from [`Sql::parse`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ErrorKind {
    Math,
    Cast,
    MissingAttribute,
    MissingFunction,
    FunctionEvaluation,
}

/// A failed evaluation: the error and the value the failing expression yields.
#[derive(Debug)]
pub(super) struct EvalError {
    pub(super) kind: ErrorKind,
    pub(super) value: SqlValue,
}

pub(super) type Eval = Result<SqlValue, EvalError>;

impl EvalError {
    /// The error as seen by an enclosing operation returning `ret`.
    pub(super) fn replace_value(self, ret: Type) -> EvalError {
        EvalError {
            kind: self.kind,
            value: ret.zero(),
        }
    }
}

pub(super) fn fail(kind: ErrorKind, value: SqlValue) -> Eval {
    Err(EvalError { kind, value })
}

pub(super) fn cast_error(ret: Type) -> EvalError {
    EvalError {
        kind: ErrorKind::Cast,
        value: ret.zero(),
    }
}
