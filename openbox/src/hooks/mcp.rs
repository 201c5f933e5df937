//! MCP: every request an [`rmcp`] streamable-HTTP client sends, governed.
//!
//! rmcp's client transport takes any [`StreamableHttpClient`]; [`GovernedMcpClient`] is one,
//! wrapping another (rmcp's own `reqwest::Client`, by default). Each JSON-RPC message the client
//! POSTs is evaluated before it is sent — a BLOCK/HALT: the server never receives it, the call
//! fails with the verdict — and the answer to a request is evaluated when it arrives, in a JSON
//! answer or in the server-sent events of the POST or of the session's stream: a BLOCK/HALT
//! there replaces the answer with a JSON-RPC error carrying the verdict, so the caller never
//! sees the result, and the activity fails either way.
//!
//! ```no_run
//! use openbox::hooks::mcp::GovernedMcpClient;
//! use rmcp::transport::streamable_http_client::{
//!     StreamableHttpClientTransport, StreamableHttpClientTransportConfig,
//! };
//!
//! # fn inside_an_activity() -> Result<(), Box<dyn std::error::Error>> {
//! // Built inside the governed activity that uses it (rmcp sends from a task of its own).
//! let client = GovernedMcpClient::new(reqwest::Client::new())?;
//! let config = StreamableHttpClientTransportConfig::with_uri("http://127.0.0.1:8000/mcp");
//! let transport = StreamableHttpClientTransport::with_client(client, config);
//! // `().serve(transport).await?` then `call_tool(…)`: each call is governed.
//! # let _ = transport; Ok(()) }
//! ```
//!
//! **What Core sees.** Each message is an `http_request` span (it is one): `POST` to the
//! server's URL, the JSON-RPC message as the request body, the answer as the response body
//! (both with values under sensitive names masked, cut to 65 536 characters), headers masked
//! (the bearer token and the session id included). The span is named after the MCP method —
//! `tools/call <tool>` for a tool call — with the attributes `mcp.method.name`,
//! `jsonrpc.request.id`, and for a tool call `gen_ai.tool.name` and `gen_ai.operation.name`
//! (`execute_tool`). A JSON-RPC error answer is the span's error, and so is a tool result
//! flagged `isError`.
//!
//! **Which activity.** rmcp sends from a task it spawns, where no activity is current, so the
//! client remembers the activity it was built in: build it inside a governed activity
//! ([`GovernedMcpClient::new`] refuses elsewhere), and once that activity has ended the client
//! refuses to send. Messages the server sends on its own (notifications, its requests) pass
//! through ungoverned; so does the session's `DELETE` at shutdown, which only ends the session.
//! An MCP server started as a child process (stdio) is governed where it starts: start it with
//! `openbox::process::Command` (feature `process`); its traffic over the pipes is not.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use futures::stream::BoxStream;
use http::{HeaderMap, HeaderName, HeaderValue};
use rmcp::model::{ClientJsonRpcMessage, ServerJsonRpcMessage};
use rmcp::transport::streamable_http_client::{
    SseError, StreamableHttpClient, StreamableHttpError, StreamableHttpPostResponse,
    StreamableHttpResponseLimits,
};
use serde_json::{Map, Value, json};
use sse_stream::Sse;

use super::http::redact::HeaderRule;
use super::{HookCall, HookError, truncate_body};
use crate::governance::scope::ActivityScope;
use crate::secrets::SensitiveNames;
use crate::wire::{HookSpan, HttpRequestSpan, SpanKind};

/// Longest message text sent to Core, in characters.
const MAX_BODY_CHARS: usize = 65_536;
/// The JSON-RPC error code an answer refused by Core is replaced with (server-defined range).
const REFUSED_CODE: i64 = -32_001;

/// Why a [`GovernedMcpClient`] could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum McpClientError {
    /// Built outside a governed activity: its calls would go ungoverned.
    #[error(
        "a governed MCP client must be built inside a governed activity: rmcp sends from a task \
         of its own, where the activity is known only through the client"
    )]
    OutsideActivity,
}

/// An rmcp [`StreamableHttpClient`] whose messages are governed (see the [module](self)).
/// Cheap to clone; clones share the activity and the requests awaiting their answer.
pub struct GovernedMcpClient<C = reqwest::Client> {
    inner: C,
    shared: Arc<Shared>,
}

impl<C: Clone> Clone for GovernedMcpClient<C> {
    fn clone(&self) -> Self {
        GovernedMcpClient {
            inner: self.inner.clone(),
            shared: self.shared.clone(),
        }
    }
}

impl<C> std::fmt::Debug for GovernedMcpClient<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GovernedMcpClient")
            .field("activity_id", &self.shared.scope.identity().activity_id)
            .finish_non_exhaustive()
    }
}

impl<C> GovernedMcpClient<C> {
    /// Wraps `inner` for the governed activity running now; refuses outside one.
    pub fn new(inner: C) -> Result<Self, McpClientError> {
        let scope = ActivityScope::current().ok_or(McpClientError::OutsideActivity)?;
        Ok(GovernedMcpClient {
            inner,
            shared: Arc::new(Shared {
                scope,
                headers: HeaderRule {
                    defaults: true,
                    ..HeaderRule::default()
                },
                pending: Mutex::new(HashMap::new()),
            }),
        })
    }
}

/// What the clones share.
struct Shared {
    scope: Arc<ActivityScope>,
    headers: HeaderRule,
    /// Requests sent whose answer has not arrived, by JSON-RPC id (as JSON text).
    pending: Mutex<HashMap<String, Open>>,
}

/// A governed message whose `completed` evaluation is still to come.
struct Open {
    call: HookCall,
    detail: HttpRequestSpan,
}

/// The JSON-RPC facts of one outgoing message.
struct Rpc {
    value: Value,
    /// `method`, or `response` for the client's answer to a server request.
    method: String,
    /// The id of a request, which awaits an answer.
    awaits: Option<String>,
}

impl Rpc {
    fn of(message: &ClientJsonRpcMessage) -> Rpc {
        let value = serde_json::to_value(message).unwrap_or(Value::Null);
        let method = value
            .get("method")
            .and_then(Value::as_str)
            .unwrap_or("response")
            .to_owned();
        let awaits = value
            .get("method")
            .and(value.get("id"))
            .map(Value::to_string);
        Rpc {
            value,
            method,
            awaits,
        }
    }

    fn tool(&self) -> Option<&str> {
        (self.method == "tools/call")
            .then(|| self.value.pointer("/params/name").and_then(Value::as_str))
            .flatten()
    }

    fn span_name(&self) -> String {
        match self.tool() {
            Some(tool) => format!("tools/call {tool}"),
            None => self.method.clone(),
        }
    }

    fn attributes(&self, url: &str) -> Map<String, Value> {
        let mut m = super::http::attributes("POST", url, None);
        m.insert("mcp.method.name".into(), self.method.clone().into());
        if let Some(id) = self.value.get("id") {
            let id = id.as_str().map_or_else(|| id.to_string(), str::to_owned);
            m.insert("jsonrpc.request.id".into(), id.into());
        }
        if let Some(tool) = self.tool() {
            m.insert("gen_ai.tool.name".into(), tool.into());
            m.insert("gen_ai.operation.name".into(), "execute_tool".into());
        }
        m
    }
}

type PostResult<E> = Result<StreamableHttpPostResponse, StreamableHttpError<E>>;

/// How the inner client is asked to send (the trait's three forms).
#[derive(Clone, Copy)]
enum Form {
    Plain,
    MaxSse(usize),
    Limits(StreamableHttpResponseLimits),
}

fn stopped<E: std::error::Error + std::marker::Send + Sync + 'static>(
    e: HookError,
) -> StreamableHttpError<E> {
    StreamableHttpError::Io(e.into())
}

impl Shared {
    /// The activity, while it runs.
    fn live_scope<E: std::error::Error + std::marker::Send + Sync + 'static>(
        &self,
    ) -> Result<&Arc<ActivityScope>, StreamableHttpError<E>> {
        if self.scope.has_ended() {
            return Err(StreamableHttpError::Io(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                "the activity this MCP client was built in has ended; build the client inside \
                 the activity that uses it",
            )));
        }
        Ok(&self.scope)
    }

    /// The operation for `rpc`, and its span at `started`.
    fn open(
        &self,
        uri: &str,
        rpc: &Rpc,
        session_id: Option<&str>,
        auth_header: Option<&str>,
        custom: &HashMap<HeaderName, HeaderValue>,
    ) -> Option<Open> {
        let names = self.scope.sensitive_names().clone();
        let url = match reqwest::Url::parse(uri) {
            Ok(u) => crate::secrets::mask_url(&u, &names),
            Err(_) => uri.to_owned(),
        };
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        for (name, value) in custom {
            headers.insert(name.clone(), value.clone());
        }
        if let Some(Ok(v)) = auth_header.map(|a| HeaderValue::from_str(&format!("Bearer {a}"))) {
            headers.insert(http::header::AUTHORIZATION, v);
        }
        if let Some(Ok(v)) = session_id.map(HeaderValue::from_str) {
            headers.insert("mcp-session-id", v);
        }
        let body = Some(masked(&rpc.value, &names));
        let span = tracing::info_span!("MCP request", otel.name = %rpc.span_name(), otel.kind = "client", http.url = %url);
        let call = self
            .scope
            .clone()
            .run_sync(|| HookCall::begin(rpc.span_name(), SpanKind::Client, Some(&span)))?;
        Some(Open {
            call: call.with_attributes(rpc.attributes(&url)),
            detail: HttpRequestSpan {
                http_method: "POST".to_owned(),
                http_url: url,
                request_body: body,
                request_headers: Some(self.headers.headers(&headers, &names)),
                response_body: None,
                response_headers: None,
                http_status_code: None,
                error: None,
            },
        })
    }

    /// The `completed` evaluation of a request, with its answer (`None`: the exchange ended
    /// without one, for the reason in `error`).
    async fn finish(
        &self,
        open: Open,
        rpc_attributes: Map<String, Value>,
        status: Option<u16>,
        answer: Option<&Value>,
        error: Option<String>,
    ) -> Result<(), HookError> {
        let Open { call, mut detail } = open;
        detail.http_status_code = status;
        if let Some(answer) = answer {
            let names = self.scope.sensitive_names();
            detail.response_body = Some(masked(answer, names));
            if let Some(code) = answer.pointer("/error/code") {
                detail.error = Some(format!("JSON-RPC error {code}"));
            } else if answer.pointer("/result/isError") == Some(&Value::Bool(true)) {
                detail.error = Some("the tool reported an error".to_owned());
            }
        }
        if error.is_some() {
            detail.error = error;
        }
        let mut attrs = rpc_attributes;
        if let Some(s) = status {
            attrs.insert("http.status_code".into(), s.into());
        }
        call.with_attributes(attrs)
            .completed(HookSpan::HttpRequest(detail))
            .await
    }

    /// An event or answer from the server: if it answers a request awaiting its answer, that
    /// request's `completed` evaluation; a refusal replaces the answer with an error.
    async fn answered(&self, answer: Value) -> Option<Value> {
        let id = answer.get("id")?;
        if answer.get("method").is_some() {
            return None; // a request of the server's, not an answer
        }
        let open = self
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id.to_string())?;
        let attrs = open.call_attributes();
        match self
            .finish(open, attrs, Some(200), Some(&answer), None)
            .await
        {
            Ok(()) => None,
            Err(stop) => Some(refusal(id, &stop)),
        }
    }

    /// Wraps an event stream so that the answers in it are governed.
    fn govern_stream(
        self: Arc<Self>,
        stream: BoxStream<'static, Result<Sse, SseError>>,
    ) -> BoxStream<'static, Result<Sse, SseError>> {
        stream
            .then(move |item| {
                let shared = self.clone();
                async move {
                    let mut sse = item?;
                    let answer = sse
                        .data
                        .as_deref()
                        .and_then(|d| serde_json::from_str::<Value>(d).ok());
                    if let Some(answer) = answer
                        && let Some(replacement) = shared.answered(answer).await
                    {
                        sse.data = Some(replacement.to_string());
                    }
                    Ok(sse)
                }
            })
            .boxed()
    }
}

impl Open {
    /// The attributes the call carries (what `started` had).
    fn call_attributes(&self) -> Map<String, Value> {
        self.call.attributes().clone()
    }
}

impl Drop for Shared {
    /// Requests whose answer never came are reported as such.
    fn drop(&mut self) {
        let pending = std::mem::take(self.pending.get_mut().unwrap_or_else(|p| p.into_inner()));
        for (_, Open { call, mut detail }) in pending {
            detail.error = Some("no answer was received".to_owned());
            call.completed_detached(HookSpan::HttpRequest(detail));
        }
    }
}

/// A message as Core may see it: the value of every sensitive name masked — also inside
/// strings that hold JSON, as tool results often do (`{"text": "{\"password\": …}"}`) — and
/// cut to [`MAX_BODY_CHARS`].
fn masked(message: &Value, names: &SensitiveNames) -> String {
    let mut value = message.clone();
    crate::secrets::mask_nested_json(&mut value, names);
    truncate_body(&value.to_string(), MAX_BODY_CHARS)
}

/// A JSON-RPC error answer for `id` carrying the verdict.
fn refusal(id: &Value, stop: &HookError) -> Value {
    json!({
        "jsonrpc": "2.0",
        "id": id,
        "error": {"code": REFUSED_CODE, "message": stop.to_string()},
    })
}

impl<C> GovernedMcpClient<C>
where
    C: StreamableHttpClient + Sync,
{
    async fn post(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        how: Form,
    ) -> PostResult<C::Error> {
        let shared = &self.shared;
        shared.live_scope()?;
        let rpc = Rpc::of(&message);
        let open = shared.open(
            &uri,
            &rpc,
            session_id.as_deref(),
            auth_header.as_deref(),
            &custom_headers,
        );
        let Some(open) = open else {
            // The kept scope could not open an operation: refused rather than sent ungoverned.
            return Err(StreamableHttpError::Io(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                "the MCP message could not be governed in its activity",
            )));
        };
        let HookSpan::HttpRequest(detail) = open
            .call
            .started_returning(HookSpan::HttpRequest(open.detail))
            .await
            .map_err(stopped)?
        else {
            unreachable!("started hands back the span it was given")
        };
        let open = Open {
            call: open.call,
            detail,
        };
        let attrs = open.call_attributes();
        let sent = self
            .send(uri, message, session_id, auth_header, custom_headers, how)
            .await;
        let response = match sent {
            Err(e) => {
                let error = Some(e.to_string());
                shared
                    .finish(open, attrs, None, None, error)
                    .await
                    .map_err(stopped)?;
                return Err(e);
            }
            Ok(r) => r,
        };
        let Some(key) = rpc.awaits else {
            // A notification or an answer of ours: nothing comes back for it.
            let status = match &response {
                StreamableHttpPostResponse::Accepted => 202,
                _ => 200,
            };
            shared
                .finish(open, attrs, Some(status), None, None)
                .await
                .map_err(stopped)?;
            return Ok(match response {
                StreamableHttpPostResponse::Sse(stream, sid) => {
                    StreamableHttpPostResponse::Sse(shared.clone().govern_stream(stream), sid)
                }
                other => other,
            });
        };
        shared
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, open);
        Ok(match response {
            StreamableHttpPostResponse::Json(answer, sid) => {
                let value = serde_json::to_value(&answer).unwrap_or(Value::Null);
                match shared.answered(value).await {
                    None => StreamableHttpPostResponse::Json(answer, sid),
                    Some(refused) => StreamableHttpPostResponse::Json(
                        serde_json::from_value::<ServerJsonRpcMessage>(refused)?,
                        sid,
                    ),
                }
            }
            StreamableHttpPostResponse::Sse(stream, sid) => {
                StreamableHttpPostResponse::Sse(shared.clone().govern_stream(stream), sid)
            }
            // The answer comes on the session's stream.
            StreamableHttpPostResponse::Accepted => StreamableHttpPostResponse::Accepted,
            // A form of answer this client does not know could carry the result ungoverned.
            _ => {
                return Err(StreamableHttpError::UnexpectedServerResponse(
                    "an answer of a form the governed MCP client does not know".into(),
                ));
            }
        })
    }

    async fn send(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        how: Form,
    ) -> PostResult<C::Error> {
        let inner = &self.inner;
        match how {
            Form::Plain => {
                inner
                    .post_message(uri, message, session_id, auth_header, custom_headers)
                    .await
            }
            Form::MaxSse(max) => {
                inner
                    .post_message_with_max_sse_event_size(
                        uri,
                        message,
                        session_id,
                        auth_header,
                        custom_headers,
                        max,
                    )
                    .await
            }
            Form::Limits(limits) => {
                inner
                    .post_message_with_response_limits(
                        uri,
                        message,
                        session_id,
                        auth_header,
                        custom_headers,
                        limits,
                    )
                    .await
            }
        }
    }
}

impl<C> StreamableHttpClient for GovernedMcpClient<C>
where
    C: StreamableHttpClient + Sync,
{
    type Error = C::Error;

    async fn post_message(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> PostResult<C::Error> {
        self.post(
            uri,
            message,
            session_id,
            auth_header,
            custom_headers,
            Form::Plain,
        )
        .await
    }

    async fn post_message_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        max_sse_event_size: usize,
    ) -> PostResult<C::Error> {
        let how = Form::MaxSse(max_sse_event_size);
        self.post(uri, message, session_id, auth_header, custom_headers, how)
            .await
    }

    async fn post_message_with_response_limits(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        limits: StreamableHttpResponseLimits,
    ) -> PostResult<C::Error> {
        let how = Form::Limits(limits);
        self.post(uri, message, session_id, auth_header, custom_headers, how)
            .await
    }

    async fn delete_session(
        &self,
        uri: Arc<str>,
        session_id: Arc<str>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<(), StreamableHttpError<C::Error>> {
        self.inner
            .delete_session(uri, session_id, auth_header, custom_headers)
            .await
    }

    async fn get_stream(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<BoxStream<'static, Result<Sse, SseError>>, StreamableHttpError<C::Error>> {
        self.shared.live_scope()?;
        let stream = self
            .inner
            .get_stream(uri, session_id, last_event_id, auth_header, custom_headers)
            .await?;
        Ok(self.shared.clone().govern_stream(stream))
    }

    async fn get_stream_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        max_sse_event_size: usize,
    ) -> Result<BoxStream<'static, Result<Sse, SseError>>, StreamableHttpError<C::Error>> {
        self.shared.live_scope()?;
        let stream = self
            .inner
            .get_stream_with_max_sse_event_size(
                uri,
                session_id,
                last_event_id,
                auth_header,
                custom_headers,
                max_sse_event_size,
            )
            .await?;
        Ok(self.shared.clone().govern_stream(stream))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn built_outside_an_activity_it_refuses() {
        assert!(matches!(
            GovernedMcpClient::new(reqwest::Client::new()),
            Err(McpClientError::OutsideActivity)
        ));
    }

    #[test]
    fn json_inside_strings_is_masked() {
        let names = SensitiveNames::default();
        let answer = json!({"result": {"content": [{"type": "text",
            "text": "{\"user\":\"ann\",\"password\":\"p-1\",\"deep\":\"[{\\\"token\\\":\\\"t-2\\\"}]\"}"}],
            "structuredContent": {"api_key": "k-3"}}});
        let text = masked(&answer, &names);
        for secret in ["p-1", "t-2", "k-3"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert!(text.contains("ann"));
        // JSON encoded twice (a string holding the text of a string holding JSON).
        let twice =
            Value::String(Value::String(json!({"password": "p-4"}).to_string()).to_string());
        assert!(!masked(&json!({"text": twice}), &names).contains("p-4"));
        // Text that is not JSON stays as it is.
        let plain = json!({"text": "{not json"});
        assert_eq!(masked(&plain, &names), plain.to_string());
    }

    #[test]
    fn rpc_facts() {
        let call: ClientJsonRpcMessage = serde_json::from_value(json!({"jsonrpc": "2.0",
            "id": 7, "method": "tools/call", "params": {"name": "search", "arguments": {}}}))
        .unwrap();
        let rpc = Rpc::of(&call);
        assert_eq!(rpc.span_name(), "tools/call search");
        assert_eq!(rpc.awaits.as_deref(), Some("7"));
        let attrs = rpc.attributes("http://h/mcp");
        assert_eq!(attrs["gen_ai.tool.name"], "search");
        assert_eq!(attrs["jsonrpc.request.id"], "7");
        let note: ClientJsonRpcMessage = serde_json::from_value(json!({"jsonrpc": "2.0",
            "method": "notifications/initialized"}))
        .unwrap();
        let rpc = Rpc::of(&note);
        assert_eq!(rpc.span_name(), "notifications/initialized");
        assert!(rpc.awaits.is_none(), "a notification awaits no answer");
    }

    fn sensitive_name() -> impl Strategy<Value = String> {
        prop::sample::select(vec![
            "password",
            "api_key",
            "token",
            "secret",
            "Authorization",
            "client_secret",
            "access_token",
            "apiKey",
        ])
        .prop_map(str::to_owned)
    }

    proptest! {
        /// A value under a sensitive name never survives, however deep it sits in objects,
        /// arrays and strings holding JSON.
        #[test]
        fn sensitive_values_never_survive(
            name in sensitive_name(),
            secret in "[a-zA-Z0-9]{12,24}",
            wraps in prop::collection::vec(0u8..3, 0..6),
        ) {
            let mut value = json!({ name.clone(): secret.clone() });
            for wrap in wraps {
                value = match wrap {
                    0 => json!({"inner": value}),
                    1 => json!([value]),
                    _ => Value::String(value.to_string()),
                };
            }
            let message = json!({"result": {"content": [{"text": value}]}});
            let text = masked(&message, &SensitiveNames::default());
            prop_assert!(!text.contains(&secret), "{}", text);
        }
    }
}
