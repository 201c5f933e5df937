//! Database hooks: governed handles for sqlx, tokio-postgres, rusqlite and redis.
//!
//! `started` carries `db_system`, `db_name`, `db_operation` (the SQL verb or command),
//! `db_statement` (placeholders only — bound parameter values are never sent; for redis the
//! command and its key, never values, and only the command name of commands that carry
//! credentials), `server_address`, `server_port` and `rowcount` (`null` at `started`, so that both stages carry
//! the same keys, as the reference's do); `completed` fills `rowcount` and `error`.
//! A BLOCK at `started` means the statement is not sent.
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
        feature = "redis"
    )),
    allow(dead_code)
)]

#[cfg(feature = "tokio-postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio-postgres")))]
pub mod postgres;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub mod redis;
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

/// Longest statement text sent to Core (design §7).
pub const MAX_STATEMENT_CHARS: usize = 2000;

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

    fn attributes(&self, operation: &str) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("db.system".into(), self.system.clone().into());
        if let Some(n) = &self.name {
            m.insert("db.name".into(), n.clone().into());
        }
        m.insert("db.operation".into(), operation.into());
        m
    }
}

/// A statement about to run: the hook call (if inside a governed activity) and what it reports.
pub(crate) struct Statement {
    call: HookCall,
    target: DbTarget,
    operation: String,
    text: String,
}

impl Statement {
    /// `None` outside a governed activity. `operation` defaults to the SQL verb of `text`.
    pub(crate) fn begin(
        target: &DbTarget,
        text: &str,
        operation: Option<&str>,
    ) -> Option<Statement> {
        let operation = operation.map_or_else(|| sql_operation(text).to_owned(), str::to_owned);
        let span = tracing::info_span!("db statement", otel.name = %operation, otel.kind = "client", db.system = %target.system);
        let call = HookCall::begin(operation.clone(), SpanKind::Client, Some(&span))?;
        Some(Statement {
            call: call.with_attributes(target.attributes(&operation)),
            target: target.clone(),
            operation,
            text: text.to_owned(),
        })
    }

    #[cfg(any(
        feature = "sqlx-postgres",
        feature = "sqlx-mysql",
        feature = "sqlx-sqlite",
        feature = "tokio-postgres",
        feature = "redis"
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
        feature = "redis"
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
        feature = "sqlx-sqlite"
    ))]
    pub(crate) fn completed_detached(self, rowcount: Option<u64>, error: Option<String>) {
        let span = self
            .target
            .span(&self.operation, &self.text, Some(rowcount), error);
        self.call.completed_detached(span);
    }

    #[cfg(feature = "rusqlite")]
    pub(crate) fn started_blocking(&self) -> Result<(), HookError> {
        self.call.started_blocking(
            self.target
                .span(&self.operation, &self.text, Some(None), None),
        )
    }

    #[cfg(feature = "rusqlite")]
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
#[cfg(any(feature = "tokio-postgres", feature = "redis"))]
pub(crate) async fn governed<T, E, F, Fut>(
    target: &DbTarget,
    text: &str,
    operation: Option<&str>,
    run: F,
    rows: impl FnOnce(&T) -> Option<u64>,
) -> Result<Result<T, E>, HookError>
where
    E: ReportedError,
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let Some(statement) = Statement::begin(target, text, operation) else {
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
#[cfg(feature = "rusqlite")]
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

/// The leading SQL verb of a statement, as the reference reports it.
pub(crate) fn sql_operation(statement: &str) -> &'static str {
    const VERBS: [&str; 12] = [
        "SELECT", "INSERT", "UPDATE", "DELETE", "CREATE", "DROP", "ALTER", "TRUNCATE", "BEGIN",
        "COMMIT", "ROLLBACK", "EXPLAIN",
    ];
    let head: String = statement
        .trim_start()
        .chars()
        .take(8)
        .collect::<String>()
        .to_ascii_uppercase();
    VERBS
        .into_iter()
        .find(|v| head.starts_with(v))
        .unwrap_or("UNKNOWN")
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

    #[test]
    fn sql_verbs() {
        assert_eq!(sql_operation("  insert into t values ($1)"), "INSERT");
        assert_eq!(sql_operation("SELECT 1"), "SELECT");
        assert_eq!(
            sql_operation("with x as (select 1) select * from x"),
            "UNKNOWN"
        );
        assert_eq!(sql_operation(""), "UNKNOWN");
    }
}
