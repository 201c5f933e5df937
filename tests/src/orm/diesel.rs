//! diesel steps: statements through diesel on a governed connection.

use diesel::prelude::*;
use diesel::sql_types::Text;
use openbox::hooks::db::diesel::GovernedConnection;

use super::OrmDb;
use crate::hook_fixtures::BOUND_SECRET;
use crate::services::{MYSQL_URL, POSTGRES_URL};

diesel::table! {
    /// A table every diesel step also writes to and reads through diesel's query builder.
    openbox_diesel_log (id) {
        id -> Integer,
        note -> Text,
    }
}

/// [`POSTGRES_URL`]'s database as a libpq keyword/value string whose password is
/// [`BOUND_SECRET`].
pub(super) fn postgres_keywords() -> String {
    debug_assert!(POSTGRES_URL.ends_with("@127.0.0.1:5432/test"));
    format!("host=127.0.0.1 port=5432 user=postgres password='{BOUND_SECRET}' dbname=test")
}

/// Runs `work` on a governed connection to `db`.
fn with_connection<T>(
    db: &OrmDb,
    work: impl FnOnce(&mut dyn DieselWork) -> QueryResult<T>,
) -> anyhow::Result<QueryResult<T>> {
    Ok(match db {
        // libpq's keyword/value form, which diesel also takes, with a password (trust auth
        // ignores it): Core must hear where the statements go, never the password.
        OrmDb::Postgres => work(&mut GovernedConnection::<PgConnection>::establish(
            &postgres_keywords(),
        )?),
        OrmDb::Mysql => work(&mut GovernedConnection::<MysqlConnection>::establish(
            MYSQL_URL,
        )?),
        OrmDb::Sqlite { file } => work(&mut GovernedConnection::<SqliteConnection>::establish(
            file,
        )?),
    })
}

/// What the steps do, written once for the three connection types.
trait DieselWork {
    /// `sql_query(sql)` with [`BOUND_SECRET`] bound to its one placeholder.
    fn insert_secret(&mut self, sql: &str) -> QueryResult<usize>;
    /// Logs `note` and counts its rows through the query builder.
    fn log(&mut self, note: &str) -> QueryResult<i64>;
    /// `sql` as a batch, or through `sql_query(…).execute`.
    fn run(&mut self, sql: &str, batch: bool) -> QueryResult<()>;
}

macro_rules! diesel_work {
    ($conn:ty) => {
        impl DieselWork for GovernedConnection<$conn> {
            fn insert_secret(&mut self, sql: &str) -> QueryResult<usize> {
                diesel::sql_query(sql)
                    .bind::<Text, _>(BOUND_SECRET)
                    .execute(self)
            }

            fn log(&mut self, text: &str) -> QueryResult<i64> {
                use crate::orm::diesel::openbox_diesel_log::dsl as log;
                diesel::insert_into(log::openbox_diesel_log)
                    .values(log::note.eq(text))
                    .execute(self)?;
                log::openbox_diesel_log
                    .filter(log::note.eq(text))
                    .count()
                    .get_result(self)
            }

            fn run(&mut self, sql: &str, batch: bool) -> QueryResult<()> {
                if batch {
                    diesel::connection::SimpleConnection::batch_execute(self, sql)
                } else {
                    diesel::sql_query(sql).execute(self).map(drop)
                }
            }
        }
    };
}

diesel_work!(PgConnection);
diesel_work!(MysqlConnection);
diesel_work!(SqliteConnection);

/// Inserts [`BOUND_SECRET`] into `table` with `sql_query` (bound, never in the text), then logs
/// the table's name through the query builder: `inserted <n>, logged <count>`.
pub fn insert(db: &OrmDb, table: &str) -> anyhow::Result<String> {
    let placeholder = super::first_placeholder(db);
    let sql = format!("INSERT INTO {table} (note) VALUES ({placeholder})");
    let done = with_connection(db, |conn| {
        let n = conn.insert_secret(&sql)?;
        let logged = conn.log(table)?;
        Ok(format!("inserted {n}, logged {logged}"))
    })?;
    Ok(done?)
}

/// Runs `sql` (see [`crate::hook_fixtures::HookStep::Sql`]): `Ok(Ok)` when it ran, `Ok(Err)`
/// with the driver's error, `Err` when governance stopped it.
pub fn run(db: &OrmDb, sql: &str, batch: bool) -> anyhow::Result<Result<(), String>> {
    match with_connection(db, |conn| conn.run(sql, batch))? {
        Ok(()) => Ok(Ok(())),
        Err(e) if openbox::hooks::db::diesel::governance_stop(&e).is_some() => Err(e.into()),
        Err(e) => Ok(Err(e.to_string())),
    }
}
