//! Transforms: shape an event into the payload one target receives.
//!
//! Two families, compiled once when the configuration loads:
//! - Alibaba Cloud / RocketMQ EventBridge `form`s: `ORIGINAL`, `JSONPATH`, `CONSTANT`,
//!   `TEMPLATE` (`value` binds variables to JSONPaths, `template` uses `${name}`);
//! - AWS EventBridge: `InputPath`, `Input`, and `InputTransformer` (`InputPathsMap` +
//!   `InputTemplate` with `<name>`), including the predefined `aws.events.*` variables.
//!   The InputTransformer object may also stand alone (`{"InputPathsMap": …,
//!   "InputTemplate": …}`, what `aws events put-targets --input-transformer` takes).
//!
//! JSONPaths (RFC 9535, with AWS-style `$.a.some-key` accepted) address the event in the
//! CloudEvents JSON format: `$.id`, `$.type`, `$.data.order.id`; non-JSON data appears as
//! `$.data` (text) or `$.data_base64` (binary). In the AWS forms `$.detail` and
//! `$.detail-type` are also accepted and mean `$.data` and `$.type`.
//!
//! Templates are JSON or text, decided once from the template itself: in a JSON template
//! a variable inside a string is inserted escaped (its text), outside a string as JSON;
//! in a text template every variable is inserted as text. See `docs/transforms.md`.

use std::borrow::Cow;
use std::collections::BTreeMap;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::Value;

pub use super::select::Document;
use super::select::{json_to_text, Dialect, Path};
use crate::event::Event;

/// A transform as written in the configuration (`targets[].transform`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransformConfig {
    /// Alibaba/RocketMQ form: ORIGINAL, JSONPATH, CONSTANT or TEMPLATE.
    pub form: Option<Form>,
    /// JSONPATH: the path. CONSTANT: the value. TEMPLATE: the variables (name -> JSONPath
    /// or constant), as an object or a JSON string.
    pub value: Option<Value>,
    /// TEMPLATE: the template, with `${name}` placeholders.
    pub template: Option<String>,
    /// AWS: deliver the part of the event at this JSONPath.
    #[serde(rename = "InputPath")]
    pub input_path: Option<String>,
    /// AWS: deliver this JSON text instead of the event.
    #[serde(rename = "Input")]
    pub input: Option<String>,
    /// AWS: variables and a template with `<name>` placeholders.
    #[serde(rename = "InputTransformer")]
    pub input_transformer: Option<InputTransformerConfig>,
    /// AWS, the InputTransformer object given bare: its variables.
    #[serde(rename = "InputPathsMap")]
    pub input_paths_map: Option<BTreeMap<String, String>>,
    /// AWS, the InputTransformer object given bare: its template.
    #[serde(rename = "InputTemplate")]
    pub input_template: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Form {
    Original,
    Jsonpath,
    Constant,
    Template,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputTransformerConfig {
    #[serde(rename = "InputPathsMap", default)]
    pub input_paths_map: BTreeMap<String, String>,
    #[serde(rename = "InputTemplate")]
    pub input_template: String,
}

/// Why a transform is invalid, and where (relative to `transform`, e.g. `.value`).
pub type TransformError = super::InvalidAt;

fn error(path: &str, message: impl Into<String>) -> TransformError {
    TransformError {
        path: path.into(),
        message: message.into(),
    }
}

pub const JSON: &str = "application/json";
pub const TEXT: &str = "text/plain; charset=utf-8";

/// What a transform produced: the request body and its content type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    pub body: Bytes,
    pub content_type: &'static str,
}

/// Facts about a delivery that templates can use (the `aws.events.*` variables).
#[derive(Debug, Clone, Copy, Default)]
pub struct Context<'a> {
    pub bus: &'a str,
    pub rule: &'a str,
    /// When the event was appended to its bus, in milliseconds since the epoch.
    pub ingested_ms: Option<u64>,
}

/// A compiled transform.
#[derive(Debug)]
pub enum Transform {
    /// The event as it is (the target's delivery mode applies).
    Original,
    /// The value at a path; `bare_strings`: a string result is sent as text (JSONPATH)
    /// rather than as a JSON string (InputPath).
    Path { path: Path, bare_strings: bool },
    /// A fixed payload.
    Constant(Payload),
    /// Variables substituted into a template.
    Template {
        vars: Vec<(String, Var)>,
        template: Template,
    },
    /// `envelope: aws`: `inner` (or, without one, nothing: the whole view) applied to
    /// the AWS view of the event.
    AwsEnvelope {
        inner: Option<Box<Transform>>,
        account: String,
        region: String,
    },
}

impl Transform {
    /// Compiles a transform; errors name the offending field.
    pub fn compile(config: &TransformConfig) -> Result<Transform, TransformError> {
        Transform::compile_in(config, false)
    }

    /// The transform of a target with `envelope: aws`: it runs on the AWS view of the
    /// event (`rules::dialect::aws_view`, with `account` and `region` for events that
    /// carry none); without a transform (or with ORIGINAL) the view itself is sent.
    pub fn aws_envelope(
        config: Option<&TransformConfig>,
        account: &str,
        region: &str,
    ) -> Result<Transform, TransformError> {
        let inner = match config.map(|c| Transform::compile_in(c, true)).transpose()? {
            None | Some(Transform::Original) => None,
            Some(t) => Some(Box::new(t)),
        };
        Ok(Transform::AwsEnvelope {
            inner,
            account: account.to_string(),
            region: region.to_string(),
        })
    }

    /// `envelope`: paths address the AWS view (its own names) instead of the CloudEvent.
    fn compile_in(config: &TransformConfig, envelope: bool) -> Result<Transform, TransformError> {
        let (aws_dialect, ce_dialect) = if envelope {
            (Dialect::AwsEnvelope, Dialect::AwsEnvelope)
        } else {
            (Dialect::Aws, Dialect::CloudEvents)
        };
        let alibaba = config.form.is_some();
        let bare = config.input_paths_map.is_some() || config.input_template.is_some();
        let aws = [
            config.input_path.is_some(),
            config.input.is_some(),
            config.input_transformer.is_some(),
            bare,
        ];
        let aws_count = aws.iter().filter(|b| **b).count();
        if (alibaba as usize) + aws_count != 1 {
            return Err(error(
                "",
                "set exactly one of form (with value/template), InputPath, Input, InputTransformer \
                 or a bare InputTransformer object (InputPathsMap, InputTemplate)",
            ));
        }
        if !alibaba && (config.value.is_some() || config.template.is_some()) {
            return Err(error("", "value and template go with form"));
        }
        if let Some(form) = config.form {
            return compile_form(
                form,
                config.value.as_ref(),
                config.template.as_deref(),
                ce_dialect,
            );
        }
        if let Some(path) = &config.input_path {
            return Ok(Transform::Path {
                path: Path::compile(path, aws_dialect).map_err(|m| error(".InputPath", m))?,
                bare_strings: false,
            });
        }
        if let Some(input) = &config.input {
            serde_json::from_str::<serde::de::IgnoredAny>(input)
                .map_err(|e| error(".Input", format!("must be JSON text: {e}")))?;
            return Ok(Transform::Constant(Payload {
                body: Bytes::from(input.clone()),
                content_type: JSON,
            }));
        }
        // The nested and the bare InputTransformer compile alike; errors name the field
        // where it was written.
        let empty = BTreeMap::new();
        let (at, paths_map, input_template) = match &config.input_transformer {
            Some(it) => (
                ".InputTransformer",
                &it.input_paths_map,
                it.input_template.as_str(),
            ),
            None => (
                "",
                config.input_paths_map.as_ref().unwrap_or(&empty),
                config.input_template.as_deref().ok_or_else(|| {
                    error(".InputTemplate", "InputPathsMap needs an InputTemplate")
                })?,
            ),
        };
        compile_input_transformer(at, paths_map, input_template, aws_dialect)
    }

    /// Applies the transform. `None` means deliver the event as it is (ORIGINAL).
    pub fn apply(&self, doc: &Document<'_>, ctx: &Context<'_>) -> Option<Payload> {
        match self {
            Transform::Original => None,
            Transform::AwsEnvelope {
                inner,
                account,
                region,
            } => {
                let view = super::dialect::aws_view(doc.event, account, region);
                let view_doc = Document::aws(&view);
                match inner {
                    Some(t) => t.apply(&view_doc, ctx),
                    None => Some(Payload {
                        body: Bytes::from(view_doc.json()),
                        content_type: JSON,
                    }),
                }
            }
            Transform::Constant(payload) => Some(payload.clone()),
            Transform::Path { path, bare_strings } => Some(match path.select(doc) {
                Some(json) if *bare_strings && json.starts_with('"') => Payload {
                    body: Bytes::from(json_to_text(&json)),
                    content_type: TEXT,
                },
                Some(json) => Payload {
                    body: Bytes::from(json.into_owned()),
                    content_type: JSON,
                },
                None => Payload {
                    body: Bytes::from_static(b"null"),
                    content_type: JSON,
                },
            }),
            Transform::Template { vars, template } => {
                let values: Vec<Option<Cow<str>>> =
                    vars.iter().map(|(_, var)| var.eval(doc)).collect();
                Some(template.render(&values, doc.event, ctx))
            }
        }
    }
}

/// Compiles an AWS InputTransformer; `at` is where it was written (`.InputTransformer`
/// nested, empty when bare).
fn compile_input_transformer(
    at: &str,
    paths_map: &BTreeMap<String, String>,
    input_template: &str,
    dialect: Dialect,
) -> Result<Transform, TransformError> {
    let mut vars = Vec::with_capacity(paths_map.len());
    for (name, path) in paths_map {
        let at = format!("{at}.InputPathsMap.{name}");
        if name.starts_with("aws.events.") {
            return Err(error(
                &at,
                "aws.events.* names are reserved for the predefined variables",
            ));
        }
        if !valid_var_name(name) {
            return Err(error(
                &at,
                "variable names may contain letters, digits, '_', '-' and '.'",
            ));
        }
        vars.push((
            name.clone(),
            Var::Path(Path::compile(path, dialect).map_err(|m| error(&at, m))?),
        ));
    }
    let template = Template::parse(input_template, Syntax::Angle, &vars)
        .map_err(|m| error(&format!("{at}.InputTemplate"), m))?;
    Ok(Transform::Template { vars, template })
}

fn compile_form(
    form: Form,
    value: Option<&Value>,
    template: Option<&str>,
    dialect: Dialect,
) -> Result<Transform, TransformError> {
    if form != Form::Template && template.is_some() {
        return Err(error(".template", "template goes only with form TEMPLATE"));
    }
    match form {
        Form::Original => {
            if value.is_some() {
                return Err(error(".value", "ORIGINAL takes no value"));
            }
            Ok(Transform::Original)
        }
        Form::Jsonpath => {
            let Some(Value::String(path)) = value else {
                return Err(error(
                    ".value",
                    "JSONPATH needs a JSONPath string, e.g. $.data.order",
                ));
            };
            Ok(Transform::Path {
                path: Path::compile(path, dialect).map_err(|m| error(".value", m))?,
                bare_strings: true,
            })
        }
        Form::Constant => {
            let payload = match value {
                None => return Err(error(".value", "CONSTANT needs a value")),
                // A string that is JSON text is sent as that JSON; any other string as text.
                Some(Value::String(s)) => match serde_json::from_str::<serde::de::IgnoredAny>(s) {
                    Ok(_) => Payload {
                        body: Bytes::from(s.clone()),
                        content_type: JSON,
                    },
                    Err(_) => Payload {
                        body: Bytes::from(s.clone()),
                        content_type: TEXT,
                    },
                },
                Some(other) => Payload {
                    body: Bytes::from(serde_json::to_vec(other).expect("JSON")),
                    content_type: JSON,
                },
            };
            Ok(Transform::Constant(payload))
        }
        Form::Template => {
            let bindings = match value {
                Some(Value::Object(map)) => map.clone(),
                Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
                    Ok(Value::Object(map)) => map,
                    _ => {
                        return Err(error(
                            ".value",
                            "TEMPLATE needs an object of variable -> JSONPath",
                        ))
                    }
                },
                _ => {
                    return Err(error(
                        ".value",
                        "TEMPLATE needs an object of variable -> JSONPath",
                    ))
                }
            };
            let mut vars = Vec::with_capacity(bindings.len());
            for (name, binding) in bindings {
                let at = format!(".value.{name}");
                if !valid_var_name(&name) || name.starts_with("aws.events.") {
                    return Err(error(&at, "variable names may contain letters, digits, '_', '-' and '.' (aws.events.* is reserved)"));
                }
                let var = match binding {
                    Value::String(s) if s.starts_with('$') => {
                        Var::Path(Path::compile(&s, dialect).map_err(|m| error(&at, m))?)
                    }
                    other => Var::Constant(other.to_string()),
                };
                vars.push((name, var));
            }
            let Some(text) = template else {
                return Err(error(".template", "TEMPLATE needs a template"));
            };
            let template =
                Template::parse(text, Syntax::Dollar, &vars).map_err(|m| error(".template", m))?;
            Ok(Transform::Template { vars, template })
        }
    }
}

fn valid_var_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// Where a variable's value comes from.
#[derive(Debug)]
pub enum Var {
    Path(Path),
    /// A fixed value, as JSON text.
    Constant(String),
}

impl Var {
    /// The value as JSON text.
    fn eval<'d>(&'d self, doc: &'d Document<'_>) -> Option<Cow<'d, str>> {
        match self {
            Var::Path(p) => p.select(doc),
            Var::Constant(json) => Some(Cow::Borrowed(json)),
        }
    }
}

/// Placeholder syntax: `${name}` (Alibaba/RocketMQ) or `<name>` (AWS).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Syntax {
    Dollar,
    Angle,
}

/// The `aws.events.*` variables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Predefined {
    RuleName,
    RuleArn,
    IngestionTime,
    /// The event without its data, as JSON (inserted unescaped).
    Event,
    /// The whole event as JSON (inserted unescaped).
    EventJson,
}

impl Predefined {
    fn from_name(name: &str) -> Option<Predefined> {
        Some(match name {
            "aws.events.rule-name" => Predefined::RuleName,
            "aws.events.rule-arn" => Predefined::RuleArn,
            "aws.events.event.ingestion-time" => Predefined::IngestionTime,
            "aws.events.event" => Predefined::Event,
            "aws.events.event.json" => Predefined::EventJson,
            _ => return None,
        })
    }
}

#[derive(Debug)]
enum Segment {
    Literal(String),
    /// A variable by index into the transform's variables.
    Var {
        index: usize,
        in_string: bool,
    },
    Predefined {
        which: Predefined,
        in_string: bool,
    },
}

/// A parsed template: literal text and placeholders, with for each placeholder whether
/// it stands inside a JSON string.
#[derive(Debug)]
pub struct Template {
    segments: Vec<Segment>,
    /// JSON template (else text).
    json: bool,
}

impl Template {
    fn parse(text: &str, syntax: Syntax, vars: &[(String, Var)]) -> Result<Template, String> {
        let mut segments = Vec::new();
        let mut literal = String::new();
        let mut in_string = false;
        let mut escaped = false;
        let mut rest = text;
        while let Some(c) = rest.chars().next() {
            let placeholder = match (syntax, c) {
                (Syntax::Dollar, '$') if rest.starts_with("${") => {
                    rest[2..].find('}').map(|end| (&rest[2..2 + end], 3 + end))
                }
                (Syntax::Angle, '<') => rest[1..].find('>').map(|end| (&rest[1..1 + end], 2 + end)),
                _ => None,
            };
            if let Some((name, len)) = placeholder {
                let found = vars.iter().position(|(n, _)| n == name);
                let predefined = Predefined::from_name(name);
                match (found, predefined) {
                    (Some(index), _) => {
                        push_literal(&mut segments, &mut literal);
                        segments.push(Segment::Var { index, in_string });
                        rest = &rest[len..];
                        continue;
                    }
                    (None, Some(which)) => {
                        push_literal(&mut segments, &mut literal);
                        segments.push(Segment::Predefined { which, in_string });
                        rest = &rest[len..];
                        continue;
                    }
                    // `${x}` must name a variable; `<x>` that names none is plain text
                    // (AWS templates often carry markup).
                    (None, None) if syntax == Syntax::Dollar => {
                        return Err(format!("${{{name}}} is not a variable defined in value"));
                    }
                    (None, None) => {}
                }
            }
            literal.push(c);
            match c {
                _ if escaped => escaped = false,
                '\\' if in_string => escaped = true,
                '"' => in_string = !in_string,
                _ => {}
            }
            rest = &rest[c.len_utf8()..];
        }
        push_literal(&mut segments, &mut literal);
        let mut template = Template {
            segments,
            json: false,
        };
        // A JSON template stays JSON whatever the variables hold: check with every
        // placeholder standing in for a value of its position.
        let probe = template.render_probe();
        template.json = serde_json::from_str::<serde::de::IgnoredAny>(&probe).is_ok();
        Ok(template)
    }

    fn render_probe(&self) -> String {
        let mut out = String::new();
        for s in &self.segments {
            match s {
                Segment::Literal(l) => out.push_str(l),
                Segment::Var {
                    in_string: true, ..
                }
                | Segment::Predefined {
                    in_string: true, ..
                } => out.push('x'),
                Segment::Var { .. } | Segment::Predefined { .. } => out.push_str("null"),
            }
        }
        out
    }

    fn render(&self, values: &[Option<Cow<'_, str>>], event: &Event, ctx: &Context<'_>) -> Payload {
        let mut out = String::with_capacity(256);
        let json_string = |s: &str| serde_json::to_string(s).expect("JSON");
        for segment in &self.segments {
            match segment {
                Segment::Literal(l) => out.push_str(l),
                Segment::Var { index, in_string } => {
                    self.insert(&mut out, values[*index].as_deref(), *in_string)
                }
                Segment::Predefined { which, in_string } => match which {
                    Predefined::RuleName => {
                        self.insert(&mut out, Some(&json_string(ctx.rule)), *in_string)
                    }
                    Predefined::RuleArn => {
                        let arn = json_string(&format!("sluice:rule/{}/{}", ctx.bus, ctx.rule));
                        self.insert(&mut out, Some(&arn), *in_string)
                    }
                    Predefined::IngestionTime => {
                        let time = ctx
                            .ingested_ms
                            .and_then(|ms| chrono::DateTime::from_timestamp_millis(ms as i64))
                            .map(|t| {
                                json_string(&t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
                            });
                        self.insert(&mut out, time.as_deref(), *in_string)
                    }
                    // Inserted as JSON, unescaped, wherever they stand (as in AWS).
                    Predefined::Event => {
                        let without_data = Event {
                            attrs: event.attrs.clone(),
                            data: None,
                        };
                        out.push_str(&String::from_utf8_lossy(&without_data.to_structured_json()));
                    }
                    Predefined::EventJson => {
                        out.push_str(&String::from_utf8_lossy(&event.to_structured_json()))
                    }
                },
            }
        }
        Payload {
            body: Bytes::from(out),
            content_type: if self.json { JSON } else { TEXT },
        }
    }

    /// Inserts a value given as JSON text: inside a JSON string as escaped text,
    /// elsewhere in a JSON template as JSON, in a text template as text. Missing: `null`
    /// outside strings of a JSON template, nothing elsewhere.
    fn insert(&self, out: &mut String, json: Option<&str>, in_string: bool) {
        match (json, self.json, in_string) {
            (None, true, false) => out.push_str("null"),
            (None, _, _) => {}
            // A JSON string's content is already escaped for use inside another string.
            (Some(j), true, true) if j.starts_with('"') => out.push_str(&j[1..j.len() - 1]),
            (Some(j), true, true) => {
                let quoted = serde_json::to_string(j).expect("JSON");
                out.push_str(&quoted[1..quoted.len() - 1]);
            }
            (Some(j), true, false) => out.push_str(j),
            (Some(j), false, _) => out.push_str(&json_to_text(j)),
        }
    }
}

fn push_literal(segments: &mut Vec<Segment>, literal: &mut String) {
    if !literal.is_empty() {
        segments.push(Segment::Literal(std::mem::take(literal)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::cloudevents::parse_structured;

    const EVENT: &str = r#"{"specversion":"1.0","id":"e-1","source":"/shop","type":"order.paid",
        "time":"2026-11-23T10:00:00Z","datacontenttype":"application/json",
        "data":{"order":{"id":"o-42","amount":12.5,"lines":[{"sku":"A","qty":1},{"sku":"B","qty":2}]},
                "user":{"name":"Zoë \"Z\" \\ O'Brien\n","vip":true},"x-trace":"t-9","empty":[]}}"#;

    fn event(json: &str) -> Event {
        parse_structured(&Bytes::copy_from_slice(json.as_bytes()))
            .unwrap()
            .decode()
    }

    fn config(json: &str) -> TransformConfig {
        serde_json::from_str(json).unwrap()
    }

    fn run_on(transform: &str, event_json: &str) -> Option<(String, &'static str)> {
        let t =
            Transform::compile(&config(transform)).unwrap_or_else(|e| panic!("{transform}: {e}"));
        let ev = event(event_json);
        let ctx = Context {
            bus: "orders",
            rule: "paid",
            ingested_ms: Some(1_795_000_000_123),
        };
        t.apply(&Document::new(&ev), &ctx)
            .map(|p| (String::from_utf8(p.body.to_vec()).unwrap(), p.content_type))
    }

    fn run(transform: &str) -> (String, &'static str) {
        run_on(transform, EVENT).expect("a payload")
    }

    #[test]
    fn aws_envelope_view_and_paths() {
        let ctx = Context::default();
        let ev = event(
            r#"{"specversion":"1.0","id":"e1","source":"shop","type":"Order Placed","time":"2026-12-03T10:00:00Z","awsaccount":"123456789012","resources":"arn:a,arn:b","datacontenttype":"application/json","data":{"order":{"id":7}}}"#,
        );
        let whole = Transform::aws_envelope(None, "000000000000", "eu-west-1").unwrap();
        let body = whole.apply(&Document::new(&ev), &ctx).unwrap().body;
        assert_eq!(
            std::str::from_utf8(&body).unwrap(),
            r#"{"version":"0","id":"e1","detail-type":"Order Placed","source":"shop","account":"123456789012","time":"2026-12-03T10:00:00Z","region":"eu-west-1","resources":["arn:a","arn:b"],"detail":{"order":{"id":7}}}"#
        );
        let it = config(
            r#"{"InputTransformer":{"InputPathsMap":{"id":"$.detail.order.id","t":"$.detail-type","r":"$.resources[1]","all":"$.detail"},"InputTemplate":"{\"order\": <id>, \"type\": \"<t>\", \"r\": \"<r>\", \"all\": <all>}"}}"#,
        );
        let t = Transform::aws_envelope(Some(&it), "000000000000", "eu-west-1").unwrap();
        let body = t.apply(&Document::new(&ev), &ctx).unwrap().body;
        assert_eq!(
            std::str::from_utf8(&body).unwrap(),
            r#"{"order": 7, "type": "Order Placed", "r": "arn:b", "all": {"order":{"id":7}}}"#
        );
        // The CloudEvents names are not members of the view.
        let p =
            Transform::aws_envelope(Some(&config(r#"{"InputPath":"$.data"}"#)), "0", "r").unwrap();
        assert_eq!(
            &p.apply(&Document::new(&ev), &ctx).unwrap().body[..],
            b"null"
        );
    }

    #[test]
    fn original_delivers_the_event_as_it_is() {
        assert_eq!(run_on(r#"{"form":"ORIGINAL"}"#, EVENT), None);
    }

    #[test]
    fn jsonpath_form() {
        let cases = [
            // An object keeps its key order; arrays and numbers are JSON.
            ("$.data.order.lines[1]", r#"{"sku":"B","qty":2}"#, JSON),
            ("$.data.order.amount", "12.5", JSON),
            ("$.data.empty", "[]", JSON),
            ("$.data.user.vip", "true", JSON),
            // A string is delivered bare, as text.
            ("$.data.order.id", "o-42", TEXT),
            ("$.subject", "null", JSON), // matches nothing
            ("$.data.order.lines[*].sku", r#"["A","B"]"#, JSON), // wildcard: every match
            ("$.data.order.nope[*]", "[]", JSON),
            ("$.data.x-trace", "t-9", TEXT), // AWS-style dashed name
            ("$.data['x-trace']", "t-9", TEXT),
            ("$..sku", r#"["A","B"]"#, JSON),
        ];
        for (path, body, ct) in cases {
            let got = run(&format!(r#"{{"form":"JSONPATH","value":"{path}"}}"#));
            assert_eq!(got, (body.to_string(), ct), "{path}");
        }
        let (name, ct) = run(r#"{"form":"JSONPATH","value":"$.data.user.name"}"#);
        assert_eq!((name.as_str(), ct), ("Zoë \"Z\" \\ O'Brien\n", TEXT));
    }

    #[test]
    fn paths_see_non_json_data_as_text_or_base64() {
        let text = r#"{"specversion":"1.0","id":"1","source":"/s","type":"t","datacontenttype":"text/plain","data":"hi there"}"#;
        assert_eq!(
            run_on(r#"{"form":"JSONPATH","value":"$.data"}"#, text).unwrap(),
            ("hi there".into(), TEXT)
        );
        let binary =
            r#"{"specversion":"1.0","id":"1","source":"/s","type":"t","data_base64":"AAEC"}"#;
        assert_eq!(
            run_on(r#"{"form":"JSONPATH","value":"$.data_base64"}"#, binary).unwrap(),
            ("AAEC".into(), TEXT)
        );
        assert_eq!(
            run_on(r#"{"form":"JSONPATH","value":"$.data"}"#, binary).unwrap(),
            ("null".into(), JSON)
        );
    }

    #[test]
    fn constant_form() {
        assert_eq!(
            run(r#"{"form":"CONSTANT","value":"hello"}"#),
            ("hello".into(), TEXT)
        );
        assert_eq!(
            run(r#"{"form":"CONSTANT","value":"{\"a\": [1, 2.50]}"}"#),
            (r#"{"a": [1, 2.50]}"#.into(), JSON)
        );
        assert_eq!(
            run(r#"{"form":"CONSTANT","value":{"b":1,"a":2}}"#),
            (r#"{"b":1,"a":2}"#.into(), JSON)
        );
        assert_eq!(
            run(r#"{"form":"CONSTANT","value":42}"#),
            ("42".into(), JSON)
        );
    }

    #[test]
    fn template_form_text() {
        let t = r#"{"form":"TEMPLATE","value":{"name":"$.data.user.name","amount":"$.data.order.amount","who":"$.nope","greeting":"Hello"},
                  "template":"${greeting} ${name}: ${amount} EUR, ${who}!"}"#;
        assert_eq!(
            run(t),
            ("Hello Zoë \"Z\" \\ O'Brien\n: 12.5 EUR, !".into(), TEXT)
        );
    }

    #[test]
    fn template_form_json_quoting() {
        // Variables in strings are inserted as escaped text; outside strings as JSON;
        // a missing value is "" in a string and null outside.
        let t = r#"{"form":"TEMPLATE",
            "value":"{\"name\":\"$.data.user.name\",\"order\":\"$.data.order\",\"id\":\"$.data.order.id\",\"none\":\"$.nope\",\"n\":\"$.data.order.amount\"}",
            "template":"{\"to\": \"${name}\", \"order\": ${order}, \"id\": ${id}, \"label\": \"order ${id} of ${n}\", \"none\": ${none}, \"blank\": \"${none}\", \"embedded\": \"${order}\"}"}"#;
        let (body, ct) = run(t);
        assert_eq!(ct, JSON);
        let v: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{body}: {e}"));
        assert_eq!(v["to"], "Zoë \"Z\" \\ O'Brien\n");
        assert_eq!(v["order"]["lines"][1]["sku"], "B");
        assert_eq!(v["id"], "o-42");
        assert_eq!(v["label"], "order o-42 of 12.5");
        assert_eq!(v["none"], Value::Null);
        assert_eq!(v["blank"], "");
        assert_eq!(
            v["embedded"],
            r#"{"id":"o-42","amount":12.5,"lines":[{"sku":"A","qty":1},{"sku":"B","qty":2}]}"#
        );
    }

    #[test]
    fn aws_input_path_and_input() {
        assert_eq!(
            run(r#"{"InputPath":"$.detail.order.id"}"#),
            (r#""o-42""#.into(), JSON)
        );
        assert_eq!(
            run(r#"{"InputPath":"$.detail-type"}"#),
            (r#""order.paid""#.into(), JSON)
        );
        assert_eq!(
            run(r#"{"InputPath":"$.detail.order.lines[0]"}"#),
            (r#"{"sku":"A","qty":1}"#.into(), JSON)
        );
        assert_eq!(run(r#"{"InputPath":"$.nope"}"#), ("null".into(), JSON));
        assert_eq!(
            run(r#"{"Input":"{\"fixed\": true}"}"#),
            (r#"{"fixed": true}"#.into(), JSON)
        );
    }

    #[test]
    fn aws_input_transformer() {
        let t = r#"{"InputTransformer":{
            "InputPathsMap":{"type":"$.detail-type","id":"$.detail.order.id","lines":"$.detail.order.lines","name":"$.detail.user.name"},
            "InputTemplate":"{\"type\": <type>, \"text\": \"<b>order <id></b> for <name>\", \"lines\": <lines>, \"rule\": \"<aws.events.rule-name>\", \"arn\": \"<aws.events.rule-arn>\", \"at\": \"<aws.events.event.ingestion-time>\", \"event\": <aws.events.event>, \"full\": <aws.events.event.json>}"}}"#;
        let (body, ct) = run(t);
        assert_eq!(ct, JSON);
        let v: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{body}: {e}"));
        assert_eq!(
            v["type"], "order.paid",
            "a string variable outside quotes is quoted"
        );
        assert_eq!(
            v["text"], "<b>order o-42</b> for Zoë \"Z\" \\ O'Brien\n",
            "unknown <b> stays text"
        );
        assert_eq!(v["lines"][0]["qty"], 1);
        assert_eq!(v["rule"], "paid");
        assert_eq!(v["arn"], "sluice:rule/orders/paid");
        assert_eq!(v["at"], "2026-11-18T11:06:40.123Z");
        assert_eq!(v["event"]["id"], "e-1");
        assert!(
            v["event"].get("data").is_none(),
            "aws.events.event has no data"
        );
        assert_eq!(v["full"]["data"]["order"]["id"], "o-42");

        // A plain-text template (AWS: a JSON string) stays text.
        let t = r#"{"InputTransformer":{"InputPathsMap":{"id":"$.detail.order.id"},"InputTemplate":"\"Order <id> was paid\""}}"#;
        assert_eq!(run(t), (r#""Order o-42 was paid""#.into(), JSON));
    }

    #[test]
    fn a_bare_input_transformer_gives_what_the_nested_one_gives() {
        // (InputPathsMap as JSON, InputTemplate as a JSON string, expected body, type)
        let cases = [
            (
                r#"{"id":"$.detail.order.id","type":"$.detail-type"}"#,
                r#""{\"type\": <type>, \"text\": \"<b>order <id></b>\"}""#,
                r#"{"type": "order.paid", "text": "<b>order o-42</b>"}"#,
                JSON,
            ),
            (
                r#"{"lines":"$.detail.order.lines","name":"$.detail.user.name"}"#,
                r#""{\"lines\": <lines>, \"to\": \"<name>\", \"rule\": \"<aws.events.rule-name>\"}""#,
                r#"{"lines": [{"sku":"A","qty":1},{"sku":"B","qty":2}], "to": "Zoë \"Z\" \\ O'Brien\n", "rule": "paid"}"#,
                JSON,
            ),
            (
                r#"{"id":"$.detail.order.id"}"#,
                r#""\"Order <id> was paid\"""#,
                r#""Order o-42 was paid""#,
                JSON,
            ),
            (
                r#"{"id":"$.detail.order.id","missing":"$.nope"}"#,
                r#""order <id> of <aws.events.rule-arn>: <missing>.""#,
                "order o-42 of sluice:rule/orders/paid: .",
                TEXT,
            ),
            // InputPathsMap may be left out (AWS makes it optional).
            (
                "",
                r#""{\"rule\": \"<aws.events.rule-name>\"}""#,
                r#"{"rule": "paid"}"#,
                JSON,
            ),
        ];
        for (paths, template, body, content_type) in cases {
            let fields = match paths {
                "" => format!(r#""InputTemplate":{template}"#),
                _ => format!(r#""InputPathsMap":{paths},"InputTemplate":{template}"#),
            };
            let nested = run(&format!(r#"{{"InputTransformer":{{{fields}}}}}"#));
            let bare = run(&format!("{{{fields}}}"));
            assert_eq!(bare, nested, "{fields}");
            assert_eq!(bare, (body.to_string(), content_type), "{fields}");
        }
    }

    #[test]
    fn whitespace_around_a_json_body_never_breaks_a_template() {
        let headers = [
            ("ce-specversion", &b"1.0"[..]),
            ("ce-id", b"1"),
            ("ce-source", b"/s"),
            ("ce-type", b"t"),
        ];
        let ev = crate::event::cloudevents::parse_binary(
            headers.into_iter(),
            Some("application/json"),
            Bytes::from_static(b" \"hello\"\n"),
        )
        .unwrap()
        .decode();
        let t = Transform::compile(&config(r#"{"form":"TEMPLATE","value":{"m":"$.data"},"template":"{\"msg\": \"${m}\", \"raw\": ${m}}"}"#)).unwrap();
        let payload = t.apply(&Document::new(&ev), &Context::default()).unwrap();
        assert_eq!(
            payload.body.as_ref(),
            br#"{"msg": "hello", "raw": "hello"}"#
        );
    }

    #[test]
    fn invalid_transforms_name_the_field() {
        let cases = [
            (r#"{}"#, ""),
            (r#"{"form":"ORIGINAL","InputPath":"$"}"#, ""),
            (r#"{"InputPath":"$","value":"x"}"#, ""),
            (r#"{"form":"ORIGINAL","value":"x"}"#, ".value"),
            (r#"{"form":"JSONPATH"}"#, ".value"),
            (r#"{"form":"JSONPATH","value":"data.x"}"#, ".value"),
            (r#"{"form":"JSONPATH","value":"$.data[?"}"#, ".value"),
            (r#"{"form":"CONSTANT"}"#, ".value"),
            (
                r#"{"form":"CONSTANT","value":"x","template":"y"}"#,
                ".template",
            ),
            (r#"{"form":"TEMPLATE","value":{"a":"$.x"}}"#, ".template"),
            (
                r#"{"form":"TEMPLATE","value":"not json","template":"x"}"#,
                ".value",
            ),
            (
                r#"{"form":"TEMPLATE","value":{"a":"$.x"},"template":"${b}"}"#,
                ".template",
            ),
            (
                r#"{"form":"TEMPLATE","value":{"a":"$[bad"},"template":"${a}"}"#,
                ".value.a",
            ),
            (r#"{"InputPath":"detail"}"#, ".InputPath"),
            (r#"{"Input":"{not json"}"#, ".Input"),
            (
                r#"{"InputTransformer":{"InputPathsMap":{"aws.events.x":"$.a"},"InputTemplate":"1"}}"#,
                ".InputTransformer.InputPathsMap.aws.events.x",
            ),
            (
                r#"{"InputTransformer":{"InputPathsMap":{"a":"a.b"},"InputTemplate":"1"}}"#,
                ".InputTransformer.InputPathsMap.a",
            ),
            // The bare InputTransformer object: the same checks, at its own fields.
            (
                r#"{"InputPathsMap":{"a":"a.b"},"InputTemplate":"1"}"#,
                ".InputPathsMap.a",
            ),
            (
                r#"{"InputPathsMap":{"aws.events.x":"$.a"},"InputTemplate":"1"}"#,
                ".InputPathsMap.aws.events.x",
            ),
            (r#"{"InputPathsMap":{"a":"$.a"}}"#, ".InputTemplate"),
            (
                r#"{"InputTemplate":"1","InputTransformer":{"InputTemplate":"1"}}"#,
                "",
            ),
            (r#"{"InputTemplate":"1","InputPath":"$"}"#, ""),
            (r#"{"InputPathsMap":{},"form":"ORIGINAL"}"#, ""),
        ];
        for (json, path) in cases {
            let err = Transform::compile(&config(json)).expect_err(json);
            assert_eq!(err.path, path, "{json}: {err}");
            assert!(!err.message.is_empty());
        }
    }
}
