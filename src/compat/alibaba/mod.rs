//! Alibaba Cloud EventBridge's OpenAPI: `putEvents` ingest ([`ingest`], mapped by
//! [`putevents`]), the control actions ([`control`]: buses, rules, targets,
//! testEventPattern) with the `acs:` signature of its SDKs ([`acs`], also what the
//! `alibaba-eventbridge` target signs with), configured by the `alibaba:` section
//! ([`config`]).

pub mod acs;
pub mod config;
pub mod control;
pub mod ingest;
pub mod putevents;

pub use config::{AlibabaAuth, AlibabaConfig};
