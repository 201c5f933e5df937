//! Database servers of the machine (PostgreSQL, MariaDB, Redis at their standard ports).
//!
//! A test that needs one calls [`require`]: in CI (`CI=true`) a missing server fails the test
//! loudly; elsewhere the test says it skipped and returns.

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// PostgreSQL: trust auth, database `test`.
pub const POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
/// MariaDB: root without password, database `test`.
pub const MYSQL_URL: &str = "mysql://root@127.0.0.1:3306/test";
/// Redis.
pub const REDIS_URL: &str = "redis://127.0.0.1:6379/";

/// `true` if `name` answers at `addr`; otherwise fails in CI, or reports the skip.
pub fn require(name: &str, addr: &str) -> bool {
    let addr: SocketAddr = addr.parse().expect("valid address");
    if TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok() {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{name} is required in CI but does not answer at {addr}");
    }
    eprintln!(
        "SKIPPED: {name} does not answer at {addr}; this test needs it (it fails instead when CI=true)"
    );
    false
}
