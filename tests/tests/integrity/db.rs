//! Database hooks: a failing statement still completes, and neither its error nor a redis
//! credential command carries a value to Core.

use openbox::ErrorPolicy;
use openbox_tests::harness::Harness;
use openbox_tests::hook_fixtures::{BOUND_SECRET, HookStep};
use openbox_tests::services::{self, POSTGRES_URL};
use openbox_tests::unique;
use sqlx::AssertSqlSafe;

use crate::{log_text, spans_at};

/// A statement whose error quotes its bound value (`invalid input syntax … "<value>"`), and
/// one whose error has a `DETAIL: Key (note)=(<value>) already exists` line: both complete,
/// with the SQLSTATE and no value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_statements_complete_without_values() {
    if !services::require("PostgreSQL", "127.0.0.1:5432") {
        return;
    }
    let table = unique("uniq").replace('-', "_");
    let setup = sqlx::PgPool::connect(POSTGRES_URL).await.unwrap();
    sqlx::query(AssertSqlSafe(format!(
        "CREATE TABLE {table} (note TEXT UNIQUE)"
    )))
    .execute(&setup)
    .await
    .unwrap();
    let insert = format!("INSERT INTO {table} (note) VALUES ($1)");
    let h = Harness::new("").await;
    let plugin = h.plugin(ErrorPolicy::FailClosed, |b| b).await;
    let wid = unique("db-errors");
    let step = |sql: &str, tokio: bool| {
        (
            false,
            if tokio {
                HookStep::TokioPostgresExecute { sql: sql.into() }
            } else {
                HookStep::SqlxExecute { sql: sql.into() }
            },
        )
    };
    let results = h
        .run(Some(plugin), async {
            h.run_hooks(
                &wid,
                vec![
                    step("SELECT $1::int", false),
                    step(&insert, true),
                    step(&insert, true),
                    step(&insert, false),
                ],
            )
            .await
        })
        .await;
    sqlx::query(AssertSqlSafe(format!("DROP TABLE {table}")))
        .execute(&setup)
        .await
        .unwrap();
    assert_eq!(
        results,
        [
            "driver error 22P02",
            "affected 1",
            "driver error 23505",
            "driver error 23505"
        ]
    );
    let events = h.events_of(&wid).await;
    let completed = spans_at(&events, "completed");
    assert_eq!(completed.len(), 4, "every statement that started completed");
    assert_eq!(
        completed[0]["error"],
        "SQLSTATE 22P02: invalid input syntax for type integer: ?"
    );
    for (span, code) in [(completed[2], "23505"), (completed[3], "23505")] {
        let error = span["error"].as_str().unwrap();
        assert!(error.starts_with(&format!("SQLSTATE {code}: ")), "{error}");
    }
    assert!(
        !log_text(&h.core.log().await).contains(BOUND_SECRET),
        "a bound value reached Core"
    );
}

/// `AUTH`, `HELLO … AUTH` and `MIGRATE … AUTH` are reported by name: the password never
/// reaches Core.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_credentials_never_reach_core() {
    if !services::require("Redis", "127.0.0.1:6379") {
        return;
    }
    const PASSWORD: &str = "redis-password-4711";
    let h = Harness::new("").await;
    // The secrets travel to the activity in the workflow's own input, which WorkflowStarted
    // reports as it reports any argument: this test is about what the operations send.
    let plugin = h
        .plugin(ErrorPolicy::FailClosed, |b| {
            b.options(|o| o.send_start_event(false))
        })
        .await;
    let wid = unique("redis-auth");
    let cmd = |args: &[&str]| {
        (
            false,
            HookStep::RedisCommand {
                args: args.iter().map(|a| a.to_string()).collect(),
            },
        )
    };
    let results = h
        .run(Some(plugin), async {
            h.run_hooks(
                &wid,
                vec![
                    cmd(&["AUTH", PASSWORD]),
                    cmd(&["AUTH", "default", PASSWORD]),
                    cmd(&["HELLO", "3", "AUTH", "default", PASSWORD]),
                    cmd(&[
                        "MIGRATE",
                        "127.0.0.1",
                        "1",
                        "",
                        "0",
                        "100",
                        "AUTH",
                        PASSWORD,
                        "KEYS",
                        "k",
                    ]),
                ],
            )
            .await
        })
        .await;
    // Whether the server accepts them (a `nopass` default user takes any password) does not
    // matter: each command reached it.
    assert_eq!(results.len(), 4, "{results:?}");
    let events = h.events_of(&wid).await;
    let statements: Vec<&str> = spans_at(&events, "started")
        .iter()
        .map(|s| s["db_statement"].as_str().unwrap())
        .collect();
    assert_eq!(statements, ["AUTH", "AUTH", "HELLO", "MIGRATE"]);
    assert!(!log_text(&h.core.log().await).contains(PASSWORD));
}
