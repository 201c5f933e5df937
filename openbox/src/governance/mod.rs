//! Governance independent of how it is wired into Temporal: the [`Governor`] (Core client,
//! options, approval state, statistics), the activity lifecycle, verdict enforcement,
//! redaction, approvals and the failures they produce.

pub(crate) mod activity;
pub(crate) mod approval;
mod deferred;
pub mod failure;
pub mod metrics;
pub mod options;
pub(crate) mod redaction;
pub mod scope;
mod stats;

use std::future::Future;
use std::sync::{Arc, OnceLock};

pub use activity::ActivitySettings;
pub(crate) use stats::GovernanceStats;
pub use stats::StatsSnapshot;

use crate::client::OpenBoxError;
use crate::client::{CoreClient, Decision};
use crate::config::OpenBoxConfig;
use crate::wire::EvaluateBody;

use approval::ApprovalMarkers;
use options::GovernanceOptions;

/// The start-up key check (`GET /api/v1/auth/validate`) with the error policy applied.
///
/// A rejected key (401/403) is always an error. An unreachable Core is an error under
/// `fail_closed`; under `fail_open` it is logged and the worker starts anyway, because
/// `fail_open` puts availability first: its events are then counted as lost until Core answers.
pub(crate) async fn check_key_at_start(client: &CoreClient) -> Result<(), OpenBoxError> {
    match client.validate().await {
        Err(OpenBoxError::Network { url, source })
            if client.config().error_policy() != crate::config::ErrorPolicy::FailClosed =>
        {
            tracing::warn!(%url, error = %source, "OpenBox Core does not answer the key check; starting anyway");
            Ok(())
        }
        other => other,
    }
}

/// Everything governed code needs: the Core client, the options and the per-process state.
/// Cheap to clone.
#[derive(Clone, Debug)]
pub struct Governor {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    client: CoreClient,
    options: GovernanceOptions,
    approvals: ApprovalMarkers,
    stats: GovernanceStats,
}

static GLOBAL: OnceLock<Governor> = OnceLock::new();

tokio::task_local! {
    static SCOPED: Governor;
}

impl Governor {
    /// A governor over an existing client (no network traffic).
    pub(crate) fn new(client: CoreClient, options: GovernanceOptions) -> Self {
        Governor {
            inner: Arc::new(Inner {
                stats: GovernanceStats::for_client(client.clone()),
                client,
                options,
                approvals: ApprovalMarkers::default(),
            }),
        }
    }

    /// Builds the client and checks the API key with Core (`GET /api/v1/auth/validate`).
    pub async fn connect(
        config: OpenBoxConfig,
        options: GovernanceOptions,
    ) -> Result<Self, OpenBoxError> {
        let client = CoreClient::new(config)?;
        check_key_at_start(&client).await?;
        Ok(Governor::new(client, options))
    }

    /// The Core client.
    pub(crate) fn client(&self) -> &CoreClient {
        &self.inner.client
    }

    /// The options.
    pub fn options(&self) -> &GovernanceOptions {
        &self.inner.options
    }

    /// Counters of this governor (events, failures, time spent governing), as of now.
    pub fn stats(&self) -> StatsSnapshot {
        self.inner.stats.snapshot()
    }

    /// What the spool holds and has done, when one is configured.
    pub fn spool_stats(&self) -> Option<crate::client::SpoolStats> {
        self.inner.client.spool_stats()
    }

    /// The running counters, for the crate's own bookkeeping.
    pub(crate) fn counters(&self) -> &GovernanceStats {
        &self.inner.stats
    }

    /// Approvals this process asked for and still waits on (bounded by the approval timeout).
    pub fn pending_approvals(&self) -> usize {
        self.inner.approvals.len()
    }

    pub(crate) fn approval_markers(&self) -> &ApprovalMarkers {
        &self.inner.approvals
    }

    /// Evaluates `body` and applies the error policy, counting the outcome. Observed
    /// (`mode` is [`Enforcement::Observe`]), what Core decided is logged and counted as what
    /// would have happened, and the caller gets an ALLOW (or, without a verdict, a `Proceed`,
    /// counted as an event that went on without Core, never as a halt).
    pub(crate) async fn decide<B: EvaluateBody + ?Sized>(
        &self,
        body: &B,
        mode: options::Enforcement,
    ) -> Decision {
        let started = std::time::Instant::now();
        let observe = mode == options::Enforcement::Observe;
        let decision = self.client().decide_marked(body, observe).await;
        let elapsed = started.elapsed();
        if let Decision::Verdict(r) = &decision {
            tracing::debug!(
                event_type = body.event_type(),
                hook = body.is_hook(),
                verdict = r.verdict.as_str(),
                reason = r.reason.as_deref(),
                elapsed_us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
                "OpenBox Core evaluation"
            );
        }
        let decision = if observe {
            self.record_observed(body, &decision);
            match decision {
                // Observed, a missing verdict stops nothing: the event went on without Core.
                Decision::Halt(e) => Decision::Proceed(e),
                other => other,
            }
        } else {
            decision
        };
        // Counted as enforced: a verdict as Core gave it, a missing one by what followed.
        metrics::record_evaluation(body.event_type(), body.is_hook(), &decision, elapsed);
        self.counters().count(&decision);
        match decision {
            Decision::Verdict(_) if observe => {
                Decision::Verdict(crate::wire::EvaluateResponse::allow())
            }
            other => other,
        }
    }

    /// Logs and counts what an observed evaluation would have done (nothing is enforced).
    fn record_observed<B: EvaluateBody + ?Sized>(&self, body: &B, decision: &Decision) {
        let would_have = match decision {
            Decision::Verdict(r) => r.would_have(),
            Decision::Halt(_) => "halted_no_verdict",
            Decision::Proceed(_) => "proceeded_no_verdict",
        };
        metrics::record_observed(body.event_type(), body.is_hook(), would_have);
        if !matches!(would_have, "allowed" | "proceeded_no_verdict") {
            self.counters().observed_intervention();
            let reason = match decision {
                Decision::Verdict(r) => r.reason.clone().unwrap_or_default(),
                Decision::Halt(e) | Decision::Proceed(e) => e.to_string(),
            };
            tracing::info!(
                event_type = body.event_type(),
                hook = body.is_hook(),
                would_have,
                %reason,
                "observe mode: not enforced"
            );
        }
    }

    /// Makes this governor the process-wide default for `#[governed_activity]` and hooks that run
    /// outside a worker with [`crate::OpenBoxPlugin`]. Returns `false` if one is installed already.
    pub fn install_global(&self) -> bool {
        GLOBAL.set(self.clone()).is_ok()
    }

    /// Runs `fut` with this governor as the default (takes precedence over the global one).
    /// Handy in tests, where each test talks to its own Core.
    pub async fn scope<F: Future>(&self, fut: F) -> F::Output {
        SCOPED.scope(self.clone(), fut).await
    }

    /// The governor of the current task scope, else the global one.
    pub fn current() -> Option<Governor> {
        SCOPED
            .try_with(Governor::clone)
            .ok()
            .or_else(|| GLOBAL.get().cloned())
    }
}
