//! Late delivery: how fast a spooled backlog drains once Core answers again — one delivery at a
//! time at 20 per second (the pacing before late delivery ran side by side) against the
//! defaults (4 in flight, 200 per second), side by side — and what a live evaluation costs while
//! a backlog drains, against the same evaluation with none.
//!
//! The dev Core is its own process; it answers every evaluation with 503 while the backlog is
//! made (the client's breaker opens, as it would), then answers normally.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use openbox::__private::core::{
    ActivityIdentity, ActivityStarted, CoreClient, Decision, LifecycleEvent, WorkflowTelemetry,
    time,
};
use openbox::{BreakerSettings, ErrorPolicy, OpenBoxConfig, SpoolSettings};
use serde_json::json;

use crate::measure::Latency;
use crate::setup::{BENCH_KEY, DevCoreProcess};

/// How fast one configuration drained the same backlog.
#[derive(Debug, Clone)]
pub struct DrainRun {
    /// Events in flight at most.
    pub concurrency: u32,
    /// Events per second at most.
    pub rate: u32,
    /// Events drained.
    pub events: u64,
    /// Seconds from Core's return to an empty spool.
    pub seconds: f64,
}

impl DrainRun {
    /// Events per second.
    pub fn per_second(&self) -> f64 {
        self.events as f64 / self.seconds.max(1e-9)
    }
}

/// The section's figures.
#[derive(Debug, Clone)]
pub struct Drain {
    /// One at a time, 20/s.
    pub sequential: DrainRun,
    /// The defaults.
    pub concurrent: DrainRun,
    /// Live evaluations with no backlog.
    pub live_idle: Latency,
    /// Live evaluations while the defaults drain a backlog.
    pub live_draining: Latency,
}

/// An ActivityStarted of one of 50 runs.
fn event(n: usize) -> LifecycleEvent {
    LifecycleEvent::ActivityStarted(ActivityStarted {
        source: WorkflowTelemetry,
        activity: Arc::new(ActivityIdentity {
            multi_agent_session_id: None,
            workflow_id: format!("bench-drain-{}", n % 50),
            run_id: "0b7c4a52-5d0e-4a39-9a7e-6f3b1c2d9e10".into(),
            workflow_type: "BenchDrain".into(),
            activity_id: n.to_string(),
            activity_type: "bench_noop".into(),
            task_queue: "bench".into(),
            attempt: 1,
        }),
        timestamp: time::now_timestamp(),
        activity_input: Arc::new(vec![json!({"customer": "c-42", "amount": 1250})]),
    })
}

/// A client spooling into a fresh private directory under `dir`. Its breaker cools down for
/// 200 ms, so that Core's return is noticed at once and few live calls spool meanwhile.
fn client(
    core: &DevCoreProcess,
    dir: &std::path::Path,
    spool: SpoolSettings,
) -> Result<CoreClient> {
    let config = OpenBoxConfig::builder()
        .ignore_env()
        .url(core.url())
        .api_key(BENCH_KEY)
        .error_policy(ErrorPolicy::FailOpen)
        .timeout(Duration::from_secs(5))
        .circuit_breaker(BreakerSettings {
            cool_down: Duration::from_millis(200),
            ..BreakerSettings::default()
        })
        .spool(spool)
        .build()?;
    let _ = std::fs::remove_dir_all(dir);
    Ok(CoreClient::new(config)?)
}

/// Spools `events` while Core fails, then brings it back; returns when that happened and the
/// backlog then (the live calls that saw the breaker open while waiting were spooled too).
async fn backlog(
    core: &DevCoreProcess,
    client: &CoreClient,
    events: usize,
) -> Result<(Instant, u64)> {
    core.set_error_rate(1.0).await?;
    for n in 0..events {
        let decision = client.decide(&event(n)).await;
        anyhow::ensure!(
            matches!(decision, Decision::Proceed(_)),
            "Core was to be down"
        );
    }
    let spooled = pending(client);
    anyhow::ensure!(spooled == events as u64, "{spooled} of {events} spooled");
    core.set_error_rate(0.0).await?;
    // Core is back once the breaker lets a live call through and Core answers it (that answer
    // also ends the delivery's pause): the time counts from then.
    let waiting = Instant::now();
    while !matches!(client.decide(&event(0)).await, Decision::Verdict(_)) {
        tokio::time::sleep(Duration::from_millis(20)).await;
        anyhow::ensure!(
            waiting.elapsed() < Duration::from_secs(60),
            "Core did not come back"
        );
    }
    Ok((Instant::now(), pending(client)))
}

fn pending(client: &CoreClient) -> u64 {
    client.spool_stats().map_or(0, |s| s.pending)
}

async fn drain_with(
    core: &DevCoreProcess,
    dir: &std::path::Path,
    events: usize,
    concurrency: u32,
    rate: u32,
) -> Result<DrainRun> {
    let spool = SpoolSettings::new(dir)
        .with_replay_concurrency(concurrency)
        .with_replay_per_second(rate);
    let client = client(core, dir, spool)?;
    let (back, backlog) = backlog(core, &client, events).await?;
    while pending(&client) > 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
        anyhow::ensure!(back.elapsed() < Duration::from_secs(1800), "no drain");
    }
    Ok(DrainRun {
        concurrency,
        rate,
        events: backlog,
        seconds: back.elapsed().as_secs_f64(),
    })
}

/// Live evaluations one every [`LIVE_EVERY`], at most `calls`, and their latencies; stops
/// early once `until` says so. Paced, not back to back, so that they sample the whole drain
/// and the idle run is timed the same way.
async fn live(client: &CoreClient, calls: usize, mut until: impl FnMut() -> bool) -> Latency {
    let mut samples = Vec::with_capacity(calls);
    let mut tick = tokio::time::interval(LIVE_EVERY);
    for n in 0..calls {
        tick.tick().await;
        if until() {
            break;
        }
        let t = Instant::now();
        let _ = client.decide(&event(n)).await;
        samples.push(u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX));
    }
    Latency::of(samples)
}

/// The pace of the live evaluations.
const LIVE_EVERY: Duration = Duration::from_millis(5);

/// Runs the section: `events` spooled per configuration, `live_calls` live evaluations.
pub async fn run(events: usize, live_calls: usize) -> Result<Drain> {
    let core = DevCoreProcess::start()?;
    let root = std::env::temp_dir().join(format!("openbox-bench-drain-{}", std::process::id()));
    let sequential = drain_with(&core, &root.join("seq"), events, 1, 20).await?;
    let concurrent = drain_with(&core, &root.join("new"), events, 4, 200).await?;
    // Live calls while the defaults drain a backlog, then the same calls with none.
    let client = client(
        &core,
        &root.join("live"),
        SpoolSettings::new(root.join("live")),
    )?;
    backlog(&core, &client, events).await?;
    let watcher = client.clone();
    let draining = live(&client, live_calls, move || pending(&watcher) == 0).await;
    while pending(&client) > 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // As many idle calls as there were draining ones: same pacing, same count.
    let idle = live(&client, draining.n, || false).await;
    let _ = std::fs::remove_dir_all(&root);
    Ok(Drain {
        sequential,
        concurrent,
        live_idle: idle,
        live_draining: draining,
    })
}
