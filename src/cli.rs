//! The command line: `serve` (default), `dev`, `check-config`, `doctor`, `healthcheck`, `tools`.

mod doctor;
mod tools_listing;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::config::{LogFormat, Settings};
use crate::startup::Application;

#[derive(Debug, Parser)]
#[command(
    name = "tunnelgate",
    version,
    about = "An MCP server that turns an internal REST API into tools, admitting only verified Cloudflare Access identities",
    long_about = None
)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the production server (the default when no subcommand is given).
    Serve(ConfigArgs),
    /// Run everything on loopback in one process: a local Access-like issuer, a demo API
    /// and the server. Not for production.
    Dev(crate::dev::DevArgs),
    /// Load and validate the configuration, print the effective values with secrets
    /// redacted; exit 1 with errors that name each bad key.
    CheckConfig(ConfigArgs),
    /// Check the deployment step by step: configuration, Access signing keys, the upstream
    /// token and its scopes, public hostnames, and optionally tools/list through the public
    /// URL. Prints a checklist with a fix for each failure; exit 0 only when all passed.
    Doctor(doctor::DoctorArgs),
    /// GET the admin /readyz; exit 0 only on HTTP 200 (for container health checks).
    Healthcheck(HealthcheckArgs),
    /// Print the tool catalog that would be served: name, read/write, method and path,
    /// first line of the description.
    Tools(ConfigArgs),
}

#[derive(Debug, clap::Args)]
struct ConfigArgs {
    /// TOML configuration file (also TUNNELGATE_CONFIG); TUNNELGATE__SECTION__KEY
    /// environment variables override it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
struct HealthcheckArgs {
    /// Readiness URL [default: http://127.0.0.1:<admin.bind port>/readyz]
    #[arg(long, value_name = "URL")]
    url: Option<String>,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli
        .command
        .unwrap_or(Command::Serve(ConfigArgs { config: None }))
    {
        Command::Serve(args) => serve(args),
        Command::Dev(args) => crate::dev::run(args),
        Command::CheckConfig(args) => check_config(args),
        Command::Doctor(args) => doctor::run(args),
        Command::Healthcheck(args) => healthcheck(args),
        Command::Tools(args) => print_tools(args),
    }
}

fn load_settings(args: &ConfigArgs) -> Result<Settings, ExitCode> {
    Settings::load(args.config.as_deref()).map_err(|error| {
        eprintln!("tunnelgate: {error}");
        ExitCode::FAILURE
    })
}

fn serve(args: ConfigArgs) -> ExitCode {
    let settings = match load_settings(&args) {
        Ok(settings) => settings,
        Err(code) => return code,
    };
    if let Err(error) = settings.require_access() {
        eprintln!("tunnelgate: {error}");
        return ExitCode::FAILURE;
    }
    crate::telemetry::init(&settings.log.filter, settings.log.format);
    for warning in settings.warnings() {
        tracing::warn!("{warning}");
    }
    run_server(settings)
}

pub(crate) fn run_server(settings: Settings) -> ExitCode {
    let outcome = actix_web::rt::System::new().block_on(async move {
        let application = Application::build(settings).await?;
        application.run_until_stopped().await?;
        anyhow::Ok(())
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "tunnelgate stopped");
            eprintln!("tunnelgate: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn check_config(args: ConfigArgs) -> ExitCode {
    let settings = match load_settings(&args) {
        Ok(settings) => settings,
        Err(code) => return code,
    };
    print!("{}", settings.to_redacted_toml());
    for warning in settings.warnings() {
        eprintln!("tunnelgate: warning: {warning}");
    }
    if let Err(error) = settings.require_access() {
        eprintln!("tunnelgate: {error}");
        return ExitCode::FAILURE;
    }
    eprintln!("configuration is valid");
    ExitCode::SUCCESS
}

fn healthcheck(args: HealthcheckArgs) -> ExitCode {
    let url = args.url.unwrap_or_else(|| {
        let port = Settings::load(None)
            .ok()
            .map_or(9090, |settings| settings.admin.bind.0.port());
        format!("http://127.0.0.1:{port}/readyz")
    });
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("healthcheck: {error}");
            return ExitCode::FAILURE;
        }
    };
    let status = runtime.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(3))
            .build()?;
        client
            .get(&url)
            .send()
            .await
            .map(|response| response.status())
    });
    match status {
        Ok(status) if status == reqwest::StatusCode::OK => {
            println!("ready: {url}");
            ExitCode::SUCCESS
        }
        Ok(status) => {
            eprintln!("not ready: {url} answered {status}");
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("not ready: {url}: {}", error.without_url());
            ExitCode::FAILURE
        }
    }
}

fn print_tools(args: ConfigArgs) -> ExitCode {
    let settings = match load_settings(&args) {
        Ok(settings) => settings,
        Err(code) => return code,
    };
    crate::telemetry::init("warn", LogFormat::Pretty);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("tunnelgate: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(tools_listing::describe_catalog(&settings)) {
        Ok(listing) => {
            print!("{listing}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("tunnelgate: {error:#}");
            ExitCode::FAILURE
        }
    }
}
