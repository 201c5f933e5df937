//! The Okta AI-agent identity (agent identity v2) and the workload identity (v3) end to end: a worker whose every request to
//! Core carries an RS256 assertion runs governed against a dev Core that verifies them, and
//! each way an assertion can be refused — a key Core does not know, another audience, a clock
//! past the lifetime, a body changed on the way, a replayed request — stops the operation under
//! both failure policies with Core's reason code.

use openbox::{ErrorPolicy, OpenBoxError, OpenBoxPlugin, SigningRejection};
use openbox_dev::Faults;
use openbox_dev::okta::OktaAgentRegistration;
use openbox_tests::core::TestCore;
use openbox_tests::fixtures::{Plan, Step, runs_of};
use openbox_tests::harness::{Harness, event_types, outcome, result_of};
use openbox_tests::history::{failure_types, history_json, root_message};
use openbox_tests::http_server::TestHttpServer;
use openbox_tests::identity::{
    AUDIENCE, Tamper, TamperingProxy, new_rsa_key_pem, okta_config, registration_of,
    workload_config, workload_registration,
};
use openbox_tests::unique;

/// The registration of the agent configured with `pem`.
fn registration_for(pem: &str) -> OktaAgentRegistration {
    let config = okta_config("http://127.0.0.1:1", ErrorPolicy::FailClosed, pem);
    registration_of(config.okta_agent_identity().expect("an Okta identity"))
}

/// Runs an echo of `tag` and a fetch from `server` under a worker with `config`, which must
/// start; returns the workflow id and the events Core answered for it.
async fn echo_and_fetch(
    h: &Harness,
    config: openbox::OpenBoxConfig,
    server: &TestHttpServer,
    tag: &str,
) -> (String, Vec<openbox_dev::LoggedRequest>) {
    let plugin = OpenBoxPlugin::builder()
        .config(config)
        .build()
        .await
        .expect("the identity starts");
    let wid = unique(tag);
    let result = h
        .run(Some(plugin), async {
            let plan = Plan {
                steps: vec![
                    Step::Echo(tag.into()),
                    Step::Fetch(format!("{}/page", server.url)),
                ],
                ..Plan::default()
            };
            result_of(&h.start_plan(&wid, plan).await).await
        })
        .await;
    assert_eq!(outcome(result).results, [tag, "fetched 200"]);
    let events = h.events_of(&wid).await;
    (wid, events)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_okta_agent_is_governed_on_the_v2_routes_and_a_wrong_key_does_not_start() {
    let pem = new_rsa_key_pem();
    let server = TestHttpServer::start().await;
    let h = Harness::with_core(TestCore::start_okta(registration_for(&pem)).await).await;
    let url = h.core.core.url();

    let stranger = new_rsa_key_pem();
    let refused = OpenBoxPlugin::builder()
        .config(okta_config(&url, ErrorPolicy::FailOpen, &stranger))
        .build()
        .await;
    match refused {
        Err(OpenBoxError::SignatureRejected { rejection, .. }) => {
            assert_eq!(rejection, SigningRejection::AssertionSignatureInvalid)
        }
        other => panic!("a key Core does not know must not start a worker: {other:?}"),
    }

    let config = okta_config(&url, ErrorPolicy::FailClosed, &pem);
    let (wid, events) = echo_and_fetch(&h, config, &server, "v2").await;
    assert_eq!(
        event_types(&events),
        [
            "WorkflowStarted",
            "ActivityStarted",
            "ActivityCompleted",
            "ActivityStarted",
            "hook:ActivityStarted",
            "hook:ActivityStarted",
            "ActivityCompleted",
            "WorkflowCompleted"
        ]
    );
    for event in &events {
        assert_eq!(event.status, 200, "{event:?}");
        assert_eq!(event.path, "/api/v2/governance/evaluate");
        assert_eq!(
            event
                .headers
                .get("x-openbox-agent-assertion")
                .map(String::as_str),
            Some("[REDACTED]"),
            "every request carries an assertion (and the log does not keep it)"
        );
    }
    let all = h.core.log().await;
    assert!(
        all.iter()
            .any(|e| e.path == "/api/v2/auth/validate" && e.status == 200),
        "the start-up check went to the v2 route"
    );
    h.assert_no_key_in_histories(std::slice::from_ref(&wid));
    let history = history_json(&h.env.temporal, &wid);
    let key_body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    assert!(
        !history.contains(&key_body[..60]),
        "no private key in the history"
    );
}

/// A one-echo workflow under a worker with `config` (its key not checked at start) is stopped
/// with a `GovernanceHalt` whose message says `said`, and the echo never runs.
async fn assert_stopped(h: &Harness, config: openbox::OpenBoxConfig, what: &str, said: &str) {
    let plugin = OpenBoxPlugin::builder()
        .config(config)
        .skip_key_check()
        .build()
        .await
        .expect("plugin builds");
    let wid = unique("identity-refused");
    let result = h
        .run(Some(plugin), async {
            let plan = Plan {
                steps: vec![Step::Echo("never".into())],
                ..Plan::default()
            };
            result_of(&h.start_plan(&wid, plan).await).await
        })
        .await;
    let error = result.expect_err(&format!("{what}: the workflow is stopped"));
    assert_eq!(
        failure_types(&error).last().map(String::as_str),
        Some("GovernanceHalt"),
        "{what}: {error:?}"
    );
    let message = root_message(&error);
    assert!(message.contains(said), "{what}: {message}");
    assert_eq!(runs_of(&wid, "echo"), 0, "{what}: echo never ran");
}

/// How one refusal is provoked.
enum Provoke {
    /// Core registers the agent this way instead.
    Registration(Box<dyn Fn(&mut OktaAgentRegistration)>),
    /// Core's clock runs this many seconds ahead.
    ClockAhead(i64),
    /// A proxy between the worker and Core does this.
    Proxy(Tamper),
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_refused_assertion_stops_the_operation_under_both_policies() {
    let pem = new_rsa_key_pem();
    let other_key = registration_for(&new_rsa_key_pem()).jwks;
    let cases: Vec<(&str, Provoke, SigningRejection)> = vec![
        (
            "bad signature",
            Provoke::Registration(Box::new(move |r| r.jwks = other_key.clone())),
            SigningRejection::AssertionSignatureInvalid,
        ),
        (
            "wrong audience",
            Provoke::Registration(Box::new(|r| {
                r.assertion_audience = format!("{AUDIENCE}/other")
            })),
            SigningRejection::BindingInvalid,
        ),
        (
            "expired",
            Provoke::ClockAhead(120),
            SigningRejection::ProofExpired,
        ),
        (
            "body changed",
            Provoke::Proxy(Tamper::Body),
            SigningRejection::BindingInvalid,
        ),
        (
            "replayed",
            Provoke::Proxy(Tamper::Replay),
            SigningRejection::ProofReplayed,
        ),
    ];
    for (name, provoke, rejection) in cases {
        let mut registration = registration_for(&pem);
        if let Provoke::Registration(change) = &provoke {
            change(&mut registration);
        }
        let h = Harness::with_core(TestCore::start_okta(registration).await).await;
        if let Provoke::ClockAhead(seconds) = &provoke {
            h.core
                .core
                .set_faults(Faults {
                    clock_offset_seconds: *seconds,
                    ..Faults::default()
                })
                .expect("valid faults");
        }
        let proxy = match &provoke {
            Provoke::Proxy(tamper) => {
                Some(TamperingProxy::start(&h.core.core.url(), *tamper).await)
            }
            _ => None,
        };
        let url = proxy
            .as_ref()
            .map_or_else(|| h.core.core.url(), |p| p.url.clone());
        for policy in [ErrorPolicy::FailOpen, ErrorPolicy::FailClosed] {
            let config = okta_config(&url, policy, &pem);
            let what = format!("{name}, {policy:?}");
            assert_stopped(&h, config, &what, rejection.code()).await;
        }
        let seen = h.core.log().await;
        let replayed = matches!(provoke, Provoke::Proxy(Tamper::Replay));
        assert!(
            seen.iter().any(|e| e.status == 401)
                && (replayed || seen.iter().all(|e| e.status == 401)),
            "{name}: Core refused what it was sent"
        );
    }
}

/// With only its private key, a worker takes its ids from Core's bootstrap document and runs
/// governed; with a key Core did not select, nothing is signed and the workflow is stopped under
/// both policies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_okta_key_alone_bootstraps_and_another_key_is_stopped() {
    let pem = new_rsa_key_pem();
    let h = Harness::with_core(TestCore::start_okta(registration_for(&pem)).await).await;
    let url = h.core.core.url();
    let key_only = |pem: &str, policy| {
        openbox_tests::core::config_builder_for(&url, policy, std::time::Duration::from_secs(5))
            .okta_agent_private_key(pem)
            .build()
            .expect("the key alone is a valid configuration")
    };
    let plugin = OpenBoxPlugin::builder()
        .config(key_only(&pem, ErrorPolicy::FailClosed))
        .build()
        .await
        .expect("the selected key starts");
    let wid = unique("okta-bootstrap");
    let plan = Plan {
        steps: vec![Step::Echo("bootstrapped".into())],
        ..Plan::default()
    };
    let result = h
        .run(Some(plugin), async {
            result_of(&h.start_plan(&wid, plan.clone()).await).await
        })
        .await;
    assert_eq!(outcome(result).results, ["bootstrapped"]);
    let log = h.core.log().await;
    assert_eq!(
        log.iter()
            .filter(|e| e.path == "/api/v2/auth/bootstrap")
            .count(),
        1,
        "one bootstrap per worker"
    );
    let events = h.events_of(&wid).await;
    assert_eq!(events.len(), 4, "{:?}", event_types(&events));
    assert!(
        events
            .iter()
            .all(|e| e.status == 200 && e.path == "/api/v2/governance/evaluate")
    );

    let stranger = new_rsa_key_pem();
    for policy in [ErrorPolicy::FailOpen, ErrorPolicy::FailClosed] {
        let what = format!("another key, {policy:?}");
        let said = "does not match the selected Okta credential";
        assert_stopped(&h, key_only(&stranger, policy), &what, said).await;
    }
    let signed_by_stranger = h.core.log().await[log.len()..]
        .iter()
        .filter(|e| e.path != "/api/v2/auth/bootstrap")
        .count();
    assert_eq!(
        signed_by_stranger, 0,
        "nothing is sent signed with a key Core did not select"
    );
}

/// A worker with a workload key against a Core that offers the workload identity: every request
/// goes to `/api/v3` with a token exchanged once at Core's token endpoint — which never sees the
/// API key — and the workflow is governed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workload_identity_is_governed_on_the_v3_routes() {
    let pem = new_rsa_key_pem();
    let server = TestHttpServer::start().await;
    let h =
        Harness::with_core(TestCore::start_workload(workload_registration(&pem, 300)).await).await;
    let config = workload_config(&h.core.core.url(), ErrorPolicy::FailClosed, &pem);
    let (wid, events) = echo_and_fetch(&h, config, &server, "v3").await;
    assert_eq!(events.len(), 8, "{:?}", event_types(&events));
    for event in &events {
        assert_eq!(event.status, 200, "{event:?}");
        assert_eq!(event.path, "/api/v3/governance/evaluate");
        assert_eq!(
            event
                .headers
                .get("x-openbox-workload-token")
                .map(String::as_str),
            Some("[REDACTED]")
        );
    }
    let log = h.core.log().await;
    let token_requests: Vec<_> = log
        .iter()
        .filter(|e| e.path.ends_with("/protocol/openid-connect/token"))
        .collect();
    assert_eq!(
        token_requests.len(),
        1,
        "one exchange while the token is fresh"
    );
    assert_eq!(h.core.core.workload_token_exchanges(), 1);
    assert!(
        !token_requests[0].headers.contains_key("authorization"),
        "the API key never goes to the token endpoint"
    );
    assert!(
        log.iter()
            .any(|e| e.path == "/api/v3/auth/validate" && e.status == 200)
    );
    h.assert_no_key_in_histories(std::slice::from_ref(&wid));
    let history = history_json(&h.env.temporal, &wid);
    let key_body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    assert!(
        !history.contains(&key_body[..60]),
        "no private key in the history"
    );
}

/// Once Core offers the workload identity, an operation without a usable token is stopped
/// under both policies: an expired token, the token endpoint down, a key the identity provider
/// does not know.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_workload_refusal_stops_the_operation_under_both_policies() {
    let pem = new_rsa_key_pem();
    let stranger = new_rsa_key_pem();
    let cases: [(&str, Faults, &str, &str); 3] = [
        (
            "expired token",
            Faults {
                expire_workload_tokens: true,
                ..Faults::default()
            },
            &pem,
            "workload_token_expired",
        ),
        (
            "token endpoint down",
            Faults {
                token_endpoint_status: Some(503),
                ..Faults::default()
            },
            &pem,
            "the token endpoint answered HTTP 503",
        ),
        (
            "unknown key",
            Faults::default(),
            &stranger,
            "the token endpoint answered HTTP 401 (invalid_client)",
        ),
    ];
    for (name, faults, key, said) in cases {
        let h =
            Harness::with_core(TestCore::start_workload(workload_registration(&pem, 300)).await)
                .await;
        h.core.core.set_faults(faults).expect("valid faults");
        for policy in [ErrorPolicy::FailOpen, ErrorPolicy::FailClosed] {
            let config = workload_config(&h.core.core.url(), policy, key);
            assert_stopped(&h, config, &format!("{name}, {policy:?}"), said).await;
        }
        let log = h.core.log().await;
        assert!(
            log.iter()
                .all(|e| !e.path.starts_with("/api/v1") && !e.path.starts_with("/api/v2")),
            "{name}: never downgraded to another route"
        );
    }
}

/// Waits (bounded) until Core has `n` events of `wid`.
async fn until_events(h: &Harness, wid: &str, n: usize) {
    for _ in 0..600 {
        if h.events_of(wid).await.len() >= n {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!(
        "{wid}: Core never saw {n} events: {:?}",
        event_types(&h.events_of(wid).await)
    );
}

/// A fleet moves from the API key to the Okta identity to the workload identity while one
/// workflow runs: each transition is proven with the candidate's key (a proof with another key
/// or another challenge is refused), workers restart with the new settings, and every event of
/// the workflow is governed — on `/api/v1`, then `/api/v2`, then `/api/v3`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_transition_from_api_key_to_okta_to_workload_keeps_a_workflow_governed() {
    use openbox::IdentityTransition;
    use openbox_dev::transitions::TransitionTarget;
    use openbox_tests::core::config_for;
    use openbox_tests::fixtures::PlanWorkflow;
    use temporalio_client::WorkflowSignalOptions;

    let okta_pem = new_rsa_key_pem();
    let workload_pem = new_rsa_key_pem();
    let stranger_pem = new_rsa_key_pem();
    let core = TestCore::start_transitions(
        registration_for(&okta_pem),
        workload_registration(&workload_pem, 300),
    )
    .await;
    let h = Harness::with_core(core).await;
    let url = h.core.core.url();
    let timeout = std::time::Duration::from_secs(5);
    let api_key_only = config_for(&url, ErrorPolicy::FailClosed, timeout);
    let okta = okta_config(&url, ErrorPolicy::FailClosed, &okta_pem);

    // Before its transition, the candidate is not accepted.
    match OpenBoxPlugin::builder().config(okta.clone()).build().await {
        Err(OpenBoxError::SignatureRejected { rejection, .. }) => {
            assert_eq!(rejection, SigningRejection::IdentityIneligible)
        }
        other => panic!("an Okta worker before its transition: {other:?}"),
    }

    let wid = unique("transition");
    let plan = Plan {
        steps: vec![
            Step::Echo("v1".into()),
            Step::AwaitNote,
            Step::Echo("v2".into()),
            Step::AwaitNote,
            Step::Echo("v3".into()),
        ],
        ..Plan::default()
    };
    let plugin = |config| async move {
        OpenBoxPlugin::builder()
            .config(config)
            .build()
            .await
            .expect("the worker starts")
    };

    // The API key alone: the workflow starts and runs its first activity.
    let handle = h
        .run(Some(plugin(api_key_only.clone()).await), async {
            let handle = h.start_plan(&wid, plan).await;
            until_events(&h, &wid, 3).await;
            handle
        })
        .await;

    // API key → Okta: proven by the candidate's key and challenge only.
    let transitions = IdentityTransition::new(api_key_only).unwrap();
    let to_okta = h.core.core.prepare_transition(TransitionTarget::Okta);
    let stranger = okta_config(&url, ErrorPolicy::FailClosed, &stranger_pem);
    let attempts = [
        (
            stranger.okta_agent_identity().unwrap(),
            to_okta.challenge.as_str(),
            SigningRejection::AssertionSignatureInvalid,
        ),
        (
            okta.okta_agent_identity().unwrap(),
            "another challenge",
            SigningRejection::TransitionProofInvalid,
        ),
    ];
    for (candidate, challenge, expected) in attempts {
        match transitions
            .prove_okta(&to_okta.transition_id, challenge, candidate)
            .await
        {
            Err(OpenBoxError::SignatureRejected { rejection, .. }) => {
                assert_eq!(rejection, expected)
            }
            other => panic!("a bad Okta proof: {other:?}"),
        }
    }
    let proven = transitions
        .prove_okta(
            &to_okta.transition_id,
            &to_okta.challenge,
            okta.okta_agent_identity().unwrap(),
        )
        .await
        .expect("the candidate proves the transition");
    assert_eq!(proven["status"], "proven");

    // The Okta identity: the signal and the second activity.
    h.run(Some(plugin(okta.clone()).await), async {
        handle
            .signal(
                PlanWorkflow::note,
                "to okta".to_string(),
                WorkflowSignalOptions::default(),
            )
            .await
            .expect("signal delivered");
        until_events(&h, &wid, 6).await;
    })
    .await;

    // Okta → workload identity: proven by the candidate service account's key only.
    let to_workload = h.core.core.prepare_transition(TransitionTarget::Workload);
    match transitions
        .prove_workload(&to_workload.transition_id, &stranger_pem)
        .await
    {
        Err(OpenBoxError::SignatureRejected { rejection, .. }) => {
            assert_eq!(rejection, SigningRejection::TransitionProofInvalid)
        }
        other => panic!("a workload proof with another key: {other:?}"),
    }
    transitions
        .prove_workload(&to_workload.transition_id, &workload_pem)
        .await
        .expect("the candidate proves the transition");

    // Both identities configured: the workload identity is used now that Core offers it.
    let both = openbox_tests::core::config_builder_for(&url, ErrorPolicy::FailClosed, timeout)
        .okta_agent_private_key(&okta_pem)
        .workload_private_key(&workload_pem)
        .build()
        .unwrap();
    let result = h
        .run(Some(plugin(both).await), async {
            handle
                .signal(
                    PlanWorkflow::note,
                    "to workload".to_string(),
                    WorkflowSignalOptions::default(),
                )
                .await
                .expect("signal delivered");
            result_of(&handle).await
        })
        .await;
    assert_eq!(outcome(result).results, ["v1", "v2", "v3"]);

    let events = h.events_of(&wid).await;
    let seen: Vec<(String, &str, u16)> = event_types(&events)
        .into_iter()
        .zip(&events)
        .map(|(t, e)| (t, &e.path[..7], e.status))
        .collect();
    let expected = [
        ("WorkflowStarted", "/api/v1"),
        ("ActivityStarted", "/api/v1"),
        ("ActivityCompleted", "/api/v1"),
        ("SignalReceived", "/api/v2"),
        ("ActivityStarted", "/api/v2"),
        ("ActivityCompleted", "/api/v2"),
        ("SignalReceived", "/api/v3"),
        ("ActivityStarted", "/api/v3"),
        ("ActivityCompleted", "/api/v3"),
        ("WorkflowCompleted", "/api/v3"),
    ]
    .map(|(t, p)| (t.to_owned(), p, 200));
    assert_eq!(
        seen, expected,
        "every event governed, each on its phase's route"
    );
}

/// A workload token Core refuses is not presented again: the operation it was sent for is
/// stopped, and the next one exchanges a new token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_workload_token_is_replaced_at_the_next_request() {
    let pem = new_rsa_key_pem();
    let h =
        Harness::with_core(TestCore::start_workload(workload_registration(&pem, 300)).await).await;
    let plugin = OpenBoxPlugin::builder()
        .config(workload_config(
            &h.core.core.url(),
            ErrorPolicy::FailClosed,
            &pem,
        ))
        .build()
        .await
        .expect("the workload identity starts");
    let run = |tag: &str| {
        let wid = unique(tag);
        let plugin = plugin.clone();
        let h = &h;
        async move {
            let plan = Plan {
                steps: vec![Step::Echo("once".into())],
                ..Plan::default()
            };
            h.run(Some(plugin), async {
                result_of(&h.start_plan(&wid, plan).await).await
            })
            .await
        }
    };
    assert_eq!(outcome(run("workload-before").await).results, ["once"]);
    assert_eq!(h.core.core.workload_token_exchanges(), 1);
    h.core
        .core
        .set_faults(Faults {
            expire_workload_tokens: true,
            ..Faults::default()
        })
        .expect("valid faults");
    let error = run("workload-revoked")
        .await
        .expect_err("a refused token stops");
    assert!(
        root_message(&error).contains("workload_token_expired"),
        "{}",
        root_message(&error)
    );
    h.core
        .core
        .set_faults(Faults::default())
        .expect("valid faults");
    let before = h.core.core.workload_token_exchanges();
    // The revoked token is gone at Core: presented again, it would stop this run too.
    assert_eq!(outcome(run("workload-after").await).results, ["once"]);
    assert_eq!(
        h.core.core.workload_token_exchanges(),
        before + 1,
        "a new token for the next request"
    );
}
