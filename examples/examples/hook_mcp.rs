//! MCP: rmcp's streamable-HTTP client on a governed transport. Every message the client sends
//! is evaluated before it is sent — a tool call reaches Core as `tools/call <tool>` with its
//! arguments (sensitive ones masked) — and its answer when it arrives. Here a rule blocks the
//! `delete_repo` tool: the server never runs it, while `add` goes through.
//!
//! `cargo run -p openbox-examples --example hook_mcp` (starts a Temporal dev server unless
//! `TEMPORAL_ADDRESS` is set).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use openbox::hooks::mcp::GovernedMcpClient;
use openbox_examples::Example;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolRequestParams, ServerCapabilities, ServerConfig};
use rmcp::transport::streamable_http_client::{
    StreamableHttpClientTransport, StreamableHttpClientTransportConfig,
};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ServerHandler, ServiceExt, schemars, tool, tool_handler, tool_router};
use temporalio_common::RetryPolicy;
use temporalio_macros::{activities, workflow, workflow_methods};
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use temporalio_sdk::{ActivityOptions, WorkerOptions, WorkflowContext, WorkflowResult};

const RULES: &str = r#"
[[rules]]
name = "no deletes"
verdict = "block"
reason = "agents do not delete repositories"
match = { "spans.0.stage" = "started", "spans.0.attributes.gen_ai.tool.name" = "delete_repo" }
"#;

/// The bearer token the agent sends to the MCP server: Core only sees `[REDACTED]`.
const TOKEN: &str = "mcp-example-token-0123456789";

pub struct Acts {
    server: String,
}

#[openbox::governed_activities]
#[activities]
impl Acts {
    /// Calls `tool` with `arguments` (a JSON object) on the MCP server.
    #[activity(name = "mcp_tool")]
    pub async fn call(
        self: Arc<Self>,
        _ctx: ActivityContext,
        (tool, arguments): (String, String),
    ) -> Result<String, ActivityError> {
        // Built inside the activity: rmcp sends from a task of its own, and the client carries
        // the activity there.
        let client = GovernedMcpClient::new(reqwest::Client::new()).map_err(anyhow::Error::from)?;
        let config =
            StreamableHttpClientTransportConfig::with_uri(self.server.clone()).auth_header(TOKEN);
        let transport = StreamableHttpClientTransport::with_client(client, config);
        let service = ().serve(transport).await.map_err(anyhow::Error::from)?;
        let arguments = serde_json::from_str(&arguments).map_err(anyhow::Error::from)?;
        let result = service
            .call_tool(CallToolRequestParams::new(tool).with_arguments(arguments))
            .await;
        let _ = service.cancel().await;
        let result = result.map_err(anyhow::Error::from)?;
        let value = serde_json::to_value(&result).map_err(anyhow::Error::from)?;
        Ok(value["content"][0]["text"]
            .as_str()
            .unwrap_or_default()
            .to_owned())
    }
}

#[workflow]
#[derive(Default)]
pub struct McpExample;

#[workflow_methods]
impl McpExample {
    #[run(name = "McpExample")]
    pub async fn run(
        ctx: &mut WorkflowContext<Self>,
        calls: Vec<(String, String)>,
    ) -> WorkflowResult<Vec<String>> {
        let opts = ActivityOptions::with_start_to_close_timeout(Duration::from_secs(30))
            .retry_policy(RetryPolicy::builder().maximum_attempts(1).build())
            .build();
        let mut results = Vec::new();
        for call in calls {
            results.push(
                match ctx.execute_activity(Acts::call, call, opts.clone()).await {
                    Ok(out) => out,
                    Err(e) => format!("stopped: {e}"),
                },
            );
        }
        Ok(results)
    }
}

static RAN: Mutex<Vec<String>> = Mutex::new(Vec::new());

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
struct Add {
    a: i64,
    b: i64,
}

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
struct Repo {
    name: String,
}

/// The MCP server: two tools, each recording that it ran.
#[derive(Debug, Clone)]
struct Tools;

#[tool_router]
impl Tools {
    #[tool(description = "Adds two numbers")]
    fn add(&self, Parameters(Add { a, b }): Parameters<Add>) -> String {
        RAN.lock().unwrap().push("add".into());
        (a + b).to_string()
    }

    #[tool(description = "Deletes a repository")]
    fn delete_repo(&self, Parameters(Repo { name }): Parameters<Repo>) -> String {
        RAN.lock().unwrap().push("delete_repo".into());
        format!("deleted {name}")
    }
}

#[tool_handler]
impl ServerHandler for Tools {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let ex = Example::start("hook_mcp", RULES).await?;
    let service: StreamableHttpService<Tools, LocalSessionManager> = StreamableHttpService::new(
        || Ok(Tools),
        Default::default(),
        StreamableHttpServerConfig::default(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let server = format!("http://{}/mcp", listener.local_addr()?);
    let router = axum::Router::new().nest_service("/mcp", service);
    tokio::spawn(async move { axum::serve(listener, router).await });
    let calls = vec![
        ("add".to_owned(), r#"{"a": 2, "b": 40}"#.to_owned()),
        ("delete_repo".to_owned(), r#"{"name": "prod"}"#.to_owned()),
    ];
    let options = WorkerOptions::new(&ex.task_queue)
        .worker_plugin(ex.plugin().await?)
        .register_activities(Acts { server })
        .register_workflow::<McpExample>()?
        .build();
    let results = ex.run_workflow(options, McpExample::run, calls).await?;
    println!("results: {results:?}");
    let hooks = ex.print_hooks().await?;
    let ran = RAN.lock().unwrap().clone();
    println!("the server ran: {ran:?}");
    anyhow::ensure!(results[0] == "42", "the allowed call failed");
    anyhow::ensure!(ran == ["add"], "the blocked tool ran");
    anyhow::ensure!(
        !hooks.iter().any(|e| e.body.to_string().contains(TOKEN)),
        "the token reached Core"
    );
    Ok(())
}
