//! `GET /`: who you are as Access sees you, the server's state, the tools the policy lets you
//! call (searchable: live in the browser, or `?q=` without JavaScript), and how to connect.

use std::time::{Duration, UNIX_EPOCH};

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use maud::{Markup, html};
use rmcp::model::Tool;
use serde::Deserialize;

use super::connect::{self, CLIENTS};
use super::fields::{self, Field};
use super::layout;
use super::site::Site;
use crate::access::{Identity, IdentityKind};
use crate::config::AccessClass;
use crate::tools::{AccessExplanation, ToolView};

#[derive(Debug, Deserialize)]
pub struct SearchQuery {
    q: Option<String>,
}

pub async fn show(
    site: web::Data<Site>,
    request: HttpRequest,
    query: web::Query<SearchQuery>,
) -> HttpResponse {
    let Some((identity, _)) = super::site::caller(&request) else {
        return super::respond::html(StatusCode::FORBIDDEN, String::new());
    };
    let mcp_url = connect::mcp_url(site.public_hostname.as_deref(), &request);
    let body = render(&site, &identity, query.q.as_deref().unwrap_or(""), &mcp_url);
    super::respond::html(StatusCode::OK, body.into_string())
}

/// The whole page for `identity`; `search` hides the tools it does not match.
pub fn render(site: &Site, identity: &Identity, search: &str, mcp_url: &str) -> Markup {
    let view = site.registry.tool_view(identity);
    layout::page(
        &site.title,
        &site.title,
        html! {
            h1 { (site.title) }
            p class="lede" {
                "An MCP server for " (api_phrase(site.registry.api_name())) ". "
                "Below: who you are as Cloudflare Access sees you, the tools you may call, and how to connect your assistant."
            }
            (you(identity))
            (server(site, &view))
            (tools(&view, search))
            (connect_section(mcp_url))
        },
    )
}

/// `the Polar API`, `the internal API`.
fn api_phrase(name: Option<&str>) -> String {
    match name {
        Some(name) if name.ends_with("API") => format!("the {name}"),
        Some(name) => format!("the {name} API"),
        None => "its built-in tools".to_owned(),
    }
}

fn you(identity: &Identity) -> Markup {
    let now = super::site::unix_now();
    html! {
        section id="you" aria-labelledby="you-heading" {
            h2 id="you-heading" { "You" }
            dl class="facts" {
                @match identity.kind {
                    IdentityKind::User => {
                        dt { "Signed in as" }
                        dd { strong { (identity.principal()) } " (a person)" }
                    }
                    IdentityKind::Service => {
                        dt { "Service token" }
                        dd { strong { (identity.principal()) } " (automation)" }
                    }
                }
                dt { "Groups" }
                dd {
                    @if identity.groups.is_empty() {
                        "none known (no groups claim or get-identity lookup configured, or none given)"
                    } @else {
                        (identity.groups.join(", "))
                    }
                }
                dt { "Access token expires" }
                dd {
                    (utc(identity.expires_at))
                    @if identity.expires_at > now {
                        " (in " (span_words(Duration::from_secs(identity.expires_at - now))) ")"
                    } @else {
                        " (expired)"
                    }
                }
                dt { "Access application (audience)" }
                dd { code { (identity.audience) } }
            }
        }
    }
}

fn server(site: &Site, view: &ToolView) -> Markup {
    let keys = site.keys.status();
    html! {
        section id="server" aria-labelledby="server-heading" {
            h2 id="server-heading" { "This server" }
            dl class="facts" {
                dt { "Version" }
                dd { "tunnelgate " (env!("CARGO_PKG_VERSION")) }
                dt { "Access signing keys" }
                dd {
                    (keys.count) @if keys.count == 1 { " key" } @else { " keys" }
                    @match keys.age {
                        Some(age) => { ", fetched " (span_words(age)) " ago" }
                        None => { ", not loaded yet" }
                    }
                }
                dt { "Upstream API" }
                dd {
                    @match site.registry.api_name() {
                        Some(name) => {
                            (name) ": " (view.api_total) " tools in the catalog, "
                            (view.api.len()) " of them available to you; "
                            @if view.catalog_read_only { "read-only catalog" } @else { "the catalog includes write tools" }
                            @if site.registry.is_dynamic() { " (offered to assistants through search_tools, describe_tool and call_tool)" }
                        }
                        None => { "none configured: only the built-in whoami tool" }
                    }
                }
                dt { "Up for" }
                dd { (span_words(site.started.elapsed())) }
            }
        }
    }
}

fn tools(view: &ToolView, search: &str) -> Markup {
    let words: Vec<String> = search.split_whitespace().map(str::to_lowercase).collect();
    let all: Vec<(&Tool, bool, bool)> = view
        .builtin
        .iter()
        .map(|tool| (tool, true, true))
        .chain(
            view.api
                .iter()
                .map(|(tool, read_only)| (tool, *read_only, false)),
        )
        .collect();
    let shown = all
        .iter()
        .filter(|(tool, _, _)| matches(tool, &words))
        .count();
    html! {
        section id="tools" aria-labelledby="tools-heading" {
            h2 id="tools-heading" { "Your tools" }
            @if view.api.is_empty() && view.api_total > 0 {
                div class="notice" role="note" {
                    p { strong { "You have no access to any of the API's " (view.api_total) " tools." } }
                    p { (explain(&view.access, view.catalog_read_only)) }
                    p { "Ask the administrator to add a rule for you under [policy] in the configuration." }
                }
            }
            form class="search" method="get" action="/" role="search" {
                label for="tool-search" { "Search tools by name or description" }
                div class="search-row" {
                    input id="tool-search" type="search" name="q" value=(search) autocomplete="off" aria-describedby="tool-count";
                    button type="submit" { "Search" }
                }
            }
            p id="tool-count" class="muted" aria-live="polite" {
                (shown) " of " (all.len()) " tools shown"
            }
            ul id="tool-list" class="tools" {
                @for (tool, read_only, builtin) in &all {
                    (tool_entry(tool, *read_only, *builtin, matches(tool, &words)))
                }
            }
        }
    }
}

fn matches(tool: &Tool, words: &[String]) -> bool {
    if words.is_empty() {
        return true;
    }
    let text = format!(
        "{} {}",
        tool.name.to_lowercase(),
        tool.description.as_deref().unwrap_or("").to_lowercase()
    );
    words.iter().all(|word| text.contains(word.as_str()))
}

fn tool_entry(tool: &Tool, read_only: bool, builtin: bool, visible: bool) -> Markup {
    let listed = fields::fields(&tool.input_schema);
    let id = format!("tool-{}", tool.name);
    html! {
        li class="tool" id=(id) hidden[!visible] {
            div class="tool-head" {
                h3 class="tool-name" { (tool.name) }
                (class_badge(read_only))
                @if builtin { span class="badge" { "built-in" } }
            }
            p class="tool-description" { (tool.description.as_deref().unwrap_or("")) }
            @if listed.is_empty() {
                p class="muted" { "No input fields." }
            } @else {
                details {
                    summary { "Input fields (" (listed.len()) ")" }
                    (field_table(&listed))
                }
            }
            p { a class="try" href=(format!("/tools/{}", tool.name)) { "Try " (tool.name) } }
        }
    }
}

pub fn class_badge(read_only: bool) -> Markup {
    html! {
        @if read_only {
            span class="badge read" { "read" }
        } @else {
            span class="badge write" { "write" }
        }
    }
}

fn field_table(listed: &[Field]) -> Markup {
    html! {
        table class="fields" {
            thead { tr { th scope="col" { "Name" } th scope="col" { "Type" } th scope="col" { "Required" } th scope="col" { "Description" } } }
            tbody {
                @for field in listed {
                    (field_row(field))
                    @for nested in &field.nested {
                        (field_row(nested))
                    }
                }
            }
        }
    }
}

fn field_row(field: &Field) -> Markup {
    html! {
        tr {
            td { code { (field.name) } }
            td { (field.type_label) }
            td { @if field.required { "yes" } @else { "no" } }
            td { (field.description.as_deref().unwrap_or("")) }
        }
    }
}

/// Why an identity sees no API tool, in words.
fn explain(access: &AccessExplanation, catalog_read_only: bool) -> String {
    let class = |access: AccessClass| match access {
        AccessClass::None => "none",
        AccessClass::Read => "read",
        AccessClass::Write => "write",
    };
    let mut reasons = Vec::new();
    if access.matching_rules.is_empty() {
        reasons.push(format!(
            "No policy rule matches you, so the default access applies: {}.",
            class(access.default_access)
        ));
    } else {
        for rule in &access.matching_rules {
            reasons.push(format!(
                "policy.rules[{}] matches you and gives {} access to tools {}.",
                rule.index,
                class(rule.access),
                rule.tools.join(", ")
            ));
        }
        reasons.push(format!(
            "Tools no matching rule names get the default access: {}.",
            class(access.default_access)
        ));
    }
    if !catalog_read_only {
        reasons.push("Read access reaches read-only tools only.".into());
    }
    reasons.join(" ")
}

fn connect_section(mcp_url: &str) -> Markup {
    html! {
        section id="connect" aria-labelledby="connect-heading" {
            h2 id="connect-heading" { "Connect" }
            p { "The MCP endpoint: " code { (mcp_url) } " (Streamable HTTP). People sign in through Cloudflare Access with Managed OAuth; automation uses an Access service token (Zero Trust › Access controls › Service credentials) with "
                code { "CF_ACCESS_CLIENT_ID" } " and " code { "CF_ACCESS_CLIENT_SECRET" } " in its environment." }
            @for (index, client) in CLIENTS.iter().enumerate() {
                details class="client" open[index == 0] {
                    summary { h3 { (client.name) } }
                    @for snippet in client.snippets {
                        div class="snippet" {
                            p { strong { (snippet.way.label()) } ": " (snippet.place) }
                            pre data-copy=(format!("{}, {}", client.name, snippet.way.label())) tabindex="0" {
                                code { (snippet.render(mcp_url)) }
                            }
                        }
                    }
                }
            }
            p class="muted" { "More (legacy SSE, the SDKs, WARP and TLS inspection) in docs/clients.md of the tunnelgate repository." }
        }
    }
}

/// `2026-12-01 04:05:06 UTC`.
fn utc(unix: u64) -> String {
    let time = UNIX_EPOCH + Duration::from_secs(unix);
    let text = humantime::format_rfc3339_seconds(time).to_string();
    format!("{} UTC", text.trim_end_matches('Z').replace('T', " "))
}

/// `3 h 12 min`, `45 s`, `2 d 4 h`.
pub fn span_words(span: Duration) -> String {
    let seconds = span.as_secs();
    let (days, hours, minutes) = (seconds / 86_400, seconds / 3_600 % 24, seconds / 60 % 60);
    match (days, hours, minutes) {
        (0, 0, 0) => format!("{seconds} s"),
        (0, 0, minutes) => format!("{minutes} min"),
        (0, hours, minutes) => format!("{hours} h {minutes} min"),
        (days, hours, _) => format!("{days} d {hours} h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn says_spans_in_words() {
        assert_eq!(span_words(Duration::from_secs(45)), "45 s");
        assert_eq!(
            span_words(Duration::from_secs(3 * 3600 + 12 * 60)),
            "3 h 12 min"
        );
        assert_eq!(
            span_words(Duration::from_secs(2 * 86_400 + 4 * 3600)),
            "2 d 4 h"
        );
    }

    #[test]
    fn explains_a_default_of_none_when_no_rule_matches() {
        let explained = explain(
            &AccessExplanation {
                default_access: AccessClass::None,
                matching_rules: Vec::new(),
            },
            true,
        );

        assert_eq!(
            explained,
            "No policy rule matches you, so the default access applies: none."
        );
    }
}
