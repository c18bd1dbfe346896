//! The middleware in front of every MCP route: no verified identity, no entry.

use std::sync::Arc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage, HttpRequest, HttpResponse, web};

use super::identity::Identity;
use super::rejection::{AccessError, RejectReason};
use super::verifier::AccessVerifier;
use crate::telemetry::RequestInfo;

/// The only place tunnelgate reads a token from. The `CF_Authorization` cookie is ignored
/// on purpose (docs/security.md).
pub const ACCESS_JWT_HEADER: &str = "Cf-Access-Jwt-Assertion";

/// Another answer to a refused request than the JSON body, when the refused client should get
/// one (the page's HTML 403 for a browser, `web/forbidden.rs`); `None` keeps the JSON. Put into
/// the app data when wanted; the guard knows nothing of what it renders.
#[derive(Clone, Copy)]
pub struct RefusalResponder(pub fn(&HttpRequest, AccessError) -> Option<HttpResponse>);

/// In `tunnelgate dev` only: where this run's tokens come from. The dev issuer makes new
/// keys on every start, so a token kept from an earlier run fails as `unknown_key`, and the
/// refusal says why instead of suggesting a sign-in that does not exist here.
#[derive(Debug, Clone)]
pub struct DevTokenHint(pub String);

/// Verifies the Access token and puts the caller's `Arc<Identity>` into the request
/// extensions; refuses the request otherwise.
pub async fn require_access<B: MessageBody>(
    request: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, Error> {
    let Some(verifier) = request.app_data::<web::Data<AccessVerifier>>().cloned() else {
        tracing::error!("access guard mounted without a verifier; refusing the request");
        return Err(AccessError::KeysUnavailable.into());
    };
    match verify_request(&verifier, &request).await {
        Ok(identity) => {
            request.extensions_mut().insert(identity);
            next.call(request)
                .await
                .map(ServiceResponse::map_into_left_body)
        }
        Err(error) => {
            log_denial(&request, error);
            let responder = request
                .app_data::<web::Data<RefusalResponder>>()
                .map(|responder| *responder.get_ref());
            match responder.and_then(|responder| (responder.0)(request.request(), error)) {
                Some(response) => Ok(request.into_response(response).map_into_right_body()),
                None => dev_hint_or_plain(&request, error),
            }
        }
    }
}

/// The refusal as JSON, with `tunnelgate dev`'s hint for a token from an earlier run.
fn dev_hint_or_plain<B>(
    request: &ServiceRequest,
    error: AccessError,
) -> Result<ServiceResponse<EitherBody<B>>, Error> {
    if error == AccessError::Rejected(RejectReason::UnknownKey)
        && let Some(hint) = request.app_data::<web::Data<DevTokenHint>>()
    {
        let message = format!(
            "the token is signed by a key this run of `tunnelgate dev` does not know: each run makes new keys, so a token from an earlier run no longer works. Use the token in this run's banner, or get one from {}",
            hint.0
        );
        let response = error.response_saying(&message);
        return Err(actix_web::error::InternalError::from_response(error, response).into());
    }
    Err(error.into())
}

async fn verify_request(
    verifier: &AccessVerifier,
    request: &ServiceRequest,
) -> Result<Arc<Identity>, AccessError> {
    let mut values = request.headers().get_all(ACCESS_JWT_HEADER);
    let Some(value) = values.next() else {
        return Err(AccessError::Rejected(RejectReason::Missing));
    };
    // Two assertions would make it ambiguous which one was checked.
    if values.next().is_some() {
        return Err(AccessError::Rejected(RejectReason::Malformed));
    }
    let token = value
        .to_str()
        .map_err(|_| AccessError::Rejected(RejectReason::Malformed))?
        .trim();
    verifier.verify(token).await
}

fn log_denial(request: &ServiceRequest, error: AccessError) {
    let reason = match error {
        AccessError::Rejected(reason) => reason.as_str(),
        AccessError::KeysUnavailable => "keys_unavailable",
    };
    crate::audit::record_denied_request(request.request(), reason);
    // The request-id middleware has already read and checked `Cf-Ray`; reading the raw
    // header here would log whatever a client put in it. Without that middleware in
    // front, the same check is applied directly.
    let extensions = request.extensions();
    let cf_ray = match extensions.get::<RequestInfo>() {
        Some(info) => info.cf_ray.as_deref(),
        None => crate::telemetry::cf_ray(request.headers()),
    };
    tracing::warn!(
        reason,
        cf_ray = cf_ray.unwrap_or("-"),
        method = %request.method(),
        path = request.path(),
        "access denied"
    );
}
