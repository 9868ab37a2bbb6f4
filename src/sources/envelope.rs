//! The EventBridge event envelope (`version`, `id`, `detail-type`, `source`, `account`,
//! `time`, `region`, `resources`, `detail`), as EventBridge API destinations POST it and
//! as SQS targets of EventBridge rules receive it, mapped to a CloudEvent. Pure: used by
//! the `aws-api-destination` webhook source and the SQS pull connector (`sources::sqs`).
//!
//! Mapping (docs/bridges.md): `id` = id, `source` = source, `type` = detail-type,
//! `time` = time, `datacontenttype` = `application/json`, data = detail, extensions
//! `awsaccount`, `awsregion`, `resources` (comma-separated, as for PutEvents ingest).
//! A bridge trace that Sluice's `aws-eventbridge` target put into the detail
//! (`"_sluice"`) is taken out again: it becomes the `sluice*` extensions, and data it
//! wrapped (`{"data": ...}`, `{"data_base64": ...}`) is unwrapped.

use base64::Engine;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::event::bridge::{self, Arrival, Trace, DETAIL_KEY as TRACE_KEY};
use crate::event::{Data, DataKind, EncodedEvent};

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    id: Option<&'a RawValue>,
    #[serde(rename = "detail-type")]
    detail_type: Option<String>,
    source: Option<String>,
    account: Option<String>,
    time: Option<String>,
    region: Option<String>,
    #[serde(default)]
    resources: Vec<String>,
    #[serde(borrow)]
    detail: Option<&'a RawValue>,
}

/// What an envelope turns into.
#[derive(Debug)]
pub enum Mapped {
    Event(EncodedEvent),
    /// The event was on this gateway before (its trace says so): append nothing.
    Returned {
        id: String,
    },
}

/// Maps an envelope; `gateway_id` is this gateway, `peer` the id of the AWS side (the
/// first id of the path of events that carry no trace). The error names the field.
pub fn map(body: &[u8], gateway_id: &str, peer: Option<&str>) -> Result<Mapped, String> {
    let env: Envelope = serde_json::from_slice(body)
        .map_err(|e| format!("not an EventBridge event envelope: {e}"))?;
    let id = match env.id.map(|r| serde_json::from_str::<String>(r.get())) {
        Some(Ok(id)) if !id.is_empty() => id,
        _ => return Err("id: a non-empty string is required".into()),
    };
    let source = env
        .source
        .filter(|s| !s.is_empty())
        .ok_or("source: a non-empty string is required")?;
    let detail_type = env
        .detail_type
        .filter(|s| !s.is_empty())
        .ok_or("detail-type: a non-empty string is required")?;
    let detail = env.detail.ok_or("detail: required")?;

    let (data, trace) = unwrap_detail(detail)?;
    let trace = match bridge::arrive(trace, gateway_id, peer) {
        Arrival::Returned => return Ok(Mapped::Returned { id }),
        Arrival::Accept(t) => t,
    };
    let mut attrs = Map::with_capacity(12);
    attrs.insert("specversion".into(), "1.0".into());
    attrs.insert("id".into(), id.clone().into());
    attrs.insert("source".into(), source.into());
    attrs.insert("type".into(), detail_type.into());
    if let Some(time) = env.time.filter(|t| !t.is_empty()) {
        attrs.insert("time".into(), time.into());
    }
    if data.as_ref().is_some_and(|d| d.kind == DataKind::Json) {
        attrs.insert("datacontenttype".into(), "application/json".into());
    }
    if !env.resources.is_empty() {
        attrs.insert("resources".into(), env.resources.join(",").into());
    }
    if let Some(account) = env.account.filter(|a| !a.is_empty()) {
        attrs.insert("awsaccount".into(), account.into());
    }
    if let Some(region) = env.region.filter(|r| !r.is_empty()) {
        attrs.insert("awsregion".into(), region.into());
    }
    trace.write(&mut attrs);
    Ok(Mapped::Event(EncodedEvent {
        id,
        attrs: serde_json::to_vec(&attrs).expect("a JSON map always serialises"),
        data,
    }))
}

/// The data of a detail and the trace it carries. A detail without a trace is kept
/// byte for byte.
fn unwrap_detail(detail: &RawValue) -> Result<(Option<Data>, Trace), String> {
    let json = |bytes: Vec<u8>| Data {
        kind: DataKind::Json,
        bytes: Bytes::from(bytes),
    };
    let text = detail.get();
    if !text.contains(TRACE_KEY) {
        return Ok((Some(json(text.as_bytes().to_vec())), Trace::default()));
    }
    let Ok(mut object) = serde_json::from_str::<Map<String, Value>>(text) else {
        return Ok((Some(json(text.as_bytes().to_vec())), Trace::default()));
    };
    let Some(trace_json) = object.remove(TRACE_KEY) else {
        return Ok((Some(json(text.as_bytes().to_vec())), Trace::default()));
    };
    let trace = Trace::from_json(&trace_json);
    let wrapped = trace_json.get("wrapped") == Some(&Value::Bool(true));
    let data = if !wrapped {
        Some(json(serde_json::to_vec(&object).expect("serialises")))
    } else if let Some(Value::String(b64)) = object.get("data_base64") {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|_| "detail.data_base64: not base64".to_string())?;
        Some(Data {
            kind: DataKind::Binary,
            bytes: Bytes::from(bytes),
        })
    } else {
        match object.remove("data") {
            Some(Value::String(s)) => Some(Data {
                kind: DataKind::Text,
                bytes: Bytes::from(s.into_bytes()),
            }),
            Some(v) => Some(json(serde_json::to_vec(&v).expect("serialises"))),
            None => None,
        }
    };
    Ok((data, trace))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(body: &str, peer: Option<&str>) -> (Map<String, Value>, Option<Data>) {
        match map(body.as_bytes(), "idc", peer).unwrap() {
            Mapped::Event(e) => (serde_json::from_slice(&e.attrs).unwrap(), e.data),
            Mapped::Returned { id } => panic!("returned {id}"),
        }
    }

    #[test]
    fn maps_the_aws_documented_envelope() {
        let body = r#"{"version":"0","id":"6a7e8feb-b491-4cf7-a9f1-bf3703467718","detail-type":"EC2 Instance State-change Notification","source":"aws.ec2","account":"111122223333","time":"2017-12-22T18:43:48Z","region":"us-west-1","resources":["arn:aws:ec2:us-west-1:123456789012:instance/i-1234567890abcdef0"],"detail":{"instance-id": " i-1234567890abcdef0","state":"terminated"}}"#;
        let (attrs, data) = event(body, Some("aws"));
        assert_eq!(attrs["id"], "6a7e8feb-b491-4cf7-a9f1-bf3703467718");
        assert_eq!(attrs["source"], "aws.ec2");
        assert_eq!(attrs["type"], "EC2 Instance State-change Notification");
        assert_eq!(attrs["time"], "2017-12-22T18:43:48Z");
        assert_eq!(attrs["awsaccount"], "111122223333");
        assert_eq!(attrs["awsregion"], "us-west-1");
        assert_eq!(
            attrs["resources"],
            "arn:aws:ec2:us-west-1:123456789012:instance/i-1234567890abcdef0"
        );
        assert_eq!(attrs["sluicepath"], "aws,idc");
        // The detail bytes as sent.
        assert_eq!(
            &data.unwrap().bytes[..],
            br#"{"instance-id": " i-1234567890abcdef0","state":"terminated"}"#
        );
    }

    #[test]
    fn takes_the_trace_out_and_unwraps() {
        let body = r#"{"id":"1","detail-type":"t","source":"s","detail":{"data":"hi","_sluice":{"origin":"x","path":"x,aws","hops":1,"wrapped":true}}}"#;
        let (attrs, data) = event(body, Some("aws"));
        assert_eq!(attrs["sluicepath"], "x,aws,idc");
        assert_eq!(attrs["sluiceorigin"], "x");
        let data = data.unwrap();
        assert_eq!(data.kind, DataKind::Text);
        assert_eq!(&data.bytes[..], b"hi");
        let body = r#"{"id":"1","detail-type":"t","source":"s","detail":{"_sluice":{"origin":"x","path":"x","hops":1},"a":1.50}}"#;
        let (_, data) = event(body, None);
        assert_eq!(&data.unwrap().bytes[..], br#"{"a":1.50}"#);
        // Back home: dropped.
        let body = r#"{"id":"1","detail-type":"t","source":"s","detail":{"_sluice":{"path":"idc","hops":1}}}"#;
        assert!(matches!(
            map(body.as_bytes(), "idc", Some("aws")).unwrap(),
            Mapped::Returned { .. }
        ));
    }

    #[test]
    fn errors_name_the_field() {
        let e = map(br#"{"id":"1","source":"s","detail":{}}"#, "g", None).unwrap_err();
        assert!(e.starts_with("detail-type"), "{e}");
        let e = map(b"[]", "g", None).unwrap_err();
        assert!(e.contains("envelope"), "{e}");
    }
}
