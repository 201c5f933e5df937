//! Every request the dev Core receives, appended to a JSONL file (one JSON object per line),
//! kept in an in-memory window bounded in entries *and* bytes (so that a few huge requests
//! cannot fill the memory of a dev Core left running) and broadcast to live viewers.
//!
//! File writes happen on a background task fed by a channel, so logging never delays an
//! answer. API keys are masked before an entry exists: they never reach memory, file or page.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::sync::{broadcast, mpsc, oneshot};

/// One logged request and the dev Core's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoggedRequest {
    /// Position in the log, from 1.
    pub seq: u64,
    /// When it arrived (RFC 3339, UTC).
    pub time: String,
    /// HTTP method.
    pub method: String,
    /// Request path.
    pub path: String,
    /// Request headers, names lower-cased, credentials masked.
    pub headers: BTreeMap<String, String>,
    /// The body as JSON, or as a string when it is not JSON, or null when empty.
    pub body: Value,
    /// The status answered (0 when the connection was reset instead).
    pub status: u16,
    /// The body answered, as JSON when it is JSON.
    pub response: Value,
    /// The rule that decided, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// The fault injected instead of a normal answer, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<String>,
    /// For an event delivered again (same `x-openbox-event-id`), the `seq` of its first
    /// answered delivery; it was answered the same way and is not a new event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat_of: Option<u64>,
}

impl LoggedRequest {
    /// `body.event_type`, if any.
    pub fn event_type(&self) -> Option<&str> {
        self.body.get("event_type").and_then(Value::as_str)
    }

    /// `true` for hook evaluations (`hook_trigger: true`).
    pub fn is_hook(&self) -> bool {
        self.body.get("hook_trigger") == Some(&Value::Bool(true))
    }

    /// The verdict answered, if any.
    pub fn verdict(&self) -> Option<&str> {
        self.response.get("verdict").and_then(Value::as_str)
    }
}

/// Headers whose values are credentials.
const SECRET_HEADERS: [&str; 8] = [
    // A proof of the agent's identity for one request: shown as present, never replayable.
    "x-openbox-agent-assertion",
    // A bearer token of the workload identity.
    "x-openbox-workload-token",
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
    "api-key",
];

/// Masks a header value if it is a credential: `Bearer obx_test_****` keeps only what is
/// needed to tell test from live keys.
pub fn mask_header(name: &str, value: &str) -> String {
    if !SECRET_HEADERS.contains(&name) {
        return value.to_owned();
    }
    if let Some(token) = value.strip_prefix("Bearer ") {
        for prefix in ["obx_test_", "obx_live_"] {
            if token.starts_with(prefix) {
                return format!("Bearer {prefix}****");
            }
        }
        return "Bearer ****".to_owned();
    }
    "[REDACTED]".to_owned()
}

enum Command {
    Write(Box<LoggedRequest>),
    Flush(oneshot::Sender<()>),
}

/// Default bound of the in-memory window, in bytes of request and answer bodies.
pub const DEFAULT_KEEP_BYTES: usize = 64 << 20;

/// The newest entries, with their approximate sizes.
#[derive(Default)]
struct Window {
    entries: VecDeque<(LoggedRequest, usize)>,
    bytes: usize,
}

/// The log. Cheap to share behind an `Arc`.
pub struct EventLog {
    seq: AtomicU64,
    recent: Mutex<Window>,
    keep: usize,
    keep_bytes: usize,
    file: Option<(PathBuf, mpsc::UnboundedSender<Command>)>,
    live: broadcast::Sender<LoggedRequest>,
}

impl EventLog {
    /// A log keeping the last `keep` entries in memory (at most [`DEFAULT_KEEP_BYTES`]) and, if
    /// `path` is given, appending every entry to that file. Must be called inside a Tokio
    /// runtime when `path` is given.
    pub fn new(path: Option<&Path>, keep: usize) -> std::io::Result<Self> {
        Self::bounded(path, keep, DEFAULT_KEEP_BYTES)
    }

    /// [`EventLog::new`] with the window bounded by `keep_bytes` too.
    pub fn bounded(path: Option<&Path>, keep: usize, keep_bytes: usize) -> std::io::Result<Self> {
        let file = match path {
            Some(path) => {
                let f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?;
                let (tx, rx) = mpsc::unbounded_channel();
                tokio::spawn(write_loop(tokio::fs::File::from_std(f), rx));
                Some((path.to_owned(), tx))
            }
            None => None,
        };
        Ok(EventLog {
            seq: AtomicU64::new(0),
            recent: Mutex::new(Window {
                entries: VecDeque::with_capacity(keep.min(4096)),
                bytes: 0,
            }),
            keep,
            keep_bytes,
            file,
            live: broadcast::channel(1024).0,
        })
    }

    /// Assigns the next sequence number and records the entry (its size estimated from its
    /// bodies; see [`EventLog::record_sized`]).
    pub fn record(&self, entry: LoggedRequest) -> u64 {
        let size = entry.body.to_string().len() + entry.response.to_string().len();
        self.record_sized(entry, size)
    }

    /// Records an entry whose request and answer bodies take about `size` bytes.
    pub fn record_sized(&self, mut entry: LoggedRequest, size: usize) -> u64 {
        entry.seq = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        let seq = entry.seq;
        // Headers, time and path: a few hundred bytes whatever the bodies.
        let size = size + 512;
        if self.keep > 0 {
            let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
            recent.entries.push_back((entry.clone(), size));
            recent.bytes += size;
            while recent.entries.len() > self.keep
                || (recent.bytes > self.keep_bytes && recent.entries.len() > 1)
            {
                if let Some((_, dropped)) = recent.entries.pop_front() {
                    recent.bytes -= dropped;
                }
            }
        }
        if self.live.receiver_count() > 0 {
            let _ = self.live.send(entry.clone());
        }
        if let Some((_, tx)) = &self.file {
            let _ = tx.send(Command::Write(Box::new(entry)));
        }
        seq
    }

    /// Entries still in memory with `seq > after`, oldest first, at most `limit`.
    pub fn recent(&self, after: u64, limit: usize) -> Vec<LoggedRequest> {
        let recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        recent
            .entries
            .iter()
            .map(|(e, _)| e)
            .filter(|e| e.seq > after)
            .take(limit)
            .cloned()
            .collect()
    }

    /// The newest `n` entries still in memory, oldest first.
    pub fn tail(&self, n: usize) -> Vec<LoggedRequest> {
        let recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        recent
            .entries
            .iter()
            .skip(recent.entries.len().saturating_sub(n))
            .map(|(e, _)| e.clone())
            .collect()
    }

    /// How many requests were logged.
    pub fn len(&self) -> u64 {
        self.seq.load(Ordering::Relaxed)
    }

    /// `true` before the first request.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// New entries as they are logged.
    pub fn subscribe(&self) -> broadcast::Receiver<LoggedRequest> {
        self.live.subscribe()
    }

    /// The JSONL file, if there is one.
    pub fn path(&self) -> Option<&Path> {
        self.file.as_ref().map(|(p, _)| p.as_path())
    }

    /// Waits until every entry recorded so far is in the file.
    pub async fn flush(&self) {
        if let Some((_, tx)) = &self.file {
            let (done, wait) = oneshot::channel();
            if tx.send(Command::Flush(done)).is_ok() {
                let _ = wait.await;
            }
        }
    }
}

async fn write_loop(file: tokio::fs::File, mut rx: mpsc::UnboundedReceiver<Command>) {
    let mut out = tokio::io::BufWriter::new(file);
    let mut line = Vec::with_capacity(1024);
    while let Some(cmd) = rx.recv().await {
        let mut next = Some(cmd);
        // Drain what is queued, then flush once: one syscall for a burst of entries.
        while let Some(cmd) = next.take() {
            match cmd {
                Command::Write(entry) => {
                    line.clear();
                    if serde_json::to_writer(&mut line, &*entry).is_ok() {
                        line.push(b'\n');
                        if let Err(e) = out.write_all(&line).await {
                            tracing::error!(error = %e, "cannot write the event log");
                        }
                    }
                }
                Command::Flush(done) => {
                    let _ = out.flush().await;
                    let _ = done.send(());
                }
            }
            next = rx.try_recv().ok();
        }
        if let Err(e) = out.flush().await {
            tracing::error!(error = %e, "cannot flush the event log");
        }
    }
}

/// Reads a JSONL event log file (for tests and tools).
pub fn read_log_file(path: &Path) -> std::io::Result<Vec<LoggedRequest>> {
    let text = std::fs::read_to_string(path)?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str) -> LoggedRequest {
        LoggedRequest {
            seq: 0,
            time: String::new(),
            method: "POST".into(),
            path: path.into(),
            headers: BTreeMap::new(),
            body: Value::Null,
            status: 200,
            response: Value::Null,
            rule: None,
            fault: None,
            repeat_of: None,
        }
    }

    #[test]
    fn masking() {
        assert_eq!(
            mask_header("authorization", "Bearer obx_test_secret"),
            "Bearer obx_test_****"
        );
        assert_eq!(
            mask_header("authorization", "Bearer obx_live_secret"),
            "Bearer obx_live_****"
        );
        assert_eq!(
            mask_header("authorization", "Bearer whatever"),
            "Bearer ****"
        );
        assert_eq!(mask_header("cookie", "a=b"), "[REDACTED]");
        assert_eq!(
            mask_header("user-agent", "OpenBox-SDK/0.1.0"),
            "OpenBox-SDK/0.1.0"
        );
    }

    #[test]
    fn the_window_is_bounded_by_bytes() {
        let log = EventLog::bounded(None, 1000, 10_000).unwrap();
        for _ in 0..10 {
            log.record_sized(entry("/big"), 4_000);
        }
        let kept = log.recent(0, usize::MAX);
        assert_eq!(kept.len(), 2, "two entries of ~4.5 kB fit in 10 kB");
        assert_eq!(kept[1].seq, 10);
        log.record_sized(entry("/huge"), 1 << 30);
        assert_eq!(
            log.recent(0, usize::MAX).len(),
            1,
            "the newest entry always stays"
        );
    }

    #[tokio::test]
    async fn window_file_and_flush() {
        let dir = std::env::temp_dir().join(format!("obx-log-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("events.jsonl");
        let _ = std::fs::remove_file(&path);
        let log = EventLog::new(Some(&path), 2).unwrap();
        for p in ["/a", "/b", "/c"] {
            log.record(entry(p));
        }
        assert_eq!(log.len(), 3);
        let recent: Vec<_> = log
            .recent(0, 10)
            .into_iter()
            .map(|e| (e.seq, e.path))
            .collect();
        assert_eq!(recent, [(2, "/b".to_string()), (3, "/c".to_string())]);
        log.flush().await;
        let from_file = read_log_file(&path).unwrap();
        assert_eq!(
            from_file.iter().map(|e| e.seq).collect::<Vec<_>>(),
            [1, 2, 3]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
