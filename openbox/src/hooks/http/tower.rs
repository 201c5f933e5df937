//! A [`tower`](https://docs.rs/tower) layer that governs the requests of any HTTP client built
//! as a `tower::Service<http::Request<_>>`: `hyper-util`'s client, tonic's gRPC channels, or
//! your own stack.
//!
//! It is the reqwest middleware's governance on another adapter — the same settings
//! ([`OpenBoxMiddleware`]'s builder methods), the same `started`/`completed` evaluations,
//! redaction and streaming rules: a request is evaluated before it reaches the inner service
//! (a BLOCK/HALT: the inner service is never called, the caller gets the [`HookError`] boxed);
//! a text answer of at most 1 MiB by its `Content-Length` is read whole and evaluated before the
//! caller gets it; any other answer reaches the caller at once as a [`GovernedBody`] that sends
//! `completed` when the caller has read it (or dropped it).
//!
//! ```
//! use openbox::hooks::http::OpenBoxMiddleware;
//! use openbox::hooks::http::tower::{OpenBoxLayer, OpenBoxService};
//! use tower_layer::Layer;
//!
//! /// `client`, governed: hyper-util's `Client`, a tonic `Channel`, any HTTP client service.
//! fn governed<S>(client: S, server: reqwest::Url) -> OpenBoxService<S> {
//!     // Settings as for the reqwest middleware; the origin names the server for requests
//!     // that carry only a path (tonic's).
//!     OpenBoxLayer::new(OpenBoxMiddleware::default().redact_header("x-tenant"))
//!         .origin(server)
//!         .layer(client)
//! }
//! ```
//!
//! **gRPC.** A request whose content type is `application/grpc…` is reported as a gRPC call:
//! the span is named `package.Service/Method`, the URL's path is the method's path, and the
//! attributes `rpc.system` (`grpc`), `rpc.service`, `rpc.method` are added; `completed` waits
//! for the end of the answer, whose trailers carry the gRPC status (`rpc.grpc.status_code`;
//! a status other than `0` is the span's error, e.g. `gRPC status 7 (PERMISSION_DENIED)`).
//! Message bodies are protobuf, not text: they are not sent to Core. tonic hands a channel
//! requests without scheme and host; give the layer the server's address with
//! [`OpenBoxLayer::origin`] (or the client's `with_origin`), or the URL Core sees is the
//! path alone.
//!
//! **Request bodies** are sent to Core when they are in memory: `String`, `Vec<u8>`, `Bytes`,
//! `http_body_util::Full<Bytes>` and `reqwest::Body` with its bytes. Other body types
//! (streams, boxed bodies, tonic's) are reported without their body.
//!
//! **Redirects** are not followed by this layer, and a 3xx answer reaches the caller as it is.
//! A redirect-following layer (`tower-http`'s `FollowRedirect`) belongs *outside* this one, so
//! that every hop passes through it; inside, its later hops would be sent ungoverned.

use std::any::Any;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use futures::future::BoxFuture;
use http::{Method, Request, Response, StatusCode};
use http_body::Body as HttpBody;
use http_body_util::{BodyExt, Full};
use reqwest::Url;

use super::exchange::Exchange;
use super::{GovernedBody, OpenBoxMiddleware};
use crate::governance::scope::ActivityScope;
use crate::hooks::HookError;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The host a path-only request is reported under when no origin is known; `.invalid` is a
/// name that never resolves, and it is cut off again before the URL is reported.
const NO_ORIGIN: &str = "http://origin.invalid";

/// A `tower::Layer` adding OpenBox governance to an HTTP client service. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct OpenBoxLayer {
    rules: Arc<Rules>,
}

#[derive(Debug, Default)]
struct Rules {
    http: OpenBoxMiddleware,
    origin: Option<Url>,
}

impl OpenBoxLayer {
    /// A layer with `settings`' header rules, body capture and skipped prefixes
    /// ([`OpenBoxMiddleware::max_redirects`] does not apply: the layer follows no redirect).
    pub fn new(settings: OpenBoxMiddleware) -> Self {
        OpenBoxLayer {
            rules: Arc::new(Rules {
                http: settings,
                origin: None,
            }),
        }
    }

    /// The server that requests carrying only a path (tonic's) are sent to, for the URL Core
    /// sees and for skipped prefixes: the request's path is joined to it. Requests with a
    /// scheme and host keep theirs.
    pub fn origin(self, origin: Url) -> Self {
        let rules = Rules {
            http: self.rules.http.clone(),
            origin: Some(origin),
        };
        OpenBoxLayer {
            rules: Arc::new(rules),
        }
    }
}

impl<S> tower_layer::Layer<S> for OpenBoxLayer {
    type Service = OpenBoxService<S>;

    fn layer(&self, inner: S) -> OpenBoxService<S> {
        OpenBoxService {
            inner,
            rules: self.rules.clone(),
        }
    }
}

/// The service [`OpenBoxLayer`] wraps around an HTTP client service.
#[derive(Debug, Clone)]
pub struct OpenBoxService<S> {
    inner: S,
    rules: Arc<Rules>,
}

impl<S, ReqB, ResB> tower_service::Service<Request<ReqB>> for OpenBoxService<S>
where
    S: tower_service::Service<Request<ReqB>, Response = Response<ResB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    ReqB: HttpBody + Send + 'static,
    ResB: HttpBody<Data = Bytes> + Send + Unpin + 'static,
    ResB::Error: Into<BoxError>,
{
    type Response = Response<GovernedBody<ResB>>;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<Self::Response, BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut req: Request<ReqB>) -> Self::Future {
        // The service that was polled ready serves this call; its clone serves the next.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        // The operation is opened here, in the caller's task, where the activity is known;
        // the returned future may run anywhere.
        let opened = ActivityScope::current().and_then(|scope| self.rules.open(&scope, &mut req));
        let Some(exchange) = opened else {
            return Box::pin(async move {
                let response = inner.call(req).await.map_err(Into::into)?;
                Ok(response.map(GovernedBody::ungoverned))
            });
        };
        let rules = self.rules.clone();
        Box::pin(async move {
            let exchange = exchange.started().await.map_err(boxed)?;
            rules.exchange(exchange, inner, req).await
        })
    }
}

impl Rules {
    /// The exchange for `req`, or `None` when it is not governed.
    fn open<B: 'static>(&self, scope: &ActivityScope, req: &mut Request<B>) -> Option<Exchange> {
        let (url, path_only) = self.url(req.uri());
        let body = in_memory(req.body_mut());
        let mut exchange = self.http.open(
            scope,
            req.method().as_str(),
            &url,
            req.headers(),
            body.as_deref(),
        )?;
        if path_only {
            let reported = &mut exchange.detail.http_url;
            if let Some(rest) = reported.strip_prefix(NO_ORIGIN) {
                *reported = rest.to_owned();
            }
        }
        Some(exchange)
    }

    /// The request's absolute URL, and whether it had to be made up (no origin known).
    fn url(&self, uri: &http::Uri) -> (Url, bool) {
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        if uri.scheme().is_some()
            && uri.authority().is_some()
            && let Ok(url) = Url::parse(&uri.to_string())
        {
            return (url, false);
        }
        if let Some(url) = self.origin.as_ref().and_then(|o| o.join(path).ok()) {
            return (url, false);
        }
        let made_up = Url::parse(NO_ORIGIN)
            .and_then(|o| o.join(path))
            .unwrap_or_else(|_| Url::parse(NO_ORIGIN).expect("a valid URL"));
        (made_up, true)
    }

    /// Sends the request and governs the answer.
    async fn exchange<S, ReqB, ResB>(
        &self,
        mut exchange: Exchange,
        mut inner: S,
        req: Request<ReqB>,
    ) -> Result<Response<GovernedBody<ResB>>, BoxError>
    where
        S: tower_service::Service<Request<ReqB>, Response = Response<ResB>>,
        S::Error: Into<BoxError>,
        ResB: HttpBody<Data = Bytes> + Unpin,
        ResB::Error: Into<BoxError>,
    {
        let head_only = req.method() == Method::HEAD;
        let span = exchange.span.clone();
        let response: Result<_, BoxError> = tracing::Instrument::instrument(inner.call(req), span)
            .await
            .map_err(Into::into);
        let response = match response {
            Err(e) => {
                exchange.failed(e.to_string()).await.map_err(boxed)?;
                return Err(e);
            }
            Ok(r) => r,
        };
        let (parts, body) = response.into_parts();
        self.http
            .answered(&mut exchange, parts.status, &parts.headers);
        let length = content_length(&parts.headers).or(body.size_hint().exact());
        if exchange.is_grpc() {
            // The status comes in the trailers, at the end of the body.
            let governed = self.http.streamed(exchange, &parts.headers, body);
            return Ok(Response::from_parts(parts, governed));
        }
        if self.http.reads_whole(&parts.headers, length) {
            let collected: Result<_, BoxError> = body.collect().await.map_err(Into::into);
            let collected = match collected {
                Ok(c) => c,
                Err(e) => {
                    exchange
                        .failed(format!("reading the response body failed: {e}"))
                        .await
                        .map_err(boxed)?;
                    return Err(e);
                }
            };
            let trailers = collected.trailers().cloned();
            let bytes = collected.to_bytes();
            self.http
                .response_text(&mut exchange, &parts.headers, &bytes);
            exchange.completed().await.map_err(boxed)?;
            return Ok(Response::from_parts(
                parts,
                GovernedBody::whole(bytes, trailers),
            ));
        }
        let bodiless = parts.status.is_redirection()
            || parts.status == StatusCode::NO_CONTENT
            || head_only
            || length == Some(0);
        if bodiless {
            exchange.completed().await.map_err(boxed)?;
            return Ok(Response::from_parts(parts, GovernedBody::ungoverned(body)));
        }
        let governed = self.http.streamed(exchange, &parts.headers, body);
        Ok(Response::from_parts(parts, governed))
    }
}

fn content_length(headers: &http::HeaderMap) -> Option<u64> {
    headers
        .get(http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn boxed(e: HookError) -> BoxError {
    Box::new(e)
}

/// The bytes of a request body held in memory, for `started` (see the module's list). A
/// `Full` body is taken out and put back: it is ready at once, and it is rebuilt from the
/// same bytes.
fn in_memory<B: 'static>(body: &mut B) -> Option<Bytes> {
    let any = body as &mut dyn Any;
    if let Some(s) = any.downcast_ref::<String>() {
        return Some(Bytes::copy_from_slice(s.as_bytes()));
    }
    if let Some(v) = any.downcast_ref::<Vec<u8>>() {
        return Some(Bytes::copy_from_slice(v));
    }
    if let Some(b) = any.downcast_ref::<Bytes>() {
        return Some(b.clone());
    }
    if let Some(b) = any.downcast_ref::<reqwest::Body>() {
        return b.as_bytes().map(Bytes::copy_from_slice);
    }
    let full = any.downcast_mut::<Full<Bytes>>()?;
    let mut cx = Context::from_waker(Waker::noop());
    let data = match Pin::new(&mut *full).poll_frame(&mut cx) {
        Poll::Ready(Some(Ok(frame))) => frame.into_data().unwrap_or_default(),
        _ => Bytes::new(),
    };
    *full = Full::new(data.clone());
    Some(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_memory_bodies_are_read_and_left_intact() {
        let mut full = Full::new(Bytes::from_static(b"{\"a\":1}"));
        assert_eq!(in_memory(&mut full).as_deref(), Some(&b"{\"a\":1}"[..]));
        // Still whole for the server.
        assert_eq!(in_memory(&mut full).as_deref(), Some(&b"{\"a\":1}"[..]));
        let mut s = String::from("text");
        assert_eq!(in_memory(&mut s).as_deref(), Some(&b"text"[..]));
        let mut other = http_body_util::Empty::<Bytes>::new();
        assert!(in_memory(&mut other).is_none());
    }

    #[test]
    fn urls_without_an_origin() {
        let rules = Rules::default();
        let (url, made_up) = rules.url(&"/echo.v1.Echo/Say".parse().unwrap());
        assert!(made_up);
        assert_eq!(url.path(), "/echo.v1.Echo/Say");
        let rules = Rules {
            http: OpenBoxMiddleware::default(),
            origin: Some(Url::parse("http://127.0.0.1:50051").unwrap()),
        };
        let (url, made_up) = rules.url(&"/echo.v1.Echo/Say?x=1".parse().unwrap());
        assert!(!made_up);
        assert_eq!(url.as_str(), "http://127.0.0.1:50051/echo.v1.Echo/Say?x=1");
        let (url, _) = rules.url(&"https://api.test/v1/x".parse().unwrap());
        assert_eq!(url.as_str(), "https://api.test/v1/x");
    }
}
