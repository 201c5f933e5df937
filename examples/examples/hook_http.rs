//! HTTP hook: every request of a governed client is evaluated by Core before it is sent and
//! after its answer; a BLOCK at `started` means the server never sees the request.
//!
//! `cargo run -p openbox-examples --example hook_http` (starts a Temporal dev server unless
//! `TEMPORAL_ADDRESS` is set).

use std::time::Duration;

use openbox_examples::Example;
use temporalio_macros::{activities, workflow, workflow_methods};
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use temporalio_sdk::{ActivityOptions, WorkerOptions, WorkflowContext, WorkflowResult};

pub struct Quotes;

#[openbox::governed_activities]
#[activities]
impl Quotes {
    /// GETs `base/quote` and then `base/admin`, which Core blocks: the call returns an error and
    /// the activity fails with the verdict, even though this code carries on.
    #[activity(name = "fetch_quotes")]
    pub async fn fetch(_ctx: ActivityContext, base: String) -> Result<String, ActivityError> {
        // `client()` leaves redirects to the middleware, so every hop is governed.
        let http = openbox::hooks::http::client(reqwest::Client::builder())
            .map_err(anyhow::Error::from)?;
        let quote = http
            .get(format!("{base}/quote"))
            .header("authorization", "Bearer never-sent-to-core")
            .send()
            .await
            .map_err(anyhow::Error::from)?
            .text()
            .await
            .map_err(anyhow::Error::from)?;
        let admin = match http.get(format!("{base}/admin")).send().await {
            Ok(r) => format!("HTTP {}", r.status()),
            Err(e) => format!("stopped: {e}"),
        };
        Ok(format!("quote {quote}; admin {admin}"))
    }
}

#[workflow]
#[derive(Default)]
pub struct HttpExample;

#[workflow_methods]
impl HttpExample {
    #[run(name = "HttpExample")]
    pub async fn run(ctx: &mut WorkflowContext<Self>, base: String) -> WorkflowResult<String> {
        let opts = ActivityOptions::with_start_to_close_timeout(Duration::from_secs(30))
            .retry_policy(
                temporalio_common::RetryPolicy::builder()
                    .maximum_attempts(1)
                    .build(),
            )
            .build();
        Ok(
            match ctx.execute_activity(Quotes::fetch, base, opts).await {
                Ok(done) => done,
                Err(e) => match e.cause() {
                    Some(temporalio_common::error::IncomingError::Application(failure)) => format!(
                        "the activity failed with {}",
                        failure.type_name().unwrap_or("?")
                    ),
                    _ => format!("the activity failed: {e}"),
                },
            },
        )
    }
}

/// Core blocks any call to `<base>/admin` before it is sent.
fn rules(base: &str) -> String {
    format!(
        r#"
[[rules]]
name = "no admin calls from activities"
verdict = "block"
reason = "admin endpoints are off limits"
match = {{ "spans.0.stage" = "started", "spans.0.http_url" = "{base}/admin" }}
"#
    )
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    // A server to call: `/quote` answers, `/admin` must never be reached.
    let app = axum::Router::new()
        .route("/quote", axum::routing::get(|| async { "42.17 EUR" }))
        .route(
            "/admin",
            axum::routing::get(|| async {
                eprintln!("the admin endpoint was reached");
                std::process::exit(1);
                #[allow(unreachable_code)]
                ""
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });

    let ex = Example::start("hook_http", &rules(&base)).await?;
    let options = WorkerOptions::new(&ex.task_queue)
        .worker_plugin(ex.plugin().await?)
        .register_activities(Quotes)
        .register_workflow::<HttpExample>()?
        .build();
    let result = ex
        .run_workflow(options, HttpExample::run, base.clone())
        .await?;
    println!("result: {result}");
    ex.print_hooks().await?;
    anyhow::ensure!(
        result == "the activity failed with GovernanceBlock",
        "the admin call was not blocked"
    );
    Ok(())
}
