//! The benchmark suite of `openbox`: governed vs plain, measured side by side in one run and
//! written to `BENCHMARKS.md`. Run it with `cargo xtask bench`.

pub mod fixtures;
pub mod measure;
pub mod report;
pub mod scenarios;
pub mod setup;
