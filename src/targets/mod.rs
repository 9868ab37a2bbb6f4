//! Targets: where matched events are delivered. A target turns an event into a request
//! and reports the outcome; it knows nothing about Redis, retries or acknowledgements.

pub mod http;

pub use http::{DeliveryError, HttpTarget};
