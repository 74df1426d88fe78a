//! What a benchmark run produces: the `hearth-bench/1` JSON document (its schema is in
//! the [module doc of `bench`](super)) and the plain table printed on the terminal, plus
//! the machine description both carry.
//!
//! Does not: compare runs or draw charts (issue 6 continues), or colour anything.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use super::compare::Comparison;
use super::conn::StartKind;
use super::phases::{PhaseSample, PhasesReport};
use super::stats::{Summary, SummaryMs};
use super::BenchError;

/// The schema identifier every JSON file carries.
pub const SCHEMA: &str = "hearth-bench/1";

/// The host the numbers came from.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cpus: usize,
    pub model: String,
    pub kernel: String,
    pub mem_total_mb: u64,
}

impl Machine {
    /// From `/proc`; fields that cannot be read are 0 or empty.
    pub fn probe() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let model = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default();
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        let mem_total_mb = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| meminfo_kb(&m, "MemTotal"))
            .map(|kb| kb / 1024)
            .unwrap_or(0);
        Machine {
            cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
            model,
            kernel,
            mem_total_mb,
        }
    }

    /// One line for the table's header.
    pub fn line(&self) -> String {
        format!(
            "{} CPUs ({}), {} MB, kernel {}",
            self.cpus, self.model, self.mem_total_mb, self.kernel
        )
    }
}

/// A `Key:   N kB` field of `/proc/meminfo` or `/proc/PID/status`, in kB.
pub fn meminfo_kb(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        if k.trim() != key {
            return None;
        }
        v.split_whitespace().next()?.parse().ok()
    })
}

/// Counts of every start kind, by name (kinds never seen are left out).
pub fn start_kinds(tally: &[u64; 5]) -> BTreeMap<&'static str, u64> {
    StartKind::ALL
        .iter()
        .filter(|k| tally[k.index()] > 0)
        .map(|k| (k.name(), tally[k.index()]))
        .collect()
}

/// One `hearth-bench/1` document. Mode-specific parts are `None` (JSON `null`) elsewhere.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub schema: &'static str,
    pub mode: &'static str,
    pub function: String,
    pub started_at: String,
    pub machine: Machine,
    pub params: Params,
    pub runs: u64,
    pub ok: u64,
    pub errors: u64,
    pub throttles: u64,
    pub wall_s: f64,
    pub latency_ms: Option<SummaryMs>,
    pub throughput_per_s: f64,
    pub start_kinds: BTreeMap<&'static str, u64>,
    pub init_duration_ms: Option<SummaryMs>,
    pub first_error: Option<String>,
    pub burst: Option<Burst>,
    pub density: Option<Density>,
    /// The cold starts among the ok runs (all of them in `cold`), broken down by
    /// `X-Hearth-Phases-Us` ([`PhasesReport`]); `null` when there was none.
    pub phases_ms: Option<PhasesReport>,
    /// What was deployed for the run (`--standalone`, `--code`); `null` for `--function`.
    pub workload: Option<Workload>,
    /// Ratios against `--compare OLD.json`.
    pub compared_with: Option<Comparison>,
    /// Why the figures may be noisy (CPU steal, spread, load); empty when none.
    pub warnings: Vec<String>,
    /// The successful invocations' latencies, sorted (for `--chart`; not in the JSON).
    #[serde(skip)]
    pub latencies_ns: Vec<u64>,
}

/// The function a run deployed for itself.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Workload {
    /// A private daemon was started for the run (`--standalone`).
    pub standalone: bool,
    /// `builtin` (the echo of `runtime`), or the `--code` path.
    pub code: String,
    pub runtime: String,
    pub handler: String,
    pub memory_mb: u64,
}

/// The options the run was made with (those that do not apply are `null`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Params {
    pub clients: Option<usize>,
    pub duration_s: Option<f64>,
    pub warmup: Option<u64>,
    pub payload_bytes: usize,
    pub start: Option<String>,
    pub count: Option<usize>,
    pub hold_ms: Option<u64>,
}

/// `burst` only.
#[derive(Debug, Clone, Serialize)]
pub struct Burst {
    /// From the barrier's release until the last of the `count` answers arrived.
    pub all_answered_ms: f64,
}

/// `density` only.
#[derive(Debug, Clone, Serialize)]
pub struct Density {
    /// Instances asked for.
    pub requested: usize,
    /// Idle instances the daemon reported more than before the run (`GET /metrics`).
    pub idle_instances: u64,
    /// Which metric counted them, e.g. `faas_instances{state="idle"}`.
    pub counted_by: String,
    pub daemon_pid: i32,
    pub daemon_rss_kb_before: u64,
    pub daemon_rss_kb_after: u64,
    pub daemon_rss_kb_per_instance: f64,
    /// `MemTotal − MemAvailable` of `/proc/meminfo`.
    pub host_used_kb_before: u64,
    pub host_used_kb_after: u64,
    pub host_kb_per_instance: f64,
    /// The other function measured at this density (`--other`).
    pub other_function: Option<String>,
    pub other_cold_ms: Option<SummaryMs>,
    pub other_cold_start_kinds: BTreeMap<&'static str, u64>,
    pub other_warm_ms: Option<SummaryMs>,
    pub other_errors: u64,
}

impl Report {
    /// A report of `mode` for `function` with the counts and samples of a run.
    pub fn new(mode: &'static str, function: &str, started_at: String, tally: &Tally) -> Report {
        let mut lat = tally.latencies_ns.clone();
        let summary = Summary::of(&mut lat);
        let mut init = tally.init_ns.clone();
        let wall_s = tally.wall_ns as f64 / 1e9;
        Report {
            schema: SCHEMA,
            mode,
            function: function.to_string(),
            started_at,
            machine: Machine::probe(),
            params: Params::default(),
            runs: tally.ok + tally.errors + tally.throttles,
            ok: tally.ok,
            errors: tally.errors,
            throttles: tally.throttles,
            wall_s,
            latency_ms: summary.map(|s| s.ms()),
            throughput_per_s: if wall_s > 0.0 {
                tally.ok as f64 / wall_s
            } else {
                0.0
            },
            start_kinds: start_kinds(&tally.kinds),
            init_duration_ms: Summary::of(&mut init).map(|s| s.ms()),
            first_error: tally.first_error.clone(),
            burst: None,
            density: None,
            phases_ms: PhasesReport::of(&tally.phases, tally.without_phases),
            workload: None,
            compared_with: None,
            warnings: Vec::new(),
            latencies_ns: lat,
        }
    }

    /// Writes the JSON document to `path`.
    pub fn write_json(&self, path: &Path) -> Result<(), BenchError> {
        let text = serde_json::to_string_pretty(self).expect("a report always serialises");
        std::fs::write(path, text + "\n").map_err(|source| BenchError::Write {
            path: path.to_path_buf(),
            source,
        })
    }

    /// The terminal table.
    pub fn table(&self) -> String {
        let mut out = format!(
            "hearth bench {} {} — {}\n",
            self.mode,
            self.function,
            self.machine.line()
        );
        out.push_str(&format!(
            "{:>7} {:>7} {:>7} {:>9} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}\n",
            "runs",
            "ok",
            "errors",
            "throttles",
            "inv/s",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "p99.9",
            "max ms",
            "mean ms",
            "stddev"
        ));
        out.push_str(&format!(
            "{:>7} {:>7} {:>7} {:>9} {:>10.0} ",
            self.runs, self.ok, self.errors, self.throttles, self.throughput_per_s
        ));
        match &self.latency_ms {
            Some(l) => out.push_str(&format!(
                "{:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3}\n",
                l.p50, l.p90, l.p99, l.p999, l.max, l.mean, l.stddev
            )),
            None => out.push_str("(no successful invocation)\n"),
        }
        let kinds: Vec<String> = self
            .start_kinds
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        out.push_str(&format!(
            "start kinds: {}; wall {:.3} s\n",
            if kinds.is_empty() {
                "none".to_string()
            } else {
                kinds.join(", ")
            },
            self.wall_s
        ));
        if let Some(i) = &self.init_duration_ms {
            out.push_str(&format!(
                "init duration (X-Hearth-Init-Duration-Us): p50 {:.3} ms, p99 {:.3} ms, n {}\n",
                i.p50, i.p99, i.n
            ));
        }
        if let Some(b) = &self.burst {
            out.push_str(&format!(
                "all {} answered after {:.3} ms\n",
                self.runs, b.all_answered_ms
            ));
        }
        if let Some(d) = &self.density {
            out.push_str(&format!(
                "density: {} idle instances (asked {}; counted by {})\n  daemon RSS {} → {} kB: {:.1} kB per instance\n  host used {} → {} kB: {:.1} kB per instance\n",
                d.idle_instances,
                d.requested,
                d.counted_by,
                d.daemon_rss_kb_before,
                d.daemon_rss_kb_after,
                d.daemon_rss_kb_per_instance,
                d.host_used_kb_before,
                d.host_used_kb_after,
                d.host_kb_per_instance
            ));
            if let Some(f) = &d.other_function {
                let row = |what: &str, s: &Option<SummaryMs>| {
                    match s {
                    Some(s) => format!(
                        "  {f} {what} at this density: p50 {:.3} ms, p90 {:.3} ms, p99 {:.3} ms, n {}\n",
                        s.p50, s.p90, s.p99, s.n
                    ),
                    None => format!("  {f} {what} at this density: no successful run\n"),
                }
                };
                out.push_str(&row("cold", &d.other_cold_ms));
                out.push_str(&row("warm", &d.other_warm_ms));
            }
        }
        if let Some(p) = &self.phases_ms {
            out.push_str(&p.table());
        }
        if let Some(w) = &self.workload {
            out.push_str(&format!(
                "workload: {} {} ({}, {} MB){}\n",
                w.runtime,
                w.code,
                w.handler,
                w.memory_mb,
                if w.standalone { ", private daemon" } else { "" }
            ));
        }
        if let Some(c) = &self.compared_with {
            out.push_str(&c.table());
        }
        if let Some(e) = &self.first_error {
            out.push_str(&format!("first error: {e}\n"));
        }
        out
    }
}

/// Counts and samples gathered by the client threads of one run, merged.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    pub latencies_ns: Vec<u64>,
    /// Successful answers with `X-Hearth-Phases-Us`, with their latency.
    pub phases: Vec<PhaseSample>,
    /// Successful answers without it, or with a header of no cold start (no sandbox and
    /// init phases).
    pub without_phases: u64,
    pub init_ns: Vec<u64>,
    pub ok: u64,
    pub errors: u64,
    pub throttles: u64,
    pub kinds: [u64; 5],
    pub first_error: Option<String>,
    /// The run's wall time: first request sent to last answer.
    pub wall_ns: u64,
}

impl Tally {
    /// Adds another thread's tally (wall time is the caller's business).
    pub fn merge(&mut self, other: Tally) {
        self.latencies_ns.extend_from_slice(&other.latencies_ns);
        self.init_ns.extend_from_slice(&other.init_ns);
        self.phases.extend_from_slice(&other.phases);
        self.without_phases += other.without_phases;
        self.ok += other.ok;
        self.errors += other.errors;
        self.throttles += other.throttles;
        for (a, b) in self.kinds.iter_mut().zip(other.kinds) {
            *a += b;
        }
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}

/// Now as `YYYY-MM-DDTHH:MM:SSZ` (UTC), without a date crate.
pub fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    utc(secs)
}

fn utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc(1_795_777_384), "2026-11-27T11:03:04Z");
    }

    #[test]
    fn meminfo_fields() {
        let text = "MemTotal:       24684092 kB\nMemFree:  100 kB\nMemAvailable:   2000 kB\n";
        assert_eq!(meminfo_kb(text, "MemTotal"), Some(24_684_092));
        assert_eq!(meminfo_kb(text, "MemAvailable"), Some(2000));
        assert_eq!(meminfo_kb(text, "Mem"), None);
        assert_eq!(meminfo_kb("VmRSS:\t   5120 kB\n", "VmRSS"), Some(5120));
    }

    #[test]
    fn reports_count_and_serialise() {
        let mut a = Tally {
            latencies_ns: vec![1_000_000, 3_000_000],
            ok: 2,
            kinds: [2, 0, 0, 0, 0],
            ..Tally::default()
        };
        a.merge(Tally {
            latencies_ns: vec![2_000_000],
            ok: 1,
            throttles: 1,
            errors: 1,
            kinds: [0, 1, 0, 0, 2],
            first_error: Some("status 500".into()),
            ..Tally::default()
        });
        a.wall_ns = 1_000_000_000;
        let r = Report::new("warm", "echo", utc(0), &a);
        assert_eq!((r.runs, r.ok, r.errors, r.throttles), (5, 3, 1, 1));
        assert_eq!(r.throughput_per_s, 3.0);
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["schema"], "hearth-bench/1");
        assert_eq!(v["latency_ms"]["p50"], 2.0);
        assert_eq!(
            v["start_kinds"],
            serde_json::json!({"warm": 2, "blank": 1, "unknown": 2})
        );
        assert!(v["burst"].is_null() && v["machine"]["cpus"].is_number());
        // No cold start, no workload, no baseline: null; no warnings: [].
        assert!(v["phases_ms"].is_null() && v["workload"].is_null());
        assert!(v["compared_with"].is_null() && v["warnings"] == serde_json::json!([]));
        assert!(v.get("latencies_ns").is_none());
        assert_eq!(r.latencies_ns, [1_000_000, 2_000_000, 3_000_000]);
        assert!(r.table().contains("first error: status 500"));
    }
}
