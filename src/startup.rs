//! Building the application from settings: shared state, both listeners (port 0 works),
//! background tasks; and running it until it is stopped.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::{App, HttpServer, web};
use anyhow::Context;

use crate::access::{AccessVerifier, CertsFetcher, DevTokenHint, IdentityLookup, KeyCache};
use crate::admin::{self, metrics::Metrics};
use crate::audit::Auditor;
use crate::cluster::{Cluster, LocalSessions};
use crate::config::{ServerMode, Settings};
use crate::limits::RateLimits;
use crate::mcp::{self, FastLane, RequestAllowlist, SseSessions, StatefulSessions};
use crate::tools::ToolRegistry;
use crate::tools::{Policy, RegistryServices};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;

pub struct Application {
    mcp_server: Server,
    admin_server: Server,
    mcp_address: SocketAddr,
    admin_address: SocketAddr,
    background: Vec<tokio::task::JoinHandle<()>>,
    auditor: Arc<Auditor>,
    sessions: Arc<SseSessions>,
}

impl Application {
    /// Binds both listeners and starts background work; does not serve until
    /// [`Application::run_until_stopped`] is awaited.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        settings.require_access()?;
        // Before anything slow (key and document fetches): from here on a SIGHUP is
        // handled, never the default action that terminates the process.
        let hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup());
        let metrics = Arc::new(if settings.cluster.is_enabled() {
            Metrics::with_cluster()
        } else {
            Metrics::new()
        });
        // Never waits for Redis: a replica whose Redis is down starts and serves on its fallback.
        let cluster = Cluster::from_settings(&settings, &metrics)?;
        let Some(team) = &settings.access.team_domain else {
            anyhow::bail!("access.team_domain: missing");
        };
        let issuer = team.issuer();
        let certs_url = settings
            .access
            .certs_url()
            .unwrap_or_else(|| format!("{issuer}/cdn-cgi/access/certs"));
        let keys = Arc::new(KeyCache::new(
            Arc::new(CertsFetcher::new(certs_url.clone()).context("building the certs client")?),
            settings.access.unknown_kid_cooldown,
            Arc::clone(&metrics),
        ));
        match keys.refresh().await {
            Ok(count) => {
                tracing::info!(keys = count, url = %certs_url, "Access signing keys loaded")
            }
            Err(error) => tracing::error!(
                error = %error,
                url = %certs_url,
                "cannot load Access signing keys; not ready, retrying in the background"
            ),
        }
        let mut background = vec![keys.spawn_refresher(settings.access.jwks_refresh)];
        let identity_lookup = if settings.policy.identity_lookup {
            let url = settings.policy.identity_url.as_ref().map_or_else(
                || format!("{issuer}/cdn-cgi/access/get-identity"),
                ToString::to_string,
            );
            Some(
                IdentityLookup::new(
                    url,
                    settings.policy.identity_cache_ttl,
                    settings.policy.identity_lookup_failure,
                )
                .context("building the get-identity client")?,
            )
        } else {
            None
        };
        let verifier = web::Data::new(
            AccessVerifier::new(
                Arc::clone(&keys),
                issuer,
                settings.access.audiences.clone(),
                settings.access.leeway,
                settings.access.token_cache_size,
            )
            .with_groups_claim(settings.policy.groups_claim.as_deref())
            .with_identity_lookup(identity_lookup),
        );

        let auditor = Arc::new(
            Auditor::from_settings(&settings.audit)
                .context("audit.file: cannot open for appending")?,
        );
        let services = RegistryServices {
            policy: Policy::from_settings(&settings.policy),
            limits: match &cluster {
                Some(cluster) => RateLimits::from_settings(&settings).shared(
                    Arc::clone(&cluster.limiter),
                    Arc::clone(&metrics),
                    settings.cluster.expected_replicas,
                ),
                None => RateLimits::from_settings(&settings),
            },
            auditor: Arc::clone(&auditor),
            metrics: Arc::clone(&metrics),
        };
        let registry = Arc::new(crate::tools::build_registry(&settings, services).await?);
        background.push(spawn_policy_reloader(
            hangups,
            settings.source_file.clone(),
            settings.policy.clone(),
            Arc::clone(&registry),
            Arc::clone(&auditor),
        ));
        // Dev mode has no tunnel in front: loopback Hosts are all it will ever see.
        if settings.server.public_hostnames.is_empty() && settings.dev_token_url.is_none() {
            tracing::warn!(
                "server.public_hostnames is empty: only loopback Host headers are accepted, so requests through the tunnel will be refused"
            );
        }
        // Building the catalog parsed a document of megabytes and dropped it; glibc keeps the
        // freed pages mapped unless asked, so an idle server would carry them for its life.
        crate::memory::release_freed_memory();
        let allowlist = RequestAllowlist::with_extra_origins(
            &settings.server.public_hostnames,
            &settings.server.allowed_origins,
        );
        let sessions = Arc::new(
            SseSessions::new(
                Arc::clone(&registry),
                Arc::clone(&metrics),
                settings.server.max_sse_sessions,
                settings.server.sse_keep_alive,
                settings.server.sse_idle_timeout,
            )
            .with_relay(cluster.as_ref().map(|cluster| Arc::clone(&cluster.relay))),
        );
        if let Some(cluster) = &cluster {
            let table: std::sync::Weak<SseSessions> = Arc::downgrade(&sessions);
            let table: std::sync::Weak<dyn LocalSessions> = table;
            cluster.relay.attach(table);
            background.extend(cluster.spawn_tasks());
        }
        background.push(sessions.spawn_reaper());
        background.push(auditor.spawn_denial_sweeper());

        let mcp_listener = TcpListener::bind(settings.server.bind.0)
            .with_context(|| format!("server.bind: cannot listen on {}", settings.server.bind))?;
        let mcp_address = mcp_listener.local_addr()?;
        let admin_listener = TcpListener::bind(settings.admin.bind.0)
            .with_context(|| format!("admin.bind: cannot listen on {}", settings.admin.bind))?;
        let admin_address = admin_listener.local_addr()?;

        let session_manager = Arc::new(LocalSessionManager::default());
        let streamable = mcp::streamable::service(
            Arc::clone(&registry),
            &settings.server,
            &allowlist,
            Arc::clone(&session_manager),
        );
        let stateful_sessions = (settings.server.mode == ServerMode::Stateful).then(|| {
            let sessions = Arc::new(StatefulSessions::new(
                session_manager,
                settings.server.max_sessions,
                settings.server.session_idle_timeout,
            ));
            background.push(sessions.spawn_reaper());
            web::Data::from(sessions)
        });
        let metrics_data = web::Data::from(Arc::clone(&metrics));
        let sessions_data = web::Data::from(Arc::clone(&sessions));
        let allowlist_data = web::Data::new(allowlist);
        let auditor_data = web::Data::from(Arc::clone(&auditor));
        let fast_lane = (settings.server.fast_lane
            && settings.server.mode == ServerMode::Stateless)
            .then(|| web::Data::new(FastLane::new(Arc::clone(&registry))));
        let site = settings.web.enabled.then(|| {
            web::Data::new(crate::web::Site::new(
                &settings,
                Arc::clone(&registry),
                Arc::clone(&keys),
            ))
        });
        let page = site.is_some();
        let dev_token_hint = settings
            .dev_token_url
            .clone()
            .map(|url| web::Data::new(DevTokenHint(url)));
        let max_body = settings.server.max_body.as_usize();
        let mcp_server = HttpServer::new({
            let metrics_data = metrics_data.clone();
            move || {
                let streamable = streamable.clone();
                let fast_lane = fast_lane.clone();
                let stateful_sessions = stateful_sessions.clone();
                let site = site.clone();
                let dev_token_hint = dev_token_hint.clone();
                App::new()
                    .app_data(verifier.clone())
                    .app_data(metrics_data.clone())
                    .app_data(sessions_data.clone())
                    .app_data(allowlist_data.clone())
                    .app_data(auditor_data.clone())
                    .app_data(web::PayloadConfig::new(max_body))
                    .app_data(web::Data::new(mcp::jsonrpc_guard::BodyLimit(max_body)))
                    .configure(|config| {
                        if let Some(fast_lane) = fast_lane {
                            config.app_data(fast_lane);
                        }
                        if let Some(sessions) = stateful_sessions {
                            config.app_data(sessions);
                        }
                        if let Some(hint) = dev_token_hint {
                            config.app_data(hint);
                        }
                        if let Some(site) = site {
                            config.app_data(site).app_data(web::Data::new(
                                crate::access::RefusalResponder(crate::web::forbidden::respond),
                            ));
                        }
                    })
                    .configure(|config| mcp::routes(config, streamable, page))
            }
        })
        .keep_alive(settings.server.keep_alive)
        // Signals are ours (see run_until_stopped): SSE streams close first, then calls in
        // flight get the grace period.
        .disable_signals()
        .shutdown_timeout(settings.server.shutdown_grace.as_secs())
        .listen(mcp_listener)?
        .run();

        let keys_data = web::Data::new(Arc::clone(&keys));
        let admin_server = HttpServer::new(move || {
            App::new()
                .app_data(keys_data.clone())
                .app_data(metrics_data.clone())
                .configure(admin::routes)
        })
        .workers(1)
        .disable_signals()
        .shutdown_timeout(5)
        .listen(admin_listener)?
        .run();

        tracing::info!(
            mcp = %mcp_address,
            admin = %admin_address,
            tools = registry.tool_count(),
            mode = ?settings.server.mode,
            "tunnelgate listening"
        );
        Ok(Self {
            mcp_server,
            admin_server,
            mcp_address,
            admin_address,
            background,
            auditor,
            sessions,
        })
    }

    pub fn port(&self) -> u16 {
        self.mcp_address.port()
    }

    pub fn address(&self) -> SocketAddr {
        self.mcp_address
    }

    pub fn admin_port(&self) -> u16 {
        self.admin_address.port()
    }

    pub fn admin_address(&self) -> SocketAddr {
        self.admin_address
    }

    /// Serves until SIGTERM (what `docker compose down` sends) or SIGINT. Then: stop
    /// accepting, close the legacy SSE streams, let calls in flight finish within
    /// `server.shutdown_grace`, flush the audit trail, and return.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let mcp = self.mcp_server.handle();
        let admin = self.admin_server.handle();
        let mut servers = Box::pin(futures::future::try_join(
            self.mcp_server,
            self.admin_server,
        ));
        let result = tokio::select! {
            result = &mut servers => result,
            signal = shutdown_signal() => {
                tracing::info!(signal, "shutting down: finishing the calls in flight");
                self.sessions.close_all();
                // The servers' futures carry out the stop: poll them while asking.
                let stopping = futures::future::join(mcp.stop(true), admin.stop(true));
                futures::future::join(servers, stopping).await.0
            }
        };
        for task in self.background {
            task.abort();
        }
        // Every request has finished; what they recorded reaches the disk before exit.
        self.auditor.close_denial_windows(true).await;
        self.auditor.flush().await;
        tracing::info!("stopped");
        result.map(|_| ())
    }
}

/// Waits for SIGTERM or SIGINT and names it; never returns if neither can be listened for.
async fn shutdown_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut terminate), Ok(mut interrupt)) => tokio::select! {
            _ = terminate.recv() => "SIGTERM",
            _ = interrupt.recv() => "SIGINT",
        },
        _ => {
            tracing::error!("cannot listen for SIGTERM/SIGINT; stop the process with SIGKILL");
            std::future::pending().await
        }
    }
}

/// On SIGHUP, re-reads the configuration file and swaps in its policy. Open streams and
/// in-flight calls are untouched; a file that fails to load keeps the current policy.
fn spawn_policy_reloader(
    hangups: std::io::Result<tokio::signal::unix::Signal>,
    path: Option<std::path::PathBuf>,
    initial: crate::config::PolicySettings,
    registry: Arc<ToolRegistry>,
    auditor: Arc<Auditor>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let Ok(mut hangups) = hangups else {
            tracing::warn!("cannot listen for SIGHUP; policy reload is unavailable");
            return;
        };
        while hangups.recv().await.is_some() {
            // Operators rotate or inspect the audit file on SIGHUP: everything so far is on disk.
            auditor.flush().await;
            let Some(path) = &path else {
                tracing::warn!(
                    "SIGHUP received but no configuration file was given (--config or TUNNELGATE_CONFIG); nothing to reload"
                );
                continue;
            };
            let reloaded = Settings::load(Some(path)).map(|settings| {
                let policy = Policy::from_settings(&settings.policy);
                (policy, settings.policy)
            });
            match reloaded {
                Ok((policy, settings)) => {
                    let needs_restart = settings.groups_claim != initial.groups_claim
                        || settings.identity_lookup != initial.identity_lookup
                        || settings.identity_url != initial.identity_url
                        || settings.identity_cache_ttl != initial.identity_cache_ttl
                        || settings.identity_lookup_failure != initial.identity_lookup_failure;
                    if needs_restart {
                        tracing::warn!(
                            "policy group settings (groups_claim, identity_*) changed; they take effect only after a restart"
                        );
                    }
                    registry.replace_policy(policy);
                    tracing::info!(file = %path.display(), "policy reloaded");
                }
                Err(error) => tracing::error!(
                    file = %path.display(),
                    error = %error,
                    "policy reload failed; keeping the current policy"
                ),
            }
        }
    })
}
