//! `tunnelgate doctor` as an operator runs it (the real binary, configured through
//! `TUNNELGATE__*` variables) against local fakes: the test issuer's certs, a fake upstream, and
//! the real application on loopback for the end-to-end check. Each failure it must name is here.

use serde_json::json;

use crate::api_tools::{UPSTREAM_TOKEN, fixture_document, write_document};
use crate::fake_upstream::{FakeUpstream, Scripted};
use crate::helpers::spawn_app;
use crate::issuer::{AUDIENCE, TEAM, TestIssuer, TokenBuilder};
use crate::polar_document::polar_document_path;
use crate::tls_front::{TlsFront, unrelated_ca_pem};

/// What one run printed and how it exited.
struct Run {
    code: Option<i32>,
    stdout: String,
}

impl Run {
    /// The lines of check `number`, from its `[mark] N.` line up to the next check.
    fn check(&self, number: u8) -> String {
        let start = format!("{number}. ");
        let is_start = |line: &&str| {
            line.starts_with('[')
                && line
                    .split_once(']')
                    .is_some_and(|(_, rest)| rest.trim_start().starts_with(&start))
        };
        let mut lines = self.stdout.lines().skip_while(|line| !is_start(line));
        let mut block: Vec<&str> = lines.next().into_iter().collect();
        block.extend(lines.take_while(|line| line.starts_with("         ")));
        block.join("\n")
    }
}

/// A generic-profile environment: `issuer` for keys, `upstream` serving the fixture API.
struct Environment {
    vars: Vec<(String, String)>,
    _document: tempfile::NamedTempFile,
    _state: tempfile::TempDir,
}

impl Environment {
    fn generic(certs_url: &str, upstream: &FakeUpstream) -> Self {
        let document = write_document(&fixture_document());
        let state = tempfile::tempdir().unwrap();
        let vars = vec![
            ("TUNNELGATE__ACCESS__TEAM_DOMAIN", TEAM.to_string()),
            ("TUNNELGATE__ACCESS__AUDIENCES", AUDIENCE.to_string()),
            ("TUNNELGATE__ACCESS__CERTS_URL", certs_url.to_string()),
            (
                "TUNNELGATE__SERVER__PUBLIC_HOSTNAMES",
                "mcp.example.com".to_string(),
            ),
            (
                "TUNNELGATE__UPSTREAM__SPEC",
                document.path().display().to_string(),
            ),
            ("TUNNELGATE__UPSTREAM__BASE_URL", upstream.url.clone()),
            ("TUNNELGATE__UPSTREAM__TOKEN", UPSTREAM_TOKEN.to_string()),
            ("TUNNELGATE__STATE_DIR", state.path().display().to_string()),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_string(), value))
        .collect();
        Self {
            vars,
            _document: document,
            _state: state,
        }
    }

    /// The same, for the Polar profile with Polar's real document; `None` when it is absent.
    fn polar(certs_url: &str, upstream: &FakeUpstream) -> Option<Self> {
        let document = polar_document_path()?;
        let mut environment = Self::generic(certs_url, upstream);
        environment.set("TUNNELGATE__UPSTREAM__PROFILE", "polar");
        environment.set(
            "TUNNELGATE__UPSTREAM__SPEC",
            &document.display().to_string(),
        );
        Some(environment)
    }

    fn set(&mut self, key: &str, value: &str) {
        self.vars.retain(|(existing, _)| existing != key);
        self.vars.push((key.to_string(), value.to_string()));
    }

    fn unset(&mut self, key: &str) {
        self.vars.retain(|(existing, _)| existing != key);
    }

    /// Runs `tunnelgate doctor ARGS` with only these variables; awaited, so the fakes on this
    /// test's runtime keep answering while it runs.
    async fn doctor(&self, args: &[&str]) -> Run {
        let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_tunnelgate"))
            .arg("doctor")
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(self.vars.iter().map(|(key, value)| (key, value)))
            .output()
            .await
            .unwrap();
        Run {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        }
    }
}

/// A loopback port with nothing listening on it.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[actix_web::test]
async fn doctor_passes_every_check_against_healthy_fakes_and_exits_0() {
    // Arrange
    let app = spawn_app().await;
    let upstream = FakeUpstream::start();
    let environment = Environment::generic(&app.issuer.certs_url, &upstream);
    let token = TokenBuilder::user("ada@example.com").build();

    // Act
    let run = environment
        .doctor(&["--url", &app.mcp_url(), "--token", &token])
        .await;

    // Assert
    assert_eq!(run.code, Some(0), "{}", run.stdout);
    assert!(
        run.check(2).contains("1 RSA signing key: key-one"),
        "{}",
        run.stdout
    );
    assert!(run.check(2).contains("age: not stated"), "{}", run.stdout);
    assert!(
        run.check(3)
            .contains("GET /items?limit=1 (items_list) answered 200"),
        "{}",
        run.stdout
    );
    assert!(
        run.check(4).contains("Host: mcp.example.com is accepted"),
        "{}",
        run.stdout
    );
    assert!(
        run.check(5).contains("tools/list: 1 tool (whoami)"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("doctor: 5 passed, 0 failed, 1 skipped"));
    assert!(run.check(6).starts_with("[skip] 6."), "{}", run.stdout);
    let probe = upstream.requests_to("/items");
    assert_eq!(probe.len(), 1);
    assert_eq!(
        probe[0].headers["authorization"],
        format!("Bearer {UPSTREAM_TOKEN}")
    );
}

#[actix_web::test]
async fn doctor_without_url_skips_the_end_to_end_check_and_still_exits_0() {
    let issuer = TestIssuer::start(&[0, 1]);
    let upstream = FakeUpstream::start();
    let environment = Environment::generic(&issuer.certs_url, &upstream);

    let run = environment.doctor(&[]).await;

    assert_eq!(run.code, Some(0), "{}", run.stdout);
    assert!(
        run.check(2)
            .contains("2 RSA signing keys: key-one, key-two"),
        "{}",
        run.stdout
    );
    assert!(run.check(5).starts_with("[skip] 5."), "{}", run.stdout);
}

#[actix_web::test]
async fn doctor_reports_unreachable_certs_with_the_team_domain_fix() {
    let upstream = FakeUpstream::start();
    let certs_url = format!("http://127.0.0.1:{}/cdn-cgi/access/certs", closed_port());
    let environment = Environment::generic(&certs_url, &upstream);

    let run = environment.doctor(&[]).await;

    assert_eq!(run.code, Some(1), "{}", run.stdout);
    let keys = run.check(2);
    assert!(keys.starts_with("[FAIL] 2. Access signing keys"), "{keys}");
    assert!(
        keys.contains(&format!("cannot reach {certs_url}")),
        "{keys}"
    );
    assert!(
        keys.contains("fix: check TUNNELGATE__ACCESS__TEAM_DOMAIN (now \"testteam\""),
        "{keys}"
    );
    assert!(run.check(3).starts_with("[ok]"), "{}", run.stdout);
}

#[actix_web::test]
async fn doctor_reports_a_certs_url_that_serves_something_other_than_certs() {
    let upstream = FakeUpstream::start();
    upstream.script(
        "/cdn-cgi/access/certs",
        vec![Scripted::raw(200, "text/html", "<html>login</html>")],
    );
    let certs_url = format!("{}/cdn-cgi/access/certs", upstream.url);
    let environment = Environment::generic(&certs_url, &upstream);

    let run = environment.doctor(&[]).await;

    assert_eq!(run.code, Some(1), "{}", run.stdout);
    let keys = run.check(2);
    assert!(
        keys.contains("did not send a usable certs document"),
        "{keys}"
    );
    assert!(keys.contains("not valid JSON"), "{keys}");
    assert!(
        keys.contains("fix: access.certs_url points at something other"),
        "{keys}"
    );
}

#[actix_web::test]
async fn doctor_reports_a_clock_further_off_than_the_leeway() {
    let upstream = FakeUpstream::start();
    let issuer = TestIssuer::start(&[0]);
    let certs = reqwest::get(&issuer.certs_url)
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    upstream.script(
        "/cdn-cgi/access/certs",
        vec![
            Scripted::raw(200, "application/json", certs)
                .header("date", "Sun, 06 Nov 1994 08:49:37 GMT")
                .header("last-modified", "Sat, 05 Nov 1994 08:49:37 GMT"),
        ],
    );
    let environment =
        Environment::generic(&format!("{}/cdn-cgi/access/certs", upstream.url), &upstream);

    let run = environment.doctor(&[]).await;

    assert_eq!(run.code, Some(1), "{}", run.stdout);
    let keys = run.check(2);
    assert!(
        keys.contains("document last modified Sat, 05 Nov 1994"),
        "{keys}"
    );
    assert!(keys.contains("ahead of the certs server's Date"), "{keys}");
    assert!(keys.contains("fix: synchronise the host's clock"), "{keys}");
}

#[actix_web::test]
async fn doctor_reports_an_upstream_that_refuses_the_token() {
    let issuer = TestIssuer::start(&[0]);
    let upstream = FakeUpstream::start();
    upstream.script(
        "/items",
        vec![Scripted::json(
            401,
            json!({"error": "unauthorized", "detail": "bad token"}),
        )],
    );
    let environment = Environment::generic(&issuer.certs_url, &upstream);

    let run = environment.doctor(&[]).await;

    assert_eq!(run.code, Some(1), "{}", run.stdout);
    let upstream_check = run.check(3);
    assert!(upstream_check.starts_with("[FAIL] 3."), "{upstream_check}");
    assert!(
        upstream_check.contains("answered 401: the API refuses the configured token"),
        "{upstream_check}"
    );
    assert!(upstream_check.contains("bad token"), "{upstream_check}");
    assert!(
        !run.stdout.contains(UPSTREAM_TOKEN),
        "the token must never be printed"
    );
}

#[actix_web::test]
async fn doctor_fails_when_public_hostnames_is_empty() {
    let issuer = TestIssuer::start(&[0]);
    let upstream = FakeUpstream::start();
    let mut environment = Environment::generic(&issuer.certs_url, &upstream);
    environment.unset("TUNNELGATE__SERVER__PUBLIC_HOSTNAMES");

    let run = environment.doctor(&[]).await;

    assert_eq!(run.code, Some(1), "{}", run.stdout);
    let hostnames = run.check(4);
    assert!(hostnames.starts_with("[FAIL] 4."), "{hostnames}");
    assert!(
        hostnames.contains("server.public_hostnames is empty"),
        "{hostnames}"
    );
    assert!(
        hostnames.contains("fix: set TUNNELGATE__SERVER__PUBLIC_HOSTNAMES"),
        "{hostnames}"
    );
}

#[actix_web::test]
async fn doctor_stops_at_a_configuration_that_does_not_load() {
    let issuer = TestIssuer::start(&[0]);
    let upstream = FakeUpstream::start();
    let mut environment = Environment::generic(&issuer.certs_url, &upstream);
    environment.set("TUNNELGATE__SERVER__BINDING", "0.0.0.0:1");

    let run = environment.doctor(&[]).await;

    assert_eq!(run.code, Some(1), "{}", run.stdout);
    assert!(run.check(1).contains("binding"), "{}", run.stdout);
    for number in 2..=4 {
        assert!(run.check(number).starts_with("[skip]"), "{}", run.stdout);
    }
    assert!(
        issuer.fetches() == 0,
        "no check may run on a broken configuration"
    );
}

#[actix_web::test]
async fn doctor_names_tunnelgates_wrong_audience_refusal_on_the_url() {
    let app = spawn_app().await;
    let upstream = FakeUpstream::start();
    let environment = Environment::generic(&app.issuer.certs_url, &upstream);
    let token = TokenBuilder::user("ada@example.com")
        .claim("aud", json!(["another-application-aud"]))
        .build();

    let run = environment
        .doctor(&["--url", &app.address, "--token", &token])
        .await;

    assert_eq!(run.code, Some(1), "{}", run.stdout);
    let end_to_end = run.check(5);
    assert!(end_to_end.contains("TCP: connected to"), "{end_to_end}");
    assert!(
        end_to_end.contains(
            "initialize: tunnelgate (the origin) answered 403 access_denied, reason wrong_audience"
        ),
        "{end_to_end}"
    );
    assert!(
        end_to_end.contains("fix: TUNNELGATE__ACCESS__AUDIENCES must hold the AUD tag"),
        "{end_to_end}"
    );
}

#[actix_web::test]
async fn doctor_recognises_an_access_login_redirect() {
    let issuer = TestIssuer::start(&[0]);
    let upstream = FakeUpstream::start();
    upstream.script(
        "/mcp",
        vec![Scripted::raw(302, "text/html", "").header(
            "location",
            "https://testteam.cloudflareaccess.com/cdn-cgi/access/login/mcp.example.com",
        )],
    );
    let environment = Environment::generic(&issuer.certs_url, &upstream);

    let run = environment
        .doctor(&[
            "--url",
            &format!("{}/mcp", upstream.url),
            "--token",
            "a.b.c",
        ])
        .await;

    let end_to_end = run.check(5);
    assert_eq!(run.code, Some(1), "{}", run.stdout);
    assert!(
        end_to_end.contains("Cloudflare Access answered 302, a redirect to its login page"),
        "{end_to_end}"
    );
    assert!(
        end_to_end.contains("cloudflared access token -app="),
        "{end_to_end}"
    );
}

#[actix_web::test]
async fn doctor_tells_an_access_403_from_a_tunnelgate_403() {
    let issuer = TestIssuer::start(&[0]);
    let upstream = FakeUpstream::start();
    upstream.script(
        "/mcp",
        vec![Scripted::raw(
            403,
            "text/html",
            "<html>Forbidden: You don't have permission</html>",
        )],
    );
    let environment = Environment::generic(&issuer.certs_url, &upstream);
    let secret = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(secret.path(), "service-secret\n").unwrap();

    let run = environment
        .doctor(&[
            "--url",
            &format!("{}/mcp", upstream.url),
            "--service-token-id",
            "abc.access",
            "--service-token-secret-file",
            &secret.path().display().to_string(),
        ])
        .await;

    let end_to_end = run.check(5);
    assert_eq!(run.code, Some(1), "{}", run.stdout);
    assert!(
        end_to_end.contains("403 without tunnelgate's JSON body"),
        "{end_to_end}"
    );
    assert!(end_to_end.contains("Service Auth policy"), "{end_to_end}");
    let sent = upstream.requests_to("/mcp");
    assert_eq!(sent[0].headers["cf-access-client-id"], "abc.access");
    assert_eq!(sent[0].headers["cf-access-client-secret"], "service-secret");
    assert!(
        !run.stdout.contains("service-secret"),
        "the secret must never be printed"
    );
}

#[actix_web::test]
async fn doctor_names_a_tls_failure_after_tcp_connected() {
    let issuer = TestIssuer::start(&[0]);
    let upstream = FakeUpstream::start();
    let environment = Environment::generic(&issuer.certs_url, &upstream);
    // A plain-http server asked for TLS: TCP connects, the handshake fails.
    let port = upstream.url.rsplit(':').next().unwrap();

    let run = environment
        .doctor(&[
            "--url",
            &format!("https://127.0.0.1:{port}/mcp"),
            "--token",
            "a.b.c",
        ])
        .await;

    let end_to_end = run.check(5);
    assert_eq!(run.code, Some(1), "{}", run.stdout);
    assert!(end_to_end.contains("TCP: connected"), "{end_to_end}");
    assert!(
        end_to_end.contains("TLS with 127.0.0.1 failed"),
        "{end_to_end}"
    );
}

#[actix_web::test]
async fn doctor_names_a_refused_tcp_connection() {
    let issuer = TestIssuer::start(&[0]);
    let upstream = FakeUpstream::start();
    let environment = Environment::generic(&issuer.certs_url, &upstream);
    let port = closed_port();

    let run = environment
        .doctor(&[
            "--url",
            &format!("http://127.0.0.1:{port}/mcp"),
            "--token",
            "a.b.c",
        ])
        .await;

    let end_to_end = run.check(5);
    assert_eq!(run.code, Some(1), "{}", run.stdout);
    assert!(
        end_to_end.contains("DNS: 127.0.0.1 → 127.0.0.1"),
        "{end_to_end}"
    );
    assert!(
        end_to_end.contains(&format!("TCP: cannot connect to 127.0.0.1:{port}")),
        "{end_to_end}"
    );
}

#[actix_web::test]
async fn doctor_refuses_plain_http_beyond_loopback_for_the_url() {
    let issuer = TestIssuer::start(&[0]);
    let upstream = FakeUpstream::start();
    let environment = Environment::generic(&issuer.certs_url, &upstream);

    let run = environment
        .doctor(&["--url", "http://mcp.example.com/mcp", "--token", "a.b.c"])
        .await;

    assert_eq!(run.code, Some(1), "{}", run.stdout);
    assert!(
        run.check(5).contains("neither https nor http on loopback"),
        "{}",
        run.stdout
    );
}

#[actix_web::test]
async fn doctor_names_the_polar_organization_and_the_missing_scope_families() {
    // Arrange
    let issuer = TestIssuer::start(&[0]);
    let upstream = FakeUpstream::start();
    let Some(environment) = Environment::polar(&issuer.certs_url, &upstream) else {
        return;
    };
    upstream.script(
        "/v1/organizations/",
        vec![Scripted::json(
            200,
            json!({"items": [{"id": "org_1", "name": "Acme", "slug": "acme"}],
                   "pagination": {"total_count": 1, "max_page": 1}}),
        )],
    );
    upstream.script(
        "/v1/discounts/",
        vec![
            Scripted::json(403, json!({"error": "insufficient_scope", "error_description": "The access token does not have the required scope."}))
                .header("www-authenticate", "Bearer error=\"insufficient_scope\", scope=\"discounts:read discounts:write\""),
        ],
    );

    // Act
    let run = environment.doctor(&[]).await;

    // Assert
    assert_eq!(run.code, Some(1), "{}", run.stdout);
    let polar = run.check(3);
    assert!(
        polar.contains("organization: Acme (slug acme, id org_1)"),
        "{polar}"
    );
    assert!(
        polar.contains("ok       products (products_list GET /v1/products/?limit=1: 200)"),
        "{polar}"
    );
    assert!(
        polar.contains("MISSING  discounts (discounts_list GET /v1/discounts/?limit=1: 403 insufficient_scope; the token holds none of discounts:read, discounts:write)"),
        "{polar}"
    );
    assert!(
        polar.contains("fix: give the token discounts:read in Polar"),
        "{polar}"
    );
    assert!(
        polar.contains("TUNNELGATE__TOOLS__EXCLUDE=discounts_*"),
        "{polar}"
    );
    assert!(
        polar.contains("ok       organizations (GET /v1/organizations/: 200)"),
        "{polar}"
    );
    let organizations = upstream.requests_to("/v1/organizations/");
    assert_eq!(
        organizations.len(),
        1,
        "the organization check answers for its family"
    );
    assert_eq!(organizations[0].headers["polar-version"], "2026-04");
    assert_eq!(
        organizations[0].headers["authorization"],
        format!("Bearer {UPSTREAM_TOKEN}")
    );
}

#[actix_web::test]
async fn doctor_reports_a_polar_token_that_polar_refuses() {
    let issuer = TestIssuer::start(&[0]);
    let upstream = FakeUpstream::start();
    let Some(environment) = Environment::polar(&issuer.certs_url, &upstream) else {
        return;
    };
    upstream.script(
        "/v1/organizations/",
        vec![Scripted::json(
            401,
            json!({"error": "Unauthorized", "detail": "Unauthorized"}),
        )],
    );

    let run = environment.doctor(&[]).await;

    assert_eq!(run.code, Some(1), "{}", run.stdout);
    let polar = run.check(3);
    assert!(polar.contains("Polar refused the token (401"), "{polar}");
    assert!(polar.contains("configured: production"), "{polar}");
    assert!(
        upstream.requests_to("/v1/products/").is_empty(),
        "no scope probes after a refused token"
    );
}

#[actix_web::test]
async fn doctor_checks_the_shared_redis_of_a_cluster() {
    let Some(redis) = crate::redis_server::RedisServer::start() else {
        return;
    };
    let issuer = TestIssuer::start(&[0, 1]);
    let upstream = FakeUpstream::start();
    let mut environment = Environment::generic(&issuer.certs_url, &upstream);
    environment.set("TUNNELGATE__CLUSTER__REDIS_URL", &redis.url());

    let run = environment.doctor(&[]).await;

    assert_eq!(run.code, Some(0), "{}", run.stdout);
    let check = run.check(6);
    assert!(
        check.starts_with("[ok]   6. Shared Redis"),
        "{}",
        run.stdout
    );
    assert!(
        check.contains("the shared-limit script runs"),
        "{}",
        run.stdout
    );
}

#[actix_web::test]
async fn doctor_names_an_unreachable_redis_without_its_password() {
    let issuer = TestIssuer::start(&[0, 1]);
    let upstream = FakeUpstream::start();
    let mut environment = Environment::generic(&issuer.certs_url, &upstream);
    let url = format!("redis://:hunter2-redis@127.0.0.1:{}/0", closed_port());
    environment.set("TUNNELGATE__CLUSTER__REDIS_URL", &url);

    let run = environment.doctor(&[]).await;

    assert_eq!(run.code, Some(1), "{}", run.stdout);
    let check = run.check(6);
    assert!(check.starts_with("[FAIL] 6."), "{}", run.stdout);
    assert!(check.contains("no answer to PING"), "{}", run.stdout);
    assert!(check.contains("fix: start Redis"), "{}", run.stdout);
    assert!(!run.stdout.contains("hunter2"), "{}", run.stdout);
}

#[actix_web::test]
async fn doctor_reaches_an_https_upstream_whose_ca_the_trust_store_holds() {
    // Arrange
    let issuer = TestIssuer::start(&[0]);
    let upstream = FakeUpstream::start();
    let front = TlsFront::start(&upstream.url).await;
    let mut environment = Environment::generic(&issuer.certs_url, &upstream);
    environment.set("TUNNELGATE__UPSTREAM__BASE_URL", &front.url);
    environment.set("SSL_CERT_FILE", &front.ca_pem.path().display().to_string());

    // Act
    let run = environment.doctor(&[]).await;

    // Assert
    let upstream_check = run.check(3);
    assert!(upstream_check.starts_with("[ok]"), "{}", run.stdout);
    assert!(
        upstream_check.contains("GET /items?limit=1 (items_list) answered 200"),
        "{upstream_check}"
    );
    let probe = upstream.requests_to("/items");
    assert_eq!(probe.len(), 1, "the request went through TLS to the fake");
    assert_eq!(
        probe[0].headers["authorization"],
        format!("Bearer {UPSTREAM_TOKEN}")
    );
}

#[actix_web::test]
async fn doctor_names_an_upstream_certificate_no_trusted_root_signed() {
    // Arrange
    let issuer = TestIssuer::start(&[0]);
    let upstream = FakeUpstream::start();
    let front = TlsFront::start(&upstream.url).await;
    let unrelated = unrelated_ca_pem();
    let mut environment = Environment::generic(&issuer.certs_url, &upstream);
    environment.set("TUNNELGATE__UPSTREAM__BASE_URL", &front.url);
    environment.set("SSL_CERT_FILE", &unrelated.path().display().to_string());

    // Act
    let run = environment.doctor(&[]).await;

    // Assert
    let upstream_check = run.check(3);
    assert_eq!(run.code, Some(1), "{}", run.stdout);
    assert!(upstream_check.starts_with("[FAIL] 3."), "{upstream_check}");
    assert!(
        upstream_check.contains("invalid peer certificate: UnknownIssuer"),
        "{upstream_check}"
    );
    assert!(
        upstream.requests_to("/items").is_empty(),
        "nothing may be sent over a connection the client does not trust"
    );
}

#[actix_web::test]
async fn doctor_sends_again_a_request_an_http2_upstream_refused_unprocessed() {
    // Arrange: doctor itself never retries, so only the client's resend can reach a 200.
    let issuer = TestIssuer::start(&[0]);
    let upstream = FakeUpstream::start();
    let (front, streams) = TlsFront::start_h2_refusing(1).await;
    let mut environment = Environment::generic(&issuer.certs_url, &upstream);
    environment.set("TUNNELGATE__UPSTREAM__BASE_URL", &front.url);
    environment.set("SSL_CERT_FILE", &front.ca_pem.path().display().to_string());

    // Act
    let run = environment.doctor(&[]).await;

    // Assert
    let upstream_check = run.check(3);
    assert!(
        upstream_check.contains("GET /items?limit=1 (items_list) answered 200"),
        "{}",
        run.stdout
    );
    assert_eq!(streams.load(std::sync::atomic::Ordering::SeqCst), 2);
}
