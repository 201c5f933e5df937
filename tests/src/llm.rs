//! A local OpenAI-compatible server (chat completions, whole and streamed as server-sent
//! events) for the LLM-client tests, and a rig completion through the governed client.
//!
//! `POST …/chat/completions` under any prefix answers `echo: <last user message>`; with
//! `"stream": true` it streams the answer word by word. Every request's path and body is
//! recorded, so a test can show that a blocked completion never arrived.

use std::sync::{Arc, Mutex};

use axum::Json;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde_json::{Value, json};

/// The API key the LLM steps send: it must never appear in a hook.
pub const LLM_API_KEY: &str = "sk-llm-test-key-0123456789abcdef";

type Log = Arc<Mutex<Vec<(String, Value)>>>;

/// The server, on a free port of 127.0.0.1.
pub struct LlmServer {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    log: Log,
    task: tokio::task::JoinHandle<()>,
}

impl LlmServer {
    /// Starts the server.
    pub async fn start() -> Self {
        let log = Log::default();
        let app = axum::Router::new().fallback(answer).with_state(log.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        LlmServer { url, log, task }
    }

    /// The paths of the completions received, in order.
    pub fn paths(&self) -> Vec<String> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .map(|(p, _)| p.clone())
            .collect()
    }
}

impl Drop for LlmServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(State(log): State<Log>, request: Request) -> Response {
    let path = request.uri().path().to_owned();
    let bytes = axum::body::to_bytes(request.into_body(), 1 << 20)
        .await
        .unwrap_or_default();
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    log.lock().unwrap().push((path.clone(), body.clone()));
    if !path.ends_with("/chat/completions") {
        return (axum::http::StatusCode::NOT_FOUND, "no such route").into_response();
    }
    let prompt = body["messages"]
        .as_array()
        .and_then(|m| m.iter().rev().find(|m| m["role"] == "user"))
        .map(|m| match &m["content"] {
            Value::String(s) => s.clone(),
            other => other
                .as_array()
                .and_then(|parts| parts.first())
                .and_then(|p| p["text"].as_str())
                .unwrap_or_default()
                .to_owned(),
        })
        .unwrap_or_default();
    let text = format!("echo: {prompt}");
    let model = body["model"].as_str().unwrap_or("test").to_owned();
    if body["stream"] != true {
        return Json(json!({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": model,
            "choices": [{"index": 0, "finish_reason": "stop",
                "message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6},
        }))
        .into_response();
    }
    let mut events: Vec<String> = text
        .split_inclusive(' ')
        .map(|word| {
            json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 0,
                "model": model, "choices": [{"index": 0, "delta": {"content": word},
                "finish_reason": null}]})
            .to_string()
        })
        .collect();
    events.push(
        json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 0,
            "model": model, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6}})
        .to_string(),
    );
    events.push("[DONE]".to_owned());
    let stream = futures::stream::iter(events)
        .map(|e| Ok::<_, std::io::Error>(bytes::Bytes::from(format!("data: {e}\n\n"))));
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::from_stream(stream))
        .unwrap()
}

/// A completion of `prompt` through rig's OpenAI chat-completions client on the governed
/// `reqwest_middleware` client, against `base` (`…/v1`): streamed or whole. The result is the
/// assistant's text.
pub async fn rig_completion(base: &str, prompt: &str, stream: bool) -> anyhow::Result<String> {
    use rig::client::CompletionClient;
    use rig::completion::CompletionModel;

    let http = openbox::hooks::http::client(reqwest::Client::builder())?;
    let client = rig::providers::openai::Client::builder()
        .api_key(LLM_API_KEY)
        .base_url(base)
        .http_client(http)
        .build()?
        .completions_api();
    let model = client.completion_model("test-model");
    let request = model.completion_request(prompt.to_owned());
    if !stream {
        let response = request.send().await?;
        let text: Vec<String> = response
            .choice
            .iter()
            .filter_map(|c| match c {
                rig::message::AssistantContent::Text(t) => Some(t.text.clone()),
                _ => None,
            })
            .collect();
        return Ok(text.concat());
    }
    let mut stream = request.stream().await?;
    let mut text = String::new();
    while let Some(item) = stream.next().await {
        if let rig::streaming::StreamedAssistantContent::Text(t) = item? {
            text.push_str(&t.text);
        }
    }
    Ok(text)
}

/// A chat completion of `prompt` through async-openai's client on
/// `openbox::hooks::http::openai::GovernedOpenAiService`, against `base` (`…/v1`): streamed or
/// whole. The result is the assistant's text.
pub async fn openai_completion(base: &str, prompt: &str, stream: bool) -> anyhow::Result<String> {
    use async_openai::config::OpenAIConfig;
    use async_openai::types::chat::CreateChatCompletionRequest;
    use openbox::hooks::http::openai::GovernedOpenAiService;

    let config = OpenAIConfig::new()
        .with_api_base(base)
        .with_api_key(LLM_API_KEY);
    let client =
        async_openai::Client::with_config(config).with_http_service(GovernedOpenAiService::new()?);
    let request: CreateChatCompletionRequest = serde_json::from_value(json!({
        "model": "test-model",
        "messages": [{"role": "user", "content": prompt}],
    }))?;
    if !stream {
        let response = client.chat().create(request).await?;
        let value = serde_json::to_value(&response)?;
        return Ok(value["choices"][0]["message"]["content"]
            .as_str()
            .unwrap_or_default()
            .to_owned());
    }
    let mut stream = client.chat().create_stream(request).await?;
    let mut text = String::new();
    while let Some(chunk) = stream.next().await {
        let value = serde_json::to_value(&chunk?)?;
        text.push_str(
            value["choices"][0]["delta"]["content"]
                .as_str()
                .unwrap_or_default(),
        );
    }
    Ok(text)
}
