//! What the hook examples in `examples/` share: an embedded dev Core, a Temporal dev server
//! (`TEMPORAL_ADDRESS`, or one started for the example), a governed worker, and a print-out of
//! what Core was asked. Each example only defines its activity, its workflow and its scenario.

use std::future::Future;
use std::str::FromStr;
use std::time::Duration;

use openbox::{OpenBoxConfig, OpenBoxPlugin};
use openbox_dev::{DevCore, LoggedRequest, RuleSet};
use temporalio_client::{
    Client, ClientOptions, Connection, ConnectionOptions, Url, WorkflowGetResultOptions,
    WorkflowStartOptions,
};
use temporalio_common::HasWorkflowDefinition;
use temporalio_common::data_converters::TemporalDeserializable;
use temporalio_sdk::{Runtime, Worker, WorkerOptions};

/// A running example: dev Core, Temporal client, task queue.
pub struct Example {
    /// The embedded dev Core.
    pub core: DevCore,
    /// A client of the Temporal dev server.
    pub client: Client,
    /// The example's task queue.
    pub task_queue: String,
    _server: Option<openbox_devserver::DevServer>,
}

impl Example {
    /// Starts the dev Core with `rules` (TOML; empty: allow everything) and connects to
    /// Temporal.
    pub async fn start(name: &str, rules: &str) -> anyhow::Result<Example> {
        tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| "error".into()),
            )
            .try_init()
            .ok();
        let core = DevCore::builder()
            .rules(RuleSet::from_toml_str(rules, name)?)
            .start()
            .await?;
        let (address, server) = temporal_address().await?;
        let connection = Connection::connect(
            ConnectionOptions::new(Url::from_str(&format!("http://{address}"))?).build(),
        )
        .await?;
        let client = Client::new(connection, ClientOptions::new("default").build())?;
        Ok(Example {
            core,
            client,
            task_queue: format!("openbox-{name}-{}", std::process::id()),
            _server: server,
        })
    }

    /// The OpenBox plugin for this example's dev Core.
    pub async fn plugin(&self) -> anyhow::Result<OpenBoxPlugin> {
        let config = OpenBoxConfig::builder()
            .ignore_env()
            .url(self.core.url())
            .api_key("obx_test_example_key")
            .build()?;
        Ok(OpenBoxPlugin::builder().config(config).build().await?)
    }

    /// Runs a worker with `options` while `scenario` runs, and returns its result.
    pub async fn run<T>(
        &self,
        options: WorkerOptions,
        scenario: impl Future<Output = anyhow::Result<T>>,
    ) -> anyhow::Result<T> {
        let runtime = Runtime::from_current_tokio(Default::default())?;
        let mut worker = Worker::new(&runtime, self.client.clone(), options)?;
        let shutdown = worker.shutdown_handle();
        let scenario = async {
            let r = tokio::time::timeout(Duration::from_secs(120), scenario)
                .await
                .map_err(|_| anyhow::anyhow!("the example did not finish in time"))?;
            shutdown();
            r
        };
        let (run, result) = tokio::join!(worker.run(), scenario);
        run?;
        result
    }

    /// Runs a worker with `options` and, on it, one run of `workflow` with `input`; returns
    /// the run's result.
    pub async fn run_workflow<W>(
        &self,
        options: WorkerOptions,
        workflow: W,
        input: W::Input,
    ) -> anyhow::Result<W::Output>
    where
        W: HasWorkflowDefinition,
        W::Input: Send,
        W::Output: TemporalDeserializable + 'static,
    {
        self.run(options, async {
            let id = format!("{}-run", self.task_queue);
            let start = WorkflowStartOptions::new(&self.task_queue, id).build();
            let handle = self.client.start_workflow(workflow, input, start).await?;
            Ok(handle
                .get_result(WorkflowGetResultOptions::default())
                .await?)
        })
        .await
    }

    /// Prints every hook evaluation Core received and Core's answer; fails when there was none
    /// (the example would have shown nothing).
    pub async fn print_hooks(&self) -> anyhow::Result<Vec<LoggedRequest>> {
        let hooks: Vec<LoggedRequest> = self
            .core
            .read_event_log()
            .await?
            .into_iter()
            .filter(LoggedRequest::is_hook)
            .collect();
        anyhow::ensure!(!hooks.is_empty(), "Core received no hook evaluation");
        for e in &hooks {
            let span = &e.body["spans"][0];
            let target = span["attributes"]["shell.command"]
                .as_str()
                .or_else(|| {
                    ["http_url", "db_statement", "file_path", "function"]
                        .iter()
                        .find_map(|k| span[k].as_str())
                })
                .unwrap_or("");
            println!(
                "  Core ← {:<13} {:<9} {:<8} {target}\n       → {}",
                span["hook_type"].as_str().unwrap_or("?"),
                span["stage"].as_str().unwrap_or("?"),
                span["name"].as_str().unwrap_or("?"),
                e.verdict().unwrap_or("?")
            );
        }
        Ok(hooks)
    }
}

/// `TEMPORAL_ADDRESS`, or a dev server started for the example (stopped when dropped).
pub async fn temporal_address() -> anyhow::Result<(String, Option<openbox_devserver::DevServer>)> {
    if let Ok(address) = std::env::var("TEMPORAL_ADDRESS") {
        return Ok((address, None));
    }
    let root = openbox_devserver::project_root(std::path::Path::new(env!("CARGO_MANIFEST_DIR")));
    let server =
        tokio::task::spawn_blocking(move || -> anyhow::Result<openbox_devserver::DevServer> {
            let cli = openbox_devserver::TemporalCli::locate_or_install(&root)?;
            Ok(openbox_devserver::DevServer::start(
                &cli,
                &root.join(".devenv").join("logs"),
                Duration::from_secs(90),
            )?)
        })
        .await??;
    Ok((server.address().to_owned(), Some(server)))
}
