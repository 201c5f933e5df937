//! Settings of the durable spool (what it does: see [`SpoolSettings`]).

use std::path::{Path, PathBuf};

/// Default bound of the spool on disk: 64 MiB.
pub(crate) const DEFAULT_SPOOL_MAX_BYTES: u64 = 64 << 20;
/// Default pace of late delivery: 200 events per second.
pub(crate) const DEFAULT_REPLAY_PER_SECOND: u32 = 200;
/// Default number of late deliveries in flight at once.
pub(crate) const DEFAULT_REPLAY_CONCURRENCY: u32 = 4;
/// The smallest bound accepted.
pub(crate) const MIN_SPOOL_MAX_BYTES: u64 = 64 << 10;

/// Where and how much the spool keeps (see [`OpenBoxConfigBuilder::spool`]).
///
/// [`OpenBoxConfigBuilder::spool`]: crate::OpenBoxConfigBuilder::spool
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SpoolSettings {
    dir: PathBuf,
    max_bytes: u64,
    replay_per_second: u32,
    replay_concurrency: u32,
}

impl SpoolSettings {
    /// A spool in `dir` (created with mode `0700` if missing; an existing one must be a
    /// directory, not a symbolic link, that only its owner can access; owned by one process at a
    /// time), with the default bound (64 MiB) and late delivery (at most 200 events per second,
    /// 4 in flight).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        SpoolSettings {
            dir: dir.into(),
            max_bytes: DEFAULT_SPOOL_MAX_BYTES,
            replay_per_second: DEFAULT_REPLAY_PER_SECOND,
            replay_concurrency: DEFAULT_REPLAY_CONCURRENCY,
        }
    }

    /// The most the spool keeps on disk (at least 64 KiB); beyond it the oldest events are
    /// dropped, and counted.
    pub fn with_max_bytes(mut self, bytes: u64) -> Self {
        self.max_bytes = bytes;
        self
    }

    /// How many spooled events per second at most are delivered once Core answers again
    /// (default 200), so that a long outage does not flood Core on recovery. It is a rate, not a
    /// pause after each answer: deliveries run side by side (see
    /// [`with_replay_concurrency`](Self::with_replay_concurrency)).
    ///
    /// Sizing: while Core fails a share `f` of the calls of a worker making `K` evaluations per
    /// second, `f × K` events per second are spooled, and late delivery drains them at up to
    /// `rate × (1 − f)`; to drain at least twice as fast as the backlog fills, choose
    /// `rate ≥ 2 × f × K / (1 − f)` — with `f` = 10%, about a quarter of the peak evaluation
    /// rate (the default suits up to about 900 evaluations per second).
    pub fn with_replay_per_second(mut self, rate: u32) -> Self {
        self.replay_per_second = rate;
        self
    }

    /// How many late deliveries may be in flight at once (default 4). Each workflow run's
    /// events still reach Core in the order they happened; runs interleave. To reach the rate,
    /// choose at least `rate × round trip` (200/s at a 20 ms round trip: 4).
    pub fn with_replay_concurrency(mut self, deliveries: u32) -> Self {
        self.replay_concurrency = deliveries;
        self
    }

    /// The spool's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The bound on disk, in bytes.
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// Events delivered per second at most.
    pub fn replay_per_second(&self) -> u32 {
        self.replay_per_second
    }

    /// Late deliveries in flight at most.
    pub fn replay_concurrency(&self) -> u32 {
        self.replay_concurrency
    }

    /// What is wrong with these settings, if anything.
    pub(crate) fn problem(&self) -> Option<String> {
        if self.max_bytes < MIN_SPOOL_MAX_BYTES {
            return Some(format!(
                "max_bytes must be at least {MIN_SPOOL_MAX_BYTES} (got {})",
                self.max_bytes
            ));
        }
        if self.replay_per_second == 0 {
            return Some("replay_per_second must be greater than zero".into());
        }
        if !(1..=256).contains(&self.replay_concurrency) {
            return Some(format!(
                "replay_concurrency must be between 1 and 256 (got {})",
                self.replay_concurrency
            ));
        }
        if self.dir.as_os_str().is_empty() {
            return Some("the directory must not be empty".into());
        }
        None
    }
}
