//! Hearth's init: pid 1 of every sandbox's pid namespace, the parent of the command.
//!
//! It runs no function code and execs nothing. After the set-up in `spawn.rs` it only:
//! reaps every child (orphans of the command are re-parented to it), forwards the
//! termination signals it receives to the command, and reports the command's wait status
//! over the channel when the command ends. Then it exits — and because it is pid 1, the
//! kernel kills every process left in the namespace (a double-forked daemon included).
//!
//! It is root inside the sandbox but non-dumpable and of another uid than the function,
//! which therefore can neither signal, ptrace nor read it (and seccomp denies ptrace).

use std::os::fd::RawFd;

use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::sync::{self, Message};
use crate::sys::{fd, process};

/// Signals init waits for: SIGCHLD, and those it forwards to the command.
pub const SIGNALS: &[libc::c_int] = &[
    libc::SIGCHLD,
    libc::SIGTERM,
    libc::SIGINT,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
];

/// Encodes a wait status the way the kernel does (`WIFEXITED`/`WIFSIGNALED` decode it).
pub fn raw_status(status: WaitStatus) -> Option<i32> {
    match status {
        WaitStatus::Exited(_, code) => Some((code & 0xff) << 8),
        WaitStatus::Signaled(_, sig, core) => Some(sig as i32 | if core { 0x80 } else { 0 }),
        _ => None,
    }
}

/// Supervises `command` until it exits; never returns.
pub fn supervise(chan: RawFd, command: i32) -> ! {
    let command = Pid::from_raw(command);
    loop {
        let sig = match process::wait_signal(SIGNALS) {
            Ok(s) => s,
            Err(_) => continue,
        };
        if sig != libc::SIGCHLD {
            if let Ok(s) = Signal::try_from(sig) {
                let _ = kill(command, s);
            }
            continue;
        }
        // Reap everything that has exited; SIGCHLD coalesces.
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(status) => {
                    if status.pid() == Some(command) {
                        if let Some(raw) = raw_status(status) {
                            let _ = sync::send_message(
                                fd::borrow(chan),
                                &Message::Exited { status: raw },
                            );
                            process::exit_now(0);
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_status_matches_the_kernel_encoding() {
        let p = Pid::from_raw(1);
        let exited = raw_status(WaitStatus::Exited(p, 3)).unwrap();
        assert!(libc::WIFEXITED(exited));
        assert_eq!(libc::WEXITSTATUS(exited), 3);
        let killed = raw_status(WaitStatus::Signaled(p, Signal::SIGKILL, false)).unwrap();
        assert!(libc::WIFSIGNALED(killed));
        assert_eq!(libc::WTERMSIG(killed), 9);
    }
}
