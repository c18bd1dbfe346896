//! The signing-key cache against a live certs endpoint: rotation, unknown-kid refetch with
//! its cooldown, and outages at start-up and mid-run.

use std::time::Duration;

use futures::future::join_all;
use reqwest::StatusCode;

use crate::helpers::{eventually, spawn_app_for};
use crate::issuer::{TestIssuer, TokenBuilder};

#[actix_web::test]
async fn accepts_old_and_new_keys_during_a_rotation_and_refuses_a_withdrawn_key_after_refresh() {
    let issuer = TestIssuer::start(&[0, 1]);
    let app = spawn_app_for(issuer, |settings| {
        settings.access.jwks_refresh = Duration::from_millis(500);
    })
    .await;
    let old = TokenBuilder::user("ada@example.com").signed_with(0).build();
    let new = TokenBuilder::user("ada@example.com").signed_with(1).build();
    assert_eq!(app.list_tools(&old).await.status(), StatusCode::OK);
    assert_eq!(app.list_tools(&new).await.status(), StatusCode::OK);

    app.issuer.publish(&[1]);

    let withdrawn = eventually(Duration::from_secs(10), || async {
        app.list_tools(&old).await.status() == StatusCode::FORBIDDEN
    })
    .await;
    assert!(
        withdrawn,
        "a token signed by a withdrawn key is still accepted"
    );
    assert_eq!(app.list_tools(&new).await.status(), StatusCode::OK);
}

#[actix_web::test]
async fn a_burst_for_a_new_kid_shares_one_refetch() {
    let app = spawn_app_for(TestIssuer::start(&[0]), |_| {}).await;
    let fetches_at_start = app.issuer.fetches();
    app.issuer.publish(&[0, 1]);
    let token = TokenBuilder::user("ada@example.com").signed_with(1).build();

    let statuses = join_all((0..20).map(|_| app.list_tools(&token))).await;

    assert!(
        statuses
            .iter()
            .all(|response| response.status() == StatusCode::OK)
    );
    assert_eq!(app.issuer.fetches(), fetches_at_start + 1);
}

#[actix_web::test]
async fn a_flood_of_forged_kids_fetches_at_most_once_per_cooldown() {
    let app = spawn_app_for(TestIssuer::start(&[0]), |settings| {
        settings.access.unknown_kid_cooldown = Duration::from_millis(1500);
    })
    .await;
    let fetches_at_start = app.issuer.fetches();
    let forged: Vec<String> = (0..30)
        .map(|n| {
            TokenBuilder::user("mallory@example.com")
                .kid(&format!("forged-{n}"))
                .build()
        })
        .collect();

    let responses = join_all(forged.iter().map(|token| app.list_tools(token))).await;
    let after_burst = app.issuer.fetches();
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let _ = app.list_tools(&forged[0]).await;

    assert!(
        responses
            .iter()
            .all(|r| r.status() == StatusCode::FORBIDDEN)
    );
    assert_eq!(
        after_burst,
        fetches_at_start + 1,
        "one fetch per cooldown window"
    );
    assert_eq!(
        app.issuer.fetches(),
        fetches_at_start + 2,
        "the cooldown expires"
    );
}

#[actix_web::test]
async fn starts_unready_when_certs_are_down_and_recovers_when_they_return() {
    let issuer = TestIssuer::start(&[0]);
    issuer.set_failing(true);
    let app = spawn_app_for(issuer, |_| {}).await;
    let token = TokenBuilder::user("ada@example.com").build();

    let readiness = app
        .http
        .get(format!("{}/readyz", app.admin_address))
        .send()
        .await
        .unwrap();
    let liveness = app
        .http
        .get(format!("{}/healthz", app.admin_address))
        .send()
        .await
        .unwrap();
    let mcp = app.list_tools(&token).await;
    assert_eq!(readiness.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(liveness.status(), StatusCode::OK);
    assert_eq!(mcp.status(), StatusCode::SERVICE_UNAVAILABLE);

    app.issuer.set_failing(false);

    let recovered = eventually(Duration::from_secs(15), || async {
        app.http
            .get(format!("{}/readyz", app.admin_address))
            .send()
            .await
            .is_ok_and(|r| r.status() == StatusCode::OK)
    })
    .await;
    assert!(recovered, "never became ready after certs returned");
    assert_eq!(app.list_tools(&token).await.status(), StatusCode::OK);
}

#[actix_web::test]
async fn keeps_the_last_good_keys_when_certs_fail_mid_run() {
    let app = spawn_app_for(TestIssuer::start(&[0]), |settings| {
        settings.access.jwks_refresh = Duration::from_millis(300);
    })
    .await;
    let fetches_before = app.issuer.fetches();

    app.issuer.set_failing(true);
    let refreshed = eventually(Duration::from_secs(10), || async {
        app.issuer.fetches() >= fetches_before + 2
    })
    .await;
    let fresh_token = TokenBuilder::user("grace@example.com").build();

    assert!(refreshed, "the refresher never retried");
    assert_eq!(app.list_tools(&fresh_token).await.status(), StatusCode::OK);
    let readiness = app
        .http
        .get(format!("{}/readyz", app.admin_address))
        .send()
        .await
        .unwrap();
    assert_eq!(readiness.status(), StatusCode::OK);
    let metrics = app.metrics().await;
    assert!(
        metrics.contains(r#"tunnelgate_access_key_fetches_total{result="failure"}"#),
        "{metrics}"
    );
}
