//! The `aws-lambda` target: `Invoke` through the AWS SDK, so the same function runs on
//! AWS Lambda (or anything speaking its Invoke API, such as Sluice's own, see
//! [`crate::functions::invoke_api`]).
//!
//! Credentials, region and endpoint come from the AWS SDK's default chain (environment,
//! profile, SSO, container and instance roles), with the target's `region` and
//! `endpoint` taking precedence; the client is built on the first delivery. The
//! payload is the same as the `function` target's. `RequestResponse` (default) waits
//! for the result, which becomes the delivery's output (for `on_success`); a result
//! with `X-Amz-Function-Error` is a failure. `Event` succeeds once Lambda queued it.
//! The SDK's own retries are off: attempts are the target's `retry` policy's.
//! Failures are retryable, except the answers no retry can change (the function does
//! not exist, the request is invalid or too large).

use std::time::Duration;

use aws_sdk_lambda::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType as SdkInvocationType;
use bytes::Bytes;
use tokio::sync::OnceCell;

use super::function::payload;
use super::{Delivered, DeliveryError};
use serde::Deserialize;

use super::BuildContext;
use crate::config::{Errors, OnSuccessConfig};
use crate::event::Event;
use crate::rules::transform::{Context, Transform};

/// Error codes of Invoke that a retry cannot change.
const PERMANENT: &[&str] = &[
    "ResourceNotFoundException",
    "InvalidParameterValueException",
    "InvalidRequestContentException",
    "RequestTooLargeException",
    "UnsupportedMediaTypeException",
];

/// The fields of `aws-lambda` targets.
#[derive(Debug, Clone, Deserialize)]
pub struct AwsLambdaConfig {
    /// The function name or ARN.
    #[serde(default)]
    pub function: Option<String>,
    /// The AWS region (default from the AWS environment, `AWS_REGION` or the profile).
    #[serde(default)]
    pub region: Option<String>,
    /// The Invoke API endpoint, overriding the region's (a local emulator, Sluice's own
    /// Invoke API).
    #[serde(default)]
    pub endpoint: Option<String>,
    /// `RequestResponse` (default: wait for the result) or `Event` (queued by Lambda;
    /// success means accepted).
    #[serde(default)]
    pub invocation_type: Option<InvocationType>,
    /// The version or alias to invoke.
    #[serde(default)]
    pub qualifier: Option<String>,
    /// Append the function's JSON result to a bus (function chaining).
    #[serde(default)]
    pub on_success: Option<OnSuccessConfig>,
}

/// `invocation_type:` of an `aws-lambda` target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum InvocationType {
    #[default]
    RequestResponse,
    Event,
}

/// An `aws-lambda` target as the plan built it.
#[derive(Debug)]
pub struct AwsLambdaSpec {
    config: AwsLambdaConfig,
    function: String,
    transform: Option<Transform>,
}

impl AwsLambdaConfig {
    pub fn build(
        &self,
        transform: Option<Transform>,
        cx: &BuildContext<'_>,
        at: &str,
        errors: &mut Errors,
    ) -> Option<AwsLambdaSpec> {
        let Some(function) = self.function.as_deref() else {
            errors.at(
                format!("{at}.function"),
                "a aws-lambda target needs a function",
            );
            return None;
        };
        if function.is_empty() {
            errors.at(format!("{at}.function"), "must not be empty");
        }
        if let Some(u) = &self.endpoint {
            match url::Url::parse(u) {
                Ok(u) if u.scheme() == "http" || u.scheme() == "https" => {}
                _ => errors.at(
                    format!("{at}.endpoint"),
                    format!("{u:?} is not an http(s) URL"),
                ),
            }
        }
        let event = self.invocation_type == Some(InvocationType::Event);
        super::function::check_on_success(self.on_success.as_ref(), event, cx, at, errors);
        Some(AwsLambdaSpec {
            config: self.clone(),
            function: function.to_string(),
            transform,
        })
    }
}

#[derive(Debug)]
pub struct AwsLambdaTarget {
    function: String,
    qualifier: Option<String>,
    invocation_type: InvocationType,
    region: Option<String>,
    endpoint_url: Option<String>,
    timeout: Duration,
    transform: Option<Transform>,
    client: OnceCell<aws_sdk_lambda::Client>,
}

impl AwsLambdaTarget {
    pub fn new(spec: AwsLambdaSpec, timeout: Duration) -> AwsLambdaTarget {
        let AwsLambdaSpec {
            config,
            function,
            transform,
        } = spec;
        AwsLambdaTarget {
            function,
            qualifier: config.qualifier,
            invocation_type: config.invocation_type.unwrap_or_default(),
            region: config.region,
            endpoint_url: config.endpoint,
            timeout,
            transform,
            client: OnceCell::new(),
        }
    }

    pub fn transform(&self) -> Option<&Transform> {
        self.transform.as_ref()
    }

    async fn client(&self) -> &aws_sdk_lambda::Client {
        self.client
            .get_or_init(|| async {
                let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
                if let Some(region) = &self.region {
                    loader = loader.region(aws_config::Region::new(region.clone()));
                }
                if let Some(url) = &self.endpoint_url {
                    loader = loader.endpoint_url(url);
                }
                let sdk = loader.load().await;
                let config = aws_sdk_lambda::config::Builder::from(&sdk)
                    .retry_config(aws_config::retry::RetryConfig::disabled())
                    .build();
                aws_sdk_lambda::Client::from_conf(config)
            })
            .await
    }

    pub async fn deliver(
        &self,
        event: &Event,
        ctx: &Context<'_>,
    ) -> Result<Delivered, DeliveryError> {
        let body = payload(self.transform.as_ref(), event, ctx);
        let invocation_type = match self.invocation_type {
            InvocationType::RequestResponse => SdkInvocationType::RequestResponse,
            InvocationType::Event => SdkInvocationType::Event,
        };
        let request = self
            .client()
            .await
            .invoke()
            .function_name(&self.function)
            .set_qualifier(self.qualifier.clone())
            .invocation_type(invocation_type)
            .payload(Blob::new(body.to_vec()))
            .send();
        let output = match tokio::time::timeout(self.timeout, request).await {
            Err(_) => return Err(DeliveryError::Timeout(self.timeout)),
            Ok(Err(e)) => {
                let retryable = !e.code().is_some_and(|c| PERMANENT.contains(&c));
                return Err(DeliveryError::Failed {
                    message: format!("Invoke {}: {}", self.function, DisplayErrorContext(&e)),
                    retryable,
                });
            }
            Ok(Ok(output)) => output,
        };
        let result = output.payload().map(|b| Bytes::copy_from_slice(b.as_ref()));
        if let Some(kind) = output.function_error() {
            let detail = result
                .as_deref()
                .map(String::from_utf8_lossy)
                .unwrap_or_default();
            return Err(DeliveryError::Failed {
                message: format!("function error ({kind}) from {}: {detail}", self.function),
                retryable: true,
            });
        }
        Ok(Delivered {
            status: u16::try_from(output.status_code()).ok(),
            output: match self.invocation_type {
                InvocationType::RequestResponse => Some(result.unwrap_or_default()),
                InvocationType::Event => None,
            },
        })
    }
}
