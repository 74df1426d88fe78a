//! Content-addressed store of unpacked function code.
//!
//! Owns the directory `<store>/<sha256 of the zip>/` holding one unpacked package per distinct
//! zip, and the checks a package must pass before any byte of it reaches the disk. Each hash is
//! unpacked once: a later import of the same zip reuses the tree. A package is unpacked into a
//! temporary sibling directory and renamed into place, so a reader sees either nothing or the
//! complete tree, and two importers of the same zip racing each other both end up with the one
//! tree that won the rename.
//!
//! Checks (each failure is its own [`CodeError`] variant naming the entry):
//! - zip ≤ 50 MB (52,428,800 bytes) and unpacked ≤ 250 MB (262,144,000 bytes), Lambda's quotas.
//!   The unpacked limit is checked on the declared sizes up front and again on the bytes actually
//!   written while inflating, so a zip bomb that lies about its sizes is stopped at the limit.
//! - entry names: no absolute path, no `..`, no NUL, no duplicates, nothing below a file or a
//!   symlink (so nothing is ever written through a link).
//! - entry types: regular files, directories and symlinks only; device files, FIFOs and sockets
//!   are refused. A symlink's target must stay inside the package when resolved against the
//!   link's directory; `..` is only accepted as a leading prefix of the target so the lexical
//!   answer is also the physical one (a `..` after a name could climb out through another link).
//! - modes: files become 0o755 if the zip gave them any execute bit, else 0o644; directories
//!   0o755; set-id and sticky bits are dropped. Owner is the importing user (root in the daemon).
//! - encrypted entries and compression other than stored/deflate are refused.
//!
//! Does not: fetch code (S3, images), merge layers, mount anything, or track which functions use
//! which hash (the registry decides what [`CodeStore::remove_unused`] may delete).
//!
//! Limits: a zip given as a path is read into memory (at most 50 MB per import in flight) so the
//! hash and the unpacked tree come from the same bytes. Unpacked files are not fsynced: after a
//! power loss a tree may be incomplete, so the registry should re-import (after
//! [`CodeStore::remove`]) anything it cannot vouch for. [`CodeStore::open`] deletes temporary
//! directories left by a crashed run, so only one store may be open per directory.

use std::collections::{HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::fs::{self, DirBuilder, File, OpenOptions, Permissions};
use std::io::{self, Cursor, Read, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};
use zip::CompressionMethod;
use zip::ZipArchive;

/// Largest zip accepted, in bytes (Lambda's `CodeSizeZipped`).
pub const MAX_ZIPPED_BYTES: u64 = 52_428_800;
/// Largest unpacked package accepted, in bytes (Lambda's `CodeSizeUnzipped`).
pub const MAX_UNPACKED_BYTES: u64 = 262_144_000;

/// Longest symlink target accepted, in bytes (Linux `PATH_MAX` less the NUL).
const MAX_SYMLINK_TARGET: u64 = 4095;
/// Prefix of in-progress unpack directories; never a valid hex hash.
const TMP_PREFIX: &str = ".tmp-";
/// Mode of an executable file after masking.
const MODE_EXEC: u32 = 0o755;
/// Mode of any other file after masking.
const MODE_FILE: u32 = 0o644;
/// Mode of every directory in a package.
const MODE_DIR: u32 = 0o755;

// Unix file type bits of the high 16 bits of a zip entry's external attributes.
const S_IFMT: u32 = 0o170_000;
const S_IFSOCK: u32 = 0o140_000;
const S_IFLNK: u32 = 0o120_000;
const S_IFBLK: u32 = 0o060_000;
const S_IFDIR: u32 = 0o040_000;
const S_IFCHR: u32 = 0o020_000;
const S_IFIFO: u32 = 0o010_000;

/// Distinguishes temporary directories of concurrent imports within one process.
static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Errors of the code store. Entry names are shown lossily decoded and quoted.
#[derive(Debug, thiserror::Error)]
pub enum CodeError {
    /// A file system operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The zip itself is over the zipped-size limit.
    #[error("zip is {size} bytes, over the limit of {limit} bytes")]
    ZipTooLarge { size: u64, limit: u64 },
    /// The sizes the zip declares already add up to more than the unpacked limit.
    #[error("zip declares {declared} unpacked bytes, over the limit of {limit} bytes")]
    DeclaredTooLarge { declared: u64, limit: u64 },
    /// Inflating wrote more than the unpacked limit (the declared sizes lied).
    #[error("unpacking exceeded the limit of {limit} bytes while writing entry {entry:?}")]
    UnpackedTooLarge { entry: String, limit: u64 },
    /// The archive cannot be read as a zip.
    #[error("corrupt zip: {source}")]
    Corrupt {
        #[source]
        source: zip::result::ZipError,
    },
    /// One entry's data cannot be read (bad deflate stream, CRC mismatch, truncated data).
    #[error("corrupt zip entry {entry:?}: {source}")]
    CorruptEntry {
        entry: String,
        #[source]
        source: io::Error,
    },
    /// An entry has an empty name.
    #[error("zip entry {index} has an empty name")]
    EmptyName { index: usize },
    /// An entry name contains a NUL byte.
    #[error("zip entry {entry:?} has a nul byte in its name")]
    NulInName { entry: String },
    /// An entry name is an absolute path.
    #[error("zip entry {entry:?} has an absolute path")]
    AbsolutePath { entry: String },
    /// An entry name contains a `..` component.
    #[error("zip entry {entry:?} has a '..' path component")]
    ParentComponent { entry: String },
    /// Two entries name the same path.
    #[error("zip entry {entry:?} names the same path as an earlier entry")]
    Duplicate { entry: String },
    /// An entry lies below another entry that is not a directory.
    #[error("zip entry {entry:?} lies below {parent:?}, which is not a directory")]
    BelowNonDirectory { entry: String, parent: String },
    /// An entry is a device file, FIFO or socket.
    #[error("zip entry {entry:?} is a {kind}; only files, directories and symlinks are allowed")]
    SpecialFile { entry: String, kind: &'static str },
    /// A symlink's target leaves the package, is absolute, or cannot be read.
    #[error("zip entry {entry:?} is a symlink to {target:?}, which {reason}")]
    BadSymlink {
        entry: String,
        target: String,
        reason: &'static str,
    },
    /// An entry is encrypted.
    #[error("zip entry {entry:?} is encrypted")]
    Encrypted { entry: String },
    /// An entry uses a compression method other than stored or deflate.
    #[error("zip entry {entry:?} uses unsupported compression method {method}")]
    UnsupportedCompression { entry: String, method: String },
}

impl CodeError {
    fn io(op: &'static str, path: &Path, source: io::Error) -> Self {
        CodeError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Size limits of one import; [`Default`] gives Lambda's quotas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeLimits {
    /// Largest zip accepted, in bytes.
    pub max_zipped: u64,
    /// Largest total of unpacked file and symlink bytes, in bytes.
    pub max_unpacked: u64,
}

impl Default for CodeLimits {
    fn default() -> Self {
        CodeLimits {
            max_zipped: MAX_ZIPPED_BYTES,
            max_unpacked: MAX_UNPACKED_BYTES,
        }
    }
}

/// Where a zip comes from.
#[derive(Debug, Clone, Copy)]
pub enum ZipSource<'a> {
    /// The zip's bytes (e.g. a decoded `Code.ZipFile`).
    Bytes(&'a [u8]),
    /// A zip file on the host.
    File(&'a Path),
}

impl<'a> From<&'a [u8]> for ZipSource<'a> {
    fn from(bytes: &'a [u8]) -> Self {
        ZipSource::Bytes(bytes)
    }
}

impl<'a> From<&'a Vec<u8>> for ZipSource<'a> {
    fn from(bytes: &'a Vec<u8>) -> Self {
        ZipSource::Bytes(bytes)
    }
}

impl<'a> From<&'a Path> for ZipSource<'a> {
    fn from(path: &'a Path) -> Self {
        ZipSource::File(path)
    }
}

impl<'a> From<&'a PathBuf> for ZipSource<'a> {
    fn from(path: &'a PathBuf) -> Self {
        ZipSource::File(path)
    }
}

/// One unpacked package in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeRef {
    /// SHA-256 of the zip bytes, lower-case hex (64 characters).
    pub sha256: String,
    /// The unpacked tree, `<store>/<sha256>`; bind-mount it at `/var/task`.
    pub dir: PathBuf,
    /// Sum of the sizes of the unpacked regular files, in bytes.
    pub unpacked_bytes: u64,
    /// Size of the zip, in bytes (Lambda's `CodeSize`).
    pub zipped_bytes: u64,
    /// True if this import unpacked the tree, false if it reused an existing one.
    pub newly_unpacked: bool,
}

impl CodeRef {
    /// The hash as Lambda's `CodeSha256` shows it: base64 of the raw 32 bytes.
    pub fn sha256_base64(&self) -> String {
        let raw: Vec<u8> = (0..self.sha256.len() / 2)
            .filter_map(|i| u8::from_str_radix(&self.sha256[2 * i..2 * i + 2], 16).ok())
            .collect();
        base64(&raw)
    }
}

/// The content-addressed code store rooted at one directory.
#[derive(Debug)]
pub struct CodeStore {
    root: PathBuf,
    limits: CodeLimits,
}

impl CodeStore {
    /// Opens the store at `dir` with Lambda's limits, creating `dir` (mode 0o700) if missing.
    pub fn open(dir: &Path) -> Result<CodeStore, CodeError> {
        Self::open_with_limits(dir, CodeLimits::default())
    }

    /// Opens the store at `dir` with the given limits; also removes temporary directories that
    /// a crashed earlier run left behind.
    pub fn open_with_limits(dir: &Path, limits: CodeLimits) -> Result<CodeStore, CodeError> {
        if !dir.is_dir() {
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| CodeError::io("cannot create code store", dir, e))?;
            // The process umask may have narrowed the mode; 0o700 is what we want exactly.
            fs::set_permissions(dir, Permissions::from_mode(0o700))
                .map_err(|e| CodeError::io("cannot set mode of code store", dir, e))?;
        }
        let entries =
            fs::read_dir(dir).map_err(|e| CodeError::io("cannot read code store", dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| CodeError::io("cannot read code store", dir, e))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            // Another process may be unpacking into its temporary directory right now:
            // only the leftovers of importers that are gone are removed.
            if name.starts_with(TMP_PREFIX) && !tmp_owner_alive(&name) {
                let path = entry.path();
                fs::remove_dir_all(&path)
                    .map_err(|e| CodeError::io("cannot remove leftover", &path, e))?;
            }
        }
        Ok(CodeStore {
            root: dir.to_path_buf(),
            limits,
        })
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The limits this store enforces.
    pub fn limits(&self) -> CodeLimits {
        self.limits
    }

    /// Checks and unpacks a zip, or reuses the tree already unpacked from identical bytes.
    pub fn import_zip<'a>(&self, source: impl Into<ZipSource<'a>>) -> Result<CodeRef, CodeError> {
        match source.into() {
            ZipSource::Bytes(bytes) => self.import_bytes(bytes),
            ZipSource::File(path) => {
                let bytes = self.read_zip_file(path)?;
                self.import_bytes(&bytes)
            }
        }
    }

    /// Removes every unpacked tree whose hash is not in `keep` (and any temporary directory).
    /// Returns the hashes removed. Running sandboxes keep their bind mounts of a removed tree.
    pub fn remove_unused(&self, keep: &HashSet<String>) -> Result<Vec<String>, CodeError> {
        let entries = fs::read_dir(&self.root)
            .map_err(|e| CodeError::io("cannot read code store", &self.root, e))?;
        let mut removed = Vec::new();
        for entry in entries {
            let entry =
                entry.map_err(|e| CodeError::io("cannot read code store", &self.root, e))?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if is_hex_sha256(&name) && !keep.contains(&name) {
                self.remove(&name)?;
                removed.push(name);
            }
        }
        Ok(removed)
    }

    /// Removes the tree of one hash, if present. The tree disappears atomically (renamed away
    /// first), so a concurrent import never reuses a half-deleted tree.
    pub fn remove(&self, sha256: &str) -> Result<(), CodeError> {
        if !is_hex_sha256(sha256) {
            return Ok(());
        }
        let dir = self.root.join(sha256);
        let doomed = self.tmp_path(sha256);
        match fs::rename(&dir, &doomed) {
            Ok(()) => {
                fs::remove_dir_all(&doomed).map_err(|e| CodeError::io("cannot remove", &doomed, e))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(CodeError::io("cannot move away", &dir, e)),
        }
    }

    fn read_zip_file(&self, path: &Path) -> Result<Vec<u8>, CodeError> {
        let file = File::open(path).map_err(|e| CodeError::io("cannot open zip", path, e))?;
        let size = file
            .metadata()
            .map_err(|e| CodeError::io("cannot stat zip", path, e))?
            .len();
        if size > self.limits.max_zipped {
            return Err(CodeError::ZipTooLarge {
                size,
                limit: self.limits.max_zipped,
            });
        }
        // Bounded read: the file may grow after the stat.
        let mut bytes = Vec::with_capacity(size as usize);
        file.take(self.limits.max_zipped + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| CodeError::io("cannot read zip", path, e))?;
        Ok(bytes)
    }

    fn import_bytes(&self, bytes: &[u8]) -> Result<CodeRef, CodeError> {
        let zipped_bytes = bytes.len() as u64;
        if zipped_bytes > self.limits.max_zipped {
            return Err(CodeError::ZipTooLarge {
                size: zipped_bytes,
                limit: self.limits.max_zipped,
            });
        }
        let sha256 = hex(&Sha256::digest(bytes));
        let dir = self.root.join(&sha256);
        if dir.is_dir() {
            return Ok(CodeRef {
                unpacked_bytes: tree_bytes(&dir)?,
                sha256,
                dir,
                zipped_bytes,
                newly_unpacked: false,
            });
        }

        let tmp = TmpDir::create(self.tmp_path(&sha256))?;
        let unpacked_bytes = unpack(bytes, &tmp.path, self.limits)?;
        fs::set_permissions(&tmp.path, Permissions::from_mode(MODE_DIR))
            .map_err(|e| CodeError::io("cannot set mode of", &tmp.path, e))?;
        let newly_unpacked = match fs::rename(&tmp.path, &dir) {
            Ok(()) => {
                tmp.disarm();
                true
            }
            // A concurrent import of the same bytes won the rename (a non-empty tree is in
            // place: ENOTEMPTY, or EEXIST on some file systems). Its tree is identical to ours;
            // use it, and let `tmp` delete our copy.
            Err(_) if dir.is_dir() => false,
            Err(e) => return Err(CodeError::io("cannot move into place", &tmp.path, e)),
        };
        Ok(CodeRef {
            sha256,
            dir,
            unpacked_bytes,
            zipped_bytes,
            newly_unpacked,
        })
    }

    fn tmp_path(&self, sha256: &str) -> PathBuf {
        let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        self.root
            .join(format!("{TMP_PREFIX}{sha256}-{}-{n}", std::process::id()))
    }
}

/// A temporary directory removed on drop unless disarmed, so every error path cleans up.
struct TmpDir {
    path: PathBuf,
    armed: bool,
}

impl TmpDir {
    fn create(path: PathBuf) -> Result<TmpDir, CodeError> {
        // 0o700 while incomplete: nobody else should see a half-unpacked tree.
        DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .map_err(|e| CodeError::io("cannot create", &path, e))?;
        Ok(TmpDir { path, armed: true })
    }

    fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for TmpDir {
    fn drop(&mut self) {
        if self.armed {
            // Best effort: a failure here leaves a `.tmp-` directory that the next `open` removes.
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

/// What an entry is, after validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Dir,
    File { mode: u32 },
    Symlink,
}

/// One validated entry: its index in the archive and its path as normalised components.
#[derive(Debug)]
struct Entry {
    index: usize,
    name: String,
    components: Vec<OsString>,
    kind: Kind,
}

/// Validates every entry, then writes directories, files and finally symlinks under `dest`.
/// Returns the number of file bytes written.
fn unpack(bytes: &[u8], dest: &Path, limits: CodeLimits) -> Result<u64, CodeError> {
    let mut archive =
        ZipArchive::new(Cursor::new(bytes)).map_err(|source| CodeError::Corrupt { source })?;
    // The reader keeps one entry per name, so exact duplicates are invisible to `validate`.
    if archive.has_duplicate_names() {
        return Err(CodeError::Duplicate {
            entry: first_duplicate_name(bytes, archive.central_directory_start())
                .unwrap_or_else(|| "(unknown)".to_owned()),
        });
    }
    let entries = validate(&archive, limits)?;

    // Directories first, including the implicit parents of every entry.
    for entry in &entries {
        let dirs = match entry.kind {
            Kind::Dir => entry.components.len(),
            _ => entry.components.len() - 1,
        };
        let mut path = dest.to_path_buf();
        for component in &entry.components[..dirs] {
            path.push(component);
            match DirBuilder::new().mode(MODE_DIR).create(&path) {
                Ok(()) => fs::set_permissions(&path, Permissions::from_mode(MODE_DIR))
                    .map_err(|e| CodeError::io("cannot set mode of", &path, e))?,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(CodeError::io("cannot create directory", &path, e)),
            }
        }
    }

    let mut written: u64 = 0;
    let mut file_bytes: u64 = 0;
    let mut buf = vec![0u8; 64 * 1024];
    for entry in entries.iter() {
        let Kind::File { mode } = entry.kind else {
            continue;
        };
        let path = join(dest, &entry.components);
        let mut zf = archive
            .by_index(entry.index)
            .map_err(|source| CodeError::Corrupt { source })?;
        // create_new with O_NOFOLLOW: never open anything that is already there, link or not.
        let mut out = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .map_err(|e| CodeError::io("cannot create file", &path, e))?;
        loop {
            let n = match zf.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(CodeError::CorruptEntry {
                        entry: entry.name.clone(),
                        source,
                    })
                }
            };
            written += n as u64;
            // Counted on what inflating really produces, whatever the headers declared.
            if written > limits.max_unpacked {
                return Err(CodeError::UnpackedTooLarge {
                    entry: entry.name.clone(),
                    limit: limits.max_unpacked,
                });
            }
            out.write_all(&buf[..n])
                .map_err(|e| CodeError::io("cannot write", &path, e))?;
            file_bytes += n as u64;
        }
        out.set_permissions(Permissions::from_mode(mode))
            .map_err(|e| CodeError::io("cannot set mode of", &path, e))?;
    }

    // Symlinks last, so no file or directory above was created through one.
    for entry in entries.iter().filter(|e| e.kind == Kind::Symlink) {
        let path = join(dest, &entry.components);
        let mut zf = archive
            .by_index(entry.index)
            .map_err(|source| CodeError::Corrupt { source })?;
        let mut target = Vec::new();
        (&mut zf)
            .take(MAX_SYMLINK_TARGET + 1)
            .read_to_end(&mut target)
            .map_err(|source| CodeError::CorruptEntry {
                entry: entry.name.clone(),
                source,
            })?;
        check_symlink_target(entry, &target)?;
        written += target.len() as u64;
        if written > limits.max_unpacked {
            return Err(CodeError::UnpackedTooLarge {
                entry: entry.name.clone(),
                limit: limits.max_unpacked,
            });
        }
        std::os::unix::fs::symlink(OsStr::from_bytes(&target), &path)
            .map_err(|e| CodeError::io("cannot create symlink", &path, e))?;
    }
    // Regular-file bytes only, as `tree_bytes` counts a reused tree.
    Ok(file_bytes)
}

/// Checks names, types, compression and declared sizes of every entry before anything is
/// written; returns the entries to create (the root directory itself excluded).
fn validate<R: Read + io::Seek>(
    archive: &ZipArchive<R>,
    limits: CodeLimits,
) -> Result<Vec<Entry>, CodeError> {
    let mut entries = Vec::with_capacity(archive.len());
    let mut declared: u64 = 0;
    for index in 0..archive.len() {
        let data = archive
            .by_index_data(index)
            .map_err(|source| CodeError::Corrupt { source })?;
        let raw = data.name_raw();
        let name = String::from_utf8_lossy(raw).into_owned();
        let components = split_name(index, raw, &name)?;
        if data.encrypted() {
            return Err(CodeError::Encrypted { entry: name });
        }
        let method = data.compression();
        if method != CompressionMethod::Stored && method != CompressionMethod::Deflated {
            return Err(CodeError::UnsupportedCompression {
                entry: name,
                method: format!("{method:?}"),
            });
        }
        let mode = data.unix_mode();
        let dir_name = raw.ends_with(b"/");
        let kind = match mode.map_or(0, |m| m & S_IFMT) {
            t @ (S_IFCHR | S_IFBLK | S_IFIFO | S_IFSOCK) => {
                let kind = match t {
                    S_IFCHR => "character device",
                    S_IFBLK => "block device",
                    S_IFIFO => "fifo",
                    _ => "socket",
                };
                return Err(CodeError::SpecialFile { entry: name, kind });
            }
            S_IFLNK if dir_name => {
                return Err(CodeError::BadSymlink {
                    entry: name,
                    target: String::new(),
                    reason: "has a directory name (trailing '/')",
                })
            }
            S_IFLNK => Kind::Symlink,
            S_IFDIR => Kind::Dir,
            // Regular, or no type bits at all (some tools store permissions only, or nothing).
            _ if dir_name => Kind::Dir,
            _ if mode.unwrap_or(0) & 0o111 != 0 => Kind::File { mode: MODE_EXEC },
            _ => Kind::File { mode: MODE_FILE },
        };
        if kind != Kind::Dir {
            declared = declared.saturating_add(data.size());
        }
        if components.is_empty() {
            if kind == Kind::Dir {
                continue; // "./" and the like: the package root itself.
            }
            return Err(CodeError::EmptyName { index });
        }
        entries.push(Entry {
            index,
            name,
            components,
            kind,
        });
    }
    if declared > limits.max_unpacked {
        return Err(CodeError::DeclaredTooLarge {
            declared,
            limit: limits.max_unpacked,
        });
    }

    // Name collisions: the same path twice (a repeated directory is harmless and accepted), or
    // an entry below a file or a symlink.
    let mut by_path: HashMap<&[OsString], &Entry> = HashMap::with_capacity(entries.len());
    for entry in &entries {
        if let Some(prev) = by_path.insert(&entry.components, entry) {
            if !(prev.kind == Kind::Dir && entry.kind == Kind::Dir) {
                return Err(CodeError::Duplicate {
                    entry: entry.name.clone(),
                });
            }
        }
    }
    for entry in &entries {
        for depth in 1..entry.components.len() {
            if let Some(parent) = by_path.get(&entry.components[..depth]) {
                if parent.kind != Kind::Dir {
                    return Err(CodeError::BelowNonDirectory {
                        entry: entry.name.clone(),
                        parent: parent.name.clone(),
                    });
                }
            }
        }
    }
    Ok(entries)
}

/// Splits an entry name on `/` into its components, dropping empty and `.` components.
fn split_name(index: usize, raw: &[u8], name: &str) -> Result<Vec<OsString>, CodeError> {
    if raw.is_empty() {
        return Err(CodeError::EmptyName { index });
    }
    if raw.contains(&0) {
        return Err(CodeError::NulInName {
            entry: name.to_owned(),
        });
    }
    if raw.starts_with(b"/") {
        return Err(CodeError::AbsolutePath {
            entry: name.to_owned(),
        });
    }
    let mut components = Vec::new();
    for part in raw.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                return Err(CodeError::ParentComponent {
                    entry: name.to_owned(),
                })
            }
            _ => components.push(OsString::from_vec(part.to_vec())),
        }
    }
    Ok(components)
}

/// Refuses a symlink target that is empty, too long, absolute, contains NUL, or resolves outside
/// the package against the link's directory. `..` must come before any name in the target: the
/// link's own ancestors are real directories (entries below symlinks are refused), so a leading
/// `..` climbs exactly as counted, while `x/..` could climb from wherever a link `x` points.
fn check_symlink_target(entry: &Entry, target: &[u8]) -> Result<(), CodeError> {
    let bad = |reason| CodeError::BadSymlink {
        entry: entry.name.clone(),
        target: String::from_utf8_lossy(target).into_owned(),
        reason,
    };
    if target.is_empty() {
        return Err(bad("is empty"));
    }
    if target.len() as u64 > MAX_SYMLINK_TARGET {
        return Err(bad("is too long"));
    }
    if target.contains(&0) {
        return Err(bad("contains a nul byte"));
    }
    if target.starts_with(b"/") {
        return Err(bad("is absolute"));
    }
    // Depth of the link's directory below the package root.
    let mut depth = entry.components.len() - 1;
    let mut seen_name = false;
    for part in target.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." if seen_name => return Err(bad("has '..' after a name")),
            b".." => {
                depth = depth
                    .checked_sub(1)
                    .ok_or_else(|| bad("points outside the package"))?;
            }
            _ => seen_name = true,
        }
    }
    Ok(())
}

/// Finds the first repeated name by walking the central directory headers (APPNOTE 4.3.12:
/// signature, fixed fields, then name, extra field and comment with lengths at 28, 30, 32).
fn first_duplicate_name(bytes: &[u8], start: u64) -> Option<String> {
    let mut seen = HashSet::new();
    let mut pos = usize::try_from(start).ok()?;
    while bytes.get(pos..pos + 4)? == b"PK\x01\x02" {
        let le16 = |at: usize| -> Option<usize> {
            let b = bytes.get(pos + at..pos + at + 2)?;
            Some(usize::from(u16::from_le_bytes([b[0], b[1]])))
        };
        let (name_len, extra_len, comment_len) = (le16(28)?, le16(30)?, le16(32)?);
        let name = bytes.get(pos + 46..pos + 46 + name_len)?;
        if !seen.insert(name) {
            return Some(String::from_utf8_lossy(name).into_owned());
        }
        pos += 46 + name_len + extra_len + comment_len;
    }
    None
}

fn join(root: &Path, components: &[OsString]) -> PathBuf {
    let mut path = root.to_path_buf();
    path.extend(components);
    path
}

/// Sum of the sizes of the regular files below `dir`, not following symlinks.
fn tree_bytes(dir: &Path) -> Result<u64, CodeError> {
    let mut total = 0u64;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        let entries = fs::read_dir(&path).map_err(|e| CodeError::io("cannot read", &path, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| CodeError::io("cannot read", &path, e))?;
            let file_type = entry
                .file_type()
                .map_err(|e| CodeError::io("cannot stat", &entry.path(), e))?;
            if file_type.is_dir() {
                stack.push(entry.path());
            } else if file_type.is_file() {
                let meta = entry
                    .metadata()
                    .map_err(|e| CodeError::io("cannot stat", &entry.path(), e))?;
                total += meta.len();
            }
        }
    }
    Ok(total)
}

fn is_hex_sha256(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    s
}

/// Standard base64 with padding (RFC 4648 §4).
fn base64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Whether the process that made the temporary directory `.tmp-<sha>-<pid>-<n>` still
/// runs (a reused pid keeps a leftover until a later `open`, which is harmless).
fn tmp_owner_alive(name: &str) -> bool {
    let mut parts = name.rsplit('-');
    let _seq = parts.next();
    match parts.next().and_then(|p| p.parse::<u32>().ok()) {
        Some(pid) => Path::new("/proc").join(pid.to_string()).exists(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Seek;
    use std::os::unix::fs::MetadataExt;
    use zip::write::SimpleFileOptions;
    use zip::ZipWriter;

    fn opts() -> SimpleFileOptions {
        SimpleFileOptions::default().compression_method(CompressionMethod::Deflated)
    }

    /// Builds a zip in memory with the zip crate's writer.
    fn build(f: impl FnOnce(&mut ZipWriter<Cursor<Vec<u8>>>)) -> Vec<u8> {
        let mut w = ZipWriter::new(Cursor::new(Vec::new()));
        f(&mut w);
        w.finish().unwrap().into_inner()
    }

    fn file(w: &mut ZipWriter<Cursor<Vec<u8>>>, name: &str, mode: u32, data: &[u8]) {
        w.start_file(name, opts().unix_permissions(mode)).unwrap();
        w.write_all(data).unwrap();
    }

    fn store() -> (tempfile::TempDir, CodeStore) {
        let tmp = tempfile::tempdir().unwrap();
        let store = CodeStore::open(&tmp.path().join("code")).unwrap();
        (tmp, store)
    }

    /// Everything in the store's root: after a refused import it must be empty.
    fn listing(store: &CodeStore) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(store.root())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// Bitwise CRC-32 (IEEE), enough for the hand-built zips below.
    fn crc32(data: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    /// Hand-built stored zip, for what the writer refuses to produce (duplicates, NUL).
    /// Each entry: raw name, unix mode (with type bits), data.
    fn raw_zip(entries: &[(&[u8], u32, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut central = Vec::new();
        for (name, mode, data) in entries {
            let offset = out.len() as u32;
            let crc = crc32(data);
            let len = data.len() as u32;
            out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
            out.extend_from_slice(&[20, 0, 0, 0, 0, 0, 0, 0, 0, 0]); // version, flags, stored, time, date
            out.extend_from_slice(&crc.to_le_bytes());
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(&(name.len() as u16).to_le_bytes());
            out.extend_from_slice(&0u16.to_le_bytes());
            out.extend_from_slice(name);
            out.extend_from_slice(data);

            central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
            central.extend_from_slice(&[20, 3, 20, 0]); // made by unix, version needed
            central.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]); // flags, stored, time, date
            central.extend_from_slice(&crc.to_le_bytes());
            central.extend_from_slice(&len.to_le_bytes());
            central.extend_from_slice(&len.to_le_bytes());
            central.extend_from_slice(&(name.len() as u16).to_le_bytes());
            central.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]); // extra, comment, disk, internal
            central.extend_from_slice(&(mode << 16).to_le_bytes());
            central.extend_from_slice(&offset.to_le_bytes());
            central.extend_from_slice(name);
        }
        let cd_offset = out.len() as u32;
        out.extend_from_slice(&central);
        out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
        out.extend_from_slice(&[0, 0, 0, 0]);
        let n = entries.len() as u16;
        out.extend_from_slice(&n.to_le_bytes());
        out.extend_from_slice(&n.to_le_bytes());
        out.extend_from_slice(&(central.len() as u32).to_le_bytes());
        out.extend_from_slice(&cd_offset.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out
    }

    fn mode_of(path: &Path) -> u32 {
        fs::symlink_metadata(path).unwrap().mode() & 0o7777
    }

    #[test]
    fn open_creates_dir_0700() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b");
        CodeStore::open(&dir).unwrap();
        assert_eq!(mode_of(&dir), 0o700);
    }

    #[test]
    fn unpacks_files_dirs_and_modes() {
        let (_tmp, store) = store();
        let zip = build(|w| {
            file(w, "bootstrap", 0o775, b"#!/bin/sh\n");
            file(w, "lib/data.txt", 0o666, b"hello");
            file(w, "suid", 0o4755, b"x");
            w.add_directory("empty/", opts().unix_permissions(0o700))
                .unwrap();
        });
        let r = store.import_zip(&zip).unwrap();
        assert!(r.newly_unpacked);
        assert_eq!(r.sha256, hex(&Sha256::digest(&zip)));
        assert_eq!(r.dir, store.root().join(&r.sha256));
        assert_eq!(r.unpacked_bytes, 10 + 5 + 1);
        assert_eq!(r.zipped_bytes, zip.len() as u64);
        assert_eq!(fs::read(r.dir.join("lib/data.txt")).unwrap(), b"hello");
        assert_eq!(mode_of(&r.dir.join("bootstrap")), 0o755);
        assert_eq!(mode_of(&r.dir.join("lib/data.txt")), 0o644);
        assert_eq!(mode_of(&r.dir.join("suid")), 0o755);
        assert_eq!(mode_of(&r.dir.join("lib")), 0o755);
        assert_eq!(mode_of(&r.dir.join("empty")), 0o755);
        assert_eq!(mode_of(&r.dir), 0o755);
        assert_eq!(listing(&store), vec![r.sha256.clone()]);
    }

    #[test]
    fn entries_without_unix_mode_get_0644() {
        let (_tmp, store) = store();
        // External attributes 0: no mode at all.
        let zip = raw_zip(&[(b"plain", 0, b"p"), (b"d/", 0, b"")]);
        let r = store.import_zip(&zip).unwrap();
        assert_eq!(mode_of(&r.dir.join("plain")), 0o644);
        assert_eq!(mode_of(&r.dir.join("d")), 0o755);
    }

    #[test]
    fn same_zip_twice_unpacks_once() {
        let (tmp, store) = store();
        let zip = build(|w| file(w, "bootstrap", 0o755, b"run"));
        let first = store.import_zip(&zip).unwrap();
        let marker = fs::metadata(first.dir.join("bootstrap")).unwrap().ino();
        let path = tmp.path().join("code.zip");
        fs::write(&path, &zip).unwrap();
        let second = store.import_zip(&path).unwrap();
        assert!(!second.newly_unpacked);
        assert_eq!(second.dir, first.dir);
        assert_eq!(second.unpacked_bytes, first.unpacked_bytes);
        assert_eq!(
            fs::metadata(second.dir.join("bootstrap")).unwrap().ino(),
            marker
        );
        assert_eq!(listing(&store).len(), 1);
    }

    #[test]
    fn concurrent_imports_of_one_zip_agree() {
        let (_tmp, store) = store();
        let zip = build(|w| {
            for i in 0..50 {
                file(w, &format!("f{i}"), 0o644, &[b'x'; 1000]);
            }
        });
        let refs: Vec<CodeRef> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4).map(|_| s.spawn(|| store.import_zip(&zip))).collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap().unwrap())
                .collect()
        });
        assert!(refs
            .iter()
            .all(|r| r.dir == refs[0].dir && r.unpacked_bytes == 50_000));
        assert!(refs.iter().any(|r| r.newly_unpacked));
        assert_eq!(listing(&store), vec![refs[0].sha256.clone()]);
        assert_eq!(fs::read_dir(&refs[0].dir).unwrap().count(), 50);
    }

    #[test]
    fn refuses_parent_traversal() {
        let (_tmp, store) = store();
        let zip = raw_zip(&[(b"ok", 0o100644, b""), (b"a/../../x", 0o100644, b"evil")]);
        let err = store.import_zip(&zip).unwrap_err();
        assert!(matches!(err, CodeError::ParentComponent { ref entry } if entry == "a/../../x"));
        assert!(err.to_string().contains("a/../../x"), "{err}");
        assert!(listing(&store).is_empty());
        let zip = build(|w| file(w, "../x", 0o644, b"evil"));
        assert!(matches!(
            store.import_zip(&zip),
            Err(CodeError::ParentComponent { .. })
        ));
        assert!(listing(&store).is_empty());
    }

    #[test]
    fn refuses_absolute_path() {
        let (_tmp, store) = store();
        let zip = raw_zip(&[(b"/etc/x", 0o100644, b"evil")]);
        let err = store.import_zip(&zip).unwrap_err();
        assert!(matches!(err, CodeError::AbsolutePath { ref entry } if entry == "/etc/x"));
        assert!(listing(&store).is_empty());
    }

    #[test]
    fn refuses_nul_and_empty_names() {
        let (_tmp, store) = store();
        let zip = raw_zip(&[(b"a\0b", 0o100644, b"")]);
        assert!(matches!(
            store.import_zip(&zip),
            Err(CodeError::NulInName { .. })
        ));
        let zip = raw_zip(&[(b"", 0o100644, b"")]);
        assert!(matches!(
            store.import_zip(&zip),
            Err(CodeError::EmptyName { index: 0 })
        ));
        let zip = raw_zip(&[(b"./", 0o100644, b"x")]);
        // "./" is the root; as a directory it is skipped, as a file it has no name.
        assert!(store.import_zip(&zip).is_ok());
        let zip = raw_zip(&[(b".", 0o100644, b"x")]);
        assert!(matches!(
            store.import_zip(&zip),
            Err(CodeError::EmptyName { .. })
        ));
        assert_eq!(listing(&store).len(), 1);
    }

    #[test]
    fn refuses_duplicates_and_entries_below_files() {
        let (_tmp, store) = store();
        let zip = raw_zip(&[(b"a", 0o100644, b"1"), (b"a", 0o100644, b"2")]);
        let err = store.import_zip(&zip).unwrap_err();
        assert!(
            matches!(err, CodeError::Duplicate { ref entry } if entry == "a"),
            "{err}"
        );
        let zip = raw_zip(&[(b"a", 0o100644, b"1"), (b"./a", 0o100644, b"2")]);
        assert!(matches!(
            store.import_zip(&zip),
            Err(CodeError::Duplicate { .. })
        ));
        let zip = raw_zip(&[(b"a/", 0o040755, b""), (b"a", 0o100644, b"2")]);
        assert!(matches!(
            store.import_zip(&zip),
            Err(CodeError::Duplicate { .. })
        ));
        let zip = raw_zip(&[(b"a/b", 0o100644, b"1"), (b"a", 0o100644, b"2")]);
        let err = store.import_zip(&zip).unwrap_err();
        assert!(matches!(err, CodeError::BelowNonDirectory { .. }), "{err}");
        // Writing through an (inside) symlink is refused too.
        let zip = raw_zip(&[
            (b"d/", 0o040755, b""),
            (b"l", 0o120777, b"d"),
            (b"l/x", 0o100644, b""),
        ]);
        let err = store.import_zip(&zip).unwrap_err();
        assert!(matches!(err, CodeError::BelowNonDirectory { ref parent, .. } if parent == "l"));
        assert!(listing(&store).is_empty());
        // A directory listed twice is harmless.
        let zip = raw_zip(&[
            (b"a/", 0o040755, b""),
            (b"a//", 0o040755, b""),
            (b"a/f", 0o100644, b""),
        ]);
        assert!(store.import_zip(&zip).is_ok());
    }

    #[test]
    fn symlinks_inside_are_kept_escaping_ones_refused() {
        let (_tmp, store) = store();
        let zip = build(|w| {
            file(w, "lib/libx.so.1", 0o755, b"elf");
            w.add_symlink("lib/libx.so", "libx.so.1", opts()).unwrap();
            w.add_symlink("bin/x", "../lib/libx.so.1", opts()).unwrap();
            w.add_symlink("here", ".", opts()).unwrap();
        });
        let r = store.import_zip(&zip).unwrap();
        assert_eq!(
            fs::read_link(r.dir.join("lib/libx.so")).unwrap(),
            Path::new("libx.so.1")
        );
        assert_eq!(fs::read(r.dir.join("bin/x")).unwrap(), b"elf");
        assert_eq!(r.unpacked_bytes, 3);

        for (link, target, reason) in [
            ("a", "../../etc", "points outside the package"),
            ("sub/a", "../../etc/passwd", "points outside the package"),
            ("a", "/etc/passwd", "is absolute"),
            ("a", "x/../y", "has '..' after a name"),
            ("a", "", "is empty"),
        ] {
            let zip = build(|w| {
                file(w, "bootstrap", 0o755, b"x");
                w.add_symlink(link, target, opts()).unwrap();
            });
            let err = store.import_zip(&zip).unwrap_err();
            assert!(
                matches!(err, CodeError::BadSymlink { reason: r, .. } if r == reason),
                "{link} -> {target}: {err}"
            );
            assert!(err.to_string().contains(link), "{err}");
            assert_eq!(
                listing(&store),
                vec![r.sha256.clone()],
                "{link} -> {target}"
            );
        }
    }

    #[test]
    fn refuses_fifo_devices_and_sockets() {
        let (_tmp, store) = store();
        for (mode, kind) in [
            (0o010644, "fifo"),
            (0o020644, "character device"),
            (0o060644, "block device"),
            (0o140644, "socket"),
        ] {
            let zip = build(|w| {
                w.start_file("node", opts().external_attributes(mode << 16))
                    .unwrap();
            });
            let err = store.import_zip(&zip).unwrap_err();
            assert!(
                matches!(err, CodeError::SpecialFile { kind: k, .. } if k == kind),
                "{err}"
            );
            assert!(err.to_string().contains("\"node\""), "{err}");
        }
        assert!(listing(&store).is_empty());
    }

    #[test]
    fn refuses_corrupt_zips() {
        let (_tmp, store) = store();
        let err = store
            .import_zip(&b"this is not a zip".to_vec())
            .unwrap_err();
        assert!(matches!(err, CodeError::Corrupt { .. }), "{err}");
        assert!(err.to_string().starts_with("corrupt zip"), "{err}");
        // Damage the deflated data of a valid zip: inflate or the CRC check fails.
        let mut zip = build(|w| file(w, "f", 0o644, &[7u8; 10_000]));
        let start = 30 + 1 + 4; // local header + name, then into the data
        for b in &mut zip[start..start + 8] {
            *b ^= 0x5a;
        }
        let err = store.import_zip(&zip).unwrap_err();
        assert!(
            matches!(err, CodeError::CorruptEntry { ref entry, .. } if entry == "f")
                || matches!(err, CodeError::Corrupt { .. }),
            "{err}"
        );
        assert!(listing(&store).is_empty());
    }

    #[test]
    fn refuses_oversized_zip() {
        let tmp = tempfile::tempdir().unwrap();
        let limits = CodeLimits {
            max_zipped: 100,
            ..CodeLimits::default()
        };
        let store = CodeStore::open_with_limits(&tmp.path().join("c"), limits).unwrap();
        let zip = build(|w| file(w, "f", 0o644, b"0123456789"));
        assert!(zip.len() > 100);
        let err = store.import_zip(&zip).unwrap_err();
        assert!(
            matches!(err, CodeError::ZipTooLarge { limit: 100, .. }),
            "{err}"
        );
        let path = tmp.path().join("f.zip");
        fs::write(&path, &zip).unwrap();
        assert!(matches!(
            store.import_zip(&path),
            Err(CodeError::ZipTooLarge { .. })
        ));
        assert_eq!(CodeLimits::default().max_zipped, 52_428_800);
        assert_eq!(CodeLimits::default().max_unpacked, 262_144_000);
    }

    /// Writes a zip with one entry of `size` zeros to `path`, streaming (1 MiB at a time).
    fn write_zero_zip(path: &Path, size: u64) {
        let mut w = ZipWriter::new(File::create(path).unwrap());
        let options = opts().large_file(false).compression_level(Some(9));
        w.start_file("zeros", options).unwrap();
        let chunk = vec![0u8; 1 << 20];
        let mut left = size;
        while left > 0 {
            let n = left.min(chunk.len() as u64) as usize;
            w.write_all(&chunk[..n]).unwrap();
            left -= n as u64;
        }
        w.finish().unwrap();
    }

    /// Writes a real deflate bomb: one entry of `mib` MiB of zeros, about 1 KB per MiB. Deflating
    /// 260 MiB in an unoptimised test build takes tens of seconds, so one MiB is deflated with a
    /// full flush (byte-aligned, window reset) and that output repeated; streamed, never in
    /// memory. The CRC is left 0: the store must refuse the entry before it could check it.
    fn write_deflate_bomb(path: &Path, mib: u32) -> u64 {
        use flate2::{Compress, Compression, FlushCompress};
        let zeros = vec![0u8; 1 << 20];
        let mut deflate = Compress::new(Compression::best(), false);
        let mut flushed = |flush| {
            let mut out = Vec::with_capacity(64 << 10);
            let input = if flush == FlushCompress::Finish {
                &[][..]
            } else {
                &zeros[..]
            };
            deflate.compress_vec(input, &mut out, flush).unwrap();
            out
        };
        let first = flushed(FlushCompress::Full);
        let repeat = flushed(FlushCompress::Full);
        let last = flushed(FlushCompress::Finish);
        let compressed = (first.len() + repeat.len() * (mib as usize - 1) + last.len()) as u32;
        let size = mib << 20;

        let mut out = io::BufWriter::new(File::create(path).unwrap());
        let name = b"bomb";
        let header = |sig: u32, central: bool| {
            let mut h = sig.to_le_bytes().to_vec();
            if central {
                h.extend_from_slice(&[20, 3]); // made by unix
            }
            h.extend_from_slice(&[20, 0, 0, 0, 8, 0, 0, 0, 0, 0]); // needed, flags, deflate, time
            h.extend_from_slice(&0u32.to_le_bytes()); // crc
            h.extend_from_slice(&compressed.to_le_bytes());
            h.extend_from_slice(&size.to_le_bytes());
            h.extend_from_slice(&(name.len() as u16).to_le_bytes());
            h.extend_from_slice(&0u16.to_le_bytes());
            if central {
                h.extend_from_slice(&[0, 0, 0, 0, 0, 0]); // comment, disk, internal
                h.extend_from_slice(&(0o100644u32 << 16).to_le_bytes());
                h.extend_from_slice(&0u32.to_le_bytes()); // local header offset
            }
            h.extend_from_slice(name);
            h
        };
        out.write_all(&header(0x0403_4b50, false)).unwrap();
        out.write_all(&first).unwrap();
        for _ in 1..mib {
            out.write_all(&repeat).unwrap();
        }
        out.write_all(&last).unwrap();
        let cd_offset = out.stream_position().unwrap() as u32;
        let central = header(0x0201_4b50, true);
        out.write_all(&central).unwrap();
        out.write_all(&0x0605_4b50u32.to_le_bytes()).unwrap();
        out.write_all(&[0, 0, 0, 0, 1, 0, 1, 0]).unwrap();
        out.write_all(&(central.len() as u32).to_le_bytes())
            .unwrap();
        out.write_all(&cd_offset.to_le_bytes()).unwrap();
        out.write_all(&0u16.to_le_bytes()).unwrap();
        out.flush().unwrap();
        drop(out);
        fs::metadata(path).unwrap().len()
    }

    /// Patches the declared uncompressed size of the first entry (local and central headers).
    fn lie_about_size(zip: &mut [u8], size: u32) {
        let local = zip.windows(4).position(|w| w == b"PK\x03\x04").unwrap();
        zip[local + 22..local + 26].copy_from_slice(&size.to_le_bytes());
        let central = zip.windows(4).position(|w| w == b"PK\x01\x02").unwrap();
        zip[central + 24..central + 28].copy_from_slice(&size.to_le_bytes());
    }

    #[test]
    fn refuses_zip_bomb() {
        let (tmp, store) = store();
        let path = tmp.path().join("bomb.zip");
        let zipped = write_deflate_bomb(&path, 260);
        assert!(zipped < 1 << 20, "bomb is {zipped} bytes");
        // Honest headers: refused from the declared sizes, before inflating anything.
        let err = store.import_zip(&path).unwrap_err();
        assert!(
            matches!(err, CodeError::DeclaredTooLarge { declared, .. } if declared == 260 << 20)
        );
        assert!(err.to_string().contains("262144000"), "{err}");
        assert!(listing(&store).is_empty());
    }

    #[test]
    fn refuses_bomb_that_lies_about_its_size() {
        // A small limit keeps the test quick; inflating must stop at the limit or the reader
        // must notice the data runs past the declared size, and nothing may be left behind.
        let tmp = tempfile::tempdir().unwrap();
        let small = CodeLimits {
            max_zipped: MAX_ZIPPED_BYTES,
            max_unpacked: 1 << 20,
        };
        let store = CodeStore::open_with_limits(&tmp.path().join("small"), small).unwrap();
        let path = tmp.path().join("liar.zip");
        write_zero_zip(&path, 3 << 20);
        let mut zip = fs::read(&path).unwrap();
        lie_about_size(&mut zip, 1000);
        let err = store.import_zip(&zip).unwrap_err();
        assert!(
            matches!(
                err,
                CodeError::UnpackedTooLarge { .. } | CodeError::CorruptEntry { .. }
            ),
            "{err}"
        );
        assert!(listing(&store).is_empty());
    }

    #[test]
    fn unpacked_total_at_the_limit_is_accepted() {
        // File and symlink bytes count; exactly the limit passes, one byte over does not.
        let tmp = tempfile::tempdir().unwrap();
        let limits = CodeLimits {
            max_zipped: MAX_ZIPPED_BYTES,
            max_unpacked: 6,
        };
        let store = CodeStore::open_with_limits(&tmp.path().join("c"), limits).unwrap();
        let zip = build(|w| {
            file(w, "a", 0o644, b"abc");
            w.add_symlink("b", "a", opts()).unwrap();
            file(w, "c", 0o644, b"de");
        });
        assert_eq!(store.import_zip(&zip).unwrap().unpacked_bytes, 5);
        let zip = build(|w| file(w, "a", 0o644, b"abcdefg"));
        assert!(matches!(
            store.import_zip(&zip),
            Err(CodeError::DeclaredTooLarge { .. })
        ));
    }

    #[test]
    fn remove_unused_keeps_listed_hashes() {
        let (_tmp, store) = store();
        let a = store
            .import_zip(&build(|w| file(w, "a", 0o644, b"a")))
            .unwrap();
        let b = store
            .import_zip(&build(|w| file(w, "b", 0o644, b"b")))
            .unwrap();
        let keep: HashSet<String> = [a.sha256.clone()].into();
        assert_eq!(store.remove_unused(&keep).unwrap(), vec![b.sha256.clone()]);
        assert_eq!(listing(&store), vec![a.sha256.clone()]);
        let again = store
            .import_zip(&build(|w| file(w, "b", 0o644, b"b")))
            .unwrap();
        assert!(again.newly_unpacked);
    }

    #[test]
    fn open_removes_leftover_temp_dirs() {
        let (_tmp, store) = store();
        // Above the largest pid_max: its owner is gone for sure.
        let left = store.root().join(".tmp-abc-4194399-0");
        fs::create_dir_all(left.join("x")).unwrap();
        // A live importer's (this process's) directory is left alone.
        let live = store
            .root()
            .join(format!(".tmp-abc-{}-0", std::process::id()));
        fs::create_dir_all(&live).unwrap();
        CodeStore::open(store.root()).unwrap();
        assert!(!left.exists());
        assert!(live.exists());
    }

    #[test]
    fn sha256_base64_matches_lambda_format() {
        let zip = b"hello".to_vec();
        let r = CodeRef {
            sha256: hex(&Sha256::digest(&zip)),
            dir: PathBuf::new(),
            unpacked_bytes: 0,
            zipped_bytes: 5,
            newly_unpacked: false,
        };
        // sha256("hello") in base64, as `openssl dgst -sha256 -binary | base64` prints it.
        assert_eq!(
            r.sha256_base64(),
            "LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ="
        );
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
    }
}
