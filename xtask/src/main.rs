//! Project tasks. `cargo xtask <task>`:
//!
//! * `test`  — installs the Temporal CLI, OpenBox's Python contract check for hook payloads
//!   (and Chromium for the browser test) if missing, starts
//!   the database servers if they do not answer, starts a Temporal dev server, runs every test of
//!   the workspace (nextest + doctests) against it but the macros' compile-error cases, runs the
//!   examples and the README's quick start (a fresh crate outside the workspace), stops what it
//!   started;
//! * `demo`  — the same server, then the governed demo workflow against the embedded dev Core;
//! * `bench` — builds in release mode, runs the criterion benchmark of `#[traced]`, starts a dev
//!   server and runs every other benchmark against it and the dev Core; writes `BENCHMARKS.md`;
//! * `lint`  — what a release needs besides passing tests: formatting, clippy with warnings as
//!   errors (all features, and `openbox` with each feature alone, so every combination a user
//!   picks builds cleanly; with `rust-version` set, clippy also flags std APIs newer than the
//!   MSRV), the docs with warnings as errors, the macros' compile-error cases (trybuild: they
//!   check the compiler's messages, and check the dependency graph once more in a directory of
//!   their own, which doubled the time of `test`) and the shapes that must compile, the layering
//!   of `openbox/src`, that the docs cite nothing users cannot open, that the README's quick
//!   start is `examples/examples/quickstart.rs`, and `cargo publish --dry-run` of the three
//!   crates;
//! * `temporal` — starts a dev server and keeps it running until Ctrl-C (for manual work).
//!
//! Extra arguments after the task go to the test runner / the demo.

mod examples;
mod layers;
mod machine;
mod quickstart;

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
        "bench" => bench(&root, &rest),
        "lint" => lint(&root),
        "temporal" => temporal(&root),
        _ => {
            eprintln!("usage: cargo xtask <test|lint|demo|bench|temporal> [args…]");
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

/// The macros' compile-error cases (trybuild) and the shapes that must compile: run by `lint`,
/// not `test`.
const UI_TESTS: &str = "openbox-ui-tests";

/// Logs how long a phase of a task took (CI reads it to see where the time goes).
fn timed<T>(what: &str, phase: impl FnOnce() -> T) -> T {
    let started = std::time::Instant::now();
    let out = phase();
    eprintln!(
        "xtask: {what} took {:.0} s",
        started.elapsed().as_secs_f64()
    );
    out
}

fn test(root: &Path, extra: &[String]) -> Result<bool> {
    machine::ensure_browser();
    machine::ensure_c_libraries();
    let databases = machine::ensure_databases();
    // Installed once here, not by the test (which would race the other test processes).
    let conformance = openbox_devserver::conformance_python(root)?;
    let (cli, server) = start_temporal(root)?;
    let mut ok = true;
    // Cargo's default selection of targets: libraries, binaries, tests, the benches marked
    // `test = true` — and the examples, built as the binaries users run (not as tests), in the
    // same invocation: their compilation fills the cores the test binaries' leave idle, and the
    // examples phase below finds them built.
    let mut run = if has_nextest() {
        let mut c = cargo();
        c.args(["nextest", "run", "--workspace", "--exclude", UI_TESTS])
            .arg("--no-fail-fast");
        c
    } else {
        eprintln!("xtask: cargo-nextest not found; using cargo test");
        let mut c = cargo();
        c.args(["test", "--workspace", "--exclude", UI_TESTS])
            .arg("--no-fail-fast");
        c
    };
    run.current_dir(root)
        .args(extra)
        .env(openbox_devserver::ENV_CONFORMANCE_PYTHON, &conformance);
    with_server_env(&mut run, &cli, &server);
    ok &= timed("build and run the tests (nextest)", || run.status())?.success();
    let mut doc = cargo();
    doc.current_dir(root)
        .args(["test", "--workspace", "--exclude", UI_TESTS, "--doc"]);
    with_server_env(&mut doc, &cli, &server);
    ok &= timed("doctests", || doc.status())?.success();
    ok &= timed("examples", || examples::run(root, &server))?;
    ok &= timed("the README's quick start", || {
        quickstart::run(root, &target_dir(root), &server)
    })?;
    drop(server);
    drop(databases);
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

fn target_dir(root: &Path) -> std::path::PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), Into::into)
}

fn bench(root: &Path, extra: &[String]) -> Result<bool> {
    let mut build = cargo();
    build.current_dir(root).args([
        "build",
        "--release",
        "--package",
        "openbox-bench",
        "--package",
        "openbox-dev",
    ]);
    if !build.status()?.success() {
        return Ok(false);
    }
    let quick = extra.iter().any(|a| a == "--quick");
    let mut criterion = cargo();
    criterion.current_dir(root).args([
        "bench",
        "--package",
        "openbox-bench",
        "--bench",
        "traced",
        "--",
    ]);
    if quick {
        criterion.args(["--warm-up-time", "0.5", "--measurement-time", "1"]);
    }
    if !criterion.status()?.success() {
        return Ok(false);
    }
    let (_cli, server) = start_temporal(root)?;
    let target = target_dir(root);
    let mut run = Command::new(target.join("release").join("openbox-bench"));
    run.current_dir(root)
        .arg("--criterion")
        .arg(target.join("criterion"))
        .args(["--command", "cargo xtask bench"])
        .args(extra)
        .env("OPENBOX_BENCH_TEMPORAL_ADDRESS", server.address());
    let ok = run.status()?.success();
    drop(server);
    Ok(ok)
}

/// The crate that keeps shared dependencies' features fixed across the per-feature runs.
const LINT_BASELINE: &str = "openbox-lint-baseline";

/// Features of `openbox` a user can pick alone.
const FEATURES: [&str; 22] = [
    "http",
    "otel",
    "sqlx-postgres",
    "sqlx-mysql",
    "sqlx-sqlite",
    "tokio-postgres",
    "rusqlite",
    "redis",
    "process",
    "tower",
    "mcp",
    "async-openai",
    "lapin",
    "async-nats",
    "rumqttc",
    "diesel-postgres",
    "diesel-mysql",
    "diesel-sqlite",
    "diesel-async-postgres",
    "sea-orm",
    "okta-identity",
    "workload-identity",
];

fn lint(root: &Path) -> Result<bool> {
    // Clippy and the docs build every feature, diesel's backends included.
    machine::ensure_c_libraries();
    let run = |what: &str, args: &[&str], env: &[(&str, &str)]| -> Result<bool> {
        eprintln!("xtask lint: {what}");
        let mut c = cargo();
        c.current_dir(root).args(args);
        for (k, v) in env {
            c.env(k, v);
        }
        let ok = timed(what, || c.status())?.success();
        if !ok {
            eprintln!("xtask lint: FAILED: {what}");
        }
        Ok(ok)
    };
    let mut ok = run("formatting", &["fmt", "--all", "--", "--check"], &[])?;
    eprintln!("xtask lint: layering, self-contained docs, README quick start");
    ok &= layers::check(root)?;
    ok &= layers::check_docs_self_contained(root)?;
    ok &= quickstart::check_sync(root)?;
    ok &= run(
        "clippy, all features",
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--all-features",
            "--",
            "-D",
            "warnings",
        ],
        &[],
    )?;
    let none = "openbox without default features".to_owned();
    ok &= run(
        &none,
        &[
            "clippy",
            "-p",
            "openbox",
            "--no-default-features",
            "--",
            "-D",
            "warnings",
        ],
        &[],
    )?;
    // Beside `openbox-lint-baseline`, which holds the dependencies every feature shares at the
    // features they have with all of them: a run then checks `openbox` and its optional
    // dependencies only, not the Temporal SDK again (≈ 50 s → 5–10 s a run; see its Cargo.toml).
    let union = format!("{LINT_BASELINE}/union");
    for name in FEATURES {
        let feature = format!("openbox/{name}");
        ok &= run(
            &format!("openbox with only `{name}`"),
            &[
                "clippy",
                "-p",
                "openbox",
                "-p",
                LINT_BASELINE,
                "--no-default-features",
                "--features",
                &feature,
                "--features",
                &union,
                "--",
                "-D",
                "warnings",
            ],
            &[],
        )?;
    }
    ok &= run(
        "docs",
        &[
            "doc",
            "-p",
            "openbox",
            "-p",
            "openbox-macros",
            "-p",
            "openbox-dev",
            "--all-features",
            "--no-deps",
        ],
        &[("RUSTDOCFLAGS", "-D warnings")],
    )?;
    ok &= run(
        "macro cases: compile errors (trybuild), shapes that compile and run",
        &["test", "-p", UI_TESTS, "--tests"],
        &[],
    )?;
    // The packaged crates build with the workspace's dev profile: with cargo's default (full
    // debug info) their verification rebuilt every dependency (≈ 190 s on 2 cores), where
    // now it reuses what the quick start built with the same features (≈ 60 s).
    let publish: Vec<&str> = [
        "publish",
        "--dry-run",
        "--allow-dirty",
        "-p",
        "openbox-macros",
        "-p",
        "openbox",
        "-p",
        "openbox-dev",
    ]
    .into_iter()
    .chain(quickstart::PROFILE.iter().flat_map(|s| ["--config", *s]))
    .collect();
    ok &= run("publish dry run", &publish, &[])?;
    eprintln!("xtask lint: {}", if ok { "clean" } else { "FAILED" });
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lint_checks_every_feature_of_openbox_alone() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let manifest: toml::Table = std::fs::read_to_string(root.join("openbox/Cargo.toml"))
            .unwrap()
            .parse()
            .unwrap();
        let mut declared: Vec<&str> = manifest["features"]
            .as_table()
            .unwrap()
            .keys()
            .map(String::as_str)
            .filter(|name| *name != "default")
            .collect();
        let mut linted = FEATURES.to_vec();
        declared.sort_unstable();
        linted.sort_unstable();
        assert_eq!(
            linted, declared,
            "keep FEATURES in step with openbox's features"
        );
    }
}
