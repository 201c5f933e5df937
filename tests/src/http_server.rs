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

/// The access token `/token` answers with: it must never reach Core.
pub const SERVER_TOKEN: &str = "server-access-token-8080";

/// A server that promises a 1000-byte body and closes the connection after 7 bytes, so that
/// reading the body fails.
pub struct TruncatingServer {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    task: tokio::task::JoinHandle<()>,
}

impl TruncatingServer {
    /// Starts on a free port.
    pub async fn start() -> Self {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let mut head = Vec::new();
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let _ = stream
                        .write_all(
                            b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 1000\r\n\r\npartial",
                        )
                        .await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        TruncatingServer { url, task }
    }
}

impl Drop for TruncatingServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The running server.
pub struct TestHttpServer {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    log: Log,
    task: tokio::task::JoinHandle<()>,
}

impl TestHttpServer {
    /// Starts on a free port of 127.0.0.1. `/page` answers HTML, `/json` echoes JSON, `/stream`
    /// answers without a length (`/stream-long`: 2000 lines; `/sse`: events that never end;
    /// `/download?mib=<n>`: binary data, `&text=1` text), `/missing` 404, `/token` a JSON body with an `access_token`,
    /// `/redirect?to=<url>` a 302 to `<url>` (`/redirect307?to=` a 307), anything else `ok`.
    pub async fn start() -> Self {
        Self::start_on("127.0.0.1:0".parse().unwrap())
            .await
            .expect("a free port on 127.0.0.1")
    }

    /// [`TestHttpServer::start`] at `addr` (`None` if it cannot be bound).
    pub async fn start_on(addr: std::net::SocketAddr) -> Option<Self> {
        let log: Log = Arc::default();
        let app = Router::new().fallback(any(handle)).with_state(log.clone());
        let listener = tokio::net::TcpListener::bind(addr).await.ok()?;
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Some(TestHttpServer { url, log, task })
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
            (StatusCode::OK, h, body).into_response()
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
        "/stream-long" => {
            // 2000 lines, no length: read to the end, the whole text is captured.
            let chunks = futures::stream::iter(
                (0..2000).map(|i| Ok::<_, std::io::Error>(Bytes::from(format!("line {i:04}\n")))),
            );
            Response::builder()
                .header("content-type", "text/plain")
                .body(Body::from_stream(chunks))
                .unwrap()
        }
        "/sse" => {
            // Server-sent events that never end: one every 20 ms.
            let events = futures::stream::unfold(0u64, |i| async move {
                if i > 0 {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
                Some((
                    Ok::<_, std::io::Error>(Bytes::from(format!("data: {i}\n\n"))),
                    i + 1,
                ))
            });
            Response::builder()
                .header("content-type", "text/event-stream")
                .body(Body::from_stream(events))
                .unwrap()
        }
        "/download" => {
            // `?mib=<n>` MiB in 64 KiB chunks, no length: binary data, or text with `&text=1`.
            let query: Vec<&str> = parts.uri.query().unwrap_or("").split('&').collect();
            let mib: u64 = query
                .iter()
                .find_map(|p| p.strip_prefix("mib=")?.parse().ok())
                .unwrap_or(1);
            let text = query.contains(&"text=1");
            let chunk = Bytes::from(vec![if text { b'a' } else { 0xA5u8 }; 64 << 10]);
            let chunks = futures::stream::iter(
                (0..mib * 16).map(move |_| Ok::<_, std::io::Error>(chunk.clone())),
            );
            Response::builder()
                .header(
                    "content-type",
                    if text {
                        "text/plain"
                    } else {
                        "application/octet-stream"
                    },
                )
                .body(Body::from_stream(chunks))
                .unwrap()
        }
        "/missing" => (StatusCode::NOT_FOUND, "nope").into_response(),
        "/token" => {
            h.insert("content-type", "application/json".parse().unwrap());
            (
                StatusCode::OK,
                h,
                format!(r#"{{"access_token":"{SERVER_TOKEN}","token_type":"bearer"}}"#),
            )
                .into_response()
        }
        path @ ("/redirect" | "/redirect307") => {
            let to = parts
                .uri
                .query()
                .and_then(|q| q.strip_prefix("to="))
                .unwrap_or("/");
            let status = if path == "/redirect" {
                StatusCode::FOUND
            } else {
                StatusCode::TEMPORARY_REDIRECT
            };
            h.insert("location", to.parse().unwrap());
            (status, h, "").into_response()
        }
        _ => (StatusCode::OK, "ok").into_response(),
    }
}
