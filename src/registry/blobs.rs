//! Durable bytes beside the database: the kept deployment zips, and `fsync` of unpacked trees.
//!
//! Owns `<state>/code-zips/<sha256>.zip`: each distinct zip a function version uses, kept so
//! `GetFunction` can later offer a download (`Code.Location`) and so a lost tree can be
//! re-unpacked. Keeping them costs disk (zips are at most 50 MB each and usually smaller than
//! the tree) and no extra reads: the bytes are already in memory at import. A zip is written to
//! a `.tmp-` file, `fsync`ed, renamed into place and the directory `fsync`ed, so a file under
//! its final name is always complete.
//!
//! [`sync_tree`] exists because the code store does not `fsync` what it unpacks: the registry
//! makes a tree durable before committing the row that names it.
//!
//! Does not: hash or check zips (the code store does), decide what is still referenced (the
//! registry passes the set to keep).
//!
//! Limits: only one registry may use the directory (`open` deletes `.tmp-` leftovers).

use std::collections::HashSet;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::RegistryError;

/// Prefix of zips being written.
const TMP_PREFIX: &str = ".tmp-";

/// The directory of kept zips.
#[derive(Debug)]
pub struct ZipKeep {
    root: PathBuf,
}

impl ZipKeep {
    /// Opens (creating, mode 0o700) the directory and deletes half-written leftovers.
    pub fn open(dir: &Path) -> Result<ZipKeep, RegistryError> {
        if !dir.is_dir() {
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| RegistryError::io("cannot create", dir, e))?;
        }
        for entry in fs::read_dir(dir).map_err(|e| RegistryError::io("cannot read", dir, e))? {
            let entry = entry.map_err(|e| RegistryError::io("cannot read", dir, e))?;
            if entry.file_name().to_string_lossy().starts_with(TMP_PREFIX) {
                let path = entry.path();
                fs::remove_file(&path).map_err(|e| RegistryError::io("cannot remove", &path, e))?;
            }
        }
        Ok(ZipKeep {
            root: dir.to_path_buf(),
        })
    }

    /// Where the zip of `sha256` is kept (it may not exist).
    pub fn path(&self, sha256: &str) -> PathBuf {
        self.root.join(format!("{sha256}.zip"))
    }

    /// Durably keeps `bytes` as the zip of `sha256`, unless it is kept already.
    pub fn save(&self, sha256: &str, bytes: &[u8]) -> Result<(), RegistryError> {
        let path = self.path(sha256);
        if path.is_file() {
            return Ok(());
        }
        let tmp = self
            .root
            .join(format!("{TMP_PREFIX}{sha256}-{}", std::process::id()));
        let write = || -> io::Result<()> {
            let mut f = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()
        };
        if let Err(e) = write() {
            let _ = fs::remove_file(&tmp);
            return Err(RegistryError::io("cannot write", &tmp, e));
        }
        fs::rename(&tmp, &path)
            .map_err(|e| RegistryError::io("cannot move into place", &tmp, e))?;
        // Until the directory is synced the name may not survive a power cut; remove it on
        // failure so a later save does not skip a zip that is not durable.
        sync_dir(&self.root).inspect_err(|_| {
            let _ = fs::remove_file(&path);
        })
    }

    /// Deletes every kept zip whose hash is not in `keep`; returns the hashes deleted.
    pub fn remove_unused(&self, keep: &HashSet<String>) -> Result<Vec<String>, RegistryError> {
        let mut removed = Vec::new();
        let entries = fs::read_dir(&self.root)
            .map_err(|e| RegistryError::io("cannot read", &self.root, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| RegistryError::io("cannot read", &self.root, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(sha) = name.strip_suffix(".zip") else {
                continue;
            };
            if !keep.contains(sha) {
                let path = entry.path();
                fs::remove_file(&path).map_err(|e| RegistryError::io("cannot remove", &path, e))?;
                removed.push(sha.to_owned());
            }
        }
        Ok(removed)
    }
}

/// `fsync`s a directory, making renames and creations inside it durable.
pub fn sync_dir(dir: &Path) -> Result<(), RegistryError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| RegistryError::io("cannot fsync", dir, e))
}

/// `fsync`s every file and directory of the tree at `dir`, then `dir`'s parent (which holds the
/// rename that put the tree in place). A symlink cannot be opened for `fsync`, and a long
/// target may sit in a data block the directory's `fsync` does not cover, so a tree holding
/// any symlink is finished with `syncfs` of its file system instead (rare, and only once per
/// newly unpacked tree).
pub fn sync_tree(dir: &Path) -> Result<(), RegistryError> {
    let has_symlinks = sync_recursive(dir)?;
    if has_symlinks {
        let d = File::open(dir).map_err(|e| RegistryError::io("cannot open", dir, e))?;
        nix::unistd::syncfs(d.as_raw_fd())
            .map_err(|e| RegistryError::io("cannot syncfs", dir, io::Error::from(e)))?;
    }
    if let Some(parent) = dir.parent() {
        sync_dir(parent)?;
    }
    Ok(())
}

/// `fsync`s files and directories below `dir`; returns whether it met a symlink.
fn sync_recursive(dir: &Path) -> Result<bool, RegistryError> {
    let mut has_symlinks = false;
    for entry in fs::read_dir(dir).map_err(|e| RegistryError::io("cannot read", dir, e))? {
        let entry = entry.map_err(|e| RegistryError::io("cannot read", dir, e))?;
        let path = entry.path();
        let kind = entry
            .file_type()
            .map_err(|e| RegistryError::io("cannot stat", &path, e))?;
        if kind.is_dir() {
            has_symlinks |= sync_recursive(&path)?;
        } else if kind.is_file() {
            // Linux allows fsync on a read-only descriptor; the tree's files are read-only.
            File::open(&path)
                .and_then(|f| f.sync_all())
                .map_err(|e| RegistryError::io("cannot fsync", &path, e))?;
        } else if kind.is_symlink() {
            has_symlinks = true;
        }
    }
    sync_dir(dir)?;
    Ok(has_symlinks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_is_idempotent_and_sweep_keeps_listed() {
        let tmp = tempfile::tempdir().unwrap();
        let keep = ZipKeep::open(&tmp.path().join("zips")).unwrap();
        keep.save("aa", b"one").unwrap();
        keep.save("aa", b"ignored: already kept").unwrap();
        keep.save("bb", b"two").unwrap();
        assert_eq!(fs::read(keep.path("aa")).unwrap(), b"one");
        let removed = keep
            .remove_unused(&HashSet::from(["aa".to_owned()]))
            .unwrap();
        assert_eq!(removed, vec!["bb".to_owned()]);
        assert!(keep.path("aa").is_file());
        assert!(!keep.path("bb").exists());
    }

    #[test]
    fn open_removes_half_written_zips() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("zips");
        fs::create_dir(&dir).unwrap();
        fs::write(dir.join(".tmp-aa-1"), b"partial").unwrap();
        ZipKeep::open(&dir).unwrap();
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 0);
    }

    #[test]
    fn sync_tree_walks_files_dirs_and_links() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("t");
        fs::create_dir_all(root.join("a/b")).unwrap();
        fs::write(root.join("a/b/f"), b"x").unwrap();
        std::os::unix::fs::symlink("a/b/f", root.join("link")).unwrap();
        sync_tree(&root).unwrap();
        assert!(sync_tree(&tmp.path().join("missing")).is_err());
    }
}
