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

use super::{Delivered, DeliveryError};
use crate::config::TargetConfig;
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

/// Compiles a target's transform (`ORIGINAL` is none).
pub fn compile_transform(config: &TargetConfig) -> anyhow::Result<Option<Transform>> {
    Ok(match &config.transform {
        None => None,
        Some(t) => match Transform::compile(t) {
            Ok(Transform::Original) => None,
            Ok(t) => Some(t),
            Err(e) => anyhow::bail!("transform{}: {}", e.path, e.message),
        },
    })
}

impl FunctionTarget {
    pub fn new(config: &TargetConfig, host: &FunctionHost) -> anyhow::Result<FunctionTarget> {
        let name = config.function.as_deref().unwrap_or_default();
        let function = host
            .get(name)
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("no function named {name:?} in functions"))?;
        Ok(FunctionTarget {
            function,
            transform: compile_transform(config)?,
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
