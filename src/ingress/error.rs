//! The one place where ingress errors become HTTP answers: status + JSON body.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::event::cloudevents::FieldError;
use crate::schema::gate::Rejected;

/// An error answer: `{"error": code, "message": ..., "field": ..., "errors": [...]}`.
#[derive(Debug, Serialize, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    #[serde(skip)]
    pub status: StatusCode,
    /// Machine-readable code, e.g. `invalid_event`.
    pub error: &'static str,
    pub message: String,
    /// The attribute or parameter at fault, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Every problem found (for a batch: each with its entry index).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// Every schema violation of every refused event (`error: schema_violation`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub violations: Vec<SchemaViolation>,
}

/// One way one event's data breaks its schema.
#[derive(Debug, Serialize)]
pub struct SchemaViolation {
    /// Index of the event in a batch; absent for a single event.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<usize>,
    pub id: String,
    pub schema: String,
    pub version: u32,
    /// JSON pointer into the event's data.
    pub instance_path: String,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, error: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            error,
            message: message.into(),
            field: None,
            errors: Vec::new(),
            violations: Vec::new(),
        }
    }

    pub fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// 400 for one or more invalid events; `field` is the first one's.
    pub fn invalid(errors: Vec<FieldError>) -> Self {
        let first = &errors[0];
        let place = match first.index {
            Some(i) => format!("event {i}: "),
            None => String::new(),
        };
        let message = if first.field.is_empty() {
            format!("{place}{}", first.message)
        } else {
            format!("{place}{}: {}", first.field, first.message)
        };
        let mut e = ApiError::new(StatusCode::BAD_REQUEST, "invalid_event", message);
        e.field = Some(first.field.clone()).filter(|f| !f.is_empty());
        e.errors = errors;
        e
    }
}

impl ApiError {
    /// 400 for events refused by their schema: (batch index, event id, why) each.
    pub fn schema(rejected: Vec<(Option<usize>, String, Rejected)>) -> Self {
        let mut violations = Vec::new();
        for (index, id, r) in rejected {
            for v in r.violations {
                violations.push(SchemaViolation {
                    index,
                    id: id.clone(),
                    schema: r.schema.clone(),
                    version: r.version,
                    instance_path: v.instance_path,
                    message: v.message,
                });
            }
        }
        let first = &violations[0];
        let message = format!(
            "{}data{}: {} (schema {} version {}){}",
            first
                .index
                .map(|i| format!("event {i}: "))
                .unwrap_or_default(),
            first.instance_path,
            first.message,
            first.schema,
            first.version,
            match violations.len() {
                1 => String::new(),
                n => format!("; {} more violation(s) in `violations`", n - 1),
            }
        );
        let mut e = ApiError::new(StatusCode::BAD_REQUEST, "schema_violation", message);
        e.field = Some("data".into());
        e.violations = violations;
        e
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response.insert_header(("Retry-After", "1"));
        }
        response.json(self)
    }
}
