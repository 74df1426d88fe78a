//! Resource limits of the function's process: `RLIMIT_NOFILE` 1,024 (as AWS Lambda sets
//! it) and `RLIMIT_CORE` 0 (no core files in `/tmp`). Processes and memory are limited by
//! the cgroup, not by rlimits; file size by the size of `/tmp`.

use nix::errno::Errno;
use nix::sys::resource::{setrlimit, Resource};

/// One limit to set: (resource, soft, hard).
pub type Rlimit = (Resource, u64, u64);

/// Lambda's documented file-descriptor limit.
pub const NOFILE: u64 = 1024;

/// The limits every sandboxed function gets.
pub fn plan() -> Vec<Rlimit> {
    vec![
        (Resource::RLIMIT_NOFILE, NOFILE, NOFILE),
        (Resource::RLIMIT_CORE, 0, 0),
    ]
}

/// Sets them (before the uid change: raising a hard limit needs `CAP_SYS_RESOURCE`).
pub fn apply(limits: &[Rlimit]) -> Result<(), Errno> {
    for &(resource, soft, hard) in limits {
        setrlimit(resource, soft, hard)?;
    }
    Ok(())
}
