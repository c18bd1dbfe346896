//! The page at `/` for the people behind the assistants: who Access says they are, the tools
//! the policy lets them call (searchable, each with a try-it form that runs through the same
//! registry path as MCP), and how to connect a client. Server-rendered with `maud`, one
//! stylesheet and one small script embedded in the binary; every route sits in the same scope
//! as `/mcp`, behind the same allowlist and Access guard (`mcp.rs`).

mod assets;
mod connect;
mod csrf;
mod fields;
pub mod forbidden;
mod layout;
mod origin;
mod page;
mod respond;
mod result;
mod site;
mod try_tool;

use actix_web::web;

pub use site::Site;

/// The page's routes, mounted inside the guarded scope (nothing here runs without a verified
/// identity).
///
/// Only static patterns: a `{name}` segment makes actix-router compile a regex in every
/// worker, about 670 KB each, which an idle server would carry for its whole life. The tool
/// name is read from the path instead (`try_tool::tool_name`).
pub fn routes(config: &mut web::ServiceConfig) {
    config
        .route("/", web::get().to(page::show))
        .route("/assets/page.css", web::get().to(assets::stylesheet))
        .route("/assets/page.js", web::get().to(assets::script))
        .service(
            web::scope("/tools")
                .route("", web::get().to(try_tool::no_tool))
                .default_service(web::to(try_tool::dispatch)),
        );
}
