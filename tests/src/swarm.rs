//! Many governed activities at once, with every way an activity can end: success, failure,
//! start-to-close timeout and cancellation by the workflow. For tests of bounded state.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use temporalio_common::RetryPolicy;
use temporalio_macros::{activities, workflow, workflow_methods};
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use temporalio_sdk::{ActivityOptions, WorkflowContext, WorkflowResult};
use temporalio_workflow::WorkflowCancellationToken;

/// How a swarm activity ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Ending {
    /// Returns its number.
    Success,
    /// Fails (one attempt).
    Failure,
    /// Outlives its start-to-close timeout (heartbeats until the worker cancels it).
    Timeout,
    /// Heartbeats until the workflow cancels it.
    Cancelled,
}

impl Ending {
    /// The ending of activity `i`: 60 % success, 20 % failure, 10 % timeout, 10 % cancelled.
    pub fn of(i: u32) -> Ending {
        match i % 10 {
            0..=5 => Ending::Success,
            6 | 7 => Ending::Failure,
            8 => Ending::Timeout,
            _ => Ending::Cancelled,
        }
    }
}

/// The activities.
pub struct Swarm;

#[activities]
impl Swarm {
    /// Ends as told.
    #[activity(name = "swarm_member")]
    pub async fn member(ctx: ActivityContext, ending: Ending) -> Result<String, ActivityError> {
        match ending {
            Ending::Success => Ok("ok".into()),
            Ending::Failure => Err(anyhow::anyhow!("told to fail").into()),
            // Heartbeats until cancelled: by the workflow, or by the worker once the server
            // timed the attempt out (its heartbeat is refused). It never completes on its own in
            // time, however late a loaded server notices the 300 ms timeout.
            Ending::Timeout | Ending::Cancelled => {
                for _ in 0..300 {
                    tokio::select! {
                        _ = ctx.cancelled() => return Err(ActivityError::cancelled()),
                        _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                    }
                    let _ = ctx.record_heartbeat(()).await;
                }
                Ok("never cancelled".into())
            }
        }
    }
}

/// Runs activities `first..first + count` concurrently (at most 300: 30 groups of 10) and
/// reports how each ended.
#[workflow]
#[derive(Default)]
pub struct SwarmWorkflow;

#[workflow_methods]
impl SwarmWorkflow {
    /// Runs the swarm.
    #[run(name = "SwarmWorkflow")]
    pub async fn run(
        ctx: &mut WorkflowContext<Self>,
        range: (u32, u32),
    ) -> WorkflowResult<Vec<String>> {
        let (first, count) = range;
        let cancel = WorkflowCancellationToken::new();
        let mut members = Vec::new();
        for i in first..first + count {
            let ending = Ending::of(i);
            let timeout = if ending == Ending::Timeout {
                Duration::from_millis(300)
            } else {
                Duration::from_secs(60)
            };
            let mut opts = ActivityOptions::with_start_to_close_timeout(timeout)
                .retry_policy(RetryPolicy::builder().maximum_attempts(1).build())
                .heartbeat_timeout(Duration::from_secs(2))
                .build();
            if ending == Ending::Cancelled {
                opts.cancellation_token = Some(cancel.clone());
            }
            members.push(ctx.execute_activity(Swarm::member, ending, opts));
        }
        // `join_all` of more than 30 futures runs them in a `FuturesUnordered`, whose own waker
        // the SDK's nondeterminism detector refuses; groups of at most 10 stay on the plain path.
        let mut groups = Vec::new();
        while !members.is_empty() {
            let rest = members.split_off(members.len().min(10));
            groups.push(futures::future::join_all(std::mem::replace(
                &mut members,
                rest,
            )));
        }
        let all = futures::future::join_all(groups);
        futures::pin_mut!(all);
        let timer = ctx.timer(Duration::from_millis(500));
        futures::pin_mut!(timer);
        let results = match futures::future::select(all, timer).await {
            futures::future::Either::Left((results, _)) => results,
            futures::future::Either::Right((_, all)) => {
                cancel.cancel();
                all.await
            }
        };
        Ok(results
            .into_iter()
            .flatten()
            .map(|r| match r {
                Ok(v) => v,
                Err(e) => format!("ERR:{e}"),
            })
            .collect())
    }
}
