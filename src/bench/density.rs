//! `hearth bench density`: how much memory an idle instance costs, and what latency looks
//! like when many are kept.
//!
//! Method: read the daemon's `VmRSS` (`/proc/PID/status`) and the host's used memory
//! (`MemTotal − MemAvailable`, `/proc/meminfo`); send `--count` simultaneous invocations of
//! `{"sleep_ms": HOLD}` so each needs an instance of its own; poll `GET /metrics` until
//! the instance gauge (`*_instances{state="…"}`) shows them idle (and frozen, when the
//! daemon reports an `idle_frozen` state) and none busy; read both figures again and divide
//! the growth by the number of new idle instances. Then, at that density, `--other`'s cold
//! (`X-Hearth-Start: fresh`) and warm latency.
//!
//! Does not: make the function or check its Timeout exceeds `--hold-ms`; subtract the
//! page cache of the instances' scratch images (it is part of what they cost the host).
//! Limits: the metrics parser reads only gauge lines `NAME{…state="S"…} VALUE` whose name
//! ends in `instances`; states named `idle*` are summed as idle (they are disjoint states
//! of one gauge).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::load::{concurrent_once, sequential};
use super::report::{meminfo_kb, start_kinds, utc_now, Density, Params, Report};
use super::stats::Summary;
use super::{BenchError, DensityArgs};
use crate::lambda_cli::http::{send, Endpoint, Request};

/// How often `/metrics` is polled while waiting for the instances to settle.
const POLL: Duration = Duration::from_millis(250);
/// Pause after the instances are idle, before memory is read (freezing, page reclaim).
const SETTLE: Duration = Duration::from_millis(1000);

/// Instance counts by state from one `GET /metrics`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InstanceCounts {
    /// The metric they came from, e.g. `hearth_instances`.
    pub metric: String,
    pub states: BTreeMap<String, f64>,
}

impl InstanceCounts {
    /// Sum of the `idle*` states.
    pub fn idle(&self) -> f64 {
        self.states
            .iter()
            .filter(|(k, _)| k.starts_with("idle"))
            .map(|(_, v)| v)
            .sum()
    }

    /// Idle but not frozen; 0 when the daemon does not tell frozen ones apart.
    pub fn idle_thawed(&self) -> f64 {
        if self.states.contains_key("idle_frozen") {
            self.states.get("idle").copied().unwrap_or(0.0)
        } else {
            0.0
        }
    }

    pub fn state(&self, s: &str) -> f64 {
        self.states.get(s).copied().unwrap_or(0.0)
    }
}

/// The instance gauge of a Prometheus text page; a `hearth_`-prefixed metric wins over
/// others (e.g. `faas_instances`) when both are there.
pub fn parse_instances(text: &str) -> Option<InstanceCounts> {
    let mut by_metric: BTreeMap<&str, BTreeMap<String, f64>> = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((series, value)) = line.rsplit_once(char::is_whitespace) else {
            continue;
        };
        let Some((name, labels)) = series.trim().split_once('{') else {
            continue;
        };
        if !name.ends_with("instances") {
            continue;
        }
        let Some(state) = labels
            .split_once("state=\"")
            .and_then(|(_, r)| r.split_once('"'))
            .map(|(s, _)| s)
        else {
            continue;
        };
        let Ok(v) = value.trim().parse::<f64>() else {
            continue;
        };
        *by_metric
            .entry(name)
            .or_default()
            .entry(state.to_string())
            .or_default() += v;
    }
    let name = by_metric
        .keys()
        .find(|k| k.starts_with("hearth_"))
        .or_else(|| by_metric.keys().next())
        .copied()?;
    let states = by_metric.remove(name)?;
    Some(InstanceCounts {
        metric: name.to_string(),
        states,
    })
}

fn metrics(socket: &Path) -> Result<InstanceCounts, BenchError> {
    let resp = send(
        &Endpoint::Unix(socket.to_path_buf()),
        &Request {
            method: "GET",
            path: "/metrics".into(),
            ..Request::default()
        },
    )?;
    parse_instances(&String::from_utf8_lossy(&resp.body)).ok_or(BenchError::NoInstanceMetric {
        status: resp.status,
    })
}

fn read_proc(path: &Path, key: &str) -> Result<u64, BenchError> {
    let text = std::fs::read_to_string(path).map_err(|source| BenchError::Proc {
        path: path.to_path_buf(),
        source,
    })?;
    meminfo_kb(&text, key).ok_or_else(|| BenchError::Proc {
        path: path.to_path_buf(),
        source: std::io::Error::other(format!("no {key}")),
    })
}

fn daemon_rss_kb(pid: i32) -> Result<u64, BenchError> {
    read_proc(&PathBuf::from(format!("/proc/{pid}/status")), "VmRSS")
}

fn host_used_kb() -> Result<u64, BenchError> {
    let p = Path::new("/proc/meminfo");
    Ok(read_proc(p, "MemTotal")?.saturating_sub(read_proc(p, "MemAvailable")?))
}

/// The pid at the other end of the control socket (SO_PEERCRED).
fn peer_pid(socket: &Path) -> Result<i32, BenchError> {
    let err = |detail: String| BenchError::DaemonPid {
        socket: socket.to_path_buf(),
        detail,
    };
    let s = std::os::unix::net::UnixStream::connect(socket).map_err(|e| err(e.to_string()))?;
    let cred = nix::sys::socket::getsockopt(&s, nix::sys::socket::sockopt::PeerCredentials)
        .map_err(|e| err(e.to_string()))?;
    Ok(cred.pid())
}

/// `hearth bench density`.
pub fn density(socket: &Path, a: &DensityArgs) -> Result<Report, BenchError> {
    let started_at = utc_now();
    let pid = match a.daemon_pid {
        Some(p) => p,
        None => peer_pid(socket)?,
    };
    let hold_ms = a.hold_ms.unwrap_or(2000 + 40 * a.count as u64);
    let before = metrics(socket)?;
    let rss_before = daemon_rss_kb(pid)?;
    let host_before = host_used_kb()?;

    let payload = format!("{{\"sleep_ms\": {hold_ms}}}");
    let tally = concurrent_once(socket, a.target.name(), payload.as_bytes(), a.count)?;

    // Wait until the new instances are idle (and frozen, where the daemon says so) and
    // nothing is busy any more, or the timeout passes.
    let want = before.idle() + tally.ok as f64;
    let deadline = Instant::now() + Duration::from_secs(a.settle_timeout);
    let mut now = metrics(socket)?;
    while Instant::now() < deadline
        && (now.idle() < want
            || now.state("busy") > before.state("busy")
            || now.idle_thawed() > before.idle_thawed())
    {
        std::thread::sleep(POLL);
        now = metrics(socket)?;
    }
    if now.idle() < want {
        eprintln!(
            "hearth: bench: after {} s the daemon reports {} idle instances, {} expected; measuring anyway",
            a.settle_timeout,
            now.idle(),
            want
        );
    }
    std::thread::sleep(SETTLE);
    let after = metrics(socket)?;
    let rss_after = daemon_rss_kb(pid)?;
    let host_after = host_used_kb()?;
    let new_idle = (after.idle() - before.idle()).max(0.0) as u64;
    let per = |b: u64, a: u64| {
        if new_idle == 0 {
            0.0
        } else {
            (a as f64 - b as f64) / new_idle as f64
        }
    };

    let mut d = Density {
        requested: a.count,
        idle_instances: new_idle,
        counted_by: format!("{}{{state=~\"idle.*\"}}", after.metric),
        daemon_pid: pid,
        daemon_rss_kb_before: rss_before,
        daemon_rss_kb_after: rss_after,
        daemon_rss_kb_per_instance: per(rss_before, rss_after),
        host_used_kb_before: host_before,
        host_used_kb_after: host_after,
        host_kb_per_instance: per(host_before, host_after),
        other_function: a.other.clone(),
        other_cold_ms: None,
        other_cold_start_kinds: BTreeMap::new(),
        other_warm_ms: None,
        other_errors: 0,
    };
    if let Some(other) = &a.other {
        let cold = sequential(
            socket,
            other,
            b"{}",
            &[("X-Hearth-Start", "fresh")],
            0,
            a.other_runs,
        )?;
        let warm = sequential(socket, other, b"{}", &[], 3, a.other_runs)?;
        d.other_cold_ms = Summary::of(&mut cold.latencies_ns.clone()).map(|s| s.ms());
        d.other_cold_start_kinds = start_kinds(&cold.kinds);
        d.other_warm_ms = Summary::of(&mut warm.latencies_ns.clone()).map(|s| s.ms());
        d.other_errors = cold.errors + cold.throttles + warm.errors + warm.throttles;
    }

    let mut r = Report::new("density", a.target.name(), started_at, &tally);
    r.params = Params {
        count: Some(a.count),
        hold_ms: Some(hold_ms),
        payload_bytes: payload.len(),
        ..Params::default()
    };
    r.density = Some(d);
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_gauges_parse() {
        let text = "# HELP faas_instances x\n# TYPE faas_instances gauge\nfaas_instances{state=\"busy\"} 2\nfaas_instances{state=\"idle\"} 7\nfaas_invocations_total 9\n";
        let c = parse_instances(text).unwrap();
        assert_eq!(c.metric, "faas_instances");
        assert_eq!(
            (c.state("busy"), c.idle(), c.idle_thawed()),
            (2.0, 7.0, 0.0)
        );

        let text = "faas_instances{state=\"idle\"} 1\nhearth_instances{state=\"idle_frozen\"} 998\nhearth_instances{function=\"f\",state=\"idle\"} 2\nhearth_instances{state=\"busy\"} 0\nhearth_instances{state=\"blank\"} 4\n";
        let c = parse_instances(text).unwrap();
        assert_eq!(c.metric, "hearth_instances");
        assert_eq!(
            (c.idle(), c.idle_thawed(), c.state("blank")),
            (1000.0, 2.0, 4.0)
        );

        assert!(parse_instances("faas_invocations_total 3\n").is_none());
        assert!(parse_instances("").is_none());
    }
}
