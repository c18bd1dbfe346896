//! The command line as operators meet it: help, version, check-config, dev's loopback rule.

// Tests and benchmarks may panic on a broken fixture; production code may not (Cargo.toml [lints]).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::process::Command;

fn tunnelgate() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tunnelgate"));
    // Only what a test sets: no TUNNELGATE__* from the developer's shell.
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    command
}

#[test]
fn every_subcommand_has_help_and_the_binary_a_version() {
    for subcommand in [
        "serve",
        "dev",
        "check-config",
        "doctor",
        "healthcheck",
        "tools",
    ] {
        let output = tunnelgate().args([subcommand, "--help"]).output().unwrap();
        assert!(output.status.success(), "{subcommand} --help failed");
        assert!(String::from_utf8_lossy(&output.stdout).contains("Usage"));
    }
    let version = tunnelgate().arg("--version").output().unwrap();
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("tunnelgate "));
}

#[test]
fn check_config_names_the_missing_access_keys_and_exits_1() {
    let output = tunnelgate().arg("check-config").output().unwrap();

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr.contains("access.team_domain"), "{stderr}");
    assert!(stderr.contains("access.audiences"), "{stderr}");
}

#[test]
fn check_config_prints_the_effective_values_with_secrets_redacted() {
    let output = tunnelgate()
        .arg("check-config")
        .env("TUNNELGATE__ACCESS__TEAM_DOMAIN", "myteam")
        .env("TUNNELGATE__ACCESS__AUDIENCES", "aud-1,aud-2")
        .env("TUNNELGATE__UPSTREAM__TOKEN", "very-secret-upstream-token")
        .output()
        .unwrap();

    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0));
    assert!(stdout.contains("team_domain = \"myteam\""), "{stdout}");
    assert!(stdout.contains("[redacted]"), "{stdout}");
    assert!(!stdout.contains("very-secret-upstream-token"));
}

#[test]
fn check_config_refuses_an_unknown_key_by_name() {
    let output = tunnelgate()
        .arg("check-config")
        .env("TUNNELGATE__SERVER__BINDING", "0.0.0.0:1")
        .output()
        .unwrap();

    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("binding"));
}

#[test]
fn serve_refuses_to_start_without_a_team_domain() {
    let output = tunnelgate()
        .arg("serve")
        .env("TUNNELGATE__ACCESS__AUDIENCES", "aud")
        .output()
        .unwrap();

    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("access.team_domain: missing"));
}

#[test]
fn dev_refuses_a_non_loopback_bind() {
    let output = tunnelgate()
        .args(["dev", "--bind", "0.0.0.0:0"])
        .output()
        .unwrap();

    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("not a loopback address"));
}

#[test]
fn dev_refuses_a_non_loopback_edge() {
    let output = tunnelgate()
        .args(["dev", "--edge-bind", "0.0.0.0:0"])
        .output()
        .unwrap();

    assert_eq!(output.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("--edge-bind 0.0.0.0:0 is not a loopback address")
    );
}

#[test]
fn healthcheck_fails_when_nothing_listens() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/readyz", closed.local_addr().unwrap());
    drop(closed);

    let output = tunnelgate()
        .args(["healthcheck", "--url", &url])
        .output()
        .unwrap();

    assert!(!output.status.success());
}

/// A free loopback port (bound, then released for the server to take).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An upstream whose one operation answers after two seconds.
fn slow_upstream() -> (String, actix_web::dev::Server) {
    use actix_web::{App, HttpResponse, HttpServer, web};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let document = serde_json::json!({
        "openapi": "3.0.3", "info": {"title": "slow", "version": "1"},
        "paths": {"/slow": {"get": {"operationId": "slow:get", "responses": {"200": {"description": "ok"}}}}}
    });
    let server = HttpServer::new(move || {
        let document = document.clone();
        App::new()
            .route(
                "/openapi.json",
                web::get().to(move || {
                    let document = document.clone();
                    async move { HttpResponse::Ok().json(document) }
                }),
            )
            .route(
                "/slow",
                web::get().to(|| async {
                    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
                    HttpResponse::Ok().json(serde_json::json!({"done": true}))
                }),
            )
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    (url, server)
}

#[actix_web::test]
async fn sigterm_lets_a_call_in_flight_finish_audits_it_and_exits_0() {
    let issuer = std::sync::Arc::new(tunnelgate::DevIssuer::generate("shutdown", "aud-1").unwrap());
    let issuer_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let issuer_url = format!("http://{}", issuer_listener.local_addr().unwrap());
    actix_web::rt::spawn(
        std::sync::Arc::clone(&issuer)
            .serve(issuer_listener)
            .unwrap(),
    );
    let (upstream_url, upstream) = slow_upstream();
    actix_web::rt::spawn(upstream);
    let directory = tempfile::tempdir().unwrap();
    let audit_file = directory.path().join("audit.jsonl");
    let (port, admin_port) = (free_port(), free_port());
    let mut server = tunnelgate()
        .arg("serve")
        .env("TUNNELGATE__SERVER__BIND", format!("127.0.0.1:{port}"))
        .env("TUNNELGATE__ADMIN__BIND", format!("127.0.0.1:{admin_port}"))
        .env("TUNNELGATE__ACCESS__TEAM_DOMAIN", "shutdown")
        .env("TUNNELGATE__ACCESS__AUDIENCES", "aud-1")
        .env(
            "TUNNELGATE__ACCESS__CERTS_URL",
            format!("{issuer_url}/cdn-cgi/access/certs"),
        )
        .env(
            "TUNNELGATE__UPSTREAM__SPEC",
            format!("{upstream_url}/openapi.json"),
        )
        .env("TUNNELGATE__UPSTREAM__BASE_URL", &upstream_url)
        .env("TUNNELGATE__AUDIT__FILE", &audit_file)
        .env("TUNNELGATE__AUDIT__STDOUT", "false")
        .env("TUNNELGATE__STATE_DIR", directory.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let http = reqwest::Client::new();
    let mut ready = false;
    for _ in 0..200 {
        let answer = http
            .get(format!("http://127.0.0.1:{admin_port}/readyz"))
            .send()
            .await;
        if answer.is_ok_and(|answer| answer.status() == 200) {
            ready = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(ready, "the server never became ready");
    let token = issuer.user_token("ada@example.com", None).unwrap();
    let call = http
        .post(format!("http://127.0.0.1:{port}/mcp"))
        .header("Cf-Access-Jwt-Assertion", token)
        .header("Content-Type", "application/json")
        .header("Accept", "application/json, text/event-stream")
        .header("MCP-Protocol-Version", "2025-06-18")
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"slow_get","arguments":{}}}"#)
        .send();
    let in_flight = actix_web::rt::spawn(call);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;

    // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
    let signalled = unsafe { libc::kill(server.id() as libc::pid_t, libc::SIGTERM) };
    let answer = in_flight.await.unwrap().unwrap();
    let status = answer.status();
    let body = answer.text().await.unwrap();
    let exit = tokio::task::spawn_blocking(move || server.wait())
        .await
        .unwrap()
        .unwrap();

    assert_eq!(signalled, 0);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#"\"done\":true"#), "{body}");
    assert_eq!(exit.code(), Some(0), "the server did not exit cleanly");
    let audit = std::fs::read_to_string(&audit_file).unwrap();
    let calls: Vec<&str> = audit
        .lines()
        .filter(|line| line.contains("\"tool_call\""))
        .collect();
    assert_eq!(calls.len(), 1, "{audit}");
    assert!(calls[0].contains("\"slow_get\""), "{audit}");
}

#[test]
fn doctor_help_lists_its_checks_and_the_compose_command() {
    let output = tunnelgate().args(["doctor", "--help"]).output().unwrap();

    let help = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success());
    for expected in [
        "--url",
        "--token",
        "--service-token-id",
        "--service-token-secret-file",
        "cdn-cgi/access/certs",
        "insufficient_scope",
        "docker compose run --rm tunnelgate doctor",
    ] {
        assert!(
            help.contains(expected),
            "doctor --help lacks {expected}: {help}"
        );
    }
}

#[test]
fn doctor_refuses_a_token_without_a_url() {
    let output = tunnelgate()
        .args(["doctor", "--token", "a.b.c"])
        .output()
        .unwrap();

    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--url"));
}
