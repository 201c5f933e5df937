//! A governed workflow. Start the dev Core and a Temporal dev server, then run it:
//!
//! ```sh
//! cargo install openbox-dev && openbox-dev serve          # OpenBox Core on 127.0.0.1:8086
//! temporal server start-dev                                # Temporal on localhost:7233
//! OPENBOX_API_URL=http://127.0.0.1:8086 OPENBOX_API_KEY=obx_test_quickstart cargo run
//! ```

use std::str::FromStr;
use std::time::Duration;

use openbox::{OpenBoxConfig, OpenBoxPlugin};
use temporalio_client::{
    Client, ClientOptions, Connection, ConnectionOptions, Url, WorkflowGetResultOptions,
    WorkflowStartOptions,
};
use temporalio_macros::{activities, workflow, workflow_methods};
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use temporalio_sdk::{
    ActivityOptions, Runtime, Worker, WorkerOptions, WorkflowContext, WorkflowResult,
};

const TASK_QUEUE: &str = "hello-openbox";

pub struct Greetings;

#[activities]
impl Greetings {
    /// Core sees `name` at ActivityStarted and the greeting at ActivityCompleted.
    #[activity(name = "greet")]
    pub async fn greet(_ctx: ActivityContext, name: String) -> Result<String, ActivityError> {
        Ok(format!("Hello, {name}!"))
    }
}

#[workflow]
#[derive(Default)]
pub struct Hello;

#[workflow_methods]
impl Hello {
    #[run(name = "Hello")]
    pub async fn run(ctx: &mut WorkflowContext<Self>, name: String) -> WorkflowResult<String> {
        let options = ActivityOptions::with_start_to_close_timeout(Duration::from_secs(10)).build();
        Ok(ctx
            .execute_activity(Greetings::greet, name, options)
            .await?)
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let temporal = std::env::var("TEMPORAL_ADDRESS").unwrap_or_else(|_| "localhost:7233".into());
    let url = Url::from_str(&format!("http://{temporal}"))?;
    let connection = Connection::connect(ConnectionOptions::new(url).build()).await?;
    let client = Client::new(connection, ClientOptions::new("default").build())?;

    // OPENBOX_API_URL and OPENBOX_API_KEY say where Core is; `build` checks the key with it.
    let plugin = OpenBoxPlugin::builder()
        .config(OpenBoxConfig::builder().build()?)
        .build()
        .await?;
    let options = WorkerOptions::new(TASK_QUEUE)
        .worker_plugin(plugin)
        .register_activities(Greetings)
        .register_workflow::<Hello>()?
        .build();
    let runtime = Runtime::from_current_tokio(Default::default())?;
    let mut worker = Worker::new(&runtime, client.clone(), options)?;
    let shutdown = worker.shutdown_handle();

    let greet = async {
        let id = format!("hello-{}", std::process::id());
        let start = WorkflowStartOptions::new(TASK_QUEUE, id).build();
        let handle = client
            .start_workflow(Hello::run, "world".to_owned(), start)
            .await?;
        let greeting = handle
            .get_result(WorkflowGetResultOptions::default())
            .await?;
        println!("{greeting}");
        shutdown();
        anyhow::Ok(())
    };
    let (worked, greeted) = tokio::join!(worker.run(), greet);
    worked?;
    greeted
}
