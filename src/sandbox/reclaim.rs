//! Reclaiming what a dead owner left behind.
//!
//! Sandbox names encode their owner: `<kind>-<pid>-<starttime>`, where `starttime` is the
//! owner's start time in clock ticks since boot (field 22 of `/proc/<pid>/stat`), so a
//! recycled pid is not mistaken for the owner. [`owner_alive`] reads it back.
//!
//! [`Keeper`] covers an owner killed with SIGKILL mid-run (no destructor runs then): a
//! small process forked before the sandbox is created, holding the read end of a pipe.
//! When the owner finishes normally it says so and the keeper exits; when the pipe reaches
//! end of file without that word, the owner died, and the keeper removes the sandbox's
//! cgroup (killing anything left in it) and scratch volume — and those of the owner's
//! later sandboxes named `<name>-<n>` — then exits. The sandbox's
//! processes die on their own (parent-death signal → pid namespace teardown), its mounts
//! with its mount namespace.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::sys::wait::waitpid;
use nix::unistd::Pid;

use super::SandboxHost;
use crate::sys::{fd, process};

/// The start time (clock ticks since boot) of process `pid`, if it exists.
pub fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses: split after the
    // last ')'. Field 22 is then the 20th field of the remainder.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(19)?.parse().ok()
}

/// A sandbox name for the calling process: `<kind>-<pid>-<starttime>[-<seq>]`.
pub fn sandbox_name(kind: &str, seq: Option<u64>) -> String {
    let pid = std::process::id() as i32;
    let st = start_time(pid).unwrap_or(0);
    match seq {
        Some(n) => format!("{kind}-{pid}-{st}-{n}"),
        None => format!("{kind}-{pid}-{st}"),
    }
}

/// Whether the owner encoded in `name` is alive: `None` if the name is not one of
/// Hearth's (then it must be left alone).
pub fn owner_alive(name: &str) -> Option<bool> {
    let mut parts = name.split('-');
    let kind = parts.next()?;
    if kind.is_empty() || !kind.bytes().all(|b| b.is_ascii_lowercase()) {
        return None;
    }
    let pid: i32 = parts.next()?.parse().ok()?;
    let st: u64 = parts.next()?.parse().ok()?;
    if let Some(seq) = parts.next() {
        seq.parse::<u64>().ok()?;
    }
    if parts.next().is_some() {
        return None;
    }
    Some(start_time(pid) == Some(st))
}

/// The cleanup keeper of one sandbox (see the module doc).
#[derive(Debug)]
pub struct Keeper {
    pid: i32,
    pipe: Option<OwnedFd>,
}

const DONE: u8 = b'D';

impl Keeper {
    /// Forks the keeper for sandbox `name`. Call while single-threaded, before the
    /// sandbox's cgroup and volume exist.
    pub fn start(host: &SandboxHost, name: &str) -> Result<Keeper, Errno> {
        let (r, w) = fd::pipe_cloexec()?;
        match process::fork_raw()? {
            0 => {
                fd::close(w);
                keeper_main(host, name, r)
            }
            pid => {
                fd::close(r);
                Ok(Keeper {
                    pid,
                    pipe: Some(fd::own(w)),
                })
            }
        }
    }

    /// The owner cleaned up itself: the keeper exits without doing anything, and is reaped.
    pub fn dismiss(mut self) {
        if let Some(pipe) = self.pipe.take() {
            let _ = fd::write_all(pipe.as_raw_fd(), &[DONE]);
        }
        let _ = waitpid(Pid::from_raw(self.pid), None);
    }
}

fn keeper_main(host: &SandboxHost, name: &str, pipe: RawFd) -> ! {
    // Out of the owner's session and terminal: a Ctrl-C for `hearth` is not for us, and
    // holding the owner's stdout would keep a reader waiting for end of file.
    let _ = nix::unistd::setsid();
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT] {
        process::ignore_signal(sig);
    }
    if let Ok(null) = nix::fcntl::open(
        c"/dev/null",
        nix::fcntl::OFlag::O_RDWR,
        nix::sys::stat::Mode::empty(),
    ) {
        for target in 0..3 {
            let _ = nix::unistd::dup2(null, target);
        }
        if null > 2 {
            fd::close(null);
        }
    }
    let _ = process::close_range(3, (pipe as u32).saturating_sub(1));
    let _ = process::close_range(pipe as u32 + 1, u32::MAX);
    let mut buf = [0u8; 1];
    let n = fd::read_some(pipe, &mut buf).unwrap_or(0);
    if n == 1 && buf[0] == DONE {
        process::exit_now(0);
    }
    // The owner died without finishing: its sandbox init died with it (parent-death
    // signal); remove the cgroup (killing anything left) and the scratch volume.
    // The owner may have started more sandboxes under `<name>-<n>` (a runner that
    // replaces a dead instance): those are its too.
    let mut names = host.cgroups.list().unwrap_or_default();
    names.extend(host.scratch.list());
    names.sort();
    names.dedup();
    let prefix = format!("{name}-");
    for n in names
        .iter()
        .filter(|n| *n == name || n.strip_prefix(&prefix).is_some_and(is_number))
    {
        let _ = host.cgroups.remove_by_name(n);
        let _ = host.scratch.remove_stale(n);
    }
    let _ = host.cgroups.remove_parent_if_empty();
    process::exit_now(0)
}

fn is_number(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_start_time_is_readable_and_names_parse() {
        let me = std::process::id() as i32;
        assert!(start_time(me).is_some());
        let name = sandbox_name("run", None);
        assert_eq!(owner_alive(&name), Some(true));
        assert_eq!(owner_alive(&sandbox_name("sbx", Some(4))), Some(true));
        assert_eq!(owner_alive(&format!("run-{me}-1")), Some(false));
        assert_eq!(owner_alive("run-999999999-5"), Some(false));
        for foreign in [
            "user.slice",
            "docker",
            "run-x-1",
            "Run-1-2",
            "run-1-2-3-4",
            "run",
        ] {
            assert_eq!(owner_alive(foreign), None, "{foreign}");
        }
    }
}
