//! Debian's headless Chromium, driven over the Chrome DevTools Protocol (a WebSocket the
//! browser opens itself): navigate, evaluate, wait, take a screenshot. No driver, no npm.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub struct Browser {
    child: Child,
    socket: Socket,
    session: String,
    next_id: u64,
    _profile: tempfile::TempDir,
}

/// The browser binary: `ENTREE_BRIDGE_TEST_CHROMIUM`, or Debian's (scripts/system-deps.sh
/// installs it). Missing is a failure, not a skip.
fn binary() -> String {
    std::env::var("ENTREE_BRIDGE_TEST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into())
}

impl Browser {
    pub async fn launch() -> Browser {
        let profile = tempfile::tempdir().expect("profile dir");
        let mut child = Command::new(binary())
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--window-size=1000,800",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {} ({e}); scripts/system-deps.sh installs chromium",
                    binary()
                )
            });
        // The browser prints its DevTools WebSocket address on stderr.
        let stderr = child.stderr.take().expect("stderr");
        let url = tokio::task::spawn_blocking(move || {
            let mut lines = BufReader::new(stderr).lines();
            let url = lines.by_ref().map_while(Result::ok).find_map(|l| {
                l.split_once("DevTools listening on ")
                    .map(|(_, u)| u.trim().to_string())
            });
            // Keep draining, so the browser never blocks on a full pipe.
            std::thread::spawn(move || for _ in lines {});
            url
        })
        .await
        .expect("reader")
        .expect("chromium printed its DevTools address");
        let (socket, _) = tokio_tungstenite::connect_async(url.as_str())
            .await
            .expect("DevTools socket");
        let mut browser = Browser {
            child,
            socket,
            session: String::new(),
            next_id: 0,
            _profile: profile,
        };
        let target = browser.call("Target.createTarget", json!({"url": "about:blank"})).await;
        let attached = browser
            .call(
                "Target.attachToTarget",
                json!({"targetId": target["targetId"], "flatten": true}),
            )
            .await;
        browser.session = attached["sessionId"].as_str().expect("session").to_string();
        browser.call("Page.enable", json!({})).await;
        browser.call("Runtime.enable", json!({})).await;
        browser
    }

    /// One DevTools command (on the page's session once attached) and its result.
    pub async fn call(&mut self, method: &str, params: Value) -> Value {
        match self.try_call(method, params).await {
            Ok(result) => result,
            Err(reply) => panic!("{method}: {reply}"),
        }
    }

    /// One DevTools command; its error reply instead of a panic.
    async fn try_call(&mut self, method: &str, params: Value) -> Result<Value, Value> {
        self.call_within(method, params, Duration::from_secs(30))
            .await
            .unwrap_or_else(|| panic!("{method}: no answer"))
    }

    /// One DevTools command; `None` when it has no answer within `within` (a late answer is
    /// skipped by the next command: answers are matched by id).
    async fn call_within(&mut self, method: &str, params: Value, within: Duration) -> Option<Result<Value, Value>> {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({"id": id, "method": method, "params": params});
        if !self.session.is_empty() {
            message["sessionId"] = json!(self.session);
        }
        self.socket
            .send(Message::Text(message.to_string().into()))
            .await
            .expect("send");
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let frame = tokio::time::timeout(left, self.socket.next())
                .await
                .ok()?
                .expect("socket open")
                .expect("frame");
            let Message::Text(text) = frame else { continue };
            let reply: Value = serde_json::from_str(&text).expect("json");
            if reply["id"] == json!(id) {
                if reply.get("error").is_some() {
                    return Some(Err(reply));
                }
                return Some(Ok(reply["result"].clone()));
            }
        }
    }

    /// From here on the page is laid out as on a phone: `width` CSS pixels wide, touch,
    /// twice the pixels (a phone's viewport meta is honoured).
    pub async fn phone(&mut self, width: u32) {
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": 740, "deviceScaleFactor": 2, "mobile": true}),
        )
        .await;
    }

    /// Back to the window's own size.
    pub async fn desktop(&mut self) {
        self.call("Emulation.clearDeviceMetricsOverride", json!({})).await;
    }

    pub async fn goto(&mut self, url: &str) {
        self.call("Page.navigate", json!({"url": url})).await;
    }

    /// The value of a JavaScript expression in the page.
    pub async fn eval(&mut self, expression: &str) -> Value {
        let result = self
            .call(
                "Runtime.evaluate",
                json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
            )
            .await;
        result["result"]["value"].clone()
    }

    /// Waits until `condition` (JavaScript) is true in the page. The page may be navigating
    /// (auto-submitted forms) while it is asked: such an answer counts as "not yet".
    pub async fn wait_for(&mut self, condition: &str, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let asked = self
                .try_call(
                    "Runtime.evaluate",
                    json!({"expression": format!("!!({condition})"), "returnByValue": true}),
                )
                .await;
            if asked.is_ok_and(|r| r["result"]["value"] == json!(true)) {
                return;
            }
            if Instant::now() > deadline {
                let at = self.eval("location.href + '\\n' + document.body.innerText").await;
                panic!("{condition:?} not within {within:?}; the page: {at}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Clicks the first element matching `selector` (a user's click: real events, navigation).
    pub async fn click(&mut self, selector: &str) {
        let found = self
            .eval(&format!(
                "(() => {{ const e = document.querySelector({}); if (!e) return false; e.click(); return true; }})()",
                json!(selector)
            ))
            .await;
        assert_eq!(found, json!(true), "nothing matches {selector}");
    }

    /// A PNG of the page, written to `path`.
    pub async fn screenshot(&mut self, path: &std::path::Path) {
        // Headless Chromium can leave a capture waiting for a frame when its compositor has
        // gone idle (seen on a loaded machine): wake it with a screencast and ask once more.
        let mut shot = None;
        for _ in 0..3 {
            match self
                .call_within(
                    "Page.captureScreenshot",
                    json!({"format": "png"}),
                    Duration::from_secs(15),
                )
                .await
            {
                Some(Ok(result)) => {
                    shot = Some(result);
                    break;
                }
                Some(Err(reply)) => panic!("Page.captureScreenshot: {reply}"),
                None => {
                    self.call("Page.startScreencast", json!({"format": "jpeg", "quality": 10}))
                        .await;
                    tokio::time::sleep(Duration::from_millis(250)).await;
                    self.call("Page.stopScreencast", json!({})).await;
                }
            }
        }
        let shot = shot.expect("Page.captureScreenshot: no answer after waking the compositor twice");
        let png = base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            shot["data"].as_str().expect("data"),
        )
        .expect("base64");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("artifact dir");
        }
        std::fs::write(path, png).expect("write screenshot");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
