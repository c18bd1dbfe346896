//! The frame every page shares: document head (stylesheet, deferred script), skip link,
//! banner with the section links, main landmark, footer; and the short message pages
//! (refusals, unknown tool).

use maud::{DOCTYPE, Markup, html};

use super::assets;

/// A whole document titled `heading · site title` around `main`.
pub fn page(site_title: &str, heading: &str, main: Markup) -> Markup {
    let title = if heading == site_title {
        site_title.to_owned()
    } else {
        format!("{heading} · {site_title}")
    };
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light dark";
                title { (title) }
                link rel="stylesheet" href=(assets::stylesheet_url());
                script src=(assets::script_url()) defer {}
            }
            body {
                a class="skip" href="#main" { "Skip to content" }
                header class="banner" {
                    div class="wrap" {
                        a class="brand" href="/" { (site_title) }
                        nav aria-label="Sections" {
                            ul {
                                li { a href="/#you" { "You" } }
                                li { a href="/#tools" { "Your tools" } }
                                li { a href="/#connect" { "Connect" } }
                            }
                        }
                    }
                }
                main id="main" class="wrap" tabindex="-1" {
                    (main)
                }
                footer class="wrap footer" {
                    p { "Served by tunnelgate " (env!("CARGO_PKG_VERSION")) " behind Cloudflare Access. Nothing on this page is loaded from anywhere else." }
                }
            }
        }
    }
}

/// A short page: a heading, a few paragraphs, and a way on.
pub fn message(
    site_title: &str,
    heading: &str,
    paragraphs: &[String],
    link: Option<(&str, &str)>,
) -> Markup {
    page(
        site_title,
        heading,
        html! {
            h1 { (heading) }
            @for paragraph in paragraphs {
                p { (paragraph) }
            }
            @if let Some((href, text)) = link {
                p { a href=(href) { (text) } }
            }
        },
    )
}
