//! What every part of schema generation shares: the body argument's name, the name length
//! limit, and the knobs for how much prose and data a schema carries.

/// The argument that carries the request body.
pub const BODY_ARGUMENT: &str = "body";

/// Longest argument or definition name handed to the model; some clients reject longer property names.
pub(super) const MAX_ARGUMENT_NAME_LEN: usize = 64;

/// The default [`SchemaOptions::max_schema_bytes`]: 1 MiB. Polar's largest tool schema is about 12 KB.
pub const MAX_SCHEMA_BYTES: usize = 1024 * 1024;

/// Knobs for how much prose and data the generated schemas carry.
#[derive(Debug, Clone)]
pub struct SchemaOptions {
    /// Longest description kept on a property or definition, in characters.
    pub property_description_max: usize,
    /// Longest `default` value kept, as compact JSON bytes.
    pub default_max_bytes: usize,
    /// Longest single example kept, as compact JSON bytes (0 drops all examples).
    pub example_max_bytes: usize,
    /// Largest `enum` kept. A longer one (Polar's 600 time zones) is replaced by `examples` with its first few
    /// members: it would cost kilobytes on every `tools/list`, and the upstream still rejects a wrong value.
    pub enum_max_members: usize,
    /// Largest `inputSchema` of one tool, as compact JSON bytes, once definitions are inlined. Inlining copies a
    /// definition at every use, so a small hostile document could otherwise expand without bound; a schema past
    /// this is a document error ([`Problem::SchemaTooLarge`]).
    ///
    /// [`Problem::SchemaTooLarge`]: crate::openapi::document::Problem::SchemaTooLarge
    pub max_schema_bytes: usize,
}

impl Default for SchemaOptions {
    fn default() -> Self {
        Self {
            property_description_max: 160,
            default_max_bytes: 80,
            example_max_bytes: 40,
            enum_max_members: 64,
            max_schema_bytes: MAX_SCHEMA_BYTES,
        }
    }
}
