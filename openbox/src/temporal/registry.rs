//! What the attribute macros declare, collected at link time so the interceptors know about
//! annotated items before any of their code runs.
//!
//! `#[governed_activities]` sits above `#[activities]` and declares each activity by its exact
//! definition: the type name Temporal registers it under and a codec of all its arguments.
//! `#[governed_activity]` expands inside the `#[activities]` impl, after Temporal's macro has
//! stripped the activity's `name`; so on its own an activity is recognised by its method name
//! (Temporal's default type name is `Type::method`) or by the macro's own `name = "…"`, and by
//! the type of its arguments. An exact declaration always wins.

use serde_json::Value;
use temporalio_sdk::interceptors::ExecuteActivityInput;
use temporalio_sdk::workflow_interceptors::HandleSignalInput;

use super::codec::InputCodec;
use crate::governance::ActivitySettings;

/// Declared by `#[governed_activity]`.
#[derive(Debug)]
pub struct ActivityDecl {
    /// The method's name (without Temporal's `__` prefix).
    pub method: &'static str,
    /// The activity type given with `name = "…"`, if any.
    pub name: Option<&'static str>,
    /// Capture and approval choices.
    pub settings: ActivitySettings,
    /// Typed conversion of the arguments.
    pub codec: InputCodec,
}

impl ActivityDecl {
    fn matches_name(&self, activity_type: &str) -> bool {
        match self.name {
            Some(name) => name == activity_type,
            None => {
                activity_type == self.method
                    || activity_type
                        .strip_suffix(self.method)
                        .is_some_and(|head| head.ends_with("::"))
            }
        }
    }
}

inventory::collect!(ActivityDecl);

/// Declared by `#[governed_activities]` for each activity of the impl.
#[derive(Debug)]
pub struct ActivityTypeDecl {
    /// The activity type, as its definition names it.
    pub activity_type: fn() -> &'static str,
    /// Capture and approval choices (from the method's `#[governed_activity]`, if any).
    pub settings: ActivitySettings,
    /// Conversion of all of its arguments.
    pub codec: InputCodec,
}

inventory::collect!(ActivityTypeDecl);

/// What the macros declared about the activity being executed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Declared {
    pub settings: ActivitySettings,
    pub codec: InputCodec,
}

/// The declaration of the activity being executed, if it is annotated: an exact declaration of
/// its type, else a `#[governed_activity]` that matches its name and argument types.
pub(crate) fn activity_decl(activity_type: &str, input: &ExecuteActivityInput) -> Option<Declared> {
    inventory::iter::<ActivityTypeDecl>
        .into_iter()
        .find(|d| (d.activity_type)() == activity_type && (d.codec.accepts)(input))
        .map(|d| Declared {
            settings: d.settings,
            codec: d.codec,
        })
        .or_else(|| {
            inventory::iter::<ActivityDecl>
                .into_iter()
                .find(|d| d.matches_name(activity_type) && (d.codec.accepts)(input))
                .map(|d| Declared {
                    settings: d.settings,
                    codec: d.codec,
                })
        })
}

/// Declared by `#[governed_workflow]` for each signal handler.
#[derive(Debug)]
pub struct SignalDecl {
    /// The signal's name.
    pub name: &'static str,
    /// The decoded argument as JSON, `None` on a type mismatch.
    pub to_json: fn(&HandleSignalInput) -> Option<Value>,
}

/// Declared by `#[governed_workflow]`.
#[derive(Debug)]
pub struct WorkflowDecl {
    /// The workflow type name.
    pub workflow_type: fn() -> &'static str,
    /// Its signals.
    pub signals: &'static [SignalDecl],
}

inventory::collect!(WorkflowDecl);

/// The declaration of a workflow type, if it is annotated.
pub(crate) fn workflow_decl(workflow_type: &str) -> Option<&'static WorkflowDecl> {
    inventory::iter::<WorkflowDecl>
        .into_iter()
        .find(|d| (d.workflow_type)() == workflow_type)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decl(method: &'static str, name: Option<&'static str>) -> ActivityDecl {
        ActivityDecl {
            method,
            name,
            settings: ActivitySettings::default(),
            codec: InputCodec::single::<String>(),
        }
    }

    #[test]
    fn names() {
        let d = decl("charge", None);
        assert!(d.matches_name("charge"));
        assert!(d.matches_name("Payments::charge"));
        assert!(!d.matches_name("Payments::recharge"));
        assert!(!d.matches_name("charge_card"));
        let d = decl("charge", Some("charge_card"));
        assert!(d.matches_name("charge_card"));
        assert!(!d.matches_name("Payments::charge"));
    }
}
