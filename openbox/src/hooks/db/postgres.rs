//! tokio-postgres: [`GovernedClient`] wraps a `tokio_postgres::Client`.
//!
//! ```no_run
//! # async fn demo(client: tokio_postgres::Client) -> Result<(), Box<dyn std::error::Error>> {
//! use openbox::hooks::db::postgres::GovernedClient;
//! let db = GovernedClient::new(client, "app_db", "127.0.0.1", 5432);
//! db.execute("INSERT INTO notes (body) VALUES ($1)", &[&"hello"]).await?; // "$1", never "hello"
//! # Ok(()) }
//! ```

use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Row};

use super::{DbError, DbTarget, ReportedError, flatten, governed, report_with_code};

impl ReportedError for tokio_postgres::Error {
    fn report(&self) -> String {
        match self.as_db_error() {
            // The server's own message: `Display` would add its DETAIL line, with values.
            Some(db) => report_with_code(Some(db.code().code()), db.message()),
            None => report_with_code(None, &self.to_string()),
        }
    }
}

/// A tokio-postgres client whose statements are governed.
#[derive(Debug)]
pub struct GovernedClient {
    client: Client,
    target: DbTarget,
}

/// Errors of [`GovernedClient`].
pub type PgError = DbError<tokio_postgres::Error>;

type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

impl GovernedClient {
    /// Wraps `client`, connected to database `db_name` at `host:port`.
    pub fn new(client: Client, db_name: &str, host: &str, port: u16) -> Self {
        GovernedClient {
            client,
            target: DbTarget::new("postgresql").name(db_name).server(host, port),
        }
    }

    /// The wrapped client (statements made through it are not governed).
    pub fn inner(&self) -> &Client {
        &self.client
    }

    /// `Client::execute`; returns the number of rows modified.
    pub async fn execute(&self, statement: &str, params: Params<'_>) -> Result<u64, PgError> {
        flatten(
            governed(
                &self.target,
                statement,
                None,
                || self.client.execute(statement, params),
                |n| Some(*n),
            )
            .await,
        )
    }

    /// `Client::query`.
    pub async fn query(&self, statement: &str, params: Params<'_>) -> Result<Vec<Row>, PgError> {
        flatten(
            governed(
                &self.target,
                statement,
                None,
                || self.client.query(statement, params),
                |rows| Some(rows.len() as u64),
            )
            .await,
        )
    }

    /// `Client::query_one`.
    pub async fn query_one(&self, statement: &str, params: Params<'_>) -> Result<Row, PgError> {
        flatten(
            governed(
                &self.target,
                statement,
                None,
                || self.client.query_one(statement, params),
                |_| Some(1),
            )
            .await,
        )
    }

    /// `Client::query_opt`.
    pub async fn query_opt(
        &self,
        statement: &str,
        params: Params<'_>,
    ) -> Result<Option<Row>, PgError> {
        flatten(
            governed(
                &self.target,
                statement,
                None,
                || self.client.query_opt(statement, params),
                |r| Some(u64::from(r.is_some())),
            )
            .await,
        )
    }

    /// `Client::batch_execute` (several statements, no parameters), as one operation.
    pub async fn batch_execute(&self, statements: &str) -> Result<(), PgError> {
        flatten(
            governed(
                &self.target,
                statements,
                None,
                || self.client.batch_execute(statements),
                |_| None,
            )
            .await,
        )
    }
}
