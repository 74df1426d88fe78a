//! The parent ↔ sandbox-init channel: one `SOCK_SEQPACKET` socketpair carrying fixed-size
//! binary messages, so the child can send them without allocating.
//!
//! Parent → init: [`Message::Release`] once the cgroup is attached and limits are written;
//! until then the child waits, so no step of the sandbox runs outside its limits. End of
//! file on the child's side means the parent died: the child exits.
//!
//! A blank sandbox (`SandboxHost::create_blank`) gets [`Message::Assign`] instead of the
//! release: the function's code tree and the command's stdio attached with `SCM_RIGHTS`,
//! followed by the encoded exec plan ([`super::assign`]) in packets of at most
//! [`CHUNK_LEN`] bytes.
//!
//! Init → parent: [`Message::Listeners`] first when the sandbox serves the Runtime API (the
//! TCP and Unix listeners attached with `SCM_RIGHTS`); for a blank, [`Message::Ready`] once
//! it waits for its assignment; then [`Message::Started`] (the command's `execve`
//! succeeded; carries the child-side step timestamps), then [`Message::Exited`] with the
//! command's wait status; or [`Message::SetupFailed`] naming the failed step and errno, or
//! [`Message::ExecFailed`].

use std::os::fd::{AsFd, BorrowedFd};

use nix::errno::Errno;
use nix::sys::socket::{recv, send, MsgFlags};

/// Size of every message on the wire.
pub const MESSAGE_LEN: usize = 96;

/// Number of child-side timestamps carried by [`Message::Started`].
pub const STAMPS: usize = 8;

/// Largest packet of exec-plan bytes after a [`Message::Assign`] (well under the socket's
/// default send buffer, so a packet never waits for room).
pub const CHUNK_LEN: usize = 32 * 1024;

/// Indexes into [`Message::Started`]'s stamps (`CLOCK_MONOTONIC` nanoseconds).
pub mod stamp {
    /// Hostname and loopback done.
    pub const NAMESPACES: usize = 0;
    /// The mount plan done: new root, pivot_root, old root detached, root read-only.
    pub const MOUNTS: usize = 1;
    /// The child read the release message (its cgroups are attached).
    pub const RELEASED: usize = 2;
    /// The command's process was forked.
    pub const FORKED: usize = 3;
    /// (command) rlimits, capabilities and uid/gid done.
    pub const PRIVILEGES: usize = 4;
    /// (command) the seccomp filter is loaded; `execve` comes next.
    pub const SECCOMP: usize = 5;
    /// Init saw the exec-status pipe close: `execve` succeeded.
    pub const EXECED: usize = 6;
    /// (blank) The function's code is attached at /var/task, the command's stdio installed
    /// and its exec plan decoded: the assignment is done.
    pub const ASSIGNED: usize = 7;
}

/// A message on the channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message {
    /// Parent → child: go.
    Release,
    /// Child → parent: the command is running.
    Started { stamps: [u64; STAMPS] },
    /// Child → parent: set-up step `step` failed with `errno`; the command never ran.
    SetupFailed { step: u32, errno: i32 },
    /// Child → parent: every `execve` candidate failed; `errno` is the most telling one.
    ExecFailed { errno: i32 },
    /// Child → parent: the command ended with this raw wait status.
    Exited { status: i32 },
    /// Child → parent: the Runtime API listeners (TCP, then Unix) are attached.
    Listeners,
    /// Child → parent (blank): set-up is done up to the release; init waits for
    /// [`Message::Assign`].
    Ready,
    /// Parent → child (blank): run a function. Attached: the code tree (if `code`), then
    /// stdin, stdout, stderr (if `stdio`). `exec_len` bytes of encoded exec plan follow in
    /// packets.
    Assign {
        exec_len: u32,
        code: bool,
        stdio: bool,
    },
}

const RELEASE: u32 = 1;
const STARTED: u32 = 2;
const SETUP_FAILED: u32 = 3;
const EXEC_FAILED: u32 = 4;
const EXITED: u32 = 5;
const LISTENERS: u32 = 6;
const READY: u32 = 7;
const ASSIGN: u32 = 8;

impl Message {
    /// Encodes into a fixed buffer (no allocation).
    pub fn encode(&self) -> [u8; MESSAGE_LEN] {
        let mut buf = [0u8; MESSAGE_LEN];
        let (kind, a, b) = match *self {
            Message::Release => (RELEASE, 0u32, 0i32),
            Message::Started { stamps } => {
                for (i, s) in stamps.iter().enumerate() {
                    buf[16 + i * 8..24 + i * 8].copy_from_slice(&s.to_ne_bytes());
                }
                (STARTED, 0, 0)
            }
            Message::SetupFailed { step, errno } => (SETUP_FAILED, step, errno),
            Message::ExecFailed { errno } => (EXEC_FAILED, 0, errno),
            Message::Exited { status } => (EXITED, 0, status),
            Message::Listeners => (LISTENERS, 0, 0),
            Message::Ready => (READY, 0, 0),
            Message::Assign {
                exec_len,
                code,
                stdio,
            } => (ASSIGN, exec_len, code as i32 | (stdio as i32) << 1),
        };
        buf[0..4].copy_from_slice(&kind.to_ne_bytes());
        buf[4..8].copy_from_slice(&a.to_ne_bytes());
        buf[8..12].copy_from_slice(&b.to_ne_bytes());
        buf
    }

    /// Decodes one message; `None` for an unknown kind or a short buffer.
    pub fn decode(buf: &[u8]) -> Option<Message> {
        if buf.len() != MESSAGE_LEN {
            return None;
        }
        let word = |i: usize| u32::from_ne_bytes([buf[i], buf[i + 1], buf[i + 2], buf[i + 3]]);
        let a = word(4);
        let b = word(8) as i32;
        match word(0) {
            RELEASE => Some(Message::Release),
            STARTED => {
                let mut stamps = [0u64; STAMPS];
                for (i, s) in stamps.iter_mut().enumerate() {
                    let mut w = [0u8; 8];
                    w.copy_from_slice(&buf[16 + i * 8..24 + i * 8]);
                    *s = u64::from_ne_bytes(w);
                }
                Some(Message::Started { stamps })
            }
            SETUP_FAILED => Some(Message::SetupFailed { step: a, errno: b }),
            EXEC_FAILED => Some(Message::ExecFailed { errno: b }),
            EXITED => Some(Message::Exited { status: b }),
            LISTENERS => Some(Message::Listeners),
            READY => Some(Message::Ready),
            ASSIGN => Some(Message::Assign {
                exec_len: a,
                code: b & 1 != 0,
                stdio: b & 2 != 0,
            }),
            _ => None,
        }
    }
}

/// Sends one message (retrying on `EINTR`).
pub fn send_message(fd: BorrowedFd<'_>, msg: &Message) -> Result<(), Errno> {
    let buf = msg.encode();
    loop {
        match send(fd.as_fd().as_raw_fd_compat(), &buf, MsgFlags::MSG_NOSIGNAL) {
            Ok(_) => return Ok(()),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Receives one message; `Ok(None)` on end of file (the peer is gone).
pub fn recv_message(fd: BorrowedFd<'_>) -> Result<Option<Message>, Errno> {
    let mut buf = [0u8; MESSAGE_LEN];
    loop {
        match recv(fd.as_raw_fd_compat(), &mut buf, MsgFlags::empty()) {
            Ok(0) => return Ok(None),
            Ok(n) => return Message::decode(&buf[..n]).map(Some).ok_or(Errno::EBADMSG),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Receives one message and the descriptors attached to it (parent side; allocates);
/// `Ok(None)` on end of file. Descriptors arrive close-on-exec.
pub fn recv_message_fds(
    fd: BorrowedFd<'_>,
) -> Result<Option<(Message, Vec<std::os::fd::OwnedFd>)>, Errno> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned};
    let mut buf = [0u8; MESSAGE_LEN];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; crate::sys::socket::MAX_FDS]);
    loop {
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        let msg = match recvmsg::<()>(
            fd.as_raw_fd_compat(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Ok(m) => m,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        };
        let mut fds = Vec::new();
        for c in msg.cmsgs()? {
            if let ControlMessageOwned::ScmRights(raw) = c {
                fds.extend(raw.into_iter().map(crate::sys::fd::own));
            }
        }
        let n = msg.bytes;
        if n == 0 {
            return Ok(None);
        }
        return Message::decode(&buf[..n])
            .map(|m| Some((m, fds)))
            .ok_or(Errno::EBADMSG);
    }
}

/// `nix` 0.29's `send`/`recv` still take a raw fd.
trait AsRawFdCompat {
    fn as_raw_fd_compat(&self) -> std::os::fd::RawFd;
}

impl AsRawFdCompat for BorrowedFd<'_> {
    fn as_raw_fd_compat(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        self.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip() {
        let all = [
            Message::Release,
            Message::Started {
                stamps: [1, 2, 3, 4, 5, 6, 7, u64::MAX],
            },
            Message::SetupFailed {
                step: 7,
                errno: libc::EPERM,
            },
            Message::ExecFailed {
                errno: libc::ENOENT,
            },
            Message::Exited { status: 0x0900 },
            Message::Listeners,
            Message::Ready,
            Message::Assign {
                exec_len: 131_072,
                code: true,
                stdio: true,
            },
            Message::Assign {
                exec_len: 0,
                code: false,
                stdio: true,
            },
            Message::Assign {
                exec_len: 7,
                code: true,
                stdio: false,
            },
        ];
        for m in all {
            assert_eq!(Message::decode(&m.encode()), Some(m));
        }
    }

    #[test]
    fn garbage_is_rejected() {
        assert_eq!(Message::decode(&[0u8; MESSAGE_LEN]), None);
        assert_eq!(Message::decode(&[1u8; 3]), None);
    }

    #[test]
    fn channel_carries_messages_and_reports_eof() {
        use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
        let (a, b) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .unwrap();
        send_message(a.as_fd(), &Message::Exited { status: 3 }).unwrap();
        assert_eq!(
            recv_message(b.as_fd()).unwrap(),
            Some(Message::Exited { status: 3 })
        );
        drop(a);
        assert_eq!(recv_message(b.as_fd()).unwrap(), None);
    }

    #[test]
    fn descriptors_travel_with_a_message() {
        use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
        use std::io::{Read, Write};
        use std::os::fd::AsRawFd;
        let (a, b) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .unwrap();
        let (r, w) = nix::unistd::pipe().unwrap();
        crate::sys::socket::send_with_fds(
            a.as_raw_fd(),
            &Message::Listeners.encode(),
            &[w.as_raw_fd()],
        )
        .unwrap();
        drop(w);
        let (m, fds) = recv_message_fds(b.as_fd()).unwrap().unwrap();
        assert_eq!(m, Message::Listeners);
        assert_eq!(fds.len(), 1);
        // The received descriptor is the pipe's write end.
        std::fs::File::from(fds.into_iter().next().unwrap())
            .write_all(b"hi")
            .unwrap();
        let mut got = String::new();
        std::fs::File::from(r).read_to_string(&mut got).unwrap();
        assert_eq!(got, "hi");
        send_message(a.as_fd(), &Message::Release).unwrap();
        let (m, fds) = recv_message_fds(b.as_fd()).unwrap().unwrap();
        assert_eq!((m, fds.len()), (Message::Release, 0));
    }
}
