//! A small HTTP server for hook tests: it records every request it receives.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;

/// One request as received.
#[derive(Debug, Clone)]
pub struct Received {
    /// Method.
    pub method: String,
    /// Path.
    pub path: String,
    /// Headers.
    pub headers: BTreeMap<String, String>,
    /// Body.
    pub body: String,
}

type Log = Arc<Mutex<Vec<Received>>>;

/// The running server.
pub struct TestHttpServer {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    log: Log,
    task: tokio::task::JoinHandle<()>,
}

impl TestHttpServer {
    /// Starts on a free port. `/page` answers HTML, `/json` echoes JSON, `/stream` answers
    /// without a length, `/missing` 404, anything else `ok`.
    pub async fn start() -> Self {
        let log: Log = Arc::default();
        let app = Router::new().fallback(any(handle)).with_state(log.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        TestHttpServer { url, log, task }
    }

    /// Requests received for `path`.
    pub fn received(&self, path: &str) -> Vec<Received> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }
}

impl Drop for TestHttpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn handle(State(log): State<Log>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    let headers: BTreeMap<String, String> = parts
        .headers
        .iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    log.lock().unwrap().push(Received {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    let mut h = HeaderMap::new();
    match parts.uri.path() {
        "/page" => {
            h.insert("content-type", "text/html; charset=utf-8".parse().unwrap());
            h.insert(
                "set-cookie",
                "sid=server-session-cookie-5150".parse().unwrap(),
            );
            (StatusCode::OK, h, "<!DOCTYPE HTML><html>hello</html>").into_response()
        }
        "/json" => {
            h.insert("content-type", "application/json".parse().unwrap());
            (StatusCode::OK, h, Bytes::from(body)).into_response()
        }
        "/stream" => {
            let chunks = futures::stream::iter(
                ["a", "b", "c"].map(|c| Ok::<_, std::io::Error>(Bytes::from(c))),
            );
            Response::builder()
                .header("content-type", "text/plain")
                .body(Body::from_stream(chunks))
                .unwrap()
        }
        "/missing" => (StatusCode::NOT_FOUND, "nope").into_response(),
        _ => (StatusCode::OK, "ok").into_response(),
    }
}
