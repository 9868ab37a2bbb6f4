//! Pattern language, first cut: exact JSON values, arrays of alternatives (OR), nested
//! objects (AND of fields). `{}` matches every event.
//!
//! ```json
//! {"type": ["order.paid", "order.refunded"], "data": {"currency": ["EUR"]}}
//! ```

use serde_json::Value;

/// A parsed, validated event pattern.
#[derive(Debug, Clone, PartialEq)]
pub struct Pattern {
    pub(crate) fields: Vec<(String, Node)>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    /// The field's value must equal one of these.
    Values(Vec<Value>),
    /// The field must be an object matching every one of these fields.
    Object(Vec<(String, Node)>),
}

/// Why a pattern is invalid, and where (`.data.amount[0]`).
pub type PatternError = super::InvalidAt;

const MAX_DEPTH: usize = 16;

impl Pattern {
    /// A pattern that matches every event.
    pub fn match_all() -> Self {
        Pattern { fields: Vec::new() }
    }

    pub fn parse(value: &Value) -> Result<Pattern, PatternError> {
        match value {
            Value::Object(_) => Ok(Pattern {
                fields: parse_fields(value, "", 0)?,
            }),
            _ => Err(PatternError {
                path: String::new(),
                message: "a pattern must be a JSON object".into(),
            }),
        }
    }

    /// Does the pattern look into `data`?
    pub fn mentions_data(&self) -> bool {
        self.fields.iter().any(|(name, _)| name == "data")
    }
}

fn parse_fields(
    value: &Value,
    path: &str,
    depth: usize,
) -> Result<Vec<(String, Node)>, PatternError> {
    let Value::Object(map) = value else {
        unreachable!("callers pass objects")
    };
    if depth > MAX_DEPTH {
        return Err(PatternError {
            path: path.into(),
            message: format!("nested deeper than {MAX_DEPTH} levels"),
        });
    }
    let mut fields = Vec::with_capacity(map.len());
    for (name, v) in map {
        let at = format!("{path}.{name}");
        let node = match v {
            Value::Object(_) => Node::Object(parse_fields(v, &at, depth + 1)?),
            Value::Array(alternatives) => {
                if alternatives.is_empty() {
                    return Err(PatternError {
                        path: at,
                        message: "an empty list matches nothing; remove the field or list values"
                            .into(),
                    });
                }
                for (i, alt) in alternatives.iter().enumerate() {
                    if alt.is_object() || alt.is_array() {
                        return Err(PatternError {
                            path: format!("{at}[{i}]"),
                            message: "only exact values (string, number, boolean, null) are supported in this version".into(),
                        });
                    }
                }
                Node::Values(alternatives.clone())
            }
            _ => {
                return Err(PatternError {
                    path: at,
                    message: format!("must be a list of values or an object, e.g. [{v}]"),
                })
            }
        };
        fields.push((name.clone(), node));
    }
    Ok(fields)
}
