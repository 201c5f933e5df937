//! What a failed Core call means, in one place for every call site.

use super::GovernanceApiError;
use crate::config::ErrorPolicy;
use crate::wire::EvaluateResponse;

/// The outcome of an evaluation once the error policy has been applied.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
// A decision is made once per evaluation and consumed at once: boxing the verdict would add an
// allocation to every Core call for no memory saved.
#[allow(clippy::large_enum_variant)]
pub enum Decision {
    /// Core answered with a verdict; enforce it.
    Verdict(EvaluateResponse),
    /// Core gave no verdict and the policy is `fail_open`: proceed as if allowed. The event is
    /// lost; it has been logged with its reason.
    Proceed(GovernanceApiError),
    /// Core gave no verdict and the operation must stop with a non-retryable `GovernanceHalt`
    /// naming the failure: the policy is `fail_closed`, or Core rejected the key (401/403).
    Halt(GovernanceApiError),
}

impl Decision {
    /// Applies `policy` to the result of an evaluation of an `event_type` event, about an
    /// operation that can change something when `destructive`.
    pub fn from_result(
        result: Result<EvaluateResponse, GovernanceApiError>,
        policy: ErrorPolicy,
        event_type: &str,
        destructive: bool,
    ) -> Self {
        let stop = match policy {
            ErrorPolicy::FailClosed => true,
            ErrorPolicy::FailClosedDestructive => destructive,
            _ => false,
        };
        match result {
            Ok(response) => Decision::Verdict(response),
            Err(error) if error.is_unauthorized() || stop => {
                tracing::error!(event_type, kind = error.kind(), %error, policy = policy.as_str(), "OpenBox Core gave no verdict; stopping");
                Decision::Halt(error)
            }
            Err(error) => {
                tracing::warn!(event_type, kind = error.kind(), %error, policy = policy.as_str(), "OpenBox Core gave no verdict; proceeding (fail_open)");
                Decision::Proceed(error)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{ResponseError, UnknownVerdict};
    use std::time::Duration;

    #[test]
    fn policy_table() {
        let errors = [
            GovernanceApiError::Unreachable("refused".into()),
            GovernanceApiError::Timeout(Duration::from_secs(1)),
            GovernanceApiError::Status {
                status: 500,
                body: String::new(),
            },
            GovernanceApiError::InvalidResponse(ResponseError::NotJson("x".into())),
            GovernanceApiError::InvalidResponse(ResponseError::UnknownVerdict(UnknownVerdict(
                "x".into(),
            ))),
        ];
        for e in errors {
            assert_eq!(
                Decision::from_result(Err(e.clone()), ErrorPolicy::FailOpen, "E", true),
                Decision::Proceed(e.clone())
            );
            assert_eq!(
                Decision::from_result(Err(e.clone()), ErrorPolicy::FailClosed, "E", false),
                Decision::Halt(e)
            );
        }
        for status in [401, 403] {
            let e = GovernanceApiError::Unauthorized { status };
            assert_eq!(
                Decision::from_result(Err(e.clone()), ErrorPolicy::FailOpen, "E", true),
                Decision::Halt(e)
            );
        }
        let down = GovernanceApiError::Unreachable("refused".into());
        let destructive = ErrorPolicy::FailClosedDestructive;
        assert!(matches!(
            Decision::from_result(Err(down.clone()), destructive, "E", true),
            Decision::Halt(_)
        ));
        assert!(matches!(
            Decision::from_result(Err(down), destructive, "E", false),
            Decision::Proceed(_)
        ));
        let ok = EvaluateResponse::allow();
        assert_eq!(
            Decision::from_result(Ok(ok.clone()), ErrorPolicy::FailClosed, "E", true),
            Decision::Verdict(ok)
        );
    }
}
