//! The Connect section's configurations: the snippets of docs/clients.md (tested there by the
//! interop suite where a client can run unattended), filled in with this server's MCP URL.

use actix_web::HttpRequest;

/// How a client gets through Access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Way {
    ManagedOauth,
    ServiceToken,
}

impl Way {
    pub fn label(self) -> &'static str {
        match self {
            Self::ManagedOauth => "Managed OAuth (people)",
            Self::ServiceToken => "Service token (automation)",
        }
    }
}

/// One copy-paste configuration; `{url}` stands for the MCP URL.
pub struct Snippet {
    pub way: Way,
    /// Where it goes, in a few words.
    pub place: &'static str,
    pub template: &'static str,
}

pub struct Client {
    pub name: &'static str,
    pub snippets: &'static [Snippet],
}

const URL: &str = "{url}";

pub const CLIENTS: &[Client] = &[
    Client {
        name: "Claude Code",
        snippets: &[
            Snippet {
                way: Way::ManagedOauth,
                place: "in a terminal; then /mcp in Claude Code to sign in",
                template: "claude mcp add --transport http --scope user tunnelgate {url}",
            },
            Snippet {
                way: Way::ServiceToken,
                place: "in a terminal, with CF_ACCESS_CLIENT_ID and CF_ACCESS_CLIENT_SECRET exported",
                template: "claude mcp add --transport http --scope user tunnelgate {url} \\\n  --header \"CF-Access-Client-Id: $CF_ACCESS_CLIENT_ID\" \\\n  --header \"CF-Access-Client-Secret: $CF_ACCESS_CLIENT_SECRET\"",
            },
        ],
    },
    Client {
        name: "Claude Desktop (through mcp-remote)",
        snippets: &[
            Snippet {
                way: Way::ManagedOauth,
                place: "claude_desktop_config.json (Settings › Developer › Edit Config)",
                template: "{\n  \"mcpServers\": {\n    \"tunnelgate\": {\n      \"command\": \"npx\",\n      \"args\": [\"-y\", \"mcp-remote@0.15.1\", \"{url}\"]\n    }\n  }\n}",
            },
            Snippet {
                way: Way::ServiceToken,
                place: "claude_desktop_config.json; the header file holds the two CF-Access-Client lines (chmod 600)",
                template: "{\n  \"mcpServers\": {\n    \"tunnelgate\": {\n      \"command\": \"npx\",\n      \"args\": [\n        \"-y\", \"mcp-remote@0.15.1\", \"{url}\",\n        \"--header-file\", \"/Users/you/.config/tunnelgate/access-headers\"\n      ]\n    }\n  }\n}",
            },
        ],
    },
    Client {
        name: "Cursor",
        snippets: &[
            Snippet {
                way: Way::ManagedOauth,
                place: "~/.cursor/mcp.json",
                template: "{\n  \"mcpServers\": {\n    \"tunnelgate\": {\n      \"url\": \"{url}\"\n    }\n  }\n}",
            },
            Snippet {
                way: Way::ServiceToken,
                place: "~/.cursor/mcp.json; start Cursor from a shell that exports the variables",
                template: "{\n  \"mcpServers\": {\n    \"tunnelgate\": {\n      \"url\": \"{url}\",\n      \"headers\": {\n        \"CF-Access-Client-Id\": \"${env:CF_ACCESS_CLIENT_ID}\",\n        \"CF-Access-Client-Secret\": \"${env:CF_ACCESS_CLIENT_SECRET}\"\n      }\n    }\n  }\n}",
            },
        ],
    },
    Client {
        name: "VS Code",
        snippets: &[
            Snippet {
                way: Way::ManagedOauth,
                place: ".vscode/mcp.json",
                template: "{\n  \"servers\": {\n    \"tunnelgate\": {\n      \"type\": \"http\",\n      \"url\": \"{url}\"\n    }\n  }\n}",
            },
            Snippet {
                way: Way::ServiceToken,
                place: ".vscode/mcp.json; VS Code asks for both values once and keeps them in its secret storage",
                template: "{\n  \"inputs\": [\n    { \"type\": \"promptString\", \"id\": \"cf-access-client-id\", \"description\": \"Cloudflare Access service token: Client ID\" },\n    { \"type\": \"promptString\", \"id\": \"cf-access-client-secret\", \"description\": \"Cloudflare Access service token: Client Secret\", \"password\": true }\n  ],\n  \"servers\": {\n    \"tunnelgate\": {\n      \"type\": \"http\",\n      \"url\": \"{url}\",\n      \"headers\": {\n        \"CF-Access-Client-Id\": \"${input:cf-access-client-id}\",\n        \"CF-Access-Client-Secret\": \"${input:cf-access-client-secret}\"\n      }\n    }\n  }\n}",
            },
        ],
    },
    Client {
        name: "MCP Inspector",
        snippets: &[
            Snippet {
                way: Way::ManagedOauth,
                place: "in a terminal (Node.js 22.19+); opens the web UI, Connect signs you in",
                template: "npx -y @modelcontextprotocol/inspector@2.12.0 --transport http --server-url {url}",
            },
            Snippet {
                way: Way::ServiceToken,
                place: "in a terminal: the CLI calls whoami and prints the answer",
                template: "npx -y @modelcontextprotocol/inspector@2.12.0 --cli {url} \\\n  --transport http --method tools/call --tool-name whoami \\\n  --header \"CF-Access-Client-Id: $CF_ACCESS_CLIENT_ID\" \\\n  --header \"CF-Access-Client-Secret: $CF_ACCESS_CLIENT_SECRET\"",
            },
        ],
    },
];

impl Snippet {
    pub fn render(&self, mcp_url: &str) -> String {
        self.template.replace(URL, mcp_url)
    }
}

/// The MCP URL a client should use: the first public hostname, else the `Host` this page was
/// requested under (over http only on loopback: `tunnelgate dev`'s edge).
pub fn mcp_url(public_hostname: Option<&str>, request: &HttpRequest) -> String {
    if let Some(hostname) = public_hostname {
        return format!("https://{hostname}/mcp");
    }
    match super::origin::request_host(request) {
        Some(host) => format!("{}/mcp", super::origin::own_origin(&host)),
        None => "https://YOUR-HOSTNAME/mcp".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clients_doc() -> String {
        std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/clients.md"),
        )
        .unwrap()
    }

    #[test]
    fn every_snippet_line_is_the_one_docs_clients_md_shows() {
        let doc = clients_doc();
        for client in CLIENTS {
            for snippet in client.snippets {
                let rendered = snippet.render("https://mcp.example.com/mcp");
                for line in rendered.lines() {
                    let line = line.trim_end_matches(" \\");
                    assert!(
                        doc.contains(line),
                        "{} ({}): docs/clients.md has no line {line:?}",
                        client.name,
                        snippet.way.label()
                    );
                }
            }
        }
    }

    #[test]
    fn whole_configuration_files_are_verbatim_from_the_docs() {
        let doc = clients_doc();
        for client in CLIENTS {
            for snippet in client
                .snippets
                .iter()
                .filter(|s| s.template.starts_with('{'))
            {
                let rendered = snippet.render("https://mcp.example.com/mcp");
                assert!(
                    doc.contains(&rendered),
                    "{}: docs/clients.md does not show\n{rendered}",
                    client.name
                );
            }
        }
    }

    #[test]
    fn each_client_has_both_ways_in() {
        for client in CLIENTS {
            let ways: Vec<Way> = client.snippets.iter().map(|s| s.way).collect();
            assert_eq!(
                ways,
                [Way::ManagedOauth, Way::ServiceToken],
                "{}",
                client.name
            );
        }
    }
}
