//! SeaORM steps: raw statements, entity operations and a transaction on a governed connection.

use openbox::hooks::db::sea_orm::{GovernedConnection, governance_stop};
use sea_orm::entity::prelude::*;
use sea_orm::{ActiveValue::Set, ConnectionTrait, Statement, TransactionTrait};

use super::OrmDb;
use crate::hook_fixtures::BOUND_SECRET;
use crate::services::{MYSQL_URL, POSTGRES_URL};

/// The table every SeaORM step also writes to and reads through entity operations.
pub const LOG_TABLE: &str = "openbox_seaorm_log";

/// The entity of [`LOG_TABLE`].
pub mod log {
    use sea_orm::entity::prelude::*;

    /// A row of the log.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "openbox_seaorm_log")]
    pub struct Model {
        /// Its key.
        #[sea_orm(primary_key)]
        pub id: i32,
        /// What was logged.
        pub note: String,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// The connection URL of `db` in SeaORM's form.
fn url(db: &OrmDb) -> String {
    match db {
        OrmDb::Postgres => POSTGRES_URL.to_owned(),
        OrmDb::Mysql => MYSQL_URL.to_owned(),
        OrmDb::Sqlite { file } => format!("sqlite://{file}?mode=rwc"),
    }
}

/// Inserts [`BOUND_SECRET`] into `table` with a raw statement (bound, never in the text), then,
/// in a transaction, logs the table's name through the entity and counts its rows:
/// `inserted <n>, logged <count>`. A governance stop is an error.
pub async fn insert(db: &OrmDb, table: &str) -> anyhow::Result<String> {
    let conn = GovernedConnection::connect(url(db)).await?;
    let backend = conn.get_database_backend();
    let placeholder = super::first_placeholder(db);
    let n = conn
        .execute_raw(Statement::from_sql_and_values(
            backend,
            format!("INSERT INTO {table} (note) VALUES ({placeholder})"),
            [BOUND_SECRET.into()],
        ))
        .await?
        .rows_affected();
    let note = table.to_owned();
    let logged = conn
        .transaction::<_, u64, DbErr>(|txn| {
            Box::pin(async move {
                log::ActiveModel {
                    note: Set(note.clone()),
                    ..Default::default()
                }
                .insert(txn)
                .await?;
                log::Entity::find()
                    .filter(log::Column::Note.eq(note))
                    .count(txn)
                    .await
            })
        })
        .await?;
    Ok(format!("inserted {n}, logged {logged}"))
}

/// Runs `sql` (see [`crate::hook_fixtures::HookStep::Sql`]) unprepared when `batch`, else as a
/// statement: `Ok(Ok)` when it ran, `Ok(Err)` with the driver's error, `Err` when governance
/// stopped it.
pub async fn run(db: &OrmDb, sql: &str, batch: bool) -> anyhow::Result<Result<(), String>> {
    let conn = GovernedConnection::connect(url(db)).await?;
    let result = if batch {
        conn.execute_unprepared(sql).await
    } else {
        let statement = Statement::from_string(conn.get_database_backend(), sql);
        conn.execute_raw(statement).await
    };
    match result {
        Ok(_) => Ok(Ok(())),
        Err(e) if governance_stop(&e).is_some() => Err(e.into()),
        Err(e) => Ok(Err(e.to_string())),
    }
}
