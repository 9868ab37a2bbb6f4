//! `GET /api/v1/openapi.json`: the control API as an OpenAPI 3.1 document.
//!
//! The operations come from the `#[utoipa::path]` attributes on the handlers (their
//! paths, parameters, bodies and every status code each one answers); [`ApiDoc`] lists
//! them. This module adds what is shared:
//!
//! - the component schemas ([`component_schemas`]): the resources as the configuration
//!   holds them (open to the many kind-specific fields: a valid resource is never
//!   refused by the document), their views, lists, and the error of
//!   `crate::ingress::error::ApiError`;
//! - on every operation, the error body on each 4xx/5xx answer without one, `Retry-After`
//!   on 503, and the 401/403 of the control API's authorization;
//! - the bearer security scheme (`api.token`).
//!
//! tests/openapi.rs compares the document with the routes `configure` mounts and runs
//! schemathesis against a gateway.

use std::borrow::Cow;
use std::sync::OnceLock;

use actix_web::{web, HttpResponse};
use serde_json::{json, Map, Value};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{Modify, OpenApi};

/// The operations of the control API.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Sluice control API",
        description = "Reads and operations on a Sluice gateway's state: the resources (buses, rules with their targets, sources, functions), dead-letter queues, the schema registry and the pattern/transform tools. Every request needs `Authorization: Bearer <api.token>`; without `api.token` configured only loopback clients are served.",
    ),
    paths(
        super::resources::list_buses,
        super::resources::get_bus,
        super::resources::put_bus,
        super::resources::delete_bus,
        super::resources::list_bus_rules,
        super::resources::get_rule,
        super::resources::put_rule,
        super::resources::delete_rule,
        super::resources::list_rules,
        super::resources::list_targets,
        super::resources::resume_target,
        super::resources::list_sources,
        super::resources::get_source,
        super::resources::put_source,
        super::resources::delete_source,
        super::resources::list_functions,
        super::resources::get_function,
        super::resources::put_function,
        super::resources::delete_function,
        super::resources::apply,
        super::resources::audit,
        super::events::search,
        super::events::stats,
        super::events::event,
        super::replays::list_archives,
        super::replays::get_archive,
        super::replays::put_archive,
        super::replays::delete_archive,
        super::replays::list_replays,
        super::replays::start_replay,
        super::replays::get_replay,
        super::replays::cancel_replay,
        super::dlq::index,
        super::dlq::entries,
        super::dlq::entry,
        super::dlq::redrive,
        super::dlq::purge,
        super::schemas::list,
        super::schemas::versions,
        super::schemas::version,
        super::schemas::register,
        super::tools::test_pattern,
        super::tools::transform,
        super::auth::list,
        super::auth::create,
        super::auth::revoke,
        serve,
    ),
    modifiers(&Security),
    security(("bearer" = [])),
    tags(
        (name = "resources", description = "Buses, rules (with their targets), sources and functions, read and written at run time"),
        (name = "events", description = "A bus's retained events: search"),
        (name = "dlq", description = "Dead-letter queues"),
        (name = "schemas", description = "The schema registry"),
        (name = "tools", description = "Patterns and transforms, tried without a gateway's state"),
        (name = "tokens", description = "Bearer tokens with roles (admin only)"),
        (name = "meta", description = "This document"),
    )
)]
pub struct ApiDoc;

/// The bearer scheme of `api.token`.
struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "`api.token` of the configuration; without one, no token and loopback clients only",
                    ))
                    .build(),
            ),
        );
    }
}

/// Registers `GET /openapi.json` (under the control scope, which authorizes).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/openapi.json", web::get().to(serve));
}

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "meta",
    responses((status = 200, description = "the OpenAPI 3.1 document of the control API", body = ref("#/components/schemas/OpenApiDocument")))
)]
async fn serve() -> HttpResponse {
    static DOC: OnceLock<String> = OnceLock::new();
    let doc = DOC.get_or_init(|| document().to_string());
    HttpResponse::Ok()
        .content_type("application/json")
        .body(doc.as_str())
}

/// The whole document: [`ApiDoc`] with the shared parts added.
pub fn document() -> Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).expect("an OpenAPI document serializes");
    let schemas = doc["components"]["schemas"]
        .as_object_mut()
        .map(std::mem::take)
        .unwrap_or_default();
    let mut all: Map<String, Value> = schemas;
    all.extend(component_schemas());
    doc["components"]["schemas"] = Value::Object(all);
    if let Some(paths) = doc["paths"].as_object_mut() {
        for item in paths.values_mut() {
            for op in item
                .as_object_mut()
                .into_iter()
                .flat_map(|i| i.values_mut())
            {
                complete(op);
            }
        }
    }
    doc
}

/// Error bodies, `Retry-After`, and the authorization's answers on one operation; an
/// optional parameter is absent rather than null (a query or header carries no null).
fn complete(op: &mut Value) {
    for param in op
        .get_mut("parameters")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        let types = &mut param["schema"]["type"];
        if let Value::Array(list) = types {
            list.retain(|t| t != "null");
            if list.len() == 1 {
                *types = list.remove(0);
            }
        }
    }
    let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else {
        return;
    };
    responses.entry("401").or_insert_with(|| {
        json!({
            "description": "a token is required (`api.token`, `SLUICE_API_TOKEN` or tokens exist) and the request has none, or an unknown or revoked one",
            "headers": {"WWW-Authenticate": {"description": "`Bearer`", "schema": {"type": "string"}}},
        })
    });
    responses.entry("403").or_insert_with(|| {
        json!({"description": "the token's role is too low or the path is outside its buses; or no token exists and the client is not on a loopback address"})
    });
    for (status, response) in responses.iter_mut() {
        if !(status.starts_with('4') || status.starts_with('5')) || status == "413" {
            continue;
        }
        if response.get("content").is_none() {
            response["content"] = json!({
                "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
            });
        }
        if status == "503" {
            response["headers"]["Retry-After"] = json!({
                "description": "seconds to wait before retrying",
                "required": true,
                "schema": {"type": "string"},
            });
        }
    }
}

fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn nullable(kind: &str) -> Value {
    json!({"type": [kind, "null"]})
}

/// An object with `properties`, open to other fields.
fn open(description: &str, properties: Value) -> Value {
    json!({
        "type": "object",
        "description": description,
        "properties": properties,
        "additionalProperties": true,
    })
}

/// An object with exactly `properties`, `required` among them.
fn closed(required: &[&str], properties: Value) -> Value {
    json!({
        "type": "object",
        "required": required,
        "properties": properties,
        "additionalProperties": false,
    })
}

/// The view of one resource of `kind` whose spec is the schema `spec`.
fn view(kind: &str, spec: &str) -> Value {
    closed(
        &["kind", "id", "origin", "spec"],
        json!({
            "kind": {"const": kind},
            "id": {"type": "string", "description": "the name; for a rule `BUS/RULE`"},
            "origin": {"enum": ["file", "api"], "description": "`file`: defined by the file given to serve (read-only here); `api`: stored through this API"},
            "version": {"type": "integer", "minimum": 1, "description": "resources of the API: the version (the `ETag`)"},
            "updated_at": {"type": "integer", "description": "resources of the API: the time of the last write, Unix milliseconds"},
            "updated_by": {"type": "string", "description": "resources of the API: who wrote it last, e.g. `api@127.0.0.1`"},
            "spec": schema_ref(spec),
        }),
    )
}

fn page_of(item: &str) -> Value {
    closed(
        &["items", "next"],
        json!({
            "items": {"type": "array", "items": schema_ref(item)},
            "next": {"type": ["string", "null"], "description": "the `after` of the next page; null on the last"},
        }),
    )
}

/// The component schemas written here (those of the request structs come from their
/// `ToSchema` derives).
pub fn component_schemas() -> Map<String, Value> {
    let s = json!({"type": "string"});
    let duration = json!({"type": "string", "description": "a duration such as `500ms`, `10s`, `5m`, `24h`, `7d`"});
    let secret = json!({"type": "string", "description": "a literal, `env:NAME` or `file:PATH`; read back as `***`, and a `***` written back keeps the stored value"});
    let validation = json!({"enum": ["enforce", "warn", "off"]});
    let strings = json!({"type": "array", "items": {"type": "string"}});
    let string_map = json!({"type": "object", "additionalProperties": {"type": "string"}});
    let opt_str = nullable("string");
    let field_error = closed(
        &["field", "message"],
        json!({
            "index": {"type": "integer", "minimum": 0, "description": "the entry of a batch"},
            "field": s,
            "message": s,
        }),
    );
    let dlq_summary = json!({
        "id": {"type": "string", "description": "the DLQ entry id"},
        "event_id": s,
        "reason": s,
        "time": opt_str,
        "attempts": {"description": "the attempts, a JSON list of `{at, status, error, latency_ms}`"},
        "target_entry": opt_str,
        "bus_entry": opt_str,
    });
    let mut dlq_entry = dlq_summary.clone();
    dlq_entry["event"] = json!({"type": "object", "description": "the event in the CloudEvents JSON format, or `{error}` when it cannot be decoded"});
    dlq_entry["payload"] = closed(
        &["content_type", "body"],
        json!({"content_type": s, "body": {}, "base64": {"const": true}}),
    );
    let summary_fields = |versions: Value| {
        json!({
            "name": s,
            "origin": {"enum": ["config", "api", "discovered"]},
            "compatibility": schema_ref("Compatibility"),
            "versions": versions,
            "latest": nullable("integer"),
            "bindings": {"type": "array", "items": closed(&["bus", "source", "type"], json!({"bus": s, "source": opt_str, "type": opt_str}))},
            "source": s,
            "type": s,
        })
    };
    let dlq_keys = [
        "id",
        "event_id",
        "reason",
        "time",
        "attempts",
        "target_entry",
        "bus_entry",
    ];
    let mut dlq_entry_keys = dlq_keys.to_vec();
    dlq_entry_keys.push("event");

    let Value::Object(mut schemas) = json!({
        "Error": {
            "type": "object",
            "description": "An error: a machine-readable `error` code, a `message`, the `field` (attribute, parameter or configuration path) at fault when there is one, and every problem in `errors`",
            "required": ["error", "message"],
            "properties": {
                "error": {"type": "string", "description": "e.g. `not_found`, `invalid_resource`, `precondition_failed`"},
                "message": s,
                "field": s,
                "errors": {"type": "array", "items": field_error},
                "violations": {"type": "array", "items": {"type": "object"}},
            },
            "additionalProperties": false,
        },
        "Bus": open("A bus, as `buses[]` of the configuration holds it (docs/configuration.md)", json!({
            "name": {"type": "string", "description": "the bus; events are posted to `/buses/{name}/events`; defaults to the URL's"},
            "description": {"type": "string", "description": "free text for people"},
            "retention": duration,
            "max_len": {"type": "integer", "minimum": 0, "description": "instead of `retention`: keep at most this many events"},
            "ingest_token": secret,
            "validation": validation,
            "discovery": {"type": ["string", "boolean"], "description": "`on`: infer schemas from the bus's events"},
            "discovery_sample": {"type": "integer", "minimum": 1},
            "stats": open("per-minute counts by type and source (`GET /api/v1/buses/{bus}/stats`)", json!({"retention": duration})),
            "trace": open("a trace of every event (`GET /api/v1/buses/{bus}/events/{id}`)", json!({"retention": duration, "sample": {"type": "number", "minimum": 0, "maximum": 1}})),
            "archives": {"type": "array", "items": schema_ref("Archive")},
        })),
        "Archive": open("An archive of a bus: the events matching `pattern`, kept in compressed segments (docs/operations.md)", json!({
            "name": s,
            "description": s,
            "pattern": schema_ref("Pattern"),
            "dialect": {"enum": ["cloudevents", "aws"]},
            "retention_days": {"type": "integer", "minimum": 0, "description": "0 keeps the segments"},
        })),
        "Rule": open("A rule with its targets, as `rules[]` of the configuration holds it", json!({
            "name": {"type": "string", "description": "unique per bus; defaults to the URL's"},
            "bus": {"type": "string", "description": "the bus; defaults to the URL's"},
            "pattern": schema_ref("Pattern"),
            "filters": {"type": "array", "description": "CloudEvents Subscriptions API filters (`exact`, `prefix`, `suffix`, `all`, `any`, `not`, `sql`)", "items": {"type": "object"}},
            "enabled": {"type": "boolean", "description": "false: the rule routes nothing (default true)"},
            "description": {"type": "string", "description": "free text for people"},
            "dialect": {"enum": ["cloudevents", "aws"], "description": "what `pattern` is written against: the stored CloudEvent (default) or the AWS EventBridge event"},
            "labels": string_map,
            "targets": {"type": "array", "items": schema_ref("Target"), "description": "where matching events go; a rule without targets routes nothing"},
        })),
    }) else {
        unreachable!()
    };
    let more = json!({
        "Target": {
            "type": "object",
            "description": "A target of a rule (`rules[].targets[]`); the fields of other kinds than these are described in docs/configuration.md and docs/bridges.md",
            "required": ["name", "kind"],
            "properties": {
                "name": {"type": "string", "description": "unique within the rule"},
                "kind": {"enum": ["http", "cloudevents", "aws-eventbridge", "alibaba-eventbridge", "function", "aws-lambda", "bus"]},
                "url": {"type": "string", "description": "`http`, `cloudevents`: an absolute http(s) URL, may contain `{name}` placeholders"},
                "method": {"enum": ["POST", "PUT", "PATCH"]},
                "headers": string_map,
                "path_params": string_map,
                "query": string_map,
                "mode": {"enum": ["binary", "structured"]},
                "envelope": {"enum": ["cloudevents", "aws"], "description": "the event the target receives: the CloudEvent (default) or the AWS EventBridge event"},
                "labels": string_map,
                "transform": schema_ref("Transform"),
                "timeout": duration,
                "concurrency": {"type": "integer", "minimum": 1},
                "retry": open("retries", json!({"max_attempts": {"type": "integer", "minimum": 1}, "max_age": duration, "initial": duration, "max": duration})),
                "rate": open("rate limit", json!({"per_second": {"type": "number"}, "burst": {"type": "integer", "minimum": 1}})),
                "breaker": open("circuit breaker", json!({"failures": {"type": "integer", "minimum": 1}, "cooldown": duration})),
                "ordering": open("FIFO per key", json!({"key": s})),
                "function": {"type": "string", "description": "`function`: a name in `functions`; `aws-lambda`: a name or ARN"},
                "invocation_type": {"enum": ["RequestResponse", "Event"]},
                "qualifier": s,
                "region": s,
                "endpoint": s,
                "on_success": open("chaining of a function's result", json!({"bus": s, "source": s, "type": s})),
                "signing": open("Standard Webhooks signing", json!({"secret": secret})),
            },
            "additionalProperties": true,
        },
        "Source": open("A webhook source, as `sources[]` of the configuration holds it (docs/sources.md); options that do not apply to the kind are refused", json!({
            "name": {"type": "string", "description": "the endpoint is `/webhooks/{name}`; defaults to the URL's"},
            "kind": {"enum": ["github", "stripe", "slack", "shopify", "standard-webhooks", "gitlab", "twilio", "hmac", "token", "basic", "aws-api-destination"]},
            "bus": s,
            "secret": secret,
            "secrets": {"type": "array", "items": secret},
            "tolerance": duration,
            "dedupe": {"type": ["string", "boolean"], "description": "a duration, or `off`"},
            "source": s,
            "url": s,
            "header": s,
            "algorithm": {"enum": ["sha1", "sha256", "sha512"]},
            "encoding": {"enum": ["hex", "base64"]},
            "prefix": s,
            "timestamp_header": s,
            "signed_content": s,
            "id_header": s,
            "username": s,
            "peer": s,
            "validation": validation,
        })),
        "Function": open("A function of the function host, as `functions[]` of the configuration holds it (docs/functions.md)", json!({
            "name": {"type": "string", "description": "defaults to the URL's"},
            "command": s,
            "args": strings,
            "env": string_map,
            "workdir": s,
            "handler": s,
            "memory": {"type": "integer", "minimum": 128, "maximum": 10240},
            "timeout": duration,
            "min_instances": {"type": "integer", "minimum": 0},
            "max_instances": {"type": "integer", "minimum": 1},
            "queue_timeout": duration,
            "idle_timeout": duration,
        })),
    });
    let Value::Object(more) = more else {
        unreachable!()
    };
    schemas.extend(more);
    let more = json!({
        "ConfigDocument": open("A configuration document (the file's shape); sections other than these are ignored (listed in `ignored`)", json!({
            "buses": {"type": "array", "items": schema_ref("Bus")},
            "rules": {"type": "array", "items": schema_ref("Rule")},
            "sources": {"type": "array", "items": schema_ref("Source")},
            "functions": {"type": "array", "items": schema_ref("Function")},
        })),
        "Pattern": {"type": "object", "description": "An EventBridge-style event pattern (docs/patterns.md)", "additionalProperties": true},
        "BusStats": closed(&["bus", "by", "window", "minutes", "totals"], json!({
            "bus": {"type": "string"},
            "by": {"enum": ["type", "source"]},
            "window": {"type": "string"},
            "minutes": {"type": "array", "items": closed(&["minute", "all", "matched", "counts"], json!({
                "minute": {"type": "string", "description": "the minute's start, RFC 3339"},
                "all": {"type": "integer"},
                "matched": {"type": "integer", "description": "events some rule matched"},
                "counts": {"type": "object", "additionalProperties": {"type": "integer"}},
            }))},
            "totals": closed(&["all", "matched", "counts"], json!({
                "all": {"type": "integer"},
                "matched": {"type": "integer"},
                "counts": {"type": "object", "additionalProperties": {"type": "integer"}},
            })),
        })),
        "EventPage": closed(&["events", "next", "scanned"], json!({
            "events": {"type": "array", "items": closed(&["entry", "event"], json!({
                "entry": {"type": "string", "description": "the bus stream entry id"},
                "event": {"type": "object", "description": "the event in the CloudEvents JSON format"},
            }))},
            "next": {"type": ["string", "null"], "description": "the `cursor` of the next page; null once the window is scanned to its end"},
            "scanned": {"type": "integer", "minimum": 0, "description": "entries this request read (at most `budget`)"},
        })),
        "EventTrace": closed(&["bus", "id", "traced", "entry", "event", "trace", "truncated", "outcomes"], json!({
            "bus": {"type": "string"},
            "id": {"type": "string"},
            "traced": {"type": "boolean", "description": "false: the bus is not traced or the trace expired; `event` was found by a search"},
            "entry": {"type": ["string", "null"], "description": "the bus entry id of the retained copy"},
            "event": {"type": ["object", "null"], "description": "the event in the CloudEvents JSON format, while retained"},
            "trace": {"type": "array", "items": {"type": "object", "required": ["stage", "at"], "properties": {
                "stage": {"enum": ["received", "routed", "unmatched", "attempt", "redriven"]},
                "at": {"type": ["integer", "null"], "description": "ms since the epoch"},
            }}},
            "truncated": {"type": "boolean", "description": "the trace has more than 1,000 records: the newest are shown"},
            "outcomes": {"type": "object", "description": "per `RULE/TARGET`: pending, retrying, delivered, dead_lettered, redriven, forwarded or skipped", "additionalProperties": {"type": "string"}},
        })),
        "Transform": {"description": "A target's `transform` (docs/transforms.md): an object such as `{form: TEMPLATE, template: ...}` or the AWS `InputPath`/`Input`/`InputTransformer` shapes"},
        "TransformMode": {"enum": ["binary", "structured"], "description": "how the event is delivered (default `structured`)"},
        "CloudEvent": {
            "type": "object",
            "description": "A CloudEvent in the JSON format",
            "required": ["specversion", "id", "source", "type"],
            "properties": {
                "specversion": {"const": "1.0"},
                "id": {"type": "string", "minLength": 1},
                "source": {"type": "string", "minLength": 1},
                "type": {"type": "string", "minLength": 1},
                "subject": s,
                "time": {"type": "string", "format": "date-time"},
                "datacontenttype": s,
                "dataschema": s,
                "data": {},
                "data_base64": s,
            },
            "patternProperties": {"^[a-z0-9]{1,20}$": {"type": ["string", "integer", "boolean"]}},
            "additionalProperties": false,
        },
    });
    let Value::Object(more) = more else {
        unreachable!()
    };
    schemas.extend(more);
    let more = json!({
        "BusView": view("bus", "Bus"),
        "RuleView": view("rule", "Rule"),
        "SourceView": view("source", "Source"),
        "FunctionView": view("function", "Function"),
        "BusList": page_of("BusView"),
        "RuleList": page_of("RuleView"),
        "SourceList": page_of("SourceView"),
        "FunctionList": page_of("FunctionView"),
        "TargetList": closed(&["items", "next"], json!({
            "items": {"type": "array", "items": closed(&["bus", "rule", "target", "kind", "origin", "paused"], json!({
                "bus": s, "rule": s, "target": s, "kind": s,
                "origin": {"enum": ["file", "api", null]},
                "paused": {"description": "set while the target is paused because it answered 410 Gone", "oneOf": [
                    {"type": "null"},
                    closed(&["reason", "since_ms", "event"], json!({
                        "reason": {"enum": ["gone"]},
                        "since_ms": {"type": ["integer", "null"]},
                        "event": {"type": ["string", "null"]},
                    })),
                ]},
            }))},
            "next": {"type": "null", "description": "one page holds every target"},
        })),
        "Resumed": closed(&["resumed"], json!({"resumed": {"type": "boolean"}})),
    });
    let Value::Object(more) = more else {
        unreachable!()
    };
    schemas.extend(more);
    let more = json!({
        "ApplyResult": closed(&["dry_run", "revision", "changes", "ignored"], json!({
            "dry_run": {"type": "boolean"},
            "revision": {"type": ["integer", "null"], "description": "the store's revision written; null for a dry run or when nothing changed"},
            "changes": {"type": "array", "items": closed(&["kind", "id", "action", "before", "after"], json!({
                "kind": {"enum": ["bus", "rule", "source", "function"]},
                "id": s,
                "action": {"enum": ["create", "update", "unchanged", "delete"]},
                "before": {"type": ["object", "null"]},
                "after": {"type": ["object", "null"]},
            }))},
            "ignored": {"type": "array", "items": s, "description": "the document's sections that are not resources"},
        })),
        "AuditPage": closed(&["items", "next"], json!({
            "items": {"type": "array", "items": {
                "type": "object",
                "required": ["id"],
                "properties": {
                    "id": {"type": "string", "description": "the entry id, for `after`"},
                    "actor": s, "action": s, "kind": s, "name": s,
                    "old_version": s, "new_version": s, "time": s,
                },
                "additionalProperties": {"type": "string"},
            }},
            "next": {"type": ["string", "null"]},
        })),
        "PatternResult": closed(&["match"], json!({"match": {"type": "boolean"}})),
        "TransformResult": closed(&["content_type"], json!({
            "content_type": s,
            "body": {"description": "the body: JSON when it is JSON, else a string"},
            "body_base64": {"type": "string", "description": "instead of `body`, for bytes that are not UTF-8"},
        })),
    });
    let Value::Object(more) = more else {
        unreachable!()
    };
    schemas.extend(more);
    let more = json!({
        "DlqIndex": closed(&["dlqs"], json!({
            "dlqs": {"type": "array", "items": closed(&["bus", "rule", "target", "depth"], json!({
                "bus": s, "rule": s, "target": s, "depth": {"type": "integer", "minimum": 0},
            }))},
        })),
        "DlqPage": closed(&["depth", "entries", "next"], json!({
            "depth": {"type": "integer", "minimum": 0},
            "entries": {"type": "array", "items": closed(&dlq_keys, dlq_summary)},
            "next": opt_str,
        })),
        "DlqEntry": closed(&dlq_entry_keys, dlq_entry),
        "DlqSelection": {
            "type": "object",
            "description": "`{}`: every entry; `ids`: those entries; `pattern`: the entries whose event matches",
            "properties": {
                "ids": {"type": "array", "minItems": 1, "items": {"type": "string", "pattern": "^[0-9]+-[0-9]+$"}},
                "pattern": schema_ref("Pattern"),
            },
            "maxProperties": 1,
            "additionalProperties": false,
        },
        "Redriven": closed(&["redriven", "not_found"], json!({"redriven": {"type": "integer", "minimum": 0}, "not_found": strings})),
        "Purged": closed(&["purged", "not_found"], json!({"purged": {"type": "integer", "minimum": 0}, "not_found": strings})),
    });
    let Value::Object(more) = more else {
        unreachable!()
    };
    schemas.extend(more);
    let more = json!({
        "Compatibility": {"enum": ["backward", "backward_transitive", "forward", "forward_transitive", "full", "full_transitive", "none"]},
        "SchemaSummary": closed(&["name", "origin", "compatibility", "versions", "latest"], summary_fields(json!({"type": "integer", "minimum": 0}))),
        "SchemaIndex": closed(&["schemas"], json!({"schemas": {"type": "array", "items": schema_ref("SchemaSummary")}})),
        "SchemaVersions": closed(&["name", "origin", "compatibility", "versions", "latest"], summary_fields(json!({"type": "array", "items": {"type": "integer"}}))),
    });
    let Value::Object(more) = more else {
        unreachable!()
    };
    schemas.extend(more);
    let more = json!({
        "SchemaVersion": closed(&["name", "version", "format", "origin", "urn", "schema", "compatibility"], json!({
            "name": s,
            "version": {"type": "integer", "minimum": 1},
            "format": {"enum": ["jsonschema", "openapi"]},
            "origin": {"enum": ["config", "api", "discovered"]},
            "urn": s,
            "schema": {"type": ["object", "boolean"], "description": "the JSON Schema"},
            "dataschema": s,
            "component": s,
            "document": {"type": "object", "description": "format openapi: the document"},
            "compatibility": schema_ref("Compatibility"),
        })),
        "SchemaRegistration": closed(&["schema"], json!({
            "schema": {"type": ["object", "boolean"], "description": "the JSON Schema, or the OpenAPI document"},
            "format": {"enum": ["jsonschema", "openapi"]},
            "component": {"type": ["string", "null"], "description": "format openapi: the `components/schemas` entry of the data"},
            "dataschema": opt_str,
            "compatibility": {"anyOf": [schema_ref("Compatibility"), {"type": "null"}], "description": "for a new name only (default backward)"},
        })),
        "SchemaRegistered": closed(&["name", "version", "created", "urn"], json!({
            "name": s, "version": {"type": "integer", "minimum": 1}, "created": {"type": "boolean"}, "urn": s,
        })),
        "SchemaConflict": closed(&["error", "message"], json!({
            "error": {"enum": ["incompatible_schema", "concurrent_registration"]},
            "message": s,
            "field": s,
            "compatibility": schema_ref("Compatibility"),
            "reasons": strings,
        })),
        "OpenApiDocument": {"type": "object", "required": ["openapi", "info", "paths"], "description": "an OpenAPI 3.1 document"},
    });
    let Value::Object(more) = more else {
        unreachable!()
    };
    schemas.extend(more);
    // Examples: the resources tests/openapi.rs creates before schemathesis runs.
    let examples = json!({
        "Bus": {"name": "orders", "retention": "7d"},
        "Rule": {"name": "paid", "bus": "orders", "pattern": {"type": ["order.paid"]},
                 "targets": [{"name": "hook", "kind": "http", "url": "http://127.0.0.1:9/hook"}]},
        "Source": {"name": "orders-hook", "kind": "token", "bus": "orders", "secret": "s3cret"},
        "Function": {"name": "echo", "command": "true"},
        "Pattern": {"type": ["order.paid"]},
        "CloudEvent": {"specversion": "1.0", "id": "1", "source": "/shop", "type": "order.paid", "data": {"total": 120}},
    });
    for (name, example) in examples.as_object().into_iter().flatten() {
        if let Some(schema) = schemas.get_mut(name) {
            schema["examples"] = json!([example]);
        }
    }
    schemas
}

/// Component schemas that derived request structs name by type (`value_type`); the
/// document carries their full text from [`component_schemas`].
macro_rules! named_schema {
    ($($name:ident),*) => {$(
        pub struct $name;
        impl utoipa::PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                let text = component_schemas().remove(stringify!($name)).unwrap_or_default();
                serde_json::from_value(text).unwrap_or_else(|_| RefOr::T(Schema::default()))
            }
        }
        impl utoipa::ToSchema for $name {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed(stringify!($name))
            }
        }
    )*};
}

named_schema!(
    ConfigDocument,
    Pattern,
    CloudEvent,
    Transform,
    TransformMode
);

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `$ref` of the document names a component.
    #[test]
    fn every_reference_resolves() {
        fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
            match v {
                Value::Object(m) => {
                    if let Some(Value::String(r)) = m.get("$ref") {
                        out.push(r);
                    }
                    m.values().for_each(|v| refs(v, out));
                }
                Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
                _ => {}
            }
        }
        let doc = document();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
        let mut found = Vec::new();
        refs(&doc, &mut found);
        assert!(!found.is_empty());
        for r in found {
            let name = r
                .strip_prefix("#/components/schemas/")
                .unwrap_or_else(|| panic!("{r}"));
            assert!(
                doc["components"]["schemas"].get(name).is_some(),
                "{r} does not resolve"
            );
        }
    }
}
