//! Project tasks. `cargo xtask <task>`:
//!
//! * `test`  — installs the Temporal CLI if missing, starts a Temporal dev server, runs every
//!   test of the workspace (nextest + doctests) against it, stops it;
//! * `demo`  — the same server, then the governed demo workflow against the embedded dev Core;
//! * `temporal` — starts a dev server and keeps it running until Ctrl-C (for manual work).
//!
//! Extra arguments after the task go to the test runner / the demo.

use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::Duration;

use openbox_devserver::{DevServer, TemporalCli, project_root};

/// Read by the test-support crate: where the shared Temporal dev server listens.
const ENV_TEST_TEMPORAL: &str = "OPENBOX_TEST_TEMPORAL_ADDRESS";

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let task = args.next().unwrap_or_default();
    let rest: Vec<String> = args.collect();
    let root = project_root(Path::new(env!("CARGO_MANIFEST_DIR")));
    let result = match task.as_str() {
        "test" => test(&root, &rest),
        "demo" => demo(&root, &rest),
        "temporal" => temporal(&root),
        _ => {
            eprintln!("usage: cargo xtask <test|demo|temporal> [args…]");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("xtask {task}: {e}");
            ExitCode::FAILURE
        }
    }
}

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn start_temporal(root: &Path) -> Result<(TemporalCli, DevServer)> {
    let cli = TemporalCli::locate_or_install(root)?;
    eprintln!("xtask: {} ({})", cli.path().display(), cli.version()?);
    let server = DevServer::start(
        &cli,
        &root.join(".devenv").join("logs"),
        Duration::from_secs(90),
    )?;
    eprintln!(
        "xtask: Temporal dev server at {} (pid {:?})",
        server.address(),
        server.pid()
    );
    Ok((cli, server))
}

fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

fn has_nextest() -> bool {
    cargo()
        .args(["nextest", "--version"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn with_server_env(cmd: &mut Command, cli: &TemporalCli, server: &DevServer) {
    cmd.env(ENV_TEST_TEMPORAL, server.address())
        .env("TEMPORAL_CLI", cli.path());
}

fn test(root: &Path, extra: &[String]) -> Result<bool> {
    let (cli, server) = start_temporal(root)?;
    let mut ok = true;
    let mut run = if has_nextest() {
        let mut c = cargo();
        c.args([
            "nextest",
            "run",
            "--workspace",
            "--all-targets",
            "--no-fail-fast",
        ]);
        c
    } else {
        eprintln!("xtask: cargo-nextest not found; using cargo test");
        let mut c = cargo();
        c.args(["test", "--workspace", "--all-targets", "--no-fail-fast"]);
        c
    };
    run.current_dir(root).args(extra);
    with_server_env(&mut run, &cli, &server);
    ok &= run.status()?.success();
    let mut doc = cargo();
    doc.current_dir(root).args(["test", "--workspace", "--doc"]);
    with_server_env(&mut doc, &cli, &server);
    ok &= doc.status()?.success();
    drop(server);
    eprintln!(
        "xtask: Temporal dev server stopped; tests {}",
        if ok { "passed" } else { "FAILED" }
    );
    Ok(ok)
}

fn demo(root: &Path, extra: &[String]) -> Result<bool> {
    let (cli, server) = start_temporal(root)?;
    let mut run = cargo();
    run.current_dir(root)
        .args([
            "run",
            "--quiet",
            "--package",
            "openbox-examples",
            "--example",
            "demo",
            "--",
        ])
        .args(extra)
        .env("TEMPORAL_ADDRESS", server.address());
    with_server_env(&mut run, &cli, &server);
    let ok = run.status()?.success();
    drop(server);
    Ok(ok)
}

fn temporal(root: &Path) -> Result<bool> {
    let (_cli, server) = start_temporal(root)?;
    println!("TEMPORAL_ADDRESS={}", server.address());
    println!(
        "log: {}  (Ctrl-C stops it: the terminal's SIGINT reaches the server too)",
        server.log_path().display()
    );
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}
