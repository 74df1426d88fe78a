//! Loop-device ioctls: find a free device, bind a backing file to it, read its status, unbind it.
//!
//! Owns only the kernel ABI (`<linux/loop.h>`): the `loop_info64` and `loop_config` layouts, the
//! ioctl numbers and flag bits, and one small wrapper per ioctl. It does not open device nodes,
//! build paths, wait for detaches or decide policy (flags, retries): that is
//! `sandbox::scratch`. Nothing here allocates; every function is one system call.
//!
//! Limits: `LOOP_CONFIGURE` needs Linux 5.8; the recorded file name is at most 63 bytes
//! (`LO_NAME_SIZE` − 1) and is cut, not refused, when longer — the full backing path is always
//! in `/sys/block/loopN/loop/backing_file`.

use std::os::fd::{AsRawFd, BorrowedFd};

use nix::errno::Errno;

/// `LOOP_CLR_FD`: unbind the backing file (or, while others hold the device open, mark it
/// auto-clear so it unbinds on their last close).
const LOOP_CLR_FD: libc::c_ulong = 0x4C01;
/// `LOOP_GET_STATUS64`: read `loop_info64`; `ENXIO` when nothing is bound.
const LOOP_GET_STATUS64: libc::c_ulong = 0x4C05;
/// `LOOP_CONFIGURE` (5.8+): bind fd, block size and status in one call, without the
/// `LOOP_SET_FD` + `LOOP_SET_STATUS64` window in which the device is bound but unconfigured.
const LOOP_CONFIGURE: libc::c_ulong = 0x4C0A;
/// `LOOP_CTL_GET_FREE` on `/dev/loop-control`: index of an unbound device, created if needed.
const LOOP_CTL_GET_FREE: libc::c_ulong = 0x4C82;

/// Read-only device.
pub const LO_FLAGS_READ_ONLY: u32 = 1;
/// Unbind automatically when the last opener closes the device.
pub const LO_FLAGS_AUTOCLEAR: u32 = 4;
/// Scan for partitions (never wanted here).
pub const LO_FLAGS_PARTSCAN: u32 = 8;
/// Do I/O to the backing file with `O_DIRECT`, so its pages are not cached a second time.
pub const LO_FLAGS_DIRECT_IO: u32 = 16;
/// Size of `lo_file_name`, including the terminating NUL.
pub const LO_NAME_SIZE: usize = 64;

/// `struct loop_info64` from `<linux/loop.h>` (232 bytes).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct LoopInfo64 {
    /// Device number of the filesystem holding the backing file.
    pub lo_device: u64,
    /// Inode number of the backing file.
    pub lo_inode: u64,
    /// Device number of the loop device itself.
    pub lo_rdevice: u64,
    /// Byte offset into the backing file.
    pub lo_offset: u64,
    /// Size limit in bytes, 0 for the whole file.
    pub lo_sizelimit: u64,
    /// Loop device index.
    pub lo_number: u32,
    /// Unused (encryption was removed from the kernel).
    pub lo_encrypt_type: u32,
    /// Unused.
    pub lo_encrypt_key_size: u32,
    /// `LO_FLAGS_*` bits.
    pub lo_flags: u32,
    /// Name recorded at configure time, NUL-terminated; informational only.
    pub lo_file_name: [u8; LO_NAME_SIZE],
    /// Unused.
    pub lo_crypt_name: [u8; LO_NAME_SIZE],
    /// Unused.
    pub lo_encrypt_key: [u8; 32],
    /// Unused.
    pub lo_init: [u64; 2],
}

impl LoopInfo64 {
    /// An all-zero value: what the kernel expects in every field this module does not set.
    pub const fn zeroed() -> Self {
        Self {
            lo_device: 0,
            lo_inode: 0,
            lo_rdevice: 0,
            lo_offset: 0,
            lo_sizelimit: 0,
            lo_number: 0,
            lo_encrypt_type: 0,
            lo_encrypt_key_size: 0,
            lo_flags: 0,
            lo_file_name: [0; LO_NAME_SIZE],
            lo_crypt_name: [0; LO_NAME_SIZE],
            lo_encrypt_key: [0; 32],
            lo_init: [0; 2],
        }
    }

    /// The recorded file name up to its first NUL.
    pub fn file_name(&self) -> &[u8] {
        let end = self
            .lo_file_name
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(LO_NAME_SIZE);
        &self.lo_file_name[..end]
    }
}

impl std::fmt::Debug for LoopInfo64 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoopInfo64")
            .field("lo_device", &self.lo_device)
            .field("lo_inode", &self.lo_inode)
            .field("lo_number", &self.lo_number)
            .field("lo_flags", &self.lo_flags)
            .field(
                "lo_file_name",
                &std::str::from_utf8(self.file_name()).unwrap_or("<not utf-8>"),
            )
            .finish_non_exhaustive()
    }
}

/// `struct loop_config` from `<linux/loop.h>` (304 bytes).
#[repr(C)]
struct LoopConfig {
    fd: u32,
    block_size: u32,
    info: LoopInfo64,
    reserved: [u64; 8],
}

// The kernel copies exactly these sizes; a layout mistake would be silent otherwise.
const _: () = assert!(std::mem::size_of::<LoopInfo64>() == 232);
const _: () = assert!(std::mem::size_of::<LoopConfig>() == 304);

/// `LOOP_CTL_GET_FREE`: the index of a free loop device, creating one if all are bound.
///
/// Another process may bind the same index before the caller does; `configure` then fails with
/// `EBUSY` and the caller asks again.
pub fn get_free(control: BorrowedFd<'_>) -> Result<u32, Errno> {
    // SAFETY: LOOP_CTL_GET_FREE takes no argument and only returns an index; `control` is a
    // valid open fd for the duration of the call (borrowed).
    let ret = unsafe { libc::ioctl(control.as_raw_fd(), LOOP_CTL_GET_FREE) };
    let index = Errno::result(ret)?;
    // A non-negative c_int always fits in u32.
    Ok(index.unsigned_abs())
}

/// `LOOP_CONFIGURE`: bind `backing` to the loop device `dev` with `flags` (`LO_FLAGS_*`),
/// logical `block_size` (0 = 512, else 512..=page size, a power of two) and `file_name`
/// recorded in `lo_file_name` (cut to 63 bytes).
///
/// Errors: `EBUSY` if the device is already bound, `EINVAL` if the kernel rejects the flags or
/// block size (e.g. direct I/O with a block size the backing file's filesystem cannot honour).
/// The kernel takes its own reference to `backing`; the caller may close it afterwards.
pub fn configure(
    dev: BorrowedFd<'_>,
    backing: BorrowedFd<'_>,
    block_size: u32,
    flags: u32,
    file_name: &[u8],
) -> Result<(), Errno> {
    let mut info = LoopInfo64::zeroed();
    info.lo_flags = flags;
    let n = file_name.len().min(LO_NAME_SIZE - 1);
    info.lo_file_name[..n].copy_from_slice(&file_name[..n]);
    let config = LoopConfig {
        // An open fd is non-negative, so the cast is lossless.
        fd: backing.as_raw_fd().unsigned_abs(),
        block_size,
        info,
        reserved: [0; 8],
    };
    // SAFETY: `config` is a fully initialised `struct loop_config` with the kernel's layout
    // (size asserted above) that lives across the call; the kernel only reads it. Both fds are
    // borrowed, so they stay open for the duration of the call.
    let ret = unsafe { libc::ioctl(dev.as_raw_fd(), LOOP_CONFIGURE, std::ptr::from_ref(&config)) };
    Errno::result(ret).map(drop)
}

/// `LOOP_GET_STATUS64`: the device's current binding; `ENXIO` when it is unbound.
pub fn status(dev: BorrowedFd<'_>) -> Result<LoopInfo64, Errno> {
    let mut info = LoopInfo64::zeroed();
    // SAFETY: `info` is a writable `struct loop_info64` of the kernel's layout (size asserted
    // above) that outlives the call; the kernel writes at most its size. `dev` is borrowed.
    let ret = unsafe {
        libc::ioctl(
            dev.as_raw_fd(),
            LOOP_GET_STATUS64,
            std::ptr::from_mut(&mut info),
        )
    };
    Errno::result(ret).map(|_| info)
}

/// `LOOP_CLR_FD`: unbind the device now if the caller's fd is its only opener; otherwise the
/// kernel sets `LO_FLAGS_AUTOCLEAR` and unbinds on the last close. `ENXIO` if unbound.
pub fn clear(dev: BorrowedFd<'_>) -> Result<(), Errno> {
    // SAFETY: LOOP_CLR_FD takes no argument; `dev` is borrowed, so it is open for the call.
    let ret = unsafe { libc::ioctl(dev.as_raw_fd(), LOOP_CLR_FD) };
    Errno::result(ret).map(drop)
}
