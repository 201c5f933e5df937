//! The carrier activity `send_governance_event`: workflow code cannot do I/O, so workflow-side
//! events are sent by this activity, and its result — Core's decision — is recorded in the
//! history, which makes replays deterministic and free of Core calls.
//!
//! Its input is only the event: the API key stays in worker-side state, out of histories.

// `#[activities]` generates an undocumented marker constant, `GovernanceActivities::send_governance_event`.
#![allow(missing_docs)]

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};

use crate::client::Decision;
use crate::governance::Governor;
use crate::governance::options::CARRIER_ACTIVITY;
use crate::wire::{LifecycleEvent, PatchRequest, Verdict};

/// What the workflow sends through the carrier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CarrierInput {
    /// The event, complete with its `timestamp`.
    pub payload: LifecycleEvent,
}

/// Core's decision, as recorded in the workflow history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CarrierOutcome {
    /// The verdict, or `None` when Core gave none.
    pub verdict: Option<Verdict>,
    /// Core's reason.
    pub reason: Option<String>,
    /// The deciding policy.
    pub policy_id: Option<String>,
    /// Risk score.
    pub risk_score: f64,
    /// Why Core gave no verdict, if it did not.
    pub core_error: Option<String>,
    /// `true` when the missing verdict must stop the workflow (fail_closed, 401/403).
    pub stop: bool,
    /// The reasons of a failed guardrails validation, when Core's guardrails refused the event
    /// (absent in histories recorded before it existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guardrails_failed: Option<Vec<String>>,
    /// The restart a BLOCK with a patch asks for (absent in histories recorded before it
    /// existed, and on every other answer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patch: Option<PatchRequest>,
}

impl CarrierOutcome {
    /// The record of a decision Core made about an `event_type` event.
    pub fn from_decision(decision: Decision, event_type: &str) -> Self {
        match decision {
            Decision::Verdict(r) => CarrierOutcome {
                patch: r.patch_request(event_type),
                guardrails_failed: r
                    .guardrails
                    .as_ref()
                    .filter(|g| !g.validation_passed)
                    .map(|g| g.reason_texts().into_iter().map(str::to_owned).collect()),
                verdict: Some(r.verdict),
                reason: r.reason,
                policy_id: r.policy_id,
                risk_score: r.risk_score,
                core_error: None,
                stop: false,
            },
            Decision::Proceed(e) => CarrierOutcome::no_verdict(e.to_string(), false),
            Decision::Halt(e) => CarrierOutcome::no_verdict(e.to_string(), true),
        }
    }

    /// No verdict, for `error`.
    pub fn no_verdict(error: String, stop: bool) -> Self {
        CarrierOutcome {
            verdict: None,
            reason: None,
            policy_id: None,
            risk_score: 0.0,
            core_error: Some(error),
            stop,
            guardrails_failed: None,
            patch: None,
        }
    }
}

/// The activities OpenBox registers on a worker. Public for manual wiring with
/// `WorkerOptions::register_activities`.
pub struct GovernanceActivities {
    governor: Governor,
}

impl GovernanceActivities {
    /// The carrier activities, sending with `governor`.
    pub fn new(governor: Governor) -> Self {
        GovernanceActivities { governor }
    }
}

#[activities]
impl GovernanceActivities {
    /// Sends one workflow-side event to Core and returns its decision. Never fails for a Core
    /// error: the decision (or its absence) is the result, so the workflow applies the error
    /// policy deterministically.
    #[activity(name = CARRIER_ACTIVITY)]
    pub async fn send_governance_event(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: CarrierInput,
    ) -> Result<CarrierOutcome, ActivityError> {
        let mode = self.governor.options().enforcement();
        let decision = self.governor.decide(&input.payload, mode).await;
        Ok(CarrierOutcome::from_decision(
            decision,
            input.payload.event_type(),
        ))
    }
}
