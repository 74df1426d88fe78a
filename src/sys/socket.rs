//! Passing file descriptors over a Unix socket (`SCM_RIGHTS`) without allocating, for the
//! sandbox init, which hands its Runtime API listeners to `hearth` between clone and exec
//! and, in a blank sandbox, receives the function's code tree and stdio from it (`nix`'s
//! `sendmsg` and `recvmsg` build their control buffers in a `Vec`).

use std::os::fd::RawFd;

use nix::errno::Errno;

/// Most descriptors one [`send_with_fds`] carries.
pub const MAX_FDS: usize = 4;

/// Sends `data` as one message on `sock` with `fds` attached (`SCM_RIGHTS`), retrying on
/// `EINTR`. `MSG_NOSIGNAL`: a closed peer is an `EPIPE` error, not a signal.
pub fn send_with_fds(sock: RawFd, data: &[u8], fds: &[RawFd]) -> Result<(), Errno> {
    if fds.len() > MAX_FDS {
        return Err(Errno::EINVAL);
    }
    // Room for one cmsghdr with MAX_FDS ints, aligned for cmsghdr (u64 alignment suffices
    // on every Linux ABI Rust supports).
    let mut control = [0u64; 8];
    let fd_bytes = std::mem::size_of_val(fds) as u32;
    // SAFETY: CMSG_SPACE/CMSG_LEN are pure arithmetic on the length.
    let (space, len) = unsafe { (libc::CMSG_SPACE(fd_bytes), libc::CMSG_LEN(fd_bytes)) };
    if space as usize > std::mem::size_of_val(&control) {
        return Err(Errno::EINVAL);
    }
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    // SAFETY: msghdr is plain data; all-zero is a valid empty header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if !fds.is_empty() {
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = space as _;
        // SAFETY: msg_control points at `control`, which holds at least `space` bytes, so
        // CMSG_FIRSTHDR returns a pointer inside it with room for the header and
        // `fd_bytes` of data (checked above); nothing else aliases `control`.
        unsafe {
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = len as _;
            std::ptr::copy_nonoverlapping(
                fds.as_ptr().cast::<u8>(),
                libc::CMSG_DATA(cmsg),
                fd_bytes as usize,
            );
        }
    }
    loop {
        // SAFETY: msg points at live buffers (iov → data, control) for the call.
        let n = unsafe { libc::sendmsg(sock, &msg, libc::MSG_NOSIGNAL) };
        if n >= 0 {
            return Ok(());
        }
        match Errno::last() {
            Errno::EINTR => continue,
            e => return Err(e),
        }
    }
}

/// Receives one message into `data` and the descriptors attached to it into `fds`
/// (close-on-exec), retrying on `EINTR`; returns (bytes, descriptors). 0 bytes is end of
/// file. Allocation-free. A message longer than `data` (`EMSGSIZE`) or with more
/// descriptors than `fds` holds (`EMSGSIZE`; the kernel drops the excess) is refused, and
/// whatever did arrive is closed.
pub fn recv_with_fds(
    sock: RawFd,
    data: &mut [u8],
    fds: &mut [RawFd; MAX_FDS],
) -> Result<(usize, usize), Errno> {
    let mut control = [0u64; 8];
    // SAFETY: CMSG_SPACE is pure arithmetic on the length.
    let space = unsafe { libc::CMSG_SPACE((MAX_FDS * std::mem::size_of::<RawFd>()) as u32) };
    if space as usize > std::mem::size_of_val(&control) {
        return Err(Errno::EINVAL);
    }
    loop {
        let mut iov = libc::iovec {
            iov_base: data.as_mut_ptr().cast(),
            iov_len: data.len(),
        };
        // SAFETY: msghdr is plain data; all-zero is a valid empty header.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = space as _;
        // SAFETY: msg points at live, writable buffers (iov → data, control) of the sizes
        // given, for the duration of the call.
        let n = unsafe { libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC) };
        if n < 0 {
            match Errno::last() {
                Errno::EINTR => continue,
                e => return Err(e),
            }
        }
        let mut count = 0;
        let mut overflow = false;
        // SAFETY: the kernel filled `control` with `msg_controllen` bytes of well-formed
        // cmsghdrs; CMSG_FIRSTHDR/CMSG_NXTHDR stay within that length, and each SCM_RIGHTS
        // payload holds (cmsg_len - CMSG_LEN(0)) / 4 descriptors, read unaligned.
        unsafe {
            let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
            while !cmsg.is_null() {
                if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                    let bytes = (*cmsg).cmsg_len as usize - libc::CMSG_LEN(0) as usize;
                    let data = libc::CMSG_DATA(cmsg).cast::<RawFd>();
                    for i in 0..bytes / std::mem::size_of::<RawFd>() {
                        let fd = std::ptr::read_unaligned(data.add(i));
                        match fds.get_mut(count) {
                            Some(slot) => {
                                *slot = fd;
                                count += 1;
                            }
                            None => {
                                libc::close(fd);
                                overflow = true;
                            }
                        }
                    }
                }
                cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
            }
        }
        let truncated = msg.msg_flags & (libc::MSG_TRUNC | libc::MSG_CTRUNC) != 0;
        if truncated || overflow {
            for &fd in &fds[..count] {
                super::fd::close(fd);
            }
            return Err(Errno::EMSGSIZE);
        }
        return Ok((n as usize, count));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    fn pair() -> (std::os::fd::OwnedFd, std::os::fd::OwnedFd) {
        use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
        socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .unwrap()
    }

    #[test]
    fn descriptors_round_trip_without_allocation() {
        let (a, b) = pair();
        let (r, w) = nix::unistd::pipe().unwrap();
        send_with_fds(a.as_raw_fd(), b"hello", &[r.as_raw_fd(), w.as_raw_fd()]).unwrap();
        let mut buf = [0u8; 16];
        let mut fds = [-1; MAX_FDS];
        let (n, k) = recv_with_fds(b.as_raw_fd(), &mut buf, &mut fds).unwrap();
        assert_eq!((&buf[..n], k), (&b"hello"[..], 2));
        let got: Vec<_> = fds[..k]
            .iter()
            .map(|&fd| super::super::fd::own(fd))
            .collect();
        let flags = nix::fcntl::fcntl(got[0].as_raw_fd(), nix::fcntl::FcntlArg::F_GETFD).unwrap();
        assert_ne!(
            flags & libc::FD_CLOEXEC,
            0,
            "received descriptors are close-on-exec"
        );
        // A message without descriptors, then end of file.
        send_with_fds(a.as_raw_fd(), b"x", &[]).unwrap();
        assert_eq!(
            recv_with_fds(b.as_raw_fd(), &mut buf, &mut fds).unwrap(),
            (1, 0)
        );
        drop(a);
        assert_eq!(
            recv_with_fds(b.as_raw_fd(), &mut buf, &mut fds).unwrap(),
            (0, 0)
        );
    }

    #[test]
    fn an_oversized_message_is_refused() {
        let (a, b) = pair();
        send_with_fds(a.as_raw_fd(), &[7u8; 64], &[]).unwrap();
        let mut buf = [0u8; 16];
        let mut fds = [-1; MAX_FDS];
        assert_eq!(
            recv_with_fds(b.as_raw_fd(), &mut buf, &mut fds),
            Err(Errno::EMSGSIZE)
        );
    }
}
