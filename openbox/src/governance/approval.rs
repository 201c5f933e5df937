//! Human approval through activity retries (§4, decision D8).
//!
//! A REQUIRE_APPROVAL fails the attempt with a retryable `ApprovalPending` whose retry delay is
//! the poll interval. Every later attempt of the same activity starts with a poll of
//! `POST /api/v1/governance/approval`:
//!
//! | Poll says | Then |
//! |---|---|
//! | approved | ActivityStarted is re-sent and its verdict enforced |
//! | rejected | non-retryable `ApprovalRejected` |
//! | expired (Core) or older than the approval timeout (SDK) | non-retryable `ApprovalExpired` |
//! | pending, or the poll failed | `ApprovalPending` again — when this worker knows it asked |
//!
//! Which worker asked is process memory, so a retry on another worker (or after a restart) does
//! not know. There a pending or failed poll falls through to re-sending ActivityStarted: Core
//! answers REQUIRE_APPROVAL again while the request is open, or the decision once it is made.
//! The approval timeout is measured from the activity's first schedule time, which Temporal
//! keeps across attempts and workers.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use crate::client::CoreClient;
use crate::error::GovernanceApiError;
use crate::wire::{ActivityIdentity, ApprovalRequest, ApprovalStatus};

use super::failure::GovernanceFailure;

/// The approvals this process asked for and is waiting on, keyed like the poll.
#[derive(Debug, Default)]
pub(crate) struct ApprovalMarkers {
    asked: Mutex<HashMap<ApprovalRequest, SystemTime>>,
}

impl ApprovalMarkers {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ApprovalRequest, SystemTime>> {
        self.asked.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records that an approval was requested; forgets entries older than `keep` so the map
    /// stays bounded even for activities that are never retried.
    pub(crate) fn mark(&self, key: ApprovalRequest, keep: Duration) {
        let now = SystemTime::now();
        let mut asked = self.lock();
        asked.retain(|_, at| now.duration_since(*at).map_or(true, |age| age <= keep));
        asked.entry(key).or_insert(now);
    }

    pub(crate) fn is_marked(&self, key: &ApprovalRequest) -> bool {
        self.lock().contains_key(key)
    }

    pub(crate) fn clear(&self, key: &ApprovalRequest) {
        self.lock().remove(key);
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
    /// Evaluate ActivityStarted as usual; `approved` when the poll just saw a grant.
    Evaluate {
        /// The poll answered "approved".
        approved: bool,
    },
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
    /// When the activity was first scheduled (across attempts), if known.
    pub scheduled_time: Option<SystemTime>,
}

impl ApprovalContext<'_> {
    fn timed_out(&self, since_marker: Option<SystemTime>) -> bool {
        let since = self.scheduled_time.or(since_marker);
        since.is_some_and(|t| {
            SystemTime::now()
                .duration_since(t)
                .is_ok_and(|waited| waited > self.timeout)
        })
    }

    /// One approval poll, counted in the approval-poll metric.
    async fn poll(&self, key: &ApprovalRequest) -> Result<ApprovalStatus, GovernanceApiError> {
        let result = self.client.poll_approval(key).await;
        super::metrics::record_approval_poll(match &result {
            Ok(ApprovalStatus::Pending { .. }) => "pending",
            Ok(ApprovalStatus::Approved { .. }) => "approved",
            Ok(ApprovalStatus::Rejected { .. }) => "rejected",
            Ok(ApprovalStatus::Expired { .. }) => "expired",
            Err(_) => "error",
        });
        result
    }

    /// The poll at the start of attempt > 1.
    pub(crate) async fn pre_check(&self) -> PreCheck {
        let key = request_of(self.activity);
        let asked_here = self.markers.is_marked(&key);
        let pending = match self.poll(&key).await {
            Ok(ApprovalStatus::Approved { reason }) => {
                tracing::info!(activity_type = %self.activity.activity_type, ?reason, "approval granted");
                self.markers.clear(&key);
                return PreCheck::Evaluate { approved: true };
            }
            Ok(ApprovalStatus::Rejected { reason }) => {
                self.markers.clear(&key);
                return PreCheck::Stop(GovernanceFailure::approval_rejected(reason.as_deref()));
            }
            Ok(ApprovalStatus::Expired { .. }) => {
                self.markers.clear(&key);
                return PreCheck::Stop(GovernanceFailure::approval_expired(self.activity));
            }
            Err(GovernanceApiError::Unauthorized { status }) => {
                self.markers.clear(&key);
                return PreCheck::Stop(GovernanceFailure::core_unavailable(
                    &GovernanceApiError::Unauthorized { status },
                ));
            }
            Ok(ApprovalStatus::Pending { .. }) => GovernanceFailure::awaiting_approval(
                &self.activity.activity_type,
                self.poll_interval,
            ),
            Err(e) => {
                tracing::warn!(error = %e, "approval poll failed; treating the approval as pending");
                GovernanceFailure::approval_check_failed(self.poll_interval)
            }
        };
        if !asked_here {
            // Another worker (or an earlier process) asked: let Core's re-evaluation decide.
            return PreCheck::Evaluate { approved: false };
        }
        if self.timed_out(None) {
            self.markers.clear(&key);
            return PreCheck::Stop(GovernanceFailure::approval_timed_out(
                self.activity,
                self.timeout,
            ));
        }
        PreCheck::Stop(pending)
    }

    /// REQUIRE_APPROVAL on ActivityStarted: remember it and fail the attempt with a retry.
    pub(crate) fn request(&self, reason: Option<&str>) -> GovernanceFailure {
        let key = request_of(self.activity);
        if self.timed_out(None) {
            self.markers.clear(&key);
            return GovernanceFailure::approval_timed_out(self.activity, self.timeout);
        }
        self.markers.mark(key, self.timeout);
        GovernanceFailure::approval_required(reason, self.poll_interval)
    }

    /// REQUIRE_APPROVAL on ActivityCompleted: the body has run, so a retry would run it again.
    /// Waits within the attempt instead, polling until a decision, Core's expiry, the approval
    /// timeout or `deadline` (the attempt's own deadline, minus a poll interval).
    pub(crate) async fn wait_within_attempt(
        &self,
        deadline: Option<SystemTime>,
    ) -> Result<(), GovernanceFailure> {
        let key = request_of(self.activity);
        let started = SystemTime::now();
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
            tokio::time::sleep(self.poll_interval).await;
            match self.poll(&key).await {
                Ok(ApprovalStatus::Approved { .. }) => return Ok(()),
                Ok(ApprovalStatus::Rejected { reason }) => {
                    return Err(GovernanceFailure::approval_rejected(reason.as_deref()));
                }
                Ok(ApprovalStatus::Expired { .. }) => {
                    return Err(GovernanceFailure::approval_expired(self.activity));
                }
                Err(GovernanceApiError::Unauthorized { status }) => {
                    return Err(GovernanceFailure::core_unavailable(
                        &GovernanceApiError::Unauthorized { status },
                    ));
                }
                Ok(ApprovalStatus::Pending { .. }) | Err(_) => continue,
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

    #[test]
    fn markers_are_bounded_by_age() {
        let m = ApprovalMarkers::default();
        m.mark(key("1"), Duration::from_secs(60));
        assert!(m.is_marked(&key("1")));
        m.mark(key("2"), Duration::ZERO);
        // Marking with keep = 0 drops every older entry, including "1".
        std::thread::sleep(Duration::from_millis(5));
        m.mark(key("3"), Duration::ZERO);
        assert!(!m.is_marked(&key("1")));
        assert!(m.is_marked(&key("3")));
        m.clear(&key("3"));
        assert_eq!(m.len(), 0);
    }
}
