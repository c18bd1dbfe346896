//! The page's one stylesheet and one small script, embedded in the binary and served from the
//! same listener, behind the same guard, under `/assets/`.

use std::sync::LazyLock;

use actix_web::HttpResponse;
use actix_web::http::header;
use sha2::{Digest, Sha256};

pub const STYLESHEET: &str = include_str!("assets/page.css");
pub const SCRIPT: &str = include_str!("assets/page.js");

/// A digest of both files, appended to their URLs so a new binary's assets are never taken
/// from a cache filled by the old one.
static VERSION: LazyLock<String> = LazyLock::new(|| {
    let mut digest = Sha256::new();
    digest.update(STYLESHEET.as_bytes());
    digest.update(SCRIPT.as_bytes());
    crate::hex::lower_hex(digest.finalize().get(..6).unwrap_or_default())
});

pub fn stylesheet_url() -> String {
    format!("/assets/page.css?v={}", *VERSION)
}

pub fn script_url() -> String {
    format!("/assets/page.js?v={}", *VERSION)
}

/// `GET /assets/page.css`.
pub async fn stylesheet() -> HttpResponse {
    asset(STYLESHEET, "text/css; charset=utf-8")
}

/// `GET /assets/page.js`.
pub async fn script() -> HttpResponse {
    asset(SCRIPT, "text/javascript; charset=utf-8")
}

fn asset(body: &'static str, content_type: &'static str) -> HttpResponse {
    // Nothing personal, but behind Access: only the browser may keep it.
    super::respond::with_security_headers(
        HttpResponse::Ok()
            .content_type(content_type)
            .insert_header((header::CACHE_CONTROL, "private, max-age=86400"))
            .body(body),
    )
}
