//! Cloud-compatible protocols: each cloud's wire API in one folder (its request
//! signature, its requests' mapping to and from CloudEvents, its HTTP handlers and its
//! config section), so the unmodified AWS and Alibaba SDKs work against Sluice.

pub mod alibaba;
pub mod aws;
