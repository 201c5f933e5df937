//! Headless Chromium driven over the W3C WebDriver protocol, spoken directly to `chromedriver`
//! with reqwest: a handful of endpoints do not justify a WebDriver crate and its TLS stack.
//!
//! [`Browser::start`] finds `chromium` and `chromedriver` (`CHROMIUM`, `CHROMEDRIVER`, else
//! `/usr/bin`); when they are missing it fails in CI (`CI=true`) and reports a skip elsewhere,
//! like [`crate::services::require`]. `cargo xtask test` installs them (Debian packages).

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

/// The W3C key of an element reference in WebDriver answers.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A chromedriver process and one browser session; both end when dropped.
pub struct Browser {
    driver: Child,
    http: reqwest::Client,
    session: String,
    base: String,
}

/// An element on the page.
#[derive(Debug, Clone)]
pub struct Element(String);

fn binary(var: &str, default: &str) -> PathBuf {
    std::env::var_os(var).map_or_else(|| PathBuf::from(default), PathBuf::from)
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session; `None` if they are not installed
    /// (outside CI).
    pub async fn start() -> Option<Browser> {
        let chromium = binary("CHROMIUM", "/usr/bin/chromium");
        let driver = binary("CHROMEDRIVER", "/usr/bin/chromedriver");
        if !chromium.exists() || !driver.exists() {
            let what = format!(
                "{} and {} (Debian packages chromium, chromium-driver)",
                chromium.display(),
                driver.display()
            );
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("the browser test needs {what}, missing in CI");
            }
            eprintln!("SKIPPED: the browser test needs {what}; it fails instead when CI=true");
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(&driver)
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", driver.display()));
        let mut browser = Browser {
            driver: child,
            http: reqwest::Client::new(),
            session: String::new(),
            base: format!("http://127.0.0.1:{port}"),
        };
        browser.wait_for_driver().await;
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1400,1000"],
            },
        }}});
        let answer = browser.call("POST", "/session", caps).await;
        browser.session = answer["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session id in {answer}"))
            .to_owned();
        Some(browser)
    }

    async fn wait_for_driver(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = self
                .http
                .get(format!("{}/status", self.base))
                .send()
                .await
                .ok()
                .map(|r| r.status().is_success());
            if ready == Some(true) {
                return;
            }
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// One WebDriver command; panics on a WebDriver error (tests want the message).
    async fn call(&self, method: &str, path: &str, body: Value) -> Value {
        self.try_call(method, path, body)
            .await
            .unwrap_or_else(|error| panic!("WebDriver {method} {path}: {error}"))
    }

    /// One WebDriver command; a WebDriver error (such as a stale element: the page re-renders
    /// its lists on every live update) is returned.
    async fn try_call(&self, method: &str, path: &str, body: Value) -> Result<Value, Value> {
        let url = format!("{}{path}", self.base);
        let request = match method {
            "GET" => self.http.get(url),
            "DELETE" => self.http.delete(url),
            _ => self.http.post(url).json(&body),
        };
        let answer: Value = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("WebDriver {method} {path}: {e}"))
            .json()
            .await
            .unwrap_or_else(|e| panic!("WebDriver {method} {path}: {e}"));
        if answer["value"].get("error").is_some() {
            return Err(answer["value"].clone());
        }
        Ok(answer["value"].clone())
    }

    fn session_path(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session)
    }

    /// Opens `url`.
    pub async fn goto(&self, url: &str) {
        self.call("POST", &self.session_path("/url"), json!({"url": url}))
            .await;
    }

    /// The elements matching a CSS selector now.
    pub async fn find_all(&self, css: &str) -> Vec<Element> {
        let found = self
            .try_call(
                "POST",
                &self.session_path("/elements"),
                json!({"using": "css selector", "value": css}),
            )
            .await
            .unwrap_or_default();
        found
            .as_array()
            .map(|all| {
                all.iter()
                    .filter_map(|e| e[ELEMENT_KEY].as_str().map(|id| Element(id.to_owned())))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Waits up to `timeout` for an element matching `css` whose text contains `text`, and
    /// returns its text. Elements replaced while looking are looked up again.
    pub async fn wait_for(&self, css: &str, text: &str, timeout: Duration) -> String {
        self.act_on(css, text, timeout, |_| async { Ok(()) }).await
    }

    /// Waits like [`Browser::wait_for`], then clicks the first element matching `inner` inside
    /// it (`inner` empty: the element itself); retried if the page re-rendered in between.
    pub async fn click_in(&self, css: &str, text: &str, inner: &str, timeout: Duration) {
        self.act_on(css, text, timeout, |e| async move {
            let target = if inner.is_empty() {
                e
            } else {
                self.try_find_in(&e, inner).await?
            };
            self.try_call(
                "POST",
                &self.session_path(&format!("/element/{}/click", target.0)),
                json!({}),
            )
            .await
            .map(drop)
        })
        .await;
    }

    async fn act_on<F, Fut>(&self, css: &str, text: &str, timeout: Duration, act: F) -> String
    where
        F: Fn(Element) -> Fut,
        Fut: std::future::Future<Output = Result<(), Value>>,
    {
        let deadline = Instant::now() + timeout;
        loop {
            for e in self.find_all(css).await {
                let Ok(content) = self.try_text(&e).await else {
                    continue;
                };
                if content.contains(text) && act(e).await.is_ok() {
                    return content;
                }
            }
            if Instant::now() > deadline {
                let body = self.page_text().await;
                panic!("no {css:?} containing {text:?} after {timeout:?}; the page reads:\n{body}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn try_text(&self, element: &Element) -> Result<String, Value> {
        let text = self
            .try_call(
                "GET",
                &self.session_path(&format!("/element/{}/text", element.0)),
                Value::Null,
            )
            .await?;
        Ok(text.as_str().unwrap_or_default().to_owned())
    }

    /// The texts of the elements matching `css` now.
    pub async fn texts(&self, css: &str) -> Vec<String> {
        let mut out = Vec::new();
        for e in self.find_all(css).await {
            if let Ok(t) = self.try_text(&e).await {
                out.push(t);
            }
        }
        out
    }

    /// The visible text of the whole page.
    pub async fn page_text(&self) -> String {
        self.texts("body").await.concat()
    }

    async fn try_find_in(&self, parent: &Element, css: &str) -> Result<Element, Value> {
        let found = self
            .try_call(
                "POST",
                &self.session_path(&format!("/element/{}/element", parent.0)),
                json!({"using": "css selector", "value": css}),
            )
            .await?;
        found[ELEMENT_KEY]
            .as_str()
            .map(|id| Element(id.to_owned()))
            .ok_or(found)
    }

    /// Types `text` into an input.
    pub async fn type_into(&self, element: &Element, text: &str) {
        self.call(
            "POST",
            &self.session_path(&format!("/element/{}/value", element.0)),
            json!({"text": text}),
        )
        .await;
    }

    /// Empties an input.
    pub async fn clear(&self, element: &Element) {
        self.call(
            "POST",
            &self.session_path(&format!("/element/{}/clear", element.0)),
            json!({}),
        )
        .await;
    }

    /// Writes a PNG screenshot of the window to `path`.
    pub async fn screenshot(&self, path: &Path) {
        let data = self
            .call("GET", &self.session_path("/screenshot"), Value::Null)
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(data.as_str().expect("screenshot is base64 text"))
            .expect("screenshot decodes");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("screenshot folder");
        }
        std::fs::write(path, png).expect("screenshot written");
    }
}

impl Browser {
    /// Ends the session (Chromium exits) and then chromedriver.
    pub async fn close(mut self) {
        let path = self.session_path("");
        let _ = self
            .http
            .delete(format!("{}{path}", self.base))
            .send()
            .await;
        self.session.clear();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // chromedriver runs in its own process group with the Chromium it starts: killing the
        // group leaves no browser behind even when a test panics before `close`.
        let _ = Command::new("kill")
            // `--`: without it a negative pid can be read as an option (and `kill -KILL -1`
            // would end every process of the user).
            .args(["-s", "KILL", "--", &format!("-{}", self.driver.id())])
            .status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
