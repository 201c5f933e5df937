//! Memory: this process's live heap and RSS after 10 000 and after 1 000 000 hook evaluations
//! made by governed activities, next to the same workload on a plain worker, with the
//! per-activity state counters at the end. The live heap is exact when the binary installs
//! `openbox_heap_counter::CountingAllocator` (the bench binary does).

use std::time::Instant;

use anyhow::Result;
use futures::StreamExt;
use openbox::Governor;
use temporalio_client::{Client, WorkflowGetResultOptions, WorkflowStartOptions};

use crate::fixtures::{Chain, ChainActivity, ChainPlan};
use crate::measure::rss_kib;

/// One measurement point.
#[derive(Debug, Clone, Copy)]
pub struct Point {
    /// Activities completed so far.
    pub activities: u64,
    /// Hook evaluations made so far.
    pub hook_evaluations: u64,
    /// RSS, KiB.
    pub rss_kib: u64,
    /// Live heap, KiB.
    pub heap_kib: u64,
}

/// The series and what was alive at the end.
#[derive(Debug, Clone)]
pub struct Memory {
    /// After the first batch, then at checkpoints, the last one at the end.
    pub points: Vec<Point>,
    /// `#[traced]` calls per activity (two evaluations each).
    pub traced_calls: u32,
    /// Governed activity scopes alive at the end.
    pub open_scopes: i64,
    /// Attempts registered by the interceptor at the end.
    pub intercepted_attempts: i64,
    /// Approvals waited on at the end.
    pub pending_approvals: usize,
    /// Wall-clock seconds of the whole scenario.
    pub seconds: f64,
}

impl Memory {
    /// Live heap growth from the first point to the last, KiB.
    pub fn heap_growth_kib(&self) -> i64 {
        match (self.points.first(), self.points.last()) {
            (Some(a), Some(b)) => b.heap_kib as i64 - a.heap_kib as i64,
            _ => 0,
        }
    }

    /// Heap kept per activity between the first and the last point, bytes.
    pub fn heap_bytes_per_activity(&self) -> f64 {
        match (self.points.first(), self.points.last()) {
            (Some(a), Some(b)) if b.activities > a.activities => {
                self.heap_growth_kib() as f64 * 1024.0 / (b.activities - a.activities) as f64
            }
            _ => 0.0,
        }
    }
}

/// Shape of the run.
pub struct Plan {
    /// Activities per workflow.
    pub per_workflow: u32,
    /// Workflows in the first batch (the first measurement point).
    pub first_batch: u32,
    /// Workflows in total.
    pub workflows: u32,
    /// Workflows measured between checkpoints.
    pub checkpoint_every: u32,
    /// Workflows in flight at once.
    pub in_flight: usize,
    /// `#[traced]` calls per activity.
    pub traced_calls: u32,
}

async fn batch(
    client: &Client,
    task_queue: &str,
    tag: &str,
    range: std::ops::Range<u32>,
    plan: &Plan,
) -> Result<()> {
    let chain = ChainPlan {
        activities: plan.per_workflow,
        kind: ChainActivity::Work,
        traced_calls: plan.traced_calls,
    };
    let mut runs = futures::stream::iter(range.map(|i| {
        let id = format!("bench-mem-{tag}-{i}");
        async move {
            let handle = client
                .start_workflow(
                    Chain::run,
                    chain,
                    WorkflowStartOptions::new(task_queue, &id).build(),
                )
                .await?;
            let ran = handle
                .get_result(WorkflowGetResultOptions::default())
                .await?;
            anyhow::ensure!(
                ran == chain.activities,
                "workflow {id} ran {ran} activities"
            );
            anyhow::Ok(())
        }
    }))
    .buffer_unordered(plan.in_flight);
    while let Some(r) = runs.next().await {
        r?;
    }
    Ok(())
}

/// Runs the plan on the worker of `task_queue` (governed by `governor`, plain without one).
pub async fn run(
    client: &Client,
    task_queue: &str,
    governor: Option<&Governor>,
    tag: &str,
    plan: &Plan,
) -> Result<Memory> {
    let t = Instant::now();
    let per_activity = u64::from(plan.traced_calls) * 2;
    let point = |workflows: u32| {
        let activities = u64::from(workflows) * u64::from(plan.per_workflow);
        Point {
            activities,
            hook_evaluations: activities * per_activity,
            rss_kib: rss_kib(),
            heap_kib: u64::try_from(openbox_heap_counter::live_bytes() / 1024).unwrap_or(0),
        }
    };
    batch(client, task_queue, tag, 0..plan.first_batch, plan).await?;
    let mut points = vec![point(plan.first_batch)];
    eprintln!("  {:?}", points[0]);
    let mut done = plan.first_batch;
    while done < plan.workflows {
        let next = (done + plan.checkpoint_every).min(plan.workflows);
        batch(client, task_queue, tag, done..next, plan).await?;
        done = next;
        let p = point(done);
        eprintln!("  {p:?} ({:.0} s)", t.elapsed().as_secs_f64());
        points.push(p);
    }
    Ok(Memory {
        points,
        traced_calls: plan.traced_calls,
        open_scopes: governor.map_or(0, |g| g.stats().open_scopes),
        intercepted_attempts: governor.map_or(0, |g| g.stats().intercepted_attempts),
        pending_approvals: governor.map_or(0, Governor::pending_approvals),
        seconds: t.elapsed().as_secs_f64(),
    })
}
