//! Failures of one cause, logged once per interval. When Redis or an upstream is away, every
//! request fails the same way: a line per request (a soak at half load wrote 168,000 in 40 s)
//! buries the one line that matters. The first failure of a cause (its code, for one app) is
//! logged in full; the next ones within [`INTERVAL`] are counted, and said as one line with
//! the count when the interval is over; when the cause has been quiet for an interval, one
//! line says it ended. Each request's own detail stays on its page (the reference), in its
//! failure report and in the metrics.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long the failures of one cause are counted before they are said again.
pub const INTERVAL: Duration = Duration::from_secs(10);

/// One cause: an error code, of one app (`None`: no app's route).
type Cause = (&'static str, Option<Arc<str>>);

#[derive(Debug)]
struct Run {
    /// When the line that opened this interval was written.
    said_at: Instant,
    /// Failures since then that were not logged.
    unsaid: u64,
    started: Instant,
    last: Instant,
    total: u64,
    /// A 5xx (an error line) or a refusal (a warning line, `rate_limited`).
    server_error: bool,
}

/// What to do with one failure's log line.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Log it; `unsaid` more of its cause were counted since its cause's previous line.
    Log { unsaid: u64 },
    /// Counted: its cause was logged less than [`INTERVAL`] ago.
    Counted,
}

/// A line [`Repeats::sweep`] asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Summary {
    /// `unsaid` more failures of the cause in the interval just ended.
    More {
        code: &'static str,
        app: Option<Arc<str>>,
        unsaid: u64,
        server_error: bool,
    },
    /// The cause has been quiet for an interval: it ended, after `total` failures.
    Ended {
        code: &'static str,
        app: Option<Arc<str>>,
        total: u64,
        lasted: Duration,
    },
}

/// The runs of failures going on. Its keys are bounded: codes are static, apps are the
/// config's.
#[derive(Debug, Default)]
pub struct Repeats {
    runs: Mutex<HashMap<Cause, Run>>,
}

impl Repeats {
    /// One failure of `code` for `app`, at `now`.
    pub fn note(&self, code: &'static str, app: Option<Arc<str>>, server_error: bool, now: Instant) -> Verdict {
        let Ok(mut runs) = self.runs.lock() else {
            return Verdict::Log { unsaid: 0 };
        };
        let run = runs.entry((code, app)).or_insert(Run {
            said_at: now,
            unsaid: 0,
            started: now,
            last: now,
            total: 0,
            server_error,
        });
        run.total += 1;
        run.last = now;
        if run.total == 1 || now.duration_since(run.said_at) >= INTERVAL {
            let unsaid = std::mem::take(&mut run.unsaid);
            run.said_at = now;
            Verdict::Log { unsaid }
        } else {
            run.unsaid += 1;
            Verdict::Counted
        }
    }

    /// What is to be said at `now`: the counts of intervals that ended, and the causes that
    /// ended (quiet for an interval), which are forgotten.
    pub fn sweep(&self, now: Instant) -> Vec<Summary> {
        let Ok(mut runs) = self.runs.lock() else {
            return Vec::new();
        };
        let mut lines = Vec::new();
        runs.retain(|(code, app), run| {
            if run.unsaid > 0 && now.duration_since(run.said_at) >= INTERVAL {
                lines.push(Summary::More {
                    code,
                    app: app.clone(),
                    unsaid: std::mem::take(&mut run.unsaid),
                    server_error: run.server_error,
                });
                run.said_at = now;
            }
            let quiet = now.duration_since(run.last) >= INTERVAL && run.unsaid == 0;
            if quiet {
                lines.push(Summary::Ended {
                    code,
                    app: app.clone(),
                    total: run.total,
                    lasted: run.last.duration_since(run.started),
                });
            }
            !quiet
        });
        lines
    }

    /// Says what [`Repeats::sweep`] finds, every second while the process lives.
    pub async fn keep_saying(self: Arc<Self>) {
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            for line in self.sweep(Instant::now()) {
                match line {
                    Summary::More {
                        code,
                        app,
                        unsaid,
                        server_error: true,
                    } => tracing::error!(
                        code,
                        app = app.as_deref(),
                        repeated = unsaid,
                        "{unsaid} more request(s) failed with {code} in the last {} s (not logged one by one; each has its page's reference and its metric)",
                        INTERVAL.as_secs()
                    ),
                    Summary::More { code, app, unsaid, .. } => tracing::warn!(
                        code,
                        app = app.as_deref(),
                        repeated = unsaid,
                        "{unsaid} more request(s) refused with {code} in the last {} s (not logged one by one; each has its page's reference and its metric)",
                        INTERVAL.as_secs()
                    ),
                    Summary::Ended {
                        code,
                        app,
                        total,
                        lasted,
                    } => tracing::info!(
                        code,
                        app = app.as_deref(),
                        total,
                        lasted_seconds = lasted.as_secs(),
                        "no request failed with {code} for {} s: it has ended, after {total} failure(s) in {} s",
                        INTERVAL.as_secs(),
                        lasted.as_secs()
                    ),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_of_failures_is_said_once_per_interval_then_its_end() {
        let repeats = Repeats::default();
        let t0 = Instant::now();
        let app: Option<Arc<str>> = Some("numo".into());
        assert_eq!(
            repeats.note("store_unavailable", app.clone(), true, t0),
            Verdict::Log { unsaid: 0 }
        );
        for i in 1..=500u64 {
            let at = t0 + Duration::from_millis(i * 10);
            assert_eq!(
                repeats.note("store_unavailable", app.clone(), true, at),
                Verdict::Counted
            );
        }
        // Another cause is its own run.
        assert_eq!(
            repeats.note("upstream_unavailable", app.clone(), true, t0),
            Verdict::Log { unsaid: 0 }
        );
        // The interval ends: its count is said once.
        let after = t0 + INTERVAL;
        let lines = repeats.sweep(after);
        assert!(lines.contains(&Summary::More {
            code: "store_unavailable",
            app: app.clone(),
            unsaid: 500,
            server_error: true,
        }));
        assert!(repeats.sweep(after).iter().all(|l| !matches!(l, Summary::More { .. })));
        // Quiet for an interval: the end is said, once, and the run forgotten.
        let quiet = t0 + Duration::from_millis(5000) + INTERVAL * 2;
        let lines = repeats.sweep(quiet);
        assert!(
            lines.iter().any(|l| matches!(
                l,
                Summary::Ended {
                    code: "store_unavailable",
                    total: 501,
                    ..
                }
            )),
            "{lines:?}"
        );
        assert!(repeats.sweep(quiet).is_empty());
        // It starts again: the first is logged in full.
        assert_eq!(
            repeats.note("store_unavailable", app, true, quiet),
            Verdict::Log { unsaid: 0 }
        );
    }

    #[test]
    fn a_failure_after_the_interval_is_logged_with_the_count_before_it() {
        let repeats = Repeats::default();
        let t0 = Instant::now();
        repeats.note("busy", None, true, t0);
        repeats.note("busy", None, true, t0 + Duration::from_secs(1));
        repeats.note("busy", None, true, t0 + Duration::from_secs(2));
        assert_eq!(
            repeats.note("busy", None, true, t0 + INTERVAL),
            Verdict::Log { unsaid: 2 }
        );
    }

    #[test]
    fn a_flood_of_refusals_is_summed_up_as_refusals() {
        let repeats = Repeats::default();
        let t0 = Instant::now();
        repeats.note("rate_limited", None, false, t0);
        assert_eq!(repeats.note("rate_limited", None, false, t0), Verdict::Counted);
        // Counted, then (quiet as long) ended, in one sweep.
        let lines = repeats.sweep(t0 + INTERVAL);
        assert_eq!(
            lines[0],
            Summary::More {
                code: "rate_limited",
                app: None,
                unsaid: 1,
                server_error: false
            }
        );
        assert!(matches!(lines[1], Summary::Ended { total: 2, .. }), "{lines:?}");
    }
}
