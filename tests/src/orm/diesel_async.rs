//! diesel-async steps: statements through diesel-async on a governed `AsyncPgConnection`.

use diesel::prelude::*;
use diesel::sql_types::Text;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use openbox::hooks::db::DbTarget;
use openbox::hooks::db::diesel_async::GovernedAsyncConnection;

use super::diesel::{openbox_diesel_log as log, postgres_keywords};
use crate::services::POSTGRES_URL;

/// A governed connection to the machine's PostgreSQL, named by libpq keywords whose password is
/// [`crate::hook_fixtures::BOUND_SECRET`] (trust auth ignores it; Core must never hear it).
async fn connect() -> ConnectionResult<GovernedAsyncConnection<AsyncPgConnection>> {
    GovernedAsyncConnection::<AsyncPgConnection>::establish(&postgres_keywords()).await
}

/// Inserts [`crate::hook_fixtures::BOUND_SECRET`] into `table` with `sql_query` (bound, never in
/// the text), then, in a transaction, logs the table's name through the query builder and
/// counts its rows (a `load`): `inserted <n>, logged <count>`.
pub async fn insert(table: &str) -> anyhow::Result<String> {
    let mut conn = connect().await?;
    let n = diesel::sql_query(format!("INSERT INTO {table} (note) VALUES ($1)"))
        .bind::<Text, _>(crate::hook_fixtures::BOUND_SECRET)
        .execute(&mut conn)
        .await?;
    let note = table.to_owned();
    let logged = conn
        .transaction::<i64, diesel::result::Error, _>(async move |conn| {
            diesel::insert_into(log::table)
                .values(log::note.eq(&note))
                .execute(conn)
                .await?;
            log::table
                .filter(log::note.eq(&note))
                .count()
                .get_result(conn)
                .await
        })
        .await?;
    Ok(format!("inserted {n}, logged {logged}"))
}

/// Runs `sql` (see [`crate::hook_fixtures::HookStep::Sql`]) through a `&mut` of a plain
/// connection, as a pooled one is governed: `Ok(Ok)` when it ran, `Ok(Err)` with the driver's
/// error, `Err` when governance stopped it.
pub async fn run(sql: &str, batch: bool) -> anyhow::Result<Result<(), String>> {
    let mut plain = AsyncPgConnection::establish(POSTGRES_URL).await?;
    let target = DbTarget::new("postgresql")
        .name("test")
        .server("127.0.0.1", 5432);
    let mut conn = GovernedAsyncConnection::new(&mut plain, target);
    let result = if batch {
        diesel_async::SimpleAsyncConnection::batch_execute(&mut conn, sql).await
    } else {
        diesel::sql_query(sql).execute(&mut conn).await.map(drop)
    };
    match result {
        Ok(()) => Ok(Ok(())),
        Err(e) if openbox::hooks::db::diesel::governance_stop(&e).is_some() => Err(e.into()),
        Err(e) => Ok(Err(e.to_string())),
    }
}
