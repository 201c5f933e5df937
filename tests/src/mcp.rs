//! A real MCP server (rmcp, streamable HTTP) for the MCP hook tests, and a client whose
//! transport is governed.
//!
//! Tools: `add` (two numbers), `delete_repo` (a name: what a rule blocks before it is sent),
//! `read_config` (answers with a text holding `MCP_SERVER_SECRET` under `password`: what a rule
//! refuses when the answer arrives). Every call the server runs is recorded.

use std::sync::Mutex;

use openbox::hooks::mcp::GovernedMcpClient;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolRequestParams, ServerCapabilities, ServerConfig};
use rmcp::transport::streamable_http_client::{
    StreamableHttpClientTransport, StreamableHttpClientTransportConfig,
};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ServerHandler, ServiceExt, schemars, tool, tool_handler, tool_router};
use tokio_util::sync::CancellationToken;

/// A value the `read_config` tool answers with, under `password`.
pub const MCP_SERVER_SECRET: &str = "mcp-server-secret-2468";

static CALLS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Every tool call the server ran, as `tool:argument`.
pub fn calls() -> Vec<String> {
    CALLS.lock().unwrap().clone()
}

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
struct AddRequest {
    a: i64,
    b: i64,
    /// Not used: a credential an agent passes along.
    #[serde(default)]
    api_key: Option<String>,
}

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
struct NameRequest {
    name: String,
}

#[derive(Debug, Clone)]
struct Tools;

#[tool_router]
impl Tools {
    #[tool(description = "Adds two numbers")]
    fn add(&self, Parameters(AddRequest { a, b, api_key }): Parameters<AddRequest>) -> String {
        CALLS
            .lock()
            .unwrap()
            .push(format!("add:{a}+{b}:{}", api_key.is_some()));
        (a + b).to_string()
    }

    #[tool(description = "Deletes a repository")]
    fn delete_repo(&self, Parameters(NameRequest { name }): Parameters<NameRequest>) -> String {
        CALLS.lock().unwrap().push(format!("delete_repo:{name}"));
        format!("deleted {name}")
    }

    #[tool(description = "Reads a configuration")]
    fn read_config(&self, Parameters(NameRequest { name }): Parameters<NameRequest>) -> String {
        CALLS.lock().unwrap().push(format!("read_config:{name}"));
        format!(r#"{{"name":"{name}","password":"{MCP_SERVER_SECRET}"}}"#)
    }
}

#[tool_handler]
impl ServerHandler for Tools {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }
}

/// The server, on a free port of 127.0.0.1.
pub struct McpServer {
    /// `http://127.0.0.1:<port>/mcp`.
    pub url: String,
    stop: CancellationToken,
}

impl McpServer {
    /// Starts the server.
    pub async fn start() -> Self {
        let stop = CancellationToken::new();
        let service: StreamableHttpService<Tools, LocalSessionManager> = StreamableHttpService::new(
            || Ok(Tools),
            Default::default(),
            StreamableHttpServerConfig::default().with_cancellation_token(stop.child_token()),
        );
        let router = axum::Router::new().nest_service("/mcp", service);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/mcp", listener.local_addr().expect("address"));
        let token = stop.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async move { token.cancelled_owned().await })
                .await;
        });
        McpServer { url, stop }
    }
}

impl Drop for McpServer {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

static KEPT: Mutex<Option<GovernedMcpClient>> = Mutex::new(None);

/// A governed client kept past its activity: the first call builds one and keeps it (`kept`);
/// the next, in another activity, lists the tools through it (`listed …` or `error: …`).
pub async fn keep_or_use(url: &str, token: &str) -> anyhow::Result<String> {
    let kept = KEPT.lock().unwrap().take();
    let Some(client) = kept else {
        *KEPT.lock().unwrap() = Some(GovernedMcpClient::new(reqwest::Client::new())?);
        return Ok("kept".to_owned());
    };
    let config = StreamableHttpClientTransportConfig::with_uri(url.to_owned()).auth_header(token);
    let transport = StreamableHttpClientTransport::with_client(client, config);
    Ok(match ().serve(transport).await {
        Ok(service) => {
            let tools = service.list_tools(None).await;
            let _ = service.cancel().await;
            format!("listed {}", tools.map(|t| t.tools.len()).unwrap_or(0))
        }
        Err(e) => format!("error: {e}"),
    })
}

/// Connects to the server at `url` through a governed client (with `token` as its bearer
/// token) and calls `tool` with `arguments` (a JSON object). The result is the tool's text, or
/// `error: …`.
pub async fn call(url: &str, token: &str, tool: &str, arguments: &str) -> anyhow::Result<String> {
    let client = GovernedMcpClient::new(reqwest::Client::new())?;
    let config = StreamableHttpClientTransportConfig::with_uri(url.to_owned()).auth_header(token);
    let transport = StreamableHttpClientTransport::with_client(client, config);
    let service = ().serve(transport).await?;
    let arguments: serde_json::Map<String, serde_json::Value> = serde_json::from_str(arguments)?;
    let result = service
        .call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments))
        .await;
    let _ = service.cancel().await;
    Ok(match result {
        Ok(r) => serde_json::to_value(&r)?["content"][0]["text"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        Err(e) => format!("error: {e}"),
    })
}
