//! The dev Core is safe to leave running: a web page cannot use its dev API, another machine
//! cannot reach it unannounced, and no client — unauthenticated, slow or numerous — can make it
//! hold unbounded memory or panic.

use std::time::Duration;

use openbox_dev::{DevCore, DevCoreError, Limits};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends raw bytes on a new connection and returns everything answered until the server closes
/// it or `wait` passes.
async fn exchange(addr: std::net::SocketAddr, request: &[u8], wait: Duration) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    // A connection closed at once may refuse the write: what was answered is what counts.
    let _ = stream.write_all(request).await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(wait, stream.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

fn request(method: &str, path: &str, host: &str, headers: &[&str], body: &str) -> Vec<u8> {
    let mut text = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for h in headers {
        text.push_str(h);
        text.push_str("\r\n");
    }
    text.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    text.into_bytes()
}

fn status(answer: &str) -> u16 {
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

const WAIT: Duration = Duration::from_secs(10);

/// A bodiless or form `POST` from any web page, a DNS-rebinding `Host` and a foreign `Origin`
/// are refused; the page's own JSON call is answered.
#[tokio::test]
async fn cross_site_and_rebinding_requests_are_refused() {
    let core = DevCore::builder().start().await.unwrap();
    let addr = core.addr();
    let host = addr.to_string();
    let body = json!({"workflow_id": "w", "run_id": "r", "activity_id": "1"});
    let key = openbox_dev::ApprovalKey::from_body(&body).unwrap();
    let opened = core
        .approvals()
        .open(key, "ActivityStarted / rule r", &body, "r", None, None);
    let path = format!("/api/dev/approvals/{}/approve", opened.approval.id);
    for (what, req) in [
        ("a bodiless POST", request("POST", &path, &host, &[], "")),
        (
            "a form POST",
            request(
                "POST",
                &path,
                &host,
                &["Content-Type: application/x-www-form-urlencoded"],
                "by=evil",
            ),
        ),
        (
            "a rebinding host",
            request(
                "POST",
                &path,
                "evil.example:8086",
                &["Content-Type: application/json"],
                "{}",
            ),
        ),
        (
            "a foreign origin",
            request(
                "POST",
                &path,
                &host,
                &[
                    "Content-Type: application/json",
                    "Origin: https://evil.example",
                ],
                "{}",
            ),
        ),
        (
            "a rebinding read",
            request("GET", "/api/dev/events", "evil.example", &[], ""),
        ),
    ] {
        let answer = exchange(addr, &req, WAIT).await;
        assert_eq!(status(&answer), 403, "{what}: {answer}");
    }
    assert_eq!(
        core.approvals().list()[0].state,
        openbox_dev::ApprovalState::Pending,
        "nothing was approved"
    );
    let answer = exchange(
        addr,
        &request(
            "POST",
            &path,
            &host,
            &[
                "Content-Type: application/json",
                &format!("Origin: http://{host}"),
            ],
            r#"{"by":"web"}"#,
        ),
        WAIT,
    )
    .await;
    assert_eq!(status(&answer), 200, "{answer}");
}

/// Listening beyond loopback needs an admin key, which the dev API then requires.
#[tokio::test]
async fn a_non_loopback_address_needs_an_admin_key() {
    let open = DevCore::builder()
        .addr("0.0.0.0:0".parse().unwrap())
        .start()
        .await;
    assert!(matches!(open, Err(DevCoreError::InsecureBind { .. })));
    let core = DevCore::builder()
        .addr("0.0.0.0:0".parse().unwrap())
        .admin_key("s3cret-admin")
        .start()
        .await
        .unwrap();
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], core.addr().port()));
    let host = addr.to_string();
    let without = exchange(
        addr,
        &request("GET", "/api/dev/approvals", &host, &[], ""),
        WAIT,
    )
    .await;
    assert_eq!(status(&without), 401, "{without}");
    let with = exchange(
        addr,
        &request(
            "GET",
            "/api/dev/approvals",
            &host,
            &["X-OpenBox-Admin-Key: s3cret-admin"],
            "",
        ),
        WAIT,
    )
    .await;
    assert_eq!(status(&with), 200, "{with}");
}

/// An unauthenticated body is refused before it is read and never kept; an authenticated one
/// larger than the limit is refused too.
#[tokio::test]
async fn unauthenticated_and_oversized_bodies_are_not_kept() {
    let core = DevCore::builder().start().await.unwrap();
    let addr = core.addr();
    let host = addr.to_string();
    let big = "x".repeat(3 << 20);
    let answer = exchange(
        addr,
        &request(
            "POST",
            "/api/v1/governance/evaluate",
            &host,
            &["Content-Type: application/json"],
            &big,
        ),
        WAIT,
    )
    .await;
    assert_eq!(status(&answer), 401, "{}", &answer[..answer.len().min(200)]);
    let answer = exchange(
        addr,
        &request(
            "POST",
            "/api/v1/governance/evaluate",
            &host,
            &[
                "Content-Type: application/json",
                "Authorization: Bearer obx_test_k",
            ],
            &big,
        ),
        WAIT,
    )
    .await;
    assert_eq!(status(&answer), 413, "{}", &answer[..answer.len().min(200)]);
    let logged = core.events();
    assert_eq!(logged.len(), 2);
    assert!(
        logged.iter().all(|e| e.body.is_null()),
        "no refused body is kept"
    );
}

/// A client that never finishes its headers is disconnected; connections beyond the limit are
/// closed at once; live streams beyond their limit are refused.
#[tokio::test]
async fn slow_and_numerous_clients_are_bounded() {
    let core = DevCore::builder()
        .limits(Limits {
            header_read_timeout: Duration::from_millis(500),
            max_connections: 2,
            max_stream_subscribers: 1,
            ..Limits::default()
        })
        .start()
        .await
        .unwrap();
    let addr = core.addr();
    let host = addr.to_string();

    // Half a request, then silence: the server hangs up (EOF) instead of waiting forever.
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET /api/dev/health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 256];
    let read = tokio::time::timeout(WAIT, slow.read(&mut buf)).await;
    assert!(
        matches!(read, Ok(Ok(_)) | Ok(Err(_))),
        "the slow client was never disconnected"
    );
    drop(slow);
    while core.open_connections() > 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // One live stream is served; a second one is refused.
    let mut first = TcpStream::connect(addr).await.unwrap();
    first
        .write_all(&request("GET", "/api/dev/stream", &host, &[], ""))
        .await
        .unwrap();
    let n = tokio::time::timeout(WAIT, first.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status(&String::from_utf8_lossy(&buf[..n])), 200);
    let second = exchange(
        addr,
        &request("GET", "/api/dev/stream", &host, &[], ""),
        WAIT,
    )
    .await;
    assert_eq!(status(&second), 503, "{second}");

    // The stream holds one connection; one more fits, the next is closed without an answer.
    let _held = TcpStream::connect(addr).await.unwrap();
    for _ in 0..200 {
        if core.open_connections() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let refused = exchange(
        addr,
        &request("GET", "/api/dev/health", &host, &[], ""),
        WAIT,
    )
    .await;
    assert_eq!(refused, "", "a connection beyond the limit was served");
}
