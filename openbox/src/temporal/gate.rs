//! The gate around a `#[governed_activity]` body: it decides who governs the attempt (the
//! plugin's interceptor, or the gate itself with a governor found otherwise) and runs the
//! governed lifecycle around the body.

use std::future::Future;
use std::sync::Arc;

use serde_json::Value;
use temporalio_sdk::activities::{ActivityContext, ActivityError};

use super::activity_interceptor::{Intercepted, attempt_info, intercepted};
use super::errors::{IntoTemporal, activity_failure_info, panic_error};
use super::typed::{GovernedValue, to_json};
use crate::governance::activity::{Attempt, BodyOutcome};
use crate::governance::failure::GovernanceFailure;
use crate::governance::scope::ActivityScope;
use crate::governance::{ActivitySettings, Governor};

/// What one `#[governed_activity]` is.
#[derive(Debug)]
pub struct ActivitySpec {
    /// Method name.
    pub method: &'static str,
    /// Capture and approval choices.
    pub settings: ActivitySettings,
}

enum GateState {
    /// The plugin's interceptor governs this attempt; the body runs in its scope.
    Passive(Arc<ActivityScope>),
    /// This gate governs the attempt.
    Governed(Attempt, Option<Vec<Value>>),
    /// Not governed (the activity type is skipped).
    Ungoverned,
}

/// Governance around the body of one `#[governed_activity]` attempt.
pub struct ActivityGate {
    state: GateState,
}

impl ActivityGate {
    /// Decides who governs and, if this gate does, sends ActivityStarted and enforces it.
    pub async fn enter(
        ctx: &ActivityContext,
        spec: &'static ActivitySpec,
        input: impl FnOnce() -> Vec<Value>,
    ) -> Result<ActivityGate, ActivityError> {
        let info = ctx.info();
        let governor = match intercepted(&info.task_token) {
            Some(Intercepted::Governed { scope, annotated }) => {
                if !annotated {
                    warn_unmatched(spec, &info.activity_type);
                }
                return Ok(ActivityGate {
                    state: GateState::Passive(scope),
                });
            }
            Some(Intercepted::Available(governor)) => Some(governor),
            None => Governor::current(),
        };
        let Some(governor) = governor else {
            let failure = GovernanceFailure::not_configured(&format!(
                "`{}` is #[governed_activity] but this worker has no OpenBoxPlugin and no Governor is installed \
                 (openbox::Governor::install_global)",
                spec.method
            ));
            return Err(failure.to_activity_error());
        };
        if !governor
            .options()
            .governs_activity(&info.activity_type, &info.task_queue)
        {
            return Ok(ActivityGate {
                state: GateState::Ungoverned,
            });
        }
        let clock = std::time::Instant::now();
        let input = input();
        governor.counters().add_governance_time(clock.elapsed());
        let (attempt, redacted) = Attempt::begin(
            governor,
            attempt_info(info, ctx.headers()),
            input,
            spec.settings,
        )
        .await
        .map_err(|f| f.to_activity_error())?;
        Ok(ActivityGate {
            state: GateState::Governed(attempt, redacted),
        })
    }

    /// [`ActivityGate::enter`] from a sync activity body (Temporal runs those on a blocking
    /// thread, where waiting is allowed).
    pub fn enter_blocking(
        ctx: &ActivityContext,
        spec: &'static ActivitySpec,
        input: impl FnOnce() -> Vec<Value> + Send,
    ) -> Result<ActivityGate, ActivityError> {
        block_on(Self::enter(ctx, spec, input))?
    }

    /// Puts the redacted arguments into their Rust types with `convert`, when guardrails
    /// redacted the input; `Ok(None)` when there is nothing to put back. When they do not fit,
    /// the attempt ends here (ActivityCompleted reports it) and its error is returned.
    pub async fn redacted_args<A>(
        &mut self,
        convert: impl FnOnce(&[Value]) -> Result<A, String>,
    ) -> Result<Option<A>, ActivityError> {
        let Some(values) = self.redacted_input() else {
            return Ok(None);
        };
        match convert(values) {
            Ok(args) => Ok(Some(args)),
            Err(why) => {
                let failure = GovernanceFailure::redaction_unusable(&why);
                let state = std::mem::replace(&mut self.state, GateState::Ungoverned);
                let GateState::Governed(attempt, _) = state else {
                    return Err(failure.to_activity_error());
                };
                Err(attempt.abandon(failure).await.to_activity_error())
            }
        }
    }

    /// [`ActivityGate::redacted_args`] from a sync body.
    pub fn redacted_args_blocking<A: Send>(
        &mut self,
        convert: impl FnOnce(&[Value]) -> Result<A, String> + Send,
    ) -> Result<Option<A>, ActivityError> {
        block_on(self.redacted_args(convert))?
    }

    /// The arguments redacted by guardrails, when the body must run with them.
    fn redacted_input(&self) -> Option<&[Value]> {
        match &self.state {
            GateState::Governed(_, Some(values)) => Some(values),
            _ => None,
        }
    }

    fn scope(&self) -> Option<Arc<ActivityScope>> {
        match &self.state {
            GateState::Passive(scope) => Some(scope.clone()),
            GateState::Governed(attempt, _) => Some(attempt.scope().clone()),
            GateState::Ungoverned => None,
        }
    }

    /// Runs the async body inside the activity's scope (hooks find it there); a panic becomes
    /// the activity's failure, so that ActivityCompleted still reports it.
    pub async fn run<T, F>(&self, body: F) -> Result<T, ActivityError>
    where
        F: Future<Output = Result<T, ActivityError>>,
    {
        use futures::FutureExt;
        let caught = match self.scope() {
            Some(scope) => {
                std::panic::AssertUnwindSafe(scope.drive(body))
                    .catch_unwind()
                    .await
            }
            None => std::panic::AssertUnwindSafe(body).catch_unwind().await,
        };
        caught.unwrap_or_else(|payload| Err(panic_error(payload.as_ref())))
    }

    /// Runs the sync body inside the activity's scope; a panic becomes the activity's failure.
    pub fn run_sync<T>(
        &self,
        body: impl FnOnce() -> Result<T, ActivityError>,
    ) -> Result<T, ActivityError> {
        let scope = self.scope();
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match scope {
            Some(scope) => scope.run_sync(body),
            None => body(),
        }));
        caught.unwrap_or_else(|payload| Err(panic_error(payload.as_ref())))
    }

    /// Sends ActivityCompleted (also for a failure), enforces it and applies output redaction.
    pub async fn exit<T: GovernedValue>(
        self,
        result: Result<T, ActivityError>,
    ) -> Result<T, ActivityError> {
        let GateState::Governed(attempt, _) = self.state else {
            return result;
        };
        match result {
            Ok(value) => {
                let clock = std::time::Instant::now();
                let json = to_json(&value);
                attempt
                    .scope()
                    .governor()
                    .counters()
                    .add_governance_time(clock.elapsed());
                match attempt.finish(BodyOutcome::Completed(json)).await {
                    Ok(None) => Ok(value),
                    Ok(Some(redacted)) => serde_json::from_value(redacted).map_err(|e| {
                        GovernanceFailure::redaction_unusable(&format!("output: {e}"))
                            .to_activity_error()
                    }),
                    Err(failure) => Err(failure.to_activity_error()),
                }
            }
            Err(error) => match activity_failure_info(&error) {
                Some(info) => match attempt.finish(BodyOutcome::Failed(info)).await {
                    Err(failure) => Err(failure.to_activity_error()),
                    Ok(_) => Err(error),
                },
                None => Err(error),
            },
        }
    }

    /// [`ActivityGate::exit`] from a sync body.
    pub fn exit_blocking<T: GovernedValue>(
        self,
        result: Result<T, ActivityError>,
    ) -> Result<T, ActivityError> {
        block_on(self.exit(result))?
    }
}

/// Waits for governance from a sync activity body.
fn block_on<F>(fut: F) -> Result<F::Output, ActivityError>
where
    F: Future + Send,
    F::Output: Send,
{
    crate::blocking::wait(fut)
        .map_err(|e| GovernanceFailure::not_configured(&e.to_string()).to_activity_error())
}

fn warn_unmatched(spec: &ActivitySpec, activity_type: &str) {
    use std::collections::HashSet;
    use std::sync::Mutex;
    static WARNED: Mutex<Option<HashSet<String>>> = Mutex::new(None);
    let mut warned = WARNED.lock().unwrap_or_else(|p| p.into_inner());
    if warned
        .get_or_insert_with(HashSet::new)
        .insert(activity_type.to_owned())
    {
        tracing::warn!(
            method = spec.method,
            activity_type,
            "#[governed_activity] options are not applied under the plugin: put \
             #[openbox::governed_activities] above the #[activities] impl so that the plugin \
             knows this activity exactly"
        );
    }
}
