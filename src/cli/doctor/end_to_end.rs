//! Check 5: one `initialize` and one `tools/list` through the public URL, as an MCP client sends
//! them, and where exactly the path broke: DNS, TCP, TLS, Cloudflare Access (302/401/403), the
//! tunnel (502/530), or tunnelgate itself (403 with its JSON reason).

use std::net::SocketAddr;
use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};

use super::checklist::Check;
use crate::error_chain::error_chain;

pub const TITLE: &str = "End to end: tools/list through --url";

const STEP_TIMEOUT: Duration = Duration::from_secs(5);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
const MAX_BODY: usize = 4 * 1024 * 1024;
/// The revision doctor speaks; every tunnelgate release serves it.
const PROTOCOL: &str = "2025-06-18";

/// What doctor shows Access (and, without Access in between, tunnelgate).
pub enum Credential {
    /// An Access JWT, e.g. from `cloudflared access token`.
    Jwt(String),
    ServiceToken {
        client_id: String,
        client_secret: String,
    },
}

impl Credential {
    fn headers(&self) -> Vec<(&'static str, &str)> {
        match self {
            // Access reads `cf-access-token`; tunnelgate reads `Cf-Access-Jwt-Assertion`, which
            // Access sets itself, so the second only matters when nothing sits in between.
            Self::Jwt(token) => vec![
                ("cf-access-token", token.as_str()),
                ("cf-access-jwt-assertion", token.as_str()),
            ],
            Self::ServiceToken {
                client_id,
                client_secret,
            } => vec![
                ("cf-access-client-id", client_id.as_str()),
                ("cf-access-client-secret", client_secret.as_str()),
            ],
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum UrlProblem {
    #[error("--url {url:?} is not a URL: {reason}")]
    Invalid { url: String, reason: String },
    #[error(
        "--url {url} is neither https nor http on loopback: the credential must not cross a network in clear text"
    )]
    PlainHttp { url: String },
    #[error("--url {url} has no host")]
    NoHost { url: String },
}

/// An answer that stopped the check, with the fix for it.
struct Stop {
    finding: String,
    fix: String,
}

/// One HTTP answer, body read (capped).
struct Answer {
    status: u16,
    content_type: String,
    location: Option<String>,
    www_authenticate: Option<String>,
    session: Option<String>,
    body: String,
}

pub async fn check(raw_url: &str, credential: &Credential) -> Check {
    let mut check = Check::new(5, TITLE);
    match walk(raw_url, credential, &mut check).await {
        Ok(()) => {}
        Err(stop) => check.fail(stop.finding, stop.fix),
    }
    check
}

async fn walk(raw_url: &str, credential: &Credential, check: &mut Check) -> Result<(), Stop> {
    let url = endpoint(raw_url).map_err(|problem| Stop {
        finding: problem.to_string(),
        fix: "pass --url https://<public hostname>/mcp".to_owned(),
    })?;
    let host = url
        .host_str()
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = url.port_or_known_default().unwrap_or(443);

    let address = resolve(&host, port).await?;
    check.note(format!("DNS: {host} → {}", address.ip()));
    connect(address).await?;
    check.note(format!("TCP: connected to {address}"));

    let client = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .connect_timeout(STEP_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("tunnelgate-doctor/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|error| Stop {
            finding: error_chain(&error),
            fix: "report this as a bug".to_owned(),
        })?;
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": PROTOCOL, "capabilities": {},
        "clientInfo": {"name": "tunnelgate-doctor", "version": env!("CARGO_PKG_VERSION")}}});
    let answer = post(&client, &url, credential, None, &initialize, &host).await?;
    if url.scheme() == "https" {
        check.note(format!("TLS: certificate for {host} accepted"));
    }
    let initialized = expect_result(&answer, "initialize", credential, &host)?;
    let protocol = initialized
        .get("protocolVersion")
        .and_then(Value::as_str)
        .unwrap_or("?");
    let server = initialized
        .pointer("/serverInfo/name")
        .and_then(Value::as_str)
        .unwrap_or("?");
    check.note(format!(
        "initialize: {} (protocol {protocol}, server {server})",
        answer.status
    ));
    let session = answer.session.clone();
    // A stateful server needs the handshake completed before other requests; a stateless one
    // ignores it. Its answer carries nothing to check.
    let _ = post(
        &client,
        &url,
        credential,
        session.as_deref(),
        &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        &host,
    )
    .await;
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}});
    let answer = post(&client, &url, credential, session.as_deref(), &list, &host).await?;
    let listed = expect_result(&answer, "tools/list", credential, &host)?;
    let names: Vec<&str> = listed
        .get("tools")
        .and_then(Value::as_array)
        .map(|tools| {
            tools
                .iter()
                .filter_map(|tool| tool.get("name").and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default();
    let shown: Vec<&str> = names.iter().take(5).copied().collect();
    check.note(format!(
        "tools/list: {} tool{} ({}{})",
        names.len(),
        if names.len() == 1 { "" } else { "s" },
        shown.join(", "),
        if names.len() > shown.len() {
            ", …"
        } else {
            ""
        }
    ));
    Ok(())
}

/// The MCP endpoint: `/mcp` when the URL has no path; https, or http on loopback only.
fn endpoint(raw: &str) -> Result<url::Url, UrlProblem> {
    let mut url = url::Url::parse(raw.trim()).map_err(|error| UrlProblem::Invalid {
        url: raw.to_owned(),
        reason: error.to_string(),
    })?;
    let loopback = match url.host() {
        Some(url::Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(address)) => address.is_loopback(),
        Some(url::Host::Ipv6(address)) => address.is_loopback(),
        None => {
            return Err(UrlProblem::NoHost {
                url: raw.to_owned(),
            });
        }
    };
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        _ => {
            return Err(UrlProblem::PlainHttp {
                url: raw.to_owned(),
            });
        }
    }
    if url.path().is_empty() || url.path() == "/" {
        url.set_path("/mcp");
    }
    Ok(url)
}

async fn resolve(host: &str, port: u16) -> Result<SocketAddr, Stop> {
    let looked_up = tokio::time::timeout(STEP_TIMEOUT, tokio::net::lookup_host((host, port))).await;
    let failure = |reason: String| Stop {
        finding: format!("DNS: cannot resolve {host}: {reason}"),
        fix: format!(
            "creating the tunnel's public hostname adds a DNS record for it (docs/deployment.md, step 3): check the hostname in --url and this machine's resolver (`getent hosts {host}`)"
        ),
    };
    match looked_up {
        Err(_) => Err(failure(format!("no answer within {STEP_TIMEOUT:?}"))),
        Ok(Err(error)) => Err(failure(error.to_string())),
        Ok(Ok(mut addresses)) => addresses
            .next()
            .ok_or_else(|| failure("no address".to_owned())),
    }
}

async fn connect(address: SocketAddr) -> Result<(), Stop> {
    let failure = |reason: String| Stop {
        finding: format!("TCP: cannot connect to {address}: {reason}"),
        fix: format!(
            "something between this machine and {} blocks port {} (firewall, proxy); on loopback, check that the server is running",
            address.ip(),
            address.port()
        ),
    };
    match tokio::time::timeout(STEP_TIMEOUT, tokio::net::TcpStream::connect(address)).await {
        Err(_) => Err(failure(format!("no answer within {STEP_TIMEOUT:?}"))),
        Ok(Err(error)) => Err(failure(error.to_string())),
        Ok(Ok(_stream)) => Ok(()),
    }
}

async fn post(
    client: &reqwest::Client,
    url: &url::Url,
    credential: &Credential,
    session: Option<&str>,
    body: &Value,
    host: &str,
) -> Result<Answer, Stop> {
    let mut request = client
        .post(url.clone())
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", PROTOCOL)
        .json(body);
    for (name, value) in credential.headers() {
        request = request.header(name, value);
    }
    if let Some(session) = session {
        request = request.header("mcp-session-id", session);
    }
    let response = request
        .send()
        .await
        .map_err(|error| transport_failure(&error, url, host))?;
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    };
    let status = response.status().as_u16();
    let content_type = header("content-type").unwrap_or_default();
    let location = header("location");
    let www_authenticate = header("www-authenticate");
    let session = header("mcp-session-id");
    let mut bytes = Vec::new();
    let mut chunks = response.bytes_stream();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|error| transport_failure(&error, url, host))?;
        let room = MAX_BODY.saturating_sub(bytes.len());
        bytes.extend_from_slice(chunk.get(..room.min(chunk.len())).unwrap_or_default());
        if chunk.len() > room {
            break;
        }
    }
    Ok(Answer {
        status,
        content_type,
        location,
        www_authenticate,
        session,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    })
}

/// A request that got no HTTP answer. TCP already connected, so on https a connect error is
/// the TLS handshake.
fn transport_failure(error: &reqwest::Error, url: &url::Url, host: &str) -> Stop {
    let chain = error_chain(error);
    if error.is_timeout() {
        return Stop {
            finding: format!("no answer from {url} within {REQUEST_TIMEOUT:?}"),
            fix: "check that the tunnel is connected (`docker compose ps`: cloudflared healthy) and that tunnelgate is ready".to_owned(),
        };
    }
    let tls_words = [
        "certificate",
        "tls",
        "handshake",
        "InvalidCertificate",
        "UnknownIssuer",
    ];
    if url.scheme() == "https"
        && (error.is_connect() || tls_words.iter().any(|word| chain.contains(word)))
    {
        return Stop {
            finding: format!("TLS with {host} failed: {chain}"),
            fix: format!(
                "if a TLS-inspecting proxy (Cloudflare Gateway, a corporate proxy) re-signs traffic here, add its root certificate to this machine's trust store, or a Do Not Inspect rule for {host}"
            ),
        };
    }
    Stop {
        finding: format!("HTTP request to {url} failed: {chain}"),
        fix: "see docs/deployment.md, Troubleshooting".to_owned(),
    }
}

/// The JSON-RPC `result` of a 2xx answer, or where the path broke.
fn expect_result(
    answer: &Answer,
    method: &str,
    credential: &Credential,
    host: &str,
) -> Result<Value, Stop> {
    if !(200..300).contains(&answer.status) {
        return Err(explain(answer, method, credential, host));
    }
    let Some(message) = jsonrpc_message(answer) else {
        return Err(Stop {
            finding: format!(
                "{method}: HTTP {} but no JSON-RPC message in the answer: {}",
                answer.status,
                excerpt(&answer.body)
            ),
            fix: "--url must be the MCP endpoint, https://<hostname>/mcp".to_owned(),
        });
    };
    if let Some(error) = message.get("error") {
        return Err(Stop {
            finding: format!("{method}: JSON-RPC error {error}"),
            fix: "see tunnelgate's log for this request".to_owned(),
        });
    }
    Ok(message.get("result").cloned().unwrap_or(Value::Null))
}

/// The response message, whether the answer is plain JSON or an event stream.
fn jsonrpc_message(answer: &Answer) -> Option<Value> {
    if answer.content_type.starts_with("text/event-stream") {
        answer
            .body
            .lines()
            .filter_map(|line| line.strip_prefix("data:"))
            .filter_map(|data| serde_json::from_str::<Value>(data.trim()).ok())
            .find(|message| message.get("id").is_some())
    } else {
        serde_json::from_str::<Value>(&answer.body)
            .ok()
            .filter(|message| message.get("jsonrpc").is_some())
    }
}

fn excerpt(text: &str) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut short: String = line.chars().take(200).collect();
    if line.chars().count() > 200 {
        short.push('…');
    }
    short
}

/// Who refused, and what to do: tunnelgate answers refusals with a JSON body naming a reason;
/// anything else came from Cloudflare (Access, the edge) or cloudflared.
fn explain(answer: &Answer, method: &str, credential: &Credential, host: &str) -> Stop {
    let status = answer.status;
    let tunnelgate: Option<Value> = serde_json::from_str::<Value>(&answer.body)
        .ok()
        .filter(|body| body.get("error").and_then(Value::as_str).is_some());
    let fresh_credential = match credential {
        Credential::Jwt(_) => format!(
            "get a fresh token for this application: `cloudflared access token -app=https://{host}`"
        ),
        Credential::ServiceToken { .. } => "add a policy with action Service Auth that includes this service token to the Access application (docs/clients.md, Creating a service token)".to_owned(),
    };
    match (status, &tunnelgate) {
        (403 | 503, Some(body)) => origin_refusal(status, body, method, host),
        (301 | 302 | 303 | 307 | 308, _) => {
            let location = answer.location.clone().unwrap_or_default();
            if location.contains("cloudflareaccess.com") || location.contains("/cdn-cgi/access/") {
                Stop {
                    finding: format!(
                        "{method}: Cloudflare Access answered {status}, a redirect to its login page: it accepted no credential from this request"
                    ),
                    fix: fresh_credential,
                }
            } else {
                Stop {
                    finding: format!("{method}: HTTP {status}, redirected to {location}"),
                    fix: "pass the final URL as --url (https://<hostname>/mcp)".to_owned(),
                }
            }
        }
        (401, _) => {
            let challenge = if answer.www_authenticate.is_some() {
                " with a Managed OAuth challenge"
            } else {
                ""
            };
            let finding = match credential {
                Credential::ServiceToken { .. } => format!(
                    "{method}: Cloudflare Access answered 401{challenge}: it refused the service token (wrong Client ID or Secret, or expired)"
                ),
                Credential::Jwt(_) => format!(
                    "{method}: Cloudflare Access answered 401{challenge}: it did not accept the token"
                ),
            };
            let fix = match credential {
                Credential::ServiceToken { .. } => "compare --service-token-id and the secret file with Zero Trust › Access controls › Service credentials; create a new service token if it expired".to_owned(),
                Credential::Jwt(_) => fresh_credential,
            };
            Stop { finding, fix }
        }
        (403, None) => Stop {
            finding: format!(
                "{method}: 403 without tunnelgate's JSON body: Cloudflare Access refused (no policy admits this identity or service token), or cloudflared's own Protect with Access check did: {}",
                excerpt(&answer.body)
            ),
            fix: "add the identity to the application's Allow policy, or the service token to a Service Auth policy; if Access's logs show the request allowed and tunnelgate's log has no line for it, the team name or AUD tag under the route's Protect with Access is wrong".to_owned(),
        },
        (404, _) => Stop {
            finding: format!("{method}: 404: no tunnel route matches this hostname and path, or the path is not /mcp"),
            fix: "compare the route's hostname with --url (docs/deployment.md, step 3); the MCP endpoint is /mcp".to_owned(),
        },
        (502 | 504 | 521..=530, _) => Stop {
            finding: format!(
                "{method}: HTTP {status} from Cloudflare: it cannot reach tunnelgate through the tunnel: {}",
                excerpt(&answer.body)
            ),
            fix: "check `docker compose ps` (cloudflared healthy, tunnel connected) and that the route's service is http://tunnelgate:8080".to_owned(),
        },
        _ => Stop {
            finding: format!("{method}: HTTP {status}: {}", excerpt(&answer.body)),
            fix: "see docs/deployment.md, Troubleshooting".to_owned(),
        },
    }
}

/// tunnelgate's own refusal: `{"error": …, "reason": …}`.
fn origin_refusal(status: u16, body: &Value, method: &str, host: &str) -> Stop {
    let error = body.get("error").and_then(Value::as_str).unwrap_or("?");
    let reason = body.get("reason").and_then(Value::as_str);
    let finding = format!(
        "{method}: tunnelgate (the origin) answered {status} {error}{}",
        reason
            .map(|reason| format!(", reason {reason}"))
            .unwrap_or_default()
    );
    let fix = match (error, reason) {
        ("host_not_allowed", _) => format!(
            "add {host} to TUNNELGATE__SERVER__PUBLIC_HOSTNAMES and leave the route's HTTP Host Header empty"
        ),
        ("signing_keys_unavailable", _) => {
            "tunnelgate cannot load the Access signing keys: see check 2".to_owned()
        }
        (_, Some("wrong_audience")) => format!(
            "TUNNELGATE__ACCESS__AUDIENCES must hold the AUD tag of the Access application that protects {host} (the application's Additional settings)"
        ),
        (_, Some("wrong_issuer")) => {
            "TUNNELGATE__ACCESS__TEAM_DOMAIN must be the team that issued the token".to_owned()
        }
        (_, Some("unknown_key" | "bad_signature")) => "the token was not signed by the configured team's keys: check TUNNELGATE__ACCESS__TEAM_DOMAIN (check 2 lists the key ids)".to_owned(),
        (_, Some("expired" | "not_yet_valid")) => {
            "get a fresh token; if it is fresh, the clocks differ (check 2 reports clock skew)"
                .to_owned()
        }
        (_, Some("missing")) => "the request reached tunnelgate without an Access JWT: put the hostname behind the Access application (docs/deployment.md, step 2) and remove any route that bypasses it".to_owned(),
        (_, Some("malformed")) => "the token is damaged: copy it again".to_owned(),
        _ => "see docs/deployment.md, Troubleshooting, for this reason".to_owned(),
    };
    Stop { finding, fix }
}
