//! The `function` target: invokes a function of Sluice's own function host (see
//! [`crate::functions`]) with the event, and reports its result as the delivery's
//! output (which `on_success` chains onto a bus).
//!
//! The payload is the event in the CloudEvents JSON format (the data embedded as JSON
//! when it is JSON), or the output of the target's `transform`. Every failure (an error
//! the function answered, a timeout, a crash, no instance free, the function unable to
//! start) is a retryable failure: the target's retry policy and DLQ apply.

use std::sync::Arc;

use bytes::Bytes;
use serde::Deserialize;

use super::{BuildContext, Delivered, DeliveryError};
use crate::config::{Errors, OnSuccessConfig};
use crate::event::Event;
use crate::functions::{Function, FunctionHost, InvokeError};
use crate::rules::transform::{Context, Document, Transform};

#[derive(Debug)]
pub struct FunctionTarget {
    function: Arc<Function>,
    transform: Option<Transform>,
}

/// The Lambda payload of `event`: the transform's output, or the structured event.
/// Lambda payloads are JSON: a transform's text output goes as a JSON string.
pub fn payload(transform: Option<&Transform>, event: &Event, ctx: &Context<'_>) -> Bytes {
    match transform.and_then(|t| t.apply(&Document::new(event), ctx)) {
        Some(p) if serde_json::from_slice::<serde::de::IgnoredAny>(&p.body).is_ok() => p.body,
        Some(p) => Bytes::from(
            serde_json::to_vec(&String::from_utf8_lossy(&p.body)).expect("a string serialises"),
        ),
        None => Bytes::from(event.to_structured_json()),
    }
}

/// The transform's output for `event`, if the target has a transform.
pub fn transformed(
    transform: Option<&Transform>,
    event: &Event,
    ctx: &Context<'_>,
) -> Option<crate::rules::transform::Payload> {
    transform.and_then(|t| t.apply(&Document::new(event), ctx))
}

/// The fields of `function` targets.
#[derive(Debug, Clone, Deserialize)]
pub struct FunctionTargetConfig {
    /// The name of a function in `functions:`.
    #[serde(default)]
    pub function: Option<String>,
    /// Append the function's JSON result to a bus as a new CloudEvent before the
    /// delivery counts as done (function chaining).
    #[serde(default)]
    pub on_success: Option<OnSuccessConfig>,
}

/// A `function` target as the plan built it.
#[derive(Debug)]
pub struct FunctionSpec {
    pub function: String,
    pub transform: Option<Transform>,
}

impl FunctionTargetConfig {
    pub fn build(
        &self,
        transform: Option<Transform>,
        cx: &BuildContext<'_>,
        at: &str,
        errors: &mut Errors,
    ) -> Option<FunctionSpec> {
        let Some(function) = self.function.as_deref() else {
            errors.at(
                format!("{at}.function"),
                "a function target needs a function",
            );
            return None;
        };
        match cx.functions.iter().find(|f| f.name == function) {
            None => errors.at(
                format!("{at}.function"),
                format!("no function named {function:?} in functions"),
            ),
            Some(f) => {
                // The dispatcher holds the entry through the queue wait and the run: a
                // shorter claim_idle would hand it to another replica mid-invocation.
                let longest = f.queue_timeout + f.timeout + std::time::Duration::from_secs(1);
                if cx.delivery.claim_idle <= longest {
                    errors.at(
                        format!("{at}.function"),
                        format!(
                            "delivery.claim_idle ({:?}) must exceed the function's queue_timeout + timeout + 1s ({longest:?})",
                            cx.delivery.claim_idle
                        ),
                    );
                }
            }
        }
        check_on_success(self.on_success.as_ref(), false, cx, at, errors);
        Some(FunctionSpec {
            function: function.to_string(),
            transform,
        })
    }
}

/// Checks `on_success` of a `function` or `aws-lambda` target; `event_invocation`: the
/// target invokes without waiting for a result.
pub fn check_on_success(
    on_success: Option<&OnSuccessConfig>,
    event_invocation: bool,
    cx: &BuildContext<'_>,
    at: &str,
    errors: &mut Errors,
) {
    let Some(on_success) = on_success else {
        return;
    };
    if !cx.buses.contains(on_success.bus.as_str()) {
        errors.at(
            format!("{at}.on_success.bus"),
            format!("no bus named {:?} in buses", on_success.bus),
        );
    }
    if event_invocation {
        errors.at(
            format!("{at}.on_success"),
            "an Event invocation has no result to chain; use RequestResponse",
        );
    }
    for (field, value) in [("source", &on_success.source), ("type", &on_success.ty)] {
        if value.as_deref().is_some_and(str::is_empty) {
            errors.at(format!("{at}.on_success.{field}"), "must not be empty");
        }
    }
}

impl FunctionTarget {
    pub fn new(spec: FunctionSpec, host: &FunctionHost) -> anyhow::Result<FunctionTarget> {
        let name = spec.function;
        let function = host
            .get(&name)
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("no function named {name:?} in functions"))?;
        Ok(FunctionTarget {
            function,
            transform: spec.transform,
        })
    }

    pub fn transform(&self) -> Option<&Transform> {
        self.transform.as_ref()
    }

    pub fn function_name(&self) -> &str {
        self.function.name()
    }

    pub async fn deliver(
        &self,
        event: &Event,
        ctx: &Context<'_>,
    ) -> Result<Delivered, DeliveryError> {
        let payload = payload(self.transform.as_ref(), event, ctx);
        match self.function.invoke(payload).await {
            Ok(output) => Ok(Delivered {
                status: None,
                output: Some(output),
            }),
            Err(e) => Err(DeliveryError::Failed {
                message: format!("function {}: {e}", self.function.name()),
                retryable: !matches!(e, InvokeError::Unknown(_)),
            }),
        }
    }
}
