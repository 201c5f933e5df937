//! OpenBox's own contract for hook payloads — `assert_hook_wire_shape` of its base Python
//! package, the check every framework SDK's hooks must pass — applied to what this SDK sends for
//! every hook type at both stages: HTTP (whole and streamed), every SQL wrapper (a batch too),
//! redis, files (async and sync), `#[traced]` functions, commands (async and sync), and the tower
//! layer (a gRPC stream through tonic, a POST through hyper-util), an MCP session (rmcp), and
//! message publishes (RabbitMQ, NATS with JetStream, Mosquitto).

use std::process::Command;

use openbox::ErrorPolicy;
use openbox_tests::brokers::{Broker, JetStreamConsumer};
use openbox_tests::harness::Harness;
use openbox_tests::hook_fixtures::{HookStep, SqlVia};
use openbox_tests::http_server::TestHttpServer;
use openbox_tests::services::{self, MYSQL_URL, POSTGRES_URL};
use openbox_tests::{TempDir, unique};
use serde_json::Value;
use sqlx::AssertSqlSafe;

use crate::hooks;

/// Runs the check over `payloads`: what failed, one line each.
fn failures_of(payloads: &[&Value]) -> Vec<String> {
    let root = openbox_devserver::project_root(std::path::Path::new(env!("CARGO_MANIFEST_DIR")));
    let python = openbox_devserver::conformance_python(&root)
        .unwrap_or_else(|e| panic!("OpenBox's contract check is not available: {e}"));
    let dir = TempDir::new("conformance");
    let file = dir.path().join("payloads.json");
    std::fs::write(&file, serde_json::to_vec(payloads).unwrap()).unwrap();
    const CHECK: &str = r##"
import json, sys
from openbox_core.conformance.fake_core import assert_hook_wire_shape
failures = []
for i, payload in enumerate(json.load(open(sys.argv[1]))):
    try:
        assert_hook_wire_shape(payload)
    except AssertionError as e:
        span = (payload.get("spans") or [{}])[0]
        failures.append(f"#{i} {span.get('hook_type')} {span.get('stage')}: {e}")
print(json.dumps(failures))
"##;
    let out = Command::new(&python)
        .arg("-c")
        .arg(CHECK)
        .arg(&file)
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "the check did not run: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("a JSON list of failures")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_hook_payload_passes_openboxs_contract_check() {
    if !services::require("PostgreSQL", "127.0.0.1:5432")
        || !services::require("MariaDB", "127.0.0.1:3306")
        || !services::require("Redis", "127.0.0.1:6379")
        || !services::require("RabbitMQ", "127.0.0.1:5672")
        || !services::require("NATS", "127.0.0.1:4222")
        || !services::require("Mosquitto", "127.0.0.1:1883")
    {
        return;
    }
    let server = TestHttpServer::start().await;
    let grpc = openbox_tests::grpc::GrpcServer::start().await;
    let mcp = openbox_tests::mcp::McpServer::start().await;
    let dir = TempDir::new("conformance-files");
    let table = unique("conf").replace('-', "_");
    let pg = sqlx::PgPool::connect(POSTGRES_URL).await.unwrap();
    let my = sqlx::MySqlPool::connect(MYSQL_URL).await.unwrap();
    let create = format!("CREATE TABLE {table} (note TEXT)");
    sqlx::query(AssertSqlSafe(create.clone()))
        .execute(&pg)
        .await
        .unwrap();
    sqlx::query(AssertSqlSafe(create.clone()))
        .execute(&my)
        .await
        .unwrap();
    let sqlite = dir.path().join("conf.db").display().to_string();
    rusqlite::Connection::open(&sqlite)
        .unwrap()
        .execute(&create, [])
        .unwrap();
    let file = dir.path().join("note.txt").display().to_string();
    let sync_file = dir.path().join("sync.txt").display().to_string();
    let url = &server.url;
    let mut steps = vec![
        HookStep::http(url, "GET", "/page", None),
        HookStep::http(url, "POST", "/json", Some(r#"{"a":1}"#)),
        (
            false,
            HookStep::HttpChunks {
                url: format!("{url}/stream-long"),
                chunks: u32::MAX,
                measure_heap: false,
            },
        ),
        (
            false,
            HookStep::SqlxPostgres {
                table: table.clone(),
            },
        ),
        (
            false,
            HookStep::SqlxMysql {
                table: table.clone(),
            },
        ),
        (
            false,
            HookStep::SqlxSqlite {
                file: sqlite.clone(),
                table: table.clone(),
            },
        ),
        (
            false,
            HookStep::TokioPostgres {
                table: table.clone(),
            },
        ),
        (
            false,
            HookStep::Rusqlite {
                file: sqlite.clone(),
                table: table.clone(),
            },
        ),
        (
            true,
            HookStep::Rusqlite {
                file: sqlite.clone(),
                table: table.clone(),
            },
        ),
        (
            false,
            HookStep::Sql {
                via: SqlVia::TokioPostgres,
                sql: format!("BEGIN; SELECT count(*) FROM {table}; COMMIT;"),
                batch: true,
            },
        ),
        (
            false,
            HookStep::Sql {
                via: SqlVia::SeaOrm {
                    db: openbox_tests::orm::OrmDb::Postgres,
                },
                sql: format!("SELECT count(*) FROM {table}"),
                batch: false,
            },
        ),
        (
            false,
            HookStep::Sql {
                via: SqlVia::DieselAsync,
                sql: format!("SELECT count(*) FROM {table}"),
                batch: false,
            },
        ),
        (
            false,
            HookStep::Redis {
                key: unique("conf"),
            },
        ),
        (false, HookStep::WriteFile { path: file.clone() }),
        (false, HookStep::ReadFile { path: file }),
        (true, HookStep::WriteFileSync { path: sync_file }),
        (
            false,
            HookStep::Traced {
                text: "conformance".into(),
            },
        ),
        (true, HookStep::TracedSync { x: 21 }),
        (
            false,
            HookStep::Process {
                program: "sh".into(),
                args: vec!["-c".into(), "echo out; echo err >&2".into()],
                collect: true,
                secrets: true,
            },
        ),
        (
            true,
            HookStep::ProcessSync {
                program: "true".into(),
                args: vec![],
            },
        ),
        (
            false,
            HookStep::Grpc {
                url: grpc.url.clone(),
                method: "Stream".into(),
                text: "a b".into(),
            },
        ),
        (
            false,
            HookStep::Mcp {
                url: mcp.url.clone(),
                tool: "add".into(),
                arguments: r#"{"a": 1, "b": 2}"#.into(),
            },
        ),
        (
            false,
            HookStep::Hyper {
                method: "POST".into(),
                url: format!("{url}/json"),
                body: Some(r#"{"a":1}"#.into()),
            },
        ),
    ];
    let subjects = unique("conformance");
    let stream = JetStreamConsumer::start(&format!("{subjects}.js")).await;
    for (broker, destination) in [
        (
            Broker::Amqp {
                exchange: String::new(),
            },
            "nobody".to_owned(),
        ),
        (Broker::Nats, format!("{subjects}.core")),
        (Broker::JetStream, format!("{subjects}.js.stored")),
        (Broker::Mqtt, format!("{subjects}/topic")),
    ] {
        steps.push((
            false,
            HookStep::Publish {
                broker,
                destination,
            },
        ));
    }
    let h = Harness::new("").await;
    let plugin = h.plugin(ErrorPolicy::FailClosed, |b| b).await;
    let wid = unique("conformance");
    let results = h.run(Some(plugin), h.run_hooks(&wid, steps)).await;
    assert_eq!(stream.received().await.len(), 1);
    let drop = format!("DROP TABLE {table}");
    sqlx::query(AssertSqlSafe(drop.clone()))
        .execute(&pg)
        .await
        .unwrap();
    sqlx::query(AssertSqlSafe(drop)).execute(&my).await.unwrap();
    assert!(
        results.iter().all(|r| !r.starts_with("ERR")),
        "every step ran: {results:?}"
    );

    let events = h.events_of(&wid).await;
    let payloads = hooks(&events);
    let mut kinds: Vec<String> = payloads
        .iter()
        .map(|p| format!("{} {}", p["spans"][0]["hook_type"], p["spans"][0]["stage"]))
        .collect();
    kinds.sort();
    kinds.dedup();
    assert_eq!(
        kinds.len(),
        8,
        "every hook type at both stages was checked: {kinds:?}"
    );
    let failures = failures_of(&payloads);
    assert!(
        failures.is_empty(),
        "{} of {} hook payloads fail OpenBox's contract check:\n{}",
        failures.len(),
        payloads.len(),
        failures.join("\n")
    );
}
