//! The rules file: which verdict the dev Core answers to which request.
//!
//! The first rule whose `match` keys all equal the request's fields wins; when none matches,
//! the answer is `allow`. Keys are dotted paths into the request body (`spans.0.hook_type`
//! reaches the hook type of a hook evaluation; `spans.0.attributes.shell.command` the span
//! attribute named `shell.command`), and `absent` lists paths that must not exist
//! (`hook_trigger` is absent on lifecycle events). TOML and JSON files are accepted; in JSON a
//! `null` match value also matches an absent key, like the reference's stand-in.
//!
//! ```toml
//! [defaults]
//! approval_expires_in = "10m"       # pending approvals expire (optional)
//!
//! [[rules]]
//! name = "freeze payments"
//! verdict = "block"
//! reason = "payments are frozen"
//! match = { event_type = "ActivityStarted", activity_type = "charge" }
//!
//! [[rules]]
//! name = "redact prompts"
//! verdict = "allow"
//! match = { event_type = "ActivityStarted", activity_type = "summarize" }
//! guardrails_result = { input_type = "activity_input", redacted_input = [{ prompt = "[REDACTED]" }] }
//!
//! [[rules]]
//! name = "no http from hooks"
//! verdict = "block"
//! match = { "spans.0.hook_type" = "http_request", "spans.0.stage" = "started" }
//!
//! [[rules]]
//! name = "drafts are rewritten"      # BLOCK with a patch: the run restarts with new_input
//! verdict = "block"
//! match = { event_type = "ActivityStarted", activity_type = "draft" }
//! response = { patch = { new_input = { text = "rewritten" } } }
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::duration::parse_duration;

/// A rules file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    /// The file cannot be read.
    #[error("cannot read rules file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file does not parse.
    #[error("rules file {origin} does not parse: {reason}")]
    Parse {
        /// The file, or `<inline>`.
        origin: String,
        /// The parser's message, with line and column when known.
        reason: String,
    },
    /// A rule is invalid.
    #[error("rules file {origin}, rule {index} ({name}): {reason}")]
    Invalid {
        /// The file, or `<inline>`.
        origin: String,
        /// 1-based position of the rule.
        index: usize,
        /// Its name, or `unnamed`.
        name: String,
        /// What is wrong.
        reason: String,
    },
}

/// Verdict spellings the dev Core accepts in a rule (current and legacy, any case).
const VERDICTS: [&str; 9] = [
    "allow",
    "constrain",
    "require_approval",
    "block",
    "halt",
    "continue",
    "stop",
    "request_approval",
    "require-approval",
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    #[serde(default)]
    defaults: Defaults,
    #[serde(default)]
    rules: Vec<RawRule>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Defaults {
    approval_expires_in: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: Option<String>,
    #[serde(default, rename = "match")]
    matches: Map<String, Value>,
    #[serde(default)]
    absent: Vec<String>,
    verdict: String,
    reason: Option<String>,
    policy_id: Option<String>,
    risk_score: Option<f64>,
    guardrails_result: Option<Value>,
    constraints: Option<Value>,
    approval_expires_in: Option<String>,
    /// Raw keys merged into the answer last (e.g. a deliberately unknown verdict for tests).
    #[serde(default)]
    response: Map<String, Value>,
}

/// One rule: a condition and the answer it produces.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Name shown in the event log and on the web page.
    pub name: String,
    conditions: Vec<(Vec<String>, Value)>,
    absent: Vec<Vec<String>>,
    /// The canonical verdict (`require_approval` opens an approval request).
    pub verdict: String,
    response: Map<String, Value>,
    /// How long an approval request opened by this rule stays valid.
    pub approval_expires_in: Option<Duration>,
}

impl Rule {
    /// Whether this rule applies to `request`.
    pub fn matches(&self, request: &Value) -> bool {
        self.absent
            .iter()
            .all(|path| lookup(request, path).is_none())
            && self
                .conditions
                .iter()
                .all(|(path, want)| match lookup(request, path) {
                    Some(got) => json_eq(got, want),
                    None => want.is_null(),
                })
    }

    /// The JSON answer of this rule (without approval fields).
    pub fn response(&self) -> Map<String, Value> {
        self.response.clone()
    }
}

/// A parsed rules file.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    rules: Vec<Rule>,
    /// Default expiry of approval requests.
    pub approval_expires_in: Option<Duration>,
    source: String,
}

impl RuleSet {
    /// No rules: everything is allowed.
    pub fn allow_all() -> Self {
        RuleSet::default()
    }

    /// Reads a `.toml` or `.json` file (by extension; anything else is tried as TOML).
    pub fn load(path: &Path) -> Result<Self, RulesError> {
        let text = std::fs::read_to_string(path).map_err(|source| RulesError::Read {
            path: path.to_owned(),
            source,
        })?;
        let origin = path.display().to_string();
        if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"))
        {
            Self::from_json_str(&text, &origin)
        } else {
            Self::from_toml_str(&text, &origin)
        }
    }

    /// Parses TOML rules; `origin` names the source in errors.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Self, RulesError> {
        let file: RulesFile = toml::from_str(text).map_err(|e| RulesError::Parse {
            origin: origin.to_owned(),
            reason: e.to_string(),
        })?;
        Self::from_file(file, text, origin)
    }

    /// Parses JSON rules; `origin` names the source in errors.
    pub fn from_json_str(text: &str, origin: &str) -> Result<Self, RulesError> {
        let file: RulesFile = serde_json::from_str(text).map_err(|e| RulesError::Parse {
            origin: origin.to_owned(),
            reason: e.to_string(),
        })?;
        Self::from_file(file, text, origin)
    }

    fn from_file(file: RulesFile, text: &str, origin: &str) -> Result<Self, RulesError> {
        let parse_expiry = |raw: &Option<String>| -> Result<Option<Duration>, String> {
            raw.as_deref().map(parse_duration).transpose()
        };
        let approval_expires_in =
            parse_expiry(&file.defaults.approval_expires_in).map_err(|reason| {
                RulesError::Invalid {
                    origin: origin.to_owned(),
                    index: 0,
                    name: "defaults".into(),
                    reason,
                }
            })?;
        let mut rules = Vec::with_capacity(file.rules.len());
        for (i, raw) in file.rules.into_iter().enumerate() {
            let name = raw
                .name
                .clone()
                .unwrap_or_else(|| format!("rule {}", i + 1));
            let invalid = |reason: String| RulesError::Invalid {
                origin: origin.to_owned(),
                index: i + 1,
                name: name.clone(),
                reason,
            };
            let normalized = raw.verdict.trim().to_ascii_lowercase().replace('-', "_");
            if !VERDICTS.iter().any(|v| v.replace('-', "_") == normalized) {
                return Err(invalid(format!(
                    "unknown verdict {:?} (expected allow, constrain, require_approval, block or halt; \
                     put deliberate nonsense under `response`)",
                    raw.verdict
                )));
            }
            let verdict = canonical(&normalized).to_owned();
            let approval_expires_in = parse_expiry(&raw.approval_expires_in).map_err(invalid)?;
            let mut response = Map::new();
            response.insert("verdict".into(), Value::String(verdict.clone()));
            let optional = [
                ("reason", raw.reason.map(Value::String)),
                ("policy_id", raw.policy_id.map(Value::String)),
                (
                    "risk_score",
                    raw.risk_score
                        .and_then(serde_json::Number::from_f64)
                        .map(Value::Number),
                ),
                ("guardrails_result", raw.guardrails_result),
                ("constraints", raw.constraints),
            ];
            for (key, value) in optional {
                if let Some(v) = value {
                    response.insert(key.into(), v);
                }
            }
            response.extend(raw.response);
            let conditions = raw
                .matches
                .into_iter()
                .map(|(k, v)| (split_path(&k), v))
                .collect();
            rules.push(Rule {
                name,
                conditions,
                absent: raw.absent.iter().map(|p| split_path(p)).collect(),
                verdict,
                response,
                approval_expires_in,
            });
        }
        Ok(RuleSet {
            rules,
            approval_expires_in,
            source: text.to_owned(),
        })
    }

    /// The first rule matching `request`, if any.
    pub fn find(&self, request: &Value) -> Option<&Rule> {
        self.rules.iter().find(|r| r.matches(request))
    }

    /// The rules, in order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The file text the rules came from (empty for [`RuleSet::allow_all`]).
    pub fn source(&self) -> &str {
        &self.source
    }
}

fn canonical(normalized: &str) -> &'static str {
    match normalized {
        "allow" | "continue" => "allow",
        "constrain" => "constrain",
        "require_approval" | "request_approval" => "require_approval",
        "block" => "block",
        _ => "halt",
    }
}

fn split_path(path: &str) -> Vec<String> {
    path.split('.').map(str::to_owned).collect()
}

/// Follows a dotted path; numeric segments index arrays. A key that itself holds dots (the
/// span attribute `shell.command`) is reached by its segments joined: the first (shortest)
/// key that leads to a match wins.
pub fn lookup<'a>(value: &'a Value, path: &[String]) -> Option<&'a Value> {
    let Some(first) = path.first() else {
        return Some(value);
    };
    match value {
        Value::Object(map) => (1..=path.len()).find_map(|n| {
            let key = if n == 1 {
                std::borrow::Cow::Borrowed(first.as_str())
            } else {
                std::borrow::Cow::Owned(path[..n].join("."))
            };
            map.get(key.as_ref()).and_then(|v| lookup(v, &path[n..]))
        }),
        Value::Array(items) => first
            .parse::<usize>()
            .ok()
            .and_then(|i| items.get(i))
            .and_then(|v| lookup(v, &path[1..])),
        _ => None,
    }
}

/// JSON equality where `1` equals `1.0` (TOML and JSON disagree on integer-ness).
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(i), Some(j)) => i == j,
            _ => x.as_f64() == y.as_f64(),
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_eq(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const RULES: &str = r#"
[defaults]
approval_expires_in = "10m"

[[rules]]
name = "hooks"
verdict = "BLOCK"
reason = "no http"
match = { "spans.0.hook_type" = "http_request", "spans.0.stage" = "started" }

[[rules]]
name = "first attempt"
verdict = "require-approval"
approval_expires_in = "30s"
match = { event_type = "ActivityStarted", activity_type = "transfer", attempt = 1 }
absent = ["hook_trigger"]

[[rules]]
name = "redact"
verdict = "allow"
match = { event_type = "ActivityStarted", activity_type = "summarize" }
guardrails_result = { input_type = "activity_input", redacted_input = [{ prompt = "[REDACTED]" }] }

[[rules]]
name = "weird"
verdict = "allow"
match = { activity_type = "weird" }
response = { verdict = "maybe" }
"#;

    #[test]
    fn keys_holding_dots_are_reached() {
        let body = serde_json::json!({"spans": [{"attributes": {
            "shell.command": "rm -rf /", "shell": {"cwd": "/nested"}
        }}]});
        let path = |p: &str| split_path(p);
        assert_eq!(
            lookup(&body, &path("spans.0.attributes.shell.command")),
            Some(&Value::String("rm -rf /".into()))
        );
        assert_eq!(
            lookup(&body, &path("spans.0.attributes.shell.cwd")),
            Some(&Value::String("/nested".into()))
        );
        assert_eq!(lookup(&body, &path("spans.0.attributes.shell.user")), None);
        assert_eq!(lookup(&body, &path("spans.1")), None);
    }

    #[test]
    fn first_matching_rule_wins_with_dotted_paths_and_absent_keys() {
        let rules = RuleSet::from_toml_str(RULES, "test").unwrap();
        assert_eq!(rules.approval_expires_in, Some(Duration::from_secs(600)));
        let hook = json!({"event_type": "ActivityStarted", "activity_type": "transfer", "attempt": 1,
            "hook_trigger": true, "spans": [{"hook_type": "http_request", "stage": "started"}]});
        let r = rules.find(&hook).unwrap();
        assert_eq!(r.name, "hooks");
        assert_eq!(
            Value::Object(r.response()),
            json!({"verdict": "block", "reason": "no http"})
        );

        let completed_hook = json!({"event_type": "ActivityStarted", "activity_type": "transfer", "attempt": 1,
            "hook_trigger": true, "spans": [{"hook_type": "http_request", "stage": "completed"}]});
        assert!(
            rules.find(&completed_hook).is_none(),
            "hook_trigger present: not the lifecycle rule"
        );

        let started =
            json!({"event_type": "ActivityStarted", "activity_type": "transfer", "attempt": 1});
        let r = rules.find(&started).unwrap();
        assert_eq!(r.verdict, "require_approval");
        assert_eq!(r.approval_expires_in, Some(Duration::from_secs(30)));
        let second =
            json!({"event_type": "ActivityStarted", "activity_type": "transfer", "attempt": 2});
        assert!(rules.find(&second).is_none());

        let r = rules
            .find(&json!({"event_type": "ActivityStarted", "activity_type": "summarize"}))
            .unwrap();
        assert_eq!(
            r.response()["guardrails_result"]["redacted_input"][0]["prompt"],
            "[REDACTED]"
        );
        assert_eq!(
            rules
                .find(&json!({"activity_type": "weird"}))
                .unwrap()
                .response()["verdict"],
            "maybe"
        );
    }

    #[test]
    fn json_rules_and_null_matches_absent() {
        let rules = RuleSet::from_json_str(
            r#"{"rules": [{"verdict": "halt", "match": {"event_type": "WorkflowStarted", "hook_trigger": null}}]}"#,
            "json",
        )
        .unwrap();
        assert!(
            rules
                .find(&json!({"event_type": "WorkflowStarted"}))
                .is_some()
        );
        assert!(
            rules
                .find(&json!({"event_type": "WorkflowStarted", "hook_trigger": true}))
                .is_none()
        );
        assert!(
            rules
                .find(&json!({"event_type": "WorkflowStarted", "hook_trigger": null}))
                .is_some()
        );
    }

    #[test]
    fn numbers_compare_by_value() {
        assert!(json_eq(&json!(1), &json!(1.0)));
        assert!(!json_eq(&json!(1), &json!(2)));
        assert!(json_eq(&json!({"a": [1, 2.0]}), &json!({"a": [1.0, 2]})));
    }

    #[test]
    fn errors_name_the_rule_and_reason() {
        let e =
            RuleSet::from_toml_str("[[rules]]\nname = \"x\"\nverdict = \"blocked\"\n", "f.toml")
                .unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("rule 1 (x)") && text.contains("\"blocked\""),
            "{text}"
        );
        let e = RuleSet::from_toml_str("[[rules]]\nverdict = \"allow\"\nmtach = {}\n", "f.toml")
            .unwrap_err();
        assert!(e.to_string().contains("mtach"), "{e}");
        let e = RuleSet::from_toml_str("[[rules]\n", "f.toml").unwrap_err();
        assert!(matches!(e, RulesError::Parse { .. }));
        let e = RuleSet::from_toml_str(
            "[[rules]]\nverdict = \"allow\"\napproval_expires_in = \"soon\"\n",
            "f",
        )
        .unwrap_err();
        assert!(e.to_string().contains("soon"), "{e}");
        let e = RuleSet::load(Path::new("/nonexistent/rules.toml")).unwrap_err();
        assert!(matches!(e, RulesError::Read { .. }));
    }
}
