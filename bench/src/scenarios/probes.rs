//! Measurements taken inside one governed activity: the HTTP hook, `#[traced]` and a governed
//! command, each next to a raw round trip to the dev Core measured in the same loop.

use anyhow::Result;
use temporalio_client::{Client, WorkflowGetResultOptions, WorkflowStartOptions};

use crate::fixtures::{HttpProbe, Probe, ProbePlan, ProbeReport, TracedProbe};

/// Runs `plan` in one governed activity on `task_queue`, as workflow `id`.
pub async fn probe(
    client: &Client,
    task_queue: &str,
    id: &str,
    plan: ProbePlan,
) -> Result<ProbeReport> {
    let handle = client
        .start_workflow(
            Probe::run,
            plan,
            WorkflowStartOptions::new(task_queue, id).build(),
        )
        .await?;
    Ok(handle
        .get_result(WorkflowGetResultOptions::default())
        .await?)
}

/// `calls` plain and governed GETs of `url`, alternating, in a governed activity.
pub async fn http(
    client: &Client,
    task_queue: &str,
    tag: &str,
    url: &str,
    core_url: &str,
    calls: u32,
) -> Result<ProbeReport> {
    let plan = ProbePlan::Http(HttpProbe {
        url: url.to_owned(),
        core_url: core_url.to_owned(),
        calls,
    });
    probe(client, task_queue, &format!("bench-http-{tag}"), plan).await
}

/// `calls` plain and `#[traced]` calls, alternating, in a governed activity.
pub async fn traced(
    client: &Client,
    task_queue: &str,
    tag: &str,
    core_url: &str,
    calls: u32,
) -> Result<ProbeReport> {
    let plan = ProbePlan::Traced(TracedProbe {
        core_url: core_url.to_owned(),
        calls,
    });
    probe(client, task_queue, &format!("bench-traced-{tag}"), plan).await
}
