//! The admin listener (`admin.bind`): health, readiness and metrics. It is never routed
//! through the tunnel and needs no Access token.

pub mod health;
pub mod metrics;

use std::sync::Arc;

use actix_web::{HttpResponse, web};

use crate::access::KeyCache;
use metrics::Metrics;

pub fn routes(config: &mut web::ServiceConfig) {
    config
        .route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz))
        .route("/metrics", web::get().to(render_metrics));
}

async fn render_metrics(
    metrics: web::Data<Metrics>,
    keys: web::Data<Arc<KeyCache>>,
) -> HttpResponse {
    let _ = &keys;
    HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(metrics.encode())
}
