//! `[support]` (failure reports: how long they are kept, how many an hour), checked into
//! [`SupportSettings`].

use std::time::Duration;

use serde::Deserialize;

use super::parse::parse_duration;
use super::problems::Collector;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SupportSection {
    /// How long a failed login's report is kept for `explain` (humantime).
    pub retention: String,
    /// Reports kept per clock hour, over all instances: beyond it a flood of failures is
    /// counted, not stored.
    pub max_reports_per_hour: u64,
}

impl Default for SupportSection {
    fn default() -> Self {
        SupportSection {
            retention: "14d".into(),
            max_reports_per_hour: DEFAULT_MAX_REPORTS_PER_HOUR,
        }
    }
}

pub const DEFAULT_MAX_REPORTS_PER_HOUR: u64 = 10_000;
/// The longest `support.retention`: reports are pseudonymous, but still personal data.
pub const MAX_RETENTION: Duration = Duration::from_secs(90 * 24 * 3600);

/// What the support desk's failure reports are kept by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SupportSettings {
    pub retention: Duration,
    pub max_reports_per_hour: u64,
}

impl Default for SupportSettings {
    fn default() -> Self {
        SupportSettings {
            retention: Duration::from_secs(14 * 24 * 3600),
            max_reports_per_hour: DEFAULT_MAX_REPORTS_PER_HOUR,
        }
    }
}

pub(super) fn build_support(s: &SupportSection, c: &mut Collector<'_>) -> Option<SupportSettings> {
    let retention = c.take("support.retention", parse_duration(&s.retention))?;
    if retention < Duration::from_secs(3600) || retention > MAX_RETENTION {
        c.add(
            "support.retention",
            "must be between 1h and 90d (reports are pseudonymous, but still about people)",
        );
        return None;
    }
    if s.max_reports_per_hour == 0 {
        c.add(
            "support.max_reports_per_hour",
            "must be at least 1 (without reports `explain` has nothing to say)",
        );
        return None;
    }
    Some(SupportSettings {
        retention,
        max_reports_per_hour: s.max_reports_per_hour,
    })
}
