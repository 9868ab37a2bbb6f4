//! `sluice test-pattern` and `sluice transform`: try a rule's pattern or a target's
//! transform on one event, with the code the router and the dispatcher run.

use std::process::ExitCode;

use super::{inline_or_file, read_event, read_pattern};

#[derive(clap::Args)]
pub(super) struct TestPatternArgs {
    /// The pattern (JSON or YAML), or @FILE.
    #[arg(long)]
    pattern: String,
    /// A CloudEvent in the JSON format, or @FILE.
    #[arg(long)]
    event: String,
}

#[derive(clap::Args)]
pub(super) struct TransformArgs {
    /// The transform (JSON or YAML, as under `transform:`), or @FILE.
    #[arg(long)]
    transform: String,
    /// A CloudEvent in the JSON format, or @FILE.
    #[arg(long)]
    event: String,
    /// Delivery mode used when the transform is ORIGINAL.
    #[arg(long, value_enum, default_value = "structured")]
    mode: CliMode,
    /// Rule name for `aws.events.rule-name` and `aws.events.rule-arn`.
    #[arg(long, default_value = "rule")]
    rule: String,
    /// Bus name for `aws.events.rule-arn`.
    #[arg(long, default_value = "bus")]
    bus: String,
}

#[derive(Clone, Copy, clap::ValueEnum, serde::Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub(crate) enum CliMode {
    Binary,
    #[default]
    Structured,
}

/// `sluice test-pattern`: exit 0 on a match, 1 on no match, 2 on bad input.
pub(super) fn test_pattern(args: &TestPatternArgs) -> ExitCode {
    match matches(&args.pattern, &args.event) {
        Ok(true) => {
            println!("match");
            ExitCode::SUCCESS
        }
        Ok(false) => {
            println!("no match");
            ExitCode::from(1)
        }
        Err(message) => {
            eprintln!("sluice test-pattern: {message}");
            ExitCode::from(2)
        }
    }
}

/// Does the pattern match the event?
fn matches(pattern: &str, event: &str) -> Result<bool, String> {
    let value = read_pattern(pattern)?;
    let event = read_event(event)?;
    pattern_matches(&value, &event)
}

/// Does `pattern` match `event`, by the router's matcher? Err: the pattern is invalid.
/// (Shared with `POST /api/v1/test-pattern`.)
pub(crate) fn pattern_matches(
    value: &serde_json::Value,
    event: &crate::event::Event,
) -> Result<bool, String> {
    use crate::event::DataKind;
    use crate::rules::{EventData, EventView, Matcher, Pattern};
    let pattern = Pattern::parse(value).map_err(|e| format!("invalid pattern: {e}"))?;
    let matcher = Matcher::new(vec![pattern]);
    let attrs = serde_json::to_vec(&event.attrs).map_err(|e| e.to_string())?;
    let data = match &event.data {
        Some(d) if d.kind == DataKind::Json => EventData::Json(&d.bytes),
        Some(d) if d.kind == DataKind::Text => {
            EventData::Text(std::str::from_utf8(&d.bytes).map_err(|e| e.to_string())?)
        }
        _ => EventData::None,
    };
    let mut matched = Vec::new();
    matcher.matching(
        &EventView {
            attrs: &attrs,
            data,
        },
        &mut matched,
    );
    Ok(!matched.is_empty())
}

/// `sluice transform`: the body on stdout, its content type on stderr; exit 2 on bad
/// input.
pub(super) fn transform(args: &TransformArgs) -> ExitCode {
    match apply(args) {
        Ok((body, content_type)) => {
            use std::io::Write;
            eprintln!("content-type: {content_type}");
            let mut out = std::io::stdout();
            let _ = out.write_all(&body).and_then(|()| out.flush());
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("sluice transform: {message}");
            ExitCode::from(2)
        }
    }
}

/// The body and content type a target would receive.
fn apply(args: &TransformArgs) -> Result<(Vec<u8>, String), String> {
    use crate::rules::transform::TransformConfig;
    let config: TransformConfig = yaml_serde::from_str(&inline_or_file(&args.transform)?)
        .map_err(|e| format!("invalid transform: {e}"))?;
    let event = read_event(&args.event)?;
    apply_transform(&config, &event, &args.bus, &args.rule, args.mode)
}

/// The body and content type a target of `rule` on `bus` would receive from
/// `config` (`mode`: how an ORIGINAL event is sent). Shared with `POST
/// /api/v1/transform`.
pub(crate) fn apply_transform(
    config: &crate::rules::transform::TransformConfig,
    event: &crate::event::Event,
    bus: &str,
    rule: &str,
    mode: CliMode,
) -> Result<(Vec<u8>, String), String> {
    use crate::rules::transform::{Context, Document, Transform};
    let compiled = Transform::compile(config).map_err(|e| format!("invalid transform: {e}"))?;
    let ctx = Context {
        bus,
        rule,
        ingested_ms: Some(chrono::Utc::now().timestamp_millis() as u64),
    };
    Ok(match compiled.apply(&Document::new(event), &ctx) {
        Some(payload) => (payload.body.to_vec(), payload.content_type.to_string()),
        None => match mode {
            CliMode::Structured => (
                event.to_structured_json(),
                "application/cloudevents+json; charset=utf-8".into(),
            ),
            CliMode::Binary => (
                event
                    .data
                    .as_ref()
                    .map(|d| d.bytes.to_vec())
                    .unwrap_or_default(),
                event
                    .attr_str("datacontenttype")
                    .unwrap_or("application/json")
                    .to_string(),
            ),
        },
    })
}
