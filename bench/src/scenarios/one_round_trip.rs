//! One Core round trip per hook on the critical path: workers whose plugin runs hooks with
//! `HookCompletion::Deferred`, measured next to the plain operation and a raw Core round trip.
//!
//! * against the dev Core of the other sections: a governed GET should cost one round trip
//!   over the unwrapped GET, since its `completed` evaluation no longer holds the caller, and so
//!   should a governed `Command::new("true").output()` over the plain one; and the tower
//!   layer's overhead on a hyper-util GET should stay within 1.3× the reqwest middleware's on
//!   the same GET;
//! * against a second dev Core that delays every answer by [`CORE_DELAY`]: a governed GET
//!   should take one delay, and a governed no-op activity two (ActivityStarted before the
//!   body, ActivityCompleted after it, both verdicts needed), whatever else the SDK does.

use std::time::Duration;

use anyhow::Result;
use temporalio_client::Client;

use super::activity_overhead::{self, Overhead, Variant};
use super::probes;
use crate::fixtures::{HttpProbe, ProbePlan, ProbeReport, TracedProbe};

/// The slow dev Core's delay before every governance answer.
pub const CORE_DELAY: Duration = Duration::from_millis(20);

/// What the scenario measured.
#[derive(Debug, Clone)]
pub struct OneRoundTrip {
    /// Deferred mode, the dev Core of the other sections: unwrapped GET, governed GET and a
    /// raw round trip, alternating in one governed activity.
    pub http: ProbeReport,
    /// Deferred mode, the dev Core of the other sections: `true` run plain and through
    /// `openbox::process`, and its `started` request posted raw.
    pub process: ProbeReport,
    /// Deferred mode: a GET through hyper-util's client, unwrapped and under the tower
    /// layer, with the same GET through reqwest unwrapped and under the middleware.
    pub tower: ProbeReport,
    /// The same against the slow dev Core (its raw round trip includes the delay).
    pub slow_http: ProbeReport,
    /// No-op activity chains: a plain worker and a deferred-mode worker governed by the slow
    /// dev Core (its workflow events off, so that only the activity's own two evaluations count).
    pub slow_chain: Overhead,
}

/// Sizes.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// GETs of each kind against the dev Core of the other sections.
    pub calls: u32,
    /// Runs of `true` of each kind.
    pub process_calls: u32,
    /// GETs of each kind against the slow dev Core.
    pub slow_calls: u32,
    /// Activities per chain.
    pub chain: u32,
    /// Measured rounds of the chains.
    pub runs: usize,
}

/// Where the scenario runs: task queues of workers set up by the caller.
pub struct Queues<'a> {
    /// Deferred-mode plugin, the dev Core of the other sections.
    pub deferred: &'a str,
    /// Deferred-mode plugin, the slow dev Core.
    pub slow: &'a str,
    /// The chain variants: plain first, then the slow-Core worker.
    pub chain: &'a [Variant],
}

/// Runs the four measurements.
pub async fn run(
    client: &Client,
    queues: &Queues<'_>,
    http_url: &str,
    core_urls: [&str; 2],
    plan: Plan,
    tag: &str,
) -> Result<OneRoundTrip> {
    let [core_url, slow_core_url] = core_urls;
    let http = probes::http(
        client,
        queues.deferred,
        &format!("{tag}-deferred"),
        http_url,
        core_url,
        plan.calls,
    )
    .await?;
    eprintln!("  deferred: {http:?}");
    // `true` run plain and through `openbox::process`: the process probe takes the traced
    // probe's plan.
    let process = probes::probe(
        client,
        queues.deferred,
        &format!("bench-process-{tag}-deferred"),
        ProbePlan::Process(TracedProbe {
            core_url: core_url.to_owned(),
            calls: plan.process_calls,
        }),
    )
    .await?;
    eprintln!("  deferred command: {process:?}");
    let tower = probes::probe(
        client,
        queues.deferred,
        &format!("bench-tower-{tag}-deferred"),
        ProbePlan::Tower(HttpProbe {
            url: http_url.to_owned(),
            core_url: core_url.to_owned(),
            calls: plan.calls,
        }),
    )
    .await?;
    eprintln!("  deferred tower layer: {tower:?}");
    let slow_http = probes::http(
        client,
        queues.slow,
        &format!("{tag}-slow"),
        http_url,
        slow_core_url,
        plan.slow_calls,
    )
    .await?;
    eprintln!("  slow Core: {slow_http:?}");
    let slow_chain = activity_overhead::run(
        client,
        queues.chain,
        plan.chain,
        plan.runs,
        &format!("{tag}-slow"),
    )
    .await?;
    Ok(OneRoundTrip {
        http,
        process,
        tower,
        slow_http,
        slow_chain,
    })
}
