//! A value the running gateway swaps on a hot reload while requests read it.
//!
//! Handlers take `web::Data<Live<T>>` and call [`Live::get`] once per request: they
//! work on one consistent version from start to end, and a reload never waits for them.

use std::sync::Arc;

use arc_swap::ArcSwap;

pub struct Live<T>(ArcSwap<T>);

impl<T> Live<T> {
    pub fn new(value: T) -> Live<T> {
        Live(ArcSwap::from_pointee(value))
    }

    /// The current version.
    pub fn get(&self) -> Arc<T> {
        self.0.load_full()
    }

    /// Puts `value` in force for the requests that start from now on.
    pub fn set(&self, value: T) {
        self.0.store(Arc::new(value));
    }
}
