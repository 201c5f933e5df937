//! Core client throughput: evaluations per second at several concurrencies against the dev
//! Core, and the dev Core alone under a raw HTTP/1.1 load generator, with each process's CPU
//! time per evaluation.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use openbox::__private::core::CoreClient;
use openbox::__private::core::{
    ActivityIdentity, ActivityStarted, LifecycleEvent, WorkflowTelemetry,
};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::measure::cpu_time;
use crate::setup::{BENCH_KEY, DevCoreProcess};

/// One concurrency level measured.
#[derive(Debug, Clone, Copy)]
pub struct Level {
    /// Requests in flight.
    pub concurrency: usize,
    /// Evaluations per second.
    pub per_second: f64,
    /// CPU µs of the client process per evaluation.
    pub client_cpu_us: f64,
    /// CPU µs of the dev Core per evaluation.
    pub core_cpu_us: f64,
}

/// Both series.
#[derive(Debug, Clone)]
pub struct Throughput {
    /// Through `openbox::CoreClient`.
    pub client: Vec<Level>,
    /// The dev Core alone (raw requests, no SDK).
    pub core_alone: Vec<Level>,
    /// Seconds measured per level.
    pub seconds: f64,
}

/// The event every request carries: a realistic ActivityStarted.
pub(crate) fn event() -> LifecycleEvent {
    LifecycleEvent::ActivityStarted(ActivityStarted {
        source: WorkflowTelemetry,
        activity: Arc::new(ActivityIdentity {
            multi_agent_session_id: None,
            workflow_id: "bench-throughput".into(),
            run_id: "0b7c4a52-5d0e-4a39-9a7e-6f3b1c2d9e10".into(),
            workflow_type: "BenchChain".into(),
            activity_id: "1".into(),
            activity_type: "bench_noop".into(),
            task_queue: "bench".into(),
            attempt: 1,
        }),
        timestamp: openbox::__private::core::time::now_timestamp(),
        activity_input: Arc::new(vec![json!({"customer": "c-42", "amount": 1250})]),
    })
}

/// Runs `worker` on `concurrency` tasks for `duration` after a short warm-up; returns the
/// level's figures.
async fn measure<F, Fut>(
    core: &DevCoreProcess,
    concurrency: usize,
    duration: Duration,
    worker: F,
) -> Result<Level>
where
    F: Fn(Arc<AtomicBool>, Arc<AtomicU64>) -> Fut,
    Fut: Future<Output = Result<()>> + Send + 'static,
{
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| tokio::spawn(worker(stop.clone(), count.clone())))
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (n0, cpu0, core0, t0) = (
        count.load(Ordering::Relaxed),
        cpu_time("self"),
        cpu_time(&core.pid()),
        Instant::now(),
    );
    tokio::time::sleep(duration).await;
    let (n1, cpu1, core1, elapsed) = (
        count.load(Ordering::Relaxed),
        cpu_time("self"),
        cpu_time(&core.pid()),
        t0.elapsed(),
    );
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.context("load task")??;
    }
    let n = (n1 - n0).max(1) as f64;
    Ok(Level {
        concurrency,
        per_second: n / elapsed.as_secs_f64(),
        client_cpu_us: (cpu1 - cpu0).as_secs_f64() * 1e6 / n,
        core_cpu_us: (core1 - core0).as_secs_f64() * 1e6 / n,
    })
}

/// Evaluations through the SDK's client.
async fn through_client(
    core: &DevCoreProcess,
    concurrency: usize,
    duration: Duration,
) -> Result<Level> {
    let client = CoreClient::new(core.config())?;
    let event = Arc::new(event());
    measure(core, concurrency, duration, |stop, count| {
        let client = client.clone();
        let event = event.clone();
        async move {
            while !stop.load(Ordering::Relaxed) {
                client.evaluate(event.as_ref()).await?;
                count.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        }
    })
    .await
}

/// One keep-alive connection sending a fixed request as fast as answers come.
async fn raw_connection(
    addr: String,
    request: Arc<Vec<u8>>,
    stop: Arc<AtomicBool>,
    count: Arc<AtomicU64>,
) -> Result<()> {
    let mut stream = TcpStream::connect(&addr).await?;
    stream.set_nodelay(true)?;
    let mut buf = vec![0u8; 16 * 1024];
    while !stop.load(Ordering::Relaxed) {
        stream.write_all(&request).await?;
        let mut filled = 0;
        loop {
            let read = stream.read(&mut buf[filled..]).await?;
            if read == 0 {
                bail!("the dev Core closed the connection");
            }
            filled += read;
            if let Some(total) = complete_response_len(&buf[..filled])? {
                anyhow::ensure!(total == filled, "unexpected pipelined bytes");
                break;
            }
            if filled == buf.len() {
                buf.resize(buf.len() * 2, 0);
            }
        }
        count.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}

/// The length of the HTTP/1.1 response at the start of `data` once it is complete.
fn complete_response_len(data: &[u8]) -> Result<Option<usize>> {
    let Some(head_end) = data.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = std::str::from_utf8(&data[..head_end])?;
    anyhow::ensure!(
        head.starts_with("HTTP/1.1 200"),
        "dev Core answered: {head}"
    );
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())
                .flatten()
        })
        .context("response without content-length")?;
    let total = head_end + 4 + length;
    Ok((data.len() >= total).then_some(total))
}

/// Evaluations from a raw load generator: the dev Core's own capacity.
async fn core_alone(
    core: &DevCoreProcess,
    concurrency: usize,
    duration: Duration,
) -> Result<Level> {
    let addr = core.url().trim_start_matches("http://").to_owned();
    let body = serde_json::to_vec(&event())?;
    let mut request = format!(
        "POST /api/v1/governance/evaluate HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {BENCH_KEY}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(&body);
    let request = Arc::new(request);
    measure(core, concurrency, duration, |stop, count| {
        raw_connection(addr.clone(), request.clone(), stop, count)
    })
    .await
}

/// Both series at each concurrency.
pub async fn run(
    core: &DevCoreProcess,
    levels: &[usize],
    duration: Duration,
) -> Result<Throughput> {
    let mut client = Vec::new();
    let mut alone = Vec::new();
    for &c in levels {
        let l = through_client(core, c, duration).await?;
        eprintln!(
            "  CoreClient  c={c:<3} {:>8.0}/s  client {:.1} µs, dev Core {:.1} µs CPU per evaluation",
            l.per_second, l.client_cpu_us, l.core_cpu_us
        );
        client.push(l);
        let l = core_alone(core, c, duration).await?;
        eprintln!(
            "  raw         c={c:<3} {:>8.0}/s  client {:.1} µs, dev Core {:.1} µs CPU per evaluation",
            l.per_second, l.client_cpu_us, l.core_cpu_us
        );
        alone.push(l);
    }
    Ok(Throughput {
        client,
        core_alone: alone,
        seconds: duration.as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_framing() {
        let r = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
        assert_eq!(complete_response_len(r).unwrap(), Some(r.len()));
        assert_eq!(complete_response_len(&r[..r.len() - 1]).unwrap(), None);
        assert!(complete_response_len(b"HTTP/1.1 500 X\r\ncontent-length: 0\r\n\r\n").is_err());
    }
}
