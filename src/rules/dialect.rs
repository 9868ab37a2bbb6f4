//! The AWS dialect: rules and targets written against the AWS EventBridge event
//! (`version`, `id`, `detail-type`, `source`, `account`, `time`, `region`,
//! `resources`, `detail`) rather than the stored CloudEvent.
//!
//! The stored event stays a CloudEvent; the AWS view of it is (docs/compatibility.md):
//! `detail-type` = `type`, `detail` = `data`, `account` = the `awsaccount` extension,
//! `region` = `awsregion`, `resources` = the comma-separated `resources` extension as
//! an array, `version` = `"0"`, `replay-name` = `replayname` (only on a replayed
//! event, as on AWS); `id`, `source` and `time` are the same. PutEvents entries keep
//! their AWS fields in those extensions, so their view is what AWS would deliver; a
//! CloudEvent from elsewhere gets the gateway's account and region.
//!
//! A pattern in the AWS dialect is translated once, when the rule compiles, into the
//! native pattern over the CloudEvent: matching costs nothing extra per event. A target
//! with `envelope: aws` receives the view (see [`aws_view`]).

use serde_json::{Map, Value};

use super::InvalidAt;
use crate::event::Event;

/// The account of the AWS view when neither the event nor the `aws:` section has one.
pub const DEFAULT_ACCOUNT: &str = "000000000000";

/// The AWS field names with their CloudEvents counterparts.
const FIELDS: [(&str, &str); 5] = [
    ("detail-type", "type"),
    ("detail", "data"),
    ("account", "awsaccount"),
    ("region", "awsregion"),
    ("replay-name", "replayname"),
];

/// Translates an AWS event pattern into the native pattern language.
pub fn aws_pattern(pattern: &Value) -> Result<Value, InvalidAt> {
    translate(pattern, "")
}

fn translate(pattern: &Value, at: &str) -> Result<Value, InvalidAt> {
    let Value::Object(fields) = pattern else {
        // The native parser says what is wrong with a non-object.
        return Ok(pattern.clone());
    };
    let mut out = Map::with_capacity(fields.len());
    for (name, value) in fields {
        let here = format!("{at}.{name}");
        let value = match (name.as_str(), value) {
            ("$or", Value::Array(branches)) => Value::Array(
                branches
                    .iter()
                    .enumerate()
                    .map(|(i, b)| translate(b, &format!("{here}[{i}]")))
                    .collect::<Result<_, _>>()?,
            ),
            ("version", _) => {
                return Err(InvalidAt {
                    path: here,
                    message: "not supported: every event's version is \"0\"".into(),
                })
            }
            _ => value.clone(),
        };
        let native = FIELDS
            .iter()
            .find(|(aws, _)| aws == name)
            .map_or(name.as_str(), |(_, ce)| ce);
        out.insert(native.to_string(), value);
    }
    Ok(Value::Object(out))
}

/// A native error path (relative to the pattern) in the AWS names the user wrote.
pub fn aws_path(path: &str) -> String {
    for (aws, ce) in FIELDS {
        let native = format!(".{ce}");
        if path == native
            || path.starts_with(&format!("{native}."))
            || path.starts_with(&format!("{native}["))
        {
            return format!(".{aws}{}", &path[native.len()..]);
        }
    }
    path.to_string()
}

/// The AWS event of `event`: the envelope a target with `envelope: aws` receives.
/// `account` and `region` stand in for events without the AWS extensions. The data
/// becomes `detail` (the [`super::select::Document`] of the view names it so).
pub fn aws_view(event: &Event, account: &str, region: &str) -> Event {
    let attr = |name: &str| event.attrs.get(name).cloned().unwrap_or(Value::Null);
    let mut attrs = Map::with_capacity(8);
    attrs.insert("version".into(), "0".into());
    attrs.insert("id".into(), attr("id"));
    attrs.insert("detail-type".into(), attr("type"));
    attrs.insert("source".into(), attr("source"));
    attrs.insert(
        "account".into(),
        event
            .attrs
            .get("awsaccount")
            .cloned()
            .unwrap_or_else(|| account.into()),
    );
    attrs.insert(
        "time".into(),
        event.attrs.get("time").cloned().unwrap_or_else(|| {
            chrono::Utc::now()
                .format("%Y-%m-%dT%H:%M:%SZ")
                .to_string()
                .into()
        }),
    );
    attrs.insert(
        "region".into(),
        event
            .attrs
            .get("awsregion")
            .cloned()
            .unwrap_or_else(|| region.into()),
    );
    let resources: Vec<Value> = event
        .attr_str("resources")
        .map(|r| {
            r.split(',')
                .filter(|s| !s.is_empty())
                .map(Value::from)
                .collect()
        })
        .unwrap_or_default();
    attrs.insert("resources".into(), Value::Array(resources));
    // AWS marks a replayed event with the replay's name.
    if let Some(name) = event.attrs.get("replayname") {
        attrs.insert("replay-name".into(), name.clone());
    }
    Event {
        attrs,
        data: event.data.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn translates_top_level_names_and_or_branches() {
        let p = json!({"source": ["shop"], "detail-type": ["Order Placed"], "detail": {"total": [{"numeric": [">", 10]}]},
            "$or": [{"account": ["123456789012"]}, {"region": ["eu-west-1"]}]});
        assert_eq!(
            aws_pattern(&p).unwrap(),
            json!({"source": ["shop"], "type": ["Order Placed"], "data": {"total": [{"numeric": [">", 10]}]},
                "$or": [{"awsaccount": ["123456789012"]}, {"awsregion": ["eu-west-1"]}]})
        );
        let e = aws_pattern(&json!({"version": ["0"]})).unwrap_err();
        assert_eq!(e.path, ".version");
        assert_eq!(aws_path(".data.total[0]"), ".detail.total[0]");
        assert_eq!(aws_path(".type"), ".detail-type");
        assert_eq!(aws_path(".datax"), ".datax");
        assert_eq!(
            aws_pattern(&json!({"replay-name": [{"exists": false}]})).unwrap(),
            json!({"replayname": [{"exists": false}]})
        );
    }

    #[test]
    fn a_replayed_event_names_its_replay() {
        let mut attrs = Map::new();
        attrs.insert("id".into(), "e1".into());
        attrs.insert("type".into(), "t".into());
        attrs.insert("source".into(), "s".into());
        let live = Event {
            attrs: attrs.clone(),
            data: None,
        };
        assert!(!aws_view(&live, "1", "r").attrs.contains_key("replay-name"));
        attrs.insert("replayname".into(), "night".into());
        let replayed = Event { attrs, data: None };
        assert_eq!(aws_view(&replayed, "1", "r").attrs["replay-name"], "night");
    }
}
