//! Waiting for governance from sync code — a sync activity body, a sync hook — without
//! stalling or panicking the async runtime around it.
//!
//! `Handle::block_on` panics on a runtime worker thread ("Cannot start a runtime from within a
//! runtime"), and a sync function cannot know where it is called from: from a blocking thread
//! (Temporal runs sync activities there), from an async task's worker thread (a sync helper
//! called inside an async activity, a unit test), or from no runtime at all. [`wait`] handles
//! all three.

use std::future::Future;

use tokio::runtime::{Handle, RuntimeFlavor};

/// Why a sync caller could not wait.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot wait for OpenBox Core from sync code here: {0}")]
pub(crate) struct WaitError(String);

/// Runs `fut` to completion from sync code:
/// * on a multi-thread runtime (a worker or a blocking thread), through `block_in_place`, so
///   the worker's other tasks move to another thread while this one waits;
/// * on a current-thread runtime, whose only thread cannot block on itself, on a helper
///   thread with a small runtime of its own;
/// * outside any runtime, on a small runtime on this thread.
pub(crate) fn wait<F>(fut: F) -> Result<F::Output, WaitError>
where
    F: Future + Send,
    F::Output: Send,
{
    match Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
            Ok(tokio::task::block_in_place(|| handle.block_on(fut)))
        }
        Ok(_) => std::thread::scope(|s| {
            s.spawn(|| own_runtime()?.block_on_ok(fut))
                .join()
                .unwrap_or_else(|_| Err(WaitError("the helper thread panicked".into())))
        }),
        Err(_) => own_runtime()?.block_on_ok(fut),
    }
}

struct OwnRuntime(tokio::runtime::Runtime);

impl OwnRuntime {
    fn block_on_ok<F: Future>(self, fut: F) -> Result<F::Output, WaitError> {
        Ok(self.0.block_on(fut))
    }
}

fn own_runtime() -> Result<OwnRuntime, WaitError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map(OwnRuntime)
        .map_err(|e| WaitError(format!("no runtime: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn answer() -> u32 {
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        42
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn from_a_worker_thread_of_a_multi_thread_runtime() {
        assert_eq!(wait(answer()), Ok(42));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn from_a_blocking_thread() {
        let r = tokio::task::spawn_blocking(|| wait(answer()))
            .await
            .unwrap();
        assert_eq!(r, Ok(42));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn from_a_current_thread_runtime() {
        assert_eq!(wait(answer()), Ok(42));
    }

    #[test]
    fn without_a_runtime() {
        assert_eq!(wait(answer()), Ok(42));
    }
}
