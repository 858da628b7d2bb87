//! A small Chrome DevTools Protocol driver for the end-to-end test: launches Debian's headless
//! Chromium with a fresh profile, talks CDP over its websocket, and kills the browser when dropped
//! (so a failing test never leaves one behind).
//!
//! Only the handful of calls the test needs: Target.createTarget / attachToTarget (flat sessions),
//! Page.navigate, Runtime.evaluate, Page.captureScreenshot, WebAuthn.enable and
//! WebAuthn.addVirtualAuthenticator. Every wait is bounded.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;

/// Longest wait for one CDP command's answer.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// Longest wait for Chromium to write its DevTools port.
const LAUNCH_TIMEOUT: Duration = Duration::from_secs(30);

pub(crate) type CdpResult<T> = Result<T, String>;

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Value>>>>;

/// A running headless Chromium and a CDP connection to it.
pub(crate) struct Browser {
    child: Child,
    // Kept so the profile directory lives as long as the browser (removed on drop).
    _profile: tempfile::TempDir,
    outgoing: mpsc::UnboundedSender<Message>,
    pending: Pending,
    next_id: AtomicU64,
    /// Console messages and uncaught exceptions from every page, for failure reports.
    console: Arc<Mutex<Vec<String>>>,
    reader: tokio::task::JoinHandle<()>,
    writer: tokio::task::JoinHandle<()>,
}

impl Browser {
    /// Launches the Chromium at `program` headless with a fresh profile and connects to its
    /// browser endpoint.
    ///
    /// `extra_args` are appended to the fixed flags (e.g. host resolver rules).
    pub(crate) async fn launch(program: &Path, extra_args: &[&str]) -> CdpResult<Browser> {
        let profile = tempfile::Builder::new()
            .prefix("keyward-e2e-chromium-")
            .tempdir()
            .map_err(|e| format!("creating the profile directory: {e}"))?;
        let mut command = Command::new(program);
        command
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-default-apps",
                "--disable-extensions",
                "--mute-audio",
                "--window-size=1000,1100",
                "--remote-debugging-port=0",
                "--remote-debugging-address=127.0.0.1",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(extra_args)
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = command
            .spawn()
            .map_err(|e| format!("starting {}: {e}", program.display()))?;

        let ws_url = match wait_for_devtools(profile.path(), &mut child).await {
            Ok(url) => url,
            Err(e) => {
                kill(&mut child);
                return Err(e);
            }
        };
        let ws = match tokio::time::timeout(
            COMMAND_TIMEOUT,
            tokio_tungstenite::connect_async(ws_url.as_str()),
        )
        .await
        {
            Ok(Ok((ws, _))) => ws,
            Ok(Err(e)) => {
                kill(&mut child);
                return Err(format!("connecting to {ws_url}: {e}"));
            }
            Err(_) => {
                kill(&mut child);
                return Err(format!("connecting to {ws_url}: timed out"));
            }
        };
        let (mut sink, mut stream) = ws.split();
        let (outgoing, mut outgoing_rx) = mpsc::unbounded_channel::<Message>();
        let writer = tokio::spawn(async move {
            while let Some(msg) = outgoing_rx.recv().await {
                if sink.send(msg).await.is_err() {
                    break;
                }
            }
        });
        let pending: Pending = Arc::new(Mutex::new(HashMap::new()));
        let console = Arc::new(Mutex::new(Vec::new()));
        let reader = {
            let pending = pending.clone();
            let console = console.clone();
            tokio::spawn(async move {
                while let Some(Ok(msg)) = stream.next().await {
                    let Message::Text(text) = msg else { continue };
                    let Ok(value) = serde_json::from_str::<Value>(text.as_str()) else {
                        continue;
                    };
                    if let Some(id) = value.get("id").and_then(Value::as_u64) {
                        let waiter = lock(&pending).remove(&id);
                        if let Some(waiter) = waiter {
                            let _ = waiter.send(value);
                        }
                    } else if let Some(line) = describe_event(&value) {
                        lock(&console).push(line);
                    }
                }
            })
        };
        Ok(Browser {
            child,
            _profile: profile,
            outgoing,
            pending,
            next_id: AtomicU64::new(1),
            console,
            reader,
            writer,
        })
    }

    /// Sends one CDP command (to the browser, or to a page when `session` is set) and waits for
    /// its result, bounded by [`COMMAND_TIMEOUT`].
    pub(crate) async fn call(
        &self,
        session: Option<&str>,
        method: &str,
        params: Value,
    ) -> CdpResult<Value> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut message = json!({ "id": id, "method": method, "params": params });
        if let Some(session) = session {
            message["sessionId"] = Value::String(session.to_owned());
        }
        let (tx, rx) = oneshot::channel();
        lock(&self.pending).insert(id, tx);
        self.outgoing
            .send(Message::Text(message.to_string().into()))
            .map_err(|_| format!("{method}: the DevTools connection is closed"))?;
        let answer = match tokio::time::timeout(COMMAND_TIMEOUT, rx).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => return Err(format!("{method}: the DevTools connection closed")),
            Err(_) => {
                lock(&self.pending).remove(&id);
                return Err(format!("{method}: no answer within {COMMAND_TIMEOUT:?}"));
            }
        };
        if let Some(error) = answer.get("error") {
            return Err(format!("{method} failed: {error}"));
        }
        Ok(answer.get("result").cloned().unwrap_or(Value::Null))
    }

    /// Opens a new tab and attaches to it with a flat session.
    pub(crate) async fn new_page(&self) -> CdpResult<Page<'_>> {
        let created = self
            .call(None, "Target.createTarget", json!({ "url": "about:blank" }))
            .await?;
        let target_id = created["targetId"]
            .as_str()
            .ok_or("Target.createTarget: no targetId")?
            .to_owned();
        let attached = self
            .call(
                None,
                "Target.attachToTarget",
                json!({ "targetId": target_id, "flatten": true }),
            )
            .await?;
        let session = attached["sessionId"]
            .as_str()
            .ok_or("Target.attachToTarget: no sessionId")?
            .to_owned();
        let page = Page {
            browser: self,
            session,
        };
        page.call("Page.enable", json!({})).await?;
        page.call("Runtime.enable", json!({})).await?;
        Ok(page)
    }

    /// Console lines and exceptions seen so far.
    pub(crate) fn console(&self) -> Vec<String> {
        lock(&self.console).clone()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.reader.abort();
        self.writer.abort();
        kill(&mut self.child);
    }
}

/// One tab, addressed through its CDP session.
pub(crate) struct Page<'b> {
    browser: &'b Browser,
    session: String,
}

impl Page<'_> {
    /// Sends a command to this page.
    pub(crate) async fn call(&self, method: &str, params: Value) -> CdpResult<Value> {
        self.browser.call(Some(&self.session), method, params).await
    }

    /// Navigates and waits (bounded) until the document has loaded.
    pub(crate) async fn navigate(&self, url: &str) -> CdpResult<()> {
        let answer = self.call("Page.navigate", json!({ "url": url })).await?;
        if let Some(error) = answer.get("errorText").and_then(Value::as_str) {
            return Err(format!("navigating to {url}: {error}"));
        }
        self.wait_for(
            "document.readyState === 'complete'",
            Duration::from_secs(20),
        )
        .await
        .map_err(|e| format!("loading {url}: {e}"))
    }

    /// Evaluates `expression` (awaiting a returned promise) and returns its JSON value.
    pub(crate) async fn eval(&self, expression: &str) -> CdpResult<Value> {
        let answer = self
            .call(
                "Runtime.evaluate",
                json!({
                    "expression": expression,
                    "awaitPromise": true,
                    "returnByValue": true,
                    "userGesture": true,
                    "timeout": 20_000,
                }),
            )
            .await?;
        if let Some(details) = answer.get("exceptionDetails") {
            let text = details["exception"]["description"]
                .as_str()
                .or_else(|| details["text"].as_str())
                .unwrap_or("exception");
            return Err(format!("evaluating `{expression}`: {text}"));
        }
        Ok(answer["result"]
            .get("value")
            .cloned()
            .unwrap_or(Value::Null))
    }

    /// Polls `condition` (a JS expression) until it is truthy, at most `timeout`.
    pub(crate) async fn wait_for(&self, condition: &str, timeout: Duration) -> CdpResult<()> {
        let deadline = Instant::now() + timeout;
        let expression = format!("Boolean({condition})");
        loop {
            let last = self.eval(&expression).await;
            if matches!(last, Ok(Value::Bool(true))) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "`{condition}` still not true after {timeout:?} (last: {last:?})"
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Saves a PNG screenshot of the page to `path`.
    pub(crate) async fn screenshot(&self, path: &Path) -> CdpResult<()> {
        let answer = self
            .call(
                "Page.captureScreenshot",
                json!({ "format": "png", "captureBeyondViewport": false }),
            )
            .await?;
        let data = answer["data"]
            .as_str()
            .ok_or("Page.captureScreenshot: no data")?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(data)
            .map_err(|e| format!("screenshot base64: {e}"))?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        std::fs::write(path, png).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Enables the WebAuthn domain and adds a virtual CTAP2 platform authenticator with resident
    /// keys and user verification that always succeeds. Returns its id.
    pub(crate) async fn add_virtual_authenticator(&self) -> CdpResult<String> {
        self.call("WebAuthn.enable", json!({ "enableUI": false }))
            .await?;
        let answer = self
            .call(
                "WebAuthn.addVirtualAuthenticator",
                json!({ "options": {
                    "protocol": "ctap2",
                    "transport": "internal",
                    "hasResidentKey": true,
                    "hasUserVerification": true,
                    "isUserVerified": true,
                    "automaticPresenceSimulation": true,
                }}),
            )
            .await?;
        answer["authenticatorId"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| "WebAuthn.addVirtualAuthenticator: no authenticatorId".to_owned())
    }

    /// The credentials the virtual authenticator holds.
    pub(crate) async fn authenticator_credentials(
        &self,
        authenticator_id: &str,
    ) -> CdpResult<Vec<Value>> {
        let answer = self
            .call(
                "WebAuthn.getCredentials",
                json!({ "authenticatorId": authenticator_id }),
            )
            .await?;
        Ok(answer["credentials"]
            .as_array()
            .cloned()
            .unwrap_or_default())
    }
}

/// Waits for `DevToolsActivePort` in the profile directory: first line the port, second the
/// browser endpoint path.
async fn wait_for_devtools(profile: &Path, child: &mut Child) -> CdpResult<String> {
    let file: PathBuf = profile.join("DevToolsActivePort");
    let deadline = Instant::now() + LAUNCH_TIMEOUT;
    loop {
        if let Ok(text) = std::fs::read_to_string(&file) {
            let mut lines = text.lines();
            if let (Some(port), Some(path)) = (lines.next(), lines.next())
                && let Ok(port) = port.trim().parse::<u16>()
            {
                return Ok(format!("ws://127.0.0.1:{port}{}", path.trim()));
            }
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("chromium exited early with {status}"));
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "chromium did not write {} within {LAUNCH_TIMEOUT:?}",
                file.display()
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One line for a console message or an uncaught exception event.
fn describe_event(event: &Value) -> Option<String> {
    match event.get("method")?.as_str()? {
        "Runtime.consoleAPICalled" => {
            let params = &event["params"];
            let args: Vec<String> = params["args"]
                .as_array()
                .map(|args| {
                    args.iter()
                        .map(|a| match a.get("value") {
                            Some(Value::String(s)) => s.clone(),
                            Some(v) => v.to_string(),
                            None => a["description"].as_str().unwrap_or("?").to_owned(),
                        })
                        .collect()
                })
                .unwrap_or_default();
            Some(format!(
                "console.{}: {}",
                params["type"].as_str().unwrap_or("log"),
                args.join(" ")
            ))
        }
        "Runtime.exceptionThrown" => Some(format!(
            "uncaught: {}",
            event["params"]["exceptionDetails"]["exception"]["description"]
                .as_str()
                .or_else(|| event["params"]["exceptionDetails"]["text"].as_str())
                .unwrap_or("?")
        )),
        _ => None,
    }
}
