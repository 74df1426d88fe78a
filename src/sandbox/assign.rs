//! Handing a function to a blank sandbox ([`super::SandboxHost::create_blank`] and
//! [`super::SandboxHost::assign_blank`]): the encoding of the command that `hearth` sends
//! a waiting init, and which specs a blank can take.
//!
//! **Exec bytes.** The command's exec plan — working directory, `PATH` candidates, `argv`,
//! `envp` — as one flat byte string, built in the parent ([`encode`]) and read by init
//! without allocating ([`decode`]: the strings stay in init's fixed-size stack buffer, the
//! `argv`/`envp` pointer arrays are a fixed array on its stack too). Layout: three
//! native-endian `u32` counts (candidates, arguments, environment entries), then the
//! working directory, the candidates, the arguments and the environment, each
//! NUL-terminated, back to back; nothing follows. Hard caps: [`MAX_EXEC_BYTES`] in all and
//! [`MAX_EXEC_STRINGS`] strings (candidates, arguments and environment together) — far
//! above what a Lambda function can configure (4 KB of environment).
//!
//! **Compatibility.** What a blank is built with and cannot change afterwards — the
//! `/tmp` size, the root, `/var/runtime`, the identity, the hostname, the pids limit,
//! whether it serves the Runtime API — is its [`BlankShape`]; a spec can be assigned to a
//! blank only if it asks for exactly that ([`BlankShape::check`]). Memory, CPU share, the
//! code, the command, its environment and stdio are the assignment's.
//!
//! Not here: sending and receiving (`spawn.rs`), the pool of blanks (`blank.rs`).

use std::ffi::CStr;
use std::path::PathBuf;

use libc::c_char;
use nix::errno::Errno;

use super::mounts::RootSource;
use super::plan::{Candidates, ExecPlan, ExecView, SandboxSpec};

/// Largest encoded exec plan.
pub const MAX_EXEC_BYTES: usize = 128 * 1024;
/// Most strings (candidates + arguments + environment entries) in one exec plan.
pub const MAX_EXEC_STRINGS: usize = 512;
/// Room for `argv` and `envp` pointers, each NULL-terminated.
pub const MAX_EXEC_POINTERS: usize = MAX_EXEC_STRINGS + 2;

const HEADER: usize = 12;

/// Why an exec plan cannot be encoded or decoded. Carries no heap data: init builds it
/// between clone and exec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AssignError {
    #[error("the command's exec plan is {len} bytes, more than the blank path's {max}")]
    TooLarge { len: usize, max: usize },
    #[error("the command's exec plan has {count} strings, more than the blank path's {max}")]
    TooManyStrings { count: usize, max: usize },
    #[error("malformed exec plan: {0}")]
    Malformed(&'static str),
}

impl AssignError {
    /// The errno init reports for it.
    pub fn errno(self) -> Errno {
        match self {
            AssignError::TooLarge { .. } | AssignError::TooManyStrings { .. } => Errno::E2BIG,
            AssignError::Malformed(_) => Errno::EBADMSG,
        }
    }
}

/// Encodes `exec` (parent side). Refuses plans over the caps.
pub fn encode(exec: &ExecPlan) -> Result<Vec<u8>, AssignError> {
    let candidates = &exec.candidates;
    let count = candidates.len() + exec.args().len() + exec.env().len();
    if count > MAX_EXEC_STRINGS {
        return Err(AssignError::TooManyStrings {
            count,
            max: MAX_EXEC_STRINGS,
        });
    }
    let strings = std::iter::once(exec.cwd.as_c_str())
        .chain(candidates.iter().map(|c| c.as_c_str()))
        .chain(exec.args().iter().map(|c| c.as_c_str()))
        .chain(exec.env().iter().map(|c| c.as_c_str()));
    let len = HEADER
        + strings
            .clone()
            .map(|s| s.to_bytes_with_nul().len())
            .sum::<usize>();
    if len > MAX_EXEC_BYTES {
        return Err(AssignError::TooLarge {
            len,
            max: MAX_EXEC_BYTES,
        });
    }
    let mut out = Vec::with_capacity(len);
    for n in [candidates.len(), exec.args().len(), exec.env().len()] {
        out.extend_from_slice(&(n as u32).to_ne_bytes());
    }
    for s in strings {
        out.extend_from_slice(s.to_bytes_with_nul());
    }
    Ok(out)
}

fn take<'a>(buf: &'a [u8], pos: &mut usize) -> Result<&'a CStr, AssignError> {
    let rest = buf
        .get(*pos..)
        .ok_or(AssignError::Malformed("counts exceed the strings"))?;
    let s = CStr::from_bytes_until_nul(rest)
        .map_err(|_| AssignError::Malformed("unterminated string"))?;
    *pos += s.to_bytes_with_nul().len();
    Ok(s)
}

/// Decodes exec bytes (init side): allocation-free, the view borrows `buf` and fills
/// `ptrs` with the `argv` and `envp` pointer arrays.
pub fn decode<'a>(
    buf: &'a [u8],
    ptrs: &'a mut [*const c_char; MAX_EXEC_POINTERS],
) -> Result<ExecView<'a>, AssignError> {
    if buf.len() > MAX_EXEC_BYTES {
        return Err(AssignError::TooLarge {
            len: buf.len(),
            max: MAX_EXEC_BYTES,
        });
    }
    if buf.len() < HEADER {
        return Err(AssignError::Malformed("shorter than its header"));
    }
    let count = |i: usize| u32::from_ne_bytes([buf[i], buf[i + 1], buf[i + 2], buf[i + 3]]);
    let (nc, na, ne) = (count(0) as usize, count(4) as usize, count(8) as usize);
    let total = nc.saturating_add(na).saturating_add(ne);
    if total > MAX_EXEC_STRINGS {
        return Err(AssignError::TooManyStrings {
            count: total,
            max: MAX_EXEC_STRINGS,
        });
    }
    if nc == 0 || na == 0 {
        return Err(AssignError::Malformed("no command"));
    }
    let mut pos = HEADER;
    let cwd = take(buf, &mut pos)?;
    let cand_start = pos;
    for _ in 0..nc {
        take(buf, &mut pos)?;
    }
    let cand_end = pos;
    for slot in ptrs.iter_mut().take(na) {
        *slot = take(buf, &mut pos)?.as_ptr();
    }
    ptrs[na] = std::ptr::null();
    for slot in ptrs[na + 1..].iter_mut().take(ne) {
        *slot = take(buf, &mut pos)?.as_ptr();
    }
    ptrs[na + 1 + ne] = std::ptr::null();
    if pos != buf.len() {
        return Err(AssignError::Malformed("trailing bytes"));
    }
    let ptrs: &'a [*const c_char] = ptrs;
    Ok(ExecView {
        cwd,
        candidates: Candidates::Packed {
            bytes: &buf[cand_start..cand_end],
            count: nc,
        },
        argv: &ptrs[..na + 1],
        envp: &ptrs[na + 1..na + ne + 2],
    })
}

/// What a blank sandbox is built with and keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlankShape {
    pub tmp_mb: u64,
    pub pids: u64,
    pub root: RootSource,
    pub runtime_dir: Option<PathBuf>,
    pub uid: u32,
    pub gid: u32,
    pub hostname: String,
    pub runtime_api: bool,
}

/// One field in which a spec differs from a blank.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: the blank has {blank}, the spec asks for {wanted}")]
pub struct Mismatch {
    pub field: &'static str,
    pub blank: String,
    pub wanted: String,
}

impl BlankShape {
    /// The shape of a blank built from `spec`.
    pub fn of(spec: &SandboxSpec) -> BlankShape {
        BlankShape {
            tmp_mb: spec.tmp_mb,
            pids: spec.pids,
            root: spec.root.clone(),
            runtime_dir: spec.runtime_dir.clone(),
            uid: spec.uid,
            gid: spec.gid,
            hostname: spec.hostname.clone(),
            runtime_api: spec.runtime_api,
        }
    }

    /// Whether `spec` can be assigned to a blank of this shape; else the first field that
    /// differs.
    pub fn check(&self, spec: &SandboxSpec) -> Result<(), Mismatch> {
        let want = BlankShape::of(spec);
        let differ = |field: &'static str, blank: String, wanted: String| {
            Err(Mismatch {
                field,
                blank,
                wanted,
            })
        };
        let dir = |d: &Option<PathBuf>| match d {
            Some(p) => p.display().to_string(),
            None => "none".to_string(),
        };
        let root = |r: &RootSource| match r {
            RootSource::HostBinds => "the host binds".to_string(),
            RootSource::Dir(d) => d.display().to_string(),
        };
        if want.tmp_mb != self.tmp_mb {
            return differ(
                "tmp size",
                format!("{} MB", self.tmp_mb),
                format!("{} MB", want.tmp_mb),
            );
        }
        if want.root != self.root {
            return differ("root", root(&self.root), root(&want.root));
        }
        if want.runtime_dir != self.runtime_dir {
            return differ(
                "runtime directory",
                dir(&self.runtime_dir),
                dir(&want.runtime_dir),
            );
        }
        if (want.uid, want.gid) != (self.uid, self.gid) {
            return differ(
                "uid/gid",
                format!("{}/{}", self.uid, self.gid),
                format!("{}/{}", want.uid, want.gid),
            );
        }
        if want.hostname != self.hostname {
            return differ("hostname", self.hostname.clone(), want.hostname);
        }
        if want.pids != self.pids {
            return differ("pids limit", self.pids.to_string(), want.pids.to_string());
        }
        if want.runtime_api != self.runtime_api {
            let api = |on: bool| if on { "runtime API" } else { "no runtime API" }.to_string();
            return differ("runtime API", api(self.runtime_api), api(want.runtime_api));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::plan::exec_plan;
    use std::ffi::OsString;

    fn spec(argv: &[&str]) -> SandboxSpec {
        SandboxSpec::new(argv.iter().map(OsString::from).collect())
    }

    #[test]
    fn exec_bytes_round_trip() {
        let mut s = spec(&["run", "a b", ""]);
        s.env.push(("PATH".into(), "/x::/y".into()));
        s.env.push(("EMPTY".into(), "".into()));
        let exec = exec_plan(&s, "/var/task").unwrap();
        let bytes = encode(&exec).unwrap();
        let mut ptrs = [std::ptr::null(); MAX_EXEC_POINTERS];
        let view = decode(&bytes, &mut ptrs).unwrap();
        assert_eq!(view.cwd, c"/var/task");
        let cands: Vec<_> = view.candidates.iter().collect();
        let want: Vec<_> = exec.candidates.iter().map(|c| c.as_c_str()).collect();
        assert_eq!(cands, want);
        // The pointer arrays point at the same strings, in order, NULL-terminated; find
        // each pointer's offset in the buffer and read the string there.
        let read = |p: *const c_char| {
            assert!(!p.is_null());
            let off = p as usize - bytes.as_ptr() as usize;
            CStr::from_bytes_until_nul(&bytes[off..])
                .unwrap()
                .to_owned()
        };
        assert_eq!(view.argv.len(), 4);
        assert!(view.argv[3].is_null());
        let args: Vec<_> = view.argv[..3].iter().map(|&p| read(p)).collect();
        assert_eq!(args, exec.args());
        assert!(view.envp.last().unwrap().is_null());
        let env: Vec<_> = view.envp[..view.envp.len() - 1]
            .iter()
            .map(|&p| read(p))
            .collect();
        assert_eq!(env, exec.env());
        assert!(env.contains(&c"EMPTY=".to_owned()));
    }

    #[test]
    fn caps_are_enforced_on_both_sides() {
        // Too many strings.
        let mut s = spec(&["true"]);
        for i in 0..MAX_EXEC_STRINGS {
            s.env.push((format!("V{i}").into(), "x".into()));
        }
        let exec = exec_plan(&s, "/var/task").unwrap();
        assert!(matches!(
            encode(&exec),
            Err(AssignError::TooManyStrings { max: 512, .. })
        ));
        // Too many bytes.
        let mut s = spec(&["/bin/true"]);
        s.env
            .push(("BIG".into(), "x".repeat(MAX_EXEC_BYTES).into()));
        let exec = exec_plan(&s, "/var/task").unwrap();
        let err = encode(&exec).unwrap_err();
        assert!(matches!(err, AssignError::TooLarge { max, .. } if max == MAX_EXEC_BYTES));
        assert_eq!(err.errno(), Errno::E2BIG);
        // Just under the byte cap is fine.
        let mut s = spec(&["/bin/true"]);
        let small = encode(&exec_plan(&s, "/var/task").unwrap()).unwrap().len();
        let room = MAX_EXEC_BYTES - small - "BIG=".len() - 1;
        s.env.push(("BIG".into(), "x".repeat(room).into()));
        let bytes = encode(&exec_plan(&s, "/var/task").unwrap()).unwrap();
        assert_eq!(bytes.len(), MAX_EXEC_BYTES);
        let mut ptrs = [std::ptr::null(); MAX_EXEC_POINTERS];
        decode(&bytes, &mut ptrs).unwrap();
        // The decoder checks for itself: a hand-made header claiming too much.
        let mut forged = bytes.clone();
        forged[8..12].copy_from_slice(&(MAX_EXEC_STRINGS as u32).to_ne_bytes());
        assert!(matches!(
            decode(&forged, &mut ptrs),
            Err(AssignError::TooManyStrings { .. })
        ));
        forged.push(0);
        assert!(matches!(
            decode(&forged, &mut ptrs),
            Err(AssignError::TooLarge { .. })
        ));
    }

    #[test]
    fn malformed_exec_bytes_are_refused() {
        let exec = exec_plan(&spec(&["/bin/true"]), "/var/task").unwrap();
        let bytes = encode(&exec).unwrap();
        let mut ptrs = [std::ptr::null(); MAX_EXEC_POINTERS];
        let bad = |b: &[u8], ptrs: &mut [*const c_char; MAX_EXEC_POINTERS]| {
            let e = decode(b, ptrs).unwrap_err();
            assert_eq!(e.errno(), Errno::EBADMSG, "{e}");
        };
        bad(&bytes[..5], &mut ptrs);
        bad(&bytes[..bytes.len() - 1], &mut ptrs);
        let mut trailing = bytes.clone();
        trailing.extend_from_slice(b"x\0");
        bad(&trailing, &mut ptrs);
        let mut no_argv = bytes.clone();
        no_argv[4..8].copy_from_slice(&0u32.to_ne_bytes());
        bad(&no_argv, &mut ptrs);
        let mut too_many = bytes.clone();
        too_many[4..8].copy_from_slice(&3u32.to_ne_bytes());
        bad(&too_many, &mut ptrs);
    }

    #[test]
    fn compatibility_names_the_first_difference() {
        let template = spec(&[]);
        let shape = BlankShape::of(&template);
        let mut s = spec(&["/var/task/bootstrap"]);
        s.memory_mb = 3008;
        s.env.push(("A".into(), "b".into()));
        s.code = Some("/code".into());
        s.cpu_boost_mb = Some(1769);
        s.stdio = Some([0, 1, 2]);
        shape.check(&s).unwrap();
        let field = |f: &dyn Fn(&mut SandboxSpec)| {
            let mut s = s.clone();
            f(&mut s);
            shape.check(&s).unwrap_err()
        };
        let m = field(&|s| s.tmp_mb = 1024);
        assert_eq!(m.field, "tmp size");
        assert_eq!(
            m.to_string(),
            "tmp size: the blank has 512 MB, the spec asks for 1024 MB"
        );
        assert_eq!(
            field(&|s| s.root = RootSource::Dir("/r".into())).field,
            "root"
        );
        let m = field(&|s| s.runtime_dir = Some("/rt".into()));
        assert_eq!(
            m.to_string(),
            "runtime directory: the blank has none, the spec asks for /rt"
        );
        assert_eq!(field(&|s| s.uid = 1000).field, "uid/gid");
        assert_eq!(field(&|s| s.gid = 1000).field, "uid/gid");
        assert_eq!(field(&|s| s.hostname = "h".into()).field, "hostname");
        assert_eq!(field(&|s| s.pids = 10).field, "pids limit");
        assert_eq!(field(&|s| s.runtime_api = true).field, "runtime API");
    }
}
