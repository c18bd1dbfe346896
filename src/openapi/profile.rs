//! Resolving what the upstream settings mean: the generic OpenAPI profile, or Polar with
//! its base URLs, spec URL, `Polar-Version` header and organization-token selection.

use std::collections::BTreeMap;

use super::catalog::CatalogOptions;
use crate::config::{Settings, UpstreamProfile};

/// Everything needed to load the catalog and build the client, after profile defaults.
pub struct ResolvedUpstream {
    /// Human name of the API, used in dynamic-mode descriptions.
    pub api_name: String,
    pub spec: Option<String>,
    pub base_url: Option<String>,
    pub headers: BTreeMap<String, String>,
    pub catalog: CatalogOptions,
}

pub fn resolve(settings: &Settings) -> ResolvedUpstream {
    let upstream = &settings.upstream;
    let tools = &settings.tools;
    let (api_name, mut catalog, spec, base_url, mut headers) = match upstream.profile {
        UpstreamProfile::Generic => (
            "internal API".to_string(),
            CatalogOptions::default(),
            upstream.spec.clone(),
            upstream.base_url.clone(),
            BTreeMap::new(),
        ),
        UpstreamProfile::Polar => {
            let base = settings.polar.environment.api_base();
            let version = &settings.polar.api_version;
            let mut headers = BTreeMap::new();
            headers.insert("Polar-Version".to_string(), version.clone());
            (
                "Polar".to_string(),
                CatalogOptions::polar(),
                Some(
                    upstream
                        .spec
                        .clone()
                        .unwrap_or_else(|| format!("{base}/{version}/openapi.json")),
                ),
                Some(
                    upstream
                        .base_url
                        .clone()
                        .unwrap_or_else(|| base.to_string()),
                ),
                headers,
            )
        }
    };
    catalog.read_only = tools.read_only;
    catalog.include = tools.include.clone();
    catalog.exclude = tools.exclude.clone();
    catalog.description_max = tools.description_max;
    // Explicit configuration wins over profile defaults.
    headers.extend(upstream.headers.clone());
    ResolvedUpstream {
        api_name,
        spec,
        base_url,
        headers,
        catalog,
    }
}
