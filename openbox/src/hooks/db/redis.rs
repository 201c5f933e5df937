//! redis: [`GovernedRedis`] wraps any async connection (`MultiplexedConnection`,
//! `ConnectionManager`, …) and implements `redis::aio::ConnectionLike`, so every command —
//! `AsyncCommands` methods, `cmd(…).query_async`, pipelines — is governed.
//!
//! ```no_run
//! # async fn demo(conn: redis::aio::MultiplexedConnection) -> redis::RedisResult<()> {
//! use redis::AsyncCommands;
//! let mut db = openbox::hooks::db::redis::GovernedRedis::new(conn, "127.0.0.1", 6379);
//! let _: () = db.set("session:42", "secret value").await?; // reported as "SET session:42"
//! # Ok(()) }
//! ```
//!
//! `db_statement` is the command name and its key only; values are never sent. Commands that
//! carry credentials (`AUTH`, `HELLO … AUTH`, `MIGRATE … AUTH`, `CONFIG SET requirepass`,
//! `ACL SETUSER … >password`) are reported by their name (and subcommand) alone.

use redis::aio::ConnectionLike;
use redis::{Arg, Cmd, Pipeline, RedisError, RedisFuture, Value};

use super::{DbTarget, ReportedError, governed, report_with_code};

impl ReportedError for RedisError {
    fn report(&self) -> String {
        report_with_code(self.code(), &self.to_string())
    }
}

/// Commands whose arguments may carry credentials: only the name (and, for the container
/// commands, the subcommand) is reported.
const CREDENTIAL_COMMANDS: [&str; 3] = ["AUTH", "HELLO", "MIGRATE"];
/// Commands whose first argument is a subcommand and whose later arguments may be secrets.
const ADMIN_COMMANDS: [&str; 2] = ["CONFIG", "ACL"];

/// An async redis connection whose commands are governed.
#[derive(Debug, Clone)]
pub struct GovernedRedis<C> {
    inner: C,
    target: DbTarget,
}

impl<C: ConnectionLike> GovernedRedis<C> {
    /// Wraps `inner`, connected to `host:port`; the database index comes from the connection.
    pub fn new(inner: C, host: &str, port: u16) -> Self {
        let db = inner.get_db();
        GovernedRedis {
            inner,
            target: DbTarget::new("redis")
                .name(db.to_string())
                .server(host, port),
        }
    }

    /// The wrapped connection (commands sent through it are not governed).
    pub fn inner_mut(&mut self) -> &mut C {
        &mut self.inner
    }
}

fn text(arg: Option<Arg<&[u8]>>) -> Option<String> {
    match arg? {
        Arg::Simple(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
        _ => None,
    }
}

/// `(operation, statement)`: the command name, and the name with its key (no values).
fn describe(cmd: &Cmd) -> (String, String) {
    let mut args = cmd.args_iter();
    let name = text(args.next()).unwrap_or_default().to_ascii_uppercase();
    if CREDENTIAL_COMMANDS.contains(&name.as_str()) {
        return (name.clone(), name);
    }
    let second = text(args.next());
    if ADMIN_COMMANDS.contains(&name.as_str()) {
        let statement = match second {
            Some(sub) => format!("{name} {}", sub.to_ascii_uppercase()),
            None => name.clone(),
        };
        return (name, statement);
    }
    let statement = match second {
        Some(key) => format!("{name} {key}"),
        None => name.clone(),
    };
    (name, statement)
}

fn governance_error(e: super::HookError) -> RedisError {
    RedisError::from(std::io::Error::from(e))
}

impl<C: ConnectionLike + Send> ConnectionLike for GovernedRedis<C> {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        let GovernedRedis { inner, target } = self;
        Box::pin(async move {
            let (op, statement) = describe(cmd);
            governed(
                target,
                &statement,
                Some(&op),
                || inner.req_packed_command(cmd),
                |_| None,
            )
            .await
            .unwrap_or_else(|e| Err(governance_error(e)))
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        let GovernedRedis { inner, target } = self;
        Box::pin(async move {
            let parts: Vec<String> = pipeline.cmd_iter().map(|c| describe(c).1).collect();
            let statement = parts.join("; ");
            governed(
                target,
                &statement,
                Some("PIPELINE"),
                || inner.req_packed_commands(pipeline, offset, count),
                |v: &Vec<Value>| Some(v.len() as u64),
            )
            .await
            .unwrap_or_else(|e| Err(governance_error(e)))
        })
    }

    fn get_db(&self) -> i64 {
        self.inner.get_db()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_name_the_key_but_never_the_value() {
        let mut cmd = redis::cmd("set");
        cmd.arg("session:42").arg("secret value");
        assert_eq!(describe(&cmd), ("SET".into(), "SET session:42".into()));
        assert_eq!(
            describe(&redis::cmd("PING")),
            ("PING".into(), "PING".into())
        );
    }

    #[test]
    fn credential_commands_are_reported_by_name_only() {
        let cmd = |args: &[&str]| {
            let mut c = redis::cmd(args[0]);
            for a in &args[1..] {
                c.arg(*a);
            }
            describe(&c).1
        };
        assert_eq!(cmd(&["auth", "pw-secret"]), "AUTH");
        assert_eq!(cmd(&["AUTH", "user", "pw-secret"]), "AUTH");
        assert_eq!(cmd(&["HELLO", "3", "AUTH", "user", "pw-secret"]), "HELLO");
        assert_eq!(
            cmd(&[
                "MIGRATE",
                "h",
                "6379",
                "",
                "0",
                "5",
                "AUTH",
                "pw-secret",
                "KEYS",
                "k"
            ]),
            "MIGRATE"
        );
        assert_eq!(
            cmd(&["CONFIG", "set", "requirepass", "pw-secret"]),
            "CONFIG SET"
        );
        assert_eq!(
            cmd(&["ACL", "SETUSER", "alice", "on", ">pw-secret"]),
            "ACL SETUSER"
        );
    }
}
