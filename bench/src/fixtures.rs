//! The workflows and activities the benchmarks run.

use std::hint::black_box;
use std::time::{Duration, Instant};

use anyhow::Context;

use openbox::hooks::http::OpenBoxMiddleware;
use serde::{Deserialize, Serialize};
use temporalio_common::RetryPolicy;
use temporalio_macros::{activities, workflow, workflow_methods};
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use temporalio_sdk::{ActivityOptions, WorkflowContext, WorkflowResult};

use crate::measure::{Latency, nanos};
use crate::setup::BENCH_KEY;

/// Which activity a [`Chain`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChainActivity {
    /// [`BenchActivities::noop`]: plain code, governed only by a plugin.
    Noop,
    /// [`BenchActivities::noop_annotated`]: `#[governed_activity]`.
    NoopAnnotated,
    /// [`BenchActivities::work`]: calls a `#[traced]` function `traced_calls` times.
    Work,
}

/// What a [`Chain`] runs: `activities` sequential activities of one kind.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct ChainPlan {
    /// How many.
    pub activities: u32,
    /// Which.
    pub kind: ChainActivity,
    /// `#[traced]` calls per [`ChainActivity::Work`] activity.
    pub traced_calls: u32,
}

fn once(timeout: Duration) -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(timeout)
        .retry_policy(RetryPolicy::builder().maximum_attempts(1).build())
        .build()
}

/// Runs a chain of sequential activities.
#[workflow]
#[derive(Default)]
pub struct Chain;

#[workflow_methods]
impl Chain {
    /// Runs the plan; returns how many activities ran.
    #[run(name = "BenchChain")]
    pub async fn run(ctx: &mut WorkflowContext<Self>, plan: ChainPlan) -> WorkflowResult<u32> {
        for i in 0..plan.activities {
            let opts = once(Duration::from_secs(60));
            match plan.kind {
                ChainActivity::Noop => {
                    ctx.execute_activity(BenchActivities::noop, i, opts).await?;
                }
                ChainActivity::NoopAnnotated => {
                    ctx.execute_activity(BenchActivities::noop_annotated, i, opts)
                        .await?;
                }
                ChainActivity::Work => {
                    ctx.execute_activity(BenchActivities::work, plan.traced_calls, opts)
                        .await?;
                }
            }
        }
        Ok(plan.activities)
    }
}

/// Runs one measuring activity and returns its report.
#[workflow]
#[derive(Default)]
pub struct Probe;

/// What a [`Probe`] measures.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ProbePlan {
    /// [`BenchActivities::http_probe`].
    Http(HttpProbe),
    /// [`BenchActivities::traced_probe`].
    Traced(TracedProbe),
    /// [`BenchActivities::process_probe`].
    Process(TracedProbe),
    /// [`BenchActivities::tower_probe`].
    Tower(HttpProbe),
}

/// Latencies a probe measured.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct ProbeReport {
    /// The operation unwrapped.
    pub plain: Latency,
    /// The same operation governed.
    pub governed: Latency,
    /// A raw keep-alive round trip to the dev Core, measured between them.
    pub core_rtt: Latency,
    /// The two Core requests of one governed operation (its `started` and `completed` bodies,
    /// as the dev Core logged them) posted raw, back to back: what the operation's two stages
    /// cost without SDK code.
    #[serde(default)]
    pub core_pair: Option<Latency>,
    /// The operation's `started` request alone, posted raw: the one round trip a governed
    /// operation waits for when its `completed` evaluation is deferred. HTTP probe only.
    #[serde(default)]
    pub core_started: Option<Latency>,
    /// The same request through reqwest, unwrapped and through the reqwest middleware,
    /// alternating with the rest (tower probe only): the overhead the tower layer is judged by.
    #[serde(default)]
    pub middleware: Option<[Latency; 2]>,
}

#[workflow_methods]
impl Probe {
    /// Runs the probe activity.
    #[run(name = "BenchProbe")]
    pub async fn run(
        ctx: &mut WorkflowContext<Self>,
        plan: ProbePlan,
    ) -> WorkflowResult<ProbeReport> {
        let opts = once(Duration::from_secs(600));
        Ok(match plan {
            ProbePlan::Http(p) => {
                ctx.execute_activity(BenchActivities::http_probe, p, opts)
                    .await?
            }
            ProbePlan::Traced(p) => {
                ctx.execute_activity(BenchActivities::traced_probe, p, opts)
                    .await?
            }
            ProbePlan::Process(p) => {
                ctx.execute_activity(BenchActivities::process_probe, p, opts)
                    .await?
            }
            ProbePlan::Tower(p) => {
                ctx.execute_activity(BenchActivities::tower_probe, p, opts)
                    .await?
            }
        })
    }
}

/// The HTTP hook probe: `calls` GETs of `url`, plain and governed alternately, and as many raw
/// round trips to the dev Core at `core_url`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HttpProbe {
    /// The local HTTP server.
    pub url: String,
    /// The dev Core.
    pub core_url: String,
    /// Calls of each kind.
    pub calls: u32,
}

/// The `#[traced]` probe: `calls` calls of a plain and of a traced function, alternately, and as
/// many raw round trips to the dev Core at `core_url`. The process probe takes the same plan:
/// `calls` runs of `true` through `tokio::process` and through `openbox::process`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TracedProbe {
    /// The dev Core.
    pub core_url: String,
    /// Calls of each kind.
    pub calls: u32,
}

/// The function `#[traced]` wraps in the benchmarks: as cheap as a call can be.
#[inline(never)]
pub fn plain_step(x: u64) -> u64 {
    black_box(x).wrapping_mul(31).wrapping_add(7)
}

/// [`plain_step`], traced.
#[openbox::traced(name = "bench_step")]
#[inline(never)]
pub fn traced_step(x: u64) -> u64 {
    black_box(x).wrapping_mul(31).wrapping_add(7)
}

/// [`plain_step`], async and unwrapped: the baseline of [`traced_step_async`].
#[inline(never)]
pub async fn plain_step_async(x: u64) -> Result<u64, anyhow::Error> {
    Ok(black_box(x).wrapping_mul(31).wrapping_add(7))
}

/// [`plain_step`], traced and async (as activities call it).
#[openbox::traced(name = "bench_step_async")]
pub async fn traced_step_async(x: u64) -> Result<u64, anyhow::Error> {
    Ok(black_box(x).wrapping_mul(31).wrapping_add(7))
}

/// A raw keep-alive evaluate round trip: the smallest request the dev Core answers.
pub(crate) struct CoreProbe {
    client: reqwest::Client,
    url: String,
}

impl CoreProbe {
    pub(crate) fn new(core_url: &str) -> Result<Self, reqwest::Error> {
        Ok(CoreProbe {
            client: reqwest::Client::builder().tcp_nodelay(true).build()?,
            url: format!("{core_url}/api/v1/governance/evaluate"),
        })
    }

    pub(crate) async fn round_trip(&self) -> Result<u64, anyhow::Error> {
        self.post(r#"{"event_type":"ActivityStarted","workflow_id":"probe","run_id":"r","activity_id":"1","activity_type":"probe"}"#)
            .await
    }

    /// Posts `body` raw; the nanoseconds until the whole answer is read.
    pub(crate) async fn post(&self, body: impl Into<reqwest::Body>) -> Result<u64, anyhow::Error> {
        let t = Instant::now();
        let response = self
            .client
            .post(&self.url)
            .bearer_auth(BENCH_KEY)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await?;
        anyhow::ensure!(
            response.status().is_success(),
            "dev Core answered {}",
            response.status()
        );
        response.bytes().await?;
        Ok(nanos(t.elapsed()))
    }

    /// The bodies of the last two requests the dev Core logged, which must be the `started` and
    /// `completed` hook evaluations of the operation `span_name`.
    pub(crate) async fn last_hook_pair(
        &self,
        core_url: &str,
        span_name: &str,
    ) -> Result<[Vec<u8>; 2], anyhow::Error> {
        // A deferred `completed` evaluation may reach the dev Core a moment after the call
        // returned: ask again until the last two requests are the pair.
        let mut logged: Vec<serde_json::Value> = Vec::new();
        for _ in 0..50 {
            let bytes = self
                .client
                .get(format!("{core_url}/api/dev/events?tail=2"))
                .send()
                .await?
                .error_for_status()?
                .bytes()
                .await?;
            logged = serde_json::from_slice(&bytes)?;
            let stage = |i: usize| {
                logged
                    .get(i)
                    .map(|e| e["body"]["spans"][0]["stage"].clone())
            };
            if stage(1) == Some(serde_json::Value::from("completed")) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let body = |i: usize, stage: &str| -> Result<Vec<u8>, anyhow::Error> {
            let body = &logged.get(i).context("fewer than two logged requests")?["body"];
            let span = &body["spans"][0];
            anyhow::ensure!(
                body["hook_trigger"] == true && span["name"] == span_name && span["stage"] == stage,
                "logged request {i} is not the {stage} evaluation of {span_name}: {body}"
            );
            Ok(serde_json::to_vec(body)?)
        };
        Ok([body(0, "started")?, body(1, "completed")?])
    }
}

/// The benchmark activities.
pub struct BenchActivities;

#[activities]
impl BenchActivities {
    /// Does nothing.
    #[activity(name = "bench_noop")]
    pub async fn noop(_ctx: ActivityContext, i: u32) -> Result<u32, ActivityError> {
        Ok(i)
    }

    /// Does nothing, governed by `#[governed_activity]`.
    #[activity(name = "bench_noop_annotated")]
    #[openbox::governed_activity]
    pub async fn noop_annotated(_ctx: ActivityContext, i: u32) -> Result<u32, ActivityError> {
        Ok(i)
    }

    /// Calls a `#[traced]` function `calls` times: `2 × calls` hook evaluations.
    #[activity(name = "bench_work")]
    pub async fn work(_ctx: ActivityContext, calls: u32) -> Result<u64, ActivityError> {
        let mut acc = 0u64;
        for i in 0..calls {
            acc = acc.wrapping_add(traced_step_async(u64::from(i)).await?);
        }
        Ok(acc)
    }

    /// Measures governed vs plain GETs inside a governed activity.
    #[activity(name = "bench_http_probe")]
    pub async fn http_probe(
        _ctx: ActivityContext,
        probe: HttpProbe,
    ) -> Result<ProbeReport, ActivityError> {
        let (inner, governed) = reqwest_pair()?;
        let core = CoreProbe::new(&probe.core_url).map_err(anyhow::Error::from)?;
        governed
            .get(&probe.url)
            .send()
            .await
            .map_err(anyhow::Error::from)?
            .bytes()
            .await
            .map_err(anyhow::Error::from)?;
        let [started, completed] = core.last_hook_pair(&probe.core_url, "GET").await?;
        let (started, completed) = (bytes::Bytes::from(started), bytes::Bytes::from(completed));
        let n = probe.calls as usize;
        let (mut plain, mut gov, mut rtt, mut pair, mut first) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for _ in 0..probe.calls {
            plain.push(timed(async { inner.get(&probe.url).send().await?.bytes().await }).await?);
            gov.push(
                timed(async { anyhow::Ok(governed.get(&probe.url).send().await?.bytes().await?) })
                    .await?,
            );
            rtt.push(core.round_trip().await?);
            let started_alone = core.post(started.clone()).await?;
            first.push(started_alone);
            pair.push(started_alone + core.post(completed.clone()).await?);
        }
        Ok(ProbeReport {
            plain: Latency::of(plain),
            governed: Latency::of(gov),
            core_rtt: Latency::of(rtt),
            core_pair: Some(Latency::of(pair)),
            core_started: Some(Latency::of(first)),
            middleware: None,
        })
    }

    /// Measures a GET through hyper-util's client, unwrapped and under the OpenBox tower
    /// layer, next to the same GET through reqwest, unwrapped and under the middleware.
    #[activity(name = "bench_tower_probe")]
    pub async fn tower_probe(
        _ctx: ActivityContext,
        probe: HttpProbe,
    ) -> Result<ProbeReport, ActivityError> {
        use http_body_util::{BodyExt, Empty};
        use tower_layer::Layer;
        use tower_service::Service;

        let mut connector = hyper_util::client::legacy::connect::HttpConnector::new();
        connector.set_nodelay(true);
        let hyper =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build::<_, Empty<bytes::Bytes>>(connector);
        let layered = openbox::hooks::http::tower::OpenBoxLayer::default().layer(hyper.clone());
        let (inner, governed) = reqwest_pair()?;
        let core = CoreProbe::new(&probe.core_url).map_err(anyhow::Error::from)?;
        let uri: http::Uri = probe.url.parse().map_err(anyhow::Error::from)?;
        let get = || {
            http::Request::get(uri.clone())
                .body(Empty::new())
                .expect("a GET")
        };
        let n = probe.calls as usize;
        let mut samples: [Vec<u64>; 5] = std::array::from_fn(|_| Vec::with_capacity(n));
        for _ in 0..probe.calls {
            samples[0].push(
                timed(async {
                    let r = hyper.request(get()).await?;
                    anyhow::Ok(r.into_body().collect().await?)
                })
                .await?,
            );
            samples[1].push(
                timed(async {
                    let mut service = layered.clone();
                    futures::future::poll_fn(|cx| service.poll_ready(cx))
                        .await
                        .map_err(|e| anyhow::anyhow!(e))?;
                    let r = service.call(get()).await.map_err(|e| anyhow::anyhow!(e))?;
                    anyhow::Ok(
                        r.into_body()
                            .collect()
                            .await
                            .map_err(|e| anyhow::anyhow!(e))?,
                    )
                })
                .await?,
            );
            samples[2]
                .push(timed(async { inner.get(&probe.url).send().await?.bytes().await }).await?);
            samples[3].push(
                timed(async { anyhow::Ok(governed.get(&probe.url).send().await?.bytes().await?) })
                    .await?,
            );
            samples[4].push(core.round_trip().await?);
        }
        let [plain, tower, reqwest_plain, middleware, rtt] = samples.map(Latency::of);
        Ok(ProbeReport {
            plain,
            governed: tower,
            core_rtt: rtt,
            core_pair: None,
            core_started: None,
            middleware: Some([reqwest_plain, middleware]),
        })
    }

    /// Measures `Command::new("true").output()` governed vs plain inside a governed activity.
    #[activity(name = "bench_process_probe")]
    pub async fn process_probe(
        _ctx: ActivityContext,
        probe: TracedProbe,
    ) -> Result<ProbeReport, ActivityError> {
        let core = CoreProbe::new(&probe.core_url).map_err(anyhow::Error::from)?;
        let governed = || async {
            let out = openbox::process::Command::new("true").output().await?;
            anyhow::ensure!(out.status.success(), "`true` failed: {}", out.status);
            anyhow::Ok(())
        };
        governed().await?;
        let [started, _] = core
            .last_hook_pair(&probe.core_url, "ShellExecution")
            .await?;
        let started = bytes::Bytes::from(started);
        let n = probe.calls as usize;
        let (mut plain, mut gov, mut rtt, mut first) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for _ in 0..probe.calls {
            plain.push(
                timed(async {
                    let out = tokio::process::Command::new("true").output().await?;
                    anyhow::ensure!(out.status.success(), "`true` failed: {}", out.status);
                    anyhow::Ok(())
                })
                .await?,
            );
            gov.push(timed(governed()).await?);
            rtt.push(core.round_trip().await?);
            first.push(core.post(started.clone()).await?);
        }
        Ok(ProbeReport {
            plain: Latency::of(plain),
            governed: Latency::of(gov),
            core_rtt: Latency::of(rtt),
            core_pair: None,
            core_started: Some(Latency::of(first)),
            middleware: None,
        })
    }

    /// Measures a `#[traced]` call vs a plain one inside a governed activity.
    #[activity(name = "bench_traced_probe")]
    pub async fn traced_probe(
        _ctx: ActivityContext,
        probe: TracedProbe,
    ) -> Result<ProbeReport, ActivityError> {
        let core = CoreProbe::new(&probe.core_url).map_err(anyhow::Error::from)?;
        traced_step_async(0).await?;
        let [started, completed] = core
            .last_hook_pair(&probe.core_url, "bench_step_async")
            .await?;
        let (started, completed) = (bytes::Bytes::from(started), bytes::Bytes::from(completed));
        let n = probe.calls as usize;
        let (mut plain, mut traced, mut rtt, mut pair) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for i in 0..u64::from(probe.calls) {
            let t = Instant::now();
            black_box(plain_step(i));
            plain.push(nanos(t.elapsed()));
            let t = Instant::now();
            black_box(traced_step_async(i).await?);
            traced.push(nanos(t.elapsed()));
            rtt.push(core.round_trip().await?);
            pair.push(core.post(started.clone()).await? + core.post(completed.clone()).await?);
        }
        Ok(ProbeReport {
            plain: Latency::of(plain),
            governed: Latency::of(traced),
            core_rtt: Latency::of(rtt),
            core_pair: Some(Latency::of(pair)),
            core_started: None,
            middleware: None,
        })
    }
}

/// The probes' reqwest client (no Nagle delay) and the same client under the OpenBox middleware.
fn reqwest_pair() -> anyhow::Result<(reqwest::Client, reqwest_middleware::ClientWithMiddleware)> {
    let inner = reqwest::Client::builder().tcp_nodelay(true).build()?;
    let governed = reqwest_middleware::ClientBuilder::new(inner.clone())
        .with(OpenBoxMiddleware::default())
        .build();
    Ok((inner, governed))
}

/// Nanoseconds `work` took, or its error.
async fn timed<T, E>(work: impl std::future::Future<Output = Result<T, E>>) -> anyhow::Result<u64>
where
    anyhow::Error: From<E>,
{
    let t = Instant::now();
    work.await?;
    Ok(nanos(t.elapsed()))
}
