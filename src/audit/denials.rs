//! Folding repeated denials: the first of identical denials (same reason, source and path)
//! is recorded at once; the ones that follow within a second are counted and recorded as one
//! event with their count when the second is over. A flood of refused requests then costs the
//! audit file a line or two per second per source, and every denial is still accounted for.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long identical denials are folded together.
pub const FOLD_WINDOW: Duration = Duration::from_secs(1);

/// Distinct (reason, source, path) triples remembered at once; past this, every window is
/// closed early rather than let a spray of sources grow the table.
const MAX_TRACKED: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DenialKey {
    pub reason: String,
    pub source: String,
    pub path: String,
}

/// Denials folded into one event: `count` of them between the window's start and its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Folded {
    pub key: DenialKey,
    pub count: u64,
}

struct Window {
    started: Instant,
    folded: u64,
}

/// What to record for one denial.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Record this denial now; `closed` is the previous window's folded denials, if any.
    Record { closed: Option<Folded> },
    /// Counted into the open window; recorded when it closes.
    Folded,
}

#[derive(Default)]
pub struct DenialFolder {
    windows: Mutex<HashMap<DenialKey, Window>>,
}

impl DenialFolder {
    pub fn denial(&self, key: DenialKey, now: Instant) -> Verdict {
        let mut windows = match self.windows.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(window) = windows.get_mut(&key)
            && now.saturating_duration_since(window.started) < FOLD_WINDOW
        {
            window.folded += 1;
            return Verdict::Folded;
        }
        let closed = windows
            .insert(
                key.clone(),
                Window {
                    started: now,
                    folded: 0,
                },
            )
            .filter(|window| window.folded > 0)
            .map(|window| Folded {
                key,
                count: window.folded,
            });
        Verdict::Record { closed }
    }

    /// Closes every window older than [`FOLD_WINDOW`] (all of them when `everything`, or when
    /// too many are open) and returns the folded denials they held.
    pub fn close_windows(&self, now: Instant, everything: bool) -> Vec<Folded> {
        let mut windows = match self.windows.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let everything = everything || windows.len() > MAX_TRACKED;
        let mut closed = Vec::new();
        windows.retain(|key, window| {
            let open = !everything && now.saturating_duration_since(window.started) < FOLD_WINDOW;
            if !open && window.folded > 0 {
                closed.push(Folded {
                    key: key.clone(),
                    count: window.folded,
                });
            }
            open
        });
        closed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(source: &str) -> DenialKey {
        DenialKey {
            reason: "expired".into(),
            source: source.into(),
            path: "/mcp".into(),
        }
    }

    #[test]
    fn records_the_first_denial_and_folds_the_rest_of_the_second() {
        let folder = DenialFolder::default();
        let start = Instant::now();

        let first = folder.denial(key("10.0.0.1"), start);
        let later: Vec<Verdict> = (1..100)
            .map(|index| folder.denial(key("10.0.0.1"), start + Duration::from_millis(index)))
            .collect();
        let closed = folder.close_windows(start + Duration::from_secs(2), false);

        assert_eq!(first, Verdict::Record { closed: None });
        assert!(later.iter().all(|verdict| *verdict == Verdict::Folded));
        assert_eq!(
            closed,
            vec![Folded {
                key: key("10.0.0.1"),
                count: 99
            }]
        );
    }

    #[test]
    fn keeps_sources_apart_and_closes_a_window_on_the_next_denial() {
        let folder = DenialFolder::default();
        let start = Instant::now();
        folder.denial(key("a"), start);
        folder.denial(key("a"), start + Duration::from_millis(10));

        let other_source = folder.denial(key("b"), start + Duration::from_millis(20));
        let next_second = folder.denial(key("a"), start + Duration::from_millis(1500));

        assert_eq!(other_source, Verdict::Record { closed: None });
        assert_eq!(
            next_second,
            Verdict::Record {
                closed: Some(Folded {
                    key: key("a"),
                    count: 1
                })
            }
        );
    }
}
