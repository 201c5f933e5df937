//! The three endpoints : key check, evaluate, approval poll.

use std::collections::BTreeMap;
use std::time::SystemTime;

use axum::body::Body;
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::{Request, Response, StatusCode, header};
use serde_json::{Value, json};

use crate::approvals::{ApprovalKey, ApprovalState};
use crate::event_log::{LoggedRequest, mask_header};
use crate::faults::FaultAction;
use crate::server::{ResetConnection, State};

/// Path of the key check.
pub const VALIDATE_PATH: &str = "/api/v1/auth/validate";
/// Path of evaluations.
pub const EVALUATE_PATH: &str = "/api/v1/governance/evaluate";
/// Path of approval polls.
pub const APPROVAL_PATH: &str = "/api/v1/governance/approval";

/// The prefix of the routes of the Okta agent identity (agent identity v2).
const V2_PREFIX: &str = "/api/v2/";
/// The prefix of the routes of the workload identity (agent identity v3).
const V3_PREFIX: &str = "/api/v3/";
/// The workload identity's bootstrap document.
const V3_BOOTSTRAP_PATH: &str = "/api/v3/auth/bootstrap";
/// The Okta transition proof.
const OKTA_TRANSITION_PATH: &str = "/api/v2/auth/transition-proof";
/// A workload transition's document.
const WORKLOAD_TRANSITION_BOOTSTRAP_PATH: &str = "/api/v3/auth/workload-transition/bootstrap";

/// The Okta agent's bootstrap document.
const BOOTSTRAP_PATH: &str = "/api/v2/auth/bootstrap";

/// Which contract endpoint a request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `GET /api/v1/auth/validate`
    Validate,
    /// `POST /api/v1/governance/evaluate`
    Evaluate,
    /// `POST /api/v1/governance/approval`
    Approval,
    /// `GET /api/v2/auth/bootstrap` (the Okta agent's ids, for an SDK holding only its key) or
    /// `GET /api/v3/auth/bootstrap` (the workload identity's service account).
    Bootstrap,
    /// `POST /api/v2/auth/transition-proof`, `GET /api/v3/auth/workload-transition/bootstrap`,
    /// `POST /api/v3/auth/workload-transition/proof`: proofs of a candidate identity.
    Transition,
    /// `POST /realms/openbox-dev/protocol/openid-connect/token`: the workload identity's token
    /// endpoint (no API key: a client assertion).
    Token,
}

impl Endpoint {
    /// The endpoint `req` is for, if any, on the `/api/v1` or the `/api/v2` routes.
    pub fn of<B>(req: &Request<B>) -> Option<Self> {
        let path = req.uri().path();
        let v1 = match path
            .strip_prefix(V2_PREFIX)
            .or_else(|| path.strip_prefix(V3_PREFIX))
        {
            Some(rest) => format!("/api/v1/{rest}"),
            None => path.to_owned(),
        };
        match (req.method().as_str(), v1.as_str()) {
            ("GET", "/api/v1/auth/bootstrap") if path != "/api/v1/auth/bootstrap" => {
                Some(Endpoint::Bootstrap)
            }
            ("POST", crate::workload::TOKEN_PATH) => Some(Endpoint::Token),
            ("POST", "/api/v1/auth/transition-proof") if path == OKTA_TRANSITION_PATH => {
                Some(Endpoint::Transition)
            }
            ("GET", "/api/v1/auth/workload-transition/bootstrap")
            | ("POST", "/api/v1/auth/workload-transition/proof")
                if path.starts_with(V3_PREFIX) =>
            {
                Some(Endpoint::Transition)
            }
            ("GET", VALIDATE_PATH) => Some(Endpoint::Validate),
            ("POST", EVALUATE_PATH) => Some(Endpoint::Evaluate),
            ("POST", APPROVAL_PATH) => Some(Endpoint::Approval),
            _ => None,
        }
    }
}

/// What one request produced, before it is logged and sent.
struct Answer {
    status: u16,
    body: Value,
    raw: Option<&'static str>,
    rule: Option<String>,
    fault: Option<&'static str>,
    /// An answered evaluation's event id, remembered so a repeat is recognised.
    event_id: Option<String>,
    /// The first delivery of this event.
    repeat_of: Option<u64>,
}

impl Answer {
    fn json(status: u16, body: Value) -> Self {
        Answer {
            status,
            body,
            raw: None,
            rule: None,
            fault: None,
            event_id: None,
            repeat_of: None,
        }
    }
}

/// The route version and, with an Okta agent configured, its assertion: `Some` is the answer
/// refusing the request. Without one, the `/api/v2` routes do not exist (as on a Core that has
/// no Okta identity); with one, the agent speaks `/api/v2` only.
fn okta_refusal(state: &State, parts: &hyper::http::request::Parts, body: &[u8]) -> Option<Answer> {
    let path = parts.uri.path();
    if path.starts_with(V3_PREFIX) {
        return None;
    }
    let v2 = path.starts_with(V2_PREFIX);
    let Some(okta) = &state.okta else {
        return v2.then(|| {
            Answer::json(
                404,
                json!({"error": "the /api/v2 routes need an Okta agent (--okta-agent)"}),
            )
        });
    };
    if path == BOOTSTRAP_PATH {
        // The API key alone: the document is what the SDK needs before it can sign.
        return None;
    }
    let refuse = |code: &str| {
        // Like an unauthenticated one, a refused request's body is not kept.
        Answer::json(
            401,
            json!({"error": "agent assertion rejected", "reason_code": code}),
        )
    };
    if !v2 {
        // During a rolling change the API key alone stays accepted: workers not yet restarted
        // with the new identity keep working.
        return (state.transitions.okta_active() && !state.transitions.rolling())
            .then(|| refuse("identity_method_mismatch"));
    }
    if !state.transitions.okta_active() {
        return Some(refuse("identity_ineligible"));
    }
    let assertion = header_text(&parts.headers, crate::okta::ASSERTION_HEADER);
    let api_key = crate::server::bearer_key(parts.headers.get(header::AUTHORIZATION)).unwrap_or("");
    let now = chrono::Utc::now()
        .timestamp()
        .saturating_add(state.faults.get().clock_offset_seconds);
    okta.check(
        parts.method.as_str(),
        path,
        assertion.as_deref(),
        api_key,
        body,
        now,
    )
    .err()
    .map(refuse)
}

/// `http://<host>` of a request: where the dev Core was reached, for the issuer it advertises.
fn base_of(parts: &hyper::http::request::Parts) -> String {
    let host = header_text(&parts.headers, "host").unwrap_or_else(|| "127.0.0.1".into());
    format!("http://{host}")
}

/// With the workload identity offered, a `/api/v3` request's token; without it, the `/api/v3`
/// routes do not exist. `Some` is the answer refusing the request.
fn workload_refusal(state: &State, parts: &hyper::http::request::Parts) -> Option<Answer> {
    let path = parts.uri.path();
    if !path.starts_with(V3_PREFIX) {
        return None;
    }
    let Some(workload) = state
        .workload
        .as_ref()
        .filter(|_| state.transitions.workload_active())
    else {
        return Some(Answer::json(
            404,
            json!({"error": "the /api/v3 routes need an active workload identity (--workload)"}),
        ));
    };
    if path == V3_BOOTSTRAP_PATH {
        return None;
    }
    let token = header_text(&parts.headers, crate::workload::TOKEN_HEADER);
    let now = chrono::Utc::now().timestamp();
    let expire_all = state.faults.get().expire_workload_tokens;
    workload
        .check_token(token.as_deref(), now, expire_all)
        .err()
        .map(|code| {
            Answer::json(
                401,
                json!({"error": "workload token rejected", "reason_code": code}),
            )
        })
}

/// The answer to a transition route: a proof checked against the candidate identity (the one
/// registered), or a workload transition's document.
fn transition_answer(
    state: &State,
    parts: &hyper::http::request::Parts,
    body: &[u8],
) -> (u16, Value) {
    use crate::transitions::TransitionTarget;
    let path = parts.uri.path();
    let now = chrono::Utc::now()
        .timestamp()
        .saturating_add(state.faults.get().clock_offset_seconds);
    let not_found = (404, json!({"error": "no such pending transition"}));
    let invalid = |code: &str| {
        (
            401,
            json!({"error": "transition proof rejected", "reason_code": code}),
        )
    };
    let transitions = &state.transitions;
    if path == OKTA_TRANSITION_PATH {
        let Some(okta) = &state.okta else {
            return (404, json!({"error": "no Okta agent (--okta-agent)"}));
        };
        let Some(id) = serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|v| v.get("transition_id")?.as_str().map(str::to_owned))
        else {
            return (400, json!({"error": "expected a body {transition_id}"}));
        };
        let Some(pending) = transitions.pending(&id, TransitionTarget::Okta) else {
            return not_found;
        };
        let assertion = header_text(&parts.headers, crate::okta::ASSERTION_HEADER);
        let api_key =
            crate::server::bearer_key(parts.headers.get(header::AUTHORIZATION)).unwrap_or("");
        let claims =
            match okta.verified_claims("POST", path, assertion.as_deref(), api_key, body, now) {
                Ok(claims) => claims,
                Err(code) => return invalid(code),
            };
        let claim = |k: &str| claims.get(k).and_then(Value::as_str);
        if claim("obx_transition_purpose") != Some("okta_ai_agent")
            || claim("obx_transition_id") != Some(id.as_str())
            || claim("obx_transition_challenge") != Some(pending.challenge.as_str())
        {
            return invalid("transition_proof_invalid");
        }
        transitions.proven(&id);
        return (200, json!({"transition_id": id, "status": "proven"}));
    }
    let Some(workload) = &state.workload else {
        return (404, json!({"error": "no workload identity (--workload)"}));
    };
    let base = base_of(parts);
    if path == WORKLOAD_TRANSITION_BOOTSTRAP_PATH {
        let id = url::form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
            .find(|(k, _)| k == "transition_id")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default();
        return match transitions.pending(&id, TransitionTarget::Workload) {
            Some(_) => (200, workload.transition_document(&base, &id)),
            None => not_found,
        };
    }
    let proof: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let text = |k: &str| proof.get(k).and_then(Value::as_str).unwrap_or("");
    let id = text("transition_id");
    if transitions
        .pending(id, TransitionTarget::Workload)
        .is_none()
    {
        return not_found;
    }
    let endpoint = format!("{base}{}", crate::workload::TOKEN_PATH);
    if workload.verify_assertion(text("client_assertion"), &endpoint, now) {
        transitions.proven(id);
        (200, json!({"transition_id": id, "status": "proven"}))
    } else {
        invalid("transition_proof_invalid")
    }
}

/// The token endpoint's answer.
fn token_answer(state: &State, parts: &hyper::http::request::Parts, form: &[u8]) -> Answer {
    let Some(workload) = &state.workload else {
        return Answer::json(404, json!({"error": "no workload identity (--workload)"}));
    };
    if let Some(status) = state.faults.get().token_endpoint_status {
        return Answer {
            fault: Some("token_endpoint_status"),
            ..Answer::json(status, json!({"error": "temporarily_unavailable"}))
        };
    }
    let endpoint = format!("{}{}", base_of(parts), crate::workload::TOKEN_PATH);
    let now = chrono::Utc::now().timestamp();
    match workload.exchange(form, &endpoint, now) {
        Ok(token) => Answer::json(200, token),
        Err((status, error)) => Answer::json(status, json!({"error": error})),
    }
}

/// Handles one contract request. `Err` means: close the connection without answering.
pub async fn handle<B>(
    state: &State,
    endpoint: Endpoint,
    req: Request<B>,
) -> Result<Response<Body>, ResetConnection>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (parts, body) = req.into_parts();
    let time = rfc3339_now();
    let headers: BTreeMap<String, String> = parts
        .headers
        .iter()
        .map(|(k, v)| {
            let name = k.as_str().to_owned();
            let value = mask_header(&name, &String::from_utf8_lossy(v.as_bytes()));
            (name, value)
        })
        .collect();
    // The key first: an unauthenticated body is never read, parsed or kept. The token endpoint
    // is the identity provider's: a client assertion, not the API key, authenticates there.
    if endpoint != Endpoint::Token && !state.key_accepted(parts.headers.get(header::AUTHORIZATION))
    {
        let answer = Answer::json(401, json!({"error": "invalid or missing API key"}));
        return Ok(finish(state, &parts, time, headers, Value::Null, answer, 0));
    }
    let max_body = state.limits.max_body_bytes;
    let bytes = match Limited::new(body, max_body).collect().await {
        Ok(c) => c.to_bytes(),
        Err(e) => {
            let answer = Answer::json(
                413,
                json!({"error": format!("cannot read a body of at most {max_body} bytes: {e}")}),
            );
            return Ok(finish(state, &parts, time, headers, Value::Null, answer, 0));
        }
    };
    if endpoint == Endpoint::Transition {
        // Proofs carry assertions: answered, never kept.
        let (status, answer) = transition_answer(state, &parts, &bytes);
        let answer = Answer::json(status, answer);
        return Ok(finish(state, &parts, time, headers, Value::Null, answer, 0));
    }
    if endpoint == Endpoint::Token {
        // The body holds a client assertion: answered, never kept.
        let answer = token_answer(state, &parts, &bytes);
        return Ok(finish(state, &parts, time, headers, Value::Null, answer, 0));
    }
    let refusal = workload_refusal(state, &parts).or_else(|| okta_refusal(state, &parts, &bytes));
    if let Some(refusal) = refusal {
        return Ok(finish(
            state,
            &parts,
            time,
            headers,
            Value::Null,
            refusal,
            0,
        ));
    }
    if let Some(agent) = &state.agent {
        let path = parts.uri.path();
        let header = |name: &str| header_text(&parts.headers, name);
        if let Err(code) = agent.check(parts.method.as_str(), path, header, &bytes) {
            // Like an unauthenticated one, a request whose signature fails is not kept.
            let answer = Answer::json(
                401,
                json!({"error": "signed request rejected", "reason_code": code}),
            );
            return Ok(finish(state, &parts, time, headers, Value::Null, answer, 0));
        }
    }
    let body: Value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };

    let size = bytes.len();
    let answer = if endpoint == Endpoint::Bootstrap {
        match (&state.okta, &state.workload) {
            (_, Some(workload))
                if parts.uri.path() == V3_BOOTSTRAP_PATH && state.transitions.workload_active() =>
            {
                Answer::json(200, workload.bootstrap_document(&base_of(&parts)))
            }
            (Some(okta), _) if parts.uri.path().starts_with(V2_PREFIX) => {
                Answer::json(200, okta.bootstrap_document())
            }
            _ => Answer::json(404, json!({"error": "no such identity here"})),
        }
    } else if endpoint == Endpoint::Validate {
        match state.faults.get().validate_status {
            Some(status) => Answer {
                fault: Some("validate_status"),
                ..Answer::json(status, json!({"error": "injected"}))
            },
            None => Answer::json(200, json!({"valid": true})),
        }
    } else {
        let (delay, action) = state.faults.next();
        if !delay.is_zero() {
            crate::faults::FaultInjector::wait(delay).await;
        }
        match action {
            FaultAction::Reset => {
                let answer = Answer {
                    fault: Some("reset"),
                    ..Answer::json(0, Value::Null)
                };
                finish(state, &parts, time, headers, body, answer, size);
                return Err(ResetConnection);
            }
            FaultAction::Error(status) => Answer {
                fault: action.name(),
                ..Answer::json(status, json!({"error": "injected fault"}))
            },
            FaultAction::Garbage => Answer {
                raw: Some("{\"verdict\": \"al"),
                fault: action.name(),
                ..Answer::json(200, Value::String("{\"verdict\": \"al".into()))
            },
            FaultAction::UnknownVerdict => Answer {
                fault: action.name(),
                ..Answer::json(200, json!({"verdict": "maybe"}))
            },
            FaultAction::None if !body.is_object() => {
                Answer::json(400, json!({"error": "the body must be a JSON object"}))
            }
            FaultAction::None if endpoint == Endpoint::Evaluate => {
                let event_id = header_text(&parts.headers, EVENT_ID_HEADER);
                match event_id
                    .as_deref()
                    .and_then(|id| state.deliveries.first(id))
                {
                    // Delivered before: the same answer, logged as a repeat.
                    Some((seq, response)) => Answer {
                        repeat_of: Some(seq),
                        ..Answer::json(200, response)
                    },
                    None => Answer {
                        event_id,
                        ..evaluate(state, &body, recorded_only(&parts.headers))
                    },
                }
            }
            FaultAction::None => approval(state, &body),
        }
    };
    Ok(finish(state, &parts, time, headers, body, answer, size))
}

/// Header with which the SDK marks an evaluation whose verdict it will record, not enforce.
pub const ENFORCEMENT_HEADER: &str = "x-openbox-enforcement";

/// Header naming an evaluation uniquely (sent by an SDK with a spool).
pub const EVENT_ID_HEADER: &str = "x-openbox-event-id";
/// Header marking an evaluation delivered late, after an outage (`late`): its verdict is
/// recorded by the SDK, not enforced.
pub const DELIVERY_HEADER: &str = "x-openbox-delivery";

fn header_text(headers: &hyper::HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Whether header `name` is `value` (ASCII case-insensitive).
fn header_is(headers: &hyper::HeaderMap, name: &str, value: &str) -> bool {
    headers
        .get(name)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(value.as_bytes()))
}

/// Whether the SDK will record this evaluation's verdict without enforcing it: observed (shadow
/// mode) or delivered late from its spool. Its verdict is answered as usual, but no approval
/// request is opened for it, since nobody is waiting on one.
fn recorded_only(headers: &hyper::HeaderMap) -> bool {
    header_is(headers, ENFORCEMENT_HEADER, "observe") || header_is(headers, DELIVERY_HEADER, "late")
}

fn evaluate(state: &State, body: &Value, observed: bool) -> Answer {
    let rules = state.rules();
    let Some(rule) = rules.find(body) else {
        return Answer::json(200, json!({"verdict": "allow"}));
    };
    let mut response = rule.response();
    if rule.verdict == "require_approval"
        && !observed
        && let Some(key) = ApprovalKey::from_body(body)
    {
        let expires_in = rule
            .approval_expires_in
            .or(state.approval_expires_in(&rules));
        let reason = response
            .get("reason")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let subject = approval_subject(body, &rule.name);
        let opened = state
            .approvals
            .open(key, &subject, body, &rule.name, reason, expires_in);
        let approval = opened.approval;
        match &approval.state {
            ApprovalState::Pending => {}
            // Decided: answer the re-evaluation with the decision.
            ApprovalState::Approved { .. } | ApprovalState::Rejected { .. } => {
                response = approval
                    .poll_response()
                    .as_object()
                    .cloned()
                    .unwrap_or_default();
            }
        }
        response.insert("approval_id".into(), json!(approval.id));
        if let Some(at) = &approval.expires_at {
            response.insert("approval_expiration_time".into(), json!(at));
        }
    }
    Answer {
        rule: Some(rule.name.clone()),
        ..Answer::json(200, Value::Object(response))
    }
}

/// What within an activity asks for approval: the event, or for a hook evaluation the
/// operation (type, stage, name and target); and the rule that asks.
fn approval_subject(body: &Value, rule: &str) -> String {
    let event = body
        .get("event_type")
        .and_then(Value::as_str)
        .unwrap_or("?");
    if body.get("hook_trigger") != Some(&Value::Bool(true)) {
        return format!("{event} / rule {rule}");
    }
    let span = &body["spans"][0];
    let field = |k: &str| span.get(k).and_then(Value::as_str).unwrap_or("");
    let target = ["http_url", "db_statement", "file_path", "function"]
        .iter()
        .map(|k| field(k))
        .find(|v| !v.is_empty())
        .unwrap_or("");
    format!(
        "{} {} {} {target} / rule {rule}",
        field("hook_type"),
        field("stage"),
        field("name")
    )
}

fn approval(state: &State, body: &Value) -> Answer {
    let Some(key) = ApprovalKey::from_body(body) else {
        return Answer::json(
            400,
            json!({"error": "workflow_id, run_id and activity_id are required"}),
        );
    };
    match state.approvals.find(&key) {
        Some(approval) => Answer::json(200, approval.poll_response()),
        None => Answer::json(
            404,
            json!({"error": "no approval request for this activity"}),
        ),
    }
}

fn finish(
    state: &State,
    parts: &hyper::http::request::Parts,
    time: String,
    headers: BTreeMap<String, String>,
    body: Value,
    answer: Answer,
    body_bytes: usize,
) -> Response<Body> {
    let payload: Vec<u8> = match answer.raw {
        Some(raw) => raw.as_bytes().to_vec(),
        None => serde_json::to_vec(&answer.body).unwrap_or_default(),
    };
    let size = body_bytes + payload.len();
    let remember = answer
        .event_id
        .filter(|_| answer.status == 200)
        .map(|id| (id, answer.body.clone()));
    let seq = state.log.record_sized(
        LoggedRequest {
            seq: 0,
            time,
            method: parts.method.to_string(),
            path: parts.uri.path().to_owned(),
            headers,
            body,
            status: answer.status,
            response: answer.body,
            rule: answer.rule,
            fault: answer.fault.map(str::to_owned),
            repeat_of: answer.repeat_of,
        },
        size,
    );
    if let Some((id, response)) = remember {
        state.deliveries.remember(&id, seq, &response);
    }
    Response::builder()
        .status(StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(payload))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

fn rfc3339_now() -> String {
    chrono::DateTime::<chrono::Utc>::from(SystemTime::now())
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
