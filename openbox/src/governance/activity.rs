//! The governed lifecycle of one activity attempt, on JSON values: shared by the activity
//! interceptor (plugin path) and `#[governed_activity]` (macro path), which differ only in how
//! they turn typed arguments and results into JSON and back.
//!
//! ```text
//! begin:  [attempt > 1: approval poll] → ActivityStarted → enforce (in the reference's order) → input redaction
//! body
//! finish: ActivityCompleted (also on failure: Core hears how every attempt it allowed ended) → enforce → output redaction
//! ```
//!
//! Every attempt that Core was told started and that ends is reported by ActivityCompleted,
//! however it ends: a BLOCK or HALT on ActivityStarted, failed guardrails, an input redaction
//! that cannot be applied, or the body's own end (a failure, or a hook's stop). A REQUIRE_APPROVAL
//! on ActivityStarted does not end the activity: it waits, and ActivityStarted is sent again once
//! approved — so a rule on ActivityCompleted never fires for a body that has not run.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use serde_json::Value;

use crate::client::Decision;
use crate::wire::time::{now_timestamp, unix_seconds};
use crate::wire::{
    ActivityCompleted, ActivityFailureInfo, ActivityIdentity, ActivityStarted, ActivityStatus,
    EvaluateResponse, GuardrailsTarget, LifecycleEvent, Verdict, WorkflowTelemetry,
};

use super::Governor;
use super::approval::{ApprovalContext, PreCheck};
use super::failure::{FailureKind, GovernanceFailure};
use super::redaction::{redact_input, redact_output};
use super::scope::ActivityScope;

/// Per-activity choices (from `#[governed_activity(...)]`; all on by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActivitySettings {
    /// Send the arguments as `activity_input` (otherwise `[]`).
    pub capture_input: bool,
    /// Send the result as `activity_output` (otherwise `null`).
    pub capture_output: bool,
    /// Wait for a human on REQUIRE_APPROVAL (otherwise it blocks).
    pub approval: bool,
}

impl Default for ActivitySettings {
    fn default() -> Self {
        ActivitySettings {
            capture_input: true,
            capture_output: true,
            approval: true,
        }
    }
}

/// Where an attempt is in Temporal's terms.
#[derive(Debug, Clone)]
pub(crate) struct AttemptInfo {
    pub identity: Arc<ActivityIdentity>,
    /// First schedule time of the activity (stable across attempts).
    pub scheduled_time: Option<SystemTime>,
    /// This attempt's deadline.
    pub deadline: Option<SystemTime>,
}

/// Why `begin` stopped the attempt, and whether Core was told it started.
struct Stopped {
    failure: GovernanceFailure,
    /// ActivityStarted was sent (with this input): ActivityCompleted must follow.
    started_with: Option<Vec<Value>>,
}

impl From<GovernanceFailure> for Stopped {
    fn from(failure: GovernanceFailure) -> Self {
        Stopped {
            failure,
            started_with: None,
        }
    }
}

/// How the body ended.
pub(crate) enum BodyOutcome {
    /// It returned this value (as JSON).
    Completed(Value),
    /// It failed.
    Failed(ActivityFailureInfo),
}

/// A started, governed attempt.
pub(crate) struct Attempt {
    scope: Arc<ActivityScope>,
    settings: ActivitySettings,
    info: AttemptInfo,
    started_at: SystemTime,
}

impl Drop for Attempt {
    /// An attempt dropped unfinished (cancelled, or its worker shutting down) is over too.
    fn drop(&mut self) {
        self.scope.end();
    }
}

fn constraint_log(response: &EvaluateResponse, context: &str) {
    if let Some(reason) = &response.reason {
        tracing::info!(
            policy = response.policy_id.as_deref().unwrap_or("-"),
            "Governance constraint applied [{context}]: {reason}"
        );
    }
}

/// HALT > BLOCK (with a patch: a restart) > guardrails failure, common to both lifecycle
/// stages, in the reference's order.
fn enforce_stops(response: &EvaluateResponse, output: bool) -> Result<(), GovernanceFailure> {
    let event_type = if output {
        "ActivityCompleted"
    } else {
        "ActivityStarted"
    };
    if let Some(request) = response.patch_request(event_type) {
        return Err(GovernanceFailure::patch(request));
    }
    match response.verdict {
        Verdict::Halt => return Err(GovernanceFailure::halted(response.reason.as_deref())),
        Verdict::Block => return Err(GovernanceFailure::blocked(response.reason.as_deref())),
        _ => {}
    }
    if let Some(g) = &response.guardrails
        && !g.validation_passed
    {
        return Err(GovernanceFailure::guardrails(&g.reason_texts(), output));
    }
    Ok(())
}

impl Attempt {
    fn approval<'a>(&'a self, gov: &'a Governor) -> ApprovalContext<'a> {
        approval_context(gov, &self.info)
    }

    /// The scope hooks of this attempt report into.
    pub(crate) fn scope(&self) -> &Arc<ActivityScope> {
        &self.scope
    }

    /// Approval poll (retries), ActivityStarted, enforcement. On success, returns the attempt
    /// and — when guardrails redacted the input — the arguments the body must run with. When
    /// the attempt stops after ActivityStarted was sent, ActivityCompleted (`failed`) is sent
    /// before the failure is returned.
    pub(crate) async fn begin(
        gov: Governor,
        info: AttemptInfo,
        input: Vec<Value>,
        settings: ActivitySettings,
    ) -> Result<(Attempt, Option<Vec<Value>>), GovernanceFailure> {
        let clock = Instant::now();
        let started_at = SystemTime::now();
        let input = if settings.capture_input {
            input
        } else {
            Vec::new()
        };
        let result = Self::begin_inner(&gov, &info, &input, settings).await;
        gov.counters().add_governance_time(clock.elapsed());
        let redacted = match result {
            Ok(redacted) => redacted,
            Err(Stopped {
                failure,
                started_with: None,
            }) => return Err(failure),
            Err(Stopped {
                failure,
                started_with: Some(seen),
            }) => {
                let attempt = Self::open(gov, info, seen, settings, started_at);
                return Err(attempt.abandon(failure).await);
            }
        };
        let reported = redacted.clone().unwrap_or(input);
        Ok((
            Self::open(gov, info, reported, settings, started_at),
            redacted,
        ))
    }

    fn open(
        gov: Governor,
        info: AttemptInfo,
        input: Vec<Value>,
        settings: ActivitySettings,
        started_at: SystemTime,
    ) -> Self {
        let scope = Arc::new(ActivityScope::new(
            gov,
            info.identity.clone(),
            Arc::new(input),
            info.scheduled_time,
            settings.approval,
        ));
        Attempt {
            scope,
            settings,
            info,
            started_at,
        }
    }

    /// Ends an attempt that will not run its body (or whose input could not be put back) with
    /// `failure`: ActivityCompleted reports it, and the failure stands unless Core answers that
    /// with a HALT.
    pub(crate) async fn abandon(self, failure: GovernanceFailure) -> GovernanceFailure {
        let info = ActivityFailureInfo {
            error_type: failure.type_name().into(),
            message: failure.message().into(),
        };
        match self.finish(BodyOutcome::Failed(info)).await {
            Err(stop) if stop.kind() == FailureKind::Halt => stop,
            _ => failure,
        }
    }

    async fn begin_inner(
        gov: &Governor,
        info: &AttemptInfo,
        input: &[Value],
        settings: ActivitySettings,
    ) -> Result<Option<Vec<Value>>, Stopped> {
        let options = gov.options();
        let approvals =
            options.approvals_enabled_for(&info.identity.activity_type) && settings.approval;
        let approval = approval_context(gov, info);
        if approvals
            && info.identity.attempt > 1
            && let PreCheck::Stop(failure) = approval.pre_check().await
        {
            return Err(failure.into());
        }
        if !options.send_activity_start_event() {
            return Ok(None);
        }
        let event = LifecycleEvent::ActivityStarted(ActivityStarted {
            source: WorkflowTelemetry,
            activity: info.identity.clone(),
            timestamp: now_timestamp(),
            activity_input: Arc::new(input.to_vec()),
        });
        let mode = options.enforcement_for_activity(&info.identity.activity_type);
        let response = match gov.decide(&event, mode).await {
            Decision::Verdict(response) => response,
            Decision::Proceed(_) => return Ok(None),
            Decision::Halt(error) => {
                return Err(Stopped {
                    failure: GovernanceFailure::core_unavailable(&error),
                    started_with: Some(input.to_vec()),
                });
            }
        };
        let stop = |failure: GovernanceFailure| Stopped {
            failure,
            started_with: Some(input.to_vec()),
        };
        enforce_stops(&response, false).map_err(stop)?;
        match response.verdict {
            // A new request, even right after a grant: the grant was for another one. The
            // activity waits rather than ends, so no ActivityCompleted follows.
            Verdict::RequireApproval if approvals => {
                return Err(approval.request(&response, "ActivityStarted").into());
            }
            Verdict::RequireApproval => {
                return Err(stop(GovernanceFailure::approval_unavailable(
                    response.reason.as_deref(),
                )));
            }
            Verdict::Constrain => constraint_log(&response, "activity_start"),
            _ => {}
        }
        let Some(guardrails) = response.guardrails.as_ref().filter(|g| {
            g.target() == Some(GuardrailsTarget::ActivityInput) && !g.redacted_input.is_null()
        }) else {
            return Ok(None);
        };
        if input.is_empty() {
            // Core asked to redact an input this SDK could not capture (unknown argument type,
            // or capture_input = false): running unredacted would defeat the guardrail.
            return Err(stop(GovernanceFailure::redaction_unusable(
                "Core redacted the input, but the activity's arguments were not captured \
                 (annotate its impl with #[openbox::governed_activities] or describe it on the plugin)",
            )));
        }
        redact_input(input, &guardrails.redacted_input)
            .map_err(|e| stop(GovernanceFailure::redaction_unusable(&e.to_string())))
    }

    /// ActivityCompleted and its enforcement. `Ok(Some(v))`: the output to return instead (output
    /// redaction). `Err`: the attempt fails with this instead of its own outcome.
    pub(crate) async fn finish(
        self,
        outcome: BodyOutcome,
    ) -> Result<Option<Value>, GovernanceFailure> {
        let clock = Instant::now();
        let gov = self.scope.governor().clone();
        let result = self.finish_inner(&gov, outcome).await;
        gov.counters().add_governance_time(clock.elapsed());
        result
    }

    async fn finish_inner(
        self,
        gov: &Governor,
        outcome: BodyOutcome,
    ) -> Result<Option<Value>, GovernanceFailure> {
        // The body has returned: clients holding this scope refuse new calls from now on.
        self.scope.end();
        // Deferred `completed` evaluations answer first: their verdicts decide the attempt.
        self.scope.settle().await;
        let hook_stop = self.scope.take_hook_stop();
        let end = SystemTime::now();
        let (start_s, end_s) = (unix_seconds(self.started_at), unix_seconds(end));
        // A hook's stop is the attempt's failure, whatever the body made of the hook's error.
        let stop_info = hook_stop.as_ref().map(|stop| ActivityFailureInfo {
            error_type: stop.type_name().into(),
            message: stop.message().into(),
        });
        let (status, output, error, succeeded) = match (&outcome, stop_info) {
            (_, Some(info)) => (ActivityStatus::Failed, Value::Null, Some(info), false),
            (BodyOutcome::Completed(v), None) => {
                let output = if self.settings.capture_output {
                    v.clone()
                } else {
                    Value::Null
                };
                (ActivityStatus::Completed, output, None, true)
            }
            (BodyOutcome::Failed(info), None) => (
                ActivityStatus::Failed,
                Value::Null,
                Some(info.clone()),
                false,
            ),
        };
        let spans = self.scope.take_spans();
        let event = LifecycleEvent::ActivityCompleted(ActivityCompleted {
            source: WorkflowTelemetry,
            activity: self.scope.identity().clone(),
            timestamp: now_timestamp(),
            status,
            start_time: start_s,
            end_time: end_s,
            duration_ms: (end_s - start_s) * 1000.0,
            span_count: spans.len(),
            spans,
            activity_input: self.scope.input(),
            activity_output: output,
            error,
        });
        let mode = gov
            .options()
            .enforcement_for_activity(&self.scope.identity().activity_type);
        let decision = gov.decide(&event, mode).await;
        if !succeeded {
            // The attempt fails anyway; only a HALT replaces its error (so the run ends).
            return match (decision, hook_stop) {
                (Decision::Verdict(r), _) if r.verdict == Verdict::Halt => {
                    Err(GovernanceFailure::halted(r.reason.as_deref()))
                }
                (Decision::Halt(e), _) => Err(GovernanceFailure::core_unavailable(&e)),
                (_, Some(stop)) => Err(stop),
                _ => Ok(None),
            };
        }
        let response = match decision {
            Decision::Verdict(response) => response,
            Decision::Proceed(_) => return Ok(None),
            Decision::Halt(error) => return Err(GovernanceFailure::core_unavailable(&error)),
        };
        enforce_stops(&response, true)?;
        let approvals = gov
            .options()
            .approvals_enabled_for(&self.info.identity.activity_type)
            && self.settings.approval;
        match response.verdict {
            Verdict::RequireApproval if approvals => {
                self.approval(gov)
                    .wait_within_attempt(&response, self.info.deadline)
                    .await?
            }
            Verdict::RequireApproval => {
                return Err(GovernanceFailure::approval_unavailable(
                    response.reason.as_deref(),
                ));
            }
            Verdict::Constrain => constraint_log(&response, "activity_end"),
            _ => {}
        }
        let BodyOutcome::Completed(output) = outcome else {
            return Ok(None);
        };
        Ok(response
            .guardrails
            .as_ref()
            .filter(|g| {
                g.target() == Some(GuardrailsTarget::ActivityOutput) && !g.redacted_input.is_null()
            })
            .filter(|_| self.settings.capture_output)
            .map(|g| redact_output(&output, &g.redacted_input)))
    }
}

fn approval_context<'a>(gov: &'a Governor, info: &'a AttemptInfo) -> ApprovalContext<'a> {
    ApprovalContext::new(gov, &info.identity, info.scheduled_time)
}
