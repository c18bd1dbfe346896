//! Liveness and readiness: `/healthz` answers while the process runs; `/readyz` only once
//! the Access signing keys are loaded (before that, MCP requests would all get 503).

use std::sync::Arc;

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::access::KeyCache;

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

pub async fn readyz(keys: web::Data<Arc<KeyCache>>) -> HttpResponse {
    if keys.is_loaded() {
        HttpResponse::Ok().json(json!({ "status": "ready" }))
    } else {
        HttpResponse::ServiceUnavailable()
            .json(json!({ "status": "not_ready", "reason": "signing_keys_not_loaded" }))
    }
}
