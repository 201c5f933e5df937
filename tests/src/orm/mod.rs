//! ORM steps: statements through diesel, diesel-async and SeaORM on governed connections, against the
//! machine's PostgreSQL and MariaDB and SQLite files.

pub mod diesel;
pub mod diesel_async;
pub mod sea;

use serde::{Deserialize, Serialize};

/// The database an ORM step talks to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrmDb {
    /// The machine's PostgreSQL.
    Postgres,
    /// The machine's MariaDB.
    Mysql,
    /// A SQLite file.
    Sqlite { file: String },
}

/// The DDL of an ORM's log `table` (`id`, `note`) in `db`'s dialect.
pub fn log_table_ddl(db: &OrmDb, table: &str) -> String {
    let id = match db {
        OrmDb::Postgres => "serial PRIMARY KEY",
        OrmDb::Mysql => "int AUTO_INCREMENT PRIMARY KEY",
        OrmDb::Sqlite { .. } => "integer PRIMARY KEY",
    };
    format!("CREATE TABLE IF NOT EXISTS {table} (id {id}, note text NOT NULL)")
}

/// The placeholder of a statement's first bound value in `db`'s dialect.
pub fn first_placeholder(db: &OrmDb) -> &'static str {
    match db {
        OrmDb::Postgres => "$1",
        _ => "?",
    }
}
