//! Secrets (contract D10): a governed worker runs workflows whose activities send a credential,
//! a cookie and bound SQL parameters, under a distinctive API key. Afterwards none of those
//! values may appear in the workflow histories (`temporal workflow show --output json`), in
//! anything the process logged (this project's crates at `trace`), or in the dev Core's event
//! log file. The worker runs with the debug log of Core traffic on (`OPENBOX_DEBUG`), so
//! that every request and answer body is in the captured logs too.

use openbox::ErrorPolicy;
use openbox_tests::TempDir;
use openbox_tests::core::{TEST_KEY, config_builder_for};
use openbox_tests::fixtures::{ChargeReq, Plan, Step};
use openbox_tests::harness::{Harness, outcome, result_of};
use openbox_tests::history::history_json;
use openbox_tests::hook_fixtures::{BOUND_SECRET, CLIENT_AUTHORIZATION, CLIENT_COOKIE, HookStep};
use openbox_tests::http_server::TestHttpServer;
use openbox_tests::observe::Observer;
use openbox_tests::{services, unique};

/// What must never be written anywhere: the API key, the client's credential and cookie, the
/// server's cookie, and the value bound as a SQL/Redis parameter.
fn secrets() -> Vec<&'static str> {
    let token = CLIENT_AUTHORIZATION.trim_start_matches("Bearer ");
    let cookie = CLIENT_COOKIE.trim_start_matches("session=");
    vec![
        TEST_KEY,
        "integration_0123",
        token,
        cookie,
        "server-session-cookie-5150",
        BOUND_SECRET,
    ]
}

fn assert_free_of_secrets(what: &str, text: &str) {
    for secret in secrets() {
        if let Some(at) = text.find(secret) {
            let from = at.saturating_sub(200);
            panic!(
                "{secret:?} found in {what}: …{}…",
                &text[from..(at + secret.len()).min(text.len())]
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_in_histories_logs_or_the_event_log() {
    let obs = Observer::get();
    let _serial = obs.exclusive().await;
    obs.capture_logs();
    let server = TestHttpServer::start().await;
    let url = &server.url;
    // One blocked request, so that failure paths (messages, error details) are covered too.
    let rules = format!(
        "[[rules]]\nname = \"no posts to /blocked\"\nverdict = \"block\"\nreason = \"no posts\"\n\
         match = {{ \"spans.0.stage\" = \"started\", \"spans.0.http_url\" = \"{url}/blocked\" }}\n"
    );
    let h = Harness::new(&rules).await;
    let debug_config = config_builder_for(
        &h.core.core.url(),
        ErrorPolicy::FailClosed,
        std::time::Duration::from_secs(5),
    )
    .debug(true)
    .build()
    .unwrap();
    let plugin = h
        .plugin(ErrorPolicy::FailClosed, |b| b.config(debug_config))
        .await;

    let dir = TempDir::new("obx-secrets");
    let file = dir.path().join("notes.db").display().to_string();
    let table = unique("secrets").replace('-', "_");
    rusqlite::Connection::open(&file)
        .unwrap()
        .execute(&format!("CREATE TABLE {table} (note text)"), [])
        .unwrap();
    let http =
        |method: &str, path: &str, body: Option<&str>| HookStep::http(url, method, path, body);
    let mut steps = vec![
        http("GET", "/page", None),
        http("POST", "/json", Some(r#"{"amount":12}"#)),
        http("POST", "/blocked", Some(r#"{"amount":13}"#)),
        (
            false,
            HookStep::SqlxSqlite {
                file: file.clone(),
                table: table.clone(),
            },
        ),
        (
            true,
            HookStep::Rusqlite {
                file: file.clone(),
                table: table.clone(),
            },
        ),
    ];
    if services::require("PostgreSQL", "127.0.0.1:5432") {
        let pg_table = format!("{table}_pg");
        let pool = sqlx::PgPool::connect(services::POSTGRES_URL).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "CREATE TABLE {pg_table} (note text)"
        )))
        .execute(&pool)
        .await
        .unwrap();
        steps.push((
            false,
            HookStep::TokioPostgres {
                table: pg_table.clone(),
            },
        ));
        steps.push((false, HookStep::SqlxPostgres { table: pg_table }));
    }
    if services::require("Redis", "127.0.0.1:6379") {
        steps.push((false, HookStep::Redis { key: table.clone() }));
    }
    let step_count = steps.len();
    let (hooks_wid, plan_wid) = (unique("secrets-hooks"), unique("secrets-plan"));
    let (hook_results, plan_outcome) = h
        .run(Some(plugin), async {
            let hooks = h.run_hooks(&hooks_wid, steps).await;
            let plan = Plan {
                steps: vec![
                    Step::Echo("hello".into()),
                    Step::Charge(ChargeReq {
                        customer: "ada".into(),
                        amount: 5,
                        card: "4000000000000002".into(),
                    }),
                ],
                ..Plan::default()
            };
            let plan = outcome(result_of(&h.start_plan(&plan_wid, plan).await).await);
            (hooks, plan)
        })
        .await;
    assert_eq!(hook_results.len(), step_count);
    assert!(
        hook_results[2].starts_with("ERR:GovernanceBlock"),
        "the blocked request failed: {hook_results:?}"
    );
    assert_eq!(plan_outcome.results.len(), 2);
    // The credential really travelled: the HTTP server got it, so its absence below means
    // redaction, not a request that never carried it.
    assert_eq!(
        server.received("/page")[0].headers.get("authorization"),
        Some(&CLIENT_AUTHORIZATION.to_owned())
    );

    for wid in [&hooks_wid, &plan_wid] {
        let history = history_json(&h.env.temporal, wid);
        assert!(history.len() > 1_000, "history of {wid} looks empty");
        assert_free_of_secrets(&format!("the history of {wid}"), &history);
    }
    let event_log = std::fs::read_to_string(h.core.event_log_path()).unwrap();
    assert!(
        event_log.contains(&hooks_wid) && event_log.contains("[REDACTED]"),
        "the event log holds the hook events, with redactions"
    );
    assert_free_of_secrets("the dev Core's event log", &event_log);
    let logs = obs.logs();
    assert!(
        logs.matches("OpenBox Core evaluation").count() >= 2 * step_count
            && logs.contains("no posts"),
        "the captured logs hold the SDK's output, the block reason included"
    );
    // The debug log holds every hook request and its answer, bodies included.
    let wire = |message: &str| {
        logs.lines()
            .filter(|l| l.contains("openbox::wire") && l.contains(message))
            .count()
    };
    assert!(
        wire("OpenBox Core request") >= 2 * step_count
            && wire("OpenBox Core answer") >= 2 * step_count,
        "{} requests and {} answers in the debug log",
        wire("OpenBox Core request"),
        wire("OpenBox Core answer")
    );
    assert!(
        logs.lines().any(|l| l.contains("openbox::wire")
            && l.contains(&hooks_wid)
            && l.contains("[REDACTED]")),
        "the debug log shows the request bodies, with what was masked"
    );
    assert_free_of_secrets("the process's logs", &logs);
}
