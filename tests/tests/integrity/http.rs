//! The HTTP middleware: look-alikes of Core's URL, redirects, guardrails on a request, secrets
//! in URLs, headers and bodies, and a response body that cannot be read.

use std::net::SocketAddr;

use openbox::ErrorPolicy;
use openbox_tests::core::TestCore;
use openbox_tests::harness::Harness;
use openbox_tests::hook_fixtures::{ClientKind, HookStep};
use openbox_tests::http_server::{SERVER_TOKEN, TestHttpServer, TruncatingServer};
use openbox_tests::unique;

use crate::{log_text, spans_at};

fn get(url: &str, client: ClientKind) -> (bool, HookStep) {
    request("GET", url, client, &[], None)
}

fn request(
    method: &str,
    url: &str,
    client: ClientKind,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> (bool, HookStep) {
    (
        false,
        HookStep::Request {
            method: method.into(),
            url: url.into(),
            client,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: body.map(str::to_owned),
            show_body: true,
        },
    )
}

/// [`request`] whose result is the status only (the body may hold the secret under test).
fn quiet(step: (bool, HookStep)) -> (bool, HookStep) {
    match step {
        (
            sync,
            HookStep::Request {
                method,
                url,
                client,
                headers,
                body,
                ..
            },
        ) => (
            sync,
            HookStep::Request {
                method,
                url,
                client,
                headers,
                body,
                show_body: false,
            },
        ),
        other => other,
    }
}

const BLOCK_ALL_HTTP: &str = r#"
[[rules]]
name = "no http"
verdict = "block"
reason = "no http"
match = { "spans.0.hook_type" = "http_request", "spans.0.stage" = "started" }
"#;

/// A dev Core at `127.0.0.1:P` and a server at `127.0.0.1:P0`, whose URL starts with Core's.
async fn core_and_lookalike() -> (TestCore, TestHttpServer) {
    for port in (2000u16..6553).step_by(7) {
        let Some(core) =
            TestCore::start_at(BLOCK_ALL_HTTP, SocketAddr::from(([127, 0, 0, 1], port))).await
        else {
            continue;
        };
        if let Some(server) =
            TestHttpServer::start_on(SocketAddr::from(([127, 0, 0, 1], port * 10))).await
        {
            return (core, server);
        }
    }
    panic!("no free pair of ports P and P0 on 127.0.0.1");
}

/// Only Core's own origin is left ungoverned: a port that merely starts with Core's, and a URL
/// whose userinfo spells Core's address, are governed (and here blocked) like any other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookalikes_of_cores_url_are_governed() {
    let (core, lookalike) = core_and_lookalike().await;
    let other = TestHttpServer::start_on("127.0.0.2:0".parse().unwrap())
        .await
        .expect("127.0.0.2 is loopback");
    let core_addr = core.core.addr();
    assert!(lookalike.url.starts_with(&core.core.url()));
    let h = Harness::with_core(core).await;
    let plugin = h.plugin(ErrorPolicy::FailClosed, |b| b).await;
    let wid = unique("lookalike");
    let userinfo_url = format!(
        "http://{}:{}@{}/userinfo",
        core_addr.ip(),
        core_addr.port(),
        other.url.trim_start_matches("http://")
    );
    let results = h
        .run(Some(plugin), async {
            h.run_hooks(
                &wid,
                vec![
                    get(&format!("{}/lookalike", lookalike.url), ClientKind::Manual),
                    get(&userinfo_url, ClientKind::Execute),
                ],
            )
            .await
        })
        .await;
    for r in &results {
        assert!(r.starts_with("ERR:GovernanceBlock:"), "{results:?}");
    }
    assert!(
        lookalike.received("/lookalike").is_empty(),
        "the look-alike port got the request"
    );
    assert!(
        other.received("/userinfo").is_empty(),
        "the userinfo URL got the request"
    );
}

/// Each hop of a redirect is a request of its own, evaluated before it is sent; a client that
/// follows redirects itself cannot hand over an answer that came from an ungoverned hop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_are_governed_hop_by_hop() {
    let a = TestHttpServer::start().await;
    let b = TestHttpServer::start_on("127.0.0.2:0".parse().unwrap())
        .await
        .expect("127.0.0.2 is loopback");
    let rules = format!(
        r#"
[[rules]]
name = "not that landing"
verdict = "block"
reason = "not that landing"
match = {{ "spans.0.stage" = "started", "spans.0.http_url" = "{}/blocked-landing" }}
"#,
        b.url
    );
    let h = Harness::new(&rules).await;
    let plugin = h.plugin(ErrorPolicy::FailClosed, |b| b).await;
    let wid = unique("redirect");
    let via = |to: &str| format!("{}/redirect?to={}{to}", a.url, b.url);
    let results = h
        .run(Some(plugin), async {
            h.run_hooks(
                &wid,
                vec![
                    get(&via("/landing"), ClientKind::Manual),
                    get(&via("/blocked-landing"), ClientKind::Manual),
                    get(&via("/followed"), ClientKind::Following),
                ],
            )
            .await
        })
        .await;
    assert_eq!(results[0], "200 ok");
    assert_eq!(
        results[1],
        "ERR:GovernanceBlock:Hook governance block: not that landing"
    );
    assert!(
        results[2].starts_with("ERR:GovernanceAPIError:") && results[2].contains("redirect"),
        "{}",
        results[2]
    );
    assert!(
        b.received("/blocked-landing").is_empty(),
        "a hop blocked at started is never sent"
    );
    let events = h.events_of(&wid).await;
    let started: Vec<String> = spans_at(&events, "started")
        .iter()
        .map(|s| s["http_url"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        started,
        [
            via("/landing"),
            format!("{}/landing", b.url),
            via("/blocked-landing"),
            format!("{}/blocked-landing", b.url),
            via("/followed"),
        ]
    );
    let completed = spans_at(&events, "completed");
    assert_eq!(completed[0]["http_status_code"], 302);
    assert_eq!(completed[1]["http_url"], format!("{}/landing", b.url));
    assert_eq!(
        completed.last().unwrap()["http_url"],
        format!("{}/followed", b.url),
        "completed names the URL that answered"
    );
}

/// A hook evaluation answered `allow` with failed guardrails stops the operation, as it stops
/// an activity.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guardrail_failures_stop_hook_operations() {
    let server = TestHttpServer::start().await;
    let dir = openbox_tests::TempDir::new("guarded");
    let file = dir.path().join("guarded.txt").display().to_string();
    let rules = format!(
        r#"
[[rules]]
name = "guarded url"
verdict = "allow"
match = {{ "spans.0.stage" = "started", "spans.0.http_url" = "{url}/guarded" }}
guardrails_result = {{ validation_passed = false, reasons = [{{ reason = "pii in the request" }}] }}

[[rules]]
name = "guarded file"
verdict = "constrain"
match = {{ "spans.0.stage" = "started", "spans.0.file_path" = "{file}" }}
guardrails_result = {{ validation_passed = false, reasons = [{{ reason = "pii in the file" }}] }}
"#,
        url = server.url
    );
    let h = Harness::new(&rules).await;
    let plugin = h.plugin(ErrorPolicy::FailClosed, |b| b).await;
    let wid = unique("guard-hook");
    let results = h
        .run(Some(plugin), async {
            h.run_hooks(
                &wid,
                vec![
                    get(&format!("{}/guarded", server.url), ClientKind::Manual),
                    (false, HookStep::WriteFile { path: file.clone() }),
                ],
            )
            .await
        })
        .await;
    assert_eq!(
        results,
        [
            "ERR:GuardrailsValidationFailed:Guardrails validation failed: pii in the request",
            "ERR:GuardrailsValidationFailed:Guardrails validation failed: pii in the file",
        ]
    );
    assert!(server.received("/guarded").is_empty());
    assert!(
        !std::path::Path::new(&file).exists(),
        "the file was not created"
    );
}

/// Credentials in URLs, request and response headers, and form and JSON bodies reach the
/// server but never Core.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_in_urls_headers_and_bodies_never_reach_core() {
    let server = TestHttpServer::start().await;
    let h = Harness::new("").await;
    // The secrets travel to the activity in the workflow's own input, which WorkflowStarted
    // reports as it reports any argument: this test is about what the operations send.
    let plugin = h
        .plugin(ErrorPolicy::FailClosed, |b| {
            b.options(|o| o.send_start_event(false))
        })
        .await;
    let wid = unique("secrets");
    let host = server.url.trim_start_matches("http://");
    let secrets = [
        "query-api-key-1111",
        "query-signature-2222",
        "userinfo-password-3333",
        "header-auth-key-4444",
        "header-apim-key-5555",
        "header-iap-jwt-6666",
        "form-client-secret-7777",
        "json-password-8888",
        "fragment-token-9999",
        SERVER_TOKEN,
    ];
    let results = h
        .run(Some(plugin), async {
            h.run_hooks(
                &wid,
                vec![
                    request(
                        "GET",
                        &format!(
                            "{}/page?q=1&api_key={}&X-Amz-Signature={}#access_token={}",
                            server.url, secrets[0], secrets[1], secrets[8]
                        ),
                        ClientKind::Manual,
                        &[
                            ("X-Auth-Key", secrets[3]),
                            ("Ocp-Apim-Subscription-Key", secrets[4]),
                            ("X-Goog-IAP-JWT-Assertion", secrets[5]),
                        ],
                        None,
                    ),
                    get(
                        &format!("http://admin:{}@{host}/userinfo", secrets[2]),
                        ClientKind::Execute,
                    ),
                    request(
                        "POST",
                        &format!("{}/form", server.url),
                        ClientKind::Manual,
                        &[("content-type", "application/x-www-form-urlencoded")],
                        Some(&format!(
                            "grant_type=client_credentials&client_secret={}",
                            secrets[6]
                        )),
                    ),
                    quiet(request(
                        "POST",
                        &format!("{}/json", server.url),
                        ClientKind::Manual,
                        &[("content-type", "application/json")],
                        Some(&format!(r#"{{"user":"u1","password":"{}"}}"#, secrets[7])),
                    )),
                    quiet(get(&format!("{}/token", server.url), ClientKind::Manual)),
                ],
            )
            .await
        })
        .await;
    assert!(results.iter().all(|r| r.starts_with("200")), "{results:?}");
    assert_eq!(
        server.received("/page")[0].headers["x-auth-key"],
        secrets[3],
        "the server got the real header"
    );
    let text = log_text(&h.core.log().await);
    for secret in secrets {
        assert!(!text.contains(secret), "{secret} reached Core");
    }
    assert!(
        text.contains("grant_type=client_credentials"),
        "the rest of the body is sent"
    );
    assert!(
        text.contains(r#"\"user\":\"u1\""#),
        "the rest of the JSON body is sent"
    );
}

/// A response body that cannot be read still gets its `completed` evaluation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_response_body_read_still_completes() {
    let server = TruncatingServer::start().await;
    let h = Harness::new("").await;
    let plugin = h.plugin(ErrorPolicy::FailClosed, |b| b).await;
    let wid = unique("truncated");
    let results = h
        .run(Some(plugin), async {
            h.run_hooks(
                &wid,
                vec![get(&format!("{}/cut", server.url), ClientKind::Manual)],
            )
            .await
        })
        .await;
    assert!(results[0].starts_with("ERR:"), "{results:?}");
    let events = h.events_of(&wid).await;
    let completed = spans_at(&events, "completed");
    assert_eq!(completed.len(), 1, "Core learns how the request ended");
    assert_eq!(completed[0]["http_status_code"], 200);
    assert!(
        completed[0]["error"]
            .as_str()
            .is_some_and(|e| !e.is_empty())
    );
}
