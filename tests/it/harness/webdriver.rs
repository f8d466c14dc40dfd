//! A small W3C WebDriver client for the UI tests: real headless Chromium via chromedriver.
//!
//! `Driver::start()` runs `/usr/bin/chromedriver` on a free loopback port (in its own
//! process group, so dropping the `Driver` ends chromedriver and every browser it started);
//! `Driver::session()` opens a fresh headless Chromium with its own temporary profile.
//! `Session` wraps the few commands the tests need (navigate, find, click, type, text,
//! execute script, screenshot, viewport, the requests sent) plus bounded `wait_*` helpers that poll the DOM.
//! Only loopback is ever contacted. If Chromium is missing, `start` says how to install it.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
/// The W3C key of an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A running chromedriver.
pub struct Driver {
    child: Child,
    base: String,
    http: reqwest::Client,
}

/// Whether Chromium and chromedriver are installed (tests skip loudly when not).
pub fn available() -> bool {
    Path::new(CHROMEDRIVER).exists() && Path::new(CHROMIUM).exists()
}

fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

impl Driver {
    /// Starts chromedriver on 127.0.0.1 and waits until it says it is ready. A port picked
    /// as free can be taken by another test before chromedriver binds it: then chromedriver
    /// exits and another port is tried (3 attempts, up to 45 s each on a loaded machine).
    pub async fn start() -> Result<Driver> {
        if !available() {
            bail!(
                "{CHROMIUM} or {CHROMEDRIVER} missing: apt-get install -y chromium chromium-driver"
            );
        }
        let mut last = None;
        for _ in 0..3 {
            match Self::start_once().await {
                Ok(d) => return Ok(d),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("chromedriver did not start")))
    }

    async fn start_once() -> Result<Driver> {
        let port = free_port()?;
        let mut cmd = Command::new(CHROMEDRIVER);
        cmd.arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let child = cmd.spawn().context("spawn chromedriver")?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()?;
        let d = Driver {
            child,
            base: format!("http://127.0.0.1:{port}"),
            http,
        };
        let deadline = Instant::now() + Duration::from_secs(45);
        let mut d = d;
        loop {
            if let Ok(Some(status)) = d.child.try_wait() {
                bail!("chromedriver exited ({status}) before it was ready on port {port}");
            }
            let ready = d
                .http
                .get(format!("{}/status", d.base))
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .ok();
            if let Some(r) = ready {
                let v: Value = r.json().await.unwrap_or(Value::Null);
                if v["value"]["ready"] == json!(true) {
                    return Ok(d);
                }
            }
            if Instant::now() > deadline {
                bail!("chromedriver did not become ready on port {port} within 45 s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A new headless Chromium session with a fresh profile directory.
    pub async fn session(&self) -> Result<Session> {
        self.session_with(&[]).await
    }

    /// [`Driver::session`] with extra Chromium switches (e.g. `--host-resolver-rules`).
    pub async fn session_with(&self, extra: &[String]) -> Result<Session> {
        self.open_session(extra, json!({})).await
    }

    /// [`Driver::session`] whose network requests are recorded (Chromium's performance
    /// log, read with [`Session::requests_sent`]).
    pub async fn session_recording_network(&self) -> Result<Session> {
        self.open_session(
            &[],
            json!({ "goog:loggingPrefs": { "performance": "ALL" } }),
        )
        .await
    }

    async fn open_session(&self, extra: &[String], more_caps: Value) -> Result<Session> {
        let profile = tempfile::tempdir()?;
        let mut args = vec![
            "--headless=new".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--no-first-run".into(),
            "--disable-sync".into(),
            "--hide-scrollbars".into(),
            "--window-size=1280,800".into(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        args.extend(extra.iter().cloned());
        let mut always = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
        });
        if let (Some(a), Some(m)) = (always.as_object_mut(), more_caps.as_object()) {
            a.extend(m.clone());
        }
        let caps = json!({"capabilities": {"alwaysMatch": always}});
        let r: Value = self
            .http
            .post(format!("{}/session", self.base))
            .json(&caps)
            .send()
            .await?
            .json()
            .await?;
        let id = r["value"]["sessionId"]
            .as_str()
            .ok_or_else(|| anyhow!("new session failed: {r}"))?;
        Ok(Session {
            http: self.http.clone(),
            base: format!("{}/session/{id}", self.base),
            _profile: profile,
        })
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The process group holds chromedriver and the browsers it started.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.wait();
    }
}

/// One browser session.
pub struct Session {
    http: reqwest::Client,
    base: String,
    _profile: tempfile::TempDir,
}

/// An element reference.
#[derive(Clone, Debug)]
pub struct Element(String);

impl Session {
    async fn cmd(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<Value> {
        let url = format!("{}{path}", self.base);
        let mut req = self.http.request(method.clone(), &url);
        if let Some(b) = body {
            req = req.json(&b);
        } else if method == reqwest::Method::POST {
            req = req.json(&json!({}));
        }
        let r = req
            .send()
            .await
            .with_context(|| format!("{method} {path}"))?;
        let status = r.status();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!(
                "webdriver {method} {path}: {status}: {} {}",
                v["value"]["error"].as_str().unwrap_or(""),
                v["value"]["message"]
                    .as_str()
                    .unwrap_or("")
                    .lines()
                    .next()
                    .unwrap_or("")
            );
        }
        Ok(v["value"].clone())
    }

    /// Navigates and waits for the load event.
    pub async fn goto(&self, url: &str) -> Result<()> {
        self.cmd(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            .await
            .map(|_| ())
    }

    /// The first element matching `css`, now.
    pub async fn find(&self, css: &str) -> Result<Element> {
        let v = self
            .cmd(
                reqwest::Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await?;
        v[ELEMENT]
            .as_str()
            .map(|s| Element(s.to_string()))
            .ok_or_else(|| anyhow!("no element id in {v}"))
    }

    /// Clicks an element.
    pub async fn click_el(&self, e: &Element) -> Result<()> {
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{}/click", e.0),
            None,
        )
        .await
        .map(|_| ())
    }

    /// Waits (≤ `timeout`) for `css` to be displayed and enabled, then clicks it.
    pub async fn click(&self, css: &str) -> Result<()> {
        let sel = css.to_string();
        self.wait_js(
            &format!("clickable {css}"),
            Duration::from_secs(10),
            "const e = document.querySelector(arguments[0]); return !!(e && e.offsetParent !== null && !e.disabled);",
            json!([sel]),
        )
        .await?;
        let e = self.find(css).await?;
        self.click_el(&e).await
    }

    /// Clears an input and types `text` into it.
    pub async fn type_into(&self, css: &str, text: &str) -> Result<()> {
        let e = self.wait_for(css, Duration::from_secs(10)).await?;
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{}/clear", e.0),
            None,
        )
        .await?;
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{}/value", e.0),
            Some(json!({ "text": text })),
        )
        .await
        .map(|_| ())
    }

    /// The rendered text of the first element matching `css` ("" when absent).
    pub async fn text(&self, css: &str) -> Result<String> {
        let v = self
            .exec(
                "const e = document.querySelector(arguments[0]); return e ? (e.innerText ?? e.textContent) : '';",
                json!([css]),
            )
            .await?;
        Ok(v.as_str().unwrap_or("").to_string())
    }

    /// Runs `script` (a function body; `arguments` are `args`) in the page; returns its value.
    pub async fn exec(&self, script: &str, args: Value) -> Result<Value> {
        self.cmd(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({ "script": script, "args": args })),
        )
        .await
    }

    /// Waits for an element matching `css` to exist and be displayed.
    pub async fn wait_for(&self, css: &str, timeout: Duration) -> Result<Element> {
        self.wait_js(
            &format!("visible {css}"),
            timeout,
            "const e = document.querySelector(arguments[0]); return !!(e && e.getClientRects().length > 0 && getComputedStyle(e).visibility !== 'hidden');",
            json!([css]),
        )
        .await?;
        self.find(css).await
    }

    /// Waits until the text of `css` contains `needle`; returns the text.
    pub async fn wait_text(&self, css: &str, needle: &str, timeout: Duration) -> Result<String> {
        let deadline = Instant::now() + timeout;
        let mut last = String::new();
        while Instant::now() < deadline {
            last = self.text(css).await.unwrap_or_default();
            if last.contains(needle) {
                return Ok(last);
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
        bail!("after {timeout:?}, `{css}` does not contain {needle:?}; its text is {last:?}")
    }

    /// Waits until `script` returns a truthy value; returns it.
    pub async fn wait_js(
        &self,
        what: &str,
        timeout: Duration,
        script: &str,
        args: Value,
    ) -> Result<Value> {
        let deadline = Instant::now() + timeout;
        let mut last = Value::Null;
        while Instant::now() < deadline {
            last = self.exec(script, args.clone()).await?;
            let truthy = match &last {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::String(s) => !s.is_empty(),
                Value::Number(n) => n.as_f64() != Some(0.0),
                _ => true,
            };
            if truthy {
                return Ok(last);
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
        bail!("timed out after {timeout:?} waiting for {what} (last: {last})")
    }

    /// Sets the viewport exactly (CSS pixels), as a phone when `mobile`.
    pub async fn viewport(&self, width: u32, height: u32, mobile: bool) -> Result<()> {
        self.cmd(
            reqwest::Method::POST,
            "/goog/cdp/execute",
            Some(
                json!({"cmd": "Emulation.setDeviceMetricsOverride", "params": {
                "width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile}}),
            ),
        )
        .await
        .map(|_| ())
    }

    /// Emulates the user's colour-scheme preference (`prefers-color-scheme: dark` or light).
    pub async fn color_scheme(&self, dark: bool) -> Result<()> {
        let value = if dark { "dark" } else { "light" };
        self.cmd(
            reqwest::Method::POST,
            "/goog/cdp/execute",
            Some(json!({"cmd": "Emulation.setEmulatedMedia", "params": {
                "features": [{"name": "prefers-color-scheme", "value": value}]}})),
        )
        .await
        .map(|_| ())
    }

    /// Runs `source` in every document this session opens from now on, before its scripts.
    pub async fn on_new_document(&self, source: &str) -> Result<()> {
        self.cmd(
            reqwest::Method::POST,
            "/goog/cdp/execute",
            Some(json!({"cmd": "Page.addScriptToEvaluateOnNewDocument",
                "params": {"source": source}})),
        )
        .await
        .map(|_| ())
    }

    /// The method and URL of every request the browser sent since the last call (from
    /// Chromium's network events; the session must be [`Driver::session_recording_network`]).
    pub async fn requests_sent(&self) -> Result<Vec<(String, String)>> {
        let entries = self
            .cmd(
                reqwest::Method::POST,
                "/se/log",
                Some(json!({ "type": "performance" })),
            )
            .await?;
        let mut out = Vec::new();
        for e in entries.as_array().into_iter().flatten() {
            let Some(text) = e["message"].as_str() else {
                continue;
            };
            let m: Value = serde_json::from_str(text).unwrap_or(Value::Null);
            if m["message"]["method"] == "Network.requestWillBeSent" {
                let req = &m["message"]["params"]["request"];
                out.push((
                    req["method"].as_str().unwrap_or("").to_string(),
                    req["url"].as_str().unwrap_or("").to_string(),
                ));
            }
        }
        Ok(out)
    }

    /// Chromium's DevTools events (`{method, params}`) since the last read of the log (the
    /// session must be [`Driver::session_recording_network`]).
    pub async fn devtools_events(&self) -> Result<Vec<Value>> {
        let entries = self
            .cmd(
                reqwest::Method::POST,
                "/se/log",
                Some(json!({ "type": "performance" })),
            )
            .await?;
        let mut out = Vec::new();
        for e in entries.as_array().into_iter().flatten() {
            if let Some(text) = e["message"].as_str() {
                let m: Value = serde_json::from_str(text).unwrap_or(Value::Null);
                out.push(m["message"].clone());
            }
        }
        Ok(out)
    }

    /// Saves a PNG screenshot of the viewport.
    pub async fn screenshot(&self, path: &Path) -> Result<()> {
        let v = self.cmd(reqwest::Method::GET, "/screenshot", None).await?;
        let b64 = v.as_str().ok_or_else(|| anyhow!("no screenshot data"))?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, base64_decode(b64)?)?;
        Ok(())
    }

    /// Ends the session (closes the browser).
    pub async fn quit(self) -> Result<()> {
        self.http.delete(&self.base).send().await?;
        Ok(())
    }
}

/// Standard base64 (the screenshot encoding), without pulling in a crate for it.
fn base64_decode(s: &str) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' | b'\n' | b'\r' => continue,
            _ => bail!("bad base64 byte {c}"),
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Ok(out)
}

#[test]
fn base64_decodes() {
    assert_eq!(base64_decode("aGVsbG8=").expect("valid base64"), b"hello");
    assert_eq!(base64_decode("aGk=").expect("valid base64"), b"hi");
    assert_eq!(base64_decode("").expect("valid base64"), b"");
}
