//! THE ordered set-up sequence of a sandbox. Every other document points here; nothing
//! restates it.
//!
//! Three functions, one per process, each a numbered list of calls into the mechanism
//! modules (`ns`, `mounts`, `cgroup`, `caps`, `rlimits`, `seccomp`):
//!
//! * [`spawn`] — the parent (`hearth`), before and right after the clone;
//! * `child_side` — the sandbox's init (pid 1 of the new pid namespace), which builds the
//!   sandbox and then supervises the command ([`super::init`]);
//! * `command_side` — the command's process, which drops every privilege and execs.
//!
//! Between the clone and `execve` nothing allocates, locks or logs: every input is in the
//! [`SpawnPlan`] — or, for a blank sandbox, in the assignment init receives into fixed
//! buffers on its stack. That is also what makes cloning from a multi-threaded `hearth`
//! (the blank pool's thread) sound: the child never touches a lock another thread may have
//! held at the clone. A failing step reports `(step, errno)` — init over the channel, the
//! command over a close-on-exec pipe whose end-of-file means the exec succeeded — and
//! exits: the command never runs in a half-built sandbox (fail closed).
//!
//! Blank sandboxes (`SandboxHost::create_blank`) follow the same list; they branch only at
//! init's step 8, where a blank reports [`Message::Ready`] and waits for
//! [`Message::Assign`] instead of the release (see `child_side`, 8a–8e, and [`assign`] for
//! the parent's side).

use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};

use super::assign::{self, MAX_EXEC_BYTES, MAX_EXEC_POINTERS};
use super::caps::{self, CapsStep};
use super::init;
use super::listen::{self, ListenStep};
use super::mounts;
use super::ns::{self, NsStep};
use super::plan::{ExecView, SpawnPlan};
use super::rlimits;
use super::seccomp::SeccompPolicy;
use super::sync::{self, stamp, Message, CHUNK_LEN, MESSAGE_LEN, STAMPS};
use crate::sys::socket::{self as sock, MAX_FDS};
use crate::sys::{fd, mount, process};

/// Set-up steps, as reported in [`Message::SetupFailed`]. Mount failures are
/// `MOUNT_BASE + index` into the plan's mount list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Step {
    JoinCgroup = 12,
    Stdio = 13,
    RuntimeApiTcp = 14,
    RuntimeApiUnix = 15,
    RuntimeApiSend = 16,
    CloseFds = 1,
    ParentDeathSignal = 2,
    WaitRelease = 3,
    NewSession = 4,
    BlockSignals = 5,
    CgroupNamespace = 6,
    Hostname = 7,
    Loopback = 8,
    NotDumpable = 9,
    ExecPipe = 10,
    ForkCommand = 11,
    CommandSession = 20,
    CommandSignals = 21,
    Chdir = 22,
    Rlimits = 23,
    NoNewPrivs = 24,
    BoundingSet = 25,
    AmbientCaps = 26,
    Groups = 27,
    SetGid = 28,
    SetUid = 29,
    Capset = 30,
    CommandDeathSignal = 31,
    CloseOnExec = 32,
    Seccomp = 33,
    Exec = 34,
    BlankReady = 35,
    AssignReceive = 36,
    ExecBytes = 37,
    MountCode = 38,
}

/// At most this many cgroup `tasks` fds (one per v1 hierarchy).
pub const MAX_JOIN_FDS: usize = 8;

/// Mount failures are reported as this plus the index of the mount op.
pub const MOUNT_BASE: u32 = 1000;

impl Step {
    const ALL: [Step; 35] = [
        Step::JoinCgroup,
        Step::Stdio,
        Step::RuntimeApiTcp,
        Step::RuntimeApiUnix,
        Step::RuntimeApiSend,
        Step::CloseFds,
        Step::ParentDeathSignal,
        Step::WaitRelease,
        Step::NewSession,
        Step::BlockSignals,
        Step::CgroupNamespace,
        Step::Hostname,
        Step::Loopback,
        Step::NotDumpable,
        Step::ExecPipe,
        Step::ForkCommand,
        Step::CommandSession,
        Step::CommandSignals,
        Step::Chdir,
        Step::Rlimits,
        Step::NoNewPrivs,
        Step::BoundingSet,
        Step::AmbientCaps,
        Step::Groups,
        Step::SetGid,
        Step::SetUid,
        Step::Capset,
        Step::CommandDeathSignal,
        Step::CloseOnExec,
        Step::Seccomp,
        Step::Exec,
        Step::BlankReady,
        Step::AssignReceive,
        Step::ExecBytes,
        Step::MountCode,
    ];

    /// The step with this wire code.
    pub fn from_code(code: u32) -> Option<Step> {
        Step::ALL.iter().copied().find(|s| *s as u32 == code)
    }

    /// A short description for error messages.
    pub fn describe(self) -> &'static str {
        match self {
            Step::JoinCgroup => "joining the sandbox's cgroups",
            Step::Stdio => "installing the command's stdin, stdout and stderr",
            Step::RuntimeApiTcp => "listening on 127.0.0.1:9001 for the runtime API",
            Step::RuntimeApiUnix => "listening on the runtime API's unix socket",
            Step::RuntimeApiSend => "handing the runtime API listeners to hearth",
            Step::CloseFds => "closing inherited descriptors",
            Step::ParentDeathSignal => "setting the parent-death signal",
            Step::WaitRelease => "waiting for the parent",
            Step::NewSession => "starting a new session",
            Step::BlockSignals => "blocking signals in init",
            Step::CgroupNamespace => "entering a cgroup namespace",
            Step::Hostname => "setting the hostname",
            Step::Loopback => "bringing up lo",
            Step::NotDumpable => "making init non-dumpable",
            Step::ExecPipe => "creating the exec-status pipe",
            Step::ForkCommand => "forking the command",
            Step::CommandSession => "starting the command's session",
            Step::CommandSignals => "resetting signals",
            Step::Chdir => "changing to the working directory",
            Step::Rlimits => "setting rlimits",
            Step::NoNewPrivs => "setting no_new_privs",
            Step::BoundingSet => "dropping the capability bounding set",
            Step::AmbientCaps => "clearing ambient capabilities",
            Step::Groups => "clearing supplementary groups",
            Step::SetGid => "switching gid",
            Step::SetUid => "switching uid",
            Step::Capset => "clearing capabilities",
            Step::CommandDeathSignal => "setting the command's parent-death signal",
            Step::CloseOnExec => "marking descriptors close-on-exec",
            Step::Seccomp => "loading the seccomp filter",
            Step::Exec => "executing the command",
            Step::BlankReady => "reporting the blank sandbox ready",
            Step::AssignReceive => "receiving the blank sandbox's assignment",
            Step::ExecBytes => "decoding the command, its arguments and environment",
            Step::MountCode => "attaching the function code at /var/task",
        }
    }
}

/// Parent-side failures.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("creating the init channel: {0}")]
    Channel(Errno),
    #[error("clone3 of the sandbox init: {0}")]
    Clone(Errno),
    #[error("sandbox cgroup fds: need a clone-into fd or join fds (at most 8), got clone-into {clone_into} and {join} join fds")]
    CgroupFds { clone_into: bool, join: usize },
    #[error("releasing sandbox init (pid {pid}): {errno}")]
    Release { pid: i32, errno: Errno },
    #[error("sending the assignment to blank sandbox init: {0}")]
    Assign(Errno),
}

/// What the parent holds after a successful spawn.
#[derive(Debug)]
pub struct Spawned {
    /// Init's pid in the parent's pid namespace.
    pub pid: i32,
    /// A pidfd for init (no pid-reuse race when signalling or polling).
    pub pidfd: OwnedFd,
    /// The parent's end of the init channel.
    pub channel: OwnedFd,
    /// `CLOCK_MONOTONIC` ns when the clone was issued, returned, and init was released.
    pub clone_start_ns: u64,
    pub clone_done_ns: u64,
    pub released_ns: u64,
}

/// The parent side, in order:
///
/// 1. create the init channel (a `SOCK_SEQPACKET` socketpair, close-on-exec);
/// 2. `clone3` init into new pid, mount, network, ipc and uts namespaces — and, given a
///    v2 cgroup fd, straight into its cgroup with a cgroup namespace (`CLONE_INTO_CGROUP`);
///    otherwise (v1) init joins its cgroups itself as its first step, through the
///    `tasks` fds in `join_fds` (see [`CgroupDriver::self_join_fds`]);
/// 3. release init — unless the plan is a blank's (it has no command): a blank waits for
///    its assignment ([`assign`]). If the release fails, init is killed and reaped before
///    returning.
///
/// Exactly one of `cgroup_fd` and `join_fds` must be given. The caller may be
/// multi-threaded (see [`process::clone3_fork`]: the child only makes system calls).
///
/// [`CgroupDriver::self_join_fds`]: super::cgroup::CgroupDriver::self_join_fds
pub fn spawn(
    plan: &SpawnPlan,
    seccomp: &SeccompPolicy,
    cgroup_fd: Option<BorrowedFd<'_>>,
    join_fds: &[BorrowedFd<'_>],
) -> Result<Spawned, SpawnError> {
    if cgroup_fd.is_some() != join_fds.is_empty() || join_fds.len() > MAX_JOIN_FDS {
        return Err(SpawnError::CgroupFds {
            clone_into: cgroup_fd.is_some(),
            join: join_fds.len(),
        });
    }
    let mut join = [-1 as RawFd; MAX_JOIN_FDS];
    for (slot, fd) in join.iter_mut().zip(join_fds) {
        *slot = fd.as_raw_fd();
    }
    // 1.
    let (parent_end, child_end) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(SpawnError::Channel)?;
    // 2.
    let clone_start_ns = process::monotonic_ns();
    let forked = process::clone3_fork(plan.ns.clone_flags, cgroup_fd.map(|f| f.as_raw_fd()))
        .map_err(SpawnError::Clone)?;
    let (pid, pidfd) = match forked {
        process::Forked::Child => child_side(
            plan,
            seccomp,
            &join[..join_fds.len()],
            child_end.as_raw_fd(),
            parent_end.as_raw_fd(),
        ),
        process::Forked::Parent { pid, pidfd } => (pid, fd::own(pidfd)),
    };
    let clone_done_ns = process::monotonic_ns();
    drop(child_end);
    let abort = |pidfd: &OwnedFd| {
        let _ = process::pidfd_send_signal(pidfd.as_raw_fd(), libc::SIGKILL);
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
    };
    // 3.
    if plan.exec.is_some() {
        if let Err(errno) = sync::send_message(parent_end_fd(&parent_end), &Message::Release) {
            abort(&pidfd);
            return Err(SpawnError::Release { pid, errno });
        }
    }
    Ok(Spawned {
        pid,
        pidfd,
        channel: parent_end,
        clone_start_ns,
        clone_done_ns,
        released_ns: process::monotonic_ns(),
    })
}

/// The parent's side of a blank's step 8: hands the waiting init its assignment — one
/// [`Message::Assign`] carrying the detached code tree (if any) and the command's stdin,
/// stdout and stderr (if given) with `SCM_RIGHTS`, then the encoded exec plan
/// ([`assign::encode`]) in packets of at most [`CHUNK_LEN`] bytes. The descriptors are the
/// caller's; the kernel gives init its own copies.
pub fn assign(
    channel: BorrowedFd<'_>,
    code: Option<BorrowedFd<'_>>,
    stdio: Option<[RawFd; 3]>,
    exec: &[u8],
) -> Result<(), SpawnError> {
    let exec_len = u32::try_from(exec.len()).map_err(|_| SpawnError::Assign(Errno::E2BIG))?;
    let mut fds = [-1 as RawFd; MAX_FDS];
    let mut n = 0;
    if let Some(c) = code {
        fds[n] = c.as_raw_fd();
        n += 1;
    }
    if let Some(s) = stdio {
        fds[n..n + 3].copy_from_slice(&s);
        n += 3;
    }
    let msg = Message::Assign {
        exec_len,
        code: code.is_some(),
        stdio: stdio.is_some(),
    };
    sock::send_with_fds(channel.as_raw_fd(), &msg.encode(), &fds[..n])
        .map_err(SpawnError::Assign)?;
    for chunk in exec.chunks(CHUNK_LEN) {
        sock::send_with_fds(channel.as_raw_fd(), chunk, &[]).map_err(SpawnError::Assign)?;
    }
    Ok(())
}

fn parent_end_fd(fd: &OwnedFd) -> BorrowedFd<'_> {
    use std::os::fd::AsFd;
    fd.as_fd()
}

/// Reports a failed step to the parent and exits. Init's exit tears down the pid
/// namespace, so nothing of the half-built sandbox survives.
fn fail(chan: RawFd, step: u32, errno: Errno) -> ! {
    let _ = sync::send_message(
        fd::borrow(chan),
        &Message::SetupFailed {
            step,
            errno: errno as i32,
        },
    );
    process::exit_now(1)
}

/// The sandbox init's side, in order:
///
/// 0. (v1) join the sandbox's cgroups by writing `0` to each `tasks` fd — before any
///    other step, so all of init's work and everything it forks is inside the limits;
/// 1. the command's stdio, if given, onto 0, 1, 2; then close every other inherited
///    descriptor but the channel;
/// 2. parent-death signal SIGKILL (a `hearth` killed mid-run takes the sandbox with it);
/// 3. new session (tty signals go to `hearth`, which forwards them);
/// 4. block the signals init waits for (SIGCHLD) and forwards (TERM, INT, HUP, QUIT,
///    USR1, USR2) — before the fork, so none is lost;
/// 5. namespaces: hostname, `lo` up; then, if the sandbox serves the Runtime API, its
///    listeners in the new network namespace, handed to the parent ([`super::listen`]);
/// 6. the mount plan: private propagation, the new root, /var/task, /tmp, /dev, /proc,
///    /sys, pivot_root, old root detached, root read-only;
/// 7. non-dumpable (the function, another uid, cannot ptrace or read init's memory);
/// 8. wait for the release — end of file means the parent died: exit. A blank sandbox
///    (a plan without a command) instead reports [`Message::Ready`] and waits, however
///    long, for [`Message::Assign`], then (`assigned`):
///    - 8a: takes the descriptors that came with it (the code tree, the command's
///      stdio), moved above 0–2 if they landed there;
///    - 8b: receives the exec bytes into a fixed buffer on its stack
///      ([`MAX_EXEC_BYTES`]);
///    - 8c: decodes them into fixed `argv`/`envp` pointer arrays ([`assign::decode`]);
///    - 8d: attaches the code tree at /var/task (`move_mount`; made read-only, nosuid
///      and nodev by the parent) — the mount point was left empty by step 6;
///    - 8e: installs the command's stdio on 0, 1, 2;
///
///    and goes on with step 9 exactly as a released sandbox does;
/// 9. cgroup namespace rooted at the sandbox's cgroup (v1 path; v2 clones into it);
/// 10. exec-status pipe and fork of the command ([`command_side`]): from here on every
///     process is inside the cgroup limits (a blank's were rewritten by the parent before
///     it sent the assignment);
/// 11. wait for the exec result: end of file = success → `Started`;
/// 12. supervise until the command exits ([`init::supervise`]).
fn child_side(
    plan: &SpawnPlan,
    seccomp: &SeccompPolicy,
    join: &[RawFd],
    chan: RawFd,
    parent_end: RawFd,
) -> ! {
    let mut stamps = [0u64; STAMPS];
    // 0.
    for &tasks in join {
        if let Err(e) = fd::write_all(tasks, b"0") {
            fail(chan, Step::JoinCgroup as u32, e);
        }
    }
    // 1.
    let _ = parent_end;
    if let Some(stdio) = &plan.stdio {
        for (target, source) in stdio.iter().enumerate() {
            if let Err(e) = nix::unistd::dup2(source.as_raw_fd(), target as RawFd) {
                fail(chan, Step::Stdio as u32, e);
            }
        }
    }
    let keep = chan as u32;
    if process::close_range(3, keep.saturating_sub(1)).is_err()
        || process::close_range(keep + 1, u32::MAX).is_err()
    {
        fail(chan, Step::CloseFds as u32, Errno::last());
    }
    // 2.
    if let Err(e) = process::set_parent_death_signal(libc::SIGKILL) {
        fail(chan, Step::ParentDeathSignal as u32, e);
    }
    // 3.
    if let Err(e) = nix::unistd::setsid() {
        fail(chan, Step::NewSession as u32, e);
    }
    // 4.
    if let Err(e) = process::block_signals(init::SIGNALS) {
        fail(chan, Step::BlockSignals as u32, e);
    }
    // 5.
    if let Err((step, e)) = ns::apply(&plan.ns) {
        let step = match step {
            NsStep::Hostname => Step::Hostname,
            NsStep::Loopback => Step::Loopback,
        };
        fail(chan, step as u32, e);
    }
    if let Some(listen_plan) = &plan.listen {
        let fds = match listen::apply(listen_plan) {
            Ok(fds) => fds,
            Err((ListenStep::Tcp, e)) => fail(chan, Step::RuntimeApiTcp as u32, e),
            Err((ListenStep::Unix, e)) => fail(chan, Step::RuntimeApiUnix as u32, e),
        };
        let raw = [fds[0].as_raw_fd(), fds[1].as_raw_fd()];
        if let Err(e) = crate::sys::socket::send_with_fds(chan, &Message::Listeners.encode(), &raw)
        {
            fail(chan, Step::RuntimeApiSend as u32, e);
        }
        drop(fds);
    }
    stamps[stamp::NAMESPACES] = process::monotonic_ns();
    // 6.
    if let Err((index, e)) = mounts::apply(&plan.mounts) {
        fail(chan, MOUNT_BASE + index as u32, e);
    }
    stamps[stamp::MOUNTS] = process::monotonic_ns();
    // 7.
    if let Err(e) = process::set_not_dumpable() {
        fail(chan, Step::NotDumpable as u32, e);
    }
    // 8.
    if plan.exec.is_none() {
        if let Err(e) = sync::send_message(fd::borrow(chan), &Message::Ready) {
            fail(chan, Step::BlankReady as u32, e);
        }
    }
    let mut head = [0u8; MESSAGE_LEN];
    let mut fds = [-1 as RawFd; MAX_FDS];
    let (n, nfds) = match sock::recv_with_fds(chan, &mut head, &mut fds) {
        Ok((0, _)) => process::exit_now(1),
        Ok(got) => got,
        Err(e) => fail(chan, Step::WaitRelease as u32, e),
    };
    stamps[stamp::RELEASED] = process::monotonic_ns();
    match (Message::decode(&head[..n]), &plan.exec) {
        (Some(Message::Release), Some(exec)) if nfds == 0 => {
            run_command(plan, exec.view(), seccomp, chan, stamps)
        }
        (
            Some(Message::Assign {
                exec_len,
                code,
                stdio,
            }),
            None,
        ) => {
            let got = Received {
                fds,
                count: nfds,
                code,
                stdio,
            };
            assigned(plan, seccomp, chan, stamps, exec_len as usize, got)
        }
        _ => {
            for &f in &fds[..nfds] {
                fd::close(f);
            }
            fail(chan, Step::WaitRelease as u32, Errno::EBADMSG)
        }
    }
}

/// The descriptors of a blank's assignment, as received.
struct Received {
    fds: [RawFd; MAX_FDS],
    count: usize,
    code: bool,
    stdio: bool,
}

/// /var/task, where a blank's code tree is attached (the plan's working directory).
const VAR_TASK: &std::ffi::CStr = c"/var/task";

/// Steps 8a–8e of a blank sandbox's init (see [`child_side`]); then steps 9–12.
fn assigned(
    plan: &SpawnPlan,
    seccomp: &SeccompPolicy,
    chan: RawFd,
    mut stamps: [u64; STAMPS],
    exec_len: usize,
    mut got: Received,
) -> ! {
    // 8a.
    let want = got.code as usize + if got.stdio { 3 } else { 0 };
    if got.count != want {
        fail(chan, Step::AssignReceive as u32, Errno::EBADMSG);
    }
    for slot in &mut got.fds[..got.count] {
        if *slot < 3 {
            match fd::dup_above(*slot, 3) {
                Ok(moved) => {
                    fd::close(*slot);
                    *slot = moved;
                }
                Err(e) => fail(chan, Step::AssignReceive as u32, e),
            }
        }
    }
    // 8b.
    if exec_len > MAX_EXEC_BYTES {
        fail(chan, Step::ExecBytes as u32, Errno::E2BIG);
    }
    let mut buf = [0u8; MAX_EXEC_BYTES];
    let mut filled = 0;
    while filled < exec_len {
        let mut none = [-1 as RawFd; MAX_FDS];
        match sock::recv_with_fds(chan, &mut buf[filled..exec_len], &mut none) {
            Ok((0, _)) => process::exit_now(1),
            Ok((n, 0)) => filled += n,
            Ok(_) => fail(chan, Step::AssignReceive as u32, Errno::EBADMSG),
            Err(e) => fail(chan, Step::AssignReceive as u32, e),
        }
    }
    // 8c.
    let mut ptrs = [std::ptr::null(); MAX_EXEC_POINTERS];
    let exec = match assign::decode(&buf[..exec_len], &mut ptrs) {
        Ok(v) => v,
        Err(e) => fail(chan, Step::ExecBytes as u32, e.errno()),
    };
    let mut next = 0;
    // 8d.
    if got.code {
        let tree = got.fds[0];
        if let Err(e) = mount::move_mount_to(tree, VAR_TASK) {
            fail(chan, Step::MountCode as u32, e);
        }
        fd::close(tree);
        next = 1;
    }
    // 8e.
    if got.stdio {
        for target in 0..3 {
            let source = got.fds[next + target];
            if let Err(e) = nix::unistd::dup2(source, target as RawFd) {
                fail(chan, Step::Stdio as u32, e);
            }
        }
        for &source in &got.fds[next..next + 3] {
            fd::close(source);
        }
    }
    stamps[stamp::ASSIGNED] = process::monotonic_ns();
    run_command(plan, exec, seccomp, chan, stamps)
}

/// Steps 9–12 of init (see [`child_side`]), shared by released and assigned sandboxes.
fn run_command(
    plan: &SpawnPlan,
    exec: ExecView<'_>,
    seccomp: &SeccompPolicy,
    chan: RawFd,
    mut stamps: [u64; STAMPS],
) -> ! {
    // 9.
    if let Err(e) = ns::enter_cgroup_namespace(&plan.ns) {
        fail(chan, Step::CgroupNamespace as u32, e);
    }
    // 10.
    let (status_r, status_w) = match fd::pipe_cloexec() {
        Ok(p) => p,
        Err(e) => fail(chan, Step::ExecPipe as u32, e),
    };
    let command = match process::fork_raw() {
        Ok(0) => {
            fd::close(status_r);
            command_side(plan, exec, seccomp, status_w)
        }
        Ok(pid) => pid,
        Err(e) => fail(chan, Step::ForkCommand as u32, e),
    };
    stamps[stamp::FORKED] = process::monotonic_ns();
    fd::close(status_w);
    // 11.
    loop {
        let mut rec = [0u8; RECORD];
        if read_full(status_r, &mut rec) != RECORD {
            break; // end of file: execve succeeded
        }
        let (kind, a, b) = decode_record(&rec);
        if kind == RECORD_STAMP {
            if let Some(slot) = stamps.get_mut(a as usize) {
                *slot = b;
            }
            continue;
        }
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(command), None);
        let errno = b as u32 as i32;
        let msg = if a == Step::Exec as u32 {
            Message::ExecFailed { errno }
        } else {
            Message::SetupFailed { step: a, errno }
        };
        let _ = sync::send_message(fd::borrow(chan), &msg);
        process::exit_now(1);
    }
    fd::close(status_r);
    stamps[stamp::EXECED] = process::monotonic_ns();
    let _ = sync::send_message(fd::borrow(chan), &Message::Started { stamps });
    // 12.
    init::supervise(chan, command)
}

fn read_full(fd_: RawFd, buf: &mut [u8]) -> usize {
    let mut got = 0;
    while got < buf.len() {
        match fd::read_some(fd_, &mut buf[got..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    got
}

/// Exec-status pipe records (command → init): 16 bytes, `kind`, `a`, `b`. Writes of
/// this size to a pipe are atomic. End of file without a failure record means `execve`
/// succeeded.
const RECORD: usize = 16;
const RECORD_STAMP: u32 = 1;
const RECORD_FAILURE: u32 = 2;

fn encode_record(kind: u32, a: u32, b: u64) -> [u8; RECORD] {
    let mut rec = [0u8; RECORD];
    rec[..4].copy_from_slice(&kind.to_ne_bytes());
    rec[4..8].copy_from_slice(&a.to_ne_bytes());
    rec[8..].copy_from_slice(&b.to_ne_bytes());
    rec
}

fn decode_record(rec: &[u8; RECORD]) -> (u32, u32, u64) {
    let mut w = [0u8; 8];
    w.copy_from_slice(&rec[8..]);
    (
        u32::from_ne_bytes([rec[0], rec[1], rec[2], rec[3]]),
        u32::from_ne_bytes([rec[4], rec[5], rec[6], rec[7]]),
        u64::from_ne_bytes(w),
    )
}

/// Sends a timestamp of the command side to init (best effort: timings only).
fn command_stamp(status_w: RawFd, index: usize) {
    let rec = encode_record(RECORD_STAMP, index as u32, process::monotonic_ns());
    let _ = fd::write_all(status_w, &rec);
}

/// Reports a failed command-side step to init through the exec-status pipe.
fn command_fail(status_w: RawFd, step: Step, errno: Errno) -> ! {
    let rec = encode_record(RECORD_FAILURE, step as u32, errno as i32 as u32 as u64);
    let _ = fd::write_all(status_w, &rec);
    process::exit_now(127)
}

/// The command's side, in order:
///
/// 1. new session: no controlling terminal (no `TIOCSTI` into the host's tty);
/// 2. default signal dispositions and an empty signal mask (both survive `execve`);
/// 3. `chdir` to the working directory (`/var/task`);
/// 4. rlimits (nofile 1,024, core 0) — while raising is still allowed;
/// 5. privileges ([`caps::apply`]): `no_new_privs`, bounding set, ambient set,
///    supplementary groups, gid, uid, then the remaining capability sets;
/// 6. parent-death signal (after the uid change, which clears it);
/// 7. every descriptor from 3 up close-on-exec (the status pipe closes at exec);
/// 8. the seccomp filter — last, so the steps above are not subject to it;
/// 9. `execve`, trying each `PATH` candidate as `execvp` does.
fn command_side(
    plan: &SpawnPlan,
    exec: ExecView<'_>,
    seccomp: &SeccompPolicy,
    status_w: RawFd,
) -> ! {
    // 1.
    if let Err(e) = nix::unistd::setsid() {
        command_fail(status_w, Step::CommandSession, e);
    }
    // 2.
    if let Err(e) = process::reset_signals() {
        command_fail(status_w, Step::CommandSignals, e);
    }
    // 3.
    if let Err(e) = nix::unistd::chdir(exec.cwd) {
        command_fail(status_w, Step::Chdir, e);
    }
    // 4.
    if let Err(e) = rlimits::apply(&plan.rlimits) {
        command_fail(status_w, Step::Rlimits, e);
    }
    // 5.
    if let Err((step, e)) = caps::apply(&plan.caps) {
        let step = match step {
            CapsStep::NoNewPrivs => Step::NoNewPrivs,
            CapsStep::BoundingSet => Step::BoundingSet,
            CapsStep::Ambient => Step::AmbientCaps,
            CapsStep::Groups => Step::Groups,
            CapsStep::Gid => Step::SetGid,
            CapsStep::Uid => Step::SetUid,
            CapsStep::Capset => Step::Capset,
        };
        command_fail(status_w, step, e);
    }
    command_stamp(status_w, stamp::PRIVILEGES);
    // 6.
    if let Err(e) = process::set_parent_death_signal(libc::SIGKILL) {
        command_fail(status_w, Step::CommandDeathSignal, e);
    }
    // 7.
    if let Err(e) = process::cloexec_from(3) {
        command_fail(status_w, Step::CloseOnExec, e);
    }
    // 8.
    if let Err(e) = seccomp.apply() {
        command_fail(status_w, Step::Seccomp, e);
    }
    command_stamp(status_w, stamp::SECCOMP);
    // 9.
    let mut saved = Errno::ENOENT;
    for path in exec.candidates.iter() {
        match process::execve_prepared(path, exec.argv, exec.envp) {
            Errno::ENOENT | Errno::ENOTDIR => {}
            Errno::EACCES => saved = Errno::EACCES,
            e => command_fail(status_w, Step::Exec, e),
        }
    }
    command_fail(status_w, Step::Exec, saved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_status_records_round_trip() {
        let rec = encode_record(RECORD_FAILURE, Step::Exec as u32, libc::ENOENT as u64);
        assert_eq!(
            decode_record(&rec),
            (RECORD_FAILURE, Step::Exec as u32, libc::ENOENT as u64)
        );
    }

    #[test]
    fn step_codes_round_trip_and_are_described() {
        for s in Step::ALL {
            assert_eq!(Step::from_code(s as u32), Some(s));
            assert!(!s.describe().is_empty());
        }
        assert_eq!(Step::from_code(MOUNT_BASE), None);
    }
}
