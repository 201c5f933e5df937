//! The manual: what the SDK does, topic by topic. (Nothing to call here; each page is also a
//! file under `openbox/docs/guide/` in the repository.)
//!
//! | Page | What it answers |
//! |---|---|
//! | [`configuration`] | every setting, its builder method, its environment variable and default |
//! | [`verdicts`] | what each verdict does to each event, approvals, patches, replay, multi-agent sessions and handoffs |
//! | [`hooks`] | operations inside activities: the wrappers, when `completed` is waited for, what is sent and never sent, how SQL is judged |
//! | [`governed`] | what is governed and what is not, and what to do about it |
//! | [`outages`] | when Core fails: the error policies, `fail_closed_destructive`, the circuit breaker, the durable spool |
//! | [`observe`] | observe mode: a policy watched before it is enforced |
//! | [`signing`] | signed requests (agent identity v1, Okta AI-agent identity v2, workload identity v3) |
//! | [`differences`] | where this SDK differs from the reference Python SDK, and why |
//!
//! Metrics and their labels are listed in [`crate::metrics`].

#[doc = include_str!("../docs/guide/configuration.md")]
pub mod configuration {}

#[doc = include_str!("../docs/guide/verdicts.md")]
pub mod verdicts {}

#[doc = include_str!("../docs/guide/hooks.md")]
pub mod hooks {}

#[doc = include_str!("../docs/guide/governed.md")]
pub mod governed {}

#[doc = include_str!("../docs/guide/outages.md")]
pub mod outages {}

#[doc = include_str!("../docs/guide/observe.md")]
pub mod observe {}

#[doc = include_str!("../docs/guide/signing.md")]
pub mod signing {}

#[doc = include_str!("../docs/guide/differences.md")]
pub mod differences {}
