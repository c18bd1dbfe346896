//! The page at `/` over HTTP: who you are, the tools after policy, try-a-tool through the
//! registry (and only from the page itself), the browser's 403 page, and `[web] enabled`.
//! tests/api/web_browser.rs drives the same page in headless Chromium.

use std::time::Duration;

use serde_json::{Value, json};
use tunnelgate::config::{AccessClass, PolicyRule, Settings};

use crate::api_tools::write_document;
use crate::fake_upstream::{FakeUpstream, Scripted};
use crate::helpers::{TestApp, eventually, spawn_app_with};
use crate::issuer::{TokenBuilder, now};

/// The public hostname the test app serves; requests name it as `Host`, forms post from it.
pub const HOST: &str = "mcp.example.com";
pub const ORIGIN: &str = "https://mcp.example.com";
const BROWSER_ACCEPT: &str =
    "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8";

pub struct PageFixture {
    pub app: TestApp,
    pub upstream: FakeUpstream,
    _document: tempfile::NamedTempFile,
}

/// The app over the demo bookshop's document, its API played by a recording fake upstream;
/// everyone may write unless `adjust` says otherwise.
pub async fn spawn_page(adjust: impl FnOnce(&mut Settings)) -> PageFixture {
    let upstream = FakeUpstream::start();
    let document = write_document(&tunnelgate::demo_api_document());
    let path = document.path().display().to_string();
    let base_url = upstream.url.clone();
    let app = spawn_app_with(|settings| {
        settings.upstream.spec = Some(path.parse().unwrap());
        settings.upstream.base_url = Some(base_url.parse().unwrap());
        settings.tools.read_only = false;
        settings.policy.default_access = AccessClass::Write;
        adjust(settings);
    })
    .await;
    PageFixture {
        app,
        upstream,
        _document: document,
    }
}

fn read_only_for(email: &str) -> PolicyRule {
    PolicyRule {
        email: Some(email.parse().unwrap()),
        service: None,
        group: None,
        tools: vec!["*".parse().unwrap()],
        access: AccessClass::Read,
    }
}

impl PageFixture {
    /// A browser-like GET of `path` as the holder of `token` (if any).
    pub async fn get(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        let mut request = self
            .app
            .http
            .get(format!("{}{path}", self.app.address))
            .header("Host", HOST)
            .header("Accept", BROWSER_ACCEPT);
        if let Some(token) = token {
            request = request.header("Cf-Access-Jwt-Assertion", token);
        }
        request.send().await.unwrap()
    }

    pub async fn page_text(&self, path: &str, token: &str) -> String {
        let response = self.get(path, Some(token)).await;
        assert_eq!(response.status(), 200, "GET {path}");
        response.text().await.unwrap()
    }

    /// The form token of the tool page at `/tools/{tool}`.
    pub async fn form_token(&self, tool: &str, token: &str) -> String {
        let page = self.page_text(&format!("/tools/{tool}"), token).await;
        let marker = "name=\"csrf\" value=\"";
        let start = page.find(marker).expect("a form token") + marker.len();
        page[start..].split('"').next().unwrap().to_string()
    }

    /// POSTs the try-a-tool form of `tool` with `fields`, from `origin` (if any).
    pub async fn post_form(
        &self,
        tool: &str,
        token: &str,
        origin: Option<&str>,
        fields: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut request = self
            .app
            .http
            .post(format!("{}/tools/{tool}", self.app.address))
            .header("Host", HOST)
            .header("Accept", BROWSER_ACCEPT)
            .header("Cf-Access-Jwt-Assertion", token)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(
                url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(fields)
                    .finish(),
            );
        if let Some(origin) = origin {
            request = request.header("Origin", origin);
        }
        request.send().await.unwrap()
    }

    /// Fills in the form token and posts from the page's own origin.
    pub async fn submit(&self, tool: &str, token: &str, fields: &[(&str, &str)]) -> (u16, String) {
        let csrf = self.form_token(tool, token).await;
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        let response = self.post_form(tool, token, Some(ORIGIN), &all).await;
        let status = response.status().as_u16();
        (status, response.text().await.unwrap())
    }
}

#[actix_web::test]
async fn shows_the_signed_in_identity_and_exactly_the_tools_policy_allows() {
    let fx =
        spawn_page(|settings| settings.policy.rules = vec![read_only_for("ada@example.com")]).await;
    let token = TokenBuilder::user("ada@example.com").build();

    let page = fx.page_text("/", &token).await;

    assert!(page.contains("ada@example.com"));
    for visible in ["whoami", "books_list", "books_get"] {
        assert!(
            page.contains(&format!("id=\"tool-{visible}\"")),
            "{visible} missing"
        );
    }
    for hidden in ["books_create", "books_delete"] {
        assert!(
            !page.contains(&format!("id=\"tool-{hidden}\"")),
            "{hidden} shown"
        );
    }
    assert!(page.contains("4 tools in the catalog, 2 of them available to you"));
}

#[actix_web::test]
async fn tells_a_person_without_any_api_tool_why() {
    let fx = spawn_page(|settings| settings.policy.default_access = AccessClass::None).await;
    let token = TokenBuilder::user("eve@example.com").build();

    let page = fx.page_text("/", &token).await;

    assert!(page.contains("You have no access to any of the API"));
    assert!(page.contains("No policy rule matches you, so the default access applies: none."));
}

#[actix_web::test]
async fn a_search_without_javascript_hides_the_tools_it_does_not_match() {
    let fx = spawn_page(|_| {}).await;
    let token = TokenBuilder::user("ada@example.com").build();

    let page = fx.page_text("/?q=remove", &token).await;

    assert!(page.contains("1 of 5 tools shown"));
    assert!(page.contains("<li class=\"tool\" id=\"tool-books_delete\">"));
    assert!(page.contains("<li class=\"tool\" id=\"tool-books_list\" hidden>"));
}

#[actix_web::test]
async fn fills_the_connect_section_with_the_public_hostname() {
    let fx = spawn_page(|_| {}).await;
    let token = TokenBuilder::user("ada@example.com").build();

    let page = fx.page_text("/", &token).await;

    assert!(page.contains(
        "claude mcp add --transport http --scope user tunnelgate https://mcp.example.com/mcp"
    ));
    assert!(page.contains("mcp-remote@0.15.1"));
}

#[actix_web::test]
async fn every_page_carries_the_strict_headers() {
    let fx = spawn_page(|_| {}).await;
    let token = TokenBuilder::user("ada@example.com").build();

    for path in ["/", "/tools/books_list"] {
        let response = fx.get(path, Some(&token)).await;

        let header = |name: &str| response.headers()[name].to_str().unwrap().to_string();
        let policy = header("content-security-policy");
        assert!(policy.starts_with("default-src 'none'; script-src 'self'; style-src 'self'"));
        assert!(policy.contains("frame-ancestors 'none'"));
        assert!(policy.contains("form-action 'self'"));
        assert_eq!(header("x-content-type-options"), "nosniff");
        assert_eq!(header("referrer-policy"), "same-origin");
        assert_eq!(header("cache-control"), "no-store");
    }
}

#[actix_web::test]
async fn serves_its_assets_behind_the_same_guard() {
    let fx = spawn_page(|_| {}).await;
    let token = TokenBuilder::user("ada@example.com").build();

    let stylesheet = fx.get("/assets/page.css", Some(&token)).await;
    let without_token = fx.get("/assets/page.js", None).await;

    assert_eq!(stylesheet.status(), 200);
    assert_eq!(
        stylesheet.headers()["content-type"],
        "text/css; charset=utf-8"
    );
    assert_eq!(without_token.status(), 403);
}

#[actix_web::test]
async fn a_browser_without_a_token_gets_the_403_page_and_an_api_client_keeps_json() {
    let fx = spawn_page(|_| {}).await;

    let browser = fx.get("/", None).await;
    let api_client = fx
        .app
        .http
        .get(format!("{}/", fx.app.address))
        .header("Accept", "application/json, text/event-stream")
        .send()
        .await
        .unwrap();

    assert_eq!(browser.status(), 403);
    assert_eq!(
        browser.headers()["content-type"],
        "text/html; charset=utf-8"
    );
    assert!(
        browser.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'none'")
    );
    let page = browser.text().await.unwrap();
    assert!(page.contains("Sign-in required"));
    assert!(page.contains("No Cloudflare Access token came with this request"));
    assert_eq!(api_client.status(), 403);
    assert_eq!(api_client.headers()["content-type"], "application/json");
    let body: Value = api_client.json().await.unwrap();
    assert_eq!(body["error"], "access_denied");
    assert_eq!(body["reason"], "missing");
}

#[actix_web::test]
async fn a_browser_with_an_expired_token_is_told_to_sign_in_again() {
    let fx = spawn_page(|_| {}).await;
    let expired = TokenBuilder::user("ada@example.com")
        .claim("exp", json!(now() - 600))
        .build();
    let other_app = TokenBuilder::user("ada@example.com")
        .claim("aud", json!(["someone-elses-app"]))
        .build();

    let expired_page = fx.get("/", Some(&expired)).await.text().await.unwrap();
    let other_app_page = fx.get("/", Some(&other_app)).await.text().await.unwrap();

    assert!(expired_page.contains("Your sign-in has expired"));
    assert!(expired_page.contains("reason expired"));
    assert!(other_app_page.contains("Signed in to a different application"));
}

#[actix_web::test]
async fn calls_a_tool_as_the_person_and_audits_it_as_coming_from_the_page() {
    let audit = tempfile::tempdir().unwrap();
    let audit_file = audit.path().join("audit.jsonl");
    let fx = spawn_page(|settings| settings.audit.file = Some(audit_file.clone())).await;
    fx.upstream.script(
        "/v1/books",
        vec![Scripted::json(
            200,
            json!({"items": [{"id": "bk_9", "title": "Dune"}]}),
        )],
    );
    let token = TokenBuilder::user("ada@example.com").build();

    let (status, page) = fx.submit("books_list", &token, &[("arg.limit", "2")]).await;

    assert_eq!(status, 200);
    assert!(
        page.contains("&quot;title&quot;: &quot;Dune&quot;"),
        "{page}"
    );
    let sent = fx.upstream.requests_to("/v1/books");
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].target, "/v1/books?limit=2");
    eventually(Duration::from_secs(5), || async {
        std::fs::read_to_string(&audit_file).is_ok_and(|text| text.contains("tool_call"))
    })
    .await;
    let event: Value = std::fs::read_to_string(&audit_file)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .find(|event| event["event"] == "tool_call")
        .unwrap();
    assert_eq!(event["via"], "web_page");
    assert_eq!(event["principal"], "ada@example.com");
    assert_eq!(event["tool"], "books_list");
}

#[actix_web::test]
async fn invalid_arguments_show_the_validation_error_and_never_reach_the_upstream() {
    let fx = spawn_page(|_| {}).await;
    let token = TokenBuilder::user("ada@example.com").build();

    let (status, page) = fx
        .submit("books_list", &token, &[("arg.limit", "500")])
        .await;

    assert_eq!(status, 200);
    assert!(
        page.contains("limit: 500 is greater than the maximum of 100"),
        "{page}"
    );
    assert!(fx.upstream.recorded().is_empty());
}

#[actix_web::test]
async fn a_write_tool_shows_the_call_and_waits_for_confirmation() {
    let fx = spawn_page(|_| {}).await;
    let token = TokenBuilder::user("ada@example.com").build();
    let body = r#"{"title": "Dune", "author": "Herbert", "year": 1965}"#;

    let (status, page) = fx
        .submit("books_create", &token, &[("arg.body", body)])
        .await;

    assert_eq!(status, 200);
    assert!(page.contains("Confirm: this tool changes data"));
    assert!(fx.upstream.recorded().is_empty());

    let (status, _) = fx
        .submit(
            "books_create",
            &token,
            &[("arg.body", body), ("confirm", "yes")],
        )
        .await;

    assert_eq!(status, 200);
    let sent = fx.upstream.requests_to("/v1/books");
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].method, "POST");
}

#[actix_web::test]
async fn refuses_a_cross_site_post_and_calls_nothing() {
    // An extra origin the allowlist admits (the Inspector's) is still not the page's own.
    let fx = spawn_page(|settings| {
        settings.server.allowed_origins = vec!["http://localhost:6274".parse().unwrap()];
    })
    .await;
    let token = TokenBuilder::user("ada@example.com").build();
    let csrf = fx.form_token("books_list", &token).await;

    let foreign = fx
        .post_form(
            "books_list",
            &token,
            Some("http://localhost:6274"),
            &[("csrf", &csrf)],
        )
        .await;
    let no_origin = fx
        .post_form("books_list", &token, None, &[("csrf", &csrf)])
        .await;
    let unlisted = fx
        .post_form(
            "books_list",
            &token,
            Some("https://evil.example"),
            &[("csrf", &csrf)],
        )
        .await;

    assert_eq!(foreign.status(), 403);
    assert!(
        foreign
            .text()
            .await
            .unwrap()
            .contains("Nothing was called.")
    );
    assert_eq!(no_origin.status(), 403);
    assert_eq!(unlisted.status(), 403);
    assert!(fx.upstream.recorded().is_empty());
}

#[actix_web::test]
async fn refuses_a_post_without_the_form_token_or_with_someone_elses() {
    let fx = spawn_page(|_| {}).await;
    let ada = TokenBuilder::user("ada@example.com").build();
    let bob = TokenBuilder::user("bob@example.com").build();
    let bobs_csrf = fx.form_token("books_list", &bob).await;

    let missing = fx.post_form("books_list", &ada, Some(ORIGIN), &[]).await;
    let borrowed = fx
        .post_form("books_list", &ada, Some(ORIGIN), &[("csrf", &bobs_csrf)])
        .await;

    assert_eq!(missing.status(), 403);
    assert!(
        missing
            .text()
            .await
            .unwrap()
            .contains("the form carries no token")
    );
    assert_eq!(borrowed.status(), 403);
    assert!(fx.upstream.recorded().is_empty());
}

#[actix_web::test]
async fn a_tool_the_policy_hides_cannot_be_opened_or_called_from_the_page() {
    let fx =
        spawn_page(|settings| settings.policy.rules = vec![read_only_for("ada@example.com")]).await;
    let token = TokenBuilder::user("ada@example.com").build();
    let csrf = fx.form_token("books_list", &token).await;

    let opened = fx.get("/tools/books_delete", Some(&token)).await;
    let called = fx
        .post_form(
            "books_delete",
            &token,
            Some(ORIGIN),
            &[("csrf", &csrf), ("arg.id", "bk_1"), ("confirm", "yes")],
        )
        .await;

    assert_eq!(opened.status(), 404);
    assert_eq!(called.status(), 404);
    assert!(fx.upstream.recorded().is_empty());
}

#[actix_web::test]
async fn with_the_page_turned_off_the_root_is_404_and_refusals_stay_json() {
    let fx = spawn_page(|settings| settings.web.enabled = false).await;
    let token = TokenBuilder::user("ada@example.com").build();

    let page = fx.get("/", Some(&token)).await;
    let refusal = fx.get("/", None).await;

    assert_eq!(page.status(), 404);
    assert_eq!(refusal.status(), 403);
    assert_eq!(refusal.headers()["content-type"], "application/json");
    let body: Value = refusal.json().await.unwrap();
    assert_eq!(body["reason"], "missing");
}

#[actix_web::test]
async fn the_dev_edge_signs_each_request_as_the_dev_user_and_forwards_it() {
    let fx = spawn_page(|_| {}).await;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let edge_url = format!("http://{}", listener.local_addr().unwrap());
    let target = fx
        .app
        .address
        .trim_start_matches("http://")
        .parse()
        .unwrap();
    let identity = tunnelgate::EdgeIdentity::new(fx.app.issuer.handle(), "dev@localhost");
    actix_web::rt::spawn(tunnelgate::serve_edge(listener, target, identity).unwrap());

    let page = fx
        .app
        .http
        .get(format!("{edge_url}/"))
        .header("Accept", BROWSER_ACCEPT)
        .header("Cf-Access-Jwt-Assertion", "forged")
        .send()
        .await
        .unwrap();

    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("dev@localhost"));
}

#[actix_web::test]
async fn in_dynamic_mode_lists_each_api_tool_and_calls_it_through_call_tool() {
    let audit = tempfile::tempdir().unwrap();
    let audit_file = audit.path().join("audit.jsonl");
    let fx = spawn_page(|settings| {
        settings.tools.mode = tunnelgate::config::ToolsMode::Dynamic;
        settings.audit.file = Some(audit_file.clone());
    })
    .await;
    let token = TokenBuilder::user("ada@example.com").build();

    let page = fx.page_text("/", &token).await;
    let (listed, answer) = fx.submit("books_list", &token, &[("arg.limit", "3")]).await;
    let (whoami, identity) = fx.submit("whoami", &token, &[]).await;

    assert!(page.contains("id=\"tool-books_list\""));
    assert!(page.contains("through search_tools, describe_tool and call_tool"));
    assert_eq!(listed, 200);
    assert!(!answer.contains("The call failed"), "{answer}");
    assert_eq!(
        fx.upstream.requests_to("/v1/books")[0].target,
        "/v1/books?limit=3"
    );
    assert_eq!(whoami, 200);
    assert!(identity.contains("ada@example.com"));
    eventually(Duration::from_secs(5), || async {
        std::fs::read_to_string(&audit_file).is_ok_and(|text| text.lines().count() >= 2)
    })
    .await;
    let tools: Vec<String> = std::fs::read_to_string(&audit_file)
        .unwrap()
        .lines()
        .map(|line| {
            serde_json::from_str::<Value>(line).unwrap()["tool"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(tools, ["books_list", "whoami"]);
}

#[actix_web::test]
async fn shows_a_service_token_as_automation() {
    let fx = spawn_page(|_| {}).await;
    let token = TokenBuilder::service("ci-bot.access").build();

    let page = fx.page_text("/", &token).await;

    assert!(
        page.contains("<dt>Service token</dt><dd><strong>ci-bot.access</strong> (automation)</dd>")
    );
}
