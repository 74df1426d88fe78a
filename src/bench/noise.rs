//! Warnings that a run's figures may be noisy: CPU steal during the run (from
//! `/proc/stat`), a wide spread (p99 more than [`SPREAD_LIMIT`] × p50), and a load average
//! above the CPU count when the run started (`/proc/loadavg`).
//!
//! Does not: stop or repeat a run, or look at other processes one by one.
//! Limits: steal is the whole host's (the first `cpu` line), so another tenant's steal
//! on the same VM counts; the load average trails by a minute.

/// Steal above this share of the interval's CPU time is a warning.
pub const STEAL_LIMIT: f64 = 0.02;
/// p99 / p50 above this is a warning.
pub const SPREAD_LIMIT: f64 = 10.0;

/// The aggregate `cpu` line of `/proc/stat`: (total jiffies, steal jiffies).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CpuTimes {
    pub total: u64,
    pub steal: u64,
}

impl CpuTimes {
    /// From the text of `/proc/stat`: `cpu user nice system idle iowait irq softirq steal
    /// guest guest_nice`; guest time is already in user time, so the total is the first
    /// eight fields.
    pub fn parse(stat: &str) -> Option<CpuTimes> {
        let line = stat.lines().find(|l| l.starts_with("cpu "))?;
        let v: Vec<u64> = line
            .split_whitespace()
            .skip(1)
            .take(8)
            .map(|f| f.parse().ok())
            .collect::<Option<_>>()?;
        if v.len() < 4 {
            return None;
        }
        Some(CpuTimes {
            total: v.iter().sum(),
            steal: v.get(7).copied().unwrap_or(0),
        })
    }

    pub fn read() -> Option<CpuTimes> {
        CpuTimes::parse(&std::fs::read_to_string("/proc/stat").ok()?)
    }
}

/// The steal share between two readings (`None` when no time passed).
pub fn steal_share(before: CpuTimes, after: CpuTimes) -> Option<f64> {
    let total = after.total.checked_sub(before.total)?;
    let steal = after.steal.saturating_sub(before.steal);
    (total > 0).then(|| steal as f64 / total as f64)
}

/// The 1-minute load average of `/proc/loadavg`'s text.
pub fn parse_loadavg(text: &str) -> Option<f64> {
    text.split_whitespace().next()?.parse().ok()
}

/// What is known at the start of a run.
#[derive(Debug, Clone, Copy)]
pub struct Before {
    cpu: Option<CpuTimes>,
    load: Option<f64>,
}

impl Before {
    /// The load average and CPU times now.
    pub fn now() -> Before {
        Before {
            cpu: CpuTimes::read(),
            load: std::fs::read_to_string("/proc/loadavg")
                .ok()
                .and_then(|t| parse_loadavg(&t)),
        }
    }

    /// The same load average, CPU times from now (steal is measured over the run only,
    /// not over its set-up).
    pub fn cpu_from_now(self) -> Before {
        Before {
            cpu: CpuTimes::read(),
            ..self
        }
    }
}

/// The warnings for a run: `p50`/`p99` in any unit, `cpus` the host's.
pub fn warnings(
    load: Option<f64>,
    cpus: usize,
    steal: Option<f64>,
    p50_p99: Option<(f64, f64)>,
) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(l) = load {
        if cpus > 0 && l > cpus as f64 {
            out.push(format!(
                "the load average was {l:.2} at the start, above the {cpus} CPUs: other work competes with the benchmark"
            ));
        }
    }
    if let Some(s) = steal {
        if s > STEAL_LIMIT {
            out.push(format!(
                "CPU steal was {:.1}% of the run (above {:.0}%): the hypervisor gave the CPUs to others",
                s * 100.0,
                STEAL_LIMIT * 100.0
            ));
        }
    }
    if let Some((p50, p99)) = p50_p99 {
        if p50 > 0.0 && p99 / p50 > SPREAD_LIMIT {
            out.push(format!(
                "p99 is {:.1}× p50 (above {SPREAD_LIMIT:.0}×): a wide spread; run longer or on a quieter host",
                p99 / p50
            ));
        }
    }
    out
}

/// The warnings at the end of a run that began at `before`.
pub fn after(before: &Before, cpus: usize, p50_p99: Option<(f64, f64)>) -> Vec<String> {
    let steal = match (before.cpu, CpuTimes::read()) {
        (Some(b), Some(a)) => steal_share(b, a),
        _ => None,
    };
    warnings(before.load, cpus, steal, p50_p99)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_stat_parses() {
        let text = "cpu  100 5 50 800 10 1 2 32 7 0\ncpu0 50 2 25 400 5 0 1 16 0 0\nintr 1\n";
        assert_eq!(
            CpuTimes::parse(text),
            Some(CpuTimes {
                total: 1000,
                steal: 32
            })
        );
        // Old kernels without steal: 0.
        assert_eq!(
            CpuTimes::parse("cpu 1 2 3 4\n"),
            Some(CpuTimes {
                total: 10,
                steal: 0
            })
        );
        assert_eq!(CpuTimes::parse("cpu0 1 2 3 4\n"), None);
        assert_eq!(CpuTimes::parse("cpu  1 x 3 4\n"), None);
        assert_eq!(parse_loadavg("2.50 1.00 0.50 1/100 42\n"), Some(2.5));
        assert_eq!(parse_loadavg(""), None);
    }

    #[test]
    fn steal_and_spread_and_load_warn() {
        let b = CpuTimes {
            total: 1000,
            steal: 10,
        };
        let a = CpuTimes {
            total: 2000,
            steal: 40,
        };
        assert_eq!(steal_share(b, a), Some(0.03));
        assert_eq!(steal_share(a, a), None);
        assert_eq!(steal_share(a, b), None);

        assert!(warnings(Some(1.0), 2, Some(0.01), Some((1.0, 9.0))).is_empty());
        let w = warnings(Some(3.0), 2, Some(0.03), Some((1.0, 11.0)));
        assert_eq!(w.len(), 3, "{w:?}");
        assert!(w[0].contains("load average was 3.00") && w[0].contains("2 CPUs"));
        assert!(w[1].contains("steal was 3.0%"));
        assert!(w[2].contains("11.0× p50"));
        assert!(warnings(None, 0, None, Some((0.0, 5.0))).is_empty());
    }
}
