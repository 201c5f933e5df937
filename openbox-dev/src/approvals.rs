//! Approval requests opened by REQUIRE_APPROVAL verdicts, keyed like the SDK polls them:
//! `(workflow_id, run_id, activity_id)`.
//!
//! Once a request is decided, the dev Core answers re-evaluations of the same activity with the
//! decision (allow after approval, block after rejection) — the contract the SDK relies on when
//! it re-sends ActivityStarted after an approval (§4 of the wire contract).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::broadcast;

/// Identifies the activity an approval is for.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct ApprovalKey {
    /// Temporal workflow id.
    pub workflow_id: String,
    /// Temporal run id.
    pub run_id: String,
    /// Activity id within the run.
    pub activity_id: String,
}

impl ApprovalKey {
    /// Reads the key from an evaluate or approval body; `None` if a part is missing (workflow
    /// events have no activity id and cannot be approved).
    pub fn from_body(body: &Value) -> Option<Self> {
        let field = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_owned);
        Some(ApprovalKey {
            workflow_id: field("workflow_id")?,
            run_id: field("run_id")?,
            activity_id: field("activity_id")?,
        })
    }
}

/// Where an approval request stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum ApprovalState {
    /// Waiting for a human.
    Pending,
    /// Approved.
    Approved {
        /// Who approved (`cli`, `web`, `api`…).
        by: String,
        /// Optional note.
        reason: Option<String>,
    },
    /// Rejected.
    Rejected {
        /// Who rejected.
        by: String,
        /// Optional note.
        reason: Option<String>,
    },
}

/// One approval request.
#[derive(Debug, Clone, Serialize)]
pub struct Approval {
    /// `apr-<n>`: what `openbox-dev approve <id>` takes.
    pub id: String,
    /// The activity it is for.
    #[serde(flatten)]
    pub key: ApprovalKey,
    /// Activity type, for people reading the list.
    pub activity_type: Option<String>,
    /// Workflow type, for people reading the list.
    pub workflow_type: Option<String>,
    /// The rule that asked for approval.
    pub rule: String,
    /// The rule's reason.
    pub reason: Option<String>,
    /// When it was opened (RFC 3339).
    pub created_at: String,
    /// When it expires (RFC 3339), if it does.
    pub expires_at: Option<String>,
    /// Whether it has expired (computed when listed).
    pub expired: bool,
    /// Decision so far.
    #[serde(flatten)]
    pub state: ApprovalState,
    #[serde(skip)]
    expires: Option<SystemTime>,
}

impl Approval {
    fn refresh(&mut self, now: SystemTime) {
        self.expired =
            self.state == ApprovalState::Pending && self.expires.is_some_and(|at| at <= now);
    }

    /// The answer to an approval poll for this request.
    pub fn poll_response(&self) -> Value {
        let mut answer = match &self.state {
            ApprovalState::Approved { by, reason } => {
                json!({"verdict": "allow", "reason": reason.clone().unwrap_or_else(|| format!("approved by {by}"))})
            }
            ApprovalState::Rejected { by, reason } => {
                json!({"verdict": "block", "reason": reason.clone().unwrap_or_else(|| format!("rejected by {by}"))})
            }
            ApprovalState::Pending => {
                json!({"verdict": "require_approval", "reason": "awaiting approval"})
            }
        };
        answer["approval_id"] = json!(self.id);
        if let Some(at) = &self.expires_at {
            answer["approval_expiration_time"] = json!(at);
        }
        if self.expired {
            answer["expired"] = json!(true);
        }
        answer
    }
}

/// Why a decision could not be recorded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecideError {
    /// No request has this id.
    #[error("no approval request {0}")]
    NotFound(String),
    /// It was approved or rejected already.
    #[error("approval request {0} is already decided")]
    AlreadyDecided(String),
    /// It expired before anyone decided.
    #[error("approval request {0} has expired")]
    Expired(String),
}

/// The pending list and its history.
pub struct Approvals {
    inner: Mutex<Inner>,
    changes: broadcast::Sender<Approval>,
}

#[derive(Default)]
struct Inner {
    next: u64,
    by_id: HashMap<String, Approval>,
    by_key: HashMap<ApprovalKey, String>,
}

/// What an evaluation that needs approval should answer.
pub struct Opened {
    /// The request (new or existing).
    pub approval: Approval,
    /// Whether this evaluation created it.
    pub created: bool,
}

impl Default for Approvals {
    fn default() -> Self {
        Approvals {
            inner: Mutex::new(Inner::default()),
            changes: broadcast::channel(256).0,
        }
    }
}

impl Approvals {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves consistent data (every mutation is one insert).
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Returns the request for `key`, opening one if there is none.
    pub fn open(
        &self,
        key: ApprovalKey,
        body: &Value,
        rule: &str,
        reason: Option<String>,
        expires_in: Option<Duration>,
    ) -> Opened {
        let now = SystemTime::now();
        let mut inner = self.lock();
        if let Some(id) = inner.by_key.get(&key).cloned()
            && let Some(existing) = inner.by_id.get_mut(&id)
        {
            existing.refresh(now);
            return Opened {
                approval: existing.clone(),
                created: false,
            };
        }
        inner.next += 1;
        let id = format!("apr-{}", inner.next);
        let expires = expires_in.map(|d| now + d);
        let mut approval = Approval {
            id: id.clone(),
            key: key.clone(),
            activity_type: body
                .get("activity_type")
                .and_then(Value::as_str)
                .map(str::to_owned),
            workflow_type: body
                .get("workflow_type")
                .and_then(Value::as_str)
                .map(str::to_owned),
            rule: rule.to_owned(),
            reason,
            created_at: rfc3339(now),
            expires_at: expires.map(rfc3339),
            expired: false,
            state: ApprovalState::Pending,
            expires,
        };
        approval.refresh(now);
        inner.by_key.insert(key, id.clone());
        inner.by_id.insert(id, approval.clone());
        drop(inner);
        let _ = self.changes.send(approval.clone());
        Opened {
            approval,
            created: true,
        }
    }

    /// The request for `key`, if any.
    pub fn find(&self, key: &ApprovalKey) -> Option<Approval> {
        let now = SystemTime::now();
        let mut inner = self.lock();
        let id = inner.by_key.get(key)?.clone();
        let approval = inner.by_id.get_mut(&id)?;
        approval.refresh(now);
        Some(approval.clone())
    }

    /// Approves or rejects request `id`.
    pub fn decide(
        &self,
        id: &str,
        approve: bool,
        by: &str,
        reason: Option<String>,
    ) -> Result<Approval, DecideError> {
        let now = SystemTime::now();
        let mut inner = self.lock();
        let approval = inner
            .by_id
            .get_mut(id)
            .ok_or_else(|| DecideError::NotFound(id.to_owned()))?;
        approval.refresh(now);
        if approval.state != ApprovalState::Pending {
            return Err(DecideError::AlreadyDecided(id.to_owned()));
        }
        if approval.expired {
            return Err(DecideError::Expired(id.to_owned()));
        }
        approval.state = if approve {
            ApprovalState::Approved {
                by: by.to_owned(),
                reason,
            }
        } else {
            ApprovalState::Rejected {
                by: by.to_owned(),
                reason,
            }
        };
        let decided = approval.clone();
        drop(inner);
        let _ = self.changes.send(decided.clone());
        Ok(decided)
    }

    /// All requests, newest first.
    pub fn list(&self) -> Vec<Approval> {
        let now = SystemTime::now();
        let mut inner = self.lock();
        let mut all: Vec<Approval> = inner
            .by_id
            .values_mut()
            .map(|a| {
                a.refresh(now);
                a.clone()
            })
            .collect();
        all.sort_by_key(|a| std::cmp::Reverse(a.id[4..].parse::<u64>().unwrap_or(0)));
        all
    }

    /// A stream of opened and decided requests (for the web page).
    pub fn subscribe(&self) -> broadcast::Receiver<Approval> {
        self.changes.subscribe()
    }
}

fn rfc3339(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(a: &str) -> ApprovalKey {
        ApprovalKey {
            workflow_id: "w".into(),
            run_id: "r".into(),
            activity_id: a.into(),
        }
    }

    #[test]
    fn open_is_idempotent_per_key_and_decisions_stick() {
        let approvals = Approvals::default();
        let body = json!({"activity_type": "transfer"});
        let first = approvals.open(key("1"), &body, "r", None, None);
        assert!(first.created);
        assert_eq!(first.approval.id, "apr-1");
        let again = approvals.open(key("1"), &body, "r", None, None);
        assert!(!again.created);
        assert_eq!(again.approval.id, "apr-1");
        assert_eq!(
            approvals.open(key("2"), &body, "r", None, None).approval.id,
            "apr-2"
        );

        assert_eq!(
            approvals.find(&key("1")).unwrap().poll_response()["verdict"],
            "require_approval"
        );
        approvals.decide("apr-1", true, "cli", None).unwrap();
        assert_eq!(
            approvals.find(&key("1")).unwrap().poll_response()["verdict"],
            "allow"
        );
        assert_eq!(
            approvals.decide("apr-1", false, "cli", None).unwrap_err(),
            DecideError::AlreadyDecided("apr-1".into())
        );
        approvals
            .decide("apr-2", false, "web", Some("too risky".into()))
            .unwrap();
        let rejected = approvals.find(&key("2")).unwrap().poll_response();
        assert_eq!(rejected["verdict"], "block");
        assert_eq!(rejected["reason"], "too risky");
        assert_eq!(
            approvals.decide("apr-9", true, "cli", None).unwrap_err(),
            DecideError::NotFound("apr-9".into())
        );
        assert_eq!(
            approvals
                .list()
                .iter()
                .map(|a| a.id.as_str())
                .collect::<Vec<_>>(),
            ["apr-2", "apr-1"]
        );
    }

    #[test]
    fn expiry() {
        let approvals = Approvals::default();
        approvals.open(key("1"), &json!({}), "r", None, Some(Duration::ZERO));
        let a = approvals.find(&key("1")).unwrap();
        assert!(a.expired);
        assert_eq!(a.poll_response()["expired"], true);
        assert!(a.poll_response()["approval_expiration_time"].is_string());
        assert_eq!(
            approvals.decide("apr-1", true, "cli", None).unwrap_err(),
            DecideError::Expired("apr-1".into())
        );
    }
}
