//! Exit codes of the `hearth` binary, and the table from outcomes to them (like
//! firecracker's `FcExitCode`). `hearth run` otherwise exits with the command's own status,
//! or 128+N when the command was killed by signal N, as shells do.
//!
//! | code | meaning |
//! |---|---|
//! | 0–122 | the command's own exit status (as are 128+N for signal N) |
//! | 1 | `hearth invoke`: the function returned an error (its errorType is on stderr) |
//! | 2 | bad usage: invalid option or value (also possible as a command status) |
//! | 123 | the command was killed for exceeding its memory limit (OOM) |
//! | 124 | the command ran past `--timeout` and was killed |
//! | 125 | Hearth failed: not root, sandbox set-up failure, host error |
//! | 126 | the command was found but could not be executed |
//! | 127 | the command was not found |

/// Hearth's own exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ExitCode {
    FunctionError = 1,
    Usage = 2,
    OutOfMemory = 123,
    TimedOut = 124,
    HearthFailed = 125,
    NotExecutable = 126,
    NotFound = 127,
}

impl From<ExitCode> for u8 {
    fn from(c: ExitCode) -> u8 {
        c as u8
    }
}

/// The exit code for a command's raw wait status: its exit code, or 128+N for signal N.
pub fn from_wait_status(status: i32) -> u8 {
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status) as u8
    } else if libc::WIFSIGNALED(status) {
        (128 + libc::WTERMSIG(status)) as u8
    } else {
        ExitCode::HearthFailed as u8
    }
}

/// The exit code for a failed `execve`.
pub fn from_exec_errno(errno: nix::errno::Errno) -> ExitCode {
    match errno {
        nix::errno::Errno::ENOENT | nix::errno::Errno::ENOTDIR => ExitCode::NotFound,
        _ => ExitCode::NotExecutable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_like_a_shell() {
        assert_eq!(from_wait_status(0), 0);
        assert_eq!(from_wait_status(3 << 8), 3);
        assert_eq!(from_wait_status(9), 137);
        assert_eq!(from_wait_status(15), 143);
        assert_eq!(
            from_exec_errno(nix::errno::Errno::ENOENT),
            ExitCode::NotFound
        );
        assert_eq!(
            from_exec_errno(nix::errno::Errno::EACCES),
            ExitCode::NotExecutable
        );
    }
}
