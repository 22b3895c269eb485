//! Counters and histograms for `/metrics`, in the Prometheus text format. They outlive config
//! reloads (a counter that restarts at zero would look like a process restart). Logins and
//! reloads are counted under a short mutex (a login costs a millisecond of CPU, the lock some
//! nanoseconds); the proxy path, taken by every request of a headers-mode app, uses per-app
//! atomics handed out once per config.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Upper bounds (seconds) of the latency histograms' buckets.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// A latency histogram with fixed buckets, lock-free.
#[derive(Default)]
pub struct Histogram {
    /// One per bound, and a last one for what is above every bound.
    buckets: [AtomicU64; BUCKETS.len() + 1],
    sum_micros: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        let i = BUCKETS.iter().position(|b| secs <= *b).unwrap_or(BUCKETS.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(
            u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0;
        for (bound, bucket) in BUCKETS.iter().zip(&self.buckets) {
            cumulative += bucket.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {cumulative}");
        }
        // +Inf and the count are the same sum, so they can never disagree with the buckets.
        let count = cumulative + self.buckets[BUCKETS.len()].load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {count}");
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum{braces} {sum}");
        let _ = writeln!(out, "{name}_count{braces} {count}");
    }
}

/// What the proxy counts for one app.
#[derive(Default)]
pub struct ProxyStats {
    /// By status class: 1xx..5xx (index 0..4).
    pub responses: [AtomicU64; 5],
    pub duration: Histogram,
}

impl ProxyStats {
    pub fn record(&self, status: u16, elapsed: Duration) {
        let class = usize::from((status / 100).clamp(1, 5)) - 1;
        self.responses[class].fetch_add(1, Ordering::Relaxed);
        self.duration.observe(elapsed);
    }
}

#[derive(Default)]
pub struct Metrics {
    /// (app, result, error code) -> logins.
    logins: Mutex<BTreeMap<(String, &'static str, &'static str), u64>>,
    pub acs_duration: Histogram,
    /// result -> reloads.
    reloads: Mutex<BTreeMap<&'static str, u64>>,
    /// store ("state" or "links") -> failed operations seen by requests.
    store_errors: Mutex<BTreeMap<&'static str, u64>>,
    proxy: Mutex<BTreeMap<String, Arc<ProxyStats>>>,
    /// federation -> validUntil of its metadata in force (unix seconds); `None`: the metadata
    /// in force has none (it does not expire: `+Inf`, so that the series exists).
    metadata_valid_until: Mutex<BTreeMap<String, Option<i64>>>,
    /// HTTP status (401, 403, 429) -> refusals on the admin listener.
    admin_refused: Mutex<BTreeMap<u16, u64>>,
    /// app -> links made that joined a student's and an employee's ids under one person code.
    mixed_affiliations: Mutex<BTreeMap<String, u64>>,
    /// (app config name or "-", error code) -> requests answered with an error page.
    refused: Mutex<BTreeMap<(String, &'static str), u64>>,
    /// result -> metadata fetches from URLs.
    metadata_refreshes: Mutex<BTreeMap<&'static str, u64>>,
    /// reason ("global", "per_client") -> connections closed at accept.
    connections_refused: Mutex<BTreeMap<&'static str, u64>>,
    /// phase ("tls_handshake", "request_body", "response_write") -> connections cut off.
    connection_timeouts: Mutex<BTreeMap<&'static str, u64>>,
    /// (app, result: "ok" or the OAuth error) -> token requests.
    oidc_tokens: Mutex<BTreeMap<(String, &'static str), u64>>,
    /// (app, result: "ok" or "error") -> Back-Channel Logout deliveries.
    oidc_backchannel: Mutex<BTreeMap<(String, &'static str), u64>>,
    /// (app, BRIN) -> logins refused because the school has not activated the app: which
    /// schools are trying. At most [`MAX_SCHOOL_SERIES`] series; the rest count as "other".
    schools_not_activated: Mutex<BTreeMap<(String, String), u64>>,
    /// What became of failed logins' reports (shared with the error layer).
    pub reports: Arc<crate::store::reports::ReportCounts>,
    /// Failures of one cause, logged once per interval (the error layer's log lines).
    pub repeats: Arc<super::repeats::Repeats>,
}

/// The most (app, school) series of `entree_bridge_school_not_activated_total`: BRINs come
/// from signed assertions, so they are real schools, but a bound keeps `/metrics` small.
pub const MAX_SCHOOL_SERIES: usize = 2000;

fn bump<K: Ord>(map: &Mutex<BTreeMap<K, u64>>, key: K) {
    if let Ok(mut m) = map.lock() {
        *m.entry(key).or_insert(0) += 1;
    }
}

/// A label value as Prometheus text needs it.
fn label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

impl Metrics {
    /// A login that ended: `error` is the error code of a rejection, `""` for success.
    pub fn login(&self, app: &str, result: &'static str, error: &'static str) {
        bump(&self.logins, (app.to_string(), result, error));
    }

    pub fn reload(&self, ok: bool) {
        bump(&self.reloads, if ok { "ok" } else { "error" });
    }

    pub fn metadata_refresh(&self, ok: bool) {
        bump(&self.metadata_refreshes, if ok { "ok" } else { "error" });
    }

    /// A connection closed at accept: `reason` is "global" or "per_client".
    pub fn connection_refused(&self, reason: &'static str) {
        bump(&self.connections_refused, reason);
    }

    /// A connection cut off at a deadline: "tls_handshake", "request_body", "response_write".
    pub fn connection_timeout(&self, phase: &'static str) {
        bump(&self.connection_timeouts, phase);
    }

    /// A token request that ended: `result` is "ok" or its OAuth error code.
    pub fn oidc_token(&self, app: &str, result: &'static str) {
        bump(&self.oidc_tokens, (app.to_string(), result));
    }

    /// A Back-Channel Logout delivery: "ok", or "error" (no 2xx in time).
    pub fn oidc_backchannel(&self, app: &str, result: &'static str) {
        bump(&self.oidc_backchannel, (app.to_string(), result));
    }

    /// A login refused because `school` has not activated `app`.
    pub fn school_not_activated(&self, app: &str, school: &str) {
        if let Ok(mut m) = self.schools_not_activated.lock() {
            let key = (app.to_string(), school.to_string());
            let key = if m.contains_key(&key) || m.len() < MAX_SCHOOL_SERIES {
                key
            } else {
                (app.to_string(), "other".to_string())
            };
            *m.entry(key).or_insert(0) += 1;
        }
    }

    /// A request the admin listener refused with `status` (401, 403 or 429).
    pub fn admin_refused(&self, status: u16) {
        bump(&self.admin_refused, status);
    }

    /// A link made (`person.mixed_affiliations = "warn"`) that joined another kind of
    /// person's federated ids under its person code.
    pub fn mixed_affiliations(&self, app: &str) {
        bump(&self.mixed_affiliations, app.to_string());
    }

    /// A request answered with the error page of `code`, for `app` (its config name; `None`:
    /// no app's address, counted as "-" so that made-up names add no series).
    pub fn refused(&self, app: Option<&str>, code: &'static str) {
        bump(&self.refused, (app.unwrap_or("-").to_string(), code));
    }

    pub fn store_error(&self, store: &'static str) {
        bump(&self.store_errors, store);
    }

    /// The proxy counters of `app`, the same ones across reloads.
    pub fn proxy_stats(&self, app: &str) -> Arc<ProxyStats> {
        match self.proxy.lock() {
            Ok(mut m) => m.entry(app.to_string()).or_default().clone(),
            Err(_) => Arc::new(ProxyStats::default()),
        }
    }

    /// Forgets the federations that are no longer configured (after a reload).
    pub fn retain_federations(&self, names: &[&str]) {
        if let Ok(mut m) = self.metadata_valid_until.lock() {
            m.retain(|k, _| names.contains(&k.as_str()));
        }
    }

    /// A federation without metadata in force: no series.
    pub fn forget_metadata(&self, federation: &str) {
        if let Ok(mut m) = self.metadata_valid_until.lock() {
            m.remove(federation);
        }
    }

    /// The validUntil of the metadata in force; `None`: it has none (`+Inf`).
    pub fn set_metadata_valid_until(&self, federation: &str, unix_seconds: Option<i64>) {
        if let Ok(mut m) = self.metadata_valid_until.lock() {
            m.insert(federation.to_string(), unix_seconds);
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        out.push_str("# HELP entree_bridge_build_info The version of the bridge that answers (always 1).\n");
        out.push_str("# TYPE entree_bridge_build_info gauge\n");
        let _ = writeln!(
            out,
            "entree_bridge_build_info{{version=\"{}\",demo=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION"),
            cfg!(feature = "demo")
        );
        out.push_str("# HELP entree_bridge_admin_refusals_total Requests the admin listener refused: 401 (no or a wrong token), 403 (a cross-site or CSRF-less form), 429 (too many failed tokens or requests from one address).\n");
        out.push_str("# TYPE entree_bridge_admin_refusals_total counter\n");
        if let Ok(m) = self.admin_refused.lock() {
            for status in [401u16, 403, 429] {
                let n = m.get(&status).copied().unwrap_or(0);
                let _ = writeln!(out, "entree_bridge_admin_refusals_total{{status=\"{status}\"}} {n}");
            }
        }
        out.push_str("# HELP entree_bridge_links_mixed_affiliations_total Links made that joined a student's and an employee's federated ids under one person code (person.mixed_affiliations = \"warn\"; refused ones are requests_refused_total{code=\"link_affiliation_mismatch\"}).\n");
        out.push_str("# TYPE entree_bridge_links_mixed_affiliations_total counter\n");
        if let Ok(m) = self.mixed_affiliations.lock() {
            for (app, n) in m.iter() {
                let _ = writeln!(
                    out,
                    "entree_bridge_links_mixed_affiliations_total{{app=\"{}\"}} {n}",
                    label(app)
                );
            }
        }
        out.push_str("# HELP entree_bridge_requests_refused_total Requests answered with an error page, by app (\"-\": no app's address) and error code.\n");
        out.push_str("# TYPE entree_bridge_requests_refused_total counter\n");
        if let Ok(m) = self.refused.lock() {
            for ((app, code), n) in m.iter() {
                let _ = writeln!(
                    out,
                    "entree_bridge_requests_refused_total{{app=\"{}\",code=\"{code}\"}} {n}",
                    label(app)
                );
            }
        }
        out.push_str("# HELP entree_bridge_logins_total Logins that reached the ACS or link completion, by outcome.\n");
        out.push_str("# TYPE entree_bridge_logins_total counter\n");
        if let Ok(m) = self.logins.lock() {
            for ((app, result, error), n) in m.iter() {
                let _ = writeln!(
                    out,
                    "entree_bridge_logins_total{{app=\"{}\",result=\"{result}\",error=\"{error}\"}} {n}",
                    label(app)
                );
            }
        }
        out.push_str("# HELP entree_bridge_school_not_activated_total Logins refused because the school has not activated the app, by app and BRIN.\n");
        out.push_str("# TYPE entree_bridge_school_not_activated_total counter\n");
        if let Ok(m) = self.schools_not_activated.lock() {
            for ((app, school), n) in m.iter() {
                let _ = writeln!(
                    out,
                    "entree_bridge_school_not_activated_total{{app=\"{}\",school=\"{}\"}} {n}",
                    label(app),
                    label(school)
                );
            }
        }
        out.push_str("# HELP entree_bridge_failure_reports_total Failed logins' reports for the support desk: kept, over_budget (support.max_reports_per_hour), failed (the database did not take it), purged (past support.retention).\n");
        out.push_str("# TYPE entree_bridge_failure_reports_total counter\n");
        for (outcome, n) in [
            ("kept", &self.reports.kept),
            ("over_budget", &self.reports.over_budget),
            ("failed", &self.reports.failed),
            ("purged", &self.reports.purged),
        ] {
            let _ = writeln!(
                out,
                "entree_bridge_failure_reports_total{{outcome=\"{outcome}\"}} {}",
                n.load(Ordering::Relaxed)
            );
        }
        out.push_str("# HELP entree_bridge_oidc_tokens_total OpenID Connect token requests, by app and result (ok or the OAuth error).\n");
        out.push_str("# TYPE entree_bridge_oidc_tokens_total counter\n");
        if let Ok(m) = self.oidc_tokens.lock() {
            for ((app, result), n) in m.iter() {
                let _ = writeln!(
                    out,
                    "entree_bridge_oidc_tokens_total{{app=\"{}\",result=\"{result}\"}} {n}",
                    label(app)
                );
            }
        }
        out.push_str("# HELP entree_bridge_oidc_backchannel_logout_total Back-Channel Logout tokens POSTed to apps, by result.\n");
        out.push_str("# TYPE entree_bridge_oidc_backchannel_logout_total counter\n");
        if let Ok(m) = self.oidc_backchannel.lock() {
            for ((app, result), n) in m.iter() {
                let _ = writeln!(
                    out,
                    "entree_bridge_oidc_backchannel_logout_total{{app=\"{}\",result=\"{result}\"}} {n}",
                    label(app)
                );
            }
        }
        out.push_str("# HELP entree_bridge_acs_duration_seconds Time the ACS took to answer.\n");
        out.push_str("# TYPE entree_bridge_acs_duration_seconds histogram\n");
        self.acs_duration
            .render(&mut out, "entree_bridge_acs_duration_seconds", "");
        out.push_str("# HELP entree_bridge_config_reloads_total Config reloads, by result.\n");
        out.push_str("# TYPE entree_bridge_config_reloads_total counter\n");
        if let Ok(m) = self.reloads.lock() {
            for result in ["ok", "error"] {
                let n = m.get(result).copied().unwrap_or(0);
                let _ = writeln!(out, "entree_bridge_config_reloads_total{{result=\"{result}\"}} {n}");
            }
        }
        out.push_str("# HELP entree_bridge_store_errors_total Requests that failed on a store.\n");
        out.push_str("# TYPE entree_bridge_store_errors_total counter\n");
        if let Ok(m) = self.store_errors.lock() {
            for store in ["state", "links"] {
                let n = m.get(store).copied().unwrap_or(0);
                let _ = writeln!(out, "entree_bridge_store_errors_total{{store=\"{store}\"}} {n}");
            }
        }
        out.push_str("# HELP entree_bridge_metadata_valid_until_seconds validUntil of each federation's IdP metadata in force (unix time).\n");
        out.push_str("# TYPE entree_bridge_metadata_valid_until_seconds gauge\n");
        if let Ok(m) = self.metadata_valid_until.lock() {
            for (federation, t) in m.iter() {
                let t = t.map_or_else(|| "+Inf".to_string(), |t| t.to_string());
                let _ = writeln!(
                    out,
                    "entree_bridge_metadata_valid_until_seconds{{federation=\"{}\"}} {t}",
                    label(federation)
                );
            }
        }
        out.push_str("# HELP entree_bridge_metadata_refreshes_total Fetches of IdP metadata from URLs, by result.\n");
        out.push_str("# TYPE entree_bridge_metadata_refreshes_total counter\n");
        if let Ok(m) = self.metadata_refreshes.lock() {
            for result in ["ok", "error"] {
                let n = m.get(result).copied().unwrap_or(0);
                let _ = writeln!(out, "entree_bridge_metadata_refreshes_total{{result=\"{result}\"}} {n}");
            }
        }
        out.push_str(
            "# HELP entree_bridge_connections_refused_total Connections closed at accept, by the cap that was full.\n",
        );
        out.push_str("# TYPE entree_bridge_connections_refused_total counter\n");
        if let Ok(m) = self.connections_refused.lock() {
            for reason in ["global", "per_client"] {
                let n = m.get(reason).copied().unwrap_or(0);
                let _ = writeln!(
                    out,
                    "entree_bridge_connections_refused_total{{reason=\"{reason}\"}} {n}"
                );
            }
        }
        out.push_str("# HELP entree_bridge_connection_timeouts_total Connections cut off at a deadline, by phase.\n");
        out.push_str("# TYPE entree_bridge_connection_timeouts_total counter\n");
        if let Ok(m) = self.connection_timeouts.lock() {
            for phase in ["tls_handshake", "request_body", "response_write"] {
                let n = m.get(phase).copied().unwrap_or(0);
                let _ = writeln!(out, "entree_bridge_connection_timeouts_total{{phase=\"{phase}\"}} {n}");
            }
        }
        out.push_str(
            "# HELP entree_bridge_proxy_responses_total Proxied requests of headers-mode apps, by status class.\n",
        );
        out.push_str("# TYPE entree_bridge_proxy_responses_total counter\n");
        let proxy: Vec<(String, Arc<ProxyStats>)> = self
            .proxy
            .lock()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        for (app, stats) in &proxy {
            for (i, n) in stats.responses.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "entree_bridge_proxy_responses_total{{app=\"{}\",class=\"{}xx\"}} {}",
                    label(app),
                    i + 1,
                    n.load(Ordering::Relaxed)
                );
            }
        }
        out.push_str("# HELP entree_bridge_proxy_duration_seconds Time from a proxied request to the upstream's response headers.\n");
        out.push_str("# TYPE entree_bridge_proxy_duration_seconds histogram\n");
        for (app, stats) in &proxy {
            stats.duration.render(
                &mut out,
                "entree_bridge_proxy_duration_seconds",
                &format!("app=\"{}\"", label(app)),
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_cumulative_histograms() {
        let m = Metrics::default();
        m.login("numo", "ok", "");
        m.login("numo", "rejected", "signature_invalid");
        m.login("numo", "rejected", "signature_invalid");
        m.acs_duration.observe(Duration::from_millis(3));
        m.acs_duration.observe(Duration::from_millis(30));
        m.reload(true);
        m.proxy_stats("portal").record(204, Duration::from_micros(700));
        let text = m.render();
        assert!(
            text.contains("entree_bridge_logins_total{app=\"numo\",result=\"rejected\",error=\"signature_invalid\"} 2")
        );
        assert!(text.contains("entree_bridge_logins_total{app=\"numo\",result=\"ok\",error=\"\"} 1"));
        assert!(text.contains("entree_bridge_acs_duration_seconds_bucket{le=\"0.005\"} 1"));
        assert!(text.contains("entree_bridge_acs_duration_seconds_bucket{le=\"0.05\"} 2"));
        assert!(text.contains("entree_bridge_acs_duration_seconds_count 2"));
        assert!(text.contains("entree_bridge_config_reloads_total{result=\"ok\"} 1"));
        assert!(text.contains("entree_bridge_config_reloads_total{result=\"error\"} 0"));
        assert!(text.contains("entree_bridge_proxy_responses_total{app=\"portal\",class=\"2xx\"} 1"));
        assert!(text.contains("entree_bridge_proxy_duration_seconds_bucket{app=\"portal\",le=\"0.001\"} 1"));
    }
}
