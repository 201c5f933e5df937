//! What the integration tests share: a Temporal dev server, a dev Core per test, unique ids,
//! and the rule for tests that need a database server.
//!
//! The Temporal server is the one `cargo xtask test` started (`OPENBOX_TEST_TEMPORAL_ADDRESS`);
//! run alone (`cargo test -p openbox-tests`), a test starts its own and stops it when done.

pub mod brokers;
pub mod browser;
pub mod core;
pub mod fixtures;
pub mod grpc;
pub mod harness;
pub mod history;
pub mod hook_fixtures;
pub mod http_server;
pub mod identity;
pub mod llm;
pub mod mcp;
pub mod observe;
pub mod orm;
pub mod services;
pub mod swarm;
pub mod temporal;
pub mod tls;
pub mod worker;

use std::sync::Once;
use std::sync::atomic::{AtomicU64, Ordering};

/// Logs to the test output, filtered by `RUST_LOG` (default: warnings of this project).
pub fn init_tracing() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| "warn,openbox=info".into());
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .try_init();
    });
}

/// `prefix-<pid>-<n>`: unique across the processes of one test run.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A fresh directory under the system temp dir, removed when dropped.
pub struct TempDir(std::path::PathBuf);

impl TempDir {
    /// Creates it, private to this user (`0700`, as the spool requires of its directory).
    pub fn new(prefix: &str) -> Self {
        let path = std::env::temp_dir().join(unique(prefix));
        let mut builder = std::fs::DirBuilder::new();
        std::os::unix::fs::DirBuilderExt::mode(builder.recursive(true), 0o700);
        builder.create(&path).expect("create temp dir");
        TempDir(path)
    }

    /// Its path.
    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
