//! `tunnelgate doctor`: walks a deployment from its configuration to an end-to-end `tools/list`
//! and prints a checklist in which every failure carries its fix. Exit 0 only when every check
//! that ran passed; a check that could not run is listed as skipped, with the reason.

mod access_keys;
mod checklist;
mod cluster;
mod end_to_end;
mod hostnames;
mod upstream;

use std::fmt::{self, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;

use crate::config::Settings;

use checklist::{Check, Outcome};
use end_to_end::Credential;

const AFTER_HELP: &str = "\
Checks, in order:
  1. the configuration loads, with the keys `serve` requires (as check-config);
  2. the Access signing keys can be fetched from access.certs_url (default
     https://<team>.cloudflareaccess.com/cdn-cgi/access/certs) and parse: count, key ids,
     age and clock skew from the response's Date, Last-Modified and Age headers;
  3. the upstream answers with the configured token. Polar: GET /v1/organizations/ names the
     token's organization, then one parameterless read per scope family the served tools need
     (403 insufficient_scope = the token has neither <family>:read nor <family>:write).
     Generic: one GET of a parameterless read operation, else a connection check;
  4. server.public_hostnames is set and the Host allowlist accepts each name;
  5. with --url: initialize + tools/list through that URL, reporting where it failed
     (DNS, TCP, TLS, Access 302/401/403, origin 403 with tunnelgate's reason);
  6. with [cluster]: the shared Redis answers PING and runs the shared-limit script.

In Compose: docker compose run --rm tunnelgate doctor
Exit status: 0 when every check that ran passed, 1 otherwise.";

#[derive(Debug, clap::Args)]
#[command(after_help = AFTER_HELP)]
pub struct DoctorArgs {
    /// TOML configuration file (also TUNNELGATE_CONFIG); TUNNELGATE__SECTION__KEY
    /// environment variables override it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Also call tools/list end to end through this URL, e.g. https://mcp.example.com/mcp
    /// (`/mcp` is added when the URL has no path). Plain http only on loopback.
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    /// An Access JWT for --url, e.g. from `cloudflared access token -app=https://<hostname>`;
    /// sent as `cf-access-token` (read by Access) and `Cf-Access-Jwt-Assertion` (read by
    /// tunnelgate when nothing sits in between).
    #[arg(
        long,
        value_name = "JWT",
        requires = "url",
        conflicts_with = "service_token_id"
    )]
    token: Option<String>,
    /// Client ID of an Access service token for --url (ends in `.access`).
    #[arg(
        long,
        value_name = "ID",
        requires_all = ["url", "service_token_secret_file"]
    )]
    service_token_id: Option<String>,
    /// File holding the service token's Client Secret (kept out of the process list).
    #[arg(long, value_name = "FILE", requires = "service_token_id")]
    service_token_secret_file: Option<PathBuf>,
}

/// Every check that was run or skipped, in order.
#[derive(Debug)]
pub struct Report {
    checks: Vec<Check>,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.checks
            .iter()
            .all(|check| check.outcome != Outcome::Failed)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "tunnelgate doctor")?;
        for check in &self.checks {
            let mark = match check.outcome {
                Outcome::Passed => "[ok]  ",
                Outcome::Failed => "[FAIL]",
                Outcome::Skipped => "[skip]",
            };
            writeln!(f, "{mark} {}. {}", check.number, check.title)?;
            // A finding may span lines (a configuration error lists its problems); each line is
            // indented so the checklist stays readable and parseable.
            for finding in &check.findings {
                for line in finding.lines() {
                    writeln!(f, "         {line}")?;
                }
            }
            for fix in &check.fixes {
                writeln!(f, "         fix: {fix}")?;
            }
        }
        let count = |outcome| {
            self.checks
                .iter()
                .filter(|check| check.outcome == outcome)
                .count()
        };
        let mut summary = format!(
            "doctor: {} passed, {} failed, {} skipped",
            count(Outcome::Passed),
            count(Outcome::Failed),
            count(Outcome::Skipped)
        );
        if !self.passed() {
            let _ = write!(summary, " (fix the failed checks and run it again)");
        }
        writeln!(f, "{summary}")
    }
}

pub fn run(args: DoctorArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("tunnelgate doctor: {error}");
            return ExitCode::FAILURE;
        }
    };
    let report = runtime.block_on(diagnose(&args));
    print!("{report}");
    if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Runs every check in order. The later checks need settings, so they are skipped when the
/// configuration does not load; the others each run on their own.
pub async fn diagnose(args: &DoctorArgs) -> Report {
    let credential = match credential(args) {
        Ok(credential) => credential,
        Err(check) => {
            return Report {
                checks: vec![*check],
            };
        }
    };
    let (configuration, settings) = check_configuration(args);
    let mut checks = vec![configuration];
    let url = args.url.as_deref();
    match &settings {
        Some(settings) => {
            checks.push(access_keys::check(settings).await);
            checks.push(upstream::check(settings).await);
            checks.push(hostnames::check(settings, url));
        }
        None => {
            for (number, title) in [
                (2, access_keys::TITLE),
                (3, upstream::TITLE),
                (4, hostnames::TITLE),
            ] {
                checks.push(Check::skipped(
                    number,
                    title,
                    "needs a configuration that loads (check 1)",
                ));
            }
        }
    }
    checks.push(match (url, credential) {
        (Some(url), Some(credential)) => end_to_end::check(url, &credential).await,
        (Some(_), None) => Check::skipped(
            5,
            end_to_end::TITLE,
            "--url needs --token or --service-token-id with --service-token-secret-file",
        ),
        (None, _) => Check::skipped(
            5,
            end_to_end::TITLE,
            "not requested: add --url https://<hostname> with --token <jwt> or --service-token-id/--service-token-secret-file",
        ),
    });
    checks.push(match &settings {
        Some(settings) => cluster::check(settings).await,
        None => Check::skipped(
            6,
            cluster::TITLE,
            "needs a configuration that loads (check 1)",
        ),
    });
    Report { checks }
}

/// The credential for check 5; an unreadable secret file is reported as that check failing.
fn credential(args: &DoctorArgs) -> Result<Option<Credential>, Box<Check>> {
    if let Some(token) = &args.token {
        return Ok(Some(Credential::Jwt(token.trim().to_owned())));
    }
    let (Some(id), Some(path)) = (&args.service_token_id, &args.service_token_secret_file) else {
        return Ok(None);
    };
    match std::fs::read_to_string(path) {
        Ok(secret) if !secret.trim().is_empty() => Ok(Some(Credential::ServiceToken {
            client_id: id.trim().to_owned(),
            client_secret: secret.trim().to_owned(),
        })),
        Ok(_) => {
            let mut check = Check::new(5, end_to_end::TITLE);
            check.fail(
                format!("--service-token-secret-file {} is empty", path.display()),
                "write the service token's Client Secret into that file (Zero Trust › Access controls › Service credentials shows it only once; create a new token if it is lost)",
            );
            Err(Box::new(check))
        }
        Err(error) => {
            let mut check = Check::new(5, end_to_end::TITLE);
            check.fail(
                format!(
                    "cannot read --service-token-secret-file {}: {error}",
                    path.display()
                ),
                "pass the path of a file this user can read",
            );
            Err(Box::new(check))
        }
    }
}

fn check_configuration(args: &DoctorArgs) -> (Check, Option<Settings>) {
    let mut check = Check::new(1, "Configuration loads");
    let settings = match Settings::load(args.config.as_deref()) {
        Ok(settings) => settings,
        Err(error) => {
            check.fail(
                error.to_string(),
                "correct each key named above (docs/configuration.md lists them); `tunnelgate check-config` repeats this check",
            );
            return (check, None);
        }
    };
    let source = settings.source_file.as_ref().map_or_else(
        || "defaults and TUNNELGATE__* variables (no configuration file)".to_owned(),
        |path| format!("{} and TUNNELGATE__* variables", path.display()),
    );
    check.note(format!("read from {source}"));
    check.note(format!(
        "upstream profile {}, tools.read_only = {}",
        match settings.upstream.profile {
            crate::config::UpstreamProfile::Generic => "generic",
            crate::config::UpstreamProfile::Polar => "polar",
        },
        settings.tools.read_only
    ));
    if let Err(error) = settings.require_access() {
        check.fail(
            error.to_string(),
            "set TUNNELGATE__ACCESS__TEAM_DOMAIN and TUNNELGATE__ACCESS__AUDIENCES in .env (docs/deployment.md, step 4)",
        );
    }
    (check, Some(settings))
}
