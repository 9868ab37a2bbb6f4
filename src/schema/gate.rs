//! The schema gate of a replica: what the ingress asks, for every event about to be
//! appended, whether it may go in (`enforce`), goes in marked (`warn`), or is not looked
//! at (`off`); also where discovery samples are taken.
//!
//! Cost on the hot path: every event's encoded attributes are searched once for a
//! forged `schemaviolation` (removed when found). A bus with `validation: off` and no
//! discovery then costs one map lookup per event, and so does an event without a
//! `dataschema` on a bus no binding applies to. Otherwise the attributes are read once
//! for `source`, `type` and `dataschema`; only an event with a schema has its data
//! read (once, as a borrowed [`super::tape`], no `Value` built) and checked by the
//! precompiled validator; an invalid event is then parsed as a `Value` to list its
//! violations. The registry is an `Arc` behind a lock held
//! only to clone it; a reload task swaps in a new one when Redis-stored versions change
//! (polled every [`RELOAD_EVERY`]), compiling only versions it has not seen.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, RwLock};
use std::time::Duration;

use bytes::Bytes;
use memchr::memmem;
use redis::aio::ConnectionManager;
use serde::Deserialize;
use serde_json::{Map, Value};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::store::{self, Meta, StoredVersion};
use super::{
    compat, Binding, Compatibility, Entry, Matcher, Origin, Registry, ValidationMode, Version,
    VersionSpec, Violation, VIOLATION_EXTENSION,
};
use crate::bus::BusError;
use crate::config::Config;
use crate::event::{DataKind, EncodedEvent};
use crate::observability::metrics::Metrics;

/// How often replicas look for versions stored in Redis by others.
pub const RELOAD_EVERY: Duration = Duration::from_secs(2);
/// Discovery samples waiting for the background task; more are dropped.
const SAMPLE_QUEUE: usize = 1024;

/// An event's data sampled for discovery.
#[derive(Debug)]
pub struct Sample {
    pub source: String,
    pub type_: String,
    pub data: Bytes,
}

/// An event refused under `enforce`.
#[derive(Debug, Clone)]
pub struct Rejected {
    pub schema: String,
    pub version: u32,
    pub violations: Vec<Violation>,
}

struct BusPolicy {
    validation: ValidationMode,
    /// Whether some binding may apply to the bus's events (else only a `dataschema`
    /// attribute can select a schema, and events without one are not parsed).
    bound: bool,
    /// Sample one event in this many (0: discovery off).
    sample_every: u64,
    seen: AtomicU64,
}

/// Where an event came in (sources may override their bus's `validation`).
#[derive(Debug, Clone, Copy)]
pub enum Entrance<'a> {
    CloudEvents,
    Webhook(&'a str),
    Aws,
    Alibaba,
}

/// The replica's schemas and per-bus policies.
pub struct SchemaGate {
    /// `validation:` of webhook sources, `aws:` and `alibaba:`, where set.
    source_modes: HashMap<String, ValidationMode>,
    aws_mode: Option<ValidationMode>,
    alibaba_mode: Option<ValidationMode>,
    registry: RwLock<Arc<Registry>>,
    /// The config's part of the registry, rebuilt around on every reload.
    config_entries: Vec<Entry>,
    config_bindings: Vec<Binding>,
    /// Stored (name, count) pairs the current registry was built from.
    stored_counts: tokio::sync::Mutex<Vec<(String, usize)>>,
    buses: HashMap<String, BusPolicy, foldhash::fast::RandomState>,
    metrics: Arc<Metrics>,
    samples: Option<mpsc::Sender<Sample>>,
}

/// The attributes the gate reads.
#[derive(Deserialize)]
struct Context<'a> {
    #[serde(borrow, default)]
    source: std::borrow::Cow<'a, str>,
    #[serde(borrow, default, rename = "type")]
    type_: std::borrow::Cow<'a, str>,
    #[serde(borrow, default)]
    dataschema: Option<std::borrow::Cow<'a, str>>,
}

impl<'a> Context<'a> {
    /// Reads the attributes the ingress encoded: by [`Context::find`] when they are
    /// written compactly without escapes (as every ingress writes them), else through
    /// the tape (no `Value`, no copies of unescaped strings).
    fn read(attrs: &'a [u8]) -> Option<Context<'a>> {
        if let (Some(Some(source)), Some(Some(type_)), Some(dataschema)) = (
            Self::find(attrs, &SOURCE_FINDER),
            Self::find(attrs, &TYPE_FINDER),
            Self::find(attrs, &DATASCHEMA_VALUE_FINDER),
        ) {
            // A `"dataschema"` not written `"dataschema":"` is left to the tape.
            if dataschema.is_some() || DATASCHEMA_FINDER.find(attrs).is_none() {
                return Some(Context {
                    source: source.into(),
                    type_: type_.into(),
                    dataschema: dataschema.map(Into::into),
                });
            }
        }
        match super::tape::Doc::parse(attrs) {
            Some(doc) => Some(Context {
                source: doc.root_string("source").unwrap_or_default(),
                type_: doc.root_string("type").unwrap_or_default(),
                dataschema: doc.root_string("dataschema"),
            }),
            None => serde_json::from_slice(attrs).ok(),
        }
    }

    /// The string value of the key `finder` looks for (`"name":"`): `Some(None)` when the
    /// key is not there, `None` when it cannot tell (the value has escapes). In a JSON
    /// object of scalar values the pattern can only match a key: a quote inside a string
    /// is escaped, and a closing quote is followed by `,`, `:` or `}`.
    fn find(attrs: &'a [u8], finder: &memmem::Finder<'static>) -> Option<Option<&'a str>> {
        let Some(at) = finder.find(attrs) else {
            return Some(None);
        };
        let start = at + finder.needle().len();
        let end = start + memchr::memchr2(b'"', b'\\', &attrs[start..])?;
        if attrs[end] != b'"' {
            return None;
        }
        Some(Some(std::str::from_utf8(&attrs[start..end]).ok()?))
    }
}

static SOURCE_FINDER: LazyLock<memmem::Finder<'static>> =
    LazyLock::new(|| memmem::Finder::new(b"\"source\":\""));
static TYPE_FINDER: LazyLock<memmem::Finder<'static>> =
    LazyLock::new(|| memmem::Finder::new(b"\"type\":\""));
static DATASCHEMA_VALUE_FINDER: LazyLock<memmem::Finder<'static>> =
    LazyLock::new(|| memmem::Finder::new(b"\"dataschema\":\""));

/// The mark's key as it appears in encoded attributes.
const MARK_KEY: &[u8] = b"\"schemaviolation\"";

/// Searchers built once (building one costs more than a search of short attributes).
static MARK_FINDER: LazyLock<memmem::Finder<'static>> =
    LazyLock::new(|| memmem::Finder::new(MARK_KEY));
static DATASCHEMA_FINDER: LazyLock<memmem::Finder<'static>> =
    LazyLock::new(|| memmem::Finder::new(b"\"dataschema\""));

impl SchemaGate {
    /// The gate of a plan (its schema versions compiled by `Plan::build`); the receiver
    /// feeds discovery (when a bus has it).
    pub fn from_plan(
        plan: &crate::plan::Plan,
        metrics: Arc<Metrics>,
    ) -> (SchemaGate, Option<mpsc::Receiver<Sample>>) {
        let config = &plan.config;
        let (config_entries, config_bindings) = config_parts(config, &plan.schema_versions);
        let registry = Registry::new(config_entries.clone(), config_bindings.clone());
        let buses: HashMap<String, BusPolicy, _> = config
            .buses
            .iter()
            .map(|b| {
                let policy = BusPolicy {
                    validation: b.validation,
                    bound: config_bindings
                        .iter()
                        .any(|x| x.bus.as_deref().is_none_or(|bus| b.name == bus)),
                    sample_every: if b.discovery.0 {
                        b.discovery_sample.unwrap_or(10).max(1)
                    } else {
                        0
                    },
                    seen: AtomicU64::new(0),
                };
                (b.name.to_string(), policy)
            })
            .collect();
        let (samples, receiver) = if buses.values().any(|p| p.sample_every > 0) {
            let (tx, rx) = mpsc::channel(SAMPLE_QUEUE);
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        let gate = SchemaGate {
            source_modes: config
                .sources
                .iter()
                .filter_map(|s| Some((s.name.to_string(), s.validation?)))
                .collect(),
            aws_mode: config.aws.as_ref().and_then(|a| a.validation),
            alibaba_mode: config.alibaba.as_ref().and_then(|a| a.validation),
            registry: RwLock::new(Arc::new(registry)),
            config_entries,
            config_bindings,
            stored_counts: tokio::sync::Mutex::new(Vec::new()),
            buses,
            metrics,
            samples,
        };
        (gate, receiver)
    }

    /// The current registry.
    pub fn registry(&self) -> Arc<Registry> {
        self.registry.read().expect("registry lock").clone()
    }

    /// Decides about one event bound for `bus`, arrived through `entrance` (whose
    /// `validation`, if set, overrides the bus's). A producer's own `schemaviolation`
    /// attribute is always removed; under `warn` an invalid event is marked
    /// `schemaviolation: "true"`.
    pub fn check(
        &self,
        bus: &str,
        entrance: Entrance<'_>,
        event: &mut EncodedEvent,
    ) -> Result<(), Rejected> {
        // The mark is Sluice's to set: a producer's own is removed, whatever the mode.
        let had_mark = MARK_FINDER.find(&event.attrs).is_some();
        if had_mark {
            mark(event, false, true);
        }
        let Some(policy) = self.buses.get(bus) else {
            return Ok(());
        };
        let mode = match entrance {
            Entrance::CloudEvents => None,
            Entrance::Webhook(source) => self.source_modes.get(source).copied(),
            Entrance::Aws => self.aws_mode,
            Entrance::Alibaba => self.alibaba_mode,
        }
        .unwrap_or(policy.validation);
        let sample = policy.sample_every > 0
            && policy.seen.fetch_add(1, Ordering::Relaxed) % policy.sample_every == 0;
        if mode == ValidationMode::Off && !sample {
            return Ok(());
        }
        if !sample && !policy.bound && DATASCHEMA_FINDER.find(&event.attrs).is_none() {
            return Ok(()); // no binding for the bus, and nothing pinned
        }
        let registry = self.registry();
        if !sample && registry.entries().is_empty() {
            return Ok(()); // validation on, but no schema registered yet
        }
        let Some(ctx) = Context::read(&event.attrs) else {
            return Ok(()); // the ingress encoded them: cannot happen
        };
        if sample {
            if let (Some(tx), Some(data)) = (&self.samples, &event.data) {
                if data.kind == DataKind::Json {
                    // Never waits: a full queue drops the sample.
                    let _ = tx.try_send(Sample {
                        source: ctx.source.to_string(),
                        type_: ctx.type_.to_string(),
                        data: data.bytes.clone(),
                    });
                }
            }
        }
        if mode == ValidationMode::Off {
            return Ok(());
        }
        let Some(version) =
            registry.lookup(bus, &ctx.source, &ctx.type_, ctx.dataschema.as_deref())
        else {
            return Ok(());
        };
        let violations = match data_value(event) {
            DataValue::Json(bytes) => version.check_json(bytes).err(),
            // The fast check first: listing violations costs more.
            DataValue::Other(data) if version.is_valid(&data) => None,
            DataValue::Other(data) => Some(version.violations(&data)),
            DataValue::Binary(v) => Some(vec![v]),
        }
        .unwrap_or_default();
        if !violations.is_empty() {
            self.metrics.schema_violation(
                bus,
                &version.name,
                if mode == ValidationMode::Enforce {
                    "enforce"
                } else {
                    "warn"
                },
            );
        }
        match mode {
            ValidationMode::Enforce if !violations.is_empty() => Err(Rejected {
                schema: version.name.clone(),
                version: version.number,
                violations,
            }),
            ValidationMode::Warn if !violations.is_empty() => {
                mark(event, true, false);
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Rebuilds the registry from the config and what Redis stores now.
    pub async fn reload(&self, redis: &mut ConnectionManager) -> Result<(), BusError> {
        let mut counts = self.stored_counts.lock().await;
        // What the poll compares with: raw list lengths (an unreadable record, skipped
        // by `load`, must not make every poll reload).
        let now = store::counts(redis).await?;
        let stored = store::load(redis).await?;
        let previous = self.registry();
        let registry = self.build(&stored, &previous);
        *counts = now.into_iter().filter(|(_, n)| *n > 0).collect();
        *self.registry.write().expect("registry lock") = Arc::new(registry);
        Ok(())
    }

    /// Reloads when the stored names or version counts changed.
    async fn reload_if_changed(&self, redis: &mut ConnectionManager) -> Result<bool, BusError> {
        let now = store::counts(redis).await?;
        let now: Vec<_> = now.into_iter().filter(|(_, n)| *n > 0).collect();
        if *self.stored_counts.lock().await == now {
            return Ok(false);
        }
        self.reload(redis).await?;
        Ok(true)
    }

    fn build(&self, stored: &[store::StoredSchema], previous: &Registry) -> Registry {
        let mut entries = self.config_entries.clone();
        let compiled = |name: &str, v: &StoredVersion, origin: Origin| -> Option<Arc<Version>> {
            // Reuse what is compiled already.
            if let Some(old) = previous
                .entry(name)
                .and_then(|e| e.versions.iter().find(|o| o.number == v.version))
                .filter(|o| o.origin == origin && o.schema == v.spec.schema)
            {
                return Some(old.clone());
            }
            match Version::compile(name, v.version, &v.spec, origin) {
                Ok(c) => Some(Arc::new(c)),
                Err(e) => {
                    warn!(schema = %name, version = v.version, error = %e, "stored schema version does not compile; skipped");
                    None
                }
            }
        };
        for s in stored {
            match entries.iter_mut().find(|e| e.name == s.name) {
                Some(entry) => {
                    let known = entry.versions.len() as u32;
                    for v in &s.versions {
                        if v.version <= known {
                            warn!(schema = %s.name, version = v.version, "stored version shadowed by a config version; skipped");
                            continue;
                        }
                        if let Some(c) = compiled(&s.name, v, Origin::Api) {
                            entry.versions.push(c);
                        }
                    }
                }
                None => entries.push(Entry {
                    name: s.name.clone(),
                    compatibility: s.meta.compatibility,
                    origin: s.meta.origin,
                    versions: s
                        .versions
                        .iter()
                        .filter_map(|v| compiled(&s.name, v, s.meta.origin))
                        .collect(),
                    discovered: s.meta.discovered.clone(),
                }),
            }
        }
        Registry::new(entries, self.config_bindings.clone())
    }

    /// Registers a new version over the API: refused when it does not compile, is not
    /// compatible with the earlier ones, or another replica registered one meanwhile.
    /// Registering the latest version again answers its number (not created).
    pub async fn register(
        &self,
        redis: &mut ConnectionManager,
        name: &str,
        request: RegisterRequest,
    ) -> Result<Registered, RegisterError> {
        crate::config::check_name(name).map_err(|m| RegisterError::invalid("name", m))?;
        if name.starts_with("discovered.") {
            return Err(RegisterError::invalid(
                "name",
                "names starting with discovered. are reserved for discovered schemas",
            ));
        }
        let schema = super::to_json_schema(
            request.format,
            &request.schema,
            request.component.as_deref(),
        )
        .map_err(|m| {
            // The converter names the component when that is what is wrong.
            let field = if m.contains("component") {
                "component"
            } else {
                "schema"
            };
            RegisterError::invalid(field, m)
        })?;
        let spec = VersionSpec {
            format: request.format,
            schema,
            document: (request.format == super::SchemaFormat::Openapi)
                .then(|| request.schema.clone()),
            component: request.component.clone(),
            dataschema: request.dataschema.clone(),
        };
        super::compile(&spec.schema).map_err(|m| RegisterError::invalid("schema", m))?;

        let registry = self.registry();
        let config_entry = self.config_entries.iter().find(|e| e.name == name);
        let (meta, raw, records) = store::read(redis, name).await?;
        if meta
            .as_ref()
            .is_some_and(|m| m.origin == Origin::Discovered)
        {
            return Err(RegisterError::invalid(
                "name",
                format!("{name} is a discovered schema"),
            ));
        }
        let mode = match (config_entry, &meta) {
            (Some(e), _) => e.compatibility,
            (None, Some(m)) => m.compatibility,
            (None, None) => request.compatibility.unwrap_or_default(),
        };
        if let Some(asked) = request.compatibility.filter(|c| *c != mode) {
            if config_entry.is_some() || meta.is_some() {
                return Err(RegisterError::invalid(
                    "compatibility",
                    format!(
                        "{name} has compatibility {}, not {}",
                        mode.as_str(),
                        asked.as_str()
                    ),
                ));
            }
        }
        let config_versions: Vec<&Value> = config_entry
            .map(|e| e.versions.iter().map(|v| &v.schema).collect())
            .unwrap_or_default();
        let skip = config_versions.len() as u32;
        let stored: Vec<&StoredVersion> = raw.iter().filter(|v| v.version > skip).collect();
        let mut all = config_versions;
        all.extend(stored.iter().map(|v| &v.spec.schema));
        let latest_number = skip + stored.len() as u32;
        if all.last() == Some(&&spec.schema)
            && stored
                .last()
                .is_none_or(|v| v.spec.dataschema == spec.dataschema)
        {
            return Ok(Registered {
                version: latest_number,
                created: false,
            });
        }
        if let Some(uri) = &spec.dataschema {
            if let Some(v) = registry.by_dataschema(uri) {
                return Err(RegisterError::invalid(
                    "dataschema",
                    format!(
                        "dataschema {uri:?} already names {} version {}",
                        v.name, v.number
                    ),
                ));
            }
        }
        compat::check(mode, &all, &spec.schema).map_err(|reasons| RegisterError::Incompatible {
            compatibility: mode,
            reasons,
        })?;
        let version = StoredVersion {
            version: latest_number + 1,
            spec,
            created: chrono::Utc::now().timestamp_millis().max(0) as u64,
        };
        let meta = Meta {
            origin: Origin::Api,
            compatibility: mode,
            discovered: None,
        };
        // The list holds every stored record, shadowed and unreadable ones included.
        let expected = records;
        if !store::append(redis, name, &meta, expected, &version).await? {
            return Err(RegisterError::Conflict);
        }
        info!(schema = %name, version = version.version, "schema version registered");
        if let Err(e) = self.reload(redis).await {
            warn!(error = %e, "reload after registering failed; the next poll retries");
        }
        Ok(Registered {
            version: version.version,
            created: true,
        })
    }
}

impl RegisterError {
    fn invalid(field: &'static str, message: impl Into<String>) -> RegisterError {
        RegisterError::Invalid {
            field,
            message: message.into(),
        }
    }
}

/// `POST /api/v1/schemas/{name}/versions` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    #[serde(default)]
    pub format: super::SchemaFormat,
    /// The JSON Schema, or the OpenAPI document.
    pub schema: Value,
    #[serde(default)]
    pub component: Option<String>,
    #[serde(default)]
    pub dataschema: Option<String>,
    /// For a new name only: the compatibility of its versions (default backward).
    #[serde(default)]
    pub compatibility: Option<Compatibility>,
}

#[derive(Debug)]
pub struct Registered {
    pub version: u32,
    pub created: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    /// The request's `field` is wrong.
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("not {} compatible", compatibility.as_str())]
    Incompatible {
        compatibility: Compatibility,
        reasons: Vec<String>,
    },
    #[error("another version was registered at the same time; retry")]
    Conflict,
    #[error(transparent)]
    Unavailable(#[from] BusError),
}

/// An event's data as the validator takes it.
enum DataValue<'a> {
    /// JSON bytes ([`super::Version::check_json`] reads them).
    Json(&'a [u8]),
    /// No data (`null`) or text (a string).
    Other(Value),
    /// Binary data: not validated, the violation says why.
    Binary(Violation),
}

fn data_value(event: &EncodedEvent) -> DataValue<'_> {
    match &event.data {
        None => DataValue::Other(Value::Null),
        Some(d) => match d.kind {
            DataKind::Json => DataValue::Json(&d.bytes),
            DataKind::Text => DataValue::Other(Value::String(
                String::from_utf8_lossy(&d.bytes).into_owned(),
            )),
            DataKind::Binary => DataValue::Binary(Violation {
                instance_path: String::new(),
                message: "data is binary; a schema validates JSON data".into(),
            }),
        },
    }
}

/// Sets (or removes) the violation mark in the encoded attributes.
fn mark(event: &mut EncodedEvent, violated: bool, had_mark: bool) {
    if violated && !had_mark {
        // Splice before the closing brace: no re-encoding of the other attributes.
        let attrs = &mut event.attrs;
        if attrs.last() == Some(&b'}') {
            attrs.pop();
            if attrs.len() > 1 {
                attrs.push(b',');
            }
            attrs.extend_from_slice(b"\"");
            attrs.extend_from_slice(VIOLATION_EXTENSION.as_bytes());
            attrs.extend_from_slice(b"\":\"true\"}");
        }
        return;
    }
    let Ok(mut map) = serde_json::from_slice::<Map<String, Value>>(&event.attrs) else {
        return;
    };
    if violated {
        map.insert(VIOLATION_EXTENSION.into(), "true".into());
    } else {
        map.remove(VIOLATION_EXTENSION);
    }
    event.attrs = serde_json::to_vec(&map).expect("a JSON map serialises");
}

/// The config's schemas (with the versions the plan compiled) and bindings.
fn config_parts(
    config: &Config,
    compiled: &[crate::config::schemas::CompiledVersions],
) -> (Vec<Entry>, Vec<Binding>) {
    let mut entries = Vec::new();
    let mut bindings = Vec::new();
    for (s, versions) in config.schemas.iter().zip(compiled) {
        let versions = versions.clone();
        entries.push(Entry {
            name: s.name.clone(),
            compatibility: s.compatibility,
            origin: Origin::Config,
            versions,
            discovered: None,
        });
        for b in &s.bind {
            bindings.push(Binding {
                schema: s.name.clone(),
                bus: b.bus.clone(),
                source: Matcher::parse(b.source.as_deref()),
                type_: Matcher::parse(b.type_.as_deref()),
            });
        }
    }
    (entries, bindings)
}

/// Polls for changed stored versions until shutdown (the gateway loads them once
/// before it serves; if that failed, the first poll that reaches Redis loads them).
pub async fn run_reload(
    gate: Arc<SchemaGate>,
    mut redis: ConnectionManager,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(RELOAD_EVERY);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        match gate.reload_if_changed(&mut redis).await {
            Ok(true) => debug!("stored schemas reloaded"),
            Ok(false) => {}
            Err(e) => debug!(error = %e, "polling stored schemas failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(attrs: &str) -> EncodedEvent {
        EncodedEvent {
            id: "1".into(),
            attrs: attrs.as_bytes().to_vec(),
            data: None,
        }
    }

    #[test]
    fn reads_the_context_as_the_tape_does() {
        for attrs in [
            r#"{"specversion":"1.0","id":"1","source":"/s","type":"t"}"#,
            r#"{"id":"1","type":"t","source":"/s","dataschema":"urn:x"}"#,
            r#"{"id":"1","source":"/a\"b","type":"t\u0041"}"#,
            r#"{"id":"1", "source" : "/s", "type": "t", "dataschema" : "urn:y"}"#,
            r#"{"id":"1","source":"/s","type":"t","dataschema" : "urn:z"}"#,
            r#"{"subject":"\"source\":\"evil","source":"/s","type":"t"}"#,
            r#"{"subject":"x\\","source":"/s","type":"t"}"#,
            r#"{"id":"1","source":"/s"}"#,
            r#"{"id":"1","source":5,"type":"t"}"#,
        ] {
            let fast = Context::read(attrs.as_bytes()).unwrap();
            let doc = crate::schema::tape::Doc::parse(attrs.as_bytes()).unwrap();
            assert_eq!(
                fast.source,
                doc.root_string("source").unwrap_or_default(),
                "{attrs}"
            );
            assert_eq!(
                fast.type_,
                doc.root_string("type").unwrap_or_default(),
                "{attrs}"
            );
            assert_eq!(fast.dataschema, doc.root_string("dataschema"), "{attrs}");
        }
    }

    #[test]
    fn marks_and_unmarks() {
        let mut e = encoded(r#"{"id":"1","source":"s"}"#);
        mark(&mut e, true, false);
        assert_eq!(
            e.attrs,
            br#"{"id":"1","source":"s","schemaviolation":"true"}"#
        );
        let mut e = encoded(r#"{"id":"1","schemaviolation":"no"}"#);
        mark(&mut e, true, true);
        assert_eq!(e.attrs, br#"{"id":"1","schemaviolation":"true"}"#);
        mark(&mut e, false, true);
        assert_eq!(e.attrs, br#"{"id":"1"}"#);
    }
}
