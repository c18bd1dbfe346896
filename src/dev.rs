//! `tunnelgate dev`: everything on loopback in one process — a local Access-like issuer, a
//! demo API with its own OpenAPI document, and the real server configured against both.

pub mod demo_api;
pub mod edge;
pub mod issuer;

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use serde_json::json;

use crate::config::{BindAddress, LogFormat, Settings, ToolsMode};
use crate::startup::Application;
use issuer::DevIssuer;

pub const DEV_TEAM: &str = "tunnelgate-dev";
pub const DEV_AUDIENCE: &str = "tunnelgate-dev-audience";
pub const DEV_EMAIL: &str = "dev@localhost";
/// The MCP Inspector the banner's commands pin: the version .ci/interop installs and tests
/// (.ci/interop/npm/package.json). Unpinned, npx may pick an old one that cannot do this.
pub const INSPECTOR_VERSION: &str = "2.12.0";

#[derive(Debug, clap::Args)]
pub struct DevArgs {
    /// MCP listener; must be a loopback address (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    bind: SocketAddr,
    /// Admin listener (/healthz, /readyz, /metrics); loopback only.
    #[arg(long, default_value = "127.0.0.1:9090", value_name = "ADDR")]
    admin_bind: SocketAddr,
    /// The local stand-in for the Cloudflare edge: open this in a browser to see the page at
    /// `/` as the dev user; it adds the Access header and forwards to `--bind`. Loopback only.
    #[arg(long, default_value = "127.0.0.1:8081", value_name = "ADDR")]
    edge_bind: SocketAddr,
    /// Write the URLs and a ready token as JSON to this file once the server is up.
    #[arg(long, value_name = "PATH")]
    info_file: Option<PathBuf>,
    /// Serve the demo API through the three dynamic-mode tools instead of one tool each.
    #[arg(long)]
    dynamic: bool,
}

pub fn run(args: DevArgs) -> ExitCode {
    for (flag, address) in [
        ("--bind", args.bind),
        ("--admin-bind", args.admin_bind),
        ("--edge-bind", args.edge_bind),
    ] {
        if !address.ip().is_loopback() {
            eprintln!(
                "tunnelgate dev: {flag} {address} is not a loopback address; dev mode never listens beyond this machine"
            );
            return ExitCode::FAILURE;
        }
    }
    crate::telemetry::init("info,rmcp=warn,actix_server=warn", LogFormat::Pretty);
    let outcome = actix_web::rt::System::new().block_on(async move {
        let application = start(&args).await?;
        application.run_until_stopped().await?;
        anyhow::Ok(())
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("tunnelgate dev: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// A configuration value dev mode writes itself, parsed as a configuration file's would be.
fn parse<T: std::str::FromStr<Err = String>>(text: &str) -> anyhow::Result<T> {
    text.parse()
        .map_err(|problem| anyhow::anyhow!("dev settings: {problem}"))
}

async fn start(args: &DevArgs) -> anyhow::Result<Application> {
    let issuer = Arc::new(DevIssuer::generate(DEV_TEAM, DEV_AUDIENCE)?);
    let issuer_listener = TcpListener::bind("127.0.0.1:0").context("binding the dev issuer")?;
    let issuer_url = format!("http://{}", issuer_listener.local_addr()?);
    let issuer_server = Arc::clone(&issuer).serve(issuer_listener)?;
    actix_web::rt::spawn(issuer_server);

    let demo_listener = TcpListener::bind("127.0.0.1:0").context("binding the demo API")?;
    let demo_url = format!("http://{}", demo_listener.local_addr()?);
    actix_web::rt::spawn(demo_api::serve(demo_listener)?);

    let edge_listener = TcpListener::bind(args.edge_bind)
        .with_context(|| format!("--edge-bind: cannot listen on {}", args.edge_bind))?;
    let edge_address = edge_listener.local_addr()?;

    let state_dir = std::env::temp_dir().join("tunnelgate-dev");
    let mut settings = Settings::default();
    settings.server.bind = BindAddress(args.bind);
    settings.admin.bind = BindAddress(args.admin_bind);
    settings.access.team_domain = Some(parse(DEV_TEAM)?);
    settings.access.audiences = vec![DEV_AUDIENCE.into()];
    settings.access.certs_url = Some(parse(&format!("{issuer_url}/cdn-cgi/access/certs"))?);
    settings.upstream.spec = Some(parse(&format!("{demo_url}/openapi.json"))?);
    settings.upstream.base_url = Some(parse(&demo_url)?);
    settings.upstream.token = Some(crate::config::Secret::new(demo_api::DEMO_API_TOKEN));
    settings.tools.read_only = false;
    // One local user: let it use the demo API's write tools too.
    settings.policy.default_access = crate::config::AccessClass::Write;
    if args.dynamic {
        settings.tools.mode = ToolsMode::Dynamic;
    }
    settings.state_dir = state_dir;
    // The MCP Inspector's web UI, when it connects directly from the browser; and the edge,
    // whose page posts the try-a-tool form from its own origin.
    settings.server.allowed_origins = vec![
        parse("http://localhost:6274")?,
        parse("http://127.0.0.1:6274")?,
    ];
    for origin in edge::origins(edge_address) {
        settings.server.allowed_origins.push(parse(&origin)?);
    }
    settings.log.format = LogFormat::Pretty;
    let token_url = format!("{issuer_url}/dev/token");
    settings.dev_token_url = Some(token_url.clone());

    let application = Application::build(settings).await?;
    let edge = edge::serve(
        edge_listener,
        application.address(),
        edge::EdgeIdentity::new(Arc::clone(&issuer), DEV_EMAIL),
    )?;
    actix_web::rt::spawn(edge);
    let edge_url = format!("http://{edge_address}/");
    let token = issuer.user_token(DEV_EMAIL, None)?;
    let mcp_url = format!("http://{}/mcp", application.address());
    let sse_url = format!("http://{}/sse", application.address());
    let admin_url = format!("http://{}", application.admin_address());
    print_banner(
        &BannerUrls {
            edge: &edge_url,
            mcp: &mcp_url,
            sse: &sse_url,
            admin: &admin_url,
            demo_api: &demo_url,
            token: &token_url,
        },
        &token,
    );
    if let Some(path) = &args.info_file {
        let info = json!({
            "edge_url": edge_url,
            "mcp_url": mcp_url,
            "sse_url": sse_url,
            "admin_url": admin_url,
            "issuer_url": issuer_url,
            "demo_api_url": demo_url,
            "audience": DEV_AUDIENCE,
            "token": token,
            "token_url": token_url,
        });
        let temporary = path.with_extension("tmp");
        std::fs::write(&temporary, serde_json::to_vec_pretty(&info)?)
            .with_context(|| format!("writing {}", temporary.display()))?;
        std::fs::rename(&temporary, path).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(application)
}

struct BannerUrls<'a> {
    edge: &'a str,
    mcp: &'a str,
    sse: &'a str,
    admin: &'a str,
    demo_api: &'a str,
    token: &'a str,
}

fn print_banner(urls: &BannerUrls<'_>, token: &str) {
    let BannerUrls {
        edge: edge_url,
        mcp: mcp_url,
        sse: sse_url,
        admin: admin_url,
        demo_api: demo_url,
        token: token_url,
    } = *urls;
    let rule = "=".repeat(78);
    println!(
        r#"
{rule}
  tunnelgate DEV MODE: NOT FOR PRODUCTION
  A local, throwaway Access issuer signs the tokens below; nothing here is
  protected by Cloudflare. Everything listens on loopback only.
{rule}

  Open in your browser: {edge_url}
    (a local stand-in for the Cloudflare edge signs you in as {DEV_EMAIL})

  MCP (Streamable HTTP)  {mcp_url}
  MCP (legacy SSE)       {sse_url}
  Admin                  {admin_url}/readyz  {admin_url}/metrics
  Demo API               {demo_url}  (tools are built from {demo_url}/openapi.json)

  Token for {DEV_EMAIL} (valid 8 h, and for this run only: each run makes new keys):
    export TG_TOKEN='{token}'
  More tokens (other people, service tokens, other audiences):
    curl -s '{token_url}?email=ada@example.com'   (or ?service=ci-bot, &aud=other-app)

  MCP Inspector CLI (Node 22.19+):
    npx -y @modelcontextprotocol/inspector@{INSPECTOR_VERSION} --cli {mcp_url} --transport http \
      --header "Cf-Access-Jwt-Assertion: $TG_TOKEN" --method tools/list
    npx -y @modelcontextprotocol/inspector@{INSPECTOR_VERSION} --cli {sse_url} --transport sse \
      --header "Cf-Access-Jwt-Assertion: $TG_TOKEN" --method tools/call --tool-name whoami

  curl:
    curl -s {mcp_url} -H "Cf-Access-Jwt-Assertion: $TG_TOKEN" \
      -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \
      -H 'MCP-Protocol-Version: 2025-06-18' \
      -d '{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"whoami","arguments":{{}}}}}}'
{rule}
"#
    );
}

#[cfg(test)]
mod tests {
    use super::INSPECTOR_VERSION;

    fn read(relative: &str) -> String {
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(relative))
            .unwrap()
    }

    #[test]
    fn the_banner_pins_the_inspector_version_the_interop_suite_installs() {
        let package: serde_json::Value =
            serde_json::from_str(&read(".ci/interop/npm/package.json")).unwrap();

        assert_eq!(
            package["dependencies"]["@modelcontextprotocol/inspector"],
            INSPECTOR_VERSION
        );
    }

    #[test]
    fn every_inspector_command_in_the_docs_names_the_pinned_version() {
        let pinned = format!("@modelcontextprotocol/inspector@{INSPECTOR_VERSION}");
        for document in [
            "README.md",
            "docs/clients.md",
            "docs/deployment.md",
            "docs/operations.md",
        ] {
            let text = read(document);
            for (index, _) in text.match_indices("npx") {
                let command: String = text[index..].chars().take(80).collect();
                if command.contains("@modelcontextprotocol/inspector") {
                    assert!(
                        command.contains(&pinned),
                        "{document}: an Inspector command without {pinned}: {command}"
                    );
                }
            }
        }
    }
}
