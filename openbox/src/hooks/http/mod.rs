//! HTTP hooks: a [`reqwest_middleware`] middleware.
//!
//! ```no_run
//! // `client()` builds the reqwest client without its own redirect handling and adds the
//! // middleware, which follows redirects itself so that every hop is governed.
//! let client = openbox::hooks::http::client(reqwest::Client::builder())?;
//! // Inside a governed activity, every request of `client` is evaluated before it is sent
//! // and after its response; elsewhere the middleware does nothing.
//! # let _ = client;
//! # Ok::<(), reqwest::Error>(())
//! ```
//!
//! `started` carries the method, URL, request headers and request body; `completed` adds the
//! status, response headers and the response body. Bodies are text (invalid UTF-8 replaced) cut
//! to 65 536 characters, and only for text-like content types (`text/*`, JSON, XML,
//! JavaScript, form data, or none). A response with a `Content-Length` of at most 1 MiB is read
//! whole before the caller gets it. Any other — streamed, chunked, server-sent events, large
//! downloads — reaches the caller at once and is never buffered: its chunks pass through as they
//! arrive while the first 65 536 characters of a text body are kept on the side, and `completed`
//! is sent when the caller has read the last chunk, when it drops the body early (then with the
//! attribute `openbox.http.response_body.partial` set to `true`), or when reading fails. A BLOCK/HALT then
//! fails the read of the last chunk (and the activity, even if that error is swallowed).
//!
//! **Secrets** never reach Core: header values, query parameters and form or JSON body fields
//! whose names are sensitive (by rule: `Authorization`, `X-Auth-Key`,
//! `?api_key=`, `client_secret`, `access_token`, … plus the config's `redact_keys`) become
//! `[REDACTED]`; URL userinfo becomes `REDACTED`; URL fragments are dropped; multipart bodies
//! are not sent.
//!
//! **Redirects** are governed hop by hop: each hop is a request of its own, evaluated before it
//! is sent. That needs the wrapped `reqwest::Client` to leave redirects to the middleware
//! (`redirect(reqwest::redirect::Policy::none())`, which [`client`] sets). A client that
//! follows redirects itself sends the next hop before anyone could evaluate it: the middleware
//! notices (the answer comes from another URL), reports the URL that answered, and fails the
//! call and the activity with a `GovernanceAPIError` instead of handing over the answer.
//!
//! Requests to Core itself are never governed (compared by scheme, host, port and path, not
//! by text), and neither are those under [`OpenBoxMiddleware::skip_url_prefix`].

mod exchange;
mod grpc;
#[cfg(feature = "async-openai")]
#[cfg_attr(docsrs, doc(cfg(feature = "async-openai")))]
pub mod openai;
mod origin;
pub(crate) mod redact;
pub(crate) mod stream;
#[cfg(feature = "tower")]
#[cfg_attr(docsrs, doc(cfg(feature = "tower")))]
pub mod tower;

pub use stream::GovernedBody;

use std::collections::HashSet;

use http::Extensions;
use reqwest::header::{HeaderMap as ReqwestHeaders, LOCATION};
use reqwest::{Method, Request, Response, ResponseBuilderExt, StatusCode, Url};
use reqwest_middleware::{ClientWithMiddleware, Middleware, Next};
use serde_json::{Map, Value};

use super::{HookError, truncate_body};
use crate::governance::failure::GovernanceFailure;
use crate::governance::scope::ActivityScope;
use crate::secrets::SensitiveNames;

use origin::UrlPrefix;
use redact::{BodyKind, HeaderRule};

/// Longest body text sent to Core, in characters (the reference's bound).
pub(crate) const MAX_BODY_CHARS: usize = 65_536;
/// Largest response body read for governance; larger ones are not captured.
pub(crate) const MAX_CAPTURED_RESPONSE_BYTES: u64 = 1 << 20;
/// Most redirects the middleware follows for one request (reqwest's own default).
pub(crate) const DEFAULT_MAX_REDIRECTS: usize = 10;

/// A `reqwest_middleware` client whose requests are governed: `builder` with reqwest's own
/// redirect handling switched off, wrapped with [`OpenBoxMiddleware::default`] (which follows
/// redirects, governing each hop).
pub fn client(builder: reqwest::ClientBuilder) -> Result<ClientWithMiddleware, reqwest::Error> {
    let inner = builder
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    Ok(reqwest_middleware::ClientBuilder::new(inner)
        .with(OpenBoxMiddleware::default())
        .build())
}

/// The OpenBox middleware. Cheap to clone; configure with its builder-style methods.
#[derive(Debug, Clone)]
pub struct OpenBoxMiddleware {
    headers: HeaderRule,
    max_body_chars: usize,
    capture_bodies: bool,
    skip: Vec<UrlPrefix>,
    max_redirects: usize,
}

impl Default for OpenBoxMiddleware {
    fn default() -> Self {
        OpenBoxMiddleware {
            headers: HeaderRule {
                defaults: true,
                redact: HashSet::new(),
                keep: HashSet::new(),
            },
            max_body_chars: MAX_BODY_CHARS,
            capture_bodies: true,
            skip: Vec::new(),
            max_redirects: DEFAULT_MAX_REDIRECTS,
        }
    }
}

impl OpenBoxMiddleware {
    /// Also redact this header (case-insensitive).
    pub fn redact_header(mut self, name: &str) -> Self {
        self.headers.redact.insert(name.to_ascii_lowercase());
        self
    }

    /// Send this header's value although it looks sensitive.
    pub fn keep_header(mut self, name: &str) -> Self {
        self.headers.keep.insert(name.to_ascii_lowercase());
        self
    }

    /// Redact only the headers named with [`OpenBoxMiddleware::redact_header`] (and the
    /// config's `redact_keys`), not those the built-in rule finds sensitive.
    pub fn no_default_redaction(mut self) -> Self {
        self.headers.defaults = false;
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

    /// Most redirects followed for one request (default 10; 0 hands every 3xx answer to the
    /// caller). Each hop is governed like a request of its own.
    pub fn max_redirects(mut self, n: usize) -> Self {
        self.max_redirects = n;
        self
    }

    /// Do not govern requests under `prefix`: an absolute URL whose scheme, host and port must
    /// match exactly and whose path is a prefix ending on a `/` boundary
    /// (`https://metrics.internal/v1` skips `/v1` and `/v1/…`, not `/v10`). URLs with userinfo
    /// are never skipped. A prefix that is not such a URL skips nothing and is logged.
    pub fn skip_url_prefix(mut self, prefix: impl Into<String>) -> Self {
        let prefix = prefix.into();
        match UrlPrefix::parse(&prefix) {
            Some(p) => self.skip.push(p),
            None => tracing::warn!(
                %prefix,
                "skip_url_prefix: not an absolute URL without userinfo, query or fragment; nothing is skipped for it"
            ),
        }
        self
    }

    /// Whether a header's value is replaced by `[REDACTED]` (by this middleware's lists and the
    /// built-in rule; the config's `redact_keys` are added inside an activity).
    pub fn is_redacted(&self, name: &str) -> bool {
        self.headers.is_redacted(name, &SensitiveNames::default())
    }

    fn body_text(&self, bytes: &[u8], kind: BodyKind, names: &SensitiveNames) -> Option<String> {
        if !self.capture_bodies || bytes.is_empty() {
            return None;
        }
        let text = String::from_utf8_lossy(bytes);
        redact::body(&text, kind, names).map(|t| truncate_body(&t, self.max_body_chars))
    }

    fn skipped(&self, url: &Url, scope: &ActivityScope) -> bool {
        origin::is_under(scope.governor().client().base_url(), url)
            || self.skip.iter().any(|p| p.contains(url))
    }

    /// One request, governed: `started`, the exchange, `completed`. Returns the answer.
    async fn governed_hop(
        &self,
        req: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
        scope: &ActivityScope,
    ) -> reqwest_middleware::Result<Response> {
        let body = req.body().and_then(|b| b.as_bytes());
        let Some(exchange) =
            self.open(scope, req.method().as_str(), req.url(), req.headers(), body)
        else {
            return next.run(req, extensions).await;
        };
        let mut exchange = exchange.started().await.map_err(blocked)?;
        let sent_url = req.url().clone();
        let response =
            tracing::Instrument::instrument(next.run(req, extensions), exchange.span.clone()).await;
        let response = match response {
            Err(e) => {
                exchange.failed(e.to_string()).await.map_err(blocked)?;
                return Err(e);
            }
            Ok(r) => r,
        };
        // The client followed a redirect on its own: that hop was sent ungoverned. (A fragment
        // is never sent, and the answer's URL has none.)
        let answered_by = (!same_resource(response.url(), &sent_url))
            .then(|| crate::secrets::mask_url(response.url(), &exchange.names));
        let url = exchange.detail.http_url.clone();
        if let Some(final_url) = &answered_by {
            exchange.detail.http_url = final_url.clone();
        }
        self.answered(&mut exchange, response.status(), response.headers());
        if let Some(final_url) = answered_by {
            exchange.detail.error = Some(format!(
                "the HTTP client followed a redirect to {final_url} without governance"
            ));
            // Report how it ended; whatever Core says, the answer is not handed over.
            exchange.completed_refused().await;
            let failure = GovernanceFailure::ungoverned_redirect(&url, &final_url);
            scope.record_hook_stop(failure.clone());
            return Err(blocked(HookError::new(failure)));
        }
        if !self.reads_whole(response.headers(), response.content_length()) {
            if streams(&response, exchange.detail.http_method.as_str()) {
                let (status, version, url) = (
                    response.status(),
                    response.version(),
                    response.url().clone(),
                );
                let (parts, body) = http::Response::<reqwest::Body>::from(response).into_parts();
                let body = self.streamed(exchange, &parts.headers, body);
                return rebuilt(
                    status,
                    version,
                    url,
                    parts.headers,
                    reqwest::Body::wrap(body),
                );
            }
            exchange.completed().await.map_err(blocked)?;
            return Ok(response);
        }
        let (status, version, response_url, headers) = (
            response.status(),
            response.version(),
            response.url().clone(),
            response.headers().clone(),
        );
        let bytes = match response.bytes().await {
            Ok(b) => b,
            Err(e) => {
                exchange
                    .failed(format!("reading the response body failed: {e}"))
                    .await
                    .map_err(blocked)?;
                return Err(e.into());
            }
        };
        self.response_text(&mut exchange, &headers, &bytes);
        exchange.completed().await.map_err(blocked)?;
        rebuilt(status, version, response_url, headers, bytes)
    }
}

/// A response handed to the caller with its body replaced (read whole, or wrapped).
fn rebuilt(
    status: StatusCode,
    version: http::Version,
    url: Url,
    headers: ReqwestHeaders,
    body: impl Into<reqwest::Body>,
) -> reqwest_middleware::Result<Response> {
    let mut builder = http::Response::builder()
        .status(status)
        .version(version)
        .url(url);
    if let Some(h) = builder.headers_mut() {
        *h = headers;
    }
    builder
        .body(body.into())
        .map(Response::from)
        .map_err(|e| reqwest_middleware::Error::Middleware(e.into()))
}

/// Whether the body of `response` is governed as the caller reads it (completed at its end),
/// rather than at once: not for redirects (the middleware follows them and drops their body)
/// nor for answers known to have no body.
fn streams(response: &Response, method: &str) -> bool {
    let status = response.status();
    !(status.is_redirection()
        || status == StatusCode::NO_CONTENT
        || method == Method::HEAD.as_str()
        || response.content_length() == Some(0))
}

/// The request for the next hop of a redirect answer, as browsers and reqwest build it:
/// 301/302/303 turn into a body-less `GET` (except `HEAD`), 307/308 repeat the method and
/// body; credentials (`Authorization`, `Cookie`, `Proxy-Authorization`) are dropped when the
/// hop leaves the origin. `None` when `response` is not a redirect that can be followed.
fn next_hop(response: &Response, previous: Option<Request>) -> Option<Request> {
    let status = response.status();
    if !status.is_redirection() {
        return None;
    }
    let mut previous = previous?;
    let location = response.headers().get(LOCATION)?.to_str().ok()?;
    let target = previous.url().join(location).ok()?;
    if !matches!(target.scheme(), "http" | "https") {
        return None;
    }
    let keep_method = matches!(
        status,
        StatusCode::TEMPORARY_REDIRECT | StatusCode::PERMANENT_REDIRECT
    );
    let same_origin = target.origin() == previous.url().origin();
    let mut headers: ReqwestHeaders = std::mem::take(previous.headers_mut());
    if !same_origin {
        for name in [
            reqwest::header::AUTHORIZATION,
            reqwest::header::COOKIE,
            reqwest::header::PROXY_AUTHORIZATION,
            reqwest::header::WWW_AUTHENTICATE,
        ] {
            headers.remove(name);
        }
    }
    let (method, body) = if keep_method || *previous.method() == Method::HEAD {
        (previous.method().clone(), previous.body_mut().take())
    } else {
        for name in [
            reqwest::header::CONTENT_TYPE,
            reqwest::header::CONTENT_LENGTH,
            reqwest::header::CONTENT_ENCODING,
        ] {
            headers.remove(name);
        }
        (Method::GET, None)
    };
    let mut next = Request::new(method, target);
    *next.headers_mut() = headers;
    *next.body_mut() = body;
    *next.timeout_mut() = previous.timeout().copied();
    *next.version_mut() = previous.version();
    Some(next)
}

/// The same URL once fragments are left out.
fn same_resource(a: &Url, b: &Url) -> bool {
    a[..url::Position::AfterQuery] == b[..url::Position::AfterQuery]
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

/// The `http.*` attributes of a request (and of its answer, with `status`).
pub(crate) fn attributes(method: &str, url: &str, status: Option<u16>) -> Map<String, Value> {
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
        let mut req = req;
        let mut redirects = 0;
        loop {
            // A copy for the next hop; a streaming body cannot be copied, and a 307/308 with
            // such a body is then handed to the caller instead of being followed.
            let copy = (redirects < self.max_redirects)
                .then(|| req.try_clone())
                .flatten();
            let response = self
                .governed_hop(req, extensions, next.clone(), &scope)
                .await?;
            match next_hop(&response, copy) {
                Some(hop) => {
                    redirects += 1;
                    req = hop;
                }
                None => return Ok(response),
            }
        }
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
            "X-Auth-Key",
            "Ocp-Apim-Subscription-Key",
            "X-Goog-IAP-JWT-Assertion",
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

    fn redirect(status: u16, location: &str) -> Response {
        Response::from(
            http::Response::builder()
                .status(status)
                .header("location", location)
                .body("")
                .unwrap(),
        )
    }

    #[test]
    fn redirect_hops() {
        let mut req = Request::new(Method::POST, Url::parse("https://a.test/x").unwrap());
        req.headers_mut()
            .insert("authorization", "Bearer t".parse().unwrap());
        req.headers_mut()
            .insert("content-type", "application/json".parse().unwrap());
        *req.body_mut() = Some("{}".into());
        let hop = next_hop(&redirect(302, "https://b.test/y"), req.try_clone()).unwrap();
        assert_eq!(hop.method(), Method::GET);
        assert_eq!(hop.url().as_str(), "https://b.test/y");
        assert!(hop.headers().get("authorization").is_none() && hop.body().is_none());
        let hop = next_hop(&redirect(307, "/z"), req.try_clone()).unwrap();
        assert_eq!(hop.method(), Method::POST);
        assert_eq!(hop.url().as_str(), "https://a.test/z");
        assert!(hop.headers().get("authorization").is_some());
        assert_eq!(hop.body().and_then(|b| b.as_bytes()), Some(&b"{}"[..]));
        assert!(next_hop(&redirect(302, "ftp://c.test/"), req.try_clone()).is_none());
        assert!(next_hop(&redirect(200, "https://b.test/"), req.try_clone()).is_none());
        assert!(next_hop(&redirect(302, "https://b.test/"), None).is_none());
    }
}
