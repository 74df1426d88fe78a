//! Where the time of a cold start went: the daemon's `X-Hearth-Phases-Us` answer header
//! (see `crate::instance::pooled::Phases`), per run and in aggregate.
//!
//! The daemon measures five phases on its own clock, from the request's arrival to the
//! answer's last byte handed to the socket: `admission` (routing, claim, queueing),
//! `sandbox` (clone, namespaces, mounts, cgroup, seccomp, exec — or the claim of a blank
//! sandbox), `init` (runtime start-up up to its first `/next`), `handler`, `delivery`
//! (the response back to the client). `sandbox` and `init` are present only after a cold
//! start; absent, they count as 0. A sixth phase, `client`, is what the daemon cannot see:
//! the client's end-to-end latency minus the sum of the five (socket transport, request
//! writing, response reading). Hence the phases of a run add up to its end-to-end time,
//! and the means of the phases add up to the mean end-to-end time.
//!
//! Only cold starts are in the phases: a successful run whose header is missing, does not
//! parse, or has no `sandbox` and `init` (the daemon served it from a warm instance, or
//! could not time the start) is left out and counted in `excluded`.
//!
//! Does not: time anything itself.
//! Limits: a daemon phase longer than the client's whole round trip (clocks cannot
//! disagree like that on one host, but a malformed header could) makes `client` 0 for that
//! run; such runs are counted in `client_clamped`, and then the phases add up to more than
//! end-to-end.

use serde::Serialize;

use super::conn::StartKind;
use super::stats::Summary;

/// The phase names, in the order of one invocation (the header's five, then `client`).
pub const NAMES: [&str; 6] = [
    "admission",
    "sandbox",
    "init",
    "handler",
    "delivery",
    "client",
];

/// The steps inside the `sandbox` phase that `X-Hearth-Sandbox-Steps-Us` may name: a
/// spawn's (scratch … release_wait, fork … exec) or a blank's assignment (assign,
/// code_mount, fork … exec).
pub const SANDBOX_STEPS: [&str; 13] = [
    "scratch",
    "cgroup",
    "plan",
    "clone",
    "namespaces",
    "mounts",
    "release_wait",
    "assign",
    "code_mount",
    "fork",
    "privileges",
    "seccomp",
    "exec",
];

/// One `X-Hearth-Phases-Us` value, in µs.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct DaemonPhases {
    pub admission_us: f64,
    pub sandbox_us: Option<f64>,
    pub init_us: Option<f64>,
    pub handler_us: f64,
    pub delivery_us: f64,
    /// `X-Hearth-Sandbox-Steps-Us` of the same answer, in [`SANDBOX_STEPS`] order, NaN for
    /// a step it does not name.
    pub steps: Option<[f64; SANDBOX_STEPS.len()]>,
}

/// Parses `X-Hearth-Sandbox-Steps-Us` (`name=µs` pairs; unknown names and malformed
/// items ignored); `None` when no known step is in it.
pub fn parse_steps(value: &[u8]) -> Option<[f64; SANDBOX_STEPS.len()]> {
    let text = std::str::from_utf8(value).ok()?;
    let mut out = [f64::NAN; SANDBOX_STEPS.len()];
    let mut any = false;
    for item in text.split(',') {
        let Some((k, v)) = item.trim().split_once('=') else {
            continue;
        };
        let (Some(i), Ok(v)) = (
            SANDBOX_STEPS.iter().position(|s| *s == k.trim()),
            v.trim().parse::<f64>(),
        ) else {
            continue;
        };
        if v.is_finite() && v >= 0.0 {
            out[i] = v;
            any = true;
        }
    }
    any.then_some(out)
}

/// The aggregate of one sandbox step over the runs that timed it, in ms.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StepStats {
    pub name: &'static str,
    pub n: usize,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub mean: f64,
}

impl DaemonPhases {
    /// Parses `admission=…,sandbox=…,init=…,handler=…,delivery=…` (any order, blanks
    /// around items ignored, unknown keys ignored so that a newer daemon can add some);
    /// `None` unless admission, handler and delivery are there and every known value is a
    /// finite, non-negative number.
    pub fn parse(value: &[u8]) -> Option<DaemonPhases> {
        let text = std::str::from_utf8(value).ok()?;
        let (mut admission, mut handler, mut delivery) = (None, None, None);
        let mut p = DaemonPhases::default();
        for item in text.split(',') {
            let item = item.trim();
            if item.is_empty() {
                continue;
            }
            let (k, v) = item.split_once('=')?;
            let slot = match k.trim() {
                "admission" => &mut admission,
                "sandbox" => &mut p.sandbox_us,
                "init" => &mut p.init_us,
                "handler" => &mut handler,
                "delivery" => &mut delivery,
                _ => continue,
            };
            let v: f64 = v.trim().parse().ok()?;
            if !v.is_finite() || v < 0.0 {
                return None;
            }
            *slot = Some(v);
        }
        p.admission_us = admission?;
        p.handler_us = handler?;
        p.delivery_us = delivery?;
        Some(p)
    }

    /// The five daemon phases in ns, in [`NAMES`] order (absent ones 0).
    fn ns(&self) -> [u64; 5] {
        let ns = |us: f64| (us * 1000.0).round() as u64;
        [
            ns(self.admission_us),
            ns(self.sandbox_us.unwrap_or(0.0)),
            ns(self.init_us.unwrap_or(0.0)),
            ns(self.handler_us),
            ns(self.delivery_us),
        ]
    }
}

/// One successful run with the header: its end-to-end latency and the daemon's phases.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PhaseSample {
    pub end_to_end_ns: u64,
    pub daemon: DaemonPhases,
    /// The run's number among its client's timed invocations, from 1 (errors count).
    pub run: u64,
    /// `X-Hearth-Start` of the answer.
    pub start: StartKind,
}

impl PhaseSample {
    /// The six phases in ns ([`NAMES`] order) and whether `client` had to be clamped to 0.
    pub fn split(&self) -> ([u64; 6], bool) {
        let d = self.daemon.ns();
        let inside: u64 = d.iter().sum();
        let client = self.end_to_end_ns.saturating_sub(inside);
        (
            [d[0], d[1], d[2], d[3], d[4], client],
            inside > self.end_to_end_ns,
        )
    }
}

/// The aggregate of one phase, in ms.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PhaseStats {
    pub name: &'static str,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub mean: f64,
    /// mean(phase) / mean(end to end): the shares of the six add up to 1.
    pub share: f64,
}

/// One run's phases in ms (JSON `phases_ms.per_run`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PhaseRun {
    /// [`PhaseSample::run`] (not in the JSON: with several clients it is not unique).
    #[serde(skip)]
    pub run: u64,
    /// The start kind the daemon reported.
    pub start: &'static str,
    pub end_to_end: f64,
    pub admission: f64,
    pub sandbox: f64,
    pub init: f64,
    pub handler: f64,
    pub delivery: f64,
    pub client: f64,
}

/// JSON `phases_ms`: the cold-start breakdown of a run.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PhasesReport {
    /// Successful runs with a parsable header (the phases' sample count).
    pub n: usize,
    /// Successful runs not in the phases: no header, or no cold start in it.
    pub excluded: u64,
    /// Runs whose daemon phases exceeded end-to-end (`client` clamped to 0).
    pub client_clamped: usize,
    /// In [`NAMES`] order.
    pub phases: Vec<PhaseStats>,
    /// Mean end-to-end latency of these `n` runs, and the sum of the phase means (equal
    /// unless some `client` was clamped).
    pub end_to_end_mean: f64,
    pub sum_of_means: f64,
    /// Median end-to-end latency and the sum of the phase medians (close, not equal: a
    /// median of a sum is not the sum of the medians).
    pub end_to_end_p50: f64,
    pub sum_of_p50: f64,
    /// The steps inside `sandbox` (`X-Hearth-Sandbox-Steps-Us`), in [`SANDBOX_STEPS`]
    /// order, those timed in at least one run; parent and child steps overlap, so they
    /// need not add up to `sandbox`.
    pub sandbox_steps: Vec<StepStats>,
    pub per_run: Vec<PhaseRun>,
}

impl PhasesReport {
    /// The breakdown of `samples`; `None` when there are none.
    pub fn of(samples: &[PhaseSample], excluded: u64) -> Option<PhasesReport> {
        if samples.is_empty() {
            return None;
        }
        let mut columns: [Vec<u64>; 6] = Default::default();
        let mut e2e = Vec::with_capacity(samples.len());
        let mut clamped = 0;
        let ms = |ns: u64| ns as f64 / 1e6;
        let mut per_run = Vec::with_capacity(samples.len());
        for s in samples {
            let (p, c) = s.split();
            clamped += usize::from(c);
            for (col, v) in columns.iter_mut().zip(p) {
                col.push(v);
            }
            e2e.push(s.end_to_end_ns);
            per_run.push(PhaseRun {
                run: s.run,
                start: s.start.name(),
                end_to_end: ms(s.end_to_end_ns),
                admission: ms(p[0]),
                sandbox: ms(p[1]),
                init: ms(p[2]),
                handler: ms(p[3]),
                delivery: ms(p[4]),
                client: ms(p[5]),
            });
        }
        // Step values in ns (µs × 1000, rounded) per step, from the runs that sent them.
        let mut steps: Vec<Vec<u64>> = vec![Vec::new(); SANDBOX_STEPS.len()];
        for s in samples {
            for (col, v) in steps.iter_mut().zip(s.daemon.steps.iter().flatten()) {
                if v.is_finite() {
                    col.push((v * 1000.0).round() as u64);
                }
            }
        }
        let sandbox_steps = SANDBOX_STEPS
            .iter()
            .zip(steps.iter_mut())
            .filter_map(|(name, col)| {
                let st = Summary::of(col)?.ms();
                Some(StepStats {
                    name,
                    n: st.n,
                    p50: st.p50,
                    p90: st.p90,
                    p99: st.p99,
                    mean: st.mean,
                })
            })
            .collect();
        let e2e = Summary::of(&mut e2e)?.ms();
        let phases: Vec<PhaseStats> = NAMES
            .iter()
            .zip(columns.iter_mut())
            .filter_map(|(name, col)| {
                let s = Summary::of(col)?.ms();
                Some(PhaseStats {
                    name,
                    p50: s.p50,
                    p90: s.p90,
                    p99: s.p99,
                    mean: s.mean,
                    share: if e2e.mean > 0.0 {
                        s.mean / e2e.mean
                    } else {
                        0.0
                    },
                })
            })
            .collect();
        Some(PhasesReport {
            n: samples.len(),
            excluded,
            client_clamped: clamped,
            end_to_end_mean: e2e.mean,
            sum_of_means: phases.iter().map(|p| p.mean).sum(),
            end_to_end_p50: e2e.p50,
            sum_of_p50: phases.iter().map(|p| p.p50).sum(),
            phases,
            sandbox_steps,
            per_run,
        })
    }

    /// The median of phase `name` in ms (0 when unknown).
    pub fn p50(&self, name: &str) -> f64 {
        self.phases
            .iter()
            .find(|p| p.name == name)
            .map_or(0.0, |p| p.p50)
    }

    /// The table's phase block.
    pub fn table(&self) -> String {
        let mut out = format!(
            "cold-start phases (X-Hearth-Phases-Us, n {}; client = end to end - the daemon's phases)\n  {:<29} {:>9} {:>9} {:>9} {:>9} {:>6}\n",
            self.n, "phase", "p50 ms", "p90 ms", "p99 ms", "mean ms", "share"
        );
        for p in &self.phases {
            let label = match p.name {
                "client" => "client (transport)",
                other => other,
            };
            out.push_str(&format!(
                "  {:<29} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>5.1}%\n",
                label,
                p.p50,
                p.p90,
                p.p99,
                p.mean,
                p.share * 100.0
            ));
        }
        out.push_str(&format!(
            "  {:<29} {:>9.3} {:>9} {:>9} {:>9.3} (phases add up to {:.3} ms mean)\n",
            "= end to end", self.end_to_end_p50, "", "", self.end_to_end_mean, self.sum_of_means
        ));
        if !self.sandbox_steps.is_empty() {
            out.push_str(&format!(
                "  steps inside sandbox (X-Hearth-Sandbox-Steps-Us; parent and child overlap, so they need not add up)\n  {:<29} {:>9} {:>9} {:>9} {:>9} {:>6}\n",
                "step", "p50 ms", "p90 ms", "p99 ms", "mean ms", "runs"
            ));
            for st in &self.sandbox_steps {
                out.push_str(&format!(
                    "    {:<27} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>6}\n",
                    st.name, st.p50, st.p90, st.p99, st.mean, st.n
                ));
            }
        }
        if self.excluded > 0 || self.client_clamped > 0 {
            out.push_str(&format!(
                "  ({} of {} successful runs left out: no cold-start phases in the answer; {} with client time clamped to 0)\n",
                self.excluded,
                self.excluded + self.n as u64,
                self.client_clamped
            ));
        }
        out
    }
}

/// `cold --per-run`: after the table, one line per timed run `1..=runs` (one client): its
/// start kind, end-to-end time and six phases in ms; a run without cold-start phases (a
/// warm answer, an error, a throttle) gets a line saying so.
pub fn per_run_table(report: Option<&PhasesReport>, runs: u64) -> String {
    let mut out = format!(
        "per run (ms; client = end to end - the daemon's phases)\n  {:>5}  {:<11} {:>11}",
        "run", "start", "end to end"
    );
    for name in NAMES {
        out.push_str(&format!(" {name:>11}"));
    }
    out.push('\n');
    let mut rows: Vec<&PhaseRun> = report.map_or(Vec::new(), |r| r.per_run.iter().collect());
    rows.sort_by_key(|r| r.run);
    let last = rows.last().map_or(0, |r| r.run).max(runs);
    let mut rows = rows.into_iter().peekable();
    for n in 1..=last {
        let mut seen = false;
        while let Some(r) = rows.next_if(|r| r.run == n) {
            seen = true;
            out.push_str(&format!(
                "  {:>5}  {:<11} {:>11.3}",
                r.run, r.start, r.end_to_end
            ));
            for v in [
                r.admission,
                r.sandbox,
                r.init,
                r.handler,
                r.delivery,
                r.client,
            ] {
                out.push_str(&format!(" {v:>11.3}"));
            }
            out.push('\n');
        }
        if !seen {
            out.push_str(&format!(
                "  {n:>5}  (no cold-start phases: a warm answer, an error or a throttle)\n"
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sandbox_steps_parse_and_aggregate() {
        let st = parse_steps(b"clone=500.0, mounts=1000.5,bogus=3,exec=x,fork=-1").unwrap();
        let at = |n: &str| st[SANDBOX_STEPS.iter().position(|s| *s == n).unwrap()];
        assert_eq!(at("clone"), 500.0);
        assert_eq!(at("mounts"), 1000.5);
        assert!(at("exec").is_nan() && at("fork").is_nan() && at("scratch").is_nan());
        assert!(parse_steps(b"bogus=1").is_none());
        let mut samples = synthetic(4);
        samples[0].daemon.steps = Some(st);
        samples[1].daemon.steps = parse_steps(b"clone=700");
        let r = PhasesReport::of(&samples, 0).unwrap();
        let names: Vec<&str> = r.sandbox_steps.iter().map(|s| s.name).collect();
        assert_eq!(names, ["clone", "mounts"]);
        assert_eq!(r.sandbox_steps[0].n, 2);
        assert_eq!(r.sandbox_steps[0].p50, 0.5);
        assert_eq!(r.sandbox_steps[1].n, 1);
        assert!(r.table().contains("steps inside sandbox"));
    }

    #[test]
    fn headers_parse() {
        let p = DaemonPhases::parse(
            b"admission=12.5,sandbox=4100.0,init=2200.3,handler=80.0,delivery=15.1",
        )
        .unwrap();
        assert_eq!(p.admission_us, 12.5);
        assert_eq!((p.sandbox_us, p.init_us), (Some(4100.0), Some(2200.3)));
        assert_eq!((p.handler_us, p.delivery_us), (80.0, 15.1));

        // Warm: no sandbox, no init; blanks and an unknown key are fine.
        let p = DaemonPhases::parse(b" admission=3.0, handler=50.5 ,delivery=9,queue=1").unwrap();
        assert_eq!((p.sandbox_us, p.init_us), (None, None));
        assert_eq!(p.handler_us, 50.5);

        for bad in [
            &b""[..],
            b"admission=1,handler=2",
            b"admission=x,handler=1,delivery=1",
            b"admission=-1,handler=1,delivery=1",
            b"admission=inf,handler=1,delivery=1",
            b"admission,handler=1,delivery=1",
            b"\xff",
        ] {
            assert_eq!(DaemonPhases::parse(bad), None, "{bad:?}");
        }
    }

    /// Synthetic cold starts: the daemon's phases plus a client overhead that varies.
    fn synthetic(n: u64) -> Vec<PhaseSample> {
        (0..n)
            .map(|i| {
                let d = DaemonPhases {
                    admission_us: 20.0 + (i % 7) as f64,
                    sandbox_us: Some(3000.0 + (i * 37 % 500) as f64),
                    init_us: Some(2000.0 + (i * 53 % 900) as f64),
                    handler_us: 100.0 + (i % 11) as f64,
                    delivery_us: 30.0,
                    steps: None,
                };
                let inside = d.admission_us
                    + d.sandbox_us.unwrap()
                    + d.init_us.unwrap()
                    + d.handler_us
                    + d.delivery_us;
                let client_us = 150.0 + (i * 13 % 40) as f64;
                PhaseSample {
                    end_to_end_ns: ((inside + client_us) * 1000.0) as u64,
                    daemon: d,
                    run: i + 1,
                    start: StartKind::Spawn,
                }
            })
            .collect()
    }

    #[test]
    fn phases_add_up_to_end_to_end() {
        let r = PhasesReport::of(&synthetic(200), 0).unwrap();
        assert_eq!((r.n, r.client_clamped, r.phases.len()), (200, 0, 6));
        let names: Vec<_> = r.phases.iter().map(|p| p.name).collect();
        assert_eq!(names, NAMES);
        // Means are linear: they add up (to rounding); medians nearly (within 5 %).
        assert!((r.sum_of_means - r.end_to_end_mean).abs() < 1e-6 * r.end_to_end_mean);
        assert!((r.sum_of_p50 - r.end_to_end_p50).abs() <= 0.05 * r.end_to_end_p50);
        let shares: f64 = r.phases.iter().map(|p| p.share).sum();
        assert!((shares - 1.0).abs() < 1e-6, "{shares}");
        // Every run adds up exactly, and client is what the daemon did not see.
        for run in &r.per_run {
            let sum =
                run.admission + run.sandbox + run.init + run.handler + run.delivery + run.client;
            assert!((sum - run.end_to_end).abs() < 1e-6, "{run:?}");
            assert!(run.client >= 0.150 && run.client < 0.2, "{run:?}");
        }
        for p in &r.phases {
            assert!(p.p50 <= p.p90 && p.p90 <= p.p99, "{p:?}");
        }
        assert!(r.table().contains("client (transport)"));
        assert!(r.p50("sandbox") >= 3.0 && r.p50("nope") == 0.0);
    }

    #[test]
    fn a_daemon_phase_longer_than_the_round_trip_clamps_client() {
        let mut s = synthetic(3);
        s[1].end_to_end_ns = 1_000; // 1 µs: less than the daemon's phases
        let r = PhasesReport::of(&s, 2).unwrap();
        assert_eq!((r.client_clamped, r.excluded), (1, 2));
        assert_eq!(r.per_run[1].client, 0.0);
        assert!(r.sum_of_means > r.end_to_end_mean);
        assert!(PhasesReport::of(&[], 0).is_none());
    }

    #[test]
    fn per_run_lines_are_aligned_and_cover_every_run() {
        let mut s = synthetic(3);
        s.remove(1); // run 2: no cold-start phases
        let r = PhasesReport::of(&s, 1).unwrap();
        let t = per_run_table(Some(&r), 3);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 5, "{t}");
        assert!(
            lines[1].contains("end to end") && lines[1].ends_with("client"),
            "{t}"
        );
        assert!(lines[2].trim_start().starts_with("1  spawn"), "{t}");
        assert!(
            lines[3].trim_start().starts_with("2  (no cold-start"),
            "{t}"
        );
        assert!(lines[4].trim_start().starts_with("3  spawn"), "{t}");
        // Header and rows end in the same column; every figure has 3 decimals.
        assert_eq!(lines[1].len(), lines[2].len(), "{t}");
        assert_eq!(lines[2].len(), lines[4].len(), "{t}");
        let figures: Vec<&str> = lines[2].split_whitespace().skip(2).collect();
        assert_eq!(figures.len(), 7, "{t}");
        assert!(figures
            .iter()
            .all(|f| f.split_once('.').unwrap().1.len() == 3));
        let none = per_run_table(None, 2);
        assert_eq!(none.matches("no cold-start phases").count(), 2, "{none}");
    }
}
