//! Resolving what the upstream settings mean: the generic OpenAPI profile, or Polar with
//! its base URLs, spec URL, `Polar-Version` header and organization-token selection.

use anyhow::Context;
use http::{HeaderName, HeaderValue};

use super::catalog::CatalogOptions;
use crate::config::{Settings, SpecSource, UpstreamProfile};

/// Everything needed to load the catalog and build the client, after profile defaults.
pub struct ResolvedUpstream {
    /// Human name of the API, used in dynamic-mode descriptions.
    pub api_name: String,
    pub spec: Option<SpecSource>,
    /// Without a trailing `/`: request paths are appended to it as they are.
    pub base_url: Option<String>,
    /// Sent with every request; configured headers replace profile ones of the same name.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub catalog: CatalogOptions,
}

pub fn resolve(settings: &Settings) -> anyhow::Result<ResolvedUpstream> {
    let upstream = &settings.upstream;
    let tools = &settings.tools;
    let configured_base = upstream
        .base_url
        .as_ref()
        .map(|url| url.as_str().trim_end_matches('/').to_owned());
    let mut resolved = match upstream.profile {
        UpstreamProfile::Generic => ResolvedUpstream {
            api_name: "internal API".to_owned(),
            spec: upstream.spec.clone(),
            base_url: configured_base,
            headers: Vec::new(),
            catalog: CatalogOptions::default(),
        },
        UpstreamProfile::Polar => {
            let base = settings.polar.environment.api_base();
            let version = &settings.polar.api_version;
            let spec = match &upstream.spec {
                Some(spec) => spec.clone(),
                None => format!("{base}/{version}/openapi.json")
                    .parse()
                    .map_err(anyhow::Error::msg)
                    .context("the Polar profile's document URL")?,
            };
            ResolvedUpstream {
                api_name: "Polar".to_owned(),
                spec: Some(spec),
                base_url: Some(configured_base.unwrap_or_else(|| base.to_owned())),
                headers: vec![(
                    HeaderName::from_static("polar-version"),
                    version.header_value().clone(),
                )],
                catalog: CatalogOptions::polar(),
            }
        }
    };
    resolved.catalog.read_only = tools.read_only;
    resolved.catalog.include = tools.include.iter().map(|glob| glob.0.clone()).collect();
    resolved.catalog.exclude = tools.exclude.iter().map(|glob| glob.0.clone()).collect();
    resolved.catalog.description_max = tools.description_max;
    // Explicit configuration wins over profile defaults.
    for (name, value) in &upstream.headers.0 {
        resolved.headers.retain(|(existing, _)| existing != name);
        resolved.headers.push((name.clone(), value.clone()));
    }
    Ok(resolved)
}
