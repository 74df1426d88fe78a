//! `SpawnPlan`: everything the sandbox child needs, computed in the parent before the
//! clone — C strings, `argv`/`envp` pointer arrays, the mount list, clone flags, the
//! identity, rlimits — so that between `clone` and `execve` the child allocates nothing,
//! looks nothing up and decides nothing.
//!
//! Also the validation of a [`SandboxSpec`] (limits in range, environment well formed),
//! so a bad request is refused before anything is created.
//!
//! A blank sandbox's plan ([`build_blank`]) has no command: its exec plan arrives later,
//! encoded ([`super::assign`]), and init reads it through the same [`ExecView`] the spawn
//! path uses.

use std::ffi::{CStr, CString, OsStr, OsString};
use std::os::fd::{OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use libc::c_char;

use super::caps::{self, CapsPlan};
use super::listen::{self, ListenPlan};
use super::mounts::{self, MountOp, MountSpec, RootSource};
use super::ns::{self, NsPlan};
use super::rlimits::{self, Rlimit};
use super::scratch::ScratchVolume;

/// Memory limits accepted, in MB (AWS Lambda's range).
pub const MEMORY_MB: std::ops::RangeInclusive<u64> = 128..=10_240;
/// `/tmp` sizes accepted, in MB (AWS Lambda's ephemeral-storage range).
pub const TMP_MB: std::ops::RangeInclusive<u64> = 512..=10_240;
/// Default pids limit (processes and threads); Lambda allows 1,024.
pub const DEFAULT_PIDS: u64 = 1024;
/// The uid/gid functions run as (Lambda's `sbx_user1051` is uid 993, gid 990).
pub const SANDBOX_UID: u32 = 993;
pub const SANDBOX_GID: u32 = 990;
/// `PATH` when the caller sets none (Lambda's, minus `/var/lang/bin`).
pub const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin:/opt/bin";

/// What a caller asks for: one command in one sandbox.
#[derive(Debug, Clone)]
pub struct SandboxSpec {
    /// The command and its arguments; `argv[0]` is looked up in `PATH` if it has no `/`.
    pub argv: Vec<OsString>,
    /// Extra environment, applied over the defaults (`PATH`, `LANG`, `TZ`).
    pub env: Vec<(OsString, OsString)>,
    /// Memory limit in MB (swap off).
    pub memory_mb: u64,
    /// Size of `/tmp` in MB.
    pub tmp_mb: u64,
    /// Maximum number of processes and threads.
    pub pids: u64,
    /// Mounted read-only at `/var/task`, the working directory.
    pub code: Option<PathBuf>,
    /// Mounted read-only at `/var/runtime` (Hearth's managed runtimes).
    pub runtime_dir: Option<PathBuf>,
    pub root: RootSource,
    pub hostname: String,
    pub uid: u32,
    pub gid: u32,
    /// Start with the CPU share of a sandbox of this many MB (if larger than `memory_mb`)
    /// until `SandboxHost::end_cpu_boost`: a function's init phase runs on a full share,
    /// the invocations on its own (see `instance`).
    pub cpu_boost_mb: Option<u64>,
    /// Serve the Runtime API inside: init creates `127.0.0.1:9001` and the abstract Unix
    /// socket in the sandbox's network namespace and hands them over (see `listen`).
    pub runtime_api: bool,
    /// The command's stdin, stdout and stderr; `None` inherits `hearth`'s. Borrowed: the
    /// caller keeps them open until `SandboxHost::create` returns (they are duplicated).
    pub stdio: Option<[RawFd; 3]>,
}

impl SandboxSpec {
    /// A spec with the defaults of `hearth run`.
    pub fn new(argv: Vec<OsString>) -> SandboxSpec {
        SandboxSpec {
            argv,
            env: Vec::new(),
            memory_mb: 128,
            tmp_mb: 512,
            pids: DEFAULT_PIDS,
            code: None,
            runtime_dir: None,
            root: RootSource::HostBinds,
            hostname: "hearth".to_string(),
            uid: SANDBOX_UID,
            gid: SANDBOX_GID,
            cpu_boost_mb: None,
            runtime_api: false,
            stdio: None,
        }
    }
}

/// Why a spec was refused.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("memory must be between 128 and 10240 MB, got {0}")]
    Memory(u64),
    #[error("tmp size must be between 512 and 10240 MB, got {0}")]
    TmpSize(u64),
    #[error("pids limit must be between 1 and 4194304, got {0}")]
    Pids(u64),
    #[error("no command given")]
    NoCommand,
    #[error("argument or environment contains a NUL byte: {0:?}")]
    Nul(OsString),
    #[error("environment variable name {0:?} is empty or contains '='")]
    EnvName(OsString),
    #[error(transparent)]
    Mounts(#[from] mounts::MountsError),
    #[error(transparent)]
    Caps(#[from] caps::CapsError),
    #[error(transparent)]
    Ns(#[from] ns::NsError),
    #[error("preparing the runtime API listeners: {0}")]
    Listen(nix::errno::Errno),
    #[error("duplicating the sandbox's stdio descriptor {fd}: {errno}")]
    Stdio { fd: RawFd, errno: nix::errno::Errno },
}

/// Checks a spec's numbers and strings (no filesystem access).
pub fn validate(spec: &SandboxSpec) -> Result<(), PlanError> {
    validate_limits(spec)?;
    if spec.argv.is_empty() || spec.argv[0].is_empty() {
        return Err(PlanError::NoCommand);
    }
    for (k, _) in &spec.env {
        if k.is_empty() || k.as_bytes().contains(&b'=') {
            return Err(PlanError::EnvName(k.clone()));
        }
    }
    Ok(())
}

/// Checks a spec's limits only: all a blank sandbox's template needs (its command and
/// environment come with the assignment).
pub fn validate_limits(spec: &SandboxSpec) -> Result<(), PlanError> {
    if !MEMORY_MB.contains(&spec.memory_mb) {
        return Err(PlanError::Memory(spec.memory_mb));
    }
    if !TMP_MB.contains(&spec.tmp_mb) {
        return Err(PlanError::TmpSize(spec.tmp_mb));
    }
    if !(1..=4_194_304).contains(&spec.pids) {
        return Err(PlanError::Pids(spec.pids));
    }
    Ok(())
}

/// The command, ready for `execve`.
#[derive(Debug)]
pub struct ExecPlan {
    /// Paths to try in order (the `PATH` search, done as `execvp` would: `ENOENT` moves
    /// on, the first other error is remembered).
    pub candidates: Vec<CString>,
    /// What the user typed, for messages.
    pub display: String,
    pub cwd: CString,
    // The pointer arrays point into these; they never change after construction.
    _argv: Vec<CString>,
    _envp: Vec<CString>,
    argv_ptrs: Vec<*const c_char>,
    envp_ptrs: Vec<*const c_char>,
}

impl ExecPlan {
    /// NULL-terminated `argv`.
    pub fn argv(&self) -> &[*const c_char] {
        &self.argv_ptrs
    }
    /// NULL-terminated `envp`.
    pub fn envp(&self) -> &[*const c_char] {
        &self.envp_ptrs
    }
    /// The arguments, `argv[0]` first.
    pub fn args(&self) -> &[CString] {
        &self._argv
    }
    /// The environment, `K=V` each.
    pub fn env(&self) -> &[CString] {
        &self._envp
    }
    /// What the command's process execs, as `command_side` reads it.
    pub fn view(&self) -> ExecView<'_> {
        ExecView {
            cwd: &self.cwd,
            candidates: Candidates::List(&self.candidates),
            argv: &self.argv_ptrs,
            envp: &self.envp_ptrs,
        }
    }
}

/// The command as the sandbox child execs it, borrowed either from an [`ExecPlan`] (the
/// spawn path) or from init's buffer of decoded exec bytes (the blank path). Copying it
/// allocates nothing.
#[derive(Debug, Clone, Copy)]
pub struct ExecView<'a> {
    pub cwd: &'a CStr,
    pub candidates: Candidates<'a>,
    /// NULL-terminated.
    pub argv: &'a [*const c_char],
    /// NULL-terminated.
    pub envp: &'a [*const c_char],
}

/// The `PATH` candidates of an [`ExecView`].
#[derive(Debug, Clone, Copy)]
pub enum Candidates<'a> {
    List(&'a [CString]),
    /// `count` NUL-terminated strings back to back.
    Packed {
        bytes: &'a [u8],
        count: usize,
    },
}

impl<'a> Candidates<'a> {
    /// The candidates in order (allocation-free).
    pub fn iter(&self) -> CandidateIter<'a> {
        CandidateIter {
            candidates: *self,
            next: 0,
            offset: 0,
        }
    }
}

/// Iterator over [`Candidates`].
#[derive(Debug)]
pub struct CandidateIter<'a> {
    candidates: Candidates<'a>,
    next: usize,
    offset: usize,
}

impl<'a> Iterator for CandidateIter<'a> {
    type Item = &'a CStr;

    fn next(&mut self) -> Option<&'a CStr> {
        match self.candidates {
            Candidates::List(list) => {
                let c = list.get(self.next)?;
                self.next += 1;
                Some(c.as_c_str())
            }
            Candidates::Packed { bytes, count } => {
                if self.next >= count {
                    return None;
                }
                let c = CStr::from_bytes_until_nul(bytes.get(self.offset..)?).ok()?;
                self.offset += c.to_bytes_with_nul().len();
                self.next += 1;
                Some(c)
            }
        }
    }
}

fn cstring(s: &OsStr) -> Result<CString, PlanError> {
    CString::new(s.as_bytes()).map_err(|_| PlanError::Nul(s.to_os_string()))
}

/// Builds the exec plan: environment defaults, `PATH` search candidates.
pub fn exec_plan(spec: &SandboxSpec, cwd: &str) -> Result<ExecPlan, PlanError> {
    let mut env: Vec<(OsString, OsString)> = vec![
        ("PATH".into(), DEFAULT_PATH.into()),
        ("LANG".into(), "C.UTF-8".into()),
        ("TZ".into(), ":UTC".into()),
    ];
    for (k, v) in &spec.env {
        match env.iter_mut().find(|(ek, _)| ek == k) {
            Some(slot) => slot.1 = v.clone(),
            None => env.push((k.clone(), v.clone())),
        }
    }
    let path_var = env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();

    let cmd = &spec.argv[0];
    let candidates = if cmd.as_bytes().contains(&b'/') {
        vec![cstring(cmd)?]
    } else {
        let mut c = Vec::new();
        for dir in path_var.as_bytes().split(|b| *b == b':') {
            // An empty PATH entry means the current directory, as in execvp.
            let dir = if dir.is_empty() { b"." as &[u8] } else { dir };
            let full = Path::new(OsStr::from_bytes(dir)).join(cmd);
            c.push(cstring(full.as_os_str())?);
        }
        c
    };

    let argv: Vec<CString> = spec
        .argv
        .iter()
        .map(|a| cstring(a))
        .collect::<Result<_, _>>()?;
    let envp: Vec<CString> = env
        .iter()
        .map(|(k, v)| {
            let mut kv = k.clone();
            kv.push("=");
            kv.push(v);
            cstring(&kv)
        })
        .collect::<Result<_, _>>()?;
    let mut argv_ptrs: Vec<*const c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_ptrs.push(std::ptr::null());
    let mut envp_ptrs: Vec<*const c_char> = envp.iter().map(|e| e.as_ptr()).collect();
    envp_ptrs.push(std::ptr::null());
    Ok(ExecPlan {
        candidates,
        display: cmd.to_string_lossy().into_owned(),
        cwd: CString::new(cwd).map_err(|_| PlanError::Nul(cwd.into()))?,
        _argv: argv,
        _envp: envp,
        argv_ptrs,
        envp_ptrs,
    })
}

/// Everything the child needs.
#[derive(Debug)]
pub struct SpawnPlan {
    pub ns: NsPlan,
    pub mounts: Vec<MountOp>,
    pub caps: CapsPlan,
    pub rlimits: Vec<Rlimit>,
    /// The command; `None` for a blank sandbox, whose command comes with its assignment.
    pub exec: Option<ExecPlan>,
    /// The Runtime API listeners init creates, if the sandbox serves the API.
    pub listen: Option<ListenPlan>,
    /// The command's stdin, stdout, stderr: duplicates (at 3 or above, close-on-exec) that
    /// init moves to 0, 1, 2; `None` keeps `hearth`'s.
    pub stdio: Option<[OwnedFd; 3]>,
}

/// Builds the plan. `staging` is the empty host directory the root is assembled on;
/// `into_cgroup` says whether the clone will use `CLONE_INTO_CGROUP`.
pub fn build(
    spec: &SandboxSpec,
    staging: &Path,
    scratch: Option<&ScratchVolume>,
    into_cgroup: bool,
) -> Result<SpawnPlan, PlanError> {
    validate(spec)?;
    build_any(spec, staging, scratch, into_cgroup, false)
}

/// Builds the plan of a blank sandbox: everything of [`build`] but the command, the code
/// at `/var/task` (its mount point stays, empty) and the stdio — `spec`'s `argv`, `env`,
/// `code` and `stdio` are ignored.
pub fn build_blank(
    spec: &SandboxSpec,
    staging: &Path,
    scratch: Option<&ScratchVolume>,
    into_cgroup: bool,
) -> Result<SpawnPlan, PlanError> {
    validate_limits(spec)?;
    build_any(spec, staging, scratch, into_cgroup, true)
}

fn build_any(
    spec: &SandboxSpec,
    staging: &Path,
    scratch: Option<&ScratchVolume>,
    into_cgroup: bool,
    blank: bool,
) -> Result<SpawnPlan, PlanError> {
    let ns = ns::plan(&spec.hostname, into_cgroup)?;
    let mounts = mounts::plan(&MountSpec {
        staging,
        root: &spec.root,
        code: if blank { None } else { spec.code.as_deref() },
        runtime: spec.runtime_dir.as_deref(),
        scratch,
        hostname: &spec.hostname,
        uid: spec.uid,
        gid: spec.gid,
    })?;
    let caps = caps::plan(spec.uid, spec.gid)?;
    let cwd = CWD;
    Ok(SpawnPlan {
        ns,
        mounts,
        caps,
        rlimits: rlimits::plan(),
        exec: if blank {
            None
        } else {
            Some(exec_plan(spec, cwd)?)
        },
        listen: if spec.runtime_api {
            Some(listen::plan().map_err(PlanError::Listen)?)
        } else {
            None
        },
        stdio: match spec.stdio {
            Some(fds) if !blank => Some(dup_stdio(fds)?),
            _ => None,
        },
    })
}

/// The working directory of every command: Lambda's is /var/task, whether or not code is
/// mounted there.
pub const CWD: &str = "/var/task";

/// Duplicates the caller's stdio descriptors to numbers ≥ 3, close-on-exec, so that init
/// can `dup2` them onto 0, 1, 2 without clobbering one with another.
fn dup_stdio(fds: [RawFd; 3]) -> Result<[OwnedFd; 3], PlanError> {
    use nix::fcntl::{fcntl, FcntlArg};
    let dup = |fd: RawFd| {
        fcntl(fd, FcntlArg::F_DUPFD_CLOEXEC(3))
            .map(crate::sys::fd::own)
            .map_err(|errno| PlanError::Stdio { fd, errno })
    };
    Ok([dup(fds[0])?, dup(fds[1])?, dup(fds[2])?])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(argv: &[&str]) -> SandboxSpec {
        SandboxSpec::new(argv.iter().map(OsString::from).collect())
    }

    #[test]
    fn limits_are_validated() {
        let mut s = spec(&["true"]);
        validate(&s).unwrap();
        s.memory_mb = 64;
        assert_eq!(
            validate(&s).unwrap_err().to_string(),
            "memory must be between 128 and 10240 MB, got 64"
        );
        s.memory_mb = 20_000;
        assert!(validate(&s).is_err());
        s.memory_mb = 10_240;
        s.tmp_mb = 511;
        assert!(validate(&s).is_err());
        s.tmp_mb = 512;
        s.pids = 0;
        assert!(validate(&s).is_err());
        assert!(matches!(
            validate(&spec(&[])).unwrap_err(),
            PlanError::NoCommand
        ));
    }

    #[test]
    fn path_search_candidates_follow_path() {
        let mut s = spec(&["true", "x"]);
        s.env.push(("PATH".into(), "/a::/b".into()));
        let e = exec_plan(&s, "/var/task").unwrap();
        let c: Vec<_> = e.candidates.iter().map(|c| c.to_str().unwrap()).collect();
        assert_eq!(c, ["/a/true", "./true", "/b/true"]);
        assert_eq!(e.argv().len(), 3);
        assert!(e.argv()[2].is_null());
        assert!(e.envp().last().unwrap().is_null());
    }

    #[test]
    fn slash_commands_are_not_searched_and_env_overrides_defaults() {
        let mut s = spec(&["./run.sh"]);
        s.env.push(("LANG".into(), "fr_FR.UTF-8".into()));
        s.env.push(("A".into(), "b=c".into()));
        let e = exec_plan(&s, "/var/task").unwrap();
        assert_eq!(e.candidates.len(), 1);
        let env: Vec<String> = e._envp.iter().map(|c| c.to_str().unwrap().into()).collect();
        assert!(env.contains(&"LANG=fr_FR.UTF-8".to_string()));
        assert!(env.contains(&"A=b=c".to_string()));
        assert_eq!(env.iter().filter(|e| e.starts_with("LANG=")).count(), 1);
    }

    #[test]
    fn views_list_the_plans_candidates_and_packed_ones_alike() {
        let mut s = spec(&["true"]);
        s.env.push(("PATH".into(), "/a:/b".into()));
        let e = exec_plan(&s, CWD).unwrap();
        let v = e.view();
        let listed: Vec<_> = v.candidates.iter().map(|c| c.to_owned()).collect();
        assert_eq!(listed, [c"/a/true".to_owned(), c"/b/true".to_owned()]);
        assert_eq!(v.cwd, c"/var/task");
        let packed = Candidates::Packed {
            bytes: b"/x\0/y/z\0",
            count: 2,
        };
        let got: Vec<_> = packed.iter().collect();
        assert_eq!(got, [c"/x", c"/y/z"]);
        // A count beyond the bytes ends the iteration instead of reading past them.
        let short = Candidates::Packed {
            bytes: b"/x\0",
            count: 3,
        };
        assert_eq!(short.iter().count(), 1);
    }

    #[test]
    fn blank_plans_have_no_command_code_or_stdio() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = SandboxSpec::new(Vec::new());
        s.code = Some(dir.path().to_path_buf());
        s.stdio = Some([0, 1, 2]);
        assert!(matches!(
            build(&s, Path::new("/s"), None, true),
            Err(PlanError::NoCommand)
        ));
        let p = build_blank(&s, Path::new("/s"), None, true).unwrap();
        assert!(p.exec.is_none() && p.stdio.is_none());
        let code = CString::new(dir.path().as_os_str().as_bytes()).unwrap();
        assert!(!p.mounts.iter().any(|m| matches!(
            m,
            MountOp::Mount { source: Some(src), .. } if *src == code
        )));
        s.tmp_mb = 100;
        assert!(matches!(
            build_blank(&s, Path::new("/s"), None, true),
            Err(PlanError::TmpSize(100))
        ));
    }

    #[test]
    fn bad_env_names_and_nuls_are_refused() {
        let mut s = spec(&["true"]);
        s.env.push(("A=B".into(), "c".into()));
        assert!(validate(&s).is_err());
        let s = spec(&["tr\0ue"]);
        assert!(exec_plan(&s, "/").is_err());
    }
}
