//! Event patterns and the matcher that evaluates every rule of a bus against an event;
//! transforms that shape an event for one target.
//!
//! Pure: no I/O, no async. The router builds one [`Matcher`] per bus from the rules'
//! patterns and asks it, once per event, which rules match. The matcher's interface
//! (`Matcher::new`, `Matcher::matching`, `Matcher::needs_data`) is what the router
//! depends on; how it matches is free to change.

pub mod cesql;
pub mod dialect;
mod flatten;
mod index;
mod matcher;
mod operand;
mod pattern;
pub mod select;
pub mod transform;

pub use matcher::{EventData, EventView, InvalidEvent, Matcher};

/// Why a pattern or a transform is invalid, and where inside it (`.data.amount[0]`,
/// `.InputTransformer.InputTemplate`); config errors prefix the rule's own path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidAt {
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for InvalidAt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.path.trim_start_matches('.'), self.message)
        }
    }
}
pub use pattern::{Pattern, PatternError, MAX_COMBINATIONS, MAX_CONDITIONS};
pub use transform::{Transform, TransformConfig};
