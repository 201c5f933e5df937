//! Activity overhead: one workflow of N sequential no-op activities on a plain worker and on
//! governed workers, alternating, in one run.

use std::time::Instant;

use anyhow::Result;
use openbox::Governor;
use temporalio_client::{Client, WorkflowGetResultOptions, WorkflowStartOptions};

use crate::fixtures::{Chain, ChainActivity, ChainPlan};
use crate::measure::Spread;

/// One worker set-up measured.
pub struct Variant {
    /// Name in the report.
    pub name: &'static str,
    /// Its worker's task queue.
    pub task_queue: String,
    /// The activity its chain runs.
    pub kind: ChainActivity,
    /// Its governor, whose own clock gives the SDK's time (none for the plain worker).
    pub governor: Option<Governor>,
}

/// What one variant measured, per run.
#[derive(Debug, Clone)]
pub struct VariantRuns {
    /// Name.
    pub name: &'static str,
    /// End-to-end milliseconds per activity, one value per run.
    pub per_activity_ms: Vec<f64>,
    /// The SDK's own milliseconds per activity (time spent in governance), per run.
    pub self_ms: Vec<f64>,
}

/// The result: the baseline first, then each governed variant.
#[derive(Debug, Clone)]
pub struct Overhead {
    /// Activities per workflow.
    pub n: u32,
    /// Measured runs (after one warm-up run).
    pub runs: usize,
    /// Per variant.
    pub variants: Vec<VariantRuns>,
}

impl Overhead {
    /// The baseline (first variant).
    pub fn baseline(&self) -> &VariantRuns {
        &self.variants[0]
    }

    /// Governed − plain per activity (ms), paired within each run.
    pub fn difference(&self, v: &VariantRuns) -> Spread {
        let diffs: Vec<f64> = v
            .per_activity_ms
            .iter()
            .zip(&self.baseline().per_activity_ms)
            .map(|(g, p)| g - p)
            .collect();
        Spread::of(&diffs)
    }
}

async fn one_chain(client: &Client, v: &Variant, n: u32, id: &str) -> Result<(f64, f64)> {
    let before = v.governor.as_ref().map(|g| g.stats().governance_nanos);
    let plan = ChainPlan {
        activities: n,
        kind: v.kind,
        traced_calls: 0,
    };
    let t = Instant::now();
    let handle = client
        .start_workflow(
            Chain::run,
            plan,
            WorkflowStartOptions::new(&v.task_queue, id).build(),
        )
        .await?;
    let ran = handle
        .get_result(WorkflowGetResultOptions::default())
        .await?;
    let elapsed = t.elapsed();
    anyhow::ensure!(ran == n, "{} ran {ran} of {n} activities", v.name);
    let self_nanos = match (&v.governor, before) {
        (Some(g), Some(b)) => g.stats().governance_nanos - b,
        _ => 0,
    };
    let per_activity_ms = elapsed.as_secs_f64() * 1e3 / f64::from(n);
    let self_ms = self_nanos as f64 / 1e6 / f64::from(n);
    Ok((per_activity_ms, self_ms))
}

/// Runs one warm-up and `runs` measured rounds; each round runs every variant once, in an
/// order rotated by the round, so that no variant always goes first.
pub async fn run(
    client: &Client,
    variants: &[Variant],
    n: u32,
    runs: usize,
    tag: &str,
) -> Result<Overhead> {
    let mut results: Vec<VariantRuns> = variants
        .iter()
        .map(|v| VariantRuns {
            name: v.name,
            per_activity_ms: Vec::new(),
            self_ms: Vec::new(),
        })
        .collect();
    for round in 0..=runs {
        for k in 0..variants.len() {
            let i = (k + round) % variants.len();
            let id = format!(
                "bench-chain-{tag}-{round}-{}",
                variants[i].name.replace(' ', "-")
            );
            let (per_activity, self_ms) = one_chain(client, &variants[i], n, &id).await?;
            eprintln!(
                "  round {round}{} {:<28} {:.3} ms/activity, SDK {:.4} ms/activity",
                if round == 0 { " (warm-up)" } else { "" },
                variants[i].name,
                per_activity,
                self_ms
            );
            if round > 0 {
                results[i].per_activity_ms.push(per_activity);
                results[i].self_ms.push(self_ms);
            }
        }
    }
    Ok(Overhead {
        n,
        runs,
        variants: results,
    })
}
