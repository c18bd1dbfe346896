//! Span fields kept as values and written only when a line is logged inside the span. Every
//! MCP request opens a span or two; formatting their fields when they open (what
//! `tracing-subscriber`'s own layer does) cost about 2 % of a tool call's CPU, for lines that
//! are almost never written.

use std::fmt::Display;

use tracing::Span;
use tracing_subscriber::Registry;
use tracing_subscriber::registry::LookupSpan;

/// What a span shows in a log line: its fields by name, visited only when a line is written.
pub trait DeferredFields: Send + Sync + 'static {
    fn for_each(&self, visit: &mut dyn FnMut(&'static str, &dyn Display));
}

/// The extension a span's deferred fields are stored in.
pub(super) struct Deferred(pub(super) Box<dyn DeferredFields>);

/// Gives `span` the fields `fields` builds. A span no layer records (filtered out, or no
/// subscriber) costs nothing: `fields` is not called.
pub fn attach<F: DeferredFields>(span: &Span, fields: impl FnOnce() -> F) {
    if span.is_disabled() {
        return;
    }
    span.with_subscriber(|(id, dispatch)| {
        if let Some(registry) = dispatch.downcast_ref::<Registry>()
            && let Some(span) = registry.span(id)
        {
            // `replace`, not `insert`: a second attach replaces the fields instead of panicking.
            span.extensions_mut().replace(Deferred(Box::new(fields())));
        }
    });
}
