//! A dev Core per test, with its event log in a temp dir.

use std::time::Duration;

use openbox::{ErrorPolicy, OpenBoxConfig, OpenBoxConfigBuilder};
use openbox_dev::{DevCore, LoggedRequest, RuleSet};

use crate::TempDir;

/// The API key the tests use.
pub const TEST_KEY: &str = "obx_test_integration_0123";

/// A running dev Core and the directory holding its event log.
pub struct TestCore {
    /// The dev Core.
    pub core: DevCore,
    dir: TempDir,
}

impl TestCore {
    /// Starts a dev Core answering from `rules_toml` (empty: allow all).
    pub async fn start(rules_toml: &str) -> Self {
        Self::start_keeping(rules_toml, 10_000).await
    }

    /// [`TestCore::start`], keeping only the last `keep_events` events in memory.
    pub async fn start_keeping(rules_toml: &str, keep_events: usize) -> Self {
        let rules = RuleSet::from_toml_str(rules_toml, "test rules").expect("test rules parse");
        Self::start_with(rules, keep_events).await
    }

    /// Starts a dev Core answering from JSON rules (which can say `null`).
    pub async fn start_json(rules_json: &str) -> Self {
        let rules = RuleSet::from_json_str(rules_json, "test rules").expect("test rules parse");
        Self::start_with(rules, 10_000).await
    }

    /// Starts a dev Core (allowing everything) that accepts only requests signed by the agent
    /// `did` with the Ed25519 public key `public_key` (base64).
    pub async fn start_signed(did: &str, public_key: &str) -> Self {
        Self::start_built(DevCore::builder().agent(did, public_key)).await
    }

    /// Starts a dev Core (allowing everything) that accepts only requests on the `/api/v2`
    /// routes carrying an assertion of the Okta agent `registration`.
    pub async fn start_okta(registration: openbox_dev::okta::OktaAgentRegistration) -> Self {
        Self::start_built(DevCore::builder().okta_agent(registration)).await
    }

    /// Starts a dev Core (allowing everything) offering the workload identity `registration`
    /// (and the `/api/v1` routes to the API key alone).
    pub async fn start_workload(registration: openbox_dev::workload::WorkloadRegistration) -> Self {
        Self::start_built(DevCore::builder().workload(registration)).await
    }

    /// Starts a dev Core (allowing everything) where the Okta agent and the workload identity
    /// are candidates of identity transitions, the API key alone accepted throughout.
    pub async fn start_transitions(
        okta: openbox_dev::okta::OktaAgentRegistration,
        workload: openbox_dev::workload::WorkloadRegistration,
    ) -> Self {
        let builder = DevCore::builder()
            .okta_agent(okta)
            .workload(workload)
            .identities_pending();
        Self::start_built(builder).await
    }

    async fn start_with(rules: RuleSet, keep_events: usize) -> Self {
        Self::start_built(DevCore::builder().rules(rules).keep_events(keep_events)).await
    }

    async fn start_built(builder: openbox_dev::DevCoreBuilder) -> Self {
        let dir = TempDir::new("openbox-core");
        let core = builder
            .event_log(dir.path().join("events.jsonl"))
            .start()
            .await
            .expect("dev Core starts");
        TestCore { core, dir }
    }

    /// [`TestCore::start`] listening at `addr`; `None` if it cannot be bound.
    pub async fn start_at(rules_toml: &str, addr: std::net::SocketAddr) -> Option<Self> {
        let dir = TempDir::new("openbox-core");
        let rules = RuleSet::from_toml_str(rules_toml, "test rules").expect("test rules parse");
        let core = DevCore::builder()
            .addr(addr)
            .rules(rules)
            .event_log(dir.path().join("events.jsonl"))
            .start()
            .await
            .ok()?;
        Some(TestCore { core, dir })
    }

    /// Starts a dev Core reading `rules_toml` from a rules file (so it can be reloaded);
    /// returns the file's path too.
    pub async fn start_with_rules_file(rules_toml: &str) -> (Self, std::path::PathBuf) {
        let dir = TempDir::new("openbox-core");
        let path = dir.path().join("rules.toml");
        std::fs::write(&path, rules_toml).expect("rules file written");
        let core = DevCore::builder()
            .rules_file(&path)
            .expect("test rules parse")
            .event_log(dir.path().join("events.jsonl"))
            .start()
            .await
            .expect("dev Core starts");
        (TestCore { core, dir }, path)
    }

    /// A config for this Core: the test key, `policy`, a short timeout.
    pub fn config(&self, policy: ErrorPolicy) -> OpenBoxConfig {
        config_for(&self.core.url(), policy, Duration::from_secs(5))
    }

    /// The Core's event log file (JSON lines).
    pub fn event_log_path(&self) -> std::path::PathBuf {
        self.dir.path().join("events.jsonl")
    }

    /// Everything the Core received, from its JSONL file.
    pub async fn log(&self) -> Vec<LoggedRequest> {
        self.core
            .read_event_log()
            .await
            .expect("event log readable")
    }
}

/// A config for a Core at `url`.
pub fn config_for(url: &str, policy: ErrorPolicy, timeout: Duration) -> OpenBoxConfig {
    config_builder_for(url, policy, timeout)
        .build()
        .expect("valid test config")
}

/// The builder of [`config_for`], for tests that set more.
pub fn config_builder_for(
    url: &str,
    policy: ErrorPolicy,
    timeout: Duration,
) -> OpenBoxConfigBuilder {
    OpenBoxConfig::builder()
        .ignore_env()
        .url(url)
        .api_key(TEST_KEY)
        .error_policy(policy)
        .timeout(timeout)
}
