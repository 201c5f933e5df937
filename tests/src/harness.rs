//! One governed test scenario: a dev Core with rules, a task queue, and helpers to start and
//! finish workflows.

use std::future::Future;
use std::time::Duration;

use openbox::{ErrorPolicy, OpenBoxPlugin, OpenBoxPluginBuilder};
use openbox_dev::LoggedRequest;
use temporalio_client::Client;
use temporalio_client::errors::WorkflowGetResultError;
use temporalio_client::{WorkflowGetResultOptions, WorkflowHandle, WorkflowStartOptions};
use temporalio_sdk::WorkerOptions;

use crate::core::{TEST_KEY, TestCore};
use crate::fixtures::{Bank, BankWorkflow, Ledger, Outcome, Plan, PlanWorkflow, Shop};
use crate::hook_fixtures::{HookActivities, HookPlan, HookWorkflow};
use crate::worker::TestEnv;

/// A handle of a started [`PlanWorkflow`].
pub type PlanHandle =
    WorkflowHandle<Client, <PlanWorkflow as temporalio_common::HasWorkflowDefinition>::Run>;

/// Longest a test waits for a workflow result.
pub const RESULT_TIMEOUT: Duration = Duration::from_secs(90);

/// A scenario.
pub struct Harness {
    /// Temporal.
    pub env: TestEnv,
    /// The dev Core.
    pub core: TestCore,
    /// The scenario's task queue.
    pub task_queue: String,
}

impl Harness {
    /// A dev Core with `rules` and a fresh task queue.
    pub async fn new(rules: &str) -> Self {
        Harness {
            env: TestEnv::new().await,
            core: TestCore::start(rules).await,
            task_queue: crate::unique("tq"),
        }
    }

    /// A scenario around a dev Core already started.
    pub async fn with_core(core: TestCore) -> Self {
        Harness {
            env: TestEnv::new().await,
            core,
            task_queue: crate::unique("tq"),
        }
    }

    /// A plugin for this Core with a 300 ms approval poll; `tweak` adjusts it.
    pub async fn plugin(
        &self,
        policy: ErrorPolicy,
        tweak: impl FnOnce(OpenBoxPluginBuilder) -> OpenBoxPluginBuilder,
    ) -> OpenBoxPlugin {
        tweak(
            OpenBoxPlugin::builder()
                .config(self.core.config(policy))
                .options(|o| o.approval_poll_interval(Duration::from_millis(300))),
        )
        .build()
        .await
        .expect("plugin builds")
    }

    /// Worker options with every fixture registered, and `plugin` if given.
    pub fn worker_options(&self, plugin: Option<OpenBoxPlugin>) -> WorkerOptions {
        let builder = WorkerOptions::new(&self.task_queue)
            // A stopped worker's sticky queue hands its workflows on quickly.
            .sticky_queue_schedule_to_start_timeout(Duration::from_secs(1))
            .register_activities(Shop)
            .register_activities(Bank)
            .register_activities(Ledger)
            .register_workflow::<PlanWorkflow>()
            .expect("PlanWorkflow registers")
            .register_workflow::<BankWorkflow>()
            .expect("BankWorkflow registers")
            .register_activities(HookActivities)
            .register_workflow::<HookWorkflow>()
            .expect("HookWorkflow registers");
        match plugin {
            Some(p) => builder.worker_plugin(p).build(),
            None => builder.build(),
        }
    }

    /// Runs a worker with `plugin` while `scenario` runs.
    pub async fn run<T>(
        &self,
        plugin: Option<OpenBoxPlugin>,
        scenario: impl Future<Output = T>,
    ) -> T {
        self.env
            .with_worker(self.worker_options(plugin), scenario)
            .await
    }

    /// The client.
    pub fn client(&self) -> &Client {
        &self.env.client
    }

    /// Starts a [`PlanWorkflow`].
    pub async fn start_plan(&self, workflow_id: &str, plan: Plan) -> PlanHandle {
        self.env
            .client
            .start_workflow(
                PlanWorkflow::run,
                plan,
                WorkflowStartOptions::new(&self.task_queue, workflow_id).build(),
            )
            .await
            .expect("workflow starts")
    }

    /// Runs a [`HookWorkflow`] with `plan` to completion and returns its results.
    pub async fn run_hooks(&self, workflow_id: &str, plan: HookPlan) -> Vec<String> {
        let handle = self
            .env
            .client
            .start_workflow(
                HookWorkflow::run,
                plan,
                WorkflowStartOptions::new(&self.task_queue, workflow_id).build(),
            )
            .await
            .expect("workflow starts");
        result_of(&handle)
            .await
            .expect("the hook workflow completes (activity errors are its results)")
    }

    /// The events the Core received for `workflow_id` (no key checks), in order.
    pub async fn events_of(&self, workflow_id: &str) -> Vec<LoggedRequest> {
        self.core
            .log()
            .await
            .into_iter()
            .filter(|e| e.body.get("workflow_id").and_then(|v| v.as_str()) == Some(workflow_id))
            .collect()
    }

    /// Fails the test if the API key appears in the histories of `workflow_ids`.
    pub fn assert_no_key_in_histories(&self, workflow_ids: &[String]) {
        crate::history::assert_histories_free_of(
            &self.env.temporal,
            workflow_ids,
            &[TEST_KEY, "obx_test_"],
        );
    }
}

/// Waits for the result of a workflow, bounded by [`RESULT_TIMEOUT`].
pub async fn result_of<W>(
    handle: &WorkflowHandle<Client, W>,
) -> Result<W::Output, WorkflowGetResultError>
where
    W: temporalio_common::HasWorkflowDefinition,
    W::Output: temporalio_common::data_converters::TemporalDeserializable + 'static,
{
    tokio::time::timeout(
        RESULT_TIMEOUT,
        handle.get_result(WorkflowGetResultOptions::default()),
    )
    .await
    .expect("workflow finished in time")
}

/// `event_type` of each logged request (hooks included, validate calls excluded).
pub fn event_types(events: &[LoggedRequest]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| {
            let t = e.event_type()?;
            Some(if e.is_hook() {
                format!("hook:{t}")
            } else {
                t.to_owned()
            })
        })
        .collect()
}

/// [`event_types`], with the first two sorted when they are WorkflowStarted and SignalReceived:
/// a signal that arrives with the start is reported concurrently with it, in either order.
pub fn event_types_start_sorted(events: &[LoggedRequest]) -> Vec<String> {
    let mut types = event_types(events);
    if types.len() >= 2
        && types[..2]
            .iter()
            .all(|t| t == "WorkflowStarted" || t == "SignalReceived")
    {
        types[..2].sort_by_key(|t| t != "WorkflowStarted");
    }
    types
}

/// The plan's outcome, unwrapping success.
pub fn outcome(result: Result<Outcome, WorkflowGetResultError>) -> Outcome {
    result.unwrap_or_else(|e| panic!("workflow failed: {e:?}"))
}
