//! The web page at `/`: what a person trying the SDK looks at. Assets are compiled into the
//! binary (no build step); live updates come over server-sent events from `/api/dev/stream`.
//!
//! | Path | Serves |
//! |---|---|
//! | `GET /` | the page |
//! | `GET /assets/app.js`, `GET /assets/style.css` | its script and style |
//! | `GET /api/dev/stream` | `request` events (every logged request) and `approval` events (opened or decided) |

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use axum::extract::State as Extract;
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::Stream;
use tokio::sync::broadcast::error::RecvError;

use crate::server::State;

const INDEX_HTML: &str = include_str!("index.html");
const APP_JS: &str = include_str!("app.js");
const STYLE_CSS: &str = include_str!("style.css");

/// The page's routes.
pub(crate) fn router(state: Arc<State>) -> Router {
    Router::new()
        .route("/", get(|| asset("text/html; charset=utf-8", INDEX_HTML)))
        .route(
            "/assets/app.js",
            get(|| asset("text/javascript; charset=utf-8", APP_JS)),
        )
        .route(
            "/assets/style.css",
            get(|| asset("text/css; charset=utf-8", STYLE_CSS)),
        )
        .route("/api/dev/stream", get(stream))
        .with_state(state)
}

async fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
}

/// What the stream sends next.
enum Next {
    Request(Box<crate::LoggedRequest>),
    Approval(Box<crate::Approval>),
    /// The viewer fell behind the broadcast buffer: it should reload its lists.
    Lagged,
    Closed,
}

/// Counts a live stream as open until it is dropped.
struct Subscriber(Arc<State>);

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.0.stream_subscribers.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn stream(Extract(state): Extract<Arc<State>>) -> Response {
    let limit = state.limits.max_stream_subscribers;
    if state.stream_subscribers.fetch_add(1, Ordering::Relaxed) >= limit {
        state.stream_subscribers.fetch_sub(1, Ordering::Relaxed);
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("at most {limit} live streams at once"),
        )
            .into_response();
    }
    let subscriber = Subscriber(state.clone());
    live(&state, subscriber).into_response()
}

fn live(
    state: &State,
    subscriber: Subscriber,
) -> Sse<impl Stream<Item = Result<Event, Infallible>> + use<>> {
    let requests = state.log.subscribe();
    let approvals = state.approvals.subscribe();
    let events = futures::stream::unfold(
        (requests, approvals, subscriber),
        |(mut requests, mut approvals, subscriber)| async move {
            let next = tokio::select! {
                r = requests.recv() => match r {
                    Ok(entry) => Next::Request(Box::new(entry)),
                    Err(RecvError::Lagged(_)) => Next::Lagged,
                    Err(RecvError::Closed) => Next::Closed,
                },
                a = approvals.recv() => match a {
                    Ok(approval) => Next::Approval(Box::new(approval)),
                    Err(RecvError::Lagged(_)) => Next::Lagged,
                    Err(RecvError::Closed) => Next::Closed,
                },
            };
            let event = match next {
                Next::Request(entry) => sse_json("request", &entry),
                Next::Approval(approval) => sse_json("approval", &approval),
                Next::Lagged => Event::default().event("lagged").data("{}"),
                Next::Closed => return None,
            };
            Some((Ok(event), (requests, approvals, subscriber)))
        },
    );
    Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

fn sse_json(name: &str, value: &impl serde::Serialize) -> Event {
    // Serializing these types cannot fail (string keys, no custom serializers).
    let data = serde_json::to_string(value).unwrap_or_else(|_| "{}".to_owned());
    Event::default().event(name).data(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_links_assets_that_are_served() {
        assert!(INDEX_HTML.contains("/assets/app.js"));
        assert!(INDEX_HTML.contains("/assets/style.css"));
        assert!(APP_JS.contains("/api/dev/stream"));
    }
}
