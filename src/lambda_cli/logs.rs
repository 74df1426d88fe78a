//! `hearth logs FUNCTION [--follow]`: the function's log streams, read directly from
//! `<state-dir>/logs/aws/lambda/<FUNCTION>/` (a local tool; no daemon involved).
//!
//! Streams are printed oldest first (by modification time), each after a `==> stream <==`
//! header. `--follow` then polls every 250 ms and prints lines appended to any stream, and
//! new streams, until interrupted.
//!
//! Limits: only complete lines are printed while following; streams are files of the
//! same host (no remote logs).

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use clap::Args;

use crate::exit::ExitCode;

/// Options of `hearth logs`.
#[derive(Debug, Clone, Args)]
pub struct LogsArgs {
    /// The function's name.
    #[arg(value_name = "FUNCTION")]
    pub function: String,
    /// Keep printing new lines until Ctrl-C.
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// The daemon's state directory (default $HEARTH_STATE_DIR, else /var/lib/hearth).
    #[arg(long = "state-dir", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

/// How often `--follow` looks for new lines.
const POLL: Duration = Duration::from_millis(250);

fn group_dir(args: &LogsArgs) -> PathBuf {
    let state = args
        .state_dir
        .clone()
        .or_else(|| {
            std::env::var_os("HEARTH_STATE_DIR")
                .filter(|s| !s.is_empty())
                .map(PathBuf::from)
        })
        .unwrap_or_else(|| PathBuf::from(crate::config::DEFAULT_STATE_DIR));
    state
        .join("logs")
        .join(crate::function::env::log_group_name(&args.function).trim_start_matches('/'))
}

/// Stream files of the group, oldest first.
fn streams(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<(SystemTime, PathBuf)> = std::fs::read_dir(dir)?
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| {
            let t = e
                .metadata()
                .and_then(|m| m.modified())
                .unwrap_or(SystemTime::UNIX_EPOCH);
            (t, e.path())
        })
        .collect();
    files.sort();
    Ok(files.into_iter().map(|(_, p)| p).collect())
}

/// A stream being followed: how much of it has been printed.
struct Followed {
    path: PathBuf,
    offset: u64,
}

/// Prints what `f` holds past its offset, up to the last complete line.
fn print_new(f: &mut Followed, out: &mut impl Write, header: bool) -> std::io::Result<()> {
    let mut file = std::fs::File::open(&f.path)?;
    file.seek(SeekFrom::Start(f.offset))?;
    let mut buf = Vec::new();
    file.read_to_end(&mut buf)?;
    let Some(end) = buf.iter().rposition(|b| *b == b'\n') else {
        return Ok(());
    };
    if header {
        let name = f.path.file_name().unwrap_or_default().to_string_lossy();
        writeln!(out, "==> {name} <==")?;
    }
    out.write_all(&buf[..=end])?;
    out.flush()?;
    f.offset += end as u64 + 1;
    Ok(())
}

/// `hearth logs`; errors are (exit code, message).
pub fn run(args: &LogsArgs) -> Result<u8, (u8, String)> {
    let dir = group_dir(args);
    let files = streams(&dir).map_err(|e| {
        (
            ExitCode::FunctionError as u8,
            format!(
                "no log streams for function {} in {}: {e}",
                args.function,
                dir.display()
            ),
        )
    })?;
    let mut out = std::io::stdout().lock();
    let mut followed: Vec<Followed> = Vec::new();
    let mut last_printed: Option<PathBuf> = None;
    for path in files {
        let mut f = Followed { path, offset: 0 };
        let _ = print_new(&mut f, &mut out, true);
        last_printed = Some(f.path.clone());
        followed.push(f);
    }
    if !args.follow {
        return Ok(0);
    }
    loop {
        std::thread::sleep(POLL);
        if let Ok(now) = streams(&dir) {
            for p in now {
                if !followed.iter().any(|f| f.path == p) {
                    followed.push(Followed { path: p, offset: 0 });
                }
            }
        }
        for f in &mut followed {
            let header = last_printed.as_deref() != Some(f.path.as_path());
            let before = f.offset;
            if print_new(f, &mut out, header).is_ok() && f.offset != before {
                last_printed = Some(f.path.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_complete_lines_are_printed() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s");
        std::fs::write(&p, "START a\npart").unwrap();
        let mut f = Followed {
            path: p.clone(),
            offset: 0,
        };
        let mut out = Vec::new();
        print_new(&mut f, &mut out, true).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "==> s <==\nSTART a\n");
        std::fs::write(&p, "START a\npartial line\n").unwrap();
        let mut out = Vec::new();
        print_new(&mut f, &mut out, false).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "partial line\n");
    }
}
