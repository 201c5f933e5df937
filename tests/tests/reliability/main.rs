//! Reliability and security of governed workers (issue: Core faults, hostile data, secrets,
//! bounded state), against the real Temporal dev server and the dev Core.

mod bounded;
mod drain;
mod faults;
mod observe_mode;
mod secrets;
mod spool;

/// Counts live heap bytes for the bounded-state test.
#[global_allocator]
static ALLOCATOR: openbox_heap_counter::CountingAllocator = openbox_heap_counter::CountingAllocator;
