//! `hearth bench peers`: the same cold start under Hearth and under `crun run`, `runc
//! run` and `bwrap`, interleaved in one run, in one table with ratios to Hearth.
//!
//! The workload is the built-in `provided` echo ([`super::echo_runtime`]: a copy of this
//! binary as `/var/task/bootstrap`). One *cold start* is: from nothing to the event's
//! answer back at the platform —
//! * Hearth (`hearth spawn`, `hearth blank`): an Invoke of a private daemon's temporary
//!   function with `X-Hearth-Start: spawn|blank`, timed by the client from the request
//!   to the end of the answer (the `cold` mode's figure);
//! * a peer: from `fork` of the peer's command (`crun run`, `runc run`; for `bwrap` from
//!   the creation of the cgroup this process makes for it) to the moment this process —
//!   serving the Runtime API itself on a Unix socket bind-mounted into the container —
//!   has read the echo's `POST …/response`. The peer's own start-up (a Go binary for
//!   runc) is part of its cold start, as `hearth`'s daemon is already running for
//!   Hearth's rows.
//!
//! Same conditions for all: the host's `/usr`, `/lib*`, `/bin`, `/sbin` read-only as the
//! root; a read-only root and `/sys`; `/var/task` read-only; a 512 MB `/tmp`; new pid,
//! mount, network, ipc, uts and cgroup namespaces; no capabilities, `no_new_privs`; the
//! memory limit of `--memory` without swap, 1,024 pids and Lambda's CPU share for that
//! memory (a cgroup this process makes for bwrap, which has none of its own); Hearth's
//! seccomp policy (bwrap gets Hearth's two compiled BPF programs as they are; crun and
//! runc an OCI profile translated from the same policy, see [`oci_seccomp`]). The echo
//! talks to the Runtime API over a Unix socket in every row (Hearth offers one in each
//! sandbox). The first run of each peer checks these in its running echo ([`verify`]:
//! uid, `no_new_privs`, seccomp, capabilities, namespaces, memory limit) and reports
//! what it found. Differences that remain are in the table's notes: Hearth's spawned
//! `/tmp` is an ext4 image on a loop device made within the cold start, the peers' a
//! tmpfs; bwrap runs the echo as uid 0 with a full capability bounding set (it cannot
//! change uid without a user namespace) and has no masked `/proc` paths; libseccomp
//! compares 64 bits where Hearth's policy compares 32; on a hybrid-cgroup host crun runs
//! in a private mount namespace that hides `/sys/fs/cgroup/unified/cgroup.controllers`
//! (crun 1.8 refuses hybrid hosts).
//!
//! Interleaving: every round runs each contender once, in an order shuffled per round
//! (seeded from the clock; the seed is in the report), so that machine noise and the
//! after-effects of one contender fall on all alike. After each Hearth run the bench
//! waits (bounded by [`QUIET_BOUND`]) until the daemon is quiet — the sandbox destroyed,
//! the blank pool full again — so that Hearth's asynchronous clean-up never lands in
//! another contender's run (a peer's clean-up is synchronous: its command has exited).
//! A contender whose first run fails is left out of the rounds and its row says why.
//! Missing peers are installed with `apt-get` (packages `crun`, `runc`, `bubblewrap`)
//! unless `--no-install`.
//!
//! Clean-up (also when a run fails, and first thing on SIGINT/SIGTERM/SIGHUP, after the
//! run in progress): every container is waited for (and `kill`ed / `delete -f`d at once
//! when its run failed, or when it outlives its answer by [`STOP_BOUND`]); the cgroups
//! under `hearth-bench-peers-<pid>` in every hierarchy, the temporary dir and the
//! private daemon are removed.
//!
//! Does not: measure Python or Node (the built-in echo of `provided` only), or run
//! without root.

use std::ffi::CString;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use serde::Serialize;
use serde_json::{json, Value};

use super::conn::{invoke_path, Conn, Outcome, StartKind};
use super::report::{utc_now, Machine};
use super::stats::{Summary, SummaryMs};
use super::{noise, progress, standalone, BenchError};
use crate::sandbox::cgroup::{self, CgroupDriver, Limits, SandboxCgroup};

/// How long one peer run may take to answer, and a finished container to go away.
pub const STOP_BOUND: Duration = Duration::from_secs(20);
/// Tasks allowed in every contender's cgroup.
pub const PIDS: u64 = 1024;
/// Size of `/tmp` in every contender (Lambda's default ephemeral storage).
pub const TMP_MB: u64 = 512;
/// The uid and gid Hearth runs functions as (`sbx_user1051`).
const SBX_ID: u32 = 993;
/// The host paths the root is made of (ARCHITECTURE.md §3).
const BASE_PATHS: [&str; 5] = ["/usr", "/lib", "/lib64", "/bin", "/sbin"];
/// Where the Runtime API socket's directory is mounted in a peer's container.
const API_DIR: &str = "/run/hearth-api";
const HYBRID_CONTROLLERS: &str = "/sys/fs/cgroup/unified/cgroup.controllers";

/// A peer runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Peer {
    Crun,
    Runc,
    Bwrap,
}

impl Peer {
    fn command(self) -> &'static str {
        match self {
            Peer::Crun => "crun",
            Peer::Runc => "runc",
            Peer::Bwrap => "bwrap",
        }
    }

    fn package(self) -> &'static str {
        match self {
            Peer::Crun => "crun",
            Peer::Runc => "runc",
            Peer::Bwrap => "bubblewrap",
        }
    }
}

/// Options of `hearth bench peers`.
#[derive(Debug, Args)]
pub struct PeersArgs {
    /// Timed cold starts of each contender (rounds in a shuffled order).
    #[arg(long, value_name = "N", default_value_t = 100, value_parser = super::parse_runs)]
    pub runs: u64,
    /// Untimed rounds first.
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub warmup: u64,
    /// Memory limit of every contender in MB (the CPU share follows it, as on Lambda).
    #[arg(long, value_name = "MB", default_value_t = 1769, value_parser = crate::cli::parse_memory)]
    pub memory: u64,
    /// The peers to run beside Hearth.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "crun,runc,bwrap"
    )]
    pub peers: Vec<Peer>,
    /// Do not install missing peers with apt-get (they are reported as missing).
    #[arg(long = "no-install")]
    pub no_install: bool,
    /// The event sent (JSON).
    #[arg(long, value_name = "JSON", default_value = "{}", value_parser = super::parse_payload)]
    pub payload: String,
    /// Also write the results as JSON (schema hearth-bench/1, mode peers) to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Draw every contender's latency CDF into this SVG file.
    #[arg(long, value_name = "FILE.svg")]
    pub chart: Option<PathBuf>,
}

/// One row of the table.
#[derive(Debug, Serialize)]
pub struct Row {
    pub name: String,
    /// The tool's version line, or `hearth <version>`.
    pub version: String,
    pub note: String,
    /// Why the contender was left out (missing, sanity run failed); `None` when measured.
    pub error: Option<String>,
    pub ok: u64,
    pub errors: u64,
    /// The first failed timed run, for the report.
    pub first_error: Option<String>,
    pub latency_ms: Option<SummaryMs>,
    /// p50 and p99 divided by those of `hearth spawn`.
    pub ratio_p50: Option<f64>,
    pub ratio_p99: Option<f64>,
    /// Hearth rows: the start kinds the daemon reported.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_kinds: Option<std::collections::BTreeMap<&'static str, u64>>,
    /// Peers: what the first run found in the running echo (see [`verify`]).
    pub checked: Option<String>,
    #[serde(skip)]
    pub samples_ns: Vec<u64>,
}

/// What `--json` writes for `peers`.
#[derive(Debug, Serialize)]
pub struct PeersReport {
    pub schema: &'static str,
    pub mode: &'static str,
    pub function: String,
    pub started_at: String,
    pub machine: Machine,
    pub params: Value,
    pub contenders: Vec<Row>,
    pub warnings: Vec<String>,
}

fn fail(detail: impl Into<String>) -> BenchError {
    BenchError::Standalone {
        detail: detail.into(),
    }
}

/// `command` on `$PATH`, or in the sbin dirs a root shell has (runc lives in /usr/sbin).
pub fn find_exe(command: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|d| d.join(command))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// Installs the missing peers' Debian packages; says what it did on stderr.
fn install_missing(peers: &[Peer]) {
    let missing: Vec<Peer> = peers
        .iter()
        .copied()
        .filter(|p| find_exe(p.command()).is_none())
        .collect();
    if missing.is_empty() {
        return;
    }
    let packages: Vec<&str> = missing.iter().map(|p| p.package()).collect();
    if find_exe("apt-get").is_none() {
        eprintln!(
            "hearth: bench: {} missing and no apt-get here: install {} by hand",
            missing
                .iter()
                .map(|p| p.command())
                .collect::<Vec<_>>()
                .join(", "),
            packages.join(" ")
        );
        return;
    }
    eprintln!(
        "hearth: bench: installing {} (apt-get; --no-install to skip)",
        packages.join(" ")
    );
    let apt = |args: &[&str]| {
        Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let mut install = vec!["install", "-y", "-q"];
    install.extend(&packages);
    // A fresh host has no package lists yet: update once when the first try fails.
    let installed = apt(&install) || (apt(&["update", "-q"]) && apt(&install));
    if !installed {
        eprintln!(
            "hearth: bench: apt-get install {} failed; the missing peers are reported as such",
            packages.join(" ")
        );
    }
}

fn version_line(exe: &Path) -> String {
    Command::new(exe)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(if o.stdout.is_empty() {
                &o.stderr
            } else {
                &o.stdout
            })
            .lines()
            .next()
            .map(str::to_string)
        })
        .unwrap_or_else(|| "unknown version".into())
}

/// The cgroup mounts of this host: (mount point, is cgroup2).
fn cgroup_mounts() -> Vec<(PathBuf, bool)> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let mnt = left.split(' ').nth(4)?;
            let fstype = right.split(' ').next()?;
            matches!(fstype, "cgroup" | "cgroup2").then(|| {
                (
                    PathBuf::from(mnt.replace("\\040", " ")),
                    fstype == "cgroup2",
                )
            })
        })
        .collect()
}

/// Hearth's seccomp policy as an OCI `linux.seccomp` profile: the `main` filter's allowed
/// syscalls (and argument conditions) over a default of `EPERM`, and the `enosys`
/// filter's syscalls answering `ENOSYS`. libseccomp takes one comparison per argument in
/// a rule (runc turns two into an *or*), so a rule that compares one argument twice
/// keeps only its first comparison (Hearth's `ioctl` rule: TIOCSTI refused, TIOCLINUX
/// not); returns the profile and how many comparisons were dropped.
pub fn oci_seccomp(policy: &Value) -> Result<(Value, usize), String> {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "SCMP_ARCH_X86_64",
        "aarch64" => "SCMP_ARCH_AARCH64",
        other => return Err(format!("no OCI seccomp architecture for {other}")),
    };
    let filter = |name: &str| {
        policy[name]["filter"]
            .as_array()
            .cloned()
            .ok_or_else(|| format!("the policy has no {name:?} filter"))
    };
    // `{"errno": N}` of a filter's action, as the policy says it.
    let errno = |filter: &str, key: &str| {
        policy[filter][key]["errno"]
            .as_u64()
            .ok_or_else(|| format!("the policy's {filter:?} filter has no {key} errno"))
    };
    let default_errno = errno("main", "mismatch_action")?;
    let enosys_errno = errno("enosys", "match_action")?;
    let mut dropped = 0;
    let mut syscalls = Vec::new();
    for rule in filter("main")? {
        let name = rule["syscall"]
            .as_str()
            .ok_or("a rule without syscall")?
            .to_string();
        let mut args: Vec<Value> = Vec::new();
        let mut seen = Vec::new();
        for a in rule["args"].as_array().map_or(&[][..], |v| v) {
            let index = a["index"].as_u64().ok_or("an argument without index")?;
            if seen.contains(&index) {
                dropped += 1;
                continue;
            }
            seen.push(index);
            let val = a["val"].as_u64().ok_or("an argument without val")?;
            let cond = match &a["op"] {
                Value::String(op) => {
                    let op = match op.as_str() {
                        "eq" => "SCMP_CMP_EQ",
                        "ne" => "SCMP_CMP_NE",
                        "lt" => "SCMP_CMP_LT",
                        "le" => "SCMP_CMP_LE",
                        "gt" => "SCMP_CMP_GT",
                        "ge" => "SCMP_CMP_GE",
                        other => return Err(format!("{name}: comparison {other:?}")),
                    };
                    json!({"index": index, "value": val, "op": op})
                }
                Value::Object(o) => {
                    let mask = o
                        .get("masked_eq")
                        .and_then(Value::as_u64)
                        .ok_or_else(|| format!("{name}: comparison {o:?}"))?;
                    json!({"index": index, "value": mask, "valueTwo": val, "op": "SCMP_CMP_MASKED_EQ"})
                }
                other => return Err(format!("{name}: comparison {other}")),
            };
            args.push(cond);
        }
        let mut entry = json!({"names": [name], "action": "SCMP_ACT_ALLOW"});
        if !args.is_empty() {
            entry["args"] = Value::Array(args);
        }
        syscalls.push(entry);
    }
    for rule in filter("enosys")? {
        let name = rule["syscall"].as_str().ok_or("a rule without syscall")?;
        syscalls
            .push(json!({"names": [name], "action": "SCMP_ACT_ERRNO", "errnoRet": enosys_errno}));
    }
    Ok((
        json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": default_errno,
            "architectures": [arch],
            "syscalls": syscalls,
        }),
        dropped,
    ))
}

/// The directories and files every peer uses.
struct Workspace {
    dir: PathBuf,
    rootfs: PathBuf,
    code: PathBuf,
    api: PathBuf,
    bpf: [PathBuf; 2],
    cg_parent: String,
    seccomp: Value,
    seccomp_dropped: usize,
}

impl Workspace {
    fn make(dir: &Path) -> Result<Workspace, BenchError> {
        let io = |p: &Path, e: std::io::Error| fail(format!("{}: {e}", p.display()));
        let mkdir = |p: &Path, mode: u32| {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(mode)
                .create(p)
                .map_err(|e| io(p, e))
        };
        let write = |p: &Path, bytes: &[u8], mode: u32| -> Result<(), BenchError> {
            std::fs::write(p, bytes).map_err(|e| io(p, e))?;
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).map_err(|e| io(p, e))
        };
        let rootfs = dir.join("rootfs");
        mkdir(&rootfs, 0o755)?;
        for p in BASE_PATHS {
            let target = rootfs.join(p.trim_start_matches('/'));
            match std::fs::read_link(p) {
                Ok(link) => {
                    std::os::unix::fs::symlink(link, &target).map_err(|e| io(&target, e))?
                }
                Err(_) if Path::new(p).is_dir() => mkdir(&target, 0o755)?,
                Err(_) => {}
            }
        }
        for d in [
            "proc",
            "dev",
            "tmp",
            "etc",
            "sys",
            "var/task",
            "run/hearth-api",
        ] {
            mkdir(&rootfs.join(d), 0o755)?;
        }
        write(
            &rootfs.join("etc/passwd"),
            format!("root:x:0:0:root:/root:/sbin/nologin\nsbx_user1051:x:{SBX_ID}:{SBX_ID}::/tmp:/sbin/nologin\n").as_bytes(),
            0o644,
        )?;
        write(
            &rootfs.join("etc/group"),
            format!("root:x:0:\nsbx_user1051:x:{SBX_ID}:\n").as_bytes(),
            0o644,
        )?;
        let code = dir.join("code");
        mkdir(&code, 0o755)?;
        let (_, _, files) = standalone::builtin("provided")?;
        for (name, bytes, mode) in &files {
            write(&code.join(name), bytes, *mode)?;
        }
        let api = dir.join("api");
        mkdir(&api, 0o755)?;
        let policy = crate::sandbox::seccomp::SeccompPolicy::compile()
            .map_err(|e| fail(format!("compiling the seccomp policy: {e}")))?;
        let bpf = [dir.join("main.bpf"), dir.join("enosys.bpf")];
        for (path, prog) in bpf.iter().zip(policy.programs()) {
            let bytes: Vec<u8> = prog
                .iter()
                .flat_map(|i| {
                    let mut b = Vec::with_capacity(8);
                    b.extend(i.code.to_ne_bytes());
                    b.push(i.jt);
                    b.push(i.jf);
                    b.extend(i.k.to_ne_bytes());
                    b
                })
                .collect();
            write(path, &bytes, 0o600)?;
        }
        let text = policy
            .policy_json()
            .map_err(|e| fail(format!("the seccomp policy: {e}")))?;
        let policy: Value =
            serde_json::from_slice(&text).map_err(|e| fail(format!("the seccomp policy: {e}")))?;
        let (seccomp, seccomp_dropped) =
            oci_seccomp(&policy).map_err(|e| fail(format!("the OCI seccomp profile: {e}")))?;
        Ok(Workspace {
            dir: dir.to_path_buf(),
            rootfs,
            code,
            api,
            bpf,
            cg_parent: format!("hearth-bench-peers-{}", std::process::id()),
            seccomp,
            seccomp_dropped,
        })
    }

    fn env(&self) -> Vec<String> {
        vec![
            "PATH=/usr/local/bin:/usr/bin:/bin".into(),
            "LAMBDA_TASK_ROOT=/var/task".into(),
            "AWS_LAMBDA_RUNTIME_API=127.0.0.1:9001".into(),
            format!("HEARTH_RUNTIME_API_SOCKET={API_DIR}/runtime.sock"),
        ]
    }

    /// The OCI `config.json` of run `id`.
    fn oci_config(&self, id: &str, memory_mb: u64) -> Value {
        let mut mounts = vec![
            json!({"destination": "/proc", "type": "proc", "source": "proc",
                   "options": ["nosuid", "noexec", "nodev"]}),
            json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                   "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
            json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
                   "options": ["nosuid", "nodev", "mode=1777", format!("size={}m", TMP_MB)]}),
        ];
        // A read-only sysfs, as Hearth mounts one (its masked paths are in `maskedPaths`).
        mounts.push(
            json!({"destination": "/sys", "type": "sysfs", "source": "sysfs",
                           "options": ["nosuid", "noexec", "nodev", "ro"]}),
        );
        for p in BASE_PATHS {
            if Path::new(p).is_dir() && std::fs::read_link(p).is_err() {
                mounts.push(json!({"destination": p, "type": "bind", "source": p,
                                   "options": ["rbind", "ro", "nosuid", "nodev"]}));
            }
        }
        mounts.push(json!({"destination": "/var/task", "type": "bind",
                           "source": self.code, "options": ["bind", "ro", "nosuid", "nodev"]}));
        mounts.push(json!({"destination": API_DIR, "type": "bind",
                           "source": self.api, "options": ["bind", "ro", "nosuid", "nodev", "noexec"]}));
        let limit = memory_mb * 1024 * 1024;
        let (quota, period) = cgroup::cpu_quota_us(memory_mb);
        let none: [&str; 0] = [];
        let namespaces =
            ["pid", "mount", "network", "ipc", "uts", "cgroup"].map(|t| json!({"type": t}));
        json!({
            "ociVersion": "1.0.2",
            "process": {
                "terminal": false,
                "user": {"uid": SBX_ID, "gid": SBX_ID},
                "args": ["/var/task/bootstrap"],
                "env": self.env(),
                "cwd": "/var/task",
                "capabilities": {"bounding": none, "effective": none, "inheritable": none,
                                 "permitted": none, "ambient": none},
                "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
                "noNewPrivileges": true,
            },
            "root": {"path": self.rootfs, "readonly": true},
            "hostname": "sandbox",
            "mounts": mounts,
            "linux": {
                "namespaces": namespaces,
                "cgroupsPath": format!("/{}/{id}", self.cg_parent),
                "resources": {
                    "devices": [{"allow": false, "access": "rwm"}],
                    // OCI "swap" is memory+swap: equal to the limit means no swap.
                    "memory": {"limit": limit, "swap": limit},
                    "pids": {"limit": PIDS},
                    "cpu": {"quota": quota, "period": period},
                },
                "seccomp": self.seccomp,
                "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                                "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                                "/proc/sched_debug", "/proc/scsi", "/sys/firmware"],
                "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                                  "/proc/sysrq-trigger"],
            },
        })
    }

    /// bwrap's arguments; the seccomp programs come as descriptors `fds`.
    fn bwrap_args(&self, fds: [i32; 2]) -> Vec<String> {
        let mut a: Vec<String> = [
            "--unshare-pid",
            "--unshare-net",
            "--unshare-ipc",
            "--unshare-uts",
            "--unshare-cgroup",
            "--die-with-parent",
            "--new-session",
            "--cap-drop",
            "ALL",
            "--clearenv",
        ]
        .map(String::from)
        .to_vec();
        for kv in self.env() {
            let (k, v) = kv.split_once('=').unwrap_or((&kv, ""));
            a.extend(["--setenv".into(), k.to_string(), v.to_string()]);
        }
        for p in BASE_PATHS {
            match std::fs::read_link(p) {
                Ok(link) => a.extend([
                    "--symlink".into(),
                    link.to_string_lossy().into_owned(),
                    p.into(),
                ]),
                Err(_) if Path::new(p).is_dir() => {
                    a.extend(["--ro-bind".into(), p.into(), p.into()])
                }
                Err(_) => {}
            }
        }
        let s = |p: &Path| p.to_string_lossy().into_owned();
        a.extend([
            "--ro-bind".into(),
            s(&self.rootfs.join("etc")),
            "/etc".into(),
            "--proc".into(),
            "/proc".into(),
            "--ro-bind".into(),
            "/sys".into(),
            "/sys".into(),
            "--hostname".into(),
            "sandbox".into(),
            "--dev".into(),
            "/dev".into(),
            "--size".into(),
            (TMP_MB * 1024 * 1024).to_string(),
            "--tmpfs".into(),
            "/tmp".into(),
            "--ro-bind".into(),
            s(&self.code),
            "/var/task".into(),
            "--ro-bind".into(),
            s(&self.api),
            API_DIR.into(),
            "--remount-ro".into(),
            "/".into(),
            "--chdir".into(),
            "/var/task".into(),
            "--add-seccomp-fd".into(),
            fds[0].to_string(),
            "--add-seccomp-fd".into(),
            fds[1].to_string(),
            "/var/task/bootstrap".into(),
        ]);
        a
    }
}

/// One contender of the rounds.
enum Contender {
    Hearth {
        conn: Box<Conn>,
    },
    Oci {
        exe: PathBuf,
        state: PathBuf,
        bundle: PathBuf,
        hide: bool,
    },
    Bwrap {
        exe: PathBuf,
    },
}

/// What the first (untimed) run of a peer checks in its running echo.
#[derive(Debug, Clone, Copy)]
struct Expect {
    uid: u32,
    memory_bytes: u64,
    /// Whether the capability bounding set must be empty too (bwrap, run as root without
    /// a user namespace, drops the others but keeps it).
    no_bounding: bool,
}

/// Checks the process `pid` (the echo, seen through `SO_PEERCRED`) against `e` and the
/// conditions every contender shares: uid, `no_new_privs`, a seccomp filter, no
/// capabilities, new namespaces of all six kinds, the memory limit of its cgroup.
/// Returns a one-line summary, or what does not hold.
fn verify(pid: i32, e: Expect) -> Result<String, String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|err| format!("reading /proc/{pid}/status: {err}"))?;
    let field = |k: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(k).and_then(|r| r.strip_prefix(':')))
            .map(str::trim)
            .unwrap_or("")
    };
    let uid = field("Uid");
    if uid.split_whitespace().any(|u| u != e.uid.to_string()) {
        return Err(format!("the echo runs as uid {uid:?}, expected {}", e.uid));
    }
    if field("NoNewPrivs") != "1" {
        return Err("the echo runs without no_new_privs".into());
    }
    if field("Seccomp") != "2" {
        return Err(format!(
            "the echo has seccomp mode {:?}, expected 2 (filter)",
            field("Seccomp")
        ));
    }
    let filters = field("Seccomp_filters");
    for cap in ["CapPrm", "CapEff", "CapInh", "CapAmb", "CapBnd"] {
        if cap == "CapBnd" && !e.no_bounding {
            continue;
        }
        if u64::from_str_radix(field(cap), 16) != Ok(0) {
            return Err(format!("the echo has capabilities: {cap} {}", field(cap)));
        }
    }
    for ns in ["pid", "mnt", "net", "ipc", "uts", "cgroup"] {
        let theirs = std::fs::read_link(format!("/proc/{pid}/ns/{ns}"));
        let ours = std::fs::read_link(format!("/proc/self/ns/{ns}"));
        match (theirs, ours) {
            (Ok(t), Ok(o)) if t != o => {}
            (Ok(_), Ok(_)) => return Err(format!("the echo shares the host's {ns} namespace")),
            (Err(err), _) | (_, Err(err)) => {
                return Err(format!("reading its {ns} namespace: {err}"))
            }
        }
    }
    let limit = memory_limit(pid)?;
    if limit != e.memory_bytes {
        return Err(format!(
            "the echo's memory limit is {limit} bytes, expected {}",
            e.memory_bytes
        ));
    }
    Ok(format!(
        "checked in the running echo: uid {}, no_new_privs, {filters} seccomp filter(s), no capabilities{}, 6 new namespaces, memory limit {} MB",
        e.uid,
        if e.no_bounding { "" } else { " (bounding set kept)" },
        limit >> 20
    ))
}

/// The memory limit of `pid`'s cgroup (v2 `memory.max`, or v1 `memory.limit_in_bytes`).
fn memory_limit(pid: i32) -> Result<u64, String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .map_err(|err| format!("reading /proc/{pid}/cgroup: {err}"))?;
    let mounts = cgroup_mounts();
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let file = if controllers.split(',').any(|c| c == "memory") {
            mounts
                .iter()
                .find(|(m, v2)| {
                    !v2 && m
                        .file_name()
                        .is_some_and(|n| n.to_string_lossy().split(',').any(|c| c == "memory"))
                })
                .map(|(m, _)| {
                    m.join(path.trim_start_matches('/'))
                        .join("memory.limit_in_bytes")
                })
        } else if controllers.is_empty()
            && mounts
                .iter()
                .any(|(m, v2)| *v2 && m == Path::new("/sys/fs/cgroup"))
        {
            Some(
                Path::new("/sys/fs/cgroup")
                    .join(path.trim_start_matches('/'))
                    .join("memory.max"),
            )
        } else {
            None
        };
        if let Some(file) = file {
            let v = std::fs::read_to_string(&file)
                .map_err(|err| format!("reading {}: {err}", file.display()))?;
            return v
                .trim()
                .parse()
                .map_err(|_| format!("{}: {:?} is not a limit", file.display(), v.trim()));
        }
    }
    Err(format!("no memory cgroup in /proc/{pid}/cgroup"))
}

/// Accepts and drops connections still queued on the listener (a late echo of a failed
/// run), so that the next run talks to its own echo.
fn drain_stale(listener: &UnixListener) -> usize {
    let mut n = 0;
    while listener.accept().is_ok() {
        n += 1;
    }
    n
}

/// The Runtime API for one peer run on `listener` (non-blocking): hands `event` to the
/// first connection's `/next`, reads the response, and returns when it had it (the end of
/// the cold start), with the result of [`verify`] when `check` is given (the first run;
/// done while the echo waits for its event, outside the timed span of later runs). The
/// connection is closed on return, which ends the echo.
fn serve_one(
    listener: &UnixListener,
    child: &mut Child,
    id: &str,
    event: &[u8],
    check: Option<Expect>,
) -> Result<(Instant, Option<String>), String> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let started = Instant::now();
    let stream = loop {
        let mut fds = [PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(100u8)) {
            Ok(n) if n > 0 => match listener.accept() {
                Ok((stream, _)) => break stream,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(format!("accept: {e}")),
            },
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(format!("poll: {e}")),
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("exited ({status}) before calling the Runtime API"));
        }
        if started.elapsed() > STOP_BOUND {
            return Err(format!(
                "no Runtime API call within {} s",
                STOP_BOUND.as_secs()
            ));
        }
    };
    let socket = |e: std::io::Error| format!("socket: {e}");
    stream.set_nonblocking(false).map_err(socket)?;
    stream.set_read_timeout(Some(STOP_BOUND)).map_err(socket)?;
    stream.set_write_timeout(Some(STOP_BOUND)).map_err(socket)?;
    let peer = nix::sys::socket::getsockopt(&stream, nix::sys::socket::sockopt::PeerCredentials)
        .map_err(|e| format!("SO_PEERCRED: {e}"))?;
    let mut writer = stream.try_clone().map_err(socket)?;
    let mut reader = BufReader::new(stream);
    let (line, _) = read_request(&mut reader)?;
    if !line.starts_with("GET /2018-06-01/runtime/invocation/next ") {
        return Err(format!("expected GET …/invocation/next, got {line:?}"));
    }
    let checked = check.map(|e| verify(peer.pid(), e)).transpose()?;
    let deadline_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
        + 900_000;
    let mut head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nLambda-Runtime-Aws-Request-Id: {id}\r\nLambda-Runtime-Deadline-Ms: {deadline_ms}\r\nLambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:000000000000:function:hearth-bench-peers\r\nLambda-Runtime-Trace-Id: Root=1-00000000-000000000000000000000000\r\nContent-Length: {}\r\n\r\n",
        event.len()
    )
    .into_bytes();
    head.extend_from_slice(event);
    writer
        .write_all(&head)
        .map_err(|e| format!("answering /next: {e}"))?;
    let (line, body) = read_request(&mut reader)?;
    // The end of the cold start: the platform has the answer.
    let answered = Instant::now();
    if line != format!("POST /2018-06-01/runtime/invocation/{id}/response HTTP/1.1") {
        return Err(format!("expected POST …/{id}/response, got {line:?}"));
    }
    if body != event {
        return Err(format!(
            "the response is not the event: {:?}",
            String::from_utf8_lossy(&body[..body.len().min(200)])
        ));
    }
    // The 202 is still sent, so that the echo sees a well-formed exchange before its
    // next /next finds the socket closed.
    let _ = writer.write_all(
        b"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 16\r\n\r\n{\"status\":\"OK\"}",
    );
    Ok((answered, checked))
}

/// One request: (request line, `Content-Length` body).
fn read_request(reader: &mut impl BufRead) -> Result<(String, Vec<u8>), String> {
    let mut line = String::new();
    match reader.read_line(&mut line) {
        Ok(0) => return Err("the echo closed the connection".into()),
        Ok(_) => {}
        Err(e) => return Err(format!("reading a request: {e}")),
    }
    let request_line = line.trim_end().to_string();
    let mut len = 0usize;
    loop {
        line.clear();
        reader
            .read_line(&mut line)
            .map_err(|e| format!("reading a header: {e}"))?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            if k.trim().eq_ignore_ascii_case("content-length") {
                len = v
                    .trim()
                    .parse()
                    .map_err(|_| format!("bad Content-Length {v:?}"))?;
            }
        }
    }
    let mut body = vec![0; len];
    reader
        .read_exact(&mut body)
        .map_err(|e| format!("reading a body: {e}"))?;
    Ok((request_line, body))
}

/// Waits (bounded) for a finished run's child; kills what outlives the bound.
/// A run that already failed is killed at once.
fn reap(child: &mut Child, contender: &Contender, id: &str, failed: bool) -> Result<(), String> {
    let started = Instant::now();
    if !failed {
        loop {
            match child.try_wait() {
                Ok(Some(_)) => return Ok(()),
                Ok(None) if started.elapsed() < STOP_BOUND => {
                    std::thread::sleep(Duration::from_millis(1))
                }
                _ => break,
            }
        }
    }
    if let Contender::Oci { exe, state, .. } = contender {
        let _ = Command::new(exe)
            .arg("--root")
            .arg(state)
            .args(["kill", id, "KILL"])
            .stderr(Stdio::null())
            .status();
    }
    let _ = child.kill();
    let _ = child.wait();
    if let Contender::Oci { exe, state, .. } = contender {
        let _ = Command::new(exe)
            .arg("--root")
            .arg(state)
            .args(["delete", "-f", id])
            .stderr(Stdio::null())
            .status();
    }
    if failed {
        return Ok(());
    }
    Err(format!(
        "did not stop within {} s of its answer; killed",
        STOP_BOUND.as_secs()
    ))
}

/// The bench's state for the peers' runs.
struct Peers<'a> {
    ws: &'a Workspace,
    listener: UnixListener,
    driver: Option<Box<dyn CgroupDriver>>,
    memory_mb: u64,
    event: Vec<u8>,
    seq: u64,
}

impl Peers<'_> {
    /// One cold start of a peer: ns from its start to the answer, and with `check` the
    /// result of [`verify`] on its echo.
    fn run_peer(
        &mut self,
        c: &Contender,
        check: Option<Expect>,
    ) -> Result<(u64, Option<String>), String> {
        let stale = drain_stale(&self.listener);
        if stale > 0 {
            eprintln!(
                "hearth: bench: dropped {stale} late Runtime API connection(s) of an earlier run"
            );
        }
        self.seq += 1;
        let id = format!("hbp{}-{}", std::process::id(), self.seq);
        let stderr_path = self.ws.dir.join("stderr");
        let stderr = std::fs::File::create(&stderr_path).map_err(|e| format!("stderr: {e}"))?;
        let mut setup = crate::sys::process::PeerChildSetup::default();
        let mut bwrap_cg: Option<SandboxCgroup> = None;
        let mut keep_open = Vec::new();
        // bwrap's cgroup is made here, inside the timed span: crun, runc and Hearth make
        // theirs within their cold starts too. Writing an OCI bundle is not timed (it is
        // the deployment, as CreateFunction is for Hearth).
        let t0: Instant;
        let mut cmd = match c {
            Contender::Oci {
                exe,
                state,
                bundle,
                hide,
                ..
            } => {
                let cfg = self.ws.oci_config(&id, self.memory_mb);
                let tmp = bundle.join("config.json.tmp");
                std::fs::write(&tmp, cfg.to_string()).map_err(|e| format!("config.json: {e}"))?;
                std::fs::rename(&tmp, bundle.join("config.json"))
                    .map_err(|e| format!("config.json: {e}"))?;
                t0 = Instant::now();
                if *hide {
                    setup.hide = Some((
                        CString::new(self.ws.dir.join("empty").as_os_str().as_encoded_bytes())
                            .map_err(|e| e.to_string())?,
                        CString::new(HYBRID_CONTROLLERS).map_err(|e| e.to_string())?,
                    ));
                }
                let mut cmd = Command::new(exe);
                cmd.arg("--root")
                    .arg(state)
                    .arg("run")
                    .arg("--bundle")
                    .arg(bundle)
                    .arg(&id);
                cmd
            }
            Contender::Bwrap { exe } => {
                let driver = self.driver.as_ref().ok_or("no cgroup driver")?;
                let mut fds = [0; 2];
                for (slot, path) in fds.iter_mut().zip(&self.ws.bpf) {
                    let f = std::fs::File::open(path)
                        .map_err(|e| format!("{}: {e}", path.display()))?;
                    // Inherited by bwrap: no close-on-exec on this one descriptor.
                    nix::fcntl::fcntl(
                        std::os::fd::AsRawFd::as_raw_fd(&f),
                        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
                    )
                    .map_err(|e| format!("fcntl: {e}"))?;
                    *slot = std::os::fd::AsRawFd::as_raw_fd(&f);
                    keep_open.push(f);
                }
                t0 = Instant::now();
                let cg = driver
                    .create(
                        &id,
                        &Limits {
                            memory_mb: self.memory_mb,
                            pids: PIDS,
                        },
                    )
                    .map_err(|e| format!("cgroup: {e}"))?;
                for d in cg.dirs() {
                    let f = std::fs::OpenOptions::new()
                        .write(true)
                        .open(d.join("cgroup.procs"))
                        .map_err(|e| format!("cgroup: {e}"));
                    match f {
                        Ok(f) => setup.join.push(f.into()),
                        Err(e) => {
                            let _ = driver.remove(cg);
                            return Err(e);
                        }
                    }
                }
                bwrap_cg = Some(cg);
                let mut cmd = Command::new(exe);
                cmd.args(self.ws.bwrap_args(fds));
                cmd
            }
            Contender::Hearth { .. } => unreachable!("Hearth runs through its daemon"),
        };
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .env_clear()
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            );
        crate::sys::process::set_peer_child_setup(&mut cmd, setup);
        let spawned = cmd.spawn();
        drop(keep_open);
        let result = match spawned {
            Err(e) => Err(format!("starting: {e}")),
            Ok(mut child) => {
                let served = serve_one(&self.listener, &mut child, &id, &self.event, check)
                    .map(|(answered, checked)| ((answered - t0).as_nanos() as u64, checked));
                let reaped = reap(&mut child, c, &id, served.is_err());
                served.and_then(|r| reaped.map(|()| r))
            }
        };
        if let (Some(cg), Some(driver)) = (bwrap_cg, &self.driver) {
            if let Err(e) = driver.remove(cg) {
                eprintln!("hearth: bench: removing bwrap's cgroup {id}: {e}");
            }
        }
        result.map_err(|e| {
            let tail = std::fs::read_to_string(&stderr_path).unwrap_or_default();
            let tail = tail.trim();
            let tail: String = tail
                .chars()
                .skip(tail.chars().count().saturating_sub(400))
                .collect();
            if tail.is_empty() {
                e
            } else {
                format!("{e}: {tail}")
            }
        })
    }
}

/// One Hearth cold start through the daemon: ns, and the start kind it reported.
fn run_hearth(conn: &mut Conn) -> Result<(u64, StartKind), String> {
    let t0 = Instant::now();
    let reply = conn.invoke().map_err(|e| e.to_string())?;
    let ns = t0.elapsed().as_nanos() as u64;
    match reply.outcome() {
        Outcome::Ok => Ok((ns, reply.start)),
        _ => Err(format!(
            "status {}{}: {}",
            reply.status,
            if reply.function_error {
                " (function error)"
            } else {
                ""
            },
            conn.last_error_body.clone().unwrap_or_default()
        )),
    }
}

/// Removes `hearth-bench-peers-<pid>` and what is under it in every cgroup hierarchy
/// (deepest first); says what could not be removed.
fn remove_cgroups(parent: &str) {
    for (mnt, _) in cgroup_mounts() {
        let top = mnt.join(parent);
        if !top.is_dir() {
            continue;
        }
        let mut dirs = vec![top.clone()];
        let mut i = 0;
        while i < dirs.len() {
            if let Ok(rd) = std::fs::read_dir(&dirs[i]) {
                for e in rd.flatten() {
                    if e.file_type().is_ok_and(|t| t.is_dir()) {
                        dirs.push(e.path());
                    }
                }
            }
            i += 1;
        }
        for d in dirs.iter().rev() {
            if let Err(e) = cgroup::remove_dir(d) {
                eprintln!("hearth: bench: {e}");
            }
        }
    }
}

/// Removes what the run made; runs on drop (also on early returns and errors).
struct Cleanup {
    dir: PathBuf,
    cg_parent: String,
    oci: Vec<(PathBuf, PathBuf)>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for (exe, state) in &self.oci {
            let Ok(rd) = std::fs::read_dir(state) else {
                continue;
            };
            for e in rd.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    let _ = Command::new(exe)
                        .arg("--root")
                        .arg(state)
                        .args(["delete", "-f"])
                        .arg(e.file_name())
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .status();
                }
            }
        }
        remove_cgroups(&self.cg_parent);
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            eprintln!(
                "hearth: bench: removing {}: {e} (remove it by hand)",
                self.dir.display()
            );
        }
    }
}

/// One run's figures: ns, the start kind Hearth reported, what the check found.
type RunOutcome = (u64, Option<StartKind>, Option<String>);

/// What the signal thread and the normal end share: a stop flag the rounds check, a lock
/// held during each run (so the clean-up never races a container being made), and the
/// clean-up itself, taken by whichever comes first.
struct Shared {
    stop: AtomicBool,
    run: Mutex<()>,
    cleanup: Mutex<Option<Cleanup>>,
}

impl Shared {
    fn clean_up(&self) {
        self.stop.store(true, Ordering::SeqCst);
        let _run = self.run.lock().unwrap_or_else(|p| p.into_inner());
        let c = self
            .cleanup
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        drop(c);
    }
}

/// A small xorshift generator for the order of each round (seeded from the clock, the
/// seed in the report's `params.order_seed`).
struct Order(u64);

impl Order {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A uniformly shuffled copy of `items` (Fisher–Yates).
    fn shuffle(&mut self, items: &[usize]) -> Vec<usize> {
        let mut v = items.to_vec();
        for i in (1..v.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            v.swap(i, j);
        }
        v
    }
}

/// The daemon's `GET /metrics`: whether it is quiet — no instance but its full pool of
/// blank sandboxes, and nothing else held in its memory budget (the previous cold start's
/// sandbox destroyed).
fn daemon_quiet(socket: &Path) -> bool {
    let Ok(resp) = crate::lambda_cli::http::send(
        &crate::lambda_cli::http::Endpoint::Unix(socket.to_path_buf()),
        &crate::lambda_cli::http::Request {
            method: "GET",
            path: "/metrics".into(),
            ..Default::default()
        },
    ) else {
        return false;
    };
    let text = String::from_utf8_lossy(&resp.body);
    let Some(counts) = super::density::parse_instances(&text) else {
        return false;
    };
    let used = text.lines().find_map(|l| {
        l.strip_prefix("hearth_memory_budget_used_bytes ")
            .and_then(|v| v.trim().parse::<f64>().ok())
    });
    let blank = counts.state("blank");
    let others: f64 = counts
        .states
        .iter()
        .filter(|(k, _)| k.as_str() != "blank")
        .map(|(_, v)| v)
        .sum();
    let placeholder = (crate::daemon::pool::BLANK_MEMORY_MB << 20) as f64;
    blank >= f64::from(crate::config::DEFAULT_BLANK_POOL_SIZE)
        && others == 0.0
        && used == Some(blank * placeholder)
}

/// Waits (bounded by [`QUIET_BOUND`]) until [`daemon_quiet`]; false if it never was.
fn wait_quiet(socket: &Path) -> bool {
    let started = Instant::now();
    while started.elapsed() < QUIET_BOUND {
        if daemon_quiet(socket) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    false
}

/// How long a Hearth run's background work (destroying its sandbox, refilling the blank
/// pool) may take before the next contender starts anyway.
pub const QUIET_BOUND: Duration = Duration::from_secs(5);

/// Runs `hearth bench peers`; the exit code as [`super::run`]'s.
pub fn run(a: &PeersArgs) -> Result<PeersReport, BenchError> {
    if !nix::unistd::geteuid().is_root() {
        return Err(BenchError::Usage(
            "hearth bench peers needs root: Hearth's private daemon, crun, runc and the cgroups of the run all do"
                .into(),
        ));
    }
    let started_at = utc_now();
    let noise_start = noise::Before::now();
    let mut peers: Vec<Peer> = Vec::new();
    for p in &a.peers {
        if !peers.contains(p) {
            peers.push(*p);
        }
    }
    if !a.no_install {
        install_missing(&peers);
    }
    // The private daemon and its temporary function (dropped last: declared first).
    let daemon = standalone::PrivateDaemon::start()?;
    daemon.teardown_on_signals()?;
    let socket = daemon.socket();
    let (runtime, handler, files) = standalone::builtin("provided")?;
    let function = standalone::create(
        &socket,
        &standalone::Deploy {
            name: format!("hearth-bench-peers-{}", std::process::id()),
            runtime,
            handler,
            memory_mb: a.memory,
            timeout_s: 60,
            zip: standalone::zip_files(&files).map_err(fail)?,
        },
    )?;
    let dir = daemon.dir.join("peers");
    std::fs::DirBuilder::new()
        .mode(0o711)
        .create(&dir)
        .map_err(|e| fail(format!("{}: {e}", dir.display())))?;
    let ws = Workspace::make(&dir)?;
    // From here on the run's containers, cgroups and files are removed at the end, or
    // first thing on SIGINT/SIGTERM/SIGHUP (before the daemon is stopped).
    let shared = Arc::new(Shared {
        stop: AtomicBool::new(false),
        run: Mutex::new(()),
        cleanup: Mutex::new(Some(Cleanup {
            dir: dir.clone(),
            cg_parent: ws.cg_parent.clone(),
            oci: Vec::new(),
        })),
    });
    {
        let shared = Arc::clone(&shared);
        daemon.before_teardown(Box::new(move || shared.clean_up()));
    }
    std::fs::write(dir.join("empty"), b"").map_err(|e| fail(format!("empty file: {e}")))?;
    let sock_path = ws.api.join("runtime.sock");
    let listener = UnixListener::bind(&sock_path)
        .map_err(|e| fail(format!("{}: {e}", sock_path.display())))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| fail(format!("{}: {e}", sock_path.display())))?;
    // The echo runs as uid 993 under crun and runc.
    std::fs::set_permissions(&sock_path, std::fs::Permissions::from_mode(0o777))
        .map_err(|e| fail(format!("{}: {e}", sock_path.display())))?;
    let hybrid = matches!(
        cgroup::detect(Path::new("/sys/fs/cgroup")),
        Ok(cgroup::CgroupMode::Hybrid)
    );
    let driver = cgroup::open_driver(Path::new("/sys/fs/cgroup"), Some(&ws.cg_parent))
        .and_then(|d| d.ensure_parent().map(|()| d));
    let memory_bytes = a.memory << 20;

    // The contenders, their rows in the same order.
    let mut contenders: Vec<Contender> = Vec::new();
    let mut rows: Vec<Row> = Vec::new();
    let mut expect: Vec<Option<Expect>> = Vec::new();
    let path = invoke_path(&function.name);
    let hearth_version = format!("hearth {}", env!("CARGO_PKG_VERSION"));
    for start in ["spawn", "blank"] {
        let conn = Conn::open(
            &socket,
            &path,
            a.payload.as_bytes(),
            &[("X-Hearth-Start", start)],
        )?;
        contenders.push(Contender::Hearth {
            conn: Box::new(conn),
        });
        expect.push(None);
        rows.push(Row::new(
            &format!("hearth {start}"),
            hearth_version.clone(),
            if start == "spawn" {
                "daemon, a new sandbox per invocation (X-Hearth-Start: spawn), the Invoke round trip included; /tmp is an ext4 image on a loop device made within the cold start".into()
            } else {
                "daemon, a pre-warmed blank sandbox per invocation (X-Hearth-Start: blank), its /tmp made in advance".into()
            },
        ));
    }
    let mut driver = Some(driver);
    for peer in peers {
        let exe = find_exe(peer.command());
        let version = exe.as_deref().map(version_line).unwrap_or_default();
        let mut note = String::new();
        let contender = match (peer, exe) {
            (_, None) => None,
            (Peer::Crun | Peer::Runc, Some(exe)) => {
                let state = dir.join(format!("state-{}", peer.command()));
                let bundle = dir.join(format!("bundle-{}", peer.command()));
                for d in [&state, &bundle] {
                    std::fs::create_dir(d).map_err(|e| fail(format!("{}: {e}", d.display())))?;
                }
                if let Some(c) = shared
                    .cleanup
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .as_mut()
                {
                    c.oci.push((exe.clone(), state.clone()));
                }
                let hide = peer == Peer::Crun && hybrid;
                note = "OCI bundle, /tmp a tmpfs; seccomp: an OCI profile translated from Hearth's policy, compiled by libseccomp at each start (64-bit comparisons where Hearth's are 32-bit".into();
                if ws.seccomp_dropped > 0 {
                    note.push_str(&format!(
                        "; {} same-argument comparison dropped",
                        ws.seccomp_dropped
                    ));
                }
                note.push(')');
                if hide {
                    note.push_str("; in a private mount ns hiding cgroup2's controllers (crun refuses hybrid hosts)");
                }
                expect.push(Some(Expect {
                    uid: SBX_ID,
                    memory_bytes,
                    no_bounding: true,
                }));
                Some(Contender::Oci {
                    exe,
                    state,
                    bundle,
                    hide,
                })
            }
            (Peer::Bwrap, Some(exe)) => {
                note = "uid 0 with no capabilities but a full bounding set (bwrap cannot change uid without a user ns); Hearth's two BPF programs as they are; a cgroup made by hearth bench; /tmp a tmpfs; no masked /proc paths, no RLIMIT_NOFILE".into();
                expect.push(Some(Expect {
                    uid: 0,
                    memory_bytes,
                    no_bounding: false,
                }));
                Some(Contender::Bwrap { exe })
            }
        };
        let mut row = Row::new(peer.command(), version, note);
        match contender {
            Some(c) => contenders.push(c),
            None => {
                row.error = Some(format!(
                    "{} not found (Debian package {})",
                    peer.command(),
                    peer.package()
                ));
                expect.push(None);
                contenders.push(Contender::Bwrap {
                    exe: PathBuf::new(),
                });
            }
        }
        rows.push(row);
    }
    let driver = match driver.take() {
        Some(Ok(d)) => Some(d),
        Some(Err(e)) => {
            for (c, row) in contenders.iter().zip(rows.iter_mut()) {
                if matches!(c, Contender::Bwrap { .. }) && row.error.is_none() {
                    row.error = Some(format!("cannot make its cgroup: {e}"));
                }
            }
            None
        }
        None => None,
    };
    let mut state = Peers {
        ws: &ws,
        listener,
        driver,
        memory_mb: a.memory,
        event: a.payload.as_bytes().to_vec(),
        seq: 0,
    };
    // One run of contender `i`, under the run lock; Hearth's runs then wait for the daemon
    // to finish its background work, so that it never lands in the next contender's run.
    let mut not_quiet = vec![0u64; contenders.len()];
    let mut run_one = |state: &mut Peers<'_>,
                       i: usize,
                       c: &mut Contender,
                       check: Option<Expect>|
     -> Option<Result<RunOutcome, String>> {
        let _run = shared.run.lock().unwrap_or_else(|p| p.into_inner());
        if shared.stop.load(Ordering::SeqCst) {
            return None;
        }
        Some(match c {
            Contender::Hearth { conn } => {
                let r = run_hearth(conn).map(|(ns, k)| (ns, Some(k), None));
                if !wait_quiet(&socket) {
                    not_quiet[i] += 1;
                }
                r
            }
            other => state
                .run_peer(other, check)
                .map(|(ns, checked)| (ns, None, checked)),
        })
    };
    // Sanity: one run each (the peers' echoes checked); a failure leaves the contender out.
    for (i, c) in contenders.iter_mut().enumerate() {
        if rows[i].error.is_none() {
            match run_one(&mut state, i, c, expect[i]) {
                Some(Ok((_, _, checked))) => rows[i].checked = checked,
                Some(Err(e)) => rows[i].error = Some(format!("first run failed: {e}")),
                None => {}
            }
        }
    }
    let live: Vec<usize> = (0..contenders.len())
        .filter(|&i| rows[i].error.is_none())
        .collect();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0x9E37_79B9_7F4A_7C15, |d| d.as_nanos() as u64)
        | 1;
    let mut order = Order(seed);
    let noise_before = noise_start.cpu_from_now();
    let total = (a.warmup + a.runs) * live.len() as u64;
    let progress = progress::Progress::start("peers", Some(total), None);
    let mut kinds: Vec<[u64; 5]> = vec![[0; 5]; contenders.len()];
    'rounds: for round in 0..a.warmup + a.runs {
        let timed = round >= a.warmup;
        for i in order.shuffle(&live) {
            let Some(r) = run_one(&mut state, i, &mut contenders[i], None) else {
                break 'rounds;
            };
            progress::tick();
            if !timed {
                continue;
            }
            let row = &mut rows[i];
            match r {
                Ok((ns, kind, _)) => {
                    row.ok += 1;
                    row.samples_ns.push(ns);
                    if let Some(kind) = kind {
                        kinds[i][kind.index()] += 1;
                    }
                }
                Err(e) => {
                    row.errors += 1;
                    row.first_error.get_or_insert(e);
                }
            }
        }
    }
    drop(progress);
    drop(state);
    for (i, c) in contenders.iter().enumerate() {
        if matches!(c, Contender::Hearth { .. }) {
            rows[i].start_kinds = Some(super::report::start_kinds(&kinds[i]));
            if not_quiet[i] > 0 {
                rows[i].note.push_str(&format!(
                    "; {} runs' background work outlasted {} s",
                    not_quiet[i],
                    QUIET_BOUND.as_secs()
                ));
            }
        }
    }
    let base = summarise(&mut rows);
    let warnings = noise::after(
        &noise_before,
        Machine::probe().cpus,
        base.map(|b| (b.p50, b.p99)),
    );
    shared.clean_up();
    drop(function);
    drop(daemon);
    Ok(PeersReport {
        schema: "hearth-bench/1",
        mode: "peers",
        function: "built-in provided echo".into(),
        started_at,
        machine: Machine::probe(),
        params: json!({
            "runs": a.runs, "warmup": a.warmup, "memory_mb": a.memory, "pids": PIDS,
            "tmp_mb": TMP_MB, "payload_bytes": a.payload.len(),
            "peers": a.peers, "order_seed": seed,
        }),
        contenders: rows,
        warnings,
    })
}

impl Row {
    fn new(name: &str, version: String, note: String) -> Row {
        Row {
            name: name.into(),
            version,
            note,
            error: None,
            ok: 0,
            errors: 0,
            first_error: None,
            latency_ms: None,
            ratio_p50: None,
            ratio_p99: None,
            start_kinds: None,
            checked: None,
            samples_ns: Vec::new(),
        }
    }
}

/// Fills every row's summary and its ratios to the first row (`hearth spawn`); returns
/// that row's summary.
fn summarise(rows: &mut [Row]) -> Option<SummaryMs> {
    for row in rows.iter_mut() {
        row.latency_ms = Summary::of(&mut row.samples_ns).map(|s| s.ms());
    }
    let base = rows.first().and_then(|r| r.latency_ms);
    for row in rows.iter_mut() {
        if let (Some(b), Some(l)) = (base, row.latency_ms) {
            row.ratio_p50 = (b.p50 > 0.0).then(|| l.p50 / b.p50);
            row.ratio_p99 = (b.p99 > 0.0).then(|| l.p99 / b.p99);
        }
    }
    base
}

impl PeersReport {
    /// The terminal table.
    pub fn table(&self) -> String {
        let mut s = format!(
            "hearth bench peers: cold start of the built-in provided echo, {} runs each in shuffled rounds ({} untimed rounds first)\n",
            self.params["runs"], self.params["warmup"]
        );
        s.push_str(&format!(
            "limits for all: {} MB (and its CPU share), {} pids, /tmp {} MB, read-only host root, 6 namespaces, no capabilities, Hearth's seccomp policy\n",
            self.params["memory_mb"], PIDS, TMP_MB
        ));
        s.push_str(&format!("machine: {}\n\n", self.machine.line()));
        s.push_str(&format!(
            "{:<13} {:>5} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}\n",
            "contender", "ok", "p50 ms", "p90 ms", "p99 ms", "max ms", "mean ms", "p50 ×", "p99 ×"
        ));
        let x = |r: Option<f64>| r.map_or("-".into(), |v| format!("{v:.2}"));
        for r in &self.contenders {
            match (&r.error, r.latency_ms) {
                (Some(e), _) => s.push_str(&format!("{:<13} not measured: {e}\n", r.name)),
                (None, None) => s.push_str(&format!(
                    "{:<13} {:>5} no successful run: {}\n",
                    r.name,
                    r.ok,
                    r.first_error.as_deref().unwrap_or("")
                )),
                (None, Some(l)) => s.push_str(&format!(
                    "{:<13} {:>5} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9} {:>9}\n",
                    r.name,
                    r.ok,
                    l.p50,
                    l.p90,
                    l.p99,
                    l.max,
                    l.mean,
                    x(r.ratio_p50),
                    x(r.ratio_p99)
                )),
            }
        }
        s.push_str("\n× = the contender's figure divided by hearth spawn's (above 1: slower than Hearth)\n");
        for r in &self.contenders {
            let mut line = format!("{}: {}", r.name, r.version);
            if !r.note.is_empty() {
                line.push_str(&format!("; {}", r.note));
            }
            if let Some(c) = &r.checked {
                line.push_str(&format!("; {c}"));
            }
            if let Some(k) = &r.start_kinds {
                let kinds: Vec<String> = k.iter().map(|(k, n)| format!("{k} {n}")).collect();
                line.push_str(&format!("; starts: {}", kinds.join(", ")));
            }
            if r.errors > 0 {
                line.push_str(&format!(
                    "; {} failed runs, first: {}",
                    r.errors,
                    r.first_error.as_deref().unwrap_or("")
                ));
            }
            s.push_str(&line);
            s.push('\n');
        }
        s
    }

    pub fn write_json(&self, path: &Path) -> Result<(), BenchError> {
        let text = serde_json::to_string_pretty(self).expect("a report always serialises");
        std::fs::write(path, text + "\n").map_err(|source| BenchError::Write {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Every measured contender's latency CDF in one SVG chart.
    pub fn write_chart(&self, path: &Path) -> Result<(), BenchError> {
        use plotters::prelude::*;
        let series: Vec<(String, Vec<(f64, f64)>)> = self
            .contenders
            .iter()
            .map(|r| (r.name.clone(), super::chart::cdf_points(&r.samples_ns)))
            .collect();
        // The x axis up to the largest p99, so one slow outlier does not squash the rest.
        let x_max = self
            .contenders
            .iter()
            .filter_map(|r| r.latency_ms.map(|l| l.p99))
            .fold(0.001f64, f64::max)
            * 1.1;
        let title = format!(
            "hearth bench peers: cold start latency CDF ({} MB)",
            self.params["memory_mb"]
        );
        let mut svg = String::new();
        let drawn = (|| -> Result<(), Box<dyn std::error::Error>> {
            let root = SVGBackend::with_string(&mut svg, (960, 540)).into_drawing_area();
            root.fill(&WHITE)?;
            super::chart::draw_cdfs(
                &root,
                &title,
                "cold start in ms: Invoke (Hearth) or fork (peers) to the answer; axis to the largest p99",
                "fraction of runs",
                &series,
                x_max,
            )?;
            root.present()?;
            Ok(())
        })();
        drawn.map_err(|e| BenchError::Chart {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })?;
        std::fs::write(path, svg).map_err(|source| BenchError::Write {
            path: path.to_path_buf(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_translates_to_an_oci_profile() {
        let policy = json!({
            "main": {"mismatch_action": {"errno": 1}, "match_action": "allow", "filter": [
                {"syscall": "read"},
                {"syscall": "clone", "args": [{"index": 0, "type": "dword",
                    "op": {"masked_eq": 2114060288u64}, "val": 0}]},
                {"syscall": "ioctl", "args": [
                    {"index": 1, "type": "dword", "op": "ne", "val": 21522},
                    {"index": 1, "type": "dword", "op": "ne", "val": 21532}]},
            ]},
            "enosys": {"mismatch_action": "allow", "match_action": {"errno": 38},
                       "filter": [{"syscall": "clone3"}]},
        });
        let (p, dropped) = oci_seccomp(&policy).unwrap();
        assert_eq!(dropped, 1);
        assert_eq!(p["defaultAction"], "SCMP_ACT_ERRNO");
        assert_eq!(p["defaultErrnoRet"], 1);
        let sc = p["syscalls"].as_array().unwrap();
        assert_eq!(sc.len(), 4);
        assert_eq!(
            sc[0],
            json!({"names": ["read"], "action": "SCMP_ACT_ALLOW"})
        );
        assert_eq!(
            sc[1]["args"][0],
            json!({"index": 0, "value": 2114060288u64, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"})
        );
        assert_eq!(sc[2]["args"].as_array().unwrap().len(), 1);
        assert_eq!(sc[2]["args"][0]["value"], 21522);
        assert_eq!(
            sc[3],
            json!({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38})
        );
    }

    #[test]
    fn the_real_policy_translates() {
        let text = crate::sandbox::seccomp::SeccompPolicy::compile()
            .unwrap()
            .policy_json()
            .unwrap();
        let (p, _) = oci_seccomp(&serde_json::from_slice(&text).unwrap()).unwrap();
        assert!(p["syscalls"].as_array().unwrap().len() > 200);
    }

    #[test]
    fn ratios_are_to_the_first_row() {
        let mut rows = vec![
            Row::new("hearth spawn", String::new(), String::new()),
            Row::new("crun", String::new(), String::new()),
        ];
        rows[0].samples_ns = vec![2_000_000; 10];
        rows[1].samples_ns = vec![5_000_000; 10];
        let base = summarise(&mut rows).unwrap();
        assert_eq!(base.p50, 2.0);
        assert_eq!(rows[1].ratio_p50, Some(2.5));
        assert_eq!(rows[0].ratio_p99, Some(1.0));
    }
}
