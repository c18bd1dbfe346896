//! The page's shared state, built once in `Application::build`, and what every handler reads
//! from a request: the verified identity and the request id.

use std::sync::Arc;
use std::time::Instant;

use actix_web::{HttpMessage, HttpRequest};

use super::csrf::CsrfKey;
use crate::access::{Identity, KeyCache};
use crate::config::Settings;
use crate::telemetry::RequestInfo;
use crate::tools::ToolRegistry;

/// Everything the page needs, built once in `Application::build`.
pub struct Site {
    pub(super) title: String,
    /// The first of `server.public_hostnames`: what the Connect section fills in.
    pub(super) public_hostname: Option<String>,
    pub(super) registry: Arc<ToolRegistry>,
    pub(super) keys: Arc<KeyCache>,
    pub(super) csrf: CsrfKey,
    pub(super) started: Instant,
}

impl Site {
    pub fn new(settings: &Settings, registry: Arc<ToolRegistry>, keys: Arc<KeyCache>) -> Self {
        Self {
            title: settings.web.title.trim().to_owned(),
            public_hostname: settings.server.public_hostnames.first().cloned(),
            registry,
            keys,
            csrf: CsrfKey::generate(),
            started: Instant::now(),
        }
    }
}

/// The verified identity the guard put into the request, and the request's id.
pub fn caller(request: &HttpRequest) -> Option<(Arc<Identity>, RequestInfo)> {
    let extensions = request.extensions();
    let identity = extensions.get::<Arc<Identity>>().cloned()?;
    let info = extensions
        .get::<RequestInfo>()
        .cloned()
        .unwrap_or_else(|| RequestInfo::new(None));
    Some((identity, info))
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or(0)
}
