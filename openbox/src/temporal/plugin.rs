//! `OpenBoxPlugin`: the zero-code path, like `OpenBoxPlugin` / `create_openbox_worker()` in the
//! reference. One object on the worker that checks the API key at start-up, registers the carrier
//! activity and both interceptors, and composes with other worker plugins.

use std::collections::HashMap;
use std::sync::Arc;

use temporalio_client::PluginError;
use temporalio_common::ActivityDefinition;
use temporalio_sdk::workflow_interceptors::WorkflowInterceptorConstructor;
use temporalio_sdk::workflow_replayer::WorkflowReplayerOptions;
use temporalio_sdk::{WorkerOptions, WorkerPlugin};

use super::activity_interceptor::OpenBoxActivityInterceptor;
use super::carrier::GovernanceActivities;
use super::codec::InputCodec;
use super::workflow_interceptor::OpenBoxWorkflowInterceptor;
use crate::client::CoreClient;
use crate::client::OpenBoxError;
use crate::config::OpenBoxConfig;
use crate::governance::Governor;
use crate::governance::options::GovernanceOptionsBuilder;

/// Governance for a Temporal worker: register it with `WorkerOptions::worker_plugin`.
///
/// ```no_run
/// use openbox::{OpenBoxConfig, OpenBoxPlugin};
/// use temporalio_sdk::WorkerOptions;
///
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let plugin = OpenBoxPlugin::builder()
///     .config(OpenBoxConfig::builder().build()?)  // OPENBOX_API_URL, OPENBOX_API_KEY, …
///     .options(|o| o.skip_activity_types(["heartbeat_only"]))
///     .build()                                    // checks the key with Core
///     .await?;
/// let options = WorkerOptions::new("payments").worker_plugin(plugin).build();
/// # let _ = options; Ok(()) }
/// ```
///
#[derive(Clone, Debug)]
pub struct OpenBoxPlugin {
    governor: Governor,
    described: Arc<HashMap<String, InputCodec>>,
}

impl OpenBoxPlugin {
    /// The name the plugin is registered (and reported to the server) under.
    pub const NAME: &'static str = "openbox.OpenBoxPlugin";

    /// Starts configuring the plugin.
    pub fn builder() -> OpenBoxPluginBuilder {
        OpenBoxPluginBuilder::default()
    }

    /// The governor the interceptors use (its stats).
    pub fn governor(&self) -> &Governor {
        &self.governor
    }

    /// The activity interceptor.
    pub(crate) fn activity_interceptor(&self) -> OpenBoxActivityInterceptor {
        OpenBoxActivityInterceptor::with_codecs(self.governor.clone(), self.described.clone())
    }

    /// The workflow interceptor constructor.
    pub(crate) fn workflow_interceptor(&self) -> WorkflowInterceptorConstructor {
        OpenBoxWorkflowInterceptor::constructor(self.governor.clone())
    }

    /// The carrier activity `send_governance_event`.
    pub(crate) fn activities(&self) -> GovernanceActivities {
        GovernanceActivities::new(self.governor.clone())
    }
}

impl WorkerPlugin for OpenBoxPlugin {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn configure_worker_options(&self, options: &mut WorkerOptions) -> Result<(), PluginError> {
        options.activity_inbound_interceptor(self.activity_interceptor());
        options.workflow_interceptor(self.workflow_interceptor());
        options.register_activities(self.activities());
        Ok(())
    }

    fn configure_workflow_replayer_options(
        &self,
        options: &mut WorkflowReplayerOptions,
    ) -> Result<(), PluginError> {
        // Replay needs the same workflow-side commands; carrier results come from history.
        options.workflow_interceptor(self.workflow_interceptor());
        Ok(())
    }
}

/// Builder of [`OpenBoxPlugin`].
#[derive(Debug, Default)]
pub struct OpenBoxPluginBuilder {
    config: Option<OpenBoxConfig>,
    options: GovernanceOptionsBuilder,
    described: HashMap<String, InputCodec>,
    skip_key_check: bool,
}

impl OpenBoxPluginBuilder {
    /// Where Core is and how to talk to it (default: `OpenBoxConfig::builder().build()`, i.e.
    /// the `OPENBOX_*` environment variables).
    pub fn config(mut self, config: OpenBoxConfig) -> Self {
        self.config = Some(config);
        self
    }

    /// Sets governance options: `f` receives the options set so far (the defaults at first) and
    /// returns them changed, so calls compose and none undoes another —
    /// `.options(|o| o.skip_activity_types(["heartbeat"]).approval_timeout(day))`. Every option
    /// is documented on [`GovernanceOptionsBuilder`]; start from existing options with
    /// `.options(|_| existing.into())`.
    pub fn options(
        mut self,
        f: impl FnOnce(GovernanceOptionsBuilder) -> GovernanceOptionsBuilder,
    ) -> Self {
        self.options = f(self.options);
        self
    }

    /// Tells the plugin the argument types of activity `A`, so that its input is reported and
    /// can be redacted without annotating it: `.describe_activity(MyActivities::charge)`.
    pub fn describe_activity<A>(mut self, activity: A) -> Self
    where
        A: ActivityDefinition,
        A::Input: Send + Sync,
    {
        self.described
            .insert(activity.name().to_owned(), InputCodec::of::<A>());
        self
    }

    /// Skip the start-up key check (for replaying histories offline).
    pub fn skip_key_check(mut self) -> Self {
        self.skip_key_check = true;
        self
    }

    /// Validates the options, checks the API key with Core (`GET /api/v1/auth/validate`) unless
    /// skipped, and returns the plugin.
    ///
    /// A rejected key ([`OpenBoxError::Auth`]) always fails the build. An unreachable Core fails
    /// it under `fail_closed` ([`OpenBoxError::Network`]); under `fail_open` it is logged and the
    /// worker starts, its events counted as lost until Core answers.
    pub async fn build(self) -> Result<OpenBoxPlugin, OpenBoxError> {
        let config = match self.config {
            Some(c) => c,
            None => OpenBoxConfig::builder().build()?,
        };
        let options = self.options.build()?;
        let client = CoreClient::new(config)?;
        if !self.skip_key_check {
            crate::governance::check_key_at_start(&client).await?;
        }
        Ok(OpenBoxPlugin {
            governor: Governor::new(client, options),
            described: Arc::new(self.described),
        })
    }
}
