//! The matcher of one bus: which rules match an event.
//!
//! This version evaluates each rule's pattern in turn. The pattern-language work replaces
//! it with one compiled automaton per bus behind the same interface.

use serde_json::{Map, Value};

use super::pattern::{Node, Pattern};

/// What the matcher sees of an event: its attributes and, if JSON, its parsed data.
pub struct EventView<'a> {
    pub attrs: &'a Map<String, Value>,
    pub data: Option<&'a Value>,
}

/// All rules of one bus, ready to match.
#[derive(Debug, Default)]
pub struct Matcher {
    patterns: Vec<Pattern>,
    needs_data: bool,
}

impl Matcher {
    /// Builds the matcher; rule `i` is the `i`-th pattern.
    pub fn new(patterns: Vec<Pattern>) -> Self {
        let needs_data = patterns.iter().any(Pattern::mentions_data);
        Matcher {
            patterns,
            needs_data,
        }
    }

    /// Whether any rule looks into `data` (if not, the router skips parsing it).
    pub fn needs_data(&self) -> bool {
        self.needs_data
    }

    /// Appends the index of every matching rule to `out`, in rule order.
    pub fn matching(&self, event: &EventView<'_>, out: &mut Vec<usize>) {
        for (i, pattern) in self.patterns.iter().enumerate() {
            if pattern.fields.iter().all(|(name, node)| {
                let value = if name == "data" {
                    event.data
                } else {
                    event.attrs.get(name)
                };
                value.is_some_and(|v| node_matches(node, v))
            }) {
                out.push(i);
            }
        }
    }
}

fn node_matches(node: &Node, value: &Value) -> bool {
    match (node, value) {
        // An array in the event matches when any element does.
        (_, Value::Array(items)) => items.iter().any(|item| node_matches(node, item)),
        (Node::Values(alternatives), v) => alternatives.iter().any(|alt| values_equal(alt, v)),
        (Node::Object(fields), Value::Object(map)) => fields
            .iter()
            .all(|(name, sub)| map.get(name).is_some_and(|v| node_matches(sub, v))),
        (Node::Object(_), _) => false,
    }
}

/// JSON equality with numbers compared by value (`300` equals `3.0e2`).
fn values_equal(pattern: &Value, event: &Value) -> bool {
    match (pattern, event) {
        (Value::Number(a), Value::Number(b)) => match (a.as_f64(), b.as_f64()) {
            (Some(x), Some(y)) => x == y,
            _ => a == b,
        },
        _ => pattern == event,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn matches(pattern: Value, attrs: Value, data: Option<Value>) -> bool {
        let matcher = Matcher::new(vec![Pattern::parse(&pattern).unwrap()]);
        let attrs = attrs.as_object().unwrap().clone();
        let mut out = Vec::new();
        matcher.matching(
            &EventView {
                attrs: &attrs,
                data: data.as_ref(),
            },
            &mut out,
        );
        out == [0]
    }

    #[test]
    fn exact_values_and_alternatives() {
        let ev = json!({"type": "order.paid", "source": "/shop"});
        assert!(matches(json!({}), ev.clone(), None));
        assert!(matches(json!({"type": ["order.paid"]}), ev.clone(), None));
        assert!(matches(
            json!({"type": ["x", "order.paid"]}),
            ev.clone(),
            None
        ));
        assert!(!matches(json!({"type": ["x"]}), ev.clone(), None));
        assert!(matches(
            json!({"type": ["order.paid"], "source": ["/shop"]}),
            ev.clone(),
            None
        ));
        assert!(!matches(
            json!({"type": ["order.paid"], "source": ["/other"]}),
            ev.clone(),
            None
        ));
        assert!(
            !matches(json!({"subject": ["a"]}), ev, None),
            "missing field never matches"
        );
    }

    #[test]
    fn data_nested_objects_arrays_and_types() {
        let ev = json!({"type": "t"});
        let data =
            json!({"order": {"amount": 300, "tags": ["a", "b"], "paid": true, "note": null}});
        assert!(matches(
            json!({"data": {"order": {"amount": [3.0e2]}}}),
            ev.clone(),
            Some(data.clone())
        ));
        assert!(matches(
            json!({"data": {"order": {"tags": ["b"]}}}),
            ev.clone(),
            Some(data.clone())
        ));
        assert!(matches(
            json!({"data": {"order": {"paid": [true]}}}),
            ev.clone(),
            Some(data.clone())
        ));
        assert!(!matches(
            json!({"data": {"order": {"paid": ["true"]}}}),
            ev.clone(),
            Some(data.clone())
        ));
        assert!(matches(
            json!({"data": {"order": {"note": [null]}}}),
            ev.clone(),
            Some(data.clone())
        ));
        assert!(!matches(
            json!({"data": {"order": {"amount": ["300"]}}}),
            ev.clone(),
            Some(data.clone())
        ));
        assert!(!matches(
            json!({"data": {"order": [1]}}),
            ev.clone(),
            Some(data)
        ));
        assert!(
            !matches(json!({"data": {"x": [1]}}), ev, None),
            "no JSON data, no match"
        );
    }

    #[test]
    fn invalid_patterns_name_the_path() {
        let err =
            Pattern::parse(&json!({"data": {"amount": [{"numeric": [">", 1]}]}})).unwrap_err();
        assert_eq!(err.path, ".data.amount[0]");
        let err = Pattern::parse(&json!({"type": "x"})).unwrap_err();
        assert_eq!(err.path, ".type");
        assert!(Pattern::parse(&json!({"type": []})).is_err());
        assert!(Pattern::parse(&json!([1])).is_err());
    }
}
