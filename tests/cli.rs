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
