//! What the page at `/` costs for Polar's read-only catalog: its weight (HTML, CSS, JS bytes)
//! and the server's time to render it.
//!
//! The real application on loopback port 0 (the library's dev issuer for Access, Polar's
//! document from `$TUNNELGATE_POLAR_SPEC` or `../shared/polar/openapi-2026-04.json`; absent, it
//! says so and exits), one signed-in user whose token is in the token cache after the first
//! request. Requests go one at a time over one keep-alive connection:
//!
//! - `GET /` (the page: policy view of the catalog, the input fields of every tool, the
//!   configurations), and
//! - `GET /assets/page.css` (same listener, same middleware and Access check, a constant body),
//!
//! and the render time is the difference of their medians: what `/` costs beyond any guarded
//! request. A hand-rolled loop (no benchmark framework is among the dependencies); run it with
//! `cargo bench --bench web_page`. Not a timed test: nothing asserts on the numbers.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tunnelgate::config::{AccessClass, Settings, UpstreamProfile};
use tunnelgate::{Application, DevIssuer};

const TEAM: &str = "bench";
const AUDIENCE: &str = "bench-audience";
const WARM_UP: usize = 50;
const ROUNDS: usize = 500;

fn polar_document() -> Option<PathBuf> {
    let path = std::env::var_os("TUNNELGATE_POLAR_SPEC")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/polar/openapi-2026-04.json")
        });
    path.is_file().then_some(path)
}

struct Timing {
    median: Duration,
    p90: Duration,
    bytes: usize,
}

async fn time(http: &reqwest::Client, url: &str, token: &str) -> Timing {
    let mut samples = Vec::with_capacity(ROUNDS);
    let mut bytes = 0;
    for round in 0..WARM_UP + ROUNDS {
        let started = Instant::now();
        let response = http
            .get(url)
            .header("Cf-Access-Jwt-Assertion", token)
            .header("Accept", "text/html")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{url}");
        bytes = response.bytes().await.unwrap().len();
        if round >= WARM_UP {
            samples.push(started.elapsed());
        }
    }
    samples.sort();
    Timing {
        median: samples[samples.len() / 2],
        p90: samples[samples.len() * 9 / 10],
        bytes,
    }
}

fn main() {
    let Some(document) = polar_document() else {
        eprintln!(
            "SKIPPED: web_page needs Polar's OpenAPI document (set TUNNELGATE_POLAR_SPEC or put it at ../shared/polar/openapi-2026-04.json)"
        );
        return;
    };
    actix_web::rt::System::new().block_on(async move {
        let issuer = Arc::new(DevIssuer::generate(TEAM, AUDIENCE).unwrap());
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let certs = format!("http://{}/cdn-cgi/access/certs", listener.local_addr().unwrap());
        actix_web::rt::spawn(Arc::clone(&issuer).serve(listener).unwrap());

        let mut settings = Settings::default();
        settings.server.bind = "127.0.0.1:0".parse().unwrap();
        settings.admin.bind = "127.0.0.1:0".parse().unwrap();
        settings.access.team_domain = Some(TEAM.parse().unwrap());
        settings.access.audiences = vec![AUDIENCE.into()];
        settings.access.certs_url = Some(certs.parse().unwrap());
        settings.upstream.profile = UpstreamProfile::Polar;
        settings.upstream.spec = Some(document.display().to_string().parse().unwrap());
        settings.upstream.base_url = Some("http://127.0.0.1:9".parse().unwrap());
        settings.tools.read_only = true;
        settings.policy.default_access = AccessClass::Read;
        settings.state_dir = std::env::temp_dir().join("tunnelgate-bench-web");
        settings.audit.stdout = false;
        let application = Application::build(settings).await.unwrap();
        let base = format!("http://{}", application.address());
        actix_web::rt::spawn(application.run_until_stopped());

        let token = issuer.user_token("bench@example.com", None).unwrap();
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(1)
            .build()
            .unwrap();
        let page = time(&http, &format!("{base}/"), &token).await;
        let stylesheet = time(&http, &format!("{base}/assets/page.css"), &token).await;
        let script = time(&http, &format!("{base}/assets/page.js"), &token).await;
        if let Some(path) = std::env::var_os("WEB_PAGE_SAVE") {
            let html = http
                .get(format!("{base}/"))
                .header("Cf-Access-Jwt-Assertion", &token)
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            std::fs::write(path, html).unwrap();
        }
        let render = page.median.saturating_sub(stylesheet.median);
        println!("web page, Polar read-only catalog, {ROUNDS} sequential requests after {WARM_UP} warm-up:");
        println!(
            "  GET /                 median {:>8.1?}  p90 {:>8.1?}  {:>7} bytes HTML",
            page.median, page.p90, page.bytes
        );
        println!(
            "  GET /assets/page.css  median {:>8.1?}  p90 {:>8.1?}  {:>7} bytes CSS",
            stylesheet.median, stylesheet.p90, stylesheet.bytes
        );
        println!(
            "  GET /assets/page.js   median {:>8.1?}  p90 {:>8.1?}  {:>7} bytes JS",
            script.median, script.p90, script.bytes
        );
        println!("  render time (median of / minus median of the stylesheet): {render:.1?}");
        println!(
            "  page weight: {} bytes ({} HTML + {} CSS + {} JS)",
            page.bytes + stylesheet.bytes + script.bytes,
            page.bytes,
            stylesheet.bytes,
            script.bytes
        );
    });
}
