//! Event patterns and the matcher that evaluates every rule of a bus against an event;
//! transforms that shape an event for one target.
//!
//! Pure: no I/O, no async. The router builds one [`Matcher`] per bus from the rules'
//! patterns and asks it, once per event, which rules match. The matcher's interface
//! (`Matcher::new`, `Matcher::matching`, `Matcher::needs_data`) is what the router
//! depends on; how it matches is free to change.

mod matcher;
mod pattern;
pub mod select;
pub mod transform;

pub use matcher::{EventView, Matcher};
pub use pattern::{Pattern, PatternError};
pub use transform::{Transform, TransformConfig};
