//! A W3C WebDriver client of the few commands the console's browser test needs, over HTTP to
//! a real ChromeDriver driving a real headless Chromium (Debian's `chromium` and
//! `chromium-driver`, which `scripts/test.sh` installs).

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

/// The key under which WebDriver names an element.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// A ChromeDriver process, killed with the browsers it started when dropped.
pub struct ChromeDriver {
    child: Child,
    url: String,
}

impl ChromeDriver {
    pub async fn start(port: u16) -> ChromeDriver {
        assert!(
            Path::new(CHROMEDRIVER).exists() && Path::new(CHROMIUM).exists(),
            "{CHROMEDRIVER} or {CHROMIUM} is missing: scripts/test.sh installs Debian's \
             chromium and chromium-driver"
        );
        // In a process group of its own, with the browsers it starts: a failed test does not
        // close its session, and killing the driver alone would leave Chromium running.
        let child = Command::new(CHROMEDRIVER)
            .process_group(0)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let driver = ChromeDriver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(response) = reqwest::get(format!("{}/status", driver.url)).await
                && let Ok(status) = response.json::<Value>().await
                && status["value"]["ready"] == true
            {
                return driver;
            }
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A new headless browser with an empty profile in `profile`.
    pub async fn session(&self, profile: &Path) -> Browser {
        // Without the networking flags Chromium keeps calling Google's hosts, which this
        // machine's closed network refuses.
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--window-size=1280,1000",
                    format!("--user-data-dir={}", profile.display()),
                ]
            }
        }}});
        let http = reqwest::Client::new();
        let created = call(
            &http,
            reqwest::Method::POST,
            &format!("{}/session", self.url),
            Some(capabilities),
        )
        .await;
        let id = created["sessionId"].as_str().unwrap().to_string();
        Browser {
            http,
            session: format!("{}/session/{id}", self.url),
        }
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-s", "KILL", "--", &group])
            .status();
        let _ = self.child.wait();
    }
}

async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    body: Option<Value>,
) -> Value {
    let mut request = http.request(method.clone(), url);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let answer: Value = response.json().await.unwrap();
    assert!(status.is_success(), "{method} {url}: {status} {answer}");
    answer["value"].clone()
}

/// One browser session.
pub struct Browser {
    http: reqwest::Client,
    session: String,
}

/// An element of the page.
pub struct Element<'a> {
    browser: &'a Browser,
    id: String,
}

impl Browser {
    async fn command(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        call(&self.http, method, &format!("{}{path}", self.session), body).await
    }

    pub async fn goto(&self, url: &str) {
        self.command(reqwest::Method::POST, "/url", Some(json!({"url": url})))
            .await;
    }

    pub async fn current_url(&self) -> String {
        self.command(reqwest::Method::GET, "/url", None)
            .await
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Every element `css` selects.
    pub async fn find_all(&self, css: &str) -> Vec<Element<'_>> {
        let found = self
            .command(
                reqwest::Method::POST,
                "/elements",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        found
            .as_array()
            .unwrap()
            .iter()
            .map(|element| Element {
                browser: self,
                id: element[ELEMENT].as_str().unwrap().to_string(),
            })
            .collect()
    }

    /// The first element `css` selects, once there is one: a click that submits a form
    /// returns before the next page has loaded. Fails the test after 30 seconds.
    pub async fn find(&self, css: &str) -> Element<'_> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(element) = self.find_all(css).await.into_iter().next() {
                return element;
            }
            let url = self.current_url().await;
            assert!(Instant::now() < deadline, "no {css} on {url}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the page's URL satisfies `done` (the page a click leads to has loaded).
    pub async fn wait_for_url(&self, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let url = self.current_url().await;
            if done(&url) {
                return url;
            }
            assert!(Instant::now() < deadline, "still on {url}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Saves the viewport as a PNG file.
    pub async fn screenshot(&self, path: &Path) {
        let png = self
            .command(reqwest::Method::GET, "/screenshot", None)
            .await;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap())
            .unwrap();
        assert!(bytes.starts_with(b"\x89PNG"), "not a PNG");
        std::fs::write(path, bytes).unwrap();
    }

    pub async fn close(self) {
        call(&self.http, reqwest::Method::DELETE, &self.session, None).await;
    }
}

impl Element<'_> {
    fn path(&self, command: &str) -> String {
        format!("/element/{}/{command}", self.id)
    }

    pub async fn text(&self) -> String {
        self.browser
            .command(reqwest::Method::GET, &self.path("text"), None)
            .await
            .as_str()
            .unwrap()
            .to_string()
    }

    pub async fn attribute(&self, name: &str) -> Option<String> {
        self.browser
            .command(
                reqwest::Method::GET,
                &self.path(&format!("attribute/{name}")),
                None,
            )
            .await
            .as_str()
            .map(String::from)
    }

    pub async fn type_text(&self, text: &str) {
        self.browser
            .command(reqwest::Method::POST, &self.path("clear"), Some(json!({})))
            .await;
        self.browser
            .command(
                reqwest::Method::POST,
                &self.path("value"),
                Some(json!({"text": text})),
            )
            .await;
    }

    pub async fn click(&self) {
        self.browser
            .command(reqwest::Method::POST, &self.path("click"), Some(json!({})))
            .await;
    }
}
