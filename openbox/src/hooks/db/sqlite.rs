//! rusqlite: [`GovernedConnection`] wraps a `rusqlite::Connection` (blocking; evaluated without
//! stalling an async runtime, see [`crate::hooks`]).
//!
//! ```no_run
//! use openbox::hooks::db::sqlite::GovernedConnection;
//! # fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let db = GovernedConnection::open("notes.db")?;
//! db.execute("INSERT INTO notes (body) VALUES (?1)", ["hello"])?; // "?1", never "hello"
//! # Ok(()) }
//! ```

use std::path::Path;

use rusqlite::{Connection, Params, Row};

use super::{DbError, DbTarget, ReportedError, flatten, governed_blocking, report_with_code};

impl ReportedError for rusqlite::Error {
    fn report(&self) -> String {
        match self {
            rusqlite::Error::SqliteFailure(e, message) => {
                let code = format!("{:?}", e.code);
                report_with_code(Some(&code), message.as_deref().unwrap_or(&e.to_string()))
            }
            other => report_with_code(None, &other.to_string()),
        }
    }
}

/// A rusqlite connection whose statements are governed.
#[derive(Debug)]
pub struct GovernedConnection {
    conn: Connection,
    target: DbTarget,
}

/// Errors of [`GovernedConnection`].
pub type SqliteError = DbError<rusqlite::Error>;

impl GovernedConnection {
    /// Opens (or creates) the database file `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, SqliteError> {
        let path = path.as_ref();
        let conn = Connection::open(path).map_err(DbError::Driver)?;
        Ok(Self::new(conn, &path.display().to_string()))
    }

    /// Wraps `conn`, reported with database name `name`.
    pub fn new(conn: Connection, name: &str) -> Self {
        GovernedConnection {
            conn,
            target: DbTarget::new("sqlite").name(name),
        }
    }

    /// The wrapped connection (statements made through it are not governed).
    pub fn inner(&self) -> &Connection {
        &self.conn
    }

    /// `Connection::execute`; returns the number of rows changed.
    pub fn execute<P: Params>(&self, sql: &str, params: P) -> Result<usize, SqliteError> {
        flatten(governed_blocking(
            &self.target,
            sql,
            || self.conn.execute(sql, params),
            |n| Some(*n as u64),
        ))
    }

    /// `Connection::execute_batch`, as one operation.
    pub fn execute_batch(&self, sql: &str) -> Result<(), SqliteError> {
        flatten(governed_blocking(
            &self.target,
            sql,
            || self.conn.execute_batch(sql),
            |_| None,
        ))
    }

    /// `Connection::query_row`.
    pub fn query_row<T, P: Params, F>(&self, sql: &str, params: P, f: F) -> Result<T, SqliteError>
    where
        F: FnOnce(&Row<'_>) -> rusqlite::Result<T>,
    {
        flatten(governed_blocking(
            &self.target,
            sql,
            || self.conn.query_row(sql, params, f),
            |_| Some(1),
        ))
    }

    /// Runs a query and maps every row, as one operation.
    pub fn query_map<T, P: Params, F>(
        &self,
        sql: &str,
        params: P,
        f: F,
    ) -> Result<Vec<T>, SqliteError>
    where
        F: FnMut(&Row<'_>) -> rusqlite::Result<T>,
    {
        let run = || -> rusqlite::Result<Vec<T>> {
            let mut stmt = self.conn.prepare(sql)?;
            let rows = stmt.query_map(params, f)?;
            rows.collect()
        };
        flatten(governed_blocking(&self.target, sql, run, |v| {
            Some(v.len() as u64)
        }))
    }
}
