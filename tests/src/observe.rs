//! What a test binary can observe of the SDK besides Core's log: the metrics it records (a
//! process-wide debugging recorder), its warnings about lost events (a counting tracing layer)
//! and, on request, everything the process logs (a buffer, this project's crates at `trace`). Both are process-wide, so figures are read as differences around one scenario, and
//! scenarios of one binary that read them take [`Observer::exclusive`] so that they do not
//! overlap when a runner puts several tests in one process.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use metrics_util::CompositeKey;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;

/// The process-wide observer.
pub struct Observer {
    snapshotter: Snapshotter,
    /// Counter totals: the debugging recorder resets a counter when it is read.
    totals: Mutex<HashMap<CompositeKey, u64>>,
    lost_warnings: Arc<AtomicU64>,
    logs: LogBuffer,
    serial: tokio::sync::Mutex<()>,
}

/// The message the SDK logs (once) for each event Core did not get under `fail_open`.
pub const LOST_EVENT_MESSAGE: &str = "OpenBox Core gave no verdict; proceeding (fail_open)";

impl Observer {
    /// Installs the recorder and the tracing subscriber (fmt to the test output + counting),
    /// once per process.
    pub fn get() -> &'static Observer {
        static OBSERVER: OnceLock<Observer> = OnceLock::new();
        OBSERVER.get_or_init(|| {
            let recorder = DebuggingRecorder::new();
            let snapshotter = recorder.snapshotter();
            metrics::set_global_recorder(recorder).expect("no other metrics recorder");
            let lost_warnings = Arc::new(AtomicU64::new(0));
            let logs = LogBuffer::default();
            let filter = tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,openbox=info".into());
            tracing_subscriber::registry()
                .with(
                    tracing_subscriber::fmt::layer()
                        .with_test_writer()
                        .with_filter(filter),
                )
                .with(
                    tracing_subscriber::fmt::layer()
                        .with_ansi(false)
                        .with_writer(logs.clone())
                        .with_filter(tracing_subscriber::EnvFilter::new(
                            "info,openbox=trace,openbox_dev=trace",
                        )),
                )
                .with(
                    LostEventCounter(lost_warnings.clone())
                        .with_filter(tracing_subscriber::filter::LevelFilter::WARN),
                )
                .try_init()
                .expect("no other tracing subscriber: call Observer::get first");
            Observer {
                snapshotter,
                totals: Mutex::default(),
                lost_warnings,
                logs,
                serial: tokio::sync::Mutex::new(()),
            }
        })
    }

    /// Holds off other scenarios of this process that read the figures.
    pub async fn exclusive(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.serial.lock().await
    }

    /// Warnings logged so far for lost events.
    pub fn lost_warnings(&self) -> u64 {
        self.lost_warnings.load(Ordering::Relaxed)
    }

    /// Starts keeping what is logged (off by default), dropping what was kept before.
    pub fn capture_logs(&self) {
        self.logs
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        self.logs.1.store(true, Ordering::Relaxed);
    }

    /// Everything logged since [`Observer::capture_logs`] (this project's crates at `trace`,
    /// others at `info`).
    pub fn logs(&self) -> String {
        let bytes = self.logs.0.lock().unwrap_or_else(|p| p.into_inner());
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Sum of counter `name` over the label sets that have every `(label, value)` of `labels`.
    pub fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        let mut totals = self.totals.lock().unwrap_or_else(|p| p.into_inner());
        for (key, _, _, value) in self.snapshotter.snapshot().into_vec() {
            if let DebugValue::Counter(c) = value {
                *totals.entry(key).or_default() += c;
            }
        }
        totals
            .iter()
            .filter(|(key, _)| key.key().name() == name)
            .filter(|(key, _)| {
                labels
                    .iter()
                    .all(|(n, v)| key.key().labels().any(|l| l.key() == *n && l.value() == *v))
            })
            .map(|(_, total)| total)
            .sum()
    }
}

use tracing_subscriber::Layer;

/// Counts the SDK's lost-event warnings.
struct LostEventCounter(Arc<AtomicU64>);

impl<S: tracing::Subscriber> Layer<S> for LostEventCounter {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        if *event.metadata().level() != tracing::Level::WARN {
            return;
        }
        let mut message = MessageOf(String::new());
        event.record(&mut message);
        if message.0 == LOST_EVENT_MESSAGE {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
}

struct MessageOf(String);

impl Visit for MessageOf {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0 = value.to_owned();
        }
    }
}

/// A shared in-memory log sink; it keeps lines only while capture is on, so that a long
/// scenario that does not read the logs does not grow the heap.
#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>, Arc<std::sync::atomic::AtomicBool>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.1.load(Ordering::Relaxed) {
            self.0
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend_from_slice(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogBuffer {
    type Writer = LogBuffer;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}
