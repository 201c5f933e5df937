//! Reliability and security of governed workers (issue: Core faults, hostile data, secrets,
//! bounded state), against the real Temporal dev server and the dev Core.

mod faults;
mod secrets;
