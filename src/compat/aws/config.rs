//! The `aws:` section: the AWS EventBridge PutEvents-compatible endpoint.

use std::time::Duration;

use serde::Deserialize;

use crate::config::opt_duration;
use crate::config::AccessKeyConfig;

/// `aws:` the AWS EventBridge PutEvents-compatible endpoint.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsConfig {
    /// `sigv4` (default): requests must carry an AWS Signature Version 4 made with one
    /// of `access_keys`; `none`: no authentication (a trusted network only).
    #[serde(default)]
    pub auth: AwsAuth,
    /// The access keys accepted with `auth: sigv4`.
    #[serde(default)]
    pub access_keys: Vec<AccessKeyConfig>,
    /// The region requests are signed for (credential scope) and that bus ARNs name.
    /// Default `us-east-1`.
    #[serde(default = "default_aws_region")]
    pub region: String,
    /// The 12-digit account id bus ARNs must name, and the `awsaccount` extension.
    #[serde(default)]
    pub account: Option<String>,
    /// The bus of entries without `EventBusName` (AWS: `default`). Default `default`.
    #[serde(default)]
    pub default_bus: Option<String>,
    /// Accepted difference between `X-Amz-Date` and the clock. Default 15m, as AWS;
    /// at most 1h.
    #[serde(default, deserialize_with = "opt_duration")]
    pub max_clock_skew: Option<Duration>,
    /// Schema validation of events arriving here; overrides their bus's `validation`.
    #[serde(default)]
    pub validation: Option<crate::schema::ValidationMode>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AwsAuth {
    #[default]
    Sigv4,
    None,
}

impl AwsConfig {
    /// The bus of entries without `EventBusName`.
    pub fn default_bus(&self) -> &str {
        self.default_bus.as_deref().unwrap_or("default")
    }
}

fn default_aws_region() -> String {
    "us-east-1".into()
}
