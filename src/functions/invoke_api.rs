//! The AWS Lambda Invoke API for the hosted functions, on the main listener:
//! `POST /2015-03-31/functions/{name}/invocations`, so `aws lambda invoke
//! --endpoint-url` and the AWS SDKs (and Sluice's own `aws-lambda` target) can call
//! them directly.
//!
//! Answers as Lambda does: `X-Amz-Invocation-Type` `RequestResponse` (default) gives
//! 200 with the function's result, or 200 with `X-Amz-Function-Error: Unhandled` and
//! the `{"errorType", "errorMessage"}` body when the function failed (an error it
//! answered, a timeout, a crash); `Event` gives 202 and runs the invocation in the
//! background (held in memory only: lost if this replica stops first); `DryRun` gives
//! 204. An unknown function is 404 `ResourceNotFoundException`, a full queue 429
//! `TooManyRequestsException`. The name may be a plain name, `name:qualifier`, or a
//! (partial) function ARN. With `aws:` access keys configured (`auth: sigv4`),
//! requests must carry a SigV4 signature for service `lambda`.

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;
use serde_json::json;
use tokio::sync::Semaphore;
use tracing::{debug, warn};

use super::{FunctionHost, InvokeError, MAX_PAYLOAD};
use crate::compat::aws::sigv4::{SigV4, SignedRequest};

/// Event (asynchronous) invocations held at once; beyond, 429.
const MAX_EVENT_INVOCATIONS: usize = 1024;

/// What the Invoke API handler needs.
pub struct InvokeApi {
    pub host: Arc<FunctionHost>,
    /// SigV4 verification (service `lambda`), when `aws:` requires it.
    pub verifier: Option<SigV4>,
    events: Arc<Semaphore>,
}

impl InvokeApi {
    /// The Invoke API of `host`, verifying signatures as `aws:` says (none without it).
    /// `keys`: `aws.access_keys`, resolved.
    pub fn new(
        host: Arc<FunctionHost>,
        aws: Option<&crate::compat::aws::AwsConfig>,
        keys: &[(String, Vec<u8>)],
    ) -> InvokeApi {
        let verifier = aws
            .filter(|a| a.auth == crate::compat::aws::AwsAuth::Sigv4)
            .map(|a| {
                SigV4::new(
                    "lambda",
                    a.region.clone(),
                    keys.iter().cloned(),
                    a.max_clock_skew
                        .unwrap_or(std::time::Duration::from_secs(15 * 60)),
                )
            });
        InvokeApi {
            host,
            verifier,
            events: Arc::new(Semaphore::new(MAX_EVENT_INVOCATIONS)),
        }
    }
}

/// Registers the route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/2015-03-31/functions/{name}/invocations")
            .app_data(web::PayloadConfig::new(MAX_PAYLOAD))
            .route(web::post().to(invoke)),
    );
}

/// A Lambda-shaped error answer.
fn lambda_error(status: StatusCode, code: &str, message: &str) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("application/json")
        .insert_header(("x-amzn-ErrorType", code))
        .insert_header(("x-amzn-RequestId", uuid::Uuid::new_v4().to_string()))
        .body(json!({"Type": "User", "message": message}).to_string())
}

/// The function name of a name, `name:qualifier`, or (partial) ARN.
pub fn function_name(raw: &str) -> &str {
    let rest = match raw.find("function:") {
        Some(i) => &raw[i + "function:".len()..],
        None => raw,
    };
    rest.split(':').next().unwrap_or(rest)
}

async fn invoke(
    req: HttpRequest,
    body: web::Bytes,
    live: Option<web::Data<crate::live::Live<InvokeApi>>>,
) -> HttpResponse {
    let raw_name = req.match_info().get("name").unwrap_or_default().to_string();
    let Some(api) = live.map(|l| l.get()) else {
        return lambda_error(
            StatusCode::NOT_FOUND,
            "ResourceNotFoundException",
            &format!("Function not found: {raw_name}"),
        );
    };
    if let Some(verifier) = &api.verifier {
        let verified = verifier.verify(&SignedRequest {
            method: req.method().as_str(),
            path: req.path(),
            query: req.query_string(),
            headers: req.headers(),
            body: &body,
            now: chrono::Utc::now(),
        });
        if let Err(e) = verified {
            warn!(code = e.code(), reason = %e.message(), "Invoke request refused");
            return lambda_error(StatusCode::FORBIDDEN, e.code(), &e.message());
        }
    }
    let name = function_name(&raw_name);
    let Some(function) = api.host.get(name).cloned() else {
        return lambda_error(
            StatusCode::NOT_FOUND,
            "ResourceNotFoundException",
            &format!("Function not found: {raw_name}"),
        );
    };
    let payload = if body.iter().all(u8::is_ascii_whitespace) {
        Bytes::from_static(b"{}")
    } else if serde_json::from_slice::<serde::de::IgnoredAny>(&body).is_err() {
        return lambda_error(
            StatusCode::BAD_REQUEST,
            "InvalidRequestContentException",
            "Could not parse request body into json: the payload must be JSON",
        );
    } else {
        body
    };
    let kind = req
        .headers()
        .get("x-amz-invocation-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("RequestResponse");
    match kind {
        "RequestResponse" => {}
        "DryRun" => return HttpResponse::NoContent().finish(),
        "Event" => {
            let Ok(permit) = api.events.clone().try_acquire_owned() else {
                return lambda_error(
                    StatusCode::TOO_MANY_REQUESTS,
                    "TooManyRequestsException",
                    "Rate Exceeded.",
                );
            };
            let name = name.to_string();
            tokio::spawn(async move {
                if let Err(e) = function.invoke(payload).await {
                    warn!(function = %name, error = %e, "asynchronous invocation failed");
                }
                drop(permit);
            });
            return HttpResponse::Accepted()
                .insert_header(("x-amzn-RequestId", uuid::Uuid::new_v4().to_string()))
                .finish();
        }
        other => {
            return lambda_error(
                StatusCode::BAD_REQUEST,
                "InvalidParameterValueException",
                &format!(
                    "X-Amz-Invocation-Type {other:?}: expected RequestResponse, Event or DryRun"
                ),
            )
        }
    }
    let outcome = function.invoke(payload).await;
    let mut response = HttpResponse::Ok();
    response
        .content_type("application/json")
        .insert_header(("x-amzn-RequestId", uuid::Uuid::new_v4().to_string()))
        .insert_header(("X-Amz-Executed-Version", "$LATEST"));
    match outcome {
        Ok(result) => response.body(result),
        Err(InvokeError::Throttled(_)) => lambda_error(
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequestsException",
            "Rate Exceeded.",
        ),
        Err(InvokeError::ShuttingDown) => lambda_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceException",
            "the function host is shutting down",
        ),
        Err(e) => {
            debug!(function = %name, error = %e, "invocation failed");
            response
                .insert_header(("X-Amz-Function-Error", "Unhandled"))
                .body(e.body())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::function_name;

    #[test]
    fn names_qualifiers_and_arns() {
        assert_eq!(function_name("echo"), "echo");
        assert_eq!(function_name("echo:$LATEST"), "echo");
        assert_eq!(
            function_name("arn:aws:lambda:us-east-1:000000000000:function:echo"),
            "echo"
        );
        assert_eq!(
            function_name("arn:aws:lambda:us-east-1:000000000000:function:echo:prod"),
            "echo"
        );
        assert_eq!(function_name("000000000000:function:echo"), "echo");
    }
}
