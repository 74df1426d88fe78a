//! The Runtime API's listening sockets inside the sandbox. Real runtime clients only speak
//! TCP to `AWS_LAMBDA_RUNTIME_API` (`host:port`), so each sandbox gets `127.0.0.1:9001` in
//! its *own* network namespace: init creates the listener there (after `lo` is up) and
//! hands it to `hearth` over the init channel with `SCM_RIGHTS`; `hearth`'s event loop
//! accepts and serves the connections. No proxy process runs in the sandbox, and no
//! socket of the sandbox is reachable from the host's network namespace.
//!
//! For bootstraps that prefer a Unix socket, the same API is offered on the abstract Unix
//! socket `@hearth/runtime-api` (abstract names are scoped to the network namespace, so
//! each sandbox has its own and needs no writable directory for it); its name is in
//! `HEARTH_RUNTIME_API_SOCKET`, with `@` standing for the leading NUL byte as `ss` and
//! `curl --abstract-unix-socket` write it.
//!
//! Both sockets are created by init as root, before the function runs, so the function
//! cannot bind the port itself first; they are close-on-exec and closed in init once sent,
//! so the function never holds them.
//!
//! Not done here: serving the API (`runtime_api`).

use std::os::fd::OwnedFd;

use nix::errno::Errno;
use nix::sys::socket::{
    bind, listen, setsockopt, socket, sockopt, AddressFamily, Backlog, SockFlag, SockType,
    SockaddrIn, UnixAddr,
};

/// `AWS_LAMBDA_RUNTIME_API` inside every sandbox.
pub const RUNTIME_API_ADDR: &str = "127.0.0.1:9001";
/// `HEARTH_RUNTIME_API_SOCKET` inside every sandbox (`@` = abstract namespace).
pub const RUNTIME_API_SOCKET: &str = "@hearth/runtime-api";
/// Pending connections the kernel queues before `hearth` accepts them.
const BACKLOG: i32 = 64;

/// The addresses to listen on, prepared before the clone.
#[derive(Debug, Clone, Copy)]
pub struct ListenPlan {
    tcp: SockaddrIn,
    unix: UnixAddr,
}

/// Which listener failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenStep {
    Tcp,
    Unix,
}

/// The plan for the two Runtime API listeners.
pub fn plan() -> Result<ListenPlan, Errno> {
    let name = RUNTIME_API_SOCKET.trim_start_matches('@');
    Ok(ListenPlan {
        tcp: SockaddrIn::new(127, 0, 0, 1, 9001),
        unix: UnixAddr::new_abstract(name.as_bytes())?,
    })
}

/// Creates both listeners in the current network namespace: (TCP, Unix). Runs in the
/// sandbox init; allocation-free.
pub fn apply(plan: &ListenPlan) -> Result<[OwnedFd; 2], (ListenStep, Errno)> {
    let tcp = (|| {
        let fd = socket(
            AddressFamily::Inet,
            SockType::Stream,
            SockFlag::SOCK_CLOEXEC,
            None,
        )?;
        setsockopt(&fd, sockopt::ReuseAddr, &true)?;
        bind(std::os::fd::AsRawFd::as_raw_fd(&fd), &plan.tcp)?;
        listen(&fd, Backlog::new(BACKLOG)?)?;
        Ok(fd)
    })()
    .map_err(|e| (ListenStep::Tcp, e))?;
    let unix = (|| {
        let fd = socket(
            AddressFamily::Unix,
            SockType::Stream,
            SockFlag::SOCK_CLOEXEC,
            None,
        )?;
        bind(std::os::fd::AsRawFd::as_raw_fd(&fd), &plan.unix)?;
        listen(&fd, Backlog::new(BACKLOG)?)?;
        Ok(fd)
    })()
    .map_err(|e| (ListenStep::Unix, e))?;
    Ok([tcp, unix])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_names_the_documented_addresses() {
        let p = plan().unwrap();
        assert_eq!(p.tcp.to_string(), RUNTIME_API_ADDR);
        assert_eq!(p.unix.as_abstract(), Some(&b"hearth/runtime-api"[..]));
    }
}
