//! Late delivery of the spool: one background task per client sends spooled events to Core once
//! it answers again — several at a time, at most `replay_per_second` per second, each workflow
//! run's events in the order they happened (runs interleave). Each goes out as the original
//! bytes (same timestamps) with its event id and `X-OpenBox-Delivery: late`; Core's verdict is
//! recorded and counted as what would have happened, never enforced — the operation ran long ago.
//!
//! A failed delivery is tried again after the others of its run wait [`RETRY_DELAY`]; only
//! [`BACKOFF_AFTER`] failures in a row (Core is down, not flaky) pause delivery: 0.5 s doubling
//! to 30 s, ended early only when Core answers a live call. Then one delivery probes alone until
//! one succeeds. A late delivery's own answer never ends a pause.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use tokio::sync::Notify;

use super::spool::{Entry, Outcome, Position, Record, Spool};
use super::{CoreClient, Inner, Marks, Route};
use crate::metrics::{
    LATE_VERDICTS, SPOOL_DRAIN_RATE, SPOOL_OLDEST_PENDING_SECONDS, SPOOL_PENDING,
};
use crate::wire::{EvaluateResponse, LifecycleEvent};

/// First pause after failures in a row; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Failed deliveries in a row that pause delivery (fewer are a flaky Core, retried at once).
pub(crate) const BACKOFF_AFTER: u32 = 3;
/// How long a run whose event failed waits before that event is tried again.
pub(crate) const RETRY_DELAY: Duration = Duration::from_millis(250);
/// How often an idle task looks again (and samples the backlog).
const IDLE_CHECK: Duration = Duration::from_secs(5);
/// Records read ahead of the cursor at most.
const WINDOW: usize = 512;
/// A backlog growing for this long is logged.
const GROWTH_WARNING: Duration = Duration::from_secs(60);

/// What the client and its delivery task share.
#[derive(Debug, Default)]
pub(crate) struct Replay {
    /// Something was spooled.
    new_records: Notify,
    /// Core answered a live call while delivery was paused.
    core_back: Notify,
    started: AtomicBool,
    /// Delivery is paused: live answers should wake the task.
    paused: AtomicBool,
    /// Live calls Core answered: a pause ends early only when this grows.
    live_answers: AtomicU64,
    /// When the oldest event not delivered yet happened, Unix milliseconds (0: none known).
    oldest_pending_ms: AtomicU64,
    /// Events answered late per second over the last 10 s, in thousandths.
    drain_milli: AtomicU64,
}

impl Replay {
    /// A new record was spooled.
    pub(crate) fn spooled(&self) {
        self.new_records.notify_one();
    }

    /// Core answered a live call (never called for a late delivery: its own answer must not
    /// end a pause it caused).
    pub(crate) fn core_answered(&self) {
        self.live_answers.fetch_add(1, Ordering::Relaxed);
        if self.paused.load(Ordering::Relaxed) {
            self.core_back.notify_one();
        }
    }

    /// How old the oldest pending event is, and the recent drain rate.
    pub(crate) fn backlog(&self) -> (Option<Duration>, f64) {
        let oldest = match self.oldest_pending_ms.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(
                SystemTime::now()
                    .duration_since(UNIX_EPOCH + Duration::from_millis(ms))
                    .unwrap_or_default(),
            ),
        };
        let drain = self.drain_milli.load(Ordering::Relaxed) as f64 / 1000.0;
        (oldest, drain)
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Delivery {
    /// Core answered: the record is done.
    Answered,
    /// Core refused it for good (a 4xx that is not about the key or the rate).
    Rejected,
    /// Core is unavailable or refused the key: try again later.
    NotNow,
    /// The client's circuit breaker is open: no call was made; its next probe is this far.
    BreakerOpen(Duration),
}

/// The task. It holds the client (and so the spool and its lock) only while it reads, hands
/// over or delivers: a dropped client releases the directory once its deliveries in flight end.
async fn run(client: Weak<Inner>, replay: Arc<Replay>) {
    let mut plan = Plan::new(Instant::now());
    let mut flights: FuturesUnordered<BoxFuture<'static, (u64, Delivery)>> =
        FuturesUnordered::new();
    loop {
        let Some(inner) = client.upgrade() else {
            return;
        };
        let Some(spool) = inner.spool.clone() else {
            return;
        };
        let core = CoreClient { inner };
        let (rate, concurrency) = (spool.replay_per_second(), spool.replay_concurrency());
        plan.hand_over(&spool).await;
        plan.read_ahead(&spool).await;
        let now = Instant::now();
        for record in plan.start(now, rate, concurrency) {
            let (core, spool) = (core.clone(), spool.clone());
            flights.push(Box::pin(async move {
                let id = record.0;
                (id, deliver(&core, &spool, &record.1).await)
            }));
        }
        plan.publish(&replay, &spool, now);
        drop((core, spool));
        replay.paused.store(plan.paused(), Ordering::Relaxed);
        let wake = plan.next_wake(now, rate);
        tokio::select! {
            Some((id, delivery)) = flights.next(), if !flights.is_empty() => {
                plan.finish(id, delivery, Instant::now(), &replay);
            }
            _ = replay.new_records.notified(), if plan.wants_records() => plan.records_arrived(),
            _ = replay.core_back.notified(), if plan.paused() => {
                plan.core_answered(replay.live_answers.load(Ordering::Relaxed));
            }
            _ = tokio::time::sleep_until(wake.into()) => {}
        }
    }
}

/// A record read ahead, and how far its delivery got.
#[derive(Debug)]
struct Slot {
    id: u64,
    /// `None` for a line that could not be read (done at once, as torn).
    record: Option<Arc<Record>>,
    next: Position,
    state: SlotState,
    /// Not before this (its run waits meanwhile).
    retry_at: Option<Instant>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SlotState {
    Waiting,
    InFlight,
    Done(Outcome),
}

/// The delivery plan: the window of records read ahead of the cursor, in spool order, and the
/// pacing, pause and probe state. Pure bookkeeping; the task does the I/O.
#[derive(Debug)]
struct Plan {
    window: VecDeque<Slot>,
    read_pos: Position,
    /// The last read found nothing new: wait for a spooled record.
    reader_idle: bool,
    next_id: u64,
    in_flight: usize,
    tokens: f64,
    refilled: Instant,
    failures_in_a_row: u32,
    next_backoff: Duration,
    /// Paused until then, unless Core answers a live call first.
    paused_until: Option<Instant>,
    answers_when_paused: u64,
    /// After a pause: one delivery at a time until one is answered.
    probing: bool,
    /// The last `start` stopped for want of a token.
    token_wait: bool,
    /// The soonest retry the last `start` left waiting.
    earliest_retry: Option<Instant>,
    drain: DrainRate,
    growth: BacklogWatch,
}

impl Plan {
    fn new(now: Instant) -> Self {
        Plan {
            window: VecDeque::new(),
            read_pos: Position::default(),
            reader_idle: false,
            next_id: 0,
            in_flight: 0,
            tokens: 1.0,
            refilled: now,
            failures_in_a_row: 0,
            next_backoff: FIRST_BACKOFF,
            paused_until: None,
            answers_when_paused: 0,
            probing: false,
            token_wait: false,
            earliest_retry: None,
            drain: DrainRate::default(),
            growth: BacklogWatch::default(),
        }
    }

    /// Passes the handled records at the front of the window to the spool, in order.
    async fn hand_over(&mut self, spool: &Arc<Spool>) {
        let mut done = Vec::new();
        while let Some(Slot {
            state: SlotState::Done(outcome),
            next,
            ..
        }) = self.window.front()
        {
            done.push((*next, *outcome));
            self.window.pop_front();
        }
        if done.is_empty() {
            return;
        }
        if let Err(e) = on_spool(spool, move |s| s.advance(&done)).await {
            tracing::warn!(error = %e, "OpenBox spool cursor not written; events may be delivered again");
        }
    }

    /// Reads records after the window, while it has room and the spool has some.
    async fn read_ahead(&mut self, spool: &Arc<Spool>) {
        let room = WINDOW.saturating_sub(self.window.len());
        if self.reader_idle || room == 0 {
            return;
        }
        let from = self.read_pos;
        match on_spool(spool, move |s| s.read_from(from, room)).await {
            Ok((entries, pos)) => {
                self.reader_idle = entries.is_empty();
                self.read_pos = pos;
                for entry in entries {
                    self.push(entry);
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "OpenBox spool unreadable; retrying");
                self.reader_idle = true;
            }
        }
    }

    fn push(&mut self, entry: Entry) {
        let next = entry.next();
        let (record, state) = match entry {
            Entry::Record(r) => (Some(Arc::new(r)), SlotState::Waiting),
            Entry::Unreadable { .. } => (None, SlotState::Done(Outcome::Torn)),
        };
        self.window.push_back(Slot {
            id: self.next_id,
            record,
            next,
            state,
            retry_at: None,
        });
        self.next_id += 1;
    }

    /// Pauses delivery until `until`, or until Core answers a live call; then one probe.
    fn pause(&mut self, until: Instant, replay: &Replay) {
        self.paused_until = Some(until);
        self.answers_when_paused = replay.live_answers.load(Ordering::Relaxed);
        self.probing = true;
    }

    fn paused(&self) -> bool {
        self.paused_until.is_some()
    }

    fn wants_records(&self) -> bool {
        self.reader_idle
    }

    fn records_arrived(&mut self) {
        self.reader_idle = false;
    }

    /// Core answered a live call: a pause ends early (if it really was answered since).
    fn core_answered(&mut self, answers: u64) {
        if answers > self.answers_when_paused {
            self.paused_until = None;
        }
    }

    fn refill(&mut self, now: Instant, rate: u32, burst: f64) {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.tokens = (self.tokens + elapsed * f64::from(rate)).min(burst);
        self.refilled = now;
    }

    /// The records to deliver now: in spool order, at most one per run in flight, within the
    /// concurrency and the rate.
    fn start(&mut self, now: Instant, rate: u32, concurrency: u32) -> Vec<(u64, Arc<Record>)> {
        if self.paused_until.is_some_and(|until| now >= until) {
            self.paused_until = None;
        }
        let mut started = Vec::new();
        self.token_wait = false;
        self.earliest_retry = None;
        if self.paused() {
            return started;
        }
        let limit = if self.probing {
            1
        } else {
            concurrency as usize
        };
        self.refill(now, rate, f64::from(concurrency.max(1)));
        let mut busy: HashSet<&str> = HashSet::new();
        for slot in self.window.iter_mut() {
            let Some(record) = &slot.record else { continue };
            let lane = record.lane.as_str();
            match slot.state {
                SlotState::Done(_) => continue,
                SlotState::InFlight => {
                    busy.insert(lane);
                    continue;
                }
                SlotState::Waiting => {}
            }
            // An earlier event of this run is in flight, waiting or about to be retried.
            if !busy.insert(lane) {
                continue;
            }
            if let Some(at) = slot.retry_at.filter(|at| *at > now) {
                self.earliest_retry = Some(self.earliest_retry.map_or(at, |e| e.min(at)));
                continue;
            }
            if self.in_flight >= limit {
                break; // a delivery's end wakes the task
            }
            if self.tokens < 1.0 {
                self.token_wait = true;
                break;
            }
            self.tokens -= 1.0;
            self.in_flight += 1;
            slot.state = SlotState::InFlight;
            slot.retry_at = None;
            started.push((slot.id, record.clone()));
        }
        started
    }

    /// Records how a delivery went.
    fn finish(&mut self, id: u64, delivery: Delivery, now: Instant, replay: &Replay) {
        self.in_flight = self.in_flight.saturating_sub(1);
        let Some(slot) = self.window.iter_mut().find(|s| s.id == id) else {
            return;
        };
        match delivery {
            Delivery::Answered | Delivery::Rejected => {
                slot.state = SlotState::Done(if delivery == Delivery::Answered {
                    Outcome::Delivered
                } else {
                    Outcome::Rejected
                });
                self.failures_in_a_row = 0;
                self.next_backoff = FIRST_BACKOFF;
                self.probing = false;
                self.drain.count(now);
            }
            Delivery::NotNow => {
                slot.state = SlotState::Waiting;
                slot.retry_at = Some(now + RETRY_DELAY);
                self.failures_in_a_row += 1;
                if !self.paused() && (self.probing || self.failures_in_a_row >= BACKOFF_AFTER) {
                    let pause = self.next_backoff;
                    self.next_backoff = (self.next_backoff * 2).min(MAX_BACKOFF);
                    self.pause(now + pause, replay);
                }
            }
            Delivery::BreakerOpen(retry_in) => {
                // Nothing was sent: wait for the breaker's probe, which the next delivery is.
                slot.state = SlotState::Waiting;
                if !self.paused() {
                    self.pause(now + retry_in.max(Duration::from_millis(10)), replay);
                }
            }
        }
    }

    /// When the task must look again even if nothing happens: the pause's end, the next token
    /// when one was missing, the next retry due; a delivery's end, a spooled record and a live
    /// answer wake it anyway.
    fn next_wake(&self, now: Instant, rate: u32) -> Instant {
        let mut wake = now + IDLE_CHECK;
        if let Some(until) = self.paused_until {
            return wake.min(until);
        }
        if self.token_wait {
            let missing = (1.0 - self.tokens).max(0.0) / f64::from(rate.max(1));
            wake = wake.min(now + Duration::from_secs_f64(missing));
        }
        if let Some(at) = self.earliest_retry {
            wake = wake.min(at);
        }
        wake
    }

    /// Publishes the backlog's figures, and logs once when it keeps growing.
    fn publish(&mut self, replay: &Replay, spool: &Spool, now: Instant) {
        let oldest = self
            .window
            .iter()
            .find(|s| !matches!(s.state, SlotState::Done(_)))
            .and_then(|s| s.record.as_ref()?.happened)
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| {
                u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
            });
        replay.oldest_pending_ms.store(oldest, Ordering::Relaxed);
        let drain = self.drain.per_second(now);
        replay
            .drain_milli
            .store((drain * 1000.0) as u64, Ordering::Relaxed);
        let pending = spool.pending();
        ::metrics::gauge!(SPOOL_PENDING).set(pending as f64);
        ::metrics::gauge!(SPOOL_DRAIN_RATE).set(drain);
        let (age, _) = replay.backlog();
        ::metrics::gauge!(SPOOL_OLDEST_PENDING_SECONDS).set(age.map_or(0.0, |a| a.as_secs_f64()));
        if let Some(growing) = self.growth.sample(pending, now) {
            tracing::warn!(
                pending,
                growing_for_s = growing.as_secs(),
                drain_per_second = drain,
                "OpenBox spool backlog keeps growing: late delivery is slower than events are spooled (raise replay_per_second / replay_concurrency, or look at Core)"
            );
        }
    }
}

/// Deliveries per second over the last 10 seconds, in one-second buckets.
#[derive(Debug, Default)]
struct DrainRate {
    buckets: [u32; 10],
    /// The second (since `origin`) the newest bucket counts.
    second: u64,
    origin: Option<Instant>,
}

impl DrainRate {
    fn rotate(&mut self, now: Instant) {
        let origin = *self.origin.get_or_insert(now);
        let second = now.saturating_duration_since(origin).as_secs();
        let gap = second.saturating_sub(self.second).min(10) as usize;
        self.buckets.rotate_right(gap);
        self.buckets[..gap].fill(0);
        self.second = second;
    }

    fn count(&mut self, now: Instant) {
        self.rotate(now);
        self.buckets[0] += 1;
    }

    fn per_second(&mut self, now: Instant) -> f64 {
        self.rotate(now);
        f64::from(self.buckets.iter().sum::<u32>()) / 10.0
    }
}

/// Notices a backlog that grows for longer than [`GROWTH_WARNING`].
#[derive(Debug, Default)]
struct BacklogWatch {
    last: u64,
    last_sample: Option<Instant>,
    growing_since: Option<Instant>,
    warned: bool,
}

impl BacklogWatch {
    /// Samples every few seconds; `Some(how long)` once when the backlog has grown at every
    /// sample for longer than the warning time.
    fn sample(&mut self, pending: u64, now: Instant) -> Option<Duration> {
        if self
            .last_sample
            .is_some_and(|at| now.saturating_duration_since(at) < IDLE_CHECK)
        {
            return None;
        }
        self.last_sample = Some(now);
        let grew = pending > self.last;
        self.last = pending;
        if !grew {
            self.growing_since = None;
            self.warned = false;
            return None;
        }
        let since = *self.growing_since.get_or_insert(now);
        let growing = now.saturating_duration_since(since);
        if growing >= GROWTH_WARNING && !self.warned {
            self.warned = true;
            return Some(growing);
        }
        None
    }
}

/// Sends one spooled event and records what Core would have decided.
async fn deliver(client: &CoreClient, spool: &Spool, record: &Record) -> Delivery {
    let marks = Marks {
        observe: false,
        event_id: Some(&record.event_id),
        late: true,
    };
    let body = record.body.clone().into();
    let (status, answer) = match client.post(Route::Evaluate, body, marks).await {
        Ok(reply) => reply,
        Err(crate::client::GovernanceApiError::CircuitOpen { retry_in, .. }) => {
            return Delivery::BreakerOpen(retry_in);
        }
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

    /// A plan whose window holds records of these runs, in this order.
    fn plan_of(lanes: &[&str], now: Instant) -> Plan {
        let mut plan = Plan::new(now);
        for (i, lane) in lanes.iter().enumerate() {
            plan.push(Entry::Record(Record::for_test(lane, i as u64 + 1)));
        }
        plan
    }

    fn lanes(started: &[(u64, Arc<Record>)]) -> Vec<String> {
        started.iter().map(|(_, r)| r.lane.clone()).collect()
    }

    #[test]
    fn one_event_per_run_in_flight_in_spool_order() {
        let t0 = Instant::now();
        let mut plan = plan_of(&["a", "a", "b", "c", "b"], t0);
        plan.tokens = 8.0;
        let first = plan.start(t0, 1000, 8);
        assert_eq!(
            lanes(&first),
            ["a", "b", "c"],
            "a's and b's second events wait"
        );
        let replay = Replay::default();
        plan.finish(first[0].0, Delivery::Answered, t0, &replay);
        let second = plan.start(t0 + Duration::from_millis(10), 1000, 8);
        assert_eq!(lanes(&second), ["a"], "then a's second, b's still waits");
    }

    #[test]
    fn concurrency_and_rate_bound_what_starts() {
        let t0 = Instant::now();
        let mut plan = plan_of(&["a", "b", "c", "d", "e", "f"], t0);
        plan.tokens = 8.0;
        assert_eq!(plan.start(t0, 1000, 2).len(), 2, "two in flight at most");
        let mut plan = plan_of(&["a", "b", "c", "d", "e", "f"], t0);
        plan.tokens = 0.0;
        assert!(plan.start(t0, 100, 8).is_empty(), "no token yet");
        // 30 ms later, 100/s has earned 3 tokens.
        assert_eq!(plan.start(t0 + Duration::from_millis(30), 100, 8).len(), 3);
    }

    #[test]
    fn an_isolated_failure_holds_its_run_only() {
        let t0 = Instant::now();
        let replay = Replay::default();
        let mut plan = plan_of(&["a", "a", "b"], t0);
        plan.tokens = 8.0;
        let started = plan.start(t0, 1000, 8);
        plan.finish(started[0].0, Delivery::NotNow, t0, &replay);
        plan.finish(started[1].0, Delivery::Answered, t0, &replay);
        assert!(
            !plan.paused(),
            "one failure among answers is a flaky Core, not a down one"
        );
        assert!(plan.start(t0, 1000, 8).is_empty(), "a waits for its retry");
        let retried = plan.start(t0 + RETRY_DELAY, 1000, 8);
        assert_eq!(lanes(&retried), ["a"]);
        assert_eq!(
            retried[0].1.next,
            Record::for_test("a", 1).next,
            "the same event again"
        );
    }

    /// Failures in a row pause delivery; a late answer cannot end the pause (it cannot even
    /// happen: nothing starts), only a live answer or the pause's end, and then one probe goes
    /// alone; each further failure doubles the pause.
    #[test]
    fn a_down_core_pauses_delivery_until_a_live_answer_or_the_end() {
        let t0 = Instant::now();
        let replay = Replay::default();
        let mut plan = plan_of(&["a", "b", "c", "d"], t0);
        plan.tokens = 8.0;
        let started = plan.start(t0, 1000, 8);
        assert_eq!(started.len(), 4);
        for (id, _) in &started {
            plan.finish(*id, Delivery::NotNow, t0, &replay);
        }
        assert!(plan.paused());
        assert_eq!(plan.next_wake(t0, 1000), t0 + FIRST_BACKOFF);
        let t1 = t0 + FIRST_BACKOFF / 2;
        assert!(plan.start(t1, 1000, 8).is_empty(), "paused");
        plan.core_answered(replay.live_answers.load(Ordering::Relaxed));
        assert!(plan.paused(), "no live answer came: still paused");
        replay.core_answered();
        plan.core_answered(replay.live_answers.load(Ordering::Relaxed));
        assert!(!plan.paused(), "a live answer ends the pause");
        plan.tokens = 8.0;
        let probe = plan.start(t1, 1000, 8);
        assert_eq!(probe.len(), 1, "one probe at a time");
        plan.finish(probe[0].0, Delivery::NotNow, t1, &replay);
        assert_eq!(
            plan.paused_until,
            Some(t1 + FIRST_BACKOFF * 2),
            "a failed probe pauses twice as long"
        );
        // The pause ends by itself, and an answered probe lets the others go again.
        let t2 = t1 + FIRST_BACKOFF * 2 + RETRY_DELAY;
        let probe = plan.start(t2, 1000, 8);
        assert_eq!(probe.len(), 1);
        plan.finish(probe[0].0, Delivery::Answered, t2, &replay);
        plan.tokens = 8.0;
        assert!(
            plan.start(t2, 1000, 8).len() > 1,
            "answered: all lanes go again"
        );
        assert_eq!(plan.next_backoff, FIRST_BACKOFF);
    }

    /// An open breaker sends nothing: delivery waits for its probe, then probes with one.
    #[test]
    fn an_open_breaker_pauses_delivery_until_its_probe() {
        let t0 = Instant::now();
        let replay = Replay::default();
        let mut plan = plan_of(&["a", "b"], t0);
        plan.tokens = 8.0;
        let started = plan.start(t0, 1000, 8);
        plan.finish(
            started[0].0,
            Delivery::BreakerOpen(Duration::from_secs(7)),
            t0,
            &replay,
        );
        assert_eq!(plan.paused_until, Some(t0 + Duration::from_secs(7)));
        assert_eq!(plan.next_backoff, FIRST_BACKOFF, "not a failure of Core's");
        plan.finish(
            started[1].0,
            Delivery::BreakerOpen(Duration::from_secs(7)),
            t0,
            &replay,
        );
        assert!(plan.start(t0 + Duration::from_secs(6), 1000, 8).is_empty());
        plan.tokens = 8.0;
        assert_eq!(
            plan.start(t0 + Duration::from_secs(7), 1000, 8).len(),
            1,
            "one probe"
        );
    }

    #[test]
    fn the_drain_rate_counts_the_last_ten_seconds() {
        let t0 = Instant::now();
        let mut rate = DrainRate::default();
        for i in 0..50 {
            rate.count(t0 + Duration::from_millis(100 * i));
        }
        assert_eq!(rate.per_second(t0 + Duration::from_secs(5)), 5.0);
        assert_eq!(rate.per_second(t0 + Duration::from_secs(30)), 0.0);
    }

    #[test]
    fn a_backlog_that_keeps_growing_is_reported_once() {
        let t0 = Instant::now();
        let mut watch = BacklogWatch::default();
        let mut reported = Vec::new();
        for i in 0..30u64 {
            if let Some(d) = watch.sample(100 + i, t0 + IDLE_CHECK * i as u32) {
                reported.push(d);
            }
        }
        assert_eq!(reported.len(), 1, "{reported:?}");
        assert!(reported[0] >= GROWTH_WARNING);
        // Shrinking re-arms it.
        assert!(watch.sample(10, t0 + IDLE_CHECK * 31).is_none());
        assert!(!watch.warned);
    }

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
