//! Late delivery of the spool: one background task per client sends spooled events to Core in
//! order, at a bounded pace, once Core answers again. Each goes out as the original bytes (same
//! timestamps) with its event id and `X-OpenBox-Delivery: late`; Core's verdict is recorded and
//! counted as what would have happened, never enforced — the operation ran long ago.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::Notify;

use super::spool::{Record, Spool};
use super::{CoreClient, Inner, Marks};
use crate::metrics::LATE_VERDICTS;
use crate::wire::{EvaluateResponse, LifecycleEvent};

/// First wait after a failed delivery; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How often an idle task checks that its client still exists.
const IDLE_CHECK: Duration = Duration::from_secs(5);

/// What the client and its delivery task share.
#[derive(Debug, Default)]
pub(crate) struct Replay {
    /// Something was spooled while the task had nothing to deliver.
    new_records: Notify,
    /// Core answered a live call while the task was backing off.
    core_back: Notify,
    started: AtomicBool,
    /// The last delivery failed: a live answer from Core should wake the task at once (new
    /// records should not: during an outage each would be one more call to a failing Core).
    waiting_for_core: AtomicBool,
}

impl Replay {
    /// A new record was spooled.
    pub(crate) fn spooled(&self) {
        self.new_records.notify_one();
    }

    /// Core answered a live call.
    pub(crate) fn core_answered(&self) {
        // A load first: this runs after every answered call, and the flag is rarely set.
        if self.waiting_for_core.load(Ordering::Relaxed)
            && self.waiting_for_core.swap(false, Ordering::Relaxed)
        {
            self.core_back.notify_one();
        }
    }
}

/// Starts `client`'s delivery task, once, if it has a spool and runs inside a Tokio runtime.
pub(crate) fn ensure_started(client: &CoreClient) {
    let inner = &client.inner;
    if inner.spool.is_none() {
        return;
    }
    if inner.replay.started.load(Ordering::Relaxed) {
        return;
    }
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    if inner.replay.started.swap(true, Ordering::AcqRel) {
        return;
    }
    runtime.spawn(run(Arc::downgrade(inner), inner.replay.clone()));
}

/// Runs `f` on the spool off the async worker threads.
async fn on_spool<T: Send + 'static>(
    spool: &Arc<Spool>,
    f: impl FnOnce(&Spool) -> std::io::Result<T> + Send + 'static,
) -> std::io::Result<T> {
    let spool = spool.clone();
    tokio::task::spawn_blocking(move || f(&spool))
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)))
}

/// How one delivery went.
enum Delivery {
    /// Core answered: the record is done.
    Answered,
    /// Core refused it for good (a 4xx that is not about the key or the rate).
    Rejected,
    /// Core is unavailable or refused the key: try again later.
    NotNow,
}

/// What the task waits for before its next step.
enum Wait {
    /// A new record.
    NewRecords,
    /// Core answering a live call, or the back-off.
    CoreBack(Duration),
    /// Only time: the pace, or a spool that could not be read.
    Sleep(Duration),
}

/// The task. It holds the client (and so the spool and its lock) only while it reads or
/// delivers: a dropped client releases the directory at once.
async fn run(client: Weak<Inner>, replay: Arc<Replay>) {
    let mut backoff = FIRST_BACKOFF;
    loop {
        let Some(inner) = client.upgrade() else {
            return;
        };
        let Some(spool) = inner.spool.clone() else {
            return;
        };
        let pace = Duration::from_secs(1) / spool.replay_per_second().max(1);
        let core = CoreClient { inner };
        let wait = match on_spool(&spool, |s| s.next()).await {
            Err(e) => {
                tracing::warn!(error = %e, "OpenBox spool unreadable; retrying");
                Wait::Sleep(MAX_BACKOFF)
            }
            Ok(None) => Wait::NewRecords,
            Ok(Some(record)) => match deliver(&core, &spool, &record).await {
                delivery @ (Delivery::Answered | Delivery::Rejected) => {
                    let rejected = matches!(delivery, Delivery::Rejected);
                    if let Err(e) = on_spool(&spool, move |s| s.commit(&record, rejected)).await {
                        tracing::warn!(error = %e, "OpenBox spool cursor not written; the event may be delivered again");
                    }
                    backoff = FIRST_BACKOFF;
                    Wait::Sleep(pace)
                }
                Delivery::NotNow => {
                    replay.waiting_for_core.store(true, Ordering::Relaxed);
                    let wait = Wait::CoreBack(backoff);
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    wait
                }
            },
        };
        drop((core, spool));
        match wait {
            Wait::NewRecords => {
                let _ = tokio::time::timeout(IDLE_CHECK, replay.new_records.notified()).await;
            }
            Wait::CoreBack(limit) => {
                let _ = tokio::time::timeout(limit, replay.core_back.notified()).await;
            }
            Wait::Sleep(d) => tokio::time::sleep(d).await,
        }
    }
}

/// Sends one spooled event and records what Core would have decided.
async fn deliver(client: &CoreClient, spool: &Spool, record: &Record) -> Delivery {
    let marks = Marks {
        observe: false,
        event_id: Some(&record.event_id),
        late: true,
    };
    let url = client.inner.evaluate_url.clone();
    let (status, answer) = match client.post(&url, record.body.clone().into(), marks).await {
        Ok(reply) => reply,
        Err(_) => return Delivery::NotNow,
    };
    let event_type = known_event_type(&record.event_type);
    match status {
        200..=299 => {
            let would_have = EvaluateResponse::from_slice(&answer)
                .map(|r| r.would_have())
                .unwrap_or("unreadable");
            ::metrics::counter!(LATE_VERDICTS, "event_type" => event_type, "would_have" => would_have)
                .increment(1);
            if !matches!(would_have, "allowed" | "unreadable") {
                spool.late_intervention();
                tracing::info!(
                    event_type,
                    event_id = %record.event_id,
                    would_have,
                    "OpenBox late verdict (recorded, not enforced: the operation ran during an outage)"
                );
            }
            Delivery::Answered
        }
        401 | 403 | 408 | 429 => Delivery::NotNow,
        400..=499 => {
            tracing::warn!(
                event_type,
                event_id = %record.event_id,
                status,
                "OpenBox Core refused a spooled event; skipped"
            );
            Delivery::Rejected
        }
        _ => Delivery::NotNow,
    }
}

/// A bounded metric label for an event type read back from disk.
fn known_event_type(event_type: &str) -> &'static str {
    LifecycleEvent::EVENT_TYPES
        .into_iter()
        .find(|k| *k == event_type)
        .unwrap_or("other")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::OpenBoxConfig;
    use crate::config::SpoolSettings;

    #[tokio::test]
    async fn a_dropped_client_releases_its_spool_directory() {
        let dir = std::env::temp_dir().join(format!(
            "openbox-replay-{}-{}",
            std::process::id(),
            crate::ids::new_span_id()
        ));
        let config = OpenBoxConfig::builder()
            .ignore_env()
            .url("http://127.0.0.1:9")
            .api_key("obx_test_0123456789")
            .spool(SpoolSettings::new(&dir))
            .build()
            .expect("valid config");
        let client = CoreClient::new(config.clone()).expect("opens");
        ensure_started(&client);
        assert!(
            matches!(
                CoreClient::new(config.clone()),
                Err(crate::client::OpenBoxError::Spool(_))
            ),
            "one owner at a time"
        );
        drop(client);
        let mut reopened = None;
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(20)).await;
            if let Ok(c) = CoreClient::new(config.clone()) {
                reopened = Some(c);
                break;
            }
        }
        assert!(reopened.is_some(), "the delivery task kept the directory");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
