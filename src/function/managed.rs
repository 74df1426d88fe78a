//! Hearth's managed runtimes (`runtimes/python`, `runtimes/nodejs`), built into the binary
//! and installed on first use under the state directory, content-addressed, so that a
//! sandbox can mount them read-only at `/var/runtime` and an installed `hearth` needs no
//! source tree.
//!
//! Layout inside `/var/runtime`: `python/bootstrap.py` (started as
//! `python3 /var/runtime/python/bootstrap.py`) and `nodejs/bootstrap.mjs` (started as
//! `node /var/runtime/nodejs/bootstrap.mjs`).
//!
//! Not done here: the language interpreters themselves (they come from the root: the
//! host's `/usr` or the `rootfs/` image).

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// The runtime files: path inside `/var/runtime`, contents.
pub const FILES: &[(&str, &[u8])] = &[
    (
        "python/bootstrap.py",
        include_bytes!("../../runtimes/python/bootstrap.py"),
    ),
    (
        "nodejs/bootstrap.mjs",
        include_bytes!("../../runtimes/nodejs/bootstrap.mjs"),
    ),
];

/// Installation failures.
#[derive(Debug, thiserror::Error)]
#[error("installing the managed runtimes into {path}: {source}")]
pub struct ManagedError {
    path: PathBuf,
    source: io::Error,
}

/// The content hash of [`FILES`] (hex), naming the installed directory.
pub fn digest() -> String {
    let mut h = Sha256::new();
    for (path, contents) in FILES {
        h.update(path.as_bytes());
        h.update([0]);
        h.update((contents.len() as u64).to_le_bytes());
        h.update(contents);
    }
    h.finalize()
        .iter()
        .take(12)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Installs the runtime files under `dir/<digest>/` unless already there; returns that
/// directory. Written to a temporary sibling and renamed into place, so a concurrent
/// installer or a crash never leaves a half-written tree under the final name.
pub fn install(dir: &Path) -> Result<PathBuf, ManagedError> {
    let target = dir.join(digest());
    if target.is_dir() {
        return Ok(target);
    }
    let err = |path: &Path| {
        let path = path.to_owned();
        move |source| ManagedError { path, source }
    };
    fs::create_dir_all(dir).map_err(err(dir))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).map_err(err(dir))?;
    let tmp = dir.join(format!(".tmp-{}", std::process::id()));
    let _ = fs::remove_dir_all(&tmp);
    let write_all = || -> io::Result<()> {
        for (rel, contents) in FILES {
            let path = tmp.join(rel);
            let parent = path.parent().unwrap_or(&tmp);
            fs::create_dir_all(parent)?;
            fs::write(&path, contents)?;
            fs::set_permissions(&path, fs::Permissions::from_mode(0o644))?;
        }
        for entry in walk_dirs(&tmp)? {
            fs::set_permissions(&entry, fs::Permissions::from_mode(0o755))?;
        }
        Ok(())
    };
    if let Err(e) = write_all() {
        let _ = fs::remove_dir_all(&tmp);
        return Err(err(&tmp)(e));
    }
    match fs::rename(&tmp, &target) {
        Ok(()) => Ok(target),
        // Another installer won the race: use its copy.
        Err(_) if target.is_dir() => {
            let _ = fs::remove_dir_all(&tmp);
            Ok(target)
        }
        Err(e) => {
            let _ = fs::remove_dir_all(&tmp);
            Err(err(&target)(e))
        }
    }
}

/// `dir` and every directory below it.
fn walk_dirs(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut out = vec![dir.to_owned()];
    let mut i = 0;
    while i < out.len() {
        for entry in fs::read_dir(&out[i])? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                out.push(entry.path());
            }
        }
        i += 1;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_is_idempotent_and_readable_by_everyone() {
        let dir = tempfile::tempdir().unwrap();
        let a = install(dir.path()).unwrap();
        let b = install(dir.path()).unwrap();
        assert_eq!(a, b);
        for (rel, contents) in FILES {
            assert_eq!(&fs::read(a.join(rel)).unwrap(), contents);
            let mode = fs::metadata(a.join(rel)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o644);
        }
        assert_eq!(
            fs::metadata(a.join("python")).unwrap().permissions().mode() & 0o777,
            0o755
        );
        // Only the final directory remains.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
