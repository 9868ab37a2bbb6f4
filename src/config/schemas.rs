//! The `schemas:` section: every version loaded (inline or from a file), converted from
//! OpenAPI where it is one, compiled, and checked for compatibility with the earlier
//! versions, so `sluice check` refuses what the gateway would.

use std::collections::HashSet;

use super::Config;
use super::{check_name, ConfigError};

/// Every version of one schema of the configuration, compiled (config order).
pub type CompiledVersions = Vec<std::sync::Arc<crate::schema::Version>>;

/// Loads every schema version (inline or `file:`, OpenAPI converted), compiles it and
/// checks each against the earlier ones in the schema's compatibility mode; also the
/// bindings' buses, names and `dataschema` URIs. Errors name `schemas[i]...`. The
/// compiled versions, one list per schema, are the plan's (`Plan::schema_versions`).
pub(crate) fn resolve(
    config: &Config,
    base: Option<&std::path::Path>,
) -> (Vec<ConfigError>, Vec<CompiledVersions>) {
    use crate::schema::{self, Origin, Version, VersionSpec};
    let mut compiled_all = Vec::with_capacity(config.schemas.len());
    let mut errors = Vec::new();
    let mut err = |path: String, message: String| {
        errors.push(ConfigError {
            path,
            line: None,
            message,
        })
    };
    let buses: HashSet<String> = config.buses.iter().map(|b| b.name.to_string()).collect();
    for (i, bus) in config.buses.iter().enumerate() {
        if bus.discovery_sample == Some(0) {
            err(
                format!("buses[{i}].discovery_sample"),
                "must be at least 1 (1 = every event)".into(),
            );
        }
    }
    let mut names = HashSet::new();
    let mut uris = std::collections::HashMap::new();
    for (i, s) in config.schemas.iter().enumerate() {
        let mut compiled = Vec::with_capacity(s.versions.len());
        let at = format!("schemas[{i}]");
        if let Err(m) = check_name(&s.name) {
            err(format!("{at}.name"), m);
        }
        if s.name.starts_with("discovered.") {
            err(
                format!("{at}.name"),
                "names starting with discovered. are reserved for discovered schemas".into(),
            );
        }
        if !names.insert(s.name.clone()) {
            err(
                format!("{at}.name"),
                format!("duplicate schema name {:?}", s.name),
            );
        }
        for (j, b) in s.bind.iter().enumerate() {
            if let Some(bus) = &b.bus {
                if !buses.contains(bus) {
                    err(
                        format!("{at}.bind[{j}].bus"),
                        format!("no bus named {bus:?} in buses"),
                    );
                }
            }
            if b.bus.is_none() && b.source.is_none() && b.type_.is_none() {
                err(
                    format!("{at}.bind[{j}]"),
                    "a binding needs at least one of bus, source, type".into(),
                );
            }
        }
        let mut loaded: Vec<Option<serde_json::Value>> = Vec::new();
        for (j, v) in s.versions.iter().enumerate() {
            let vat = format!("{at}.versions[{j}]");
            let document = match (&v.schema, &v.file) {
                (Some(doc), None) => Ok(doc.clone()),
                (None, Some(file)) => read_schema_file(base, file),
                (Some(_), Some(_)) => Err("set schema or file, not both".into()),
                (None, None) => Err("needs schema: (inline) or file: PATH".into()),
            };
            // Compiled once, here: the gate uses these very versions.
            let converted = document.and_then(|doc| {
                let json_schema = schema::to_json_schema(v.format, &doc, v.component.as_deref())?;
                let openapi = v.format == schema::SchemaFormat::Openapi;
                let spec = VersionSpec {
                    format: v.format,
                    schema: json_schema,
                    document: openapi.then_some(doc),
                    component: v.component.clone(),
                    dataschema: v.dataschema.clone(),
                };
                Version::compile(&s.name, j as u32 + 1, &spec, Origin::Config)
            });
            match converted {
                Ok(version) => {
                    loaded.push(Some(version.schema.clone()));
                    compiled.push(std::sync::Arc::new(version));
                }
                Err(m) => {
                    err(vat.clone(), m);
                    loaded.push(None);
                }
            }
            if let Some(uri) = &v.dataschema {
                if let Some(other) = uris.insert(uri.clone(), vat.clone()) {
                    err(
                        format!("{vat}.dataschema"),
                        format!("{uri:?} already names {other}"),
                    );
                }
            }
        }
        // Each version against the earlier ones (only when all of them loaded).
        for j in 1..loaded.len() {
            let Some(earlier) = loaded[..j]
                .iter()
                .map(Option::as_ref)
                .collect::<Option<Vec<_>>>()
            else {
                break;
            };
            let Some(new) = &loaded[j] else { continue };
            if let Err(reasons) = schema::compat::check(s.compatibility, &earlier, new) {
                err(
                    format!("{at}.versions[{j}]"),
                    format!(
                        "version {} is not {} compatible: {}",
                        j + 1,
                        s.compatibility.as_str(),
                        reasons.join("; ")
                    ),
                );
            }
        }
        compiled_all.push(compiled);
    }
    (errors, compiled_all)
}

/// A schema file: JSON, else YAML.
fn read_schema_file(
    base: Option<&std::path::Path>,
    file: &str,
) -> Result<serde_json::Value, String> {
    let path = match base {
        Some(dir) if std::path::Path::new(file).is_relative() => dir.join(file),
        _ => std::path::PathBuf::from(file),
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    serde_json::from_str(&text)
        .or_else(|_| yaml_serde::from_str(&text))
        .map_err(|e| format!("{} is neither JSON nor YAML: {e}", path.display()))
}
