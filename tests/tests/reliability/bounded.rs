//! Bounded state (contract D11): 10 000 governed activities in flight at once — succeeding,
//! failing, timing out and cancelled — leave no per-activity state in the SDK, and the heap
//! returns to its baseline.

use std::time::{Duration, Instant};

use openbox::temporal::activity_interceptor::intercepted_attempts;
use openbox::{ErrorPolicy, OpenBoxPlugin};
use openbox_tests::alloc::live_bytes;
use openbox_tests::core::TestCore;
use openbox_tests::harness::{Harness, result_of};
use openbox_tests::observe::Observer;
use openbox_tests::swarm::{Ending, Swarm, SwarmWorkflow};
use temporalio_client::WorkflowStartOptions;
use temporalio_sdk::WorkerOptions;
use temporalio_sdk::runtime::worker_tuner::{FixedSizeSlotSupplier, TunerHolder};

const WORKFLOWS: u32 = 50;
const PER_WORKFLOW: u32 = 200;
/// Heap a round may keep: 200 bytes per activity, less than any per-activity record of the SDK
/// (an intercepted attempt or a scope is larger). Measured: 0.6–1.2 MiB per 10 000 activities
/// governed, and about half of that without governance (the Temporal SDK's own per-run state),
/// varying with how far pools and tables grew.
const HEAP_SLACK: i64 = 2 << 20;

fn options(h: &Harness, plugin: Option<&OpenBoxPlugin>) -> WorkerOptions {
    let slots = || FixedSizeSlotSupplier::new(2_000);
    let tuner = TunerHolder::builder()
        .workflow_task_slot_supplier(FixedSizeSlotSupplier::new(100))
        .activity_task_slot_supplier(slots())
        .local_activity_task_slot_supplier(slots())
        .nexus_task_slot_supplier(FixedSizeSlotSupplier::new(10))
        .build();
    let b = WorkerOptions::new(&h.task_queue)
        .tuner(tuner)
        .register_activities(Swarm)
        .register_workflow::<SwarmWorkflow>()
        .expect("SwarmWorkflow registers");
    match plugin {
        Some(p) => b.worker_plugin(p.clone()).build(),
        None => b.build(),
    }
}

/// Runs `workflows` swarms of `PER_WORKFLOW` activities at once, governed by `plugin` if given;
/// returns every result.
async fn run_swarms(h: &Harness, plugin: Option<&OpenBoxPlugin>, workflows: u32) -> Vec<String> {
    h.env
        .with_worker(options(h, plugin), async {
            let mut handles = Vec::new();
            for w in 0..workflows {
                let wid = openbox_tests::unique("swarm");
                let handle = h
                    .client()
                    .start_workflow(
                        SwarmWorkflow::run,
                        (w * PER_WORKFLOW, PER_WORKFLOW),
                        WorkflowStartOptions::new(&h.task_queue, &wid).build(),
                    )
                    .await
                    .expect("swarm starts");
                handles.push(handle);
            }
            let mut results = Vec::new();
            for handle in &handles {
                results.extend(result_of(handle).await.expect("swarm completes"));
            }
            results
        })
        .await
}

/// Waits until the SDK holds no per-activity state (timed-out bodies may still be finishing).
async fn settle(plugin: &OpenBoxPlugin) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let open = plugin.governor().stats().snapshot().open_scopes;
        if (
            intercepted_attempts(),
            open,
            plugin.governor().pending_approvals(),
        ) == (0, 0, 0)
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "state left: {} intercepted attempts, {open} open scopes, {} pending approvals",
            intercepted_attempts(),
            plugin.governor().pending_approvals()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_activities_leave_no_state_behind() {
    let obs = Observer::get();
    let _serial = obs.exclusive().await;
    // The in-process dev Core keeps only a few events, so its memory is flat after warm-up.
    let h = Harness::with_core(TestCore::start_keeping("", 100).await).await;
    let plugin = h
        .plugin(ErrorPolicy::FailOpen, |b| {
            b.approval_poll_interval(Duration::from_millis(300))
        })
        .await;

    // Warm-up at the same load: connection pools, slot tables and hash maps grow to the size
    // this concurrency needs (bounded by it, not by the number of activities).
    run_swarms(&h, Some(&plugin), WORKFLOWS).await;
    settle(&plugin).await;
    obs.counter("", &[]); // drains the metric recorder's buffers
    let baseline = live_bytes();

    let started = Instant::now();
    let results = run_swarms(&h, Some(&plugin), WORKFLOWS).await;
    let took = started.elapsed();
    assert_eq!(results.len(), (WORKFLOWS * PER_WORKFLOW) as usize);
    let count = |f: &dyn Fn(&String) -> bool| results.iter().filter(|r| f(r)).count();
    let per_ending = |e: Ending| {
        (0..WORKFLOWS * PER_WORKFLOW)
            .filter(|i| Ending::of(*i) == e)
            .count()
    };
    assert_eq!(count(&|r| r == "ok"), per_ending(Ending::Success));
    assert_eq!(
        count(&|r| r.starts_with("ERR:")),
        per_ending(Ending::Failure) + per_ending(Ending::Timeout) + per_ending(Ending::Cancelled),
        "every failure, timeout and cancellation reached the workflow"
    );

    settle(&plugin).await;
    obs.counter("", &[]);
    let after = live_bytes();
    let growth = after - baseline;
    eprintln!(
        "10 000 governed activities in {took:?}: heap {} KiB at baseline, +{} KiB after",
        baseline / 1024,
        growth / 1024
    );
    assert!(
        growth < HEAP_SLACK,
        "heap grew by {} KiB over 10 000 activities",
        growth / 1024
    );
}
