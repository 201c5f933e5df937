//! The `openbox-dev` binary as a user runs it: `serve`, then `approvals` / `approve` / `reject`
//! from another process, and `check`.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_openbox-dev");

struct Served {
    child: Child,
    url: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(args: &[&str]) -> Served {
    let mut child = Command::new(BIN)
        .args(["serve", "--port", "0"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("openbox-dev starts");
    // Only the first line is read, then stdout is closed: the server must keep running
    // when it cannot print the rest.
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let url = line
        .trim()
        .strip_prefix("openbox-dev listening on ")
        .expect("prints its URL")
        .to_owned();
    Served { child, url }
}

fn cli(args: &[&str], url: &str) -> (bool, String) {
    let out = Command::new(BIN)
        .args(args)
        .args(["--url", url])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn post(url: &str, path: &str, body: &str) -> String {
    // A tiny blocking HTTP/1.1 client, so the test needs no extra dependency.
    use std::io::{Read, Write};
    let addr = url.strip_prefix("http://").unwrap();
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer obx_test_cli\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).unwrap();
    response
}

#[test]
fn serve_approve_reject_and_event_log() {
    let dir = std::env::temp_dir().join(format!("openbox-dev-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let rules = dir.join("rules.toml");
    std::fs::write(
        &rules,
        "[[rules]]\nverdict = \"require_approval\"\nmatch = { event_type = \"ActivityStarted\" }\n",
    )
    .unwrap();
    let events = dir.join("events.jsonl");
    let served = serve(&[
        "--rules",
        rules.to_str().unwrap(),
        "--events",
        events.to_str().unwrap(),
    ]);
    let (ok, listed) = cli(&["approvals"], &served.url);
    assert!(ok && listed.contains("no approval requests"), "{listed}");

    for activity in ["1", "2", "3"] {
        let body = format!(
            r#"{{"event_type":"ActivityStarted","workflow_id":"w","run_id":"r","activity_id":"{activity}","activity_type":"pay"}}"#
        );
        let answer = post(&served.url, "/api/v1/governance/evaluate", &body);
        assert!(
            answer.contains("\"verdict\":\"require_approval\""),
            "{answer}"
        );
    }
    let (ok, listed) = cli(&["approvals", "--pending"], &served.url);
    assert!(
        ok && listed.contains("apr-1") && listed.contains("apr-2"),
        "{listed}"
    );

    let (ok, out) = cli(&["approve", "apr-1"], &served.url);
    assert!(ok, "{out}");
    assert!(out.contains("apr-1 approved"), "{out}");
    let (ok, out) = cli(&["reject", "apr-2", "--reason", "too risky"], &served.url);
    assert!(ok && out.contains("apr-2 rejected"), "{out}");
    let (ok, out) = cli(&["approve", "apr-2"], &served.url);
    assert!(
        !ok && out.contains("already decided"),
        "deciding twice is an error: {out}"
    );
    let (ok, out) = cli(&["approve", "apr-9"], &served.url);
    assert!(!ok && out.contains("no approval request apr-9"), "{out}");

    let poll = post(
        &served.url,
        "/api/v1/governance/approval",
        r#"{"workflow_id":"w","run_id":"r","activity_id":"2"}"#,
    );
    assert!(
        poll.contains("\"verdict\":\"block\"") && poll.contains("too risky"),
        "{poll}"
    );
    // A rejection with a patch: the poll answers BLOCK naming the input to restart with.
    let (ok, out) = cli(&["approve", "apr-3", "--new-input", "1"], &served.url);
    assert!(!ok && out.contains("--new-input goes with reject"), "{out}");
    let refused = post(
        &served.url,
        "/api/dev/approvals/apr-3/approve",
        r#"{"patch":{"new_input":1}}"#,
    );
    assert!(refused.starts_with("HTTP/1.1 400"), "{refused}");
    let (ok, out) = cli(&["reject", "apr-3", "--new-input", "{oops"], &served.url);
    assert!(!ok && out.contains("--new-input is not JSON"), "{out}");
    let (ok, out) = cli(
        &["reject", "apr-3", "--new-input", r#"{"amount":5}"#],
        &served.url,
    );
    assert!(ok && out.contains("apr-3 rejected"), "{out}");
    let poll = post(
        &served.url,
        "/api/v1/governance/approval",
        r#"{"workflow_id":"w","run_id":"r","activity_id":"3"}"#,
    );
    assert!(
        poll.contains(r#""patch":{"new_input":{"amount":5}}"#)
            && poll.contains("\"verdict\":\"block\""),
        "{poll}"
    );
    // The event log holds every request with the key masked.
    std::thread::sleep(Duration::from_millis(300));
    let log = std::fs::read_to_string(&events).unwrap();
    assert_eq!(log.lines().count(), 5, "the dev API is not logged");
    assert!(log.contains("Bearer obx_test_****") && !log.contains("obx_test_cli"));
    drop(served);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn check_reports_rule_errors_with_their_position() {
    let dir = std::env::temp_dir().join(format!("openbox-dev-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.toml");
    std::fs::write(
        &good,
        "[[rules]]\nname = \"freeze\"\nverdict = \"block\"\nmatch = { activity_type = \"pay\" }\n",
    )
    .unwrap();
    let out = Command::new(BIN).arg("check").arg(&good).output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("block              freeze"));
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "[[rules]]\nname = \"oops\"\nverdict = \"blocked\"\n").unwrap();
    let out = Command::new(BIN).arg("check").arg(&bad).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("rule 1 (oops)") && err.contains("unknown verdict \"blocked\""),
        "{err}"
    );
    // A duration whose deadline cannot be computed is refused here, not at the first request.
    let far = dir.join("far.toml");
    std::fs::write(
        &far,
        "[[rules]]\nname = \"forever\"\nverdict = \"require_approval\"\napproval_expires_in = \"10000000000h\"\n",
    )
    .unwrap();
    let out = Command::new(BIN).arg("check").arg(&far).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("rule 1 (forever)") && err.contains("longer than ten years"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_fault_settings_refuse_to_start() {
    let out = Command::new(BIN)
        .args(["serve", "--port", "0", "--fault-error-rate", "2"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("error_rate must be between 0 and 1"));
}
