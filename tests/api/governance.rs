//! Issue 4 end to end: per-identity tool access, groups from claims and get-identity,
//! SIGHUP policy reload, the audit trail, rate limits and the metrics families.

use std::time::Duration;

use serde_json::{Value, json};
use tunnelgate::config::{AccessClass, PolicyRule, Rate};

use crate::api_tools::{ApiFixture, UPSTREAM_TOKEN, spawn_with_fixture};
use crate::fake_upstream::{FakeUpstream, Scripted};
use crate::helpers::{eventually, read_jsonrpc};
use crate::issuer::TokenBuilder;

fn rule(
    email: Option<&str>,
    group: Option<&str>,
    tools: &[&str],
    access: AccessClass,
) -> PolicyRule {
    PolicyRule {
        email: email.map(|glob| glob.parse().unwrap()),
        service: None,
        group: group.map(String::from),
        tools: tools.iter().map(|tool| tool.parse().unwrap()).collect(),
        access,
    }
}

fn is_error(response: &Value) -> bool {
    response["result"]["isError"] == true
}

fn text(response: &Value) -> String {
    response["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[actix_web::test]
async fn two_identities_see_different_tools_and_one_is_refused_the_others() {
    let fx = spawn_with_fixture(|settings| {
        settings.policy.default_access = AccessClass::None;
        settings.policy.rules = vec![
            rule(Some("admin@example.com"), None, &["*"], AccessClass::Write),
            rule(
                Some("*@example.com"),
                None,
                &["items_list", "items_get"],
                AccessClass::Read,
            ),
        ];
    })
    .await;
    let admin = TokenBuilder::user("admin@example.com").build();
    let analyst = TokenBuilder::user("analyst@example.com").build();

    let admin_tools = fx.app.tool_names(&admin).await;
    let analyst_tools = fx.app.tool_names(&analyst).await;
    let refused = fx
        .app
        .call_tool(&analyst, "items_delete", json!({"id": "it_1"}))
        .await;
    let nonexistent = fx
        .app
        .call_tool(&analyst, "items_frobnicate", json!({}))
        .await;

    assert_eq!(
        admin_tools,
        vec![
            "whoami",
            "items_list",
            "items_create",
            "items_get",
            "items_replace",
            "items_delete"
        ]
    );
    assert_eq!(analyst_tools, vec!["whoami", "items_list", "items_get"]);
    assert_eq!(refused["error"]["code"], nonexistent["error"]["code"]);
    assert_eq!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .replace("items_delete", "X"),
        nonexistent["error"]["message"]
            .as_str()
            .unwrap()
            .replace("items_frobnicate", "X"),
        "a hidden tool must answer exactly like a missing one"
    );
    assert!(fx.upstream.recorded().is_empty());
}

#[actix_web::test]
async fn a_group_from_a_claim_grants_access() {
    let fx = spawn_with_fixture(|settings| {
        settings.policy.default_access = AccessClass::None;
        settings.policy.groups_claim = Some("custom.groups".into());
        settings.policy.rules = vec![rule(None, Some("finance"), &["items_*"], AccessClass::Read)];
    })
    .await;
    let in_finance = TokenBuilder::user("ada@example.com")
        .claim("custom", json!({"groups": ["finance", "staff"]}))
        .build();
    let outside = TokenBuilder::user("bob@example.com")
        .claim("custom", json!({"groups": ["staff"]}))
        .build();

    assert_eq!(
        fx.app.tool_names(&in_finance).await,
        vec!["whoami", "items_list", "items_get"]
    );
    assert_eq!(fx.app.tool_names(&outside).await, vec!["whoami"]);
}

async fn spawn_with_identity_endpoint(
    identity: &FakeUpstream,
    failure: tunnelgate::config::LookupFailure,
) -> ApiFixture {
    let url = format!("{}/cdn-cgi/access/get-identity", identity.url);
    spawn_with_fixture(move |settings| {
        settings.policy.default_access = AccessClass::None;
        settings.policy.identity_lookup = true;
        settings.policy.identity_url = Some(url.parse().unwrap());
        settings.policy.identity_lookup_failure = failure;
        settings.policy.groups_claim = Some("groups".into());
        settings.policy.rules = vec![rule(None, Some("ops"), &["items_*"], AccessClass::Write)];
    })
    .await
}

#[actix_web::test]
async fn a_group_from_get_identity_grants_access_and_is_cached_per_session() {
    let identity = FakeUpstream::start();
    identity.script(
        "/cdn-cgi/access/get-identity",
        vec![Scripted::json(
            200,
            json!({"email": "ada@example.com", "groups": [{"id": "g1", "name": "ops"}]}),
        )],
    );
    let fx = spawn_with_identity_endpoint(&identity, tunnelgate::config::LookupFailure::Deny).await;
    let token = TokenBuilder::user("ada@example.com").build();
    let second_token_same_session = TokenBuilder::user("ada@example.com")
        .claim("iat", json!(crate::issuer::now() - 1))
        .build();

    let first = fx.app.tool_names(&token).await;
    let second = fx.app.tool_names(&second_token_same_session).await;

    assert!(first.contains(&"items_delete".to_string()), "{first:?}");
    assert_eq!(first, second);
    let lookups = identity.requests_to("/cdn-cgi/access/get-identity");
    assert_eq!(lookups.len(), 1, "one lookup per Access session");
    assert_eq!(
        lookups[0].headers["cookie"],
        format!("CF_Authorization={token}")
    );
}

#[actix_web::test]
async fn a_failed_lookup_denies_or_falls_back_to_claims_as_configured() {
    let down = FakeUpstream::start();
    down.script(
        "/cdn-cgi/access/get-identity",
        vec![
            Scripted::json(500, json!({})),
            Scripted::json(500, json!({})),
        ],
    );
    let deny = spawn_with_identity_endpoint(&down, tunnelgate::config::LookupFailure::Deny).await;
    let fallback =
        spawn_with_identity_endpoint(&down, tunnelgate::config::LookupFailure::Claims).await;
    let token = TokenBuilder::user("ada@example.com")
        .claim("groups", json!(["ops"]))
        .build();

    let denied = deny.app.list_tools(&token).await;
    let fallen_back = fallback.app.tool_names(&token).await;

    assert_eq!(denied.status(), 403);
    assert_eq!(
        denied.json::<Value>().await.unwrap()["reason"],
        "identity_lookup_failed"
    );
    assert!(
        fallen_back.contains(&"items_delete".to_string()),
        "{fallen_back:?}"
    );
}

fn write_config(path: &std::path::Path, policy: &str) {
    std::fs::write(path, policy).unwrap();
}

fn send_sighup() {
    let status = std::process::Command::new("kill")
        .args(["-HUP", &std::process::id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[actix_web::test]
async fn sighup_reloads_the_policy_and_a_broken_file_keeps_the_old_one() {
    let directory = tempfile::tempdir().unwrap();
    let config = directory.path().join("tunnelgate.toml");
    write_config(&config, "[policy]\ndefault_access = \"read\"\n");
    let config_for_app = config.clone();
    let fx = spawn_with_fixture(move |settings| {
        settings.policy.default_access = AccessClass::Read;
        settings.source_file = Some(config_for_app);
    })
    .await;
    let token = TokenBuilder::user("ada@example.com").build();
    let sse = fx
        .app
        .http
        .get(format!("{}/sse", fx.app.address))
        .header("Cf-Access-Jwt-Assertion", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        fx.app.tool_names(&token).await,
        vec!["whoami", "items_list", "items_get"]
    );

    write_config(
        &config,
        "[policy]\ndefault_access = \"none\"\n[[policy.rules]]\nemail = \"ada@example.com\"\ntools = [\"items_list\"]\naccess = \"read\"\n",
    );
    send_sighup();
    let reloaded = eventually(Duration::from_secs(5), || async {
        fx.app.tool_names(&token).await == vec!["whoami", "items_list"]
    })
    .await;
    assert!(reloaded, "the new policy never took effect");

    write_config(&config, "[policy]\ndefault_access = \"everything\"\n");
    send_sighup();
    tokio::time::sleep(Duration::from_millis(500)).await;

    assert_eq!(
        fx.app.tool_names(&token).await,
        vec!["whoami", "items_list"]
    );
    assert_eq!(sse.status(), 200, "the open stream survived both reloads");
    let metrics = fx.app.metrics().await;
    assert!(
        metrics.contains("tunnelgate_sse_streams_open 1"),
        "{metrics}"
    );
}

#[actix_web::test]
async fn audits_allowed_denied_and_failed_calls_without_secrets() {
    let directory = tempfile::tempdir().unwrap();
    let audit_file = directory.path().join("audit.jsonl");
    let audit_path = audit_file.clone();
    let fx = spawn_with_fixture(move |settings| {
        settings.audit.file = Some(audit_path);
        settings.audit.include_arguments = true;
    })
    .await;
    fx.upstream.script(
        "/items",
        vec![Scripted::json(
            500,
            json!({"error": "Boom", "detail": "database down"}),
        )],
    );
    let wrong_audience = TokenBuilder::user("mallory@example.com")
        .claim("aud", json!(["other-app"]))
        .build();

    fx.app
        .call_tool(&fx.token, "items_get", json!({"id": "it_1"}))
        .await;
    fx.app
        .call_tool(
            &fx.token,
            "items_create",
            json!({"body": {"name": "lamp", "password": "hunter2"}}),
        )
        .await;
    let _ = fx.app.list_tools(&wrong_audience).await;

    // The writer thread flushes as soon as its queue runs empty; give it that moment.
    eventually(Duration::from_secs(5), || async {
        std::fs::read_to_string(&audit_file).is_ok_and(|contents| contents.lines().count() >= 3)
    })
    .await;
    let contents = std::fs::read_to_string(&audit_file).unwrap();
    let events: Vec<Value> = contents
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(events.len(), 3, "{contents}");
    assert_eq!(events[0]["event"], "tool_call");
    assert_eq!(events[0]["outcome"], "ok");
    assert_eq!(events[0]["principal"], "ada@example.com");
    assert_eq!(events[0]["upstream"]["path"], "/items/{id}");
    assert_eq!(events[0]["upstream"]["status"], 200);
    assert_eq!(events[0]["arguments_sha256"].as_str().unwrap().len(), 64);
    assert_eq!(events[1]["outcome"], "tool_error");
    assert_eq!(events[1]["upstream"]["status"], 500);
    assert_eq!(events[1]["arguments"]["body"]["password"], "[redacted]");
    assert_eq!(events[2]["event"], "access_denied");
    assert_eq!(events[2]["reason"], "wrong_audience");
    for secret in [
        fx.token.as_str(),
        wrong_audience.as_str(),
        UPSTREAM_TOKEN,
        "hunter2",
    ] {
        assert!(!contents.contains(secret), "the audit trail leaks a secret");
    }
}

#[actix_web::test]
async fn limits_tool_calls_per_identity() {
    let fx = spawn_with_fixture(|settings| {
        settings.limits.per_identity = Some(Rate::parse("2/min").unwrap());
    })
    .await;
    let other = TokenBuilder::user("grace@example.com").build();

    let first = fx
        .app
        .call_tool(&fx.token, "items_get", json!({"id": "a"}))
        .await;
    let second = fx
        .app
        .call_tool(&fx.token, "items_get", json!({"id": "b"}))
        .await;
    let third = fx
        .app
        .call_tool(&fx.token, "items_get", json!({"id": "c"}))
        .await;
    let someone_else = fx
        .app
        .call_tool(&other, "items_get", json!({"id": "d"}))
        .await;

    assert!(!is_error(&first) && !is_error(&second));
    assert!(is_error(&third));
    assert!(text(&third).contains("retry in"), "{third}");
    assert!(!is_error(&someone_else));
    assert_eq!(fx.upstream.recorded().len(), 3);
    assert!(
        fx.app
            .metrics()
            .await
            .contains(r#"tunnelgate_rate_limited_calls_total{limit="per_identity"} 1"#)
    );
}

#[actix_web::test]
async fn the_upstream_budget_is_shared_by_everyone() {
    let fx = spawn_with_fixture(|settings| {
        settings.limits.upstream = Some(Rate::parse("1/min").unwrap());
    })
    .await;
    let other = TokenBuilder::user("grace@example.com").build();

    let first = fx
        .app
        .call_tool(&fx.token, "items_get", json!({"id": "a"}))
        .await;
    let second = fx
        .app
        .call_tool(&other, "items_get", json!({"id": "b"}))
        .await;
    let builtin = fx.app.call_tool(&other, "whoami", json!({})).await;

    assert!(!is_error(&first));
    assert!(is_error(&second));
    assert!(text(&second).contains("shared budget"), "{second}");
    assert!(
        !is_error(&builtin),
        "built-ins do not spend the upstream budget"
    );
    assert_eq!(fx.upstream.recorded().len(), 1);
}

#[actix_web::test]
async fn metrics_expose_every_family_after_traffic() {
    let fx = spawn_with_fixture(|settings| {
        settings.limits.per_identity = Some(Rate::parse("1/min").unwrap());
    })
    .await;
    fx.app
        .call_tool(&fx.token, "items_get", json!({"id": "a"}))
        .await;
    fx.app
        .call_tool(&fx.token, "items_get", json!({"id": "b"}))
        .await;
    let _ = read_jsonrpc(fx.app.list_tools(&fx.token).await).await;
    let _ = fx.app.list_tools("garbage").await;

    let metrics = fx.app.metrics().await;

    for family in [
        r#"tunnelgate_mcp_requests_total{method="tools/call",tool="items_get",outcome="ok"} 1"#,
        r#"tunnelgate_mcp_requests_total{method="tools/list",tool="",outcome="ok"} 1"#,
        "tunnelgate_mcp_request_duration_seconds_bucket",
        r#"tunnelgate_access_denials_total{reason="malformed"} 1"#,
        r#"tunnelgate_access_key_fetches_total{result="success"}"#,
        "tunnelgate_access_signing_keys 1",
        "tunnelgate_access_key_fetch_last_success_timestamp_seconds",
        r#"tunnelgate_upstream_requests_total{status_class="2xx"} 1"#,
        "tunnelgate_upstream_request_duration_seconds_bucket",
        r#"tunnelgate_rate_limited_calls_total{limit="per_identity"} 1"#,
        "tunnelgate_sse_streams_open 0",
    ] {
        assert!(metrics.contains(family), "missing {family}:\n{metrics}");
    }
}

#[actix_web::test]
async fn made_up_tool_names_never_become_metric_labels() {
    let fx = spawn_with_fixture(|settings| {
        settings.limits.per_identity = Some(Rate::parse("1/h").unwrap());
    })
    .await;

    for index in 0..1_000 {
        let name = format!("made_up_{index}_{}", index * 7919 % 1000);
        fx.app.call_tool(&fx.token, &name, json!({})).await;
    }

    let metrics = fx.app.metrics().await;
    let series: Vec<&str> = metrics
        .lines()
        .filter(|line| line.starts_with("tunnelgate_mcp_requests_total{"))
        .collect();
    assert!(
        series.iter().all(|line| !line.contains("made_up_")),
        "{series:?}"
    );
    assert!(series.len() <= 3, "{series:?}");
}

#[actix_web::test]
async fn folds_identical_denials_within_a_second_and_counts_every_one() {
    let directory = tempfile::tempdir().unwrap();
    let audit_file = directory.path().join("audit.jsonl");
    let audit_path = audit_file.clone();
    let app = crate::helpers::spawn_app_with(move |settings| {
        settings.audit.file = Some(audit_path);
    })
    .await;

    for _ in 0..50 {
        let refused = app
            .post_mcp(
                None,
                &json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
            )
            .await;
        assert_eq!(refused.status(), 403);
    }

    let counted = |contents: &str| -> (usize, u64) {
        let events: Vec<Value> = contents
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        let total = events
            .iter()
            .map(|event| event["count"].as_u64().unwrap_or(1))
            .sum();
        (events.len(), total)
    };
    let all_counted = eventually(Duration::from_secs(5), || async {
        std::fs::read_to_string(&audit_file).is_ok_and(|contents| counted(&contents).1 == 50)
    })
    .await;
    let contents = std::fs::read_to_string(&audit_file).unwrap();
    let (events, total) = counted(&contents);
    assert!(all_counted, "{contents}");
    assert_eq!(total, 50);
    assert!(
        events <= 4,
        "{events} events for 50 identical denials: {contents}"
    );
    assert!(contents.contains(r#""reason":"missing""#), "{contents}");
    assert!(contents.contains(r#""path":"/mcp""#), "{contents}");
}

#[actix_web::test]
async fn concurrent_requests_of_one_person_share_one_get_identity_lookup() {
    let identity = FakeUpstream::start();
    identity.script(
        "/cdn-cgi/access/get-identity",
        (0..10)
            .map(|_| {
                Scripted::json(
                    200,
                    json!({"email": "ada@example.com", "groups": [{"name": "ops"}]}),
                )
                .delayed(Duration::from_millis(300))
            })
            .collect(),
    );
    let fx = spawn_with_identity_endpoint(&identity, tunnelgate::config::LookupFailure::Deny).await;
    // Ten tokens of one Access session (one identity_nonce), all new to the token cache.
    let tokens: Vec<String> = (0..10)
        .map(|index| {
            TokenBuilder::user("ada@example.com")
                .claim("iat", json!(crate::issuer::now() - index))
                .build()
        })
        .collect();

    let listed =
        futures::future::join_all(tokens.iter().map(|token| fx.app.tool_names(token))).await;

    assert!(
        listed
            .iter()
            .all(|names| names.contains(&"items_delete".to_string())),
        "{listed:?}"
    );
    assert_eq!(
        identity.requests_to("/cdn-cgi/access/get-identity").len(),
        1
    );
}

#[actix_web::test]
async fn refuses_a_get_identity_answer_larger_than_one_mebibyte() {
    let identity = FakeUpstream::start();
    let huge = format!(
        r#"{{"email": "ada@example.com", "padding": "{}", "groups": [{{"name": "ops"}}]}}"#,
        "x".repeat(2 * 1024 * 1024)
    );
    identity.script(
        "/cdn-cgi/access/get-identity",
        vec![Scripted::raw(200, "application/json", huge)],
    );
    let fx = spawn_with_identity_endpoint(&identity, tunnelgate::config::LookupFailure::Deny).await;
    let token = TokenBuilder::user("ada@example.com").build();

    let refused = fx.app.list_tools(&token).await;

    assert_eq!(refused.status(), 403);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["reason"], "identity_lookup_failed", "{body}");
}
