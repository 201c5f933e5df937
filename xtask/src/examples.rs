//! The examples users copy from, built as the binaries users run and each run against the test
//! run's Temporal server; an example checks what Core received and exits non-zero otherwise.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;

use openbox_devserver::DevServer;

use crate::{Result, UI_TESTS, cargo};

/// The examples run, in the order a reader meets them (the quick start runs as its own phase).
pub const EXAMPLES: [&str; 17] = [
    "demo",
    "hook_http",
    "hook_sqlx",
    "hook_postgres",
    "hook_sqlite",
    "hook_redis",
    "hook_files",
    "hook_traced",
    "hook_process",
    "hook_grpc",
    "hook_mcp",
    "hook_llm",
    "hook_rabbitmq",
    "hook_nats",
    "hook_mqtt",
    "hook_diesel",
    "hook_sea_orm",
];

/// Builds the examples (after the test run, which compiles them, only a check that they are
/// fresh) and runs each one as soon as cargo reports its binary, so that the runs (which mostly
/// wait on Temporal and the servers) overlap the compilation of any example still being built
/// (≈ 20 s each on 2 cores) instead of following all of it.
pub fn run(root: &Path, server: &DevServer) -> Result<bool> {
    // The test run's own cargo invocation (`cargo test` selects the examples by default and
    // builds them as plain binaries): the same units, so nothing is compiled again. `cargo
    // build` would name the examples' units otherwise (its `dev` profile, not `test`) and link
    // every example a second time.
    let mut build = cargo()
        .current_dir(root)
        .args([
            "test",
            "--no-run",
            "--quiet",
            "--workspace",
            "--exclude",
            UI_TESTS,
        ])
        .arg("--message-format=json-render-diagnostics")
        .stdout(Stdio::piped())
        .spawn()?;
    let stdout = build.stdout.take().ok_or("cargo's output is not piped")?;
    // Read on its own thread: cargo must never block on a full pipe while an example runs.
    let (built, binaries) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(|l| l.ok()) {
            if let Some(example) = example_binary(&line) {
                let _ = built.send(example);
            }
        }
    });
    let mut ok = true;
    let mut ran = BTreeSet::new();
    for (name, binary) in binaries {
        if EXAMPLES.contains(&name.as_str()) && ran.insert(name.clone()) {
            ok &= run_one(root, &name, &binary, server);
        }
    }
    let _ = reader.join();
    if !build.wait()?.success() {
        eprintln!("xtask: the examples do not build");
        return Ok(false);
    }
    for name in EXAMPLES.iter().filter(|n| !ran.contains(**n)) {
        eprintln!("xtask: example {name}: cargo reported no binary for it");
        ok = false;
    }
    Ok(ok)
}

/// The example name and binary of a `compiler-artifact` message, if it is an example's program
/// (not an example compiled as a test harness).
fn example_binary(line: &str) -> Option<(String, PathBuf)> {
    let message: serde_json::Value = serde_json::from_str(line).ok()?;
    if message["reason"] != "compiler-artifact" || message["profile"]["test"] != false {
        return None;
    }
    let target = &message["target"];
    let is_example = target["kind"]
        .as_array()?
        .iter()
        .any(|kind| kind == "example");
    let binary = message["executable"].as_str()?;
    is_example.then(|| {
        (
            target["name"].as_str().unwrap_or_default().to_owned(),
            binary.into(),
        )
    })
}

fn run_one(root: &Path, name: &str, binary: &Path, server: &DevServer) -> bool {
    let status = Command::new(binary)
        .current_dir(root)
        .env("TEMPORAL_ADDRESS", server.address())
        .stdout(Stdio::null())
        .status();
    match status {
        Ok(s) if s.success() => {
            eprintln!("xtask: example {name}: ok");
            true
        }
        Ok(s) => {
            eprintln!("xtask: example {name}: FAILED ({s})");
            false
        }
        Err(e) => {
            eprintln!("xtask: example {name}: cannot run it: {e}");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_examples_binary_is_read_from_cargos_message() {
        let line = r#"{"reason":"compiler-artifact","target":{"kind":["example"],"name":"hook_http"},"profile":{"test":false},"executable":"/t/debug/examples/hook_http","fresh":true}"#;
        assert_eq!(
            example_binary(line),
            Some(("hook_http".into(), "/t/debug/examples/hook_http".into()))
        );
    }

    #[test]
    fn other_messages_and_artifacts_are_not_examples() {
        for line in [
            r#"{"reason":"compiler-artifact","target":{"kind":["lib"],"name":"openbox"},"profile":{"test":false},"executable":null}"#,
            r#"{"reason":"compiler-artifact","target":{"kind":["example"],"name":"demo"},"profile":{"test":true},"executable":"/t/debug/deps/demo-1f"}"#,
            r#"{"reason":"compiler-artifact","target":{"kind":["bin"],"name":"openbox-dev"},"profile":{"test":false},"executable":"/t/debug/openbox-dev"}"#,
            r#"{"reason":"compiler-message","target":{"kind":["example"],"name":"demo"}}"#,
            r#"{"reason":"build-finished","success":true}"#,
            "not json",
        ] {
            assert_eq!(example_binary(line), None, "{line}");
        }
    }
}
