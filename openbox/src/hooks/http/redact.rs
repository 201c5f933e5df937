//! What of an HTTP exchange may reach Core: headers with sensitive values masked; form and
//! JSON bodies with sensitive fields masked (URLs are masked by `secrets::mask_url`, shared with
//! the command hook). Names are judged by [`SensitiveNames`] (the built-in rule plus `redact_keys`) and
//! the middleware's own header lists.

use std::collections::{BTreeMap, HashSet};

use reqwest::header::HeaderMap as ReqwestHeaders;
use serde_json::Value;

use crate::secrets::{REDACTED, SensitiveNames};
use crate::wire::HeaderMap;

/// The middleware's header choices on top of the shared rule.
#[derive(Debug, Clone, Default)]
pub(crate) struct HeaderRule {
    /// Mask names that match the built-in rule.
    pub defaults: bool,
    /// Always mask these (lower case).
    pub redact: HashSet<String>,
    /// Never mask these (lower case), whatever the rule says.
    pub keep: HashSet<String>,
}

impl HeaderRule {
    pub(crate) fn is_redacted(&self, name: &str, names: &SensitiveNames) -> bool {
        // Header names from `http` are lower case already: no copy for them.
        let lower: std::borrow::Cow<'_, str> = if name.bytes().any(|b| b.is_ascii_uppercase()) {
            name.to_ascii_lowercase().into()
        } else {
            name.into()
        };
        let lower = lower.as_ref();
        if !self.keep.is_empty() && self.keep.contains(lower) {
            return false;
        }
        (!self.redact.is_empty() && self.redact.contains(lower))
            || names.is_listed(lower)
            || (self.defaults && names.is_sensitive(lower))
    }

    /// The headers as sent to Core: repeated names joined with `, `, sensitive values masked.
    pub(crate) fn headers(&self, headers: &ReqwestHeaders, names: &SensitiveNames) -> HeaderMap {
        let mut out = BTreeMap::new();
        for (name, value) in headers {
            let value = if self.is_redacted(name.as_str(), names) {
                REDACTED.to_owned()
            } else {
                String::from_utf8_lossy(value.as_bytes()).into_owned()
            };
            out.entry(name.as_str().to_owned())
                .and_modify(|v: &mut String| {
                    v.push_str(", ");
                    v.push_str(&value);
                })
                .or_insert(value);
        }
        out
    }
}

/// How a body is treated, by its `Content-Type` (without parameters, lower case).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyKind {
    /// `application/x-www-form-urlencoded`: `name=value` pairs.
    Form,
    /// JSON (`application/json`, `…+json`), or no type and a body that parses as JSON.
    Json,
    /// `multipart/*`: named parts, often files: not captured at all.
    Multipart,
    /// Anything else: sent as text.
    Text,
}

impl BodyKind {
    pub(crate) fn of(headers: &ReqwestHeaders) -> Self {
        let Some(ct) = headers.get(reqwest::header::CONTENT_TYPE) else {
            return BodyKind::Json;
        };
        let ct = String::from_utf8_lossy(ct.as_bytes())
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        if ct == "application/x-www-form-urlencoded" {
            BodyKind::Form
        } else if ct.starts_with("multipart/") {
            BodyKind::Multipart
        } else if ct == "application/json" || ct.ends_with("+json") || ct == "text/json" {
            BodyKind::Json
        } else {
            BodyKind::Text
        }
    }
}

/// The body text as it may reach Core (before truncation), or `None` when it is not sent.
pub(crate) fn body(text: &str, kind: BodyKind, names: &SensitiveNames) -> Option<String> {
    match kind {
        BodyKind::Multipart => None,
        BodyKind::Form => {
            Some(crate::secrets::mask_pairs(text, names).unwrap_or_else(|| text.to_owned()))
        }
        BodyKind::Json => match serde_json::from_str::<Value>(text) {
            Ok(mut value) => {
                if SensitiveNames::mask_json(&mut value, &|k| names.is_sensitive(k)) {
                    Some(serde_json::to_string(&value).unwrap_or_default())
                } else {
                    Some(text.to_owned())
                }
            }
            Err(_) => Some(text.to_owned()),
        },
        BodyKind::Text => Some(text.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn n() -> SensitiveNames {
        SensitiveNames::default()
    }

    #[test]
    fn urls_lose_userinfo_fragment_and_sensitive_query_values() {
        let u = |s: &str| crate::secrets::mask_url(&reqwest::Url::parse(s).unwrap(), &n());
        assert_eq!(u("https://x.test/a?q=1"), "https://x.test/a?q=1");
        assert_eq!(
            u("https://user:pw@x.test/a?api_key=K1&q=hello%20w&token=T#frag"),
            "https://REDACTED:REDACTED@x.test/a?api_key=[REDACTED]&q=hello%20w&token=[REDACTED]"
        );
        assert_eq!(
            u(
                "https://s3.test/o?X-Amz-Signature=abc&X-Amz-Credential=c&X-Amz-Security-Token=t&sig=s&code=c2"
            ),
            "https://s3.test/o?X-Amz-Signature=[REDACTED]&X-Amz-Credential=[REDACTED]&X-Amz-Security-Token=[REDACTED]&sig=[REDACTED]&code=[REDACTED]"
        );
        assert_eq!(
            u("https://x.test/a?api%5Fkey=K"),
            "https://x.test/a?api%5Fkey=[REDACTED]"
        );
        assert_eq!(u("https://x.test/#access_token=T"), "https://x.test/");
    }

    #[test]
    fn bodies() {
        assert_eq!(
            body(
                "client_id=c&client_secret=s3&grant_type=x",
                BodyKind::Form,
                &n()
            )
            .unwrap(),
            "client_id=c&client_secret=[REDACTED]&grant_type=x"
        );
        assert_eq!(
            body(
                r#"{"user":"u","password":"p","a":[{"access_token":"t"}]}"#,
                BodyKind::Json,
                &n()
            )
            .unwrap(),
            r#"{"a":[{"access_token":"[REDACTED]"}],"password":"[REDACTED]","user":"u"}"#
        );
        assert_eq!(
            body(r#"{"amount":12}"#, BodyKind::Json, &n()).unwrap(),
            r#"{"amount":12}"#
        );
        assert_eq!(body("--b\r\nsecret", BodyKind::Multipart, &n()), None);
        assert_eq!(body("not json", BodyKind::Json, &n()).unwrap(), "not json");
    }

    #[test]
    fn header_rule() {
        let mut h = ReqwestHeaders::new();
        h.append("accept", "a".parse().unwrap());
        h.append("accept", "b".parse().unwrap());
        h.insert("authorization", "Bearer secret".parse().unwrap());
        h.insert("x-functions-key", "fk".parse().unwrap());
        h.insert("x-tenant", "acme".parse().unwrap());
        let rule = HeaderRule {
            defaults: true,
            ..HeaderRule::default()
        };
        let out = rule.headers(&h, &SensitiveNames::with_keys(["X-Tenant"]));
        assert_eq!(out["accept"], "a, b");
        assert_eq!(out["authorization"], REDACTED);
        assert_eq!(out["x-functions-key"], REDACTED);
        assert_eq!(out["x-tenant"], REDACTED);
    }

    fn sensitive_name() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("Authorization".to_owned()),
            Just("X-Amz-Signature".to_owned()),
            Just("client_secret".to_owned()),
            Just("sig".to_owned()),
            Just("code".to_owned()),
            "[a-zA-Z]{0,5}[-_]?(Token|SECRET|password|Credential|session|Cookie|jwt|Assertion|apikey)[-_]?[a-zA-Z]{0,5}",
            "[a-z]{0,5}[-_](key|Key|KEY|auth|Auth|sig)([-_][a-z]{1,5})?",
        ]
    }

    proptest! {
        /// Whatever the URL around it, the value of a sensitive query parameter or userinfo
        /// never appears in the reported URL.
        #[test]
        fn sensitive_url_values_never_reach_core(
            name in sensitive_name(),
            secret in "SECRET[A-Za-z0-9]{6,12}",
            other_name in "[a-z]{1,6}",
            other_value in "[a-z0-9]{0,6}",
            host in "[a-z]{1,8}\\.(test|example)",
            path in "(/[a-z0-9]{0,6}){0,3}",
            userinfo in any::<bool>(),
            fragment in any::<bool>(),
        ) {
            let user = if userinfo { format!("{secret}u:{secret}p@") } else { String::new() };
            let frag = if fragment { format!("#t={secret}f") } else { String::new() };
            let encoded_name: String = url::form_urlencoded::byte_serialize(name.as_bytes()).collect();
            let text = format!("https://{user}{host}{path}?{other_name}={other_value}&{encoded_name}={secret}{frag}");
            let parsed = reqwest::Url::parse(&text).unwrap();
            let shown = crate::secrets::mask_url(&parsed, &n());
            prop_assert!(!shown.contains(&secret), "{} -> {}", text, shown);
            prop_assert!(shown.contains(&host));
        }

        /// Whatever the header names, a value under a sensitive name never appears in the
        /// reported headers, and other values are kept.
        #[test]
        fn sensitive_header_values_never_reach_core(
            name in sensitive_name(),
            secret in "SECRET[A-Za-z0-9]{6,12}",
            plain in "x-[a-z]{1,8}",
        ) {
            let rule = HeaderRule { defaults: true, ..HeaderRule::default() };
            let mut h = ReqwestHeaders::new();
            let Ok(header) = reqwest::header::HeaderName::from_bytes(name.as_bytes()) else {
                return Ok(());
            };
            h.insert(header, secret.parse().unwrap());
            h.insert(reqwest::header::HeaderName::from_bytes(plain.as_bytes()).unwrap(), "visible".parse().unwrap());
            let out = rule.headers(&h, &n());
            let text = serde_json::to_string(&out).unwrap();
            prop_assert!(!text.contains(&secret), "{}", text);
            if !n().is_sensitive(&plain) {
                prop_assert_eq!(out[&plain].as_str(), "visible");
            }
        }

        /// Form and JSON bodies: a sensitive field's value never appears.
        #[test]
        fn sensitive_body_fields_never_reach_core(
            name in sensitive_name(),
            secret in "SECRET[A-Za-z0-9]{6,12}",
            nested in any::<bool>(),
        ) {
            let encoded: String = url::form_urlencoded::byte_serialize(name.as_bytes()).collect();
            let form = format!("a=1&{encoded}={secret}&b=2");
            let shown = body(&form, BodyKind::Form, &n()).unwrap();
            prop_assert!(!shown.contains(&secret), "{}", shown);
            let inner = serde_json::json!({ name.clone(): secret.clone() });
            let json = if nested { serde_json::json!({"outer": [inner]}) } else { inner };
            let shown = body(&json.to_string(), BodyKind::Json, &n()).unwrap();
            prop_assert!(!shown.contains(&secret), "{}", shown);
        }
    }
}
