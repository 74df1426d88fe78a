//! `hearth bench`: the load-generating engine — invocations of a function against a
//! daemon, timed, summarised, printed as a table, written as JSON, drawn as a chart.
//!
//! Workload (every mode): `--function NAME[:QUALIFIER]` on the daemon at `--socket PATH`;
//! or `--standalone` (a private daemon on temporary dirs, torn down afterwards) with the
//! built-in echo of `--runtime provided|python3.11|nodejs20.x` (also what no workload
//! option at all means); or `--code DIR|ZIP
//! --runtime R [--handler H] [--memory MB]`, a temporary function deleted at the end (on
//! the private daemon with `--standalone`). See [`standalone`].
//! Output (every mode): the table; `--json FILE`; `--chart FILE.svg` ([`chart`]);
//! `--compare OLD.json` ([`compare`]); warnings on stderr when the host was noisy
//! ([`noise`]); progress on stderr while running: a line redrawn on a terminal, a plain line
//! every 10 s otherwise ([`progress`]).
//!
//! Modes:
//! * `warm`: `--clients N` threads, each with one keep-alive connection, invoke in a loop
//!   for `--duration S` or `--runs N` in all, after `--warmup N` untimed invocations per
//!   client; latency percentiles and throughput.
//! * `burst`: `--count N` threads, connected first, released together by a barrier, each
//!   sending one invocation; the time until all are answered, the latency distribution,
//!   throttles, the start kinds seen. Meaningful on a function with no warm instance yet.
//! * `cold`: `--runs N` sequential invocations, each with request header
//!   `X-Hearth-Start: spawn|blank|fresh` (`--start any` sends `fresh`) so the daemon starts
//!   a fresh instance for each; end-to-end latency, the start kind the daemon reports,
//!   `X-Hearth-Init-Duration-Us` when present, and where the time went: the phases of
//!   `X-Hearth-Phases-Us` plus the client's share, which add up to end-to-end ([`phases`]);
//!   with `--per-run` also one line per timed run.
//! * `density`: `--count N` simultaneous invocations of `{"sleep_ms": HOLD}` (the static
//!   `hearth-echo` sleeps that long) so each needs its own instance; once `GET /metrics`
//!   shows them idle, the daemon's RSS and the host's used memory per instance, then cold
//!   and warm latency of `--other FUNCTION` at that density; on a private daemon (no
//!   `--other` there) of a second built-in `provided` echo deployed for the run.
//! * `peers`: the same cold start under Hearth (spawn and blank) and under `crun`, `runc`
//!   and `bwrap`, interleaved, in one table with ratios to Hearth; always on a private
//!   daemon, with its own options, table, JSON (`mode: "peers"`, a `contenders` list) and
//!   chart ([`peers`]).
//!
//! Counting: an invocation is *ok* when the answer is 200 without `X-Amz-Function-Error`;
//! 429 is a *throttle*; anything else (other statuses, function errors, a broken
//! connection) an *error*. Only ok invocations are timed; none is silently dropped:
//! `runs = ok + errors + throttles`. Latency is monotonic wall time (`Instant`) from just
//! before the request is written to the end of the answer's body, in nanoseconds, kept per
//! client thread and merged at the end; percentiles are nearest-rank ([`stats`]). The start
//! kind comes from the response header `X-Hearth-Start` (warm|blank|spawn|provisioned),
//! `unknown` when the daemon does not send it.
//!
//! JSON (`--json FILE`), schema `hearth-bench/1`; times in milliseconds, `null` where a
//! part does not apply to the mode or nothing was measured:
//! ```text
//! { "schema": "hearth-bench/1", "mode": "warm"|"burst"|"cold"|"density",
//!   "function": "NAME[:QUALIFIER]", "started_at": "2026-11-27T11:00:00Z",
//!   "machine": {"cpus", "model", "kernel", "mem_total_mb"},
//!   "params": {"clients", "duration_s", "warmup", "payload_bytes", "start", "count", "hold_ms"},
//!   "runs", "ok", "errors", "throttles",      // runs = ok + errors + throttles
//!   "wall_s",                                   // first request sent → last answer
//!   "latency_ms": {"n", "min", "p50", "p90", "p99", "p999", "max", "mean", "stddev"},
//!   "throughput_per_s",                         // ok / wall_s
//!   "start_kinds": {"warm": n, "blank": n, "spawn": n, "provisioned": n, "unknown": n},
//!   "init_duration_ms": {…as latency_ms…},      // X-Hearth-Init-Duration-Us, when sent
//!   "first_error": "…",                         // status and body start of the first error
//!   "phases_ms": {                              // cold starts among the ok runs (any mode)
//!     "n",                                      // runs with cold-start phases
//!     "excluded",                               // ok runs without (n + excluded = ok)
//!     "client_clamped",                         // runs whose daemon phases > end-to-end
//!     "phases": [{"name", "p50", "p90", "p99", "mean", "share"}, …],
//!         // names in order: admission, sandbox, init, handler, delivery, client;
//!         // share = mean / end_to_end_mean (the six add up to 1)
//!     "end_to_end_mean", "sum_of_means",        // equal unless client_clamped > 0
//!     "end_to_end_p50", "sum_of_p50",           // close, not equal
//!     "sandbox_steps": [{"name", "n", "p50", "p90", "p99", "mean"}, …],
//!         // X-Hearth-Sandbox-Steps-Us: steps inside `sandbox` timed in n runs, in the
//!         // order scratch, cgroup, plan, clone, namespaces, mounts, release_wait,
//!         // assign, code_mount, fork, privileges, seccomp, exec; they overlap
//!     "per_run": [{"start", "end_to_end", "admission", "sandbox", "init", "handler",
//!                  "delivery", "client"}, …] },   // start: X-Hearth-Start of the run
//!   "workload": {"standalone", "code", "runtime", "handler", "memory_mb"},
//!                                               // null with --function
//!   "compared_with": {"file", "old_started_at", "p50", "p90", "p99", "throughput",
//!                     "phases_p50": [["admission", ratio], …]},   // new/old, --compare
//!   "warnings": ["…"],                          // noise: steal, spread, load; [] if none
//!   "burst": {"all_answered_ms"},
//!   "density": {"requested", "idle_instances", "counted_by", "daemon_pid",
//!               "daemon_rss_kb_before", "daemon_rss_kb_after", "daemon_rss_kb_per_instance",
//!               "host_used_kb_before", "host_used_kb_after", "host_kb_per_instance",
//!               "other_function", "other_cold_ms", "other_cold_start_kinds",
//!               "other_warm_ms", "other_errors"} }
//! ```
//! `peers` writes the same envelope (`schema`, `mode: "peers"`, `function`, `started_at`,
//! `machine`, `warnings`) with `params: {"runs", "warmup", "memory_mb", "pids", "tmp_mb",
//! "payload_bytes", "peers"}` and `contenders: [{"name", "version", "note", "error",
//! "ok", "errors", "first_error", "latency_ms", "ratio_p50", "ratio_p99",
//! "start_kinds"}, …]`: `hearth spawn` first (the base of the ratios), `error` set when a
//! contender was not measured, `start_kinds` on Hearth's rows only.
//! `start_kinds` lists only kinds seen. Warm-up invocations are not in any figure.
//! Fields are only ever added to `hearth-bench/1`; a file of another schema is refused by
//! `--compare`.
//!
//! Does not: `--start` for the density's other function, or `--compare` for `peers`.
//! Limits: the daemon's Unix socket only (no SigV4/TCP); burst and density use one thread
//! per invocation (up to 4,096, and the daemon accepts 1,024 connections); on a private
//! daemon the density's other function is always the built-in `provided` echo (`--other
//! NAME` is refused there: no such function exists on it).

pub mod chart;
pub mod compare;
pub mod conn;
pub mod density;
pub mod echo_runtime;
pub mod load;
pub mod noise;
pub mod peers;
pub mod phases;
pub mod progress;
pub mod report;
pub mod standalone;
pub mod stats;

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};

use crate::exit::ExitCode;
use crate::lambda_cli::http::{Endpoint, HttpError};
use crate::lambda_cli::LambdaGlobal;

/// Why a benchmark could not run (failed invocations are counted, not errors).
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// Nobody listens on the socket.
    #[error("cannot reach the daemon at {}: {source} (is `hearth serve` running?)", socket.display())]
    Connect {
        socket: PathBuf,
        source: std::io::Error,
    },
    /// The connection failed mid-request.
    #[error("talking to the daemon at {}: {source}", socket.display())]
    Io {
        socket: PathBuf,
        source: std::io::Error,
    },
    /// The daemon closed the connection without answering.
    #[error("the daemon at {} closed the connection without answering", socket.display())]
    Closed { socket: PathBuf },
    /// The answer is not HTTP/1.1 as the daemon writes it.
    #[error("malformed response from the daemon at {}: {detail}", socket.display())]
    Malformed { socket: PathBuf, detail: String },
    /// A control request (metrics) failed.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// `--endpoint` names a TCP listener.
    #[error("hearth bench talks to the daemon over its Unix socket; {endpoint} is not one (use --socket PATH)")]
    NotUnix { endpoint: Endpoint },
    /// The JSON file could not be written.
    #[error("writing {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A client thread could not be started.
    #[error("starting client thread {index}: {source}")]
    Thread {
        index: usize,
        source: std::io::Error,
    },
    /// Reading `/proc` for the density figures failed.
    #[error("reading {}: {source}", path.display())]
    Proc {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The daemon's pid is neither given nor learnt from the socket.
    #[error("cannot tell the daemon's pid from {} ({detail}); pass --daemon-pid PID", socket.display())]
    DaemonPid { socket: PathBuf, detail: String },
    /// `GET /metrics` has no instance-count metric.
    #[error("GET /metrics shows no `*_instances{{state=...}}` metric (status {status})")]
    NoInstanceMetric { status: u16 },
    /// The chart could not be drawn.
    #[error("drawing the chart {}: {detail}", path.display())]
    Chart { path: PathBuf, detail: String },
    /// `--compare` names a file that is not an earlier run of this mode.
    #[error("--compare {}: {detail}", path.display())]
    Compare { path: PathBuf, detail: String },
    /// The private daemon of `--standalone` could not be started or used.
    #[error("--standalone: {detail}")]
    Standalone { detail: String },
    /// The temporary function could not be made (`--code`, built-in workloads).
    #[error("deploying the benchmark function {name}: {detail}")]
    Deploy { name: String, detail: String },
    /// The options do not fit together.
    #[error("{0}")]
    Usage(String),
}

/// `hearth bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub mode: BenchMode,
}

/// The benchmark modes.
#[derive(Debug, Subcommand)]
pub enum BenchMode {
    /// Keep-alive clients invoking a warm function in a loop: latency and throughput.
    Warm(WarmArgs),
    /// N simultaneous first invocations: time until all are answered.
    Burst(BurstArgs),
    /// A fresh instance per invocation (spawned, from a blank sandbox, or either).
    Cold(ColdArgs),
    /// N idle instances: daemon and host memory per instance, latency at that density.
    Density(DensityArgs),
    /// The same cold start under Hearth, crun, runc and bwrap, in shuffled rounds: one table with
    /// ratios to Hearth (root; installs missing peers with apt-get).
    Peers(peers::PeersArgs),
}

/// Options of every mode.
#[derive(Debug, Clone, Args)]
pub struct Target {
    /// The function to invoke (a deployed one). Without it, --code; without either, the
    /// built-in echo on a private daemon (--standalone).
    #[arg(
        long,
        value_name = "NAME[:QUALIFIER]",
        conflicts_with_all = ["standalone", "code"]
    )]
    pub function: Option<String>,
    /// The daemon's control socket (default: --endpoint unix:PATH, $HEARTH_ENDPOINT,
    /// $HEARTH_RUN_DIR/hearth.sock, else /run/hearth/hearth.sock).
    #[arg(long, value_name = "PATH", conflicts_with = "standalone")]
    pub socket: Option<PathBuf>,
    /// Also write the results as JSON (schema hearth-bench/1) to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Start a private daemon on temporary dirs for the run and tear it down afterwards;
    /// without --code, deploy the built-in echo of --runtime.
    #[arg(long)]
    pub standalone: bool,
    /// Deploy this code (a directory or a zip) as a temporary function, deleted at the end.
    #[arg(long, value_name = "DIR|ZIP")]
    pub code: Option<PathBuf>,
    /// Runtime of the temporary function; the built-in echoes: provided (default),
    /// python3.11, nodejs20.x.
    #[arg(long, value_name = "RUNTIME")]
    pub runtime: Option<String>,
    /// Handler of the temporary function (--code; default bootstrap for provided*).
    #[arg(long, value_name = "HANDLER")]
    pub handler: Option<String>,
    /// Memory of the temporary function in MB (default 1769, one vCPU; density 128).
    #[arg(long, value_name = "MB", value_parser = crate::cli::parse_memory)]
    pub memory: Option<u64>,
    /// Print (and write to the JSON) the ratios new/old against an earlier --json file of
    /// the same mode.
    #[arg(long, value_name = "OLD.json")]
    pub compare: Option<PathBuf>,
    /// Draw the latency CDF (and for cold the median phases) into this SVG file.
    #[arg(long, value_name = "FILE.svg")]
    pub chart: Option<PathBuf>,
}

impl Target {
    /// The function's name (set by the time a mode runs).
    pub fn name(&self) -> &str {
        self.function.as_deref().unwrap_or("")
    }

    fn workload(&self) -> standalone::WorkloadArgs {
        standalone::WorkloadArgs {
            standalone: self.standalone,
            code: self.code.clone(),
            runtime: self.runtime.clone(),
            handler: self.handler.clone(),
            memory: self.memory,
        }
    }
}

/// Options of `hearth bench warm`.
#[derive(Debug, Args)]
pub struct WarmArgs {
    #[command(flatten)]
    pub target: Target,
    /// Concurrent keep-alive clients (one thread and connection each).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = parse_clients)]
    pub clients: usize,
    /// Measure for this many seconds (default 10 unless --runs is given).
    #[arg(long, value_name = "S", conflicts_with = "runs", value_parser = parse_duration)]
    pub duration: Option<f64>,
    /// Measure this many invocations in all, spread over the clients.
    #[arg(long, value_name = "N", value_parser = parse_runs)]
    pub runs: Option<u64>,
    /// Untimed invocations per client before measuring.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub warmup: u64,
    /// The event sent (JSON).
    #[arg(long, value_name = "JSON", default_value = "{}", value_parser = parse_payload)]
    pub payload: String,
}

/// Options of `hearth bench burst`.
#[derive(Debug, Args)]
pub struct BurstArgs {
    #[command(flatten)]
    pub target: Target,
    /// Simultaneous invocations (one thread and connection each).
    #[arg(long, value_name = "N", value_parser = parse_count)]
    pub count: usize,
    /// The event sent (JSON).
    #[arg(long, value_name = "JSON", default_value = "{}", value_parser = parse_payload)]
    pub payload: String,
}

/// How `cold` asks the daemon to start each instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StartPath {
    /// Spawn a new sandbox (`X-Hearth-Start: spawn`).
    Spawn,
    /// Take a pre-warmed blank sandbox (`X-Hearth-Start: blank`).
    Blank,
    /// Either, as the daemon chooses, but fresh (`X-Hearth-Start: fresh`).
    Any,
}

impl StartPath {
    /// The request header's value.
    pub fn header(self) -> &'static str {
        match self {
            StartPath::Spawn => "spawn",
            StartPath::Blank => "blank",
            StartPath::Any => "fresh",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            StartPath::Spawn => "spawn",
            StartPath::Blank => "blank",
            StartPath::Any => "any",
        }
    }
}

/// Options of `hearth bench cold`.
#[derive(Debug, Args)]
pub struct ColdArgs {
    #[command(flatten)]
    pub target: Target,
    /// How each fresh instance is started.
    #[arg(long, value_enum, default_value_t = StartPath::Any)]
    pub start: StartPath,
    /// Timed cold invocations.
    #[arg(long, value_name = "N", default_value_t = 100, value_parser = parse_runs)]
    pub runs: u64,
    /// Untimed cold invocations first.
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub warmup: u64,
    /// The event sent (JSON).
    #[arg(long, value_name = "JSON", default_value = "{}", value_parser = parse_payload)]
    pub payload: String,
    /// After the table, one line per timed run: its start kind, end-to-end time and
    /// phases.
    #[arg(long = "per-run")]
    pub per_run: bool,
}

/// Options of `hearth bench density`.
#[derive(Debug, Args)]
pub struct DensityArgs {
    #[command(flatten)]
    pub target: Target,
    /// Idle instances to make (simultaneous invocations of the sleeping payload).
    #[arg(long, value_name = "N", value_parser = parse_count)]
    pub count: usize,
    /// How long each of those invocations sleeps in the handler (the function's Timeout
    /// must be longer); default 2 s plus 40 ms per instance, so that all are started
    /// before the first is free again.
    #[arg(long = "hold-ms", value_name = "MS")]
    pub hold_ms: Option<u64>,
    /// The daemon's pid, for its RSS (default: the peer of the control socket).
    #[arg(long = "daemon-pid", value_name = "PID")]
    pub daemon_pid: Option<i32>,
    /// Another function whose cold and warm latency is measured at this density. Not
    /// with --standalone: there the built-in provided echo is deployed for this.
    #[arg(long, value_name = "NAME[:QUALIFIER]")]
    pub other: Option<String>,
    /// Cold and warm runs of --other.
    #[arg(long = "other-runs", value_name = "N", default_value_t = 30, value_parser = parse_runs)]
    pub other_runs: u64,
    /// Give up waiting for the instances to be reported idle after this many seconds.
    #[arg(long = "settle-timeout", value_name = "S", default_value_t = 120)]
    pub settle_timeout: u64,
}

fn parse_clients(s: &str) -> Result<usize, String> {
    crate::cli::parse_ranged(s, "clients", 1, 1024, "clients").map(|n| n as usize)
}

fn parse_count(s: &str) -> Result<usize, String> {
    crate::cli::parse_ranged(s, "count", 1, 4096, "invocations").map(|n| n as usize)
}

fn parse_runs(s: &str) -> Result<u64, String> {
    crate::cli::parse_ranged(s, "runs", 1, 100_000_000, "invocations")
}

fn parse_duration(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(d) if d.is_finite() && d > 0.0 && d <= 86_400.0 => Ok(d),
        _ => Err(format!(
            "duration must be more than 0 and at most 86400 seconds, got {s:?}"
        )),
    }
}

fn parse_payload(s: &str) -> Result<String, String> {
    serde_json::from_str::<serde::de::IgnoredAny>(s)
        .map(|_| s.to_string())
        .map_err(|e| format!("payload must be JSON: {e}"))
}

/// The socket to use: `--socket`, else the client's endpoint resolution, which must name
/// a Unix socket.
pub fn resolve_socket(
    flag: Option<&PathBuf>,
    global: &LambdaGlobal,
) -> Result<PathBuf, BenchError> {
    if let Some(p) = flag {
        return Ok(p.clone());
    }
    match Endpoint::resolve(global.endpoint.as_deref())? {
        Endpoint::Unix(p) => Ok(p),
        endpoint => Err(BenchError::NotUnix { endpoint }),
    }
}

impl BenchMode {
    pub fn name(&self) -> &'static str {
        match self {
            BenchMode::Warm(_) => "warm",
            BenchMode::Burst(_) => "burst",
            BenchMode::Cold(_) => "cold",
            BenchMode::Density(_) => "density",
            BenchMode::Peers(_) => "peers",
        }
    }

    pub fn target(&self) -> &Target {
        match self {
            BenchMode::Warm(a) => &a.target,
            BenchMode::Burst(a) => &a.target,
            BenchMode::Cold(a) => &a.target,
            BenchMode::Density(a) => &a.target,
            BenchMode::Peers(_) => {
                unreachable!("peers has no --function target; run() handles it first")
            }
        }
    }

    fn target_mut(&mut self) -> &mut Target {
        match self {
            BenchMode::Warm(a) => &mut a.target,
            BenchMode::Burst(a) => &mut a.target,
            BenchMode::Cold(a) => &mut a.target,
            BenchMode::Density(a) => &mut a.target,
            BenchMode::Peers(_) => {
                unreachable!("peers has no --function target; run() handles it first")
            }
        }
    }

    /// (invocations expected, seconds planned) for the progress line.
    fn planned(&self) -> (Option<u64>, Option<f64>) {
        match self {
            BenchMode::Warm(a) => match a.runs {
                Some(r) => (Some(r), None),
                None => (None, Some(a.duration.unwrap_or(load::DEFAULT_DURATION_S))),
            },
            BenchMode::Burst(a) => (Some(a.count as u64), None),
            BenchMode::Cold(a) => (Some(a.runs), None),
            BenchMode::Density(a) => (Some(a.count as u64), None),
            BenchMode::Peers(a) => (Some(a.runs), None),
        }
    }
}

fn bench_failed(e: &BenchError) -> u8 {
    eprintln!("hearth: bench: {e}");
    match e {
        BenchError::Usage(_) => ExitCode::Usage as u8,
        _ => ExitCode::HearthFailed as u8,
    }
}

/// Runs `hearth bench`; returns the exit code: 0 when at least one invocation succeeded,
/// 1 when none did, 2 for options that do not fit together, 125 when the benchmark could
/// not run.
pub fn run(mut args: BenchArgs, global: &LambdaGlobal) -> u8 {
    if let BenchMode::Peers(a) = &args.mode {
        return run_peers(a);
    }
    let mode = args.mode.name();
    let density = matches!(args.mode, BenchMode::Density(_));
    // The load average before this run adds to it (the private daemon, the zip).
    let noise_start = noise::Before::now();
    {
        // `hearth bench cold` alone measures something: the built-in echo, privately.
        let t = args.mode.target_mut();
        if t.function.is_none() && t.code.is_none() && !t.standalone {
            if t.socket.is_some() {
                return bench_failed(&BenchError::Usage(
                    "--socket needs --function NAME (or --code DIR|ZIP to deploy one)".into(),
                ));
            }
            eprintln!("hearth: bench: no --function: measuring the built-in echo on a private daemon (--standalone)");
            t.standalone = true;
        }
    }
    // On a private daemon, density's other function is one deployed for the run.
    let mut other_echo = false;
    if let BenchMode::Density(a) = &args.mode {
        if a.target.standalone {
            if let Some(other) = &a.other {
                return bench_failed(&BenchError::Usage(format!(
                    "--other {other}: no such function exists on the private daemon of --standalone (also what no --function or --code means); leave --other out to measure a second built-in echo, or give --function NAME --socket PATH"
                )));
            }
            other_echo = true;
        }
    }
    let target = args.mode.target().clone();
    // A wrong baseline is refused before the run, not after it.
    let baseline = match &target.compare {
        Some(p) => match compare::Baseline::load(p, mode) {
            Ok(b) => Some(b),
            Err(e) => return bench_failed(&e),
        },
        None => None,
    };
    let prepared = standalone::prepare(&target.workload(), density, other_echo, || {
        resolve_socket(target.socket.as_ref(), global)
    });
    // Dropped at the end of this function, also on every early return: the temporary
    // functions are deleted, then the private daemon stopped and its dirs removed.
    let (setup, socket) = match prepared {
        Ok(p) => p,
        Err(e) => return bench_failed(&e),
    };
    {
        let t = args.mode.target_mut();
        t.socket = Some(socket.clone());
        if let Some(f) = &setup.function {
            t.function = Some(f.name.clone());
        }
    }
    if let BenchMode::Density(a) = &mut args.mode {
        if let Some(d) = &setup.daemon {
            a.daemon_pid = a.daemon_pid.or(Some(d.pid));
        }
        if let Some(f) = &setup.other {
            a.other = Some(f.name.clone());
        }
    }
    let noise_before = noise_start.cpu_from_now();
    let (total, duration) = args.mode.planned();
    let progress = progress::Progress::start(mode, total, duration);
    let result = match &args.mode {
        BenchMode::Warm(a) => load::warm(&socket, a),
        BenchMode::Burst(a) => load::burst(&socket, a),
        BenchMode::Cold(a) => load::cold(&socket, a),
        BenchMode::Density(a) => density::density(&socket, a),
        BenchMode::Peers(_) => unreachable!("handled at the start of run()"),
    };
    drop(progress);
    let mut report = match result {
        Ok(r) => r,
        Err(e) => return bench_failed(&e),
    };
    report.workload = setup.workload.clone();
    report.warnings = noise::after(
        &noise_before,
        report.machine.cpus,
        report.latency_ms.map(|l| (l.p50, l.p99)),
    );
    if let Some(b) = &baseline {
        report.compared_with = Some(compare::compare(&report, b));
    }
    print!("{}", report.table());
    if let BenchMode::Cold(a) = &args.mode {
        if a.per_run {
            print!(
                "{}",
                phases::per_run_table(report.phases_ms.as_ref(), report.runs)
            );
        }
    }
    for w in &report.warnings {
        eprintln!("hearth: bench: warning: {w}");
    }
    if let Some(path) = &target.json {
        if let Err(e) = report.write_json(path) {
            return bench_failed(&e);
        }
    }
    if let Some(path) = &target.chart {
        if let Err(e) = chart::write(&report, path) {
            return bench_failed(&e);
        }
    }
    if report.errors + report.throttles > 0 {
        eprintln!(
            "hearth: bench: {} errors and {} throttles among {} invocations",
            report.errors, report.throttles, report.runs
        );
    }
    drop(setup);
    if report.ok == 0 {
        1
    } else {
        0
    }
}

/// `hearth bench peers`: the table, `--json`, `--chart`; exit 0 when Hearth and at least
/// one peer were measured, 1 when not.
fn run_peers(a: &peers::PeersArgs) -> u8 {
    let report = match peers::run(a) {
        Ok(r) => r,
        Err(e) => return bench_failed(&e),
    };
    print!("{}", report.table());
    for w in &report.warnings {
        eprintln!("hearth: bench: warning: {w}");
    }
    if let Some(path) = &a.json {
        if let Err(e) = report.write_json(path) {
            return bench_failed(&e);
        }
    }
    if let Some(path) = &a.chart {
        if let Err(e) = report.write_chart(path) {
            return bench_failed(&e);
        }
    }
    let measured = |r: &peers::Row| r.latency_ms.is_some();
    let hearth = report.contenders.iter().take(1).any(measured);
    let peer = report.contenders.iter().skip(2).any(measured);
    if hearth && peer {
        0
    } else {
        eprintln!(
            "hearth: bench: peers: Hearth and at least one peer must be measured for a comparison"
        );
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn option_values_are_checked() {
        assert!(parse_payload("{\"a\": 1}").is_ok());
        assert!(parse_payload("{not json").is_err());
        assert!(parse_duration("0").is_err() && parse_duration("2.5").is_ok());
        assert!(parse_count("0").is_err() && parse_count("1000").is_ok());
        assert_eq!(StartPath::Any.header(), "fresh");
    }

    #[test]
    fn the_socket_flag_wins_and_tcp_is_refused() {
        let g = LambdaGlobal {
            endpoint: Some("http://127.0.0.1:9001".into()),
            ..Default::default()
        };
        let p = PathBuf::from("/tmp/x.sock");
        assert_eq!(resolve_socket(Some(&p), &g).unwrap(), p);
        assert!(matches!(
            resolve_socket(None, &g),
            Err(BenchError::NotUnix { .. })
        ));
        let g = LambdaGlobal {
            endpoint: Some("unix:/run/h.sock".into()),
            ..Default::default()
        };
        assert_eq!(
            resolve_socket(None, &g).unwrap(),
            PathBuf::from("/run/h.sock")
        );
    }
}
