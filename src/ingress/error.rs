//! The one place where ingress errors become HTTP answers: status + JSON body.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::event::cloudevents::FieldError;

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
}

impl ApiError {
    pub fn new(status: StatusCode, error: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            error,
            message: message.into(),
            field: None,
            errors: Vec::new(),
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
