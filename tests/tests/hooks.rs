//! Hook-level governance against real servers: a local HTTP server, PostgreSQL, MariaDB and
//! Redis on this machine, SQLite files, the file system — inside activities on the real Temporal
//! dev server, judged by the dev Core's event log and by what the servers saw.

use std::collections::BTreeSet;

use openbox::__private::PARTIAL_ATTRIBUTE;
use openbox::ErrorPolicy;
use openbox_dev::LoggedRequest;
use openbox_tests::brokers::{
    AmqpConsumer, Broker, JetStreamConsumer, MESSAGE_SECRET, MqttConsumer, NatsConsumer,
    REPLY_SECRET,
};
use openbox_tests::grpc::GrpcServer;
use openbox_tests::harness::{Harness, event_types, result_of};
use openbox_tests::history::{failure_types, root_message};
use openbox_tests::hook_fixtures::{
    BOUND_SECRET, CLIENT_AUTHORIZATION, CLIENT_COOKIE, FILE_CONTENT, GRPC_SECRET, HookStep,
    HookWorkflow, MCP_TOKEN, PROCESS_ARG_SECRET, PROCESS_ENV_SECRET, score_text, traced_runs,
};
use openbox_tests::http_server::TestHttpServer;
use openbox_tests::llm::{LLM_API_KEY, LlmServer};
use openbox_tests::mcp::{MCP_SERVER_SECRET, McpServer};
use openbox_tests::services::{self, MYSQL_URL, POSTGRES_URL, REDIS_URL};
use openbox_tests::{TempDir, unique};
use serde_json::{Value, json};
use sqlx::AssertSqlSafe;
use temporalio_client::WorkflowStartOptions;

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

fn set(keys: &[&str]) -> BTreeSet<String> {
    keys.iter().map(|k| k.to_string()).collect()
}

/// The keys of a hook evaluation body (design §1.7).
const ENVELOPE: [&str; 15] = [
    "source",
    "event_type",
    "workflow_id",
    "run_id",
    "workflow_type",
    "activity_id",
    "activity_type",
    "task_queue",
    "attempt",
    "activity_input",
    "activity_output",
    "spans",
    "span_count",
    "hook_trigger",
    "timestamp",
];
/// The keys every span has (design §1.7).
const SPAN_COMMON: [&str; 15] = [
    "span_id",
    "trace_id",
    "parent_span_id",
    "name",
    "kind",
    "stage",
    "start_time",
    "end_time",
    "duration_ns",
    "attributes",
    "status",
    "events",
    "hook_type",
    "error",
    "activity_id",
];

fn hooks(events: &[LoggedRequest]) -> Vec<&Value> {
    events
        .iter()
        .filter(|e| e.is_hook())
        .map(|e| &e.body)
        .collect()
}

/// Hook bodies whose span has `key == value`.
fn hooks_where<'a>(events: &'a [LoggedRequest], key: &str, value: &str) -> Vec<&'a Value> {
    hooks(events)
        .into_iter()
        .filter(|b| b["spans"][0][key] == value)
        .collect()
}

fn assert_envelope(body: &Value) {
    assert_eq!(keys(body), set(&ENVELOPE));
    assert_eq!(body["event_type"], "ActivityStarted");
    assert_eq!(body["hook_trigger"], true);
    assert_eq!(body["span_count"], 1);
    assert_eq!(body["activity_output"], Value::Null);
    assert_eq!(body["spans"].as_array().unwrap().len(), 1);
}

fn assert_span_keys(span: &Value, specific: &[&str]) {
    let want: BTreeSet<String> = SPAN_COMMON
        .iter()
        .chain(specific)
        .map(|k| k.to_string())
        .collect();
    assert_eq!(keys(span), want, "span keys of {span}");
    assert_eq!(span["span_id"].as_str().unwrap().len(), 16);
    assert_eq!(span["trace_id"].as_str().unwrap().len(), 32);
    match span["stage"].as_str().unwrap() {
        "started" => assert!(span["end_time"].is_null() && span["duration_ns"].is_null()),
        "completed" => assert!(span["end_time"].is_u64() && span["duration_ns"].is_u64()),
        other => panic!("stage {other}"),
    }
}

fn log_text(events: &[LoggedRequest]) -> String {
    events
        .iter()
        .map(|e| serde_json::to_string(e).unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}

/// ActivityCompleted bodies of the run.
fn completed(events: &[LoggedRequest]) -> Vec<&Value> {
    events
        .iter()
        .filter(|e| !e.is_hook() && e.event_type() == Some("ActivityCompleted"))
        .map(|e| &e.body)
        .collect()
}

fn stage_rule(name: &str, stage: &str, key: &str, value: &str) -> String {
    format!(
        "[[rules]]\nname = \"{name}\"\nverdict = \"block\"\nreason = \"{name}\"\n\
         match = {{ \"spans.0.stage\" = \"{stage}\", \"spans.0.{key}\" = {value:?} }}\n"
    )
}

/// Streamed answers: `completed` is sent when the caller has read the last chunk (with the
/// whole text), or when it drops the body early (partial, with what it read); binary bodies are
/// not captured; a BLOCK at `completed` fails the read of the last chunk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_answers_are_governed_at_their_end() {
    let server = TestHttpServer::start().await;
    let url = &server.url;
    let blocked = format!("{url}/stream-long?refused=1");
    let h = Harness::new(&stage_rule(
        "refuse the streamed answer",
        "completed",
        "http_url",
        &blocked,
    ))
    .await;
    let plugin = h.plugin(ErrorPolicy::FailClosed, |b| b).await;
    let wid = unique("http-streams");
    let chunks = |path: &str, chunks: u32| {
        (
            false,
            HookStep::HttpChunks {
                url: format!("{url}{path}"),
                chunks,
                measure_heap: false,
            },
        )
    };
    let results = h
        .run(Some(plugin), async {
            h.run_hooks(
                &wid,
                vec![
                    chunks("/stream-long", u32::MAX),
                    chunks("/sse", 2),
                    chunks("/download?mib=2", u32::MAX),
                    chunks("/stream-long?refused=1", u32::MAX),
                    chunks("/download?mib=3&text=1", u32::MAX),
                    chunks("/download?mib=3&text=1&early=1", 20),
                ],
            )
            .await
        })
        .await;
    let whole: String = (0..2000).map(|i| format!("line {i:04}\n")).collect();
    assert!(
        results[0].starts_with("200 20000 bytes: line 0000"),
        "{}",
        results[0]
    );
    assert!(
        results[1].starts_with("200 ") && results[1].contains("data: 0"),
        "{}",
        results[1]
    );
    assert!(
        results[2].starts_with("200 2097152 bytes"),
        "{}",
        results[2]
    );
    assert_eq!(
        results[3],
        "ERR:GovernanceBlock:Hook governance block: refuse the streamed answer"
    );

    let events = h.events_of(&wid).await;
    let done = |u: &str| {
        let stages = hooks_where(&events, "http_url", u);
        assert_eq!(stages.len(), 2, "{u}: started and completed");
        stages[1]["spans"][0].clone()
    };
    let long = done(&format!("{url}/stream-long"));
    assert_eq!(long["stage"], "completed");
    assert!(
        long["response_body"].as_str() == Some(whole.as_str()),
        "the whole text, read at the end: {:.200}",
        long["response_body"]
    );
    assert_eq!(long["attributes"][PARTIAL_ATTRIBUTE], false);
    let sse = done(&format!("{url}/sse"));
    assert_eq!(
        sse["attributes"][PARTIAL_ATTRIBUTE], true,
        "dropped early: {sse}"
    );
    let text = sse["response_body"].as_str().unwrap_or_default();
    assert!(
        text.starts_with("data: 0\n\n"),
        "what the caller read: {text:?}"
    );
    let download = done(&format!("{url}/download?mib=2"));
    assert!(
        download["response_body"].is_null(),
        "binary bodies are not captured"
    );
    assert_eq!(download["attributes"][PARTIAL_ATTRIBUTE], false);
    assert_eq!(download["http_status_code"], 200);
    assert_eq!(done(&blocked)["attributes"][PARTIAL_ATTRIBUTE], false);
    let done_events = completed(&events);
    assert_eq!(done_events[3]["error"]["type"], "GovernanceBlock");
    // A long text is cut where the capture ends, and the cut states the body's true length
    // (read to its end), or that it is unknown (dropped after 20 chunks of 64 KiB).
    let long_text = done(&format!("{url}/download?mib=3&text=1"));
    let shown = long_text["response_body"].as_str().unwrap_or_default();
    assert!(
        shown.ends_with("a...[truncated, 3145728 total chars]"),
        "{}",
        &shown[shown.len().saturating_sub(80)..]
    );
    let early = done(&format!("{url}/download?mib=3&text=1&early=1"));
    assert_eq!(early["attributes"][PARTIAL_ATTRIBUTE], true);
    let shown = early["response_body"].as_str().unwrap_or_default();
    assert!(
        shown.ends_with("a...[truncated, total length unknown]"),
        "{}",
        &shown[shown.len().saturating_sub(80)..]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_hooks() {
    let server = TestHttpServer::start().await;
    let url = &server.url;
    let rules = stage_rule(
        "no posts to /blocked",
        "started",
        "http_url",
        &format!("{url}/blocked"),
    ) + &stage_rule(
        "refuse the answer of /late",
        "completed",
        "http_url",
        &format!("{url}/late"),
    );
    let h = Harness::new(&rules).await;
    let plugin = h.plugin(ErrorPolicy::FailClosed, |b| b).await;
    let wid = unique("http");
    let http =
        |method: &str, path: &str, body: Option<&str>| HookStep::http(url, method, path, body);
    let results = h
        .run(Some(plugin), async {
            h.run_hooks(
                &wid,
                vec![
                    http("GET", "/page", None),
                    http("POST", "/json", Some(r#"{"amount":12}"#)),
                    http("POST", "/blocked", Some(r#"{"secret":"never sent"}"#)),
                    http("GET", "/late", None),
                    http("GET", "/stream", None),
                    http("GET", "/missing", None),
                ],
            )
            .await
        })
        .await;
    assert_eq!(results[0], "200 <!DOCTYPE HTML><html>hello</html>");
    assert_eq!(results[1], r#"200 {"amount":12}"#);
    assert_eq!(
        results[2],
        "ERR:GovernanceBlock:Hook governance block: no posts to /blocked"
    );
    assert_eq!(
        results[3],
        "ERR:GovernanceBlock:Hook governance block: refuse the answer of /late"
    );
    assert_eq!(
        results[4], "200 abc",
        "streamed bodies are not buffered by the hook"
    );
    assert_eq!(results[5], "404 nope");
    assert!(
        server.received("/blocked").is_empty(),
        "a BLOCK at started: the server never saw the request"
    );
    assert_eq!(
        server.received("/late").len(),
        1,
        "a BLOCK at completed: the request was made"
    );
    assert_eq!(
        server.received("/page")[0].headers["authorization"],
        CLIENT_AUTHORIZATION,
        "the server got the real header"
    );
    assert_eq!(server.received("/page")[0].headers["cookie"], CLIENT_COOKIE);

    let events = h.events_of(&wid).await;
    let page = hooks_where(&events, "http_url", &format!("{url}/page"));
    assert_eq!(page.len(), 2);
    let http_keys = [
        "http_method",
        "http_url",
        "request_body",
        "request_headers",
        "response_body",
        "response_headers",
        "http_status_code",
    ];
    for body in &page {
        assert_envelope(body);
        assert_span_keys(&body["spans"][0], &http_keys);
    }
    let (started, done) = (&page[0]["spans"][0], &page[1]["spans"][0]);
    assert_eq!(
        (started["stage"].as_str(), done["stage"].as_str()),
        (Some("started"), Some("completed"))
    );
    assert_eq!(
        started["span_id"], done["span_id"],
        "both stages describe one span"
    );
    assert_eq!(started["http_method"], "GET");
    assert_eq!(started["kind"], "CLIENT");
    assert_eq!(started["request_headers"]["authorization"], "[REDACTED]");
    assert_eq!(started["request_headers"]["cookie"], "[REDACTED]");
    assert!(started["response_headers"].is_null() && started["http_status_code"].is_null());
    assert_eq!(done["http_status_code"], 200);
    assert_eq!(done["response_body"], "<!DOCTYPE HTML><html>hello</html>");
    assert_eq!(done["response_headers"]["set-cookie"], "[REDACTED]");
    assert_eq!(done["attributes"]["http.status_code"], 200);
    let json_started = &hooks_where(&events, "http_url", &format!("{url}/json"))[0]["spans"][0];
    assert_eq!(json_started["request_body"], r#"{"amount":12}"#);
    let stream_done = &hooks_where(&events, "http_url", &format!("{url}/stream"))[1]["spans"][0];
    assert_eq!(
        stream_done["response_body"], "abc",
        "a streamed body is captured as the caller reads it"
    );
    assert_eq!(stream_done["attributes"][PARTIAL_ATTRIBUTE], false);
    let missing_done = &hooks_where(&events, "http_url", &format!("{url}/missing"))[1]["spans"][0];
    assert_eq!(missing_done["error"], "HTTP 404");
    assert_eq!(
        missing_done["status"],
        json!({"code": "ERROR", "description": "HTTP 404"})
    );

    // ActivityCompleted carries each operation once (design D5), including the failed ones.
    let done_events = completed(&events);
    assert_eq!(done_events.len(), 6);
    assert_eq!(done_events[0]["span_count"], 1);
    assert_eq!(done_events[0]["spans"][0]["span_id"], done["span_id"]);
    assert_eq!(done_events[0]["spans"][0]["stage"], "completed");
    assert_eq!(done_events[2]["status"], "failed");
    assert_eq!(done_events[2]["error"]["type"], "GovernanceBlock");
    assert_eq!(
        done_events[2]["spans"][0]["stage"], "started",
        "the stopped request is reported as started"
    );

    let text = log_text(&h.core.log().await);
    for secret in [
        "user-secret-token-4242",
        "user-cookie-7777",
        "server-session-cookie-5150",
    ] {
        assert!(!text.contains(secret), "{secret} reached Core");
    }
    // Requests outside an activity are not governed.
    let before = h.core.core.request_count();
    let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(openbox::hooks::http::OpenBoxMiddleware::default())
        .build();
    assert_eq!(
        client
            .get(format!("{url}/page"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(h.core.core.request_count(), before);
}

/// The tower layer: a tonic channel's gRPC calls (unary and server-streaming) and hyper-util's
/// requests are governed like the reqwest middleware's — a BLOCK at `started` means the server
/// never sees the call, a BLOCK at `completed` fails the activity, metadata and headers with
/// secrets are masked, and Core sees the gRPC method and status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tower_layer_grpc_and_hyper() {
    let grpc = GrpcServer::start().await;
    let server = TestHttpServer::start().await;
    let url = &server.url;
    let rules = stage_rule("no shouting", "started", "attributes.rpc.method", "Shout")
        + &stage_rule(
            "refuse whispers",
            "completed",
            "attributes.rpc.method",
            "Whisper",
        )
        + &stage_rule(
            "no posts to /blocked",
            "started",
            "http_url",
            &format!("{url}/blocked"),
        )
        + &stage_rule(
            "refuse the answer of /late",
            "completed",
            "http_url",
            &format!("{url}/late"),
        );
    let h = Harness::new(&rules).await;
    let plugin = h.plugin(ErrorPolicy::FailClosed, |b| b).await;
    let wid = unique("tower");
    let call = |method: &str, text: &str| {
        (
            false,
            HookStep::Grpc {
                url: grpc.url.clone(),
                method: method.into(),
                text: text.into(),
            },
        )
    };
    let hyper = |method: &str, path: &str, body: Option<&str>| {
        (
            false,
            HookStep::Hyper {
                method: method.into(),
                url: format!("{url}{path}"),
                body: body.map(str::to_owned),
            },
        )
    };
    let results = h
        .run(Some(plugin), async {
            h.run_hooks(
                &wid,
                vec![
                    call("Say", "hello there"),
                    call("Shout", "shout-text"),
                    call("Whisper", "whisper-text"),
                    call("Stream", "one two three"),
                    call("Say", "deny this"),
                    hyper("POST", "/json", Some(r#"{"amount":12,"api_key":"k-77"}"#)),
                    hyper("POST", "/blocked", Some("{}")),
                    hyper("GET", "/late", None),
                    hyper("GET", "/stream", None),
                ],
            )
            .await
        })
        .await;
    assert_eq!(results[0], "echo: hello there");
    assert_eq!(
        results[1],
        "ERR:GovernanceBlock:Hook governance block: no shouting"
    );
    assert_eq!(
        results[2],
        "ERR:GovernanceBlock:Hook governance block: refuse whispers"
    );
    assert_eq!(
        results[3], "one|two|three",
        "a server stream reaches the caller"
    );
    assert_eq!(results[4], "status 7");
    assert_eq!(results[5], r#"200 {"amount":12,"api_key":"k-77"}"#);
    assert_eq!(
        results[6],
        "ERR:GovernanceBlock:Hook governance block: no posts to /blocked"
    );
    assert_eq!(
        results[7],
        "ERR:GovernanceBlock:Hook governance block: refuse the answer of /late"
    );
    assert_eq!(results[8], "200 abc");
    let seen: Vec<String> = grpc.calls().into_iter().map(|(_, text)| text).collect();
    assert_eq!(
        seen,
        ["hello there", "whisper-text", "one two three", "deny this"],
        "a BLOCK at started: the gRPC server never saw the call; at completed: it did"
    );
    assert!(
        server.received("/blocked").is_empty(),
        "a BLOCK at started: the HTTP server never saw the request"
    );
    assert_eq!(server.received("/late").len(), 1);

    let events = h.events_of(&wid).await;
    let say = format!("{}/echo.v1.Echo/Say", grpc.url);
    let say_spans: Vec<&Value> = hooks_where(&events, "http_url", &say)
        .into_iter()
        .map(|b| &b["spans"][0])
        .collect();
    assert_eq!(say_spans.len(), 4, "two Say calls, two stages each");
    let (started, done) = (say_spans[0], say_spans[1]);
    assert_eq!(started["hook_type"], "http_request");
    assert_eq!(started["name"], "echo.v1.Echo/Say");
    assert_eq!(started["http_method"], "POST");
    assert_eq!(
        started["attributes"],
        json!({"http.method": "POST", "http.url": say, "rpc.system": "grpc", "rpc.service": "echo.v1.Echo", "rpc.method": "Say"})
    );
    assert_eq!(started["request_headers"]["authorization"], "[REDACTED]");
    assert_eq!(started["request_headers"]["x-api-key"], "[REDACTED]");
    assert!(
        started["request_body"].is_null(),
        "protobuf bodies are not text"
    );
    assert_eq!(done["attributes"]["rpc.grpc.status_code"], 0);
    assert_eq!(done["http_status_code"], 200);
    assert!(done["error"].is_null(), "{done}");
    let denied = say_spans[3];
    assert_eq!(denied["attributes"]["rpc.grpc.status_code"], 7);
    assert_eq!(denied["error"], "gRPC status 7 (PERMISSION_DENIED)");
    let stream = hooks_where(
        &events,
        "http_url",
        &format!("{}/echo.v1.Echo/Stream", grpc.url),
    );
    assert_eq!(stream.len(), 2);
    assert_eq!(
        stream[1]["spans"][0]["attributes"]["rpc.grpc.status_code"],
        0
    );
    assert_eq!(
        hooks_where(
            &events,
            "http_url",
            &format!("{}/echo.v1.Echo/Shout", grpc.url)
        )
        .len(),
        1,
        "blocked at started: no completed"
    );

    let json_spans = hooks_where(&events, "http_url", &format!("{url}/json"));
    assert_eq!(json_spans.len(), 2);
    let (started, done) = (&json_spans[0]["spans"][0], &json_spans[1]["spans"][0]);
    assert_eq!(
        started["request_body"], r#"{"amount":12,"api_key":"[REDACTED]"}"#,
        "an in-memory request body is captured, masked"
    );
    assert_eq!(started["request_headers"]["authorization"], "[REDACTED]");
    assert_eq!(
        done["response_body"], r#"{"amount":12,"api_key":"[REDACTED]"}"#,
        "a small text answer is read whole before the caller gets it"
    );
    let stream_done = &hooks_where(&events, "http_url", &format!("{url}/stream"))[1]["spans"][0];
    assert_eq!(stream_done["response_body"], "abc");
    assert_eq!(stream_done["attributes"][PARTIAL_ATTRIBUTE], false);

    let hook_text: String = hooks(&events).iter().map(|b| b.to_string()).collect();
    for secret in [GRPC_SECRET, "user-secret-token-4242", "k-77"] {
        assert!(!hook_text.contains(secret), "{secret} reached Core");
    }
}

/// MCP: rmcp's client on a governed transport — each tool call evaluated before it is sent (a
/// BLOCK: the server never runs the tool) and when its answer arrives (a BLOCK: the caller gets
/// an error instead of the result, the activity fails); the bearer token, the session id and
/// sensitive arguments and results are masked; Core sees the JSON-RPC method and tool name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_tool_calls() {
    let server = McpServer::start().await;
    let rules = stage_rule(
        "no deletes",
        "started",
        "attributes.gen_ai.tool.name",
        "delete_repo",
    ) + &stage_rule(
        "no configs",
        "completed",
        "attributes.gen_ai.tool.name",
        "read_config",
    );
    let h = Harness::new(&rules).await;
    let plugin = h.plugin(ErrorPolicy::FailClosed, |b| b).await;
    let wid = unique("mcp");
    let call = |tool: &str, arguments: &str| {
        (
            false,
            HookStep::Mcp {
                url: server.url.clone(),
                tool: tool.into(),
                arguments: arguments.into(),
            },
        )
    };
    let results = h
        .run(Some(plugin), async {
            h.run_hooks(
                &wid,
                vec![
                    call(
                        "add",
                        r#"{"a": 2, "b": 40, "api_key": "mcp-arg-secret-1111"}"#,
                    ),
                    call("delete_repo", r#"{"name": "prod"}"#),
                    call("read_config", r#"{"name": "db"}"#),
                    (
                        false,
                        HookStep::McpKept {
                            url: server.url.clone(),
                        },
                    ),
                    (
                        false,
                        HookStep::McpKept {
                            url: server.url.clone(),
                        },
                    ),
                ],
            )
            .await
        })
        .await;
    assert_eq!(results[0], "42");
    assert_eq!(
        results[1],
        "ERR:GovernanceBlock:Hook governance block: no deletes"
    );
    assert_eq!(
        results[2],
        "ERR:GovernanceBlock:Hook governance block: no configs"
    );
    assert_eq!(results[3], "kept");
    assert!(
        results[4].starts_with("error: ") && results[4].contains("has ended"),
        "a client kept past its activity refuses to send: {}",
        results[4]
    );
    let calls = openbox_tests::mcp::calls();
    assert!(calls.contains(&"add:2+40:true".to_owned()), "{calls:?}");
    assert!(
        !calls.iter().any(|c| c.starts_with("delete_repo")),
        "a BLOCK at started: the server never ran the tool: {calls:?}"
    );
    assert!(
        calls.contains(&"read_config:db".to_owned()),
        "a BLOCK at completed: the tool ran: {calls:?}"
    );

    let events = h.events_of(&wid).await;
    let spans: Vec<&Value> = hooks(&events).into_iter().map(|b| &b["spans"][0]).collect();
    let tool_spans: Vec<&&Value> = spans
        .iter()
        .filter(|s| s["attributes"]["mcp.method.name"] == "tools/call")
        .collect();
    let stages: Vec<(String, String)> = tool_spans
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_owned(),
                s["stage"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        stages,
        [
            ("tools/call add", "started"),
            ("tools/call add", "completed"),
            ("tools/call delete_repo", "started"),
            ("tools/call read_config", "started"),
            ("tools/call read_config", "completed"),
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned())),
        "blocked at started: no completed"
    );
    let (started, done) = (tool_spans[0], tool_spans[1]);
    assert_eq!(started["hook_type"], "http_request");
    assert_eq!(started["http_method"], "POST");
    assert_eq!(started["http_url"], server.url);
    assert_eq!(started["attributes"]["gen_ai.tool.name"], "add");
    assert_eq!(
        started["attributes"]["gen_ai.operation.name"],
        "execute_tool"
    );
    assert_eq!(started["request_headers"]["authorization"], "[REDACTED]");
    let request: Value = serde_json::from_str(started["request_body"].as_str().unwrap()).unwrap();
    assert_eq!(request["method"], "tools/call");
    assert_eq!(
        request["params"]["arguments"],
        json!({"a": 2, "b": 40, "api_key": "[REDACTED]"}),
        "sensitive arguments masked"
    );
    let answer: Value = serde_json::from_str(done["response_body"].as_str().unwrap()).unwrap();
    assert_eq!(answer["result"]["content"][0]["text"], "42");
    assert_eq!(done["http_status_code"], 200);
    let initialize = spans
        .iter()
        .find(|s| s["name"] == "initialize")
        .expect("the session's start is governed too");
    assert_eq!(initialize["hook_type"], "http_request");

    let hook_text: String = hooks(&events).iter().map(|b| b.to_string()).collect();
    for secret in [MCP_TOKEN, "mcp-arg-secret-1111", MCP_SERVER_SECRET] {
        assert!(!hook_text.contains(secret), "{secret} reached Core");
    }
}

/// LLM clients: rig's OpenAI client on the governed `reqwest_middleware` client (rig implements
/// its `HttpClientExt` for it) and async-openai's client on `GovernedOpenAiService` — a
/// completion whole and streamed is evaluated before it is sent (a BLOCK: the server never sees
/// it) and after its answer (a BLOCK: the caller gets an error, the activity fails); Core sees
/// the prompt and the answer, never the API key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn llm_completions_through_rig_and_async_openai() {
    let server = LlmServer::start().await;
    let url = &server.url;
    let completions = |prefix: &str| format!("{url}/{prefix}/v1/chat/completions");
    let rules = stage_rule(
        "no completions here",
        "started",
        "http_url",
        &completions("blocked"),
    ) + &stage_rule(
        "refuse the answer",
        "completed",
        "http_url",
        &completions("late"),
    ) + &stage_rule(
        "refuse the streamed answer",
        "completed",
        "http_url",
        &completions("late-stream"),
    );
    let h = Harness::new(&rules).await;
    let plugin = h.plugin(ErrorPolicy::FailClosed, |b| b).await;
    let wid = unique("rig");
    let rig = |prefix: &str, prompt: &str, stream: bool| {
        (
            false,
            HookStep::Rig {
                base: format!("{url}/{prefix}/v1"),
                prompt: prompt.into(),
                stream,
            },
        )
    };
    let openai = |prefix: &str, prompt: &str, stream: bool| {
        (
            false,
            HookStep::OpenAi {
                base: format!("{url}/{prefix}/v1"),
                prompt: prompt.into(),
                stream,
            },
        )
    };
    let results = h
        .run(Some(plugin), async {
            h.run_hooks(
                &wid,
                vec![
                    rig("ok", "what is two plus two", false),
                    rig("ok-stream", "count to three", true),
                    rig("blocked", "delete everything", false),
                    rig("late", "tell a secret", false),
                    rig("late-stream", "stream a secret", true),
                    openai("oa", "hello from async-openai", false),
                    openai("oa-stream", "stream from async-openai", true),
                    openai("blocked", "delete everything", false),
                    openai("late", "tell a secret", false),
                    openai("late-stream", "stream a secret", true),
                ],
            )
            .await
        })
        .await;
    assert_eq!(results[0], "echo: what is two plus two");
    assert_eq!(results[1], "echo: count to three", "streamed word by word");
    assert_eq!(
        results[2],
        "ERR:GovernanceBlock:Hook governance block: no completions here"
    );
    assert_eq!(
        results[3],
        "ERR:GovernanceBlock:Hook governance block: refuse the answer"
    );
    assert_eq!(
        results[4],
        "ERR:GovernanceBlock:Hook governance block: refuse the streamed answer"
    );
    assert_eq!(results[5], "echo: hello from async-openai");
    assert_eq!(results[6], "echo: stream from async-openai");
    for (i, rule) in [
        (7, "no completions here"),
        (8, "refuse the answer"),
        (9, "refuse the streamed answer"),
    ] {
        assert_eq!(
            results[i],
            format!("ERR:GovernanceBlock:Hook governance block: {rule}"),
            "async-openai, step {i}"
        );
    }
    assert_eq!(
        server.paths(),
        [
            "/ok/v1/chat/completions",
            "/ok-stream/v1/chat/completions",
            "/late/v1/chat/completions",
            "/late-stream/v1/chat/completions",
            "/oa/v1/chat/completions",
            "/oa-stream/v1/chat/completions",
            "/late/v1/chat/completions",
            "/late-stream/v1/chat/completions",
        ],
        "a BLOCK at started: the server never saw the completion"
    );

    let events = h.events_of(&wid).await;
    let ok = hooks_where(&events, "http_url", &completions("ok"));
    assert_eq!(ok.len(), 2);
    let (started, done) = (&ok[0]["spans"][0], &ok[1]["spans"][0]);
    assert_eq!(started["http_method"], "POST");
    assert_eq!(started["request_headers"]["authorization"], "[REDACTED]");
    let request: Value = serde_json::from_str(started["request_body"].as_str().unwrap()).unwrap();
    assert_eq!(request["model"], "test-model");
    assert!(
        request["messages"]
            .to_string()
            .contains("what is two plus two"),
        "Core sees the prompt: {request}"
    );
    let answer: Value = serde_json::from_str(done["response_body"].as_str().unwrap()).unwrap();
    assert_eq!(
        answer["choices"][0]["message"]["content"],
        "echo: what is two plus two"
    );
    let streamed = hooks_where(&events, "http_url", &completions("ok-stream"));
    let streamed_done = &streamed[1]["spans"][0];
    assert!(
        streamed_done["response_body"]
            .as_str()
            .is_some_and(|b| b.contains("\"content\":\"three\"") && b.contains("[DONE]")),
        "the streamed answer is captured as the caller reads it: {streamed_done}"
    );
    assert_eq!(streamed_done["attributes"][PARTIAL_ATTRIBUTE], false);
    let oa = hooks_where(&events, "http_url", &completions("oa"));
    assert_eq!(oa.len(), 2, "async-openai: both stages");
    assert_eq!(
        oa[0]["spans"][0]["request_headers"]["authorization"],
        "[REDACTED]"
    );
    assert!(
        oa[0]["spans"][0]["request_body"]
            .as_str()
            .is_some_and(|b| b.contains("hello from async-openai")),
        "{}",
        oa[0]
    );
    let oa_stream = hooks_where(&events, "http_url", &completions("oa-stream"));
    assert_eq!(oa_stream.len(), 2, "async-openai streamed: both stages");
    let hook_text: String = hooks(&events).iter().map(|b| b.to_string()).collect();
    assert!(!hook_text.contains(LLM_API_KEY), "the API key reached Core");
}

/// Three statements on table-specific rules: allowed, blocked at started, blocked at completed.
fn db_rules(allowed: &str, blocked: &str, late: &str) -> String {
    let _ = allowed;
    stage_rule(
        "no writes to the blocked table",
        "started",
        "db_statement",
        blocked,
    ) + &stage_rule(
        "refuse the result of the late table",
        "completed",
        "db_statement",
        late,
    )
}

fn assert_db_spans(events: &[LoggedRequest], statement: &str, system: &str, secret: &str) {
    let both = hooks_where(events, "db_statement", statement);
    assert_eq!(both.len(), 2, "two stages for {statement}");
    let specific = [
        "db_system",
        "db_name",
        "db_operation",
        "db_statement",
        "server_address",
        "server_port",
    ];
    assert_envelope(both[0]);
    let with_rows: Vec<&str> = specific.iter().copied().chain(["rowcount"]).collect();
    // The same keys at both stages, as the reference sends them: rowcount null at started.
    assert_span_keys(&both[0]["spans"][0], &with_rows);
    assert_eq!(both[0]["spans"][0]["rowcount"], Value::Null);
    assert_span_keys(&both[1]["spans"][0], &with_rows);
    let done = &both[1]["spans"][0];
    assert_eq!(done["db_system"], system);
    assert_eq!(done["db_operation"], "INSERT");
    assert_eq!(done["rowcount"], 1);
    assert_eq!(done["kind"], "CLIENT");
    assert!(
        !log_text(events).contains(secret),
        "the bound parameter {secret} reached Core"
    );
}

struct DbCase {
    ok: String,
    blocked: String,
    late: String,
}

impl DbCase {
    fn new(prefix: &str) -> Self {
        let base = unique(prefix).replace('-', "_");
        DbCase {
            ok: format!("{base}_ok"),
            blocked: format!("{base}_blocked"),
            late: format!("{base}_late"),
        }
    }

    fn tables(&self) -> [&str; 3] {
        [&self.ok, &self.blocked, &self.late]
    }
}

fn expect_db_results(results: &[String]) {
    assert!(results[0].starts_with("inserted 1"), "{results:?}");
    assert!(
        results[1].starts_with("ERR:GovernanceBlock:Hook governance block: no writes"),
        "{results:?}"
    );
    assert!(
        results[2].starts_with("ERR:GovernanceBlock:Hook governance block: refuse the result"),
        "{results:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_through_sqlx_and_tokio_postgres() {
    if !services::require("PostgreSQL", "127.0.0.1:5432") {
        return;
    }
    let pool = sqlx::PgPool::connect(POSTGRES_URL).await.unwrap();
    let (sq, tp) = (DbCase::new("obx_sqlx_pg"), DbCase::new("obx_tokio_pg"));
    for t in sq.tables().into_iter().chain(tp.tables()) {
        sqlx::query(AssertSqlSafe(format!("CREATE TABLE {t} (note text)")))
            .execute(&pool)
            .await
            .unwrap();
    }
    let insert = |t: &str| format!("INSERT INTO {t} (note) VALUES ($1)");
    let rules = db_rules(&insert(&sq.ok), &insert(&sq.blocked), &insert(&sq.late))
        + &db_rules(&insert(&tp.ok), &insert(&tp.blocked), &insert(&tp.late));
    let h = Harness::new(&rules).await;
    let plugin = h.plugin(ErrorPolicy::FailClosed, |b| b).await;
    let wid = unique("pg");
    let secret = BOUND_SECRET;
    let steps: Vec<(bool, HookStep)> = sq
        .tables()
        .into_iter()
        .map(|t| (false, HookStep::SqlxPostgres { table: t.into() }))
        .chain(
            tp.tables()
                .into_iter()
                .map(|t| (false, HookStep::TokioPostgres { table: t.into() })),
        )
        .collect();
    let results = h.run(Some(plugin), h.run_hooks(&wid, steps)).await;
    expect_db_results(&results[..3]);
    expect_db_results(&results[3..]);
    assert_eq!(results[0], "inserted 1 of 1");
    let count = |t: String| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(AssertSqlSafe(format!("SELECT count(*) FROM {t}")))
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    for case in [&sq, &tp] {
        assert_eq!(count(case.ok.clone()).await, 1);
        assert_eq!(
            count(case.blocked.clone()).await,
            0,
            "a BLOCK at started: the row was never written"
        );
        assert_eq!(
            count(case.late.clone()).await,
            1,
            "a BLOCK at completed: the row is written, the activity fails"
        );
    }
    let events = h.events_of(&wid).await;
    assert_db_spans(&events, &insert(&sq.ok), "postgresql", secret);
    assert_db_spans(&events, &insert(&tp.ok), "postgresql", secret);
    let select = &hooks_where(&events, "db_operation", "SELECT")[1]["spans"][0];
    assert_eq!(select["rowcount"], 1, "rows returned by a SELECT");
    assert_eq!(select["db_name"], "test");
    assert_eq!(select["server_port"], 5432);
    for t in sq.tables().into_iter().chain(tp.tables()) {
        sqlx::query(AssertSqlSafe(format!("DROP TABLE {t}")))
            .execute(&pool)
            .await
            .unwrap();
    }
}

/// The ORMs the ORM test runs: how a step is made, where it logs, which bodies are sync.
#[derive(Debug, Clone, Copy)]
enum OrmLib {
    Diesel,
    DieselAsync,
    SeaOrm,
}

impl OrmLib {
    fn step(self, db: &openbox_tests::orm::OrmDb, table: &str) -> HookStep {
        let (db, table) = (db.clone(), table.to_owned());
        match self {
            OrmLib::Diesel => HookStep::Diesel { db, table },
            OrmLib::DieselAsync => HookStep::DieselAsync { table },
            OrmLib::SeaOrm => HookStep::SeaOrm { db, table },
        }
    }

    /// The table the step's ORM operations (query builder, entities) write to.
    fn log_table(self) -> &'static str {
        match self {
            OrmLib::Diesel | OrmLib::DieselAsync => "openbox_diesel_log",
            OrmLib::SeaOrm => openbox_tests::orm::sea::LOG_TABLE,
        }
    }

    /// diesel-async is governed on PostgreSQL only.
    fn speaks(self, db: &openbox_tests::orm::OrmDb) -> bool {
        !matches!(self, OrmLib::DieselAsync) || matches!(db, openbox_tests::orm::OrmDb::Postgres)
    }

    /// diesel is blocking: its MariaDB and SQLite steps run in sync bodies. SeaORM is async.
    fn sync_body(self, db: &openbox_tests::orm::OrmDb) -> bool {
        matches!(self, OrmLib::Diesel) && !matches!(db, openbox_tests::orm::OrmDb::Postgres)
    }
}

/// diesel through `GovernedConnection` on PostgreSQL (an async body), MariaDB and SQLite (sync
/// bodies): `sql_query` with a bound value and the query builder (an insert and a count) are
/// each evaluated; a BLOCK at `started` means the row is never written (checked through an
/// unwrapped connection), one at `completed` fails the activity after the write; the bound
/// value never reaches Core.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diesel_on_postgres_mariadb_and_sqlite() {
    orm_on_postgres_mariadb_and_sqlite(OrmLib::Diesel).await;
}

/// SeaORM through `GovernedConnection` on PostgreSQL, MariaDB and SQLite: a raw statement with a
/// bound value, then an entity insert and count inside a transaction, are each evaluated; a
/// BLOCK at `started` means the row is never written, one at `completed` fails the activity
/// after the write; the bound value never reaches Core.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sea_orm_on_postgres_mariadb_and_sqlite() {
    orm_on_postgres_mariadb_and_sqlite(OrmLib::SeaOrm).await;
}

/// diesel-async through `GovernedAsyncConnection` on PostgreSQL: `sql_query` with a bound
/// value, then the query builder's insert and count (a `load`, read as a stream) inside a
/// transaction, are each evaluated; a BLOCK at `started` means the row is never written, one
/// at `completed` fails the activity after the write; the bound value never reaches Core.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diesel_async_on_postgres() {
    orm_on_postgres_mariadb_and_sqlite(OrmLib::DieselAsync).await;
}

async fn orm_on_postgres_mariadb_and_sqlite(orm: OrmLib) {
    if !services::require("PostgreSQL", "127.0.0.1:5432")
        || !services::require("MariaDB", "127.0.0.1:3306")
    {
        return;
    }
    use openbox_tests::orm::{OrmDb, first_placeholder, log_table_ddl};
    let name = format!("{orm:?}").to_lowercase();
    let dir = TempDir::new(&name);
    let file = dir.path().join("orm.db").display().to_string();
    let pg_pool = sqlx::PgPool::connect(POSTGRES_URL).await.unwrap();
    let my_pool = sqlx::MySqlPool::connect(MYSQL_URL).await.unwrap();
    let sqlite = rusqlite::Connection::open(&file).unwrap();
    let dbs = [
        (
            OrmDb::Postgres,
            DbCase::new(&format!("obx_{name}_pg")),
            "postgresql",
        ),
        (
            OrmDb::Mysql,
            DbCase::new(&format!("obx_{name}_my")),
            "mysql",
        ),
        (
            OrmDb::Sqlite { file: file.clone() },
            DbCase::new(&format!("obx_{name}_sl")),
            "sqlite",
        ),
    ];
    let dbs: Vec<_> = dbs.into_iter().filter(|(db, ..)| orm.speaks(db)).collect();
    let exec = |db: &OrmDb, sql: String| {
        let (pg, my) = (pg_pool.clone(), my_pool.clone());
        let db = db.clone();
        let sqlite = &sqlite;
        async move {
            match db {
                OrmDb::Postgres => drop(
                    sqlx::raw_sql(AssertSqlSafe(sql))
                        .execute(&pg)
                        .await
                        .unwrap(),
                ),
                OrmDb::Mysql => drop(
                    sqlx::raw_sql(AssertSqlSafe(sql))
                        .execute(&my)
                        .await
                        .unwrap(),
                ),
                OrmDb::Sqlite { .. } => sqlite.execute_batch(&sql).unwrap(),
            }
        }
    };
    let mut rules = String::new();
    for (db, case, _) in &dbs {
        let placeholder = first_placeholder(db);
        exec(db, log_table_ddl(db, orm.log_table())).await;
        for t in case.tables() {
            exec(db, format!("CREATE TABLE {t} (note text)")).await;
        }
        let insert = |t: &str| format!("INSERT INTO {t} (note) VALUES ({placeholder})");
        rules += &db_rules(
            &insert(&case.ok),
            &insert(&case.blocked),
            &insert(&case.late),
        );
    }
    let h = Harness::new(&rules).await;
    let plugin = h.plugin(ErrorPolicy::FailClosed, |b| b).await;
    let wid = unique(&name);
    let steps: Vec<(bool, HookStep)> = dbs
        .iter()
        .flat_map(|(db, case, _)| {
            case.tables()
                .into_iter()
                .map(move |t| (orm.sync_body(db), orm.step(db, t)))
        })
        .collect();
    let results = h.run(Some(plugin), h.run_hooks(&wid, steps)).await;
    let events = h.events_of(&wid).await;
    for (i, (db, case, system)) in dbs.iter().enumerate() {
        let placeholder = first_placeholder(db);
        let results = &results[3 * i..3 * i + 3];
        expect_db_results(results);
        assert_eq!(results[0], "inserted 1, logged 1", "{db:?}");
        let count = |t: &str| format!("SELECT count(*) FROM {t}");
        let number = |t: &str| {
            let sql = count(t);
            let (pg, my) = (pg_pool.clone(), my_pool.clone());
            let db = db.clone();
            let sqlite = &sqlite;
            async move {
                match db {
                    OrmDb::Postgres => sqlx::query_scalar::<_, i64>(AssertSqlSafe(sql))
                        .fetch_one(&pg)
                        .await
                        .unwrap(),
                    OrmDb::Mysql => sqlx::query_scalar::<_, i64>(AssertSqlSafe(sql))
                        .fetch_one(&my)
                        .await
                        .unwrap(),
                    OrmDb::Sqlite { .. } => sqlite.query_row(&sql, [], |r| r.get(0)).unwrap(),
                }
            }
        };
        assert_eq!(number(&case.ok).await, 1, "{db:?}");
        assert_eq!(
            number(&case.blocked).await,
            0,
            "{db:?}: a BLOCK at started: the row was never written"
        );
        assert_eq!(
            number(&case.late).await,
            1,
            "{db:?}: a BLOCK at completed: the row is written, the activity fails"
        );
        let insert = format!("INSERT INTO {} (note) VALUES ({placeholder})", case.ok);
        assert_db_spans(&events, &insert, system, BOUND_SECRET);
        if *system == "postgresql" {
            // Named from the connection string (a URL, or diesel's libpq keywords).
            let span = &hooks_where(&events, "db_statement", &insert)[0]["spans"][0];
            assert_eq!(
                (
                    &span["db_name"],
                    &span["server_address"],
                    &span["server_port"]
                ),
                (&json!("test"), &json!("127.0.0.1"), &json!(5432)),
                "{orm:?}"
            );
        }
        // The ORM's own statements were evaluated too: its insert and its count (SeaORM reads
        // an inserted row back where the backend has no RETURNING).
        let built: Vec<&Value> = hooks(&events)
            .into_iter()
            .filter(|b| {
                let span = &b["spans"][0];
                span["db_system"] == *system
                    && span["db_statement"]
                        .as_str()
                        .is_some_and(|s| s.contains(orm.log_table()))
            })
            .collect();
        let operations: BTreeSet<String> = built
            .iter()
            .map(|b| b["spans"][0]["db_operation"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(operations, set(&["INSERT", "SELECT"]), "{db:?}");
        let expected = match (orm, system) {
            (OrmLib::SeaOrm, &"mysql" | &"sqlite") => 6,
            _ => 4,
        };
        assert_eq!(
            built.len(),
            expected,
            "{db:?}: the ORM's insert (and read back) and count, both stages"
        );
        for t in case.tables() {
            exec(db, format!("DROP TABLE {t}")).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_through_sqlx() {
    if !services::require("MariaDB", "127.0.0.1:3306") {
        return;
    }
    let pool = sqlx::MySqlPool::connect(MYSQL_URL).await.unwrap();
    let case = DbCase::new("obx_my");
    for t in case.tables() {
        sqlx::query(AssertSqlSafe(format!("CREATE TABLE {t} (note text)")))
            .execute(&pool)
            .await
            .unwrap();
    }
    let insert = |t: &str| format!("INSERT INTO {t} (note) VALUES (?)");
    let h = Harness::new(&db_rules(
        &insert(&case.ok),
        &insert(&case.blocked),
        &insert(&case.late),
    ))
    .await;
    let plugin = h.plugin(ErrorPolicy::FailClosed, |b| b).await;
    let wid = unique("mysql");
    let secret = BOUND_SECRET;
    let steps = case
        .tables()
        .into_iter()
        .map(|t| (false, HookStep::SqlxMysql { table: t.into() }))
        .collect();
    let results = h.run(Some(plugin), h.run_hooks(&wid, steps)).await;
    expect_db_results(&results);
    for (t, want) in [(&case.ok, 1), (&case.blocked, 0), (&case.late, 1)] {
        let n: i64 = sqlx::query_scalar(AssertSqlSafe(format!("SELECT count(*) FROM {t}")))
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(n, want, "{t}");
    }
    let events = h.events_of(&wid).await;
    assert_db_spans(&events, &insert(&case.ok), "mysql", secret);
    for t in case.tables() {
        sqlx::query(AssertSqlSafe(format!("DROP TABLE {t}")))
            .execute(&pool)
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_through_sqlx_and_rusqlite_in_async_and_sync_bodies() {
    let dir = TempDir::new("obx-sqlite");
    let file = dir.path().join("notes.db").display().to_string();
    let conn = rusqlite::Connection::open(&file).unwrap();
    let (sq, rs, rs_sync) = (
        DbCase::new("sqlx"),
        DbCase::new("rus"),
        DbCase::new("russync"),
    );
    for t in sq
        .tables()
        .into_iter()
        .chain(rs.tables())
        .chain(rs_sync.tables())
    {
        conn.execute(&format!("CREATE TABLE {t} (note text)"), [])
            .unwrap();
    }
    let sqlx_insert = |t: &str| format!("INSERT INTO {t} (note) VALUES (?)");
    let rus_insert = |t: &str| format!("INSERT INTO {t} (note) VALUES (?1)");
    let rules = db_rules(
        &sqlx_insert(&sq.ok),
        &sqlx_insert(&sq.blocked),
        &sqlx_insert(&sq.late),
    ) + &db_rules(
        &rus_insert(&rs.ok),
        &rus_insert(&rs.blocked),
        &rus_insert(&rs.late),
    ) + &db_rules(
        &rus_insert(&rs_sync.ok),
        &rus_insert(&rs_sync.blocked),
        &rus_insert(&rs_sync.late),
    );
    let h = Harness::new(&rules).await;
    let plugin = h.plugin(ErrorPolicy::FailClosed, |b| b).await;
    let wid = unique("sqlite");
    let secret = BOUND_SECRET;
    let mut steps: Vec<(bool, HookStep)> = Vec::new();
    for t in sq.tables() {
        steps.push((
            false,
            HookStep::SqlxSqlite {
                file: file.clone(),
                table: t.into(),
            },
        ));
    }
    for t in rs.tables() {
        steps.push((
            false,
            HookStep::Rusqlite {
                file: file.clone(),
                table: t.into(),
            },
        ));
    }
    for t in rs_sync.tables() {
        steps.push((
            true,
            HookStep::Rusqlite {
                file: file.clone(),
                table: t.into(),
            },
        ));
    }
    let results = h.run(Some(plugin), h.run_hooks(&wid, steps)).await;
    expect_db_results(&results[..3]);
    expect_db_results(&results[3..6]);
    expect_db_results(&results[6..]);
    // The sqlx case inserts inside a transaction: the refused INSERT fails the activity before
    // its commit, so its row is rolled back; rusqlite autocommits.
    for (case, late_rows) in [(&sq, 0), (&rs, 1), (&rs_sync, 1)] {
        for (t, want) in [(&case.ok, 1), (&case.blocked, 0), (&case.late, late_rows)] {
            let n: i64 = conn
                .query_row(&format!("SELECT count(*) FROM {t}"), [], |r| r.get(0))
                .unwrap();
            assert_eq!(n, want, "{t}");
        }
    }
    let events = h.events_of(&wid).await;
    assert_db_spans(&events, &sqlx_insert(&sq.ok), "sqlite", secret);
    assert_db_spans(&events, &rus_insert(&rs.ok), "sqlite", secret);
    assert_db_spans(&events, &rus_insert(&rs_sync.ok), "sqlite", secret);
    let sync_done = completed(&events)
        .into_iter()
        .filter(|c| c["activity_type"] == "hook_step_sync")
        .count();
    assert_eq!(
        sync_done, 3,
        "the sync body was governed through #[governed_activity]"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_commands() {
    if !services::require("Redis", "127.0.0.1:6379") {
        return;
    }
    let base = unique("obx");
    let (ok, blocked, late) = (
        format!("{base}:ok"),
        format!("{base}:blocked"),
        format!("{base}:late"),
    );
    let rules = stage_rule(
        "no writes to the blocked key",
        "started",
        "db_statement",
        &format!("SET {blocked}"),
    ) + &stage_rule(
        "refuse the late key",
        "completed",
        "db_statement",
        &format!("SET {late}"),
    );
    let h = Harness::new(&rules).await;
    let plugin = h.plugin(ErrorPolicy::FailClosed, |b| b).await;
    let wid = unique("redis");
    let secret = BOUND_SECRET;
    let steps = [&ok, &blocked, &late]
        .into_iter()
        .map(|k| (false, HookStep::Redis { key: k.clone() }))
        .collect();
    let results = h.run(Some(plugin), h.run_hooks(&wid, steps)).await;
    assert_eq!(results[0], "stored true");
    assert!(
        results[1].starts_with("ERR:GovernanceBlock:Hook governance block: no writes"),
        "{results:?}"
    );
    assert!(
        results[2].starts_with("ERR:GovernanceBlock:Hook governance block: refuse"),
        "{results:?}"
    );
    let mut conn = redis::Client::open(REDIS_URL)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let exists = |k: String| {
        let mut c = conn.clone();
        async move {
            redis::cmd("EXISTS")
                .arg(k)
                .query_async::<i64>(&mut c)
                .await
                .unwrap()
        }
    };
    assert_eq!(exists(ok.clone()).await, 1);
    assert_eq!(
        exists(blocked.clone()).await,
        0,
        "a BLOCK at started: the key was never written"
    );
    assert_eq!(exists(late.clone()).await, 1);
    let events = h.events_of(&wid).await;
    let both = hooks_where(&events, "db_statement", &format!("SET {ok}"));
    assert_eq!(both.len(), 2);
    assert_eq!(both[1]["spans"][0]["db_system"], "redis");
    assert_eq!(both[1]["spans"][0]["db_operation"], "SET");
    assert_eq!(both[1]["spans"][0]["db_name"], "0");
    assert_eq!(
        hooks_where(&events, "db_statement", &format!("GET {ok}")).len(),
        2
    );
    assert!(
        !log_text(&events).contains(secret),
        "redis values never reach Core"
    );
    let _: () = redis::cmd("DEL")
        .arg(&ok)
        .arg(&late)
        .query_async(&mut conn)
        .await
        .unwrap();
}

/// Publishes through each governed broker client, checked by real consumers: what a rule blocks
/// at `started` never reaches the broker; what it refuses at `completed` was delivered and
/// fails the activity; Core sees the destination, masked headers and payload, and the broker's
/// acknowledgement; the secrets in headers, payloads and replies never reach it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_to_rabbitmq_nats_and_mosquitto() {
    if !(services::require("RabbitMQ", "127.0.0.1:5672")
        && services::require("NATS", "127.0.0.1:4222")
        && services::require("Mosquitto", "127.0.0.1:1883"))
    {
        return;
    }
    let base = unique("obx");
    let amqp = AmqpConsumer::start(&base).await;
    let (core, js, topic) = (
        format!("{base}.core"),
        format!("{base}.js"),
        format!("{base}/mqtt"),
    );
    let nats = NatsConsumer::start(&core).await;
    let jetstream = JetStreamConsumer::start(&js).await;
    let mqtt = MqttConsumer::start(&topic).await;
    let destination = "attributes.messaging.destination.name";
    let routing_key = "attributes.messaging.rabbitmq.destination.routing_key";
    let mut rules = stage_rule("no amqp", "started", routing_key, "blocked")
        + &stage_rule("late amqp", "completed", routing_key, "late");
    for prefix in [&core, &js, &format!("{core}.req")] {
        rules += &stage_rule(
            "no publish",
            "started",
            destination,
            &format!("{prefix}.blocked"),
        );
        rules += &stage_rule(
            "late publish",
            "completed",
            destination,
            &format!("{prefix}.late"),
        );
    }
    rules += &stage_rule(
        "no mqtt",
        "started",
        destination,
        &format!("{topic}/blocked"),
    );
    rules += &stage_rule(
        "late mqtt",
        "completed",
        destination,
        &format!("{topic}/late"),
    );
    let h = Harness::new(&rules).await;
    let plugin = h.plugin(ErrorPolicy::FailClosed, |b| b).await;
    let wid = unique("publish");
    let amqp_broker = Broker::Amqp {
        exchange: amqp.exchange.clone(),
    };
    let mut steps = Vec::new();
    for outcome in ["ok", "blocked", "late"] {
        steps.push((amqp_broker.clone(), outcome.to_owned()));
    }
    for (broker, sep, prefix) in [
        (Broker::Nats, ".", &core),
        (Broker::JetStream, ".", &js),
        (Broker::Mqtt, "/", &topic),
    ] {
        for outcome in ["ok", "blocked", "late"] {
            steps.push((broker.clone(), format!("{prefix}{sep}{outcome}")));
        }
    }
    for outcome in ["ok", "blocked"] {
        steps.push((Broker::NatsRequest, format!("{core}.req.{outcome}")));
    }
    let plan = steps
        .iter()
        .map(|(broker, destination)| {
            (
                false,
                HookStep::Publish {
                    broker: broker.clone(),
                    destination: destination.clone(),
                },
            )
        })
        .collect();
    let results = h.run(Some(plugin), h.run_hooks(&wid, plan)).await;
    let block = |i: usize, rule: &str| {
        assert!(
            results[i].starts_with(&format!(
                "ERR:GovernanceBlock:Hook governance block: {rule}"
            )),
            "step {i} ({:?}): {results:?}",
            steps[i]
        );
    };
    assert_eq!(results[0], "confirmed true");
    block(1, "no amqp");
    block(2, "late amqp");
    assert_eq!(results[3], "sent");
    block(4, "no publish");
    block(5, "late publish");
    assert_eq!(results[6], format!("stored in {} at 1", jetstream.stream()));
    block(7, "no publish");
    block(8, "late publish");
    assert_eq!(results[9], "PubAck(1)");
    block(10, "no mqtt");
    block(11, "late mqtt");
    assert!(results[12].starts_with("reply of "), "{results:?}");
    block(13, "no publish");

    // What the brokers delivered: everything but what was blocked at `started`.
    assert_eq!(amqp.received().await, ["ok", "late"]);
    assert_eq!(
        nats.received().await,
        [
            format!("{core}.ok"),
            format!("{core}.late"),
            format!("{core}.req.ok")
        ]
    );
    assert_eq!(
        jetstream.received().await,
        [format!("{js}.ok"), format!("{js}.late")]
    );
    assert_eq!(
        mqtt.received().await,
        [format!("{topic}/ok"), format!("{topic}/late")]
    );

    let events = h.events_of(&wid).await;
    let text = log_text(&events);
    assert!(
        !text.contains(MESSAGE_SECRET),
        "a message's secrets never reach Core"
    );
    assert!(
        !text.contains(REPLY_SECRET),
        "a reply's secrets never reach Core"
    );
    let publishes: Vec<&Value> = hooks_where(&events, "function", "MessagePublish");
    assert_eq!(
        publishes.len(),
        2 * 9 + 5,
        "two stages of each of 9 publishes sent, one of each of 5 blocked"
    );
    for body in &publishes {
        assert_envelope(body);
        let span = &body["spans"][0];
        assert_span_keys(span, &["function", "module", "args", "result"]);
        assert_eq!(span["kind"], "CLIENT");
        assert_eq!(span["attributes"]["messaging.operation.type"], "send");
    }
    let of = |name: &str, stage: &str| -> Value {
        let found: Vec<&&Value> = publishes
            .iter()
            .filter(|b| b["spans"][0]["name"] == name && b["spans"][0]["stage"] == stage)
            .collect();
        assert_eq!(found.len(), 1, "one {stage} span named {name}");
        found[0]["spans"][0].clone()
    };
    let args =
        |span: &Value| -> Value { serde_json::from_str(span["args"].as_str().unwrap()).unwrap() };
    let result =
        |span: &Value| -> Value { serde_json::from_str(span["result"].as_str().unwrap()).unwrap() };
    // AMQP: exchange and routing key, masked header and payload, the publisher confirm.
    let amqp_spans: Vec<Value> = publishes
        .iter()
        .map(|b| b["spans"][0].clone())
        .filter(|s| s["attributes"]["messaging.system"] == "rabbitmq")
        .collect();
    assert_eq!(amqp_spans.len(), 5);
    let ok_started = amqp_spans
        .iter()
        .find(|s| {
            s["stage"] == "started"
                && s["attributes"]["messaging.rabbitmq.destination.routing_key"] == "ok"
        })
        .unwrap();
    assert_eq!(ok_started["attributes"]["server.port"], 5672);
    let kwargs = &args(ok_started)["kwargs"];
    assert_eq!(kwargs["routing_key"], "ok");
    assert_eq!(kwargs["headers"]["x-api-key"], "[REDACTED]");
    assert_eq!(kwargs["properties"]["content_type"], "application/json");
    let payload: Value = serde_json::from_str(kwargs["payload"].as_str().unwrap()).unwrap();
    assert_eq!(payload["password"], "[REDACTED]");
    assert_eq!(payload["to"], "ok");
    let ok_completed = amqp_spans
        .iter()
        .find(|s| {
            s["stage"] == "completed"
                && s["attributes"]["messaging.rabbitmq.destination.routing_key"] == "ok"
        })
        .unwrap();
    assert_eq!(result(ok_completed)["confirmation"], "ack");
    // NATS: the subject; no acknowledgement in core NATS; JetStream's ack; the request's reply.
    let nats_ok = of(&format!("publish {core}.ok"), "started");
    assert_eq!(nats_ok["attributes"]["messaging.system"], "nats");
    assert_eq!(
        args(&nats_ok)["kwargs"]["headers"]["x-api-key"],
        "[REDACTED]"
    );
    let nats_done = of(&format!("publish {core}.ok"), "completed");
    assert_eq!(result(&nats_done), json!({"acknowledgement": null}));
    let js_done = of(&format!("publish {js}.ok"), "completed");
    assert_eq!(result(&js_done)["stream"], jetstream_name(&js));
    assert_eq!(result(&js_done)["sequence"], 1);
    let reply = result(&of(&format!("request {core}.req.ok"), "completed"));
    let reply_payload: Value =
        serde_json::from_str(reply["reply"]["payload"].as_str().unwrap()).unwrap();
    assert_eq!(reply_payload, json!({"answer": 42, "token": "[REDACTED]"}));
    // MQTT: the topic, QoS, the PUBACK.
    let mqtt_ok = of(&format!("publish {topic}/ok"), "started");
    assert_eq!(mqtt_ok["attributes"]["messaging.system"], "mqtt");
    assert_eq!(args(&mqtt_ok)["kwargs"]["properties"]["qos"], 1);
    let mqtt_done = result(&of(&format!("publish {topic}/ok"), "completed"));
    assert_eq!(mqtt_done["acknowledgement"], "puback");
    // A BLOCK at `started`: one span, never a `completed`.
    assert_eq!(
        hooks_where(&events, "name", &format!("publish {topic}/blocked")).len(),
        1
    );
}

/// What a broker or its client library refuses fails the activity with the library's error, not
/// a governance one. A publish to an exchange RabbitMQ does not have: Core saw it at `started`
/// and is told at `completed` that it failed. An MQTT topic with a wildcard in it, which rumqttc's
/// `publish` refuses (its `publish_bytes`, under the wrapper, would send it): refused before Core
/// or the broker sees it. Nothing was delivered; the message's secrets never reach Core.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_the_broker_refuses_are_reported_failed() {
    if !(services::require("RabbitMQ", "127.0.0.1:5672")
        && services::require("Mosquitto", "127.0.0.1:1883"))
    {
        return;
    }
    let base = unique("obx-refused");
    let topic = format!("{base}/mqtt");
    let mqtt = MqttConsumer::start(&topic).await;
    let h = Harness::new("").await;
    let plugin = h.plugin(ErrorPolicy::FailClosed, |b| b).await;
    let wid = unique("refused");
    let publish = |broker: Broker, destination: String| {
        (
            false,
            HookStep::Publish {
                broker,
                destination,
            },
        )
    };
    let plan = vec![
        publish(
            Broker::Amqp {
                exchange: format!("{base}-missing-ex"),
            },
            "nowhere".into(),
        ),
        publish(Broker::Mqtt, format!("{topic}/+/wild")),
    ];
    let results = h.run(Some(plugin), h.run_hooks(&wid, plan)).await;
    for result in &results {
        assert!(
            result.starts_with("ERR:") && !result.contains("Governance"),
            "{results:?}"
        );
    }
    assert_eq!(mqtt.received().await, Vec::<String>::new());

    let events = h.events_of(&wid).await;
    assert!(
        !log_text(&events).contains(MESSAGE_SECRET),
        "a refused message's secrets never reach Core"
    );
    let publishes: Vec<&Value> = hooks_where(&events, "function", "MessagePublish");
    let spans = |system: &str| -> Vec<&Value> {
        publishes
            .iter()
            .map(|b| &b["spans"][0])
            .filter(|s| s["attributes"]["messaging.system"] == system)
            .collect()
    };
    let amqp = spans("rabbitmq");
    assert_eq!(amqp.len(), 2, "started and completed: {amqp:?}");
    let done = amqp.iter().find(|s| s["stage"] == "completed").unwrap();
    assert!(
        done["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{done}"
    );
    assert!(spans("mqtt").is_empty(), "{publishes:?}");
    assert_eq!(
        results[1],
        "ERR:?:Failed to send mqtt requests to eventloop"
    );
}

/// Core down, `fail_closed_destructive`: a publish counts as a write, so every broker client
/// stops it before the broker receives anything (checked by the consumers), each run ending in
/// `GovernanceHalt`; a read (an HTTP GET) goes ahead in the same conditions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_stop_when_core_is_down() {
    if !(services::require("RabbitMQ", "127.0.0.1:5672")
        && services::require("NATS", "127.0.0.1:4222")
        && services::require("Mosquitto", "127.0.0.1:1883"))
    {
        return;
    }
    let base = unique("obx-down");
    let amqp = AmqpConsumer::start(&base).await;
    let (core, js, topic) = (
        format!("{base}.core"),
        format!("{base}.js"),
        format!("{base}/mqtt"),
    );
    let nats = NatsConsumer::start(&core).await;
    let jetstream = JetStreamConsumer::start(&js).await;
    let mqtt = MqttConsumer::start(&topic).await;
    let server = TestHttpServer::start().await;
    let h = Harness::new("").await;
    let quiet = |b: openbox::OpenBoxPluginBuilder| {
        b.options(|o| {
            o.skip_workflow_types(["HookWorkflow"])
                .send_activity_start_event(false)
        })
    };
    let plugin = h.plugin(ErrorPolicy::FailClosedDestructive, quiet).await;
    h.core.core.kill();
    let publishes = [
        (
            Broker::Amqp {
                exchange: amqp.exchange.clone(),
            },
            "down".to_owned(),
        ),
        (Broker::Nats, format!("{core}.down")),
        (Broker::NatsRequest, format!("{core}.req.down")),
        (Broker::JetStream, format!("{js}.down")),
        (Broker::Mqtt, format!("{topic}/down")),
    ];
    let mut plans: Vec<Vec<(bool, HookStep)>> = publishes
        .iter()
        .map(|(broker, destination)| {
            vec![(
                false,
                HookStep::Publish {
                    broker: broker.clone(),
                    destination: destination.clone(),
                },
            )]
        })
        .collect();
    plans.push(vec![(
        false,
        HookStep::Http {
            method: "GET".into(),
            url: format!("{}/read", server.url),
            body: None,
        },
    )]);
    let outcomes = h
        .run(Some(plugin), async {
            let runs = plans.into_iter().map(|plan| async {
                let handle = h
                    .client()
                    .start_workflow(
                        HookWorkflow::run,
                        plan,
                        WorkflowStartOptions::new(&h.task_queue, unique("publish-down")).build(),
                    )
                    .await
                    .unwrap();
                result_of(&handle).await
            });
            futures::future::join_all(runs).await
        })
        .await;
    let mut problems = Vec::new();
    for ((broker, destination), outcome) in publishes.iter().zip(&outcomes) {
        match outcome {
            Err(e) if failure_types(e) == ["GovernanceHalt"] => {}
            Err(e) => problems.push(format!("{broker:?} {destination}: {:?}", failure_types(e))),
            Ok(r) => problems.push(format!(
                "{broker:?} {destination} went ahead without Core: {r:?}"
            )),
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert_eq!(
        outcomes[5].as_ref().unwrap(),
        &["200 ok"],
        "a read goes ahead without Core"
    );
    assert_eq!(server.received("/read").len(), 1);
    assert!(
        amqp.received().await.is_empty(),
        "RabbitMQ received nothing"
    );
    assert!(nats.received().await.is_empty(), "NATS received nothing");
    assert!(
        jetstream.received().await.is_empty(),
        "JetStream stored nothing"
    );
    assert!(
        mqtt.received().await.is_empty(),
        "Mosquitto received nothing"
    );
}

/// The JetStream stream name the consumer makes for `prefix`.
fn jetstream_name(prefix: &str) -> String {
    prefix.replace(['.', '-'], "_")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_hooks() {
    let dir = TempDir::new("obx-files");
    let path = |name: &str| dir.path().join(name).display().to_string();
    let (ok, blocked, late, sync_ok) = (
        path("ok.txt"),
        path("blocked.txt"),
        path("late.txt"),
        path("sync.txt"),
    );
    let rules = stage_rule("no such file", "started", "file_path", &blocked)
        + &format!(
            "[[rules]]\nname = \"refuse the write\"\nverdict = \"block\"\nreason = \"refuse the write\"\n\
             match = {{ \"spans.0.stage\" = \"completed\", \"spans.0.file_path\" = {late:?}, \"spans.0.file_operation\" = \"write\" }}\n"
        );
    let h = Harness::new(&rules).await;
    let plugin = h.plugin(ErrorPolicy::FailClosed, |b| b).await;
    let wid = unique("files");
    let content = FILE_CONTENT;
    let results = h
        .run(Some(plugin), async {
            h.run_hooks(
                &wid,
                vec![
                    (false, HookStep::WriteFile { path: ok.clone() }),
                    (false, HookStep::ReadFile { path: ok.clone() }),
                    (
                        false,
                        HookStep::WriteFile {
                            path: blocked.clone(),
                        },
                    ),
                    (false, HookStep::WriteFile { path: late.clone() }),
                    (
                        true,
                        HookStep::WriteFileSync {
                            path: sync_ok.clone(),
                        },
                    ),
                ],
            )
            .await
        })
        .await;
    assert_eq!(results[0], "written");
    assert_eq!(results[1], content);
    assert_eq!(
        results[2],
        "ERR:GovernanceBlock:Hook governance block: no such file"
    );
    assert_eq!(
        results[3],
        "ERR:GovernanceBlock:Hook governance block: refuse the write"
    );
    assert_eq!(results[4], "written");
    assert!(
        !std::path::Path::new(&blocked).exists(),
        "a BLOCK at open: the file was never created"
    );
    assert!(std::path::Path::new(&late).exists());

    let events = h.events_of(&wid).await;
    let ok_ops: Vec<(String, String)> = hooks_where(&events, "file_path", &ok)
        .iter()
        .map(|b| {
            (
                b["spans"][0]["file_operation"].as_str().unwrap().to_owned(),
                b["spans"][0]["stage"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expect = |op: &str, stage: &str| (op.to_owned(), stage.to_owned());
    assert_eq!(
        ok_ops,
        [
            expect("open", "started"),
            expect("write", "started"),
            expect("write", "completed"),
            expect("close", "completed"),
            expect("open", "started"),
            expect("read", "started"),
            expect("read", "completed"),
            expect("close", "completed"),
        ],
        "open+write+close and open+read+close are 4 evaluations each"
    );
    // Both byte counts on every file span, null where they do not apply (Core's contract).
    let file_keys = [
        "file_path",
        "file_mode",
        "file_operation",
        "bytes_read",
        "bytes_written",
    ];
    let ok_hooks = hooks_where(&events, "file_path", &ok);
    assert_span_keys(&ok_hooks[0]["spans"][0], &file_keys);
    assert_eq!(ok_hooks[0]["spans"][0]["file_mode"], "w");
    assert_eq!(ok_hooks[0]["spans"][0]["bytes_read"], Value::Null);
    assert_span_keys(&ok_hooks[2]["spans"][0], &file_keys);
    assert_eq!(ok_hooks[2]["spans"][0]["bytes_written"], content.len());
    assert_eq!(ok_hooks[2]["spans"][0]["bytes_read"], Value::Null);
    // Operation spans carry the path and the operation; completed adds the byte count.
    assert_eq!(
        ok_hooks[1]["spans"][0]["attributes"],
        json!({"file.path": ok, "file.operation": "write"})
    );
    assert_eq!(
        ok_hooks[2]["spans"][0]["attributes"],
        json!({"file.path": ok, "file.operation": "write", "file.bytes": content.len()})
    );
    assert_eq!(
        ok_hooks[6]["spans"][0]["attributes"],
        json!({"file.path": ok, "file.operation": "read", "file.bytes": content.len()})
    );
    let close = &ok_hooks[3]["spans"][0];
    assert_span_keys(close, &[&file_keys[..], &["operations"]].concat());
    assert_eq!(close["operations"], json!(["write"]));
    assert_eq!(
        close["span_id"], ok_hooks[0]["spans"][0]["span_id"],
        "close reports on the open span"
    );
    assert_eq!(ok_hooks[6]["spans"][0]["bytes_read"], content.len());
    assert_eq!(
        hooks_where(&events, "file_path", &sync_ok).len(),
        4,
        "the sync API is governed too"
    );
    let hook_text: String = hooks(&events).iter().map(|b| b.to_string()).collect();
    assert!(
        !hook_text.contains(content),
        "no file content reaches Core in a hook evaluation"
    );
}

/// The `args` text Core receives at `started` for a command without a directory or
/// environment changes.
fn process_args(argv: &[&str]) -> String {
    let words: Vec<String> = argv.iter().map(|w| format!("{w:?}")).collect();
    format!(
        r#"{{"args": [{}], "kwargs": {{"cwd": null, "env": [], "env_clear": false, "env_removed": []}}}}"#,
        words.join(", ")
    )
}

/// Commands: a BLOCK at `started` means the process never starts, a BLOCK at `completed` is
/// the caller's error after it ran, secrets in arguments, environment and output never reach
/// Core, and sync bodies are governed too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes() {
    let dir = TempDir::new("obx-process");
    let path = |name: &str| dir.path().join(name).display().to_string();
    let (blocked, late) = (path("blocked"), path("late"));
    let late_script = format!("touch {late}; echo late-marker");
    let rules = stage_rule(
        "no such command",
        "started",
        "args",
        &process_args(&["touch", &blocked]),
    ) + &stage_rule(
        "refuse the result",
        "completed",
        "result",
        r#"{"exit_code": 0, "stderr": "", "stdout": "late-marker\n", "success": true}"#,
    );
    let h = Harness::new(&rules).await;
    let plugin = h.plugin(ErrorPolicy::FailClosed, |b| b).await;
    let wid = unique("process");
    let step = |program: &str, args: &[&str], collect: bool, secrets: bool| HookStep::Process {
        program: program.into(),
        args: args.iter().map(|a| a.to_string()).collect(),
        collect,
        secrets,
    };
    let results = h
        .run(Some(plugin), async {
            h.run_hooks(
                &wid,
                vec![
                    (false, step("touch", &[&blocked], false, false)),
                    (false, step("sh", &["-c", &late_script], true, false)),
                    (
                        false,
                        step(
                            "sh",
                            &["-c", r#"echo "token=$OBX_PROCESS_TOKEN $1""#, "sh"],
                            true,
                            true,
                        ),
                    ),
                    (false, step("sh", &["-c", "exit 3"], false, false)),
                    (
                        true,
                        HookStep::ProcessSync {
                            program: "echo".into(),
                            args: vec!["from a sync body".into()],
                        },
                    ),
                    (
                        false,
                        HookStep::ProcessSpawn {
                            program: "echo".into(),
                            args: vec!["spawned".into()],
                            wait: true,
                        },
                    ),
                    (
                        false,
                        HookStep::ProcessSpawn {
                            program: "echo".into(),
                            args: vec!["left".into()],
                            wait: false,
                        },
                    ),
                    (
                        false,
                        step("/nonexistent/obx-no-such-program", &[], false, false),
                    ),
                ],
            )
            .await
        })
        .await;
    assert_eq!(
        results[0],
        "ERR:GovernanceBlock:Hook governance block: no such command"
    );
    assert!(
        !std::path::Path::new(&blocked).exists(),
        "a BLOCK at started: the process never started"
    );
    assert_eq!(
        results[1],
        "ERR:GovernanceBlock:Hook governance block: refuse the result"
    );
    assert!(
        std::path::Path::new(&late).exists(),
        "a BLOCK at completed: the process ran, the caller gets the verdict"
    );
    assert_eq!(
        results[2],
        format!("exit 0 token={PROCESS_ENV_SECRET} --api-key={PROCESS_ARG_SECRET}\n"),
        "the command ran with its arguments and environment"
    );
    assert_eq!(results[3], "exit 3");
    assert_eq!(results[4], "exit 0 from a sync body\n");
    assert_eq!(results[5], "exit 0 spawned\n");
    assert_eq!(results[6], "dropped left\n");
    assert!(
        results[7].contains("No such file or directory"),
        "{}",
        results[7]
    );

    let events = h.events_of(&wid).await;
    let spans: Vec<&Value> = hooks_where(&events, "function", "ShellExecution")
        .into_iter()
        .map(|b| &b["spans"][0])
        .collect();
    let stages: Vec<&str> = spans.iter().map(|s| s["stage"].as_str().unwrap()).collect();
    let expected: Vec<&str> = std::iter::once("started")
        .chain(["started", "completed"].repeat(7))
        .collect();
    assert_eq!(
        stages, expected,
        "blocked at started: no completed; each of the 7 other commands: both"
    );
    for span in &spans {
        assert_span_keys(span, &["function", "module", "args", "result"]);
        assert_eq!(span["hook_type"], "function_call");
        assert_eq!(span["name"], "ShellExecution");
        assert_eq!(span["module"], "openbox::process");
        assert_eq!(span["kind"], "INTERNAL");
    }
    let secret = spans[3];
    assert_eq!(
        secret["args"],
        r#"{"args": ["sh", "-c", "echo \"token=[REDACTED] $1\"", "sh", "--api-key=[REDACTED]"], "kwargs": {"cwd": null, "env": ["OBX_PROCESS_TOKEN"], "env_clear": false, "env_removed": []}}"#,
        "values under sensitive names masked (in a script too); environment names only"
    );
    assert_eq!(
        secret["attributes"],
        json!({
            "shell.command": r#"sh -c 'echo "token=[REDACTED] $1"' sh '--api-key=[REDACTED]'"#,
            "process.executable.name": "sh",
            "process.command_args": ["sh", "-c", "echo \"token=[REDACTED] $1\"", "sh", "--api-key=[REDACTED]"],
        })
    );
    assert_eq!(
        spans[4]["result"],
        r#"{"exit_code": 0, "stderr": "", "stdout": "token=[REDACTED] --api-key=[REDACTED]\n", "success": true}"#,
        "collected output is reported, masked"
    );
    assert_eq!(spans[6]["result"], r#"{"exit_code": 3, "success": false}"#);
    assert_eq!(spans[6]["error"], "exit status: 3");
    assert_eq!(spans[6]["status"]["code"], "ERROR");
    assert_eq!(
        spans[10]["result"], r#"{"exit_code": 0, "success": true}"#,
        "output the caller read itself is not captured"
    );
    assert_eq!(
        spans[12]["result"], r#"{"waited": false}"#,
        "a child dropped unwaited: its end is reported in the background"
    );
    assert_eq!(
        (
            spans[14]["result"].clone(),
            spans[14]["status"]["code"].clone()
        ),
        (Value::Null, json!("ERROR")),
        "a command that could not start: its error, no result"
    );
    assert!(
        spans[14]["error"]
            .as_str()
            .is_some_and(|e| e.contains("No such file or directory")),
        "{}",
        spans[14]
    );
    let hook_text: String = hooks(&events).iter().map(|b| b.to_string()).collect();
    for value in [PROCESS_ARG_SECRET, PROCESS_ENV_SECRET] {
        assert!(!hook_text.contains(value), "{value} reached Core");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traced_functions() {
    let rules = "[[rules]]\nname = \"not this text\"\nverdict = \"block\"\nreason = \"not this text\"\n\
                 match = { \"spans.0.stage\" = \"started\", \"spans.0.args\" = '{\"args\": [\"forbidden\", 3], \"kwargs\": {}}' }\n\
                 [[rules]]\nname = \"no doubling\"\nverdict = \"block\"\nreason = \"no doubling\"\n\
                 match = { \"spans.0.stage\" = \"completed\", \"spans.0.function\" = \"double\", \"spans.0.result\" = \"42\" }\n";
    let h = Harness::new(rules).await;
    let plugin = h.plugin(ErrorPolicy::FailClosed, |b| b).await;
    let wid = unique("traced");
    let results = h
        .run(Some(plugin), async {
            h.run_hooks(
                &wid,
                vec![
                    (
                        false,
                        HookStep::Traced {
                            text: "alpha".into(),
                        },
                    ),
                    (
                        false,
                        HookStep::Traced {
                            text: "forbidden".into(),
                        },
                    ),
                    (false, HookStep::TracedSync { x: 21 }),
                    (true, HookStep::TracedSync { x: 4 }),
                ],
            )
            .await
        })
        .await;
    assert_eq!(results[0], "15");
    assert_eq!(
        results[1],
        "ERR:GovernanceBlock:Hook governance block: not this text"
    );
    assert_eq!(
        traced_runs("forbidden"),
        0,
        "a BLOCK at started: the body never ran"
    );
    assert_eq!(
        results[2], "ERR:GovernanceBlock:Hook governance block: no doubling",
        "non-Result function: the panic becomes the verdict"
    );
    assert_eq!(traced_runs("double:21"), 1);
    assert_eq!(results[3], "8");

    let events = h.events_of(&wid).await;
    let alpha = hooks(&events)
        .into_iter()
        .filter(|b| b["spans"][0]["function"] == "score_text")
        .take(2)
        .collect::<Vec<_>>();
    let fn_keys = ["function", "module", "args", "result"];
    assert_span_keys(&alpha[0]["spans"][0], &fn_keys);
    assert_span_keys(&alpha[1]["spans"][0], &fn_keys);
    assert_eq!(
        alpha[0]["spans"][0]["args"],
        r#"{"args": ["alpha", 3], "kwargs": {}}"#
    );
    assert!(alpha[0]["spans"][0]["result"].is_null());
    assert_eq!(alpha[1]["spans"][0]["result"], "15");
    assert!(alpha[1]["spans"][0]["args"].is_null());
    assert_eq!(
        alpha[0]["spans"][0]["module"],
        "openbox_tests::hook_fixtures"
    );
    assert_eq!(alpha[0]["spans"][0]["kind"], "INTERNAL");

    // Outside an activity: the function runs, no Core call.
    let before = h.core.core.request_count();
    assert_eq!(score_text("outside", 2).await.unwrap(), 14);
    assert_eq!(h.core.core.request_count(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hooks_with_core_down_under_both_policies() {
    let server = TestHttpServer::start().await;
    let h = Harness::new("").await;
    // Only hooks reach Core here: no workflow events, no ActivityStarted.
    let quiet = |b: openbox::OpenBoxPluginBuilder| {
        b.options(|o| {
            o.skip_workflow_types(["HookWorkflow"])
                .send_activity_start_event(false)
        })
    };
    let open = h.plugin(ErrorPolicy::FailOpen, quiet).await;
    let closed = h.plugin(ErrorPolicy::FailClosed, quiet).await;
    h.core.core.kill();
    let step = |path: &str| {
        vec![(
            false,
            HookStep::Http {
                method: "GET".into(),
                url: format!("{}{path}", server.url),
                body: None,
            },
        )]
    };
    let open_results = h
        .run(Some(open), h.run_hooks(&unique("down-open"), step("/open")))
        .await;
    assert_eq!(open_results[0], "200 ok", "fail_open: the request is made");
    assert_eq!(server.received("/open").len(), 1);
    // fail_closed: the request is not made, and the GovernanceHalt ends the run.
    let closed_wid = unique("down-closed");
    let closed = h
        .run(Some(closed), async {
            let handle = h
                .client()
                .start_workflow(
                    HookWorkflow::run,
                    step("/closed"),
                    WorkflowStartOptions::new(&h.task_queue, &closed_wid).build(),
                )
                .await
                .unwrap();
            result_of(&handle).await
        })
        .await;
    let err = closed.unwrap_err();
    assert_eq!(failure_types(&err), ["GovernanceHalt"]);
    assert!(
        root_message(&err).starts_with("Governance HALT: Governance API error"),
        "{}",
        root_message(&err)
    );
    assert!(
        server.received("/closed").is_empty(),
        "fail_closed: the request is not made"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hook_ids_line_up_with_opentelemetry() {
    use opentelemetry::trace::TracerProvider as _;
    use tracing_subscriber::layer::SubscriberExt;

    // The user's telemetry: an OpenTelemetry SDK provider (with the replay-safe id generator
    // Temporal asks for), tracing-opentelemetry, and Temporal's OpenTelemetry plugin.
    let exporter = opentelemetry_sdk::trace::InMemorySpanExporter::default();
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .with_id_generator(temporalio_sdk::opentelemetry::WorkflowIdGenerator::default())
        .build();
    opentelemetry::global::set_tracer_provider(provider.clone());
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("openbox-tests")));
    tracing::subscriber::set_global_default(subscriber).expect(
        "a fresh process per test (cargo nextest): this test installs the global subscriber",
    );

    let server = TestHttpServer::start().await;
    let h = Harness::new("").await;
    let otel = temporalio_sdk::opentelemetry::OpenTelemetryPlugin::builder().build();
    let plugin = h.plugin(ErrorPolicy::FailClosed, |b| b).await;
    let options = temporalio_sdk::WorkerOptions::new(&h.task_queue)
        .worker_plugin(otel)
        .worker_plugin(plugin)
        .register_activities(openbox_tests::hook_fixtures::HookActivities)
        .register_workflow::<HookWorkflow>()
        .unwrap()
        .build();
    let wid = unique("otel");
    let step = vec![(
        false,
        HookStep::Http {
            method: "GET".into(),
            url: format!("{}/page", server.url),
            body: None,
        },
    )];
    let results = h.env.with_worker(options, h.run_hooks(&wid, step)).await;
    assert!(results[0].starts_with("200"), "{results:?}");
    provider.force_flush().unwrap();

    let exported = exporter.get_finished_spans().unwrap();
    let run_activity = exported
        .iter()
        .find(|s| s.name == "RunActivity:hook_step")
        .expect("Temporal's plugin exported the activity span");
    let activity_trace = run_activity.span_context.trace_id().to_string();
    let activity_span = run_activity.span_context.span_id().to_string();
    let events = h.events_of(&wid).await;
    let http = hooks_where(&events, "http_url", &format!("{}/page", server.url));
    assert_eq!(http.len(), 2);
    for body in &http {
        let span = &body["spans"][0];
        assert_eq!(
            span["trace_id"], activity_trace,
            "the hook span is in the activity's trace"
        );
        assert_eq!(
            span["parent_span_id"], activity_span,
            "its parent is the activity's span"
        );
    }
    let op_span = http[0]["spans"][0]["span_id"].as_str().unwrap();
    let exported_op = exported
        .iter()
        .find(|s| s.span_context.span_id().to_string() == op_span)
        .expect("the operation's span id is an exported OpenTelemetry span");
    assert_eq!(exported_op.name, "GET");
    assert_eq!(exported_op.parent_span_id.to_string(), activity_span);
    let done = &completed(&events)[0]["spans"][0];
    assert_eq!(
        done["span_id"], op_span,
        "ActivityCompleted reports the same span"
    );
}

/// `HookCompletion::Deferred`: an operation returns as soon as it finished, and a BLOCK on its
/// `completed` evaluation fails the activity when the body returns — the body went on meanwhile
/// (its next request was made) and returned while Core was still answering (every answer is
/// delayed 300 ms), ActivityCompleted comes after the evaluation answered. With the default
/// (`Wait`), the caller gets the BLOCK at once and the next request is never made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deferred_completion_keeps_the_verdict_and_frees_the_caller() {
    let server = TestHttpServer::start().await;
    let url = &server.url;
    let rules = stage_rule(
        "refuse the answer of /late",
        "completed",
        "http_url",
        &format!("{url}/late"),
    );
    let h = Harness::new(&rules).await;
    let delay = openbox_dev::Faults {
        delay_ms: 300,
        ..Default::default()
    };
    let step = |next: &str| {
        (
            false,
            HookStep::HttpThen {
                first: format!("{url}/late"),
                second: format!("{url}/{next}"),
            },
        )
    };
    let mut outcomes = Vec::new();
    for (mode, next) in [
        (openbox::HookCompletion::Deferred, "after-deferred"),
        (openbox::HookCompletion::Wait, "after-wait"),
    ] {
        let plugin = h
            .plugin(ErrorPolicy::FailClosed, |b| {
                b.options(|o| o.hook_completion(mode))
            })
            .await;
        h.core.core.set_faults(delay.clone()).unwrap();
        let wid = unique("deferred");
        let results = h
            .run(Some(plugin), async {
                h.run_hooks(&wid, vec![step(next)]).await
            })
            .await;
        outcomes.push((wid, results));
    }
    for (_, results) in &outcomes {
        assert_eq!(
            results[0], "ERR:GovernanceBlock:Hook governance block: refuse the answer of /late",
            "the BLOCK fails the activity in both modes"
        );
    }
    assert_eq!(
        server.received("/after-deferred").len(),
        1,
        "deferred: the body went on"
    );
    assert!(
        server.received("/after-wait").is_empty(),
        "wait: the caller got the BLOCK before going on"
    );
    let events = h.events_of(&outcomes[0].0).await;
    let types = event_types(&events);
    let refused = events
        .iter()
        .position(|e| {
            e.is_hook()
                && e.body["spans"][0]["stage"] == "completed"
                && e.body["spans"][0]["http_url"] == format!("{url}/late")
        })
        .expect("the completed evaluation of /late");
    let done = types.iter().position(|t| t == "ActivityCompleted").unwrap();
    assert!(
        refused < done,
        "ActivityCompleted waits for the deferred evaluation: {types:?}"
    );
    let done = &completed(&events)[0];
    assert_eq!(done["status"], "failed");
    assert_eq!(done["error"]["type"], "GovernanceBlock");
    assert_eq!(done["span_count"], 1);
}
