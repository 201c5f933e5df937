//! What the tests need from the machine besides the Temporal dev server: the database servers at
//! their standard ports, the C client libraries diesel's backends link against, and Chromium for
//! the browser test.
//!
//! The machine normally runs the databases already. When one does not answer, `cargo xtask test`
//! tries to start it with `service <name> start` (as root, or through `sudo -n`) and stops again
//! only what it started. A failure to start is reported, not fatal: the tests that need the server
//! then fail loudly in CI and say they skipped elsewhere.

use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A database server the integration tests talk to: its Debian service name and its port.
struct Service {
    name: &'static str,
    port: u16,
}

const SERVICES: [Service; 3] = [
    Service {
        name: "postgresql",
        port: 5432,
    },
    Service {
        name: "mariadb",
        port: 3306,
    },
    Service {
        name: "redis-server",
        port: 6379,
    },
];

fn answers(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok()
}

fn is_root() -> bool {
    static ROOT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ROOT.get_or_init(|| {
        Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
    })
}

/// Runs a system command as root: directly when we are root, else through `sudo -n`.
fn as_root(program: &str, args: &[&str]) -> bool {
    let mut cmd = if is_root() {
        Command::new(program)
    } else {
        let mut c = Command::new("sudo");
        c.args(["-n", program]);
        c
    };
    cmd.args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Database servers this run started; dropping it stops exactly those (also on an early error).
#[must_use = "dropping it stops what was started"]
pub struct StartedServices(Vec<&'static str>);

impl Drop for StartedServices {
    fn drop(&mut self) {
        for name in self.0.drain(..) {
            eprintln!("xtask: stopping {name} (started by this run)");
            if !as_root("service", &[name, "stop"]) {
                eprintln!("xtask: could not stop {name}");
            }
        }
    }
}

/// Starts every database server that does not answer at its port, waiting up to 60 s for it.
pub fn ensure_databases() -> StartedServices {
    let mut started = Vec::new();
    for service in &SERVICES {
        if answers(service.port) {
            continue;
        }
        eprintln!(
            "xtask: {} does not answer at 127.0.0.1:{}; starting it",
            service.name, service.port
        );
        if !as_root("service", &[service.name, "start"]) {
            eprintln!(
                "xtask: could not start {}: its tests will skip (fail in CI)",
                service.name
            );
            continue;
        }
        started.push(service.name);
        let deadline = Instant::now() + Duration::from_secs(60);
        while !answers(service.port) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(250));
        }
        if !answers(service.port) {
            eprintln!("xtask: {} started but does not answer yet", service.name);
        }
    }
    StartedServices(started)
}

/// Installs the client libraries diesel's PostgreSQL and MySQL backends link against (libpq,
/// libmariadb) when pkg-config does not find them: without them the test build itself fails.
pub fn ensure_c_libraries() {
    let found = |lib: &str| {
        Command::new("pkg-config")
            .args(["--exists", lib])
            .status()
            .is_ok_and(|s| s.success())
    };
    let missing: Vec<&str> = [("libpq", "libpq-dev"), ("libmariadb", "libmariadb-dev")]
        .into_iter()
        .filter(|(lib, _)| !found(lib))
        .map(|(_, package)| package)
        .collect();
    if missing.is_empty() {
        return;
    }
    eprintln!("xtask: installing {missing:?} (Debian) for diesel's database backends");
    let mut install = vec!["install", "-y", "--no-install-recommends", "pkg-config"];
    install.extend(&missing);
    let installed = as_root("apt-get", &install)
        || (as_root("apt-get", &["update"]) && as_root("apt-get", &install));
    if !installed {
        eprintln!("xtask: could not install {missing:?}: the tests will not build");
    }
}

/// Installs Debian's Chromium and ChromeDriver for the browser test when they are missing.
/// A failure is reported, not fatal: the browser test then says it skipped (or fails in CI).
pub fn ensure_browser() {
    let present = |p: &str| Path::new(p).exists();
    if std::env::var_os("CHROMIUM").is_some()
        || (present("/usr/bin/chromium") && present("/usr/bin/chromedriver"))
    {
        return;
    }
    if !present("/usr/bin/apt-get") {
        eprintln!(
            "xtask: chromium/chromedriver missing and no apt-get: the browser test will skip"
        );
        return;
    }
    eprintln!("xtask: installing chromium and chromium-driver (Debian) for the browser test");
    let install = [
        "install",
        "-y",
        "--no-install-recommends",
        "chromium",
        "chromium-driver",
    ];
    let installed = as_root("apt-get", &install)
        || (as_root("apt-get", &["update"]) && as_root("apt-get", &install));
    if !installed {
        eprintln!("xtask: could not install chromium: the browser test will skip (fail in CI)");
    }
}
