//! Identity transitions, as Core runs them for a rolling change of an agent's identity mode:
//! an operator prepares a transition (`POST /api/dev/transitions`, `{"to": "okta_ai_agent"}` or
//! `{"to": "workload"}`, answered with its id and, for Okta, a challenge); a runtime holding the
//! candidate key proves it; the candidate identity is then active — beside the API key, so that
//! workers not yet restarted keep working.
//!
//! | Route | Proof |
//! |---|---|
//! | `POST /api/v2/auth/transition-proof` | an Okta assertion of the registered agent over the body `{"transition_id"}`, with the claims `obx_transition_purpose` `okta_ai_agent`, `obx_transition_id`, `obx_transition_challenge` |
//! | `GET /api/v3/auth/workload-transition/bootstrap?transition_id=` | (the candidate service account's document) |
//! | `POST /api/v3/auth/workload-transition/proof` | `{"transition_id", "client_assertion"}`: an RFC 7523 assertion of the registered account for its token endpoint |
//!
//! A proof that does not verify is refused with 401 `transition_proof_invalid` (or the
//! assertion's own reason code); an unknown or already proven transition with 404.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

/// The identity a transition moves to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TransitionTarget {
    /// The Okta AI-agent identity (v2).
    #[serde(rename = "okta_ai_agent")]
    Okta,
    /// The workload identity (v3).
    #[serde(rename = "workload")]
    Workload,
}

/// A prepared transition.
#[derive(Debug, Clone, Serialize)]
pub struct PreparedTransition {
    /// Its id (a UUID).
    pub transition_id: String,
    /// Where it goes.
    pub to: TransitionTarget,
    /// What the Okta proof must sign.
    pub challenge: String,
}

/// Which identities are active, and the transitions pending.
#[derive(Debug)]
pub struct Transitions {
    okta_active: AtomicBool,
    workload_active: AtomicBool,
    /// A transition was prepared, or identities started inactive: workers of the old mode may
    /// still run.
    rolling: AtomicBool,
    pending: Mutex<HashMap<String, PreparedTransition>>,
}

impl Transitions {
    /// With the registered identities active at once (`pending`: only once proven).
    pub(crate) fn new(pending: bool) -> Self {
        Transitions {
            okta_active: AtomicBool::new(!pending),
            workload_active: AtomicBool::new(!pending),
            rolling: AtomicBool::new(pending),
            pending: Mutex::new(HashMap::new()),
        }
    }

    /// Whether the Okta identity is active.
    pub fn okta_active(&self) -> bool {
        self.okta_active.load(Ordering::Relaxed)
    }

    /// Whether the workload identity is active.
    pub fn workload_active(&self) -> bool {
        self.workload_active.load(Ordering::Relaxed)
    }

    /// Whether identities wait for a transition: then the API key alone stays accepted.
    pub fn rolling(&self) -> bool {
        self.rolling.load(Ordering::Relaxed)
    }

    /// Prepares a transition to `to`.
    pub fn prepare(&self, to: TransitionTarget) -> PreparedTransition {
        let mut bytes = [0u8; 40];
        let _ = aws_lc_rs::rand::fill(&mut bytes);
        let hex: String = bytes[..16].iter().map(|b| format!("{b:02x}")).collect();
        // A version-4 UUID, lowercase.
        let id = format!(
            "{}-{}-4{}-8{}-{}",
            &hex[0..8],
            &hex[8..12],
            &hex[13..16],
            &hex[17..20],
            &hex[20..32]
        );
        let prepared = PreparedTransition {
            transition_id: id.clone(),
            to,
            challenge: URL_SAFE_NO_PAD.encode(&bytes[16..]),
        };
        self.rolling.store(true, Ordering::Relaxed);
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending.insert(id, prepared.clone());
        prepared
    }

    /// The pending transition `id` to `to`, if any.
    pub(crate) fn pending(&self, id: &str, to: TransitionTarget) -> Option<PreparedTransition> {
        let pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending.get(id).filter(|t| t.to == to).cloned()
    }

    /// Marks `id` proven: its identity is active from now on.
    pub(crate) fn proven(&self, id: &str) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(t) = pending.remove(id) {
            match t.to {
                TransitionTarget::Okta => self.okta_active.store(true, Ordering::Relaxed),
                TransitionTarget::Workload => self.workload_active.store(true, Ordering::Relaxed),
            }
        }
    }
}
