//! One HTTP exchange under governance — the part both adapters share (the reqwest middleware
//! and the tower layer): what `started` carries, what the answer adds, when a body is read whole
//! before the caller gets it, and how the exchange ends.

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use reqwest::Url;

use super::grpc::{self, GrpcCall};
use super::redact::BodyKind;
use super::stream::{GovernedBody, StreamedCompletion};
use super::{MAX_CAPTURED_RESPONSE_BYTES, OpenBoxMiddleware, attributes};
use crate::governance::scope::ActivityScope;
use crate::hooks::{HookCall, HookError};
use crate::secrets::SensitiveNames;
use crate::wire::{HookSpan, HttpRequestSpan, SpanKind};

/// A request on its way: its call, its span so far, and what redacts the rest.
pub(super) struct Exchange {
    pub(super) call: HookCall,
    pub(super) detail: HttpRequestSpan,
    /// The tracing span the request runs in.
    pub(super) span: tracing::Span,
    pub(super) names: SensitiveNames,
    /// Set for a gRPC call (by the request's content type).
    grpc: Option<GrpcCall>,
}

impl OpenBoxMiddleware {
    /// The exchange for a request to `url`, or `None` when it is not governed (Core's own
    /// URL, a skipped prefix, no activity). `body` is the request body when it is in memory.
    pub(super) fn open(
        &self,
        scope: &ActivityScope,
        method: &str,
        url: &Url,
        headers: &HeaderMap,
        body: Option<&[u8]>,
    ) -> Option<Exchange> {
        if self.skipped(url, scope) {
            return None;
        }
        let names = scope.sensitive_names().clone();
        let masked = crate::secrets::mask_url(url, &names);
        let grpc = grpc::is_grpc(headers).then(|| GrpcCall::new(url.path()));
        let name = grpc
            .as_ref()
            .map_or_else(|| method.to_owned(), GrpcCall::span_name);
        let span = tracing::info_span!("HTTP request", otel.name = %name, otel.kind = "client", http.method = %method, http.url = %masked);
        let call = HookCall::begin(name, SpanKind::Client, Some(&span))?;
        let mut attrs = attributes(method, &masked, None);
        if let Some(grpc) = &grpc {
            grpc.add_attributes(&mut attrs);
        }
        let detail = HttpRequestSpan {
            http_method: method.to_owned(),
            http_url: masked,
            request_body: body.and_then(|b| self.body_text(b, BodyKind::of(headers), &names)),
            request_headers: Some(self.headers.headers(headers, &names)),
            response_body: None,
            response_headers: None,
            http_status_code: None,
            error: None,
        };
        Some(Exchange {
            call: call.with_attributes(attrs),
            detail,
            span,
            names,
            grpc,
        })
    }

    /// Whether an answer with these headers is read whole before the caller gets it (text,
    /// at most 1 MiB by its `Content-Length`), so that `completed` carries its body and a
    /// BLOCK there keeps it from the caller.
    pub(super) fn reads_whole(&self, headers: &HeaderMap, content_length: Option<u64>) -> bool {
        self.capture_bodies
            && super::text_like(headers)
            && content_length.is_some_and(|n| n <= MAX_CAPTURED_RESPONSE_BYTES)
    }

    /// Hands `body` over wrapped: its `completed` evaluation is sent when the caller has read
    /// it, or drops it (see [`super::stream`]).
    pub(super) fn streamed<B>(
        &self,
        exchange: Exchange,
        headers: &HeaderMap,
        body: B,
    ) -> GovernedBody<B> {
        let capture = self.capture_bodies && super::text_like(headers);
        let completion = StreamedCompletion {
            call: exchange.call,
            detail: exchange.detail,
            kind: BodyKind::of(headers),
            names: exchange.names,
            max_body_chars: self.max_body_chars,
            grpc: exchange.grpc,
        };
        GovernedBody::new(body, completion, capture)
    }

    /// Records the answer's head: status, headers (masked), `HTTP <status>` as the error from
    /// 400 on, and for gRPC a status sent in the headers.
    pub(super) fn answered(
        &self,
        exchange: &mut Exchange,
        status: StatusCode,
        headers: &HeaderMap,
    ) {
        let code = status.as_u16();
        exchange.detail.http_status_code = Some(code);
        exchange.detail.response_headers = Some(self.headers.headers(headers, &exchange.names));
        if code >= 400 {
            exchange.detail.error = Some(format!("HTTP {code}"));
        }
        if let Some(grpc) = &mut exchange.grpc {
            grpc.trailers(headers);
        }
    }

    /// The body text `completed` carries for an answer read whole.
    pub(super) fn response_text(&self, exchange: &mut Exchange, headers: &HeaderMap, body: &Bytes) {
        exchange.detail.response_body =
            self.body_text(body, BodyKind::of(headers), &exchange.names);
    }
}

impl Exchange {
    /// Whether the request is a gRPC call.
    #[cfg(feature = "tower")]
    pub(super) fn is_grpc(&self) -> bool {
        self.grpc.is_some()
    }

    /// The `started` evaluation; on `Err` the request must not be sent.
    pub(super) async fn started(mut self) -> Result<Exchange, HookError> {
        let HookSpan::HttpRequest(detail) = self
            .call
            .started_returning(HookSpan::HttpRequest(self.detail))
            .await?
        else {
            unreachable!("started hands back the span it was given")
        };
        self.detail = detail;
        Ok(self)
    }

    /// The `completed` evaluation of an exchange that failed with `error` (Core still learns how
    /// the operation ended).
    pub(super) async fn failed(mut self, error: String) -> Result<(), HookError> {
        self.detail.error = Some(error);
        self.completed().await
    }

    /// The `completed` evaluation, with the status among the attributes.
    pub(super) async fn completed(self) -> Result<(), HookError> {
        let (call, detail) = self.finish();
        call.completed(HookSpan::HttpRequest(detail)).await
    }

    /// The `completed` report of an exchange whose answer is refused whatever Core says.
    pub(super) async fn completed_refused(self) {
        let (call, detail) = self.finish();
        let _ = call.completed(HookSpan::HttpRequest(detail)).await;
    }

    fn finish(self) -> (HookCall, HttpRequestSpan) {
        let mut detail = self.detail;
        let attrs = completed_attributes(&mut detail, self.grpc.as_ref());
        (self.call.with_attributes(attrs), detail)
    }
}

/// The `completed` attributes of an exchange — method, URL, status, and for a gRPC call its
/// status, which also makes a status other than OK the span's error. Shared by answers read
/// whole and streamed ones.
pub(super) fn completed_attributes(
    detail: &mut HttpRequestSpan,
    grpc: Option<&GrpcCall>,
) -> serde_json::Map<String, serde_json::Value> {
    let mut attrs = attributes(
        &detail.http_method,
        &detail.http_url,
        detail.http_status_code,
    );
    if let Some(grpc) = grpc {
        grpc.completed(&mut attrs, detail);
    }
    attrs
}
