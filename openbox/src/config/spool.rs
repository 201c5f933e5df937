//! Settings of the durable spool (what it does: see [`SpoolSettings`]).

use std::path::{Path, PathBuf};

/// Default bound of the spool on disk: 64 MiB.
pub(crate) const DEFAULT_SPOOL_MAX_BYTES: u64 = 64 << 20;
/// Default pace of late delivery: 20 events per second.
pub(crate) const DEFAULT_REPLAY_PER_SECOND: u32 = 20;
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
}

impl SpoolSettings {
    /// A spool in `dir` (created with mode `0700` if missing; an existing one must be a
    /// directory, not a symbolic link, that only its owner can access; owned by one process at a
    /// time), with the default bound (64 MiB) and pace of late delivery (20 events per second).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        SpoolSettings {
            dir: dir.into(),
            max_bytes: DEFAULT_SPOOL_MAX_BYTES,
            replay_per_second: DEFAULT_REPLAY_PER_SECOND,
        }
    }

    /// The most the spool keeps on disk (at least 64 KiB); beyond it the oldest events are
    /// dropped, and counted.
    pub fn with_max_bytes(mut self, bytes: u64) -> Self {
        self.max_bytes = bytes;
        self
    }

    /// How many spooled events per second at most are delivered once Core answers again, so
    /// that a long outage does not flood Core (or the worker's connection to it) on recovery.
    pub fn with_replay_per_second(mut self, rate: u32) -> Self {
        self.replay_per_second = rate;
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
        if self.dir.as_os_str().is_empty() {
            return Some("the directory must not be empty".into());
        }
        None
    }
}
