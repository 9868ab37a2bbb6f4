//! Pull connectors: consumers of other systems (cloud queues) that append what they
//! receive to a bus, acknowledging upstream only after Redis acknowledged the append.

pub mod sqs;
