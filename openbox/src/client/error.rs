//! Errors of talking to Core: a call that produced no verdict ([`GovernanceApiError`]), a
//! start-up that failed ([`OpenBoxError`]), and why Core refused a signed request. Names follow
//! the reference SDK's. None of them ever contains the API key.

use std::time::Duration;

use crate::config::ConfigError;
use crate::wire::ResponseError;

/// Any error of this crate that is returned to the caller (as opposed to the verdicts that
/// become Temporal failures of a governed activity or workflow).
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum OpenBoxError {
    /// The configuration is incomplete or invalid (reference: `OpenBoxConfigError`).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Core rejected the API key at start-up (reference: `OpenBoxAuthError`).
    #[error("OpenBox Core at {url} rejected the API key (HTTP {status})")]
    Auth {
        /// Core base URL.
        url: String,
        /// 401 or 403.
        status: u16,
    },
    /// Core could not be reached or answered the key check with an error (reference:
    /// `OpenBoxNetworkError`).
    #[error("Cannot reach OpenBox Core at {url}: {}", .source.detail())]
    Network {
        /// Core base URL.
        url: String,
        /// What went wrong.
        #[source]
        source: GovernanceApiError,
    },
    /// The spool directory cannot be opened (see [`crate::SpoolSettings`]).
    #[error(transparent)]
    Spool(#[from] super::SpoolError),
    /// Core refused the signature of the start-up key check (reference:
    /// `OpenBoxSigningError`).
    #[error("OpenBox Core at {url} rejected the signed request (HTTP {status}): {rejection}")]
    SignatureRejected {
        /// Core base URL.
        url: String,
        /// 401 or 403.
        status: u16,
        /// Core's reason.
        rejection: SigningRejection,
    },
}

/// Declares [`SigningRejection`]: each known reason code with its variant, its documentation
/// and the advice its message gives — one table, so code, variant and advice cannot drift.
macro_rules! signing_rejections {
    ($($(#[$doc:meta])* $variant:ident => [$code:literal $(| $alias:literal)*], $advice:literal;)*) => {
        /// Why Core refused a signed request, from the reason code of its 401/403 answer
        /// (`reason_code`, `code` or `reason`). Each says what to fix.
        #[derive(Debug, Clone, PartialEq, Eq)]
        #[non_exhaustive]
        pub enum SigningRejection {
            $($(#[$doc])* $variant,)*
            /// Another code, as Core sent it.
            Other(String),
        }

        impl SigningRejection {
            /// The rejection a reason code names.
            pub fn from_code(code: &str) -> Self {
                match code {
                    $($code $(| $alias)* => SigningRejection::$variant,)*
                    other => SigningRejection::Other(other.chars().take(64).collect()),
                }
            }

            /// The reason code.
            pub fn code(&self) -> &str {
                match self {
                    $(SigningRejection::$variant => $code,)*
                    SigningRejection::Other(code) => code,
                }
            }

            fn advice(&self) -> &'static str {
                match self {
                    $(SigningRejection::$variant => $advice,)*
                    SigningRejection::Other(_) => "see Core's documentation for this reason code",
                }
            }
        }
    };
}

signing_rejections! {
    /// `signature_invalid`: the signed bytes did not verify — a changed body or a wrong key.
    SignatureInvalid => ["signature_invalid"],
        "the signed bytes did not verify: a wrong or rotated private key, or a body changed on the way";
    /// `nonce_replayed`: the nonce was used before.
    NonceReplayed => ["nonce_replayed"],
        "the nonce was already used: a signed request was sent twice";
    /// `timestamp_outside_window` (or `timestamp_skew`): the clock is more than 300 s off.
    TimestampOutsideWindow => ["timestamp_outside_window" | "timestamp_skew"],
        "the signing time is more than 300 s away from Core's clock: sync this host's clock";
    /// `did_agent_mismatch`: the DID is not the agent the API key belongs to.
    DidAgentMismatch => ["did_agent_mismatch"],
        "the agent DID is not the agent the API key and private key were provisioned for";
    /// `verifier_not_configured`: Core has no public key for this agent yet.
    VerifierNotConfigured => ["verifier_not_configured"],
        "Core has no public key for this agent yet: re-provision the agent";
    /// `assertion_missing`: a v2 route was called without `X-OpenBox-Agent-Assertion`.
    AssertionMissing => ["assertion_missing"],
        "the request carried no agent assertion: configure the Okta agent identity";
    /// `assertion_malformed`: the assertion is not a well-formed compact JWS.
    AssertionMalformed => ["assertion_malformed"],
        "the agent assertion is not a well-formed JWT";
    /// `assertion_typ_mismatch`: the JWT `typ` is not `openbox-agent-proof+jwt`.
    AssertionTypMismatch => ["assertion_typ_mismatch"],
        "the agent assertion's typ is not openbox-agent-proof+jwt";
    /// `assertion_alg_rejected`: the JWT `alg` is not `RS256`.
    AssertionAlgRejected => ["assertion_alg_rejected"],
        "the agent assertion's algorithm is not RS256";
    /// `assertion_embedded_key_rejected`: the JWT header carries a key (`jwk`, `jku`, `x5u`).
    AssertionEmbeddedKeyRejected => ["assertion_embedded_key_rejected"],
        "the agent assertion names its own key; Core verifies with the registered one only";
    /// `assertion_key_too_small`: the credential's RSA key is under 2048 bits.
    AssertionKeyTooSmall => ["assertion_key_too_small"],
        "the agent's RSA key is under 2048 bits: issue a larger key";
    /// `assertion_signature_invalid`: the RS256 signature does not verify under the `kid`.
    AssertionSignatureInvalid => ["assertion_signature_invalid"],
        "the agent assertion's signature did not verify: a wrong or rotated private key, or a wrong key id";
    /// `method_endpoint_mismatch`: `htm`/`htu` are not the request's method and path.
    MethodEndpointMismatch => ["method_endpoint_mismatch"],
        "the agent assertion was made for another method or path";
    /// `binding_invalid`: a bound claim (body hash, API key hash, ids, audience) is not the
    /// request's or the agent's.
    BindingInvalid => ["binding_invalid"],
        "the agent assertion does not match this request, API key or agent: check the ids and audience";
    /// `transition_proof_invalid`: an identity transition's proof did not verify.
    TransitionProofInvalid => ["transition_proof_invalid"],
        "the identity transition proof did not verify";
    /// `proof_expired`: the assertion is outside its 60 s lifetime (or the clock is off).
    ProofExpired => ["proof_expired"],
        "the agent assertion has expired or is not yet valid: sync this host's clock";
    /// `proof_replayed`: the assertion's `jti` was used before.
    ProofReplayed => ["proof_replayed"],
        "the agent assertion was already used: a signed request was sent twice";
    /// `identity_ineligible`: the identity may not call Core (inactive agent or credential).
    IdentityIneligible => ["identity_ineligible"],
        "the agent's identity is not eligible: check the agent and its credential at Core";
}

impl std::fmt::Display for SigningRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.code(), self.advice())
    }
}

/// A governance call that produced no verdict (reference: `GovernanceAPIError`).
///
/// What happens next is decided by the [`ErrorPolicy`](crate::ErrorPolicy), except for
/// [`GovernanceApiError::Unauthorized`], which always stops the operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GovernanceApiError {
    /// Connection refused, reset, DNS failure, TLS failure…
    #[error("Governance API error: cannot reach OpenBox Core: {0}")]
    Unreachable(String),
    /// No complete answer within the configured timeout.
    #[error("Governance API error: no answer from OpenBox Core within {0:?}")]
    Timeout(Duration),
    /// Core answered with an HTTP status other than 2xx (and other than 401/403).
    #[error("Governance API error: HTTP {status}")]
    Status {
        /// The HTTP status.
        status: u16,
        /// The start of the response body, for logs.
        body: String,
    },
    /// Core answered 401 or 403: the key is wrong or revoked. Always fails closed.
    #[error("Governance API error: HTTP {status}: OpenBox Core rejected the API key")]
    Unauthorized {
        /// 401 or 403.
        status: u16,
    },
    /// Core answered 401 or 403 to a signed request, naming what was wrong with the signature.
    /// Always fails closed, like [`GovernanceApiError::Unauthorized`].
    #[error(
        "Governance API error: HTTP {status}: OpenBox Core rejected the signed request: {rejection}"
    )]
    SignatureRejected {
        /// 401 or 403.
        status: u16,
        /// Core's reason.
        rejection: SigningRejection,
    },
    /// The Okta identity's ids could not be had from Core's bootstrap document (no such route,
    /// a refusal, an invalid document, or Core selected another key than the configured one):
    /// nothing can be signed. Always fails closed, like a refused key.
    #[error("Governance API error: Okta identity bootstrap failed: {0}")]
    IdentityBootstrap(String),
    /// No workload token could be had from the identity provider's token endpoint while Core
    /// offers the workload identity (unreachable, refused, or an unusable answer). Always fails
    /// closed: once Core offers the workload identity, nothing is sent without it.
    #[error("Governance API error: no workload identity token: {0}")]
    WorkloadToken(String),
    /// A 2xx answer that is not a usable evaluate response (garbage, unknown verdict…).
    #[error("Governance API error: {0}")]
    InvalidResponse(#[from] ResponseError),
    /// The request body could not be encoded.
    #[error("Governance API error: cannot encode the request: {0}")]
    Encode(String),
    /// The circuit breaker is open: Core failed its last calls, so this one was not made.
    #[error(
        "Governance API error: OpenBox Core circuit breaker is open after repeated failures (last: {last_failure}); next probe in {retry_in:?}"
    )]
    CircuitOpen {
        /// Until the next probe.
        retry_in: Duration,
        /// The failure that opened (or kept open) the breaker.
        last_failure: String,
    },
}

impl GovernanceApiError {
    /// A short, stable name of the failure kind, for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            GovernanceApiError::Unreachable(_) => "unreachable",
            GovernanceApiError::Timeout(_) => "timeout",
            GovernanceApiError::Status { .. } => "http_status",
            GovernanceApiError::Unauthorized { .. } => "unauthorized",
            GovernanceApiError::SignatureRejected { .. } => "signature_rejected",
            GovernanceApiError::IdentityBootstrap(_) => "identity_bootstrap",
            GovernanceApiError::WorkloadToken(_) => "workload_token",
            GovernanceApiError::InvalidResponse(ResponseError::UnknownVerdict(_)) => {
                "unknown_verdict"
            }
            GovernanceApiError::InvalidResponse(ResponseError::MissingVerdict) => "missing_verdict",
            GovernanceApiError::InvalidResponse(_) => "invalid_response",
            GovernanceApiError::Encode(_) => "encode",
            GovernanceApiError::CircuitOpen { .. } => "circuit_open",
        }
    }

    /// What went wrong, without the `Governance API error: ` prefix of the message.
    pub fn detail(&self) -> String {
        let text = self.to_string();
        match text.strip_prefix("Governance API error: ") {
            Some(rest) => rest.to_owned(),
            None => text,
        }
    }

    /// `true` for 401/403 and an unusable Okta identity, which fail closed whatever the policy:
    /// a configuration error, not an outage.
    pub fn is_unauthorized(&self) -> bool {
        matches!(
            self,
            GovernanceApiError::Unauthorized { .. }
                | GovernanceApiError::SignatureRejected { .. }
                | GovernanceApiError::IdentityBootstrap(_)
                | GovernanceApiError::WorkloadToken(_)
        )
    }
}
