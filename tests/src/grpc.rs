//! A real gRPC server (tonic) for the tower-layer tests, and a client through the layer.
//!
//! The messages are written by hand as `prost` structs (no `protoc` here), the service by
//! hand as tonic's code generator would write it: `echo.v1.Echo` with unary methods (any
//! name: the reply echoes the text; a text starting with `deny` answers PERMISSION_DENIED)
//! and the server-streaming `Stream` (the text's words, one message each). Every call the
//! server receives is recorded, so a test can show that a blocked call never arrived.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use openbox::hooks::http::OpenBoxMiddleware;
use openbox::hooks::http::tower::OpenBoxLayer;
use tonic::body::Body;
use tonic::codegen::http;
use tonic_prost::ProstCodec;
use tower_layer::Layer;

/// The request message.
#[derive(Clone, PartialEq, prost::Message)]
pub struct EchoRequest {
    /// What to echo.
    #[prost(string, tag = "1")]
    pub text: String,
}

/// The reply message.
#[derive(Clone, PartialEq, prost::Message)]
pub struct EchoReply {
    /// The echo.
    #[prost(string, tag = "1")]
    pub text: String,
}

/// The service's full name.
pub const SERVICE: &str = "echo.v1.Echo";

type Calls = Arc<Mutex<Vec<(String, String)>>>;

/// The server, on a free port of 127.0.0.1.
pub struct GrpcServer {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    calls: Calls,
    task: tokio::task::JoinHandle<()>,
}

impl GrpcServer {
    /// Starts the server.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let calls = Calls::default();
        let service = EchoServer {
            calls: calls.clone(),
        };
        let incoming = tonic::transport::server::TcpIncoming::from(listener);
        let task = tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(incoming)
                .await;
        });
        GrpcServer { url, calls, task }
    }

    /// The `(method, text)` of every call received, in order.
    pub fn calls(&self) -> Vec<(String, String)> {
        self.calls.lock().unwrap().clone()
    }
}

impl Drop for GrpcServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Clone)]
struct EchoServer {
    calls: Calls,
}

impl tonic::server::NamedService for EchoServer {
    const NAME: &'static str = SERVICE;
}

/// One unary method: records the call, echoes or refuses.
struct Unary {
    method: String,
    calls: Calls,
}

impl tower_service::Service<tonic::Request<EchoRequest>> for Unary {
    type Response = tonic::Response<EchoReply>;
    type Error = tonic::Status;
    type Future = BoxFuture<'static, Result<Self::Response, tonic::Status>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), tonic::Status>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: tonic::Request<EchoRequest>) -> Self::Future {
        let text = request.into_inner().text;
        self.calls
            .lock()
            .unwrap()
            .push((self.method.clone(), text.clone()));
        Box::pin(async move {
            if text.starts_with("deny") {
                return Err(tonic::Status::permission_denied("denied by the server"));
            }
            Ok(tonic::Response::new(EchoReply {
                text: format!("echo: {text}"),
            }))
        })
    }
}

/// The server-streaming method: one reply per word.
struct Words {
    calls: Calls,
}

type WordStream = futures::stream::Iter<std::vec::IntoIter<Result<EchoReply, tonic::Status>>>;

impl tower_service::Service<tonic::Request<EchoRequest>> for Words {
    type Response = tonic::Response<WordStream>;
    type Error = tonic::Status;
    type Future = BoxFuture<'static, Result<Self::Response, tonic::Status>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), tonic::Status>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: tonic::Request<EchoRequest>) -> Self::Future {
        let text = request.into_inner().text;
        self.calls
            .lock()
            .unwrap()
            .push(("Stream".to_owned(), text.clone()));
        let replies: Vec<_> = text
            .split_whitespace()
            .map(|w| Ok(EchoReply { text: w.to_owned() }))
            .collect();
        Box::pin(async move { Ok(tonic::Response::new(futures::stream::iter(replies))) })
    }
}

impl<B> tower_service::Service<http::Request<B>> for EchoServer
where
    B: http_body::Body + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let calls = self.calls.clone();
        let path = req.uri().path().to_owned();
        Box::pin(async move {
            let mut grpc =
                tonic::server::Grpc::new(ProstCodec::<EchoReply, EchoRequest>::default());
            let method = path
                .strip_prefix(&format!("/{SERVICE}/"))
                .unwrap_or_default()
                .to_owned();
            Ok(match method.as_str() {
                "" => http::Response::builder()
                    .status(200)
                    .header("grpc-status", "12")
                    .header("content-type", "application/grpc")
                    .body(Body::empty())
                    .expect("a response"),
                "Stream" => grpc.server_streaming(Words { calls }, req).await,
                _ => grpc.unary(Unary { method, calls }, req).await,
            })
        })
    }
}

/// One call through a tonic channel wrapped in the OpenBox layer: `method` of [`SERVICE`] with
/// `text`, and the metadata `authorization` and `x-api-key` set to `secret`. The result is
/// `echo: …` for a unary method, the words joined by `|` for `Stream`, or `status <code>`.
pub async fn call(url: &str, method: &str, text: &str, secret: &str) -> anyhow::Result<String> {
    let channel = tonic::transport::Channel::from_shared(url.to_owned())?
        .connect()
        .await?;
    let layer = OpenBoxLayer::new(OpenBoxMiddleware::default()).origin(url.parse()?);
    let mut grpc = tonic::client::Grpc::new(layer.layer(channel));
    grpc.ready()
        .await
        .map_err(|e| anyhow::anyhow!("not ready: {e}"))?;
    let mut request = tonic::Request::new(EchoRequest {
        text: text.to_owned(),
    });
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {secret}").parse()?);
    request.metadata_mut().insert("x-api-key", secret.parse()?);
    let path: http::uri::PathAndQuery = format!("/{SERVICE}/{method}").parse()?;
    let codec = ProstCodec::<EchoRequest, EchoReply>::default();
    let outcome = if method == "Stream" {
        match grpc.server_streaming(request, path, codec).await {
            Ok(response) => {
                let mut stream = response.into_inner();
                let mut words = Vec::new();
                loop {
                    match stream.message().await {
                        Ok(Some(reply)) => words.push(reply.text),
                        Ok(None) => break Ok(words.join("|")),
                        Err(status) => break Err(status),
                    }
                }
            }
            Err(status) => Err(status),
        }
    } else {
        grpc.unary(request, path, codec)
            .await
            .map(|r| r.into_inner().text)
    };
    Ok(outcome.unwrap_or_else(|status| format!("status {}", status.code() as i32)))
}
