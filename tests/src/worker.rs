//! A Temporal client for the test's dev server, and running a worker for the duration of a
//! scenario.

use std::future::Future;
use std::str::FromStr;
use std::time::Duration;

use temporalio_client::{Client, ClientOptions, Connection, ConnectionOptions, Url};
use temporalio_sdk::{Runtime, Worker, WorkerOptions};

use crate::temporal::TestTemporal;

/// A dev server, a client of it and a Temporal runtime.
pub struct TestEnv {
    /// The dev server.
    pub temporal: TestTemporal,
    /// A client in namespace `default`.
    pub client: Client,
    runtime: Runtime,
}

impl TestEnv {
    /// Connects to (or starts) the dev server.
    pub async fn new() -> Self {
        crate::init_tracing();
        let temporal = TestTemporal::get();
        let client = connect(temporal.address()).await;
        let runtime = Runtime::from_current_tokio(Default::default()).expect("Temporal runtime");
        TestEnv {
            temporal,
            client,
            runtime,
        }
    }

    /// Runs a worker built from `options` while `scenario` runs, then shuts it down.
    pub async fn with_worker<T>(
        &self,
        options: WorkerOptions,
        scenario: impl Future<Output = T>,
    ) -> T {
        let mut worker =
            Worker::new(&self.runtime, self.client.clone(), options).expect("worker builds");
        let shutdown = worker.shutdown_handle();
        let scenario = async {
            let out = scenario.await;
            shutdown();
            out
        };
        let (run, out) = tokio::join!(worker.run(), scenario);
        run.expect("worker ran and shut down cleanly");
        out
    }

    /// Runs two workers on the same task queue (for retries that land elsewhere).
    pub async fn with_two_workers<T>(
        &self,
        first: WorkerOptions,
        second: WorkerOptions,
        scenario: impl Future<Output = T>,
    ) -> T {
        let mut w1 =
            Worker::new(&self.runtime, self.client.clone(), first).expect("worker 1 builds");
        let mut w2 =
            Worker::new(&self.runtime, self.client.clone(), second).expect("worker 2 builds");
        let (s1, s2) = (w1.shutdown_handle(), w2.shutdown_handle());
        let scenario = async {
            let out = scenario.await;
            s1();
            s2();
            out
        };
        let (r1, r2, out) = tokio::join!(w1.run(), w2.run(), scenario);
        r1.expect("worker 1 ran");
        r2.expect("worker 2 ran");
        out
    }
}

/// A client of the dev server at `address`.
pub async fn connect(address: &str) -> Client {
    let url = Url::from_str(&format!("http://{address}")).expect("valid address");
    let options = ConnectionOptions::new(url)
        .connect_timeout(Duration::from_secs(10))
        .build();
    let connection = Connection::connect(options)
        .await
        .expect("connect to Temporal");
    Client::new(connection, ClientOptions::new("default").build()).expect("client")
}
