//! What the benchmarks run against: the dev Core as its own process (as Core is, and so that
//! its memory and CPU are not counted as the SDK's), the Temporal dev server, a local HTTP
//! server.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use openbox::{ErrorPolicy, OpenBoxConfig};
use openbox_devserver::{DevServer, TemporalCli, project_root};
use temporalio_client::{Client, ClientOptions, Connection, ConnectionOptions, Url};

/// The API key the benchmarks use.
pub const BENCH_KEY: &str = "obx_test_bench_0123";

/// Set by `cargo xtask bench`: a Temporal dev server to use instead of starting one.
pub const ENV_TEMPORAL: &str = "OPENBOX_BENCH_TEMPORAL_ADDRESS";

/// The `openbox-dev` binary, running `serve` (killed on drop).
pub struct DevCoreProcess {
    child: Child,
    url: String,
}

impl DevCoreProcess {
    /// Starts `openbox-dev serve` from the same target directory as this binary: allow-all
    /// rules, no event-log file (the in-memory window only).
    pub fn start() -> Result<Self> {
        Self::start_with(&[])
    }

    /// The same, delaying every governance answer by `delay` (the dev Core's fault flag).
    pub fn start_delayed(delay: Duration) -> Result<Self> {
        Self::start_with(&["--fault-delay", &format!("{}ms", delay.as_millis())])
    }

    fn start_with(extra: &[&str]) -> Result<Self> {
        let bin = sibling_binary("openbox-dev")?;
        let mut child = Command::new(&bin)
            .args(["serve", "--port", "0"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let stdout = child.stdout.take().context("dev Core stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let url = line
            .trim()
            .strip_prefix("openbox-dev listening on ")
            .ok_or_else(|| anyhow!("unexpected first line from openbox-dev: {line:?}"))?
            .to_owned();
        Ok(DevCoreProcess { child, url })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Answers that share of evaluations with HTTP 503 from now on (the dev API's faults).
    pub async fn set_error_rate(&self, rate: f64) -> Result<()> {
        let status = reqwest::Client::new()
            .put(format!("{}/api/dev/faults", self.url))
            .json(&serde_json::json!({ "error_rate": rate, "error_status": 503 }))
            .send()
            .await?
            .status();
        anyhow::ensure!(
            status.is_success(),
            "setting the dev Core's faults: HTTP {status}"
        );
        Ok(())
    }

    /// The process id, for its CPU time.
    pub fn pid(&self) -> String {
        self.child.id().to_string()
    }

    /// A config for this Core: the bench key, fail_closed (a lost verdict must not look fast).
    pub fn config(&self) -> OpenBoxConfig {
        OpenBoxConfig::builder()
            .ignore_env()
            .url(&self.url)
            .api_key(BENCH_KEY)
            .error_policy(ErrorPolicy::FailClosed)
            .timeout(Duration::from_secs(10))
            .build()
            .expect("valid bench config")
    }
}

impl Drop for DevCoreProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A binary built next to this one (`target/release/<name>`).
fn sibling_binary(name: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe.parent().context("binary directory")?;
    // `cargo bench`/`cargo run` may run us from `deps/`.
    for candidate in [dir.join(name), dir.join("..").join(name)] {
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    Err(anyhow!(
        "{name} not found next to {} (build it: cargo build --release -p openbox-dev)",
        exe.display()
    ))
}

/// The Temporal dev server: the one `cargo xtask bench` started, or our own.
pub struct Temporal {
    /// `127.0.0.1:<port>`.
    pub address: String,
    _own: Option<DevServer>,
}

impl Temporal {
    /// Uses `$OPENBOX_BENCH_TEMPORAL_ADDRESS`, else starts a dev server.
    pub fn get() -> Result<Self> {
        if let Ok(address) = std::env::var(ENV_TEMPORAL) {
            return Ok(Temporal {
                address,
                _own: None,
            });
        }
        Self::start_own()
    }

    /// Starts a dev server of our own (stopped on drop), whatever the environment says: a
    /// fresh one has no history yet, and a dev server slows down as its history grows.
    pub fn start_own() -> Result<Self> {
        let root = project_root(Path::new(env!("CARGO_MANIFEST_DIR")));
        let cli = TemporalCli::locate_or_install(&root).map_err(|e| anyhow!("{e}"))?;
        let server = DevServer::start(
            &cli,
            &root.join(".devenv").join("logs"),
            Duration::from_secs(90),
        )
        .map_err(|e| anyhow!("{e}"))?;
        Ok(Temporal {
            address: server.address().to_owned(),
            _own: Some(server),
        })
    }

    /// A client in namespace `default`.
    pub async fn client(&self) -> Result<Client> {
        let url = Url::from_str(&format!("http://{}", self.address))?;
        let options = ConnectionOptions::new(url)
            .connect_timeout(Duration::from_secs(10))
            .build();
        let connection = Connection::connect(options).await?;
        Ok(Client::new(
            connection,
            ClientOptions::new("default").build(),
        )?)
    }
}

/// A local HTTP server answering `GET /` with a short text, for the HTTP hook benchmark.
pub async fn http_server() -> Result<String> {
    let app = axum::Router::new().route("/", axum::routing::get(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/", listener.local_addr()?);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(url)
}
