//! Database hooks: governed handles for sqlx, tokio-postgres, rusqlite, diesel, SeaORM and redis.
//!
//! `started` carries `db_system`, `db_name`, `db_operation` (what the SQL text does, or the
//! redis command), `db_statement` (placeholders only — bound parameter values are never sent;
//! for redis the command and its key, never values, and only the command name of commands that
//! carry credentials), `server_address`, `server_port` and `rowcount` (`null` at `started`, so
//! that both stages carry the same keys, as the reference's do); `completed` fills `rowcount`
//! and `error`. A BLOCK at `started` means the statement is not sent.
//!
//! # How SQL is judged
//!
//! SQL text is read by a parser in the connection's dialect (PostgreSQL, MySQL/MariaDB, SQLite),
//! statement by statement, so that what Core is told is what the server will do:
//!
//! * each statement counts as the most consequential thing it does — a data-modifying CTE
//!   (`WITH d AS (DELETE …) SELECT …`) as `DELETE`, `SELECT … INTO t` as `CREATE` (MySQL: `SET`,
//!   it sets variables), `EXPLAIN ANALYZE <statement>` as the statement it runs, a `SELECT` of a
//!   function known to change something (`setval`, `lo_unlink`, `pg_advisory_lock`,
//!   `set_config`, `dblink_exec`, `GET_LOCK`, `load_extension`, … the list per dialect is
//!   below) as that change; comments are skipped, MySQL's executable comments (`/*! … */`,
//!   MariaDB's `/*M! … */`) are read as the server runs them;
//! * a text of several statements (`batch_execute`, `execute_batch`, `sqlx::raw_sql`) is one
//!   operation reported as its most consequential statement — `DROP`/`TRUNCATE` > `CREATE`,
//!   `ALTER`, `GRANT`, `REVOKE`, `RENAME`, `COMMENT` > `DELETE` > `UPDATE`/`MERGE` > `INSERT` >
//!   other writes (`SET`, `CALL`, `COPY`, `LOCK`, `PRAGMA`, …) > `SELECT`/`SHOW`/`DESCRIBE`/
//!   `EXPLAIN` > `BEGIN`/`COMMIT`/`ROLLBACK`/`SAVEPOINT`/`RELEASE` — in `db_operation` and the
//!   span's name, with attribute `db.operations` listing each statement's operation in order
//!   (and `db.operation.batch.size`), so `BEGIN; DELETE FROM t; COMMIT` reaches Core as `DELETE`;
//! * text the parser cannot read (a dialect extension it does not know, a PL/pgSQL `DO` block,
//!   text over 1 MiB) is `UNKNOWN`, which counts as a write — never as a read.
//!
//! Under `fail_closed_destructive` a text is stopped when Core gives no verdict unless every
//! statement in it only reads (the operations of the last two groups above). A user-defined
//! function is not known to write: what it does is up to its definition, which the SDK cannot
//! see.
//!
//! | Dialect | Functions known to change something | Reported as |
//! |---|---|---|
//! | PostgreSQL | `nextval`, `setval`, `lo_put`, `lowrite`, `lo_truncate`, `lo_truncate64` | `UPDATE` |
//! | PostgreSQL | `lo_import`, `lo_create`, `lo_creat`, `lo_from_bytea`, `pg_logical_emit_message` | `INSERT` |
//! | PostgreSQL | `lo_unlink`, `pg_file_unlink` | `DELETE` |
//! | PostgreSQL | `lo_export`, `pg_file_write`, `pg_file_rename` (server files) | `COPY` |
//! | PostgreSQL | `pg_advisory_lock`, `pg_advisory_xact_lock`, their `_shared` and `pg_try_` forms, `pg_advisory_unlock`, `pg_advisory_unlock_shared`, `pg_advisory_unlock_all` | `LOCK` |
//! | PostgreSQL | `set_config` | `SET` |
//! | PostgreSQL | `pg_notify` | `NOTIFY` |
//! | PostgreSQL | `dblink`, `dblink_exec`, `dblink_connect`, `dblink_connect_u`, `dblink_send_query`, `dblink_open`, `query_to_xml`, `query_to_xmlschema`, `query_to_xml_and_xmlschema` (they run other SQL); `pg_terminate_backend`, `pg_cancel_backend`, `pg_reload_conf`, `pg_rotate_logfile`, `pg_promote`, `pg_switch_wal`, `pg_create_restore_point`, `pg_create_physical_replication_slot`, `pg_create_logical_replication_slot`, `pg_drop_replication_slot`, `pg_backup_start`, `pg_backup_stop`, `pg_stat_reset`, `pg_stat_reset_shared`, `pg_stat_statements_reset` (administration) | `EXECUTE` |
//! | MySQL, MariaDB | `nextval`, `setval` | `UPDATE` |
//! | MySQL, MariaDB | `get_lock`, `release_lock`, `release_all_locks` | `LOCK` |
//! | MySQL, MariaDB | `sys_exec`, `sys_eval` (run shell commands) | `EXECUTE` |
//! | SQLite | `load_extension`, `fts3_tokenizer` | `EXECUTE` |
//! | SQLite | `writefile` | `COPY` |
//!
//! A PostgreSQL or MySQL text holding a backslash is also read with the other backslash
//! convention (`standard_conforming_strings = off`, `NO_BACKSLASH_ESCAPES`): a server set that way
//! would see other statements in it, and the more consequential reading counts.
//!
//! `error` is the SQLSTATE (when the driver has one) and the server's message with its quoted
//! literals replaced by `?`: drivers put bound values in their messages
//! (`invalid input syntax for type integer: "…"`, `Duplicate entry '…' for key …`) and in
//! `DETAIL` lines (`Key (email)=(…) already exists`), which are never sent.

// The shared statement machinery is only used by the driver modules enabled by features.
#![cfg_attr(
    not(any(
        feature = "sqlx-postgres",
        feature = "sqlx-mysql",
        feature = "sqlx-sqlite",
        feature = "tokio-postgres",
        feature = "rusqlite",
        feature = "diesel-postgres",
        feature = "diesel-mysql",
        feature = "diesel-sqlite",
        feature = "diesel-async-postgres",
        feature = "sea-orm",
        feature = "redis"
    )),
    allow(dead_code)
)]

#[cfg(any(
    feature = "sqlx-postgres",
    feature = "sqlx-mysql",
    feature = "sqlx-sqlite",
    feature = "tokio-postgres",
    feature = "rusqlite",
    feature = "diesel-postgres",
    feature = "diesel-mysql",
    feature = "diesel-sqlite",
    feature = "diesel-async-postgres",
    feature = "sea-orm"
))]
pub(crate) mod classify;
#[cfg(any(
    feature = "diesel-postgres",
    feature = "diesel-mysql",
    feature = "diesel-sqlite",
    feature = "diesel-async-postgres",
    feature = "sea-orm"
))]
mod conninfo;
#[cfg(any(
    feature = "diesel-postgres",
    feature = "diesel-mysql",
    feature = "diesel-sqlite",
    feature = "diesel-async-postgres"
))]
#[cfg_attr(
    docsrs,
    doc(cfg(any(
        feature = "diesel-postgres",
        feature = "diesel-mysql",
        feature = "diesel-sqlite",
        feature = "diesel-async-postgres"
    )))
)]
pub mod diesel;
#[cfg(feature = "diesel-async-postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "diesel-async-postgres")))]
pub mod diesel_async;
#[cfg(feature = "tokio-postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio-postgres")))]
pub mod postgres;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub mod redis;
#[cfg(feature = "sea-orm")]
#[cfg_attr(docsrs, doc(cfg(feature = "sea-orm")))]
pub mod sea_orm;
#[cfg(feature = "rusqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "rusqlite")))]
pub mod sqlite;
#[cfg(any(
    feature = "sqlx-postgres",
    feature = "sqlx-mysql",
    feature = "sqlx-sqlite"
))]
#[cfg_attr(
    docsrs,
    doc(cfg(any(
        feature = "sqlx-postgres",
        feature = "sqlx-mysql",
        feature = "sqlx-sqlite"
    )))
)]
pub mod sqlx;

use serde_json::{Map, Value};

use super::{HookCall, HookError, truncate_body};
use crate::wire::{DbQuerySpan, HookSpan, SpanKind};

/// Longest statement text sent to Core (the reference's bound).
pub(crate) const MAX_STATEMENT_CHARS: usize = 2000;

/// Where statements go: reported on every `db_query` span.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbTarget {
    /// `postgresql`, `mysql`, `sqlite`, `redis`, …
    pub system: String,
    /// Database name (or index for redis).
    pub name: Option<String>,
    /// Server host.
    pub host: Option<String>,
    /// Server port.
    pub port: Option<u16>,
}

impl DbTarget {
    /// A target of `system` with nothing else known.
    pub fn new(system: impl Into<String>) -> Self {
        DbTarget {
            system: system.into(),
            name: None,
            host: None,
            port: None,
        }
    }

    /// With a database name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// With a server address.
    pub fn server(mut self, host: impl Into<String>, port: u16) -> Self {
        self.host = Some(host.into());
        self.port = Some(port);
        self
    }

    /// The target for a connection URL: `postgres://` / `mysql://` URLs give host, port and
    /// database (never the user or password); for PostgreSQL, so does a libpq keyword/value
    /// string (`host=… port=… dbname=…`); a SQLite connection is its file (`sqlite://`,
    /// `sqlite:` and `file:` prefixes and `?…` options dropped). Anything else gives the system
    /// alone: the text could hold a password anywhere.
    #[cfg(any(
        feature = "diesel-postgres",
        feature = "diesel-mysql",
        feature = "diesel-sqlite",
        feature = "diesel-async-postgres",
        feature = "sea-orm"
    ))]
    pub(crate) fn from_url(system: &'static str, url: &str) -> DbTarget {
        match url::Url::parse(url) {
            // With an authority (`scheme://`): without one, the path is not a database name
            // (`postgres:/app:pw@host` would name the password).
            Ok(u)
                if u.has_authority()
                    && matches!(u.scheme(), "postgres" | "postgresql" | "mysql" | "mariadb") =>
            {
                let mut target = DbTarget::new(system);
                let name = u.path().trim_start_matches('/');
                if !name.is_empty() {
                    target = target.name(name);
                }
                if let Some(host) = u.host_str() {
                    let default = if system == "mysql" { 3306 } else { 5432 };
                    target = target.server(host, u.port().unwrap_or(default));
                }
                target
            }
            _ if system == "sqlite" => {
                let file = ["sqlite://", "sqlite:", "file:"]
                    .iter()
                    .find_map(|p| url.strip_prefix(p))
                    .unwrap_or(url);
                DbTarget::new(system).name(file.split('?').next().unwrap_or(file))
            }
            _ if system == "postgresql" => {
                let pairs = conninfo::keywords(url);
                let value = |key: &str| {
                    pairs
                        .iter()
                        .find_map(|(k, v)| (k == key && !v.is_empty()).then_some(v.as_str()))
                };
                let mut target = DbTarget::new(system);
                if let Some(name) = value("dbname") {
                    target = target.name(name);
                }
                // Several hosts (`host=a,b`): the first, as libpq tries it first.
                if let Some(host) = value("host").and_then(|h| h.split(',').next()) {
                    let port = value("port")
                        .and_then(|p| p.split(',').next()?.parse().ok())
                        .unwrap_or(5432);
                    target = target.server(host, port);
                }
                target
            }
            _ => DbTarget::new(system),
        }
    }

    fn span(
        &self,
        operation: &str,
        statement: &str,
        rowcount: Option<Option<u64>>,
        error: Option<String>,
    ) -> HookSpan {
        HookSpan::DbQuery(DbQuerySpan {
            db_system: self.system.clone(),
            db_name: self.name.clone(),
            db_operation: operation.to_owned(),
            db_statement: truncate_body(statement, MAX_STATEMENT_CHARS),
            server_address: Some(self.host.clone().unwrap_or_else(|| "unknown".into())),
            server_port: self.port,
            rowcount,
            error,
        })
    }

    /// `db.system`, `db.name`, `db.operation`; for a text of several statements also
    /// `db.operations` (each statement's operation, in order) and `db.operation.batch.size`.
    fn attributes(&self, operation: &str, statements: &[&str]) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("db.system".into(), self.system.clone().into());
        if let Some(n) = &self.name {
            m.insert("db.name".into(), n.clone().into());
        }
        m.insert("db.operation".into(), operation.into());
        if statements.len() > 1 {
            m.insert(BATCH_OPERATIONS_ATTRIBUTE.into(), statements.into());
            m.insert("db.operation.batch.size".into(), statements.len().into());
        }
        m
    }
}

/// The attribute listing the operation of each statement of a text that holds several.
pub(crate) const BATCH_OPERATIONS_ATTRIBUTE: &str = "db.operations";

/// A statement about to run: the hook call (if inside a governed activity) and what it reports.
pub(crate) struct Statement {
    call: HookCall,
    target: DbTarget,
    operation: String,
    text: String,
}

impl Statement {
    /// `None` outside a governed activity. `command` names the operation of a command that is
    /// not SQL (redis); without it `text` is SQL, read by a parser in the target's dialect
    /// ([`classify`]).
    pub(crate) fn begin(target: &DbTarget, text: &str, command: Option<&str>) -> Option<Statement> {
        // Outside a governed activity nothing is evaluated: the text is not even parsed.
        crate::governance::scope::ActivityScope::current()?;
        let (operation, statements) = match command {
            Some(name) => (name, Vec::new()),
            None => sql_operations(text, &target.system),
        };
        let span = tracing::info_span!("db statement", otel.name = %operation, otel.kind = "client", db.system = %target.system);
        let call = HookCall::begin(operation, SpanKind::Client, Some(&span))?;
        Some(Statement {
            call: call.with_attributes(target.attributes(operation, &statements)),
            target: target.clone(),
            operation: operation.to_owned(),
            text: text.to_owned(),
        })
    }

    #[cfg(any(
        feature = "sqlx-postgres",
        feature = "sqlx-mysql",
        feature = "sqlx-sqlite",
        feature = "tokio-postgres",
        feature = "sea-orm",
        feature = "redis",
        feature = "diesel-async-postgres"
    ))]
    pub(crate) async fn started(&self) -> Result<(), HookError> {
        self.call
            .started(
                self.target
                    .span(&self.operation, &self.text, Some(None), None),
            )
            .await
    }

    #[cfg(any(
        feature = "sqlx-postgres",
        feature = "sqlx-mysql",
        feature = "sqlx-sqlite",
        feature = "tokio-postgres",
        feature = "sea-orm",
        feature = "redis",
        feature = "diesel-async-postgres"
    ))]
    pub(crate) async fn completed(
        &self,
        rowcount: Option<u64>,
        error: Option<String>,
    ) -> Result<(), HookError> {
        self.call
            .completed(
                self.target
                    .span(&self.operation, &self.text, Some(rowcount), error),
            )
            .await
    }

    /// `completed` without waiting for a verdict, for a statement whose result stream was
    /// dropped before its end: Core still learns how far it got.
    #[cfg(any(
        feature = "sqlx-postgres",
        feature = "sqlx-mysql",
        feature = "sqlx-sqlite",
        feature = "diesel-async-postgres"
    ))]
    pub(crate) fn completed_detached(self, rowcount: Option<u64>, error: Option<String>) {
        let span = self
            .target
            .span(&self.operation, &self.text, Some(rowcount), error);
        self.call.completed_detached(span);
    }

    #[cfg(any(
        feature = "rusqlite",
        feature = "diesel-postgres",
        feature = "diesel-mysql",
        feature = "diesel-sqlite",
        feature = "diesel-async-postgres"
    ))]
    pub(crate) fn started_blocking(&self) -> Result<(), HookError> {
        self.call.started_blocking(
            self.target
                .span(&self.operation, &self.text, Some(None), None),
        )
    }

    #[cfg(any(
        feature = "rusqlite",
        feature = "diesel-postgres",
        feature = "diesel-mysql",
        feature = "diesel-sqlite",
        feature = "diesel-async-postgres"
    ))]
    pub(crate) fn completed_blocking(
        &self,
        rowcount: Option<u64>,
        error: Option<String>,
    ) -> Result<(), HookError> {
        self.call.completed_blocking(self.target.span(
            &self.operation,
            &self.text,
            Some(rowcount),
            error,
        ))
    }
}

/// The operation of a SQL text and each of its statements' (see [`classify`]).
#[cfg(any(
    feature = "sqlx-postgres",
    feature = "sqlx-mysql",
    feature = "sqlx-sqlite",
    feature = "tokio-postgres",
    feature = "rusqlite",
    feature = "diesel-postgres",
    feature = "diesel-mysql",
    feature = "diesel-sqlite",
    feature = "diesel-async-postgres",
    feature = "sea-orm"
))]
fn sql_operations(text: &str, system: &str) -> (&'static str, Vec<&'static str>) {
    let c = classify::classify(text, classify::Dialect::of_system(system));
    (c.operation, c.statements)
}

/// Without a SQL driver there is no SQL text to read.
#[cfg(not(any(
    feature = "sqlx-postgres",
    feature = "sqlx-mysql",
    feature = "sqlx-sqlite",
    feature = "tokio-postgres",
    feature = "rusqlite",
    feature = "diesel-postgres",
    feature = "diesel-mysql",
    feature = "diesel-sqlite",
    feature = "diesel-async-postgres",
    feature = "sea-orm"
)))]
fn sql_operations(_: &str, _: &str) -> (&'static str, Vec<&'static str>) {
    ("UNKNOWN", Vec::new())
}

/// How a driver error is reported to Core: its SQLSTATE and its message without values.
pub(crate) trait ReportedError {
    /// `SQLSTATE 22P02: invalid input syntax for type integer: ?`, or the sanitized message.
    fn report(&self) -> String;
}

/// Replaces quoted literals (`"…"`, `'…'`, `` `…` ``) and `=(…)` value lists by `?`, and drops
/// everything from a `DETAIL:`/`HINT:`/`CONTEXT:` line on: what is left names the failure, not
/// the data.
pub(crate) fn strip_literals(message: &str) -> String {
    let cut = ["\n", "DETAIL:", "HINT:", "CONTEXT:"]
        .iter()
        .filter_map(|m| message.find(m))
        .min()
        .unwrap_or(message.len());
    let message = &message[..cut];
    let mut out = String::with_capacity(message.len());
    let mut chars = message.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' | '\'' | '`' => {
                out.push('?');
                for d in chars.by_ref() {
                    if d == c {
                        break;
                    }
                }
            }
            '=' if chars.peek() == Some(&'(') => {
                out.push_str("=(?)");
                let mut depth = 0;
                for d in chars.by_ref() {
                    match d {
                        '(' => depth += 1,
                        ')' if depth <= 1 => break,
                        ')' => depth -= 1,
                        _ => {}
                    }
                }
            }
            c => out.push(c),
        }
    }
    truncate_body(out.trim(), MAX_STATEMENT_CHARS)
}

/// `SQLSTATE <code>: <message>` with the message's literals stripped.
pub(crate) fn report_with_code(code: Option<&str>, message: &str) -> String {
    let message = strip_literals(message);
    match code {
        Some(code) if !code.is_empty() => format!("SQLSTATE {code}: {message}"),
        _ => message,
    }
}

/// Runs one statement under governance: `run` is only called if `started` allows it.
/// `rows` gives the row count of a successful result.
#[cfg(any(
    feature = "tokio-postgres",
    feature = "sea-orm",
    feature = "redis",
    feature = "diesel-async-postgres"
))]
pub(crate) async fn governed<T, E, F, Fut>(
    target: &DbTarget,
    text: &str,
    command: Option<&str>,
    run: F,
    rows: impl FnOnce(&T) -> Option<u64>,
) -> Result<Result<T, E>, HookError>
where
    E: ReportedError,
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let Some(statement) = Statement::begin(target, text, command) else {
        return Ok(run().await);
    };
    statement.started().await?;
    let result = run().await;
    let (rowcount, error) = match &result {
        Ok(v) => (rows(v), None),
        Err(e) => (None, Some(e.report())),
    };
    statement.completed(rowcount, error).await?;
    Ok(result)
}

/// [`governed`] for a blocking driver.
#[cfg(any(
    feature = "rusqlite",
    feature = "diesel-postgres",
    feature = "diesel-mysql",
    feature = "diesel-sqlite",
    feature = "diesel-async-postgres"
))]
pub(crate) fn governed_blocking<T, E: ReportedError>(
    target: &DbTarget,
    text: &str,
    run: impl FnOnce() -> Result<T, E>,
    rows: impl FnOnce(&T) -> Option<u64>,
) -> Result<Result<T, E>, HookError> {
    let Some(statement) = Statement::begin(target, text, None) else {
        return Ok(run());
    };
    statement.started_blocking()?;
    let result = run();
    let (rowcount, error) = match &result {
        Ok(v) => (rows(v), None),
        Err(e) => (None, Some(e.report())),
    };
    statement.completed_blocking(rowcount, error)?;
    Ok(result)
}

/// The error of a governed handle: governance stopped the statement, or the driver failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DbError<E: std::error::Error + 'static> {
    /// Governance stopped the statement (or refused its result).
    #[error(transparent)]
    Governance(#[from] HookError),
    /// The driver's own error.
    #[error(transparent)]
    Driver(E),
}

impl<E: std::error::Error + 'static> DbError<E> {
    /// The driver error, if that is what this is.
    pub fn driver(&self) -> Option<&E> {
        match self {
            DbError::Driver(e) => Some(e),
            DbError::Governance(_) => None,
        }
    }
}

#[cfg(any(feature = "tokio-postgres", feature = "rusqlite"))]
pub(crate) fn flatten<T, E: std::error::Error + 'static>(
    r: Result<Result<T, E>, HookError>,
) -> Result<T, DbError<E>> {
    match r {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(DbError::Driver(e)),
        Err(h) => Err(DbError::Governance(h)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_messages_lose_their_values() {
        assert_eq!(
            report_with_code(
                Some("22P02"),
                "invalid input syntax for type integer: \"bound-secret\""
            ),
            "SQLSTATE 22P02: invalid input syntax for type integer: ?"
        );
        assert_eq!(
            strip_literals(
                "db error: ERROR: duplicate key value violates unique constraint \"u_email\"\nDETAIL: Key (email)=(alice@example.com) already exists."
            ),
            "db error: ERROR: duplicate key value violates unique constraint ?"
        );
        assert_eq!(
            strip_literals("Key (email)=(alice@example.com) already exists"),
            "Key (email)=(?) already exists"
        );
        assert_eq!(
            strip_literals("Duplicate entry 'alice@example.com' for key 'users.email'"),
            "Duplicate entry ? for key ?"
        );
        assert_eq!(strip_literals("unterminated \"secret"), "unterminated ?");
        assert_eq!(
            strip_literals("UNIQUE constraint failed: notes.note"),
            "UNIQUE constraint failed: notes.note"
        );
    }

    #[cfg(any(
        feature = "diesel-postgres",
        feature = "diesel-mysql",
        feature = "diesel-sqlite",
        feature = "diesel-async-postgres",
        feature = "sea-orm"
    ))]
    #[test]
    fn targets_from_urls_never_keep_credentials() {
        let t = DbTarget::from_url(
            "postgresql",
            "postgres://app:pw-secret@db.internal:6543/orders",
        );
        assert_eq!(t.system, "postgresql");
        let shown = format!("{t:?}");
        assert!(
            shown.contains("db.internal") && shown.contains("6543") && shown.contains("orders")
        );
        assert!(
            !shown.contains("pw-secret") && !shown.contains("app"),
            "{shown}"
        );
        let t = DbTarget::from_url("mysql", "mysql://root@127.0.0.1/test");
        assert_eq!((t.port, t.name.as_deref()), (Some(3306), Some("test")));
        // diesel's PgConnection also takes libpq's keyword/value strings.
        let t = DbTarget::from_url(
            "postgresql",
            "host=db.internal user=app password='pw secret' dbname=orders",
        );
        assert_eq!(
            (t.host.as_deref(), t.port, t.name.as_deref()),
            (Some("db.internal"), Some(5432), Some("orders"))
        );
        assert!(!format!("{t:?}").contains("secret"), "{t:?}");
        // Neither a URL nor keywords: the system alone.
        for (system, text) in [
            ("postgresql", "postgres:/app:pw-secret@host"),
            ("mysql", "mysqlx://app:pw-secret@host/db"),
        ] {
            let t = DbTarget::from_url(system, text);
            assert!(t.name.is_none() && t.host.is_none(), "{text}: {t:?}");
        }
        for url in [
            "file:notes.db?mode=rwc",
            "sqlite://notes.db?mode=rwc",
            "sqlite:notes.db",
        ] {
            let t = DbTarget::from_url("sqlite", url);
            assert_eq!(t.name.as_deref(), Some("notes.db"), "{url}");
        }
    }

    #[cfg(any(
        feature = "diesel-postgres",
        feature = "diesel-mysql",
        feature = "diesel-sqlite",
        feature = "diesel-async-postgres",
        feature = "sea-orm"
    ))]
    proptest::proptest! {
        /// A password in a PostgreSQL connection string, whatever its form, never reaches the
        /// reported target.
        #[test]
        fn no_password_survives_a_postgres_target(
            secret in "SECRET[A-Za-z0-9]{4,12}",
            host in "[a-z]{1,8}",
            form in 0..5u8,
        ) {
            let text = match form {
                0 => format!("host={host} password={secret} dbname=app"),
                1 => format!("password = '{secret} x' host={host}"),
                2 => format!("postgres://user:{secret}@{host}/app?password={secret}"),
                3 => format!("postgresql://{host}/app?user=u&password={secret}"),
                _ => format!("{host} {secret} not a url"),
            };
            let target = DbTarget::from_url("postgresql", &text);
            proptest::prop_assert!(!format!("{target:?}").contains(&secret), "{} -> {:?}", text, target);
        }
    }

    proptest::proptest! {
        /// Whatever surrounds it, a value quoted in a driver's message, in a `=(…)` list or on
        /// a DETAIL line never reaches the reported error.
        #[test]
        fn quoted_values_never_survive(
            before in "[a-zA-Z :,]{0,30}",
            after in "[a-zA-Z :,]{0,30}",
            secret in "SECRET[A-Za-z0-9@.]{4,12}",
            quote in proptest::sample::select(vec!['"', '\'', '`']),
            form in 0..4u8,
        ) {
            let message = match form {
                0 => format!("{before}{quote}{secret}{quote}{after}"),
                1 => format!("{before}Key (email)=({secret}) already exists{after}"),
                2 => format!("{before}\nDETAIL: Failing row contains ({secret}).{after}"),
                _ => format!("{before}{quote}{secret}"),
            };
            let shown = report_with_code(Some("23505"), &message);
            proptest::prop_assert!(!shown.contains(&secret), "{} -> {}", message, shown);
        }
    }
}
