//! Round trips to the dev Core after a pause, as between the activities of a chain, to set
//! beside the SDK's own time per lifecycle evaluation. A hot loop (the HTTP and `#[traced]`
//! probes) keeps both processes awake; a chain of activities does not — each activity follows
//! ~50 ms of waiting for Temporal. A plain sleep is a harsher pause than a chain's (there, a
//! Temporal task has just woken the worker), so these figures bound the evaluation from above.

use std::time::{Duration, Instant};

use anyhow::Result;
use openbox::__private::core::CoreClient;

use crate::fixtures::CoreProbe;
use crate::measure::{Latency, nanos};
use crate::scenarios::floor::{self, LoopbackFloor};
use crate::scenarios::throughput::event;
use crate::setup::DevCoreProcess;

/// Both series, measured alternately.
#[derive(Debug, Clone, Copy)]
pub struct IdleRoundTrips {
    /// How long each call waited before it was made.
    pub idle: Duration,
    /// A raw keep-alive POST (no SDK code).
    pub raw: Latency,
    /// `CoreClient::evaluate` of an ActivityStarted body.
    pub client: Latency,
    /// The machine's loopback echo across two cores, hot and after the same pause (`None` on
    /// one core).
    pub floor: Option<LoopbackFloor>,
}

/// `calls` of each kind, each after `idle` of sleep, alternately; then the loopback floor
/// (`hot_calls` back to back, `calls` after a pause).
pub async fn run(
    core: &DevCoreProcess,
    calls: u32,
    hot_calls: u32,
    idle: Duration,
) -> Result<IdleRoundTrips> {
    let raw = CoreProbe::new(core.url())?;
    let client = CoreClient::new(core.config())?;
    // On a runtime worker, as an activity's evaluations are (the caller may be `block_on`'s
    // thread, which would add a hop between threads to every call).
    let (raw_ns, client_ns) = tokio::spawn(async move {
        let body = event();
        // Warm both connections first.
        raw.round_trip().await?;
        client.evaluate(&body).await?;
        let (mut raw_ns, mut client_ns) = (Vec::new(), Vec::new());
        for _ in 0..calls {
            tokio::time::sleep(idle).await;
            raw_ns.push(raw.round_trip().await?);
            tokio::time::sleep(idle).await;
            let t = Instant::now();
            client.evaluate(&body).await?;
            client_ns.push(nanos(t.elapsed()));
        }
        anyhow::Ok((raw_ns, client_ns))
    })
    .await??;
    Ok(IdleRoundTrips {
        idle,
        raw: Latency::of(raw_ns),
        client: Latency::of(client_ns),
        floor: floor::run(hot_calls, calls, idle).await?,
    })
}
