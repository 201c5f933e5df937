//! The README's quick start, checked mechanically: its `src/main.rs` block is
//! `examples/examples/quickstart.rs` byte for byte (lint), and a fresh crate made of its
//! `Cargo.toml` and `src/main.rs` blocks, outside the workspace, builds and completes a governed
//! workflow against `openbox-dev serve` and the test Temporal server (test).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use openbox_devserver::{DevServer, free_port};

const EXAMPLE: &str = "examples/examples/quickstart.rs";

/// The workspace's `[profile.dev]` settings (`Cargo.toml`), for the crates built outside it:
/// the quick start here, and the packaged crates `cargo publish --dry-run` verifies (lint).
/// Each of those builds then reuses what another build made with the same features, where
/// cargo's default dev profile (full debug info) would rebuild every dependency.
pub const PROFILE: [&str; 2] = [
    r#"profile.dev.debug="line-tables-only""#,
    r#"profile.dev.package."*".debug=false"#,
];

/// The code blocks of the quick start: (`Cargo.toml`, `src/main.rs`).
fn blocks(root: &Path) -> Result<(String, String), String> {
    let readme = std::fs::read_to_string(root.join("README.md")).map_err(|e| e.to_string())?;
    let section = readme
        .split_once("## Quick start")
        .map(|(_, rest)| rest)
        .ok_or("the README has no `## Quick start` section")?;
    let block = |fence: &str| -> Result<String, String> {
        let start = section
            .find(fence)
            .ok_or_else(|| format!("the quick start has no {fence} block"))?
            + fence.len();
        let body = &section[start..];
        let end = body
            .find("\n```")
            .ok_or_else(|| format!("the quick start's {fence} block is not closed"))?;
        Ok(body[..end].trim_start_matches('\n').to_owned() + "\n")
    };
    Ok((block("```toml")?, block("```rust")?))
}

/// Lint: the README's program is the example file, so that both stay one text.
pub fn check_sync(root: &Path) -> Result<bool, String> {
    let (_, code) = blocks(root)?;
    let example = std::fs::read_to_string(root.join(EXAMPLE)).map_err(|e| e.to_string())?;
    if code == example {
        return Ok(true);
    }
    let line = code
        .lines()
        .zip(example.lines())
        .position(|(a, b)| a != b)
        .map_or_else(
            || "the lengths differ".to_owned(),
            |i| format!("line {}", i + 1),
        );
    eprintln!(
        "xtask lint: README's quick start differs from {EXAMPLE} ({line}): make them one text"
    );
    Ok(false)
}

/// Test: the fresh crate builds (into the workspace's target directory, so that what the
/// workspace compiled is reused) and completes its workflow, reported to a dev Core.
pub fn run(root: &Path, target: &Path, temporal: &DevServer) -> Result<bool, String> {
    let (manifest, code) = blocks(root)?;
    let dir = std::env::temp_dir().join(format!("openbox-quickstart-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("src")).map_err(|e| e.to_string())?;
    let openbox = root.join("openbox");
    let manifest = manifest.replacen(
        "openbox = \"0.1\"",
        &format!("openbox = {{ path = {:?} }}", openbox.display().to_string()),
        1,
    ) + "\n[workspace]\n";
    std::fs::write(dir.join("Cargo.toml"), manifest).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("src/main.rs"), code).map_err(|e| e.to_string())?;
    // The workspace's versions, so that its compiled dependencies are reused.
    std::fs::copy(root.join("Cargo.lock"), dir.join("Cargo.lock")).map_err(|e| e.to_string())?;
    let built = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .current_dir(&dir)
        .args(["build", "--quiet"])
        // The workspace's dev profile (a crate outside it has cargo's default, full debug
        // info): every dependency built with the same features is then reused, not rebuilt.
        .args(PROFILE.iter().flat_map(|setting| ["--config", setting]))
        .env("CARGO_TARGET_DIR", target)
        .status()
        .map_err(|e| e.to_string())?;
    if !built.success() {
        eprintln!(
            "xtask: the README's quick start does not build (crate in {})",
            dir.display()
        );
        return Ok(false);
    }
    let ok = run_against_dev_core(
        target,
        &target.join("debug").join("hello-openbox"),
        temporal,
    )?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(ok)
}

/// Starts `openbox-dev serve`, runs the program, and checks what Core heard.
fn run_against_dev_core(
    target: &Path,
    program: &Path,
    temporal: &DevServer,
) -> Result<bool, String> {
    let port = free_port().map_err(|e| e.to_string())?;
    let url = format!("http://127.0.0.1:{port}");
    let dev_core = DevCoreProcess::start(&target.join("debug").join("openbox-dev"), port)?;
    dev_core.wait_ready(&url)?;
    let out = Command::new(program)
        .env("OPENBOX_API_URL", &url)
        .env("OPENBOX_API_KEY", "obx_test_quickstart")
        .env("TEMPORAL_ADDRESS", temporal.address())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", program.display()))?;
    let printed = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() || printed.trim() != "Hello, world!" {
        eprintln!("xtask: the quick start failed ({}): {printed}", out.status);
        return Ok(false);
    }
    let events = http_get(port, "/api/dev/events")?;
    let heard = [
        "\"WorkflowStarted\"",
        "\"ActivityStarted\"",
        "\"ActivityCompleted\"",
        "\"WorkflowCompleted\"",
        "Hello, world!",
    ];
    let missing: Vec<_> = heard.iter().filter(|h| !events.contains(*h)).collect();
    if !missing.is_empty() {
        eprintln!("xtask: the dev Core did not hear {missing:?} from the quick start");
        return Ok(false);
    }
    eprintln!("xtask: the README's quick start builds and runs governed: ok");
    Ok(true)
}

/// `openbox-dev serve` on a port; killed when dropped.
struct DevCoreProcess(std::process::Child);

impl DevCoreProcess {
    fn start(binary: &Path, port: u16) -> Result<Self, String> {
        Command::new(binary)
            .args(["serve", "--port", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map(DevCoreProcess)
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))
    }

    fn wait_ready(&self, url: &str) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        let addr: std::net::SocketAddr = url
            .trim_start_matches("http://")
            .parse()
            .map_err(|e| format!("{url}: {e}"))?;
        while std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if Instant::now() > deadline {
                return Err(format!("openbox-dev did not answer at {url}"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }
}

impl Drop for DevCoreProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A plain HTTP/1.0 GET on loopback (xtask has no HTTP client).
fn http_get(port: u16, path: &str) -> Result<String, String> {
    use std::io::{Read, Write};
    let mut stream =
        std::net::TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut text = String::new();
    stream
        .read_to_string(&mut text)
        .map_err(|e| e.to_string())?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_quick_start_is_built_with_the_workspaces_profile() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let manifest: toml::Table = std::fs::read_to_string(root.join("Cargo.toml"))
            .unwrap()
            .parse()
            .unwrap();
        let dev = &manifest["profile"]["dev"];
        let mut settings = Vec::new();
        settings.push(format!("profile.dev.debug={}", dev["debug"]));
        settings.push(format!(
            r#"profile.dev.package."*".debug={}"#,
            dev["package"]["*"]["debug"]
        ));
        assert_eq!(settings, PROFILE, "keep PROFILE in step with Cargo.toml");
    }

    #[test]
    fn the_readme_quick_start_is_the_example() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        assert!(check_sync(root).unwrap());
        let (manifest, _) = blocks(root).unwrap();
        assert!(manifest.contains("openbox = \"0.1\""), "{manifest}");
    }
}
