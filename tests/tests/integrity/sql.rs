//! SQL is judged by what it does, through every SQL wrapper (diesel's and SeaORM's included): a batch whose first statement
//! reads, a transaction around a delete, a CTE delete, a comment before a delete, `SELECT …
//! INTO`, a `SELECT` of a function that writes. With Core down under `fail_closed_destructive`
//! none of them may reach the server (checked through an unwrapped connection), while reads go
//! through; with Core up, Core is told the operation each one performs.

use std::future::Future;

use openbox::ErrorPolicy;
use openbox_tests::harness::{Harness, result_of};
use openbox_tests::history::failure_types;
use openbox_tests::hook_fixtures::{HookStep, HookWorkflow, SqlVia};
use openbox_tests::orm::OrmDb;
use openbox_tests::services::{self, MYSQL_URL, POSTGRES_URL};
use openbox_tests::{TempDir, unique};
use serde_json::{Value, json};
use sqlx::AssertSqlSafe;
use temporalio_client::WorkflowStartOptions;

use crate::spans_at;

/// Where a case's table lives.
#[derive(Clone)]
enum Db {
    Postgres,
    Mysql,
    Sqlite(String),
}

/// One piece of SQL through one wrapper, writing (or not) to its own one-row table.
struct Case {
    via: SqlVia,
    db: Db,
    table: String,
    /// `{t}` stands for the table, `{s}` for its sequence.
    sql: String,
    batch: bool,
    /// What Core must be told.
    operation: &'static str,
    /// Each statement's operation, for a batch.
    statements: Option<Vec<&'static str>>,
}

impl Case {
    fn seq(&self) -> String {
        format!("{}_seq", self.table)
    }

    fn copy(&self) -> String {
        format!("{}_copy", self.table)
    }

    fn text(&self) -> String {
        self.sql
            .replace("{t}", &self.table)
            .replace("{s}", &self.seq())
            .replace("{c}", &self.copy())
    }

    fn step(&self) -> (bool, HookStep) {
        (
            false,
            HookStep::Sql {
                via: self.via.clone(),
                sql: self.text(),
                batch: self.batch,
            },
        )
    }

    fn label(&self) -> String {
        format!("{:?}: {}", self.via, self.text())
    }
}

/// The unwrapped connections the tables are made and checked through.
struct Servers {
    pg: sqlx::PgPool,
    my: sqlx::MySqlPool,
}

impl Servers {
    async fn connect() -> Self {
        Servers {
            pg: sqlx::PgPool::connect(POSTGRES_URL).await.unwrap(),
            my: sqlx::MySqlPool::connect(MYSQL_URL).await.unwrap(),
        }
    }

    async fn exec(&self, db: &Db, sql: String) {
        match db {
            Db::Postgres => drop(
                sqlx::raw_sql(AssertSqlSafe(sql))
                    .execute(&self.pg)
                    .await
                    .unwrap(),
            ),
            Db::Mysql => drop(
                sqlx::raw_sql(AssertSqlSafe(sql))
                    .execute(&self.my)
                    .await
                    .unwrap(),
            ),
            Db::Sqlite(file) => rusqlite::Connection::open(file)
                .unwrap()
                .execute_batch(&sql)
                .unwrap(),
        }
    }

    async fn number(&self, db: &Db, sql: String) -> i64 {
        match db {
            Db::Postgres => sqlx::query_scalar(AssertSqlSafe(sql))
                .fetch_one(&self.pg)
                .await
                .unwrap(),
            Db::Mysql => sqlx::query_scalar(AssertSqlSafe(sql))
                .fetch_one(&self.my)
                .await
                .unwrap(),
            Db::Sqlite(file) => rusqlite::Connection::open(file)
                .unwrap()
                .query_row(&sql, [], |r| r.get(0))
                .unwrap(),
        }
    }

    /// Makes the case's table with one row, and its sequence where the server has them.
    async fn prepare(&self, case: &Case) {
        let t = &case.table;
        self.exec(
            &case.db,
            format!("CREATE TABLE {t} (a INTEGER); INSERT INTO {t} VALUES (1);"),
        )
        .await;
        if !matches!(case.db, Db::Sqlite(_)) {
            self.exec(&case.db, format!("CREATE SEQUENCE {}", case.seq()))
                .await;
        }
    }

    /// What the case's writes would have changed: the rows of its table, whether its copy
    /// exists, its sequence's next value.
    async fn state(&self, case: &Case) -> Value {
        let rows = self
            .number(&case.db, format!("SELECT count(*) FROM {}", case.table))
            .await;
        let (copy, seq) = match case.db {
            Db::Postgres => (
                self.number(
                    &case.db,
                    format!(
                        "SELECT count(*) FROM pg_tables WHERE tablename = '{}'",
                        case.copy()
                    ),
                )
                .await,
                self.number(&case.db, format!("SELECT last_value FROM {}", case.seq()))
                    .await,
            ),
            Db::Mysql => (
                0,
                self.number(
                    &case.db,
                    format!("SELECT next_not_cached_value FROM {}", case.seq()),
                )
                .await,
            ),
            Db::Sqlite(_) => (0, 0),
        };
        json!({"rows": rows, "copy": copy, "seq": seq})
    }

    async fn drop_all(&self, case: &Case) {
        let (t, c, s) = (&case.table, case.copy(), case.seq());
        let drop_seq = if matches!(case.db, Db::Sqlite(_)) {
            String::new()
        } else {
            format!("DROP SEQUENCE IF EXISTS {s};")
        };
        self.exec(
            &case.db,
            format!("DROP TABLE IF EXISTS {t}; DROP TABLE IF EXISTS {c}; {drop_seq}"),
        )
        .await;
    }
}

/// Every wrapper with the pieces of SQL its server runs, each on a table of its own.
fn cases(tag: &str, sqlite_dir: &TempDir) -> Vec<Case> {
    let mut cases = Vec::new();
    let wrappers = [
        (SqlVia::SqlxPostgres, Db::Postgres, "sp"),
        (SqlVia::TokioPostgres, Db::Postgres, "tp"),
        (SqlVia::SqlxMysql, Db::Mysql, "sm"),
        (
            SqlVia::SqlxSqlite {
                file: sqlite_dir.path().join("sqlx.db").display().to_string(),
            },
            Db::Sqlite(sqlite_dir.path().join("sqlx.db").display().to_string()),
            "ss",
        ),
        (
            SqlVia::Rusqlite {
                file: sqlite_dir.path().join("rusqlite.db").display().to_string(),
            },
            Db::Sqlite(sqlite_dir.path().join("rusqlite.db").display().to_string()),
            "rs",
        ),
        (
            SqlVia::Diesel {
                db: OrmDb::Postgres,
            },
            Db::Postgres,
            "dp",
        ),
        (SqlVia::Diesel { db: OrmDb::Mysql }, Db::Mysql, "dm"),
        (
            SqlVia::Diesel {
                db: OrmDb::Sqlite {
                    file: sqlite_dir.path().join("diesel.db").display().to_string(),
                },
            },
            Db::Sqlite(sqlite_dir.path().join("diesel.db").display().to_string()),
            "ds",
        ),
        (SqlVia::DieselAsync, Db::Postgres, "ap"),
        (
            SqlVia::SeaOrm {
                db: OrmDb::Postgres,
            },
            Db::Postgres,
            "op",
        ),
        (SqlVia::SeaOrm { db: OrmDb::Mysql }, Db::Mysql, "om"),
        (
            SqlVia::SeaOrm {
                db: OrmDb::Sqlite {
                    file: sqlite_dir.path().join("seaorm.db").display().to_string(),
                },
            },
            Db::Sqlite(sqlite_dir.path().join("seaorm.db").display().to_string()),
            "os",
        ),
    ];
    for (via, db, short) in wrappers {
        let mut add = |sql: &str, batch: bool, operation, statements: Option<Vec<_>>| {
            let n = cases.len();
            cases.push(Case {
                via: via.clone(),
                db: db.clone(),
                table: format!("{tag}_{short}_{n}_{}", std::process::id()),
                sql: sql.into(),
                batch,
                operation,
                statements,
            });
        };
        add(
            "SELECT 1; DELETE FROM {t};",
            true,
            "DELETE",
            Some(vec!["SELECT", "DELETE"]),
        );
        add(
            "BEGIN; DELETE FROM {t}; COMMIT;",
            true,
            "DELETE",
            Some(vec!["BEGIN", "DELETE", "COMMIT"]),
        );
        add("/* c */ delete from {t}", false, "DELETE", None);
        match db {
            // MariaDB has no CTE before a DELETE.
            Db::Mysql => add("SELECT SETVAL({s}, 100)", false, "UPDATE", None),
            Db::Postgres => {
                add(
                    "WITH x AS (SELECT 1) DELETE FROM {t}",
                    false,
                    "DELETE",
                    None,
                );
                add("SELECT * INTO {c} FROM {t}", false, "CREATE", None);
                add("SELECT setval('{s}', 100)", false, "UPDATE", None);
            }
            Db::Sqlite(_) => add(
                "WITH x AS (SELECT 1) DELETE FROM {t}",
                false,
                "DELETE",
                None,
            ),
        }
    }
    cases
}

/// Reads through each wrapper: they go ahead without Core under `fail_closed_destructive`.
fn reads(cases: &[Case]) -> Vec<Case> {
    let mut seen = Vec::new();
    let mut reads = Vec::new();
    for case in cases {
        if seen.contains(&case.via) {
            continue;
        }
        seen.push(case.via.clone());
        // rusqlite's `execute` refuses a statement that returns rows.
        let single_is_batch = matches!(
            case.via,
            SqlVia::Rusqlite { .. }
                | SqlVia::Diesel {
                    db: OrmDb::Sqlite { .. }
                }
        );
        for (sql, batch) in [
            ("SELECT count(*) FROM {t}", single_is_batch),
            ("BEGIN; SELECT count(*) FROM {t}; COMMIT;", true),
        ] {
            reads.push(Case {
                via: case.via.clone(),
                db: case.db.clone(),
                table: case.table.clone(),
                sql: sql.into(),
                batch,
                operation: "SELECT",
                statements: None,
            });
        }
    }
    reads
}

/// Runs `scenario` with the cases' tables made, and drops them afterwards.
async fn with_tables<T>(servers: &Servers, cases: &[Case], scenario: impl Future<Output = T>) -> T {
    for case in cases {
        servers.drop_all(case).await;
        servers.prepare(case).await;
    }
    let out = scenario.await;
    for case in cases {
        servers.drop_all(case).await;
    }
    out
}

fn databases_answer() -> bool {
    services::require("PostgreSQL", "127.0.0.1:5432")
        && services::require("MariaDB", "127.0.0.1:3306")
}

/// Core down, `fail_closed_destructive`: every case is stopped before the server sees it (its
/// table, copy and sequence unchanged, checked through an unwrapped connection), each run ends
/// in `GovernanceHalt`; reads through the same wrappers go ahead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hidden_writes_are_stopped_when_core_is_down() {
    if !databases_answer() {
        return;
    }
    let sqlite_dir = TempDir::new("sql-down");
    let cases = cases("down", &sqlite_dir);
    let reads = reads(&cases);
    let servers = Servers::connect().await;
    let h = Harness::new("").await;
    let quiet = |b: openbox::OpenBoxPluginBuilder| {
        b.options(|o| {
            o.skip_workflow_types(["HookWorkflow"])
                .send_activity_start_event(false)
        })
    };
    let plugin = h.plugin(ErrorPolicy::FailClosedDestructive, quiet).await;
    h.core.core.kill();
    with_tables(&servers, &cases, async {
        let mut before = Vec::new();
        for case in &cases {
            before.push(servers.state(case).await);
        }
        let outcomes = h
            .run(Some(plugin), async {
                let runs = cases.iter().chain(&reads).map(|case| async {
                    let handle = h
                        .client()
                        .start_workflow(
                            HookWorkflow::run,
                            vec![case.step()],
                            WorkflowStartOptions::new(&h.task_queue, unique("sql-down")).build(),
                        )
                        .await
                        .unwrap();
                    result_of(&handle).await
                });
                futures::future::join_all(runs).await
            })
            .await;
        // Every problem, not just the first: which wrappers let what through.
        let mut problems = Vec::new();
        let (writes, read_outcomes) = outcomes.split_at(cases.len());
        for ((case, outcome), before) in cases.iter().zip(writes).zip(before) {
            match outcome {
                Err(e) if failure_types(e) == ["GovernanceHalt"] => {}
                Err(e) => problems.push(format!("{}: {:?}", case.label(), failure_types(e))),
                Ok(r) => problems.push(format!("{} went ahead without Core: {r:?}", case.label())),
            }
            let after = servers.state(case).await;
            if after != before {
                problems.push(format!(
                    "{} changed the database without Core's verdict: {before} -> {after}",
                    case.label()
                ));
            }
        }
        for (case, outcome) in reads.iter().zip(read_outcomes) {
            match outcome {
                Ok(r) if r == &["ok"] => {}
                other => problems.push(format!("{} is a read: {other:?}", case.label())),
            }
        }
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    })
    .await;
}

/// Core up: each case runs (Core allows it), and Core was told the operation it performs, in
/// `db_operation` and the span's name, with each statement's operation for a batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn core_is_told_what_each_statement_does() {
    if !databases_answer() {
        return;
    }
    let sqlite_dir = TempDir::new("sql-up");
    let cases = cases("up", &sqlite_dir);
    let servers = Servers::connect().await;
    let h = Harness::new("").await;
    let plugin = h.plugin(ErrorPolicy::FailClosed, |b| b).await;
    let wid = unique("sql-up");
    with_tables(&servers, &cases, async {
        let results = h
            .run(
                Some(plugin),
                h.run_hooks(&wid, cases.iter().map(Case::step).collect()),
            )
            .await;
        for (case, result) in cases.iter().zip(&results) {
            assert_eq!(result, "ok", "{}", case.label());
            let state = servers.state(case).await;
            let changed = state["rows"] == 0 || state["copy"] == 1 || state["seq"] != 1;
            assert!(changed, "{} ran: {state}", case.label());
        }
        let events = h.events_of(&wid).await;
        let started = spans_at(&events, "started");
        assert_eq!(started.len(), cases.len());
        let mut problems = Vec::new();
        for (case, span) in cases.iter().zip(started) {
            assert_eq!(span["db_statement"], case.text(), "{}", case.label());
            let told = json!({
                "db_operation": span["db_operation"],
                "name": span["name"],
                "db.operation": span["attributes"]["db.operation"],
                "db.operations": span["attributes"]["db.operations"],
                "db.operation.batch.size": span["attributes"]["db.operation.batch.size"],
            });
            let want = json!({
                "db_operation": case.operation,
                "name": case.operation,
                "db.operation": case.operation,
                "db.operations": case.statements,
                "db.operation.batch.size": case.statements.as_ref().map(Vec::len),
            });
            if told != want {
                problems.push(format!(
                    "{}: Core was told {told}, not {want}",
                    case.label()
                ));
            }
        }
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    })
    .await;
}
