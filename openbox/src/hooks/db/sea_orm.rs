//! SeaORM: [`GovernedConnection`] wraps a SeaORM connection (a `DatabaseConnection`, or any
//! `ConnectionTrait`) and is itself a `ConnectionTrait` and a `TransactionTrait`, so it goes
//! wherever SeaORM takes a connection — `Entity::find().all(&db)`, `model.insert(&db)`,
//! `Entity::delete_many().exec(&db)`, `db.execute_raw(statement)`, `db.transaction(…)` — and every
//! statement SeaORM sends through it is evaluated first, with the SQL text SeaORM built
//! (placeholders, never the bound values) classified as the other SQL wrappers do.
//!
//! ```no_run
//! use openbox::hooks::db::sea_orm::GovernedConnection;
//! use sea_orm::{ConnectionTrait, DbBackend, Statement};
//! # async fn demo() -> Result<(), sea_orm::DbErr> {
//! let db = GovernedConnection::connect("postgres://127.0.0.1/app").await?;
//! db.execute_raw(Statement::from_sql_and_values(
//!     DbBackend::Postgres,
//!     "INSERT INTO notes (body) VALUES ($1)",
//!     ["hello".into()], // Core sees "$1", never "hello"
//! ))
//! .await?;
//! # Ok(()) }
//! ```
//!
//! A transaction begun through it (`begin`, `transaction`) is a `GovernedConnection` over
//! SeaORM's transaction: its statements are governed too; `BEGIN`, `COMMIT` and `ROLLBACK`
//! themselves change nothing and go straight to SeaORM. Streaming (`StreamTrait`) is not
//! implemented, so a stream cannot go around governance: read with `all`, or page.
//!
//! A governance stop is [`DbErr::TryIntoErr`] whose source is the [`HookError`]
//! ([`governance_stop`] finds it).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use sea_orm::{
    AccessMode, ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr,
    ExecResult, IsolationLevel, QueryResult, Statement, TransactionError, TransactionOptions,
    TransactionSession, TransactionTrait,
};

use super::{DbTarget, ReportedError, governed, report_with_code};
use crate::hooks::HookError;

/// The `from` of the [`DbErr::TryIntoErr`] a governance stop is.
const STOPPED_FROM: &str = "SQL statement";
/// The `into` of the [`DbErr::TryIntoErr`] a governance stop is.
const STOPPED_INTO: &str = "statement allowed by governance";

impl ReportedError for DbErr {
    fn report(&self) -> String {
        report_with_code(None, &self.to_string())
    }
}

/// A SeaORM connection whose statements are governed: pass `&GovernedConnection` where SeaORM
/// takes a connection.
#[derive(Clone)]
pub struct GovernedConnection<C = DatabaseConnection> {
    inner: C,
    target: Arc<DbTarget>,
}

impl<C> std::fmt::Debug for GovernedConnection<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GovernedConnection")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl GovernedConnection<DatabaseConnection> {
    /// `sea_orm::Database::connect`, reported with the URL's host, port and database name (a
    /// SQLite connection: its file), never its user or password. Its errors never hold the
    /// URL's userinfo or query either (SeaORM's own name the whole connection string when it
    /// cannot parse it or has no driver for it).
    pub async fn connect(options: impl Into<ConnectOptions>) -> Result<Self, DbErr> {
        let options: ConnectOptions = options.into();
        let url = options.get_url().to_owned();
        let inner = Database::connect(options)
            .await
            .map_err(|e| withhold_connection_string(e, &url))?;
        let target = DbTarget::from_url(system_of(inner.get_database_backend()), &url);
        Ok(GovernedConnection::new(inner, target))
    }
}

impl<C: ConnectionTrait> GovernedConnection<C> {
    /// Wraps `inner`, reported as `target` (its `system` picks the SQL dialect: `postgresql`,
    /// `mysql` or `sqlite`).
    pub fn new(inner: C, target: DbTarget) -> Self {
        GovernedConnection {
            inner,
            target: Arc::new(target),
        }
    }

    /// Where the statements go, as Core is told.
    pub fn target(&self) -> &DbTarget {
        &self.target
    }

    /// The wrapped connection: statements sent through it are not governed.
    pub fn inner(&self) -> &C {
        &self.inner
    }

    /// The wrapped connection, unwrapped.
    pub fn into_inner(self) -> C {
        self.inner
    }

    /// Runs `run` once Core allowed `sql` (a stop is [`DbErr::TryIntoErr`]).
    async fn governed<T, F, Fut>(
        &self,
        sql: &str,
        run: F,
        rows: impl FnOnce(&T) -> Option<u64>,
    ) -> Result<T, DbErr>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, DbErr>>,
    {
        governed(&self.target, sql, None, run, rows)
            .await
            .unwrap_or_else(|stop| Err(stopped(stop)))
    }
}

/// `db_system` of a SeaORM backend.
fn system_of(backend: DbBackend) -> &'static str {
    match backend {
        DbBackend::Postgres => "postgresql",
        DbBackend::MySql => "mysql",
        DbBackend::Sqlite => "sqlite",
        // A backend SeaORM adds later: its SQL is read with the generic dialect.
        _ => "sql",
    }
}

fn stopped(stop: HookError) -> DbErr {
    DbErr::TryIntoErr {
        from: STOPPED_FROM,
        into: STOPPED_INTO,
        source: Arc::new(stop),
    }
}

/// The governance stop inside a SeaORM error, if that is what it is.
pub fn governance_stop(error: &DbErr) -> Option<&HookError> {
    match error {
        DbErr::TryIntoErr {
            from: STOPPED_FROM,
            into: STOPPED_INTO,
            source,
        } => source.downcast_ref::<HookError>(),
        _ => None,
    }
}

#[async_trait::async_trait]
impl<C: ConnectionTrait + Send> ConnectionTrait for GovernedConnection<C> {
    fn get_database_backend(&self) -> DbBackend {
        self.inner.get_database_backend()
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        let sql = stmt.sql.clone();
        self.governed(
            &sql,
            || self.inner.execute_raw(stmt),
            |r| Some(r.rows_affected()),
        )
        .await
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        self.governed(
            sql,
            || self.inner.execute_unprepared(sql),
            |r| Some(r.rows_affected()),
        )
        .await
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        let sql = stmt.sql.clone();
        self.governed(
            &sql,
            || self.inner.query_one_raw(stmt),
            |r| Some(u64::from(r.is_some())),
        )
        .await
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        let sql = stmt.sql.clone();
        self.governed(
            &sql,
            || self.inner.query_all_raw(stmt),
            |r| Some(r.len() as u64),
        )
        .await
    }

    fn support_returning(&self) -> bool {
        self.inner.support_returning()
    }

    fn is_mock_connection(&self) -> bool {
        self.inner.is_mock_connection()
    }
}

/// A callback given a governed transaction.
type Callback<'c, T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'c>>;

#[async_trait::async_trait]
impl<C> TransactionTrait for GovernedConnection<C>
where
    C: TransactionTrait + ConnectionTrait + Send,
    C::Transaction: ConnectionTrait + Sync,
{
    type Transaction = GovernedConnection<C::Transaction>;

    async fn begin(&self) -> Result<Self::Transaction, DbErr> {
        Ok(self.over(self.inner.begin().await?))
    }

    async fn begin_with_config(
        &self,
        isolation_level: Option<IsolationLevel>,
        access_mode: Option<AccessMode>,
    ) -> Result<Self::Transaction, DbErr> {
        let txn = self
            .inner
            .begin_with_config(isolation_level, access_mode)
            .await?;
        Ok(self.over(txn))
    }

    async fn begin_with_options(
        &self,
        options: TransactionOptions,
    ) -> Result<Self::Transaction, DbErr> {
        Ok(self.over(self.inner.begin_with_options(options).await?))
    }

    async fn transaction<F, T, E>(&self, callback: F) -> Result<T, TransactionError<E>>
    where
        F: for<'c> FnOnce(&'c Self::Transaction) -> Callback<'c, T, E> + Send,
        T: Send,
        E: std::fmt::Display + std::fmt::Debug + Send,
    {
        let txn = self.begin().await.map_err(TransactionError::Connection)?;
        run_in(txn, callback).await
    }

    async fn transaction_with_config<F, T, E>(
        &self,
        callback: F,
        isolation_level: Option<IsolationLevel>,
        access_mode: Option<AccessMode>,
    ) -> Result<T, TransactionError<E>>
    where
        F: for<'c> FnOnce(&'c Self::Transaction) -> Callback<'c, T, E> + Send,
        T: Send,
        E: std::fmt::Display + std::fmt::Debug + Send,
    {
        let txn = self
            .begin_with_config(isolation_level, access_mode)
            .await
            .map_err(TransactionError::Connection)?;
        run_in(txn, callback).await
    }
}

impl<C> GovernedConnection<C> {
    /// A transaction of this connection, reported to the same target.
    fn over<T>(&self, txn: T) -> GovernedConnection<T> {
        GovernedConnection {
            inner: txn,
            target: self.target.clone(),
        }
    }
}

/// Runs `callback` in `txn`: committed when it succeeds, rolled back when it fails (a
/// governance stop included).
async fn run_in<X, F, T, E>(
    txn: GovernedConnection<X>,
    callback: F,
) -> Result<T, TransactionError<E>>
where
    X: TransactionSession + Send,
    F: for<'c> FnOnce(&'c GovernedConnection<X>) -> Callback<'c, T, E> + Send,
    E: std::fmt::Display + std::fmt::Debug,
{
    match callback(&txn).await {
        Ok(value) => {
            txn.inner
                .commit()
                .await
                .map_err(TransactionError::Connection)?;
            Ok(value)
        }
        Err(e) => {
            txn.inner
                .rollback()
                .await
                .map_err(TransactionError::Connection)?;
            Err(TransactionError::Transaction(e))
        }
    }
}

#[async_trait::async_trait]
impl<C: TransactionSession + Send> TransactionSession for GovernedConnection<C> {
    async fn commit(self) -> Result<(), DbErr> {
        self.inner.commit().await
    }

    async fn rollback(self) -> Result<(), DbErr> {
        self.inner.rollback().await
    }
}

/// SeaORM names the connection string, password included, in the errors of one it cannot
/// parse or has no driver for; raised in an activity, such an error becomes the activity's
/// failure in the workflow history. The string is shown without userinfo, query and fragment
/// there, or withheld whole when it does not parse (its password could be anywhere in it).
fn withhold_connection_string(err: DbErr, url: &str) -> DbErr {
    match err {
        DbErr::Conn(sea_orm::RuntimeErr::Internal(message))
            if !url.is_empty() && message.contains(url) =>
        {
            let shown = shown_connection_string(url);
            DbErr::Conn(sea_orm::RuntimeErr::Internal(message.replace(url, &shown)))
        }
        other => other,
    }
}

/// `url` without what may be secret in it.
fn shown_connection_string(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if !parsed.cannot_be_a_base() => {
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
            parsed.set_query(None);
            parsed.set_fragment(None);
            parsed.to_string()
        }
        _ => "(withheld: it may hold a password)".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::governance::failure::GovernanceFailure;
    use proptest::prelude::*;

    fn connect_error(url: &str) -> String {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        match runtime.block_on(GovernedConnection::connect(url)) {
            Ok(_) => panic!("{url} connected"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn connect_errors_withhold_the_connection_strings_secrets() {
        // No driver for the scheme (openbox enables none of SeaORM's): named without userinfo.
        let no_driver = connect_error("oracle://scott:hunter2@db.example:1521/orcl?token=t0k");
        assert!(
            no_driver.contains("oracle://db.example:1521/orcl"),
            "{no_driver}"
        );
        assert!(
            !no_driver.contains("hunter2") && !no_driver.contains("t0k"),
            "{no_driver}"
        );
        // Not a URL at all: withheld whole.
        let unparsable = connect_error("postgres://scott:hunter2@db.example:port/app");
        assert!(unparsable.contains("cannot be parsed"), "{unparsable}");
        assert!(!unparsable.contains("hunter2"), "{unparsable}");
        // Other errors pass through untouched.
        let other = DbErr::Conn(sea_orm::RuntimeErr::Internal("refused".into()));
        assert_eq!(
            withhold_connection_string(other, "postgres://a:b@h/d").to_string(),
            "Connection Error: refused"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn no_password_survives_a_connect_error(
            scheme in "(oracle|postgres|mysql|x-[a-z]{1,6})",
            user in "[a-z]{1,8}",
            password in "pw[A-Za-z0-9%!*]{6,16}",
            port in "(|:5432|:port|:99999)",
        ) {
            let url = format!("{scheme}://{user}:{password}@db.example{port}/app?password={password}");
            let shown = withhold_connection_string(
                DbErr::Conn(sea_orm::RuntimeErr::Internal(format!("The connection string '{url}' has no supporting driver."))),
                &url,
            )
            .to_string();
            prop_assert!(!shown.contains(&password), "{}", shown);
        }
    }

    #[test]
    fn a_stop_is_found_again_and_nothing_else_is() {
        let blocked = HookError::new(GovernanceFailure::hook_blocked(Some("no")));
        let stop = stopped(blocked.clone());
        assert_eq!(governance_stop(&stop), Some(&blocked));
        let other = DbErr::TryIntoErr {
            from: "i64",
            into: "u8",
            source: Arc::new(std::fmt::Error),
        };
        assert!(governance_stop(&other).is_none());
        assert!(governance_stop(&DbErr::RecordNotFound("x".into())).is_none());
    }
}
