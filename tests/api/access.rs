//! Every rejection class of the Access check, and the identities it admits.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{spawn_app, spawn_app_with};
use crate::issuer::{AUDIENCE, TokenBuilder, now};

async fn denial_reason(response: reqwest::Response) -> String {
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(
        response.headers().get("www-authenticate").is_none(),
        "a 403 from Access carries no WWW-Authenticate"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "access_denied");
    body["reason"].as_str().unwrap().to_string()
}

async fn reason_for(token: &str) -> String {
    let app = spawn_app().await;
    denial_reason(app.list_tools(token).await).await
}

#[actix_web::test]
async fn admits_a_valid_user_token_and_reports_the_identity() {
    let app = spawn_app().await;
    let token = TokenBuilder::user("ada@example.com").build();

    let response = app.call_tool(&token, "whoami", json!({})).await;

    let identity = &response["result"]["structuredContent"];
    assert_eq!(identity["email"], "ada@example.com");
    assert_eq!(identity["sub"], "sub-ada@example.com");
    assert_eq!(identity["country"], "NL");
    assert_eq!(identity["audience"], AUDIENCE);
    assert_eq!(identity["kind"], "user");
}

#[actix_web::test]
async fn admits_a_service_token_by_its_common_name() {
    let app = spawn_app().await;
    let token = TokenBuilder::service("ci-bot.access").build();

    let response = app.call_tool(&token, "whoami", json!({})).await;

    let identity = &response["result"]["structuredContent"];
    assert_eq!(identity["kind"], "service");
    assert_eq!(identity["service_token"], "ci-bot.access");
    assert_eq!(identity["email"], Value::Null);
}

#[actix_web::test]
async fn rejects_a_request_without_a_token() {
    let app = spawn_app().await;
    let response = app
        .post_mcp(
            None,
            &json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
        )
        .await;
    assert_eq!(denial_reason(response).await, "missing");
}

#[actix_web::test]
async fn ignores_the_cf_authorization_cookie() {
    let app = spawn_app().await;
    let token = TokenBuilder::user("ada@example.com").build();

    let response = app
        .http
        .post(app.mcp_url())
        .header("Cookie", format!("CF_Authorization={token}"))
        .header("Content-Type", "application/json")
        .header("Accept", "application/json, text/event-stream")
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#)
        .send()
        .await
        .unwrap();

    assert_eq!(denial_reason(response).await, "missing");
}

#[actix_web::test]
async fn rejects_garbage_as_malformed() {
    assert_eq!(reason_for("not-a-jwt").await, "malformed");
}

#[actix_web::test]
async fn rejects_an_oversized_token_without_parsing_it() {
    let huge = "a".repeat(17 * 1024);
    assert_eq!(reason_for(&huge).await, "malformed");
}

#[actix_web::test]
async fn rejects_a_token_without_a_kid() {
    let token = TokenBuilder::user("ada@example.com").kid("").build();
    assert_eq!(reason_for(&token).await, "malformed");
}

#[actix_web::test]
async fn rejects_a_token_signed_by_an_unpublished_key() {
    let token = TokenBuilder::user("ada@example.com").signed_with(2).build();
    assert_eq!(reason_for(&token).await, "unknown_key");
}

#[actix_web::test]
async fn rejects_a_token_whose_payload_was_altered() {
    let genuine = TokenBuilder::user("ada@example.com").build();
    let other = TokenBuilder::user("mallory@example.com").build();
    let parts: Vec<&str> = genuine.split('.').collect();
    let forged_payload = other.split('.').nth(1).unwrap();
    let forged = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);

    assert_eq!(reason_for(&forged).await, "bad_signature");
}

#[actix_web::test]
async fn rejects_a_token_signed_by_another_key_under_a_published_kid() {
    let token = TokenBuilder::user("ada@example.com")
        .signed_with(1)
        .kid("key-one")
        .build();
    assert_eq!(reason_for(&token).await, "bad_signature");
}

#[actix_web::test]
async fn refuses_hs256_keyed_with_the_public_key() {
    let token = TokenBuilder::user("ada@example.com").build_hs256_with_public_key();
    assert_eq!(reason_for(&token).await, "bad_signature");
}

#[actix_web::test]
async fn refuses_an_unsigned_alg_none_token() {
    let token = TokenBuilder::user("ada@example.com").build_unsigned();
    let reason = reason_for(&token).await;
    assert!(
        reason == "malformed" || reason == "bad_signature",
        "alg none must be refused, got {reason}"
    );
}

#[actix_web::test]
async fn rejects_an_expired_token() {
    let token = TokenBuilder::user("ada@example.com")
        .claim("exp", json!(now() - 600))
        .build();
    assert_eq!(reason_for(&token).await, "expired");
}

#[actix_web::test]
async fn honours_the_leeway_on_both_sides_of_expiry() {
    let app = spawn_app().await; // leeway 60 s
    let just_inside = TokenBuilder::user("ada@example.com")
        .claim("exp", json!(now() - 50))
        .build();
    let just_outside = TokenBuilder::user("ada@example.com")
        .claim("exp", json!(now() - 70))
        .build();

    assert_eq!(app.list_tools(&just_inside).await.status(), StatusCode::OK);
    assert_eq!(
        denial_reason(app.list_tools(&just_outside).await).await,
        "expired"
    );
}

#[actix_web::test]
async fn rejects_a_token_that_is_not_yet_valid() {
    let app = spawn_app().await;
    let future = TokenBuilder::user("ada@example.com")
        .claim("nbf", json!(now() + 600))
        .build();
    let within_leeway = TokenBuilder::user("ada@example.com")
        .claim("nbf", json!(now() + 30))
        .build();

    assert_eq!(
        denial_reason(app.list_tools(&future).await).await,
        "not_yet_valid"
    );
    assert_eq!(
        app.list_tools(&within_leeway).await.status(),
        StatusCode::OK
    );
}

#[actix_web::test]
async fn rejects_a_token_from_another_issuer() {
    let token = TokenBuilder::user("ada@example.com")
        .claim("iss", json!("https://otherteam.cloudflareaccess.com"))
        .build();
    assert_eq!(reason_for(&token).await, "wrong_issuer");
}

#[actix_web::test]
async fn rejects_a_token_without_an_issuer() {
    let token = TokenBuilder::user("ada@example.com").without("iss").build();
    assert_eq!(reason_for(&token).await, "wrong_issuer");
}

#[actix_web::test]
async fn rejects_a_token_for_another_audience() {
    let token = TokenBuilder::user("ada@example.com")
        .claim("aud", json!(["someone-elses-app"]))
        .build();
    assert_eq!(reason_for(&token).await, "wrong_audience");
}

#[actix_web::test]
async fn rejects_a_token_without_an_audience() {
    let token = TokenBuilder::user("ada@example.com").without("aud").build();
    assert_eq!(reason_for(&token).await, "wrong_audience");
}

#[actix_web::test]
async fn rejects_a_token_without_an_expiry() {
    let token = TokenBuilder::user("ada@example.com").without("exp").build();
    assert_eq!(reason_for(&token).await, "malformed");
}

#[actix_web::test]
async fn accepts_an_audience_array_with_one_match() {
    let app = spawn_app().await;
    let token = TokenBuilder::user("ada@example.com")
        .claim("aud", json!(["someone-elses-app", AUDIENCE]))
        .build();

    let response = app.call_tool(&token, "whoami", json!({})).await;

    assert_eq!(
        response["result"]["structuredContent"]["audience"],
        AUDIENCE
    );
}

#[actix_web::test]
async fn rejects_an_organization_token() {
    let token = TokenBuilder::user("ada@example.com")
        .claim("type", json!("org"))
        .build();
    assert_eq!(reason_for(&token).await, "wrong_type");
}

#[actix_web::test]
async fn counts_denials_by_reason_in_metrics() {
    let app = spawn_app().await;
    let _ = app.list_tools("garbage").await;

    let metrics = app.metrics().await;

    assert!(
        metrics.contains(r#"tunnelgate_access_denials_total{reason="malformed"} 1"#),
        "{metrics}"
    );
}

#[actix_web::test]
async fn host_header_outside_the_allowlist_is_refused() {
    let app = spawn_app().await;
    let token = TokenBuilder::user("ada@example.com").build();

    let foreign = app
        .http
        .post(app.mcp_url())
        .header("Host", "evil.example")
        .header("Cf-Access-Jwt-Assertion", &token)
        .header("Content-Type", "application/json")
        .header("Accept", "application/json, text/event-stream")
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#)
        .send()
        .await
        .unwrap();
    let public = app
        .http
        .post(app.mcp_url())
        .header("Host", "mcp.example.com")
        .header("MCP-Protocol-Version", "2025-06-18")
        .header("Cf-Access-Jwt-Assertion", &token)
        .header("Content-Type", "application/json")
        .header("Accept", "application/json, text/event-stream")
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#)
        .send()
        .await
        .unwrap();

    assert_eq!(foreign.status(), StatusCode::FORBIDDEN);
    assert_eq!(public.status(), StatusCode::OK);
    assert!(
        app.metrics()
            .await
            .contains(r#"tunnelgate_access_denials_total{reason="host_not_allowed"} 1"#)
    );
}

#[actix_web::test]
async fn a_foreign_origin_is_refused_and_the_public_origin_admitted() {
    let app = spawn_app().await;
    let token = TokenBuilder::user("ada@example.com").build();
    let send = |origin: &'static str| {
        app.http
            .post(app.mcp_url())
            .header("Origin", origin)
            .header("MCP-Protocol-Version", "2025-06-18")
            .header("Cf-Access-Jwt-Assertion", &token)
            .header("Content-Type", "application/json")
            .header("Accept", "application/json, text/event-stream")
            .body(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#)
            .send()
    };

    let foreign = send("https://evil.example").await.unwrap();
    let public = send("https://mcp.example.com").await.unwrap();

    assert_eq!(foreign.status(), StatusCode::FORBIDDEN);
    assert_eq!(public.status(), StatusCode::OK);
}

#[actix_web::test]
async fn a_body_over_the_limit_gets_413() {
    let app = spawn_app_with(|settings| {
        settings.server.max_body = tunnelgate::config::ByteSize(1024);
    })
    .await;
    let token = TokenBuilder::user("ada@example.com").build();
    let padding = "x".repeat(4096);

    let response = app
        .post_mcp(
            Some(&token),
            &json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": {"pad": padding}}}),
        )
        .await;

    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

#[actix_web::test]
async fn a_header_that_is_not_text_is_malformed_not_a_crash() {
    let app = spawn_app().await;

    let response = app
        .http
        .post(app.mcp_url())
        .header(
            "Cf-Access-Jwt-Assertion",
            reqwest::header::HeaderValue::from_bytes(b"eyJ\xff\xfe.abc.def").unwrap(),
        )
        .header("Content-Type", "application/json")
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#)
        .send()
        .await
        .unwrap();

    assert_eq!(denial_reason(response).await, "malformed");
}

#[actix_web::test]
async fn a_refusal_without_a_token_names_the_header_it_expected() {
    let app = spawn_app().await;

    let response = app
        .post_mcp(
            None,
            &json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
        )
        .await;

    let body: Value = response.json().await.unwrap();
    assert_eq!(body["reason"], "missing");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("Cf-Access-Jwt-Assertion"),
        "{body}"
    );
}

#[actix_web::test]
async fn in_dev_mode_a_token_from_an_earlier_run_is_refused_saying_so() {
    let app = spawn_app_with(|settings| {
        settings.dev_token_url = Some("http://127.0.0.1:1/dev/token".into());
    })
    .await;
    let earlier_run = TokenBuilder::user("dev@localhost").signed_with(2).build();

    let response = app.list_tools(&earlier_run).await;

    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["reason"], "unknown_key");
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("earlier run"), "{message}");
    assert!(
        message.contains("http://127.0.0.1:1/dev/token"),
        "{message}"
    );
}

#[actix_web::test]
async fn outside_dev_mode_an_unknown_key_says_to_sign_in_again() {
    let app = spawn_app().await;
    let token = TokenBuilder::user("ada@example.com").signed_with(2).build();

    let body: Value = app.list_tools(&token).await.json().await.unwrap();

    assert_eq!(body["reason"], "unknown_key");
    assert!(
        !body["message"].as_str().unwrap().contains("tunnelgate dev"),
        "{body}"
    );
}
