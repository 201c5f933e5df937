//! HTTP hooks: a [`reqwest_middleware`] middleware.
//!
//! ```no_run
//! use openbox::hooks::http::OpenBoxMiddleware;
//!
//! let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
//!     .with(OpenBoxMiddleware::default())
//!     .build();
//! // Inside a governed activity, every request of `client` is evaluated before it is sent
//! // and after its response; elsewhere the middleware does nothing.
//! # let _ = client;
//! ```
//!
//! `started` carries the method, URL, request headers and request body; `completed` adds the
//! status, response headers and the response body. Bodies are text (invalid UTF-8 replaced) cut
//! to 65 536 characters. A response body is read for text-like content types (`text/*`, JSON,
//! XML, JavaScript, form data, or none) with a `Content-Length` of at most 1 MiB; streamed and
//! larger responses are left untouched (`response_body: null`), so streaming keeps working.
//! Credentials in headers are redacted by default (`Authorization`, `Proxy-Authorization`,
//! `Cookie`, `Set-Cookie` and API-key-, token-, secret- or session-like names): the key is kept,
//! the value becomes `[REDACTED]`. Requests to Core itself are never governed.

use std::collections::{BTreeMap, HashSet};

use http::Extensions;
use reqwest::header::HeaderMap as ReqwestHeaders;
use reqwest::{Request, Response, ResponseBuilderExt};
use reqwest_middleware::{Middleware, Next};
use serde_json::{Map, Value};

use super::{HookCall, HookError, truncate_body};
use crate::governance::scope::ActivityScope;
use crate::wire::{HeaderMap, HookSpan, HttpRequestSpan, SpanKind};

/// Longest body text sent to Core, in characters (§7).
pub const MAX_BODY_CHARS: usize = 65_536;
/// Largest response body read for governance; larger ones are not captured.
pub const MAX_CAPTURED_RESPONSE_BYTES: u64 = 1 << 20;
/// The value that replaces a redacted header.
pub const REDACTED: &str = "[REDACTED]";

const SENSITIVE_NAMES: [&str; 4] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
];
const SENSITIVE_PARTS: [&str; 8] = [
    "api-key",
    "apikey",
    "api_key",
    "token",
    "secret",
    "session",
    "password",
    "signature",
];

/// The OpenBox middleware. Cheap to clone; configure with its builder-style methods.
#[derive(Debug, Clone)]
pub struct OpenBoxMiddleware {
    redact_defaults: bool,
    redact: HashSet<String>,
    keep: HashSet<String>,
    max_body_chars: usize,
    capture_bodies: bool,
    skip_prefixes: Vec<String>,
}

impl Default for OpenBoxMiddleware {
    fn default() -> Self {
        OpenBoxMiddleware {
            redact_defaults: true,
            redact: HashSet::new(),
            keep: HashSet::new(),
            max_body_chars: MAX_BODY_CHARS,
            capture_bodies: true,
            skip_prefixes: Vec::new(),
        }
    }
}

impl OpenBoxMiddleware {
    /// Also redact this header (case-insensitive).
    pub fn redact_header(mut self, name: &str) -> Self {
        self.redact.insert(name.to_ascii_lowercase());
        self
    }

    /// Send this header's value although it looks sensitive.
    pub fn keep_header(mut self, name: &str) -> Self {
        self.keep.insert(name.to_ascii_lowercase());
        self
    }

    /// Redact only the headers named with [`OpenBoxMiddleware::redact_header`].
    pub fn no_default_redaction(mut self) -> Self {
        self.redact_defaults = false;
        self
    }

    /// Longest body text sent to Core (default 65 536 characters).
    pub fn max_body_chars(mut self, n: usize) -> Self {
        self.max_body_chars = n;
        self
    }

    /// Send request and response bodies (default `true`).
    pub fn capture_bodies(mut self, on: bool) -> Self {
        self.capture_bodies = on;
        self
    }

    /// Do not govern requests whose URL starts with `prefix` (Core's own URL is always skipped).
    pub fn skip_url_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.skip_prefixes.push(prefix.into());
        self
    }

    /// Whether a header's value is replaced by [`REDACTED`].
    pub fn is_redacted(&self, name: &str) -> bool {
        let name = name.to_ascii_lowercase();
        if self.keep.contains(&name) {
            return false;
        }
        self.redact.contains(&name)
            || (self.redact_defaults
                && (SENSITIVE_NAMES.contains(&name.as_str())
                    || SENSITIVE_PARTS.iter().any(|p| name.contains(p))))
    }

    fn headers(&self, headers: &ReqwestHeaders) -> HeaderMap {
        let mut out = BTreeMap::new();
        for (name, value) in headers {
            let value = if self.is_redacted(name.as_str()) {
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

    fn body_text(&self, bytes: &[u8]) -> Option<String> {
        (self.capture_bodies && !bytes.is_empty())
            .then(|| truncate_body(&String::from_utf8_lossy(bytes), self.max_body_chars))
    }

    fn skipped(&self, url: &str, scope: &ActivityScope) -> bool {
        url.starts_with(scope.governor().client().config().url())
            || self.skip_prefixes.iter().any(|p| url.starts_with(p))
    }
}

fn text_like(headers: &ReqwestHeaders) -> bool {
    let Some(ct) = headers.get(reqwest::header::CONTENT_TYPE) else {
        return true;
    };
    let ct = String::from_utf8_lossy(ct.as_bytes())
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    ct.starts_with("text/")
        || [
            "application/json",
            "application/xml",
            "application/javascript",
            "application/x-www-form-urlencoded",
        ]
        .iter()
        .any(|t| ct.starts_with(t))
}

fn attributes(method: &str, url: &str, status: Option<u16>) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("http.method".into(), method.into());
    m.insert("http.url".into(), url.into());
    if let Some(s) = status {
        m.insert("http.status_code".into(), s.into());
    }
    m
}

fn blocked(e: HookError) -> reqwest_middleware::Error {
    reqwest_middleware::Error::Middleware(anyhow::Error::new(e))
}

#[async_trait::async_trait]
impl Middleware for OpenBoxMiddleware {
    async fn handle(
        &self,
        req: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        // Outside a governed activity: nothing to do.
        let Some(scope) = ActivityScope::current() else {
            return next.run(req, extensions).await;
        };
        let url = req.url().to_string();
        if self.skipped(&url, &scope) {
            return next.run(req, extensions).await;
        }
        let method = req.method().as_str().to_owned();
        let span = tracing::info_span!("HTTP request", otel.name = %method, otel.kind = "client", http.method = %method, http.url = %url);
        let Some(call) = HookCall::begin(method.clone(), SpanKind::Client, Some(&span)) else {
            return next.run(req, extensions).await;
        };
        let call = call.with_attributes(attributes(&method, &url, None));
        let mut detail = HttpRequestSpan {
            http_method: method.clone(),
            http_url: url.clone(),
            request_body: req
                .body()
                .and_then(|b| b.as_bytes())
                .and_then(|b| self.body_text(b)),
            request_headers: Some(self.headers(req.headers())),
            response_body: None,
            response_headers: None,
            http_status_code: None,
            error: None,
        };
        call.started(HookSpan::HttpRequest(detail.clone()))
            .await
            .map_err(blocked)?;

        let response =
            tracing::Instrument::instrument(next.run(req, extensions), span.clone()).await;
        let response = match response {
            Err(e) => {
                detail.error = Some(e.to_string());
                call.completed(HookSpan::HttpRequest(detail))
                    .await
                    .map_err(blocked)?;
                return Err(e);
            }
            Ok(r) => r,
        };
        let status = response.status().as_u16();
        detail.http_status_code = Some(status);
        detail.response_headers = Some(self.headers(response.headers()));
        if status >= 400 {
            detail.error = Some(format!("HTTP {status}"));
        }
        let capture = self.capture_bodies
            && text_like(response.headers())
            && response
                .content_length()
                .is_some_and(|n| n <= MAX_CAPTURED_RESPONSE_BYTES);
        let response = if capture {
            let (status_code, version, url, headers) = (
                response.status(),
                response.version(),
                response.url().clone(),
                response.headers().clone(),
            );
            let bytes = response.bytes().await?;
            detail.response_body = self.body_text(&bytes);
            let mut builder = http::Response::builder()
                .status(status_code)
                .version(version)
                .url(url);
            if let Some(h) = builder.headers_mut() {
                *h = headers;
            }
            builder
                .body(bytes)
                .map(Response::from)
                .map_err(|e| reqwest_middleware::Error::Middleware(e.into()))?
        } else {
            response
        };
        let call = call.with_attributes(attributes(&method, &detail.http_url, Some(status)));
        call.completed(HookSpan::HttpRequest(detail))
            .await
            .map_err(blocked)?;
        Ok(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sensitive_headers_are_redacted_by_default() {
        let m = OpenBoxMiddleware::default();
        for name in [
            "Authorization",
            "cookie",
            "Set-Cookie",
            "X-Api-Key",
            "x-auth-token",
            "X-Client-Secret",
            "session-id",
        ] {
            assert!(m.is_redacted(name), "{name}");
        }
        for name in ["content-type", "accept", "user-agent", "x-request-id"] {
            assert!(!m.is_redacted(name), "{name}");
        }
        let m = OpenBoxMiddleware::default()
            .keep_header("x-auth-token")
            .redact_header("x-tenant");
        assert!(!m.is_redacted("X-Auth-Token") && m.is_redacted("x-tenant"));
        let m = OpenBoxMiddleware::default().no_default_redaction();
        assert!(!m.is_redacted("authorization"));
    }

    #[test]
    fn header_maps_keep_names_and_join_repeats() {
        let m = OpenBoxMiddleware::default();
        let mut h = ReqwestHeaders::new();
        h.append("accept", "a".parse().unwrap());
        h.append("accept", "b".parse().unwrap());
        h.insert("authorization", "Bearer secret".parse().unwrap());
        let out = m.headers(&h);
        assert_eq!(out["accept"], "a, b");
        assert_eq!(out["authorization"], REDACTED);
    }

    #[test]
    fn text_like_content_types() {
        let mut h = ReqwestHeaders::new();
        assert!(text_like(&h));
        h.insert(
            "content-type",
            "application/json; charset=utf-8".parse().unwrap(),
        );
        assert!(text_like(&h));
        h.insert("content-type", "image/png".parse().unwrap());
        assert!(!text_like(&h));
    }
}
