//! Zero-sized types for the keys whose value never varies on the wire (`source`, the hook
//! envelope's `event_type`, `hook_trigger`, the hook envelope's `activity_output`).
//!
//! Making them types rather than strings means a body built in Rust cannot carry a wrong
//! value, and a body parsed from JSON is rejected if it does.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! wire_str_const {
    ($(#[$doc:meta])* $name:ident = $lit:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
        pub struct $name;

        impl $name {
            /// The literal this type stands for.
            pub const VALUE: &'static str = $lit;
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str($lit)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                if s == $lit {
                    Ok($name)
                } else {
                    Err(serde::de::Error::custom(format_args!(
                        "expected {:?}, found {:?}",
                        $lit, s
                    )))
                }
            }
        }
    };
}

wire_str_const!(
    /// `"source": "workflow-telemetry"`, present in every evaluate body.
    WorkflowTelemetry = "workflow-telemetry"
);

wire_str_const!(
    /// `"event_type": "ActivityStarted"` of a hook evaluation (Core's contract keeps this event
    /// type for hooks of both stages).
    ActivityStartedTag = "ActivityStarted"
);

/// `"hook_trigger": true`, present on hook evaluations and **absent** on lifecycle events.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct HookTrigger;

impl Serialize for HookTrigger {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bool(true)
    }
}

impl<'de> Deserialize<'de> for HookTrigger {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if bool::deserialize(d)? {
            Ok(HookTrigger)
        } else {
            Err(serde::de::Error::custom("hook_trigger must be true"))
        }
    }
}

/// A key whose value is always JSON `null` (the hook envelope's `activity_output`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct AlwaysNull;

impl Serialize for AlwaysNull {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_none()
    }
}

impl<'de> Deserialize<'de> for AlwaysNull {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Option::<serde::de::IgnoredAny>::deserialize(d)? {
            None => Ok(AlwaysNull),
            Some(_) => Err(serde::de::Error::custom("expected null")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constants_round_trip_and_reject_other_values() {
        assert_eq!(
            serde_json::to_string(&WorkflowTelemetry).unwrap(),
            "\"workflow-telemetry\""
        );
        assert!(serde_json::from_str::<WorkflowTelemetry>("\"workflow-telemetry\"").is_ok());
        assert!(serde_json::from_str::<WorkflowTelemetry>("\"other\"").is_err());
        assert_eq!(serde_json::to_string(&HookTrigger).unwrap(), "true");
        assert!(serde_json::from_str::<HookTrigger>("false").is_err());
        assert_eq!(serde_json::to_string(&AlwaysNull).unwrap(), "null");
        assert!(serde_json::from_str::<AlwaysNull>("1").is_err());
    }
}
