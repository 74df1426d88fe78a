//! `hearth bench`: the load-generating engine — invocations of a deployed function against
//! a running daemon, timed, summarised, printed as a table and written as JSON.
//!
//! Modes (each `--function NAME[:QUALIFIER]`, `--socket PATH`, `--json FILE`):
//! * `warm`: `--clients N` threads, each with one keep-alive connection, invoke in a loop
//!   for `--duration S` or `--runs N` in all, after `--warmup N` untimed invocations per
//!   client; latency percentiles and throughput.
//! * `burst`: `--count N` threads, connected first, released together by a barrier, each
//!   sending one invocation; the time until all are answered, the latency distribution,
//!   throttles, the start kinds seen. Meaningful on a function with no warm instance yet.
//! * `cold`: `--runs N` sequential invocations, each with request header
//!   `X-Hearth-Start: spawn|blank|fresh` (`--start any` sends `fresh`) so the daemon starts
//!   a fresh instance for each; end-to-end latency, the start kind the daemon reports, and
//!   `X-Hearth-Init-Duration-Us` when present.
//! * `density`: `--count N` simultaneous invocations of `{"sleep_ms": HOLD}` (the static
//!   `hearth-echo` sleeps that long) so each needs its own instance; once `GET /metrics`
//!   shows them idle, the daemon's RSS and the host's used memory per instance, then cold
//!   and warm latency of `--other FUNCTION` at that density.
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
//!   "burst": {"all_answered_ms"},
//!   "density": {"requested", "idle_instances", "counted_by", "daemon_pid",
//!               "daemon_rss_kb_before", "daemon_rss_kb_after", "daemon_rss_kb_per_instance",
//!               "host_used_kb_before", "host_used_kb_after", "host_kb_per_instance",
//!               "other_function", "other_cold_ms", "other_cold_start_kinds",
//!               "other_warm_ms", "other_errors"} }
//! ```
//! `start_kinds` lists only kinds seen. Warm-up invocations are not in any figure.
//!
//! Does not (yet, issue 6): `--standalone`, temporary functions from `--code`, the phase
//! breakdown of cold starts, progress bars, noise warnings, charts, `--compare`, peers.
//! Limits: the daemon's Unix socket only (no SigV4/TCP); burst and density use one thread
//! per invocation (up to 4,096, and the daemon accepts 1,024 connections).

pub mod conn;
pub mod density;
pub mod load;
pub mod report;
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
}

/// Options of every mode.
#[derive(Debug, Clone, Args)]
pub struct Target {
    /// The function to invoke (a deployed one).
    #[arg(long, value_name = "NAME[:QUALIFIER]")]
    pub function: String,
    /// The daemon's control socket (default: --endpoint unix:PATH, $HEARTH_ENDPOINT,
    /// $HEARTH_RUN_DIR/hearth.sock, else /run/hearth/hearth.sock).
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Also write the results as JSON (schema hearth-bench/1) to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
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
    /// Another function whose cold and warm latency is measured at this density.
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

/// Runs `hearth bench`; returns the exit code: 0 when at least one invocation succeeded,
/// 1 when none did, 125 when the benchmark could not run.
pub fn run(args: BenchArgs, global: &LambdaGlobal) -> u8 {
    let target = match &args.mode {
        BenchMode::Warm(a) => &a.target,
        BenchMode::Burst(a) => &a.target,
        BenchMode::Cold(a) => &a.target,
        BenchMode::Density(a) => &a.target,
    };
    let json = target.json.clone();
    let result =
        resolve_socket(target.socket.as_ref(), global).and_then(|socket| match &args.mode {
            BenchMode::Warm(a) => load::warm(&socket, a),
            BenchMode::Burst(a) => load::burst(&socket, a),
            BenchMode::Cold(a) => load::cold(&socket, a),
            BenchMode::Density(a) => density::density(&socket, a),
        });
    let report = match result {
        Ok(r) => r,
        Err(e) => {
            eprintln!("hearth: bench: {e}");
            return ExitCode::HearthFailed as u8;
        }
    };
    print!("{}", report.table());
    if let Some(path) = &json {
        if let Err(e) = report.write_json(path) {
            eprintln!("hearth: bench: {e}");
            return ExitCode::HearthFailed as u8;
        }
    }
    if report.errors + report.throttles > 0 {
        eprintln!(
            "hearth: bench: {} errors and {} throttles among {} invocations",
            report.errors, report.throttles, report.runs
        );
    }
    if report.ok == 0 {
        1
    } else {
        0
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
