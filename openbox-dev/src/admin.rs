//! The dev Core's own HTTP API under `/api/dev/`: approvals, events, rules, faults. Not part of
//! the Core contract; it is what the CLI and the web page use.
//!
//! | Method and path | Does |
//! |---|---|
//! | `GET /api/dev/approvals` | all approval requests, newest first |
//! | `POST /api/dev/approvals/{id}/approve` | approve (optional body `{"reason", "by"}`) |
//! | `POST /api/dev/approvals/{id}/reject` | reject (optional body `{"reason", "by"}`) |
//! | `GET /api/dev/events?after=<seq>&limit=<n>` | logged requests still in memory, oldest first |
//! | `GET /api/dev/events?tail=<n>` | the newest `n` of them, oldest first |
//! | `GET /api/dev/rules` | the active rules file |
//! | `POST /api/dev/rules/reload` | re-read the rules file (the old rules stay on error) |
//! | `GET /api/dev/faults`, `PUT /api/dev/faults` | fault injection settings |
//! | `POST /api/dev/transitions` | prepare an identity transition (`{"to": "okta_ai_agent"}` or `{"to": "workload"}`): its id and challenge |
//! | `GET /api/dev/health` | liveness |
//!
//! The web page and its live stream are in [`crate::web`].

use std::sync::Arc;

use axum::extract::{Path, Query, State as Extract};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::approvals::DecideError;
use crate::faults::Faults;
use crate::rules::RuleSet;
use crate::server::State;

type Shared = Arc<State>;

pub(crate) fn router(state: Shared) -> Router {
    Router::new()
        .route(
            "/api/dev/health",
            get(|| async { Json(json!({"ok": true})) }),
        )
        .route("/api/dev/approvals", get(list_approvals))
        .route("/api/dev/approvals/{id}/approve", post(approve))
        .route("/api/dev/approvals/{id}/reject", post(reject))
        .route("/api/dev/events", get(events))
        .route("/api/dev/rules", get(rules))
        .route("/api/dev/rules/reload", post(reload_rules))
        .route("/api/dev/faults", get(get_faults).put(put_faults))
        .route("/api/dev/transitions", post(prepare_transition))
        .with_state(state.clone())
        .merge(crate::web::router(state))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TransitionRequest {
    to: crate::transitions::TransitionTarget,
}

async fn prepare_transition(
    Extract(state): Extract<Shared>,
    Json(request): Json<TransitionRequest>,
) -> Json<Value> {
    Json(json!(state.transitions.prepare(request.to)))
}

async fn list_approvals(Extract(state): Extract<Shared>) -> Json<Value> {
    Json(json!(state.approvals.list()))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Decision {
    reason: Option<String>,
    by: Option<String>,
    /// A rejection's patch: the input the run restarts with.
    patch: Option<DecisionPatch>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DecisionPatch {
    /// Required, even as `null` (the same input).
    new_input: Value,
}

fn decide(state: &State, id: &str, approve: bool, body: Option<Json<Decision>>) -> Response {
    let Decision { reason, by, patch } = body.map(|Json(d)| d).unwrap_or_default();
    let by = by.as_deref().unwrap_or("api");
    let decided = match (approve, patch) {
        (true, Some(_)) => {
            let error = "a patch goes with a rejection: it names the input to restart with";
            return (StatusCode::BAD_REQUEST, Json(json!({ "error": error }))).into_response();
        }
        (false, Some(DecisionPatch { new_input })) => {
            state.approvals.reject_with_patch(id, by, reason, new_input)
        }
        (approve, None) => state.approvals.decide(id, approve, by, reason),
    };
    match decided {
        Ok(approval) => Json(json!(approval)).into_response(),
        Err(e) => {
            let status = match e {
                DecideError::NotFound(_) => StatusCode::NOT_FOUND,
                DecideError::AlreadyDecided(_) | DecideError::Expired(_) => StatusCode::CONFLICT,
            };
            (status, Json(json!({"error": e.to_string()}))).into_response()
        }
    }
}

async fn approve(
    Extract(state): Extract<Shared>,
    Path(id): Path<String>,
    body: Option<Json<Decision>>,
) -> Response {
    decide(&state, &id, true, body)
}

async fn reject(
    Extract(state): Extract<Shared>,
    Path(id): Path<String>,
    body: Option<Json<Decision>>,
) -> Response {
    decide(&state, &id, false, body)
}

#[derive(Debug, Deserialize)]
struct EventsQuery {
    #[serde(default)]
    after: u64,
    limit: Option<usize>,
    tail: Option<usize>,
}

async fn events(Extract(state): Extract<Shared>, Query(q): Query<EventsQuery>) -> Json<Value> {
    match q.tail {
        Some(n) => Json(json!(state.log.tail(n))),
        None => Json(json!(state.log.recent(q.after, q.limit.unwrap_or(1000)))),
    }
}

fn describe_rules(state: &State, rules: &RuleSet) -> Value {
    json!({
        "path": state.rules_path.as_ref().map(|p| p.display().to_string()),
        "source": rules.source(),
        "rules": rules.rules().iter().map(|r| json!({"name": r.name, "verdict": r.verdict})).collect::<Vec<_>>(),
    })
}

async fn rules(Extract(state): Extract<Shared>) -> Json<Value> {
    Json(describe_rules(&state, &state.rules()))
}

async fn reload_rules(Extract(state): Extract<Shared>) -> Response {
    let Some(path) = state.rules_path.clone() else {
        return (
            StatusCode::CONFLICT,
            Json(json!({"error": "the dev Core was started without a rules file"})),
        )
            .into_response();
    };
    match RuleSet::load(&path) {
        Ok(rules) => {
            let answer = describe_rules(&state, &rules);
            state.set_rules(rules);
            tracing::info!(path = %path.display(), "rules reloaded");
            Json(answer).into_response()
        }
        Err(e) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({"error": e.to_string()})),
        )
            .into_response(),
    }
}

async fn get_faults(Extract(state): Extract<Shared>) -> Json<Faults> {
    Json(state.faults.get())
}

async fn put_faults(Extract(state): Extract<Shared>, Json(faults): Json<Faults>) -> Response {
    match state.faults.set(faults.clone()) {
        Ok(()) => Json(faults).into_response(),
        Err(e) => (StatusCode::UNPROCESSABLE_ENTITY, Json(json!({"error": e}))).into_response(),
    }
}
