//! The `alibaba:` section: the Alibaba Cloud EventBridge PutEvents-compatible endpoint.

use std::time::Duration;

use serde::Deserialize;

use crate::config::opt_duration;
use crate::config::{AccessKeyConfig, Dedupe};

/// `alibaba:` the Alibaba Cloud EventBridge PutEvents-compatible endpoint.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlibabaConfig {
    /// `signature` (default): requests must be signed (`authorization: acs:ID:SIG`,
    /// HMAC-SHA1) with one of `access_keys`; `none`: no authentication.
    #[serde(default)]
    pub auth: AlibabaAuth,
    /// The AccessKey pairs accepted with `auth: signature`.
    #[serde(default)]
    pub access_keys: Vec<AccessKeyConfig>,
    /// Answered as `ResourceOwnerAccountId`.
    #[serde(default)]
    pub account: Option<String>,
    /// The bus of events without the `aliyuneventbusname` extension. Default: none
    /// (such events fail).
    #[serde(default)]
    pub default_bus: Option<String>,
    /// Accepted difference between the `date` header and the clock. Default 15m, at
    /// most 1h.
    #[serde(default, deserialize_with = "opt_duration")]
    pub max_clock_skew: Option<Duration>,
    /// Refuse requests without a `content-md5` header (so the body is signed). Default
    /// false: the Alibaba SDKs send none.
    #[serde(default)]
    pub require_content_md5: bool,
    /// Window in which a repeated (bus, `source`, `id`) is answered as a success and
    /// not appended again, as for webhook sources. Default 24h; `off`.
    #[serde(default)]
    pub dedupe: Dedupe,
    /// Schema validation of events arriving here; overrides their bus's `validation`.
    #[serde(default)]
    pub validation: Option<crate::schema::ValidationMode>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlibabaAuth {
    #[default]
    Signature,
    None,
}
