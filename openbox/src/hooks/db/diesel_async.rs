//! diesel-async: [`GovernedAsyncConnection`] wraps an `AsyncPgConnection` (or a `&mut` to one,
//! which is what a pooled connection derefs to) and is itself a diesel-async connection, so
//! every statement sent through it — `RunQueryDsl`'s `execute`, `load`, `get_result`, `first`,
//! `sql_query`, `batch_execute` — is evaluated first, with the SQL text diesel generated
//! (placeholders, never the bound values), classified as the other SQL wrappers do.
//!
//! ```no_run
//! use diesel::sql_types::Text;
//! use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
//! use openbox::hooks::db::diesel_async::GovernedAsyncConnection;
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let mut db =
//!     GovernedAsyncConnection::<AsyncPgConnection>::establish("postgres://127.0.0.1/app").await?;
//! diesel::sql_query("INSERT INTO notes (body) VALUES ($1)")
//!     .bind::<Text, _>("hello") // Core sees "$1", never "hello"
//!     .execute(&mut db)
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! A statement runs only once Core allowed it: the wrapped connection is asked for the
//! statement's future first and that future is polled only after the verdict. That is why only
//! connections whose futures do nothing until polled are accepted ([`LazyStatements`]):
//! diesel-async's `SyncConnectionWrapper` (its SQLite connection) starts a statement on tokio's
//! blocking pool as soon as it is asked for it, and would run a statement Core then blocks.
//!
//! Rows are read as the caller reads them: `completed` goes out after the last row (with the row
//! count), at the first error, or — when the caller drops the rows before either — without
//! waiting for a verdict. A governance stop is the diesel error `Error::QueryBuilderError`
//! holding the [`HookError`] ([`governance_stop`](super::diesel::governance_stop) finds it);
//! inside `transaction(…)` it rolls the transaction back like any other error. Transaction
//! control goes to the wrapped connection's transaction manager directly.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use diesel::backend::Backend;
use diesel::connection::{CacheSize, Instrumentation};
use diesel::query_builder::{AsQuery, QueryFragment, QueryId};
use diesel::result::{ConnectionResult, Error, QueryResult};
use diesel_async::{
    AsyncConnection, AsyncConnectionCore, AsyncPgConnection, SimpleAsyncConnection,
    TransactionManager,
};
use futures::Stream;
use futures::future::BoxFuture;

use super::diesel::{GovernedBackend, sql_of, stopped};
use super::{DbTarget, ReportedError, Statement, governed};
use crate::hooks::HookError;

mod sealed {
    pub trait Sealed {}
}

/// diesel-async connections whose statement futures do nothing until first polled, so that a
/// statement Core stops has never started: `AsyncPgConnection`, and `&mut AsyncPgConnection`
/// (`&mut *pooled` for a connection from a bb8, deadpool or mobc pool).
pub trait LazyStatements: AsyncConnection + sealed::Sealed {}

impl sealed::Sealed for AsyncPgConnection {}
impl LazyStatements for AsyncPgConnection {}
impl sealed::Sealed for &mut AsyncPgConnection {}
impl LazyStatements for &mut AsyncPgConnection {}

/// A diesel-async connection whose statements are governed; a diesel-async connection itself.
pub struct GovernedAsyncConnection<C> {
    inner: C,
    target: DbTarget,
}

impl<C> std::fmt::Debug for GovernedAsyncConnection<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GovernedAsyncConnection")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl<C: LazyStatements> GovernedAsyncConnection<C>
where
    C::Backend: GovernedBackend,
    <C::Backend as Backend>::QueryBuilder: Default,
{
    /// Wraps `inner`, reported as `target` (its `system` should be `postgresql`, which picks the
    /// SQL dialect).
    pub fn new(inner: C, target: DbTarget) -> Self {
        GovernedAsyncConnection { inner, target }
    }

    /// The wrapped connection: statements sent through it are not governed.
    pub fn inner_mut(&mut self) -> &mut C {
        &mut self.inner
    }

    /// The wrapped connection, unwrapped.
    pub fn into_inner(self) -> C {
        self.inner
    }
}

impl<C: LazyStatements> SimpleAsyncConnection for GovernedAsyncConnection<C>
where
    C::Backend: GovernedBackend,
    <C::Backend as Backend>::QueryBuilder: Default,
{
    async fn batch_execute(&mut self, query: &str) -> QueryResult<()> {
        let GovernedAsyncConnection { inner, target } = self;
        governed(target, query, None, || inner.batch_execute(query), |_| None)
            .await
            .unwrap_or_else(|stop| Err(stopped(stop)))
    }
}

impl<C: LazyStatements> AsyncConnectionCore for GovernedAsyncConnection<C>
where
    C::Backend: GovernedBackend,
    <C::Backend as Backend>::QueryBuilder: Default,
{
    type ExecuteFuture<'conn, 'query> = GovernedQuery<C::ExecuteFuture<'conn, 'query>, usize>;
    type LoadFuture<'conn, 'query> =
        GovernedQuery<C::LoadFuture<'conn, 'query>, GovernedRows<C::Stream<'conn, 'query>>>;
    type Stream<'conn, 'query> = GovernedRows<C::Stream<'conn, 'query>>;
    type Row<'conn, 'query> = C::Row<'conn, 'query>;
    type Backend = C::Backend;

    /// Loads once Core allowed the query; `completed` follows the rows (see the module).
    fn load<'conn, 'query, T>(&'conn mut self, source: T) -> Self::LoadFuture<'conn, 'query>
    where
        T: AsQuery + 'query,
        T::Query: QueryFragment<Self::Backend> + QueryId + 'query,
    {
        let query = source.as_query();
        let sql = sql_of::<C::Backend, _>(&query);
        let GovernedAsyncConnection { inner, target } = self;
        begin_on(
            target,
            sql,
            move || inner.load(query),
            settle_rows::<C::Stream<'conn, 'query>>,
        )
    }

    fn execute_returning_count<'conn, 'query, T>(
        &'conn mut self,
        source: T,
    ) -> Self::ExecuteFuture<'conn, 'query>
    where
        T: QueryFragment<Self::Backend> + QueryId + 'query,
    {
        let sql = sql_of::<C::Backend, T>(&source);
        let GovernedAsyncConnection { inner, target } = self;
        begin_on(
            target,
            sql,
            move || inner.execute_returning_count(source),
            settle_count,
        )
    }
}

impl<C: LazyStatements> AsyncConnection for GovernedAsyncConnection<C>
where
    C::Backend: GovernedBackend,
    <C::Backend as Backend>::QueryBuilder: Default,
{
    type TransactionManager = GovernedAsyncTransactionManager<C>;

    /// `C::establish`, reported with the URL's host, port and database name (never its
    /// credentials).
    async fn establish(database_url: &str) -> ConnectionResult<Self> {
        let inner = C::establish(database_url).await?;
        let target = DbTarget::from_url(<C::Backend as GovernedBackend>::SYSTEM, database_url);
        Ok(GovernedAsyncConnection { inner, target })
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

/// The wrapped connection's transaction manager, working on the wrapped connection.
#[derive(Debug, Default)]
pub struct GovernedAsyncTransactionManager<C>(std::marker::PhantomData<C>);

impl<C: LazyStatements> TransactionManager<GovernedAsyncConnection<C>>
    for GovernedAsyncTransactionManager<C>
where
    C::Backend: GovernedBackend,
    <C::Backend as Backend>::QueryBuilder: Default,
{
    type TransactionStateData =
        <C::TransactionManager as TransactionManager<C>>::TransactionStateData;

    async fn begin_transaction(conn: &mut GovernedAsyncConnection<C>) -> QueryResult<()> {
        C::TransactionManager::begin_transaction(&mut conn.inner).await
    }

    async fn rollback_transaction(conn: &mut GovernedAsyncConnection<C>) -> QueryResult<()> {
        C::TransactionManager::rollback_transaction(&mut conn.inner).await
    }

    async fn commit_transaction(conn: &mut GovernedAsyncConnection<C>) -> QueryResult<()> {
        C::TransactionManager::commit_transaction(&mut conn.inner).await
    }

    fn transaction_manager_status_mut(
        conn: &mut GovernedAsyncConnection<C>,
    ) -> &mut diesel::connection::TransactionManagerStatus {
        C::TransactionManager::transaction_manager_status_mut(&mut conn.inner)
    }

    fn is_broken_transaction_manager(conn: &mut GovernedAsyncConnection<C>) -> bool {
        C::TransactionManager::is_broken_transaction_manager(&mut conn.inner)
    }
}

/// The statement about to run (`None` outside a governed activity) and its future: `inner` is
/// asked for the statement's future now and polls it only once Core allowed it.
fn begin_on<F: Future, O>(
    target: &DbTarget,
    sql: QueryResult<String>,
    inner: impl FnOnce() -> F,
    settle: fn(F::Output, Option<Statement>) -> Settle<O>,
) -> GovernedQuery<F, O> {
    let step = match sql {
        Err(e) => Step::Failed(e),
        Ok(sql) => match Statement::begin(target, &sql, None) {
            Some(statement) => Step::Deciding {
                verdict: Box::pin(async move {
                    let verdict = statement.started().await;
                    (statement, verdict)
                }),
                inner: Box::pin(inner()),
            },
            None => Step::Running {
                inner: Box::pin(inner()),
                statement: None,
            },
        },
    };
    GovernedQuery { step, settle }
}

/// `completed` for `statement`, as a future that owns it.
fn reporting(
    statement: Statement,
    rowcount: Option<u64>,
    error: Option<String>,
) -> BoxFuture<'static, Result<(), HookError>> {
    Box::pin(async move { statement.completed(rowcount, error).await })
}

/// What a finished statement future gives its caller: the result now, or once `completed` has
/// its verdict.
enum Settle<O> {
    Now(QueryResult<O>),
    Reported(BoxFuture<'static, Result<(), HookError>>, QueryResult<O>),
}

/// `execute`: `completed` carries the row count or the error.
fn settle_count(result: QueryResult<usize>, statement: Option<Statement>) -> Settle<usize> {
    let Some(statement) = statement else {
        return Settle::Now(result);
    };
    let (rowcount, error) = match &result {
        Ok(n) => (Some(*n as u64), None),
        Err(e) => (None, Some(e.report())),
    };
    Settle::Reported(reporting(statement, rowcount, error), result)
}

/// `load`: rows carry the statement to their end; a failed load reports its error now.
fn settle_rows<S>(result: QueryResult<S>, statement: Option<Statement>) -> Settle<GovernedRows<S>> {
    match (result, statement) {
        (Ok(rows), statement) => Settle::Now(Ok(GovernedRows {
            inner: Box::pin(rows),
            statement,
            rows: 0,
            step: RowsStep::Reading,
        })),
        (Err(e), None) => Settle::Now(Err(e)),
        (Err(e), Some(statement)) => {
            let error = e.report();
            Settle::Reported(reporting(statement, None, Some(error)), Err(e))
        }
    }
}

/// The future of a governed statement: Core's verdict on `started`, the wrapped connection's
/// statement, then `completed`.
#[must_use = "futures do nothing unless polled"]
pub struct GovernedQuery<F: Future, O> {
    step: Step<F, O>,
    settle: fn(F::Output, Option<Statement>) -> Settle<O>,
}

enum Step<F, O> {
    /// Core decides on `started`; the statement's future waits, unpolled.
    Deciding {
        verdict: BoxFuture<'static, (Statement, Result<(), HookError>)>,
        inner: Pin<Box<F>>,
    },
    /// The statement runs (ungoverned when `statement` is `None`).
    Running {
        inner: Pin<Box<F>>,
        statement: Option<Box<Statement>>,
    },
    /// `completed` is evaluated; the result waits for its verdict.
    Reporting {
        verdict: BoxFuture<'static, Result<(), HookError>>,
        result: QueryResult<O>,
    },
    /// diesel could not write the statement's SQL.
    Failed(Error),
    Done,
}

impl<F: Future, O: Unpin> Future for GovernedQuery<F, O> {
    type Output = QueryResult<O>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        loop {
            match std::mem::replace(&mut this.step, Step::Done) {
                Step::Deciding { mut verdict, inner } => {
                    let Poll::Ready((statement, verdict)) = verdict.as_mut().poll(cx) else {
                        this.step = Step::Deciding { verdict, inner };
                        return Poll::Pending;
                    };
                    if let Err(stop) = verdict {
                        // The statement's future is dropped unpolled: it never ran.
                        return Poll::Ready(Err(stopped(stop)));
                    }
                    this.step = Step::Running {
                        inner,
                        statement: Some(Box::new(statement)),
                    };
                }
                Step::Running {
                    mut inner,
                    statement,
                } => {
                    let Poll::Ready(output) = inner.as_mut().poll(cx) else {
                        this.step = Step::Running { inner, statement };
                        return Poll::Pending;
                    };
                    match (this.settle)(output, statement.map(|s| *s)) {
                        Settle::Now(result) => return Poll::Ready(result),
                        Settle::Reported(verdict, result) => {
                            this.step = Step::Reporting { verdict, result }
                        }
                    }
                }
                Step::Reporting {
                    mut verdict,
                    result,
                } => {
                    let Poll::Ready(verdict) = verdict.as_mut().poll(cx) else {
                        this.step = Step::Reporting { verdict, result };
                        return Poll::Pending;
                    };
                    return Poll::Ready(verdict.map_err(stopped).and(result));
                }
                Step::Failed(e) => return Poll::Ready(Err(e)),
                Step::Done => panic!("a governed diesel-async statement polled after its result"),
            }
        }
    }
}

impl<F: Future, O> Drop for GovernedQuery<F, O> {
    /// A statement dropped while it ran may have changed something: Core still hears of it.
    fn drop(&mut self) {
        if let Step::Running {
            statement: Some(statement),
            ..
        } = std::mem::replace(&mut self.step, Step::Done)
        {
            (*statement).completed_detached(None, Some(DROPPED.to_owned()));
        }
    }
}

/// `completed`'s error for a statement whose caller stopped waiting for it.
const DROPPED: &str = "the caller dropped the statement before its result";

/// The rows of a governed `load`, read as the caller reads them; `completed` follows the last.
pub struct GovernedRows<S> {
    inner: Pin<Box<S>>,
    statement: Option<Statement>,
    rows: u64,
    step: RowsStep,
}

enum RowsStep {
    Reading,
    /// `completed` is evaluated; `then` is the driver's error that ended the rows, if one did.
    Reporting {
        verdict: BoxFuture<'static, Result<(), HookError>>,
        then: Option<Error>,
    },
    Finished,
}

impl<S, R> Stream for GovernedRows<S>
where
    S: Stream<Item = QueryResult<R>>,
{
    type Item = QueryResult<R>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            match &mut this.step {
                RowsStep::Reading => match ready!(this.inner.as_mut().poll_next(cx)) {
                    Some(Ok(row)) => {
                        this.rows += 1;
                        return Poll::Ready(Some(Ok(row)));
                    }
                    Some(Err(e)) => match this.statement.take() {
                        None => return Poll::Ready(Some(Err(e))),
                        // The caller stops at the first error: `completed` goes first.
                        Some(statement) => {
                            let error = e.report();
                            this.step = RowsStep::Reporting {
                                verdict: reporting(statement, None, Some(error)),
                                then: Some(e),
                            };
                        }
                    },
                    None => match this.statement.take() {
                        None => {
                            this.step = RowsStep::Finished;
                            return Poll::Ready(None);
                        }
                        Some(statement) => {
                            this.step = RowsStep::Reporting {
                                verdict: reporting(statement, Some(this.rows), None),
                                then: None,
                            };
                        }
                    },
                },
                RowsStep::Reporting { verdict, then } => {
                    let verdict = ready!(verdict.as_mut().poll(cx));
                    let then = then.take();
                    this.step = RowsStep::Finished;
                    // The driver's error is what the caller sees; a stop from `completed`
                    // after the last row becomes one last error.
                    return Poll::Ready(match (then, verdict) {
                        (Some(e), _) => Some(Err(e)),
                        (None, Err(stop)) => Some(Err(stopped(stop))),
                        (None, Ok(())) => None,
                    });
                }
                RowsStep::Finished => return Poll::Ready(None),
            }
        }
    }
}

impl<S> Drop for GovernedRows<S> {
    /// Rows dropped before their end: Core still learns how many were read.
    fn drop(&mut self) {
        if let Some(statement) = self.statement.take() {
            statement.completed_detached(Some(self.rows), None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::{StreamExt, executor::block_on, stream};

    fn target() -> DbTarget {
        DbTarget::new("postgresql")
    }

    #[test]
    fn outside_an_activity_the_statement_runs_as_is() {
        let future = begin_on(
            &target(),
            Ok("DELETE FROM t".into()),
            || async { Ok(3) },
            settle_count,
        );
        assert_eq!(block_on(future).unwrap(), 3);
    }

    #[test]
    fn sql_diesel_cannot_write_fails_without_asking_for_the_statement() {
        let future = begin_on(
            &target(),
            Err(Error::QueryBuilderError("no sql".into())),
            || -> std::future::Ready<QueryResult<usize>> { panic!("the statement was asked for") },
            settle_count,
        );
        assert!(matches!(
            block_on(future),
            Err(Error::QueryBuilderError(e)) if e.to_string() == "no sql"
        ));
    }

    #[test]
    fn ungoverned_rows_pass_through_errors_included() {
        let items: Vec<QueryResult<i32>> = vec![Ok(1), Err(Error::NotFound), Ok(2)];
        let future = begin_on(
            &target(),
            Ok("SELECT n FROM t".into()),
            move || async move { Ok(stream::iter(items)) },
            settle_rows,
        );
        let rows = block_on(future).unwrap();
        let read: Vec<_> = block_on(rows.collect::<Vec<_>>());
        assert!(matches!(
            read.as_slice(),
            [Ok(1), Err(Error::NotFound), Ok(2)]
        ));
    }
}
