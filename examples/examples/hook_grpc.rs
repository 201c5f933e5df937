//! gRPC (and any tower HTTP client): `OpenBoxLayer` wraps a tonic channel, so every call is
//! evaluated before it is sent — Core sees the method (`inventory.v1.Inventory/DeleteItem`) as
//! the URL path and in `rpc.*` attributes, metadata with secrets masked — and after its answer,
//! with the gRPC status from the trailers. Here a rule blocks `DeleteItem`: the server never
//! receives it, while `GetItem` goes through. The same layer governs hyper-util's client.
//!
//! The messages are written by hand as `prost` structs (as generated code would have them), so
//! the example builds without `protoc`.
//!
//! `cargo run -p openbox-examples --example hook_grpc` (starts a Temporal dev server unless
//! `TEMPORAL_ADDRESS` is set).

use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use openbox::hooks::http::OpenBoxMiddleware;
use openbox::hooks::http::tower::OpenBoxLayer;
use openbox_examples::Example;
use temporalio_common::RetryPolicy;
use temporalio_macros::{activities, workflow, workflow_methods};
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use temporalio_sdk::{ActivityOptions, WorkerOptions, WorkflowContext, WorkflowResult};
use tonic::codegen::http;
use tonic_prost::ProstCodec;
use tower_layer::Layer;

const RULES: &str = r#"
[[rules]]
name = "no deletes"
verdict = "block"
reason = "agents do not delete inventory"
match = { "spans.0.stage" = "started", "spans.0.attributes.rpc.method" = "DeleteItem" }
"#;

/// The token the client sends as `authorization` metadata: Core only sees `[REDACTED]`.
const TOKEN: &str = "inventory-token-0123456789";
const SERVICE: &str = "inventory.v1.Inventory";

#[derive(Clone, PartialEq, prost::Message)]
pub struct ItemRequest {
    #[prost(string, tag = "1")]
    pub sku: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ItemReply {
    #[prost(string, tag = "1")]
    pub text: String,
}

pub struct Acts {
    server: String,
}

#[openbox::governed_activities]
#[activities]
impl Acts {
    /// Calls `method` of the inventory service for `sku`.
    #[activity(name = "inventory_call")]
    pub async fn call(
        self: Arc<Self>,
        _ctx: ActivityContext,
        (method, sku): (String, String),
    ) -> Result<String, ActivityError> {
        let channel = tonic::transport::Channel::from_shared(self.server.clone())
            .map_err(anyhow::Error::from)?
            .connect()
            .await
            .map_err(anyhow::Error::from)?;
        // The layer knows the server's address: tonic hands the channel path-only requests.
        let layer = OpenBoxLayer::new(OpenBoxMiddleware::default())
            .origin(self.server.parse().map_err(anyhow::Error::from)?);
        let mut grpc = tonic::client::Grpc::new(layer.layer(channel));
        grpc.ready().await.map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut request = tonic::Request::new(ItemRequest { sku });
        request.metadata_mut().insert(
            "authorization",
            format!("Bearer {TOKEN}")
                .parse()
                .map_err(anyhow::Error::from)?,
        );
        let path = format!("/{SERVICE}/{method}")
            .parse()
            .map_err(anyhow::Error::from)?;
        let reply = grpc
            .unary(
                request,
                path,
                ProstCodec::<ItemRequest, ItemReply>::default(),
            )
            .await
            .map_err(|status| anyhow::anyhow!("{status}"))?;
        Ok(reply.into_inner().text)
    }
}

#[workflow]
#[derive(Default)]
pub struct GrpcExample;

#[workflow_methods]
impl GrpcExample {
    #[run(name = "GrpcExample")]
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

/// The inventory server: every unary method answers `<method> <sku>` and is recorded.
#[derive(Clone, Default)]
struct Inventory {
    received: Arc<Mutex<Vec<String>>>,
}

impl tonic::server::NamedService for Inventory {
    const NAME: &'static str = SERVICE;
}

struct Method(String, Arc<Mutex<Vec<String>>>);

impl tower_service::Service<tonic::Request<ItemRequest>> for Method {
    type Response = tonic::Response<ItemReply>;
    type Error = tonic::Status;
    type Future = std::future::Ready<Result<Self::Response, tonic::Status>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), tonic::Status>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: tonic::Request<ItemRequest>) -> Self::Future {
        let text = format!("{} {}", self.0, request.into_inner().sku);
        self.1.lock().unwrap().push(text.clone());
        std::future::ready(Ok(tonic::Response::new(ItemReply { text })))
    }
}

impl tower_service::Service<http::Request<tonic::body::Body>> for Inventory {
    type Response = http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<tonic::body::Body>) -> Self::Future {
        let method = req
            .uri()
            .path()
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_owned();
        let handler = Method(method, self.received.clone());
        Box::pin(async move {
            let mut grpc =
                tonic::server::Grpc::new(ProstCodec::<ItemReply, ItemRequest>::default());
            Ok(grpc.unary(handler, req).await)
        })
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let ex = Example::start("hook_grpc", RULES).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let server = format!("http://{}", listener.local_addr()?);
    let inventory = Inventory::default();
    let received = inventory.received.clone();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(inventory)
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    let calls = vec![
        ("GetItem".to_owned(), "sku-1".to_owned()),
        ("DeleteItem".to_owned(), "sku-1".to_owned()),
    ];
    let options = WorkerOptions::new(&ex.task_queue)
        .worker_plugin(ex.plugin().await?)
        .register_activities(Acts { server })
        .register_workflow::<GrpcExample>()?
        .build();
    let results = ex.run_workflow(options, GrpcExample::run, calls).await?;
    println!("results: {results:?}");
    let hooks = ex.print_hooks().await?;
    let received = received.lock().unwrap().clone();
    println!("the server received: {received:?}");
    anyhow::ensure!(results[0] == "GetItem sku-1", "the allowed call failed");
    anyhow::ensure!(
        received == ["GetItem sku-1"],
        "the blocked DeleteItem reached the server"
    );
    anyhow::ensure!(
        !hooks.iter().any(|e| e.body.to_string().contains(TOKEN)),
        "the token reached Core"
    );
    Ok(())
}
