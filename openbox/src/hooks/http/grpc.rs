//! What a gRPC call adds to its HTTP span: the service and method as `rpc.*` attributes, and at
//! `completed` the gRPC status, which a server sends in the trailers (or, for an answer without
//! a body, in the headers): a call that failed with HTTP 200 still reports its failure.

use http::HeaderMap;
use serde_json::{Map, Value};

use crate::wire::HttpRequestSpan;

/// Whether a request is a gRPC call (`application/grpc`, `application/grpc+proto`, …).
pub(super) fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            let ct = ct.trim().to_ascii_lowercase();
            ct == "application/grpc"
                || ct.starts_with("application/grpc+")
                || ct.starts_with("application/grpc;")
        })
}

/// A gRPC call in flight: its method, and its status once the server sent it.
#[derive(Debug, Clone)]
pub(crate) struct GrpcCall {
    service: String,
    method: String,
    status: Option<u32>,
}

impl GrpcCall {
    /// The call named by a request path `/package.Service/Method`; other paths keep their
    /// text as the service and an empty method.
    pub(super) fn new(path: &str) -> Self {
        let trimmed = path.strip_prefix('/').unwrap_or(path);
        let (service, method) = match trimmed.rsplit_once('/') {
            Some((s, m)) if !s.is_empty() && !m.is_empty() => (s, m),
            _ => (trimmed, ""),
        };
        GrpcCall {
            service: service.to_owned(),
            method: method.to_owned(),
            status: None,
        }
    }

    /// The span's name: `package.Service/Method`, as OpenTelemetry names RPC spans.
    pub(super) fn span_name(&self) -> String {
        if self.method.is_empty() {
            self.service.clone()
        } else {
            format!("{}/{}", self.service, self.method)
        }
    }

    /// `rpc.system`, `rpc.service`, `rpc.method` (and the status once known).
    pub(super) fn add_attributes(&self, attributes: &mut Map<String, Value>) {
        attributes.insert("rpc.system".into(), "grpc".into());
        attributes.insert("rpc.service".into(), self.service.clone().into());
        attributes.insert("rpc.method".into(), self.method.clone().into());
        if let Some(code) = self.status {
            attributes.insert("rpc.grpc.status_code".into(), code.into());
        }
    }

    /// Reads `grpc-status` from the response headers (a trailers-only answer) or trailers.
    pub(super) fn trailers(&mut self, headers: &HeaderMap) {
        if let Some(code) = headers
            .get("grpc-status")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok())
        {
            self.status = Some(code);
        }
    }

    /// The `completed` attributes and, for a status other than OK, the span's error. (The
    /// server's `grpc-message` is not sent: it is free text, as a body is.)
    pub(super) fn completed(
        &self,
        attributes: &mut Map<String, Value>,
        detail: &mut HttpRequestSpan,
    ) {
        self.add_attributes(attributes);
        match self.status {
            Some(0) => {}
            Some(code) => {
                detail
                    .error
                    .get_or_insert_with(|| format!("gRPC status {code} ({})", code_name(code)));
            }
            None => {
                detail
                    .error
                    .get_or_insert_with(|| "the gRPC call ended without a status".to_owned());
            }
        }
    }
}

/// The name of a gRPC status code.
fn code_name(code: u32) -> &'static str {
    const NAMES: [&str; 17] = [
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    ];
    usize::try_from(code)
        .ok()
        .and_then(|i| NAMES.get(i))
        .copied()
        .unwrap_or("UNKNOWN_CODE")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_and_status() {
        let mut call = GrpcCall::new("/echo.v1.Echo/Say");
        assert_eq!(call.span_name(), "echo.v1.Echo/Say");
        let mut attrs = Map::new();
        call.add_attributes(&mut attrs);
        assert_eq!(attrs["rpc.service"], "echo.v1.Echo");
        assert_eq!(attrs["rpc.method"], "Say");
        assert!(attrs.get("rpc.grpc.status_code").is_none());
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", "7".parse().unwrap());
        call.trailers(&trailers);
        let mut detail = HttpRequestSpan {
            http_method: "POST".into(),
            http_url: "http://h/echo.v1.Echo/Say".into(),
            request_body: None,
            request_headers: None,
            response_body: None,
            response_headers: None,
            http_status_code: Some(200),
            error: None,
        };
        call.completed(&mut attrs, &mut detail);
        assert_eq!(attrs["rpc.grpc.status_code"], 7);
        assert_eq!(
            detail.error.as_deref(),
            Some("gRPC status 7 (PERMISSION_DENIED)")
        );
        assert_eq!(GrpcCall::new("/odd").span_name(), "odd");
        assert_eq!(code_name(99), "UNKNOWN_CODE");
    }

    #[test]
    fn grpc_content_types() {
        let mut h = HeaderMap::new();
        assert!(!is_grpc(&h));
        for (ct, yes) in [
            ("application/grpc", true),
            ("application/grpc+proto", true),
            ("Application/GRPC; charset=x", true),
            ("application/grpc-web", false),
            ("application/json", false),
        ] {
            h.insert("content-type", ct.parse().unwrap());
            assert_eq!(is_grpc(&h), yes, "{ct}");
        }
    }
}
