//! Governance of real workflows on the real Temporal dev server, judged by the dev Core's event
//! log and the workflows' outcomes.

use std::time::Duration;

use openbox::{ErrorPolicy, OpenBoxPlugin};
use openbox_tests::core::TestCore;
use openbox_tests::fixtures::{Outcome, Plan, PlanWorkflow, Shop, Step};
use openbox_tests::unique;
use openbox_tests::worker::TestEnv;
use temporalio_client::{WorkflowGetResultOptions, WorkflowSignalOptions, WorkflowStartOptions};
use temporalio_sdk::WorkerOptions;

async fn plugin(core: &TestCore, policy: ErrorPolicy) -> OpenBoxPlugin {
    OpenBoxPlugin::builder()
        .config(core.config(policy))
        .approval_poll_interval(Duration::from_millis(300))
        .build()
        .await
        .expect("plugin builds")
}

fn worker_options(task_queue: &str, plugin: OpenBoxPlugin) -> WorkerOptions {
    WorkerOptions::new(task_queue)
        .worker_plugin(plugin)
        .register_activities(Shop)
        .register_workflow::<PlanWorkflow>()
        .expect("workflow registers")
        .build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke_all_six_events() {
    let env = TestEnv::new().await;
    let core = TestCore::start("").await;
    let tq = unique("smoke");
    let wid = unique("wf-smoke");
    let plan = Plan {
        steps: vec![Step::Echo("hi".into()), Step::Add(2, 3)],
        wait_for_signal: true,
        catch_errors: false,
    };
    let out: Outcome = env
        .with_worker(
            worker_options(&tq, plugin(&core, ErrorPolicy::FailOpen).await),
            async {
                let handle = env
                    .client
                    .start_workflow(
                        PlanWorkflow::run,
                        plan,
                        WorkflowStartOptions::new(&tq, &wid).build(),
                    )
                    .await
                    .unwrap();
                handle
                    .signal(
                        PlanWorkflow::note,
                        "go".to_string(),
                        WorkflowSignalOptions::default(),
                    )
                    .await
                    .unwrap();
                handle
                    .get_result(WorkflowGetResultOptions::default())
                    .await
                    .unwrap()
            },
        )
        .await;
    assert_eq!(out.results, ["hi", "5"]);
    let log = core.log().await;
    let types: Vec<_> = log.iter().filter_map(|e| e.event_type()).collect();
    println!("{types:?}");
    for e in &log {
        println!("{}", serde_json::to_string(&e.body).unwrap());
    }
}
