//! Human approval through activity retries, keyed by Core's request so that a wait survives a
//! retry on another worker.
//!
//! A REQUIRE_APPROVAL on ActivityStarted or on an operation inside the activity fails the
//! attempt with a retryable `ApprovalPending` whose retry delay is the poll interval, and this
//! process remembers *which* request it waits on: Core's `approval_id` (and evaluation id), and
//! the stage that asked. The next attempt of that activity starts with a poll of
//! `POST /api/v1/governance/approval`:
//!
//! | Poll says | Then |
//! |---|---|
//! | approved, for the request waited on | ActivityStarted is re-sent and its verdict enforced |
//! | approved, but for another request | still pending: a grant never covers another request |
//! | rejected | non-retryable `ApprovalRejected` |
//! | rejected with a patch (an exact BLOCK naming the input to use) | non-retryable `GovernancePatch`: the run restarts with it |
//! | expired (Core) or older than the approval timeout (SDK) | non-retryable `ApprovalExpired` |
//! | pending, or the poll failed | `ApprovalPending` again |
//!
//! Only attempts that follow a REQUIRE_APPROVAL poll. A retry on another worker (or after a
//! restart) has no record of the request and re-sends ActivityStarted instead: Core answers
//! REQUIRE_APPROVAL again while the request is open, or the decision once it is made. Every
//! REQUIRE_APPROVAL is a request of its own — also one that comes right after a grant — so an
//! operation that asks again never runs on the grant of an earlier one. The approval timeout is
//! measured from the activity's first schedule time, which Temporal keeps across attempts and
//! workers.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use crate::client::CoreClient;
use crate::client::GovernanceApiError;
use crate::config::ErrorPolicy;
use crate::wire::{
    ActivityIdentity, ApprovalAnswer, ApprovalRequest, ApprovalStatus, EvaluateResponse,
};

use super::failure::GovernanceFailure;

/// Which request an approval wait is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AskedFor {
    /// Core's `approval_id` of the REQUIRE_APPROVAL, if it sent one.
    approval_id: Option<String>,
    /// Core's `governance_event_id` of that evaluation, if it sent one.
    event_id: Option<String>,
    /// What asked: `ActivityStarted`, `ActivityCompleted`, or an operation's name.
    stage: String,
}

impl AskedFor {
    /// The request a REQUIRE_APPROVAL `response` opened, asked by `stage`.
    pub(crate) fn of(response: &EvaluateResponse, stage: &str) -> Self {
        AskedFor {
            approval_id: response.approval_id.clone(),
            event_id: response.governance_event_id.clone(),
            stage: stage.to_owned(),
        }
    }

    /// Whether a poll answer is about this request. An answer that names no request is taken
    /// as ours (Core keys polls by activity); one that names another request never is.
    fn answered_by(&self, answer: &ApprovalAnswer) -> bool {
        let Some(id) = answer.approval_id.as_deref() else {
            return true;
        };
        if self.approval_id.is_none() && self.event_id.is_none() {
            return true;
        }
        self.approval_id.as_deref() == Some(id) || self.event_id.as_deref() == Some(id)
    }
}

#[derive(Debug)]
struct Marker {
    asked_at: SystemTime,
    asked_for: AskedFor,
    /// Polls that failed in a row (Core unreachable, HTTP error).
    poll_failures: u32,
}

/// The longest wait between two approval polls after failures (unless the poll interval itself
/// is longer).
pub(crate) const MAX_POLL_BACKOFF: Duration = Duration::from_secs(60);

/// The wait before the next poll after `failures` failed polls in a row: the poll interval,
/// doubled per failure, at most [`MAX_POLL_BACKOFF`] (or the interval, if longer).
pub(crate) fn poll_backoff(interval: Duration, failures: u32) -> Duration {
    let ceiling = interval.max(MAX_POLL_BACKOFF);
    interval
        .checked_mul(1u32 << failures.min(16))
        .map_or(ceiling, |d| d.min(ceiling))
}

/// The approvals this process asked for and is waiting on, one per activity (an attempt stops
/// at its first REQUIRE_APPROVAL).
#[derive(Debug, Default)]
pub(crate) struct ApprovalMarkers {
    asked: Mutex<HashMap<ApprovalRequest, Marker>>,
}

impl ApprovalMarkers {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ApprovalRequest, Marker>> {
        self.asked.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records the request an activity now waits on (replacing an earlier one); forgets entries
    /// older than `keep` so the map stays bounded even for activities that are never retried.
    pub(crate) fn mark(&self, key: ApprovalRequest, asked_for: AskedFor, keep: Duration) {
        let now = SystemTime::now();
        let mut asked = self.lock();
        asked.retain(|_, m| {
            now.duration_since(m.asked_at)
                .map_or(true, |age| age <= keep)
        });
        asked.insert(
            key,
            Marker {
                asked_at: now,
                asked_for,
                poll_failures: 0,
            },
        );
        if asked.is_empty() {
            asked.shrink_to_fit();
        }
    }

    /// The request this process waits on for the activity, if any.
    pub(crate) fn asked_for(&self, key: &ApprovalRequest) -> Option<AskedFor> {
        self.lock().get(key).map(|m| m.asked_for.clone())
    }

    /// Counts a failed poll; returns how many failed in a row.
    pub(crate) fn poll_failed(&self, key: &ApprovalRequest) -> u32 {
        let mut asked = self.lock();
        asked.get_mut(key).map_or(1, |m| {
            m.poll_failures += 1;
            m.poll_failures
        })
    }

    /// A poll was answered: the failures in a row are over.
    pub(crate) fn poll_answered(&self, key: &ApprovalRequest) {
        if let Some(m) = self.lock().get_mut(key) {
            m.poll_failures = 0;
        }
    }

    pub(crate) fn clear(&self, key: &ApprovalRequest) {
        let mut asked = self.lock();
        asked.remove(key);
        if asked.is_empty() {
            // A burst of approvals must not keep its table's capacity for the worker's life.
            asked.shrink_to_fit();
        }
    }

    /// How many approvals this process is waiting on.
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }
}

/// The approval poll request of an activity.
pub(crate) fn request_of(activity: &ActivityIdentity) -> ApprovalRequest {
    ApprovalRequest {
        workflow_id: activity.workflow_id.clone(),
        run_id: activity.run_id.clone(),
        activity_id: activity.activity_id.clone(),
    }
}

/// What the start of a retried attempt should do about approval.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum PreCheck {
    /// Evaluate ActivityStarted as usual (Core's answer decides).
    Evaluate,
    /// Stop the attempt.
    Stop(GovernanceFailure),
}

/// Settings of an approval check.
pub(crate) struct ApprovalContext<'a> {
    pub client: &'a CoreClient,
    pub markers: &'a ApprovalMarkers,
    pub activity: &'a ActivityIdentity,
    pub poll_interval: Duration,
    pub timeout: Duration,
    /// Failed polls in a row after which the error policy decides (0: never).
    pub failure_limit: u32,
    /// When the activity was first scheduled (across attempts), if known.
    pub scheduled_time: Option<SystemTime>,
}

impl<'a> ApprovalContext<'a> {
    /// The approval settings of `governor` for `activity`, first scheduled at `scheduled_time`.
    pub(crate) fn new(
        governor: &'a super::Governor,
        activity: &'a ActivityIdentity,
        scheduled_time: Option<SystemTime>,
    ) -> Self {
        let options = governor.options();
        ApprovalContext {
            client: governor.client(),
            markers: governor.approval_markers(),
            activity,
            poll_interval: options.approval_poll_interval(),
            timeout: options.approval_timeout(),
            failure_limit: options.approval_poll_failure_limit(),
            scheduled_time,
        }
    }

    fn timed_out(&self, since_marker: Option<SystemTime>) -> bool {
        let since = self.scheduled_time.or(since_marker);
        since.is_some_and(|t| {
            SystemTime::now()
                .duration_since(t)
                .is_ok_and(|waited| waited > self.timeout)
        })
    }

    /// One approval poll about `asked_for`, counted in the approval-poll metric. An answer
    /// about another request is reported as pending (and its patch, if any, is not ours).
    async fn poll(
        &self,
        key: &ApprovalRequest,
        asked_for: &AskedFor,
    ) -> Result<ApprovalAnswer, GovernanceApiError> {
        let result = self.client.poll_approval(key).await.map(|answer| {
            if asked_for.answered_by(&answer) {
                answer
            } else {
                tracing::info!(
                    activity_type = %self.activity.activity_type,
                    stage = %asked_for.stage,
                    answered = ?answer.approval_id,
                    waiting_for = ?asked_for.approval_id,
                    "the approval poll answered about another request; still waiting"
                );
                ApprovalAnswer::of(ApprovalStatus::Pending { reason: None })
            }
        });
        super::metrics::record_approval_poll(match &result {
            Ok(answer) if answer.patch.is_some() => "patched",
            Ok(answer) => match answer.status {
                ApprovalStatus::Pending { .. } => "pending",
                ApprovalStatus::Approved { .. } => "approved",
                ApprovalStatus::Rejected { .. } => "rejected",
                ApprovalStatus::Expired { .. } => "expired",
            },
            Err(_) => "error",
        });
        result
    }

    /// The start of attempt > 1: polls when this process waits on a request for the activity;
    /// otherwise (no request, or one asked by another worker) ActivityStarted is evaluated.
    pub(crate) async fn pre_check(&self) -> PreCheck {
        let key = request_of(self.activity);
        let Some(asked_for) = self.markers.asked_for(&key) else {
            return PreCheck::Evaluate;
        };
        let polled = match self.poll(&key, &asked_for).await {
            // The reviewer refused this input and named another: the run restarts with it.
            Ok(ApprovalAnswer {
                patch: Some(request),
                ..
            }) => {
                tracing::info!(activity_type = %self.activity.activity_type, stage = %asked_for.stage, "approval answered with a patch; the run restarts");
                self.markers.clear(&key);
                return PreCheck::Stop(GovernanceFailure::patch(request));
            }
            other => other.map(|answer| answer.status),
        };
        let pending = match polled {
            Ok(ApprovalStatus::Approved { reason }) => {
                tracing::info!(activity_type = %self.activity.activity_type, stage = %asked_for.stage, ?reason, "approval granted");
                self.markers.clear(&key);
                return PreCheck::Evaluate;
            }
            Ok(ApprovalStatus::Rejected { reason }) => {
                self.markers.clear(&key);
                return PreCheck::Stop(GovernanceFailure::approval_rejected(reason.as_deref()));
            }
            Ok(ApprovalStatus::Expired { .. }) => {
                self.markers.clear(&key);
                return PreCheck::Stop(GovernanceFailure::approval_expired(self.activity));
            }
            Err(e) if e.is_unauthorized() => {
                self.markers.clear(&key);
                return PreCheck::Stop(GovernanceFailure::core_unavailable(&e));
            }
            Ok(ApprovalStatus::Pending { .. }) => {
                self.markers.poll_answered(&key);
                GovernanceFailure::awaiting_approval(
                    &self.activity.activity_type,
                    self.poll_interval,
                )
            }
            Err(e) => {
                let failures = self.markers.poll_failed(&key);
                if let Some(stop) = self.too_many_failures(failures, &e) {
                    self.markers.clear(&key);
                    return PreCheck::Stop(stop);
                }
                tracing::warn!(error = %e, failures, "approval poll failed; treating the approval as pending");
                GovernanceFailure::approval_check_failed(poll_backoff(self.poll_interval, failures))
            }
        };
        if self.timed_out(None) {
            self.markers.clear(&key);
            return PreCheck::Stop(GovernanceFailure::approval_timed_out(
                self.activity,
                self.timeout,
            ));
        }
        PreCheck::Stop(pending)
    }

    /// After `failures` failed polls in a row: under `fail_closed`, once the limit is reached,
    /// the wait ends with a `GovernanceHalt` naming the failure; under `fail_open` it goes on
    /// (an approval is never assumed), polling at the longest back-off.
    fn too_many_failures(
        &self,
        failures: u32,
        error: &GovernanceApiError,
    ) -> Option<GovernanceFailure> {
        let reached = self.failure_limit > 0 && failures >= self.failure_limit;
        // The wait is for an activity, which may change anything: both closed policies stop.
        let closes = matches!(
            self.client.config().error_policy(),
            ErrorPolicy::FailClosed | ErrorPolicy::FailClosedDestructive
        );
        (reached && closes).then(|| {
            tracing::error!(error = %error, failures, "approval polls keep failing; stopping (fail_closed)");
            GovernanceFailure::core_unavailable(error)
        })
    }

    /// REQUIRE_APPROVAL on ActivityStarted or on an operation (`stage`): remember the request
    /// `response` opened and fail the attempt with a retry.
    pub(crate) fn request(&self, response: &EvaluateResponse, stage: &str) -> GovernanceFailure {
        let key = request_of(self.activity);
        if self.timed_out(None) {
            self.markers.clear(&key);
            return GovernanceFailure::approval_timed_out(self.activity, self.timeout);
        }
        self.markers
            .mark(key, AskedFor::of(response, stage), self.timeout);
        GovernanceFailure::approval_required(response.reason.as_deref(), self.poll_interval)
    }

    /// REQUIRE_APPROVAL on ActivityCompleted: the body has run, so a retry would run it again.
    /// Waits within the attempt instead, polling until a decision, Core's expiry, the approval
    /// timeout or `deadline` (the attempt's own deadline, minus a poll interval).
    pub(crate) async fn wait_within_attempt(
        &self,
        response: &EvaluateResponse,
        deadline: Option<SystemTime>,
    ) -> Result<(), GovernanceFailure> {
        let key = request_of(self.activity);
        let asked_for = AskedFor::of(response, "ActivityCompleted");
        let started = SystemTime::now();
        let mut failures = 0;
        loop {
            let now = SystemTime::now();
            let out_of_time = deadline.is_some_and(|d| now + self.poll_interval >= d)
                || now.duration_since(started).is_ok_and(|w| w > self.timeout);
            if out_of_time {
                return Err(GovernanceFailure::approval_timed_out(
                    self.activity,
                    now.duration_since(started).unwrap_or_default(),
                ));
            }
            tokio::time::sleep(poll_backoff(self.poll_interval, failures)).await;
            let polled = match self.poll(&key, &asked_for).await {
                Ok(ApprovalAnswer {
                    patch: Some(request),
                    ..
                }) => return Err(GovernanceFailure::patch(request)),
                other => other.map(|answer| answer.status),
            };
            match polled {
                Ok(ApprovalStatus::Approved { .. }) => return Ok(()),
                Ok(ApprovalStatus::Rejected { reason }) => {
                    return Err(GovernanceFailure::approval_rejected(reason.as_deref()));
                }
                Ok(ApprovalStatus::Expired { .. }) => {
                    return Err(GovernanceFailure::approval_expired(self.activity));
                }
                Err(e) if e.is_unauthorized() => {
                    return Err(GovernanceFailure::core_unavailable(&e));
                }
                Ok(_) => failures = 0,
                Err(e) => {
                    failures += 1;
                    if let Some(stop) = self.too_many_failures(failures, &e) {
                        return Err(stop);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str) -> ApprovalRequest {
        ApprovalRequest {
            workflow_id: "w".into(),
            run_id: "r".into(),
            activity_id: id.into(),
        }
    }

    fn asked(id: Option<&str>) -> AskedFor {
        AskedFor {
            approval_id: id.map(str::to_owned),
            event_id: Some("gev-1".into()),
            stage: "ActivityStarted".into(),
        }
    }

    #[test]
    fn markers_are_bounded_by_age_and_replaced_by_new_requests() {
        let m = ApprovalMarkers::default();
        m.mark(key("1"), asked(Some("apr-1")), Duration::from_secs(60));
        assert_eq!(m.asked_for(&key("1")), Some(asked(Some("apr-1"))));
        m.mark(key("1"), asked(Some("apr-2")), Duration::from_secs(60));
        assert_eq!(m.asked_for(&key("1")), Some(asked(Some("apr-2"))));
        m.mark(key("2"), asked(None), Duration::ZERO);
        // Marking with keep = 0 drops every older entry, including "1".
        std::thread::sleep(Duration::from_millis(5));
        m.mark(key("3"), asked(None), Duration::ZERO);
        assert_eq!(m.asked_for(&key("1")), None);
        assert!(m.asked_for(&key("3")).is_some());
        m.clear(&key("3"));
        assert_eq!(m.len(), 0);
    }

    #[test]
    fn backoff_doubles_up_to_a_ceiling() {
        let i = Duration::from_secs(5);
        let waits: Vec<u64> = (0..6).map(|f| poll_backoff(i, f).as_secs()).collect();
        assert_eq!(waits, [5, 10, 20, 40, 60, 60]);
        assert_eq!(
            poll_backoff(Duration::from_secs(90), 3),
            Duration::from_secs(90)
        );
        assert_eq!(poll_backoff(i, u32::MAX), Duration::from_secs(60));
        let m = ApprovalMarkers::default();
        m.mark(key("1"), asked(None), Duration::from_secs(60));
        assert_eq!((m.poll_failed(&key("1")), m.poll_failed(&key("1"))), (1, 2));
        m.poll_answered(&key("1"));
        assert_eq!(m.poll_failed(&key("1")), 1);
    }

    #[test]
    fn a_grant_counts_only_for_the_request_it_names() {
        let answer = |id: Option<&str>| ApprovalAnswer {
            approval_id: id.map(str::to_owned),
            ..ApprovalAnswer::of(ApprovalStatus::Approved { reason: None })
        };
        let waiting = asked(Some("apr-2"));
        assert!(waiting.answered_by(&answer(Some("apr-2"))));
        assert!(
            waiting.answered_by(&answer(Some("gev-1"))),
            "Core's evaluation id"
        );
        assert!(!waiting.answered_by(&answer(Some("apr-1"))));
        assert!(
            waiting.answered_by(&answer(None)),
            "an answer naming nothing"
        );
        let unnamed = AskedFor {
            approval_id: None,
            event_id: None,
            stage: "x".into(),
        };
        assert!(unnamed.answered_by(&answer(Some("apr-9"))));
    }
}
