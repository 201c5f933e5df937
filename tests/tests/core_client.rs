//! The Core client against the dev Core over real HTTP: the headers and bodies of design D1,
//! and every failure mode under fail_open and fail_closed with the outcome D7/D9 prescribe.

use std::sync::Arc;
use std::time::{Duration, Instant};

use openbox::__private::core::{
    ActivityIdentity, ActivityStarted, ApprovalRequest, ApprovalStatus, LifecycleEvent,
    ResponseError, Verdict, WorkflowStarted, WorkflowTelemetry, time,
};
use openbox::__private::core::{CoreClient, Decision};
use openbox::{ConfigError, ErrorPolicy, GovernanceApiError, OpenBoxConfig, OpenBoxError};
use openbox_dev::Faults;
use openbox_tests::core::{TEST_KEY, TestCore, config_for};
use serde_json::Value;

const POLICIES: [ErrorPolicy; 2] = [ErrorPolicy::FailOpen, ErrorPolicy::FailClosed];

fn workflow_started() -> LifecycleEvent {
    LifecycleEvent::WorkflowStarted(WorkflowStarted {
        multi_agent_session_id: None,
        activity_input: Some(vec![Value::from("draft")]),
        run_id: "run-1".into(),
        source: WorkflowTelemetry,
        task_queue: "tq".into(),
        workflow_id: "wf-1".into(),
        workflow_type: "Payments".into(),
        timestamp: time::now_timestamp(),
    })
}

fn activity_started(activity_type: &str) -> LifecycleEvent {
    LifecycleEvent::ActivityStarted(ActivityStarted {
        source: WorkflowTelemetry,
        activity: Arc::new(ActivityIdentity {
            multi_agent_session_id: None,
            workflow_id: "wf-1".into(),
            run_id: "run-1".into(),
            workflow_type: "Payments".into(),
            activity_id: "7".into(),
            activity_type: activity_type.into(),
            task_queue: "tq".into(),
            attempt: 1,
        }),
        timestamp: time::now_timestamp(),
        activity_input: Arc::new(vec![serde_json::json!({"amount": 10})]),
    })
}

#[tokio::test]
async fn sends_the_reference_headers_and_bodies() {
    openbox_tests::init_tracing();
    let core = TestCore::start("").await;
    let client = CoreClient::new(core.config(ErrorPolicy::FailOpen)).unwrap();
    client.validate().await.unwrap();
    let event = workflow_started();
    let response = client.evaluate(&event).await.unwrap();
    assert_eq!(response.verdict, Verdict::Allow);

    let log = core.log().await;
    assert_eq!(log.len(), 2);
    let version = env!("CARGO_PKG_VERSION");
    for entry in &log {
        assert_eq!(
            entry.headers["user-agent"],
            format!("OpenBox-SDK/{version}")
        );
        assert_eq!(entry.headers["x-openbox-sdk-version"], version);
        assert_eq!(
            entry.headers["content-type"], "application/json",
            "also on the body-less GET"
        );
        assert_eq!(entry.headers["authorization"], "Bearer obx_test_****");
    }
    assert_eq!(
        (log[0].method.as_str(), log[0].path.as_str()),
        ("GET", "/api/v1/auth/validate")
    );
    assert_eq!(
        (log[1].method.as_str(), log[1].path.as_str()),
        ("POST", "/api/v1/governance/evaluate")
    );
    assert_eq!(log[1].body, serde_json::to_value(&event).unwrap());
    assert!(log[1].body.get("hook_trigger").is_none());
}

#[tokio::test]
async fn verdicts_come_from_the_rules_incl_legacy_spellings() {
    let core = TestCore::start(
        r#"
[[rules]]
name = "freeze"
verdict = "block"
reason = "payments are frozen"
match = { event_type = "ActivityStarted", activity_type = "charge" }

[[rules]]
name = "legacy stop"
verdict = "allow"
match = { activity_type = "legacy" }
response = { verdict = "STOP" }

[[rules]]
name = "legacy action"
verdict = "allow"
match = { activity_type = "action" }
response = { verdict = "", action = "require-approval" }
"#,
    )
    .await;
    let client = CoreClient::new(core.config(ErrorPolicy::FailClosed)).unwrap();
    let blocked = client.evaluate(&activity_started("charge")).await.unwrap();
    assert_eq!(blocked.verdict, Verdict::Block);
    assert_eq!(blocked.reason.as_deref(), Some("payments are frozen"));
    assert_eq!(
        client
            .evaluate(&activity_started("legacy"))
            .await
            .unwrap()
            .verdict,
        Verdict::Halt
    );
    assert_eq!(
        client
            .evaluate(&activity_started("action"))
            .await
            .unwrap()
            .verdict,
        Verdict::RequireApproval
    );
    assert_eq!(
        client
            .evaluate(&activity_started("other"))
            .await
            .unwrap()
            .verdict,
        Verdict::Allow
    );
    let log = core.log().await;
    assert_eq!(
        log.iter().map(|e| e.rule.as_deref()).collect::<Vec<_>>(),
        [
            Some("freeze"),
            Some("legacy stop"),
            Some("legacy action"),
            None
        ]
    );
}

/// Runs `decide` under both policies and checks the D9 outcome: `Proceed` under fail_open and
/// `Halt` under fail_closed, with the error `check` expects. Returns the Core's event log.
async fn assert_policy_outcomes(
    core: &TestCore,
    timeout: Duration,
    check: impl Fn(&GovernanceApiError) -> bool,
) -> Vec<openbox_dev::LoggedRequest> {
    for policy in POLICIES {
        let client = CoreClient::new(config_for(&core.core.url(), policy, timeout)).unwrap();
        let started = Instant::now();
        let decision = client.decide(&activity_started("charge")).await;
        assert!(
            started.elapsed() < timeout + Duration::from_secs(2),
            "no hang past the timeout"
        );
        match (policy, &decision) {
            (ErrorPolicy::FailOpen, Decision::Proceed(e))
            | (ErrorPolicy::FailClosed, Decision::Halt(e)) => {
                assert!(check(e), "{policy}: unexpected error {e:?}");
                assert!(e.to_string().starts_with("Governance API error"), "{e}");
            }
            other => panic!("{policy}: expected the policy outcome, got {other:?}"),
        }
    }
    core.log().await
}

#[tokio::test]
async fn core_down() {
    // A port that was just free: nothing listens there.
    let port = openbox_devserver::free_port().unwrap();
    let url = format!("http://127.0.0.1:{port}");
    for policy in POLICIES {
        let client = CoreClient::new(config_for(&url, policy, Duration::from_secs(2))).unwrap();
        let decision = client.decide(&activity_started("charge")).await;
        match (policy, decision) {
            (ErrorPolicy::FailOpen, Decision::Proceed(GovernanceApiError::Unreachable(_)))
            | (ErrorPolicy::FailClosed, Decision::Halt(GovernanceApiError::Unreachable(_))) => {}
            (_, other) => panic!("{policy}: {other:?}"),
        }
        let err = client.validate().await.unwrap_err();
        assert!(matches!(err, OpenBoxError::Network { .. }), "{err:?}");
        assert!(
            err.to_string()
                .starts_with(&format!("Cannot reach OpenBox Core at {url}")),
            "{err}"
        );
        // An approval poll that cannot reach Core is an error the caller treats as pending.
        let poll = client.poll_approval(&approval_request()).await;
        assert!(
            matches!(poll, Err(GovernanceApiError::Unreachable(_))),
            "{poll:?}"
        );
    }
}

#[tokio::test]
async fn core_500() {
    let core = TestCore::start("").await;
    core.core
        .set_faults(Faults {
            error_rate: 1.0,
            ..Faults::default()
        })
        .unwrap();
    let log = assert_policy_outcomes(&core, Duration::from_secs(5), |e| {
        matches!(e, GovernanceApiError::Status { status: 500, .. })
    })
    .await;
    assert_eq!(log.len(), 2);
    assert!(
        log.iter()
            .all(|e| e.status == 500 && e.fault.as_deref() == Some("error"))
    );
}

#[tokio::test]
async fn core_slower_than_the_timeout() {
    let core = TestCore::start("").await;
    core.core
        .set_faults(Faults {
            delay_ms: 3_000,
            ..Faults::default()
        })
        .unwrap();
    let timeout = Duration::from_millis(300);
    assert_policy_outcomes(&core, timeout, |e| {
        *e == GovernanceApiError::Timeout(timeout)
    })
    .await;
}

#[tokio::test]
async fn garbage_200() {
    let core = TestCore::start("").await;
    core.core
        .set_faults(Faults {
            garbage_rate: 1.0,
            ..Faults::default()
        })
        .unwrap();
    let log = assert_policy_outcomes(&core, Duration::from_secs(5), |e| {
        matches!(
            e,
            GovernanceApiError::InvalidResponse(ResponseError::NotJson(_))
        )
    })
    .await;
    assert!(
        log.iter()
            .all(|e| e.status == 200 && e.fault.as_deref() == Some("garbage"))
    );
    // On an approval poll, garbage means "still pending" (design D7).
    let client = CoreClient::new(core.config(ErrorPolicy::FailClosed)).unwrap();
    assert_eq!(
        client
            .poll_approval(&approval_request())
            .await
            .unwrap()
            .status,
        ApprovalStatus::Pending { reason: None }
    );
}

#[tokio::test]
async fn unknown_verdict_is_a_core_error_not_allow() {
    let core = TestCore::start("").await;
    core.core
        .set_faults(Faults {
            unknown_verdict_rate: 1.0,
            ..Faults::default()
        })
        .unwrap();
    assert_policy_outcomes(&core, Duration::from_secs(5), |e| {
        e.kind() == "unknown_verdict" && e.to_string().contains("\"maybe\"")
    })
    .await;
    // On an approval poll, an unknown verdict means "still pending" (design D7).
    let client = CoreClient::new(core.config(ErrorPolicy::FailOpen)).unwrap();
    let status = client
        .poll_approval(&approval_request())
        .await
        .unwrap()
        .status;
    assert!(
        matches!(status, ApprovalStatus::Pending { .. }),
        "{status:?}"
    );
}

#[tokio::test]
async fn missing_verdict_is_a_core_error() {
    let core = TestCore::start(
        "[[rules]]\nverdict = \"allow\"\nmatch = { activity_type = \"charge\" }\nresponse = { verdict = \"\" }\n",
    )
    .await;
    assert_policy_outcomes(&core, Duration::from_secs(5), |e| {
        *e == GovernanceApiError::InvalidResponse(ResponseError::MissingVerdict)
    })
    .await;
}

#[tokio::test]
async fn unauthorized_always_fails_closed() {
    let core = TestCore::start("").await;
    // 401 on the key check: a start-up error whatever the policy.
    core.core
        .set_faults(Faults {
            validate_status: Some(401),
            ..Faults::default()
        })
        .unwrap();
    for policy in POLICIES {
        let client = CoreClient::new(core.config(policy)).unwrap();
        let err = client.validate().await.unwrap_err();
        assert!(
            matches!(err, OpenBoxError::Auth { status: 401, .. }),
            "{policy}: {err:?}"
        );
        assert!(!err.to_string().contains(TEST_KEY));
    }
    // 401/403 on evaluate (key revoked mid-run): Halt under both policies.
    for status in [401, 403] {
        core.core
            .set_faults(Faults {
                error_rate: 1.0,
                error_status: status,
                ..Faults::default()
            })
            .unwrap();
        for policy in POLICIES {
            let client = CoreClient::new(core.config(policy)).unwrap();
            match client.decide(&activity_started("charge")).await {
                Decision::Halt(GovernanceApiError::Unauthorized { status: s }) => {
                    assert_eq!(s, status)
                }
                other => panic!("{policy} {status}: {other:?}"),
            }
        }
    }
}

#[tokio::test]
async fn wrong_key_is_rejected_by_the_core() {
    let core = openbox_dev::DevCore::builder()
        .api_keys(["obx_test_other"])
        .start()
        .await
        .unwrap();
    for policy in POLICIES {
        let client =
            CoreClient::new(config_for(&core.url(), policy, Duration::from_secs(5))).unwrap();
        assert!(matches!(
            client.validate().await,
            Err(OpenBoxError::Auth { status: 401, .. })
        ));
    }
}

#[test]
fn http_to_a_non_loopback_host_is_refused_before_any_call() {
    for policy in POLICIES {
        let err = OpenBoxConfig::builder()
            .ignore_env()
            .url("http://core.example.com:8086")
            .api_key(TEST_KEY)
            .error_policy(policy)
            .build()
            .unwrap_err();
        assert_eq!(
            err,
            ConfigError::InsecureUrl {
                url: "http://core.example.com:8086".into()
            }
        );
        assert!(err.to_string().contains("Use HTTPS"));
    }
}

#[test]
fn malformed_key_is_refused_without_echoing_it() {
    let secret = "sk_live_ThisIsTheSecretPart";
    for policy in POLICIES {
        let err = OpenBoxConfig::builder()
            .ignore_env()
            .url("http://localhost:8086")
            .api_key(secret)
            .error_policy(policy)
            .build()
            .unwrap_err();
        assert_eq!(err, ConfigError::InvalidApiKey);
        assert!(!format!("{err} {err:?}").contains("ThisIsTheSecretPart"));
    }
}

fn approval_request() -> ApprovalRequest {
    ApprovalRequest {
        workflow_id: "wf-1".into(),
        run_id: "run-1".into(),
        activity_id: "7".into(),
    }
}

#[tokio::test]
async fn approval_poll_round_trip() {
    let core = TestCore::start(
        "[[rules]]\nverdict = \"require_approval\"\nmatch = { event_type = \"ActivityStarted\", activity_type = \"charge\" }\n",
    )
    .await;
    let client = CoreClient::new(core.config(ErrorPolicy::FailClosed)).unwrap();
    // No request yet: the dev Core answers 404, an error the SDK treats as "nothing pending".
    assert!(matches!(
        client.poll_approval(&approval_request()).await,
        Err(GovernanceApiError::Status { status: 404, .. })
    ));
    let first = client.evaluate(&activity_started("charge")).await.unwrap();
    assert_eq!(first.verdict, Verdict::RequireApproval);
    let id = first.approval_id.clone().unwrap();
    let pending = client.poll_approval(&approval_request()).await.unwrap();
    assert!(matches!(pending.status, ApprovalStatus::Pending { .. }));
    assert_eq!(pending.approval_id.as_deref(), Some(id.as_str()));
    core.core
        .approvals()
        .decide(&id, true, "test", None)
        .unwrap();
    assert!(matches!(
        client
            .poll_approval(&approval_request())
            .await
            .unwrap()
            .status,
        ApprovalStatus::Approved { .. }
    ));
    // The re-evaluation after approval is answered with allow (design §4.4).
    assert_eq!(
        client
            .evaluate(&activity_started("charge"))
            .await
            .unwrap()
            .verdict,
        Verdict::Allow
    );
    let log = core.log().await;
    let polls: Vec<&Value> = log
        .iter()
        .filter(|e| e.path == "/api/v1/governance/approval")
        .map(|e| &e.body)
        .collect();
    assert_eq!(
        polls[0],
        &serde_json::json!({"workflow_id": "wf-1", "run_id": "run-1", "activity_id": "7"})
    );
}

fn https_config(url: &str, ca_pem: Option<&str>) -> OpenBoxConfig {
    let builder = OpenBoxConfig::builder()
        .ignore_env()
        .url(url)
        .api_key(TEST_KEY)
        .error_policy(ErrorPolicy::FailClosed)
        .timeout(Duration::from_secs(5));
    match ca_pem {
        Some(pem) => builder.ca_bundle_pem(pem.as_bytes().to_vec()),
        None => builder,
    }
    .build()
    .expect("valid HTTPS config")
}

/// HTTPS to the real dev Core (behind a TLS front) with the CA given as a custom bundle; the
/// same server is refused without the bundle (public roots) and with another CA's bundle.
#[tokio::test]
async fn https_with_a_custom_ca_bundle() {
    let core = TestCore::start("").await;
    let ca = openbox_tests::tls::TestCa::new("OpenBox test CA");
    let url = ca.front(core.core.addr()).await;
    assert!(url.starts_with("https://"));

    let client = CoreClient::new(https_config(&url, Some(&ca.ca_pem))).unwrap();
    client
        .validate()
        .await
        .expect("the key check passes over TLS");
    match client.decide(&workflow_started()).await {
        Decision::Verdict(r) => assert_eq!(r.verdict, Verdict::Allow),
        other => panic!("{other:?}"),
    }
    let log = core.log().await;
    assert_eq!(
        log.iter()
            .filter(|e| e.event_type() == Some("WorkflowStarted"))
            .count(),
        1,
        "the evaluation reached the dev Core through TLS"
    );

    let other_ca = openbox_tests::tls::TestCa::new("Another CA");
    for (what, pem) in [
        ("public roots", None),
        ("another CA", Some(other_ca.ca_pem.as_str())),
    ] {
        let client = CoreClient::new(https_config(&url, pem)).unwrap();
        let err = client.validate().await.unwrap_err();
        assert!(
            matches!(&err, OpenBoxError::Network { source, .. } if source.to_string().contains("certificate")),
            "{what}: {err:?}"
        );
        match client.decide(&workflow_started()).await {
            Decision::Halt(GovernanceApiError::Unreachable(reason)) => {
                assert!(reason.contains("certificate"), "{what}: {reason}")
            }
            other => panic!("{what}: {other:?}"),
        }
    }
    assert_eq!(
        core.log().await.len(),
        log.len(),
        "nothing got through an untrusted connection"
    );
}

/// A Core answering with a redirect is not followed: the Authorization header never reaches
/// the redirect's target, and the answer is a Core error (fail_closed: halt).
#[tokio::test]
async fn redirects_from_core_are_not_followed() {
    use axum::http::{HeaderMap, StatusCode, header};
    let target = openbox_tests::http_server::TestHttpServer::start().await;
    let location = format!("{}/api/v1/governance/evaluate", target.url);
    let app = axum::Router::new().fallback(move || {
        let location = location.clone();
        async move {
            let mut h = HeaderMap::new();
            h.insert(header::LOCATION, location.parse().unwrap());
            (StatusCode::TEMPORARY_REDIRECT, h)
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let client = CoreClient::new(config_for(
        &url,
        ErrorPolicy::FailClosed,
        Duration::from_secs(5),
    ))
    .unwrap();
    match client.decide(&workflow_started()).await {
        Decision::Halt(GovernanceApiError::Status { status: 307, .. }) => {}
        other => panic!("{other:?}"),
    }
    let err = client.validate().await.unwrap_err();
    assert!(matches!(err, OpenBoxError::Network { .. }), "{err:?}");
    assert!(
        target.received("/api/v1/governance/evaluate").is_empty()
            && target.received("/api/v1/auth/validate").is_empty(),
        "the redirect target got no request (and no key)"
    );
}

/// After the threshold of consecutive failures, the client stops calling a Core that does not
/// answer: the next calls fail at once without reaching it, under either policy; after the
/// cool-down one probe goes through, and a Core that answers again closes the breaker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_circuit_breaker_stops_calling_a_dead_core_and_probes_it_back() {
    use openbox::__private::core::Decision;
    use openbox::ErrorPolicy;
    use openbox::{BreakerSettings, BreakerState};
    let core = TestCore::start("").await;
    // Far longer than the test: the timed-out requests are never logged while it runs, so the
    // dev Core's request count shows exactly which calls reached it.
    core.core
        .set_faults(Faults {
            delay_ms: 60_000,
            ..Faults::default()
        })
        .unwrap();
    let cool_down = Duration::from_millis(500);
    let config = openbox_tests::core::config_builder_for(
        &core.core.url(),
        ErrorPolicy::FailClosed,
        Duration::from_millis(300),
    )
    .circuit_breaker(BreakerSettings {
        failure_threshold: 2,
        cool_down,
    })
    .build()
    .unwrap();
    let client = CoreClient::new(config).unwrap();
    let event = activity_started("charge");
    for _ in 0..2 {
        assert!(matches!(
            client.evaluate(&event).await,
            Err(openbox::GovernanceApiError::Timeout(_))
        ));
    }
    assert_eq!(client.breaker_state(), BreakerState::Open);
    let reached = core.core.request_count();
    // Open: no call is made, whatever the policy decides about the missing verdict.
    for _ in 0..5 {
        match client.decide(&event).await {
            Decision::Halt(e) => {
                assert_eq!(e.kind(), "circuit_open");
                let text = e.to_string();
                assert!(
                    text.contains("circuit breaker is open") && text.contains("no answer"),
                    "{text}"
                );
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        core.core.request_count(),
        reached,
        "an open breaker reached Core"
    );
    // Core recovers; after the cool-down the probe goes through and closes the breaker.
    core.core.set_faults(Faults::default()).unwrap();
    tokio::time::sleep(cool_down + Duration::from_millis(100)).await;
    assert!(client.evaluate(&event).await.is_ok(), "the probe");
    assert_eq!(client.breaker_state(), BreakerState::Closed);
    assert_eq!(core.core.request_count(), reached + 1);
    assert_eq!(client.breaker_transitions(), 3, "open, half-open, closed");
}

/// Signed requests (agent identity v1) against a dev Core that verifies them: the right key
/// passes on every endpoint; a wrong key or DID is refused with Core's reason code, which the
/// SDK reports typed and always fails closed on; the key is nowhere in what Core received.
#[tokio::test]
async fn signed_requests_verify_and_rejections_are_typed() {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use openbox::{AgentIdentity, GovernanceApiError, OpenBoxError, SigningRejection};

    const DID: &str = "did:aip:6f9619ff-8b86-4d11-b42d-00c04fc964ff";
    let seed = STANDARD.encode([11u8; 32]);
    let identity = AgentIdentity::new(DID, &seed).unwrap();
    let core = TestCore::start_signed(DID, &identity.public_key_base64()).await;
    let client_with = |did: &str, key: &str| {
        let config = openbox_tests::core::config_builder_for(
            &core.core.url(),
            ErrorPolicy::FailOpen,
            std::time::Duration::from_secs(5),
        )
        .agent_identity(did, key)
        .build()
        .unwrap();
        CoreClient::new(config).unwrap()
    };

    let signed = client_with(DID, &seed);
    signed.validate().await.unwrap();
    assert_eq!(
        signed.evaluate(&workflow_started()).await.unwrap().verdict,
        Verdict::Allow
    );
    let log = core.log().await;
    assert_eq!(log.len(), 2);
    for entry in &log {
        assert_eq!(entry.status, 200, "{entry:?}");
        assert_eq!(entry.headers["x-openbox-agent-did"], DID);
        assert_eq!(entry.headers["x-openbox-agent-nonce"].len(), 32);
        assert!(entry.headers["x-openbox-agent-timestamp"].ends_with("+00:00"));
    }
    let text = serde_json::to_string(&log).unwrap();
    assert!(!text.contains(&seed), "the private key never travels");

    let wrong_key = client_with(DID, &STANDARD.encode([12u8; 32]));
    match wrong_key.validate().await {
        Err(OpenBoxError::SignatureRejected { rejection, .. }) => {
            assert_eq!(rejection, SigningRejection::SignatureInvalid)
        }
        other => panic!("{other:?}"),
    }
    let error = wrong_key.evaluate(&workflow_started()).await.unwrap_err();
    assert!(
        matches!(
            &error,
            GovernanceApiError::SignatureRejected {
                status: 401,
                rejection: SigningRejection::SignatureInvalid
            }
        ),
        "{error:?}"
    );
    assert!(
        matches!(
            wrong_key.decide(&workflow_started()).await,
            Decision::Halt(_)
        ),
        "a refused signature fails closed even under fail_open"
    );

    let other_agent = client_with("did:aip:00000000-0000-4000-8000-000000000000", &seed);
    let error = other_agent.evaluate(&workflow_started()).await.unwrap_err();
    assert!(
        matches!(
            &error,
            GovernanceApiError::SignatureRejected {
                rejection: SigningRejection::DidAgentMismatch,
                ..
            }
        ),
        "{error:?}"
    );
    let unsigned = CoreClient::new(core.config(ErrorPolicy::FailOpen)).unwrap();
    assert!(
        unsigned
            .evaluate(&workflow_started())
            .await
            .unwrap_err()
            .is_unauthorized(),
        "an unsigned request is refused"
    );
}

/// With only the Okta private key configured, 64 evaluations sent at once before the identity is
/// known make exactly one bootstrap request, and every evaluation is signed with the ids it
/// gave; a key that is not the credential Core selected is refused before anything is signed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_okta_key_alone_bootstraps_once_under_64_concurrent_evaluations() {
    use openbox_tests::identity::{new_rsa_key_pem, okta_config, registration_of};

    let pem = new_rsa_key_pem();
    let full = okta_config("http://127.0.0.1:1", ErrorPolicy::FailOpen, &pem);
    let core = TestCore::start_okta(registration_of(full.okta_agent_identity().unwrap())).await;
    let key_only = |pem: &str| {
        let config = openbox_tests::core::config_builder_for(
            &core.core.url(),
            ErrorPolicy::FailOpen,
            Duration::from_secs(10),
        )
        .okta_agent_private_key(pem)
        .build()
        .unwrap();
        assert!(
            config.okta_agent_identity().is_none(),
            "the ids are not known yet"
        );
        CoreClient::new(config).unwrap()
    };
    let client = key_only(&pem);
    let calls = (0..64).map(|_| {
        let client = client.clone();
        async move { client.evaluate(&workflow_started()).await }
    });
    for verdict in futures::future::join_all(calls).await {
        assert_eq!(verdict.unwrap().verdict, Verdict::Allow);
    }
    let log = core.log().await;
    let bootstraps: Vec<_> = log
        .iter()
        .filter(|e| e.path == "/api/v2/auth/bootstrap")
        .collect();
    assert_eq!(bootstraps.len(), 1, "one bootstrap for 64 evaluations");
    assert!(
        !bootstraps[0]
            .headers
            .contains_key("x-openbox-agent-assertion")
    );
    let evaluations: Vec<_> = log
        .iter()
        .filter(|e| e.path == "/api/v2/governance/evaluate")
        .collect();
    assert_eq!(evaluations.len(), 64);
    assert!(
        evaluations.iter().all(|e| e.status == 200),
        "signed with Core's ids"
    );

    let stranger = key_only(&new_rsa_key_pem());
    match stranger.validate().await {
        Err(OpenBoxError::Config(ConfigError::InvalidOption { option, reason })) => {
            assert_eq!(option, "okta_agent_private_key");
            assert!(
                reason.contains("does not match the selected Okta credential"),
                "{reason}"
            );
        }
        other => panic!("another key must not start: {other:?}"),
    }
    let error = stranger.evaluate(&workflow_started()).await.unwrap_err();
    assert!(
        matches!(error, GovernanceApiError::IdentityBootstrap(_)),
        "{error:?}"
    );
    assert!(matches!(
        stranger.decide(&workflow_started()).await,
        Decision::Halt(_)
    ));
    let signed_by_stranger = core.log().await.len() - log.len();
    assert_eq!(
        signed_by_stranger, 3,
        "three bootstrap requests, nothing signed"
    );

    // A Core that has no Okta identity: no bootstrap route.
    let plain = TestCore::start("").await;
    let config = openbox_tests::core::config_builder_for(
        &plain.core.url(),
        ErrorPolicy::FailOpen,
        Duration::from_secs(5),
    )
    .okta_agent_private_key(&pem)
    .build()
    .unwrap();
    let error = CoreClient::new(config)
        .unwrap()
        .validate()
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("okta_agent_private_key"),
        "{error}"
    );
    assert!(
        format!("{error:?}").contains("does not support"),
        "{error:?}"
    );
}

/// The workload identity's token is refreshed once, however many evaluations need it at that
/// moment; a Core without it (404) keeps the client on `/api/v1` and is asked again only after
/// a minute.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workload_token_refresh_under_64_concurrent_evaluations_makes_one_exchange() {
    use openbox_tests::identity::{new_rsa_key_pem, workload_config, workload_registration};

    let pem = new_rsa_key_pem();
    // 36 s tokens are replaced 30 s before they expire: after 6 s.
    let core = TestCore::start_workload(workload_registration(&pem, 36)).await;
    let client = CoreClient::new(workload_config(
        &core.core.url(),
        ErrorPolicy::FailOpen,
        &pem,
    ))
    .unwrap();
    let burst = |client: &CoreClient| {
        let calls = (0..64).map(|_| {
            let client = client.clone();
            async move { client.evaluate(&workflow_started()).await }
        });
        futures::future::join_all(calls)
    };
    for verdict in burst(&client).await {
        assert_eq!(verdict.unwrap().verdict, Verdict::Allow);
    }
    assert_eq!(
        core.core.workload_token_exchanges(),
        1,
        "one exchange for the first 64"
    );
    tokio::time::sleep(Duration::from_millis(6_500)).await;
    for verdict in burst(&client).await {
        assert_eq!(verdict.unwrap().verdict, Verdict::Allow);
    }
    assert_eq!(
        core.core.workload_token_exchanges(),
        2,
        "one refresh for the next 64"
    );
    let log = core.log().await;
    assert_eq!(
        log.iter()
            .filter(|e| e.path == "/api/v3/auth/bootstrap")
            .count(),
        1
    );
    assert_eq!(
        log.iter()
            .filter(|e| e.path == "/api/v3/governance/evaluate" && e.status == 200)
            .count(),
        128
    );

    let plain = TestCore::start("").await;
    let client = CoreClient::new(workload_config(
        &plain.core.url(),
        ErrorPolicy::FailOpen,
        &pem,
    ))
    .unwrap();
    for verdict in burst(&client).await {
        assert_eq!(verdict.unwrap().verdict, Verdict::Allow);
    }
    let log = plain.log().await;
    assert_eq!(
        log.iter()
            .filter(|e| e.path == "/api/v3/auth/bootstrap")
            .count(),
        1,
        "asked once"
    );
    assert_eq!(
        log.iter()
            .filter(|e| e.path == "/api/v1/governance/evaluate")
            .count(),
        64
    );
}
