//! Verdict tiers and their spellings on the wire. An unknown or missing verdict is an error, never an ALLOW.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What Core decided about an event, ordered by severity.
///
/// `Verdict::Allow < Verdict::Constrain < … < Verdict::Halt`, so the strictest of several
/// verdicts is their `max()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Verdict {
    /// Proceed.
    Allow,
    /// Proceed; Core attached constraints (logged).
    Constrain,
    /// A human must approve first (see the approval flow).
    RequireApproval,
    /// Do not perform the operation; fail it.
    Block,
    /// Stop the whole workflow run.
    Halt,
}

/// A verdict string that is neither a current nor a legacy spelling.
///
/// The reference SDK silently treats these as ALLOW; this crate treats them as a Core error
/// so that a typo in a policy never opens the gate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown verdict {0:?}")]
pub struct UnknownVerdict(pub String);

impl Verdict {
    /// The canonical wire spelling (`"allow"`, `"constrain"`, `"require_approval"`, `"block"`,
    /// `"halt"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::Constrain => "constrain",
            Verdict::RequireApproval => "require_approval",
            Verdict::Block => "block",
            Verdict::Halt => "halt",
        }
    }

    /// `true` for BLOCK and HALT: the operation must not proceed.
    pub const fn stops(self) -> bool {
        matches!(self, Verdict::Block | Verdict::Halt)
    }

    /// Parses a verdict string, accepting the legacy v1.0 spellings case-insensitively:
    /// `continue` → ALLOW, `stop` → HALT, `require-approval` / `request_approval` /
    /// `request-approval` → REQUIRE_APPROVAL.
    pub fn parse(s: &str) -> Result<Verdict, UnknownVerdict> {
        let normalized = s.trim().to_ascii_lowercase().replace('-', "_");
        match normalized.as_str() {
            "allow" | "continue" => Ok(Verdict::Allow),
            "constrain" => Ok(Verdict::Constrain),
            "require_approval" | "request_approval" => Ok(Verdict::RequireApproval),
            "block" => Ok(Verdict::Block),
            "halt" | "stop" => Ok(Verdict::Halt),
            _ => Err(UnknownVerdict(s.to_owned())),
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Verdict {
    type Err = UnknownVerdict;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Verdict::parse(s)
    }
}

impl Serialize for Verdict {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Verdict {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Verdict::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_and_legacy_spellings() {
        let cases = [
            ("allow", Verdict::Allow),
            ("ALLOW", Verdict::Allow),
            ("continue", Verdict::Allow),
            ("Constrain", Verdict::Constrain),
            ("require_approval", Verdict::RequireApproval),
            ("require-approval", Verdict::RequireApproval),
            ("REQUEST_APPROVAL", Verdict::RequireApproval),
            ("request-approval", Verdict::RequireApproval),
            ("Block", Verdict::Block),
            ("halt", Verdict::Halt),
            ("STOP", Verdict::Halt),
            (" stop ", Verdict::Halt),
        ];
        for (s, v) in cases {
            assert_eq!(Verdict::parse(s), Ok(v), "{s}");
        }
    }

    #[test]
    fn unknown_spellings_are_errors_not_allow() {
        for s in ["blocked", "", "pending", "allowed", "yes"] {
            assert_eq!(Verdict::parse(s), Err(UnknownVerdict(s.to_owned())));
        }
    }

    #[test]
    fn tiers_are_ordered_by_severity() {
        assert!(Verdict::Allow < Verdict::Constrain);
        assert!(Verdict::Constrain < Verdict::RequireApproval);
        assert!(Verdict::RequireApproval < Verdict::Block);
        assert!(Verdict::Block < Verdict::Halt);
        assert!(
            Verdict::Halt.stops() && Verdict::Block.stops() && !Verdict::RequireApproval.stops()
        );
    }

    #[test]
    fn serde_round_trip_uses_canonical_spelling() {
        let v: Verdict = serde_json::from_str("\"require-approval\"").unwrap();
        assert_eq!(serde_json::to_string(&v).unwrap(), "\"require_approval\"");
        assert!(serde_json::from_str::<Verdict>("\"nope\"").is_err());
    }
}
