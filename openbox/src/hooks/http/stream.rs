//! A response body the caller reads as it arrives, governed at its end.
//!
//! A response that is not captured whole (no `Content-Length`, more than 1 MiB, or not text)
//! is handed to the caller with its body wrapped: chunks pass through as they come, never
//! buffered; a bounded prefix of a text body is kept on the side; and the `completed`
//! evaluation is sent when the caller has read the last chunk, or when it drops the body
//! before that (attribute `openbox.http.response_body.partial` = `true`), or when reading
//! fails. Binary bodies are not captured at all.
//!
//! At the end of the body the caller's read waits for the verdict as for any other operation
//! (with deferred completion it does not), and a BLOCK/HALT turns into an error of that read; a
//! body dropped early cannot be answered, so its evaluation runs in the background and the
//! activity waits for it before it reports its end: the verdict still counts.
//!
//! The tower adapter hands every response over in this wrapper, so that one response type
//! covers the three cases: a body read whole before the answer was handed over (`completed`
//! evaluated already), a body governed as it is read, and a body outside any activity.

use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use futures::future::BoxFuture;
use http_body::{Body as HttpBody, Frame, SizeHint};
use serde_json::Value;

use super::grpc::GrpcCall;
use super::redact::{self, BodyKind};
use crate::hooks::{HookCall, HookError};
use crate::secrets::SensitiveNames;
use crate::wire::{HookSpan, HttpRequestSpan};

/// The attribute telling Core that the caller stopped reading before the end.
pub const PARTIAL_ATTRIBUTE: &str = "openbox.http.response_body.partial";

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What the `completed` evaluation of a streamed response needs.
pub(super) struct StreamedCompletion {
    /// The operation.
    pub(super) call: HookCall,
    /// Its span so far: status, headers, no body.
    pub(super) detail: HttpRequestSpan,
    /// How the text of a captured body is redacted.
    pub(super) kind: BodyKind,
    /// Which names are sensitive.
    pub(super) names: SensitiveNames,
    /// Longest body text sent, in characters.
    pub(super) max_body_chars: usize,
    /// A gRPC call: its status comes in the trailers.
    pub(super) grpc: Option<GrpcCall>,
}

impl StreamedCompletion {
    /// The `completed` span: the captured text, the partial flag and how reading ended.
    /// `total_chars` is the whole body's length when it was read to its end.
    fn finish(
        self,
        captured: Option<&[u8]>,
        total_chars: Option<u64>,
        error: Option<String>,
    ) -> (HookCall, HookSpan) {
        let partial = total_chars.is_none();
        let mut detail = self.detail;
        detail.response_body = captured.filter(|b| !b.is_empty()).and_then(|bytes| {
            let text = String::from_utf8_lossy(bytes);
            redact::body(&text, self.kind, &self.names).map(|t| {
                crate::text::truncate(
                    &t,
                    self.max_body_chars,
                    crate::text::Cut::PrefixOf(total_chars),
                )
            })
        });
        if let Some(e) = error {
            detail.error = Some(e);
        }
        let mut attrs = super::exchange::completed_attributes(&mut detail, self.grpc.as_ref());
        attrs.insert(PARTIAL_ATTRIBUTE.into(), Value::Bool(partial));
        (
            self.call.with_attributes(attrs),
            HookSpan::HttpRequest(detail),
        )
    }
}

/// A response body handed to the caller by the governed HTTP clients: its chunks pass through
/// as they arrive, and when it was not read whole before the answer was handed over, its
/// `completed` evaluation is sent at its end (a BLOCK/HALT then fails the read of the last
/// chunk). Read it as any [`http_body::Body`].
pub struct GovernedBody<B = reqwest::Body> {
    inner: Inner<B>,
    /// The text prefix kept so far, `None` for a body that is not captured.
    captured: Option<Vec<u8>>,
    /// Characters of a captured body seen so far (its UTF-8 lead bytes), kept or not.
    seen_chars: u64,
    /// Bytes kept at most.
    capture_limit: usize,
    /// Until the evaluation has started.
    completion: Option<StreamedCompletion>,
    /// The operation, for an end-of-body evaluation the reader stops waiting for.
    call: Option<HookCall>,
    /// The end-of-body evaluation in flight (in a `Mutex` only so that the body is `Sync`, as
    /// reqwest requires; it is never locked, `get_mut` reaches it).
    finishing: Mutex<Option<BoxFuture<'static, Result<(), HookError>>>>,
    done: bool,
}

/// Where the chunks come from.
enum Inner<B> {
    /// The server's body, as it arrives.
    Streaming(B),
    /// A body read whole before the answer was handed over: its data, then its trailers (the
    /// tower adapter's; the reqwest middleware hands such a body over as reqwest's own).
    #[cfg_attr(not(feature = "tower"), allow(dead_code))]
    Whole {
        data: Option<Bytes>,
        trailers: Option<http::HeaderMap>,
    },
}

impl<B> std::fmt::Debug for GovernedBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GovernedBody")
            .field("governed", &self.call.is_some())
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl<B> GovernedBody<B> {
    /// Wraps `inner`; `capture` says whether its text is kept (text-like and bodies on).
    pub(super) fn new(inner: B, completion: StreamedCompletion, capture: bool) -> Self {
        // Enough bytes for the longest text sent (4 bytes per character at most) and one
        // more character, so that the cut is reported as a cut.
        let capture_limit = completion
            .max_body_chars
            .saturating_add(1)
            .saturating_mul(4);
        GovernedBody {
            call: Some(completion.call.clone()),
            inner: Inner::Streaming(inner),
            captured: capture.then(Vec::new),
            seen_chars: 0,
            capture_limit,
            completion: Some(completion),
            finishing: Mutex::new(None),
            done: false,
        }
    }

    /// A body nobody governs (outside an activity, or a skipped URL).
    #[cfg(feature = "tower")]
    pub(super) fn ungoverned(inner: B) -> Self {
        Self::passing(Inner::Streaming(inner))
    }

    /// A body read whole, its `completed` evaluation done.
    #[cfg(feature = "tower")]
    pub(super) fn whole(data: Bytes, trailers: Option<http::HeaderMap>) -> Self {
        Self::passing(Inner::Whole {
            data: (!data.is_empty()).then_some(data),
            trailers,
        })
    }

    #[cfg(feature = "tower")]
    fn passing(inner: Inner<B>) -> Self {
        GovernedBody {
            inner,
            captured: None,
            seen_chars: 0,
            capture_limit: 0,
            completion: None,
            call: None,
            finishing: Mutex::new(None),
            done: false,
        }
    }

    fn keep(&mut self, chunk: &[u8]) {
        if let Some(captured) = &mut self.captured {
            let room = self.capture_limit.saturating_sub(captured.len());
            captured.extend_from_slice(&chunk[..chunk.len().min(room)]);
            // Every byte but a UTF-8 continuation byte (0b10xx_xxxx) starts a character.
            self.seen_chars += chunk.iter().filter(|&&b| (b as i8) >= -0x40).count() as u64;
        }
    }

    /// Starts the evaluation at the end of the body, to be awaited by the reader.
    fn start_finishing(&mut self) {
        if let Some(completion) = self.completion.take() {
            let (call, span) =
                completion.finish(self.captured.as_deref(), Some(self.seen_chars), None);
            self.captured = None;
            let future: BoxFuture<'static, Result<(), HookError>> =
                Box::pin(async move { call.completed(span).await });
            *self
                .finishing
                .get_mut()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(future);
        }
    }

    /// Reports the body as ended early or failed, without waiting for the verdict.
    fn finish_detached(&mut self, error: Option<String>) {
        if let Some(completion) = self.completion.take() {
            let (call, span) = completion.finish(self.captured.as_deref(), None, error);
            self.captured = None;
            call.completed_detached(span);
        }
    }
}

impl<B> HttpBody for GovernedBody<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        loop {
            let finishing = this
                .finishing
                .get_mut()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(future) = finishing.as_mut() {
                let verdict = ready!(future.as_mut().poll(cx));
                *finishing = None;
                this.done = true;
                return Poll::Ready(verdict.err().map(|e| Err(Box::new(e) as BoxError)));
            }
            if this.done {
                return Poll::Ready(None);
            }
            let next = match &mut this.inner {
                Inner::Streaming(body) => ready!(Pin::new(body).poll_frame(cx)),
                Inner::Whole { data, trailers } => match data.take() {
                    Some(data) => Some(Ok(Frame::data(data))),
                    None => trailers.take().map(|t| Ok(Frame::trailers(t))),
                },
            };
            match next {
                Some(Ok(frame)) => {
                    if let Some(data) = frame.data_ref() {
                        this.keep(data);
                    } else if let (Some(trailers), Some(completion)) =
                        (frame.trailers_ref(), this.completion.as_mut())
                        && let Some(grpc) = completion.grpc.as_mut()
                    {
                        grpc.trailers(trailers);
                    }
                    return Poll::Ready(Some(Ok(frame)));
                }
                Some(Err(e)) => {
                    let e: BoxError = e.into();
                    this.finish_detached(Some(format!("reading the response body failed: {e}")));
                    this.done = true;
                    return Poll::Ready(Some(Err(e)));
                }
                None if this.completion.is_none() => this.done = true,
                None => this.start_finishing(),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        // The end is reported by `poll_frame` once the verdict is in.
        self.done
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Inner::Streaming(body) => body.size_hint(),
            Inner::Whole { data, .. } => {
                SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64))
            }
        }
    }
}

impl<B> Drop for GovernedBody<B> {
    fn drop(&mut self) {
        let pending = self
            .finishing
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        match pending {
            // Read to the end, the verdict not awaited: it still counts.
            Some(evaluation) => {
                if let Some(call) = &self.call {
                    call.keep_running(evaluation);
                }
            }
            // Dropped before the last chunk (does nothing once the body was reported).
            None => self.finish_detached(None),
        }
    }
}
