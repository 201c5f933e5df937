//! diesel: [`GovernedConnection`] wraps a diesel connection (`PgConnection`, `MysqlConnection`,
//! `SqliteConnection`) and is itself a diesel `Connection`, so every statement diesel sends
//! through it — the query builder's `load`, `execute`, `get_result`, `sql_query`, migrations'
//! `batch_execute` — is evaluated first, with the SQL text diesel generated (placeholders, never
//! the bound values) classified as the other SQL wrappers do.
//!
//! ```no_run
//! use diesel::prelude::*;
//! use diesel::sql_types::Text;
//! use openbox::hooks::db::diesel::GovernedConnection;
//! # fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let mut db = GovernedConnection::<PgConnection>::establish("postgres://127.0.0.1/app")?;
//! diesel::sql_query("INSERT INTO notes (body) VALUES ($1)")
//!     .bind::<Text, _>("hello") // Core sees "$1", never "hello"
//!     .execute(&mut db)?;
//! # Ok(()) }
//! ```
//!
//! diesel is blocking: in an async activity body the evaluation waits without stalling the
//! runtime's other tasks (`block_in_place`); in a sync body it is governed when the activity is
//! `#[governed_activity]`, as every sync wrapper.
//!
//! A governance stop is the diesel error `Error::QueryBuilderError` holding the
//! [`HookError`] ([`governance_stop`] finds it); inside
//! `transaction(…)` it rolls the transaction back like any other error. Transaction control
//! (`BEGIN`, `COMMIT`, savepoints) goes to the wrapped connection's transaction manager
//! directly: it changes nothing by itself.

use diesel::backend::Backend;
use diesel::connection::{
    CacheSize, Connection, ConnectionSealed, Instrumentation, LoadConnection, SimpleConnection,
    TransactionManager, TransactionManagerStatus,
};
use diesel::expression::QueryMetadata;
use diesel::query_builder::{Query, QueryBuilder, QueryFragment, QueryId};
use diesel::result::{ConnectionResult, Error, QueryResult};

use super::{DbTarget, ReportedError, governed_blocking, report_with_code};
use crate::hooks::HookError;

impl ReportedError for Error {
    fn report(&self) -> String {
        match self {
            Error::DatabaseError(kind, info) => {
                report_with_code(Some(&format!("{kind:?}")), info.message())
            }
            other => report_with_code(None, &other.to_string()),
        }
    }
}

/// The diesel backends a [`GovernedConnection`] speaks, and how Core names each.
pub trait GovernedBackend: Backend + Default
where
    Self::QueryBuilder: Default,
{
    /// `db_system`: `postgresql`, `mysql` or `sqlite`.
    const SYSTEM: &'static str;
}

#[cfg(any(feature = "diesel-postgres", feature = "diesel-async-postgres"))]
impl GovernedBackend for diesel::pg::Pg {
    const SYSTEM: &'static str = "postgresql";
}

#[cfg(feature = "diesel-mysql")]
impl GovernedBackend for diesel::mysql::Mysql {
    const SYSTEM: &'static str = "mysql";
}

#[cfg(feature = "diesel-sqlite")]
impl GovernedBackend for diesel::sqlite::Sqlite {
    const SYSTEM: &'static str = "sqlite";
}

/// A diesel connection whose statements are governed; a diesel `Connection` itself.
pub struct GovernedConnection<C> {
    inner: C,
    target: DbTarget,
}

impl<C> std::fmt::Debug for GovernedConnection<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GovernedConnection")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl<C: Connection> GovernedConnection<C>
where
    C::Backend: GovernedBackend,
    <C::Backend as Backend>::QueryBuilder: Default,
{
    /// Wraps `inner`, reported as `target` (its `system` should be the backend's
    /// [`GovernedBackend::SYSTEM`], which picks the SQL dialect).
    pub fn new(inner: C, target: DbTarget) -> Self {
        GovernedConnection { inner, target }
    }

    /// The wrapped connection: statements sent through it are not governed.
    pub fn inner_mut(&mut self) -> &mut C {
        &mut self.inner
    }

    /// The wrapped connection, unwrapped.
    pub fn into_inner(self) -> C {
        self.inner
    }

    /// Runs `run` once Core allowed `source`'s SQL (a stop is diesel's `QueryBuilderError`).
    fn governed<T>(
        target: &DbTarget,
        sql: &str,
        run: impl FnOnce() -> QueryResult<T>,
        rows: impl FnOnce(&T) -> Option<u64>,
    ) -> QueryResult<T> {
        governed_blocking(target, sql, run, rows).unwrap_or_else(|stop| Err(stopped(stop)))
    }
}

/// The SQL diesel generates for `source`: placeholders where the values are bound.
pub(super) fn sql_of<DB, T>(source: &T) -> QueryResult<String>
where
    DB: Backend + Default,
    DB::QueryBuilder: Default,
    T: QueryFragment<DB> + ?Sized,
{
    let mut builder = DB::QueryBuilder::default();
    source.to_sql(&mut builder, &DB::default())?;
    Ok(builder.finish())
}

pub(super) fn stopped(stop: HookError) -> Error {
    Error::QueryBuilderError(Box::new(stop))
}

/// The governance stop inside a diesel error, if that is what it is.
pub fn governance_stop(error: &Error) -> Option<&HookError> {
    match error {
        Error::QueryBuilderError(inner) => inner.downcast_ref::<HookError>(),
        _ => None,
    }
}

impl<C: Connection> SimpleConnection for GovernedConnection<C>
where
    C::Backend: GovernedBackend,
    <C::Backend as Backend>::QueryBuilder: Default,
{
    fn batch_execute(&mut self, query: &str) -> QueryResult<()> {
        let GovernedConnection { inner, target } = self;
        Self::governed(target, query, || inner.batch_execute(query), |_| None)
    }
}

impl<C: Connection> ConnectionSealed for GovernedConnection<C> {}

impl<C: Connection> Connection for GovernedConnection<C>
where
    C::Backend: GovernedBackend,
    <C::Backend as Backend>::QueryBuilder: Default,
{
    type Backend = C::Backend;
    type TransactionManager = GovernedTransactionManager<C>;

    /// `C::establish`, reported with the URL's host, port and database name (a SQLite
    /// connection: its file).
    fn establish(database_url: &str) -> ConnectionResult<Self> {
        let inner = C::establish(database_url)?;
        let target = DbTarget::from_url(<C::Backend as GovernedBackend>::SYSTEM, database_url);
        Ok(GovernedConnection { inner, target })
    }

    fn execute_returning_count<T>(&mut self, source: &T) -> QueryResult<usize>
    where
        T: QueryFragment<Self::Backend> + QueryId,
    {
        let sql = sql_of::<C::Backend, T>(source)?;
        let GovernedConnection { inner, target } = self;
        Self::governed(
            target,
            &sql,
            || inner.execute_returning_count(source),
            |n| Some(*n as u64),
        )
    }

    fn transaction_state(
        &mut self,
    ) -> &mut <Self::TransactionManager as TransactionManager<Self>>::TransactionStateData {
        self.inner.transaction_state()
    }

    fn instrumentation(&mut self) -> &mut dyn Instrumentation {
        self.inner.instrumentation()
    }

    fn set_instrumentation(&mut self, instrumentation: impl Instrumentation) {
        self.inner.set_instrumentation(instrumentation);
    }

    fn set_prepared_statement_cache_size(&mut self, size: CacheSize) {
        self.inner.set_prepared_statement_cache_size(size);
    }
}

impl<C, B> LoadConnection<B> for GovernedConnection<C>
where
    C: LoadConnection<B>,
    C::Backend: GovernedBackend,
    <C::Backend as Backend>::QueryBuilder: Default,
{
    type Cursor<'conn, 'query>
        = C::Cursor<'conn, 'query>
    where
        Self: 'conn;
    type Row<'conn, 'query>
        = C::Row<'conn, 'query>
    where
        Self: 'conn;

    /// Loads once Core allowed the query (its rows are not counted: they are read lazily).
    fn load<'conn, 'query, T>(
        &'conn mut self,
        source: T,
    ) -> QueryResult<Self::Cursor<'conn, 'query>>
    where
        T: Query + QueryFragment<Self::Backend> + QueryId + 'query,
        Self::Backend: QueryMetadata<T::SqlType>,
    {
        let sql = sql_of::<C::Backend, T>(&source)?;
        let GovernedConnection { inner, target } = self;
        Self::governed(target, &sql, move || inner.load(source), |_| None)
    }
}

/// The wrapped connection's transaction manager, working on the wrapped connection.
#[derive(Debug, Default)]
pub struct GovernedTransactionManager<C>(std::marker::PhantomData<C>);

impl<C: Connection> TransactionManager<GovernedConnection<C>> for GovernedTransactionManager<C>
where
    C::Backend: GovernedBackend,
    <C::Backend as Backend>::QueryBuilder: Default,
{
    type TransactionStateData =
        <C::TransactionManager as TransactionManager<C>>::TransactionStateData;

    fn begin_transaction(conn: &mut GovernedConnection<C>) -> QueryResult<()> {
        C::TransactionManager::begin_transaction(&mut conn.inner)
    }

    fn rollback_transaction(conn: &mut GovernedConnection<C>) -> QueryResult<()> {
        C::TransactionManager::rollback_transaction(&mut conn.inner)
    }

    fn commit_transaction(conn: &mut GovernedConnection<C>) -> QueryResult<()> {
        C::TransactionManager::commit_transaction(&mut conn.inner)
    }

    fn transaction_manager_status_mut(
        conn: &mut GovernedConnection<C>,
    ) -> &mut TransactionManagerStatus {
        C::TransactionManager::transaction_manager_status_mut(&mut conn.inner)
    }
}
