//! What is governed and how: the reference's `GovernanceConfig`, plus the approval settings
//! (approvals survive retries on other workers and are bounded in time) and the replay cut-off.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use crate::config::ConfigError;

/// The carrier activity's type name (as in the reference, so Core and histories agree).
pub(crate) const CARRIER_ACTIVITY: &str = "send_governance_event";

/// Default approval poll interval (the reference's unused `hitl_poll_interval_ms`).
pub(crate) const DEFAULT_APPROVAL_POLL_INTERVAL: Duration = Duration::from_secs(5);
/// Default number of failed approval polls in a row after which the error policy decides.
pub(crate) const DEFAULT_APPROVAL_POLL_FAILURE_LIMIT: u32 = 10;
/// Default SDK-side bound on an approval wait.
pub(crate) const DEFAULT_APPROVAL_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// Whether Core's verdicts take effect.
///
/// Observe mode is for rolling a policy out: every evaluation is still sent (marked with the
/// `X-OpenBox-Enforcement: observe` header) and what Core decided is logged and counted as what
/// *would have* happened (`openbox_observed_verdicts_total`, label `would_have`), but nothing is
/// blocked, halted, redacted or held for approval, and a missing verdict never stops anything.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Enforcement {
    /// Verdicts take effect (default).
    #[default]
    Enforce,
    /// Verdicts are recorded, not enforced.
    Observe,
}

/// The kinds of operation hooks evaluate, for [`GovernanceOptionsBuilder::observe_hooks`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HookKind {
    /// HTTP requests (`http_request`).
    Http,
    /// Database statements and commands (`db_query`).
    Db,
    /// File operations (`file_operation`).
    File,
    /// `#[traced]` function calls (`function_call`).
    Function,
}

impl HookKind {
    /// The kind of operation `hook` reports.
    pub(crate) fn of(hook: &crate::wire::HookSpan) -> HookKind {
        use crate::wire::HookSpan;
        match hook {
            HookSpan::HttpRequest(_) => HookKind::Http,
            HookSpan::DbQuery(_) => HookKind::Db,
            HookSpan::FileOperation(_) => HookKind::File,
            HookSpan::FunctionCall(_) => HookKind::Function,
        }
    }

    /// The `hook_type` of the spans of this kind.
    pub const fn hook_type(self) -> &'static str {
        match self {
            HookKind::Http => "http_request",
            HookKind::Db => "db_query",
            HookKind::File => "file_operation",
            HookKind::Function => "function_call",
        }
    }
}

/// How workflow-side events reach Core.
///
/// Workflow code cannot do I/O, so WorkflowStarted, SignalReceived, WorkflowCompleted and
/// WorkflowFailed are sent by the activity `send_governance_event`. A local activity runs in the
/// workflow's own worker without a task-queue round trip and is recorded as a marker; a regular
/// activity is what the reference uses and appears as `ActivityTask*` events. Switching mode
/// changes the histories of new runs only, but a run must be replayed with the mode it ran with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum CarrierMode {
    /// Local activity (default). Measured on a 2-core machine against the dev server: 71–99 ms
    /// per workflow with two workflow events and one activity, against 199 ms with a regular
    /// carrier — each regular event adds a task-queue round trip.
    #[default]
    Local,
    /// Regular activity on the workflow's task queue (reference parity).
    Regular,
}

/// When the `completed` evaluation of an operation inside an activity is waited for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum HookCompletion {
    /// The operation returns to its caller after Core answered its `completed` evaluation, and a
    /// BLOCK or HALT there is the caller's `HookError` (default): nothing Core refuses reaches
    /// the caller's code — an HTTP response Core blocks is never read by the activity. Two Core
    /// round trips per operation.
    #[default]
    Wait,
    /// The operation returns as soon as it finished; its `completed` evaluation runs
    /// concurrently, and a BLOCK or HALT from it fails the activity when the body returns
    /// (ActivityCompleted is sent after every pending evaluation answered, and carries them). One
    /// Core round trip per operation on the caller's path; the caller may act on a result Core
    /// later refuses. While the body runs, these evaluations run in the activity's own task
    /// (no task is spawned per operation): they progress whenever the body awaits something,
    /// so a body that computes for long without awaiting delays them (their verdicts still
    /// decide the attempt).
    Deferred,
}

/// Default of [`GovernanceOptionsBuilder::max_patch_restarts`].
pub(crate) const DEFAULT_MAX_PATCH_RESTARTS: u32 = 3;

/// Which workflows and activities are governed, and how approvals behave.
#[derive(Debug, Clone)]
pub struct GovernanceOptions {
    pub(crate) send_start_event: bool,
    pub(crate) send_activity_start_event: bool,
    pub(crate) skip_workflow_types: HashSet<String>,
    pub(crate) skip_activity_types: HashSet<String>,
    pub(crate) skip_signals: HashSet<String>,
    pub(crate) enforce_task_queues: Option<HashSet<String>>,
    pub(crate) approvals_enabled: bool,
    pub(crate) skip_approval_activity_types: HashSet<String>,
    pub(crate) approval_poll_interval: Duration,
    pub(crate) approval_timeout: Duration,
    pub(crate) carrier: CarrierMode,
    pub(crate) only_annotated: bool,
    pub(crate) workflows_started_after: Option<SystemTime>,
    pub(crate) require_input_capture: bool,
    pub(crate) approval_poll_failure_limit: u32,
    pub(crate) enforcement: Enforcement,
    pub(crate) observed_activity_types: HashSet<String>,
    pub(crate) observed_hooks: HashSet<HookKind>,
    pub(crate) max_patch_restarts: u32,
    pub(crate) hook_completion: HookCompletion,
}

impl Default for GovernanceOptions {
    fn default() -> Self {
        GovernanceOptions {
            send_start_event: true,
            send_activity_start_event: true,
            skip_workflow_types: HashSet::new(),
            skip_activity_types: HashSet::from([CARRIER_ACTIVITY.to_owned()]),
            skip_signals: HashSet::new(),
            enforce_task_queues: None,
            approvals_enabled: true,
            skip_approval_activity_types: HashSet::new(),
            approval_poll_interval: DEFAULT_APPROVAL_POLL_INTERVAL,
            approval_timeout: DEFAULT_APPROVAL_TIMEOUT,
            carrier: CarrierMode::default(),
            only_annotated: false,
            workflows_started_after: None,
            require_input_capture: false,
            approval_poll_failure_limit: DEFAULT_APPROVAL_POLL_FAILURE_LIMIT,
            enforcement: Enforcement::Enforce,
            observed_activity_types: HashSet::new(),
            observed_hooks: HashSet::new(),
            max_patch_restarts: DEFAULT_MAX_PATCH_RESTARTS,
            hook_completion: HookCompletion::Wait,
        }
    }
}

impl GovernanceOptions {
    /// Starts from the defaults.
    pub fn builder() -> GovernanceOptionsBuilder {
        GovernanceOptionsBuilder::default()
    }

    /// Whether WorkflowStarted is sent.
    pub fn send_start_event(&self) -> bool {
        self.send_start_event
    }

    /// Whether ActivityStarted is sent (and with it its verdict, approval and redaction).
    pub fn send_activity_start_event(&self) -> bool {
        self.send_activity_start_event
    }

    /// Whether workflows and activities on this task queue are governed (all are, unless
    /// [`GovernanceOptionsBuilder::enforce_task_queues`] names some).
    pub(crate) fn governs_task_queue(&self, task_queue: &str) -> bool {
        self.enforce_task_queues
            .as_ref()
            .is_none_or(|queues| queues.contains(task_queue))
    }

    /// Whether an activity of this type on this task queue is governed by option.
    pub(crate) fn governs_activity(&self, activity_type: &str, task_queue: &str) -> bool {
        self.governs_activity_type(activity_type) && self.governs_task_queue(task_queue)
    }

    /// Whether workflows of this type are governed by option (the run may still be excluded by
    /// [`GovernanceOptions::workflows_started_after`]).
    pub(crate) fn governs_workflow_type(&self, workflow_type: &str) -> bool {
        !self.skip_workflow_types.contains(workflow_type)
    }

    /// Whether activities of this type are governed by option.
    pub(crate) fn governs_activity_type(&self, activity_type: &str) -> bool {
        !self.skip_activity_types.contains(activity_type)
    }

    /// Whether this signal is reported.
    pub(crate) fn governs_signal(&self, signal: &str) -> bool {
        !self.skip_signals.contains(signal)
    }

    /// Whether REQUIRE_APPROVAL waits for a human (otherwise it blocks).
    pub fn approvals_enabled(&self) -> bool {
        self.approvals_enabled
    }

    /// Whether REQUIRE_APPROVAL waits for a human in activities of this type: approvals are on
    /// and the type is not in `skip_approval_activity_types` (otherwise it blocks).
    pub(crate) fn approvals_enabled_for(&self, activity_type: &str) -> bool {
        self.approvals_enabled && !self.skip_approval_activity_types.contains(activity_type)
    }

    /// Delay between two approval polls (the retry delay of `ApprovalPending`).
    pub fn approval_poll_interval(&self) -> Duration {
        self.approval_poll_interval
    }

    /// Longest wait for an approval, counted from when the activity was first scheduled.
    pub fn approval_timeout(&self) -> Duration {
        self.approval_timeout
    }

    /// How workflow events are carried.
    pub fn carrier(&self) -> CarrierMode {
        self.carrier
    }

    /// Whether only `#[governed_activity]` / `#[governed_workflow]` items are governed.
    pub fn only_annotated(&self) -> bool {
        self.only_annotated
    }

    /// Runs started before this instant are not governed (replay safety for workflows that were
    /// already running when governance was switched on).
    pub fn workflows_started_after(&self) -> Option<SystemTime> {
        self.workflows_started_after
    }

    /// Whether verdicts on workflow events take effect (the global setting).
    pub fn enforcement(&self) -> Enforcement {
        self.enforcement
    }

    /// Whether verdicts on an activity of this type (its start and completion) take effect.
    pub(crate) fn enforcement_for_activity(&self, activity_type: &str) -> Enforcement {
        if self.enforcement == Enforcement::Observe
            || self.observed_activity_types.contains(activity_type)
        {
            Enforcement::Observe
        } else {
            Enforcement::Enforce
        }
    }

    /// Whether verdicts on an operation of `kind` inside an activity of this type take effect.
    pub(crate) fn enforcement_for_hook(&self, activity_type: &str, kind: HookKind) -> Enforcement {
        if self.observed_hooks.contains(&kind) {
            Enforcement::Observe
        } else {
            self.enforcement_for_activity(activity_type)
        }
    }

    /// Failed approval polls in a row after which the error policy decides (0: never).
    pub fn approval_poll_failure_limit(&self) -> u32 {
        self.approval_poll_failure_limit
    }

    /// Whether a governed activity whose arguments cannot be reported is refused (otherwise it
    /// runs, reported with `activity_input: []`, counted and logged once per type).
    pub fn require_input_capture(&self) -> bool {
        self.require_input_capture
    }

    /// How many times one workflow chain may restart with an input Core patched in; the next
    /// patch fails the run with `GovernancePatchLimitExceeded`.
    pub fn max_patch_restarts(&self) -> u32 {
        self.max_patch_restarts
    }

    /// When an operation's `completed` evaluation is waited for.
    pub fn hook_completion(&self) -> HookCompletion {
        self.hook_completion
    }
}

/// Builder of [`GovernanceOptions`].
#[derive(Debug, Clone, Default)]
pub struct GovernanceOptionsBuilder {
    options: GovernanceOptions,
}

impl From<GovernanceOptions> for GovernanceOptionsBuilder {
    fn from(options: GovernanceOptions) -> Self {
        GovernanceOptionsBuilder { options }
    }
}

impl GovernanceOptionsBuilder {
    /// Send WorkflowStarted (default `true`).
    pub fn send_start_event(mut self, on: bool) -> Self {
        self.options.send_start_event = on;
        self
    }

    /// Send ActivityStarted (default `true`). Without it there is no start-time verdict, no
    /// approval and no input redaction.
    pub fn send_activity_start_event(mut self, on: bool) -> Self {
        self.options.send_activity_start_event = on;
        self
    }

    /// Workflow types that emit no events. Extends the (empty) default.
    pub fn skip_workflow_types(
        mut self,
        types: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        self.options
            .skip_workflow_types
            .extend(types.into_iter().map(Into::into));
        self
    }

    /// Activity types that are not governed. Extends — does not replace — the default
    /// `{"send_governance_event"}`, so the carrier can never govern itself.
    pub fn skip_activity_types(
        mut self,
        types: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        self.options
            .skip_activity_types
            .extend(types.into_iter().map(Into::into));
        self
    }

    /// Govern only workflows and activities on these task queues (default: every queue).
    /// Elsewhere nothing is sent to Core and nothing is enforced, as for a skipped type — a
    /// plugin shared by workers of several queues then governs only the named ones. Calls
    /// extend the set; an empty set is refused by [`build`](Self::build).
    pub fn enforce_task_queues(
        mut self,
        queues: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        self.options
            .enforce_task_queues
            .get_or_insert_with(HashSet::new)
            .extend(queues.into_iter().map(Into::into));
        self
    }

    /// Signals that emit no SignalReceived.
    pub fn skip_signals(mut self, names: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.options
            .skip_signals
            .extend(names.into_iter().map(Into::into));
        self
    }

    /// Human approval (default `true`). When off, REQUIRE_APPROVAL blocks.
    pub fn approvals_enabled(mut self, on: bool) -> Self {
        self.options.approvals_enabled = on;
        self
    }

    /// Activity types in which REQUIRE_APPROVAL never waits for a human but blocks
    /// (non-retryable), e.g. an activity that must not hang its workflow on a person, or one
    /// that itself talks to the approval system.
    pub fn skip_approval_activity_types(
        mut self,
        types: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        self.options
            .skip_approval_activity_types
            .extend(types.into_iter().map(Into::into));
        self
    }

    /// Delay between approval polls (default 5 s).
    pub fn approval_poll_interval(mut self, interval: Duration) -> Self {
        self.options.approval_poll_interval = interval;
        self
    }

    /// When approval polls fail (Core unreachable, HTTP errors), the next poll waits twice as
    /// long each time (up to a minute); after this many failures in a row (default 10; 0 means
    /// never) `fail_closed` ends the wait with a `GovernanceHalt` naming the failure, while
    /// `fail_open` keeps waiting — an approval is never assumed.
    pub fn approval_poll_failure_limit(mut self, failures: u32) -> Self {
        self.options.approval_poll_failure_limit = failures;
        self
    }

    /// Observe instead of enforce, everywhere (see [`Enforcement`]).
    pub fn enforcement(mut self, mode: Enforcement) -> Self {
        self.options.enforcement = mode;
        self
    }

    /// Observe (not enforce) the verdicts on these activity types and the operations inside
    /// them.
    pub fn observe_activity_types(
        mut self,
        types: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        self.options
            .observed_activity_types
            .extend(types.into_iter().map(Into::into));
        self
    }

    /// Observe (not enforce) the verdicts on these kinds of operation.
    pub fn observe_hooks(mut self, kinds: impl IntoIterator<Item = HookKind>) -> Self {
        self.options.observed_hooks.extend(kinds);
        self
    }

    /// Longest approval wait before `ApprovalExpired` (default 24 h).
    pub fn approval_timeout(mut self, timeout: Duration) -> Self {
        self.options.approval_timeout = timeout;
        self
    }

    /// Local or regular carrier activity (default local).
    pub fn carrier(mut self, mode: CarrierMode) -> Self {
        self.options.carrier = mode;
        self
    }

    /// Govern only items marked `#[governed_activity]` / `#[governed_workflow]` (default:
    /// govern everything on the worker).
    pub fn only_annotated(mut self) -> Self {
        self.options.only_annotated = true;
        self
    }

    /// Do not govern workflow runs started before `at`: set it to the moment you switch
    /// governance on for a task queue with running workflows, so that their histories (which
    /// have no governance events) replay without nondeterminism errors.
    pub fn workflows_started_after(mut self, at: SystemTime) -> Self {
        self.options.workflows_started_after = Some(at);
        self
    }

    /// Refuse governed activities whose arguments cannot be reported to Core (default `false`:
    /// they run with `activity_input: []`, counted in `Governor::stats()` and the
    /// `openbox_inputs_not_captured_total` metric, and logged once per activity type). Arguments
    /// are reported for `#[openbox::governed_activities]` impls, `describe_activity`, and common
    /// single-argument types; with this on, input rules and guardrails can never be blind.
    pub fn require_input_capture(mut self, on: bool) -> Self {
        self.options.require_input_capture = on;
        self
    }

    /// How many times one workflow chain may continue as new with an input Core patched in
    /// (default 3, as the reference). The count travels in the run's memo under
    /// `openbox_retryable_block_restart_count`, so it holds across workers and SDKs; the patch
    /// after the last allowed restart fails the run with `GovernancePatchLimitExceeded`
    /// instead. 0 turns every BLOCK with a patch into that failure.
    pub fn max_patch_restarts(mut self, restarts: u32) -> Self {
        self.options.max_patch_restarts = restarts;
        self
    }

    /// When an operation's `completed` evaluation is waited for (default
    /// [`HookCompletion::Wait`]; see [`HookCompletion::Deferred`] for one round trip per
    /// operation).
    pub fn hook_completion(mut self, mode: HookCompletion) -> Self {
        self.options.hook_completion = mode;
        self
    }

    /// Validates and returns the options.
    pub fn build(self) -> Result<GovernanceOptions, ConfigError> {
        let o = self.options;
        if o.approval_poll_interval.is_zero() {
            return Err(ConfigError::InvalidOption {
                option: "approval_poll_interval",
                reason: "must be greater than zero".into(),
            });
        }
        if o.approval_timeout < o.approval_poll_interval {
            return Err(ConfigError::InvalidOption {
                option: "approval_timeout",
                reason: "must be at least the approval poll interval".into(),
            });
        }
        if o.enforce_task_queues
            .as_ref()
            .is_some_and(HashSet::is_empty)
        {
            return Err(ConfigError::InvalidOption {
                option: "enforce_task_queues",
                reason: "no task queue named: nothing would be governed".into(),
            });
        }
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enforced_task_queues_limit_what_is_governed() {
        let all = GovernanceOptions::default();
        assert!(all.governs_task_queue("any") && all.governs_activity("charge", "any"));
        let some = GovernanceOptions::builder()
            .enforce_task_queues(["payments"])
            .enforce_task_queues(["refunds"])
            .build()
            .unwrap();
        assert!(some.governs_task_queue("payments") && some.governs_task_queue("refunds"));
        assert!(!some.governs_task_queue("reports"));
        assert!(!some.governs_activity("charge", "reports"));
        assert!(!some.governs_activity(CARRIER_ACTIVITY, "payments"));
        assert!(matches!(
            GovernanceOptions::builder()
                .enforce_task_queues(Vec::<String>::new())
                .build(),
            Err(ConfigError::InvalidOption {
                option: "enforce_task_queues",
                ..
            })
        ));
    }

    #[test]
    fn skip_lists_extend_the_defaults() {
        let o = GovernanceOptions::builder()
            .skip_activity_types(["internal"])
            .build()
            .unwrap();
        assert!(
            !o.governs_activity_type(CARRIER_ACTIVITY),
            "the carrier stays skipped"
        );
        assert!(!o.governs_activity_type("internal"));
        assert!(o.governs_activity_type("charge"));
        let o = GovernanceOptions::builder()
            .skip_workflow_types(["W"])
            .skip_signals(["hb"])
            .build()
            .unwrap();
        assert!(!o.governs_workflow_type("W") && o.governs_workflow_type("X"));
        assert!(!o.governs_signal("hb") && o.governs_signal("go"));
    }

    #[test]
    fn observe_mode_by_scope() {
        let o = GovernanceOptions::builder()
            .observe_activity_types(["charge"])
            .observe_hooks([HookKind::Http])
            .build()
            .unwrap();
        assert_eq!(o.enforcement(), Enforcement::Enforce);
        assert_eq!(o.enforcement_for_activity("charge"), Enforcement::Observe);
        assert_eq!(o.enforcement_for_activity("refund"), Enforcement::Enforce);
        assert_eq!(
            o.enforcement_for_hook("refund", HookKind::Http),
            Enforcement::Observe
        );
        assert_eq!(
            o.enforcement_for_hook("refund", HookKind::Db),
            Enforcement::Enforce
        );
        assert_eq!(
            o.enforcement_for_hook("charge", HookKind::Db),
            Enforcement::Observe
        );
        let all = GovernanceOptions::builder()
            .enforcement(Enforcement::Observe)
            .build()
            .unwrap();
        assert_eq!(
            all.enforcement_for_hook("x", HookKind::File),
            Enforcement::Observe
        );
    }

    #[test]
    fn invalid_approval_settings() {
        let e = GovernanceOptions::builder()
            .approval_poll_interval(Duration::ZERO)
            .build()
            .unwrap_err();
        assert!(e.to_string().contains("approval_poll_interval"));
        let e = GovernanceOptions::builder()
            .approval_poll_interval(Duration::from_secs(10))
            .approval_timeout(Duration::from_secs(1))
            .build()
            .unwrap_err();
        assert!(e.to_string().contains("approval_timeout"));
    }
}
