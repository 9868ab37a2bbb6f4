//! `sluice schema validate` and `sluice schema infer`: the schema registry's checks and
//! discovery's inference, on files, without a gateway.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;

use super::{inline_or_file, read_event};

#[derive(Subcommand)]
pub(super) enum SchemaAction {
    /// Validate an event's data: exit 0 valid, 1 invalid (every violation printed),
    /// 2 if the schema or the event is unusable.
    Validate {
        /// The schema: JSON or YAML text, @FILE, or a file path.
        #[arg(long)]
        schema: String,
        #[arg(long, value_enum, default_value = "jsonschema")]
        format: CliSchemaFormat,
        /// openapi: the components/schemas entry describing the data.
        #[arg(long)]
        component: Option<String>,
        /// A CloudEvent in the JSON format (its `data` is validated), or @FILE.
        #[arg(long, required_unless_present = "data", conflicts_with = "data")]
        event: Option<String>,
        /// The data alone (JSON), or @FILE.
        #[arg(long)]
        data: Option<String>,
    },
    /// Infer a JSON Schema per (source, type) from CloudEvents (a JSON array, or one
    /// event per line), as discovery does; prints them as JSON. Exit 2 on bad input.
    Infer {
        /// File of CloudEvents in the JSON format (`-` for stdin).
        #[arg(long)]
        events: PathBuf,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub(super) enum CliSchemaFormat {
    Jsonschema,
    Openapi,
}

/// `sluice schema validate` and `sluice schema infer`.
pub(super) fn run(action: SchemaAction) -> ExitCode {
    match action {
        SchemaAction::Validate {
            schema,
            format,
            component,
            event,
            data,
        } => match schema_validate(&schema, format, component.as_deref(), event, data) {
            Ok((name, violations)) if violations.is_empty() => {
                println!("valid ({name})");
                ExitCode::SUCCESS
            }
            Ok((name, violations)) => {
                println!("invalid ({name}): {} violation(s)", violations.len());
                for v in violations {
                    println!("  data{}: {}", v.instance_path, v.message);
                }
                ExitCode::from(1)
            }
            Err(message) => {
                eprintln!("sluice schema validate: {message}");
                ExitCode::from(2)
            }
        },
        SchemaAction::Infer { events } => match schema_infer(&events) {
            Ok(out) => {
                println!("{out}");
                ExitCode::SUCCESS
            }
            Err(message) => {
                eprintln!("sluice schema infer: {message}");
                ExitCode::from(2)
            }
        },
    }
}

/// Reads a schema argument: @FILE, inline JSON/YAML, or a file path.
fn read_document(arg: &str) -> Result<serde_json::Value, String> {
    let text = match arg.strip_prefix('@') {
        Some(_) => inline_or_file(arg)?,
        None if serde_json::from_str::<serde_json::Value>(arg).is_err()
            && Path::new(arg).is_file() =>
        {
            std::fs::read_to_string(arg).map_err(|e| format!("cannot read {arg}: {e}"))?
        }
        None => arg.to_string(),
    };
    serde_json::from_str(&text)
        .or_else(|_| yaml_serde::from_str(&text))
        .map_err(|e| format!("invalid schema: not JSON or YAML: {e}"))
}

fn schema_validate(
    schema: &str,
    format: CliSchemaFormat,
    component: Option<&str>,
    event: Option<String>,
    data: Option<String>,
) -> Result<(String, Vec<crate::schema::Violation>), String> {
    use crate::schema::{self, SchemaFormat, Version, VersionSpec};
    let format = match format {
        CliSchemaFormat::Jsonschema => SchemaFormat::Jsonschema,
        CliSchemaFormat::Openapi => SchemaFormat::Openapi,
    };
    let document = read_document(schema)?;
    let json_schema = schema::to_json_schema(format, &document, component)?;
    let spec = VersionSpec {
        format,
        schema: json_schema,
        document: None,
        component: component.map(String::from),
        dataschema: None,
    };
    let version = Version::compile("cli", 1, &spec, schema::Origin::Config)?;
    let value: serde_json::Value = match (event, data) {
        (Some(event), _) => {
            let event = read_event(&event)?;
            match &event.data {
                None => serde_json::Value::Null,
                Some(d) => match d.kind {
                    crate::event::DataKind::Json => serde_json::from_slice(&d.bytes)
                        .map_err(|e| format!("invalid event: data: {e}"))?,
                    crate::event::DataKind::Text => {
                        String::from_utf8_lossy(&d.bytes).into_owned().into()
                    }
                    crate::event::DataKind::Binary => {
                        return Err("the event's data is binary; a schema validates JSON".into())
                    }
                },
            }
        }
        (None, Some(data)) => serde_json::from_str(&inline_or_file(&data)?)
            .map_err(|e| format!("invalid data: not JSON: {e}"))?,
        (None, None) => return Err("give --event or --data".into()),
    };
    let name = match component {
        Some(c) => format!("component {c}"),
        None => "schema".into(),
    };
    Ok((name, version.violations(&value)))
}

fn schema_infer(path: &Path) -> Result<String, String> {
    use crate::schema::infer::Shape;
    use std::collections::BTreeMap;
    let text = if path == Path::new("-") {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
            .map_err(|e| format!("cannot read stdin: {e}"))?;
        s
    } else {
        std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?
    };
    let events: Vec<(String, serde_json::Value)> = match serde_json::from_str(&text) {
        Ok(serde_json::Value::Array(events)) => events
            .into_iter()
            .enumerate()
            .map(|(i, e)| (format!("event {i}"), e))
            .collect(),
        _ => text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| {
                serde_json::from_str(l)
                    .map(|e| (format!("line {}", i + 1), e))
                    .map_err(|e| format!("line {}: not JSON: {e}", i + 1))
            })
            .collect::<Result<_, _>>()?,
    };
    let mut shapes: BTreeMap<(String, String), Shape> = BTreeMap::new();
    for (at, event) in events {
        let text = |name: &str| {
            event
                .get(name)
                .and_then(serde_json::Value::as_str)
                .map(String::from)
                .ok_or_else(|| format!("{at}: not a CloudEvent: no string {name}"))
        };
        let key = (text("source")?, text("type")?);
        let json = event
            .get("datacontenttype")
            .and_then(serde_json::Value::as_str)
            .is_none_or(crate::event::is_json_media_type);
        if let (Some(data), true) = (event.get("data"), json) {
            shapes.entry(key).or_default().add(data);
        }
    }
    if shapes.is_empty() {
        return Err("no event with JSON data".into());
    }
    let out: Vec<serde_json::Value> = shapes
        .into_iter()
        .map(|((source, type_), shape)| {
            serde_json::json!({
                "source": source,
                "type": type_,
                "samples": shape.samples,
                "schema": shape.to_schema(),
            })
        })
        .collect();
    Ok(serde_json::to_string_pretty(&out).expect("JSON serialises"))
}
