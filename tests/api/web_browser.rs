//! The page in a real browser: headless Chromium (Debian's `chromium`), driven over WebDriver
//! (`chromedriver`, Debian's `chromium-driver`) by fantoccini, opening the page through the same
//! local edge `tunnelgate dev` runs (it adds the Access header, as Cloudflare does). Each page is
//! checked with axe-core (no serious or critical violation) and saved as full-page screenshots,
//! desktop and phone width, under `target/web-screenshots/`. Skips when Chromium is absent
//! (tests/support/browser.rs); `.ci/run` installs it and makes a skip a failure.
//!
//! Chromium resolves no name but loopback (`--host-resolver-rules`) and runs without background
//! networking: nothing here leaves the machine.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use tunnelgate::config::{AccessClass, PolicyRule};

use crate::browser_tools::browser_tools;
use crate::fake_upstream::Scripted;
use crate::web::{PageFixture, spawn_page};

const DESKTOP: (u32, u32) = (1280, 900);
const PHONE: (u32, u32) = (390, 844);

/// chromedriver (in a process group of its own, with the Chromium it starts) and a session.
struct Browser {
    client: Client,
    driver: Child,
    axe_js: PathBuf,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The group is chromedriver's own (process_group(0) below): it and its Chromium end here.
        if let Ok(group) = i32::try_from(self.driver.id()) {
            unsafe {
                libc::kill(-group, libc::SIGKILL);
            }
        }
        let _ = self.driver.wait();
    }
}

async fn start_browser() -> Option<Browser> {
    start_browser_with(&[]).await
}

/// A browser with extra Chromium switches.
async fn start_browser_with(extra: &[&str]) -> Option<Browser> {
    let tools = browser_tools()?;
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let driver = {
        use std::os::unix::process::CommandExt;
        Command::new(&tools.chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("chromedriver starts")
    };
    let profile = tempfile::tempdir().unwrap();
    let driver_url = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let ready = crate::helpers::eventually(Duration::from_secs(20), || async {
        http.get(format!("{driver_url}/status"))
            .send()
            .await
            .is_ok_and(|response| response.status() == 200)
    })
    .await;
    assert!(ready, "chromedriver did not start on port {port}");
    let mut args: Vec<String> = [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-domain-reliability",
        "--disable-client-side-phishing-detection",
        "--metrics-recording-only",
        "--no-pings",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
    ]
    .iter()
    .chain(extra)
    .map(|arg| arg.to_string())
    .collect();
    args.push(format!("--window-size={},{}", DESKTOP.0, DESKTOP.1));
    args.push(format!("--user-data-dir={}", profile.path().display()));
    let mut capabilities = serde_json::Map::new();
    capabilities.insert("browserName".into(), json!("chrome"));
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": tools.chromium,
            "args": args
        }),
    );
    let mut browser = Browser {
        client: ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&driver_url)
            .await
            .expect("a WebDriver session"),
        driver,
        axe_js: tools.axe_js,
        _profile: profile,
    };
    browser.set_size(DESKTOP).await;
    Some(browser)
}

impl Browser {
    async fn set_size(&mut self, (width, height): (u32, u32)) {
        self.client.set_window_size(width, height).await.unwrap();
    }

    async fn text_of(&self, css: &str) -> String {
        self.client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|error| panic!("no {css}: {error}"))
            .text()
            .await
            .unwrap()
    }

    async fn script(&self, script: &str) -> Value {
        self.client.execute(script, vec![]).await.unwrap()
    }

    async fn fill(&self, css: &str, text: &str) {
        let field = self.client.find(Locator::Css(css)).await.unwrap();
        field.clear().await.unwrap();
        field.send_keys(text).await.unwrap();
    }

    /// Clicks what submits a form and waits until the next document has loaded.
    async fn click(&self, css: &str) {
        self.script("window.tgPrevious = true; return null;").await;
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        let loaded = crate::helpers::eventually(Duration::from_secs(10), || async {
            self.client
                .execute(
                    "return document.readyState === 'complete' && window.tgPrevious === undefined;",
                    vec![],
                )
                .await
                .is_ok_and(|loaded| loaded == json!(true))
        })
        .await;
        assert!(loaded, "no new page after clicking {css}");
    }

    /// Full-page screenshots at desktop and phone width: `target/web-screenshots/{name}-*.png`.
    async fn screenshots(&mut self, name: &str) {
        let directory = target_dir().join("web-screenshots");
        std::fs::create_dir_all(&directory).unwrap();
        for (label, size) in [("desktop", DESKTOP), ("phone", PHONE)] {
            self.set_size(size).await;
            // The window is taller than its viewport by the browser's own frame.
            let measured = self
                .script("return [document.documentElement.scrollHeight, window.outerHeight - window.innerHeight];")
                .await;
            let page = measured[0].as_u64().unwrap_or(u64::from(size.1));
            let frame = measured[1].as_u64().unwrap_or(0);
            let height = u32::try_from(page + frame)
                .unwrap_or(size.1)
                .clamp(size.1, 16_000);
            self.set_size((size.0, height)).await;
            let png = self.client.screenshot().await.unwrap();
            std::fs::write(directory.join(format!("{name}-{label}.png")), png).unwrap();
        }
        self.set_size(DESKTOP).await;
    }

    /// axe-core's WCAG 2.1 A/AA and best-practice rules on the current page; the violations are
    /// saved beside the screenshots and none may be serious or critical.
    async fn assert_accessible(&self, name: &str) {
        let source = std::fs::read_to_string(&self.axe_js).unwrap();
        self.client
            .execute(&format!("{source}\nreturn typeof axe;"), vec![])
            .await
            .unwrap();
        let answer = self
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']}})
                   .then(result => done(JSON.stringify(result.violations.map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(n => n.target.join(' '))})))))
                   .catch(error => done('axe failed: ' + error));",
                vec![],
            )
            .await
            .unwrap();
        let text = answer.as_str().unwrap_or_default();
        let violations: Vec<Value> = serde_json::from_str(text)
            .unwrap_or_else(|_| panic!("axe did not run on {name}: {text}"));
        let directory = target_dir().join("web-screenshots");
        std::fs::create_dir_all(&directory).unwrap();
        std::fs::write(directory.join(format!("{name}-axe.json")), text).unwrap();
        let serious: Vec<&Value> = violations
            .iter()
            .filter(|violation| {
                matches!(violation["impact"].as_str(), Some("serious" | "critical"))
            })
            .collect();
        assert!(serious.is_empty(), "axe on {name}: {serious:#?}");
    }
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"))
}

/// The page fixture behind a dev edge that signs every request as `email`.
struct EdgeFixture {
    page: PageFixture,
    url: String,
}

async fn spawn_behind_edge(email: &str, rules: Vec<PolicyRule>) -> EdgeFixture {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let page = spawn_page(|settings| {
        settings.policy.rules = rules;
        for origin in tunnelgate::edge_origins(address) {
            settings
                .server
                .allowed_origins
                .push(origin.parse().unwrap());
        }
    })
    .await;
    let target = page
        .app
        .address
        .trim_start_matches("http://")
        .parse()
        .unwrap();
    let identity = tunnelgate::EdgeIdentity::new(page.app.issuer.handle(), email);
    actix_web::rt::spawn(tunnelgate::serve_edge(listener, target, identity).unwrap());
    EdgeFixture {
        page,
        url: format!("http://{address}"),
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

#[actix_web::test]
async fn the_page_shows_the_signed_in_identity_and_exactly_the_allowed_tools_and_search_narrows_them()
 {
    let Some(mut browser) = start_browser().await else {
        return;
    };
    let fx = spawn_behind_edge("ada@example.com", vec![read_only_for("ada@example.com")]).await;

    browser.client.goto(&format!("{}/", fx.url)).await.unwrap();

    assert!(browser.text_of("#you").await.contains("ada@example.com"));
    let names = browser
        .script(
            "return Array.from(document.querySelectorAll('.tool-name')).map(e => e.textContent);",
        )
        .await;
    assert_eq!(names, json!(["whoami", "books_list", "books_get"]));
    let foreign = browser
        .script("return performance.getEntriesByType('resource').map(e => e.name).filter(n => !n.startsWith(location.origin));")
        .await;
    assert_eq!(
        foreign,
        json!([]),
        "the page loaded something from elsewhere"
    );
    browser.assert_accessible("page").await;
    browser.screenshots("page").await;

    // Keyboard: the first Tab reaches the skip link, and focus is visible.
    browser
        .client
        .find(Locator::Css("body"))
        .await
        .unwrap()
        .send_keys("\u{E004}")
        .await
        .unwrap();
    let focused = browser
        .script("const e = document.activeElement; return [e.className, getComputedStyle(e).outlineStyle, getComputedStyle(e).outlineWidth];")
        .await;
    assert_eq!(focused, json!(["skip", "solid", "3px"]));

    browser.fill("#tool-search", "get a book").await;

    let shown = browser
        .script("return Array.from(document.querySelectorAll('.tool:not([hidden]) .tool-name')).map(e => e.textContent);")
        .await;
    assert_eq!(shown, json!(["books_get"]));
    assert_eq!(browser.text_of("#tool-count").await, "1 of 3 tools shown");
}

#[actix_web::test]
async fn trying_a_tool_with_valid_arguments_shows_the_upstreams_answer() {
    let Some(mut browser) = start_browser().await else {
        return;
    };
    let fx = spawn_behind_edge("ada@example.com", Vec::new()).await;
    fx.page.upstream.script(
        "/v1/books",
        vec![Scripted::json(200, json!({"items": [{"id": "bk_9", "title": "Dune"}], "pagination": {"total_count": 1, "max_page": 1}}))],
    );
    browser
        .client
        .goto(&format!("{}/tools/books_list", fx.url))
        .await
        .unwrap();

    browser.fill("#f-limit", "2").await;
    browser.click(".try-form button[type=submit]").await;

    let result = browser.text_of("#result").await;
    assert!(result.contains("\"title\": \"Dune\""), "{result}");
    assert_eq!(
        fx.page.upstream.requests_to("/v1/books")[0].target,
        "/v1/books?limit=2"
    );
    browser.assert_accessible("result").await;
    browser.screenshots("result").await;
}

#[actix_web::test]
async fn invalid_arguments_show_the_validation_error_and_never_reach_the_upstream() {
    let Some(mut browser) = start_browser().await else {
        return;
    };
    let fx = spawn_behind_edge("ada@example.com", Vec::new()).await;
    browser
        .client
        .goto(&format!("{}/tools/books_list", fx.url))
        .await
        .unwrap();

    browser.fill("#f-limit", "500").await;
    browser.click(".try-form button[type=submit]").await;

    let error = browser.text_of(".error").await;
    assert!(
        error.contains("limit: 500 is greater than the maximum of 100"),
        "{error}"
    );
    assert!(fx.page.upstream.recorded().is_empty());
    browser.assert_accessible("validation-error").await;
    browser.screenshots("validation-error").await;
}

#[actix_web::test]
async fn a_write_tool_needs_the_confirmation_before_anything_is_called() {
    let Some(mut browser) = start_browser().await else {
        return;
    };
    let fx = spawn_behind_edge("ada@example.com", Vec::new()).await;
    browser
        .client
        .goto(&format!("{}/tools/books_create", fx.url))
        .await
        .unwrap();

    browser
        .fill(
            "#f-body",
            r#"{"title": "Dune", "author": "Herbert", "year": 1965}"#,
        )
        .await;
    browser.click(".try-form button[type=submit]").await;

    assert!(
        browser
            .text_of("#confirm-heading")
            .await
            .contains("Confirm")
    );
    assert!(fx.page.upstream.recorded().is_empty());
    browser.assert_accessible("confirm").await;
    browser.screenshots("confirm").await;

    browser.click(".confirm button[type=submit]").await;

    browser.text_of("#result").await;
    let sent = fx.page.upstream.requests_to("/v1/books");
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].method, "POST");
}

#[actix_web::test]
async fn a_cross_site_post_and_a_post_without_the_token_are_refused() {
    let Some(browser) = start_browser().await else {
        return;
    };
    let fx = spawn_behind_edge("ada@example.com", Vec::new()).await;
    let evil = crate::fake_upstream::FakeUpstream::start();
    let form = format!(
        r#"<!doctype html><title>elsewhere</title><form method="post" action="{}/tools/books_list"><input name="csrf" value="guessed"><input name="arg.limit" value="1"><button id="go">go</button></form>"#,
        fx.url
    );
    evil.script("/evil", vec![Scripted::raw(200, "text/html", form)]);

    browser
        .client
        .goto(&format!("{}/evil", evil.url))
        .await
        .unwrap();
    browser.click("#go").await;

    let refused = browser.text_of("body").await;
    assert!(refused.contains("origin_not_allowed"), "{refused}");

    browser
        .client
        .goto(&format!("{}/tools/books_list", fx.url))
        .await
        .unwrap();
    browser
        .script("document.querySelector('input[name=csrf]').remove(); return null;")
        .await;
    browser.click(".try-form button[type=submit]").await;

    assert!(browser.text_of("h1").await.contains("Refused"));
    assert!(
        browser
            .text_of("main")
            .await
            .contains("Nothing was called.")
    );
    assert!(fx.page.upstream.recorded().is_empty());
}

#[actix_web::test]
async fn a_browser_without_a_token_sees_the_403_page() {
    let Some(mut browser) = start_browser().await else {
        return;
    };
    let fx = spawn_behind_edge("ada@example.com", Vec::new()).await;

    // Straight to the listener, around the edge: no Access header.
    browser
        .client
        .goto(&format!("{}/", fx.page.app.address))
        .await
        .unwrap();

    assert_eq!(browser.text_of("h1").await, "Sign-in required");
    assert!(browser.text_of("main").await.contains("reason missing"));
    browser.assert_accessible("forbidden").await;
    browser.screenshots("forbidden").await;
}

#[actix_web::test]
async fn the_page_passes_the_same_checks_in_the_dark_scheme() {
    // Blink's preferred colour scheme 0 is dark: `prefers-color-scheme: dark` matches.
    let Some(mut browser) = start_browser_with(&["--blink-settings=preferredColorScheme=0"]).await
    else {
        return;
    };
    let fx = spawn_behind_edge("ada@example.com", Vec::new()).await;

    browser
        .client
        .goto(&format!("{}/tools/books_list", fx.url))
        .await
        .unwrap();
    browser.fill("#f-limit", "500").await;
    browser.click(".try-form button[type=submit]").await;

    let dark = browser
        .script("return matchMedia('(prefers-color-scheme: dark)').matches;")
        .await;
    assert_eq!(dark, json!(true));
    browser.assert_accessible("validation-error-dark").await;
    browser.screenshots("validation-error-dark").await;
    browser.client.goto(&format!("{}/", fx.url)).await.unwrap();
    browser.assert_accessible("page-dark").await;
    browser.screenshots("page-dark").await;
}

#[actix_web::test]
async fn works_with_javascript_turned_off() {
    let Some(browser) = start_browser_with(&["--blink-settings=scriptEnabled=false"]).await else {
        return;
    };
    let fx = spawn_behind_edge("ada@example.com", Vec::new()).await;
    fx.page.upstream.script(
        "/v1/books",
        vec![Scripted::json(
            200,
            json!({"items": [{"id": "bk_9", "title": "Dune"}]}),
        )],
    );

    browser.client.goto(&format!("{}/", fx.url)).await.unwrap();
    let copy_buttons = browser
        .client
        .find_all(Locator::Css("button.copy"))
        .await
        .unwrap();
    browser.fill("#tool-search", "remove").await;
    browser.click(".search button[type=submit]").await;

    assert!(copy_buttons.is_empty(), "the script ran");
    assert_eq!(browser.text_of("#tool-count").await, "1 of 5 tools shown");

    browser
        .client
        .goto(&format!("{}/tools/books_list", fx.url))
        .await
        .unwrap();
    browser.fill("#f-limit", "2").await;
    browser.click(".try-form button[type=submit]").await;

    assert!(browser.text_of("#result").await.contains("Dune"));
}
