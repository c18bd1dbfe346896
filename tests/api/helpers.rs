//! `spawn_app`: the real application on port 0 against the test issuer, plus typed
//! helpers for raw MCP requests.

use std::sync::Once;
use std::time::Duration;

use serde_json::{Value, json};
use tunnelgate::Application;
use tunnelgate::config::Settings;

use crate::issuer::{AUDIENCE, TEAM, TestIssuer};

pub const PROTOCOL: &str = "2025-06-18";

pub struct TestApp {
    pub address: String,
    pub admin_address: String,
    pub issuer: TestIssuer,
    pub http: reqwest::Client,
}

fn init_logging() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            tunnelgate::init_tracing("debug", tunnelgate::config::LogFormat::Pretty);
        }
    });
}

/// Settings pointing at `issuer`, listening on loopback port 0.
pub fn test_settings(issuer: &TestIssuer) -> Settings {
    let mut settings = Settings::default();
    settings.server.bind = "127.0.0.1:0".parse().unwrap();
    settings.admin.bind = "127.0.0.1:0".parse().unwrap();
    settings.server.public_hostnames = vec!["mcp.example.com".into()];
    settings.access.team_domain = Some(TEAM.parse().unwrap());
    settings.access.audiences = vec![AUDIENCE.into()];
    settings.access.certs_url = Some(issuer.certs_url.parse().unwrap());
    settings.state_dir = std::env::temp_dir().join("tunnelgate-tests");
    // Audit lines on stdout would bury the test output; audit tests use audit.file.
    settings.audit.stdout = false;
    settings
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Spawns the app with key 0 published and `adjust` applied to its settings.
pub async fn spawn_app_with(adjust: impl FnOnce(&mut Settings)) -> TestApp {
    let issuer = TestIssuer::start(&[0]);
    spawn_app_for(issuer, adjust).await
}

pub async fn spawn_app_for(issuer: TestIssuer, adjust: impl FnOnce(&mut Settings)) -> TestApp {
    init_logging();
    let mut settings = test_settings(&issuer);
    adjust(&mut settings);
    let application = Application::build(settings).await.expect("app builds");
    let address = format!("http://{}", application.address());
    let admin_address = format!("http://{}", application.admin_address());
    actix_web::rt::spawn(application.run_until_stopped());
    TestApp {
        address,
        admin_address,
        issuer,
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap(),
    }
}

impl TestApp {
    pub fn mcp_url(&self) -> String {
        format!("{}/mcp", self.address)
    }

    /// POSTs one JSON-RPC message to `/mcp` with `token` (if any).
    pub async fn post_mcp(&self, token: Option<&str>, body: &Value) -> reqwest::Response {
        let mut request = self
            .http
            .post(self.mcp_url())
            .header("Content-Type", "application/json")
            .header("Accept", "application/json, text/event-stream")
            .header("MCP-Protocol-Version", PROTOCOL)
            .json(body);
        if let Some(token) = token {
            request = request.header("Cf-Access-Jwt-Assertion", token);
        }
        request.send().await.unwrap()
    }

    /// A `tools/list` request as a stateless client sends it.
    pub async fn list_tools(&self, token: &str) -> reqwest::Response {
        self.post_mcp(
            Some(token),
            &json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}),
        )
        .await
    }

    /// Calls a tool and returns the JSON-RPC response body.
    pub async fn call_tool(&self, token: &str, name: &str, arguments: Value) -> Value {
        let response = self
            .post_mcp(
                Some(token),
                &json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                        "params": {"name": name, "arguments": arguments}}),
            )
            .await;
        assert_eq!(
            response.status(),
            200,
            "tools/call answered {}",
            response.status()
        );
        read_jsonrpc(response).await
    }

    /// The names `tools/list` shows the holder of `token`, in order.
    pub async fn tool_names(&self, token: &str) -> Vec<String> {
        let listed = read_jsonrpc(self.list_tools(token).await).await;
        listed["result"]["tools"]
            .as_array()
            .unwrap_or_else(|| panic!("no tool list: {listed}"))
            .iter()
            .map(|tool| tool["name"].as_str().unwrap().to_string())
            .collect()
    }

    pub async fn metrics(&self) -> String {
        self.http
            .get(format!("{}/metrics", self.admin_address))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

/// The JSON-RPC message of a response that may be plain JSON or a one-event SSE stream.
pub async fn read_jsonrpc(response: reqwest::Response) -> Value {
    let is_sse = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    let text = response.text().await.unwrap();
    if !is_sse {
        return serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
    }
    text.lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .map(str::trim)
        .filter(|data| !data.is_empty())
        .find_map(|data| {
            serde_json::from_str::<Value>(data)
                .ok()
                .filter(|v| v.get("id").is_some())
        })
        .unwrap_or_else(|| panic!("no JSON-RPC message in stream: {text}"))
}

/// Polls `condition` until it holds or `timeout` passes.
pub async fn eventually<F, Fut>(timeout: Duration, mut condition: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if condition().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
