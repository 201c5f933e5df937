//! Trace and span ids of hook spans.
//!
//! With the `otel` feature and a `tracing-opentelemetry` layer installed (as with Temporal's
//! OpenTelemetry plugin), the ids are those of the OpenTelemetry span the operation runs in, so
//! hook spans line up with the user's traces. Otherwise they are generated: one trace id per
//! activity attempt and a fresh span id per operation, parented on the attempt.

use crate::ids::new_span_id;

/// Ids of one span.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SpanIds {
    pub trace_id: String,
    pub span_id: String,
    pub parent_span_id: Option<String>,
}

/// The ids of the OpenTelemetry span `span` belongs to, if a `tracing-opentelemetry` layer
/// tracks it.
#[cfg(feature = "otel")]
pub(crate) fn otel_ids(span: &tracing::Span) -> Option<SpanIds> {
    use opentelemetry::trace::TraceContextExt;
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    let cx = span.context();
    let span_ref = cx.span();
    let sc = span_ref.span_context();
    if !sc.is_valid() {
        return None;
    }
    Some(SpanIds {
        trace_id: sc.trace_id().to_string(),
        span_id: sc.span_id().to_string(),
        parent_span_id: None,
    })
}

/// The span of the current OpenTelemetry context (`opentelemetry::Context::current()`), as
/// Temporal's OpenTelemetry plugin sets it around an activity: `(trace_id, span_id)`.
#[cfg(feature = "otel")]
pub(crate) fn current_otel_span() -> Option<(String, String)> {
    use opentelemetry::trace::TraceContextExt;
    let cx = opentelemetry::Context::current();
    let span = cx.span();
    let sc = span.span_context();
    sc.is_valid()
        .then(|| (sc.trace_id().to_string(), sc.span_id().to_string()))
}

/// Without the `otel` feature there is no OpenTelemetry context to read.
#[cfg(not(feature = "otel"))]
pub(crate) fn otel_ids(_span: &tracing::Span) -> Option<SpanIds> {
    None
}

/// Without the `otel` feature there is no OpenTelemetry context to read.
#[cfg(not(feature = "otel"))]
pub(crate) fn current_otel_span() -> Option<(String, String)> {
    None
}

/// The ids of an operation running in `span`: the OpenTelemetry span of `span` (a
/// `tracing-opentelemetry` layer is installed), else a new span in the current OpenTelemetry
/// context (Temporal's plugin alone), else a new span in the attempt's generated trace.
///
/// The parent is looked up the way `tracing-opentelemetry` (with its default context
/// activation) parents a new span: the current OpenTelemetry context first — where Temporal's
/// plugin puts `RunActivity:<type>` — then the current tracing span.
pub(crate) fn operation_ids(
    span: Option<&tracing::Span>,
    fallback_trace: &str,
    fallback_parent: &str,
) -> SpanIds {
    let outer = current_otel_span()
        .or_else(|| otel_ids(&tracing::Span::current()).map(|p| (p.trace_id, p.span_id)));
    if let Some(ids) = span.and_then(otel_ids) {
        let parent = outer.map(|(_, s)| s).filter(|s| *s != ids.span_id);
        return SpanIds {
            parent_span_id: parent,
            ..ids
        };
    }
    match outer {
        Some((trace_id, parent)) => SpanIds {
            trace_id,
            span_id: new_span_id(),
            parent_span_id: Some(parent),
        },
        None => SpanIds {
            trace_id: fallback_trace.to_owned(),
            span_id: new_span_id(),
            parent_span_id: Some(fallback_parent.to_owned()),
        },
    }
}
