//! The `warm`, `burst` and `cold` modes, and the two load shapes they (and `density`)
//! are built from: many clients in lockstep ([`concurrent_once`]) and one client in a loop
//! ([`sequential`]).
//!
//! Threads, not an event loop: each client is a thread blocked on its own connection,
//! so one client's latency includes no other client's processing. Every thread connects
//! and warms up before a barrier releases them all; each records into its own
//! [`Tally`], merged after the threads are joined.
//!
//! Does not: pace requests (closed loop: a client sends its next request when the
//! previous one is answered), or retry throttled ones.

use std::path::Path;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use super::conn::{invoke_path, Conn, Outcome, Reply, StartKind};
use super::phases::PhaseSample;
use super::report::{utc_now, Burst, Params, Report, Tally};
use super::{BenchError, BurstArgs, ColdArgs, StartPath, WarmArgs};

/// Stack of a client thread: it holds a few buffers on the heap and little else.
const CLIENT_STACK: usize = 256 * 1024;
/// Default measuring time of `warm` without `--runs`.
pub const DEFAULT_DURATION_S: f64 = 10.0;
/// Samples reserved per client up front in `--duration` mode (grows if exceeded).
const RESERVE_PER_CLIENT: usize = 1 << 16;

impl Tally {
    /// Counts one answer; `ns` is its latency (kept only for ok answers).
    pub fn record(&mut self, reply: &Reply, ns: u64, conn: &Conn) {
        // Every timed invocation of this client counts once in one of the three.
        let run = self.ok + self.errors + self.throttles + 1;
        self.kinds[reply.start.index()] += 1;
        if let Some(us) = reply.init_us {
            self.init_ns.push(us * 1000);
        }
        match reply.outcome() {
            Outcome::Ok => {
                self.ok += 1;
                self.latencies_ns.push(ns);
                // Only cold starts' phases are kept: a warm run of millions of
                // invocations must not grow a second sample vector.
                match reply.phases {
                    Some(daemon) if daemon.sandbox_us.is_some() => self.phases.push(PhaseSample {
                        end_to_end_ns: ns,
                        daemon,
                        run,
                        start: reply.start,
                    }),
                    _ => self.without_phases += 1,
                }
            }
            Outcome::Throttled => self.throttles += 1,
            Outcome::Error => {
                self.errors += 1;
                if self.first_error.is_none() {
                    self.first_error = Some(format!(
                        "status {}{}: {}",
                        reply.status,
                        if reply.function_error {
                            " (function error)"
                        } else {
                            ""
                        },
                        conn.last_error_body.as_deref().unwrap_or("")
                    ));
                }
            }
        }
    }

    /// Counts a request that got no answer.
    pub fn record_failure(&mut self, e: &BenchError) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(e.to_string());
        }
    }
}

/// Raises the soft open-files limit to the hard one when `fds` descriptors are needed.
fn ensure_fds(fds: u64) {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        if soft < fds {
            let _ = setrlimit(Resource::RLIMIT_NOFILE, hard.min(fds.max(soft)), hard);
        }
    }
}

/// What each client of a concurrent run does after the barrier.
#[derive(Debug, Clone, Copy)]
enum Work {
    /// Exactly this many invocations.
    Runs(u64),
    /// Invocations until this long after the release.
    For(Duration),
}

/// The merged tally of `clients` clients; `wall_ns` spans the first client's first request
/// to the last client's last answer.
fn clients_run(
    socket: &Path,
    path: &str,
    payload: &[u8],
    headers: &[(&str, &str)],
    warmup: u64,
    work: &[Work],
) -> Result<Tally, BenchError> {
    let n = work.len();
    ensure_fds(n as u64 + 64);
    let barrier = Arc::new(Barrier::new(n));
    let origin = Instant::now();
    let mut handles = Vec::with_capacity(n);
    for (index, &w) in work.iter().enumerate() {
        let shared = Arc::clone(&barrier);
        let socket = socket.to_path_buf();
        let path = path.to_string();
        let payload = payload.to_vec();
        let headers: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let spawned = std::thread::Builder::new()
            .name(format!("bench-client-{index}"))
            .stack_size(CLIENT_STACK)
            .spawn(move || {
                let hdrs: Vec<(&str, &str)> = headers
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                client(&socket, &path, &payload, &hdrs, warmup, w, &shared, origin)
            });
        match spawned {
            Ok(h) => handles.push(h),
            Err(source) => {
                // The spawned ones wait at the barrier for ever otherwise: let them go
                // by making up the missing parties, then report.
                let missing = n - handles.len();
                let fill: Vec<_> = (0..missing)
                    .map(|_| {
                        let b = Arc::clone(&barrier);
                        std::thread::spawn(move || {
                            b.wait();
                        })
                    })
                    .collect();
                for h in fill {
                    let _ = h.join();
                }
                for h in handles {
                    let _ = h.join();
                }
                return Err(BenchError::Thread { index, source });
            }
        }
    }
    let mut tally = Tally::default();
    let (mut first, mut last) = (u64::MAX, 0u64);
    let mut connect_error = None;
    for h in handles {
        match h.join().expect("a client thread panicked") {
            Ok((t, start, end)) => {
                first = first.min(start);
                last = last.max(end);
                tally.merge(t);
            }
            Err(e) => connect_error = connect_error.or(Some(e)),
        }
    }
    if let Some(e) = connect_error {
        return Err(e);
    }
    tally.wall_ns = last.saturating_sub(first);
    Ok(tally)
}

/// One client: connect, warm up, wait for the others, work. Returns its tally and the
/// first send and last answer in ns since `origin`.
#[allow(clippy::too_many_arguments)]
fn client(
    socket: &Path,
    path: &str,
    payload: &[u8],
    headers: &[(&str, &str)],
    warmup: u64,
    work: Work,
    barrier: &Barrier,
    origin: Instant,
) -> Result<(Tally, u64, u64), BenchError> {
    let opened = Conn::open(socket, path, payload, headers).and_then(|mut c| {
        for _ in 0..warmup {
            c.invoke()?;
        }
        Ok(c)
    });
    // Always reach the barrier, even after a failure, so the others are released.
    barrier.wait();
    let mut conn = opened?;
    let mut tally = Tally {
        latencies_ns: Vec::with_capacity(match work {
            Work::Runs(n) => n as usize,
            Work::For(_) => RESERVE_PER_CLIENT,
        }),
        ..Tally::default()
    };
    let start = Instant::now();
    let deadline = match work {
        Work::For(d) => Some(start + d),
        Work::Runs(_) => None,
    };
    let mut end = start;
    let mut done = 0u64;
    loop {
        match (work, deadline) {
            (Work::Runs(n), _) if done >= n => break,
            (_, Some(d)) if end >= d => break,
            _ => {}
        }
        let t0 = Instant::now();
        let got = conn.invoke();
        end = Instant::now();
        done += 1;
        super::progress::tick();
        match got {
            Ok(reply) => tally.record(&reply, (end - t0).as_nanos() as u64, &conn),
            Err(e @ BenchError::Connect { .. }) => {
                // The daemon is gone: stop instead of spinning on refusals.
                tally.record_failure(&e);
                break;
            }
            Err(e) => tally.record_failure(&e),
        }
    }
    let ns = |t: Instant| (t - origin).as_nanos() as u64;
    Ok((tally, ns(start), ns(end)))
}

/// `n` clients, one invocation each, released together (burst and density).
pub fn concurrent_once(
    socket: &Path,
    function: &str,
    payload: &[u8],
    n: usize,
) -> Result<Tally, BenchError> {
    clients_run(
        socket,
        &invoke_path(function),
        payload,
        &[],
        0,
        &vec![Work::Runs(1); n],
    )
}

/// One client, `warmup` untimed then `runs` timed invocations with `headers`.
pub fn sequential(
    socket: &Path,
    function: &str,
    payload: &[u8],
    headers: &[(&str, &str)],
    warmup: u64,
    runs: u64,
) -> Result<Tally, BenchError> {
    clients_run(
        socket,
        &invoke_path(function),
        payload,
        headers,
        warmup,
        &[Work::Runs(runs)],
    )
}

/// `hearth bench warm`.
pub fn warm(socket: &Path, a: &WarmArgs) -> Result<Report, BenchError> {
    let started_at = utc_now();
    let work: Vec<Work> = match a.runs {
        Some(runs) => {
            let c = a.clients as u64;
            (0..c)
                .map(|i| Work::Runs(runs / c + u64::from(i < runs % c)))
                .collect()
        }
        None => {
            let d = Duration::from_secs_f64(a.duration.unwrap_or(DEFAULT_DURATION_S));
            vec![Work::For(d); a.clients]
        }
    };
    let tally = clients_run(
        socket,
        &invoke_path(a.target.name()),
        a.payload.as_bytes(),
        &[],
        a.warmup,
        &work,
    )?;
    let mut r = Report::new("warm", a.target.name(), started_at, &tally);
    r.params = Params {
        clients: Some(a.clients),
        duration_s: match a.runs {
            Some(_) => None,
            None => Some(a.duration.unwrap_or(DEFAULT_DURATION_S)),
        },
        warmup: Some(a.warmup),
        payload_bytes: a.payload.len(),
        ..Params::default()
    };
    Ok(r)
}

/// `hearth bench burst`.
pub fn burst(socket: &Path, a: &BurstArgs) -> Result<Report, BenchError> {
    let started_at = utc_now();
    let tally = concurrent_once(socket, a.target.name(), a.payload.as_bytes(), a.count)?;
    let mut r = Report::new("burst", a.target.name(), started_at, &tally);
    r.params = Params {
        count: Some(a.count),
        payload_bytes: a.payload.len(),
        ..Params::default()
    };
    r.burst = Some(Burst {
        all_answered_ms: tally.wall_ns as f64 / 1e6,
    });
    Ok(r)
}

/// `hearth bench cold`.
pub fn cold(socket: &Path, a: &ColdArgs) -> Result<Report, BenchError> {
    let started_at = utc_now();
    let tally = sequential(
        socket,
        a.target.name(),
        a.payload.as_bytes(),
        &[("X-Hearth-Start", a.start.header())],
        a.warmup,
        a.runs,
    )?;
    // A daemon that ignores X-Hearth-Start answers from warm instances: say so rather
    // than let warm figures pass for cold ones.
    let fresh = match a.start {
        StartPath::Spawn => tally.kinds[StartKind::Spawn.index()],
        StartPath::Blank => tally.kinds[StartKind::Blank.index()],
        StartPath::Any => {
            tally.kinds[StartKind::Spawn.index()] + tally.kinds[StartKind::Blank.index()]
        }
    };
    let answered: u64 = tally.kinds.iter().sum();
    if fresh < answered {
        eprintln!(
            "hearth: bench: warning: asked for {} starts, but only {fresh} of {answered} answers say so (X-Hearth-Start: {})",
            a.start.name(),
            StartKind::ALL
                .iter()
                .filter(|k| tally.kinds[k.index()] > 0)
                .map(|k| format!("{} {}", k.name(), tally.kinds[k.index()]))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let mut r = Report::new("cold", a.target.name(), started_at, &tally);
    r.params = Params {
        warmup: Some(a.warmup),
        payload_bytes: a.payload.len(),
        start: Some(a.start.name().to_string()),
        ..Params::default()
    };
    Ok(r)
}
