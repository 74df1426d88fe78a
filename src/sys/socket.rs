//! Passing file descriptors over a Unix socket (`SCM_RIGHTS`) without allocating, for the
//! sandbox init, which hands its Runtime API listeners to `hearth` between clone and exec
//! (`nix`'s `sendmsg` builds its control buffer in a `Vec`).

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
