//! Command-line front end: `hearth run` (one command in a fresh sandbox, streamed output,
//! the command's exit status) and `hearth gc` (remove leftovers and idle infrastructure);
//! the other subcommands are dispatched to their modules (`hearth bench` to [`crate::bench`]).
//!
//! Every bad input is refused with one line on stderr and exit code 2 before anything is
//! created; Hearth's own failures exit 125 (see [`crate::exit`]).

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use crate::exit::{self, ExitCode};
use crate::sandbox::reclaim::{self, Keeper};
use crate::sandbox::{
    plan, Failure, HostPaths, RootSource, SandboxError, SandboxHost, SandboxSpec, WaitEnd,
};

/// Hearth: a self-hosted, AWS-Lambda-compatible serverless runtime.
#[derive(Debug, Parser)]
#[command(name = "hearth", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub lambda: crate::lambda_cli::LambdaGlobal,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run one command in a fresh, isolated and limited sandbox; exit with its status.
    Run(RunArgs),
    /// Invoke a function through the daemon (like `aws lambda invoke`), or with --local
    /// once in a fresh sandbox of this process.
    Invoke(crate::invoke_cli::InvokeArgs),
    /// Run the daemon: the AWS-compatible Lambda API on a Unix socket (and optionally TCP
    /// with SigV4), functions in a durable registry, invocations in warm sandboxes.
    Serve(ServeArgs),
    /// Benchmark cold starts (also beside crun, runc and bwrap), warm throughput, bursts
    /// and density, against a running daemon or a private one (--standalone).
    Bench(crate::bench::BenchArgs),
    #[command(flatten)]
    Lambda(crate::lambda_cli::LambdaCommand),
    /// Remove leftovers of crashed runs, then Hearth's idle infrastructure (scratch
    /// templates, staging directory, cgroup parent) if no sandbox is running.
    Gc,
}

/// Options of `hearth run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Memory limit in MB (128..=10240); swap is off.
    #[arg(long, value_name = "MB", default_value_t = 128, value_parser = parse_memory)]
    pub memory: u64,
    /// Kill the command after this many seconds (decimals allowed); default: no limit.
    #[arg(long, value_name = "SECONDS", value_parser = parse_timeout, allow_negative_numbers = true)]
    pub timeout: Option<f64>,
    /// Size of the disk-backed /tmp in MB (512..=10240).
    #[arg(long = "tmp-size", value_name = "MB", default_value_t = 512, value_parser = parse_tmp)]
    pub tmp_size: u64,
    /// Directory mounted read-only at /var/task, the working directory.
    #[arg(long, value_name = "DIR")]
    pub code: Option<PathBuf>,
    /// A complete root directory (see rootfs/build.sh); default: read-only binds of the
    /// host's /usr, /lib*, /bin, /sbin and a minimal /etc.
    #[arg(long, value_name = "DIR")]
    pub rootfs: Option<PathBuf>,
    /// Environment variable for the command (repeatable).
    #[arg(long = "env", value_name = "K=V", value_parser = parse_env)]
    pub env: Vec<(OsString, OsString)>,
    /// Maximum number of processes and threads.
    #[arg(long, value_name = "N", default_value_t = plan::DEFAULT_PIDS, value_parser = parse_pids)]
    pub pids: u64,
    /// After the command ends, print a Lambda-style REPORT line on stderr (duration,
    /// memory size, max memory used, OOM kills).
    #[arg(long)]
    pub report: bool,
    /// Append one JSON line of set-up step timings (microseconds) to this file.
    #[arg(long = "timings-file", value_name = "FILE")]
    pub timings_file: Option<PathBuf>,
    /// Start the command the way the daemon's pre-warmed cold starts do: build a blank
    /// sandbox first (128 MB placeholder limit, no code, no command), then assign the
    /// command, its code, memory limit and environment to it.
    #[arg(long)]
    pub blank: bool,
    /// The command and its arguments (after `--`).
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

pub(crate) fn parse_ranged(
    s: &str,
    what: &str,
    lo: u64,
    hi: u64,
    unit: &str,
) -> Result<u64, String> {
    let n: u64 = s
        .parse()
        .map_err(|_| format!("{what} must be a whole number of {unit}, got {s:?}"))?;
    if n < lo || n > hi {
        return Err(format!(
            "{what} must be between {lo} and {hi} {unit}, got {n}"
        ));
    }
    Ok(n)
}

pub(crate) fn parse_memory(s: &str) -> Result<u64, String> {
    parse_ranged(s, "memory", 128, 10_240, "MB")
}

pub(crate) fn parse_tmp(s: &str) -> Result<u64, String> {
    parse_ranged(s, "tmp size", 512, 10_240, "MB")
}

fn parse_pids(s: &str) -> Result<u64, String> {
    parse_ranged(s, "pids", 1, 4_194_304, "processes")
}

fn parse_timeout(s: &str) -> Result<f64, String> {
    let t: f64 = s
        .parse()
        .map_err(|_| format!("timeout must be a number of seconds, got {s:?}"))?;
    if !t.is_finite() || t <= 0.0 || t > 1e7 {
        return Err(format!(
            "timeout must be more than 0 and at most 10000000 seconds, got {s}"
        ));
    }
    Ok(t)
}

fn parse_env(s: &str) -> Result<(OsString, OsString), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.into(), v.into())),
        _ => Err(format!(
            "environment must be K=V with a non-empty K, got {s:?}"
        )),
    }
}

/// Prints a clap error as one line (help and version as clap renders them) and returns
/// the exit code.
pub fn usage_error(e: clap::Error) -> std::process::ExitCode {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            std::process::ExitCode::SUCCESS
        }
        _ => {
            let rendered = e.render().to_string();
            let first = rendered
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("invalid usage")
                .trim_start_matches("error: ");
            let hint = if matches!(e.kind(), ErrorKind::MissingRequiredArgument)
                && rendered.contains("<CMD>")
            {
                "no command given: hearth run [OPTIONS] -- CMD [ARGS...]".to_string()
            } else if let Some(short) = shorten_invalid_value(first) {
                short
            } else {
                first.to_string()
            };
            eprintln!("hearth: {hint}");
            std::process::ExitCode::from(ExitCode::Usage as u8)
        }
    }
}

/// `invalid value 'X' for '--opt <V>': reason` → `--opt: reason` (our value parsers
/// already name the value in the reason).
fn shorten_invalid_value(line: &str) -> Option<String> {
    let rest = line.strip_prefix("invalid value '")?;
    let (_, rest) = rest.split_once("' for '")?;
    let (opt, reason) = rest.split_once("': ")?;
    let opt = opt.split_whitespace().next()?;
    Some(format!("{opt}: {reason}"))
}

/// Runs the parsed command line; returns the process exit code.
pub fn main(cli: Cli) -> u8 {
    match cli.command {
        Command::Run(args) => run(args),
        Command::Invoke(args) => crate::invoke_cli::invoke(args, &cli.lambda),
        Command::Lambda(cmd) => crate::lambda_cli::run(cmd, &cli.lambda),
        Command::Serve(args) => serve(args),
        Command::Bench(args) => crate::bench::run(args, &cli.lambda),
        Command::Gc => gc(),
    }
}

fn fail(msg: impl std::fmt::Display) -> u8 {
    eprintln!("hearth: {msg}");
    ExitCode::HearthFailed as u8
}

fn require_root(what: &str) -> Result<(), u8> {
    if nix::unistd::geteuid().is_root() {
        Ok(())
    } else {
        Err(fail(format!(
            "`hearth {what}` must run as root (it creates namespaces, cgroups and mounts)"
        )))
    }
}

fn spec_from(args: &RunArgs) -> SandboxSpec {
    let mut spec = SandboxSpec::new(args.command.clone());
    spec.memory_mb = args.memory;
    spec.tmp_mb = args.tmp_size;
    spec.pids = args.pids;
    spec.env = args.env.clone();
    spec.code = args.code.clone();
    if let Some(r) = &args.rootfs {
        spec.root = RootSource::Dir(r.clone());
    }
    spec
}

/// `hearth run`.
pub fn run(args: RunArgs) -> u8 {
    let spec = spec_from(&args);
    if let Err(e) = plan::validate(&spec) {
        eprintln!("hearth: {e}");
        return ExitCode::Usage as u8;
    }
    // Directories are checked before anything is created, so a typo costs nothing.
    for (what, dir) in [("--code", &args.code), ("--rootfs", &args.rootfs)] {
        if let Some(d) = dir {
            if !d.is_dir() {
                eprintln!("hearth: {what} {}: no such directory", d.display());
                return ExitCode::Usage as u8;
            }
        }
    }
    if let Err(code) = require_root("run") {
        return code;
    }

    let host = match SandboxHost::open(&HostPaths::from_env()) {
        Ok(h) => h,
        Err(e) => return fail(e),
    };
    host.sweep();

    // Termination signals go through a signalfd and are forwarded to the sandbox; the
    // mask is inherited by the sandbox's init, which blocks them itself anyway.
    let mut mask = SigSet::empty();
    for s in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
    ] {
        mask.add(s);
    }
    if let Err(e) = mask.thread_block() {
        return fail(format!("blocking signals: {e}"));
    }
    let signals = match SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC) {
        Ok(s) => s,
        Err(e) => return fail(format!("signalfd: {e}")),
    };

    let name = reclaim::sandbox_name("run", None);
    let keeper = match Keeper::start(&host, &name) {
        Ok(k) => k,
        Err(e) => return fail(format!("starting the cleanup keeper: {e}")),
    };
    let code = run_in(&host, &name, &spec, &args, &signals);
    keeper.dismiss();
    let _ = host.cgroups.remove_parent_if_empty();
    code
}

fn run_in(
    host: &SandboxHost,
    name: &str,
    spec: &SandboxSpec,
    args: &RunArgs,
    signals: &SignalFd,
) -> u8 {
    let created = if args.blank {
        create_from_blank(host, name, spec)
    } else {
        host.create(name, spec)
    };
    let mut sb = match created {
        Ok(sb) => sb,
        Err(SandboxError::Plan(e)) => {
            eprintln!("hearth: {e}");
            return ExitCode::Usage as u8;
        }
        Err(e) => return fail(format!("sandbox set-up failed: {e}")),
    };
    let deadline = args
        .timeout
        .map(|t| Instant::now() + Duration::from_secs_f64(t));
    let waited = sb.wait(deadline, Some(signals));
    sb.set_command_name(&spec.argv[0].to_string_lossy());
    let (status, failure, started) = (sb.status, sb.failure.clone(), sb.started);
    let torn = host.destroy(sb);
    let teardown = match torn {
        Ok(t) => t,
        Err(e) => return fail(format!("removing the sandbox: {e}")),
    };
    if let Some(path) = &args.timings_file {
        write_timings(path, &teardown.timeline.steps_us());
    }
    let stats = &teardown.stats;
    if args.report {
        let t = &teardown.timeline;
        let duration_ms = t
            .exited
            .checked_sub(t.child[crate::sandbox::sync::stamp::EXECED])
            .filter(|_| t.child[crate::sandbox::sync::stamp::EXECED] != 0)
            .map(|ns| ns as f64 / 1e6)
            .unwrap_or(0.0);
        let peak = stats
            .memory_peak_bytes
            .map(|b| format!("{} MB", b.div_ceil(1024 * 1024)))
            .unwrap_or_else(|| "unknown".to_string());
        eprintln!(
            "REPORT Duration: {duration_ms:.2} ms\tMemory Size: {} MB\tMax Memory Used: {peak}\tOOM Kills: {}",
            spec.memory_mb, stats.oom_kills
        );
    }
    match waited {
        Err(e) => fail(e),
        Ok(WaitEnd::TimedOut) => {
            eprintln!(
                "hearth: timed out: the command ran past --timeout {} s and was killed",
                args.timeout.unwrap_or_default()
            );
            ExitCode::TimedOut as u8
        }
        Ok(WaitEnd::Exited) => {
            let killed =
                status.is_some_and(|s| libc::WIFSIGNALED(s)) || (status.is_none() && started);
            if stats.oom_kills > 0 && killed {
                let peak = stats
                    .memory_peak_bytes
                    .map(|b| format!(" (peak {} MB)", b / (1024 * 1024)))
                    .unwrap_or_default();
                eprintln!(
                    "hearth: out of memory: the command was killed at its {} MB memory limit{peak}",
                    spec.memory_mb
                );
                return ExitCode::OutOfMemory as u8;
            }
            match (status, failure) {
                (Some(s), _) => exit::from_wait_status(s),
                (None, Some(Failure::Exec { command, errno })) => {
                    let code = exit::from_exec_errno(errno);
                    let what = if code == ExitCode::NotFound {
                        "command not found"
                    } else {
                        "command not executable"
                    };
                    eprintln!("hearth: {what}: {command}: {}", errno.desc());
                    code as u8
                }
                (None, Some(Failure::Setup { step, errno })) => {
                    fail(format!("sandbox set-up failed: {step}: {}", errno.desc()))
                }
                (None, None) => fail("sandbox init died before reporting the command's status"),
            }
        }
    }
}

/// `--blank`: a blank sandbox of `spec`'s shape with the smallest memory limit, then
/// `spec` assigned to it.
fn create_from_blank(
    host: &SandboxHost,
    name: &str,
    spec: &SandboxSpec,
) -> Result<crate::sandbox::Sandbox, SandboxError> {
    let mut template = spec.clone();
    template.memory_mb = *plan::MEMORY_MB.start();
    let mut sb = host.create_blank(name, &template)?;
    if let Err(e) = host.assign_blank(&mut sb, spec) {
        let _ = host.destroy(sb);
        return Err(e);
    }
    Ok(sb)
}

fn write_timings(path: &std::path::Path, steps: &[(&str, f64)]) {
    let obj: serde_json::Map<String, serde_json::Value> = steps
        .iter()
        .map(|(k, v)| {
            (
                (*k).to_string(),
                serde_json::json!((v * 10.0).round() / 10.0),
            )
        })
        .collect();
    let line = serde_json::Value::Object(obj).to_string();
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| writeln!(f, "{line}"));
    if let Err(e) = written {
        eprintln!("hearth: writing timings to {}: {e}", path.display());
    }
}

/// Options of `hearth serve` (each overrides the configuration file and environment).
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// A TOML configuration file (see README, "Configuration").
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Persistent state: the registry, code, logs, scratch images.
    #[arg(long = "state-dir", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Runtime files: the control socket `hearth.sock`, the staging directory.
    #[arg(long = "run-dir", value_name = "DIR")]
    pub run_dir: Option<PathBuf>,
    /// Also listen on TCP (every request must be SigV4-signed with a configured key).
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<std::net::SocketAddr>,
}

/// `hearth serve`.
pub fn serve(args: ServeArgs) -> u8 {
    if let Err(code) = require_root("serve") {
        return code;
    }
    let overrides = crate::config::ConfigOverrides {
        state_dir: args.state_dir.clone(),
        run_dir: args.run_dir.clone(),
        listen: args.listen,
        ..Default::default()
    };
    let cfg = match crate::config::Config::load(args.config.as_deref(), &overrides) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("hearth: {e}");
            return ExitCode::Usage as u8;
        }
    };
    eprintln!(
        "hearth serve: effective configuration:\n{}",
        cfg.effective_summary()
    );
    let daemon = match crate::daemon::Daemon::start(cfg) {
        Ok(d) => d,
        Err(e) => return fail(e),
    };
    eprintln!(
        "hearth serve: listening on {}",
        daemon.socket_path().display()
    );
    match daemon.run() {
        Ok(()) => 0,
        Err(e) => fail(e),
    }
}

/// `hearth gc`.
pub fn gc() -> u8 {
    if let Err(code) = require_root("gc") {
        return code;
    }
    let paths = HostPaths::from_env();
    let host = match SandboxHost::open(&paths) {
        Ok(h) => h,
        Err(e) => return fail(e),
    };
    for name in host.sweep() {
        println!("removed leftover sandbox {name}");
    }
    let busy = !host.cgroups.list().unwrap_or_default().is_empty();
    if busy {
        println!("sandboxes are running; infrastructure kept");
        return 0;
    }
    let _ = host.cgroups.remove_parent_if_empty();
    host.scratch.gc();
    let _ = std::fs::remove_dir(paths.run_dir.join("root"));
    let _ = std::fs::remove_dir(&paths.run_dir);
    0
}
