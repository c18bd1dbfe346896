//! The checklist doctor prints: one [`Check`] per step with its findings and fixes, and the
//! error formatting the checks share. A leaf: the checks and the report import it, never the
//! other way round.

/// How one check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    Passed,
    Failed,
    Skipped,
}

/// One line of the checklist: its findings, and for a failure what to do about it.
#[derive(Debug)]
pub(super) struct Check {
    pub(super) number: u8,
    pub(super) title: &'static str,
    pub(super) outcome: Outcome,
    pub(super) findings: Vec<String>,
    pub(super) fixes: Vec<String>,
}

impl Check {
    pub(super) fn new(number: u8, title: &'static str) -> Self {
        Self {
            number,
            title,
            outcome: Outcome::Passed,
            findings: Vec::new(),
            fixes: Vec::new(),
        }
    }

    pub(super) fn skipped(number: u8, title: &'static str, reason: impl Into<String>) -> Self {
        let mut check = Self::new(number, title);
        check.outcome = Outcome::Skipped;
        check.findings.push(reason.into());
        check
    }

    /// A finding that does not change the outcome.
    pub(super) fn note(&mut self, finding: impl Into<String>) {
        self.findings.push(finding.into());
    }

    /// A finding that fails the check, and the fix for it.
    pub(super) fn fail(&mut self, finding: impl Into<String>, fix: impl Into<String>) {
        self.failed(finding);
        self.fix(fix);
    }

    /// A finding that fails the check, when one fix (given with [`Check::fix`]) covers several.
    pub(super) fn failed(&mut self, finding: impl Into<String>) {
        self.outcome = Outcome::Failed;
        self.findings.push(finding.into());
    }

    pub(super) fn fix(&mut self, fix: impl Into<String>) {
        let fix = fix.into();
        if !self.fixes.contains(&fix) {
            self.fixes.push(fix);
        }
    }
}
