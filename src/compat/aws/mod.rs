//! AWS EventBridge's JSON protocol: `PutEvents` ingest ([`ingest`], mapped by
//! [`putevents`]) with AWS Signature Version 4 ([`sigv4`], also what the Lambda Invoke
//! API verifies), configured by the `aws:` section ([`config`]).

pub mod config;
pub mod ingest;
pub mod putevents;
pub mod sigv4;

pub use config::{AwsAuth, AwsConfig};
