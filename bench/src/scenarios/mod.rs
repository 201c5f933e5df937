//! The benchmarks, one module each.

pub mod activity_overhead;
pub mod memory;
pub mod probes;
pub mod throughput;
