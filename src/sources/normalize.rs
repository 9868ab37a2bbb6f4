//! A verified webhook becomes a CloudEvent: id, source, type and time from the
//! provider's headers and body, the body bytes unchanged as data, a few provider headers
//! as extensions. The mapping of every kind is in `docs/sources.md`.
//!
//! Bodies are only scanned for the handful of fields a mapping needs (typed structs, the
//! rest skipped); the stored data is the request body itself, never re-serialised.

use actix_web::http::header::HeaderMap;
use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::verify::is_form;
use super::Source;
use crate::config::SourceKind;
use crate::event::{is_json_media_type, is_text_media_type, Data, DataKind, EncodedEvent};

/// Provider ids longer than this are not trusted as ids (they become Redis keys).
const MAX_ID_LEN: usize = 256;

/// What a verified request turns into.
#[derive(Debug)]
pub enum Outcome {
    /// An event to append.
    Event(Normalized),
    /// Slack's `url_verification` handshake: answer with the challenge, append nothing.
    Challenge(String),
}

#[derive(Debug)]
pub struct Normalized {
    pub event: EncodedEvent,
    /// The id came from the provider (so a redelivery carries it again): dedupe applies.
    /// Generated ids are unique and never deduplicated.
    pub provider_id: bool,
}

/// The fields a mapping reads, built up per kind.
struct Mapping {
    id: Option<String>,
    source: String,
    ty: String,
    time: Option<String>,
    subject: Option<String>,
    extensions: Vec<(&'static str, String)>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Named {
    full_name: Option<String>,
    login: Option<String>,
    web_url: Option<String>,
    id: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Body {
    id: Option<Value>,
    #[serde(rename = "type")]
    ty: Option<String>,
    created: Option<i64>,
    account: Option<String>,
    // Slack
    event_id: Option<String>,
    event_time: Option<i64>,
    team_id: Option<String>,
    challenge: Option<String>,
    event: Option<SlackInner>,
    team: Option<Named>,
    trigger_id: Option<String>,
    // GitHub
    repository: Option<Named>,
    organization: Option<Named>,
    // GitLab
    object_kind: Option<String>,
    project: Option<Named>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct SlackInner {
    #[serde(rename = "type")]
    ty: Option<String>,
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

fn json_body(bytes: &[u8]) -> Body {
    serde_json::from_slice(bytes).unwrap_or_default()
}

/// The value of one field of a form-encoded body.
fn form_field(body: &[u8], name: &str) -> Option<String> {
    url::form_urlencoded::parse(body)
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The JSON document a provider sent, whether as the body or, in a form body, as the
/// `payload` field (GitHub's form content type, Slack interactivity).
fn document(body: &[u8], form: bool) -> Body {
    if form {
        form_field(body, "payload")
            .map(|p| json_body(p.as_bytes()))
            .unwrap_or_default()
    } else {
        json_body(body)
    }
}

fn unix_time(secs: i64) -> Option<String> {
    DateTime::<Utc>::from_timestamp(secs, 0).map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
}

fn rfc3339(text: &str) -> Option<String> {
    DateTime::parse_from_rfc3339(text).ok().map(|t| {
        t.with_timezone(&Utc)
            .to_rfc3339_opts(SecondsFormat::AutoSi, true)
    })
}

/// A JSON id member: a string, or a number written as in the body.
fn id_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl Source {
    /// Maps a verified request to a CloudEvent (or Slack's handshake). Never fails: a
    /// field the provider left out falls back (generated id, generic type, receipt time).
    pub fn normalize(&self, headers: &HeaderMap, body: Bytes, now: DateTime<Utc>) -> Outcome {
        let content_type = header(headers, "content-type");
        let form = is_form(content_type);
        let h = |name: &str| header(headers, name).map(str::to_string);
        let mut m = Mapping {
            id: None,
            source: format!("/webhooks/{}", self.name),
            ty: "sluice.webhook".into(),
            time: None,
            subject: None,
            extensions: Vec::new(),
        };
        let ext = |m: &mut Mapping, name: &'static str, value: Option<String>| {
            if let Some(v) = value {
                m.extensions.push((name, v));
            }
        };
        match self.kind {
            SourceKind::Github => {
                let doc = document(&body, form);
                m.id = h("x-github-delivery");
                m.ty = format!(
                    "com.github.{}",
                    h("x-github-event").unwrap_or("event".into())
                );
                let owner = doc
                    .repository
                    .and_then(|r| r.full_name)
                    .or(doc.organization.and_then(|o| o.login));
                m.source = match owner {
                    Some(owner) => format!("https://github.com/{owner}"),
                    None => "https://github.com".into(),
                };
                ext(&mut m, "githubhookid", h("x-github-hook-id"));
                ext(
                    &mut m,
                    "githubtargettype",
                    h("x-github-hook-installation-target-type"),
                );
                ext(
                    &mut m,
                    "githubtargetid",
                    h("x-github-hook-installation-target-id"),
                );
            }
            SourceKind::Stripe => {
                let doc = json_body(&body);
                m.id = doc.id.as_ref().and_then(id_text);
                m.ty = format!("com.stripe.{}", doc.ty.as_deref().unwrap_or("event"));
                m.time = doc.created.and_then(unix_time);
                m.source = match &doc.account {
                    Some(account) => format!("https://api.stripe.com/v1/accounts/{account}"),
                    None => "https://api.stripe.com".into(),
                };
                ext(&mut m, "stripeaccount", doc.account);
            }
            SourceKind::Slack => {
                let (doc, command) = if form {
                    (document(&body, true), form_field(&body, "command"))
                } else {
                    (json_body(&body), None)
                };
                if doc.ty.as_deref() == Some("url_verification") {
                    if let Some(challenge) = doc.challenge {
                        return Outcome::Challenge(challenge);
                    }
                }
                let team = doc
                    .team_id
                    .or(doc.team.and_then(|t| t.id))
                    .or_else(|| form.then(|| form_field(&body, "team_id")).flatten());
                let trigger = doc
                    .trigger_id
                    .or_else(|| form.then(|| form_field(&body, "trigger_id")).flatten());
                m.id = doc.event_id.or(trigger);
                m.ty = match (&command, doc.ty.as_deref(), doc.event.and_then(|e| e.ty)) {
                    (Some(_), _, _) => "com.slack.command".into(),
                    (None, Some("event_callback"), Some(inner)) => format!("com.slack.{inner}"),
                    (None, Some(outer), _) => format!("com.slack.{outer}"),
                    (None, None, _) => "com.slack.event".into(),
                };
                m.time = doc.event_time.and_then(unix_time);
                m.source = match team {
                    Some(team) => format!("https://slack.com/team/{team}"),
                    None => "https://slack.com".into(),
                };
                ext(&mut m, "slackcommand", command);
                ext(&mut m, "slackretrynum", h("x-slack-retry-num"));
                ext(&mut m, "slackretryreason", h("x-slack-retry-reason"));
            }
            SourceKind::Shopify => {
                m.id = h("x-shopify-webhook-id");
                let topic = h("x-shopify-topic").unwrap_or("event".into());
                m.ty = format!("com.shopify.{}", topic.replace('/', "."));
                m.time = header(headers, "x-shopify-triggered-at").and_then(rfc3339);
                m.source = match h("x-shopify-shop-domain") {
                    Some(shop) => format!("https://{shop}"),
                    None => "https://shopify.com".into(),
                };
                ext(&mut m, "shopifyshopdomain", h("x-shopify-shop-domain"));
                ext(&mut m, "shopifyapiversion", h("x-shopify-api-version"));
                ext(&mut m, "shopifyeventid", h("x-shopify-event-id"));
            }
            SourceKind::StandardWebhooks => {
                let (id, ts) = match h("webhook-id") {
                    Some(id) => (Some(id), h("webhook-timestamp")),
                    None => (h("svix-id"), h("svix-timestamp")),
                };
                m.id = id;
                m.time = ts.and_then(|t| t.parse().ok()).and_then(unix_time);
                if let Some(ty) = json_body(&body).ty.filter(|t| !t.is_empty()) {
                    m.ty = ty;
                }
            }
            SourceKind::Gitlab => {
                let doc = json_body(&body);
                m.id = h("x-gitlab-event-uuid");
                let kind = doc.object_kind.or_else(|| {
                    h("x-gitlab-event").map(|e| {
                        let e = e.to_ascii_lowercase();
                        e.strip_suffix(" hook").unwrap_or(&e).replace(' ', "_")
                    })
                });
                m.ty = format!("com.gitlab.{}", kind.as_deref().unwrap_or("event"));
                m.source = doc
                    .project
                    .and_then(|p| p.web_url)
                    .or(h("x-gitlab-instance"))
                    .unwrap_or_else(|| m.source.clone());
                ext(&mut m, "gitlabinstance", h("x-gitlab-instance"));
                ext(&mut m, "gitlabwebhookuuid", h("x-gitlab-webhook-uuid"));
            }
            SourceKind::Twilio => {
                m.id = h("i-twilio-idempotency-token");
                m.ty = "com.twilio.webhook".into();
                let account = if form {
                    form_field(&body, "AccountSid")
                } else {
                    None
                };
                m.source = match &account {
                    Some(a) => format!("https://api.twilio.com/2010-04-01/Accounts/{a}"),
                    None => "https://api.twilio.com".into(),
                };
            }
            // Mapped by `sources::envelope` before `normalize` is reached; as a generic
            // webhook otherwise.
            SourceKind::Hmac
            | SourceKind::Token
            | SourceKind::Basic
            | SourceKind::AwsApiDestination => {
                m.id = self
                    .id_header
                    .as_ref()
                    .and_then(|name| header(headers, name.as_str()))
                    .map(str::to_string);
                m.time = self
                    .timestamp_header_value(headers)
                    .and_then(|t| t.parse().ok())
                    .and_then(unix_time);
            }
        }
        if let Some(source) = &self.source {
            m.source = source.clone();
        }
        Outcome::Event(self.encode(m, content_type, body, now))
    }

    fn timestamp_header_value(&self, headers: &HeaderMap) -> Option<String> {
        match &self.verifier.scheme {
            super::verify::Scheme::Hmac(h) => h
                .timestamp_header
                .as_ref()
                .and_then(|n| header(headers, n.as_str()))
                .map(str::to_string),
            _ => None,
        }
    }

    fn encode(
        &self,
        m: Mapping,
        content_type: Option<&str>,
        body: Bytes,
        now: DateTime<Utc>,
    ) -> Normalized {
        let provider_id =
            m.id.as_ref()
                .is_some_and(|id| !id.is_empty() && id.len() <= MAX_ID_LEN);
        let id = match m.id {
            Some(id) if provider_id => id,
            _ => uuid::Uuid::new_v4().to_string(),
        };
        let (datacontenttype, data) = data_of(content_type, body);
        let mut attrs = Map::new();
        attrs.insert("specversion".into(), "1.0".into());
        attrs.insert("id".into(), id.clone().into());
        attrs.insert("source".into(), m.source.into());
        attrs.insert("type".into(), m.ty.into());
        let time = m
            .time
            .unwrap_or_else(|| now.to_rfc3339_opts(SecondsFormat::Millis, true));
        attrs.insert("time".into(), time.into());
        if let Some(ct) = datacontenttype {
            attrs.insert("datacontenttype".into(), ct.into());
        }
        if let Some(subject) = m.subject {
            attrs.insert("subject".into(), subject.into());
        }
        for (name, value) in m.extensions {
            attrs.insert(name.into(), value.into());
        }
        Normalized {
            event: EncodedEvent {
                id,
                attrs: serde_json::to_vec(&attrs).expect("a JSON map always serialises"),
                data,
            },
            provider_id,
        }
    }
}

/// `datacontenttype` and data for a body: JSON stays JSON (and matchable by rules),
/// form and other text bodies are text, anything else binary. A body without a content
/// type that parses as JSON is taken as `application/json`.
fn data_of(content_type: Option<&str>, body: Bytes) -> (Option<String>, Option<Data>) {
    let ct = content_type.map(str::to_string);
    if body.is_empty() {
        return (ct, None);
    }
    let is_json = || serde_json::from_slice::<serde::de::IgnoredAny>(&body).is_ok();
    let is_utf8 = std::str::from_utf8(&body).is_ok();
    let (ct, kind) = match content_type {
        Some(c) if is_json_media_type(c) && is_json() => (ct, DataKind::Json),
        Some(c)
            if (is_json_media_type(c) || is_text_media_type(c) || is_form(Some(c))) && is_utf8 =>
        {
            (ct, DataKind::Text)
        }
        Some(_) => (ct, DataKind::Binary),
        None if is_json() => (Some("application/json".into()), DataKind::Json),
        None if is_utf8 => (Some("text/plain".into()), DataKind::Text),
        None => (None, DataKind::Binary),
    };
    (ct, Some(Data { kind, bytes: body }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    fn source(kind: &str, extra: &str) -> Source {
        let yaml = format!(
            "buses: [{{name: b}}]\nsources: [{{name: s, kind: {kind}, bus: b, secret: whsec_c2VjcmV0{extra}}}]\n"
        );
        let mut plan = crate::plan::Plan::parse(&yaml).unwrap();
        plan.sources.remove("s").unwrap()
    }

    fn attrs(
        src: &Source,
        h: &[(&str, &str)],
        body: &str,
    ) -> (serde_json::Map<String, Value>, Option<Data>, bool) {
        let mut headers = HeaderMap::new();
        for (n, v) in h {
            headers.append(
                HeaderName::from_bytes(n.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        let now = DateTime::parse_from_rfc3339("2026-11-23T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        match src.normalize(&headers, Bytes::from(body.to_string()), now) {
            Outcome::Event(n) => (
                serde_json::from_slice(&n.event.attrs).unwrap(),
                n.event.data,
                n.provider_id,
            ),
            Outcome::Challenge(c) => panic!("challenge {c}"),
        }
    }

    #[test]
    fn github_push() {
        let body = r#"{"ref":"refs/heads/main","repository":{"full_name":"acme/shop"}}"#;
        let (a, data, provider) = attrs(
            &source("github", ""),
            &[
                ("content-type", "application/json"),
                ("x-github-event", "push"),
                ("x-github-delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
                ("x-github-hook-id", "292430182"),
            ],
            body,
        );
        assert_eq!(a["id"], "72d3162e-cc78-11e3-81ab-4c9367dc0958");
        assert_eq!(a["source"], "https://github.com/acme/shop");
        assert_eq!(a["type"], "com.github.push");
        assert_eq!(a["time"], "2026-11-23T12:00:00.000Z");
        assert_eq!(a["githubhookid"], "292430182");
        assert!(provider);
        let data = data.unwrap();
        assert_eq!(
            (data.kind, data.bytes.as_ref()),
            (DataKind::Json, body.as_bytes())
        );
    }

    #[test]
    fn stripe_event_and_source_override() {
        let body = r#"{"id":"evt_1","object":"event","type":"invoice.paid","created":1700000000}"#;
        let (a, _, _) = attrs(&source("stripe", ", source: /billing"), &[], body);
        assert_eq!(a["id"], "evt_1");
        assert_eq!(a["type"], "com.stripe.invoice.paid");
        assert_eq!(a["time"], "2023-11-14T22:13:20Z");
        assert_eq!(a["source"], "/billing");
        assert_eq!(a["datacontenttype"], "application/json");
    }

    #[test]
    fn slack_events_commands_and_challenge() {
        let src = source("slack", "");
        let body = r#"{"type":"event_callback","team_id":"T1","event_id":"Ev1","event_time":1700000000,"event":{"type":"app_mention"}}"#;
        let (a, _, _) = attrs(&src, &[("x-slack-retry-num", "1")], body);
        assert_eq!(
            (&a["id"], &a["type"], &a["source"], &a["slackretrynum"]),
            (
                &Value::from("Ev1"),
                &Value::from("com.slack.app_mention"),
                &Value::from("https://slack.com/team/T1"),
                &Value::from("1")
            )
        );
        let form = "team_id=T1&command=%2Fdeploy&text=prod&trigger_id=13345224609.738474920.8088930838d88f008e0";
        let (a, data, _) = attrs(
            &src,
            &[("content-type", "application/x-www-form-urlencoded")],
            form,
        );
        assert_eq!(a["type"], "com.slack.command");
        assert_eq!(a["slackcommand"], "/deploy");
        assert_eq!(a["id"], "13345224609.738474920.8088930838d88f008e0");
        assert_eq!(data.unwrap().kind, DataKind::Text);

        let mut headers = HeaderMap::new();
        headers.insert(
            HeaderName::from_static("content-type"),
            HeaderValue::from_static("application/json"),
        );
        let challenge = r#"{"token":"x","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}"#;
        match src.normalize(
            &headers,
            Bytes::from_static(challenge.as_bytes()),
            Utc::now(),
        ) {
            Outcome::Challenge(c) => {
                assert_eq!(c, "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn shopify_gitlab_standard_and_generic() {
        let (a, _, _) = attrs(
            &source("shopify", ""),
            &[
                ("x-shopify-topic", "orders/create"),
                (
                    "x-shopify-webhook-id",
                    "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
                ),
                ("x-shopify-shop-domain", "acme.myshopify.com"),
                ("x-shopify-triggered-at", "2026-11-23T11:59:58.123+01:00"),
            ],
            "{}",
        );
        assert_eq!(a["type"], "com.shopify.orders.create");
        assert_eq!(a["id"], "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043");
        assert_eq!(a["source"], "https://acme.myshopify.com");
        assert_eq!(a["time"], "2026-11-23T10:59:58.123Z");

        let (a, _, provider) = attrs(
            &source("gitlab", ""),
            &[("x-gitlab-event", "Merge Request Hook")],
            r#"{"object_kind":"merge_request","project":{"web_url":"https://gitlab.example.com/acme/shop"}}"#,
        );
        assert_eq!(a["type"], "com.gitlab.merge_request");
        assert_eq!(a["source"], "https://gitlab.example.com/acme/shop");
        assert!(!provider, "no X-Gitlab-Event-UUID: generated id");

        let (a, _, _) = attrs(
            &source("standard-webhooks", ""),
            &[("svix-id", "msg_1"), ("svix-timestamp", "1700000000")],
            r#"{"type":"user.created","data":{}}"#,
        );
        assert_eq!(
            (&a["id"], &a["type"], &a["time"], &a["source"]),
            (
                &Value::from("msg_1"),
                &Value::from("user.created"),
                &Value::from("2023-11-14T22:13:20Z"),
                &Value::from("/webhooks/s")
            )
        );

        let (a, data, _) = attrs(
            &source("token", ", id_header: x-request-id"),
            &[("x-request-id", "r-1")],
            "plain words",
        );
        assert_eq!(
            (&a["id"], &a["type"]),
            (&Value::from("r-1"), &Value::from("sluice.webhook"))
        );
        assert_eq!(data.unwrap().kind, DataKind::Text);
    }
}
