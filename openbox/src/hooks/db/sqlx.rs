//! sqlx: a governed pool and a governed wrapper for any executor (connection, transaction),
//! built on sqlx's own `Executor` trait, so `query(…).execute(&db)`, `fetch_all`, `fetch_one`,
//! `query_as`, … all work unchanged.
//!
//! ```no_run
//! # #[cfg(feature = "sqlx-postgres")]
//! # async fn demo(pool: sqlx::PgPool) -> Result<(), sqlx::Error> {
//! use openbox::hooks::db::sqlx::GovernedPool;
//! let db = GovernedPool::postgres(pool);
//! sqlx::query("INSERT INTO notes (body) VALUES ($1)").bind("hello").execute(&db).await?;
//! let mut tx = db.pool().begin().await?;
//! sqlx::query("DELETE FROM notes").execute(db.with(&mut *tx)).await?; // governed too
//! tx.commit().await?;
//! # Ok(()) }
//! ```
//!
//! A governance stop is `sqlx::Error::Io` of kind `PermissionDenied` carrying the
//! [`HookError`](crate::hooks::HookError). `prepare` runs nothing and is not governed.

use std::fmt;
use std::sync::Arc;

use futures::future::{BoxFuture, ready};
use futures::stream::{self, BoxStream, StreamExt};
use sqlx::error::BoxDynError;
use sqlx::{Database, Either, Error, Execute, Executor, Pool, SqlStr};

use super::{DbTarget, ReportedError, Statement, report_with_code};

impl ReportedError for Error {
    fn report(&self) -> String {
        match self {
            Error::Database(db) => report_with_code(db.code().as_deref(), db.message()),
            other => report_with_code(None, &other.to_string()),
        }
    }
}

/// Row counts of a query result.
pub trait RowsAffected {
    /// Rows inserted, updated or deleted.
    fn rows_affected(&self) -> u64;
}

#[cfg(feature = "sqlx-postgres")]
impl RowsAffected for sqlx::postgres::PgQueryResult {
    fn rows_affected(&self) -> u64 {
        sqlx::postgres::PgQueryResult::rows_affected(self)
    }
}

#[cfg(feature = "sqlx-mysql")]
impl RowsAffected for sqlx::mysql::MySqlQueryResult {
    fn rows_affected(&self) -> u64 {
        sqlx::mysql::MySqlQueryResult::rows_affected(self)
    }
}

#[cfg(feature = "sqlx-sqlite")]
impl RowsAffected for sqlx::sqlite::SqliteQueryResult {
    fn rows_affected(&self) -> u64 {
        sqlx::sqlite::SqliteQueryResult::rows_affected(self)
    }
}

/// A pool whose statements are governed: pass `&GovernedPool` where sqlx takes an executor.
#[derive(Debug, Clone)]
pub struct GovernedPool<DB: Database> {
    pool: Pool<DB>,
    target: Arc<DbTarget>,
}

impl<DB: Database> GovernedPool<DB> {
    /// Wraps `pool`, reported as `target`.
    pub fn new(pool: Pool<DB>, target: DbTarget) -> Self {
        GovernedPool {
            pool,
            target: Arc::new(target),
        }
    }

    /// The wrapped pool (statements run through it directly are not governed).
    pub fn pool(&self) -> &Pool<DB> {
        &self.pool
    }

    /// Where statements go.
    pub fn target(&self) -> &DbTarget {
        &self.target
    }

    /// Governs another executor of the same database (a connection or a transaction).
    pub fn with<E>(&self, executor: E) -> Governed<E> {
        Governed {
            inner: executor,
            target: self.target.clone(),
        }
    }
}

#[cfg(feature = "sqlx-postgres")]
impl GovernedPool<sqlx::Postgres> {
    /// Wraps a PostgreSQL pool, reading host, port and database from its options.
    pub fn postgres(pool: sqlx::PgPool) -> Self {
        let o = pool.connect_options();
        let mut target = DbTarget::new("postgresql").server(o.get_host(), o.get_port());
        target.name = o.get_database().map(str::to_owned);
        GovernedPool::new(pool, target)
    }
}

#[cfg(feature = "sqlx-mysql")]
impl GovernedPool<sqlx::MySql> {
    /// Wraps a MySQL / MariaDB pool, reading host, port and database from its options.
    pub fn mysql(pool: sqlx::MySqlPool) -> Self {
        let o = pool.connect_options();
        let mut target = DbTarget::new("mysql").server(o.get_host(), o.get_port());
        target.name = o.get_database().map(str::to_owned);
        GovernedPool::new(pool, target)
    }
}

#[cfg(feature = "sqlx-sqlite")]
impl GovernedPool<sqlx::Sqlite> {
    /// Wraps a SQLite pool, reporting its file as the database name.
    pub fn sqlite(pool: sqlx::SqlitePool) -> Self {
        let name = pool.connect_options().get_filename().display().to_string();
        GovernedPool::new(pool, DbTarget::new("sqlite").name(name))
    }
}

/// Any executor whose statements are governed (see [`GovernedPool::with`]).
pub struct Governed<E> {
    inner: E,
    target: Arc<DbTarget>,
}

impl<E: fmt::Debug> fmt::Debug for Governed<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Governed")
            .field("inner", &self.inner)
            .field("target", &self.target)
            .finish()
    }
}

/// A query taken apart (to read its SQL) and put back together.
struct Prepared<DB: Database> {
    sql: SqlStr,
    arguments: Option<Result<Option<DB::Arguments>, BoxDynError>>,
    persistent: bool,
    statement: Option<DB::Statement>,
}

impl<DB: Database> Prepared<DB> {
    fn from_query<'q, Q: Execute<'q, DB>>(mut query: Q) -> Self {
        let persistent = query.persistent();
        let statement = query.statement().cloned();
        let arguments = Some(query.take_arguments());
        Prepared {
            sql: query.sql(),
            arguments,
            persistent,
            statement,
        }
    }
}

impl<'q, DB: Database> Execute<'q, DB> for Prepared<DB> {
    fn sql(self) -> SqlStr {
        self.sql
    }

    fn statement(&self) -> Option<&DB::Statement> {
        self.statement.as_ref()
    }

    fn take_arguments(&mut self) -> Result<Option<DB::Arguments>, BoxDynError> {
        self.arguments.take().unwrap_or(Ok(None))
    }

    fn persistent(&self) -> bool {
        self.persistent
    }
}

fn stopped(e: super::HookError) -> Error {
    Error::Io(std::io::Error::from(e))
}

#[derive(Default)]
struct Counts {
    rows: u64,
    affected: Option<u64>,
    error: Option<String>,
}

impl Counts {
    fn rowcount(&self) -> Option<u64> {
        self.affected.or(Some(self.rows))
    }
}

/// The statement of a result stream until its `completed` is sent: at the end of the stream,
/// at its first error, or — when the caller drops the stream before either — in the background.
struct Completion {
    statement: Option<Statement>,
    counts: Counts,
}

impl Completion {
    fn count<R, W>(&mut self, item: &Either<R, W>)
    where
        R: RowsAffected,
    {
        match item {
            Either::Left(result) => {
                *self.counts.affected.get_or_insert(0) += result.rows_affected()
            }
            Either::Right(_) => self.counts.rows += 1,
        }
    }

    /// Sends `completed`; `Some` when its verdict stops the statement.
    async fn complete(&mut self) -> Option<super::HookError> {
        let statement = self.statement.take()?;
        let error = self.counts.error.take();
        statement
            .completed(self.counts.rowcount(), error)
            .await
            .err()
    }
}

impl Drop for Completion {
    fn drop(&mut self) {
        if let Some(statement) = self.statement.take() {
            statement.completed_detached(self.counts.rowcount(), self.counts.error.take());
        }
    }
}

impl<'c, E> Executor<'c> for Governed<E>
where
    E: Executor<'c> + 'c,
    <E::Database as Database>::QueryResult: RowsAffected,
{
    type Database = E::Database;

    fn fetch_many<'e, 'q: 'e, Q>(
        self,
        query: Q,
    ) -> BoxStream<
        'e,
        Result<
            Either<<E::Database as Database>::QueryResult, <E::Database as Database>::Row>,
            Error,
        >,
    >
    where
        'c: 'e,
        Q: 'q + Execute<'q, Self::Database>,
    {
        let prepared = Prepared::from_query(query);
        let Some(statement) = Statement::begin(&self.target, prepared.sql.as_str(), None) else {
            return self.inner.fetch_many(prepared);
        };
        let inner = self.inner;
        let governed = async move {
            if let Err(e) = statement.started().await {
                return stream::once(ready(Err(stopped(e)))).boxed();
            }
            let completion = Completion {
                statement: Some(statement),
                counts: Counts::default(),
            };
            let body = inner.fetch_many(prepared);
            // The state is `None` once the stream has ended.
            stream::unfold(Some((body, completion)), |state| async move {
                let (mut body, mut completion) = state?;
                match body.next().await {
                    Some(Ok(item)) => {
                        completion.count(&item);
                        Some((Ok(item), Some((body, completion))))
                    }
                    // The caller stops at the first error: `completed` goes first. The driver's
                    // error is what the caller sees; a stop from `completed` fails the activity.
                    Some(Err(e)) => {
                        completion.counts.error = Some(e.report());
                        let _ = completion.complete().await;
                        Some((Err(e), None))
                    }
                    // After the last row: `completed`, whose stop becomes one last error item.
                    None => completion
                        .complete()
                        .await
                        .map(|stop| (Err(stopped(stop)), None)),
                }
            })
            .boxed()
        };
        stream::once(governed).flatten().boxed()
    }

    fn fetch_optional<'e, 'q: 'e, Q>(
        self,
        query: Q,
    ) -> BoxFuture<'e, Result<Option<<E::Database as Database>::Row>, Error>>
    where
        'c: 'e,
        Q: 'q + Execute<'q, Self::Database>,
    {
        let prepared = Prepared::from_query(query);
        let Some(statement) = Statement::begin(&self.target, prepared.sql.as_str(), None) else {
            return self.inner.fetch_optional(prepared);
        };
        let inner = self.inner;
        Box::pin(async move {
            statement.started().await.map_err(stopped)?;
            let result = inner.fetch_optional(prepared).await;
            let (rowcount, error) = match &result {
                Ok(row) => (Some(u64::from(row.is_some())), None),
                Err(e) => (None, Some(e.report())),
            };
            statement
                .completed(rowcount, error)
                .await
                .map_err(stopped)?;
            result
        })
    }

    fn prepare_with<'e>(
        self,
        sql: SqlStr,
        parameters: &'e [<Self::Database as Database>::TypeInfo],
    ) -> BoxFuture<'e, Result<<Self::Database as Database>::Statement, Error>>
    where
        'c: 'e,
    {
        self.inner.prepare_with(sql, parameters)
    }
}

impl<'p, DB> Executor<'p> for &'p GovernedPool<DB>
where
    DB: Database,
    for<'a> &'a Pool<DB>: Executor<'a, Database = DB>,
    DB::QueryResult: RowsAffected,
{
    type Database = DB;

    fn fetch_many<'e, 'q: 'e, Q>(
        self,
        query: Q,
    ) -> BoxStream<'e, Result<Either<DB::QueryResult, DB::Row>, Error>>
    where
        'p: 'e,
        Q: 'q + Execute<'q, DB>,
    {
        self.with(&self.pool).fetch_many(query)
    }

    fn fetch_optional<'e, 'q: 'e, Q>(
        self,
        query: Q,
    ) -> BoxFuture<'e, Result<Option<DB::Row>, Error>>
    where
        'p: 'e,
        Q: 'q + Execute<'q, DB>,
    {
        self.with(&self.pool).fetch_optional(query)
    }

    fn prepare_with<'e>(
        self,
        sql: SqlStr,
        parameters: &'e [DB::TypeInfo],
    ) -> BoxFuture<'e, Result<DB::Statement, Error>>
    where
        'p: 'e,
    {
        self.pool.prepare_with(sql, parameters)
    }
}
