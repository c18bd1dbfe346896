use std::io::Write;

use super::*;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect()
}

fn toml_file(contents: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    file.write_all(contents.as_bytes()).unwrap();
    file
}

#[test]
fn defaults_match_the_documented_values() {
    let settings = Settings::load_from(None, env(&[])).unwrap();

    assert_eq!(settings.server.bind.to_string(), "0.0.0.0:8080");
    assert_eq!(settings.admin.bind.to_string(), "0.0.0.0:9090");
    assert_eq!(settings.server.mode, ServerMode::Stateless);
    assert_eq!(settings.server.keep_alive, Duration::from_secs(120));
    assert_eq!(settings.server.sse_keep_alive, Duration::from_secs(15));
    assert_eq!(settings.server.max_body, ByteSize(4 * 1024 * 1024));
    assert_eq!(settings.access.leeway, Duration::from_secs(60));
    assert_eq!(settings.access.jwks_refresh, Duration::from_secs(3600));
    assert_eq!(
        settings.access.unknown_kid_cooldown,
        Duration::from_secs(30)
    );
    assert!(settings.tools.read_only);
}

#[test]
fn environment_overrides_the_file_and_splits_lists_on_commas() {
    let file = toml_file(
        r#"
        [server]
        bind = "127.0.0.1:7000"
        public_hostnames = ["from-file.example.com"]
        [access]
        team_domain = "fileteam"
        audiences = ["aud-from-file"]
        "#,
    );

    let settings = Settings::load_from(
        Some(file.path()),
        env(&[
            (
                "TUNNELGATE__SERVER__PUBLIC_HOSTNAMES",
                "mcp.example.com, mcp2.example.com",
            ),
            ("TUNNELGATE__ACCESS__AUDIENCES", "aud1,aud2"),
            ("TUNNELGATE__SERVER__SSE_KEEP_ALIVE", "20s"),
        ]),
    )
    .unwrap();

    assert_eq!(settings.server.bind.to_string(), "127.0.0.1:7000");
    assert_eq!(
        settings.server.public_hostnames,
        vec!["mcp.example.com", "mcp2.example.com"]
    );
    assert_eq!(settings.access.audiences, vec!["aud1", "aud2"]);
    assert_eq!(
        settings.access.team_domain.map(|team| team.to_string()),
        Some("fileteam".to_owned())
    );
    assert_eq!(settings.server.sse_keep_alive, Duration::from_secs(20));
}

#[test]
fn rejects_an_unknown_key_in_the_file_naming_it() {
    let file = toml_file("[server]\nbindd = \"0.0.0.0:1\"\n");

    let error = Settings::load_from(Some(file.path()), env(&[])).unwrap_err();

    assert!(error.to_string().contains("bindd"), "{error}");
}

#[test]
fn rejects_an_unknown_key_in_the_environment_naming_it() {
    let error =
        Settings::load_from(None, env(&[("TUNNELGATE__ACCESS__AUDIENCE", "x")])).unwrap_err();

    assert!(error.to_string().contains("audience"), "{error}");
}

#[test]
fn names_every_invalid_key() {
    let error = Settings::load_from(
        None,
        env(&[
            ("TUNNELGATE__SERVER__BIND", "not-an-address"),
            ("TUNNELGATE__ACCESS__TEAM_DOMAIN", "http://bad.example"),
            ("TUNNELGATE__SERVER__SSE_KEEP_ALIVE", "120s"),
        ]),
    )
    .unwrap_err()
    .to_string();

    assert!(error.contains("server.bind"), "{error}");
    assert!(error.contains("access.team_domain"), "{error}");
    assert!(error.contains("server.sse_keep_alive"), "{error}");
}

#[test]
fn names_every_bad_value_of_one_section_and_still_checks_its_ranges() {
    let error = Settings::load_from(
        None,
        env(&[
            ("TUNNELGATE__SERVER__BIND", "not-an-address"),
            (
                "TUNNELGATE__SERVER__ALLOWED_ORIGINS",
                "http://localhost:6274/app",
            ),
            ("TUNNELGATE__SERVER__MAX_SSE_SESSIONS", "0"),
        ]),
    )
    .unwrap_err()
    .to_string();

    assert!(error.contains("server.bind"), "{error}");
    assert!(
        error.contains("\"not-an-address\" is not a socket address"),
        "{error}"
    );
    assert!(error.contains("server.allowed_origins"), "{error}");
    assert!(error.contains("server.max_sse_sessions"), "{error}");
}

#[test]
fn parses_addresses_urls_headers_and_globs_once_into_typed_values() {
    let file = toml_file(
        r#"
        [upstream]
        spec = "https://api.example.com/openapi.json"
        base_url = "http://10.0.0.5:8000/api"
        token_header = "X-Api-Key"
        headers = { "X-Tenant" = "acme" }
        [tools]
        include = ["orders_*"]
        [[policy.rules]]
        email = "*@Example.com"
        tools = ["orders_list"]
        access = "read"
        "#,
    );

    let settings = Settings::load_from(Some(file.path()), env(&[])).unwrap();

    assert!(matches!(settings.upstream.spec, Some(SpecSource::Url(_))));
    assert_eq!(settings.upstream.token_header.name().as_str(), "x-api-key");
    assert_eq!(settings.upstream.token_header.to_string(), "X-Api-Key");
    assert_eq!(settings.upstream.headers.0[0].1, "acme");
    assert!(
        settings.tools.include[0]
            .0
            .compile_matcher()
            .is_match("orders_list")
    );
    let email = settings.policy.rules[0].email.as_ref().unwrap();
    assert!(email.0.compile_matcher().is_match("ada@example.com"));
}

#[test]
fn refuses_a_bad_tool_glob_naming_the_key_and_the_pattern() {
    let error = Settings::load_from(None, env(&[("TUNNELGATE__TOOLS__INCLUDE", "pets[")]))
        .unwrap_err()
        .to_string();

    assert!(error.contains("tools.include"), "{error}");
    assert!(error.contains("\"pets[\""), "{error}");
}

#[test]
fn refuses_a_policy_rule_that_names_no_identity() {
    let file = toml_file("[[policy.rules]]\ntools = [\"*\"]\naccess = \"read\"\n");

    let error = Settings::load_from(Some(file.path()), env(&[]))
        .unwrap_err()
        .to_string();

    assert!(
        error.contains("policy.rules[0]: needs at least one of email, service or group"),
        "{error}"
    );
}

#[test]
fn refuses_plain_http_for_the_trust_endpoints_beyond_loopback() {
    let error = Settings::load_from(
        None,
        env(&[
            (
                "TUNNELGATE__ACCESS__CERTS_URL",
                "http://keys.example.com/certs",
            ),
            (
                "TUNNELGATE__POLICY__IDENTITY_URL",
                "http://id.example.com/get-identity",
            ),
        ]),
    )
    .unwrap_err()
    .to_string();

    assert!(error.contains("access.certs_url"), "{error}");
    assert!(error.contains("policy.identity_url"), "{error}");
}

#[test]
fn allows_plain_http_trust_endpoints_on_loopback_and_http_upstreams_anywhere() {
    let settings = Settings::load_from(
        None,
        env(&[
            (
                "TUNNELGATE__ACCESS__CERTS_URL",
                "http://127.0.0.1:9000/certs",
            ),
            (
                "TUNNELGATE__POLICY__IDENTITY_URL",
                "http://localhost:9000/id",
            ),
            ("TUNNELGATE__UPSTREAM__BASE_URL", "http://10.0.0.5:8000"),
        ]),
    );

    assert!(settings.is_ok(), "{:?}", settings.err());
}

#[test]
fn serve_requires_a_team_domain_and_an_audience() {
    let settings = Settings::load_from(None, env(&[])).unwrap();

    let error = settings.require_access().unwrap_err().to_string();

    assert!(error.contains("access.team_domain"), "{error}");
    assert!(error.contains("access.audiences"), "{error}");
}

#[test]
fn a_missing_config_file_is_an_error_naming_the_path() {
    let error = Settings::load_from(Some(Path::new("/nonexistent/tunnelgate.toml")), env(&[]))
        .unwrap_err()
        .to_string();

    assert!(error.contains("/nonexistent/tunnelgate.toml"), "{error}");
}

#[test]
fn the_polar_token_can_come_from_polar_access_token() {
    let settings = Settings::load_from(
        None,
        env(&[
            ("TUNNELGATE__UPSTREAM__PROFILE", "polar"),
            ("POLAR_ACCESS_TOKEN", "polar_oat_secret"),
        ]),
    )
    .unwrap();

    assert_eq!(
        settings.upstream.token.as_ref().map(Secret::expose),
        Some("polar_oat_secret")
    );
}

#[test]
fn rendered_configuration_redacts_secrets() {
    let settings = Settings::load_from(
        None,
        env(&[("TUNNELGATE__UPSTREAM__TOKEN", "super-secret-token")]),
    )
    .unwrap();

    let rendered = settings.to_redacted_toml();

    assert!(!rendered.contains("super-secret-token"));
    assert!(rendered.contains("[redacted]"));
}

#[test]
fn warns_about_an_audience_that_is_not_an_aud_tag() {
    let tag = "a".repeat(64);
    let settings = Settings::load_from(
        None,
        env(&[("TUNNELGATE__ACCESS__AUDIENCES", &format!("{tag},my-app"))]),
    )
    .unwrap();

    let warnings = settings.warnings();

    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("\"my-app\""), "{warnings:?}");
}

#[test]
fn the_web_page_is_on_by_default_and_can_be_retitled_or_turned_off() {
    let defaults = Settings::load_from(None, env(&[])).unwrap();
    let file = toml_file("[web]\nenabled = false\ntitle = \"Acme tools\"\n");

    let configured = Settings::load_from(Some(file.path()), env(&[])).unwrap();

    assert!(defaults.web.enabled);
    assert_eq!(defaults.web.title, "tunnelgate");
    assert!(!configured.web.enabled);
    assert_eq!(configured.web.title, "Acme tools");
}

#[test]
fn names_an_unknown_web_key_and_an_empty_title() {
    let file = toml_file("[web]\nenabeld = true\n");
    let empty = toml_file("[web]\ntitle = \"  \"\n");

    let unknown = Settings::load_from(Some(file.path()), env(&[]))
        .unwrap_err()
        .to_string();
    let blank = Settings::load_from(Some(empty.path()), env(&[]))
        .unwrap_err()
        .to_string();

    assert!(unknown.contains("web.enabeld"), "{unknown}");
    assert!(blank.contains("web.title: must not be empty"), "{blank}");
}

#[test]
fn a_bare_number_for_a_duration_gets_an_example_with_a_unit() {
    let file = toml_file("[server]\nsse_keep_alive = 120\n");

    let error = Settings::load_from(Some(file.path()), env(&[]))
        .unwrap_err()
        .to_string();

    assert!(error.contains("server.sse_keep_alive"), "{error}");
    assert!(error.contains("\"120s\""), "{error}");
}

#[test]
fn a_bare_number_for_a_duration_in_the_environment_gets_the_same_example() {
    let error = Settings::load_from(None, env(&[("TUNNELGATE__ACCESS__LEEWAY", "30")]))
        .unwrap_err()
        .to_string();

    assert!(error.contains("access.leeway"), "{error}");
    assert!(error.contains("\"30s\""), "{error}");
}

#[test]
fn a_switch_written_yes_is_an_error_not_true() {
    let file = toml_file("[tools]\nread_only = \"yes\"\n");

    let from_file = Settings::load_from(Some(file.path()), env(&[]))
        .unwrap_err()
        .to_string();
    let from_environment =
        Settings::load_from(None, env(&[("TUNNELGATE__SERVER__FAST_LANE", "on")]))
            .unwrap_err()
            .to_string();

    assert!(from_file.contains("tools.read_only"), "{from_file}");
    assert!(from_file.contains("write true or false"), "{from_file}");
    assert!(
        from_environment.contains("server.fast_lane"),
        "{from_environment}"
    );
}

#[test]
fn a_switch_in_the_environment_takes_true_and_false() {
    let settings = Settings::load_from(
        None,
        env(&[
            ("TUNNELGATE__TOOLS__READ_ONLY", "false"),
            ("TUNNELGATE__SERVER__FAST_LANE", "true"),
        ]),
    )
    .unwrap();

    assert!(!settings.tools.read_only);
    assert!(settings.server.fast_lane);
}

#[test]
fn refuses_an_sse_keep_alive_under_one_second() {
    let error = Settings::load_from(
        None,
        env(&[("TUNNELGATE__SERVER__SSE_KEEP_ALIVE", "500ms")]),
    )
    .unwrap_err()
    .to_string();

    assert!(error.contains("server.sse_keep_alive"), "{error}");
    assert!(error.contains("between 1s and 89s"), "{error}");
}

#[test]
fn no_cluster_section_means_one_process() {
    let settings = Settings::load_from(None, env(&[])).unwrap();

    assert!(!settings.cluster.is_enabled());
    assert!(settings.cluster.redis_url().unwrap().is_none());
}

#[test]
fn an_empty_redis_url_means_no_cluster() {
    let settings =
        Settings::load_from(None, env(&[("TUNNELGATE__CLUSTER__REDIS_URL", "")])).unwrap();

    assert!(!settings.cluster.is_enabled());
}

#[test]
fn the_redis_url_never_shows_in_debug_or_rendered_settings() {
    let settings = Settings::load_from(
        None,
        env(&[(
            "TUNNELGATE__CLUSTER__REDIS_URL",
            "redis://:hunter2-redis@redis:6379/0",
        )]),
    )
    .unwrap();

    assert!(settings.cluster.is_enabled());
    assert!(!format!("{settings:?}").contains("hunter2"));
    assert!(!settings.to_redacted_toml().contains("hunter2"));
}

#[test]
fn reads_the_redis_url_from_a_file() {
    let mut secret = tempfile::NamedTempFile::new().unwrap();
    writeln!(secret, "redis://redis:6379/2").unwrap();
    let path = secret.path().display().to_string();

    let settings = Settings::load_from(
        None,
        env(&[("TUNNELGATE__CLUSTER__REDIS_URL_FILE", path.as_str())]),
    )
    .unwrap();

    assert_eq!(
        settings.cluster.redis_url().unwrap().unwrap().expose(),
        "redis://redis:6379/2"
    );
}

#[test]
fn refuses_stateful_mode_with_a_cluster_and_says_why() {
    let file = toml_file(
        r#"
        [server]
        mode = "stateful"
        [cluster]
        redis_url = "redis://redis:6379"
        "#,
    );

    let error = Settings::load_from(Some(file.path()), env(&[]))
        .unwrap_err()
        .to_string();

    assert!(error.contains("server.mode"), "{error}");
    assert!(error.contains("not shared between replicas"), "{error}");
}

#[test]
fn names_each_bad_cluster_key_without_showing_the_url() {
    let file = toml_file(
        r#"
        [cluster]
        redis_url = "http://user:s3cret-pass@redis:6379"
        expected_replicas = 0
        relay_timeout = "0s"
        key_prefix = "bad prefix"
        "#,
    );

    let error = Settings::load_from(Some(file.path()), env(&[]))
        .unwrap_err()
        .to_string();

    assert!(
        error.contains("cluster.redis_url: must start with redis://"),
        "{error}"
    );
    assert!(error.contains("cluster.expected_replicas"), "{error}");
    assert!(error.contains("cluster.relay_timeout"), "{error}");
    assert!(error.contains("cluster.key_prefix"), "{error}");
    assert!(!error.contains("s3cret"), "{error}");
}

#[test]
fn refuses_unknown_cluster_keys() {
    let error = Settings::load_from(None, env(&[("TUNNELGATE__CLUSTER__REDIS_HOST", "redis")]))
        .unwrap_err()
        .to_string();

    assert!(error.contains("redis_host"), "{error}");
}
