//! Core's answers: the evaluate response with its guardrails result, and the
//! approval poll.
//!
//! Parsing is lenient about the informational fields (a `risk_score` sent as a string does not
//! make a verdict unreadable) and strict about the verdict itself: an unknown verdict never reads as ALLOW.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::patch::{Patch, PatchRequest};
use super::time::parse_expiration;
use super::verdict::{UnknownVerdict, Verdict};

/// Why a 2xx body from Core could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResponseError {
    /// The body is not JSON (garbage, truncated, HTML error page…).
    #[error("response is not valid JSON: {0}")]
    NotJson(String),
    /// The body is JSON but not an object.
    #[error("response is not a JSON object")]
    NotObject,
    /// Neither `verdict` nor the legacy `action` is present.
    #[error("response has no verdict")]
    MissingVerdict,
    /// The verdict string is not one of the known spellings.
    #[error(transparent)]
    UnknownVerdict(#[from] UnknownVerdict),
}

/// A parsed answer of `POST /api/v1/governance/evaluate`.
#[derive(Debug, Clone, PartialEq)]
pub struct EvaluateResponse {
    /// The decision.
    pub verdict: Verdict,
    /// Human-readable reason, used in error messages.
    pub reason: Option<String>,
    /// Id of the policy that decided.
    pub policy_id: Option<String>,
    /// Risk score (0.0 when absent).
    pub risk_score: f64,
    /// Guardrails outcome, when Core ran guardrails (and sent a non-empty object).
    pub guardrails: Option<GuardrailsResult>,
    /// Id of the approval request Core opened for a REQUIRE_APPROVAL verdict.
    pub approval_id: Option<String>,
    /// Constraints attached to a CONSTRAIN verdict.
    pub constraints: Vec<Value>,
    /// Core's id for this evaluation.
    pub governance_event_id: Option<String>,
    /// The input Core would accept instead, when it came in the allowed shape (see
    /// [`EvaluateResponse::patch_directive`]: it counts only on a BLOCK).
    pub patch: Option<Patch>,
}

impl EvaluateResponse {
    /// What enforcing this verdict would do, as one word: `halted`, `blocked`,
    /// `guardrails_failed`, `approval`, `redacted`, `constrained` or `allowed` (the most severe
    /// first). The label of verdicts that are recorded but not enforced: observed evaluations
    /// and late deliveries.
    pub fn would_have(&self) -> &'static str {
        let guardrails = self.guardrails.as_ref();
        match self.verdict {
            Verdict::Halt => "halted",
            Verdict::Block => "blocked",
            _ if guardrails.is_some_and(|g| !g.validation_passed) => "guardrails_failed",
            Verdict::RequireApproval => "approval",
            _ if guardrails.is_some_and(|g| !g.redacted_input.is_null()) => "redacted",
            Verdict::Constrain => "constrained",
            _ => "allowed",
        }
    }

    /// The patch to restart with: only an exact BLOCK restarts (a HALT ends the run whatever it
    /// carries).
    pub fn patch_directive(&self) -> Option<&Patch> {
        self.patch
            .as_ref()
            .filter(|_| self.verdict == Verdict::Block)
    }

    /// The restart this answer asks for, as the envelope that carries it to the workflow.
    pub fn patch_request(&self, event_type: &str) -> Option<PatchRequest> {
        self.patch_directive().map(|p| {
            PatchRequest::new(
                p,
                event_type,
                self.reason.as_deref(),
                self.governance_event_id.as_deref(),
            )
        })
    }

    /// An ALLOW with nothing else (what the dev Core answers by default).
    pub fn allow() -> Self {
        EvaluateResponse {
            verdict: Verdict::Allow,
            reason: None,
            policy_id: None,
            risk_score: 0.0,
            guardrails: None,
            approval_id: None,
            constraints: Vec::new(),
            governance_event_id: None,
            patch: None,
        }
    }

    /// Parses a response body.
    pub fn from_slice(body: &[u8]) -> Result<Self, ResponseError> {
        let value: Value =
            serde_json::from_slice(body).map_err(|e| ResponseError::NotJson(e.to_string()))?;
        Self::from_value(&value)
    }

    /// Parses an already decoded response body.
    pub fn from_value(value: &Value) -> Result<Self, ResponseError> {
        let obj = value.as_object().ok_or(ResponseError::NotObject)?;
        let verdict = verdict_of(obj)?.ok_or(ResponseError::MissingVerdict)?;
        Ok(EvaluateResponse {
            verdict,
            reason: text(obj.get("reason")),
            policy_id: text(obj.get("policy_id")),
            risk_score: obj.get("risk_score").and_then(Value::as_f64).unwrap_or(0.0),
            guardrails: obj
                .get("guardrails_result")
                .and_then(GuardrailsResult::from_value),
            approval_id: text(obj.get("approval_id")),
            constraints: match obj.get("constraints") {
                Some(Value::Array(items)) => items.clone(),
                _ => Vec::new(),
            },
            governance_event_id: text(obj.get("governance_event_id")),
            patch: Patch::from_answer(obj),
        })
    }
}

/// Reads `verdict`, falling back to the legacy `action` when `verdict` is missing, null or empty.
/// `Ok(None)` when neither is there; a non-string verdict is an unknown verdict.
fn verdict_of(obj: &Map<String, Value>) -> Result<Option<Verdict>, UnknownVerdict> {
    for key in ["verdict", "action"] {
        match obj.get(key) {
            None | Some(Value::Null) => continue,
            Some(Value::String(s)) if s.trim().is_empty() => continue,
            Some(Value::String(s)) => return Verdict::parse(s).map(Some),
            Some(other) => return Err(UnknownVerdict(other.to_string())),
        }
    }
    Ok(None)
}

/// The decision of an approval answer: here `action` wins over `verdict` when both are there
/// (the base package reads approval answers that way; evaluate answers the other way round).
fn approval_verdict_of(obj: &Map<String, Value>) -> Result<Option<Verdict>, UnknownVerdict> {
    match obj.get("action") {
        Some(Value::String(s)) if !s.trim().is_empty() => Verdict::parse(s).map(Some),
        _ => verdict_of(obj),
    }
}

/// A string field; numbers and booleans are rendered, objects/arrays/null are dropped.
fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// `guardrails_result` of an evaluate response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GuardrailsResult {
    /// `activity_input` or `activity_output`: what `redacted_input` replaces.
    #[serde(default)]
    pub input_type: String,
    /// The replacement value (`null` = nothing to replace).
    #[serde(default)]
    pub redacted_input: Value,
    /// `false` fails the activity with `GuardrailsValidationFailed`.
    #[serde(default = "yes")]
    pub validation_passed: bool,
    /// Why validation failed.
    #[serde(default)]
    pub reasons: Vec<GuardrailReason>,
    /// Core's raw guardrail logs (unused by the SDK).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_logs: Option<Value>,
}

fn yes() -> bool {
    true
}

/// Which value a guardrails result applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuardrailsTarget {
    /// The activity's arguments (on ActivityStarted).
    ActivityInput,
    /// The activity's return value (on ActivityCompleted).
    ActivityOutput,
}

impl GuardrailsResult {
    /// Parses `guardrails_result`; an empty object, `null` or a malformed value means "no
    /// guardrails" (the reference only looks at a truthy value).
    pub fn from_value(v: &Value) -> Option<Self> {
        let obj = v.as_object()?;
        if obj.is_empty() {
            return None;
        }
        let reasons = match obj.get("reasons") {
            Some(Value::Array(items)) => items.iter().map(GuardrailReason::from_value).collect(),
            _ => Vec::new(),
        };
        Some(GuardrailsResult {
            input_type: text(obj.get("input_type")).unwrap_or_default(),
            redacted_input: obj.get("redacted_input").cloned().unwrap_or(Value::Null),
            validation_passed: obj
                .get("validation_passed")
                .and_then(Value::as_bool)
                .unwrap_or(true),
            reasons,
            raw_logs: obj.get("raw_logs").cloned(),
        })
    }

    /// What `redacted_input` replaces, if `input_type` names it.
    pub fn target(&self) -> Option<GuardrailsTarget> {
        match self.input_type.as_str() {
            "activity_input" => Some(GuardrailsTarget::ActivityInput),
            "activity_output" => Some(GuardrailsTarget::ActivityOutput),
            _ => None,
        }
    }

    /// The `reason` strings of all reasons, in order.
    pub fn reason_texts(&self) -> Vec<&str> {
        self.reasons
            .iter()
            .filter_map(|r| r.reason.as_deref())
            .collect()
    }
}

/// One `reasons[]` entry of a guardrails result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuardrailReason {
    /// Kind of finding (`pii`, …).
    #[serde(rename = "type", default)]
    pub reason_type: Option<String>,
    /// The offending field.
    #[serde(default)]
    pub field: Option<String>,
    /// Human-readable reason.
    #[serde(default)]
    pub reason: Option<String>,
}

impl GuardrailReason {
    fn from_value(v: &Value) -> Self {
        match v {
            Value::Object(o) => GuardrailReason {
                reason_type: text(o.get("type")),
                field: text(o.get("field")),
                reason: text(o.get("reason")),
            },
            // A bare string is taken as the reason itself.
            other => GuardrailReason {
                reason_type: None,
                field: None,
                reason: text(Some(other)),
            },
        }
    }
}

/// Body of `POST /api/v1/governance/approval`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ApprovalRequest {
    /// Temporal workflow id.
    pub workflow_id: String,
    /// Temporal run id.
    pub run_id: String,
    /// Activity id within the run.
    pub activity_id: String,
}

/// An approval poll's answer: where the request stands, and which request Core answered about.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ApprovalAnswer {
    /// Where it stands.
    pub status: ApprovalStatus,
    /// The request the answer is about: `approval_id`, or Core's `id` (its evaluation id), when
    /// Core names it. A grant only counts for the request it names.
    pub approval_id: Option<String>,
    /// The restart Core asks for instead of a plain rejection: an unexpired, exact BLOCK whose
    /// `patch` has the allowed shape. Its origin is `ActivityStarted`, since an approval gates
    /// one activity.
    pub patch: Option<PatchRequest>,
}

impl ApprovalAnswer {
    /// An answer that says only `status` (no request named, no patch).
    pub fn of(status: ApprovalStatus) -> Self {
        ApprovalAnswer {
            status,
            approval_id: None,
            patch: None,
        }
    }

    /// Parses an approval response body as of `now`.
    pub fn from_slice(body: &[u8], now: SystemTime) -> Result<Self, ResponseError> {
        let value: Value =
            serde_json::from_slice(body).map_err(|e| ResponseError::NotJson(e.to_string()))?;
        let status = ApprovalStatus::from_value(&value, now)?;
        let obj = value.as_object().ok_or(ResponseError::NotObject)?;
        let patch = match (&status, approval_verdict_of(obj)) {
            (ApprovalStatus::Rejected { reason }, Ok(Some(Verdict::Block))) => {
                Patch::from_answer(obj).map(|p| {
                    let event_id =
                        text(obj.get("governance_event_id")).or_else(|| text(obj.get("id")));
                    PatchRequest::new(
                        &p,
                        "ActivityStarted",
                        reason.as_deref(),
                        event_id.as_deref(),
                    )
                })
            }
            _ => None,
        };
        Ok(ApprovalAnswer {
            status,
            approval_id: text(obj.get("approval_id")).or_else(|| text(obj.get("id"))),
            patch,
        })
    }
}

/// What an approval poll says.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ApprovalStatus {
    /// A human approved: re-evaluate and run.
    Approved {
        /// Core's reason, if any.
        reason: Option<String>,
    },
    /// A human rejected (BLOCK/HALT): fail with `ApprovalRejected`.
    Rejected {
        /// Core's reason, if any.
        reason: Option<String>,
    },
    /// Still waiting — also for a missing or unknown verdict.
    Pending {
        /// Core's reason, if any.
        reason: Option<String>,
    },
    /// The request expired (`expired: true` or an expiration time in the past).
    Expired {
        /// When it expired, as Core said.
        expiration_time: Option<String>,
    },
}

impl ApprovalStatus {
    /// Parses an approval response body as of `now`.
    pub fn from_slice(body: &[u8], now: SystemTime) -> Result<Self, ResponseError> {
        let value: Value =
            serde_json::from_slice(body).map_err(|e| ResponseError::NotJson(e.to_string()))?;
        Self::from_value(&value, now)
    }

    /// Parses a decoded approval response as of `now`.
    pub fn from_value(value: &Value, now: SystemTime) -> Result<Self, ResponseError> {
        let obj = value.as_object().ok_or(ResponseError::NotObject)?;
        let expiration_time = text(obj.get("approval_expiration_time"));
        let past_expiry = expiration_time
            .as_deref()
            .and_then(parse_expiration)
            .is_some_and(|at| at <= now);
        if past_expiry || truthy(obj.get("expired")) {
            return Ok(ApprovalStatus::Expired { expiration_time });
        }
        let reason = text(obj.get("reason"));
        Ok(match approval_verdict_of(obj) {
            Ok(Some(Verdict::Allow)) => ApprovalStatus::Approved { reason },
            Ok(Some(Verdict::Block | Verdict::Halt)) => ApprovalStatus::Rejected { reason },
            // Constrain / require_approval, and — unlike the reference — missing or unknown.
            _ => ApprovalStatus::Pending { reason },
        })
    }
}

fn truthy(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn verdict_falls_back_to_legacy_action() {
        let r = EvaluateResponse::from_value(&json!({"action": "stop"})).unwrap();
        assert_eq!(r.verdict, Verdict::Halt);
        let r =
            EvaluateResponse::from_value(&json!({"verdict": "", "action": "continue"})).unwrap();
        assert_eq!(r.verdict, Verdict::Allow);
        let r = EvaluateResponse::from_value(&json!({"verdict": null, "action": "Block"})).unwrap();
        assert_eq!(r.verdict, Verdict::Block);
    }

    #[test]
    fn missing_or_unknown_verdict_is_an_error() {
        assert_eq!(
            EvaluateResponse::from_value(&json!({})),
            Err(ResponseError::MissingVerdict)
        );
        assert_eq!(
            EvaluateResponse::from_value(&json!({"verdict": "blocked"})),
            Err(ResponseError::UnknownVerdict(UnknownVerdict(
                "blocked".into()
            )))
        );
        assert!(matches!(
            EvaluateResponse::from_value(&json!({"verdict": 3})),
            Err(ResponseError::UnknownVerdict(_))
        ));
        assert_eq!(
            EvaluateResponse::from_value(&json!([1])),
            Err(ResponseError::NotObject)
        );
        assert!(matches!(
            EvaluateResponse::from_slice(b"{\"verdict\":"),
            Err(ResponseError::NotJson(_))
        ));
        assert!(matches!(
            EvaluateResponse::from_slice(b"<html>"),
            Err(ResponseError::NotJson(_))
        ));
    }

    #[test]
    fn informational_fields_are_lenient() {
        let r = EvaluateResponse::from_value(&json!({
            "verdict": "allow", "reason": 42, "risk_score": "high", "policy_id": "p1",
            "constraints": "x", "guardrails_result": {}
        }))
        .unwrap();
        assert_eq!(r.reason.as_deref(), Some("42"));
        assert_eq!(r.risk_score, 0.0);
        assert!(r.constraints.is_empty());
        assert!(r.guardrails.is_none());
    }

    #[test]
    fn guardrails_result_of_the_reference_readme() {
        let r = EvaluateResponse::from_value(&json!({
          "verdict": "allow",
          "guardrails_result": {
            "input_type": "activity_input",
            "redacted_input": {"prompt": "[REDACTED]", "user_id": "123"},
            "validation_passed": true,
            "reasons": []
          }
        }))
        .unwrap();
        let g = r.guardrails.unwrap();
        assert_eq!(g.target(), Some(GuardrailsTarget::ActivityInput));
        assert_eq!(
            g.redacted_input,
            json!({"prompt": "[REDACTED]", "user_id": "123"})
        );
        assert!(g.validation_passed);

        let g = GuardrailsResult::from_value(&json!({
          "validation_passed": false,
          "reasons": [{"type": "pii", "field": "email", "reason": "Contains PII"}, "bare"]
        }))
        .unwrap();
        assert!(!g.validation_passed);
        assert_eq!(g.reason_texts(), vec!["Contains PII", "bare"]);
        assert_eq!(g.reasons[0].reason_type.as_deref(), Some("pii"));
        assert_eq!(g.target(), None);
    }

    #[test]
    fn approval_statuses() {
        let now = UNIX_EPOCH + Duration::from_secs(1_795_489_117);
        let st = |v: Value| ApprovalStatus::from_value(&v, now).unwrap();
        assert_eq!(
            st(json!({"verdict": "allow", "reason": "approved by tester"})),
            ApprovalStatus::Approved {
                reason: Some("approved by tester".into())
            }
        );
        assert_eq!(
            st(json!({"action": "continue"})),
            ApprovalStatus::Approved { reason: None }
        );
        assert_eq!(
            st(json!({"verdict": "halt"})),
            ApprovalStatus::Rejected { reason: None }
        );
        assert_eq!(
            st(json!({"verdict": "block", "reason": "no"})),
            ApprovalStatus::Rejected {
                reason: Some("no".into())
            }
        );
        assert_eq!(
            st(json!({"verdict": "require_approval"})),
            ApprovalStatus::Pending { reason: None }
        );
        // The reference would approve these three.
        assert_eq!(
            st(json!({"status": "pending"})),
            ApprovalStatus::Pending { reason: None }
        );
        assert_eq!(
            st(json!({"verdict": "pending"})),
            ApprovalStatus::Pending { reason: None }
        );
        assert_eq!(st(json!({})), ApprovalStatus::Pending { reason: None });
        assert!(matches!(
            st(json!({"verdict": "allow", "expired": true})),
            ApprovalStatus::Expired { .. }
        ));
        assert!(matches!(
            st(json!({"verdict": "allow", "approval_expiration_time": "2026-11-24 02:58:36"})),
            ApprovalStatus::Expired { .. }
        ));
        assert_eq!(
            st(json!({"verdict": "allow", "approval_expiration_time": "2026-11-24T02:58:38Z"})),
            ApprovalStatus::Approved { reason: None }
        );
        assert!(ApprovalStatus::from_slice(b"nope", now).is_err());
        let a = ApprovalAnswer::from_slice(br#"{"verdict":"allow","approval_id":"apr-2"}"#, now)
            .unwrap();
        assert_eq!(a.approval_id.as_deref(), Some("apr-2"));
        let a = ApprovalAnswer::from_slice(br#"{"action":"continue","id":"gev-9"}"#, now).unwrap();
        assert_eq!(
            (a.status, a.approval_id.as_deref()),
            (ApprovalStatus::Approved { reason: None }, Some("gev-9"))
        );
        // On an approval answer `action` decides when both are there.
        assert_eq!(
            st(json!({"verdict": "allow", "action": "block"})),
            ApprovalStatus::Rejected { reason: None }
        );
        assert_eq!(
            st(json!({"verdict": "block", "action": " "})),
            ApprovalStatus::Rejected { reason: None }
        );
    }

    #[test]
    fn an_approval_answer_restarts_only_on_an_unexpired_exact_block_with_a_patch() {
        let now = UNIX_EPOCH + Duration::from_secs(1_795_489_117);
        let patch_of = |v: Value| {
            ApprovalAnswer::from_slice(v.to_string().as_bytes(), now)
                .unwrap()
                .patch
        };
        let request = patch_of(json!({
            "verdict": "block", "reason": "rewrite", "approval_id": "apr-1",
            "governance_event_id": "gev-7", "patch": {"new_input": {"text": "b"}},
        }))
        .expect("a patch");
        assert_eq!(request.new_input, json!({"text": "b"}));
        assert_eq!(request.event_type, "ActivityStarted");
        assert_eq!(request.reason.as_deref(), Some("rewrite"));
        assert_eq!(request.governance_event_id.as_deref(), Some("gev-7"));
        let null =
            patch_of(json!({"action": "block", "id": "gev-8", "patch": {"new_input": null}}))
                .expect("null reuses the input");
        assert_eq!(
            (null.new_input, null.governance_event_id.as_deref()),
            (Value::Null, Some("gev-8"))
        );
        for no_restart in [
            json!({"verdict": "halt", "patch": {"new_input": 1}}),
            json!({"verdict": "allow", "patch": {"new_input": 1}}),
            json!({"verdict": "require_approval", "patch": {"new_input": 1}}),
            json!({"verdict": "block", "expired": true, "patch": {"new_input": 1}}),
            json!({"verdict": "block", "patch": {"new_input": true}}),
            json!({"verdict": "block", "patch": {"new_input": 1, "x": 2}}),
            json!({"verdict": "block"}),
            json!({"verdict": "allow", "action": "halt", "patch": {"new_input": 1}}),
        ] {
            assert_eq!(patch_of(no_restart.clone()), None, "{no_restart}");
        }
    }
}
