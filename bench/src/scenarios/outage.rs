//! A Core that stopped answering: the cost of one governed evaluation before the circuit breaker
//! opens (each waits out the timeout) and once it is open (no call is made), side by side.
//!
//! The dev Core here is in-process, delaying every answer by 3 s; the client's timeout is 1 s
//! and its breaker opens after 5 consecutive timeouts, as by default.

use std::time::{Duration, Instant};

use anyhow::Result;
use openbox::__private::core::{CoreClient, Decision};
use openbox::{BreakerSettings, BreakerState};
use openbox::{ErrorPolicy, OpenBoxConfig};
use openbox_dev::{DevCore, Faults};

use super::throughput::event;
use crate::setup::BENCH_KEY;

/// Core's answer delay and the client's timeout.
pub const CORE_DELAY: Duration = Duration::from_secs(3);
/// The client's per-call timeout.
pub const TIMEOUT: Duration = Duration::from_secs(1);

/// Per-evaluation cost before and after the breaker opened.
#[derive(Debug, Clone)]
pub struct Outage {
    /// Each evaluation until the breaker opened, in ms.
    pub before_ms: Vec<f64>,
    /// Evaluations measured once it was open.
    pub after_calls: usize,
    /// Their mean cost, in µs.
    pub after_mean_us: f64,
    /// Their slowest, in µs.
    pub after_max_us: f64,
    /// Requests that reached the dev Core while the breaker was open.
    pub reached_core_while_open: u64,
}

/// Runs the scenario with `after_calls` evaluations once the breaker is open.
pub async fn run(after_calls: usize) -> Result<Outage> {
    let core = DevCore::builder()
        .faults(Faults {
            delay_ms: u64::try_from(CORE_DELAY.as_millis()).unwrap_or(u64::MAX),
            ..Faults::default()
        })
        .start()
        .await?;
    let config = OpenBoxConfig::builder()
        .ignore_env()
        .url(core.url())
        .api_key(BENCH_KEY)
        .timeout(TIMEOUT)
        .error_policy(ErrorPolicy::FailOpen)
        .circuit_breaker(BreakerSettings::default())
        .build()?;
    let client = CoreClient::new(config)?;
    let body = event();
    let mut before_ms = Vec::new();
    while client.breaker_state() != BreakerState::Open {
        let t = Instant::now();
        let decision = client.decide(&body).await;
        before_ms.push(t.elapsed().as_secs_f64() * 1e3);
        anyhow::ensure!(
            matches!(decision, Decision::Proceed(_)),
            "a slow Core gives no verdict"
        );
        anyhow::ensure!(before_ms.len() <= 100, "the breaker never opened");
    }
    let reached = core.request_count();
    let mut total = Duration::ZERO;
    let mut max = Duration::ZERO;
    for _ in 0..after_calls {
        let t = Instant::now();
        let decision = client.decide(&body).await;
        let took = t.elapsed();
        total += took;
        max = max.max(took);
        anyhow::ensure!(matches!(decision, Decision::Proceed(_)));
    }
    Ok(Outage {
        before_ms,
        after_calls,
        after_mean_us: total.as_secs_f64() * 1e6 / after_calls.max(1) as f64,
        after_max_us: max.as_secs_f64() * 1e6,
        reached_core_while_open: core.request_count() - reached,
    })
}
