//! Which names carry secrets, and masking their values before anything reaches Core.
//!
//! Credentials travel under many names: `Authorization`, `X-Auth-Key`,
//! `Ocp-Apim-Subscription-Key`, `X-Goog-IAP-JWT-Assertion`, `?api_key=`, `client_secret`,
//! `X-Amz-Signature`, … A list of exact names always misses the next one, so a name is
//! sensitive by rule: when it contains one of [`SENSITIVE_PARTS`], when one of its words (split
//! at punctuation and camel case) is one of [`SENSITIVE_WORDS`], when the whole name is one of
//! [`SENSITIVE_EXACT`], or when the user listed it in `redact_keys` — all case-insensitive.
//! Over-masking a harmless value costs a little telemetry; under-masking a secret costs the
//! user's trust. (Words rather than substrings for the short ones, so that `author`,
//! `keyboard` or `status_code` stay readable.)

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::Value;

/// The value that replaces a masked one.
pub const REDACTED: &str = "[REDACTED]";

/// A name containing any of these (case-insensitive) is sensitive.
pub const SENSITIVE_PARTS: [&str; 12] = [
    "token",
    "secret",
    "password",
    "passwd",
    "credential",
    "signature",
    "cookie",
    "session",
    "jwt",
    "assertion",
    "apikey",
    "bearer",
];

/// A name with one of these as a word (`X-Auth-Key`, `accessKey`, `x-goog-sig`) is sensitive.
pub const SENSITIVE_WORDS: [&str; 6] = [
    "auth",
    "authorization",
    "authentication",
    "authenticate",
    "key",
    "sig",
];

/// Short names that are sensitive when they are the whole name (`?code=`, `?pin=`).
pub const SENSITIVE_EXACT: [&str; 7] = ["code", "pwd", "pass", "otp", "pin", "nonce", "ssn"];

/// The words of a name, lower case: split at anything not alphanumeric and at camel case
/// (`XAuthKey` → `x`, `auth`, `key`).
fn words(name: &str) -> impl Iterator<Item = String> + '_ {
    let chars: Vec<char> = name.chars().collect();
    let mut out = Vec::new();
    let mut current = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if !c.is_alphanumeric() {
            if !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
            continue;
        }
        let prev = i.checked_sub(1).map(|p| chars[p]);
        let next = chars.get(i + 1).copied();
        let boundary = c.is_uppercase()
            && prev.is_some_and(|p| {
                p.is_lowercase()
                    || p.is_ascii_digit()
                    || (p.is_uppercase() && next.is_some_and(char::is_lowercase))
            });
        if boundary && !current.is_empty() {
            out.push(std::mem::take(&mut current));
        }
        current.extend(c.to_lowercase());
    }
    if !current.is_empty() {
        out.push(current);
    }
    out.into_iter()
}

/// Common HTTP header names (lower case, as `http` spells them), each with the built-in rule's
/// verdict on it, computed once.
static COMMON_NAMES: std::sync::LazyLock<std::collections::HashMap<&'static str, bool>> =
    std::sync::LazyLock::new(|| {
        let builtin = SensitiveNames::default();
        COMMON_HEADER_NAMES
            .into_iter()
            .map(|n| (n, builtin.judge(n)))
            .collect()
    });

const COMMON_HEADER_NAMES: [&str; 40] = [
    "accept",
    "accept-encoding",
    "accept-language",
    "accept-ranges",
    "access-control-allow-origin",
    "age",
    "authorization",
    "cache-control",
    "connection",
    "content-disposition",
    "content-encoding",
    "content-language",
    "content-length",
    "content-type",
    "cookie",
    "date",
    "etag",
    "expires",
    "host",
    "if-modified-since",
    "if-none-match",
    "keep-alive",
    "last-modified",
    "location",
    "origin",
    "pragma",
    "proxy-authorization",
    "range",
    "referer",
    "server",
    "set-cookie",
    "strict-transport-security",
    "transfer-encoding",
    "user-agent",
    "vary",
    "via",
    "www-authenticate",
    "x-content-type-options",
    "x-frame-options",
    "x-request-id",
];

/// The rule deciding which names are sensitive: the built-in parts and exact names, plus the
/// user's `redact_keys`. Cheap to clone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SensitiveNames {
    extra: Arc<HashSet<String>>,
}

impl SensitiveNames {
    /// The built-in rule extended with `keys` (matched exactly, case-insensitive).
    pub fn with_keys(keys: impl IntoIterator<Item = impl Into<String>>) -> Self {
        SensitiveNames {
            extra: Arc::new(
                keys.into_iter()
                    .map(|k| k.into().trim().to_lowercase())
                    .filter(|k| !k.is_empty())
                    .collect(),
            ),
        }
    }

    /// The user's extra names (lower case).
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.extra.iter().map(String::as_str)
    }

    /// Whether `name`'s value must not reach Core.
    pub fn is_sensitive(&self, name: &str) -> bool {
        // The headers on nearly every HTTP exchange are judged once, not per request.
        if let Some(&builtin) = COMMON_NAMES.get(name) {
            return builtin || (!self.extra.is_empty() && self.extra.contains(name));
        }
        self.judge(name)
    }

    /// [`SensitiveNames::is_sensitive`] without the table of common names.
    fn judge(&self, name: &str) -> bool {
        let lower = name.trim().to_lowercase();
        SENSITIVE_PARTS.iter().any(|p| lower.contains(p))
            || SENSITIVE_EXACT.contains(&lower.as_str())
            || self.extra.contains(&lower)
            || words(name).any(|w| SENSITIVE_WORDS.contains(&w.as_str()))
    }

    /// Whether `name` is one of the user's `redact_keys` (exactly, case-insensitive): those are
    /// masked anywhere in every body sent to Core.
    pub fn is_listed(&self, name: &str) -> bool {
        !self.extra.is_empty() && self.extra.contains(&name.trim().to_lowercase())
    }

    /// Masks, anywhere in `value`, the value of every object key `matches` accepts. Returns
    /// whether anything changed.
    pub fn mask_json(value: &mut Value, matches: &dyn Fn(&str) -> bool) -> bool {
        match value {
            Value::Object(map) => {
                let mut changed = false;
                for (key, child) in map.iter_mut() {
                    if matches(key) {
                        if *child != Value::String(REDACTED.to_owned()) {
                            *child = Value::String(REDACTED.to_owned());
                            changed = true;
                        }
                    } else {
                        changed |= Self::mask_json(child, matches);
                    }
                }
                changed
            }
            Value::Array(items) => {
                let mut changed = false;
                for item in items {
                    changed |= Self::mask_json(item, matches);
                }
                changed
            }
            _ => false,
        }
    }
}

/// Replaces URL userinfo (a URL cannot carry `[` there unescaped).
#[cfg(any(
    feature = "http",
    feature = "process",
    feature = "lapin",
    feature = "async-nats",
    feature = "rumqttc"
))]
const REDACTED_USERINFO: &str = "REDACTED";

/// `a=1&b=2` with the value of every sensitive name replaced; `None` when nothing was.
/// Names are compared decoded (`api%5Fkey` is `api_key`); the rest of the text is kept as is.
#[cfg(any(
    feature = "http",
    feature = "process",
    feature = "lapin",
    feature = "async-nats",
    feature = "rumqttc"
))]
pub(crate) fn mask_pairs(text: &str, names: &SensitiveNames) -> Option<String> {
    let mut changed = false;
    let pieces: Vec<String> = text
        .split('&')
        .map(|piece| {
            let (raw_name, value) = match piece.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (piece, None),
            };
            let name: String = url::form_urlencoded::parse(raw_name.as_bytes())
                .map(|(k, _)| k.into_owned())
                .next()
                .unwrap_or_default();
            match value {
                Some(v) if names.is_sensitive(&name) && v != REDACTED => {
                    changed = true;
                    format!("{raw_name}={REDACTED}")
                }
                _ => piece.to_owned(),
            }
        })
        .collect();
    changed.then(|| pieces.join("&"))
}

/// The URL as reported to Core: userinfo replaced, the fragment (never sent to a server)
/// dropped, sensitive query values masked.
#[cfg(any(
    feature = "http",
    feature = "process",
    feature = "lapin",
    feature = "async-nats",
    feature = "rumqttc"
))]
pub(crate) fn mask_url(url: &url::Url, names: &SensitiveNames) -> String {
    let needs_work = !url.username().is_empty()
        || url.password().is_some()
        || url.fragment().is_some()
        || url.query().is_some();
    if !needs_work {
        return url.as_str().to_owned();
    }
    let mut out = url.clone();
    out.set_fragment(None);
    if !out.username().is_empty() {
        let _ = out.set_username(REDACTED_USERINFO);
    }
    if out.password().is_some() {
        let _ = out.set_password(Some(REDACTED_USERINFO));
    }
    if let Some(masked) = url.query().and_then(|q| mask_pairs(q, names)) {
        out.set_query(Some(&masked));
    }
    out.as_str().to_owned()
}

#[cfg(any(
    feature = "mcp",
    feature = "lapin",
    feature = "async-nats",
    feature = "rumqttc"
))]
/// Masks the value of every sensitive name anywhere in `value` — also inside strings that hold
/// JSON, as tool results and message payloads often do (`{"text": "{\"password\": …}"}`).
pub(crate) fn mask_nested_json(value: &mut Value, names: &SensitiveNames) {
    mask_nested(value, names, 0);
}

/// How deep JSON inside strings is followed (a string holding JSON holding a string …).
#[cfg(any(
    feature = "mcp",
    feature = "lapin",
    feature = "async-nats",
    feature = "rumqttc"
))]
const MAX_NESTING: usize = 8;

#[cfg(any(
    feature = "mcp",
    feature = "lapin",
    feature = "async-nats",
    feature = "rumqttc"
))]
fn mask_nested(value: &mut Value, names: &SensitiveNames, depth: usize) {
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                if names.is_sensitive(key) {
                    *child = Value::String(REDACTED.to_owned());
                } else {
                    mask_nested(child, names, depth);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| mask_nested(v, names, depth)),
        Value::String(text) if depth < MAX_NESTING => {
            // An object, an array, or a string encoded once more.
            if !text.trim_start().starts_with(['{', '[', '"']) {
                return;
            }
            if let Ok(mut inner) = serde_json::from_str::<Value>(text) {
                mask_nested(&mut inner, names, depth + 1);
                *text = inner.to_string();
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::strategy::Strategy;
    use serde_json::json;

    #[test]
    fn names_by_rule() {
        let n = SensitiveNames::default();
        for name in [
            "Authorization",
            "Proxy-Authorization",
            "X-Auth-Key",
            "X-Authorization",
            "Authentication",
            "Ocp-Apim-Subscription-Key",
            "X-Functions-Key",
            "X-Access-Key",
            "DD-APPLICATION-KEY",
            "X-Goog-IAP-JWT-Assertion",
            "Cookie",
            "Set-Cookie",
            "x-session-id",
            "api_key",
            "access_token",
            "client_secret",
            "X-Amz-Signature",
            "X-Amz-Credential",
            "X-Amz-Security-Token",
            "sig",
            "code",
            "password",
            "accessKey",
            "XAuthKey",
            "x-goog-sig",
            "privateKey",
        ] {
            assert!(n.is_sensitive(name), "{name}");
        }
        for name in [
            "content-type",
            "accept",
            "user-agent",
            "x-request-id",
            "q",
            "page",
            "author",
            "keyboard",
            "status_code",
            "keep-alive",
            "monkey",
        ] {
            assert!(!n.is_sensitive(name), "{name}");
        }
        let n = SensitiveNames::with_keys(["X-Tenant", " ssn_last4 "]);
        assert!(n.is_sensitive("x-tenant") && n.is_listed("X-TENANT"));
        assert!(n.is_listed("ssn_last4"));
        assert!(!n.is_listed("authorization"), "the rule is not the list");
    }

    #[test]
    fn common_names_are_judged_as_any_other() {
        let plain = SensitiveNames::default();
        let listed = SensitiveNames::with_keys(["content-type", "X-Tenant"]);
        for name in COMMON_HEADER_NAMES {
            assert_eq!(plain.is_sensitive(name), plain.judge(name), "{name}");
            assert_eq!(listed.is_sensitive(name), listed.judge(name), "{name}");
        }
        assert!(plain.is_sensitive("authorization") && plain.is_sensitive("set-cookie"));
        assert!(!plain.is_sensitive("content-type") && listed.is_sensitive("content-type"));
    }

    proptest::proptest! {
        /// The table of common names changes no verdict: for any name, common or not, in any
        /// case and with any redact_keys, the answer is the rule's own.
        #[test]
        fn the_common_names_table_changes_no_verdict(
            name in proptest::prop_oneof![
                proptest::sample::select(COMMON_HEADER_NAMES.to_vec()).prop_map(str::to_owned),
                "[A-Za-z_ -]{0,16}",
            ],
            keys in proptest::collection::vec(proptest::prop_oneof![
                proptest::sample::select(COMMON_HEADER_NAMES.to_vec()).prop_map(str::to_owned),
                "[a-z-]{1,8}",
            ], 0..3),
        ) {
            let names = SensitiveNames::with_keys(keys);
            proptest::prop_assert_eq!(names.is_sensitive(&name), names.judge(&name));
        }
    }

    #[test]
    fn json_masking_reaches_nested_keys() {
        let n = SensitiveNames::default();
        let mut v = json!({
            "user": "u1",
            "credentials": {"user": "x"},
            "items": [{"access_token": "t1"}, {"name": "ok"}],
            "nested": {"client_secret": {"deep": 1}}
        });
        assert!(SensitiveNames::mask_json(&mut v, &|k| n.is_sensitive(k)));
        assert_eq!(
            v,
            json!({
                "user": "u1",
                "credentials": REDACTED,
                "items": [{"access_token": REDACTED}, {"name": "ok"}],
                "nested": {"client_secret": REDACTED}
            })
        );
        assert!(!SensitiveNames::mask_json(&mut v, &|k| n.is_sensitive(k)));
    }
}
