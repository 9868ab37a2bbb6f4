//! `ce-inspect`: a Lambda function that takes its event as the CloudEvents SDK's type,
//! `cloudevents::Event`, and answers a JSON report of what the SDK read from it.
//!
//! It shows the SDK form of a function (`service_fn(|e: LambdaEvent<cloudevents::Event>|
//! ...)`): Sluice's `function` target sends every event in the CloudEvents JSON format,
//! whatever mode it arrived in (binary, structured, batch), so the SDK's `Deserialize`
//! for `Event` reads it directly; non-JSON data comes as `data_base64` (binary) or as a
//! JSON string (text). The report:
//!
//! ```json
//! {"specversion": "1.0", "id": "...", "source": "...", "type": "...",
//!  "subject": "...", "time": "2026-01-31T12:00:00.123456789Z",
//!  "datacontenttype": "...", "dataschema": "...",
//!  "extensions": {"name": "value", "count": 5, "flag": true},
//!  "data": {"kind": "json", "json": {...}}}
//! ```
//!
//! `data` is `{"kind": "json", "json": VALUE}`, `{"kind": "text", "text": STRING}`,
//! `{"kind": "binary", "base64": STRING, "bytes": N}`, or `null` without data; optional
//! attributes the event does not carry are left out. `time` is in UTC with as many
//! fractional digits as it has (the SDK keeps nanoseconds).

use base64::Engine;
use cloudevents::event::ExtensionValue;
use cloudevents::{AttributesReader, Data, Event};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::{json, Map, Value};

/// The report of one event.
fn inspect(event: &Event) -> Value {
    let mut out = Map::new();
    out.insert("specversion".into(), event.specversion().to_string().into());
    out.insert("id".into(), event.id().into());
    out.insert("source".into(), event.source().to_string().into());
    out.insert("type".into(), event.ty().into());
    if let Some(subject) = event.subject() {
        out.insert("subject".into(), subject.into());
    }
    if let Some(time) = event.time() {
        let text = time.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
        out.insert("time".into(), text.into());
    }
    if let Some(ct) = event.datacontenttype() {
        out.insert("datacontenttype".into(), ct.into());
    }
    if let Some(schema) = event.dataschema() {
        out.insert("dataschema".into(), schema.as_str().into());
    }
    let extensions: Map<String, Value> = event
        .iter_extensions()
        .map(|(name, value)| {
            let value = match value {
                ExtensionValue::String(s) => Value::from(s.as_str()),
                ExtensionValue::Boolean(b) => Value::from(*b),
                ExtensionValue::Integer(i) => Value::from(*i),
            };
            (name.to_string(), value)
        })
        .collect();
    out.insert("extensions".into(), Value::Object(sorted(extensions)));
    let data = match event.data() {
        None => Value::Null,
        Some(Data::Json(value)) => json!({"kind": "json", "json": value}),
        Some(Data::String(text)) => json!({"kind": "text", "text": text}),
        Some(Data::Binary(bytes)) => json!({
            "kind": "binary",
            "base64": base64::engine::general_purpose::STANDARD.encode(bytes),
            "bytes": bytes.len(),
        }),
    };
    out.insert("data".into(), data);
    Value::Object(out)
}

/// The SDK keeps extensions in a hash map: sort them, so the report is stable.
fn sorted(map: Map<String, Value>) -> Map<String, Value> {
    let mut entries: Vec<(String, Value)> = map.into_iter().collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    entries.into_iter().collect()
}

async fn handle(event: LambdaEvent<Event>) -> Result<Value, Error> {
    Ok(inspect(&event.payload))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(handle)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use cloudevents::{EventBuilder, EventBuilderV10};
    use lambda_runtime::Context;

    /// What `lambda_runtime` does with a payload: deserialise it into the handler's type.
    async fn run(payload: &str) -> Result<Value, Error> {
        let event: Event = serde_json::from_str(payload)?;
        handle(LambdaEvent::new(event, Context::default())).await
    }

    #[tokio::test]
    async fn json_data_and_every_attribute() {
        let out = run(
            r#"{"specversion":"1.0","id":"e1","source":"/shop","type":"order.paid",
            "subject":"o-1","time":"2026-01-31T13:00:00.123456789+01:00",
            "datacontenttype":"application/json","dataschema":"https://example.com/order.json",
            "tenant":"acme","data":{"amount":250,"items":["a","b"]}}"#,
        )
        .await
        .unwrap();
        assert_eq!(
            out,
            json!({"specversion": "1.0", "id": "e1", "source": "/shop", "type": "order.paid",
                   "subject": "o-1", "time": "2026-01-31T12:00:00.123456789Z",
                   "datacontenttype": "application/json",
                   "dataschema": "https://example.com/order.json",
                   "extensions": {"tenant": "acme"},
                   "data": {"kind": "json", "json": {"amount": 250, "items": ["a", "b"]}}})
        );
    }

    #[tokio::test]
    async fn binary_data_comes_as_data_base64() {
        // What Sluice sends for an event whose data is not JSON nor text.
        let out = run(
            r#"{"specversion":"1.0","id":"e2","source":"/cam","type":"frame",
            "datacontenttype":"image/png","data_base64":"iVBORw0KGgoA/w=="}"#,
        )
        .await
        .unwrap();
        assert_eq!(
            out["data"],
            json!({"kind": "binary", "base64": "iVBORw0KGgoA/w==", "bytes": 10})
        );
    }

    #[tokio::test]
    async fn text_data_and_no_data() {
        let out = run(r#"{"specversion":"1.0","id":"e3","source":"/s","type":"t",
            "datacontenttype":"text/plain; charset=utf-8","data":"hello \"world\""}"#)
        .await
        .unwrap();
        assert_eq!(
            out["data"],
            json!({"kind": "text", "text": "hello \"world\""})
        );
        let out = run(r#"{"specversion":"1.0","id":"e4","source":"/s","type":"t"}"#)
            .await
            .unwrap();
        assert_eq!(out["data"], Value::Null);
        assert_eq!(out["extensions"], json!({}));
        assert!(out.get("time").is_none() && out.get("subject").is_none());
    }

    #[tokio::test]
    async fn extension_types_are_kept() {
        let out = run(r#"{"specversion":"1.0","id":"e5","source":"/s","type":"t",
            "flag":true,"label":"x"}"#)
        .await
        .unwrap();
        assert_eq!(out["extensions"], json!({"flag": true, "label": "x"}));
    }

    #[tokio::test]
    async fn an_event_built_with_the_sdk_round_trips() {
        let event = EventBuilderV10::new()
            .id("e6")
            .source("/builder")
            .ty("built")
            .extension("attempt", 3i64)
            .data("application/json", json!({"ok": true}))
            .build()
            .unwrap();
        let out = run(&serde_json::to_string(&event).unwrap()).await.unwrap();
        assert_eq!(out["id"], "e6");
        assert_eq!(out["data"], json!({"kind": "json", "json": {"ok": true}}));
    }

    #[tokio::test]
    async fn a_payload_that_is_not_a_cloudevent_does_not_deserialise() {
        // lambda_runtime answers such a payload with an invocation error.
        let err = serde_json::from_str::<Event>(r#"{"hello":"world"}"#).unwrap_err();
        assert!(err.to_string().contains("specversion"), "{err}");
    }
}
