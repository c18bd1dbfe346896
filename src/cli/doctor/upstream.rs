//! Check 3: the upstream answers with the configured token, through the same catalog and pooled
//! client the server builds. For Polar it names the token's organization and probes one
//! parameterless read per scope family the served tools need; for a generic API it tries one
//! parameterless read, else only the connection.

use std::collections::BTreeMap;
use std::sync::Arc;

use http::Method;
use serde_json::Value;

use super::checklist::Check;
use crate::admin::metrics::Metrics;
use crate::config::{Settings, UpstreamProfile};
use crate::openapi::{ApiTool, Catalog, ParamLocation, load_catalog};
use crate::upstream::{UpstreamClient, UpstreamRequest, UpstreamResponse, client_options};

pub const TITLE: &str = "Upstream API with the configured token";

/// Polar's organization list: an organization access token sees exactly its own organization.
const POLAR_ORGANIZATIONS: &str = "/v1/organizations/?limit=10";

/// How one probe of a scope family ended.
#[derive(Clone)]
enum Probe {
    /// 2xx: the token holds `<family>:read` or `<family>:write` (Polar accepts either for reads).
    Granted,
    /// 403 `insufficient_scope`: neither scope.
    Missing,
    /// Any other answer, or none.
    Inconclusive(String),
    /// No served read operation without required arguments to try.
    NotProbed,
}

/// The tools of one scope family (`products` for `products:read`), split by what they need.
#[derive(Default)]
struct Family<'a> {
    read_tools: Vec<&'a ApiTool>,
    write_tools: Vec<&'a ApiTool>,
}

pub async fn check(settings: &Settings) -> Check {
    let mut check = Check::new(3, TITLE);
    let loaded = match load_catalog(settings).await {
        Ok(Some(loaded)) => loaded,
        Ok(None) => {
            return Check::skipped(
                3,
                TITLE,
                "no upstream.spec: only the built-in whoami tool is served, so there is no upstream to call",
            );
        }
        Err(error) => {
            check.fail(
                format!("the OpenAPI document does not load: {error:#}"),
                "check upstream.spec (TUNNELGATE__UPSTREAM__SPEC) and that this host reaches it; `tunnelgate tools` shows the same error",
            );
            return check;
        }
    };
    let Some(base_url) = loaded
        .upstream
        .base_url
        .clone()
        .or(loaded.first_server.clone())
    else {
        check.fail(
            "upstream.base_url is not set and the document has no servers entry",
            "set TUNNELGATE__UPSTREAM__BASE_URL to the API's base URL",
        );
        return check;
    };
    let options = match client_options(settings, base_url.clone(), loaded.upstream.headers) {
        Ok(options) => options,
        Err(error) => {
            check.fail(
                format!("{error:#}"),
                "make the token file readable (docs/deployment.md, step 4: owner 65532, mode 0400)",
            );
            return check;
        }
    };
    let has_token = options.credential.is_some();
    let client = match UpstreamClient::new(options, Arc::new(Metrics::new())) {
        Ok(client) => client,
        Err(error) => {
            check.fail(error.to_string(), "report this as a bug");
            return check;
        }
    };
    check.note(format!(
        "{base_url}: {} tools served from the document",
        loaded.catalog.len()
    ));
    match settings.upstream.profile {
        UpstreamProfile::Polar => {
            if !has_token {
                check.fail(
                    "no Polar token is configured",
                    "write the organization access token to secrets/polar_token (POLAR_ACCESS_TOKEN_FILE; docs/deployment.md, steps 1 and 4)",
                );
                return check;
            }
            polar(&mut check, &client, &loaded.catalog, settings).await;
        }
        UpstreamProfile::Generic => {
            if !has_token {
                check.note("no upstream token configured: requests are sent without a credential");
            }
            generic(&mut check, &client, &loaded.catalog, &base_url).await;
        }
    }
    check
}

async fn get(client: &UpstreamClient, path_and_query: &str) -> Result<UpstreamResponse, String> {
    let request = UpstreamRequest {
        method: Method::GET,
        path_and_query: path_and_query.to_owned(),
        headers: Vec::new(),
        body: None,
    };
    // No retries: one answer per question, and nothing spent from Polar's rate limit twice.
    client
        .send(&request, &|| Box::pin(async { false }))
        .await
        .map_err(|error| error.to_string())
}

/// The first line of an error body, short enough for one checklist line.
fn body_excerpt(response: &UpstreamResponse) -> String {
    let text = String::from_utf8_lossy(&response.body);
    let line = text.lines().next().unwrap_or_default().trim();
    let mut excerpt: String = line.chars().take(160).collect();
    if line.chars().count() > 160 {
        excerpt.push('…');
    }
    excerpt
}

/// A served read operation callable without arguments: its path (with `limit=1` when it
/// pages) and a rank, lower is cheaper. A paged list asked for one item is the cheapest read
/// there is; exports (whole tables as CSV) are never used.
fn parameterless_read(tool: &ApiTool) -> Option<(u8, String)> {
    let callable = tool.method == Method::GET
        && !tool.path_template.contains('{')
        && !tool.path_template.contains("export")
        && tool.params.iter().all(|param| !param.required)
        && tool.body.as_ref().is_none_or(|body| !body.required);
    if !callable {
        return None;
    }
    let pages = tool
        .params
        .iter()
        .any(|param| param.location == ParamLocation::Query && param.wire_name == "limit");
    Some(if pages {
        (0, format!("{}?limit=1", tool.path_template))
    } else {
        (1, tool.path_template.clone())
    })
}

/// The cheapest parameterless read among `tools`.
fn cheapest_read<'a>(tools: impl Iterator<Item = &'a ApiTool>) -> Option<(&'a ApiTool, String)> {
    tools
        .filter_map(|tool| parameterless_read(tool).map(|(rank, path)| (rank, tool, path)))
        .min_by_key(|(rank, tool, path)| (*rank, path.len(), tool.name.clone()))
        .map(|(_, tool, path)| (tool, path))
}

/// An exclude glob covering `names`: their common prefix up to an underscore, e.g.
/// `discounts_*`; the names themselves when they share none.
fn exclude_glob(names: &[&str]) -> String {
    let Some(first) = names.first() else {
        return String::new();
    };
    let common = names.iter().fold(first.len(), |length, name| {
        first
            .char_indices()
            .zip(name.chars())
            .take_while(|((_, a), b)| a == b)
            .last()
            .map_or(0, |((index, a), _)| (index + a.len_utf8()).min(length))
    });
    match first.get(..common).and_then(|prefix| prefix.rfind('_')) {
        Some(end) => format!("{}*", first.get(..=end).unwrap_or(first)),
        None => names.join(","),
    }
}

async fn generic(check: &mut Check, client: &UpstreamClient, catalog: &Catalog, base_url: &str) {
    let Some((tool, path)) = cheapest_read(catalog.tools().iter()) else {
        match get(client, "/").await {
            Ok(response) => check.note(format!(
                "GET {base_url}/ answered HTTP {}: the API is reachable (no read operation without required arguments to try the token on)",
                response.status
            )),
            Err(error) => check.fail(
                format!("cannot reach {base_url}: {error}"),
                "check upstream.base_url and that this host reaches the API (firewall, DNS)",
            ),
        }
        return;
    };
    match get(client, &path).await {
        Ok(response) if (200..300).contains(&response.status) => check.note(format!(
            "GET {path} ({}) answered {} with the configured token",
            tool.name, response.status
        )),
        Ok(response) if matches!(response.status, 401 | 403) => check.fail(
            format!(
                "GET {path} ({}) answered {}: the API refuses the configured token: {}",
                tool.name,
                response.status,
                body_excerpt(&response)
            ),
            "replace the token (upstream.token_file) or fix upstream.token_header, then restart tunnelgate",
        ),
        Ok(response) => check.fail(
            format!(
                "GET {path} ({}) answered {}: {}",
                tool.name,
                response.status,
                body_excerpt(&response)
            ),
            "check upstream.base_url: it must be the URL the document's paths are relative to",
        ),
        Err(error) => check.fail(
            format!("cannot reach {base_url}: {error}"),
            "check upstream.base_url and that this host reaches the API (firewall, DNS)",
        ),
    }
}

async fn polar(check: &mut Check, client: &UpstreamClient, catalog: &Catalog, settings: &Settings) {
    let environment = match settings.polar.environment {
        crate::config::PolarEnvironment::Production => "production",
        crate::config::PolarEnvironment::Sandbox => "sandbox",
    };
    // The organization request also answers for the `organizations` scope family.
    let known = match get(client, POLAR_ORGANIZATIONS).await {
        Err(error) => {
            check.fail(
                format!("cannot reach Polar: {error}"),
                "allow outbound HTTPS from this host to api.polar.sh (or sandbox-api.polar.sh)",
            );
            return;
        }
        Ok(response) if response.status == 401 => {
            check.fail(
                format!(
                    "Polar refused the token (401 on GET /v1/organizations/): it is expired, revoked, mistyped, or from the other environment (configured: {environment}): {}",
                    body_excerpt(&response)
                ),
                format!(
                    "create an organization access token in Polar {environment} (docs/deployment.md, step 1) and replace secrets/polar_token (docs/deployment.md, Replacing the Polar token); TUNNELGATE__POLAR__ENVIRONMENT must match where it was created"
                ),
            );
            return;
        }
        Ok(response) if (200..300).contains(&response.status) => {
            check.note(organizations(&response));
            (
                Probe::Granted,
                format!("GET /v1/organizations/: {}", response.status),
            )
        }
        Ok(response) if is_insufficient_scope(&response) => {
            check.note(
                "organization: not shown, the token lacks organizations:read (doctor needs it only to name the organization; the 403 shows the token itself is valid)",
            );
            (
                Probe::Missing,
                "GET /v1/organizations/: 403 insufficient_scope; the token holds none of organizations:read, organizations:write".to_owned(),
            )
        }
        Ok(response) => {
            check.fail(
                format!(
                    "GET /v1/organizations/ answered {}: {}",
                    response.status,
                    body_excerpt(&response)
                ),
                "check upstream.base_url (unset for Polar) and TUNNELGATE__POLAR__ENVIRONMENT",
            );
            return;
        }
    };
    scopes(check, client, catalog, known).await;
}

fn is_insufficient_scope(response: &UpstreamResponse) -> bool {
    response.status == 403
        && (response
            .www_authenticate
            .as_deref()
            .is_some_and(|header| header.contains("insufficient_scope"))
            || String::from_utf8_lossy(&response.body).contains("insufficient_scope"))
}

fn organizations(response: &UpstreamResponse) -> String {
    let parsed: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
    let names: Vec<String> = parsed
        .get("items")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .map(|item| {
                    let text = |key: &str| item.get(key).and_then(Value::as_str).unwrap_or("?");
                    format!(
                        "{} (slug {}, id {})",
                        text("name"),
                        text("slug"),
                        text("id")
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    match names.as_slice() {
        [] => "organization: GET /v1/organizations/ listed none".to_owned(),
        [one] => format!("organization: {one}"),
        many => format!(
            "organizations: {} (an organization access token sees one; is this a personal token?)",
            many.join("; ")
        ),
    }
}

/// Groups the served tools by scope family: a read tool needs `<family>:read` or
/// `<family>:write`, a write tool `<family>:write` (the catalog's security requirements).
fn families(catalog: &Catalog) -> BTreeMap<String, Family<'_>> {
    let mut families: BTreeMap<String, Family<'_>> = BTreeMap::new();
    for tool in catalog.tools() {
        let mut named: Vec<&str> = tool
            .scopes
            .iter()
            .filter_map(|scope| scope.split_once(':').map(|(family, _)| family))
            .collect();
        named.dedup();
        for family in named {
            let entry = families.entry(family.to_owned()).or_default();
            if tool.read_only {
                entry.read_tools.push(tool);
            } else {
                entry.write_tools.push(tool);
            }
        }
    }
    families
}

async fn probe(client: &UpstreamClient, family: &str, tools: &Family<'_>) -> (Probe, String) {
    let wanted = format!("{family}:read");
    let candidate = cheapest_read(
        tools
            .read_tools
            .iter()
            .copied()
            .filter(|tool| tool.scopes.contains(&wanted)),
    );
    let Some((tool, path)) = candidate else {
        return (Probe::NotProbed, String::new());
    };
    let label = format!("{} GET {path}", tool.name);
    match get(client, &path).await {
        Ok(response) if (200..300).contains(&response.status) => {
            (Probe::Granted, format!("{label}: {}", response.status))
        }
        Ok(response) if is_insufficient_scope(&response) => (
            Probe::Missing,
            format!(
                "{label}: 403 insufficient_scope; the token holds none of {}",
                tool.scopes.join(", ")
            ),
        ),
        Ok(response) => (
            Probe::Inconclusive(format!("{}: {}", response.status, body_excerpt(&response))),
            label,
        ),
        Err(error) => (Probe::Inconclusive(error), label),
    }
}

async fn scopes(
    check: &mut Check,
    client: &UpstreamClient,
    catalog: &Catalog,
    organizations: (Probe, String),
) {
    let families = families(catalog);
    check.note(format!(
        "scopes: the served tools need {} scope families, each probed with one parameterless read (Polar answers 403 insufficient_scope when the token holds none of the scopes the operation accepts, as the document lists them)",
        families.len()
    ));
    let organizations = &organizations;
    let probes = futures::future::join_all(families.iter().map(|(family, tools)| async move {
        if family == "organizations" {
            organizations.clone()
        } else {
            probe(client, family, tools).await
        }
    }))
    .await;
    let mut missing = Vec::new();
    let mut unverifiable_writes = Vec::new();
    for ((family, tools), (outcome, detail)) in families.iter().zip(probes) {
        if !tools.write_tools.is_empty() {
            unverifiable_writes.push(format!("{family}:write"));
        }
        match outcome {
            Probe::Granted => check.note(format!("  ok       {family} ({detail})")),
            Probe::Missing => {
                let names: Vec<&str> = tools
                    .read_tools
                    .iter()
                    .chain(&tools.write_tools)
                    .map(|tool| tool.name.as_str())
                    .collect();
                check.failed(format!(
                    "  MISSING  {family} ({detail}); these tools will fail: {}",
                    names.join(", ")
                ));
                missing.push((format!("{family}:read"), exclude_glob(&names)));
            }
            Probe::Inconclusive(why) => check.fail(
                format!("  ERROR    {family} ({detail}): {why}"),
                "see the answer above; a 5xx or timeout from Polar usually passes, so run doctor again",
            ),
            Probe::NotProbed => {
                let needs = if tools.read_tools.is_empty() {
                    format!("{family}:write")
                } else {
                    format!("{family}:read")
                };
                check.note(format!(
                    "  unknown  {needs}: no served read without required arguments to try it on"
                ));
            }
        }
    }
    // The fix for missing scopes is one sentence naming them all, not one per family.
    if !missing.is_empty() {
        let scopes: Vec<&str> = missing.iter().map(|(scope, _)| scope.as_str()).collect();
        let globs: Vec<&str> = missing.iter().map(|(_, glob)| glob.as_str()).collect();
        check.fix(format!(
            "give the token {} in Polar (organization Settings › Developers; docs/polar.md, Token scopes), or stop serving those tools: TUNNELGATE__TOOLS__EXCLUDE={}",
            scopes.join(", "),
            globs.join(",")
        ));
    }
    if !unverifiable_writes.is_empty() {
        check.note(format!(
            "write scopes ({}) cannot be confirmed without making a change: Polar accepts :write for reads too, so a read proves only one of the two",
            unverifiable_writes.join(", ")
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::exclude_glob;

    #[test]
    fn an_exclude_glob_covers_a_familys_tools_by_their_common_prefix() {
        assert_eq!(
            exclude_glob(&[
                "webhooks_list_webhook_endpoints",
                "webhooks_get_webhook_endpoint",
                "webhooks_redeliver_webhook_event",
            ]),
            "webhooks_*"
        );
        assert_eq!(exclude_glob(&["checkout-links_list"]), "checkout-links_*");
    }

    #[test]
    fn tools_without_a_shared_prefix_are_named_one_by_one() {
        assert_eq!(exclude_glob(&["alpha", "beta"]), "alpha,beta");
    }
}
