//! A governed worker with a spool, run as a child process by the spool's crash test, which
//! kills it with SIGKILL mid-outage. It runs one long workflow of echo steps under `fail_open`
//! against the Core at `OPENBOX_SPOOL_TEST_CORE`, spooling into `OPENBOX_SPOOL_TEST_DIR`.

use std::time::Duration;

use openbox::BreakerSettings;
use openbox::{ErrorPolicy, SpoolSettings};
use openbox_tests::core::config_builder_for;
use openbox_tests::fixtures::{Plan, Step};
use openbox_tests::harness::{Harness, result_of};

#[tokio::main]
async fn main() {
    let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} is set"));
    let (core, dir, wid) = (
        var("OPENBOX_SPOOL_TEST_CORE"),
        var("OPENBOX_SPOOL_TEST_DIR"),
        var("OPENBOX_SPOOL_TEST_WORKFLOW"),
    );
    let config = config_builder_for(&core, ErrorPolicy::FailOpen, Duration::from_secs(2))
        .circuit_breaker(BreakerSettings {
            failure_threshold: 0,
            cool_down: Duration::from_secs(1),
        })
        .spool(SpoolSettings::new(dir))
        .build()
        .expect("valid config");
    let h = Harness::new("").await;
    let plugin = h.plugin(ErrorPolicy::FailOpen, |b| b.config(config)).await;
    let plan = Plan {
        steps: (0..1000).map(|i| Step::Echo(format!("e{i}"))).collect(),
        ..Plan::default()
    };
    let _ = h
        .run(Some(plugin), async {
            result_of(&h.start_plan(&wid, plan).await).await
        })
        .await;
}
