//! LLM clients: a rig client built on the governed reqwest client, and an async-openai client
//! on `GovernedOpenAiService`. Each completion is evaluated before it is sent — Core sees the
//! prompt, never the API key — and after its answer (streamed answers when the caller has read
//! them). Here a rule blocks completions on the "restricted" endpoint: the server never sees
//! them. The server is a small OpenAI-compatible one, in this file.
//!
//! `cargo run -p openbox-examples --example hook_llm` (starts a Temporal dev server unless
//! `TEMPORAL_ADDRESS` is set).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use openbox_examples::Example;
use serde_json::{Value, json};
use temporalio_common::RetryPolicy;
use temporalio_macros::{activities, workflow, workflow_methods};
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use temporalio_sdk::{ActivityOptions, WorkerOptions, WorkflowContext, WorkflowResult};

/// The API key the agent sends: Core only sees `[REDACTED]`.
const API_KEY: &str = "sk-example-0123456789abcdefghij";

pub struct Acts {
    server: String,
}

#[openbox::governed_activities]
#[activities]
impl Acts {
    /// Asks `prompt` on the endpoint `path` (`/v1` or `/restricted/v1`), with rig (`"rig"`) or
    /// async-openai (`"async-openai"`).
    #[activity(name = "ask_llm")]
    pub async fn ask(
        self: Arc<Self>,
        _ctx: ActivityContext,
        (client, path, prompt): (String, String, String),
    ) -> Result<String, ActivityError> {
        let base = format!("{}{path}", self.server);
        Ok(match client.as_str() {
            "rig" => with_rig(&base, &prompt).await?,
            _ => with_async_openai(&base, &prompt).await?,
        })
    }
}

async fn with_rig(base: &str, prompt: &str) -> anyhow::Result<String> {
    use rig::client::CompletionClient;
    use rig::completion::CompletionModel;

    // rig sends through any `HttpClientExt`; it implements it for the middleware client.
    let http = openbox::hooks::http::client(reqwest::Client::builder())?;
    let client = rig::providers::openai::Client::builder()
        .api_key(API_KEY)
        .base_url(base)
        .http_client(http)
        .build()?
        .completions_api();
    let response = client
        .completion_model("example-model")
        .completion_request(prompt.to_owned())
        .send()
        .await?;
    Ok(response
        .choice
        .iter()
        .filter_map(|c| match c {
            rig::message::AssistantContent::Text(t) => Some(t.text.clone()),
            _ => None,
        })
        .collect())
}

async fn with_async_openai(base: &str, prompt: &str) -> anyhow::Result<String> {
    use async_openai::config::OpenAIConfig;
    use openbox::hooks::http::openai::GovernedOpenAiService;

    let config = OpenAIConfig::new()
        .with_api_base(base)
        .with_api_key(API_KEY);
    let client =
        async_openai::Client::with_config(config).with_http_service(GovernedOpenAiService::new()?);
    let request = serde_json::from_value(json!({
        "model": "example-model",
        "messages": [{"role": "user", "content": prompt}],
    }))?;
    let response = client.chat().create(request).await?;
    Ok(
        serde_json::to_value(&response)?["choices"][0]["message"]["content"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

#[workflow]
#[derive(Default)]
pub struct LlmExample;

#[workflow_methods]
impl LlmExample {
    #[run(name = "LlmExample")]
    pub async fn run(
        ctx: &mut WorkflowContext<Self>,
        asks: Vec<(String, String, String)>,
    ) -> WorkflowResult<Vec<String>> {
        let opts = ActivityOptions::with_start_to_close_timeout(Duration::from_secs(30))
            .retry_policy(RetryPolicy::builder().maximum_attempts(1).build())
            .build();
        let mut results = Vec::new();
        for ask in asks {
            results.push(
                match ctx.execute_activity(Acts::ask, ask, opts.clone()).await {
                    Ok(out) => out,
                    Err(e) => format!("stopped: {e}"),
                },
            );
        }
        Ok(results)
    }
}

static SEEN: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// The OpenAI-compatible server: answers every chat completion with `echo: <prompt>`.
async fn completions(request: axum::extract::Request) -> axum::Json<Value> {
    let path = request.uri().path().to_owned();
    let bytes = axum::body::to_bytes(request.into_body(), 1 << 20)
        .await
        .unwrap_or_default();
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    SEEN.lock().unwrap().push(path);
    let prompt = body["messages"]
        .as_array()
        .and_then(|m| m.last())
        .map(|m| match &m["content"] {
            Value::String(s) => s.clone(),
            other => other[0]["text"].as_str().unwrap_or_default().to_owned(),
        })
        .unwrap_or_default();
    axum::Json(json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": body["model"],
        "choices": [{"index": 0, "finish_reason": "stop",
            "message": {"role": "assistant", "content": format!("echo: {prompt}")}}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let server = format!("http://{}", listener.local_addr()?);
    let router = axum::Router::new().fallback(completions);
    tokio::spawn(async move { axum::serve(listener, router).await });
    let rules = format!(
        r#"
[[rules]]
name = "restricted endpoint"
verdict = "block"
reason = "this agent may not use the restricted model"
match = {{ "spans.0.stage" = "started", "spans.0.http_url" = "{server}/restricted/v1/chat/completions" }}
"#
    );
    let ex = Example::start("hook_llm", &rules).await?;
    let asks = [
        ("rig", "/v1", "summarize the ticket"),
        ("async-openai", "/v1", "draft a reply"),
        ("async-openai", "/restricted/v1", "use the restricted model"),
    ]
    .map(|(c, p, q)| (c.to_owned(), p.to_owned(), q.to_owned()))
    .to_vec();
    let options = WorkerOptions::new(&ex.task_queue)
        .worker_plugin(ex.plugin().await?)
        .register_activities(Acts { server })
        .register_workflow::<LlmExample>()?
        .build();
    let results = ex.run_workflow(options, LlmExample::run, asks).await?;
    println!("results: {results:?}");
    let hooks = ex.print_hooks().await?;
    let seen = SEEN.lock().unwrap().clone();
    println!("the server saw: {seen:?}");
    anyhow::ensure!(
        results[0] == "echo: summarize the ticket",
        "rig's call failed"
    );
    anyhow::ensure!(
        results[1] == "echo: draft a reply",
        "async-openai's call failed"
    );
    anyhow::ensure!(
        !seen.iter().any(|p| p.starts_with("/restricted")),
        "the blocked completion reached the server"
    );
    anyhow::ensure!(
        !hooks.iter().any(|e| e.body.to_string().contains(API_KEY)),
        "the API key reached Core"
    );
    Ok(())
}
