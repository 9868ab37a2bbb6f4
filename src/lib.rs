//! Sluice: a stateless webhook and CloudEvents gateway on Redis Streams.
//!
//! `config` reads the YAML and `plan` compiles it once into what a replica runs.
//! The modules mirror the data path (see `docs/architecture.md`):
//! `ingress` accepts CloudEvents and webhooks (verified and normalised by `sources`) over
//! HTTP and appends them through `bus`; the `router`
//! reads each bus, asks `rules` which (rule, target) pairs match and writes one entry per
//! match into that target's stream; `dispatch` reads target streams and calls `targets`.

pub mod archive;
pub mod bus;
pub mod cli;
pub mod compat;
pub mod config;
pub mod connectors;
pub mod control;
pub mod dev;
pub mod dispatch;
pub mod dlq;
pub mod event;
pub mod functions;
pub mod gateway;
pub mod ingress;
pub mod live;
pub mod observability;
pub mod plan;
pub mod replay;
pub mod router;
pub mod rules;
pub mod schema;
pub mod sources;
pub mod stats;
pub mod targets;
