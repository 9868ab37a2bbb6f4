//! AWS EventBridge's JSON protocol: `PutEvents` ingest ([`ingest`], mapped by
//! [`putevents`]), the control operations ([`control`]: buses, rules, targets, API
//! destinations, TestEventPattern), AWS Signature Version 4 ([`sigv4`], also what the
//! Lambda Invoke API verifies), configured by the `aws:` section ([`config`]).

pub mod config;
pub mod control;
pub mod ingest;
pub mod putevents;
pub mod sigv4;

pub use config::{AwsAuth, AwsConfig};
