//! Check 4: `server.public_hostnames` is set, and the listener's real Host/Origin allowlist
//! (the one the server builds at start-up) accepts each name as the tunnel presents it.

use super::checklist::Check;
use crate::config::Settings;
use crate::mcp::RequestAllowlist;

pub const TITLE: &str = "Public hostnames";

pub fn check(settings: &Settings, url: Option<&str>) -> Check {
    let mut check = Check::new(4, TITLE);
    let hostnames = &settings.server.public_hostnames;
    let allowlist =
        RequestAllowlist::with_extra_origins(hostnames, &settings.server.allowed_origins);
    if hostnames.is_empty() {
        check.fail(
            "server.public_hostnames is empty: requests through the tunnel carry Host: <your hostname> and would get 403 host_not_allowed",
            "set TUNNELGATE__SERVER__PUBLIC_HOSTNAMES in .env to the Access application's hostname, e.g. mcp.example.com",
        );
    }
    for hostname in hostnames {
        // cloudflared forwards the Host the client sent; some clients add the default port.
        let accepted = allowlist.allows_host(hostname)
            && allowlist.allows_host(&format!("{hostname}:443"))
            && allowlist.allows_origin(&format!("https://{hostname}"));
        if accepted {
            check.note(format!(
                "Host: {hostname} is accepted (with or without :443), and Origin: https://{hostname}"
            ));
        } else {
            check.fail(
                format!("the Host allowlist refuses {hostname:?}"),
                "write each hostname bare and exactly as clients use it, e.g. mcp.example.com (no scheme, port, path or trailing dot)",
            );
        }
    }
    if let Some(host) = url
        .and_then(|url| url::Url::parse(url).ok())
        .and_then(|url| {
            url.host_str().map(|host| {
                host.trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_owned()
            })
        })
    {
        let loopback = host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|address| address.is_loopback());
        if !loopback && !allowlist.allows_host(&host) {
            check.fail(
                format!("--url's host {host} is not in server.public_hostnames: tunnelgate would answer it with 403 host_not_allowed"),
                format!("add {host} to TUNNELGATE__SERVER__PUBLIC_HOSTNAMES, or check --url"),
            );
        }
    }
    let bind = settings.server.bind.0;
    if bind.ip().is_loopback() {
        check.note(format!(
            "server.bind is {bind}: only this machine's loopback reaches it, so cloudflared in another container cannot (Compose needs 0.0.0.0:{})",
            bind.port()
        ));
    } else {
        check.note(format!("server.bind is {bind}"));
    }
    check
}
