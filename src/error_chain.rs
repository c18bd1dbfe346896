//! An error and its causes as one line, for messages an operator reads.

use std::error::Error;

/// `error`'s message followed by each cause's (`: `-separated), skipping a cause whose text the
/// line already holds. HTTP clients' own messages are often just "error sending request" or
/// "client error (Connect)"; the cause (refused, DNS, certificate) is what the operator needs.
pub fn error_chain(error: &dyn Error) -> String {
    with_causes(error.to_string(), error.source())
}

/// `text` followed by `source` and its causes, as [`error_chain`] writes them.
pub fn with_causes(mut text: String, mut source: Option<&(dyn Error + 'static)>) -> String {
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Wrapper(&'static str, std::io::Error);

    impl std::fmt::Display for Wrapper {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl Error for Wrapper {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.1)
        }
    }

    #[test]
    fn names_each_cause_after_the_error() {
        let cause = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");

        assert_eq!(error_chain(&Wrapper("wrapped", cause)), "wrapped: refused");
    }

    #[test]
    fn skips_a_cause_the_message_already_holds() {
        let cause = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");

        assert_eq!(
            error_chain(&Wrapper("connect failed: refused", cause)),
            "connect failed: refused"
        );
    }
}
