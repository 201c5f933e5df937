//! The activity inbound interceptor: governs every activity of the worker (or only the annotated
//! ones) with the lifecycle of [`crate::governance`], before and after the body.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use futures::FutureExt;
use serde_json::Value;
use temporalio_sdk::activities::{ActivityError, ActivityInfo};
use temporalio_sdk::interceptors::{
    ActivityExecutionValue, ActivityInboundInterceptor, ExecuteActivityInput,
    ExecuteActivityOutput, Next,
};

use super::codec::{self, InputCodec};
use super::errors::{IntoTemporal, activity_failure_info, panic_error};
use super::registry::activity_decl;
use super::session::session_from_headers;
use crate::governance::activity::{Attempt, AttemptInfo, BodyOutcome};
use crate::governance::failure::GovernanceFailure;
use crate::governance::scope::ActivityScope;
use crate::governance::{ActivitySettings, Governor};
use crate::wire::ActivityIdentity;

/// An activity's Temporal headers.
pub(crate) type Headers =
    HashMap<String, temporalio_common::protos::temporal::api::common::v1::Payload>;

/// Codecs given on the plugin builder, by activity type.
pub(crate) type DescribedCodecs = Arc<HashMap<String, InputCodec>>;

/// Governs activities on a worker. Registered by [`crate::OpenBoxPlugin`]; public for manual
/// wiring with `WorkerOptions::activity_inbound_interceptor`.
#[derive(Clone)]
pub struct OpenBoxActivityInterceptor {
    governor: Governor,
    described: DescribedCodecs,
}

impl std::fmt::Debug for OpenBoxActivityInterceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenBoxActivityInterceptor")
            .finish_non_exhaustive()
    }
}

/// What the interceptor did with an attempt, by task token: `#[governed_activity]` inside it
/// stays passive when the interceptor governs, or governs itself with the plugin's governor
/// when the interceptor left it alone; a sync body enters the scope on its blocking thread.
#[derive(Clone)]
pub(crate) enum Intercepted {
    /// The interceptor governs the attempt.
    Governed {
        /// Its scope.
        scope: Arc<ActivityScope>,
        /// Whether a `#[governed_activity]` declaration matched (its options were applied).
        annotated: bool,
    },
    /// The interceptor does not govern it (only-annotated mode); here is the governor.
    Available(Governor),
}

fn intercepted_map() -> &'static Mutex<HashMap<Vec<u8>, Intercepted>> {
    static MAP: OnceLock<Mutex<HashMap<Vec<u8>, Intercepted>>> = OnceLock::new();
    MAP.get_or_init(Default::default)
}

/// What the interceptor registered for the attempt with this task token.
pub(crate) fn intercepted(task_token: &[u8]) -> Option<Intercepted> {
    intercepted_map()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(task_token)
        .cloned()
}

/// An attempt's entry in the map, counted in its governor's stats while it lives.
struct InterceptedGuard {
    task_token: Vec<u8>,
    governor: Governor,
}

impl InterceptedGuard {
    fn register(task_token: Vec<u8>, what: Intercepted, governor: &Governor) -> Self {
        intercepted_map()
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(task_token.clone(), what);
        governor.counters().attempt_intercepted();
        InterceptedGuard {
            task_token,
            governor: governor.clone(),
        }
    }
}

impl Drop for InterceptedGuard {
    fn drop(&mut self) {
        self.governor.counters().attempt_released();
        let mut map = intercepted_map().lock().unwrap_or_else(|p| p.into_inner());
        map.remove(&self.task_token);
        if map.is_empty() {
            // A burst of activities must not keep its table's capacity for the worker's life.
            map.shrink_to_fit();
        }
    }
}

/// The identity of an attempt as sent to Core (workflow fields are empty for standalone
/// activities), with the multi-agent session its workflow stamped on its headers.
pub(crate) fn identity_of(info: &ActivityInfo, headers: &Headers) -> ActivityIdentity {
    ActivityIdentity {
        multi_agent_session_id: session_from_headers(headers),
        workflow_id: info.workflow_id.clone().unwrap_or_default(),
        run_id: info.workflow_run_id.clone().unwrap_or_default(),
        workflow_type: info.workflow_type.clone().unwrap_or_default(),
        activity_id: info.activity_id.clone(),
        activity_type: info.activity_type.clone(),
        task_queue: info.task_queue.clone(),
        attempt: info.attempt,
    }
}

pub(crate) fn attempt_info(info: &ActivityInfo, headers: &Headers) -> AttemptInfo {
    AttemptInfo {
        identity: Arc::new(identity_of(info, headers)),
        scheduled_time: info.scheduled_time,
        deadline: info.deadline,
    }
}

/// The output of an activity as JSON (any serde output).
fn output_json(output: &dyn ActivityExecutionValue) -> Value {
    output
        .as_serde()
        .ok()
        .and_then(|s| serde_json::to_value(s).ok())
        .unwrap_or(Value::Null)
}

impl OpenBoxActivityInterceptor {
    pub(crate) fn with_codecs(governor: Governor, described: DescribedCodecs) -> Self {
        OpenBoxActivityInterceptor {
            governor,
            described,
        }
    }

    async fn govern(
        &self,
        mut input: ExecuteActivityInput,
        next: Next<'_, ExecuteActivityInput, ExecuteActivityOutput<'_>>,
    ) -> Result<Box<dyn ActivityExecutionValue>, ActivityError> {
        // The SDK's own clock: argument capture and output conversion here, the Core calls in
        // `Attempt::begin`/`finish` (which time themselves).
        let clock = Instant::now();
        let info = input.activity_info().clone();
        let decl = activity_decl(&info.activity_type, &input);
        let settings = decl.map_or_else(ActivitySettings::default, |d| d.settings);
        let codec = decl
            .map(|d| d.codec)
            .or_else(|| self.described.get(&info.activity_type).copied())
            .or_else(|| codec::probe(&input));
        let input_json = match codec.and_then(|c| (c.to_json)(&input)) {
            Some(values) => values,
            None if settings.capture_input => {
                if self.governor.options().require_input_capture() {
                    return Err(GovernanceFailure::input_not_captured(&info.activity_type)
                        .to_activity_error());
                }
                uncaptured(&self.governor, &info.activity_type);
                Vec::new()
            }
            None => Vec::new(),
        };
        self.governor
            .counters()
            .add_governance_time(clock.elapsed());

        let (attempt, redacted) = Attempt::begin(
            self.governor.clone(),
            attempt_info(&info, input.headers()),
            input_json,
            settings,
        )
        .await
        .map_err(|f| f.to_activity_error())?;
        if let Some(redacted) = redacted {
            let replaced = match codec {
                Some(c) => (c.replace)(&mut input, &redacted),
                None => Err("the activity's argument type is unknown to OpenBox (add #[governed_activity] or describe_activity)".into()),
            };
            if let Err(why) = replaced {
                // Running with the unredacted input would defeat the guardrail; Core, which
                // was told the activity started, learns that it ended here.
                let failure = GovernanceFailure::redaction_unusable(&why);
                return Err(attempt.abandon(failure).await.to_activity_error());
            }
        }

        let scope = attempt.scope().clone();
        let registered = Intercepted::Governed {
            scope: scope.clone(),
            annotated: decl.is_some(),
        };
        let _registered =
            InterceptedGuard::register(info.task_token.clone(), registered, &self.governor);
        // A panicking body still gets its ActivityCompleted, and a hook's stop (a `#[traced]`
        // function that cannot return an error panics on BLOCK) still decides the failure.
        let result = match AssertUnwindSafe(scope.drive(next.run(input)))
            .catch_unwind()
            .await
        {
            Ok(result) => result,
            Err(payload) => Err(panic_error(payload.as_ref())),
        };
        match result {
            Ok(output) => {
                let clock = Instant::now();
                let json = output_json(output.as_ref());
                self.governor
                    .counters()
                    .add_governance_time(clock.elapsed());
                match attempt.finish(BodyOutcome::Completed(json)).await {
                    Ok(None) => Ok(output),
                    Ok(Some(redacted)) => Ok(Box::new(redacted)),
                    Err(failure) => Err(failure.to_activity_error()),
                }
            }
            Err(error) => match activity_failure_info(&error) {
                Some(info) => match attempt.finish(BodyOutcome::Failed(info)).await {
                    Err(failure) => Err(failure.to_activity_error()),
                    Ok(_) => Err(error),
                },
                // Completes asynchronously: the outcome is not known here.
                None => Err(error),
            },
        }
    }
}

/// An activity whose arguments this worker cannot report: counted every time, logged once per
/// activity type, so that input rules and guardrails are never blind without anyone knowing.
fn uncaptured(governor: &Governor, activity_type: &str) {
    use std::collections::HashSet;
    static WARNED: Mutex<Option<HashSet<String>>> = Mutex::new(None);
    governor.counters().input_not_captured();
    crate::governance::metrics::record_uncaptured_input(activity_type);
    let mut warned = WARNED.lock().unwrap_or_else(|p| p.into_inner());
    if warned
        .get_or_insert_with(HashSet::new)
        .insert(activity_type.to_owned())
    {
        tracing::warn!(
            activity_type,
            "OpenBox cannot report the arguments of this activity (their types are unknown to the plugin): \
             Core sees activity_input [] and input rules and guardrails cannot apply. Put \
             #[openbox::governed_activities] above its #[activities] impl, or describe it with \
             OpenBoxPluginBuilder::describe_activity; require_input_capture(true) refuses such activities"
        );
    }
}

impl ActivityInboundInterceptor for OpenBoxActivityInterceptor {
    fn execute_activity<'a>(
        &'a self,
        input: ExecuteActivityInput,
        next: Next<'a, ExecuteActivityInput, ExecuteActivityOutput<'a>>,
    ) -> ExecuteActivityOutput<'a> {
        let info = input.activity_info();
        let options = self.governor.options();
        let skipped = !options.governs_activity(&info.activity_type, &info.task_queue);
        if skipped
            || (options.only_annotated() && activity_decl(&info.activity_type, &input).is_none())
        {
            // Not governed here. A `#[governed_activity]` body finds this worker's governor:
            // it stays ungoverned if its type is skipped, and governs itself otherwise.
            let guard = InterceptedGuard::register(
                info.task_token.clone(),
                Intercepted::Available(self.governor.clone()),
                &self.governor,
            );
            return Box::pin(async move {
                let _guard = guard;
                next.run(input).await
            });
        }
        Box::pin(self.govern(input, next))
    }
}
