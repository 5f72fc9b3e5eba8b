//! The verdict of a case: the one place that decides whether a case passed.
//!
//! The test harness, `fitcheck run`, `fitcheck compare` and every report read a [`Verdict`]; none of
//! them decides on its own. A case that ran gets its verdict from its thresholds and its known-failure
//! mark ([`Verdict::of`]); a case that could not be loaded or judged is [`Verdict::Error`]; an ignored
//! case is [`Verdict::Ignored`]. A snapshot difference is not part of the verdict: it is a review
//! request, reported beside it.

use serde::{Deserialize, Serialize};

/// How one case ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Every threshold passed.
    Passed,
    /// Some threshold failed.
    Failed,
    /// Marked `known_failure` and still failing, as marked: does not fail the suite.
    KnownFailure,
    /// Marked `known_failure` but passing now: the mark must go, so it fails the suite.
    Fixed,
    /// Marked `ignore`: not run.
    Ignored,
    /// The case could not be loaded or judged.
    Error,
}

impl Verdict {
    /// Every verdict, in report order.
    pub const ALL: [Verdict; 6] =
        [Verdict::Passed, Verdict::Failed, Verdict::KnownFailure, Verdict::Fixed, Verdict::Ignored, Verdict::Error];

    /// The verdict of a case that ran: whether all its thresholds passed, and whether it carries a
    /// `known_failure` mark.
    pub fn of(thresholds_passed: bool, known_failure: bool) -> Verdict {
        match (thresholds_passed, known_failure) {
            (true, false) => Verdict::Passed,
            (false, false) => Verdict::Failed,
            (false, true) => Verdict::KnownFailure,
            (true, true) => Verdict::Fixed,
        }
    }

    /// The machine-readable name (as in JSON).
    pub fn key(self) -> &'static str {
        match self {
            Verdict::Passed => "passed",
            Verdict::Failed => "failed",
            Verdict::KnownFailure => "known_failure",
            Verdict::Fixed => "fixed",
            Verdict::Ignored => "ignored",
            Verdict::Error => "error",
        }
    }

    /// The label in tables.
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Passed => "ok",
            Verdict::Failed => "FAIL",
            Verdict::KnownFailure => "known failure",
            Verdict::Fixed => "FIXED (remove known_failure)",
            Verdict::Ignored => "ignored",
            Verdict::Error => "ERROR",
        }
    }

    /// Whether this verdict fails the suite.
    pub fn fails_suite(self) -> bool {
        matches!(self, Verdict::Failed | Verdict::Fixed | Verdict::Error)
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.key())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_and_mark_decide() {
        assert_eq!(Verdict::of(true, false), Verdict::Passed);
        assert_eq!(Verdict::of(false, false), Verdict::Failed);
        assert_eq!(Verdict::of(false, true), Verdict::KnownFailure);
        assert_eq!(Verdict::of(true, true), Verdict::Fixed);
        let failing: Vec<Verdict> = Verdict::ALL.into_iter().filter(|v| v.fails_suite()).collect();
        assert_eq!(failing, [Verdict::Failed, Verdict::Fixed, Verdict::Error]);
    }

    #[test]
    fn keys_are_the_json_names() {
        for v in Verdict::ALL {
            assert_eq!(serde_json::to_value(v).unwrap(), serde_json::Value::String(v.key().into()));
        }
    }
}
