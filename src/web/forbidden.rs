//! The Access refusal in words for a browser: a person without a valid token gets an HTML 403
//! page saying what is missing and what to do; API clients keep the JSON body byte for byte.
//! Which one is decided by `Accept` alone (a browser's navigation prefers `text/html`).

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, ResponseError, web};

use super::layout;
use super::site::Site;
use crate::access::{AccessError, RejectReason};
use crate::telemetry::RequestInfo;

/// The HTML 403 (or 503) page for a browser that the Access guard refused, when the page is
/// enabled and the client prefers HTML; `None` keeps the guard's JSON answer.
pub fn respond(request: &HttpRequest, refusal: AccessError) -> Option<HttpResponse> {
    let site = request.app_data::<web::Data<Site>>()?;
    let accept = request
        .headers()
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok());
    prefers_html(accept).then(|| page(site, request, refusal))
}

/// Whether `Accept` asks for HTML at least as much as for JSON: `text/html` listed with a
/// quality above zero and not below `application/json`'s (explicit or through a wildcard).
pub fn prefers_html(accept: Option<&str>) -> bool {
    let Some(accept) = accept else {
        return false;
    };
    let mut html: Option<f32> = None;
    let mut json: Option<f32> = None;
    let mut wildcard: Option<f32> = None;
    for item in accept.split(',') {
        let mut parts = item.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let quality = parts
            .filter_map(|parameter| parameter.trim().strip_prefix("q="))
            .find_map(|value| value.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        match media.as_str() {
            "text/html" => html = Some(quality),
            "application/json" => json = Some(quality),
            "*/*" | "application/*" => wildcard = Some(wildcard.unwrap_or(0.0).max(quality)),
            _ => {}
        }
    }
    match html {
        Some(html) if html > 0.0 => html >= json.or(wildcard).unwrap_or(0.0),
        _ => false,
    }
}

fn page(site: &Site, request: &HttpRequest, refusal: AccessError) -> HttpResponse {
    let request_id = request
        .extensions()
        .get::<RequestInfo>()
        .map(|info| info.request_id.to_string())
        .unwrap_or_else(|| "-".into());
    let (heading, what, todo) = explanation(refusal);
    let code = match refusal {
        AccessError::Rejected(reason) => reason.as_str(),
        AccessError::KeysUnavailable => "signing_keys_unavailable",
    };
    let body = layout::message(
        &site.title,
        heading,
        &[
            what.to_owned(),
            todo.to_owned(),
            format!(
                "For the administrator: reason {code}, request {request_id}. tunnelgate's docs/security.md, What is verified, explains each reason."
            ),
        ],
        None,
    );
    let mut response = super::respond::html(refusal.status_code(), body.into_string());
    if refusal.status_code() == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("5"));
    }
    response
}

/// (heading, what is missing, what to do).
fn explanation(refusal: AccessError) -> (&'static str, &'static str, &'static str) {
    let sign_in_again = "Reload the page: Cloudflare Access will ask you to sign in again. If this keeps happening, ask the administrator.";
    match refusal {
        AccessError::KeysUnavailable => (
            "Not ready yet",
            "This server has not loaded Cloudflare Access's signing keys yet, so it cannot check who you are.",
            "Try again in a minute. If it lasts, ask the administrator to check that the server can reach Cloudflare.",
        ),
        AccessError::Rejected(reason) => match reason {
            RejectReason::Missing => (
                "Sign-in required",
                "No Cloudflare Access token came with this request: the page was opened without going through Cloudflare Access.",
                "Open this server through its public address (https://your-mcp-hostname/) and sign in. If you did, the tunnel or the Access application is not set up for this hostname: ask the administrator.",
            ),
            RejectReason::Expired => (
                "Your sign-in has expired",
                "Your Cloudflare Access session has ended.",
                sign_in_again,
            ),
            RejectReason::NotYetValid => (
                "Your sign-in is not valid yet",
                "Your Cloudflare Access token is dated in the future: this server's clock and Cloudflare's disagree.",
                "Ask the administrator to check the server's clock (NTP).",
            ),
            RejectReason::WrongAudience => (
                "Signed in to a different application",
                "Your Cloudflare Access token was issued for another Access application, not this one.",
                "Ask the administrator to add this application's AUD tag to access.audiences, or to put this hostname in the right Access application.",
            ),
            RejectReason::WrongIssuer => (
                "Signed in with another Cloudflare team",
                "Your Cloudflare Access token comes from a different Zero Trust team than the one this server trusts.",
                "Ask the administrator to check access.team_domain.",
            ),
            RejectReason::IdentityLookupFailed => (
                "Your groups could not be looked up",
                "Cloudflare Access did not answer when this server asked which groups you are in, and the policy needs them.",
                "Try again in a minute. If it lasts, ask the administrator.",
            ),
            RejectReason::UnknownKey
            | RejectReason::BadSignature
            | RejectReason::Malformed
            | RejectReason::WrongType => (
                "Your sign-in could not be checked",
                "The Cloudflare Access token that came with this request did not pass verification.",
                sign_in_again,
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_browser_navigation_prefers_html() {
        assert!(prefers_html(Some(
            "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"
        )));
        assert!(prefers_html(Some("text/html")));
    }

    #[test]
    fn api_clients_and_curl_keep_json() {
        assert!(!prefers_html(Some("application/json, text/event-stream")));
        assert!(!prefers_html(Some("*/*")));
        assert!(!prefers_html(None));
        assert!(!prefers_html(Some("application/json, text/html;q=0.5")));
        assert!(!prefers_html(Some("text/html;q=0")));
    }
}
