//! An instance's log stream: the function's stdout and stderr, line by line, between the
//! platform's `START`, `END` and `REPORT` lines, in one file per instance under its
//! function's log group, as CloudWatch Logs holds them for Lambda.
//!
//! Owns: splitting function output into lines, the exact platform lines
//! (runtime-api.md §7), the size bound of a stream, and the last 4 KB of the current
//! invocation's lines for `LogType: Tail`.
//!
//! Limits: a line longer than [`MAX_LINE`] bytes is cut into pieces of that size; a stream
//! stops growing at its `max_bytes` (one note line says so, later lines are counted and
//! dropped) so a function printing forever cannot fill the disk; the tail keeps
//! [`TAIL_BYTES`]. Function output is written as bytes, never interpreted.
//!
//! Not done here: reading the pipe (the instance's event loop does), rotation, retention,
//! `GetLogEvents`-style queries.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Longest line written as one record (CloudWatch's event size limit is 256 KB).
pub const MAX_LINE: usize = 256 * 1024;
/// Bytes kept for `LogType: Tail` (Lambda returns the last 4 KB).
pub const TAIL_BYTES: usize = 4096;

/// Figures for a `REPORT` line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Report {
    /// Invocation duration in ms.
    pub duration_ms: f64,
    /// The function's memory size in MB.
    pub memory_mb: u64,
    /// Peak memory of the instance in MB (cgroup `memory.peak`), if known.
    pub max_memory_used_mb: Option<u64>,
    /// The init phase's duration in ms, on a cold start.
    pub init_duration_ms: Option<f64>,
    /// A timeout caps the billed duration at the timeout.
    pub billed_cap_ms: Option<u64>,
}

/// `START RequestId: <id> Version: <version>`.
pub fn start_line(request_id: &str, version: &str) -> String {
    format!("START RequestId: {request_id} Version: {version}")
}

/// `END RequestId: <id>`.
pub fn end_line(request_id: &str) -> String {
    format!("END RequestId: {request_id}")
}

/// The `REPORT` line, tab-separated with a trailing tab; `Init Duration` after
/// `Max Memory Used` on a cold start (as AWS prints it; RIE puts it first).
pub fn report_line(request_id: &str, r: &Report) -> String {
    let mut billed = r.duration_ms.ceil().max(1.0) as u64;
    if let Some(cap) = r.billed_cap_ms {
        billed = billed.min(cap);
    }
    let max_used = r
        .max_memory_used_mb
        .map(|mb| mb.to_string())
        .unwrap_or_else(|| "0".to_string());
    let mut line = format!(
        "REPORT RequestId: {request_id}\tDuration: {:.2} ms\tBilled Duration: {billed} ms\tMemory Size: {} MB\tMax Memory Used: {max_used} MB\t",
        r.duration_ms, r.memory_mb
    );
    if let Some(init) = r.init_duration_ms {
        line.push_str(&format!("Init Duration: {init:.2} ms\t"));
    }
    line
}

/// One instance's log stream.
#[derive(Debug)]
pub struct LogStream {
    path: PathBuf,
    file: File,
    written: u64,
    max_bytes: u64,
    /// Lines dropped after the stream reached `max_bytes`.
    dropped: u64,
    /// Output of the function not yet ended by a newline.
    partial: Vec<u8>,
    /// The current invocation's last lines, at most [`TAIL_BYTES`] once trimmed.
    tail: Vec<u8>,
    /// Also copy every line here (the CLI's stderr for `hearth invoke --local`).
    echo: Option<Box<dyn WriteDebug>>,
}

/// `Write` that can be debug-printed (so [`LogStream`] can derive `Debug`).
pub trait WriteDebug: Write + std::fmt::Debug + Send {}
impl<T: Write + std::fmt::Debug + Send> WriteDebug for T {}

/// Log stream failures.
#[derive(Debug, thiserror::Error)]
pub enum LogsError {
    #[error("creating log directory {path}: {source}")]
    Dir { path: PathBuf, source: io::Error },
    #[error("opening log stream {path}: {source}")]
    Open { path: PathBuf, source: io::Error },
}

impl LogStream {
    /// Opens (appending) the stream `stream_name` of log group directory `group_dir`. The
    /// stream name's `/` become `-` in the file name (`2024-01-28-[$LATEST]9971…`).
    pub fn open(group_dir: &Path, stream_name: &str, max_bytes: u64) -> Result<Self, LogsError> {
        fs::create_dir_all(group_dir).map_err(|source| LogsError::Dir {
            path: group_dir.to_owned(),
            source,
        })?;
        let path = group_dir.join(stream_file_name(stream_name));
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|source| LogsError::Open {
                path: path.clone(),
                source,
            })?;
        let written = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(Self {
            path,
            file,
            written,
            max_bytes,
            dropped: 0,
            partial: Vec::new(),
            tail: Vec::new(),
            echo: None,
        })
    }

    /// Copies every line to `out` as well.
    pub fn echo_to(&mut self, out: Box<dyn WriteDebug>) {
        self.echo = Some(out);
    }

    /// The file holding the stream.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Starts a new invocation: the tail restarts.
    pub fn begin_invocation(&mut self) {
        self.tail.clear();
    }

    /// Function output, as read from its pipe. Complete lines are written at once; the
    /// rest waits for its newline (or [`LogStream::flush_partial`]).
    pub fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let room = MAX_LINE - self.partial.len();
            // A newline right after a full line ends that line, not an empty next one.
            match bytes.iter().take(room + 1).position(|&b| b == b'\n') {
                Some(i) => {
                    self.partial.extend_from_slice(&bytes[..i]);
                    bytes = &bytes[i + 1..];
                    self.emit_partial();
                }
                None if bytes.len() >= room => {
                    self.partial.extend_from_slice(&bytes[..room]);
                    bytes = &bytes[room..];
                    self.emit_partial();
                }
                None => {
                    self.partial.extend_from_slice(bytes);
                    bytes = &[];
                }
            }
        }
    }

    /// Writes an unfinished last line (at the end of an invocation or of the instance).
    pub fn flush_partial(&mut self) {
        if !self.partial.is_empty() {
            self.emit_partial();
        }
    }

    /// A platform line (`START`, `END`, `REPORT`, timeouts): written after any pending
    /// function output.
    pub fn platform(&mut self, line: &str) {
        self.flush_partial();
        self.write_line(line.as_bytes());
    }

    /// The last [`TAIL_BYTES`] bytes of the current invocation's log lines (the first line
    /// may be cut, as Lambda's `LogResult` is).
    pub fn tail(&self) -> &[u8] {
        let start = self.tail.len().saturating_sub(TAIL_BYTES);
        &self.tail[start..]
    }

    fn emit_partial(&mut self) {
        let line = std::mem::take(&mut self.partial);
        self.write_line(&line);
        self.partial = line;
        self.partial.clear();
    }

    fn write_line(&mut self, line: &[u8]) {
        if let Some(echo) = &mut self.echo {
            let _ = echo.write_all(line);
            let _ = echo.write_all(b"\n");
        }
        self.tail.extend_from_slice(line);
        self.tail.push(b'\n');
        if self.tail.len() > 4 * TAIL_BYTES {
            let cut = self.tail.len() - TAIL_BYTES;
            self.tail.drain(..cut);
        }
        let len = line.len() as u64 + 1;
        if self.written + len > self.max_bytes {
            if self.dropped == 0 {
                let note = format!(
                    "[hearth] log stream reached its {} byte limit; further lines are dropped\n",
                    self.max_bytes
                );
                let _ = self.file.write_all(note.as_bytes());
                self.written += note.len() as u64;
            }
            self.dropped += 1;
            return;
        }
        // One write per line: O_APPEND keeps concurrent readers from seeing half lines.
        let mut record = Vec::with_capacity(line.len() + 1);
        record.extend_from_slice(line);
        record.push(b'\n');
        if self.file.write_all(&record).is_ok() {
            self.written += len;
        }
    }

    /// Lines dropped because the stream was full.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

/// The file name of a log stream: `/` cannot appear in a file name.
pub fn stream_file_name(stream_name: &str) -> String {
    stream_name.replace('/', "-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_lines_are_exact() {
        assert_eq!(
            start_line("8f5", "$LATEST"),
            "START RequestId: 8f5 Version: $LATEST"
        );
        assert_eq!(end_line("8f5"), "END RequestId: 8f5");
        let warm = Report {
            duration_ms: 1.234,
            memory_mb: 128,
            max_memory_used_mb: Some(31),
            init_duration_ms: None,
            billed_cap_ms: None,
        };
        assert_eq!(
            report_line("8f5", &warm),
            "REPORT RequestId: 8f5\tDuration: 1.23 ms\tBilled Duration: 2 ms\tMemory Size: 128 MB\tMax Memory Used: 31 MB\t"
        );
        let cold = Report {
            init_duration_ms: Some(12.5),
            ..warm
        };
        assert!(report_line("8f5", &cold)
            .ends_with("Max Memory Used: 31 MB\tInit Duration: 12.50 ms\t"));
        // Billed: 1 ms granularity, at least 1 ms, capped at the timeout.
        let tiny = Report {
            duration_ms: 0.2,
            ..warm
        };
        assert!(report_line("x", &tiny).contains("Billed Duration: 1 ms\t"));
        let timeout = Report {
            duration_ms: 3004.7,
            billed_cap_ms: Some(3000),
            ..warm
        };
        assert!(report_line("x", &timeout).contains("Billed Duration: 3000 ms\t"));
    }

    #[test]
    fn output_is_split_into_lines_and_partial_lines_wait() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = LogStream::open(dir.path(), "2024/01/28/[$LATEST]abc", 1 << 20).unwrap();
        assert!(s.path().ends_with("2024-01-28-[$LATEST]abc"));
        s.platform("START");
        s.feed(b"one\ntw");
        s.feed(b"o\nthree");
        s.platform("END");
        assert_eq!(
            fs::read_to_string(s.path()).unwrap(),
            "START\none\ntwo\nthree\nEND\n"
        );
        assert_eq!(s.tail(), b"START\none\ntwo\nthree\nEND\n");
        s.begin_invocation();
        s.platform("START 2");
        assert_eq!(s.tail(), b"START 2\n");
    }

    #[test]
    fn long_lines_are_cut_and_the_tail_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = LogStream::open(dir.path(), "s", 1 << 30).unwrap();
        let long = vec![b'x'; MAX_LINE + 10];
        s.feed(&long);
        s.feed(b"\n");
        let text = fs::read(s.path()).unwrap();
        assert_eq!(text.len(), MAX_LINE + 1 + 10 + 1);
        assert_eq!(text[MAX_LINE], b'\n');
        for i in 0..10_000 {
            s.feed(format!("line {i}\n").as_bytes());
        }
        assert!(s.tail().len() <= TAIL_BYTES);
        assert!(s.tail().ends_with(b"line 9999\n"));
    }

    #[test]
    fn a_line_of_exactly_max_line_bytes_is_one_line() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = LogStream::open(dir.path(), "s", 1 << 30).unwrap();
        let mut line = vec![b'y'; MAX_LINE];
        line.push(b'\n');
        s.feed(&line);
        s.feed(b"next\n");
        let text = fs::read(s.path()).unwrap();
        assert_eq!(text.len(), MAX_LINE + 1 + 5);
        assert!(text.ends_with(b"y\nnext\n"));
    }

    #[test]
    fn a_full_stream_drops_lines_with_one_note() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = LogStream::open(dir.path(), "s", 20).unwrap();
        for _ in 0..10 {
            s.feed(b"0123456789\n");
        }
        let text = fs::read_to_string(s.path()).unwrap();
        assert!(text.starts_with("0123456789\n[hearth] log stream reached its 20 byte limit"));
        assert_eq!(text.matches("[hearth]").count(), 1);
        assert_eq!(s.dropped(), 9);
        // The tail still has the latest lines: Tail shows what the function printed.
        assert!(s.tail().ends_with(b"0123456789\n"));
    }
}
