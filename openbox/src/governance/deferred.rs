//! `completed` evaluations that run while the activity goes on ([`HookCompletion::Deferred`]).
//!
//! While the activity body runs, they run inside the activity's own task: the body's driver
//! (see [`Deferred::drive`]) polls them after every poll of the body, so handing one over costs
//! a push, not a spawned task (a spawn wakes a parked worker thread, a syscall, on the caller's
//! critical path). Handed over when no driver runs — a sync body on its blocking thread, a
//! task that outlives the body — they are spawned. Either way the attempt waits for every one
//! before it reports its end ([`Deferred::settle`]), and finished ones are not kept.
//!
//! [`HookCompletion::Deferred`]: crate::HookCompletion::Deferred

use std::cell::Cell;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::pin;
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};

use futures::future::{BoxFuture, FutureExt};
use futures::stream::{FuturesUnordered, StreamExt};
use tokio::task::JoinHandle;

thread_local! {
    /// The [`Deferred`] whose driver is polling on this thread right now (its address), so
    /// that a hand-over from inside that poll does not wake the task being polled.
    static DRIVING: Cell<usize> = const { Cell::new(0) };
}

/// The deferred evaluations of one activity attempt.
#[derive(Debug, Default)]
pub(crate) struct Deferred {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// A driver polls the body now: hand-overs go to `incoming`.
    driven: bool,
    /// Handed over, not yet taken by the driver.
    incoming: Vec<BoxFuture<'static, ()>>,
    /// The driver's task, woken by a hand-over from elsewhere.
    waker: Option<Waker>,
    /// Spawned evaluations not known to have finished.
    spawned: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("driven", &self.driven)
            .field("incoming", &self.incoming.len())
            .field("spawned", &self.spawned.len())
            .finish()
    }
}

impl Deferred {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn id(&self) -> usize {
        std::ptr::from_ref(self) as usize
    }

    /// Whether an evaluation handed over now would run: a driver polls it, or a Tokio runtime
    /// can run it.
    pub(crate) fn can_run(&self) -> bool {
        self.lock().driven || tokio::runtime::Handle::try_current().is_ok()
    }

    /// Hands `evaluation` over: to the driver when one runs, else to the Tokio runtime. Without
    /// either it cannot run and is dropped (check [`Deferred::can_run`] first).
    pub(crate) fn defer(&self, evaluation: impl Future<Output = ()> + Send + 'static) {
        // A panicking evaluation must not take the activity (or the driver) down with it.
        let evaluation = AssertUnwindSafe(evaluation).catch_unwind().map(drop);
        let mut state = self.lock();
        if state.driven {
            state.incoming.push(Box::pin(evaluation));
            let inside = DRIVING.with(Cell::get) == self.id();
            let waker = if inside { None } else { state.waker.clone() };
            drop(state);
            if let Some(waker) = waker {
                waker.wake();
            }
            return;
        }
        state.spawn(evaluation);
    }

    /// Runs `body` and, in the same task, every evaluation handed over meanwhile; returns
    /// when the body has returned and those have answered. If a driver runs already (nested
    /// scopes), only runs `body`. Dropped early (a cancelled activity), it spawns what is left.
    pub(crate) async fn drive<F: Future>(&self, body: F) -> F::Output {
        let nested = std::mem::replace(&mut self.lock().driven, true);
        if nested {
            return body.await;
        }
        let mut driver = Driver {
            deferred: self,
            running: FuturesUnordered::new(),
        };
        let mut body = pin!(body);
        let mut output = None;
        let output = std::future::poll_fn(|cx| {
            let _inside = Inside::enter(self.id());
            if output.is_none()
                && let Poll::Ready(v) = body.as_mut().poll(cx)
            {
                output = Some(v);
            }
            driver.poll_running(cx);
            match output.take() {
                Some(v) if driver.running.is_empty() => Poll::Ready(v),
                taken => {
                    output = taken;
                    Poll::Pending
                }
            }
        })
        .await;
        drop(driver);
        output
    }

    /// Waits until every handed-over evaluation has answered (including ones handed over
    /// meanwhile).
    pub(crate) async fn settle(&self) {
        loop {
            let spawned = std::mem::take(&mut self.lock().spawned);
            if spawned.is_empty() {
                return;
            }
            for handle in spawned {
                let _ = handle.await;
            }
        }
    }
}

/// The evaluations a driver runs; dropped, it stops driving and spawns what is left.
struct Driver<'a> {
    deferred: &'a Deferred,
    running: FuturesUnordered<BoxFuture<'static, ()>>,
}

impl Driver<'_> {
    /// Takes what was handed over and polls everything until nothing more can progress.
    fn poll_running(&mut self, cx: &mut Context<'_>) {
        loop {
            let incoming = {
                let mut state = self.deferred.lock();
                if !state
                    .waker
                    .as_ref()
                    .is_some_and(|w| w.will_wake(cx.waker()))
                {
                    state.waker = Some(cx.waker().clone());
                }
                std::mem::take(&mut state.incoming)
            };
            self.running.extend(incoming);
            while let Poll::Ready(Some(())) = self.running.poll_next_unpin(cx) {}
            // An evaluation may hand over another while it is polled (on this thread, so
            // without a wake).
            if self.deferred.lock().incoming.is_empty() {
                return;
            }
        }
    }
}

impl Drop for Driver<'_> {
    fn drop(&mut self) {
        let mut state = self.deferred.lock();
        state.driven = false;
        state.waker = None;
        let left: Vec<_> = std::mem::take(&mut state.incoming)
            .into_iter()
            .chain(std::mem::take(&mut self.running))
            .collect();
        if left.is_empty() {
            return;
        }
        // Cancelled (or handed over after the last poll): they still run to their end, and a
        // settle still waits for them.
        state.spawn(futures::future::join_all(left).map(drop));
    }
}

impl State {
    /// Runs `evaluation` on the current Tokio runtime, tracked for [`Deferred::settle`] (the
    /// handles of finished ones are dropped here); without a runtime it is lost, and logged.
    fn spawn(&mut self, evaluation: impl Future<Output = ()> + Send + 'static) {
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                self.spawned.retain(|h| !h.is_finished());
                self.spawned.push(runtime.spawn(evaluation));
            }
            Err(_) => {
                tracing::warn!(
                    "deferred OpenBox evaluations had no runtime to run on; they are lost"
                )
            }
        }
    }
}

/// Marks this thread as polling a driver until dropped (also on a panic).
struct Inside {
    previous: usize,
}

impl Inside {
    fn enter(id: usize) -> Self {
        Inside {
            previous: DRIVING.with(|c| c.replace(id)),
        }
    }
}

impl Drop for Inside {
    fn drop(&mut self) {
        DRIVING.with(|c| c.set(self.previous));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    fn counting(
        n: &Arc<AtomicUsize>,
        after: Duration,
    ) -> impl Future<Output = ()> + Send + 'static {
        let n = n.clone();
        async move {
            tokio::time::sleep(after).await;
            n.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[tokio::test]
    async fn a_driven_body_returns_after_its_evaluations_answered() {
        let d = Deferred::default();
        let n = Arc::new(AtomicUsize::new(0));
        let out = d
            .drive(async {
                d.defer(counting(&n, Duration::from_millis(30)));
                tokio::task::yield_now().await;
                d.defer(counting(&n, Duration::from_millis(1)));
                7
            })
            .await;
        assert_eq!(out, 7);
        assert_eq!(n.load(Ordering::SeqCst), 2);
        // Nothing was spawned: the driver ran them.
        assert!(d.lock().spawned.is_empty());
        d.settle().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hand_overs_from_other_tasks_wake_the_driver() {
        let d = Arc::new(Deferred::default());
        let n = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let (d2, n2) = (d.clone(), n.clone());
        let out = d
            .drive(async move {
                tokio::spawn(async move {
                    // Handed over from another task while the body waits for it.
                    d2.defer(counting(&n2, Duration::from_millis(1)));
                    let _ = tx.send(());
                });
                rx.await.unwrap();
                "done"
            })
            .await;
        assert_eq!(out, "done");
        assert_eq!(n.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_cancelled_driver_spawns_what_is_left_and_settle_waits_for_it() {
        let d = Deferred::default();
        let n = Arc::new(AtomicUsize::new(0));
        let driven = d.drive(async {
            d.defer(counting(&n, Duration::from_millis(20)));
            std::future::pending::<()>().await;
        });
        assert!(
            tokio::time::timeout(Duration::from_millis(5), driven)
                .await
                .is_err()
        );
        assert_eq!(n.load(Ordering::SeqCst), 0);
        d.settle().await;
        assert_eq!(n.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn without_a_driver_evaluations_are_spawned_and_finished_ones_are_not_kept() {
        let d = Deferred::default();
        let n = Arc::new(AtomicUsize::new(0));
        for _ in 0..50 {
            d.defer(counting(&n, Duration::ZERO));
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert!(d.lock().spawned.len() < 50, "{:?}", d.lock());
        d.settle().await;
        assert_eq!(n.load(Ordering::SeqCst), 50);
    }

    #[tokio::test]
    async fn a_panicking_evaluation_does_not_fail_the_body() {
        let d = Deferred::default();
        let out = d
            .drive(async {
                d.defer(async { panic!("evaluation bug") });
                1
            })
            .await;
        assert_eq!(out, 1);
    }

    #[tokio::test]
    async fn nested_drivers_leave_the_driving_to_the_outer_one() {
        let d = Deferred::default();
        let n = Arc::new(AtomicUsize::new(0));
        d.drive(async {
            d.drive(async { d.defer(counting(&n, Duration::from_millis(5))) })
                .await;
            assert!(d.lock().driven);
        })
        .await;
        assert_eq!(n.load(Ordering::SeqCst), 1);
        assert!(!d.lock().driven);
    }
}
