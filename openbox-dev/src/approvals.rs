//! Approval requests opened by REQUIRE_APPROVAL verdicts. Each has its own id (`apr-<n>`) and a
//! *subject* — what asked: the event (ActivityStarted, ActivityCompleted) or the operation
//! inside the activity (a hook's type, stage and target), and the rule. One activity can have
//! several requests (its start, then an HTTP call it makes); a grant covers its own subject only.
//!
//! Once a request is decided, the dev Core answers re-evaluations of the same subject with the
//! decision (allow after approval, block after rejection) — the contract the SDK relies on when
//! it re-sends ActivityStarted after an approval. Polls are keyed like
//! the SDK sends them, `(workflow_id, run_id, activity_id)`, and answer about the activity's
//! newest request, naming it in `approval_id`.
//!
//! At most [`MAX_APPROVALS`] requests are kept: the oldest decided or expired ones go first, so a
//! dev Core left running does not grow without bound.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::broadcast;

/// Most requests kept in memory.
pub const MAX_APPROVALS: usize = 10_000;

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
        /// The input the run should restart with instead (`null`: the same input), when the
        /// rejection carries a patch: polls then answer BLOCK with `patch.new_input`.
        #[serde(skip_serializing_if = "Option::is_none")]
        new_input: Option<Value>,
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
    /// What asked for it within the activity (event or operation, and rule).
    pub subject: String,
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
    fn number(&self) -> u64 {
        self.id
            .strip_prefix("apr-")
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }

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
            ApprovalState::Rejected {
                by,
                reason,
                new_input,
            } => {
                let mut answer = json!({"verdict": "block", "reason": reason.clone().unwrap_or_else(|| format!("rejected by {by}"))});
                if let Some(new_input) = new_input {
                    answer["patch"] = json!({ "new_input": new_input });
                }
                answer
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
    by_subject: HashMap<(ApprovalKey, String), String>,
    /// The newest request of each activity: what a poll answers about.
    newest: HashMap<ApprovalKey, String>,
}

impl Inner {
    /// Drops the oldest decided or expired requests while more than [`MAX_APPROVALS`] are kept.
    fn evict(&mut self, now: SystemTime) {
        if self.by_id.len() <= MAX_APPROVALS {
            return;
        }
        let mut done: Vec<(u64, String)> = self
            .by_id
            .values_mut()
            .filter_map(|a| {
                a.refresh(now);
                (a.state != ApprovalState::Pending || a.expired).then(|| (a.number(), a.id.clone()))
            })
            .collect();
        done.sort_unstable();
        let excess = self.by_id.len() - MAX_APPROVALS;
        for (_, id) in done.into_iter().take(excess) {
            if let Some(a) = self.by_id.remove(&id) {
                self.by_subject.remove(&(a.key.clone(), a.subject.clone()));
                if self.newest.get(&a.key) == Some(&id) {
                    self.newest.remove(&a.key);
                }
            }
        }
    }
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

    /// Returns the request of `subject` for the activity `key`, opening one if there is none.
    pub fn open(
        &self,
        key: ApprovalKey,
        subject: &str,
        body: &Value,
        rule: &str,
        reason: Option<String>,
        expires_in: Option<Duration>,
    ) -> Opened {
        let now = SystemTime::now();
        let mut inner = self.lock();
        let by_subject = (key.clone(), subject.to_owned());
        if let Some(id) = inner.by_subject.get(&by_subject).cloned()
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
        let expires = expires_in.and_then(|d| now.checked_add(d));
        let mut approval = Approval {
            id: id.clone(),
            key: key.clone(),
            subject: subject.to_owned(),
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
        inner.by_subject.insert(by_subject, id.clone());
        inner.newest.insert(key, id.clone());
        inner.by_id.insert(id, approval.clone());
        inner.evict(now);
        drop(inner);
        let _ = self.changes.send(approval.clone());
        Opened {
            approval,
            created: true,
        }
    }

    /// The newest request of the activity `key`, if any (what a poll answers about).
    pub fn find(&self, key: &ApprovalKey) -> Option<Approval> {
        let now = SystemTime::now();
        let mut inner = self.lock();
        let id = inner.newest.get(key)?.clone();
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
        let by = by.to_owned();
        self.settle(
            id,
            if approve {
                ApprovalState::Approved { by, reason }
            } else {
                ApprovalState::Rejected {
                    by,
                    reason,
                    new_input: None,
                }
            },
        )
    }

    /// Rejects request `id` and names the input its run restarts with (`null`: the same input):
    /// the approval poll then answers BLOCK with a patch.
    pub fn reject_with_patch(
        &self,
        id: &str,
        by: &str,
        reason: Option<String>,
        new_input: Value,
    ) -> Result<Approval, DecideError> {
        self.settle(
            id,
            ApprovalState::Rejected {
                by: by.to_owned(),
                reason,
                new_input: Some(new_input),
            },
        )
    }

    fn settle(&self, id: &str, decision: ApprovalState) -> Result<Approval, DecideError> {
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
        approval.state = decision;
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
        all.sort_by_key(|a| std::cmp::Reverse(a.number()));
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
    fn a_rejection_with_a_patch_answers_block_with_the_new_input() {
        let approvals = Approvals::default();
        let body = json!({"activity_type": "draft"});
        approvals.open(key("1"), "start", &body, "r", None, None);
        approvals.open(key("2"), "start", &body, "r", None, None);
        approvals
            .reject_with_patch(
                "apr-1",
                "test",
                Some("rewrite".into()),
                json!({"text": "b"}),
            )
            .unwrap();
        let answer = approvals.find(&key("1")).unwrap().poll_response();
        assert_eq!(answer["verdict"], "block");
        assert_eq!(answer["reason"], "rewrite");
        assert_eq!(answer["patch"], json!({"new_input": {"text": "b"}}));
        approvals
            .reject_with_patch("apr-2", "test", None, Value::Null)
            .unwrap();
        let answer = approvals.find(&key("2")).unwrap().poll_response();
        assert_eq!(
            answer["patch"],
            json!({"new_input": null}),
            "null: the same input"
        );
        assert_eq!(
            approvals
                .reject_with_patch("apr-2", "test", None, Value::Null)
                .unwrap_err(),
            DecideError::AlreadyDecided("apr-2".into())
        );
        approvals.open(key("3"), "start", &body, "r", None, None);
        approvals.decide("apr-3", false, "test", None).unwrap();
        let plain = approvals.find(&key("3")).unwrap().poll_response();
        assert!(plain.get("patch").is_none(), "{plain}");
    }

    #[test]
    fn open_is_idempotent_per_key_and_decisions_stick() {
        let approvals = Approvals::default();
        let body = json!({"activity_type": "transfer"});
        let first = approvals.open(key("1"), "start", &body, "r", None, None);
        assert!(first.created);
        assert_eq!(first.approval.id, "apr-1");
        let again = approvals.open(key("1"), "start", &body, "r", None, None);
        assert!(!again.created);
        assert_eq!(again.approval.id, "apr-1");
        assert_eq!(
            approvals
                .open(key("2"), "start", &body, "r", None, None)
                .approval
                .id,
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
    fn subjects_of_one_activity_are_separate_requests_and_polls_see_the_newest() {
        let approvals = Approvals::default();
        let body = json!({});
        approvals.open(key("1"), "start", &body, "r", None, None);
        approvals.decide("apr-1", true, "cli", None).unwrap();
        let hook = approvals.open(key("1"), "hook GET /x", &body, "r", None, None);
        assert!(hook.created);
        assert_eq!(hook.approval.state, ApprovalState::Pending);
        let polled = approvals.find(&key("1")).unwrap().poll_response();
        assert_eq!(polled["approval_id"], "apr-2");
        assert_eq!(polled["verdict"], "require_approval");
        let start = approvals.open(key("1"), "start", &body, "r", None, None);
        assert!(
            !start.created,
            "the start's request is still the decided one"
        );
        assert!(matches!(
            start.approval.state,
            ApprovalState::Approved { .. }
        ));
    }

    #[test]
    fn decided_requests_are_evicted_beyond_the_bound() {
        let approvals = Approvals::default();
        let body = json!({});
        approvals.open(key("pending"), "s", &body, "r", None, None);
        for i in 0..MAX_APPROVALS + 10 {
            let a = approvals.open(key(&i.to_string()), "s", &body, "r", None, None);
            approvals.decide(&a.approval.id, true, "cli", None).unwrap();
        }
        let all = approvals.list();
        assert_eq!(all.len(), MAX_APPROVALS);
        assert!(all.iter().any(|a| a.id == "apr-1"), "pending requests stay");
        assert!(
            !all.iter().any(|a| a.id == "apr-2"),
            "the oldest decided go first"
        );
    }

    #[test]
    fn an_expiry_too_far_away_means_no_expiry() {
        let approvals = Approvals::default();
        let a = approvals.open(key("1"), "s", &json!({}), "r", None, Some(Duration::MAX));
        assert_eq!(a.approval.expires_at, None);
    }

    #[test]
    fn expiry() {
        let approvals = Approvals::default();
        approvals.open(key("1"), "s", &json!({}), "r", None, Some(Duration::ZERO));
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
