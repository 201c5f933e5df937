//! The benchmarks, one module each.

pub mod activity_overhead;
pub mod drain;
pub mod floor;
pub mod idle;
pub mod memory;
pub mod one_round_trip;
pub mod outage;
pub mod probes;
pub mod throughput;
