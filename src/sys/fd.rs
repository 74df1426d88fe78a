//! Raw file-descriptor helpers for the sandbox child, which works with plain fd numbers
//! (no `OwnedFd` drop glue between clone and exec).

use std::os::fd::RawFd;

use nix::errno::Errno;

/// Writes all of `buf` to `fd`, retrying on `EINTR` and short writes. Allocation-free.
pub fn write_all(fd: RawFd, mut buf: &[u8]) -> Result<(), Errno> {
    while !buf.is_empty() {
        // SAFETY: buf is a valid slice for its length; fd is owned by the caller.
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        if n < 0 {
            match Errno::last() {
                Errno::EINTR => continue,
                e => return Err(e),
            }
        }
        buf = &buf[n as usize..];
    }
    Ok(())
}

/// Reads into `buf` once, retrying on `EINTR`; returns the byte count (0 at end of file).
pub fn read_some(fd: RawFd, buf: &mut [u8]) -> Result<usize, Errno> {
    loop {
        // SAFETY: buf is a valid, writable slice for its length.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 {
            return Ok(n as usize);
        }
        match Errno::last() {
            Errno::EINTR => continue,
            e => return Err(e),
        }
    }
}

/// Closes `fd`, ignoring errors (used on paths that are about to `_exit` or exec).
pub fn close(fd: RawFd) {
    // SAFETY: closing a descriptor the caller owns and no longer uses.
    unsafe { libc::close(fd) };
}

/// `fcntl(fd, F_DUPFD_CLOEXEC, min)`: a close-on-exec duplicate of `fd` numbered `min` or
/// above. Allocation-free.
pub fn dup_above(fd: RawFd, min: RawFd) -> Result<RawFd, Errno> {
    // SAFETY: F_DUPFD_CLOEXEC takes an integer argument and only creates a descriptor.
    let ret = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, min) };
    Errno::result(ret)
}

/// A pipe with both ends close-on-exec; returns (read, write).
pub fn pipe_cloexec() -> Result<(RawFd, RawFd), Errno> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: pipe2 writes two descriptors into the array.
    let ret = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    Errno::result(ret).map(|_| (fds[0], fds[1]))
}

/// Takes ownership of a descriptor the kernel just handed to this process (a pidfd from
/// `CLONE_PIDFD`, say). Panics on a negative number.
pub fn own(fd: RawFd) -> std::os::fd::OwnedFd {
    assert!(fd >= 0, "invalid file descriptor {fd}");
    use std::os::fd::FromRawFd;
    // SAFETY: the caller passes a freshly created descriptor that nothing else owns.
    unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) }
}

/// Borrows a raw descriptor that the caller owns for the duration of the borrow (the
/// sandbox child works with raw numbers).
pub fn borrow(fd: RawFd) -> std::os::fd::BorrowedFd<'static> {
    // SAFETY: the child's descriptors (channel, pipes) stay open until it exits or execs;
    // the borrow is used only for single calls in between.
    unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) }
}

/// Reads the extended attribute `name` of the file at `path` into `buf`; returns its length,
/// or `None` when the file has no such attribute (`ENODATA`) or its filesystem has no
/// extended attributes (`EOPNOTSUPP`). A value longer than `buf` fails with `ERANGE`.
pub fn get_xattr(
    path: &std::ffi::CStr,
    name: &std::ffi::CStr,
    buf: &mut [u8],
) -> Result<Option<usize>, Errno> {
    // SAFETY: path and name are NUL-terminated; buf is writable for its length.
    let n = unsafe {
        libc::getxattr(
            path.as_ptr(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n >= 0 {
        return Ok(Some(n as usize));
    }
    match Errno::last() {
        Errno::ENODATA | Errno::EOPNOTSUPP => Ok(None),
        e => Err(e),
    }
}
