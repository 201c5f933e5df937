//! The Temporal dev server of a test.

use std::path::Path;
use std::time::Duration;

use openbox_devserver::{DevServer, TemporalCli, project_root};

/// Set by `cargo xtask test`: the shared dev server.
pub const ENV_ADDRESS: &str = "OPENBOX_TEST_TEMPORAL_ADDRESS";

/// A Temporal dev server: the shared one, or one started for this test (stopped on drop).
pub struct TestTemporal {
    address: String,
    cli: Option<TemporalCli>,
    _own: Option<DevServer>,
}

impl TestTemporal {
    /// Connects to the shared server, or starts one (installing the CLI if needed).
    pub fn get() -> Self {
        let root = project_root(Path::new(env!("CARGO_MANIFEST_DIR")));
        if let Ok(address) = std::env::var(ENV_ADDRESS) {
            let cli = TemporalCli::locate(&root).ok().flatten();
            return TestTemporal {
                address,
                cli,
                _own: None,
            };
        }
        let cli = TemporalCli::locate_or_install(&root).expect("Temporal CLI available");
        let server = DevServer::start(
            &cli,
            &root.join(".devenv").join("logs"),
            Duration::from_secs(90),
        )
        .expect("Temporal dev server starts");
        TestTemporal {
            address: server.address().to_owned(),
            cli: Some(cli),
            _own: Some(server),
        }
    }

    /// `127.0.0.1:<port>`.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The CLI, for `temporal workflow show`.
    pub fn cli(&self) -> Option<&TemporalCli> {
        self.cli.as_ref()
    }
}
