//! Disk-backed, size-limited `/tmp` volumes for sandboxes (Lambda's "ephemeral storage",
//! 512–10,240 MB).
//!
//! Why not a tmpfs: tmpfs pages are charged to the writer's memory cgroup, so 512 MB in `/tmp`
//! under a 128 MB memory limit would OOM the function; Lambda's `/tmp` is limited separately from
//! memory. This kernel has no project quota either, so each sandbox gets its own small ext4
//! filesystem in a sparse image file on a loop device; the filesystem's size *is* the limit, and
//! a full `/tmp` answers `ENOSPC`, never an OOM kill.
//!
//! What it owns, all under one store directory (mode 0700, e.g. `/var/lib/hearth/scratch`):
//! - `template-<size_mb>.img`: one freshly made, calibrated, sparse ext4 image per size, built on
//!   first use with `mkfs.ext4` (e2fsprogs must be installed) and published by `rename`;
//!   concurrent builders are serialised by an `flock` on `.lock`;
//! - `<name>.img`: one sparse copy of a template per live volume, bound to a loop device with
//!   `LO_FLAGS_AUTOCLEAR` (see [`ScratchVolume`] for the fd contract).
//!
//! Calibration: an image of exactly `size_mb` MiB holds about 3 % less than that for files
//! (inode tables, bitmaps and ext4's reserve of min(2 %, 16 MiB) for delayed allocation), so each
//! template is made larger until `statfs` inside it (`f_bavail × f_bsize`, what `df` shows)
//! reports at least `size_mb` MiB and less than 1 MiB more. The unused inode tables and the
//! reserve are holes in the image: the host disk only ever holds what the function writes.
//!
//! What it does not do: mount the volume for the sandbox (the sandbox child does that, in its own
//! mount namespace, with [`ScratchVolume::device`], [`ScratchVolume::FS_TYPE`],
//! [`ScratchVolume::mount_flags`] and [`ScratchVolume::mount_options`]); decide names (the caller
//! gives each live volume a unique name); log.
//!
//! Limits: sizes 512..=10,240 MB in MiB (as Lambda's 512–10,240 MB); one inode per 16 KiB of
//! size (ext4's default ratio; 32,768 inodes for 512 MB); the host filesystem must support
//! `SEEK_DATA` to copy templates sparsely and must have room for what functions write (the images
//! are sparse, so a host disk can be overcommitted — if it fills, the volume's writes fail with
//! EIO and the filesystem turns read-only, see `errors=remount-ro`). Needs root, `/dev/loop-control`
//! and Linux 5.8 (`LOOP_CONFIGURE`).

use std::ffi::{CStr, CString, OsStr};
use std::fs::{self, File, OpenOptions};
use std::io::{self, ErrorKind, Read};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::unistd::{lseek, Whence};

use crate::sys::loopdev;

/// Smallest ephemeral-storage size, in MB (MiB), as Lambda's.
pub const MIN_SIZE_MB: u64 = 512;
/// Largest ephemeral-storage size, in MB (MiB), as Lambda's.
pub const MAX_SIZE_MB: u64 = 10_240;
/// Longest volume name accepted (keeps image paths short and names readable).
pub const MAX_NAME_LEN: usize = 64;

const MIB: u64 = 1 << 20;
/// ext4 block size of every image, and the loop device's logical block size.
const BLOCK: u64 = 4096;
/// One inode per 16 KiB of requested size: ext4's default ratio. Unused inode tables are holes
/// in the image, so a generous count costs no disk space, only apparent image size.
const BYTES_PER_INODE: u64 = 16 * 1024;
/// Calibration aims for free space in `[size + MIN_EXCESS, size + MAX_EXCESS)`. The floor is
/// room for the metadata of files totalling the size (a 10 GiB file needs one 4 KiB extent
/// block), so that `size_mb` MiB of file data always fit, whatever the write sizes.
const MIN_EXCESS: u64 = 64 * 1024;
const MAX_EXCESS: u64 = MIB;
/// Calibration rounds before settling for the best image found.
const CALIBRATION_ROUNDS: usize = 8;
/// `LOOP_CTL_GET_FREE` → `LOOP_CONFIGURE` attempts lost to other processes before giving up.
const LOOP_ATTEMPTS: u32 = 16;
/// How long `release` and `remove_stale` wait for a loop device to unbind.
const DETACH_TIMEOUT: Duration = Duration::from_secs(2);
/// Mount flags and options for the sandbox (see `mount_flags`, `mount_options`); the
/// calibration mount uses the same options.
const MOUNT_FLAGS: MsFlags = MsFlags::MS_NOSUID.union(MsFlags::MS_NODEV);
const MOUNT_OPTIONS: &CStr = c"noinit_itable,errors=remount-ro,nobarrier";
const TEMPLATE_PREFIX: &str = "template-";
const IMAGE_SUFFIX: &str = ".img";
const LOCK_FILE: &str = ".lock";
/// Prefixes of a template build's temporary image and calibration mount point.
const BUILD_PREFIX: &str = ".template-";
const CALIB_PREFIX: &str = ".calib-";
const LOOP_CONTROL: &str = "/dev/loop-control";
/// `mkfs.ext4` on `PATH`, then where it lives when `PATH` lacks sbin (as daemons' often does).
const MKFS_PROGRAMS: [&str; 3] = ["mkfs.ext4", "/usr/sbin/mkfs.ext4", "/sbin/mkfs.ext4"];

/// Errors of the scratch store and its volumes.
#[derive(Debug, thiserror::Error)]
pub enum ScratchError {
    #[error("scratch size {size_mb} MB is outside {MIN_SIZE_MB}..={MAX_SIZE_MB} MB")]
    Size { size_mb: u64 },
    #[error("invalid scratch volume name {name:?}: use 1 to {MAX_NAME_LEN} of [A-Za-z0-9_-], not starting with \"template\"")]
    Name { name: String },
    #[error("scratch image {path} already exists")]
    Exists { path: PathBuf },
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("{op} {path}: {source}")]
    Sys {
        op: &'static str,
        path: PathBuf,
        source: Errno,
    },
    #[error("mkfs.ext4 not found (install e2fsprogs): {source}")]
    MkfsMissing { source: io::Error },
    #[error("mkfs.ext4 on {path} failed ({status}): {stderr}")]
    Mkfs {
        path: PathBuf,
        status: std::process::ExitStatus,
        stderr: String,
    },
    #[error("template for {size_mb} MB not calibrated: best image {image_bytes} bytes gave {avail_bytes} bytes free")]
    Calibration {
        size_mb: u64,
        image_bytes: u64,
        avail_bytes: u64,
    },
    #[error("no free loop device after {attempts} attempts")]
    NoFreeLoop { attempts: u32 },
    #[error("loop device {device} still bound to {image} after {waited_ms} ms")]
    StillAttached {
        device: String,
        image: PathBuf,
        waited_ms: u128,
    },
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> ScratchError + 'a {
    move |source| ScratchError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

fn sys_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(Errno) -> ScratchError + 'a {
    move |source| ScratchError::Sys {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// The store directory of templates and volume images. Cheap to open; safe to share between
/// threads and between processes (template builds are serialised by `flock`).
#[derive(Debug)]
pub struct ScratchStore {
    /// Canonical, so that it matches the backing-file paths the kernel reports in sysfs.
    dir: PathBuf,
}

/// A calibrated template: an ext4 image whose free space is `avail_bytes`, at least the size
/// asked for. `avail_bytes` and `rounds` are known only when the template was built by this
/// call (for the daemon's log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// `<store>/template-<size_mb>.img`.
    pub path: PathBuf,
    /// The size asked for, in MB (MiB).
    pub size_mb: u64,
    /// Apparent length of the (sparse) image file.
    pub image_bytes: u64,
    /// Free space inside it as `statfs` reports it (`f_bavail × f_bsize`), when built by this
    /// call.
    pub avail_bytes: Option<u64>,
    /// Calibration rounds taken (each one mkfs and one mount), when built by this call.
    pub rounds: Option<usize>,
}

impl ScratchStore {
    /// Opens (creating, mode 0700) the store directory.
    pub fn open(dir: &Path) -> Result<ScratchStore, ScratchError> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io_err("create store directory", dir))?;
        // Also tightens a directory that existed with a looser mode; images must not be
        // readable by other users (they hold functions' /tmp contents).
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .map_err(io_err("chmod store directory", dir))?;
        let dir = fs::canonicalize(dir).map_err(io_err("canonicalize store directory", dir))?;
        Ok(ScratchStore { dir })
    }

    /// The (canonical) store directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Makes a fresh volume of `size_mb` MB named `name`: a sparse copy of the size's template
    /// (built first if missing, which takes tens of milliseconds once per size) bound to a free
    /// loop device. `name` must be unique among live volumes; a leftover image of the same name
    /// is refused with [`ScratchError::Exists`] (clear it with [`ScratchStore::remove_stale`]).
    pub fn create(&self, name: &str, size_mb: u64) -> Result<ScratchVolume, ScratchError> {
        check_name(name)?;
        let template = self.template(size_mb)?;
        let image = self.image_path(name);
        let src = File::open(&template.path).map_err(io_err("open template", &template.path))?;
        let dst = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&image)
            .map_err(|source| match source.kind() {
                ErrorKind::AlreadyExists => ScratchError::Exists {
                    path: image.clone(),
                },
                _ => ScratchError::Io {
                    op: "create image",
                    path: image.clone(),
                    source,
                },
            })?;
        let unlink = UnlinkOnDrop(Some(image.clone()));
        copy_sparse(&src, &dst).map_err(io_err("copy template to", &image))?;
        drop(src);
        let attached = attach(&image, &dst)?;
        // The kernel holds its own reference to the backing file now.
        drop(dst);
        unlink.disarm();
        Ok(ScratchVolume {
            name: name.to_owned(),
            image,
            size_mb,
            device: attached.device,
            index: attached.index,
            direct_io: attached.direct_io,
            fd: attached.fd,
        })
    }

    /// The template for `size_mb`, building and calibrating it if missing. The daemon may call
    /// this at start-up for its common sizes so that no cold start pays for a build.
    pub fn template(&self, size_mb: u64) -> Result<Template, ScratchError> {
        check_size(size_mb)?;
        let path = self.template_path(size_mb);
        if let Some(t) = existing_template(&path, size_mb)? {
            return Ok(t);
        }
        let _lock = self.lock()?;
        // Another process may have built it while this one waited for the lock.
        if let Some(t) = existing_template(&path, size_mb)? {
            return Ok(t);
        }
        self.sweep_builds();
        self.build_template(size_mb)
    }

    /// Names of the volume images present (live or left by a crashed run), templates excluded.
    pub fn list(&self) -> Vec<String> {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut names: Vec<String> = entries
            .filter_map(Result::ok)
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let stem = name.strip_suffix(IMAGE_SUFFIX)?;
                check_name(stem).is_ok().then(|| stem.to_owned())
            })
            .collect();
        names.sort();
        names
    }

    /// Start-up sweep of a crashed run's volume: unbinds every loop device still bound to
    /// `<name>.img` (immediately if nothing else holds it; else the kernel unbinds it on the
    /// holder's last close, e.g. when a leftover mount goes away), then unlinks the image.
    /// Fails with [`ScratchError::StillAttached`] if a device stays bound past the timeout; the
    /// image is gone by then and the device unbinds when its holder lets go.
    pub fn remove_stale(&self, name: &str) -> Result<(), ScratchError> {
        check_name(name)?;
        let image = self.image_path(name);
        let bound = bound_devices(&image);
        for &index in &bound {
            let device = loop_device_path(index);
            let Ok(dev) = OpenOptions::new().read(true).write(true).open(&device) else {
                continue; // gone meanwhile: nothing to unbind
            };
            // Holding `dev` open keeps the binding from changing under us (AUTOCLEAR cannot
            // fire while we are an opener), so this check makes LOOP_CLR_FD safe: it can only
            // hit a device bound to our image, never one another process has just bound.
            if !is_bound_to(index, &image) {
                continue;
            }
            match loopdev::clear(dev.as_fd()) {
                Ok(()) | Err(Errno::ENXIO) => {}
                Err(e) => return Err(sys_err("unbind loop device", Path::new(&device))(e)),
            }
        }
        match fs::remove_file(&image) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("remove image", &image)(e)),
        }
        for index in bound {
            wait_unbound(index, &image)?;
        }
        Ok(())
    }

    /// Removes every template and any leftover of an interrupted template build, as far as it
    /// can (best effort: for `hearth gc`). Volumes are untouched: a live volume's image is a
    /// copy, not a reference.
    pub fn remove_templates(&self) {
        let Ok(_lock) = self.lock() else {
            return;
        };
        self.sweep_builds();
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.filter_map(Result::ok) {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with(TEMPLATE_PREFIX) && name.ends_with(IMAGE_SUFFIX) {
                let _ = fs::remove_file(entry.path());
            }
        }
    }

    /// For `hearth gc` (best effort): removes the templates and, when no volume image is left,
    /// the store directory itself. Returns whether the directory is gone. Run it only when no
    /// other Hearth process uses the store (it removes the lock file others would wait on).
    pub fn gc(&self) -> bool {
        self.remove_templates();
        if !self.list().is_empty() {
            return false;
        }
        let _ = fs::remove_file(self.dir.join(LOCK_FILE));
        // Fails (and keeps the directory) if something not ours is in there.
        fs::remove_dir(&self.dir).is_ok()
    }

    fn image_path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}{IMAGE_SUFFIX}"))
    }

    fn template_path(&self, size_mb: u64) -> PathBuf {
        self.dir
            .join(format!("{TEMPLATE_PREFIX}{size_mb}{IMAGE_SUFFIX}"))
    }

    /// Exclusive `flock` on `.lock`, released when the returned value is dropped.
    fn lock(&self) -> Result<Flock<File>, ScratchError> {
        let path = self.dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(io_err("open lock file", &path))?;
        loop {
            match Flock::lock(file, FlockArg::LockExclusive) {
                Ok(locked) => return Ok(locked),
                Err((f, Errno::EINTR)) => file = f,
                Err((_, e)) => return Err(sys_err("lock", &path)(e)),
            }
        }
    }

    /// Removes what an interrupted build left: temporary images and calibration mounts. Call
    /// only with the lock held, so that no build of this store is in progress.
    fn sweep_builds(&self) {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.filter_map(Result::ok) {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let path = entry.path();
            if name.starts_with(CALIB_PREFIX) {
                // A crash mid-calibration leaves the mount in the host namespace; detaching it
                // drops the last reference to its loop device, which AUTOCLEAR then unbinds.
                // EINVAL (not a mount point) is the usual answer and is fine.
                let _ = umount2(&path, MntFlags::MNT_DETACH);
                let _ = fs::remove_dir(&path);
            } else if name.starts_with(BUILD_PREFIX) {
                let _ = fs::remove_file(&path);
            }
        }
    }

    /// Builds, calibrates and publishes the template for `size_mb`. Lock held by the caller.
    fn build_template(&self, size_mb: u64) -> Result<Template, ScratchError> {
        let pid = std::process::id();
        let tmp = self.dir.join(format!("{BUILD_PREFIX}{size_mb}.{pid}.tmp"));
        let calib = self.dir.join(format!("{CALIB_PREFIX}{size_mb}.{pid}"));
        let unlink = UnlinkOnDrop(Some(tmp.clone()));
        let Calibrated {
            image_bytes,
            avail_bytes,
            rounds,
        } = calibrate(&tmp, &calib, size_mb, initial_image_bytes(size_mb * MIB))?;

        // Durable before it is published: a template torn by a host crash would be copied into
        // every later volume of this size.
        File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(io_err("sync template", &tmp))?;
        let path = self.template_path(size_mb);
        fs::rename(&tmp, &path).map_err(io_err("publish template", &path))?;
        unlink.disarm();
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err("sync store directory", &self.dir))?;
        Ok(Template {
            path,
            size_mb,
            image_bytes,
            avail_bytes: Some(avail_bytes),
            rounds: Some(rounds),
        })
    }
}

/// One sandbox's `/tmp`: an ext4 image bound to a loop device, ready to mount.
///
/// Contract: the parent keeps this value (and so the loop fd, which is close-on-exec) alive
/// until the sandbox child has mounted [`ScratchVolume::device`]. The device is bound with `LO_FLAGS_AUTOCLEAR`, so the
/// kernel unbinds it on its last close: closing the fd before the mount exists would unbind it
/// and the child's mount would fail. Once mounted (in the sandbox's own mount namespace), the
/// mount holds the device; when that namespace dies the mount goes, and with the fd closed by
/// [`ScratchVolume::release`] the device unbinds itself. Call `release` after the sandbox has
/// died. Dropping the value instead closes the fd but leaves the image file behind for the
/// start-up sweep ([`ScratchStore::list`], [`ScratchStore::remove_stale`]).
#[derive(Debug)]
pub struct ScratchVolume {
    name: String,
    image: PathBuf,
    size_mb: u64,
    /// e.g. `/dev/loop3`, ready for `mount(2)`.
    device: CString,
    index: u32,
    direct_io: bool,
    /// Our open of the loop device: keeps AUTOCLEAR from unbinding it before the child mounts.
    fd: OwnedFd,
}

impl ScratchVolume {
    /// Filesystem type to pass to `mount(2)`.
    pub const FS_TYPE: &'static CStr = c"ext4";

    /// The loop device node to mount, e.g. `/dev/loop3`. The path is looked up in the mounting
    /// process's mount namespace, so mount before the old root is detached, and after making
    /// that namespace's mounts private (`MS_REC | MS_PRIVATE` on `/`): otherwise the mount
    /// propagates back to the host namespace and outlives the sandbox, keeping the device bound.
    pub fn device(&self) -> &CStr {
        &self.device
    }

    /// Flags for the sandbox's `/tmp` mount: no set-uid binaries, no device nodes (as Lambda's
    /// `/tmp`, which allows executables, so not `MS_NOEXEC`).
    pub fn mount_flags(&self) -> MsFlags {
        MOUNT_FLAGS
    }

    /// Filesystem options for the sandbox's `/tmp` mount:
    /// - `noinit_itable`: do not start the kernel thread that zeroes unused inode tables; they
    ///   are holes in the image, already read as zeros, and zeroing would write ~2 % of the size
    ///   to the host disk for nothing;
    /// - `errors=remount-ro`: if the backing file cannot be written (host disk full: the image
    ///   is sparse) the filesystem turns read-only instead of carrying on corrupted, and never
    ///   panics the host (the superblock carries the same setting from `mkfs -e`);
    /// - `nobarrier`: the contents die with the sandbox, so a function's `fsync` need not flush
    ///   the host disk's cache through the loop device; this keeps one function's fsync loop
    ///   from stalling the host's journal.
    pub fn mount_options(&self) -> &CStr {
        MOUNT_OPTIONS
    }

    /// The volume's name (its image is `<store>/<name>.img`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The image file backing the loop device.
    pub fn image(&self) -> &Path {
        &self.image
    }

    /// The size asked for, in MB (MiB); the filesystem has at least this much free.
    pub fn size_mb(&self) -> u64 {
        self.size_mb
    }

    /// The loop device's index (`N` of `/dev/loopN`).
    pub fn index(&self) -> u32 {
        self.index
    }

    /// Whether the loop device does direct I/O to the image (no second copy in the page cache).
    pub fn direct_io(&self) -> bool {
        self.direct_io
    }

    /// Ends the volume after its sandbox has died: closes the loop fd, unlinks the image and
    /// waits (up to 2 s) until the loop device is unbound. If the device was never mounted, the
    /// close is its last and unbinds it at once. [`ScratchError::StillAttached`] means something
    /// still holds the mount (e.g. a process outside the sandbox kept a file of it open); the
    /// image is unlinked regardless and its space returns when the holder lets go.
    pub fn release(self) -> Result<(), ScratchError> {
        let ScratchVolume {
            image, index, fd, ..
        } = self;
        drop(fd);
        let unlinked = match fs::remove_file(&image) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("remove image", &image)(e)),
        };
        wait_unbound(index, &image)?;
        unlinked
    }
}

fn check_size(size_mb: u64) -> Result<(), ScratchError> {
    if (MIN_SIZE_MB..=MAX_SIZE_MB).contains(&size_mb) {
        Ok(())
    } else {
        Err(ScratchError::Size { size_mb })
    }
}

/// Names become file names in the store: keep them to a safe alphabet, and away from the
/// template and hidden-file namespaces.
fn check_name(name: &str) -> Result<(), ScratchError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && !name.starts_with("template");
    if ok {
        Ok(())
    } else {
        Err(ScratchError::Name {
            name: name.to_owned(),
        })
    }
}

fn existing_template(path: &Path, size_mb: u64) -> Result<Option<Template>, ScratchError> {
    match fs::metadata(path) {
        Ok(meta) => Ok(Some(Template {
            path: path.to_path_buf(),
            size_mb,
            image_bytes: meta.len(),
            avail_bytes: None,
            rounds: None,
        })),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err("stat template", path)(e)),
    }
}

/// Result of calibrating a template image.
#[derive(Debug, Clone, Copy)]
struct Calibrated {
    image_bytes: u64,
    avail_bytes: u64,
    rounds: usize,
}

/// Makes the filesystem in `tmp` over and over, starting at `first_guess` bytes and correcting
/// by the measured shortfall or excess, until its free space is in
/// `[size + MIN_EXCESS, size + MAX_EXCESS)`; `tmp` is left holding the chosen, readied image.
/// Settles for the smallest sufficient image if the window is not hit in `CALIBRATION_ROUNDS`.
fn calibrate(
    tmp: &Path,
    calib: &Path,
    size_mb: u64,
    first_guess: u64,
) -> Result<Calibrated, ScratchError> {
    let target = size_mb * MIB;
    let window = target + MIN_EXCESS..target + MAX_EXCESS;
    // Fixed by the size asked for, so that growing the image does not add inodes.
    let inodes = target / BYTES_PER_INODE;
    let mut image_bytes = first_guess;
    let mut tried: Vec<(u64, u64)> = Vec::new();
    for round in 1..=CALIBRATION_ROUNDS {
        mkfs(tmp, image_bytes, inodes)?;
        let avail_bytes = prepare_and_measure(tmp, calib)?;
        if window.contains(&avail_bytes) {
            return Ok(Calibrated {
                image_bytes,
                avail_bytes,
                rounds: round,
            });
        }
        tried.push((image_bytes, avail_bytes));
        image_bytes = next_image_bytes(image_bytes, avail_bytes, target, &tried);
    }
    let best = tried
        .iter()
        .filter(|&&(_, avail)| avail >= window.start)
        .min_by_key(|&&(_, avail)| avail)
        .copied();
    let Some((image_bytes, _)) = best else {
        let &(image_bytes, avail_bytes) = tried
            .iter()
            .max_by_key(|&&(_, avail)| avail)
            .expect("at least one calibration round");
        return Err(ScratchError::Calibration {
            size_mb,
            image_bytes,
            avail_bytes,
        });
    };
    mkfs(tmp, image_bytes, inodes)?;
    let avail_bytes = prepare_and_measure(tmp, calib)?;
    Ok(Calibrated {
        image_bytes,
        avail_bytes,
        rounds: CALIBRATION_ROUNDS + 1,
    })
}

/// First guess of the image size for `target` free bytes: the target plus the inode tables
/// (256 bytes per 16 KiB), ext4's delayed-allocation reserve (min(2 %, 16 MiB)) and 1 MiB of
/// bitmaps and descriptors; calibration corrects the rest.
fn initial_image_bytes(target: u64) -> u64 {
    let inode_tables = target / BYTES_PER_INODE * 256;
    let reserve = (target / 50).min(16 * MIB);
    round_up(target + inode_tables + reserve + MIB, BLOCK)
}

/// Next calibration guess: correct by the distance to the middle of the window, block-aligned.
/// Overhead grows in steps (block groups), so a correction can land on a size already tried;
/// then step past it in the direction that was needed.
fn next_image_bytes(image: u64, avail: u64, target: u64, tried: &[(u64, u64)]) -> u64 {
    let aim = target + (MIN_EXCESS + MAX_EXCESS) / 2;
    let grow = avail < aim;
    let mut next = if grow {
        round_up(image + (aim - avail), BLOCK)
    } else {
        round_up(image.saturating_sub(avail - aim), BLOCK)
    };
    while tried.iter().any(|&(i, _)| i == next) {
        if grow {
            next += BLOCK;
        } else {
            next -= BLOCK;
        }
    }
    next
}

fn round_up(n: u64, to: u64) -> u64 {
    n.div_ceil(to) * to
}

/// Makes a fresh ext4 filesystem in `path`, `image_bytes` long, with `inodes` inodes.
fn mkfs(path: &Path, image_bytes: u64, inodes: u64) -> Result<(), ScratchError> {
    let file = File::create(path).map_err(io_err("create template image", path))?;
    file.set_len(image_bytes)
        .map_err(io_err("size template image", path))?;
    drop(file);
    let inodes = inodes.to_string();
    #[rustfmt::skip]
    let args = [
        "-q", "-F",
        // Explicit geometry, so that mke2fs.conf's "small" type (1 KiB blocks below 512 MiB)
        // and inode ratio do not apply.
        "-b", "4096", "-I", "256", "-N", &inodes,
        // No root-reserved blocks: the whole size is the function's.
        "-m", "0",
        "-e", "remount-ro",
        // No journal: the contents die with the sandbox, crash consistency is worthless; no
        // resize inode: the image never grows.
        "-O", "^has_journal,^resize_inode",
        // Do not zero inode tables (they stay holes) or discard the (sparse) file.
        "-E", "lazy_itable_init=1,nodiscard,root_owner=0:0",
        "-L", "hearth-tmp",
    ];
    let mut result = Err(io::Error::from(ErrorKind::NotFound));
    for program in MKFS_PROGRAMS {
        result = Command::new(program)
            .args(args)
            .arg(path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output();
        if !matches!(&result, Err(e) if e.kind() == ErrorKind::NotFound) {
            break;
        }
    }
    let output = result.map_err(|source| match source.kind() {
        ErrorKind::NotFound => ScratchError::MkfsMissing { source },
        _ => ScratchError::Io {
            op: "run mkfs.ext4 for",
            path: path.to_path_buf(),
            source,
        },
    })?;
    if output.status.success() {
        Ok(())
    } else {
        Err(ScratchError::Mkfs {
            path: path.to_path_buf(),
            status: output.status,
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        })
    }
}

/// Readies a freshly made template — root directory 1777 like `/tmp`, no `lost+found`, so the
/// function finds `/tmp` empty — and returns its free space as `df` shows it. Mounts it once in
/// the host mount namespace at `calib` (created and removed here, under the 0700 store dir);
/// nothing stays mounted or bound on return, even on error.
fn prepare_and_measure(image: &Path, calib: &Path) -> Result<u64, ScratchError> {
    fs::DirBuilder::new()
        .mode(0o700)
        .create(calib)
        .map_err(io_err("create calibration mount point", calib))?;
    let _rmdir = RmdirOnDrop(calib);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(image)
        .map_err(io_err("open template image", image))?;
    let attached = attach(image, &file)?;
    drop(file);
    let device = Path::new(OsStr::from_bytes(attached.device.to_bytes()));
    mount(
        Some(attached.device.as_c_str()),
        calib,
        Some(ScratchVolume::FS_TYPE),
        MOUNT_FLAGS | MsFlags::MS_NOEXEC,
        Some(MOUNT_OPTIONS),
    )
    .map_err(sys_err("mount template", device))?;
    let mounted = UmountOnDrop(Some(calib));
    fs::set_permissions(calib, fs::Permissions::from_mode(0o1777))
        .map_err(io_err("chmod template root", calib))?;
    let lost_found = calib.join("lost+found");
    match fs::remove_dir(&lost_found) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(io_err("remove", &lost_found)(e)),
    }
    let st = nix::sys::statfs::statfs(calib).map_err(sys_err("statfs", calib))?;
    let avail = to_u64(st.blocks_available()).saturating_mul(to_u64(st.block_size()));
    mounted.umount()?;
    drop(attached.fd);
    wait_unbound(attached.index, image)?;
    Ok(avail)
}

fn to_u64<T: TryInto<u64>>(v: T) -> u64 {
    v.try_into().unwrap_or(0)
}

/// Copies `src` into the empty `dst` without reading or writing its holes: only the data
/// extents (~150 KB of a fresh template) are copied, then `dst` is extended to the full length.
/// `io::copy` between files uses `copy_file_range` (an in-kernel copy; plain read/write where
/// the kernel refuses it).
fn copy_sparse(src: &File, dst: &File) -> io::Result<()> {
    let len = src.metadata()?.len();
    let len_off = i64::try_from(len).map_err(|_| io::Error::from(ErrorKind::InvalidInput))?;
    let mut off: i64 = 0;
    while off < len_off {
        let data = match lseek(src.as_raw_fd(), off, Whence::SeekData) {
            Ok(data) => data,
            // No data after `off`: the rest is one hole.
            Err(Errno::ENXIO) => break,
            Err(e) => return Err(e.into()),
        };
        let hole = lseek(src.as_raw_fd(), data, Whence::SeekHole)?;
        // Both positions at `data` (SEEK_HOLE moved src's to `hole`); io::copy advances them.
        lseek(src.as_raw_fd(), data, Whence::SeekSet)?;
        lseek(dst.as_raw_fd(), data, Whence::SeekSet)?;
        let want = to_u64(hole - data);
        let copied = io::copy(&mut src.take(want), &mut &*dst)?;
        if copied != want {
            return Err(ErrorKind::UnexpectedEof.into());
        }
        off = hole;
    }
    dst.set_len(len)
}

/// A loop device we bound, and our open of it.
struct Attached {
    index: u32,
    device: CString,
    fd: OwnedFd,
    direct_io: bool,
}

/// Binds `file` (whose path is `image`) to a free loop device with `LO_FLAGS_AUTOCLEAR`.
fn attach(image: &Path, file: &File) -> Result<Attached, ScratchError> {
    let control_path = Path::new(LOOP_CONTROL);
    let control = OpenOptions::new()
        .read(true)
        .write(true)
        .open(control_path)
        .map_err(io_err("open", control_path))?;
    for _ in 0..LOOP_ATTEMPTS {
        let index = loopdev::get_free(control.as_fd())
            .map_err(sys_err("LOOP_CTL_GET_FREE on", control_path))?;
        let device = loop_device_path(index);
        let dev = match OpenOptions::new().read(true).write(true).open(&device) {
            Ok(dev) => dev,
            // Removed by another process between GET_FREE and open: ask again.
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENXIO)) => continue,
            Err(e) => return Err(io_err("open", Path::new(&device))(e)),
        };
        match configure(&dev, file, image) {
            Ok(direct_io) => {
                return Ok(Attached {
                    index,
                    device: CString::new(device).expect("no NUL in a loop device path"),
                    fd: dev.into(),
                    direct_io,
                })
            }
            // Another process bound the same free device first: ask for another.
            Err(Errno::EBUSY) => continue,
            Err(e) => return Err(sys_err("LOOP_CONFIGURE", Path::new(&device))(e)),
        }
    }
    Err(ScratchError::NoFreeLoop {
        attempts: LOOP_ATTEMPTS,
    })
}

/// `LOOP_CONFIGURE` with 4 KiB blocks and direct I/O, falling back to buffered I/O and then the
/// default block size where the kernel or the host filesystem refuses (EINVAL). Returns
/// whether direct I/O is on.
fn configure(dev: &File, file: &File, image: &Path) -> Result<bool, Errno> {
    let name = image.as_os_str().as_bytes();
    let block = BLOCK as u32;
    let auto = loopdev::LO_FLAGS_AUTOCLEAR;
    let attempts = [
        (block, auto | loopdev::LO_FLAGS_DIRECT_IO, true),
        (block, auto, false),
        (0, auto, false),
    ];
    let mut last = Errno::EINVAL;
    for (block_size, flags, direct_io) in attempts {
        match loopdev::configure(dev.as_fd(), file.as_fd(), block_size, flags, name) {
            Ok(()) => return Ok(direct_io),
            Err(Errno::EINVAL) => last = Errno::EINVAL,
            Err(e) => return Err(e),
        }
    }
    Err(last)
}

fn loop_device_path(index: u32) -> String {
    format!("/dev/loop{index}")
}

/// Whether loop device `index` is bound to `image`, per sysfs. The kernel reports the backing
/// file's current path, with " (deleted)" once it has been unlinked.
fn is_bound_to(index: u32, image: &Path) -> bool {
    let sys = format!("/sys/block/loop{index}/loop/backing_file");
    match fs::read(&sys) {
        Ok(content) => backing_file_matches(&content, image),
        // No `loop` directory: unbound (or the device itself is gone).
        Err(_) => false,
    }
}

fn backing_file_matches(content: &[u8], image: &Path) -> bool {
    let content = content.strip_suffix(b"\n").unwrap_or(content);
    let content = content.strip_suffix(b" (deleted)").unwrap_or(content);
    content == image.as_os_str().as_bytes()
}

/// Indexes of the loop devices bound to `image`, from `/sys/block/loop*/loop/backing_file`.
fn bound_devices(image: &Path) -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/sys/block") else {
        return Vec::new();
    };
    let mut found: Vec<u32> = entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.strip_prefix("loop")?.parse().ok())
        .filter(|&index| is_bound_to(index, image))
        .collect();
    found.sort_unstable();
    found
}

/// Waits, with short sleeps and at most `DETACH_TIMEOUT`, until loop device `index` is no
/// longer bound to `image` (unbound, or already re-used for another file).
fn wait_unbound(index: u32, image: &Path) -> Result<(), ScratchError> {
    let start = Instant::now();
    let mut pause = Duration::from_micros(20);
    while is_bound_to(index, image) {
        let waited = start.elapsed();
        if waited >= DETACH_TIMEOUT {
            return Err(ScratchError::StillAttached {
                device: loop_device_path(index),
                image: image.to_path_buf(),
                waited_ms: waited.as_millis(),
            });
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(10));
    }
    Ok(())
}

/// Unlinks a half-made file unless disarmed.
struct UnlinkOnDrop(Option<PathBuf>);

impl UnlinkOnDrop {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for UnlinkOnDrop {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = fs::remove_file(path);
        }
    }
}

/// Removes the calibration mount point (after its mount is gone).
struct RmdirOnDrop<'a>(&'a Path);

impl Drop for RmdirOnDrop<'_> {
    fn drop(&mut self) {
        let _ = fs::remove_dir(self.0);
    }
}

/// Unmounts the calibration mount on every path out; lazily if a plain unmount fails, so that
/// nothing stays mounted in the host namespace.
struct UmountOnDrop<'a>(Option<&'a Path>);

impl UmountOnDrop<'_> {
    fn umount(mut self) -> Result<(), ScratchError> {
        let target = self.0.take().expect("mounted");
        umount2(target, MntFlags::empty()).map_err(|e| {
            let _ = umount2(target, MntFlags::MNT_DETACH);
            sys_err("unmount", target)(e)
        })
    }
}

impl Drop for UmountOnDrop<'_> {
    fn drop(&mut self) {
        if let Some(target) = self.0.take() {
            if umount2(target, MntFlags::empty()).is_err() {
                let _ = umount2(target, MntFlags::MNT_DETACH);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::{FileExt, MetadataExt};

    /// Environment variables that turn the `fill_helper` test into the child side of
    /// `volume_fills_to_its_size_in_a_private_namespace`.
    const FILL_DEV: &str = "HEARTH_SCRATCH_FILL_DEV";
    const FILL_DIR: &str = "HEARTH_SCRATCH_FILL_DIR";

    fn root_or_skip() -> bool {
        let ok = nix::unistd::geteuid().is_root()
            && Path::new(LOOP_CONTROL).exists()
            && MKFS_PROGRAMS
                .iter()
                .any(|p| Command::new(p).arg("-V").output().is_ok());
        if !ok {
            eprintln!("skipped: needs root, /dev/loop-control and mkfs.ext4");
        }
        ok
    }

    /// Releases its volume however the test ends.
    struct VolumeGuard(Option<ScratchVolume>);

    impl VolumeGuard {
        fn get(&self) -> &ScratchVolume {
            self.0.as_ref().expect("volume")
        }
        fn take(&mut self) -> ScratchVolume {
            self.0.take().expect("volume")
        }
    }

    impl Drop for VolumeGuard {
        fn drop(&mut self) {
            if let Some(v) = self.0.take() {
                let _ = v.release();
            }
        }
    }

    /// Unbinds a loop device this test bound without AUTOCLEAR, if it is still bound to
    /// `image` (and so still ours).
    struct ManualLoopGuard {
        index: u32,
        image: PathBuf,
    }

    impl Drop for ManualLoopGuard {
        fn drop(&mut self) {
            if let Ok(dev) = OpenOptions::new()
                .read(true)
                .write(true)
                .open(loop_device_path(self.index))
            {
                if is_bound_to(self.index, &self.image) {
                    let _ = loopdev::clear(dev.as_fd());
                }
            }
        }
    }

    fn temp_store() -> (tempfile::TempDir, ScratchStore) {
        let tmp = tempfile::tempdir().expect("tempdir");
        let store = ScratchStore::open(&tmp.path().join("scratch")).expect("open store");
        (tmp, store)
    }

    #[test]
    fn names_are_checked() {
        for good in ["a", "sb-1", "fn_abc-123", &"x".repeat(MAX_NAME_LEN)] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "a/b",
            "..",
            ".hidden",
            "a.img",
            "template-512",
            "templatex",
            "sp ace",
            &"x".repeat(MAX_NAME_LEN + 1),
        ] {
            assert!(
                matches!(check_name(bad), Err(ScratchError::Name { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn sizes_are_checked() {
        assert!(check_size(512).is_ok());
        assert!(check_size(10_240).is_ok());
        assert!(matches!(
            check_size(511),
            Err(ScratchError::Size { size_mb: 511 })
        ));
        assert!(check_size(10_241).is_err());
        assert!(check_size(0).is_err());
    }

    #[test]
    fn backing_file_text_is_matched() {
        let image = Path::new("/var/lib/hearth/scratch/sb-1.img");
        assert!(backing_file_matches(
            b"/var/lib/hearth/scratch/sb-1.img\n",
            image
        ));
        assert!(backing_file_matches(
            b"/var/lib/hearth/scratch/sb-1.img (deleted)\n",
            image
        ));
        assert!(!backing_file_matches(
            b"/var/lib/hearth/scratch/sb-10.img\n",
            image
        ));
        assert!(!backing_file_matches(b"/other.img\n", image));
    }

    #[test]
    fn calibration_steps_toward_the_window() {
        let target = 512 * MIB;
        let mid = (MIN_EXCESS + MAX_EXCESS) / 2;
        // Short by 10 MiB: grow to land mid-window.
        assert_eq!(
            next_image_bytes(600 * MIB, target - 10 * MIB, target, &[]),
            610 * MIB + mid
        );
        // 5 MiB too much: shrink to land mid-window.
        assert_eq!(
            next_image_bytes(600 * MIB, target + 5 * MIB, target, &[]),
            595 * MIB + mid
        );
        // A size already tried is stepped past.
        let tried = [(610 * MIB + mid, 0)];
        assert_eq!(
            next_image_bytes(600 * MIB, target - 10 * MIB, target, &tried),
            610 * MIB + mid + BLOCK
        );
        assert_eq!(initial_image_bytes(target) % BLOCK, 0);
        assert!(initial_image_bytes(target) > target);
    }

    #[test]
    fn list_shows_only_volume_images() {
        let (_tmp, store) = temp_store();
        for f in [
            "template-512.img",
            "sb-1.img",
            "sb-2.img",
            ".lock",
            ".template-512.7.tmp",
            "notes.txt",
        ] {
            File::create(store.dir().join(f)).expect("create");
        }
        assert_eq!(store.list(), vec!["sb-1".to_owned(), "sb-2".to_owned()]);
        let mode = fs::metadata(store.dir()).expect("stat").mode() & 0o7777;
        assert_eq!(mode, 0o700);
    }

    #[test]
    fn sparse_copy_keeps_data_and_holes() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let src_path = tmp.path().join("src");
        let src = File::create(&src_path).expect("create");
        let len = 64 * MIB;
        src.set_len(len).expect("set_len");
        src.write_all_at(b"head", 0).expect("write");
        src.write_all_at(&[7u8; 8192], 20 * MIB).expect("write");
        src.write_all_at(b"tail", len - 4).expect("write");
        src.sync_all().expect("sync");
        let src = File::open(&src_path).expect("open");
        let dst_path = tmp.path().join("dst");
        let dst = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&dst_path)
            .expect("create");
        copy_sparse(&src, &dst).expect("copy");
        let meta = dst.metadata().expect("stat");
        assert_eq!(meta.len(), len);
        // Allocated: a few blocks, not 64 MiB (st_blocks counts 512-byte units).
        assert!(meta.blocks() * 512 < MIB, "{} blocks", meta.blocks());
        let mut buf = [0u8; 4];
        dst.read_exact_at(&mut buf, 0).expect("read");
        assert_eq!(&buf, b"head");
        dst.read_exact_at(&mut buf, len - 4).expect("read");
        assert_eq!(&buf, b"tail");
        let mut mid = vec![0u8; 8192];
        dst.read_exact_at(&mut mid, 20 * MIB).expect("read");
        assert!(mid.iter().all(|&b| b == 7));
        dst.read_exact_at(&mut buf, 10 * MIB).expect("read");
        assert_eq!(buf, [0; 4]);
    }

    #[test]
    fn templates_are_calibrated() {
        if !root_or_skip() {
            return;
        }
        let (_tmp, store) = temp_store();
        for size_mb in [512, 1024] {
            let t = store.template(size_mb).expect("template");
            let avail = t.avail_bytes.expect("built by this call");
            let target = size_mb * MIB;
            eprintln!(
                "template {size_mb} MB: image {} bytes (+{} KiB), free {} bytes (+{} KiB), on disk {} KiB",
                t.image_bytes,
                (t.image_bytes - target) / 1024,
                avail,
                avail.saturating_sub(target) / 1024,
                fs::metadata(&t.path).expect("stat").blocks() / 2,
            );
            assert!(avail >= target + MIN_EXCESS, "{avail} < {target} + 64 KiB");
            assert!(avail < target + MAX_EXCESS, "{avail} too large");
            // A second call finds it.
            let again = store.template(size_mb).expect("template");
            assert_eq!(again.path, t.path);
            assert_eq!(again.avail_bytes, None);
        }
        // Nothing of the build is left: no temp files, no calibration mounts.
        let mut names: Vec<String> = fs::read_dir(store.dir())
            .expect("readdir")
            .map(|e| e.expect("entry").file_name().into_string().expect("utf-8"))
            .collect();
        names.sort();
        assert_eq!(names, [".lock", "template-1024.img", "template-512.img"]);
        let mounts = fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
        assert!(!mounts.contains(store.dir().to_str().expect("utf-8")));
        assert!(bound_devices(&store.template_path(512)).is_empty());
    }

    #[test]
    fn calibration_converges_from_bad_guesses() {
        if !root_or_skip() {
            return;
        }
        let (_tmp, store) = temp_store();
        let tmp = store.dir().join(".template-test.tmp");
        let _unlink = UnlinkOnDrop(Some(tmp.clone()));
        let calib = store.dir().join(".calib-test");
        for size_mb in [512, 3000] {
            let target = size_mb * MIB;
            for guess in [target, target + target / 5] {
                let c = calibrate(&tmp, &calib, size_mb, guess).expect("calibrate");
                eprintln!("{size_mb} MB from {guess}: {c:?}");
                assert!(c.rounds > 1 && c.rounds <= CALIBRATION_ROUNDS, "{c:?}");
                assert!(
                    (target + MIN_EXCESS..target + MAX_EXCESS).contains(&c.avail_bytes),
                    "{c:?}"
                );
                assert_eq!(fs::metadata(&tmp).expect("stat").len(), c.image_bytes);
                assert!(!calib.exists());
            }
        }
    }

    /// Child side of `volume_fills_to_its_size_in_a_private_namespace`: runs only when started
    /// by it, inside `unshare --mount --propagation private`. Mounts the device as the sandbox
    /// will, checks the root, writes until the filesystem is full and prints the result.
    #[test]
    #[ignore = "helper; started by volume_fills_to_its_size_in_a_private_namespace"]
    fn fill_helper() {
        let (Ok(dev), Ok(dir)) = (std::env::var(FILL_DEV), std::env::var(FILL_DIR)) else {
            return;
        };
        let dir = Path::new(&dir);
        let dev = CString::new(dev).expect("device");
        mount(
            Some(dev.as_c_str()),
            dir,
            Some(ScratchVolume::FS_TYPE),
            MOUNT_FLAGS,
            Some(MOUNT_OPTIONS),
        )
        .expect("mount");
        let mode = fs::metadata(dir).expect("stat").mode() & 0o7777;
        let entries = fs::read_dir(dir).expect("readdir").count();
        let st = nix::sys::statfs::statfs(dir).expect("statfs");
        let avail = to_u64(st.blocks_available()) * to_u64(st.block_size());
        let mut file = File::create(dir.join("fill")).expect("create");
        let bs = std::env::var("HEARTH_SCRATCH_FILL_BS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(64 << 10);
        let buf = vec![0xa5u8; bs];
        let mut written: u64 = 0;
        let end = loop {
            match file.write(&buf) {
                Ok(0) => break "zero write".to_owned(),
                Ok(n) => written += n as u64,
                Err(e) => break format!("{:?}", e.raw_os_error().map(Errno::from_raw)),
            }
        };
        let sync = match file.sync_all() {
            Ok(()) => "ok".to_owned(),
            Err(e) => e.to_string(),
        };
        let st = nix::sys::statfs::statfs(dir).expect("statfs");
        let left = to_u64(st.blocks_available()) * to_u64(st.block_size());
        println!(
            "RESULT mode={mode:o} entries={entries} avail={avail} written={written} end={end} \
             sync={sync} left={left}"
        );
    }

    #[test]
    fn volume_fills_to_its_size_in_a_private_namespace() {
        if !root_or_skip() {
            return;
        }
        let (tmp, store) = temp_store();
        let size_mb = 512;
        let mut vol = VolumeGuard(Some(store.create("fill-1", size_mb).expect("create")));
        let index = vol.get().index();
        let image = vol.get().image().to_path_buf();
        eprintln!("{:?}", vol.get());
        assert!(is_bound_to(index, &image));
        assert_eq!(
            vol.get().device().to_bytes(),
            loop_device_path(index).as_bytes()
        );
        let backing = fs::read_to_string(format!("/sys/block/loop{index}/loop/backing_file"))
            .expect("backing_file");
        assert_eq!(backing.trim_end(), image.to_str().expect("utf-8"));
        let autoclear = fs::read_to_string(format!("/sys/block/loop{index}/loop/autoclear"))
            .expect("autoclear");
        assert_eq!(autoclear.trim(), "1");
        let mnt = tmp.path().join("mnt");
        fs::create_dir(&mnt).expect("mkdir");

        // The child gets its own mount namespace with every mount private (unshare's default
        // propagation), so its mount never shows in ours and dies with it.
        let out = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "--"])
            .arg(std::env::current_exe().expect("test binary"))
            .args([
                "--exact",
                "sandbox::scratch::tests::fill_helper",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(FILL_DEV, vol.get().device().to_str().expect("utf-8"))
            .env(FILL_DIR, &mnt)
            .output()
            .expect("run unshare");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let line = stdout
            .lines()
            .find_map(|l| Some(l.split_once("RESULT ")?.1))
            .unwrap_or_else(|| panic!("no RESULT in {stdout}"));
        eprintln!("child: {line}");
        let field = |key: &str| -> String {
            line.split(' ')
                .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
                .unwrap_or_else(|| panic!("{key} missing in {line}"))
                .to_owned()
        };
        assert_eq!(field("mode"), "1777");
        assert_eq!(field("entries"), "0");
        assert_eq!(field("end"), "Some(ENOSPC)");
        assert_eq!(field("sync"), "ok");
        let written: u64 = field("written").parse().expect("number");
        let target = size_mb * MIB;
        assert!(
            written >= target - 64 * 1024,
            "{written} < {target} - 64 KiB"
        );
        assert!(written <= target + 2 * MIB, "{written} > {target} + 2 MiB");
        // Not in our namespace.
        let mounts = fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
        assert!(!mounts.contains(mnt.to_str().expect("utf-8")));

        vol.take().release().expect("release");
        assert!(!is_bound_to(index, &image));
        assert!(!image.exists());
        assert!(store.list().is_empty());
    }

    #[test]
    fn release_without_mount_detaches() {
        if !root_or_skip() {
            return;
        }
        let (_tmp, store) = temp_store();
        let mut vol = VolumeGuard(Some(store.create("unmounted", 512).expect("create")));
        let (index, image) = (vol.get().index(), vol.get().image().to_path_buf());
        assert!(is_bound_to(index, &image));
        assert_eq!(store.list(), ["unmounted"]);
        assert!(matches!(
            store.create("unmounted", 512),
            Err(ScratchError::Exists { .. })
        ));
        vol.take().release().expect("release");
        assert!(!is_bound_to(index, &image));
        assert!(!image.exists());
    }

    #[test]
    fn stale_volumes_are_swept() {
        if !root_or_skip() {
            return;
        }
        let (_tmp, store) = temp_store();

        // A crashed run whose device the kernel already unbound (its fd closed at exit):
        // only the image is left.
        let vol = store.create("crashed-1", 512).expect("create");
        let (index, image) = (vol.index(), vol.image().to_path_buf());
        drop(vol);
        wait_unbound(index, &image).expect("autoclear on last close");
        assert!(image.exists());

        // A device still bound with nobody holding it (bound without AUTOCLEAR, as by an
        // older version or by hand): remove_stale must unbind it.
        let template = store.template(512).expect("template");
        let image2 = store.image_path("crashed-2");
        let src = File::open(&template.path).expect("open");
        let dst = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&image2)
            .expect("create");
        copy_sparse(&src, &dst).expect("copy");
        let control = OpenOptions::new()
            .read(true)
            .write(true)
            .open(LOOP_CONTROL)
            .expect("loop-control");
        let mut guard = None;
        for _ in 0..LOOP_ATTEMPTS {
            let index = loopdev::get_free(control.as_fd()).expect("get free");
            let dev = OpenOptions::new()
                .read(true)
                .write(true)
                .open(loop_device_path(index))
                .expect("open loop");
            match loopdev::configure(
                dev.as_fd(),
                dst.as_fd(),
                0,
                0,
                image2.as_os_str().as_bytes(),
            ) {
                Ok(()) => {
                    let info = loopdev::status(dev.as_fd()).expect("status");
                    assert_eq!(info.lo_flags & loopdev::LO_FLAGS_AUTOCLEAR, 0);
                    assert_eq!(info.lo_number, index);
                    guard = Some(ManualLoopGuard {
                        index,
                        image: image2.clone(),
                    });
                    break;
                }
                Err(Errno::EBUSY) => continue,
                Err(e) => panic!("configure: {e}"),
            }
        }
        let guard = guard.expect("bound");
        drop((src, dst, control));
        assert!(is_bound_to(guard.index, &image2));

        assert_eq!(store.list(), ["crashed-1", "crashed-2"]);
        for name in store.list() {
            store.remove_stale(&name).expect("remove_stale");
        }
        assert!(store.list().is_empty());
        assert!(!image.exists() && !image2.exists());
        assert!(!is_bound_to(guard.index, &image2));
        assert!(bound_devices(&image2).is_empty());
        // Nothing to do for a name with no image and no device.
        store.remove_stale("never-existed").expect("no-op");

        // gc removes templates and the store directory once no volume is left.
        let dir = store.dir().to_path_buf();
        assert!(store.gc());
        assert!(!dir.exists());
    }

    #[test]
    fn gc_keeps_a_store_with_volumes() {
        if !root_or_skip() {
            return;
        }
        let (_tmp, store) = temp_store();
        let vol = VolumeGuard(Some(store.create("live", 512).expect("create")));
        assert!(!store.gc());
        assert!(!store.template_path(512).exists());
        assert!(vol.get().image().exists());
        // The live volume does not depend on its template.
        drop(vol);
        assert!(store.gc());
    }

    #[test]
    fn concurrent_creates_share_one_template() {
        if !root_or_skip() {
            return;
        }
        let (_tmp, store) = temp_store();
        let vols: Vec<ScratchVolume> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|i| {
                    let store = &store;
                    s.spawn(move || store.create(&format!("conc-{i}"), 512))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("thread"))
                .collect::<Result<_, _>>()
                .expect("create")
        });
        let guards: Vec<VolumeGuard> = vols.into_iter().map(|v| VolumeGuard(Some(v))).collect();
        let mut indexes: Vec<u32> = guards.iter().map(|g| g.get().index()).collect();
        indexes.sort_unstable();
        indexes.dedup();
        assert_eq!(indexes.len(), 4);
        assert_eq!(store.list().len(), 4);
        for mut g in guards {
            g.take().release().expect("release");
        }
    }

    /// Timing of create() and release() (not asserted). Run with
    /// `cargo test --release -- --ignored --nocapture bench_create_release`.
    #[test]
    #[ignore = "timing report, not a test"]
    fn bench_create_release() {
        if !root_or_skip() {
            return;
        }
        let (_tmp, store) = temp_store();
        let t0 = Instant::now();
        let template = store.template(512).expect("template");
        eprintln!("template build (512 MB): {:?}", t0.elapsed());
        let n = 200;
        let (mut copy, mut create, mut release) = (Vec::new(), Vec::new(), Vec::new());
        let src = File::open(&template.path).expect("open");
        for i in 0..n {
            let path = store.dir().join(format!("copy-{i}.img"));
            let dst = OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&path)
                .expect("create");
            let t = Instant::now();
            copy_sparse(&src, &dst).expect("copy");
            copy.push(t.elapsed());
            drop(dst);
            fs::remove_file(&path).expect("unlink");

            let t = Instant::now();
            let vol = VolumeGuard(Some(
                store.create(&format!("bench-{i}"), 512).expect("create"),
            ));
            create.push(t.elapsed());
            let mut vol = vol;
            let t = Instant::now();
            vol.take().release().expect("release");
            release.push(t.elapsed());
        }
        for (what, mut v) in [
            ("copy_sparse", copy),
            ("create", create),
            ("release", release),
        ] {
            v.sort_unstable();
            eprintln!(
                "{what:12} n={n} median {:?} p99 {:?} max {:?}",
                v[n / 2],
                v[n * 99 / 100],
                v[n - 1]
            );
        }
    }
}
